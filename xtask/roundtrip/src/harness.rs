//! A recording broker behind osb-server, reached by osb-client over loopback HTTP or in process.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::Request;
use osb_client::Client;
use osb_server::Broker;
use osb_types::{ApiVersion, Catalog, header};
use serde::{Deserialize, Serialize};

use crate::broker::RecordingBroker;

/// How the client reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Real HTTP over a socket on `127.0.0.1:0`, through reqwest and hyper.
    Loopback,
    /// The client's in-process transport calling the `Router` as a tower service.
    InProcess,
}

impl Mode {
    /// Both modes.
    pub const ALL: [Mode; 2] = [Mode::Loopback, Mode::InProcess];

    /// The modes selected by `OSB_ROUNDTRIP_MODE` (`loopback`, `in-process` or `both`, the
    /// default).
    pub fn from_env() -> Result<Vec<Mode>, String> {
        match std::env::var(crate::MODE_VAR) {
            Err(_) => Ok(Mode::ALL.to_vec()),
            Ok(value) if value.trim().is_empty() || value.trim() == "both" => {
                Ok(Mode::ALL.to_vec())
            }
            Ok(value) => value.parse().map(|mode| vec![mode]),
        }
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "loopback" => Ok(Mode::Loopback),
            "in-process" => Ok(Mode::InProcess),
            other => Err(format!(
                "unknown mode {other:?}: expected loopback, in-process or both"
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Loopback => "loopback",
            Mode::InProcess => "in-process",
        })
    }
}

/// The Basic credentials the harness configures on both sides.
pub const USERNAME: &str = "platform";
/// The Basic password the harness configures on both sides.
pub const PASSWORD: &str = "s3cret:with colon";

/// A [`RecordingBroker`] behind an osb-server router with the default guards and version
/// policy, and osb-clients that reach it in one [`Mode`].
///
/// Loopback mode serves the router on `127.0.0.1:0` in a task of the current tokio runtime; the
/// task ends when the harness is dropped.
pub struct Harness {
    mode: Mode,
    broker: Arc<RecordingBroker>,
    router: Router,
    base_url: String,
    server: Option<tokio::task::JoinHandle<()>>,
    clients: Mutex<HashMap<ApiVersion, Client>>,
    drop_version_header: bool,
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("mode", &self.mode)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// Starts a harness whose broker serves `catalog`.
    pub async fn start(mode: Mode, catalog: Catalog) -> Result<Harness, String> {
        Self::start_with(mode, catalog, false).await
    }

    /// Starts a harness; with `drop_version_header`, a layer in front of the router removes
    /// `X-Broker-API-Version` from every request, as if the platform had not sent it.
    pub async fn start_with(
        mode: Mode,
        catalog: Catalog,
        drop_version_header: bool,
    ) -> Result<Harness, String> {
        let broker = Arc::new(RecordingBroker::new(catalog));
        let mut router: Router = Broker::builder(Arc::clone(&broker))
            .basic_auth(USERNAME, PASSWORD)
            .build()
            .await
            .map_err(|e| format!("the router does not build: {e}"))?;
        if drop_version_header {
            router = router.layer(axum::middleware::map_request(
                |mut request: Request| async move {
                    request.headers_mut().remove(header::API_VERSION);
                    request
                },
            ));
        }
        let (base_url, server) = match mode {
            Mode::InProcess => ("http://broker.test".to_string(), None),
            Mode::Loopback => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|e| format!("cannot listen on 127.0.0.1:0: {e}"))?;
                let addr = listener
                    .local_addr()
                    .map_err(|e| format!("no local address: {e}"))?;
                let app = router.clone();
                let server = tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        eprintln!("the loopback server stopped: {e}");
                    }
                });
                (format!("http://{addr}"), Some(server))
            }
        };
        Ok(Harness {
            mode,
            broker,
            router,
            base_url,
            server,
            clients: Mutex::new(HashMap::new()),
            drop_version_header,
        })
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether `X-Broker-API-Version` is removed before the router sees a request.
    pub fn drops_version_header(&self) -> bool {
        self.drop_version_header
    }

    /// The recording broker.
    pub fn broker(&self) -> &RecordingBroker {
        &self.broker
    }

    /// The server's router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// A client configured for `version`, with the harness's credentials (one per version,
    /// reused).
    pub fn client(&self, version: ApiVersion) -> Result<Client, String> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(&version) {
            return Ok(client.clone());
        }
        let builder = Client::builder(&self.base_url)
            .basic_auth(USERNAME, PASSWORD)
            .api_version(version);
        let builder = match self.mode {
            Mode::Loopback => builder,
            Mode::InProcess => builder.service(self.router.clone()),
        };
        let client = builder
            .build()
            .map_err(|e| format!("the client does not build: {e}"))?;
        clients.insert(version, client.clone());
        Ok(client)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
