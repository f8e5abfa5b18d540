//! The servers the harness starts besides the example brokers: the floor, the stateful layer
//! over `MemoryStore`, and the poll server for the poller case.
//!
//! Each prints `listening on http://ADDR` on its first line of standard output.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use osb_server::prelude::*;
use osb_store::{Backend, MemoryStore, Stateful, StatefulConfig};
use serde_json::{Map, Value, json};

use crate::error::{BenchError, Result};

/// Binds `listen`; returns the listener and its URL.
async fn bind(listen: &str) -> Result<(tokio::net::TcpListener, String)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(BenchError::io(format!("cannot listen on {listen}")))?;
    let addr = listener
        .local_addr()
        .map_err(BenchError::io("local address"))?;
    Ok((listener, format!("http://{addr}")))
}

/// Announces the address on standard output, then serves `app`.
async fn serve(listener: tokio::net::TcpListener, app: Router) -> Result<()> {
    let addr = listener
        .local_addr()
        .map_err(BenchError::io("local address"))?;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = out.flush();
    axum::serve(listener, app)
        .await
        .map_err(BenchError::io("serving"))
}

fn json_reply(status: StatusCode, value: &Value) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The body of a provision reply (the kv-broker's: a dashboard URL).
fn provision_reply(public: &str, id: &str) -> Value {
    json!({"dashboard_url": format!("{public}/kv/{id}")})
}

/// Credentials shaped as the kv-broker's: a URI and a 64-character token.
fn credentials(public: &str, id: &str) -> Map<String, Value> {
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut credentials = Map::new();
    credentials.insert("uri".into(), json!(format!("{public}/kv/{id}")));
    credentials.insert("token".into(), json!(token));
    credentials
}

#[derive(Clone)]
struct Floor {
    catalog: Bytes,
    public: Arc<str>,
}

/// Parses the request body as JSON (the work every broker does), refusing what is not an
/// object.
fn parsed(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

/// The floor: a bare axum server doing the same JSON work as a broker (parse the request body,
/// serialize the same reply) and nothing else: no auth, no version check, no state.
pub(crate) async fn floor(listen: &str, catalog: Vec<u8>) -> Result<()> {
    let (listener, public) = bind(listen).await?;
    let state = Floor {
        catalog: Bytes::from(catalog),
        public: Arc::from(public),
    };
    let app = Router::new()
        .route(
            "/v2/catalog",
            get(|State(s): State<Floor>| async move {
                ([(header::CONTENT_TYPE, "application/json")], s.catalog)
            }),
        )
        .route(
            "/v2/service_instances/{id}",
            put(
                |State(s): State<Floor>, Path(id): Path<String>, body: Bytes| async move {
                    match parsed(&body) {
                        Some(_) => json_reply(StatusCode::CREATED, &provision_reply(&s.public, &id)),
                        None => StatusCode::BAD_REQUEST.into_response(),
                    }
                },
            )
            .delete(|| async { json_reply(StatusCode::OK, &json!({})) }),
        )
        .route(
            "/v2/service_instances/{id}/last_operation",
            get(|| async { json_reply(StatusCode::OK, &json!({"state": "succeeded"})) }),
        )
        .route(
            "/v2/service_instances/{id}/service_bindings/{binding}",
            put(
                |State(s): State<Floor>, Path((id, _)): Path<(String, String)>, body: Bytes| async move {
                    match parsed(&body) {
                        Some(_) => json_reply(
                            StatusCode::CREATED,
                            &json!({"credentials": credentials(&s.public, &id)}),
                        ),
                        None => StatusCode::BAD_REQUEST.into_response(),
                    }
                },
            ),
        )
        .with_state(state);
    serve(listener, app).await
}

/// A backend with no work of its own, answering as the kv-broker does: isolates the stateful
/// layer and its store.
struct NullBackend {
    catalog: Catalog,
    public: String,
}

#[async_trait]
impl Backend for NullBackend {
    async fn catalog(&self) -> Result<Catalog, BrokerError> {
        Ok(self.catalog.clone())
    }

    /// It has no effects: creates are held in memory and written once, as the kv-broker's on
    /// SQLite.
    fn commits_with_store(&self) -> bool {
        true
    }

    async fn create_instance(
        &self,
        id: &InstanceId,
        _request: &ServiceInstanceProvisionRequest,
    ) -> Result<ServiceInstanceProvisionResponse, BrokerError> {
        Ok(ServiceInstanceProvisionResponse::new()
            .with_dashboard_url(format!("{}/kv/{id}", self.public)))
    }

    async fn delete_instance(&self, _id: &InstanceId) -> Result<(), BrokerError> {
        Ok(())
    }

    async fn create_binding(
        &self,
        id: &InstanceId,
        _binding: &BindingId,
        _request: &ServiceBindingRequest,
    ) -> Result<ServiceBindingResponse, BrokerError> {
        Ok(ServiceBindingResponse::new().with_credentials(credentials(&self.public, id.as_str())))
    }
}

/// osb-store's stateful layer over `MemoryStore`, with the catalog in `catalog` (JSON) and Basic
/// auth `user`/`password`.
pub(crate) async fn stateful_memory(
    listen: &str,
    catalog: &[u8],
    user: &str,
    password: &str,
) -> Result<()> {
    let catalog: Catalog = serde_json::from_slice(catalog)?;
    let (listener, public) = bind(listen).await?;
    let backend = NullBackend { catalog, public };
    let broker = Stateful::new(backend, MemoryStore::new(), StatefulConfig::default());
    let app: Router = Broker::builder(broker)
        .basic_auth(user, password)
        .build()
        .await
        .map_err(|e| BenchError::Setup(format!("cannot build the stateful broker: {e}")))?;
    serve(listener, app).await
}

#[derive(Clone)]
struct Polls {
    first_seen: Arc<Mutex<HashMap<String, Instant>>>,
    polls: Arc<AtomicU64>,
    delay: Duration,
    retry_after: u64,
}

/// A broker that answers every instance's last operation `in progress` (with `Retry-After`)
/// until `delay` after its first poll, then `succeeded`. `GET /stats` answers the number of polls.
pub(crate) async fn poll_server(listen: &str, delay: Duration, retry_after: u64) -> Result<()> {
    let (listener, _) = bind(listen).await?;
    let state = Polls {
        first_seen: Arc::default(),
        polls: Arc::default(),
        delay,
        retry_after,
    };
    let app = Router::new()
        .route(
            "/v2/service_instances/{id}/last_operation",
            get(
                |State(s): State<Polls>, Path(id): Path<String>| async move {
                    s.polls.fetch_add(1, Ordering::Relaxed);
                    let now = Instant::now();
                    let first = *s
                        .first_seen
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(id)
                        .or_insert(now);
                    if now.duration_since(first) >= s.delay {
                        json_reply(StatusCode::OK, &json!({"state": "succeeded"}))
                    } else {
                        let mut reply =
                            json_reply(StatusCode::OK, &json!({"state": "in progress"}));
                        if let Ok(value) = s.retry_after.to_string().parse() {
                            reply.headers_mut().insert(header::RETRY_AFTER, value);
                        }
                        reply
                    }
                },
            ),
        )
        .route(
            "/stats",
            get(|State(s): State<Polls>| async move {
                json_reply(
                    StatusCode::OK,
                    &json!({"polls": s.polls.load(Ordering::Relaxed)}),
                )
            }),
        )
        .with_state(state);
    serve(listener, app).await
}
