//! # osb-marketplace
//!
//! The platform side of the [Open Service Broker API](https://www.openservicebrokerapi.org/):
//! a service that speaks Cloud Controller's v2 API for service brokers, services and plans.
//! Brokers are registered with it; it reads their catalogs through [`osb_client`], lints them
//! with [`osb_types`]' linter, and keeps brokers, services and plans in SQLite (sqlx).
//!
//! - `POST /v2/services` as Cloud Controller documented it ("Creating a Service"): the body is
//!   read as JSON whatever the `Content-Type` says, the defaults are `active: false`,
//!   `bindable: true`, `tags: []`, `requires: []`, and the `201` carries every entity field,
//!   `null` where absent.
//! - `GET /v2/services[/:guid]`, `DELETE /v2/services/:guid[?purge=true]`,
//!   `GET /v2/services/:guid/service_plans`.
//! - `POST/GET/PUT/DELETE /v2/service_brokers[/:guid]`: registering fetches and lints
//!   `/v2/catalog` and creates the services and plans in one transaction; `PUT` re-reads it.
//! - `GET /v2/service_plans[/:guid]`, `PUT /v2/service_plans/:guid` (`public`).
//! - `/v2/service_instances` and `/v2/service_bindings`: provision, update, bind, unbind and
//!   deprovision through `osb-client`, with asynchronous operations polled in the background
//!   ([`Marketplace::spawn_worker`]), orphan mitigation with backoff, and requests in flight
//!   that survive a restart.
//! - Listings page as Cloud Controller does (`page`, `results-per-page`, `order-direction`,
//!   `q=name:value` with `: >= <= < > IN`); errors are `{"code", "description", "error_code"}`.
//! - Bearer tokens are JWTs as UAA issues them ([`auth`]): `cloud_controller.read` to read,
//!   `cloud_controller.write` for instances and bindings, `cloud_controller.admin` for
//!   brokers, services and plans.
//! - Broker passwords and binding credentials are never logged, and sealed at rest when a key
//!   is configured ([`secret`]); passwords are never returned.
//!
//! ```no_run
//! # async fn run() -> Result<(), osb_marketplace::Error> {
//! use osb_marketplace::{Config, Marketplace};
//! let config = Config::new("sqlite:data/marketplace.db", osb_marketplace::auth::TokenKeys::hs256(b"secret"));
//! let marketplace = Marketplace::open(config).await?;
//! marketplace.spawn_worker();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await.unwrap();
//! axum::serve(listener, marketplace.router()).await.unwrap();
//! # Ok(()) }
//! ```

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::get;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub mod auth;
mod bindings;
pub mod body;
mod brokers;
mod error;
mod instances;
pub mod list;
mod ops;
mod plans;
pub mod secret;
mod services;
mod sync;

pub use error::{CfCode, CfError, Error, Result};

use auth::TokenKeys;
use secret::Secrets;

/// How the marketplace runs.
#[derive(Clone)]
pub struct Config {
    /// The SQLite database (`sqlite:path/to/file.db`, created if missing).
    pub database_url: String,
    /// The keys bearer tokens are verified with.
    pub token_keys: TokenKeys,
    /// The keys broker passwords are sealed with.
    pub secrets: Secrets,
    /// How long a call to a broker may take.
    pub broker_timeout: Duration,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Polling, deadlines and orphan mitigation.
    pub timing: Timing,
}

/// How often and how long the marketplace polls brokers, and how it retries orphan mitigation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The poll interval when the broker sends no `Retry-After` (Cloud Controller: 60 s). A
    /// larger `Retry-After` wins.
    pub poll_interval: Duration,
    /// The longest wait between polls, whatever `Retry-After` says (24 h).
    pub max_poll_interval: Duration,
    /// The deadline of an operation whose plan has no `maximum_polling_duration` (7 days).
    pub default_deadline: Duration,
    /// The first delay of orphan mitigation; attempt `n` waits `backoff × 2^n` (Cloud
    /// Controller: 1 minute).
    pub orphan_backoff: Duration,
    /// Orphan-mitigation attempts before giving up (Cloud Controller: 11).
    pub orphan_attempts: u32,
    /// How often the background worker looks for due polls and jobs.
    pub tick: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            poll_interval: Duration::from_secs(60),
            max_poll_interval: Duration::from_secs(24 * 3600),
            default_deadline: Duration::from_secs(7 * 24 * 3600),
            orphan_backoff: Duration::from_secs(60),
            orphan_attempts: 11,
            tick: Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.database_url)
            .field("token_keys", &self.token_keys)
            .field("secrets", &self.secrets)
            .field("broker_timeout", &self.broker_timeout)
            .field("body_limit", &self.body_limit)
            .field("timing", &self.timing)
            .finish()
    }
}

