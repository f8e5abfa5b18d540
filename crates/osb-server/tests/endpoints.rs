//! Every endpoint: success paths (sync and async), every status code the spec lists, query
//! parameters and context passed through, error mapping.
mod common;

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use common::*;
use http::{Method, Request, StatusCode};
use osb_server::types::{ApiVersion, Operation, OriginatingIdentity};
use osb_server::{Broker, BrokerError, RequestContext, ServiceBroker, VersionPolicy, async_trait};
use serde_json::json;

struct Case {
    op: Operation,
    status: u16,
    /// The OSB `error` code the reply must carry (`None`: the reply has no `error` field).
    error: Option<&'static str>,
    app: Router,
    request: Request<Body>,
}

fn case(op: Operation, status: u16, app: &Router, request: Request<Body>) -> Case {
    Case {
        op,
        status,
        error: None,
        app: app.clone(),
        request,
    }
}

impl Case {
    /// Expects the reply's `error` field to be `code`.
    fn code(mut self, code: &'static str) -> Case {
        self.error = Some(code);
        self
    }
}

/// [`ok_request`] with `accepts_incomplete=false`, for the operations that take it.
fn sync_request(op: Operation, iid: &str) -> Request<Body> {
    let mut req = ok_request(op, iid);
    let uri = req
        .uri()
        .to_string()
        .replace("accepts_incomplete=true", "accepts_incomplete=false");
    assert!(
        uri.contains("accepts_incomplete=false"),
        "{op:?} takes no accepts_incomplete"
    );
    *req.uri_mut() = uri.parse().unwrap();
    req
}

/// A body whose `maintenance_info.version` differs from plan `small`'s `1.0.0`.
fn outdated_maintenance(mut body: serde_json::Value) -> serde_json::Value {
    body["maintenance_info"] = json!({"version": "0.9.0"});
    body
}

fn get(uri: &str) -> Request<Body> {
    empty(request(Method::GET, uri))
}

fn delete(uri: &str) -> Request<Body> {
    empty(request(Method::DELETE, uri))
}

