//! The ten endpoint handlers and the replies for unknown routes and methods.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use osb_types::{
    Accepted, ApiVersion, AsyncOperation, AsyncPermit, BindOutcome, BindingId,
    BindingLastOperationQuery, DeleteOutcome, DeprovisionQuery, FetchBindingOutcome,
    FetchBindingQuery, FetchInstanceOutcome, FetchInstanceQuery, InstanceId,
    InstanceLastOperationQuery, LastOperationOutcome, Operation, OperationId, ProvisionOutcome,
    ProvisionQuery, ServiceBindingRequest, ServiceInstanceAsyncOperation,
    ServiceInstanceProvisionRequest, ServiceInstanceUpdateRequest, ShapeForVersion, UnbindQuery,
    UpdateOutcome, UpdateQuery, validate_id, validate_operation,
};

use crate::broker::RequestContext;
use crate::error::{Rejection, json_bytes_response, json_response};
use crate::extract::{
    identity_matches_context, json_body, osb_headers, path_rejection, query_rejection,
};
use crate::guards::{SchemaKind, operation_length};
use crate::router::Shared;
use crate::version::Negotiated;
use crate::{BrokerError, error::INTERNAL_DESCRIPTION};

type Reply = Result<Response, Rejection>;

/// The version the middleware accepted (negotiating again is cheaper than passing it through
/// the request's extensions).
fn negotiated(shared: &Shared, request: &Request) -> Negotiated {
    shared
        .version
        .negotiate(request.headers())
        .unwrap_or_default()
}

fn finish(negotiated: Negotiated, reply: Reply) -> Response {
    match reply {
        Ok(response) => response,
        Err(rejection) => rejection.for_version(negotiated.effective).into_response(),
    }
}

/// The request context with the version and OSB headers; checks the operation exists in the
/// declared version.
fn context(
    shared: &Shared,
    operation: Operation,
    negotiated: Negotiated,
    headers: &HeaderMap,
) -> Result<RequestContext, Rejection> {
    shared.version.check_operation(operation, negotiated)?;
    let osb = osb_headers(headers)?;
    let mut ctx = RequestContext::with_index(shared.catalog.index.clone());
    ctx.set_versions(negotiated.declared, negotiated.effective);
    ctx.set_headers(
        osb.originating_identity,
        osb.request_identity,
        osb.api_info_location,
    );
    Ok(ctx)
}

fn invalid(model: &str, error: osb_types::Error) -> Rejection {
    match error {
        osb_types::Error::Invalid { field, reason } => {
            Rejection::bad_request(format!("Invalid {model}: `{field}` {reason}."))
        }
        other => Rejection::bad_request(format!("Invalid {model}: {other}.")),
    }
}

fn broker_error(operation: Operation) -> impl FnOnce(BrokerError) -> Rejection {
    move |error| error.into_rejection(operation)
}

fn accepted_without_permit(operation: Operation) -> Rejection {
    tracing::error!(
        operation = operation.operation_id(),
        "the broker answered Accepted to a request without accepts_incomplete=true; answering 422 AsyncRequired"
    );
    BrokerError::async_required().into_rejection(operation)
}

/// Checks a broker's operation token before it is sent.
fn check_token(
    shared: &Shared,
    operation: Operation,
    token: Option<&OperationId>,
) -> Result<(), Rejection> {
    let Some(token) = token else {
        return Ok(());
    };
    if !shared.guards.operation_length {
        return Ok(());
    }
    match validate_operation(token) {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::error!(
                operation = operation.operation_id(),
                error = %e,
                "the broker returned an operation token the spec does not allow"
            );
            Err(Rejection::described(
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL_DESCRIPTION,
            ))
        }
    }
}

/// `null` for `dashboard_url` and `operation` is allowed since 2.15; older peers get them left out.
fn drop_null<T>(field: &mut Option<Option<T>>, version: ApiVersion) {
    if version < ApiVersion::V2_15 && matches!(field, Some(None)) {
        *field = None;
    }
}

fn shape_instance_async(
    shared: &Shared,
    operation: Operation,
    accepted: &mut Accepted<ServiceInstanceAsyncOperation>,
    permit: Option<AsyncPermit>,
    version: ApiVersion,
) -> Result<(), Rejection> {
    if permit.is_none() {
        return Err(accepted_without_permit(operation));
    }
    check_token(shared, operation, accepted.operation())?;
    let body = accepted.body_mut();
    body.shape_for_version(version);
    drop_null(&mut body.dashboard_url, version);
    drop_null(&mut body.operation, version);
    Ok(())
}

