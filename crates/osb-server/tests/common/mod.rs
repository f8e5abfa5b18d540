//! A recording mock broker whose answers depend on the instance id, and request helpers.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use osb_server::types::{
    Accepted, AsyncOperation, AsyncPermit, BindOutcome, BindingId, BindingLastOperationQuery,
    Catalog, DeleteOutcome, DeprovisionQuery, FetchBindingOutcome, FetchBindingQuery,
    FetchInstanceOutcome, FetchInstanceQuery, InstanceId, InstanceLastOperationQuery,
    LastOperation, LastOperationOutcome, LastOperationResource, LastOperationState, Operation,
    ProvisionOutcome, RetryAfter, ServiceBindingEndpoint, ServiceBindingRequest,
    ServiceBindingResource, ServiceBindingResponse, ServiceInstanceAsyncOperation,
    ServiceInstanceMetadata, ServiceInstanceProvisionRequest, ServiceInstanceProvisionResponse,
    ServiceInstanceResource, ServiceInstanceUpdateRequest, ServiceInstanceUpdateResponse,
    UnbindQuery, UpdateOutcome,
};
use osb_server::{Broker, BrokerBuilder, BrokerError, RequestContext, ServiceBroker, async_trait};
use serde::Serialize;
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub const SVC: &str = "svc-1";
pub const SMALL: &str = "plan-small";
pub const LARGE: &str = "plan-large";
pub const NOBIND: &str = "plan-nobind";
pub const OTHER_SVC: &str = "svc-2";
pub const OTHER_PLAN: &str = "plan-other";
pub const USER: &str = "platform";
pub const PASS: &str = "s3cret";
/// A recognizable secret in the credentials of a `rich` bind reply.
pub const CREDENTIAL_SECRET: &str = "credential-secret-51";

pub fn schema(properties: Value) -> Value {
    json!({"parameters": {"$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object", "properties": properties}})
}

/// `svc-1` (bindable, retrievable, plans small/large/nobind) and `svc-2` (not bindable, not
/// retrievable).
pub fn catalog() -> Catalog {
    let size = json!({"size": {"type": "integer", "minimum": 1}});
    serde_json::from_value(json!({"services": [
        {"id": SVC, "name": "svc", "description": "A service", "bindable": true,
         "instances_retrievable": true, "bindings_retrievable": true, "allow_context_updates": true,
         "x-team": "blue",
         "plans": [
            {"id": SMALL, "name": "small", "description": "Small",
             "maintenance_info": {"version": "1.0.0", "description": "first"}},
            {"id": LARGE, "name": "large", "description": "Large", "plan_updateable": true,
             "binding_rotatable": true, "maximum_polling_duration": 60,
             "schemas": {"service_instance": {"create": schema(size.clone()), "update": schema(size)},
                         "service_binding": {"create": schema(json!({"role": {"enum": ["r", "w"]}}))}}},
            {"id": NOBIND, "name": "nobind", "description": "No bindings", "bindable": false}
         ]},
        {"id": OTHER_SVC, "name": "other", "description": "Another service", "bindable": false,
         "plans": [{"id": OTHER_PLAN, "name": "tiny", "description": "Tiny"}]}
    ]}))
    .unwrap()
}

/// One call the broker received.
#[derive(Clone, Debug)]
pub struct Call {
    pub op: Operation,
    pub instance_id: String,
    pub binding_id: Option<String>,
    pub body: Option<Value>,
    pub query: Value,
    pub ctx: RequestContext,
}

impl Call {
    pub fn permit(&self) -> bool {
        self.ctx.async_permit().is_some()
    }
}

/// Answers by the instance id's prefix:
/// `async` (202 with permit, else AsyncRequired), `exists` (200), `conflict` (409), `busy` (422
/// ConcurrencyError), `stale` (422 MaintenanceInfoConflict), `unusable` (422 with usability
/// flags), `app` (RequiresApp), `gone` (410),
/// `missing` (404), `internal` (500), `forged` (Accepted without the request's permit),
/// `longop` (an over-long operation), `slow` (waits 300 ms), `panic` (provision panics), `unavailable` (503), `rich`
/// (bodies with fields of every version and extensions; a bind's credentials hold
/// [`CREDENTIAL_SECRET`]), `retry` (in progress, Retry-After 7), `nullurl` / `emptyurl` (update
/// replies, sync or with `async` after it, whose `dashboard_url` is `null` / `""` and whose
/// operation is `null`), `badexpiry` / `laterenew` (bind and fetch-binding replies whose
/// `expires_at` is no timestamp / whose `renew_before` is after it);
/// anything else succeeds synchronously.
#[derive(Clone, Default)]
pub struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Recorder {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn last(&self) -> Call {
        self.calls().pop().expect("the broker was called")
    }

    fn record<Q: Serialize, B: Serialize>(
        &self,
        op: Operation,
        instance_id: &InstanceId,
        binding_id: Option<&BindingId>,
        body: Option<&B>,
        query: &Q,
        ctx: &RequestContext,
    ) {
        self.calls.lock().unwrap().push(Call {
            op,
            instance_id: instance_id.to_string(),
            binding_id: binding_id.map(ToString::to_string),
            body: body.map(|b| serde_json::to_value(b).unwrap()),
            query: serde_json::to_value(query).unwrap(),
            ctx: ctx.clone(),
        });
    }
}