#[tokio::test]
async fn every_status_code_the_spec_lists_is_produced() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let lenient = builder(&recorder)
        .version_policy(VersionPolicy::new().missing_header_status(StatusCode::BAD_REQUEST))
        .build()
        .await
        .unwrap();
    let catalog_etag = send(&app, ok_request(Operation::Catalog, "")).await.headers["etag"].clone();
    let auth = basic(USER, PASS);
    let q = format!("service_id={SVC}&plan_id={SMALL}");
    use Operation::*;
    let mut cases = vec![
        case(Catalog, 200, &app, ok_request(Catalog, "")),
        case(
            Catalog,
            304,
            &app,
            empty(request(Method::GET, "/v2/catalog").header("if-none-match", catalog_etag)),
        ),
        case(
            Catalog,
            400,
            &lenient,
            valid_request(Catalog, "", None, Some(&auth)),
        ),
        // fetch instance
        case(FetchInstance, 200, &app, ok_request(FetchInstance, "ok")),
        case(
            FetchInstance,
            400,
            &app,
            get(&format!("/v2/service_instances/x?service_id={OTHER_SVC}")),
        ),
        case(
            FetchInstance,
            404,
            &app,
            ok_request(FetchInstance, "missing"),
        ),
        case(FetchInstance, 422, &app, ok_request(FetchInstance, "busy")).code("ConcurrencyError"),
        // provision
        case(Provision, 200, &app, ok_request(Provision, "exists")),
        case(Provision, 201, &app, ok_request(Provision, "ok")),
        case(Provision, 202, &app, ok_request(Provision, "async")),
        case(
            Provision,
            400,
            &app,
            with_json(
                request(Method::PUT, "/v2/service_instances/x"),
                &provision_body("nope"),
            ),
        ),
        case(Provision, 409, &app, ok_request(Provision, "conflict")),
        case(
            Provision,
            422,
            &app,
            with_json(
                request(Method::PUT, "/v2/service_instances/async"),
                &provision_body(SMALL),
            ),
        )
        .code("AsyncRequired"),
        case(Provision, 422, &app, sync_request(Provision, "async")).code("AsyncRequired"),
        case(Provision, 422, &app, ok_request(Provision, "busy")).code("ConcurrencyError"),
        case(Provision, 422, &app, ok_request(Provision, "stale")).code("MaintenanceInfoConflict"),
        // The catalog guard: plan `small` is at maintenance_info 1.0.0.
        case(
            Provision,
            422,
            &app,
            with_json(
                request(Method::PUT, "/v2/service_instances/ok"),
                &outdated_maintenance(provision_body(SMALL)),
            ),
        )
        .code("MaintenanceInfoConflict"),
        // update
        case(Update, 200, &app, ok_request(Update, "ok")),
        case(Update, 202, &app, ok_request(Update, "async")),
        case(
            Update,
            400,
            &app,
            with_json(
                request(Method::PATCH, "/v2/service_instances/x"),
                &json!({}),
            ),
        ),
        // A plain refusal has no code.
        case(Update, 422, &app, ok_request(Update, "unusable")),
        case(Update, 422, &app, sync_request(Update, "async")).code("AsyncRequired"),
        case(Update, 422, &app, ok_request(Update, "busy")).code("ConcurrencyError"),
        case(Update, 422, &app, ok_request(Update, "stale")).code("MaintenanceInfoConflict"),
        case(
            Update,
            422,
            &app,
            with_json(
                request(Method::PATCH, "/v2/service_instances/ok"),
                &outdated_maintenance(json!({"service_id": SVC, "plan_id": SMALL})),
            ),
        )
        .code("MaintenanceInfoConflict"),
        // deprovision
        case(Deprovision, 200, &app, ok_request(Deprovision, "ok")),
        case(Deprovision, 202, &app, ok_request(Deprovision, "async")),
        case(
            Deprovision,
            400,
            &app,
            delete(&format!("/v2/service_instances/x?service_id={SVC}")),
        ),
        case(Deprovision, 410, &app, ok_request(Deprovision, "gone")),
        case(Deprovision, 422, &app, ok_request(Deprovision, "busy")).code("ConcurrencyError"),
        case(Deprovision, 422, &app, sync_request(Deprovision, "async")).code("AsyncRequired"),
        // instance last operation
        case(
            InstanceLastOperation,
            200,
            &app,
            ok_request(InstanceLastOperation, "ok"),
        ),
        case(
            InstanceLastOperation,
            400,
            &app,
            get("/v2/service_instances/x/last_operation?operation="),
        ),
        case(
            InstanceLastOperation,
            404,
            &app,
            ok_request(InstanceLastOperation, "missing"),
        ),
        case(
            InstanceLastOperation,
            410,
            &app,
            ok_request(InstanceLastOperation, "gone"),
        ),
        // fetch binding
        case(FetchBinding, 200, &app, ok_request(FetchBinding, "ok")),
        case(
            FetchBinding,
            400,
            &app,
            get(&format!(
                "/v2/service_instances/x/service_bindings/b?service_id={OTHER_SVC}"
            )),
        ),
        case(FetchBinding, 404, &app, ok_request(FetchBinding, "missing")),
        // bind
        case(Bind, 200, &app, ok_request(Bind, "exists")),
        case(Bind, 201, &app, ok_request(Bind, "ok")),
        case(Bind, 202, &app, ok_request(Bind, "async")),
        case(
            Bind,
            400,
            &app,
            with_json(request(Method::PUT, &binding_path("x")), &bind_body(NOBIND)),
        ),
        case(Bind, 409, &app, ok_request(Bind, "conflict")),
        case(Bind, 410, &app, ok_request(Bind, "gone")),
        case(Bind, 422, &app, ok_request(Bind, "app")).code("RequiresApp"),
        case(Bind, 422, &app, ok_request(Bind, "busy")).code("ConcurrencyError"),
        case(Bind, 422, &app, sync_request(Bind, "async")).code("AsyncRequired"),
        // unbind
        case(Unbind, 200, &app, ok_request(Unbind, "ok")),
        case(Unbind, 202, &app, ok_request(Unbind, "async")),
        case(
            Unbind,
            400,
            &app,
            delete(&format!("{}?plan_id={SMALL}", binding_path("x"))),
        ),
        case(Unbind, 410, &app, ok_request(Unbind, "gone")),
        case(Unbind, 422, &app, ok_request(Unbind, "busy")).code("ConcurrencyError"),
        case(Unbind, 422, &app, sync_request(Unbind, "async")).code("AsyncRequired"),
        // binding last operation
        case(
            BindingLastOperation,
            200,
            &app,
            ok_request(BindingLastOperation, "ok"),
        ),
        case(
            BindingLastOperation,
            400,
            &app,
            get(&format!(
                "{}/last_operation?{q}&operation=",
                binding_path("x")
            )),
        ),
        case(
            BindingLastOperation,
            404,
            &app,
            ok_request(BindingLastOperation, "missing"),
        ),
        case(
            BindingLastOperation,
            410,
            &app,
            ok_request(BindingLastOperation, "gone"),
        ),
    ];
    for op in Operation::ALL {
        cases.push(case(
            op,
            401,
            &app,
            valid_request(op, "ok", Some("2.17"), None),
        ));
        cases.push(case(
            op,
            412,
            &app,
            valid_request(op, "ok", None, Some(&auth)),
        ));
    }
    let mut covered = BTreeSet::new();
    for Case {
        op,
        status,
        error,
        app,
        request,
    } in cases
    {
        let what = format!("{} {} {}", op.method(), request.uri(), status);
        let reply = send(&app, request).await;
        assert_eq!(reply.status.as_u16(), status, "{what}: {}", reply.body);
        // 404 and 410 outcomes carry `{}`; every other error a description.
        if status >= 400 && status != 404 && status != 410 {
            assert!(!reply.description().is_empty(), "{what}: description");
        }
        // The spec's error codes belong to 422 replies; every other reply carries none.
        assert_eq!(reply.error(), error, "{what}: error code in {}", reply.body);
        covered.insert((op, status));
    }
    for op in Operation::ALL {
        for &code in op.status_codes() {
            assert!(covered.contains(&(op, code)), "{op:?} {code} is not tested");
        }
    }
}

