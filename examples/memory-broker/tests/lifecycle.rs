//! The memory broker's lifecycle, driven through its router in-process and once over loopback.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use example_memory_broker::{
    ASYNC_PLAN_ID, Config, SCHEMA_PLAN_ID, SERVICE_ID, SYNC_PLAN_ID, app, catalog, start,
};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

fn config() -> Config {
    let mut config = Config::new("admin", "pw");
    config.async_delay = Duration::from_millis(40);
    config.retention = Duration::from_millis(150);
    config
}

struct Client {
    app: Router,
}

impl Client {
    async fn new() -> Self {
        Client {
            app: app(config()).await.unwrap(),
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, http::HeaderMap) {
        let auth = base64::engine::general_purpose::STANDARD.encode("admin:pw");
        let builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Basic {auth}"))
            .header("x-broker-api-version", "2.17");
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body, headers)
    }

    /// Polls a last operation until it leaves `in progress` (bounded).
    async fn wait(&self, uri: &str) -> (StatusCode, Value) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, body, _) = self.call(Method::GET, uri, None).await;
            if status != StatusCode::OK
                || body["state"] != "in progress"
                || Instant::now() > deadline
            {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn provision(plan: &str, parameters: Value) -> Value {
    json!({"service_id": SERVICE_ID, "plan_id": plan, "organization_guid": "org",
           "space_guid": "space", "parameters": parameters})
}

fn bind(plan: &str, parameters: Value) -> Value {
    json!({"service_id": SERVICE_ID, "plan_id": plan, "parameters": parameters})
}

#[test]
fn catalog_is_clean() {
    let problems = catalog().lint();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(catalog().services[0].plans.len(), 3);
}

#[tokio::test]
async fn synchronous_lifecycle() {
    let c = Client::new().await;
    let (status, body, _) = c.call(Method::GET, "/v2/catalog", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["services"][0]["id"], SERVICE_ID);

    let i = "/v2/service_instances/sync-1";
    let q = format!("service_id={SERVICE_ID}&plan_id={SYNC_PLAN_ID}");
    let p = provision(SYNC_PLAN_ID, json!({"a": 1}));
    assert_eq!(
        c.call(Method::PUT, i, Some(p.clone())).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        c.call(Method::PUT, i, Some(p)).await.0,
        StatusCode::OK,
        "identical again"
    );
    let other = provision(SYNC_PLAN_ID, json!({"a": 2}));
    assert_eq!(
        c.call(Method::PUT, i, Some(other)).await.0,
        StatusCode::CONFLICT
    );

    let (status, body, _) = c.call(Method::GET, i, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"service_id": SERVICE_ID, "plan_id": SYNC_PLAN_ID, "parameters": {"a": 1}})
    );

    let update = json!({"service_id": SERVICE_ID, "parameters": {"a": 3}});
    let (status, body, _) = c.call(Method::PATCH, i, Some(update)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(
        c.call(Method::GET, i, None).await.1["parameters"],
        json!({"a": 3})
    );

    let b = format!("{i}/service_bindings/b-1");
    let (status, body, _) = c
        .call(Method::PUT, &b, Some(bind(SYNC_PLAN_ID, json!({}))))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let credentials = body["credentials"].clone();
    assert!(credentials["password"].is_string());
    let (status, again, _) = c
        .call(Method::PUT, &b, Some(bind(SYNC_PLAN_ID, json!({}))))
        .await;
    assert_eq!(
        (status, again["credentials"].clone()),
        (StatusCode::OK, credentials.clone())
    );
    let (status, fetched, _) = c.call(Method::GET, &b, None).await;
    assert_eq!(
        (status, fetched["credentials"].clone()),
        (StatusCode::OK, credentials)
    );

    assert_eq!(
        c.call(Method::DELETE, &format!("{b}?{q}"), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        c.call(Method::DELETE, &format!("{b}?{q}"), None).await.0,
        StatusCode::GONE
    );
    assert_eq!(c.call(Method::GET, &b, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        c.call(Method::DELETE, &format!("{i}?{q}"), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        c.call(Method::DELETE, &format!("{i}?{q}"), None).await.0,
        StatusCode::GONE
    );
    assert_eq!(c.call(Method::GET, i, None).await.0, StatusCode::NOT_FOUND);
    let (status, ..) = c
        .call(Method::GET, &format!("{i}/last_operation"), None)
        .await;
    assert_eq!(status, StatusCode::GONE, "deleted resources are gone");
    let (status, ..) = c
        .call(
            Method::GET,
            "/v2/service_instances/never/last_operation",
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "unknown resources are not found"
    );
}

#[tokio::test]
async fn deprovisioning_deletes_the_bindings_too() {
    let c = Client::new().await;
    let i = "/v2/service_instances/with-binding";
    let q = format!("service_id={SERVICE_ID}&plan_id={SYNC_PLAN_ID}");
    let p = provision(SYNC_PLAN_ID, json!({}));
    assert_eq!(c.call(Method::PUT, i, Some(p)).await.0, StatusCode::CREATED);
    let b = format!("{i}/service_bindings/left-behind");
    let (status, ..) = c
        .call(Method::PUT, &b, Some(bind(SYNC_PLAN_ID, json!({}))))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        c.call(Method::DELETE, &format!("{i}?{q}"), None).await.0,
        StatusCode::OK
    );
    assert_eq!(c.call(Method::GET, &b, None).await.0, StatusCode::NOT_FOUND);
    let (status, ..) = c
        .call(Method::GET, &format!("{b}/last_operation"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::GONE,
        "the binding went with its instance"
    );
    assert_eq!(
        c.call(Method::DELETE, &format!("{b}?{q}"), None).await.0,
        StatusCode::GONE
    );
}

#[tokio::test]
async fn schema_plan_checks_parameters() {
    let c = Client::new().await;
    let i = "/v2/service_instances/schema-1";
    let (status, body, _) = c
        .call(
            Method::PUT,
            i,
            Some(provision(SCHEMA_PLAN_ID, json!({"size": 11}))),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["description"].as_str().unwrap().contains("/size"),
        "{body}"
    );
    let (status, ..) = c
        .call(
            Method::PUT,
            i,
            Some(provision(SCHEMA_PLAN_ID, json!({"colour": "red"}))),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "additional properties are refused"
    );
    let (status, ..) = c
        .call(
            Method::PUT,
            i,
            Some(provision(SCHEMA_PLAN_ID, json!({"size": 3}))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let b = format!("{i}/service_bindings/b-1");
    let (status, body, _) = c
        .call(
            Method::PUT,
            &b,
            Some(bind(SCHEMA_PLAN_ID, json!({"role": "admin"}))),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["description"].as_str().unwrap().contains("/role"),
        "{body}"
    );
    let (status, ..) = c
        .call(
            Method::PUT,
            &b,
            Some(bind(SCHEMA_PLAN_ID, json!({"role": "read"}))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn asynchronous_lifecycle() {
    let c = Client::new().await;
    let i = "/v2/service_instances/async-1";
    let q = format!("service_id={SERVICE_ID}&plan_id={ASYNC_PLAN_ID}");
    let p = provision(ASYNC_PLAN_ID, json!({}));
    let (status, body, _) = c.call(Method::PUT, i, Some(p.clone())).await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("AsyncRequired"))
    );

    let async_i = format!("{i}?accepts_incomplete=true");
    let (status, body, _) = c.call(Method::PUT, &async_i, Some(p.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let operation = body["operation"].as_str().unwrap().to_string();
    let (status, again, _) = c.call(Method::PUT, &async_i, Some(p)).await;
    assert_eq!(
        (status, again["operation"].as_str()),
        (StatusCode::ACCEPTED, Some(operation.as_str()))
    );
    assert_eq!(
        c.call(Method::GET, i, None).await.0,
        StatusCode::NOT_FOUND,
        "not yet provisioned"
    );

    let poll = format!("{i}/last_operation?{q}&operation={operation}");
    let (status, body, headers) = c.call(Method::GET, &poll, None).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("in progress"))
    );
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        c.wait(&poll).await,
        (StatusCode::OK, json!({"state": "succeeded"}))
    );
    assert_eq!(c.call(Method::GET, i, None).await.0, StatusCode::OK);

    let b = format!("{i}/service_bindings/b-1");
    let (status, ..) = c
        .call(Method::PUT, &b, Some(bind(ASYNC_PLAN_ID, json!({}))))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body, _) = c
        .call(
            Method::PUT,
            &format!("{b}?accepts_incomplete=true"),
            Some(bind(ASYNC_PLAN_ID, json!({}))),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(
        body.get("credentials").is_none(),
        "202 carries no credentials"
    );
    assert_eq!(
        c.wait(&format!("{b}/last_operation")).await.1["state"],
        "succeeded"
    );
    let (status, body, _) = c.call(Method::GET, &b, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["credentials"]["uri"].is_string());
    let (status, ..) = c
        .call(
            Method::DELETE,
            &format!("{b}?{q}&accepts_incomplete=true"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        c.wait(&format!("{b}/last_operation")).await.1["state"],
        "succeeded"
    );

    let (status, ..) = c.call(Method::DELETE, &format!("{i}?{q}"), None).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "async delete needs accepts_incomplete"
    );
    let (status, body, _) = c
        .call(
            Method::DELETE,
            &format!("{i}?{q}&accepts_incomplete=true"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let poll = format!(
        "{i}/last_operation?{q}&operation={}",
        body["operation"].as_str().unwrap()
    );
    assert_eq!(
        c.wait(&poll).await,
        (StatusCode::OK, json!({"state": "succeeded"}))
    );
    assert_eq!(
        c.call(Method::GET, &poll, None).await.0,
        StatusCode::OK,
        "remembered for a while"
    );
    tokio::time::sleep(config().retention).await;
    assert_eq!(
        c.call(Method::GET, &poll, None).await.0,
        StatusCode::GONE,
        "then gone"
    );
}

#[tokio::test]
async fn requires_credentials() {
    let c = Client::new().await;
    let request = Request::get("/v2/catalog")
        .header("x-broker-api-version", "2.17")
        .body(Body::empty())
        .unwrap();
    let response = c.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn serves_over_loopback() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let running = start(config()).await.unwrap();
    assert!(running.url().starts_with("http://127.0.0.1:"));
    let mut stream = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("admin:pw");
    let request = format!(
        "GET /v2/catalog HTTP/1.1\r\nhost: localhost\r\nauthorization: Basic {auth}\r\nx-broker-api-version: 2.17\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("memory-db"));
    running.task.abort();
}