fn forged() -> AsyncPermit {
    AsyncPermit::from_accepts_incomplete(Some(true)).unwrap()
}

fn common_errors(id: &str) -> Result<(), BrokerError> {
    let err = if id.starts_with("conflict") {
        BrokerError::conflict("exists with other attributes")
    } else if id.starts_with("busy") {
        BrokerError::concurrency_error("another operation is running")
    } else if id.starts_with("stale") {
        BrokerError::maintenance_info_conflict("maintenance_info 0.9.0 is outdated")
    } else if id.starts_with("unusable") {
        BrokerError::unprocessable("cannot do that")
            .with_instance_usable(false)
            .with_update_repeatable(false)
    } else if id.starts_with("app") {
        BrokerError::requires_app()
    } else if id.starts_with("internal") {
        BrokerError::internal("database password hunter2 rejected")
    } else if id.starts_with("unavailable") {
        BrokerError::failed(StatusCode::SERVICE_UNAVAILABLE, "backend down")
            .with_instance_usable(true)
    } else {
        return Ok(());
    };
    Err(err)
}

async fn maybe_slow(id: &str) {
    if id.starts_with("slow") {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn rich_metadata() -> ServiceInstanceMetadata {
    let mut labels = serde_json::Map::new();
    labels.insert("team".into(), json!("blue"));
    let mut attributes = serde_json::Map::new();
    attributes.insert("tier".into(), json!("gold"));
    ServiceInstanceMetadata::new()
        .with_labels(labels)
        .with_attributes(attributes)
}

/// A bind reply with fields of 2.14 (credentials), 2.15 (endpoints), 2.16 (metadata.expires_at),
/// 2.17 (metadata.renew_before) and an extension field.
fn rich_binding(creds: serde_json::Map<String, Value>) -> ServiceBindingResponse {
    ServiceBindingResponse::new()
        .with_credentials(creds)
        .with_endpoints([ServiceBindingEndpoint::new(
            "db.internal",
            ["5432".to_string()],
        )])
        .with_metadata(
            osb_server::types::ServiceBindingMetadata::new()
                .with_expires_at("2030-01-01T00:00:00.0Z")
                .with_renew_before("2029-12-01T00:00:00.0Z"),
        )
        .with_extra("x-extension", "kept")
}

fn instance_async(id: &str, permit: AsyncPermit) -> ProvisionOutcome {
    let op = if id.starts_with("longop") {
        "x".repeat(10_001)
    } else {
        format!("op-{id}")
    };
    let mut body = ServiceInstanceAsyncOperation::new().with_operation(op);
    if id.contains("rich") {
        body = body
            .with_metadata(rich_metadata())
            .with_dashboard_url_null();
    }
    ProvisionOutcome::Accepted(Accepted::new(permit, body))
}

fn async_op(id: &str, permit: AsyncPermit) -> Accepted<AsyncOperation> {
    let op = if id.starts_with("longop") {
        "x".repeat(10_001)
    } else {
        format!("op-{id}")
    };
    Accepted::new(permit, AsyncOperation::new().with_operation(op))
}

#[async_trait]
impl ServiceBroker for Recorder {
    async fn catalog(&self) -> Result<Catalog, BrokerError> {
        Ok(catalog())
    }

    async fn provision(
        &self,
        iid: InstanceId,
        req: ServiceInstanceProvisionRequest,
        ctx: RequestContext,
    ) -> Result<ProvisionOutcome, BrokerError> {
        self.record(
            Operation::Provision,
            &iid,
            None,
            Some(&req),
            &json!({}),
            &ctx,
        );
        let id = iid.as_str();
        maybe_slow(id).await;
        assert!(!id.starts_with("panic"), "a bug in the broker");
        common_errors(id)?;
        if id.starts_with("forged") || id.starts_with("longop") {
            return Ok(instance_async(id, forged()));
        }
        if id.starts_with("async") {
            let permit = ctx.async_permit().ok_or_else(BrokerError::async_required)?;
            return Ok(instance_async(id, permit));
        }
        let mut body = ServiceInstanceProvisionResponse::new().with_dashboard_url("https://dash");
        if id.starts_with("rich") {
            body = body
                .with_metadata(rich_metadata())
                .with_extra("x-extension", "kept");
        }
        if id.starts_with("exists") {
            return Ok(ProvisionOutcome::AlreadyExists(body));
        }
        Ok(ProvisionOutcome::Created(body))
    }

    async fn update(
        &self,
        iid: InstanceId,
        req: ServiceInstanceUpdateRequest,
        ctx: RequestContext,
    ) -> Result<UpdateOutcome, BrokerError> {
        self.record(Operation::Update, &iid, None, Some(&req), &json!({}), &ctx);
        let id = iid.as_str();
        common_errors(id)?;
        if let Some(rest) = id
            .strip_prefix("nullurl")
            .or_else(|| id.strip_prefix("emptyurl"))
        {
            let url = id.starts_with("emptyurl").then(String::new);
            if rest.starts_with("async") {
                let permit = ctx.async_permit().ok_or_else(BrokerError::async_required)?;
                let mut body = ServiceInstanceAsyncOperation::new();
                body.dashboard_url = Some(url);
                body.operation = Some(None);
                return Ok(UpdateOutcome::Accepted(Accepted::new(permit, body)));
            }
            let mut body = ServiceInstanceUpdateResponse::new();
            body.dashboard_url = Some(url);
            return Ok(UpdateOutcome::Updated(body));
        }
        if id.starts_with("async") || id.starts_with("forged") {
            let permit = match id.starts_with("forged") {
                true => forged(),
                false => ctx.async_permit().ok_or_else(BrokerError::async_required)?,
            };
            let body = ServiceInstanceAsyncOperation::new().with_operation(format!("op-{id}"));
            return Ok(UpdateOutcome::Accepted(Accepted::new(permit, body)));
        }
        Ok(UpdateOutcome::Updated(ServiceInstanceUpdateResponse::new()))
    }

    async fn deprovision(
        &self,
        iid: InstanceId,
        query: DeprovisionQuery,
        ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        self.record(
            Operation::Deprovision,
            &iid,
            None,
            None::<&()>,
            &query,
            &ctx,
        );
        delete(iid.as_str(), &ctx)
    }

    async fn instance_last_operation(
        &self,
        iid: InstanceId,
        query: InstanceLastOperationQuery,
        ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        self.record(
            Operation::InstanceLastOperation,
            &iid,
            None,
            None::<&()>,
            &query,
            &ctx,
        );
        last_operation(iid.as_str())
    }

    async fn fetch_instance(
        &self,
        iid: InstanceId,
        query: FetchInstanceQuery,
        ctx: RequestContext,
    ) -> Result<FetchInstanceOutcome, BrokerError> {
        self.record(
            Operation::FetchInstance,
            &iid,
            None,
            None::<&()>,
            &query,
            &ctx,
        );
        let id = iid.as_str();
        common_errors(id)?;
        if id.starts_with("missing") {
            return Ok(FetchInstanceOutcome::NotFound);
        }
        let mut found = ServiceInstanceResource::new()
            .with_service_id(SVC)
            .with_plan_id(SMALL);
        if id.starts_with("rich") {
            found = found
                .with_metadata(rich_metadata())
                .with_maintenance_info(osb_server::types::MaintenanceInfo::new("1.0.0"));
        }
        Ok(FetchInstanceOutcome::Found(found))
    }

    async fn bind(
        &self,
        iid: InstanceId,
        bid: BindingId,
        req: ServiceBindingRequest,
        ctx: RequestContext,
    ) -> Result<BindOutcome, BrokerError> {
        self.record(
            Operation::Bind,
            &iid,
            Some(&bid),
            Some(&req),
            &json!({}),
            &ctx,
        );
        let id = iid.as_str();
        common_errors(id)?;
        if id.starts_with("gone") {
            return Err(BrokerError::gone());
        }
        if id.starts_with("forged") || id.starts_with("longop") {
            return Ok(BindOutcome::Accepted(async_op(id, forged())));
        }
        if id.starts_with("async") {
            let permit = ctx.async_permit().ok_or_else(BrokerError::async_required)?;
            return Ok(BindOutcome::Accepted(async_op(id, permit)));
        }
        let mut creds = serde_json::Map::new();
        if id.starts_with("rich") {
            creds.insert("username".into(), json!("app-user"));
            creds.insert("password".into(), json!(CREDENTIAL_SECRET));
            return Ok(BindOutcome::Created(rich_binding(creds)));
        }
        creds.insert("password".into(), json!("pw"));
        let mut body = ServiceBindingResponse::new().with_credentials(creds);
        if let Some(metadata) = broken_expiry(id) {
            body = body.with_metadata(metadata);
        }
        if id.starts_with("exists") {
            return Ok(BindOutcome::AlreadyExists(body));
        }
        Ok(BindOutcome::Created(body))
    }

    async fn unbind(
        &self,
        iid: InstanceId,
        bid: BindingId,
        query: UnbindQuery,
        ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        self.record(
            Operation::Unbind,
            &iid,
            Some(&bid),
            None::<&()>,
            &query,
            &ctx,
        );
        delete(iid.as_str(), &ctx)
    }

    async fn binding_last_operation(
        &self,
        iid: InstanceId,
        bid: BindingId,
        query: BindingLastOperationQuery,
        ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        self.record(
            Operation::BindingLastOperation,
            &iid,
            Some(&bid),
            None::<&()>,
            &query,
            &ctx,
        );
        last_operation(iid.as_str())
    }

    async fn fetch_binding(
        &self,
        iid: InstanceId,
        bid: BindingId,
        query: FetchBindingQuery,
        ctx: RequestContext,
    ) -> Result<FetchBindingOutcome, BrokerError> {
        self.record(
            Operation::FetchBinding,
            &iid,
            Some(&bid),
            None::<&()>,
            &query,
            &ctx,
        );
        let id = iid.as_str();
        common_errors(id)?;
        if id.starts_with("missing") {
            return Ok(FetchBindingOutcome::NotFound);
        }
        let mut found = ServiceBindingResource::new();
        if let Some(metadata) = broken_expiry(id) {
            found = found.with_metadata(metadata);
        }
        if id.starts_with("rich") {
            found = found.with_metadata(
                osb_server::types::ServiceBindingMetadata::new()
                    .with_expires_at("2030-01-01T00:00:00.0Z")
                    .with_renew_before("2029-12-01T00:00:00.0Z"),
            );
        }
        Ok(FetchBindingOutcome::Found(found))
    }
}

/// The binding metadata of the `badexpiry` and `laterenew` ids.
fn broken_expiry(id: &str) -> Option<osb_server::types::ServiceBindingMetadata> {
    let metadata = osb_server::types::ServiceBindingMetadata::new();
    if id.starts_with("badexpiry") {
        Some(metadata.with_expires_at("next tuesday"))
    } else if id.starts_with("laterenew") {
        Some(
            metadata
                .with_expires_at("2030-01-01T00:00:00.0Z")
                .with_renew_before("2030-01-02T00:00:00.0Z"),
        )
    } else {
        None
    }
}

fn delete(id: &str, ctx: &RequestContext) -> Result<DeleteOutcome, BrokerError> {
    common_errors(id)?;
    if id.starts_with("gone") {
        return Ok(DeleteOutcome::Gone);
    }
    if id.starts_with("forged") || id.starts_with("longop") {
        return Ok(DeleteOutcome::Accepted(async_op(id, forged())));
    }
    if id.starts_with("async") {
        let permit = ctx.async_permit().ok_or_else(BrokerError::async_required)?;
        return Ok(DeleteOutcome::Accepted(async_op(id, permit)));
    }
    Ok(DeleteOutcome::Deleted)
}

fn last_operation(id: &str) -> Result<LastOperationOutcome, BrokerError> {
    common_errors(id)?;
    if id.starts_with("gone") {
        return Ok(LastOperationOutcome::Gone);
    }
    if id.starts_with("missing") {
        return Ok(LastOperationOutcome::NotFound);
    }
    if id.starts_with("retry") {
        let state =
            LastOperationResource::new(LastOperationState::InProgress).with_description("half way");
        return Ok(LastOperationOutcome::State(
            LastOperation::new(state).with_retry_after(RetryAfter::seconds(7)),
        ));
    }
    let mut state =
        LastOperationResource::new(LastOperationState::Failed).with_description("it broke");
    if id.starts_with("rich") {
        state = state
            .with_instance_usable(false)
            .with_update_repeatable(true);
    } else {
        state.state = LastOperationState::Succeeded;
        state.description = None;
    }
    Ok(LastOperationOutcome::State(LastOperation::new(state)))
}

/// A builder with the recorder and Basic auth `platform:s3cret`.
pub fn builder(recorder: &Recorder) -> BrokerBuilder {
    Broker::builder(recorder.clone()).basic_auth(USER, PASS)
}

pub async fn app(recorder: &Recorder) -> Router {
    builder(recorder).build().await.unwrap()
}

pub fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// A request builder with auth and `X-Broker-API-Version: 2.17`.
pub fn request(method: Method, uri: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", basic(USER, PASS))
        .header("x-broker-api-version", "2.17")
}

pub fn with_json(builder: http::request::Builder, body: &Value) -> Request<Body> {
    builder
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

pub fn empty(builder: http::request::Builder) -> Request<Body> {
    builder.body(Body::empty()).unwrap()
}

/// The reply: status, headers, body parsed as JSON (`Value::Null` when empty).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: bytes::Bytes,
}

impl Reply {
    pub fn description(&self) -> &str {
        self.body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn error(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }
}

pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let raw = response.into_body().collect().await.unwrap().to_bytes();
    let body = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw).unwrap_or_else(|e| {
            panic!(
                "reply body is not JSON ({e}): {}",
                String::from_utf8_lossy(&raw)
            )
        })
    };
    if status.as_u16() >= 400 {
        assert_eq!(
            headers.get("content-type").map(|v| v.to_str().unwrap()),
            Some("application/json"),
            "error replies are JSON"
        );
        assert!(body.is_object(), "error replies are JSON objects: {body}");
    }
    Reply {
        status,
        headers,
        body,
        raw,
    }
}

