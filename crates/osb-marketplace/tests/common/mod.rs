//! A marketplace on loopback with its own SQLite file, tokens, and a broker whose catalog a
//! test controls.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use osb_marketplace::auth::{Claims, TokenKeys};
use osb_marketplace::{Config, Marketplace};
use serde_json::{Value, json};

pub const KEY: &[u8] = b"test-token-key";

pub struct Running {
    pub marketplace: Marketplace,
    pub url: String,
    pub db_path: std::path::PathBuf,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub async fn start() -> Running {
    start_with(|c| c).await
}

pub async fn start_with(configure: impl FnOnce(Config) -> Config) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("marketplace.db");
    let mut config = Config::new(
        format!("sqlite:{}", db_path.display()),
        TokenKeys::hs256(KEY),
    );
    config.broker_timeout = Duration::from_secs(5);
    let marketplace = Marketplace::open(configure(config)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = marketplace.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Running {
        marketplace,
        url,
        db_path,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

pub fn token(scopes: &[&str]) -> String {
    let claims = Claims::new(
        "user-1",
        scopes.iter().map(|s| (*s).to_owned()).collect(),
        Duration::from_secs(600),
    );
    TokenKeys::hs256(KEY).mint(&claims).unwrap()
}

pub fn admin() -> String {
    token(&["cloud_controller.admin"])
}

pub fn reader() -> String {
    token(&["cloud_controller.read"])
}

impl Running {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, &admin(), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, &admin(), Some(body)).await
    }

    pub async fn register(
        &self,
        name: &str,
        url: &str,
        user: &str,
        password: &str,
    ) -> (u16, Value) {
        self.post(
            "/v2/service_brokers",
            json!({"name": name, "broker_url": url, "auth_username": user, "auth_password": password}),
        )
        .await
    }

    /// Every row of every table, to show that a refused request changed nothing.
    pub async fn snapshot(&self) -> Vec<String> {
        let mut rows = Vec::new();
        for table in [
            "service_brokers",
            "services",
            "service_plans",
            "service_instances",
        ] {
            let sql = format!("SELECT * FROM {table} ORDER BY id");
            for row in sqlx::query(&sql)
                .fetch_all(self.marketplace.pool())
                .await
                .unwrap()
            {
                use sqlx::{Column, Row, ValueRef};
                let mut text = format!("{table}:");
                for (i, col) in row.columns().iter().enumerate() {
                    let raw = row.try_get_raw(i).unwrap();
                    let value = if raw.is_null() {
                        "NULL".to_owned()
                    } else {
                        row.try_get::<String, _>(i)
                            .or_else(|_| row.try_get::<i64, _>(i).map(|v| v.to_string()))
                            .unwrap_or_default()
                    };
                    text.push_str(&format!(" {}={value}", col.name()));
                }
                rows.push(text);
            }
        }
        rows
    }

    /// Adds an instance of the plan with `plan_guid` directly in the database (instances are
    /// created through the broker in the instances API; here only their existence matters).
    pub async fn add_instance(&self, plan_guid: &str) {
        sqlx::query(
            "INSERT INTO service_instances (guid, name, space_guid, organization_guid, service_plan_id, created_at) \
             SELECT ?, ?, 'space-1', 'org-1', id, '2026-01-01T00:00:00+00:00' FROM service_plans WHERE guid = ?",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(plan_guid)
        .execute(self.marketplace.pool())
        .await
        .unwrap();
    }
}

/// A broker serving a catalog the test can change, behind Basic auth `user:pass`.
pub struct FakeBroker {
    pub addr: SocketAddr,
    pub catalog: Arc<Mutex<Value>>,
}

impl FakeBroker {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub async fn fake_broker(catalog: Value) -> FakeBroker {
    let shared = Arc::new(Mutex::new(catalog));
    let state = shared.clone();
    let app = axum::Router::new().route(
        "/v2/catalog",
        get(move |headers: axum::http::HeaderMap| {
            let state = state.clone();
            async move {
                use base64::Engine;
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode("user:pass")
                );
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    != Some(expected.as_str())
                {
                    return (
                        axum::http::StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"description": "no"})),
                    );
                }
                let body = state.lock().unwrap().clone();
                (axum::http::StatusCode::OK, axum::Json(body))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeBroker {
        addr,
        catalog: shared,
    }
}

/// A valid catalog: one offering with the given plans `(id, name)`.
pub fn catalog(service: (&str, &str), plans: &[(&str, &str)]) -> Value {
    json!({"services": [{
        "id": service.0, "name": service.1, "description": "A test service", "bindable": true,
        "tags": ["test"], "metadata": {"displayName": "Test", "longDescription": "A longer text"},
        "plans": plans.iter().map(|(id, name)| json!({
            "id": id, "name": name, "description": format!("The {name} plan"),
            "maintenance_info": {"version": "1.0.0"},
            "schemas": {"service_instance": {"create": {"parameters": {
                "$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}}}},
        })).collect::<Vec<_>>(),
    }]})
}

/// Polls quickly, retries orphan mitigation quickly, and gives brokers 1 s per call.
pub fn fast(mut c: Config) -> Config {
    c.timing = osb_marketplace::Timing {
        poll_interval: Duration::from_millis(50),
        max_poll_interval: Duration::from_secs(5),
        default_deadline: Duration::from_secs(30),
        orphan_backoff: Duration::from_millis(20),
        orphan_attempts: 4,
        tick: Duration::from_millis(20),
    };
    c.broker_timeout = Duration::from_secs(1);
    c
}

/// A marketplace with fast timing and its worker running.
pub async fn start_working() -> Running {
    let m = start_with(fast).await;
    m.marketplace.spawn_worker();
    m
}

/// One scripted answer of the [`ScriptedBroker`].
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<u64>,
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
}

/// A request the scripted broker received: method, path (with query), and when.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub at: std::time::Instant,
}

#[derive(Default)]
pub struct Script {
    /// Queued answers per route key (`provision`, `deprovision`, `last_operation`, `bind`,
    /// `unbind`, `binding_last_operation`, `fetch_binding`); when empty, a success.
    pub queues: std::collections::HashMap<&'static str, std::collections::VecDeque<Reply>>,
    pub seen: Vec<Seen>,
}

/// A broker whose answers the test scripts, recording every request it receives.
pub struct ScriptedBroker {
    pub addr: SocketAddr,
    pub script: Arc<Mutex<Script>>,
}

impl ScriptedBroker {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push(&self, route: &'static str, reply: Reply) {
        self.script
            .lock()
            .unwrap()
            .queues
            .entry(route)
            .or_default()
            .push_back(reply);
    }

    /// The requests received with `method` whose path contains `part`.
    pub fn seen(&self, method: &str, part: &str) -> Vec<Seen> {
        self.script
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.method == method && s.path.contains(part))
            .cloned()
            .collect()
    }
}

fn route_key(method: &str, path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or_default();
    let binding = path.contains("/service_bindings/");
    match (method, path.ends_with("/last_operation"), binding) {
        ("GET", _, _) if path == "/v2/catalog" => "catalog",
        ("GET", true, false) => "last_operation",
        ("GET", true, true) => "binding_last_operation",
        ("GET", false, true) => "fetch_binding",
        ("PUT", _, false) => "provision",
        ("PATCH", _, _) => "update",
        ("DELETE", _, false) => "deprovision",
        ("PUT", _, true) => "bind",
        ("DELETE", _, true) => "unbind",
        _ => "other",
    }
}

fn default_reply(key: &str) -> Reply {
    match key {
        "provision" | "bind" => Reply::new(
            201,
            json!({"credentials": {"user": "u", "password": "scripted-secret"}}),
        ),
        "last_operation" | "binding_last_operation" => {
            Reply::new(200, json!({"state": "succeeded"}))
        }
        "fetch_binding" => Reply::new(
            200,
            json!({"credentials": {"user": "u", "password": "fetched-secret"}}),
        ),
        _ => Reply::new(200, json!({})),
    }
}

/// A scripted broker (Basic `user:pass`) offering one bindable service with plans `fast`
/// (no deadline) and `bounded` (`maximum_polling_duration` of 1 s).
pub async fn scripted_broker() -> ScriptedBroker {
    let script: Arc<Mutex<Script>> = Arc::default();
    let state = script.clone();
    let catalog = json!({"services": [{
        "id": "scripted-svc", "name": "scripted", "description": "Scripted answers", "bindable": true,
        "bindings_retrievable": true, "instances_retrievable": true, "plan_updateable": true,
        "plans": [
            {"id": "plan-fast", "name": "fast", "description": "No deadline"},
            {"id": "plan-bounded", "name": "bounded", "description": "One second", "maximum_polling_duration": 1},
        ],
    }]});
    let app =
        axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri| {
            let state = state.clone();
            let catalog = catalog.clone();
            async move {
                let path = uri
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                let key = route_key(method.as_str(), &path);
                let reply = {
                    let mut s = state.lock().unwrap();
                    s.seen.push(Seen {
                        method: method.to_string(),
                        path: path.clone(),
                        at: std::time::Instant::now(),
                    });
                    if key == "catalog" {
                        Reply::new(200, catalog)
                    } else {
                        s.queues
                            .get_mut(key)
                            .and_then(|q| q.pop_front())
                            .unwrap_or_else(|| default_reply(key))
                    }
                };
                tokio::time::sleep(reply.delay).await;
                let mut response = axum::response::IntoResponse::into_response((
                    axum::http::StatusCode::from_u16(reply.status).unwrap(),
                    axum::Json(reply.body),
                ));
                if let Some(seconds) = reply.retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", seconds.to_string().parse().unwrap());
                }
                response
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    ScriptedBroker { addr, script }
}

impl Running {
    /// Makes every plan public (new plans are private), as `cf enable-service-access` would.
    pub async fn publish_all(&self) {
        let (_, plans) = self.get("/v2/service_plans?results-per-page=100").await;
        for plan in plans["resources"].as_array().unwrap() {
            let (status, _) = self
                .call(
                    "PUT",
                    &format!("/v2/service_plans/{}", guid(plan)),
                    &admin(),
                    Some(json!({"public": true})),
                )
                .await;
            assert_eq!(status, 201);
        }
    }

    /// The guid of the plan named `name`.
    pub async fn plan(&self, name: &str) -> String {
        let (_, found) = self.get(&format!("/v2/service_plans?q=name:{name}")).await;
        found["resources"][0]["metadata"]["guid"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates an instance of `plan` named `name` in `space-1`.
    pub async fn create_instance(
        &self,
        name: &str,
        plan: &str,
        accepts_incomplete: bool,
    ) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/v2/service_instances?accepts_incomplete={accepts_incomplete}"),
            &token(&["cloud_controller.write"]),
            Some(json!({"name": name, "service_plan_guid": plan, "space_guid": "space-1"})),
        )
        .await
    }

    /// Waits (up to 10 s) until the resource at `path` has left `in progress`, or is gone;
    /// returns its last body.
    pub async fn settle(&self, path: &str) -> (u16, Value) {
        for _ in 0..500 {
            let (status, body) = self.get(path).await;
            if status != 200 || body["entity"]["last_operation"]["state"] != "in progress" {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{path} stayed in progress");
    }

    /// Waits (up to 10 s) for `check` to hold on the resource at `path`.
    pub async fn wait_for(&self, path: &str, check: impl Fn(u16, &Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..500 {
            let (status, body) = self.get(path).await;
            if check(status, &body) {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{path} never reached the expected state: {last}");
    }
}

/// A working marketplace with a scripted broker registered.
pub async fn with_scripted() -> (Running, ScriptedBroker) {
    let m = start_working().await;
    let broker = scripted_broker().await;
    let (status, body) = m.register("scripted", &broker.url(), "user", "pass").await;
    assert_eq!(status, 201, "{body}");
    m.publish_all().await;
    (m, broker)
}

/// `metadata.guid` of a resource.
pub fn guid(resource: &Value) -> String {
    resource["metadata"]["guid"]
        .as_str()
        .unwrap_or_else(|| panic!("no guid in {resource}"))
        .to_owned()
}
