//! Each platform's request shapes, played through the whole server stack against a broker that
//! keeps state: Cloud Controller, Kubernetes service-catalog and a Crossplane-style platform.
//! Every request is written as the platform sends it, and gets the spec's answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use osb_server::types::{
    Accepted, BindOutcome, BindingId, BindingLastOperationQuery, Catalog, DeleteOutcome,
    DeprovisionQuery, InstanceId, InstanceLastOperationQuery, LastOperation, LastOperationOutcome,
    LastOperationResource, LastOperationState, ProvisionOutcome, ServiceBindingRequest,
    ServiceBindingResponse, ServiceInstanceAsyncOperation, ServiceInstanceProvisionRequest,
    ServiceInstanceProvisionResponse, ServiceInstanceUpdateRequest, ServiceInstanceUpdateResponse,
    UnbindQuery, UpdateOutcome,
};
use osb_server::{Broker, BrokerError, RequestContext, ServiceBroker, async_trait};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const SVC: &str = "1d6e6c8b-4f1a-4bde-9b0e-3f0c1a2b3c4d";
const SYNC: &str = "6a1c0e2f-8b7d-4c5e-a3f1-0b9e8d7c6a5f";
const ASYNC: &str = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
const RETIRED: &str = "3c2b1a09-8f7e-4d6c-b5a4-39281706f5e4";

fn catalog(with_retired: bool) -> Catalog {
    let mut plans = vec![
        json!({"id": SYNC, "name": "sync", "description": "At once"}),
        json!({"id": ASYNC, "name": "async", "description": "Takes a while"}),
    ];
    if with_retired {
        plans.push(json!({"id": RETIRED, "name": "legacy", "description": "Going away"}));
    }
    serde_json::from_value(json!({"services": [{
        "id": SVC, "name": "db", "description": "Databases", "bindable": true,
        "plan_updateable": true, "plans": plans}]}))
    .unwrap()
}

/// What the broker keeps of an instance or a binding.
#[derive(Clone, Debug, PartialEq)]
struct Resource {
    plan: String,
    parameters: Option<Value>,
    context: Option<Value>,
    /// The operation creating it, until a poll finds it done.
    creating: Option<String>,
}

/// A broker that keeps its resources across routers, as a restarted broker keeps its
/// database: idempotent creates (200 / 202 with the same operation / 409), polls and deletes.
#[derive(Clone, Default)]
struct Ledger {
    instances: Arc<Mutex<HashMap<String, Resource>>>,
    bindings: Arc<Mutex<HashMap<(String, String), Resource>>>,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Ledger {
    async fn router(&self, with_retired: bool) -> Router {
        Broker::builder(self.clone())
            .catalog(catalog(with_retired))
            .basic_auth("platform", "secret")
            .build()
            .await
            .unwrap()
    }

    fn note(&self, value: Value) {
        self.requests.lock().unwrap().push(value);
    }
}

#[async_trait]
impl ServiceBroker for Ledger {
    async fn catalog(&self) -> Result<Catalog, BrokerError> {
        Ok(catalog(true))
    }

    async fn provision(
        &self,
        id: InstanceId,
        request: ServiceInstanceProvisionRequest,
        ctx: RequestContext,
    ) -> Result<ProvisionOutcome, BrokerError> {
        self.note(json!({"provision": &request, "cluster_id": request.context.as_ref().and_then(|c| c.cluster_id()),
            "identity": ctx.originating_identity().map(|i| i.platform().to_string())}));
        let wanted = Resource {
            plan: request.plan_id.to_string(),
            parameters: request.parameters.clone().map(Value::Object),
            context: serde_json::to_value(&request.context).ok(),
            creating: None,
        };
        let mut instances = self.instances.lock().unwrap();
        if let Some(existing) = instances.get(id.as_str()) {
            if existing.plan != wanted.plan || existing.parameters != wanted.parameters {
                return Err(BrokerError::conflict("It exists with other attributes."));
            }
            return Ok(match (&existing.creating, ctx.async_permit()) {
                (Some(op), Some(permit)) => ProvisionOutcome::Accepted(Accepted::new(
                    permit,
                    ServiceInstanceAsyncOperation::new().with_operation(op.clone()),
                )),
                (Some(_), None) => return Err(BrokerError::async_required()),
                (None, _) => {
                    ProvisionOutcome::AlreadyExists(ServiceInstanceProvisionResponse::new())
                }
            });
        }
        if request.plan_id.as_str() == ASYNC {
            let permit = ctx.async_permit().ok_or_else(BrokerError::async_required)?;
            let op = format!("create-{id}");
            instances.insert(
                id.to_string(),
                Resource {
                    creating: Some(op.clone()),
                    ..wanted
                },
            );
            return Ok(ProvisionOutcome::Accepted(Accepted::new(
                permit,
                ServiceInstanceAsyncOperation::new().with_operation(op),
            )));
        }
        instances.insert(id.to_string(), wanted);
        Ok(ProvisionOutcome::Created(
            ServiceInstanceProvisionResponse::new()
                .with_dashboard_url(format!("https://dash/{id}")),
        ))
    }