#[tokio::test]
async fn provision_passes_the_request_and_context_through() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let mut body = provision_body(SMALL);
    body["x-vendor"] = json!({"keep": true});
    body["context"] =
        json!({"platform": "cloudfoundry", "organization_guid": "o", "space_guid": "s"});
    body["parameters"] = json!({"nested": {"deep": [1, 2]}});
    let identity = "cloudfoundry eyJ1c2VyX2lkIjoidXNlci0xIn0=";
    let req = request(Method::PUT, "/v2/service_instances/ok-1")
        .header("x-broker-api-originating-identity", identity)
        .header("x-broker-api-request-identity", "req-42")
        .header("x-api-info-location", "api.example.com/v2/info")
        .header("x-broker-api-version", "2.16");
    let mut req = with_json(req, &body);
    req.headers_mut()
        .insert("x-broker-api-version", "2.16".parse().unwrap());
    let reply = send(&app, req).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body, json!({"dashboard_url": "https://dash"}));
    let call = recorder.last();
    assert_eq!(call.op, Operation::Provision);
    assert_eq!(call.instance_id, "ok-1");
    assert_eq!(
        call.body.as_ref().unwrap()["x-vendor"],
        json!({"keep": true})
    );
    assert_eq!(
        call.body.as_ref().unwrap()["parameters"],
        json!({"nested": {"deep": [1, 2]}})
    );
    assert!(!call.permit(), "no accepts_incomplete, no permit");
    let ctx = &call.ctx;
    assert_eq!(ctx.api_version(), ApiVersion::V2_16);
    assert_eq!(ctx.service().unwrap().id, SVC);
    assert_eq!(ctx.plan().unwrap().name, "small");
    assert_eq!(ctx.request_identity(), Some("req-42"));
    assert_eq!(ctx.api_info_location(), Some("api.example.com/v2/info"));
    let Some(OriginatingIdentity::CloudFoundry(cf)) = ctx.originating_identity() else {
        panic!(
            "expected a Cloud Foundry identity: {:?}",
            ctx.originating_identity()
        )
    };
    assert_eq!(cf.user_id, "user-1");
}

