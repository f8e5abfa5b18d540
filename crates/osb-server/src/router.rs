//! The router builder, the shared state and the per-request middleware.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue};
use osb_types::{ApiVersion, Catalog, CatalogIndex, ShapeForVersion, has_errors};
use tokio::time::Instant;
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::auth::Auth;
use crate::error::{LoggedDescription, Rejection};
use crate::extract::names;
use crate::guards::{CatalogGuards, Guards};
use crate::handlers;
use crate::version::VersionPolicy;
use crate::{Error, ServiceBroker};

/// Default limit on request bodies: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Default request timeout: 60 seconds, the timeout platforms use for broker calls.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Entry point for building a broker's router: `Broker::builder(my_broker)`.
#[derive(Debug)]
#[non_exhaustive]
pub struct Broker;

impl Broker {
    /// Starts building the router for `broker`.
    pub fn builder<B: ServiceBroker>(broker: B) -> BrokerBuilder {
        BrokerBuilder::new(broker)
    }
}

/// Builds the router of all ten OSB endpoints for a [`ServiceBroker`].
///
/// ```no_run
/// # use osb_server::{Broker, Guards, VersionPolicy, ServiceBroker};
/// # async fn demo(my_broker: impl ServiceBroker) -> Result<(), osb_server::Error> {
/// let app: axum::Router = Broker::builder(my_broker)
///     .basic_auth("platform", "s3cret")
///     .version_policy(VersionPolicy::new().missing_header_status(http::StatusCode::BAD_REQUEST))
///     .guards(Guards::default().parameters(false))
///     .body_limit(256 * 1024)
///     .build()
///     .await?;
/// # let _ = app; Ok(()) }
/// ```
pub struct BrokerBuilder {
    broker: Arc<dyn ServiceBroker>,
    catalog: Option<Catalog>,
    auth: Auth,
    version: VersionPolicy,
    guards: Guards,
    body_limit: usize,
    timeout: Option<Duration>,
    require_content_type: bool,
}

impl std::fmt::Debug for BrokerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerBuilder")
            .field("catalog", &self.catalog.is_some())
            .field("auth", &self.auth)
            .field("version", &self.version)
            .field("guards", &self.guards)
            .field("body_limit", &self.body_limit)
            .field("timeout", &self.timeout)
            .field("require_content_type", &self.require_content_type)
            .finish_non_exhaustive()
    }
}

impl BrokerBuilder {
    /// A builder with the defaults: no authentication configured (a warning is logged),
    /// [`VersionPolicy::default`], every guard on, 1 MiB body limit, 60 s timeout, JSON
    /// content type required on bodies.
    pub fn new<B: ServiceBroker>(broker: B) -> Self {
        BrokerBuilder {
            broker: Arc::new(broker),
            catalog: None,
            auth: Auth::new(),
            version: VersionPolicy::default(),
            guards: Guards::default(),
            body_limit: DEFAULT_BODY_LIMIT,
            timeout: Some(DEFAULT_TIMEOUT),
            require_content_type: true,
        }
    }

