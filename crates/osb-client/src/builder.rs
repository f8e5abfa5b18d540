//! [`ClientBuilder`]: base URL, credentials, API version, HTTP client and defaults.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use http::HeaderValue;
use osb_types::{ApiVersion, OriginatingIdentity};

use crate::client::{Client, Inner, Transport};
use crate::error::Error;

/// The `User-Agent` the client sends.
pub(crate) const USER_AGENT: &str = concat!("osb-rs/", env!("CARGO_PKG_VERSION"));

/// The request timeout Cloud Controller uses, and the client's default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The default limit on the size of a reply body (16 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The transport chosen on the builder.
enum TransportChoice {
    /// A reqwest client built by [`ClientBuilder::build`].
    Default,
    /// The user's reqwest client.
    Http(reqwest::Client),
    /// A tower service in the same process.
    #[cfg(feature = "in-process")]
    Service(crate::in_process::ServiceTransport),
}

#[derive(Clone)]
enum Auth {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

/// Builds a [`Client`]. Start with [`Client::builder`].
///
/// ```
/// use osb_client::Client;
/// use osb_types::ApiVersion;
/// let client = Client::builder("https://broker.example.com")
///     .basic_auth("admin", "secret")
///     .api_version(ApiVersion::V2_16)
///     .build()
///     .unwrap();
/// assert_eq!(client.api_version(), ApiVersion::V2_16);
/// ```
#[must_use]
pub struct ClientBuilder {
    base_url: String,
    auth: Auth,
    version: ApiVersion,
    transport: TransportChoice,
    timeout: Option<Duration>,
    identity: Option<OriginatingIdentity>,
    shape_requests: bool,
    max_response_bytes: usize,
    catalog_cache: bool,
    validate_requests: bool,
    tls: TlsChoice,
}

/// Extra TLS settings for the client the builder makes (PEM, parsed by `build`).
#[derive(Clone, Default)]
struct TlsChoice {
    roots: Vec<Vec<u8>>,
    only_custom_roots: bool,
    /// The private key followed by the certificate chain.
    identity: Option<Vec<u8>>,
}

impl TlsChoice {
    fn is_set(&self) -> bool {
        !self.roots.is_empty() || self.only_custom_roots || self.identity.is_some()
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            Auth::None => "none",
            Auth::Basic { .. } => "basic",
            Auth::Bearer(_) => "bearer",
        };
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("auth", &auth)
            .field("version", &self.version)
            .field(
                "transport",
                &match &self.transport {
                    TransportChoice::Default => "http",
                    TransportChoice::Http(_) => "http (custom client)",
                    #[cfg(feature = "in-process")]
                    TransportChoice::Service(_) => "in-process service",
                },
            )
            .field("timeout", &self.timeout)
            .field(
                "originating_identity",
                &self.identity.as_ref().map(OriginatingIdentity::platform),
            )
            .field("shape_requests", &self.shape_requests)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("catalog_cache", &self.catalog_cache)
            .field("validate_requests", &self.validate_requests)
            .field("root_certificates", &self.tls.roots.len())
            .field("only_custom_roots", &self.tls.only_custom_roots)
            .field(
                "client_identity",
                &self.tls.identity.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl ClientBuilder {
    pub(crate) fn new(base_url: impl Into<String>) -> Self {
        ClientBuilder {
            base_url: base_url.into(),
            auth: Auth::None,
            version: ApiVersion::LATEST,
            transport: TransportChoice::Default,
            timeout: Some(DEFAULT_TIMEOUT),
            identity: None,
            shape_requests: true,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            catalog_cache: true,
            validate_requests: true,
            tls: TlsChoice::default(),
        }
    }

    /// Trusts the CA certificates in this PEM text (one or more `CERTIFICATE` blocks), in
    /// addition to the built-in roots: for a broker whose certificate a private CA issued.
    /// Call again for more. Applies to the client the builder makes, not to one given with
    /// [`http_client`](Self::http_client) (`build` refuses the mix).
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn root_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.tls.roots.push(pem.as_ref().to_vec());
        self
    }

    /// Trusts only the CAs given with [`root_certificate_pem`](Self::root_certificate_pem),
    /// not the built-in roots.
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn only_custom_roots(mut self) -> Self {
        self.tls.only_custom_roots = true;
        self
    }

    /// Presents this client certificate (PEM chain, leaf first) and private key (PEM) to
    /// brokers that ask for one: mutual TLS. `Debug` of the builder never shows them.
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn client_identity_pem(
        mut self,
        cert_chain: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Self {
        let mut pem = key.as_ref().to_vec();
        pem.push(b'\n');
        pem.extend_from_slice(cert_chain.as_ref());
        self.tls.identity = Some(pem);
        self
    }

    /// HTTP Basic authentication (the spec's default scheme).
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Auth::Basic {
            user: user.into(),
            password: password.into(),
        };
        self
    }

    /// Bearer token authentication (`Authorization: Bearer <token>`).
    pub fn bearer_auth(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Bearer(token.into());
        self
    }

    /// The OSB version sent in `X-Broker-API-Version` (default 2.17; 2.13 to 2.17 accepted).
    ///
    /// Endpoints and features newer than this version are refused before anything is sent.
    pub fn api_version(mut self, version: ApiVersion) -> Self {
        self.version = version;
        self
    }

    /// Uses your `reqwest::Client` (its TLS roots, proxies, connection pool…).
    ///
    /// **Disable redirects on it** with
    /// [`redirect(Policy::none())`](reqwest::ClientBuilder::redirect): reqwest follows up to 10
    /// by default, and the client cannot change that on a client you built. A followed redirect
    /// can turn a `PUT` into a `GET` whose `200` reads as a success, hiding what the broker
    /// answered. The client the builder makes itself never follows one: a `3xx` reply is
    /// [`Error::UnexpectedStatus`].
    ///
    /// ```
    /// let http = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .build()
    ///     .unwrap();
    /// let client = osb_client::Client::builder("https://broker.example.com")
    ///     .http_client(http)
    ///     .build()
    ///     .unwrap();
    /// # let _ = client;
    /// ```
    ///
    /// The builder's [`timeout`](Self::timeout) is still applied to every request unless you call
    /// [`no_timeout`](Self::no_timeout).
    ///
    /// Replaces an in-process service set with `service` (the last call wins).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.transport = TransportChoice::Http(client);
        self
    }