#[tokio::test]
async fn async_provision_gets_a_permit_and_answers_202() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let reply = send(&app, ok_request(Operation::Provision, "async-1")).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.body, json!({"operation": "op-async-1"}));
    assert!(recorder.last().permit());
    let no = with_json(
        request(
            Method::PUT,
            "/v2/service_instances/async-2?accepts_incomplete=false",
        ),
        &provision_body(SMALL),
    );
    let reply = send(&app, no).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.error(), Some("AsyncRequired"));
    assert!(!recorder.last().permit());
}

#[tokio::test]
async fn delete_and_update_replies_are_empty_objects() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    for op in [Operation::Deprovision, Operation::Unbind, Operation::Update] {
        let reply = send(&app, ok_request(op, "ok")).await;
        assert_eq!(reply.status, StatusCode::OK, "{op:?}");
        assert_eq!(reply.raw, "{}", "{op:?}");
    }
    let reply = send(&app, ok_request(Operation::Deprovision, "gone")).await;
    assert_eq!(
        (reply.status, reply.raw.as_ref()),
        (StatusCode::GONE, b"{}".as_ref())
    );
}

#[tokio::test]
async fn delete_queries_are_passed_through() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let uri = format!(
        "/v2/service_instances/ok/service_bindings/b-9?service_id={SVC}&plan_id={LARGE}&accepts_incomplete=false"
    );
    assert_eq!(send(&app, delete(&uri)).await.status, StatusCode::OK);
    let call = recorder.last();
    assert_eq!(call.op, Operation::Unbind);
    assert_eq!(call.binding_id.as_deref(), Some("b-9"));
    assert_eq!(
        call.query,
        json!({"service_id": SVC, "plan_id": LARGE, "accepts_incomplete": false})
    );
    assert_eq!(call.ctx.plan().unwrap().name, "large");
    assert!(!call.permit());

    let uri = format!(
        "/v2/service_instances/async-7?service_id={SVC}&plan_id={SMALL}&accepts_incomplete=true"
    );
    let reply = send(&app, delete(&uri)).await;
    assert_eq!(
        (reply.status, reply.body.clone()),
        (StatusCode::ACCEPTED, json!({"operation": "op-async-7"}))
    );
    let call = recorder.last();
    assert_eq!(call.op, Operation::Deprovision);
    assert_eq!(call.instance_id, "async-7");
    assert_eq!(
        call.query,
        json!({"service_id": SVC, "plan_id": SMALL, "accepts_incomplete": true})
    );
    assert!(call.permit());

    // Deprovision with another plan and accepts_incomplete=false, parameters in another order.
    let uri = format!(
        "/v2/service_instances/ok-8?accepts_incomplete=false&plan_id={LARGE}&service_id={SVC}"
    );
    assert_eq!(send(&app, delete(&uri)).await.status, StatusCode::OK);
    let call = recorder.last();
    assert_eq!(call.op, Operation::Deprovision);
    assert_eq!(call.instance_id, "ok-8");
    assert_eq!(call.binding_id, None);
    assert_eq!(
        call.query,
        json!({"service_id": SVC, "plan_id": LARGE, "accepts_incomplete": false})
    );
    assert_eq!(call.ctx.plan().unwrap().id, LARGE);
    assert!(!call.permit());

    // Without accepts_incomplete the broker sees it absent, not false.
    let uri = format!("/v2/service_instances/ok-9?service_id={SVC}&plan_id={SMALL}");
    assert_eq!(send(&app, delete(&uri)).await.status, StatusCode::OK);
    let call = recorder.last();
    assert_eq!(call.op, Operation::Deprovision);
    assert_eq!(call.query, json!({"service_id": SVC, "plan_id": SMALL}));
    assert!(!call.permit());
}

