//! The reference broker of osb-rs: each service instance is a key-value namespace the broker
//! serves itself, and a binding's credentials (`uri` and a bearer `token`) really work against
//! it. Everything is durable: the broker's state lives in SQLite through osb-store, so
//! instances, bindings, keys and operations in progress survive restarts.
//!
//! One offering, `kv`, with three plans:
//!
//! | plan | id | behaviour |
//! |---|---|---|
//! | `small` | [`SMALL_PLAN_ID`] | synchronous; up to 100 keys |
//! | `async` | [`ASYNC_PLAN_ID`] | provisioning takes [`Config::async_delay`] and answers `202`; up to 100 keys |
//! | `sized` | [`SIZED_PLAN_ID`] | synchronous; `parameters.max_keys` (1–1000, schema-checked) sets the limit |
//!
//! The key-value API, for whoever holds a binding's token:
//!
//! | request | answer |
//! |---|---|
//! | `PUT /kv/{instance_id}/{key}` with the value as the body | `204`, or `507` when the instance holds its maximum of keys |
//! | `GET /kv/{instance_id}/{key}` | `200` with the value, or `404` |
//! | `DELETE /kv/{instance_id}/{key}` | `204`, or `404` |
//!
//! with `Authorization: Bearer {token}`; a token of another instance, or of a binding that was
//! unbound, gets `401`. A rotation (`predecessor_binding_id`) issues a new token and keeps the
//! old one working until its binding is unbound.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use osb_server::prelude::*;
use osb_server::types::{ServiceInstanceUpdateRequest, ServiceInstanceUpdateResponse};
use osb_store::{
    AnyStore, Backend, Key, SqlValue, SqliteStore, Stateful, StatefulConfig, Store, StoreError,
    StoreKeys,
};
use serde_json::{Map, Value, json};

/// The id of the `kv` offering.
pub const SERVICE_ID: &str = "3f8a1c52-7d4e-4b9a-9e21-6c0d5b7a8e10";
/// The synchronous `small` plan (100 keys).
pub const SMALL_PLAN_ID: &str = "8c2e6f1a-0b3d-4a57-b9c8-1d2e3f4a5b6c";
/// The `async` plan: provisioning answers `202` and takes [`Config::async_delay`].
pub const ASYNC_PLAN_ID: &str = "b1d4e7f0-2a5c-4e8b-9d1f-3a6c9e2b5d80";
/// The `sized` plan: `parameters.max_keys` (1–1000) sets the limit.
pub const SIZED_PLAN_ID: &str = "e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a8b";
/// Keys an instance holds unless its plan says otherwise.
pub const DEFAULT_MAX_KEYS: i64 = 100;

/// Settings of the kv-broker, read from the environment by [`Config::from_env`].
#[derive(Clone)]
pub struct Config {
    /// Basic auth user name (`OSB_BROKER_USERNAME`, default `admin`).
    pub username: String,
    /// Basic auth password (`OSB_BROKER_PASSWORD`, default: a fresh random one).
    pub password: String,
    /// The database (`OSB_DATABASE_URL`, default `sqlite:data/kv-broker.db`; a
    /// `postgres://…` URL puts the state in PostgreSQL, where several replicas can share it).
    pub database_url: String,
    /// The base URL bindings hand out for the key-value API (`OSB_PUBLIC_URL`, default
    /// `http://{listen address}`).
    pub public_url: Option<String>,
    /// How long provisioning on the `async` plan takes (`OSB_ASYNC_DELAY_MS`, default 3000).
    pub async_delay: Duration,
    /// How the stateful layer answers (retention, budgets, leases).
    pub stateful: StatefulConfig,
    /// Keys that encrypt binding credentials and request parameters in the database
    /// (`OSB_STORE_KEY`, `OSB_STORE_OLD_KEYS`: Base64 of 32 bytes; [`StoreKeys`]). Without them
    /// the broker logs a warning at start.
    pub store_keys: Option<StoreKeys>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("database_url", &redact_url(&self.database_url))
            .field("public_url", &self.public_url)
            .field("async_delay", &self.async_delay)
            .field("stateful", &self.stateful)
            .field("store_keys", &self.store_keys)
            .finish()
    }
}