    /// Sends every request to this tower [`Service`](tower::Service) in the same process instead
    /// of over the network: no socket, no port, no TLS. An axum `Router` (such as the one
    /// osb-server builds) qualifies, so a platform's tests can drive a broker directly.
    ///
    /// Requests are what the HTTP transport would send: the path and query of the URL built
    /// from the base URL (whose host becomes the `Host` header), every header, and the JSON body
    /// as [`Full<Bytes>`](http_body_util::Full). The reply body may be any
    /// [`http_body::Body`] with `Bytes` chunks; it is read up to
    /// [`max_response_bytes`](Self::max_response_bytes). The [`timeout`](Self::timeout) covers
    /// the call and the body. A service error becomes [`Error::Service`].
    ///
    /// Each request clones the service and waits until it is ready. Replaces a reqwest client
    /// set with [`http_client`](Self::http_client) (the last call wins).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use osb_client::{CallOptions, Client};
    /// use osb_types::{InstanceId, InstanceLastOperationQuery, LastOperationOutcome, LastOperationState};
    ///
    /// // A stand-in broker: answers every last-operation poll with "succeeded".
    /// let broker = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
    ///     assert_eq!(request.uri().path(), "/v2/service_instances/db%201/last_operation");
    ///     assert_eq!(request.headers()["x-broker-api-version"], "2.17");
    ///     let body = Full::new(Bytes::from_static(br#"{"state": "succeeded"}"#));
    ///     Ok::<_, Infallible>(http::Response::new(body))
    /// });
    ///
    /// let client = Client::builder("http://broker.test").service(broker).build()?;
    /// let outcome = client
    ///     .instance_last_operation(
    ///         &InstanceId::new("db 1"),
    ///         &InstanceLastOperationQuery::new(),
    ///         &CallOptions::new(),
    ///     )
    ///     .await?;
    /// let LastOperationOutcome::State(state) = outcome else { panic!("{outcome:?}") };
    /// assert_eq!(state.resource.state, LastOperationState::Succeeded);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "in-process")]
    #[cfg_attr(docsrs, doc(cfg(feature = "in-process")))]
    pub fn service<S, B>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<http_body_util::Full<bytes::Bytes>>,
                Response = http::Response<B>,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
        S::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        self.transport =
            TransportChoice::Service(crate::in_process::ServiceTransport::new(service));
        self
    }