    /// Serves this catalog instead of asking the broker's [`ServiceBroker::catalog`].
    #[must_use]
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Replaces the authentication settings.
    #[must_use]
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Accepts HTTP Basic with these credentials (call again for more).
    #[must_use]
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = self.auth.basic(username, password);
        self
    }

    /// Accepts this Bearer token (call again for more).
    #[must_use]
    pub fn bearer_auth(mut self, token: impl Into<String>) -> Self {
        self.auth = self.auth.bearer(token);
        self
    }

    /// Accepts requests for which `check` resolves to `true`; see [`Auth::check`].
    #[must_use]
    pub fn auth_check<F, Fut>(mut self, check: F) -> Self
    where
        F: Fn(&HeaderMap) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.auth = self.auth.check(check);
        self
    }

    /// Sets the version header policy.
    #[must_use]
    pub fn version_policy(mut self, policy: VersionPolicy) -> Self {
        self.version = policy;
        self
    }

    /// Sets which guards run.
    #[must_use]
    pub fn guards(mut self, guards: Guards) -> Self {
        self.guards = guards;
        self
    }

    /// The largest request body accepted, in bytes; larger ones get `413` (default 1 MiB).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long a request may take, authentication included; a slower one is answered
    /// `503 Service Unavailable` with an OSB body and the broker's work is dropped (default 60 s;
    /// `None` for no limit).
    ///
    /// The broker is the origin server, not a gateway, so `503` ("cannot handle the request
    /// now") is used rather than `504`; platforms treat both as a failed request.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether bodies without a `Content-Type` header are refused with `400` (default `true`;
    /// a body with a non-JSON content type is always refused).
    #[must_use]
    pub fn require_content_type(mut self, require: bool) -> Self {
        self.require_content_type = require;
        self
    }

    /// Fetches the catalog (unless one was given), lints it, compiles the parameter schemas and
    /// prepares the catalog reply for every OSB version, then returns the router.
    ///
    /// Fails when the catalog cannot be fetched, when the linter reports errors (warnings are
    /// logged), when a schema does not compile, or when the configuration is inconsistent.
    pub async fn build<S>(self) -> Result<Router<S>, Error>
    where
        S: Clone + Send + Sync + 'static,
    {
        self.version
            .validate()
            .map_err(|reason| Error::InvalidConfig { reason })?;
        let catalog = match self.catalog {
            Some(catalog) => catalog,
            None => self.broker.catalog().await.map_err(Error::Catalog)?,
        };
        let problems = catalog.lint();
        for problem in problems.iter().filter(|p| !p.is_error()) {
            tracing::warn!(%problem, "catalog warning");
        }
        if has_errors(&problems) {
            let problems: Vec<_> = problems.into_iter().filter(|p| p.is_error()).collect();
            for problem in &problems {
                tracing::error!(%problem, "catalog error");
            }
            return Err(Error::InvalidCatalog { problems });
        }
        if !self.auth.is_configured() && !self.auth.is_anonymous() {
            tracing::warn!(
                "no authentication configured: every request is accepted (configure Basic credentials, a Bearer token or a check, or choose Auth::anonymous())"
            );
        }
        let docs = CatalogDocs::new(&catalog)?;
        let index = Arc::new(CatalogIndex::from(catalog));
        let catalog_guards =
            CatalogGuards::new(index).map_err(|reason| Error::InvalidConfig { reason })?;
        let shared = Arc::new(Shared {
            broker: self.broker,
            catalog: catalog_guards,
            docs,
            auth: self.auth,
            version: self.version,
            guards: self.guards,
            body_limit: self.body_limit,
            timeout: self.timeout,
            require_content_type: self.require_content_type,
        });
        Ok(routes(shared))
    }
}

/// Builds the router for `broker` with the defaults of [`BrokerBuilder::new`].
pub async fn router<S, B>(broker: B) -> Result<Router<S>, Error>
where
    S: Clone + Send + Sync + 'static,
    B: ServiceBroker,
{
    BrokerBuilder::new(broker).build().await
}

/// Everything the handlers share, built once.
pub(crate) struct Shared {
    pub(crate) broker: Arc<dyn ServiceBroker>,
    pub(crate) catalog: CatalogGuards,
    pub(crate) docs: CatalogDocs,
    pub(crate) auth: Auth,
    pub(crate) version: VersionPolicy,
    pub(crate) guards: Guards,
    pub(crate) body_limit: usize,
    pub(crate) timeout: Option<Duration>,
    pub(crate) require_content_type: bool,
}

/// The catalog reply for each known version: bytes and `ETag`.
pub(crate) struct CatalogDocs {
    docs: Vec<(ApiVersion, Bytes, HeaderValue)>,
}

impl CatalogDocs {
    fn new(catalog: &Catalog) -> Result<Self, Error> {
        let mut docs = Vec::with_capacity(ApiVersion::KNOWN.len());
        for version in ApiVersion::KNOWN {
            let mut shaped = catalog.clone();
            shaped.shape_for_version(version);
            let bytes = serde_json::to_vec(&shaped)
                .map_err(|e| Error::config(format!("the catalog cannot be serialized: {e}")))?;
            let etag = HeaderValue::from_str(&format!("\"{:016x}\"", fnv1a(&bytes)))
                .map_err(|e| Error::config(format!("the catalog's ETag is not a header: {e}")))?;
            docs.push((version, Bytes::from(bytes), etag));
        }
        Ok(CatalogDocs { docs })
    }

    pub(crate) fn get(&self, version: ApiVersion) -> Option<(&Bytes, &HeaderValue)> {
        self.docs
            .iter()
            .find(|(v, _, _)| *v == version)
            .or_else(|| self.docs.last())
            .map(|(_, bytes, etag)| (bytes, etag))
    }
}