/// The URL with the password of its user part, and any `password=` query value, replaced by
/// `<redacted>`: for `Debug` and logs.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme) = out.find("://") {
        let authority_end = out[scheme + 3..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| scheme + 3 + i);
        if let Some(at) = out[scheme + 3..authority_end].rfind('@') {
            let at = scheme + 3 + at;
            if let Some(colon) = out[scheme + 3..at].find(':') {
                out.replace_range(scheme + 3 + colon + 1..at, "<redacted>");
            }
        }
    }
    if let Some(query) = out.find('?') {
        let (head, tail) = out.split_at(query + 1);
        let tail: Vec<String> = tail
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                    format!("{name}=<redacted>")
                }
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", tail.join("&"));
    }
    out
}

impl Config {
    /// These credentials and database, 3 s async work, default stateful settings.
    pub fn new(
        username: impl Into<String>,
        password: impl Into<String>,
        database_url: impl Into<String>,
    ) -> Self {
        Config {
            username: username.into(),
            password: password.into(),
            database_url: database_url.into(),
            public_url: None,
            async_delay: Duration::from_secs(3),
            stateful: StatefulConfig::default(),
            store_keys: None,
        }
    }

    /// Reads the environment; the flag says whether the password was generated.
    pub fn from_env() -> (Self, bool) {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let password = var("OSB_BROKER_PASSWORD");
        let generated = password.is_none();
        let mut config = Config::new(
            var("OSB_BROKER_USERNAME").unwrap_or_else(|| "admin".into()),
            password.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            var("OSB_DATABASE_URL").unwrap_or_else(|| "sqlite:data/kv-broker.db".into()),
        );
        config.public_url = var("OSB_PUBLIC_URL");
        if let Some(ms) = var("OSB_ASYNC_DELAY_MS").and_then(|v| v.parse().ok()) {
            config.async_delay = Duration::from_millis(ms);
        }
        if let Some(ms) = var("OSB_LEASE_MS").and_then(|v| v.parse().ok()) {
            config.stateful = config.stateful.lease(Duration::from_millis(ms));
        }
        (config, generated)
    }
}

/// The catalog: the `kv` offering with its three plans.
pub fn catalog() -> Catalog {
    let max_keys = json!({"parameters": {"$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object", "additionalProperties": false,
        "properties": {"max_keys": {"type": "integer", "minimum": 1, "maximum": 1000}}}});
    serde_json::from_value(json!({"services": [{
        "id": SERVICE_ID, "name": "kv", "description": "Key-value namespaces served over HTTP",
        "bindable": true, "instances_retrievable": true, "bindings_retrievable": true,
        "tags": ["kv", "example"], "metadata": {"displayName": "Key-value store"},
        "plans": [
            {"id": SMALL_PLAN_ID, "name": "small", "description": "Up to 100 keys, at once",
             "binding_rotatable": true},
            {"id": ASYNC_PLAN_ID, "name": "async", "description": "Up to 100 keys, provisioned in the background",
             "maximum_polling_duration": 600, "binding_rotatable": true},
            {"id": SIZED_PLAN_ID, "name": "sized", "description": "As many keys as max_keys says (1-1000)",
             "binding_rotatable": true,
             "schemas": {"service_instance": {"create": max_keys}}}]}]}))
    .unwrap_or_else(|e| panic!("the built-in catalog is valid: {e}"))
}

/// The kv-broker's own tables, in the same database as osb-store's.
#[derive(Clone, Debug)]
pub enum Db {
    /// SQLite: writes queue with the store's own ([`SqliteStore::write_guard`]).
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
}

/// Runs the same code on either pool (the queries are written for both).
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite(store) => {
                let $pool = store.pool();
                $body
            }
            Db::Postgres($pool) => $body,
        }
    };
}

/// As `on_db!`, for a write: on SQLite it waits in line with the store's writes.
macro_rules! on_db_write {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite(store) => {
                let _queue = store.write_guard().await;
                let $pool = store.pool();
                $body
            }
            Db::Postgres($pool) => $body,
        }
    };
}

/// A value bound to one of the backend's statements.
enum Arg {
    Text(String),
    Int(i64),
}