#[tokio::test]
async fn last_operation_queries_and_retry_after() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let op = "a b/c?d&e=%f";
    let encoded = "a%20b%2Fc%3Fd%26e%3D%25f";
    let uri = format!(
        "/v2/service_instances/retry-1/last_operation?service_id={SVC}&plan_id={LARGE}&operation={encoded}"
    );
    let reply = send(&app, get(&uri)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["retry-after"], "7");
    assert_eq!(
        reply.body,
        json!({"state": "in progress", "description": "half way"})
    );
    let call = recorder.last();
    assert_eq!(
        call.query,
        json!({"service_id": SVC, "plan_id": LARGE, "operation": op})
    );
    assert_eq!(call.ctx.plan().unwrap().id, LARGE);

    let uri = format!("{}/last_operation?operation=x", binding_path("retry-2"));
    let reply = send(&app, get(&uri)).await;
    assert_eq!(reply.headers["retry-after"], "7");
    let call = recorder.last();
    assert_eq!(call.op, Operation::BindingLastOperation);
    assert_eq!(call.query, json!({"operation": "x"}));
    assert!(call.ctx.service().is_none(), "no hint, no offering");

    // Binding polls pass the hints and the percent-decoded operation through as well.
    let uri = format!(
        "/v2/service_instances/retry-3/service_bindings/b-3/last_operation?service_id={SVC}&plan_id={LARGE}&operation={encoded}"
    );
    let reply = send(&app, get(&uri)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"state": "in progress", "description": "half way"})
    );
    let call = recorder.last();
    assert_eq!(call.op, Operation::BindingLastOperation);
    assert_eq!(call.instance_id, "retry-3");
    assert_eq!(call.binding_id.as_deref(), Some("b-3"));
    assert_eq!(
        call.query,
        json!({"service_id": SVC, "plan_id": LARGE, "operation": op})
    );
    assert_eq!(call.ctx.plan().unwrap().id, LARGE);
}

#[tokio::test]
async fn usability_flags_only_on_instance_polls() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let reply = send(&app, ok_request(Operation::InstanceLastOperation, "rich")).await;
    assert_eq!(
        reply.body,
        json!({"state": "failed", "description": "it broke", "instance_usable": false, "update_repeatable": true})
    );
    let reply = send(&app, ok_request(Operation::BindingLastOperation, "rich")).await;
    assert_eq!(
        reply.body,
        json!({"state": "failed", "description": "it broke"})
    );
    let old = valid_request(
        Operation::InstanceLastOperation,
        "rich",
        Some("2.15"),
        Some(&basic(USER, PASS)),
    );
    let reply = send(&app, old).await;
    assert_eq!(
        reply.body,
        json!({"state": "failed", "description": "it broke"})
    );
}

