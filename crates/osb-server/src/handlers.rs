//! The ten endpoint handlers and the replies for unknown routes and methods.
//!
//! Every endpoint but the catalog runs the same way: `prepare` checks that the operation exists
//! in the declared version, reads the OSB headers and parses the path and query into a `Call`;
//! the endpoint's `run_*` function reads the body, runs the guards, calls the broker and shapes
//! the outcome; `finish` shapes a rejection for the version. The `endpoint!` macro writes the
//! axum handler that strings these together.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use osb_types::rules::{self, ParametersFor};
use osb_types::{
    Accepted, ApiVersion, AsyncOperation, AsyncPermit, BindOutcome, BindQuery, BindingId,
    BindingLastOperationQuery, Context, DeleteOutcome, DeprovisionQuery, FetchBindingOutcome,
    FetchBindingQuery, FetchInstanceOutcome, FetchInstanceQuery, InstanceId,
    InstanceLastOperationQuery, LastOperationOutcome, Operation, OperationId, ProvisionOutcome,
    ProvisionQuery, Service, ServiceBindingRequest, ServiceInstanceAsyncOperation,
    ServiceInstanceProvisionRequest, ServiceInstanceUpdateRequest, ShapeForVersion, UnbindQuery,
    UpdateOutcome, UpdateQuery, validate_operation,
};
use serde::de::DeserializeOwned;

use crate::BrokerError;
use crate::broker::RequestContext;
use crate::error::{Rejection, json_bytes_response, json_response};
use crate::extract::{
    identity_matches_context, json_body, names, osb_headers, path_rejection, query_rejection,
};
use crate::guards::operation_length;
use crate::router::Shared;
use crate::version::Negotiated;

type Reply = Result<Response, Rejection>;

/// The version the middleware accepted (it leaves it in the request's extensions).
fn negotiated(shared: &Shared, headers: &HeaderMap, extensions: &http::Extensions) -> Negotiated {
    match extensions.get::<Negotiated>() {
        Some(negotiated) => *negotiated,
        None => shared.version.negotiate(headers).unwrap_or_default(),
    }
}

fn finish(negotiated: Negotiated, reply: Reply) -> Response {
    match reply {
        Ok(response) => response,
        Err(rejection) => rejection.for_version(negotiated.effective).into_response(),
    }
}

/// A request to one endpoint, with its path ids and query parsed.
struct Call<'a, P, Q> {
    op: Operation,
    negotiated: Negotiated,
    ctx: RequestContext,
    ids: P,
    query: Q,
    headers: &'a HeaderMap,
    body: Body,
}

/// Checks that the operation exists in the declared version, builds the request context from
/// the OSB headers, and parses the path and query (in that order: the first failure answers).
///
/// Always inlined, so that the `Call` is built where the handler keeps it instead of being
/// copied there.
#[inline(always)]
fn prepare<'a, P, Q>(
    shared: &Shared,
    op: Operation,
    negotiated: Negotiated,
    path: Result<Path<P>, PathRejection>,
    query: Result<Query<Q>, QueryRejection>,
    headers: &'a HeaderMap,
    body: Body,
) -> Result<Call<'a, P, Q>, Rejection> {
    shared.version.check_operation(op, negotiated)?;
    let osb = osb_headers(headers)?;
    let mut ctx = RequestContext::with_index(shared.catalog.index.clone());
    ctx.set_versions(negotiated.declared, negotiated.effective);
    ctx.set_headers(
        osb.originating_identity,
        osb.request_identity,
        osb.api_info_location,
    );
    let Path(ids) = path.map_err(path_rejection)?;
    let Query(query) = query.map_err(|r| query_rejection(r, op.query_parameters()))?;
    Ok(Call {
        op,
        negotiated,
        ctx,
        ids,
        query,
        headers,
        body,
    })
}