impl Config {
    /// A configuration with the database, the token keys, no sealing key, a 60-second broker
    /// timeout and a 1 MiB body limit.
    pub fn new(database_url: impl Into<String>, token_keys: TokenKeys) -> Config {
        Config {
            database_url: database_url.into(),
            token_keys,
            secrets: Secrets::plain(),
            broker_timeout: Duration::from_secs(60),
            body_limit: 1 << 20,
            timing: Timing::default(),
        }
    }
}

/// Where the binary keeps its database unless told otherwise.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:data/marketplace.db";
/// Where the binary listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

impl Config {
    /// The configuration from the environment:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `OSB_MARKETPLACE_DATABASE_URL` | the SQLite database | `sqlite:data/marketplace.db` |
    /// | `OSB_MARKETPLACE_TOKEN_KEY` | the HS256 key tokens are signed with | generated |
    /// | `OSB_MARKETPLACE_TOKEN_PUBLIC_KEY` | a PEM file: verify RS256 tokens with it instead | — |
    /// | `OSB_MARKETPLACE_SECRET_KEY` | base64 of 32 bytes: seal broker passwords at rest | none (stored plain) |
    /// | `OSB_MARKETPLACE_OLD_SECRET_KEYS` | comma-separated earlier keys, to open what they sealed | — |
    /// | `OSB_MARKETPLACE_BROKER_TIMEOUT` | seconds a broker call may take | 60 |
    ///
    /// The second value is the generated HS256 key, when none was configured.
    pub fn from_env() -> Result<(Config, Option<String>)> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let database_url =
            var("OSB_MARKETPLACE_DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let mut generated = None;
        let token_keys = match (
            var("OSB_MARKETPLACE_TOKEN_PUBLIC_KEY"),
            var("OSB_MARKETPLACE_TOKEN_KEY"),
        ) {
            (Some(path), _) => {
                let pem = std::fs::read(&path).map_err(|e| {
                    Error::Config(format!("cannot read the token public key {path:?}: {e}"))
                })?;
                TokenKeys::rs256_public_pem(&pem)?
            }
            (None, Some(key)) => TokenKeys::hs256(key.as_bytes()),
            (None, None) => {
                let key = format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                );
                let keys = TokenKeys::hs256(key.as_bytes());
                generated = Some(key);
                keys
            }
        };
        let secrets = match var("OSB_MARKETPLACE_SECRET_KEY") {
            None => Secrets::plain(),
            Some(key) => {
                let key = Secrets::parse_key(&key)?;
                let old = var("OSB_MARKETPLACE_OLD_SECRET_KEYS")
                    .map(|keys| {
                        keys.split(',')
                            .map(Secrets::parse_key)
                            .collect::<Result<Vec<_>>>()
                    })
                    .transpose()?
                    .unwrap_or_default();
                Secrets::with_keys(key, &old)
            }
        };
        let broker_timeout = match var("OSB_MARKETPLACE_BROKER_TIMEOUT") {
            None => Duration::from_secs(60),
            Some(s) => Duration::from_secs(s.parse().ok().filter(|&n: &u64| n > 0).ok_or_else(|| {
                Error::Config(format!("OSB_MARKETPLACE_BROKER_TIMEOUT must be a positive number of seconds, not {s:?}"))
            })?),
        };
        Ok((
            Config {
                database_url,
                token_keys,
                secrets,
                broker_timeout,
                body_limit: 1 << 20,
                timing: Timing::default(),
            },
            generated,
        ))
    }
}

/// The marketplace: its database and settings. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Marketplace {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: SqlitePool,
    config: Config,
    /// Write transactions wait here in turn rather than in SQLite's busy handler.
    write: tokio::sync::Mutex<()>,
}