#[tokio::test]
async fn fetch_hints_are_passed_through() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let reply = send(&app, ok_request(Operation::FetchInstance, "ok")).await;
    assert_eq!(reply.body, json!({"service_id": SVC, "plan_id": SMALL}));
    let call = recorder.last();
    assert_eq!(call.query, json!({"service_id": SVC, "plan_id": SMALL}));
    assert_eq!(call.ctx.plan().unwrap().id, SMALL);
    let reply = send(&app, get(&binding_path("ok"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(recorder.last().query, json!({}));

    let uri =
        format!("/v2/service_instances/ok-5/service_bindings/b-5?service_id={SVC}&plan_id={LARGE}");
    let reply = send(&app, get(&uri)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let call = recorder.last();
    assert_eq!(call.op, Operation::FetchBinding);
    assert_eq!(call.instance_id, "ok-5");
    assert_eq!(call.binding_id.as_deref(), Some("b-5"));
    assert_eq!(call.query, json!({"service_id": SVC, "plan_id": LARGE}));
    assert_eq!(call.ctx.plan().unwrap().id, LARGE);
    // A service hint alone is passed through alone.
    let uri = format!("{}?service_id={SVC}", binding_path("ok"));
    assert_eq!(send(&app, get(&uri)).await.status, StatusCode::OK);
    let call = recorder.last();
    assert_eq!(call.query, json!({"service_id": SVC}));
    assert_eq!(call.ctx.service().unwrap().id, SVC);
    assert!(call.ctx.plan().is_none());
}

#[tokio::test]
async fn update_context_names_the_new_or_current_plan() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let body = json!({"service_id": SVC, "plan_id": SMALL, "previous_values": {"plan_id": LARGE}});
    let reply = send(
        &app,
        with_json(request(Method::PATCH, "/v2/service_instances/ok"), &body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(recorder.last().ctx.plan().unwrap().id, SMALL);
    let body = json!({"service_id": SVC, "parameters": {"size": 3}, "previous_values": {"plan_id": LARGE}});
    let reply = send(
        &app,
        with_json(request(Method::PATCH, "/v2/service_instances/ok"), &body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(recorder.last().ctx.plan().unwrap().id, LARGE);
}

#[tokio::test]
async fn broker_errors_map_to_osb_bodies() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let reply = send(&app, ok_request(Operation::Update, "unusable")).await;
    assert_eq!(
        reply.body,
        json!({"description": "cannot do that", "instance_usable": false, "update_repeatable": false})
    );
    let reply = send(&app, ok_request(Operation::Deprovision, "unusable")).await;
    assert_eq!(
        reply.body,
        json!({"description": "cannot do that", "instance_usable": false})
    );
    let reply = send(&app, ok_request(Operation::Provision, "unusable")).await;
    assert_eq!(reply.body, json!({"description": "cannot do that"}));
    let old = valid_request(
        Operation::Update,
        "unusable",
        Some("2.15"),
        Some(&basic(USER, PASS)),
    );
    assert_eq!(
        send(&app, old).await.body,
        json!({"description": "cannot do that"})
    );

    let reply = send(&app, ok_request(Operation::Provision, "conflict")).await;
    assert_eq!(
        reply.body,
        json!({"description": "exists with other attributes"})
    );
    let reply = send(&app, ok_request(Operation::Bind, "app")).await;
    assert_eq!(reply.error(), Some("RequiresApp"));
    let reply = send(&app, ok_request(Operation::Update, "busy")).await;
    assert_eq!(reply.error(), Some("ConcurrencyError"));
    let reply = send(&app, ok_request(Operation::Deprovision, "unavailable")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.body,
        json!({"description": "backend down", "instance_usable": true})
    );

    for op in common::MUTATING {
        let reply = send(&app, ok_request(op, "internal")).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{op:?}");
        assert!(
            !reply.description().contains("hunter2"),
            "internal details leak: {}",
            reply.body
        );
        assert!(reply.description().contains("logged"));
    }
}

#[tokio::test]
async fn a_panicking_broker_gets_a_500() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let mut req = ok_request(Operation::Provision, "panic");
    req.headers_mut()
        .insert("x-broker-api-request-identity", "r-1".parse().unwrap());
    let reply = send(&app, req).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.description().contains("logged"));
    assert_eq!(reply.headers["x-broker-api-request-identity"], "r-1");
    // The router keeps serving.
    assert_eq!(
        send(&app, ok_request(Operation::Provision, "ok"))
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn accepted_needs_the_requests_permit() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let forged = |op, id: &str| {
        let mut req = ok_request(op, id);
        let uri = req
            .uri()
            .to_string()
            .replace("accepts_incomplete=true", "accepts_incomplete=false");
        *req.uri_mut() = uri.parse().unwrap();
        req
    };
    for op in [
        Operation::Provision,
        Operation::Update,
        Operation::Deprovision,
        Operation::Bind,
        Operation::Unbind,
    ] {
        let reply = send(&app, forged(op, "forged")).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{op:?}");
        assert_eq!(reply.error(), Some("AsyncRequired"), "{op:?}");
    }
    for op in [
        Operation::Provision,
        Operation::Deprovision,
        Operation::Bind,
        Operation::Unbind,
    ] {
        let reply = send(&app, ok_request(op, "longop")).await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{op:?}: over-long operation"
        );
    }
}

#[tokio::test]
async fn async_bindings_need_osb_2_14() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let auth = basic(USER, PASS);
    let reply = send(
        &app,
        valid_request(Operation::Bind, "async", Some("2.13"), Some(&auth)),
    )
    .await;
    assert_eq!(reply.error(), Some("AsyncRequired"));
    assert!(!recorder.last().permit());
    let reply = send(
        &app,
        valid_request(Operation::Unbind, "async", Some("2.13"), Some(&auth)),
    )
    .await;
    assert_eq!(reply.error(), Some("AsyncRequired"));
    let reply = send(
        &app,
        valid_request(Operation::Bind, "async", Some("2.14"), Some(&auth)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    // Provision could be asynchronous in 2.13 already.
    let reply = send(
        &app,
        valid_request(Operation::Provision, "async", Some("2.13"), Some(&auth)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn bind_passes_the_request_through() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let body = json!({"service_id": SVC, "plan_id": LARGE, "bind_resource": {"app_guid": "app-1"},
        "parameters": {"role": "r"}, "predecessor_binding_id": "b-0",
        "context": {"platform": "kubernetes", "namespace": "ns", "clusterid": "c"}});
    let reply = send(
        &app,
        with_json(request(Method::PUT, &binding_path("ok")), &body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body, json!({"credentials": {"password": "pw"}}));
    let call = recorder.last();
    assert_eq!(call.body.unwrap(), body);
    assert_eq!(call.binding_id.as_deref(), Some("b-1"));
}

/// A broker that implements only the required methods.
struct Minimal;

#[async_trait]
impl ServiceBroker for Minimal {
    async fn catalog(&self) -> Result<osb_server::types::Catalog, BrokerError> {
        Ok(catalog())
    }
    async fn provision(
        &self,
        _: osb_server::types::InstanceId,
        _: osb_server::types::ServiceInstanceProvisionRequest,
        _: RequestContext,
    ) -> Result<osb_server::types::ProvisionOutcome, BrokerError> {
        Err(BrokerError::bad_request("no"))
    }
    async fn deprovision(
        &self,
        _: osb_server::types::InstanceId,
        _: osb_server::types::DeprovisionQuery,
        _: RequestContext,
    ) -> Result<osb_server::types::DeleteOutcome, BrokerError> {
        Ok(osb_server::types::DeleteOutcome::Deleted)
    }
}

#[tokio::test]
async fn unsupported_operations_answer_per_spec() {
    let app: Router = Broker::builder(Minimal)
        .basic_auth(USER, PASS)
        .build()
        .await
        .unwrap();
    let expected = [
        (Operation::Update, 422, "updating"),
        (Operation::FetchInstance, 400, "fetching service instances"),
        (
            Operation::InstanceLastOperation,
            400,
            "last operation of service instances",
        ),
        (Operation::Bind, 400, "binding"),
        (Operation::Unbind, 400, "unbinding"),
        (Operation::FetchBinding, 400, "fetching service bindings"),
        (
            Operation::BindingLastOperation,
            400,
            "last operation of service bindings",
        ),
    ];
    for (op, status, words) in expected {
        let reply = send(&app, ok_request(op, "ok")).await;
        assert_eq!(reply.status.as_u16(), status, "{op:?}");
        assert!(
            reply.description().contains(words),
            "{op:?}: {}",
            reply.description()
        );
        assert!(reply.description().contains("does not support"), "{op:?}");
    }
    assert_eq!(
        send(&app, ok_request(Operation::Deprovision, "ok"))
            .await
            .status,
        StatusCode::OK
    );
}