/// Declares the axum handler of an endpoint: it prepares the `Call` for `Operation::$op` from
/// the path `$ids` and the query `$query`, hands it to `$run` and finishes the reply.
macro_rules! endpoint {
    ($(#[$doc:meta])* $name:ident($op:ident, $ids:ty, $query:ty) => $run:ident) => {
        $(#[$doc])*
        pub(crate) async fn $name(
            State(shared): State<Arc<Shared>>,
            path: Result<Path<$ids>, PathRejection>,
            query: Result<Query<$query>, QueryRejection>,
            request: Request,
        ) -> Response {
            let (parts, body) = request.into_parts();
            let negotiated = negotiated(&shared, &parts.headers, &parts.extensions);
            let op = Operation::$op;
            let reply = match prepare(&shared, op, negotiated, path, query, &parts.headers, body) {
                Ok(call) => $run(&shared, call).await,
                Err(rejection) => Err(rejection),
            };
            finish(negotiated, reply)
        }
    };
}

/// A request body: how descriptions name it, its own checks, and its context.
trait RequestBody: DeserializeOwned {
    /// The body's name in descriptions.
    const MODEL: &'static str;
    /// Its required fields, as descriptions list them.
    const REQUIRED: &'static str;
    fn check(&self) -> Result<(), osb_types::Invalid>;
    fn context(&self) -> Option<&Context>;
}

macro_rules! request_body {
    ($($ty:ty: $model:literal, $required:literal;)*) => {$(
        impl RequestBody for $ty {
            const MODEL: &'static str = $model;
            const REQUIRED: &'static str = $required;
            fn check(&self) -> Result<(), osb_types::Invalid> {
                self.validate()
            }
            fn context(&self) -> Option<&Context> {
                self.context.as_ref()
            }
        }
    )*};
}

request_body! {
    ServiceInstanceProvisionRequest: "provision request",
        "service_id, plan_id, organization_guid and space_guid";
    ServiceInstanceUpdateRequest: "update request", "service_id";
    ServiceBindingRequest: "bind request", "service_id and plan_id";
}

/// Reads and checks a JSON body; its `context.platform` must match the originating identity.
async fn read_body<T: RequestBody>(
    shared: &Shared,
    ctx: &RequestContext,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Rejection> {
    let body: T = json_body(
        headers,
        body,
        shared.body_limit,
        shared.require_content_type,
        T::MODEL,
        T::REQUIRED,
    )
    .await?;
    body.check().map_err(|e| invalid(T::MODEL, e))?;
    identity_matches_context(ctx.originating_identity(), body.context())?;
    Ok(body)
}

fn invalid(model: &str, osb_types::Invalid { field, reason }: osb_types::Invalid) -> Rejection {
    Rejection::bad_request(format!("Invalid {model}: `{field}` {reason}."))
}

fn broker_error(operation: Operation) -> impl FnOnce(BrokerError) -> Rejection {
    move |error| error.into_rejection(operation)
}

/// The body of a `202` answer.
trait AsyncBody: ShapeForVersion {
    /// The operation token, if the broker gave one.
    fn token(&self) -> Option<&OperationId>;
}

impl AsyncBody for AsyncOperation {
    fn token(&self) -> Option<&OperationId> {
        self.operation.as_ref()
    }
}

impl AsyncBody for ServiceInstanceAsyncOperation {
    fn token(&self) -> Option<&OperationId> {
        self.operation.as_ref().and_then(Option::as_ref)
    }
}

/// An update's `dashboard_url`, "if present, MUST be a non-empty string" (from 2.14): a `null`
/// or `""` from the broker is left out rather than sent.
fn drop_unset_url(field: &mut Option<Option<String>>) {
    if matches!(field, Some(None)) || matches!(field, Some(Some(url)) if url.is_empty()) {
        *field = None;
    }
}

/// Checks a `202` answer (the request carried a permit, the token is one the spec allows) and
/// shapes its body for the version.
fn shape_accepted<T: AsyncBody>(
    shared: &Shared,
    operation: Operation,
    accepted: &mut Accepted<T>,
    permit: Option<AsyncPermit>,
    version: ApiVersion,
) -> Result<(), Rejection> {
    if permit.is_none() {
        tracing::error!(
            operation = operation.operation_id(),
            "the broker answered Accepted to a request without accepts_incomplete=true; answering 422 AsyncRequired"
        );
        return Err(BrokerError::async_required().into_rejection(operation));
    }
    if let Some(token) = accepted.body().token() {
        check_token(shared, operation, token)?;
    }
    let body = accepted.body_mut();
    body.shape_for_version(version);
    Ok(())
}

/// Checks a broker's reply against the spec's rules before it is sent: a reply that breaks them
/// is a `500`, with the reason logged, rather than a malformed answer.
fn check_reply(
    operation: Operation,
    checked: Result<(), osb_types::Invalid>,
) -> Result<(), Rejection> {
    checked.map_err(|e| {
        tracing::error!(
            operation = operation.operation_id(),
            error = %e,
            "the broker's reply breaks the spec; answering 500"
        );
        Rejection::internal()
    })
}

/// Checks a broker's operation token before it is sent.
fn check_token(
    shared: &Shared,
    operation: Operation,
    token: &OperationId,
) -> Result<(), Rejection> {
    if !shared.guards.operation_length {
        return Ok(());
    }
    validate_operation(token).map_err(|e| {
        tracing::error!(
            operation = operation.operation_id(),
            error = %e,
            "the broker returned an operation token the spec does not allow"
        );
        Rejection::internal()
    })
}

// ---------------------------------------------------------------------------------------------
// Catalog

/// `GET /v2/catalog`
pub(crate) async fn catalog(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let negotiated = negotiated(&shared, request.headers(), request.extensions());
    // The catalog has no use for the OSB headers, but a malformed one is refused here as on
    // every other endpoint.
    if request.headers().contains_key(names::ORIGINATING_IDENTITY)
        && let Err(rejection) = osb_headers(request.headers())
    {
        return finish(negotiated, Err(rejection));
    }
    let Some((bytes, etag)) = shared.docs.get(negotiated.effective) else {
        return Rejection::internal().into_response();
    };
    let mut response = if if_none_match(request.headers(), etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        json_bytes_response(StatusCode::OK, bytes.clone())
    };
    response.headers_mut().insert(header::ETAG, etag.clone());
    response
}

/// Whether `If-None-Match` matches the current `ETag` (weak comparison, as RFC 9110 asks).
fn if_none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let current = etag
        .as_bytes()
        .strip_prefix(b"W/")
        .unwrap_or(etag.as_bytes());
    headers.get_all(header::IF_NONE_MATCH).iter().any(|value| {
        value.as_bytes().split(|b| *b == b',').any(|tag| {
            let tag = tag.trim_ascii();
            tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == current
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Service instances

endpoint! {
    /// `PUT /v2/service_instances/{instance_id}`
    provision(Provision, InstanceId, ProvisionQuery) => run_provision
}

async fn run_provision(shared: &Shared, mut call: Call<'_, InstanceId, ProvisionQuery>) -> Reply {
    let body: ServiceInstanceProvisionRequest =
        read_body(shared, &call.ctx, call.headers, call.body).await?;
    let guards = shared.guards;
    if guards.known_ids {
        shared.catalog.known_plan(&body.service_id, &body.plan_id)?;
    }
    if guards.maintenance_info
        && let Some(info) = &body.maintenance_info
    {
        shared
            .catalog
            .maintenance(&body.service_id, &body.plan_id, info)?;
    }
    if guards.parameters {
        shared.catalog.parameters(
            &body.plan_id,
            ParametersFor::InstanceCreate,
            body.parameters.as_ref(),
        )?;
    }
    let permit = AsyncPermit::from_accepts_incomplete(call.query.accepts_incomplete);
    call.ctx
        .set_scope(body.service_id.clone(), body.plan_id.clone(), permit);
    let mut outcome = shared
        .broker
        .provision(call.ids, body, call.ctx)
        .await
        .map_err(broker_error(call.op))?;
    let version = call.negotiated.effective;
    match &mut outcome {
        ProvisionOutcome::Created(b) | ProvisionOutcome::AlreadyExists(b) => {
            b.shape_for_version(version);
        }
        ProvisionOutcome::Accepted(a) => shape_accepted(shared, call.op, a, permit, version)?,
        _ => {}
    }
    Ok(json_response(outcome.status(), &outcome))
}

endpoint! {
    /// `PATCH /v2/service_instances/{instance_id}`
    update(Update, InstanceId, UpdateQuery) => run_update
}

async fn run_update(shared: &Shared, mut call: Call<'_, InstanceId, UpdateQuery>) -> Reply {
    let body: ServiceInstanceUpdateRequest =
        read_body(shared, &call.ctx, call.headers, call.body).await?;
    let guards = shared.guards;
    let version = call.negotiated.effective;
    let previous_plan = body
        .previous_values
        .as_ref()
        .and_then(|p| p.plan_id.clone());
    let target_plan = rules::update_plan(&body, None).cloned();
    // A plan is chosen when `plan_id` differs from the previous one (or nothing says what that
    // was); an update that keeps a retired plan reaches the broker.
    let chooses_plan = body
        .plan_id
        .as_ref()
        .is_some_and(|plan| previous_plan.as_ref() != Some(plan));
    if (guards.known_ids && chooses_plan) || guards.strict_ids {
        match &body.plan_id {
            Some(plan_id) => shared.catalog.known_plan(&body.service_id, plan_id)?,
            None => shared.catalog.known_service(&body.service_id)?,
        }
    }
    // `allow_context_updates` appeared in 2.15; older platforms cannot see it in the catalog.
    let context_only = body.context.is_some()
        && body.plan_id.is_none()
        && body.parameters.is_none()
        && body.maintenance_info.is_none();
    if guards.context_updates && context_only && version >= Service::ALLOW_CONTEXT_UPDATES_SINCE {
        shared.catalog.context_update(&body.service_id)?;
    }
    if guards.plan_updateable
        && let (Some(new_plan), Some(current)) = (&body.plan_id, &previous_plan)
    {
        shared
            .catalog
            .plan_change(&body.service_id, current, new_plan)?;
    }
    if let Some(plan_id) = &target_plan {
        if guards.maintenance_info
            && let Some(info) = &body.maintenance_info
        {
            shared
                .catalog
                .maintenance(&body.service_id, plan_id, info)?;
        }
        if guards.parameters {
            shared.catalog.parameters(
                plan_id,
                ParametersFor::InstanceUpdate,
                body.parameters.as_ref(),
            )?;
        }
    }
    let permit = AsyncPermit::from_accepts_incomplete(call.query.accepts_incomplete);
    call.ctx
        .set_scope(body.service_id.clone(), target_plan, permit);
    let mut outcome = shared
        .broker
        .update(call.ids, body, call.ctx)
        .await
        .map_err(broker_error(call.op))?;
    match &mut outcome {
        UpdateOutcome::Updated(b) => {
            b.shape_for_version(version);
            drop_unset_url(&mut b.dashboard_url);
        }
        UpdateOutcome::Accepted(a) => {
            shape_accepted(shared, call.op, a, permit, version)?;
            let body = a.body_mut();
            drop_unset_url(&mut body.dashboard_url);
            if matches!(body.operation, Some(None)) {
                body.operation = None;
            }
        }
        _ => {}
    }
    Ok(json_response(outcome.status(), &outcome))
}

endpoint! {
    /// `DELETE /v2/service_instances/{instance_id}`
    deprovision(Deprovision, InstanceId, DeprovisionQuery) => run_deprovision
}

async fn run_deprovision(
    shared: &Shared,
    mut call: Call<'_, InstanceId, DeprovisionQuery>,
) -> Reply {
    check_delete_query(
        shared,
        call.query.validate(),
        &call.query.service_id,
        &call.query.plan_id,
    )?;
    let permit = AsyncPermit::from_accepts_incomplete(call.query.accepts_incomplete);
    call.ctx.set_scope(
        call.query.service_id.clone(),
        call.query.plan_id.clone(),
        permit,
    );
    let outcome = shared
        .broker
        .deprovision(call.ids, call.query, call.ctx)
        .await
        .map_err(broker_error(call.op))?;
    delete_reply(shared, call.op, outcome, permit, call.negotiated.effective)
}

/// Checks a delete's query with its own `validate()` (the rules osb-client applies too), then,
/// in strict mode only, that its offering and plan exist: a delete carries the resource's plan,
/// which the catalog may have retired.
fn check_delete_query(
    shared: &Shared,
    validated: Result<(), osb_types::Invalid>,
    service_id: &str,
    plan_id: &str,
) -> Result<(), Rejection> {
    validated.map_err(|osb_types::Invalid { field, reason }| {
        Rejection::bad_request(format!(
            "The query parameter `{field}` {reason}; DELETE requests need service_id and plan_id."
        ))
    })?;
    if shared.guards.strict_ids {
        shared.catalog.known_plan(service_id, plan_id)?;
    }
    Ok(())
}

fn delete_reply(
    shared: &Shared,
    op: Operation,
    mut outcome: DeleteOutcome,
    permit: Option<AsyncPermit>,
    version: ApiVersion,
) -> Reply {
    if let DeleteOutcome::Accepted(a) = &mut outcome {
        shape_accepted(shared, op, a, permit, version)?;
    }
    Ok(json_response(outcome.status(), &outcome))
}

endpoint! {
    /// `GET /v2/service_instances/{instance_id}/last_operation`
    instance_last_operation(InstanceLastOperation, InstanceId, InstanceLastOperationQuery)
        => run_instance_last_operation
}

async fn run_instance_last_operation(
    shared: &Shared,
    mut call: Call<'_, InstanceId, InstanceLastOperationQuery>,
) -> Reply {
    check_operation_query(shared, call.query.operation.as_ref())?;
    call.ctx.set_scope(
        call.query.service_id.clone(),
        call.query.plan_id.clone(),
        None,
    );
    let outcome = shared
        .broker
        .instance_last_operation(call.ids, call.query, call.ctx)
        .await
        .map_err(broker_error(call.op))?;
    Ok(last_operation_reply(
        outcome,
        call.negotiated.effective,
        false,
    ))
}

fn check_operation_query(
    shared: &Shared,
    operation: Option<&OperationId>,
) -> Result<(), Rejection> {
    match operation {
        Some(operation) if shared.guards.operation_length => operation_length(operation),
        _ => Ok(()),
    }
}

fn last_operation_reply(
    mut outcome: LastOperationOutcome,
    version: ApiVersion,
    binding: bool,
) -> Response {
    let mut retry_after = None;
    if let LastOperationOutcome::State(state) = &mut outcome {
        state.resource.shape_for_version(version);
        if binding {
            // Only instance polls carry the usability flags.
            state.resource.instance_usable = None;
            state.resource.update_repeatable = None;
        }
        retry_after = state
            .retry_after
            .and_then(|r| HeaderValue::from_str(&r.to_header_value()).ok());
    }
    let mut response = json_response(outcome.status(), &outcome);
    if let Some(value) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

endpoint! {
    /// `GET /v2/service_instances/{instance_id}`
    fetch_instance(FetchInstance, InstanceId, FetchInstanceQuery) => run_fetch_instance
}

async fn run_fetch_instance(
    shared: &Shared,
    mut call: Call<'_, InstanceId, FetchInstanceQuery>,
) -> Reply {
    if shared.guards.retrievable {
        shared
            .catalog
            .instances_retrievable(call.query.service_id.as_deref())?;
    }
    call.ctx.set_scope(
        call.query.service_id.clone(),
        call.query.plan_id.clone(),
        None,
    );
    let mut outcome = shared
        .broker
        .fetch_instance(call.ids, call.query, call.ctx)
        .await
        .map_err(broker_error(call.op))?;
    if let FetchInstanceOutcome::Found(resource) = &mut outcome {
        resource.shape_for_version(call.negotiated.effective);
    }
    Ok(json_response(outcome.status(), &outcome))
}

// ---------------------------------------------------------------------------------------------
// Service bindings

/// bind and unbind hand out an async permit only from 2.14, when async bindings appeared.
fn binding_permit(accepts_incomplete: Option<bool>, negotiated: Negotiated) -> Option<AsyncPermit> {
    if negotiated.declared < BindQuery::ACCEPTS_INCOMPLETE_SINCE {
        return None;
    }
    AsyncPermit::from_accepts_incomplete(accepts_incomplete)
}

endpoint! {
    /// `PUT /v2/service_instances/{instance_id}/service_bindings/{binding_id}`
    bind(Bind, (InstanceId, BindingId), BindQuery) => run_bind
}

async fn run_bind(
    shared: &Shared,
    mut call: Call<'_, (InstanceId, BindingId), BindQuery>,
) -> Reply {
    let body: ServiceBindingRequest = read_body(shared, &call.ctx, call.headers, call.body).await?;
    let guards = shared.guards;
    // A rotation may name no offering or plan; `validate()` has refused any other bind that
    // lacks them. Binds are made on existing instances, whose plan may have been retired.
    let ids = body.service_id.as_deref().zip(body.plan_id.as_deref());
    if let Some((service_id, plan_id)) = ids {
        if guards.strict_ids {
            shared.catalog.known_plan(service_id, plan_id)?;
        }
        if guards.bindable {
            shared.catalog.bindable(service_id, plan_id)?;
        }
    }
    if guards.binding_rotation {
        shared.catalog.rotation(&body)?;
    }
    // A rotation without `parameters` reuses the predecessor's: nothing to check.
    if let (true, true, Some(plan_id)) = (
        guards.parameters,
        rules::bind_parameters_checked(&body),
        body.plan_id.as_deref(),
    ) {
        shared.catalog.parameters(
            plan_id,
            ParametersFor::BindingCreate,
            body.parameters.as_ref(),
        )?;
    }
    let permit = binding_permit(call.query.accepts_incomplete, call.negotiated);
    call.ctx
        .set_scope(body.service_id.clone(), body.plan_id.clone(), permit);
    let (instance_id, binding_id) = call.ids;
    let mut outcome = shared
        .broker
        .bind(instance_id, binding_id, body, call.ctx)
        .await
        .map_err(broker_error(call.op))?;
    let version = call.negotiated.effective;
    match &mut outcome {
        BindOutcome::Created(b) | BindOutcome::AlreadyExists(b) => {
            b.shape_for_version(version);
            check_reply(call.op, b.validate())?;
        }
        BindOutcome::Accepted(a) => shape_accepted(shared, call.op, a, permit, version)?,
        _ => {}
    }
    Ok(json_response(outcome.status(), &outcome))
}

endpoint! {
    /// `DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}`
    unbind(Unbind, (InstanceId, BindingId), UnbindQuery) => run_unbind
}

async fn run_unbind(
    shared: &Shared,
    mut call: Call<'_, (InstanceId, BindingId), UnbindQuery>,
) -> Reply {
    check_delete_query(
        shared,
        call.query.validate(),
        &call.query.service_id,
        &call.query.plan_id,
    )?;
    let permit = binding_permit(call.query.accepts_incomplete, call.negotiated);
    call.ctx.set_scope(
        call.query.service_id.clone(),
        call.query.plan_id.clone(),
        permit,
    );
    let (instance_id, binding_id) = call.ids;
    let outcome = shared
        .broker
        .unbind(instance_id, binding_id, call.query, call.ctx)
        .await
        .map_err(broker_error(call.op))?;
    delete_reply(shared, call.op, outcome, permit, call.negotiated.effective)
}

endpoint! {
    /// `GET …/service_bindings/{binding_id}/last_operation`
    binding_last_operation(BindingLastOperation, (InstanceId, BindingId), BindingLastOperationQuery)
        => run_binding_last_operation
}

async fn run_binding_last_operation(
    shared: &Shared,
    mut call: Call<'_, (InstanceId, BindingId), BindingLastOperationQuery>,
) -> Reply {
    check_operation_query(shared, call.query.operation.as_ref())?;
    call.ctx.set_scope(
        call.query.service_id.clone(),
        call.query.plan_id.clone(),
        None,
    );
    let (instance_id, binding_id) = call.ids;
    let outcome = shared
        .broker
        .binding_last_operation(instance_id, binding_id, call.query, call.ctx)
        .await
        .map_err(broker_error(call.op))?;
    Ok(last_operation_reply(
        outcome,
        call.negotiated.effective,
        true,
    ))
}

endpoint! {
    /// `GET /v2/service_instances/{instance_id}/service_bindings/{binding_id}`
    fetch_binding(FetchBinding, (InstanceId, BindingId), FetchBindingQuery) => run_fetch_binding
}

async fn run_fetch_binding(
    shared: &Shared,
    mut call: Call<'_, (InstanceId, BindingId), FetchBindingQuery>,
) -> Reply {
    if shared.guards.retrievable {
        shared
            .catalog
            .bindings_retrievable(call.query.service_id.as_deref())?;
    }
    call.ctx.set_scope(
        call.query.service_id.clone(),
        call.query.plan_id.clone(),
        None,
    );
    let (instance_id, binding_id) = call.ids;
    let mut outcome = shared
        .broker
        .fetch_binding(instance_id, binding_id, call.query, call.ctx)
        .await
        .map_err(broker_error(call.op))?;
    if let FetchBindingOutcome::Found(resource) = &mut outcome {
        resource.shape_for_version(call.negotiated.effective);
        check_reply(call.op, resource.validate())?;
    }
    Ok(json_response(outcome.status(), &outcome))
}

// ---------------------------------------------------------------------------------------------
// Unknown routes and methods

/// Any path under `/v2` that is not an OSB endpoint.
pub(crate) async fn not_found(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let description = format!(
        "There is no OSB endpoint at {} {}; the endpoints are /v2/catalog and /v2/service_instances/{{instance_id}}[/last_operation | /service_bindings/{{binding_id}}[/last_operation]].",
        request.method(),
        request.uri().path()
    );
    refuse(&shared, &request, StatusCode::NOT_FOUND, description)
}

/// A method the endpoint does not take (axum adds the `Allow` header).
pub(crate) async fn method_not_allowed(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Response {
    let description = format!(
        "{} is not allowed on {}; the Allow header lists the methods this endpoint takes.",
        request.method(),
        request.uri().path()
    );
    refuse(
        &shared,
        &request,
        StatusCode::METHOD_NOT_ALLOWED,
        description,
    )
}

fn refuse(shared: &Shared, request: &Request, status: StatusCode, description: String) -> Response {
    Rejection::described(status, description)
        .for_version(negotiated(shared, request.headers(), request.extensions()).effective)
        .into_response()
}