impl Marketplace {
    /// Opens (creating if missing) and migrates the database.
    ///
    /// A file that is not SQLite, or that holds another program's tables, is
    /// [`Error::Incompatible`].
    pub async fn open(config: Config) -> Result<Marketplace> {
        let url = &config.database_url;
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Config(format!("{url:?} is not a SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A write acknowledged with 2xx must survive a power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:");
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 4 })
            .min_connections(u32::from(in_memory))
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(None)
            .connect_with(connect)
            .await
            .map_err(|e| Error::Incompatible(e.to_string()))?;
        let foreign: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT IN ('_sqlx_migrations', 'service_brokers', 'services', 'service_plans', \
             'service_instances', 'service_bindings', 'orphan_jobs') LIMIT 1",
        )
        .fetch_optional(&pool)
        .await
        .map_err(|e| Error::Incompatible(e.to_string()))?;
        if let Some(table) = foreign {
            return Err(Error::Incompatible(format!(
                "it holds a table {table:?} that is not the marketplace's"
            )));
        }
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| Error::Incompatible(e.to_string()))?;
        Ok(Marketplace {
            inner: Arc::new(Inner {
                pool,
                config,
                write: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The database pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The HTTP API: Cloud Controller's v2 routes for brokers, services and plans. Unknown
    /// routes and methods get `404 CF-NotFound`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v2/services", get(services::list).post(services::create))
            .route(
                "/v2/services/{guid}",
                get(services::show).delete(services::delete),
            )
            .route("/v2/services/{guid}/service_plans", get(services::plans))
            .route(
                "/v2/service_brokers",
                get(brokers::list).post(brokers::create),
            )
            .route(
                "/v2/service_brokers/{guid}",
                get(brokers::show)
                    .put(brokers::update)
                    .delete(brokers::delete),
            )
            .route(
                "/v2/service_instances",
                get(instances::list).post(instances::create),
            )
            .route(
                "/v2/service_instances/{guid}",
                get(instances::show)
                    .put(instances::update)
                    .delete(instances::delete),
            )
            .route(
                "/v2/service_instances/{guid}/parameters",
                get(instances::parameters),
            )
            .route(
                "/v2/service_instances/{guid}/service_bindings",
                get(bindings::of_instance),
            )
            .route(
                "/v2/service_bindings",
                get(bindings::list).post(bindings::create),
            )
            .route(
                "/v2/service_bindings/{guid}",
                get(bindings::show).delete(bindings::delete),
            )
            .route(
                "/v2/service_bindings/{guid}/parameters",
                get(bindings::parameters),
            )
            .route("/v2/service_plans", get(plans::list))
            .route(
                "/v2/service_plans/{guid}",
                get(plans::show).put(plans::update),
            )
            .fallback(|| async { CfError::unknown_route() })
            .method_not_allowed_fallback(|| async { CfError::unknown_route() })
            .with_state(self.clone())
    }

    /// Starts the background worker on the current tokio runtime: it sends requests an earlier
    /// process left in flight, polls asynchronous operations when they are due, and runs
    /// orphan mitigation. Run one per database. Abort the handle to stop it.
    pub fn spawn_worker(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(ops::work(self.clone()))
    }

    pub(crate) fn keys(&self) -> &TokenKeys {
        &self.inner.config.token_keys
    }

    pub(crate) fn secrets(&self) -> &Secrets {
        &self.inner.config.secrets
    }

    pub(crate) async fn write_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.write.lock().await
    }
}

/// Now, as Cloud Controller writes times: RFC 3339 with `+00:00`.
pub(crate) fn now() -> String {
    rfc3339(SystemTime::now())
}

/// A time as Cloud Controller writes it.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(time).to_string();
    match text.strip_suffix('Z') {
        Some(t) => format!("{t}+00:00"),
        None => text,
    }
}

/// A fresh guid.
pub(crate) fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Reads a JSON text column back as JSON (`null` when absent or unreadable).
pub(crate) fn json_column(text: Option<&str>) -> serde_json::Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// A resource answered with `status` and a `Location` header naming it.
pub(crate) fn answer(
    status: axum::http::StatusCode,
    guid: &str,
    kind: &str,
    body: serde_json::Value,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        status,
        [(axum::http::header::LOCATION, format!("/v2/{kind}/{guid}"))],
        axum::Json(body),
    )
        .into_response()
}

/// The `metadata` of a resource: guid, url, and times.
pub(crate) fn metadata(
    kind: &str,
    guid: &str,
    created_at: &str,
    updated_at: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({
        "guid": guid,
        "url": format!("/v2/{kind}/{guid}"),
        "created_at": created_at,
        "updated_at": updated_at,
    })
}