    async fn update(
        &self,
        id: InstanceId,
        request: ServiceInstanceUpdateRequest,
        _ctx: RequestContext,
    ) -> Result<UpdateOutcome, BrokerError> {
        self.note(json!({"update": &request}));
        let mut instances = self.instances.lock().unwrap();
        let Some(instance) = instances.get_mut(id.as_str()) else {
            return Err(BrokerError::bad_request(format!(
                "Instance {id} does not exist."
            )));
        };
        if let Some(plan) = &request.plan_id {
            instance.plan = plan.to_string();
        }
        if let Some(parameters) = request.parameters {
            instance.parameters = Some(Value::Object(parameters));
        }
        Ok(UpdateOutcome::Updated(ServiceInstanceUpdateResponse::new()))
    }

    async fn deprovision(
        &self,
        id: InstanceId,
        query: DeprovisionQuery,
        _ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        self.note(json!({"deprovision": &query}));
        let mut instances = self.instances.lock().unwrap();
        match instances.get(id.as_str()) {
            None => Ok(DeleteOutcome::Gone),
            Some(instance) if instance.plan != query.plan_id.as_str() => Err(
                BrokerError::bad_request("plan_id is not the instance's plan."),
            ),
            Some(_) => {
                instances.remove(id.as_str());
                Ok(DeleteOutcome::Deleted)
            }
        }
    }

    async fn instance_last_operation(
        &self,
        id: InstanceId,
        query: InstanceLastOperationQuery,
        _ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        self.note(json!({"poll": &query}));
        let mut instances = self.instances.lock().unwrap();
        let Some(instance) = instances.get_mut(id.as_str()) else {
            return Ok(LastOperationOutcome::Gone);
        };
        if instance.creating.as_deref() != query.operation.as_deref() {
            return Ok(LastOperationOutcome::NotFound);
        }
        instance.creating = None;
        Ok(LastOperationOutcome::State(LastOperation::new(
            LastOperationResource::new(LastOperationState::Succeeded),
        )))
    }

    async fn bind(
        &self,
        id: InstanceId,
        binding: BindingId,
        request: ServiceBindingRequest,
        _ctx: RequestContext,
    ) -> Result<BindOutcome, BrokerError> {
        self.note(json!({"bind": &request}));
        let plan = match self.instances.lock().unwrap().get(id.as_str()) {
            Some(instance) if instance.creating.is_none() => instance.plan.clone(),
            Some(_) => {
                return Err(BrokerError::concurrency_error(
                    "The instance is being created.",
                ));
            }
            None => {
                return Err(BrokerError::bad_request(format!(
                    "Instance {id} does not exist."
                )));
            }
        };
        let wanted = Resource {
            plan,
            parameters: request.parameters.map(Value::Object),
            context: serde_json::to_value(&request.context).ok(),
            creating: None,
        };
        let mut credentials = serde_json::Map::new();
        credentials.insert("uri".into(), json!(format!("db://{id}/{binding}")));
        let body = ServiceBindingResponse::new().with_credentials(credentials);
        let mut bindings = self.bindings.lock().unwrap();
        let key = (id.to_string(), binding.to_string());
        match bindings.get(&key) {
            Some(existing) if *existing == wanted => Ok(BindOutcome::AlreadyExists(body)),
            Some(_) => Err(BrokerError::conflict(
                "The binding exists with other attributes.",
            )),
            None => {
                bindings.insert(key, wanted);
                Ok(BindOutcome::Created(body))
            }
        }
    }

