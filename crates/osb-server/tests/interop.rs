//! What real platforms send and expect: retired plans, binding rotation as the spec shapes it,
//! `accepts_incomplete` spellings, update replies for 2.14+, binding expiry and Kubernetes
//! context spellings. Each test is named after the rule it checks.
mod common;

use axum::Router;
use common::*;
use http::{Method, StatusCode};
use osb_server::Guards;
use osb_server::types::{Catalog, Operation};
use serde_json::{Value, json};

const RETIRED: &str = "plan-retired";

async fn app_with(recorder: &Recorder, guards: Guards) -> Router {
    builder(recorder).guards(guards).build().await.unwrap()
}

async fn put(app: &Router, uri: &str, body: Value) -> Reply {
    send(app, with_json(request(Method::PUT, uri), &body)).await
}

async fn patch(app: &Router, iid: &str, body: Value) -> Reply {
    send(
        app,
        with_json(request(Method::PATCH, &instance_path(iid)), &body),
    )
    .await
}

/// A request declaring `version` instead of 2.17.
fn request_at(method: Method, uri: &str, version: &str) -> http::request::Builder {
    let mut builder = request(method, uri);
    if let Some(headers) = builder.headers_mut() {
        headers.insert("x-broker-api-version", version.parse().unwrap());
    }
    builder
}

async fn get(app: &Router, uri: &str) -> Reply {
    send(app, empty(request(Method::GET, uri))).await
}

async fn delete(app: &Router, uri: &str) -> Reply {
    send(app, empty(request(Method::DELETE, uri))).await
}

