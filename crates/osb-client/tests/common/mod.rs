//! A scripted broker for tests: a real axum server on 127.0.0.1:0 that answers with queued
//! replies (the last one repeats) and records every request it receives.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use osb_client::{Client, ClientBuilder, OperationKind, PollPolicy, WaitForOperation};
use osb_types::{InstanceId, InstanceLastOperationQuery};

/// One request as the server saw it (path and query still percent-encoded).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    /// The raw (still encoded) value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }
}

/// A scripted reply.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn text(status: u16, body: &str) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Clone)]
struct Shared {
    script: Arc<Mutex<VecDeque<Reply>>>,
    last: Arc<Mutex<Option<Reply>>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

/// The running server.
pub struct Server {
    pub addr: SocketAddr,
    shared: Shared,
}

impl Server {
    /// Starts a server answering with `replies` in order; the last one repeats.
    pub async fn start(replies: Vec<Reply>) -> Server {
        let shared = Shared {
            script: Arc::new(Mutex::new(replies.into())),
            last: Arc::new(Mutex::new(None)),
            requests: Arc::new(Mutex::new(Vec::new())),
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server { addr, shared }
    }

    /// Starts a server that always answers with `reply`.
    pub async fn always(reply: Reply) -> Server {
        Server::start(vec![reply]).await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn builder(&self) -> ClientBuilder {
        Client::builder(self.url()).basic_auth("admin", "secret")
    }

    pub fn client(&self) -> Client {
        self.builder().build().expect("client")
    }

    /// A client for this server with more settings than [`Server::builder`] makes.
    pub fn client_with(&self, configure: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Client {
        configure(self.builder()).build().expect("client")
    }

    /// Replaces the remaining script.
    pub fn script(&self, replies: Vec<Reply>) {
        *self.shared.script.lock().unwrap() = replies.into();
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    pub fn last_request(&self) -> Recorded {
        self.requests().pop().expect("at least one request")
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    shared.requests.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers.clone(),
        body,
    });
    let reply = {
        let next = shared.script.lock().unwrap().pop_front();
        let mut last = shared.last.lock().unwrap();
        if let Some(next) = next {
            *last = Some(next);
        }
        last.clone()
            .unwrap_or_else(|| Reply::text(500, "no scripted reply"))
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).expect("status");
    for (name, value) in reply.headers {
        response.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(&value).expect("header value"),
        );
    }
    response
}

/// A polling policy with millisecond delays, for fast tests.
pub fn fast_policy() -> PollPolicy {
    PollPolicy::new()
        .min_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(4))
        .max_retry_after(Duration::from_millis(30))
        .max_duration(Duration::from_secs(10))
}

/// A wait for the last operation of instance `i` (no query parameters), on [`fast_policy`].
pub fn wait_on_instance<'a>(client: &Client, kind: OperationKind) -> WaitForOperation<'a> {
    client
        .wait_for_instance_operation(
            &InstanceId::new("i"),
            &InstanceLastOperationQuery::new(),
            kind,
        )
        .policy(fast_policy())
}

/// An address nothing listens on.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}