/// A valid provision body for `plan`.
pub fn provision_body(plan: &str) -> Value {
    json!({"service_id": SVC, "plan_id": plan, "organization_guid": "org", "space_guid": "space"})
}

pub fn bind_body(plan: &str) -> Value {
    json!({"service_id": SVC, "plan_id": plan})
}

/// Paths of each endpoint for instance `iid` (binding `b-1`).
pub fn instance_path(iid: &str) -> String {
    format!("/v2/service_instances/{iid}")
}

pub fn binding_path(iid: &str) -> String {
    format!("/v2/service_instances/{iid}/service_bindings/b-1")
}

/// A valid request for `op` on instance `iid`, with the given version (None: no header) and
/// `accepts_incomplete=true` on the operations that take it.
pub fn valid_request(
    op: Operation,
    iid: &str,
    version: Option<&str>,
    auth: Option<&str>,
) -> Request<Body> {
    let d = format!("service_id={SVC}&plan_id={SMALL}");
    let (method, uri, body) = match op {
        Operation::Catalog => (Method::GET, "/v2/catalog".to_string(), None),
        Operation::Provision => (
            Method::PUT,
            format!("{}?accepts_incomplete=true", instance_path(iid)),
            Some(provision_body(SMALL)),
        ),
        Operation::Update => (
            Method::PATCH,
            format!("{}?accepts_incomplete=true", instance_path(iid)),
            Some(json!({"service_id": SVC, "parameters": {"a": 1}})),
        ),
        Operation::Deprovision => (
            Method::DELETE,
            format!("{}?{d}&accepts_incomplete=true", instance_path(iid)),
            None,
        ),
        Operation::InstanceLastOperation => (
            Method::GET,
            format!("{}/last_operation?{d}&operation=op-1", instance_path(iid)),
            None,
        ),
        Operation::FetchInstance => (Method::GET, format!("{}?{d}", instance_path(iid)), None),
        Operation::Bind => (
            Method::PUT,
            format!("{}?accepts_incomplete=true", binding_path(iid)),
            Some(bind_body(SMALL)),
        ),
        Operation::Unbind => (
            Method::DELETE,
            format!("{}?{d}&accepts_incomplete=true", binding_path(iid)),
            None,
        ),
        Operation::BindingLastOperation => (
            Method::GET,
            format!("{}/last_operation?{d}&operation=op-1", binding_path(iid)),
            None,
        ),
        Operation::FetchBinding => (Method::GET, format!("{}?{d}", binding_path(iid)), None),
    };
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(version) = version {
        builder = builder.header("x-broker-api-version", version);
    }
    if let Some(auth) = auth {
        builder = builder.header("authorization", auth);
    }
    match body {
        Some(body) => with_json(builder, &body),
        None => empty(builder),
    }
}

/// [`valid_request`] with version 2.17 and the right credentials.
pub fn ok_request(op: Operation, iid: &str) -> Request<Body> {
    valid_request(op, iid, Some("2.17"), Some(&basic(USER, PASS)))
}

pub const MUTATING: [Operation; 5] = [
    Operation::Provision,
    Operation::Update,
    Operation::Deprovision,
    Operation::Bind,
    Operation::Unbind,
];