#[tokio::test]
async fn a_retired_plan_does_not_lock_its_instances_in() {
    let recorder = Recorder::default();
    let app = app_with(&recorder, Guards::default()).await;
    let q = format!("service_id={SVC}&plan_id={RETIRED}");
    let retired_offering = format!("service_id=svc-retired&plan_id={RETIRED}");

    let reply = delete(&app, &format!("{}?{q}", instance_path("i-1"))).await;
    assert_eq!(reply.status, StatusCode::OK, "deprovision: {}", reply.body);
    let reply = delete(
        &app,
        &format!("{}?{retired_offering}", instance_path("i-2")),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "offering gone: {}",
        reply.body
    );
    let reply = delete(&app, &format!("{}?{q}", binding_path("i-3"))).await;
    assert_eq!(reply.status, StatusCode::OK, "unbind: {}", reply.body);
    let reply = put(
        &app,
        &binding_path("i-4"),
        json!({"service_id": SVC, "plan_id": RETIRED}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "bind: {}", reply.body);
    // Cloud Controller sends the current plan_id with every update, with previous_values.
    let reply = patch(
        &app,
        "i-5",
        json!({"service_id": SVC, "plan_id": RETIRED, "parameters": {"a": 1},
               "previous_values": {"plan_id": RETIRED}}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "update: {}", reply.body);
    let reply = get(
        &app,
        &format!("{}/last_operation?{q}", instance_path("i-6")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "poll: {}", reply.body);
    let reply = get(&app, &format!("{}?{q}", instance_path("i-7"))).await;
    assert_eq!(reply.status, StatusCode::OK, "fetch: {}", reply.body);

    let ops: Vec<Operation> = recorder.calls().iter().map(|c| c.op).collect();
    assert_eq!(
        ops,
        [
            Operation::Deprovision,
            Operation::Deprovision,
            Operation::Unbind,
            Operation::Bind,
            Operation::Update,
            Operation::InstanceLastOperation,
            Operation::FetchInstance,
        ]
    );
    let bind = &recorder.calls()[3];
    assert_eq!(bind.ctx.plan_id().map(|p| p.as_str()), Some(RETIRED));
}

#[tokio::test]
async fn an_unknown_plan_is_refused_where_a_plan_is_chosen() {
    let recorder = Recorder::default();
    let app = app_with(&recorder, Guards::default()).await;
    let reply = put(&app, &instance_path("i"), provision_body(RETIRED)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.description().contains("not a plan"), "{}", reply.body);
    // A plan change away from the current plan names the plan being chosen.
    let reply = patch(
        &app,
        "i",
        json!({"service_id": SVC, "plan_id": RETIRED, "previous_values": {"plan_id": SMALL}}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // Without previous values nothing says the plan is kept: it is being chosen.
    let reply = patch(&app, "i", json!({"service_id": SVC, "plan_id": RETIRED})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(recorder.calls().is_empty());
}

#[tokio::test]
async fn strict_ids_refuses_unknown_plans_on_existing_resources() {
    let recorder = Recorder::default();
    let app = app_with(&recorder, Guards::default().strict_ids(true)).await;
    let q = format!("service_id={SVC}&plan_id={RETIRED}");
    for reply in [
        delete(&app, &format!("{}?{q}", instance_path("i"))).await,
        delete(&app, &format!("{}?{q}", binding_path("i"))).await,
        put(
            &app,
            &binding_path("i"),
            json!({"service_id": SVC, "plan_id": RETIRED}),
        )
        .await,
        patch(
            &app,
            "i",
            json!({"service_id": SVC, "plan_id": RETIRED, "previous_values": {"plan_id": RETIRED}}),
        )
        .await,
    ] {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert!(reply.description().contains("not a plan"), "{}", reply.body);
    }
    assert!(recorder.calls().is_empty());
    assert!(!Guards::default().strict_ids && Guards::all().strict_ids);
}

#[tokio::test]
async fn a_rotation_may_name_no_service_or_plan_and_reaches_the_broker_with_its_predecessor() {
    let recorder = Recorder::default();
    let app = app_with(&recorder, Guards::default()).await;
    let reply = put(
        &app,
        "/v2/service_instances/i/service_bindings/b-2",
        json!({"predecessor_binding_id": "b-1"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let call = recorder.last();
    assert_eq!(call.op, Operation::Bind);
    assert_eq!(call.binding_id.as_deref(), Some("b-2"));
    assert_eq!(call.body, Some(json!({"predecessor_binding_id": "b-1"})));
    assert_eq!(call.ctx.service_id(), None);
    assert_eq!(call.ctx.plan_id(), None);
}

/// A catalog whose only rotatable plan requires a binding parameter.
fn rotating_catalog(rotatable: bool) -> Catalog {
    serde_json::from_value(json!({"services": [{
        "id": SVC, "name": "svc", "description": "A service", "bindable": true,
        "plans": [{"id": LARGE, "name": "large", "description": "Large",
            "binding_rotatable": rotatable,
            "schemas": {"service_binding": {"create": {"parameters": {
                "$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
                "required": ["role"], "properties": {"role": {"type": "string"}}}}}}}]
    }]}))
    .unwrap()
}

#[tokio::test]
async fn a_rotation_without_parameters_is_not_checked_against_required_properties() {
    let recorder = Recorder::default();
    let app = builder(&recorder)
        .catalog(rotating_catalog(true))
        .build()
        .await
        .unwrap();
    let rotation = json!({"service_id": SVC, "plan_id": LARGE, "predecessor_binding_id": "b-1"});
    let reply = put(&app, &binding_path("i"), rotation.clone()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    // A plain bind without parameters is still checked as `{}`.
    let reply = put(
        &app,
        &binding_path("j"),
        json!({"service_id": SVC, "plan_id": LARGE}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.description().contains("role"), "{}", reply.body);
    // A rotation that does send parameters has them checked.
    let mut with_parameters = rotation;
    with_parameters["parameters"] = json!({"role": 7});
    let reply = put(&app, &binding_path("k"), with_parameters).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.description().contains("/role"), "{}", reply.body);
    assert_eq!(recorder.calls().len(), 1);
}

#[tokio::test]
async fn a_rotation_needs_a_rotatable_plan_somewhere_in_the_catalog() {
    let recorder = Recorder::default();
    let app = builder(&recorder)
        .catalog(rotating_catalog(false))
        .build()
        .await
        .unwrap();
    let reply = put(
        &app,
        &binding_path("i"),
        json!({"predecessor_binding_id": "b-0"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(
        reply.description().contains("binding_rotatable"),
        "{}",
        reply.body
    );
    assert!(recorder.calls().is_empty());
}

#[tokio::test]
async fn accepts_incomplete_is_read_in_any_case_and_as_1_or_0() {
    let recorder = Recorder::default();
    let app = app_with(&recorder, Guards::default()).await;
    for (spelling, status) in [
        ("true", StatusCode::ACCEPTED),
        ("True", StatusCode::ACCEPTED),
        ("TRUE", StatusCode::ACCEPTED),
        ("1", StatusCode::ACCEPTED),
        ("false", StatusCode::UNPROCESSABLE_ENTITY),
        ("FALSE", StatusCode::UNPROCESSABLE_ENTITY),
        ("0", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let uri = format!("/v2/service_instances/async-1?accepts_incomplete={spelling}");
        let reply = put(&app, &uri, provision_body(SMALL)).await;
        assert_eq!(reply.status, status, "{spelling}: {}", reply.body);
        let delete_uri = format!(
            "/v2/service_instances/async-1?service_id={SVC}&plan_id={SMALL}&accepts_incomplete={spelling}"
        );
        let reply = delete(&app, &delete_uri).await;
        assert_eq!(reply.status, status, "delete {spelling}: {}", reply.body);
    }
    for spelling in ["yes", "t", "2", "truee"] {
        let uri = format!("/v2/service_instances/async-1?accepts_incomplete={spelling}");
        let reply = put(&app, &uri, provision_body(SMALL)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{spelling}");
        let description = reply.description();
        assert!(
            description.contains("accepts_incomplete") && description.contains("true or false"),
            "{spelling}: {description}"
        );
    }
}

#[tokio::test]
async fn an_update_reply_never_carries_a_null_or_empty_dashboard_url_or_a_null_operation() {
    let recorder = Recorder::default();
    let app = app_with(&recorder, Guards::default()).await;
    for version in ["2.14", "2.15", "2.17"] {
        for iid in ["nullurl", "emptyurl"] {
            let reply = send(
                &app,
                with_json(
                    request_at(Method::PATCH, &instance_path(iid), version),
                    &json!({"service_id": SVC, "parameters": {}}),
                ),
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{version} {iid}");
            assert_eq!(reply.body, json!({}), "{version} {iid}");
            let async_id = format!("{iid}async");
            let reply = send(
                &app,
                with_json(
                    request_at(
                        Method::PATCH,
                        &format!("{}?accepts_incomplete=true", instance_path(&async_id)),
                        version,
                    ),
                    &json!({"service_id": SVC, "parameters": {}}),
                ),
            )
            .await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{version} {async_id}");
            assert_eq!(reply.body, json!({}), "{version} {async_id}");
        }
    }
}

#[tokio::test]
async fn a_binding_expiry_that_is_not_iso_8601_utc_is_a_500_not_a_malformed_reply() {
    let recorder = Recorder::default();
    let app = app_with(&recorder, Guards::default()).await;
    for iid in ["badexpiry", "laterenew"] {
        let reply = put(&app, &binding_path(iid), bind_body(SMALL)).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{iid}");
        assert!(!reply.raw.windows(7).any(|w| w == b"tuesday"), "{iid}");
        let reply = get(&app, &binding_path(iid)).await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "fetch {iid}"
        );
    }
    // Before 2.16 a binding has no metadata: the reply leaves it out and goes out.
    let reply = send(
        &app,
        with_json(
            request_at(Method::PUT, &binding_path("badexpiry"), "2.15"),
            &bind_body(SMALL),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert!(reply.body.get("metadata").is_none());
}

#[tokio::test]
async fn kubernetes_cluster_id_in_either_spelling_reaches_the_broker() {
    let recorder = Recorder::default();
    let app = app_with(&recorder, Guards::default()).await;
    for (context, expected) in [
        (
            json!({"platform": "kubernetes", "namespace": "ns", "clusterid": "c-1"}),
            Some("c-1"),
        ),
        (
            json!({"platform": "kubernetes", "namespace": "ns", "cluster_id": "c-2"}),
            Some("c-2"),
        ),
        (json!({"platform": "kubernetes", "namespace": "ns"}), None),
    ] {
        let mut body = provision_body(SMALL);
        body["context"] = context.clone();
        let reply = put(&app, &instance_path("k8s"), body).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{context}: {}",
            reply.body
        );
        let call = recorder.last();
        let received: osb_server::types::ServiceInstanceProvisionRequest =
            serde_json::from_value(call.body.unwrap()).unwrap();
        let received = received.context.expect("the context reaches the broker");
        assert_eq!(received.cluster_id(), expected, "{context}");
        assert_eq!(serde_json::to_value(&received).unwrap(), context);
    }
}