/// The work of the kv-broker: its own tables beside osb-store's.
#[derive(Clone, Debug)]
pub struct KvBackend {
    db: Db,
    public_url: String,
    async_delay: Duration,
}

/// How a token's digest starts in `kv_tokens`.
const DIGEST_PREFIX: &str = "sha256:";

/// What `kv_tokens` keeps of a token: its SHA-256, so the database never holds a usable token.
/// Tokens are 256 random bits, so a fast hash is enough.
fn token_digest(token: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(token.as_bytes());
    let mut text = String::with_capacity(DIGEST_PREFIX.len() + 64);
    text.push_str(DIGEST_PREFIX);
    for byte in digest {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

fn internal(error: sqlx::Error) -> BrokerError {
    BrokerError::internal(error)
}

impl KvBackend {
    /// Creates the kv tables in the database if they are missing.
    pub async fn new(
        db: Db,
        public_url: String,
        async_delay: Duration,
    ) -> Result<Self, StoreError> {
        let blob = match &db {
            Db::Sqlite(_) => "BLOB",
            Db::Postgres(_) => "BYTEA",
        };
        let statements = [
            "CREATE TABLE IF NOT EXISTS kv_instances (instance_id TEXT PRIMARY KEY NOT NULL, max_keys BIGINT NOT NULL)".to_string(),
            "CREATE TABLE IF NOT EXISTS kv_tokens (instance_id TEXT NOT NULL, binding_id TEXT NOT NULL, token TEXT NOT NULL UNIQUE, PRIMARY KEY (instance_id, binding_id))".to_string(),
            format!("CREATE TABLE IF NOT EXISTS kv_entries (instance_id TEXT NOT NULL, key TEXT NOT NULL, value {blob} NOT NULL, PRIMARY KEY (instance_id, key))"),
        ];
        // Replicas starting together would race on PostgreSQL's catalog with concurrent
        // `CREATE TABLE IF NOT EXISTS`: one transaction under an advisory lock creates them.
        let lock = match &db {
            Db::Sqlite(_) => None,
            Db::Postgres(_) => Some("SELECT pg_advisory_xact_lock(7203142021)"),
        };
        on_db!(&db, pool => {
            async {
                let mut tx = pool.begin().await?;
                if let Some(lock) = lock {
                    sqlx::query(lock).execute(&mut *tx).await?;
                }
                for statement in &statements {
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            .await
        })
        .map_err(StoreError::from)?;
        Ok(KvBackend {
            db,
            public_url,
            async_delay,
        })
    }

    /// Runs `statements` as one atomic write with the record of the call on `key`: on SQLite
    /// in the transaction in which the stateful layer records the call's outcome
    /// ([`SqliteStore::execute_with`]; one commit for both, or neither), on PostgreSQL in a
    /// transaction of their own, before the outcome is recorded.
    async fn write(
        &self,
        key: &Key,
        statements: Vec<(&'static str, Vec<Arg>)>,
    ) -> Result<(), BrokerError> {
        match &self.db {
            Db::Sqlite(store) => {
                let statements = statements
                    .into_iter()
                    .map(|(sql, args)| {
                        let values = args
                            .into_iter()
                            .map(|arg| match arg {
                                Arg::Text(t) => SqlValue::Text(t),
                                Arg::Int(i) => SqlValue::Int(i),
                            })
                            .collect();
                        (sql, values)
                    })
                    .collect();
                store.execute_with(key, statements);
                Ok(())
            }
            Db::Postgres(pool) => async {
                let mut tx = pool.begin().await?;
                for (sql, args) in statements {
                    let query = args.into_iter().fold(sqlx::query(sql), |q, arg| match arg {
                        Arg::Text(t) => q.bind(t),
                        Arg::Int(i) => q.bind(i),
                    });
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            .await
            .map_err(internal),
        }
    }

    /// Records the key limit that request `parameters` set, if they set one. An instance keeps
    /// a row in `kv_instances` only then; without one, the plan's default applies.
    async fn set_max_keys(
        &self,
        id: &InstanceId,
        parameters: Option<&Map<String, Value>>,
    ) -> Result<(), BrokerError> {
        let Some(max_keys) = parameters
            .and_then(|p| p.get("max_keys"))
            .and_then(Value::as_i64)
        else {
            return Ok(());
        };
        self.write(
            &Key::instance(id.clone()),
            vec![(
                "INSERT INTO kv_instances (instance_id, max_keys) VALUES ($1, $2) \
                 ON CONFLICT (instance_id) DO UPDATE SET max_keys = excluded.max_keys",
                vec![Arg::Text(id.to_string()), Arg::Int(max_keys)],
            )],
        )
        .await
    }

    /// The instance a bearer token opens, if any. Tokens are kept as digests; a token stored
    /// in clear by an earlier version is still accepted.
    async fn instance_of(&self, token: &str) -> Result<Option<String>, sqlx::Error> {
        let digest = token_digest(token);
        // A digest sent as a token must not match itself.
        let legacy = (!token.starts_with(DIGEST_PREFIX)).then_some(token);
        on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT instance_id FROM kv_tokens WHERE token = $1 OR token = $2")
                .bind(&digest)
                .bind(legacy)
                .fetch_optional(pool)
                .await
        })
    }
}

#[async_trait]
impl Backend for KvBackend {
    async fn catalog(&self) -> Result<Catalog, BrokerError> {
        Ok(catalog())
    }

    fn is_async(&self, plan_id: &str) -> bool {
        plan_id == ASYNC_PLAN_ID
    }

    /// On SQLite, every write of a create goes with the record of its outcome
    /// ([`SqliteStore::execute_with`]).
    fn commits_with_store(&self) -> bool {
        matches!(self.db, Db::Sqlite(_))
    }

    async fn create_instance(
        &self,
        id: &InstanceId,
        request: &ServiceInstanceProvisionRequest,
    ) -> Result<ServiceInstanceProvisionResponse, BrokerError> {
        if request.plan_id.as_str() == ASYNC_PLAN_ID {
            tokio::time::sleep(self.async_delay).await;
        }
        self.set_max_keys(id, request.parameters.as_ref()).await?;
        Ok(ServiceInstanceProvisionResponse::new()
            .with_dashboard_url(format!("{}/kv/{id}", self.public_url)))
    }

    async fn update_instance(
        &self,
        id: &InstanceId,
        request: &ServiceInstanceUpdateRequest,
    ) -> Result<ServiceInstanceUpdateResponse, BrokerError> {
        self.set_max_keys(id, request.parameters.as_ref()).await?;
        Ok(ServiceInstanceUpdateResponse::new())
    }

    async fn delete_instance(&self, id: &InstanceId) -> Result<(), BrokerError> {
        self.write(
            &Key::instance(id.clone()),
            [
                "DELETE FROM kv_entries WHERE instance_id = $1",
                "DELETE FROM kv_tokens WHERE instance_id = $1",
                "DELETE FROM kv_instances WHERE instance_id = $1",
            ]
            .into_iter()
            .map(|sql| (sql, vec![Arg::Text(id.to_string())]))
            .collect(),
        )
        .await
    }

    async fn create_binding(
        &self,
        id: &InstanceId,
        binding: &BindingId,
        _request: &ServiceBindingRequest,
    ) -> Result<ServiceBindingResponse, BrokerError> {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        // A binding created again (after a restart) gets a new token; the old one is revoked.
        self.write(
            &Key::binding(id.clone(), binding.clone()),
            vec![(
                "INSERT INTO kv_tokens (instance_id, binding_id, token) VALUES ($1, $2, $3) \
             ON CONFLICT (instance_id, binding_id) DO UPDATE SET token = excluded.token",
                vec![
                    Arg::Text(id.to_string()),
                    Arg::Text(binding.to_string()),
                    Arg::Text(token_digest(&token)),
                ],
            )],
        )
        .await?;
        let mut credentials = Map::new();
        credentials.insert("uri".into(), json!(format!("{}/kv/{id}", self.public_url)));
        credentials.insert("token".into(), json!(token));
        Ok(ServiceBindingResponse::new().with_credentials(credentials))
    }

    async fn delete_binding(
        &self,
        id: &InstanceId,
        binding: &BindingId,
    ) -> Result<(), BrokerError> {
        self.write(
            &Key::binding(id.clone(), binding.clone()),
            vec![(
                "DELETE FROM kv_tokens WHERE instance_id = $1 AND binding_id = $2",
                vec![Arg::Text(id.to_string()), Arg::Text(binding.to_string())],
            )],
        )
        .await
    }
}

/// The broker with its store, for the router and the key-value API.
pub type KvBroker = Stateful<KvBackend, AnyStore>;

/// Opens the database, and builds the OSB router (Basic auth), the key-value API and
/// `GET /healthz` (no auth: `200` while the store answers, `503` otherwise).
pub async fn app(config: Config, listen: SocketAddr) -> Result<(Router, KvBroker), AppError> {
    if let Some(path) = config
        .database_url
        .strip_prefix("sqlite:")
        .filter(|p| !p.starts_with(':'))
    {
        let path = path.split('?').next().unwrap_or(path);
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                AppError::Store(StoreError::Unavailable(format!(
                    "cannot create the directory {}: {e}",
                    parent.display()
                )))
            })?;
        }
    }
    if config.store_keys.is_none() {
        tracing::warn!(
            "OSB_STORE_KEY is not set: binding credentials are stored unencrypted in the database"
        );
    }
    let store = AnyStore::open_with_keys(&config.database_url, config.store_keys.clone()).await?;
    let db = match &store {
        AnyStore::Sqlite(store) => Db::Sqlite(store.clone()),
        AnyStore::Postgres(store) => Db::Postgres(store.pool().clone()),
        _ => {
            return Err(AppError::Store(StoreError::Unavailable(
                "the kv-broker needs a sqlite: or postgres:// database".into(),
            )));
        }
    };
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{listen}"));
    let backend = KvBackend::new(db, public_url, config.async_delay).await?;
    let broker = Stateful::new(backend, store, config.stateful.clone());
    let osb: Router = Broker::builder(broker.clone())
        .basic_auth(config.username.clone(), config.password.clone())
        .build()
        .await
        .map_err(AppError::Broker)?;
    let kv = Router::new()
        .route(
            "/kv/{instance}/{key}",
            get(get_key).put(put_key).delete(delete_key),
        )
        .route("/healthz", get(health))
        .with_state(broker.clone());
    Ok((osb.merge(kv), broker))
}

/// Why the broker could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum AppError {
    /// The database could not be opened or is not the broker's.
    Store(StoreError),
    /// The OSB router could not be built.
    Broker(osb_server::Error),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Store(e) => write!(f, "{e}"),
            AppError::Broker(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AppError {}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        AppError::Store(error)
    }
}

/// A broker started by [`start`]; abort `task` to stop it.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The broker (its store and backend).
    pub broker: KvBroker,
    /// The server task.
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the broker on an ephemeral loopback port, for tests.
pub async fn start(config: Config) -> Result<Running, Box<dyn std::error::Error + Send + Sync>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (app, broker) = app(config, addr).await?;
    let task = tokio::spawn(async move {
        let serve = osb_server::Server::new().serve(listener, app, std::future::pending());
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok(Running { addr, broker, task })
}

fn kv_error(status: StatusCode, description: &str) -> Response {
    (status, axum::Json(json!({"description": description}))).into_response()
}

/// Checks the bearer token against the instance; the error is the reply to send.
async fn authorize(broker: &KvBroker, headers: &HeaderMap, instance: &str) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let unauthorized = || {
        let mut response = kv_error(
            StatusCode::UNAUTHORIZED,
            "Send a binding's token of this instance as `Authorization: Bearer <token>`.",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        response
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(unauthorized());
    };
    match broker.backend().instance_of(token).await {
        Ok(Some(owner)) if owner == instance => Ok(()),
        Ok(_) => Err(unauthorized()),
        Err(e) => {
            tracing::warn!(error = %e, "could not check a token");
            Err(kv_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The store is unavailable; try again later.",
            ))
        }
    }
}

impl KvBackend {
    async fn get(&self, instance: &str, key: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT value FROM kv_entries WHERE instance_id = $1 AND key = $2")
                .bind(instance)
                .bind(key)
                .fetch_optional(pool)
                .await
        })
    }

    /// Stores a value; `Some(max)` when the instance already holds its maximum of keys. The
    /// count and the write are one transaction that holds the instance's write lock (SQLite:
    /// `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock on the instance id,
    /// which also holds for instances without a `kv_instances` row).
    async fn put(
        &self,
        instance: &str,
        key: &str,
        value: &[u8],
    ) -> Result<Option<i64>, sqlx::Error> {
        let (begin, lock) = match &self.db {
            Db::Sqlite(_) => ("BEGIN IMMEDIATE", None),
            Db::Postgres(_) => (
                "BEGIN",
                Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"),
            ),
        };
        on_db_write!(&self.db, pool => {
            async {
                let mut tx = pool.begin_with(begin).await?;
                if let Some(lock) = lock {
                    sqlx::query(lock).bind(instance).execute(&mut *tx).await?;
                }
                let max: i64 =
                    sqlx::query_scalar("SELECT max_keys FROM kv_instances WHERE instance_id = $1")
                        .bind(instance)
                        .fetch_optional(&mut *tx)
                        .await?
                        .unwrap_or(DEFAULT_MAX_KEYS);
                let exists: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM kv_entries WHERE instance_id = $1 AND key = $2",
                )
                .bind(instance)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
                let count: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM kv_entries WHERE instance_id = $1")
                        .bind(instance)
                        .fetch_one(&mut *tx)
                        .await?;
                if exists.is_none() && count >= max {
                    return Ok(Some(max));
                }
                sqlx::query(
                    "INSERT INTO kv_entries (instance_id, key, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value",
                )
                .bind(instance)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(None)
            }
            .await
        })
    }

    async fn delete(&self, instance: &str, key: &str) -> Result<bool, sqlx::Error> {
        on_db_write!(&self.db, pool => {
            sqlx::query("DELETE FROM kv_entries WHERE instance_id = $1 AND key = $2")
                .bind(instance)
                .bind(key)
                .execute(pool)
                .await
                .map(|done| done.rows_affected() > 0)
        })
    }
}