fn shape_async(
    shared: &Shared,
    operation: Operation,
    accepted: &mut Accepted<AsyncOperation>,
    permit: Option<AsyncPermit>,
    version: ApiVersion,
) -> Result<(), Rejection> {
    if permit.is_none() {
        return Err(accepted_without_permit(operation));
    }
    check_token(shared, operation, accepted.operation())?;
    accepted.body_mut().shape_for_version(version);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Catalog

/// `GET /v2/catalog`
pub(crate) async fn catalog(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let negotiated = negotiated(&shared, &request);
    let Some((bytes, etag)) = shared.docs.get(negotiated.effective) else {
        return Rejection::described(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_DESCRIPTION)
            .into_response();
    };
    if if_none_match(request.headers(), etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(header::ETAG, etag.clone());
        return response;
    }
    let mut response = json_bytes_response(StatusCode::OK, bytes.clone());
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

/// `PUT /v2/service_instances/{instance_id}`
pub(crate) async fn provision(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ProvisionQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let negotiated = negotiated(&shared, &request);
    finish(
        negotiated,
        provision_inner(&shared, negotiated, path, query, request).await,
    )
}

async fn provision_inner(
    shared: &Shared,
    negotiated: Negotiated,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ProvisionQuery>, QueryRejection>,
    request: Request,
) -> Reply {
    let op = Operation::Provision;
    let mut ctx = context(shared, op, negotiated, request.headers())?;
    let Path(instance_id) = path.map_err(path_rejection)?;
    let Query(query) = query.map_err(|r| query_rejection(r, op.query_parameters()))?;
    let (parts, body) = request.into_parts();
    let mut body: ServiceInstanceProvisionRequest = json_body(
        &parts.headers,
        body,
        shared.body_limit,
        shared.require_content_type,
        "provision request",
        "service_id, plan_id, organization_guid and space_guid",
    )
    .await?;
    body.validate()
        .map_err(|e| invalid("provision request", e))?;
    identity_matches_context(ctx.originating_identity(), body.context.as_ref())?;
    let guards = shared.guards;
    if guards.known_ids {
        shared.catalog.known_plan(&body.service_id, &body.plan_id)?;
    }
    if guards.maintenance_info {
        if let Some(info) = &body.maintenance_info {
            shared
                .catalog
                .maintenance(&body.service_id, &body.plan_id, info)?;
        }
    }
    if guards.parameters {
        shared.catalog.parameters(
            &body.plan_id,
            SchemaKind::InstanceCreate,
            &mut body.parameters,
        )?;
    }
    let permit = AsyncPermit::from_accepts_incomplete(query.accepts_incomplete);
    ctx.set_ids(Some(body.service_id.clone()), Some(body.plan_id.clone()));
    let ctx = ctx.with_async_permit(permit);
    let mut outcome = shared
        .broker
        .provision(InstanceId::from(instance_id), body, ctx)
        .await
        .map_err(broker_error(op))?;
    let version = negotiated.effective;
    match &mut outcome {
        ProvisionOutcome::Created(b) | ProvisionOutcome::AlreadyExists(b) => {
            b.shape_for_version(version);
            drop_null(&mut b.dashboard_url, version);
        }
        ProvisionOutcome::Accepted(a) => shape_instance_async(shared, op, a, permit, version)?,
        _ => {}
    }
    Ok(json_response(outcome.status(), &outcome))
}

/// `PATCH /v2/service_instances/{instance_id}`
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<UpdateQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let negotiated = negotiated(&shared, &request);
    finish(
        negotiated,
        update_inner(&shared, negotiated, path, query, request).await,
    )
}

async fn update_inner(
    shared: &Shared,
    negotiated: Negotiated,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<UpdateQuery>, QueryRejection>,
    request: Request,
) -> Reply {
    let op = Operation::Update;
    let mut ctx = context(shared, op, negotiated, request.headers())?;
    let Path(instance_id) = path.map_err(path_rejection)?;
    let Query(query) = query.map_err(|r| query_rejection(r, op.query_parameters()))?;
    let (parts, body) = request.into_parts();
    let mut body: ServiceInstanceUpdateRequest = json_body(
        &parts.headers,
        body,
        shared.body_limit,
        shared.require_content_type,
        "update request",
        "service_id",
    )
    .await?;
    body.validate().map_err(|e| invalid("update request", e))?;
    identity_matches_context(ctx.originating_identity(), body.context.as_ref())?;
    let guards = shared.guards;
    let previous_plan = body
        .previous_values
        .as_ref()
        .and_then(|p| p.plan_id.clone());
    let target_plan = body.plan_id.clone().or_else(|| previous_plan.clone());
    if guards.known_ids {
        match &body.plan_id {
            Some(plan_id) => shared.catalog.known_plan(&body.service_id, plan_id)?,
            None => shared.catalog.known_service(&body.service_id)?,
        }
    }
    if guards.plan_updateable {
        if let (Some(new_plan), Some(current)) = (&body.plan_id, &previous_plan) {
            shared
                .catalog
                .plan_change(&body.service_id, current, new_plan)?;
        }
    }
    if let Some(plan_id) = &target_plan {
        if guards.maintenance_info {
            if let Some(info) = &body.maintenance_info {
                shared
                    .catalog
                    .maintenance(&body.service_id, plan_id, info)?;
            }
        }
        if guards.parameters {
            shared
                .catalog
                .parameters(plan_id, SchemaKind::InstanceUpdate, &mut body.parameters)?;
        }
    }
    let permit = AsyncPermit::from_accepts_incomplete(query.accepts_incomplete);
    ctx.set_ids(Some(body.service_id.clone()), target_plan);
    let ctx = ctx.with_async_permit(permit);
    let mut outcome = shared
        .broker
        .update(InstanceId::from(instance_id), body, ctx)
        .await
        .map_err(broker_error(op))?;
    let version = negotiated.effective;
    match &mut outcome {
        UpdateOutcome::Updated(b) => b.shape_for_version(version),
        UpdateOutcome::Accepted(a) => shape_instance_async(shared, op, a, permit, version)?,
        _ => {}
    }
    Ok(json_response(outcome.status(), &outcome))
}

/// `DELETE /v2/service_instances/{instance_id}`
pub(crate) async fn deprovision(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DeprovisionQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let negotiated = negotiated(&shared, &request);
    finish(
        negotiated,
        deprovision_inner(&shared, negotiated, path, query, request).await,
    )
}

async fn deprovision_inner(
    shared: &Shared,
    negotiated: Negotiated,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DeprovisionQuery>, QueryRejection>,
    request: Request,
) -> Reply {
    let op = Operation::Deprovision;
    let mut ctx = context(shared, op, negotiated, request.headers())?;
    let Path(instance_id) = path.map_err(path_rejection)?;
    let Query(query) = query.map_err(|r| query_rejection(r, op.query_parameters()))?;
    check_delete_query(shared, &query.service_id, &query.plan_id)?;
    let permit = AsyncPermit::from_accepts_incomplete(query.accepts_incomplete);
    ctx.set_ids(Some(query.service_id.clone()), Some(query.plan_id.clone()));
    let ctx = ctx.with_async_permit(permit);
    let outcome = shared
        .broker
        .deprovision(InstanceId::from(instance_id), query, ctx)
        .await
        .map_err(broker_error(op))?;
    delete_reply(shared, op, outcome, permit, negotiated.effective)
}

fn check_delete_query(shared: &Shared, service_id: &str, plan_id: &str) -> Result<(), Rejection> {
    let query_error = |e| match e {
        osb_types::Error::Invalid { field, reason } => Rejection::bad_request(format!(
            "The query parameter `{field}` {reason}; DELETE requests need service_id and plan_id."
        )),
        other => Rejection::bad_request(format!("{other}.")),
    };
    validate_id("service_id", service_id).map_err(query_error)?;
    validate_id("plan_id", plan_id).map_err(query_error)?;
    if shared.guards.known_ids {
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
        shape_async(shared, op, a, permit, version)?;
    }
    Ok(json_response(outcome.status(), &outcome))
}

/// `GET /v2/service_instances/{instance_id}/last_operation`
pub(crate) async fn instance_last_operation(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<InstanceLastOperationQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let negotiated = negotiated(&shared, &request);
    let reply = async move {
        let op = Operation::InstanceLastOperation;
        let mut ctx = context(&shared, op, negotiated, request.headers())?;
        let Path(instance_id) = path.map_err(path_rejection)?;
        let Query(query) = query.map_err(|r| query_rejection(r, op.query_parameters()))?;
        check_operation_query(&shared, query.operation.as_ref())?;
        ctx.set_ids(query.service_id.clone(), query.plan_id.clone());
        let outcome = shared
            .broker
            .instance_last_operation(InstanceId::from(instance_id), query, ctx)
            .await
            .map_err(broker_error(op))?;
        Ok(last_operation_reply(outcome, negotiated.effective, false))
    }
    .await;
    finish(negotiated, reply)
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

/// `GET /v2/service_instances/{instance_id}`
pub(crate) async fn fetch_instance(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<FetchInstanceQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let negotiated = negotiated(&shared, &request);
    let reply = async move {
        let op = Operation::FetchInstance;
        let mut ctx = context(&shared, op, negotiated, request.headers())?;
        let Path(instance_id) = path.map_err(path_rejection)?;
        let Query(query) = query.map_err(|r| query_rejection(r, op.query_parameters()))?;
        if shared.guards.retrievable {
            shared
                .catalog
                .instances_retrievable(query.service_id.as_deref())?;
        }
        ctx.set_ids(query.service_id.clone(), query.plan_id.clone());
        let mut outcome = shared
            .broker
            .fetch_instance(InstanceId::from(instance_id), query, ctx)
            .await
            .map_err(broker_error(op))?;
        if let FetchInstanceOutcome::Found(resource) = &mut outcome {
            resource.shape_for_version(negotiated.effective);
        }
        Ok(json_response(outcome.status(), &outcome))
    }
    .await;
    finish(negotiated, reply)
}

// ---------------------------------------------------------------------------------------------
// Service bindings

/// bind and unbind hand out an async permit only from 2.14, when async bindings appeared.
fn binding_permit(accepts_incomplete: Option<bool>, negotiated: Negotiated) -> Option<AsyncPermit> {
    if negotiated.declared < ApiVersion::V2_14 {
        return None;
    }
    AsyncPermit::from_accepts_incomplete(accepts_incomplete)
}

/// `PUT /v2/service_instances/{instance_id}/service_bindings/{binding_id}`
pub(crate) async fn bind(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<osb_types::BindQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let negotiated = negotiated(&shared, &request);
    finish(
        negotiated,
        bind_inner(&shared, negotiated, path, query, request).await,
    )
}

async fn bind_inner(
    shared: &Shared,
    negotiated: Negotiated,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<osb_types::BindQuery>, QueryRejection>,
    request: Request,
) -> Reply {
    let op = Operation::Bind;
    let mut ctx = context(shared, op, negotiated, request.headers())?;
    let Path((instance_id, binding_id)) = path.map_err(path_rejection)?;
    let Query(query) = query.map_err(|r| query_rejection(r, op.query_parameters()))?;
    let (parts, body) = request.into_parts();
    let mut body: ServiceBindingRequest = json_body(
        &parts.headers,
        body,
        shared.body_limit,
        shared.require_content_type,
        "bind request",
        "service_id and plan_id",
    )
    .await?;
    body.validate().map_err(|e| invalid("bind request", e))?;
    identity_matches_context(ctx.originating_identity(), body.context.as_ref())?;
    let guards = shared.guards;
    if guards.known_ids {
        shared.catalog.known_plan(&body.service_id, &body.plan_id)?;
    }
    if guards.bindable {
        shared.catalog.bindable(&body.service_id, &body.plan_id)?;
    }
    if guards.binding_rotation && body.predecessor_binding_id.is_some() {
        shared.catalog.rotation(&body.service_id, &body.plan_id)?;
    }
    if guards.parameters {
        shared.catalog.parameters(
            &body.plan_id,
            SchemaKind::BindingCreate,
            &mut body.parameters,
        )?;
    }
    let permit = binding_permit(query.accepts_incomplete, negotiated);
    ctx.set_ids(Some(body.service_id.clone()), Some(body.plan_id.clone()));
    let ctx = ctx.with_async_permit(permit);
    let mut outcome = shared
        .broker
        .bind(
            InstanceId::from(instance_id),
            BindingId::from(binding_id),
            body,
            ctx,
        )
        .await
        .map_err(broker_error(op))?;
    let version = negotiated.effective;
    match &mut outcome {
        BindOutcome::Created(b) | BindOutcome::AlreadyExists(b) => b.shape_for_version(version),
        BindOutcome::Accepted(a) => shape_async(shared, op, a, permit, version)?,
        _ => {}
    }
    Ok(json_response(outcome.status(), &outcome))
}

/// `DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}`
pub(crate) async fn unbind(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<UnbindQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let negotiated = negotiated(&shared, &request);
    let reply = async move {
        let op = Operation::Unbind;
        let mut ctx = context(&shared, op, negotiated, request.headers())?;
        let Path((instance_id, binding_id)) = path.map_err(path_rejection)?;
        let Query(query) = query.map_err(|r| query_rejection(r, op.query_parameters()))?;
        check_delete_query(&shared, &query.service_id, &query.plan_id)?;
        let permit = binding_permit(query.accepts_incomplete, negotiated);
        ctx.set_ids(Some(query.service_id.clone()), Some(query.plan_id.clone()));
        let ctx = ctx.with_async_permit(permit);
        let outcome = shared
            .broker
            .unbind(
                InstanceId::from(instance_id),
                BindingId::from(binding_id),
                query,
                ctx,
            )
            .await
            .map_err(broker_error(op))?;
        delete_reply(&shared, op, outcome, permit, negotiated.effective)
    }
    .await;
    finish(negotiated, reply)
}

/// `GET …/service_bindings/{binding_id}/last_operation`
pub(crate) async fn binding_last_operation(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<BindingLastOperationQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let negotiated = negotiated(&shared, &request);
    let reply = async move {
        let op = Operation::BindingLastOperation;
        let mut ctx = context(&shared, op, negotiated, request.headers())?;
        let Path((instance_id, binding_id)) = path.map_err(path_rejection)?;
        let Query(query) = query.map_err(|r| query_rejection(r, op.query_parameters()))?;
        check_operation_query(&shared, query.operation.as_ref())?;
        ctx.set_ids(query.service_id.clone(), query.plan_id.clone());
        let outcome = shared
            .broker
            .binding_last_operation(
                InstanceId::from(instance_id),
                BindingId::from(binding_id),
                query,
                ctx,
            )
            .await
            .map_err(broker_error(op))?;
        Ok(last_operation_reply(outcome, negotiated.effective, true))
    }
    .await;
    finish(negotiated, reply)
}

/// `GET /v2/service_instances/{instance_id}/service_bindings/{binding_id}`
pub(crate) async fn fetch_binding(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<FetchBindingQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let negotiated = negotiated(&shared, &request);
    let reply = async move {
        let op = Operation::FetchBinding;
        let mut ctx = context(&shared, op, negotiated, request.headers())?;
        let Path((instance_id, binding_id)) = path.map_err(path_rejection)?;
        let Query(query) = query.map_err(|r| query_rejection(r, op.query_parameters()))?;
        if shared.guards.retrievable {
            shared
                .catalog
                .bindings_retrievable(query.service_id.as_deref())?;
        }
        ctx.set_ids(query.service_id.clone(), query.plan_id.clone());
        let mut outcome = shared
            .broker
            .fetch_binding(
                InstanceId::from(instance_id),
                BindingId::from(binding_id),
                query,
                ctx,
            )
            .await
            .map_err(broker_error(op))?;
        if let FetchBindingOutcome::Found(resource) = &mut outcome {
            resource.shape_for_version(negotiated.effective);
        }
        Ok(json_response(outcome.status(), &outcome))
    }
    .await;
    finish(negotiated, reply)
}

// ---------------------------------------------------------------------------------------------
// Unknown routes and methods

/// Any path under `/v2` that is not an OSB endpoint.
pub(crate) async fn not_found(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let negotiated = negotiated(&shared, &request);
    Rejection::described(
        StatusCode::NOT_FOUND,
        format!(
            "There is no OSB endpoint at {} {}; the endpoints are /v2/catalog and /v2/service_instances/{{instance_id}}[/last_operation | /service_bindings/{{binding_id}}[/last_operation]].",
            request.method(),
            request.uri().path()
        ),
    )
    .for_version(negotiated.effective)
    .into_response()
}

/// A method the endpoint does not take (axum adds the `Allow` header).
pub(crate) async fn method_not_allowed(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Response {
    let negotiated = negotiated(&shared, &request);
    Rejection::described(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}; the Allow header lists the methods this endpoint takes.",
            request.method(),
            request.uri().path()
        ),
    )
    .for_version(negotiated.effective)
    .into_response()
}