    async fn unbind(
        &self,
        id: InstanceId,
        binding: BindingId,
        query: UnbindQuery,
        _ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        self.note(json!({"unbind": &query}));
        let removed = self
            .bindings
            .lock()
            .unwrap()
            .remove(&(id.to_string(), binding.to_string()));
        Ok(match removed {
            Some(_) => DeleteOutcome::Deleted,
            None => DeleteOutcome::Gone,
        })
    }

    async fn binding_last_operation(
        &self,
        _id: InstanceId,
        _binding: BindingId,
        _query: BindingLastOperationQuery,
        _ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        Ok(LastOperationOutcome::NotFound)
    }
}

/// One platform: its version header, its originating identity and its extra headers.
struct Platform {
    version: &'static str,
    identity: Option<String>,
}

impl Platform {
    fn cloud_controller() -> Self {
        let user = base64::engine::general_purpose::STANDARD
            .encode(r#"{"user_id":"683ea748-3092-4ff4-b656-39cacc4d5360"}"#);
        Platform {
            version: "2.17",
            identity: Some(format!("cloudfoundry {user}")),
        }
    }

    fn kubernetes() -> Self {
        let user = base64::engine::general_purpose::STANDARD.encode(
            r#"{"username":"duke","uid":"c2dde242-5ce4-11e7-988c-000c2946f14f","groups":["admin","dev"],"extra":{"mydata":["data1"]}}"#,
        );
        Platform {
            version: "2.14",
            identity: Some(format!("kubernetes {user}")),
        }
    }

    fn crossplane() -> Self {
        Platform {
            version: "2.13",
            identity: None,
        }
    }

    async fn send(
        &self,
        app: &Router,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let auth = base64::engine::general_purpose::STANDARD.encode("platform:secret");
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Basic {auth}"))
            .header("x-broker-api-version", self.version)
            .header(
                "x-broker-api-request-identity",
                "e26cea39-8e7a-4b8e-a9c4-0c8b7b5d4a3e",
            );
        if let Some(identity) = &self.identity {
            builder = builder.header("x-broker-api-originating-identity", identity);
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }
}

#[tokio::test]
async fn cloud_controller_provisions_updates_and_deletes_after_the_plan_is_retired() {
    let ledger = Ledger::default();
    let app = ledger.router(true).await;
    let cc = Platform::cloud_controller();
    let iid = "8a5c7f3e-1b2d-4e6f-9a0b-c1d2e3f4a5b6";
    let context = json!({"platform": "cloudfoundry",
        "organization_guid": "org-guid", "organization_name": "acme",
        "space_guid": "space-guid", "space_name": "dev", "instance_name": "my-db",
        "organization_annotations": {"company.com/cost-center": "42"}});
    let provision = json!({"service_id": SVC, "plan_id": RETIRED,
        "organization_guid": "org-guid", "space_guid": "space-guid",
        "context": context, "parameters": {"size": 1}});
    let uri = format!("/v2/service_instances/{iid}?accepts_incomplete=true");
    let (status, body) = cc.send(&app, Method::PUT, &uri, Some(provision)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["dashboard_url"], format!("https://dash/{iid}"));

    // The broker is restarted with the plan retired from its catalog.
    let app = ledger.router(false).await;
    // Cloud Controller always sends plan_id and previous_values with an update.
    let update = json!({"service_id": SVC, "plan_id": RETIRED, "parameters": {"size": 2},
        "context": context,
        "previous_values": {"service_id": SVC, "plan_id": RETIRED,
            "organization_id": "org-guid", "space_id": "space-guid"}});
    let (status, body) = cc
        .send(
            &app,
            Method::PATCH,
            &format!("/v2/service_instances/{iid}?accepts_incomplete=true"),
            Some(update),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({}));
    // Moving off the retired plan chooses a plan the catalog has.
    let (status, body) = cc
        .send(
            &app,
            Method::PATCH,
            &format!("/v2/service_instances/{iid}"),
            Some(
                json!({"service_id": SVC, "plan_id": RETIRED.replace('3', "4"),
                "previous_values": {"plan_id": RETIRED}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = cc
        .send(
            &app,
            Method::DELETE,
            &format!(
                "/v2/service_instances/{iid}?accepts_incomplete=true&service_id={SVC}&plan_id={RETIRED}"
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({}));
    let (status, _) = cc
        .send(
            &app,
            Method::DELETE,
            &format!("/v2/service_instances/{iid}?service_id={SVC}&plan_id={RETIRED}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::GONE);
    assert!(ledger.instances.lock().unwrap().is_empty());
    let requests = ledger.requests.lock().unwrap();
    assert_eq!(requests[0]["identity"], "cloudfoundry");
    assert_eq!(requests[1]["update"]["parameters"], json!({"size": 2}));
}

#[tokio::test]
async fn kubernetes_service_catalog_repeats_async_provisions_and_binds_with_instance_name() {
    let ledger = Ledger::default();
    let app = ledger.router(true).await;
    let k8s = Platform::kubernetes();
    let iid = "2b3c4d5e-6f70-4812-93a4-b5c6d7e8f901";
    let context = json!({"platform": "kubernetes", "namespace": "shop", "clusterid": "c-7"});
    let provision = json!({"service_id": SVC, "plan_id": ASYNC,
        "organization_guid": "c-7", "space_guid": "shop", "context": context});
    let uri = format!("/v2/service_instances/{iid}?accepts_incomplete=true");
    let (status, first) = k8s
        .send(&app, Method::PUT, &uri, Some(provision.clone()))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let operation = first["operation"].as_str().unwrap().to_string();
    // The controller retries the identical PUT: the same 202 and operation, no second instance.
    let (status, again) = k8s
        .send(&app, Method::PUT, &uri, Some(provision.clone()))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again, first);
    assert_eq!(ledger.instances.lock().unwrap().len(), 1);
    // A different request for the same id conflicts.
    let mut other = provision;
    other["parameters"] = json!({"size": 3});
    let (status, body) = k8s.send(&app, Method::PUT, &uri, Some(other)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, body) = k8s
        .send(
            &app,
            Method::GET,
            &format!(
                "/v2/service_instances/{iid}/last_operation?operation={operation}&service_id={SVC}&plan_id={ASYNC}"
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "succeeded");

    let binding =
        format!("/v2/service_instances/{iid}/service_bindings/b-1?accepts_incomplete=true");
    let bind = json!({"service_id": SVC, "plan_id": ASYNC,
        "context": {"platform": "kubernetes", "namespace": "shop", "clusterid": "c-7",
                    "instance_name": "orders-db"},
        "bind_resource": {"app_guid": "orders"}});
    let (status, body) = k8s
        .send(&app, Method::PUT, &binding, Some(bind.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["credentials"]["uri"], format!("db://{iid}/b-1"));
    let (status, body) = k8s.send(&app, Method::PUT, &binding, Some(bind)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stored = ledger.bindings.lock().unwrap()[&(iid.to_string(), "b-1".to_string())].clone();
    assert_eq!(stored.context.unwrap()["instance_name"], "orders-db");

    let (status, body) = k8s
        .send(
            &app,
            Method::DELETE,
            &format!(
                "/v2/service_instances/{iid}/service_bindings/b-1?accepts_incomplete=true&service_id={SVC}&plan_id={ASYNC}"
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = k8s
        .send(
            &app,
            Method::DELETE,
            &format!(
                "/v2/service_instances/{iid}?accepts_incomplete=true&service_id={SVC}&plan_id={ASYNC}"
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ledger.requests.lock().unwrap()[0]["identity"], "kubernetes");
}

#[tokio::test]
async fn a_crossplane_style_platform_on_2_13_sends_cluster_id() {
    let ledger = Ledger::default();
    let app = ledger.router(true).await;
    let platform = Platform::crossplane();
    let iid = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918";
    let provision = json!({"service_id": SVC, "plan_id": SYNC,
        "organization_guid": "unused", "space_guid": "unused",
        "context": {"platform": "kubernetes", "namespace": "crossplane-system",
                    "cluster_id": "east-1"}});
    let (status, body) = platform
        .send(
            &app,
            Method::PUT,
            &format!("/v2/service_instances/{iid}?accepts_incomplete=True"),
            Some(provision),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = ledger.requests.lock().unwrap()[0].clone();
    assert_eq!(first["cluster_id"], "east-1");
    assert_eq!(first["identity"], Value::Null);
    // On 2.13 a bind is synchronous whatever accepts_incomplete says.
    let (status, body) = platform
        .send(
            &app,
            Method::PUT,
            &format!("/v2/service_instances/{iid}/service_bindings/xb-1?accepts_incomplete=1"),
            Some(json!({"service_id": SVC, "plan_id": SYNC})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = platform
        .send(
            &app,
            Method::DELETE,
            &format!("/v2/service_instances/{iid}?service_id={SVC}&plan_id={SYNC}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