    /// Timeout of each request, from sending to the end of the reply body (default 60 s, like
    /// Cloud Controller). [`CallOptions::timeout`](crate::CallOptions::timeout) overrides it per call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// No client-side timeout (only the HTTP client's own, if any).
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// The originating identity sent with every user-initiated request, unless a call overrides
    /// or suppresses it ([`CallOptions`](crate::CallOptions)).
    pub fn originating_identity(mut self, identity: OriginatingIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Whether request bodies are shaped for the configured version before sending (default on):
    /// fields that appeared after it are left out, extension fields in `extra` are kept.
    ///
    /// Receivers must ignore unknown fields, so sending them is harmless; shaping keeps the wire
    /// exactly as the declared version describes it.
    pub fn shape_requests(mut self, shape: bool) -> Self {
        self.shape_requests = shape;
        self
    }

    /// The largest reply body the client reads (default 16 MiB).
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Whether [`Client::catalog`] remembers the catalog with its `ETag` / `Last-Modified` and
    /// revalidates it with `If-None-Match` / `If-Modified-Since` (default on; OSB 2.16).
    pub fn catalog_cache(mut self, cache: bool) -> Self {
        self.catalog_cache = cache;
        self
    }

    /// Whether request bodies and query parameters are checked with their `validate()` rules
    /// before sending (default on): non-empty ids, SemVer `maintenance_info.version`, a context
    /// that names its platform, an `operation` of at most 10,000 characters… A request that
    /// fails is not sent ([`Error::Validation`]). Turn it off to send deliberately invalid
    /// requests, e.g. when testing a broker's own checks (ids in the path and the required
    /// `service_id`/`plan_id` of a delete are still refused when empty, since no URL can say
    /// what was meant).
    pub fn validate_requests(mut self, validate: bool) -> Self {
        self.validate_requests = validate;
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let config = |reason: String| Error::Config { reason };
        if !(ApiVersion::OLDEST..=ApiVersion::LATEST).contains(&self.version) {
            return Err(config(format!(
                "API version {} is not supported; use {} to {}",
                self.version,
                ApiVersion::OLDEST,
                ApiVersion::LATEST
            )));
        }
        let url = reqwest::Url::parse(self.base_url.trim())
            .map_err(|e| config(format!("base URL {:?} does not parse: {e}", self.base_url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(config(format!(
                "base URL must use http or https, not {:?}",
                url.scheme()
            )));
        }
        if url.cannot_be_a_base() || url.host_str().is_none() {
            return Err(config(format!("base URL {:?} has no host", self.base_url)));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config(
                "base URL must not carry credentials; use basic_auth() or bearer_auth()"
                    .to_string(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(config(
                "base URL must not have a query or fragment".to_string(),
            ));
        }
        let base = url.as_str().trim_end_matches('/').to_string();

        let auth = match &self.auth {
            Auth::None => None,
            Auth::Basic { user, password } => {
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(sensitive(&format!("Basic {token}"), "basic credentials")?)
            }
            Auth::Bearer(token) => Some(sensitive(&format!("Bearer {token}"), "bearer token")?),
        };
        let identity = match &self.identity {
            Some(identity) => Some(crate::client::identity_header(identity)?),
            None => None,
        };
        if self.tls.is_set() && !matches!(self.transport, TransportChoice::Default) {
            return Err(config(
                "TLS roots and client identities apply to the client the builder makes; \
                 configure them on your own HTTP client instead"
                    .to_string(),
            ));
        }
        let transport = match self.transport {
            TransportChoice::Http(http) => Transport::Http(http),
            TransportChoice::Default => {
                // A redirect is not an outcome of any OSB request: following it could turn a PUT
                // into a GET whose `200` reads as success (see `orphan_mitigation`).
                let mut builder = reqwest::Client::builder()
                    .user_agent(USER_AGENT)
                    .redirect(reqwest::redirect::Policy::none());
                if let Some(timeout) = self.timeout {
                    builder = builder.connect_timeout(timeout);
                }
                builder = apply_tls(builder, &self.tls)?;
                Transport::Http(
                    builder
                        .build()
                        .map_err(|e| config(format!("cannot build the HTTP client: {e}")))?,
                )
            }
            #[cfg(feature = "in-process")]
            TransportChoice::Service(service) => Transport::Service {
                service,
                host: host_header(&url),
            },
        };
        let version_header = HeaderValue::from_str(&self.version.to_string())
            .map_err(|e| config(format!("API version header: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                base,
                base_url: url,
                auth,
                version: self.version,
                version_header,
                identity,
                timeout: self.timeout,
                shape_requests: self.shape_requests,
                max_response_bytes: self.max_response_bytes,
                catalog_cache: self.catalog_cache.then(|| Mutex::new(None)),
                validate_requests: self.validate_requests,
            }),
        })
    }
}

/// Adds the builder's TLS settings to reqwest's builder.
#[cfg(feature = "rustls")]
fn apply_tls(
    mut builder: reqwest::ClientBuilder,
    tls: &TlsChoice,
) -> Result<reqwest::ClientBuilder, Error> {
    let config = |reason: String| Error::Config { reason };
    for pem in &tls.roots {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| config(format!("root certificate PEM: {e}")))?;
        if certs.is_empty() {
            return Err(config("root certificate PEM holds no certificate".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if tls.only_custom_roots {
        builder = builder.tls_built_in_root_certs(false);
    }
    if let Some(pem) = &tls.identity {
        // reqwest's message never quotes the key.
        let identity = reqwest::Identity::from_pem(pem)
            .map_err(|e| config(format!("client certificate and key: {e}")))?;
        builder = builder.identity(identity);
    }
    Ok(builder)
}

/// Without rustls no TLS settings can be made, so there are none to add.
#[cfg(not(feature = "rustls"))]
fn apply_tls(
    builder: reqwest::ClientBuilder,
    _tls: &TlsChoice,
) -> Result<reqwest::ClientBuilder, Error> {
    Ok(builder)
}

/// The `Host` header for the in-process transport: the base URL's host and port.
#[cfg(feature = "in-process")]
fn host_header(url: &reqwest::Url) -> Option<HeaderValue> {
    let host = url.host_str()?;
    let value = match url.port() {
        Some(port) => HeaderValue::from_str(&format!("{host}:{port}")),
        None => HeaderValue::from_str(host),
    };
    value.ok()
}

fn sensitive(value: &str, what: &str) -> Result<HeaderValue, Error> {
    let mut header = HeaderValue::from_str(value).map_err(|_| Error::Config {
        reason: format!("the {what} contain characters not allowed in a header"),
    })?;
    header.set_sensitive(true);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_credentials_and_keys() {
        let key =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
        let builder = Client::builder("https://broker.example")
            .basic_auth("admin", "pw-s3cret-1")
            .client_identity_pem("-----BEGIN CERTIFICATE-----\n", key);
        let text = format!("{builder:?}");
        assert!(!text.contains("pw-s3cret-1"), "{text}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(
            text.contains("client_identity: Some(\"<redacted>\")"),
            "{text}"
        );
        let builder = || Client::builder("https://broker.example").bearer_auth("tok-s3cret-2");
        let text = format!("{:?} {:?}", builder(), builder().build().unwrap());
        assert!(!text.contains("tok-s3cret-2"), "{text}");
    }

    #[cfg(feature = "rustls")]
    #[test]
    fn tls_settings_are_checked() {
        let err = Client::builder("https://broker.example")
            .root_certificate_pem("not a certificate")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("root certificate"), "{err}");
        let err = Client::builder("https://broker.example")
            .client_identity_pem("no cert", "no key")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("client certificate"), "{err}");
        let err = Client::builder("https://broker.example")
            .http_client(reqwest::Client::new())
            .only_custom_roots()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("own HTTP client"), "{err}");
    }
}
