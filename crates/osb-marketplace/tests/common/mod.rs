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