/// FNV-1a, 64 bit: a stable, dependency-free hash for the catalog `ETag`.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn routes<S>(shared: Arc<Shared>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            "/v2/catalog",
            get(handlers::catalog).fallback(handlers::method_not_allowed),
        )
        .route(
            "/v2/service_instances/{instance_id}",
            get(handlers::fetch_instance)
                .put(handlers::provision)
                .patch(handlers::update)
                .delete(handlers::deprovision)
                .fallback(handlers::method_not_allowed),
        )
        .route(
            "/v2/service_instances/{instance_id}/last_operation",
            get(handlers::instance_last_operation).fallback(handlers::method_not_allowed),
        )
        .route(
            "/v2/service_instances/{instance_id}/service_bindings/{binding_id}",
            get(handlers::fetch_binding)
                .put(handlers::bind)
                .delete(handlers::unbind)
                .fallback(handlers::method_not_allowed),
        )
        .route(
            "/v2/service_instances/{instance_id}/service_bindings/{binding_id}/last_operation",
            get(handlers::binding_last_operation).fallback(handlers::method_not_allowed),
        )
        .route("/v2", any(handlers::not_found))
        .route("/v2/", any(handlers::not_found))
        .route("/v2/{*rest}", any(handlers::not_found))
        .layer(OsbLayer {
            shared: shared.clone(),
        })
        .with_state(shared)
}

/// Wraps every route in [`middleware`]. A hand-written layer rather than
/// `axum::middleware::from_fn`, which clones and boxes the inner service on every request.
#[derive(Clone)]
struct OsbLayer {
    shared: Arc<Shared>,
}

impl<S> Layer<S> for OsbLayer {
    type Service = OsbService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OsbService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
struct OsbService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request> for OsbService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone is ready only if polled; keep the ready one and leave the clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let run = move |request| async move {
                match inner.call(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            };
            Ok(middleware(shared, request, run).await)
        })
    }
}

/// Per request: tracing span, authentication, version check, timeout, panic containment,
/// request-identity echo, and one log line with the status, the duration and, for a rejection,
/// its description.
async fn middleware<F, Fut>(shared: Arc<Shared>, request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    let request_identity = parts.headers.get(names::REQUEST_IDENTITY).cloned();
    let span = tracing::info_span!(
        "osb_request",
        method = %parts.method,
        route = parts.extensions.get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str),
        instance_id = tracing::field::Empty,
        binding_id = tracing::field::Empty,
        request_identity = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    if let Some(identity) = request_identity.as_ref().and_then(|v| v.to_str().ok()) {
        span.record("request_identity", identity);
    }
    if let Ok(params) = RawPathParams::from_request_parts(&mut parts, &()).await {
        for (name, value) in &params {
            if name == "instance_id" || name == "binding_id" {
                span.record(name, value);
            }
        }
    }
    let request = Request::from_parts(parts, body);
    let mut response = async {
        // The time limit counts from here, so a custom authentication check counts too.
        let deadline = shared
            .timeout
            .and_then(|limit| Some((Instant::now().checked_add(limit)?, limit)));
        if let Err(rejection) = shared.auth.authenticate(request.headers(), deadline).await {
            return rejection.into_response();
        }
        let mut request = request;
        let negotiated = match shared.version.negotiate(request.headers()) {
            Ok(negotiated) => negotiated,
            Err(rejection) => return rejection.into_response(),
        };
        request.extensions_mut().insert(negotiated);
        let version = negotiated.effective;
        let run = AssertUnwindSafe(next(request)).catch_unwind();
        let outcome = match deadline {
            Some((at, limit)) => match tokio::time::timeout_at(at, run).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    return Rejection::timed_out(limit)
                        .for_version(version)
                        .into_response();
                }
            },
            None => run.await,
        };
        outcome.unwrap_or_else(|_| {
            tracing::error!("the broker panicked while handling the request");
            Rejection::internal().for_version(version).into_response()
        })
    }
    .instrument(span.clone())
    .await;
    if let Some(identity) = request_identity {
        response
            .headers_mut()
            .insert(names::REQUEST_IDENTITY, identity);
    }
    let status = response.status().as_u16();
    span.record("status", status);
    // Milliseconds with microsecond precision.
    let duration_ms = started.elapsed().as_micros() as f64 / 1000.0;
    let description = (response.extensions_mut().remove::<LoggedDescription>()).map(|d| d.0);
    let _entered = span.enter();
    // A `410 Gone` or `404` outcome without an error description is an answer, not a rejection.
    match (status, description) {
        (500.., description) => {
            tracing::warn!(status, duration_ms, description, "request failed");
        }
        (400.., Some(description)) => {
            tracing::info!(status, duration_ms, description, "request rejected");
        }
        _ => tracing::info!(status, duration_ms, "request answered"),
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
