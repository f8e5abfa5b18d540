//! Table-driven bad input: every case gets the right status, an OSB error body with an
//! actionable description, and never reaches the broker.
mod common;

use axum::body::Body;
use common::*;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    request: Request<Body>,
    status: u16,
    /// Words the description must contain.
    mentions: &'static str,
    /// The `error` code, when the spec requires one.
    code: Option<&'static str>,
}

fn put(uri: &str, body: &Value) -> Request<Body> {
    with_json(request(Method::PUT, uri), body)
}

fn patch(body: &Value) -> Request<Body> {
    with_json(request(Method::PATCH, "/v2/service_instances/i"), body)
}

fn raw(
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = request(method, uri);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    builder.body(body.into()).unwrap()
}

fn provision(body: &Value) -> Request<Body> {
    put("/v2/service_instances/i", body)
}

fn bind(body: &Value) -> Request<Body> {
    put(&binding_path("i"), body)
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

fn get(uri: &str) -> Request<Body> {
    empty(request(Method::GET, uri))
}

fn delete(uri: &str) -> Request<Body> {
    empty(request(Method::DELETE, uri))
}

fn header(mut req: Request<Body>, name: &'static str, value: &str) -> Request<Body> {
    req.headers_mut().insert(name, value.parse().unwrap());
    req
}

fn cases() -> Vec<Case> {
    let p = provision_body(SMALL);
    let large = provision_body(LARGE);
    let ctx_cf = json!({"platform": "cloudfoundry", "organization_guid": "o", "space_guid": "s"});
    let long_op = "x".repeat(10_001);
    let c = |name, request, status, mentions| Case {
        name,
        request,
        status,
        mentions,
        code: None,
    };
    vec![
        // --- provision: body syntax and shape
        c(
            "syntax error",
            raw(
                Method::PUT,
                "/v2/service_instances/i",
                Some("application/json"),
                "{\"service_id\":",
            ),
            400,
            "not valid JSON",
        ),
        c(
            "trailing garbage",
            raw(
                Method::PUT,
                "/v2/service_instances/i",
                Some("application/json"),
                format!("{p} x"),
            ),
            400,
            "not valid JSON",
        ),
        c(
            "empty body",
            raw(
                Method::PUT,
                "/v2/service_instances/i",
                Some("application/json"),
                "",
            ),
            400,
            "body is empty",
        ),
        c(
            "array body",
            provision(&json!([p.clone()])),
            400,
            "JSON object",
        ),
        c(
            "string body",
            provision(&json!("hello")),
            400,
            "JSON object",
        ),
        c("null body", provision(&Value::Null), 400, "JSON object"),
        c(
            "missing service_id",
            provision(&without(p.clone(), "service_id")),
            400,
            "service_id",
        ),
        c(
            "missing plan_id",
            provision(&without(p.clone(), "plan_id")),
            400,
            "plan_id",
        ),
        c(
            "missing organization_guid",
            provision(&without(p.clone(), "organization_guid")),
            400,
            "organization_guid",
        ),
        c(
            "missing space_guid",
            provision(&without(p.clone(), "space_guid")),
            400,
            "space_guid",
        ),
        c(
            "service_id is a number",
            provision(&with(p.clone(), "service_id", json!(5))),
            400,
            "service_id",
        ),
        c(
            "plan_id is null",
            provision(&with(p.clone(), "plan_id", Value::Null)),
            400,
            "plan_id",
        ),
        c(
            "parameters is a string",
            provision(&with(p.clone(), "parameters", json!("size=3"))),
            400,
            "parameters",
        ),
        c(
            "parameters is an array",
            provision(&with(p.clone(), "parameters", json!([1]))),
            400,
            "parameters",
        ),
        c(
            "context is a string",
            provision(&with(p.clone(), "context", json!("cf"))),
            400,
            "context",
        ),
        c(
            "maintenance_info is a number",
            provision(&with(p.clone(), "maintenance_info", json!(1))),
            400,
            "maintenance_info",
        ),
        c(
            "maintenance_info without version",
            provision(&with(p.clone(), "maintenance_info", json!({}))),
            400,
            "version",
        ),
        // --- provision: values
        c(
            "empty service_id",
            provision(&with(p.clone(), "service_id", json!(""))),
            400,
            "`service_id` must not be empty",
        ),
        c(
            "empty space_guid",
            provision(&with(p.clone(), "space_guid", json!(""))),
            400,
            "`space_guid` must not be empty",
        ),
        c(
            "context without platform",
            provision(&with(p.clone(), "context", json!({"a": 1}))),
            400,
            "context.platform",
        ),
        c(
            "maintenance_info not semver",
            provision(&with(
                p.clone(),
                "maintenance_info",
                json!({"version": "1.0"}),
            )),
            400,
            "SemVer",
        ),
        c(
            "unknown service_id",
            provision(&with(p.clone(), "service_id", json!("svc-9"))),
            400,
            "not an offering",
        ),
        c(
            "unknown plan_id",
            provision(&with(p.clone(), "plan_id", json!("plan-9"))),
            400,
            "not a plan of offering",
        ),
        c(
            "plan of another offering",
            provision(&with(p.clone(), "plan_id", json!(OTHER_PLAN))),
            400,
            "belongs to offering",
        ),
        Case {
            code: Some("MaintenanceInfoConflict"),
            ..c(
                "maintenance_info mismatch",
                provision(&with(
                    p.clone(),
                    "maintenance_info",
                    json!({"version": "2.0.0"}),
                )),
                422,
                "1.0.0",
            )
        },
        Case {
            code: Some("MaintenanceInfoConflict"),
            ..c(
                "maintenance_info on plan without",
                provision(&with(
                    large.clone(),
                    "maintenance_info",
                    json!({"version": "1.0.0"}),
                )),
                422,
                "no maintenance_info",
            )
        },
        c(
            "parameters fail the schema",
            provision(&with(large.clone(), "parameters", json!({"size": 0}))),
            400,
            "/size",
        ),
        c(
            "parameters of the wrong type",
            provision(&with(large.clone(), "parameters", json!({"size": "big"}))),
            400,
            "/size",
        ),
        // --- provision: headers and query
        c(
            "no content type",
            raw(Method::PUT, "/v2/service_instances/i", None, p.to_string()),
            400,
            "Content-Type",
        ),
        c(
            "text content type",
            raw(
                Method::PUT,
                "/v2/service_instances/i",
                Some("text/plain"),
                p.to_string(),
            ),
            400,
            "not JSON",
        ),
        c(
            "form content type",
            raw(
                Method::PUT,
                "/v2/service_instances/i",
                Some("application/x-www-form-urlencoded"),
                p.to_string(),
            ),
            400,
            "not JSON",
        ),
        c(
            "accepts_incomplete=yes",
            put("/v2/service_instances/i?accepts_incomplete=yes", &p),
            400,
            "accepts_incomplete",
        ),
        c(
            "accepts_incomplete empty",
            put("/v2/service_instances/i?accepts_incomplete=", &p),
            400,
            "true or false",
        ),
        c(
            "bind without service_id or predecessor",
            bind(&json!({"plan_id": SMALL})),
            400,
            "unless the request rotates",
        ),
        c(
            "rotation with empty predecessor",
            bind(&json!({"predecessor_binding_id": ""})),
            400,
            "predecessor_binding_id",
        ),
        c(
            "identity without space",
            header(
                provision(&p),
                "x-broker-api-originating-identity",
                "cloudfoundry",
            ),
            400,
            "Originating-Identity",
        ),
        c(
            "identity not base64",
            header(
                provision(&p),
                "x-broker-api-originating-identity",
                "cloudfoundry !!!",
            ),
            400,
            "Base64",
        ),
        c(
            "catalog with a malformed identity",
            header(
                get("/v2/catalog"),
                "x-broker-api-originating-identity",
                "cloudfoundry !!!",
            ),
            400,
            "Base64",
        ),
        c(
            "identity not an object",
            header(
                provision(&p),
                "x-broker-api-originating-identity",
                "cloudfoundry WzEsMl0=",
            ),
            400,
            "JSON object",
        ),
        c(
            "cf identity without user_id",
            header(
                provision(&p),
                "x-broker-api-originating-identity",
                "cloudfoundry e30=",
            ),
            400,
            "user_id",
        ),
        c(
            "identity platform differs from context",
            header(
                provision(&with(p.clone(), "context", ctx_cf.clone())),
                "x-broker-api-originating-identity",
                "kubernetes eyJ1c2VybmFtZSI6ImR1a2UifQ==",
            ),
            400,
            "must match",
        ),
        c(
            "body too large",
            provision(&with(
                p.clone(),
                "parameters",
                json!({"blob": "x".repeat(70_000)}),
            )),
            413,
            "larger than",
        ),
        c(
            "version header garbage",
            header(provision(&p), "x-broker-api-version", "latest"),
            412,
            "MAJOR.MINOR",
        ),
        c(
            "version too old",
            header(provision(&p), "x-broker-api-version", "2.12"),
            412,
            "2.13 to 2.17",
        ),
        // --- update
        c(
            "update without service_id",
            patch(&json!({"plan_id": SMALL})),
            400,
            "service_id",
        ),
        c(
            "update to unknown plan",
            patch(&json!({"service_id": SVC, "plan_id": "plan-9"})),
            400,
            "not a plan",
        ),
        c(
            "update with empty plan_id",
            patch(&json!({"service_id": SVC, "plan_id": ""})),
            400,
            "plan_id",
        ),
        c(
            "plan change not allowed",
            patch(
                &json!({"service_id": SVC, "plan_id": LARGE, "previous_values": {"plan_id": SMALL}}),
            ),
            422,
            "plan_updateable",
        ),
        c(
            "update parameters fail the schema",
            patch(
                &json!({"service_id": SVC, "parameters": {"size": -1}, "previous_values": {"plan_id": LARGE}}),
            ),
            400,
            "schemas.service_instance.update",
        ),
        Case {
            code: Some("MaintenanceInfoConflict"),
            ..c(
                "update maintenance_info mismatch",
                patch(
                    &json!({"service_id": SVC, "plan_id": SMALL, "maintenance_info": {"version": "9.9.9"}}),
                ),
                422,
                "fetch the catalog again",
            )
        },
        c(
            "context-only update without allow_context_updates",
            patch(&json!({"service_id": OTHER_SVC, "context": ctx_cf.clone()})),
            422,
            "allow_context_updates",
        ),
        c(
            "update with invalid UTF-8",
            raw(
                Method::PATCH,
                "/v2/service_instances/i",
                Some("application/json"),
                vec![b'{', 0xff, b'}'],
            ),
            400,
            "JSON",
        ),
        // --- deprovision
        c(
            "deprovision without service_id",
            delete(&format!("/v2/service_instances/i?plan_id={SMALL}")),
            400,
            "service_id",
        ),
        c(
            "deprovision without plan_id",
            delete(&format!("/v2/service_instances/i?service_id={SVC}")),
            400,
            "plan_id",
        ),
        c(
            "deprovision without query",
            delete("/v2/service_instances/i"),
            400,
            "service_id",
        ),
        c(
            "deprovision with empty plan_id",
            delete(&format!(
                "/v2/service_instances/i?service_id={SVC}&plan_id="
            )),
            400,
            "plan_id",
        ),
        c(
            "deprovision accepts_incomplete=2",
            delete(&format!(
                "/v2/service_instances/i?service_id={SVC}&plan_id={SMALL}&accepts_incomplete=2"
            )),
            400,
            "accepts_incomplete",
        ),
        c(
            "update changing to an unknown plan",
            patch(
                &json!({"service_id": SVC, "plan_id": "plan-9", "previous_values": {"plan_id": SMALL}}),
            ),
            400,
            "not a plan",
        ),
        // --- bind
        c(
            "bind on unbindable plan",
            bind(&bind_body(NOBIND)),
            400,
            "not bindable",
        ),
        c(
            "bind on unbindable offering",
            bind(&json!({"service_id": OTHER_SVC, "plan_id": OTHER_PLAN})),
            400,
            "not bindable",
        ),
        c(
            "rotation on a plan without binding_rotatable",
            bind(&with(
                bind_body(SMALL),
                "predecessor_binding_id",
                json!("b-0"),
            )),
            400,
            "binding_rotatable",
        ),
        c(
            "bind parameters fail the schema",
            bind(&with(
                bind_body(LARGE),
                "parameters",
                json!({"role": "admin"}),
            )),
            400,
            "/role",
        ),
        c(
            "bind without plan_id",
            bind(&json!({"service_id": SVC})),
            400,
            "plan_id",
        ),
        c(
            "bind with empty app_guid",
            bind(&with(bind_body(SMALL), "app_guid", json!(""))),
            400,
            "app_guid",
        ),
        c(
            "bind_resource is a string",
            bind(&with(bind_body(SMALL), "bind_resource", json!("app"))),
            400,
            "bind_resource",
        ),
        // --- unbind
        c(
            "unbind without query",
            delete(&binding_path("i")),
            400,
            "service_id",
        ),
        c(
            "unbind accepts_incomplete=maybe",
            delete(&format!(
                "{}?service_id={SVC}&plan_id={SMALL}&accepts_incomplete=maybe",
                binding_path("i")
            )),
            400,
            "accepts_incomplete",
        ),
        // --- polling and fetching
        c(
            "operation too long",
            get(&format!(
                "/v2/service_instances/i/last_operation?operation={long_op}"
            )),
            400,
            "10000",
        ),
        c(
            "operation empty",
            get("/v2/service_instances/i/last_operation?operation="),
            400,
            "operation",
        ),
        c(
            "binding operation too long",
            get(&format!(
                "{}/last_operation?operation={long_op}",
                binding_path("i")
            )),
            400,
            "10000",
        ),
        c(
            "fetch instance of unretrievable offering",
            get(&format!("/v2/service_instances/i?service_id={OTHER_SVC}")),
            400,
            "instances_retrievable",
        ),
        c(
            "fetch binding of unretrievable offering",
            get(&format!("{}?service_id={OTHER_SVC}", binding_path("i"))),
            400,
            "bindings_retrievable",
        ),
        c(
            "fetch instance with 2.13",
            header(
                get("/v2/service_instances/i"),
                "x-broker-api-version",
                "2.13",
            ),
            412,
            "2.14",
        ),
        c(
            "binding last operation with 2.13",
            header(
                get(&format!("{}/last_operation", binding_path("i"))),
                "x-broker-api-version",
                "2.13",
            ),
            412,
            "2.14",
        ),
        // --- routes and methods
        c(
            "unknown route",
            get("/v2/service_plans"),
            404,
            "no OSB endpoint",
        ),
        c(
            "wrong method",
            raw(
                Method::POST,
                "/v2/service_instances/i",
                Some("application/json"),
                p.to_string(),
            ),
            405,
            "not allowed",
        ),
        c(
            "wrong method on catalog",
            delete("/v2/catalog"),
            405,
            "not allowed",
        ),
    ]
}

#[tokio::test]
async fn bad_input_is_rejected_before_the_broker() {
    let recorder = Recorder::default();
    let app = builder(&recorder)
        .body_limit(64 * 1024)
        .build()
        .await
        .unwrap();
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut names = std::collections::HashSet::new();
    for case in cases {
        assert!(names.insert(case.name), "duplicate case {}", case.name);
        let reply = send(&app, case.request).await;
        assert_eq!(
            reply.status,
            StatusCode::from_u16(case.status).unwrap(),
            "{}: {}",
            case.name,
            reply.body
        );
        let description = reply.description();
        assert!(
            description.len() > 20,
            "{}: description {:?}",
            case.name,
            description
        );
        assert!(
            description.contains(case.mentions),
            "{}: {description:?} does not mention {:?}",
            case.name,
            case.mentions
        );
        assert_eq!(reply.error(), case.code, "{}", case.name);
        assert!(
            recorder.calls().is_empty(),
            "{}: the broker was called",
            case.name
        );
    }
}

#[tokio::test]
async fn description_names_the_path_of_a_wrong_type() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let body = with(
        provision_body(SMALL),
        "maintenance_info",
        json!({"version": 7}),
    );
    let reply = send(&app, provision(&body)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.description().contains("maintenance_info"),
        "{}",
        reply.description()
    );
    assert!(
        reply.description().contains("expected a string"),
        "{}",
        reply.description()
    );
}