fn unavailable() -> Response {
    kv_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The store is unavailable; try again later.",
    )
}

async fn get_key(
    State(broker): State<KvBroker>,
    UrlPath((instance, key)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authorize(&broker, &headers, &instance).await {
        return response;
    }
    match broker.backend().get(&instance, &key).await {
        Ok(Some(value)) => (StatusCode::OK, value).into_response(),
        Ok(None) => kv_error(StatusCode::NOT_FOUND, "No such key."),
        Err(_) => unavailable(),
    }
}

async fn put_key(
    State(broker): State<KvBroker>,
    UrlPath((instance, key)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = authorize(&broker, &headers, &instance).await {
        return response;
    }
    match broker.backend().put(&instance, &key, &body).await {
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Ok(Some(max)) => kv_error(
            StatusCode::INSUFFICIENT_STORAGE,
            &format!("The instance holds its maximum of {max} keys."),
        ),
        Err(_) => unavailable(),
    }
}

async fn delete_key(
    State(broker): State<KvBroker>,
    UrlPath((instance, key)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authorize(&broker, &headers, &instance).await {
        return response;
    }
    match broker.backend().delete(&instance, &key).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => kv_error(StatusCode::NOT_FOUND, "No such key."),
        Err(_) => unavailable(),
    }
}

async fn health(State(broker): State<KvBroker>) -> Response {
    match broker.store().health().await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({"store": "ok"}))).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"store": "unavailable", "description": e.to_string()})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_passwords() {
        let mut config = Config::new(
            "admin",
            "s3cret-pw-1",
            "postgres://kv:db-pw-2@db.example:5432/kv?sslmode=require&password=db-pw-3",
        );
        config.public_url = Some("https://kv.example".into());
        let text = format!("{config:?}");
        for secret in ["s3cret-pw-1", "db-pw-2", "db-pw-3"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(
            text.contains("db.example:5432/kv?sslmode=require"),
            "{text}"
        );
        assert_eq!(redact_url("sqlite:data/kv.db"), "sqlite:data/kv.db");
        assert_eq!(
            redact_url("postgres://user@host/db"),
            "postgres://user@host/db"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@host/db"),
            "postgres://u:<redacted>@host/db"
        );
    }
}
