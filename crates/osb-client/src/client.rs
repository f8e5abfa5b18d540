//! [`Client`]: one method per OSB endpoint.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
    RETRY_AFTER,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use osb_types::header::{API_VERSION, ORIGINATING_IDENTITY, REQUEST_IDENTITY};
use osb_types::{
    ApiVersion, AsyncPermit, BindOutcome, BindQuery, BindingId, BindingLastOperationQuery, Catalog,
    DecodeWarning, DeleteOutcome, DeprovisionQuery, ErrorResponse, FetchBindingOutcome,
    FetchBindingQuery, FetchInstanceOutcome, FetchInstanceQuery, InstanceId,
    InstanceLastOperationQuery, LastOperationOutcome, Operation, OriginatingIdentity,
    ProvisionOutcome, ProvisionQuery, ServiceBindingRequest, ServiceInstanceProvisionRequest,
    ServiceInstanceUpdateRequest, ShapeForVersion, UnbindQuery, UpdateOutcome, UpdateQuery,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, PercentEncode, utf8_percent_encode};
use serde::Serialize;
use tracing::Instrument as _;

use crate::builder::ClientBuilder;
use crate::error::{Error, RawBody};

/// Every byte outside RFC 3986 "unreserved" (`A-Z a-z 0-9 - . _ ~`) is percent-encoded in ids,
/// both in paths and in query strings.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `application/json`, for `Accept` and `Content-Type`.
const JSON: HeaderValue = HeaderValue::from_static("application/json");

fn encoded(value: &str) -> PercentEncode<'_> {
    utf8_percent_encode(value, NOT_UNRESERVED)
}

/// Percent-encodes a path segment or query value: every byte outside RFC 3986 "unreserved".
#[cfg(test)]
fn encode_component(value: &str) -> String {
    encoded(value).to_string()
}

#[cfg(test)]
#[test]
fn components_are_percent_encoded() {
    assert_eq!(encode_component("a b/c?d"), "a%20b%2Fc%3Fd");
    assert_eq!(encode_component("Az09-._~"), "Az09-._~");
}

/// An asynchronous client for one service broker.
///
/// Cheap to clone (the state sits behind an `Arc`), `Send` and `Sync`. Every method sends
/// `X-Broker-API-Version`, the credentials, a fresh `X-Broker-API-Request-Identity` (unless the
/// call gives one) and the originating identity (unless the call overrides or suppresses it).
/// Endpoints newer than the configured version fail with [`Error::UnsupportedVersion`] before
/// anything is sent.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) transport: Transport,
    /// The base URL without a trailing slash, as [`Client::base_url`] returns it.
    pub(crate) base: String,
    /// The same URL, parsed once: each request URL is a copy with its path and query set.
    pub(crate) base_url: reqwest::Url,
    pub(crate) auth: Option<HeaderValue>,
    pub(crate) version: ApiVersion,
    pub(crate) version_header: HeaderValue,
    pub(crate) identity: Option<HeaderValue>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) shape_requests: bool,
    pub(crate) max_response_bytes: usize,
    pub(crate) catalog_cache: Option<Mutex<Option<CachedCatalog>>>,
    pub(crate) validate_requests: bool,
}

pub(crate) struct CachedCatalog {
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
    catalog: Catalog,
}

/// How requests reach the broker.
pub(crate) enum Transport {
    /// Over HTTP, with reqwest.
    Http(reqwest::Client),
    /// Through a tower service in the same process (`in-process` feature), with the `Host`
    /// header of the base URL.
    #[cfg(feature = "in-process")]
    Service {
        service: crate::in_process::ServiceTransport,
        host: Option<HeaderValue>,
    },
}

/// One request, ready for a transport.
struct Outgoing {
    method: Method,
    url: reqwest::Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
    limit: usize,
}

/// Sends a request with reqwest and reads the whole reply.
async fn send_http(http: &reqwest::Client, outgoing: Outgoing) -> Result<Reply, Error> {
    let Outgoing {
        method,
        url,
        headers,
        body,
        timeout,
        limit,
    } = outgoing;
    let mut request = reqwest::Request::new(method.clone(), url.clone());
    *request.headers_mut() = headers;
    *request.body_mut() = body.map(reqwest::Body::from);
    *request.timeout_mut() = timeout;
    let failed = |e| Error::from_reqwest(e, &method, &url);
    let mut response = http.execute(request).await.map_err(|e| {
        tracing::debug!(error = %e, "request failed");
        failed(e)
    })?;
    let status = response.status();
    tracing::Span::current().record("status", status.as_u16());
    let headers = std::mem::take(response.headers_mut());
    let body = read_body(&mut response, status, limit, failed).await?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Sends a request through the in-process service and reads the whole reply.
///
/// The request carries what an HTTP client would send: the path and query (origin form), a
/// `Host` header, `Content-Length` for a body, and the client's `User-Agent`.
#[cfg(feature = "in-process")]
async fn send_service(
    service: &crate::in_process::ServiceTransport,
    host: Option<&HeaderValue>,
    outgoing: Outgoing,
) -> Result<Reply, Error> {
    use crate::in_process::ServiceFailure;
    use http::header::{CONTENT_LENGTH, HOST, USER_AGENT};

    let Outgoing {
        method,
        url,
        mut headers,
        body,
        timeout,
        limit,
    } = outgoing;
    let mut target = url.path().to_string();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let uri = http::Uri::try_from(target).map_err(|e| invalid("url", &e.to_string()))?;
    if let Some(host) = host {
        headers.insert(HOST, host.clone());
    }
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(crate::builder::USER_AGENT),
    );
    if let Some(body) = &body {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    let mut request = http::Request::new(http_body_util::Full::new(bytes::Bytes::from(
        body.unwrap_or_default(),
    )));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    let call = service.send(request, limit);
    let result = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| Error::Timeout { source: None })?,
        None => call.await,
    };
    let reply = result.map_err(|failure| match failure {
        ServiceFailure::Failed(e) => {
            tracing::debug!(error = %e, "the service failed");
            Error::Service(e)
        }
        ServiceFailure::TooLarge { status } => Error::BodyTooLarge { status, limit },
    })?;
    tracing::Span::current().record("status", reply.status.as_u16());
    Ok(Reply {
        status: reply.status,
        headers: reply.headers,
        body: reply.body,
    })
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base)
            .field("api_version", &self.inner.version)
            .field("auth", &self.inner.auth.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// Per-call options: originating identity, request identity and timeout.
///
/// ```
/// use osb_client::CallOptions;
/// use osb_types::{CloudFoundryIdentity, OriginatingIdentity};
/// let opts = CallOptions::new()
///     .originating_identity(OriginatingIdentity::from(CloudFoundryIdentity::new("user-1")))
///     .request_identity("4b0f6c1e-7d0e-4a53-9a1b-0d3c2f1e5a77");
/// let background = CallOptions::new().without_originating_identity();
/// # let _ = (opts, background);
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct CallOptions {
    identity: IdentityChoice,
    request_identity: Option<String>,
    timeout: Option<Duration>,
}

#[derive(Clone, Debug, Default)]
enum IdentityChoice {
    #[default]
    ClientDefault,
    Use(Box<OriginatingIdentity>),
    Omit,
}

impl CallOptions {
    /// The client's defaults.
    pub fn new() -> Self {
        CallOptions::default()
    }

    /// Sends this originating identity instead of the client's default.
    pub fn originating_identity(mut self, identity: OriginatingIdentity) -> Self {
        self.identity = IdentityChoice::Use(Box::new(identity));
        self
    }

    /// Sends no originating identity (for requests no user asked for, such as orphan
    /// mitigation or background polling).
    pub fn without_originating_identity(mut self) -> Self {
        self.identity = IdentityChoice::Omit;
        self
    }

    /// Sends this `X-Broker-API-Request-Identity` instead of a fresh UUID.
    ///
    /// It must be non-empty visible ASCII (inner spaces and tabs allowed, none at either end);
    /// otherwise the call fails with [`Error::Validation`] and nothing is sent.
    pub fn request_identity(mut self, id: impl Into<String>) -> Self {
        self.request_identity = Some(id.into());
        self
    }

    /// Overrides the client's request timeout for this call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

pub(crate) fn identity_header(identity: &OriginatingIdentity) -> Result<HeaderValue, Error> {
    let refuse = |reason: &str| {
        Error::Validation(osb_types::Invalid::new(
            osb_types::header::ORIGINATING_IDENTITY.as_str(),
            reason,
        ))
    };
    // The header is `<platform> <base64>`: a platform name with a space, or with bytes a broker
    // cannot read as ASCII, would not come back as sent.
    let platform = identity.platform();
    if platform.is_empty() {
        return Err(refuse("the platform name is empty"));
    }
    if !platform.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(refuse(
            "the platform name must be visible ASCII without spaces",
        ));
    }
    HeaderValue::from_str(&identity.to_header_value())
        .map_err(|_| refuse("the platform name contains characters not allowed in a header"))
}

/// The `X-Broker-API-Request-Identity` to send: the caller's, checked, or a fresh UUID.
fn request_identity_header(given: Option<&str>) -> Result<HeaderValue, Error> {
    let Some(id) = given else {
        let mut buffer = uuid::Uuid::encode_buffer();
        let fresh = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
        return HeaderValue::from_str(fresh)
            .map_err(|e| invalid("request_identity", &e.to_string()));
    };
    if id.is_empty() {
        return Err(invalid("request_identity", "must not be empty"));
    }
    // HTTP drops a header value's leading and trailing whitespace in transit, and a broker
    // cannot read bytes outside ASCII as text: either way it would see another identity.
    if id.trim_matches([' ', '\t']) != id {
        return Err(invalid(
            "request_identity",
            "must not start or end with spaces or tabs",
        ));
    }
    if !id.is_ascii() {
        return Err(invalid("request_identity", "must be ASCII"));
    }
    HeaderValue::from_str(id).map_err(|_| {
        invalid(
            "request_identity",
            "contains characters not allowed in a header",
        )
    })
}

/// One reply, read in full.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    fn header_str(&self, name: &HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Turns an osb-types decoding failure into the client's error.
    fn fail(&self, e: osb_types::Error) -> Error {
        match e {
            osb_types::Error::AsyncNotPermitted => Error::AsyncNotPermitted {
                body: RawBody::from_bytes(&self.body),
            },
            osb_types::Error::Decode { status, reason } => self.undecodable(status, &reason),
            _ => self.error_reply(),
        }
    }

    /// A success whose body does not decode; `reason` is redacted of quoted values.
    fn undecodable(&self, status: u16, reason: &str) -> Error {
        Error::Decode {
            status: self.status,
            body: RawBody::from_bytes(&self.body),
            source: osb_types::Error::Decode {
                status,
                reason: redact_quoted(reason),
            },
        }
    }

    /// Classifies a reply that is not an outcome of the operation.
    ///
    /// Only `4xx` and `5xx` replies are broker errors; anything else (a `3xx` redirect, which
    /// the client does not follow, or an unexpected `2xx`) is [`Error::UnexpectedStatus`].
    pub(crate) fn error_reply(&self) -> Error {
        // A redirect (not followed) or an informational status is never the broker's answer;
        // any other failure status with an OSB error body is.
        if !(self.status.is_success()
            || self.status.is_redirection()
            || self.status.is_informational())
            && let Ok(value @ serde_json::Value::Object(_)) = serde_json::from_slice(&self.body)
            && let Ok(body) = serde_json::from_value::<ErrorResponse>(value)
        {
            return Error::Broker {
                status: self.status,
                code: body.code(),
                body: Box::new(body),
            };
        }
        Error::UnexpectedStatus {
            status: self.status,
            body: RawBody::from_bytes(&self.body),
        }
    }
}

/// A decoded outcome with the fields of the reply that were set aside.
type Decoded<T> = Result<(T, Vec<DecodeWarning>), osb_types::Error>;

/// The typed outcome of an endpoint, read from its whole reply.
trait FromReply: Sized {
    /// Decodes `reply` leniently; `permit` is `Some` when the request set
    /// `accepts_incomplete=true`.
    fn from_reply(reply: &Reply, permit: Option<AsyncPermit>) -> Decoded<Self>;
}

macro_rules! from_reply {
    (may_be_async: $($outcome:ident),*) => {$(
        impl FromReply for $outcome {
            fn from_reply(reply: &Reply, permit: Option<AsyncPermit>) -> Decoded<Self> {
                $outcome::decode_with_warnings(reply.status.as_u16(), &reply.body, permit)
            }
        }
    )*};
    (sync: $($outcome:ident),*) => {$(
        impl FromReply for $outcome {
            fn from_reply(reply: &Reply, _: Option<AsyncPermit>) -> Decoded<Self> {
                $outcome::decode_with_warnings(reply.status.as_u16(), &reply.body)
            }
        }
    )*};
}

from_reply!(may_be_async: ProvisionOutcome, UpdateOutcome, DeleteOutcome, BindOutcome);
from_reply!(sync: FetchInstanceOutcome, FetchBindingOutcome);

impl FromReply for LastOperationOutcome {
    fn from_reply(reply: &Reply, _: Option<AsyncPermit>) -> Decoded<Self> {
        LastOperationOutcome::decode_with_warnings(
            reply.status.as_u16(),
            &reply.body,
            reply.header_str(&RETRY_AFTER),
        )
    }
}

/// What one request is made of. Query values are checked as they are added and borrowed until
/// the URL is written.
struct Call<'a> {
    op: Operation,
    instance_id: Option<&'a InstanceId>,
    binding_id: Option<&'a BindingId>,
    query: Vec<(&'static str, &'a str)>,
    permit: Option<AsyncPermit>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Vec<u8>>,
    opts: &'a CallOptions,
}

impl<'a> Call<'a> {
    fn new(op: Operation, opts: &'a CallOptions) -> Self {
        Call {
            op,
            instance_id: None,
            binding_id: None,
            query: Vec::new(),
            permit: None,
            headers: Vec::new(),
            body: None,
            opts,
        }
    }

    fn instance(mut self, instance_id: &'a InstanceId) -> Self {
        self.instance_id = Some(instance_id);
        self
    }

    fn binding(mut self, instance_id: &'a InstanceId, binding_id: &'a BindingId) -> Self {
        self.binding_id = Some(binding_id);
        self.instance(instance_id)
    }

    /// `accepts_incomplete`, when given; `true` lets the reply be `202 Accepted`.
    fn accepts_incomplete(mut self, value: Option<bool>) -> Self {
        if let Some(value) = value {
            let text = if value { "true" } else { "false" };
            self.query.push(("accepts_incomplete", text));
        }
        self.permit = AsyncPermit::from_accepts_incomplete(value);
        self
    }

    /// A query parameter the spec requires to be non-empty.
    ///
    /// The empty check holds even with `validate_requests` off; with it on, the query's own
    /// `validate()` (see `Client::check_query`) has already applied it, and the other rules.
    fn param(mut self, name: &'static str, value: &'a str) -> Result<Self, Error> {
        if value.is_empty() {
            return Err(invalid(name, "must not be empty"));
        }
        self.query.push((name, value));
        Ok(self)
    }

    /// An optional query parameter: non-empty when present.
    fn opt_param(self, name: &'static str, value: Option<&'a str>) -> Result<Self, Error> {
        match value {
            Some(value) => self.param(name, value),
            None => Ok(self),
        }
    }

    /// The optional `service_id` and `plan_id` hints, when given.
    fn hints(self, service_id: Option<&'a str>, plan_id: Option<&'a str>) -> Result<Self, Error> {
        self.opt_param("service_id", service_id)?
            .opt_param("plan_id", plan_id)
    }

    fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }
}

fn invalid(field: &str, reason: &str) -> Error {
    Error::Validation(osb_types::Invalid::new(field, reason))
}

/// Checks an id that goes into a path and appends it, encoded.
fn push_path_id(path: &mut String, field: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    // URL parsers collapse "." and ".." segments (even percent-encoded), so such an id could
    // never reach the broker intact.
    if id == "." || id == ".." {
        return Err(invalid(
            field,
            "must not be \".\" or \"..\" (URLs treat them as path navigation)",
        ));
    }
    path.extend(encoded(id));
    Ok(())
}

impl Client {
    /// Starts building a client for the broker at `base_url` (e.g. `https://broker.example.com`;
    /// a path prefix is kept, a trailing slash ignored).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(base_url)
    }

    /// The OSB version the client sends.
    pub fn api_version(&self) -> ApiVersion {
        self.inner.version
    }

    /// The broker's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// Whether the configured API version has this endpoint.
    pub fn supports(&self, operation: Operation) -> bool {
        self.inner.version.supports(operation.since())
    }

    fn require(
        &self,
        operation: Operation,
        feature: Option<&'static str>,
        since: ApiVersion,
    ) -> Result<(), Error> {
        if self.inner.version.supports(since) {
            Ok(())
        } else {
            Err(Error::UnsupportedVersion {
                operation,
                feature,
                since,
                configured: self.inner.version,
            })
        }
    }

    /// Checks a request body (when enabled) and serialises it, shaped for the configured version
    /// (when enabled).
    ///
    /// With shaping on, a field the configured version lacks and whose loss would change what
    /// the request asks for (a maintenance upgrade before 2.15, a binding rotation before 2.17:
    /// [`ShapeForVersion::unshapeable_field`]) is refused rather than left out. With shaping off
    /// the body is sent as it is.
    fn encode_body<T: Serialize + ShapeForVersion + Clone>(
        &self,
        operation: Operation,
        body: &T,
        validate: impl FnOnce(&T) -> Result<(), osb_types::Invalid>,
    ) -> Result<Vec<u8>, Error> {
        if self.inner.shape_requests
            && let Some(newer) = body.unshapeable_field(self.inner.version)
        {
            self.require(operation, Some(newer.field), newer.since)?;
        }
        if self.inner.validate_requests {
            validate(body).map_err(Error::Validation)?;
        }
        let result = if self.inner.shape_requests && self.inner.version < ApiVersion::LATEST {
            let mut shaped = body.clone();
            shaped.shape_for_version(self.inner.version);
            serde_json::to_vec(&shaped)
        } else {
            serde_json::to_vec(body)
        };
        result.map_err(|e| invalid("body", &e.to_string()))
    }

    /// Checks a query with its `validate()` rules (when enabled), the way
    /// [`encode_body`](Self::encode_body) checks a body; a query that fails is not sent.
    ///
    /// [`Call::param`] still refuses empty values when validation is off, as it always has.
    fn check_query<T>(
        &self,
        query: &T,
        validate: impl FnOnce(&T) -> Result<(), osb_types::Invalid>,
    ) -> Result<(), Error> {
        if self.inner.validate_requests {
            validate(query).map_err(Error::Validation)?;
        }
        Ok(())
    }

    /// The request URL: a copy of the base URL with the operation's path (ids checked and
    /// encoded) after its own, and the encoded query.
    fn url(&self, call: &Call<'_>) -> Result<reqwest::Url, Error> {
        let mut url = self.inner.base_url.clone();
        let prefix = url.path().trim_end_matches('/');
        let mut path = String::with_capacity(prefix.len() + call.op.path().len() + 64);
        path.push_str(prefix);
        let mut template = call.op.path();
        while let Some((literal, rest)) = template.split_once('{') {
            path.push_str(literal);
            let (name, rest) = rest.split_once('}').unwrap_or((rest, ""));
            let id = match name {
                "instance_id" => call.instance_id.map(InstanceId::as_str),
                "binding_id" => call.binding_id.map(BindingId::as_str),
                _ => None,
            };
            push_path_id(&mut path, name, id.unwrap_or_default())?;
            template = rest;
        }
        path.push_str(template);
        url.set_path(&path);
        if !call.query.is_empty() {
            let mut query = String::with_capacity(64);
            for (i, (name, value)) in call.query.iter().enumerate() {
                if i > 0 {
                    query.push('&');
                }
                query.push_str(name);
                query.push('=');
                query.extend(encoded(value));
            }
            url.set_query(Some(&query));
        }
        Ok(url)
    }

    /// Sends one request and reads the whole reply.
    async fn send(&self, call: Call<'_>) -> Result<Reply, Error> {
        let op = call.op;
        self.require(op, None, op.since())?;
        let url = self.url(&call)?;
        let method = Method::from_bytes(op.method().as_bytes())
            .map_err(|e| invalid("method", &e.to_string()))?;
        let request_identity = request_identity_header(call.opts.request_identity.as_deref())?;
        let identity = match &call.opts.identity {
            IdentityChoice::ClientDefault => self.inner.identity.clone(),
            IdentityChoice::Use(identity) => Some(identity_header(identity)?),
            IdentityChoice::Omit => None,
        };

        let span = tracing::debug_span!(
            "osb_request",
            operation = op.operation_id(),
            instance_id = call.instance_id.map(InstanceId::as_str),
            binding_id = call.binding_id.map(BindingId::as_str),
            request_identity = request_identity.to_str().unwrap_or_default(),
            status = tracing::field::Empty,
        );
        let mut headers = HeaderMap::with_capacity(8);
        headers.append(API_VERSION, self.inner.version_header.clone());
        headers.append(REQUEST_IDENTITY, request_identity);
        headers.append(ACCEPT, JSON);
        if let Some(auth) = &self.inner.auth {
            headers.append(AUTHORIZATION, auth.clone());
        }
        if let Some(identity) = identity {
            headers.append(ORIGINATING_IDENTITY, identity);
        }
        for (name, value) in call.headers {
            headers.append(name, value);
        }
        if call.body.is_some() {
            headers.append(CONTENT_TYPE, JSON);
        }
        let outgoing = Outgoing {
            method,
            url,
            headers,
            body: call.body,
            timeout: call.opts.timeout.or(self.inner.timeout),
            limit: self.inner.max_response_bytes,
        };
        async move {
            tracing::debug!("sending request");
            let reply = match &self.inner.transport {
                Transport::Http(http) => send_http(http, outgoing).await?,
                #[cfg(feature = "in-process")]
                Transport::Service { service, host } => {
                    send_service(service, host.as_ref(), outgoing).await?
                }
            };
            tracing::debug!(bytes = reply.body.len(), "reply received");
            Ok(reply)
        }
        .instrument(span)
        .await
    }

    /// Sends one request and decodes the reply into the endpoint's outcome.
    ///
    /// Fields of the reply that do not match the spec but that the outcome does not need are
    /// set aside (kept raw in the model's `extra`) and logged as warnings, by path and reason
    /// only: never their values.
    async fn exchange<T: FromReply>(&self, call: Call<'_>) -> Result<T, Error> {
        let permit = call.permit;
        let operation = call.op.operation_id();
        let reply = self.send(call).await?;
        let (outcome, warnings) = T::from_reply(&reply, permit).map_err(|e| reply.fail(e))?;
        for warning in &warnings {
            tracing::warn!(
                operation,
                status = reply.status.as_u16(),
                field = %warning.path,
                reason = %warning.reason,
                "a field of the broker's reply does not match the spec; it was set aside"
            );
        }
        Ok(outcome)
    }

    /// Fetches the catalog (`GET /v2/catalog`).
    ///
    /// With the catalog cache on (the default), the catalog is remembered with its `ETag` /
    /// `Last-Modified` and revalidated with `If-None-Match` / `If-Modified-Since`; a
    /// `304 Not Modified` returns the remembered catalog.
    #[doc(alias = "catalog_get")]
    #[doc(alias = "get_catalog")]
    pub async fn catalog(&self, opts: &CallOptions) -> Result<Catalog, Error> {
        let mut call = Call::new(Operation::Catalog, opts);
        if let Some(cache) = &self.inner.catalog_cache
            && let Some(cached) = lock(cache).as_ref()
        {
            if let Some(etag) = &cached.etag {
                call.headers.push((IF_NONE_MATCH, etag.clone()));
            }
            if let Some(modified) = &cached.last_modified {
                call.headers.push((IF_MODIFIED_SINCE, modified.clone()));
            }
        }
        let reply = self.send(call).await?;
        match reply.status {
            StatusCode::OK => {
                let catalog: Catalog = osb_types::decode_json(&reply.body)
                    .map_err(|reason| reply.undecodable(200, &reason))?;
                if let Some(cache) = &self.inner.catalog_cache {
                    let etag = reply.headers.get(ETAG).cloned();
                    let last_modified = reply.headers.get(LAST_MODIFIED).cloned();
                    *lock(cache) =
                        (etag.is_some() || last_modified.is_some()).then(|| CachedCatalog {
                            etag,
                            last_modified,
                            catalog: catalog.clone(),
                        });
                }
                Ok(catalog)
            }
            StatusCode::NOT_MODIFIED => {
                let cached = self
                    .inner
                    .catalog_cache
                    .as_ref()
                    .and_then(|cache| lock(cache).as_ref().map(|c| c.catalog.clone()));
                cached.ok_or_else(|| reply.error_reply())
            }
            _ => Err(reply.error_reply()),
        }
    }

    /// Provisions a service instance (`PUT /v2/service_instances/{instance_id}`).
    ///
    /// `202 Accepted` is only accepted when `query.accepts_incomplete` is `Some(true)`; poll it
    /// with [`wait_for_instance_operation`](Self::wait_for_instance_operation).
    #[doc(alias = "service_instance_provision")]
    #[doc(alias = "provision_service_instance")]
    pub async fn provision(
        &self,
        instance_id: &InstanceId,
        body: &ServiceInstanceProvisionRequest,
        query: &ProvisionQuery,
        opts: &CallOptions,
    ) -> Result<ProvisionOutcome, Error> {
        let call = Call::new(Operation::Provision, opts)
            .instance(instance_id)
            .accepts_incomplete(query.accepts_incomplete)
            .body(self.encode_body(
                Operation::Provision,
                body,
                ServiceInstanceProvisionRequest::validate,
            )?);
        self.exchange(call).await
    }

    /// Updates a service instance (`PATCH /v2/service_instances/{instance_id}`).
    #[doc(alias = "service_instance_update")]
    #[doc(alias = "update_service_instance")]
    pub async fn update(
        &self,
        instance_id: &InstanceId,
        body: &ServiceInstanceUpdateRequest,
        query: &UpdateQuery,
        opts: &CallOptions,
    ) -> Result<UpdateOutcome, Error> {
        let call = Call::new(Operation::Update, opts)
            .instance(instance_id)
            .accepts_incomplete(query.accepts_incomplete)
            .body(self.encode_body(
                Operation::Update,
                body,
                ServiceInstanceUpdateRequest::validate,
            )?);
        self.exchange(call).await
    }

    /// Deprovisions a service instance (`DELETE /v2/service_instances/{instance_id}`).
    ///
    /// `410 Gone` is an outcome ([`DeleteOutcome::Gone`]), not an error.
    #[doc(alias = "service_instance_deprovision")]
    #[doc(alias = "deprovision_service_instance")]
    pub async fn deprovision(
        &self,
        instance_id: &InstanceId,
        query: &DeprovisionQuery,
        opts: &CallOptions,
    ) -> Result<DeleteOutcome, Error> {
        self.check_query(query, DeprovisionQuery::validate)?;
        let call = Call::new(Operation::Deprovision, opts)
            .instance(instance_id)
            .accepts_incomplete(query.accepts_incomplete)
            .param("service_id", &query.service_id)?
            .param("plan_id", &query.plan_id)?;
        self.exchange(call).await
    }

    /// Polls the last operation on a service instance
    /// (`GET /v2/service_instances/{instance_id}/last_operation`), once.
    ///
    /// After a plan change, `query.plan_id` must be the plan *before* the update.
    #[doc(alias = "service_instance_last_operation_get")]
    #[doc(alias = "last_operation")]
    pub async fn instance_last_operation(
        &self,
        instance_id: &InstanceId,
        query: &InstanceLastOperationQuery,
        opts: &CallOptions,
    ) -> Result<LastOperationOutcome, Error> {
        self.check_query(query, InstanceLastOperationQuery::validate)?;
        let call = Call::new(Operation::InstanceLastOperation, opts)
            .instance(instance_id)
            .hints(query.service_id.as_deref(), query.plan_id.as_deref())?
            .opt_param("operation", query.operation.as_deref())?;
        self.exchange(call).await
    }

    /// Fetches a service instance (`GET /v2/service_instances/{instance_id}`, OSB 2.14).
    ///
    /// The `service_id` / `plan_id` hints appeared in 2.16 and are left out for older versions.
    #[doc(alias = "service_instance_get")]
    #[doc(alias = "get_service_instance")]
    pub async fn fetch_instance(
        &self,
        instance_id: &InstanceId,
        query: &FetchInstanceQuery,
        opts: &CallOptions,
    ) -> Result<FetchInstanceOutcome, Error> {
        self.check_query(query, FetchInstanceQuery::validate)?;
        let call = Call::new(Operation::FetchInstance, opts).instance(instance_id);
        let call = self.fetch_hints(call, query.service_id.as_deref(), query.plan_id.as_deref())?;
        self.exchange(call).await
    }

    /// Creates a service binding
    /// (`PUT /v2/service_instances/{instance_id}/service_bindings/{binding_id}`).
    ///
    /// Asynchronous bindings appeared in OSB 2.14: `accepts_incomplete=true` is refused with
    /// [`Error::UnsupportedVersion`] when the client is configured for 2.13.
    #[doc(alias = "service_binding_binding")]
    #[doc(alias = "create_service_binding")]
    pub async fn bind(
        &self,
        instance_id: &InstanceId,
        binding_id: &BindingId,
        body: &ServiceBindingRequest,
        query: &BindQuery,
        opts: &CallOptions,
    ) -> Result<BindOutcome, Error> {
        let accepts_incomplete = self.binding_async(Operation::Bind, query.accepts_incomplete)?;
        let call = Call::new(Operation::Bind, opts)
            .binding(instance_id, binding_id)
            .accepts_incomplete(accepts_incomplete)
            .body(self.encode_body(Operation::Bind, body, ServiceBindingRequest::validate)?);
        self.exchange(call).await
    }

    /// Deletes a service binding
    /// (`DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}`).
    ///
    /// `410 Gone` is an outcome ([`DeleteOutcome::Gone`]), not an error.
    #[doc(alias = "service_binding_unbinding")]
    #[doc(alias = "delete_service_binding")]
    pub async fn unbind(
        &self,
        instance_id: &InstanceId,
        binding_id: &BindingId,
        query: &UnbindQuery,
        opts: &CallOptions,
    ) -> Result<DeleteOutcome, Error> {
        let accepts_incomplete = self.binding_async(Operation::Unbind, query.accepts_incomplete)?;
        self.check_query(query, UnbindQuery::validate)?;
        let call = Call::new(Operation::Unbind, opts)
            .binding(instance_id, binding_id)
            .accepts_incomplete(accepts_incomplete)
            .param("service_id", &query.service_id)?
            .param("plan_id", &query.plan_id)?;
        self.exchange(call).await
    }

    /// Polls the last operation on a service binding
    /// (`GET …/service_bindings/{binding_id}/last_operation`, OSB 2.14), once.
    #[doc(alias = "service_binding_last_operation_get")]
    pub async fn binding_last_operation(
        &self,
        instance_id: &InstanceId,
        binding_id: &BindingId,
        query: &BindingLastOperationQuery,
        opts: &CallOptions,
    ) -> Result<LastOperationOutcome, Error> {
        self.check_query(query, BindingLastOperationQuery::validate)?;
        let call = Call::new(Operation::BindingLastOperation, opts)
            .binding(instance_id, binding_id)
            .hints(query.service_id.as_deref(), query.plan_id.as_deref())?
            .opt_param("operation", query.operation.as_deref())?;
        self.exchange(call).await
    }

    /// Fetches a service binding (`GET …/service_bindings/{binding_id}`, OSB 2.14).
    ///
    /// The `service_id` / `plan_id` hints appeared in 2.16 and are left out for older versions.
    #[doc(alias = "service_binding_get")]
    #[doc(alias = "get_service_binding")]
    pub async fn fetch_binding(
        &self,
        instance_id: &InstanceId,
        binding_id: &BindingId,
        query: &FetchBindingQuery,
        opts: &CallOptions,
    ) -> Result<FetchBindingOutcome, Error> {
        self.check_query(query, FetchBindingQuery::validate)?;
        let call = Call::new(Operation::FetchBinding, opts).binding(instance_id, binding_id);
        let call = self.fetch_hints(call, query.service_id.as_deref(), query.plan_id.as_deref())?;
        self.exchange(call).await
    }

    /// The `service_id` / `plan_id` hints of the fetch endpoints appeared in 2.16; they are left
    /// out before then.
    fn fetch_hints<'a>(
        &self,
        call: Call<'a>,
        service_id: Option<&'a str>,
        plan_id: Option<&'a str>,
    ) -> Result<Call<'a>, Error> {
        // The same for both fetch operations.
        if self
            .inner
            .version
            .supports(FetchInstanceQuery::SERVICE_ID_SINCE)
        {
            call.hints(service_id, plan_id)
        } else {
            Ok(call)
        }
    }

    /// `accepts_incomplete` on bind/unbind appeared in 2.14: `true` is refused before then,
    /// `false` (the same as absent) is left out.
    fn binding_async(
        &self,
        operation: Operation,
        accepts_incomplete: Option<bool>,
    ) -> Result<Option<bool>, Error> {
        // The same for bind and unbind.
        let since = BindQuery::ACCEPTS_INCOMPLETE_SINCE;
        if self.inner.version.supports(since) {
            return Ok(accepts_incomplete);
        }
        match accepts_incomplete {
            Some(true) => {
                self.require(operation, Some("accepts_incomplete"), since)?;
                Ok(accepts_incomplete)
            }
            _ => Ok(None),
        }
    }
}

/// serde quotes offending string values in its messages (`invalid type: string "…"`); a
/// credential must not reach logs that way.
fn redact_quoted(reason: &str) -> String {
    match (reason.find('"'), reason.rfind('"')) {
        (Some(first), Some(last)) if first < last => {
            format!("{}\"<redacted>\"{}", &reason[..first], &reason[last + 1..])
        }
        _ => reason.to_string(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn read_body(
    response: &mut reqwest::Response,
    status: StatusCode,
    limit: usize,
    failed: impl Fn(reqwest::Error) -> Error,
) -> Result<Vec<u8>, Error> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(Error::BodyTooLarge { status, limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(&failed)? {
        if body.len() + chunk.len() > limit {
            return Err(Error::BodyTooLarge { status, limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_id(id: &str) -> Result<String, Error> {
        let mut path = String::new();
        push_path_id(&mut path, "instance_id", id).map(|()| path)
    }

    #[test]
    fn ids_are_encoded_outside_unreserved() {
        assert_eq!(path_id("a/b c%d").unwrap(), "a%2Fb%20c%25d");
        assert_eq!(path_id("ünï").unwrap(), "%C3%BCn%C3%AF");
        assert!(path_id("").is_err());
        assert!(path_id("..").is_err());
        assert!(path_id(".").is_err());
        assert_eq!(path_id("...").unwrap(), "...");
    }

    #[test]
    fn urls_join_the_base_path_the_operation_and_the_query() {
        let client = Client::builder("http://broker.test/prefix/")
            .build()
            .unwrap();
        let opts = CallOptions::new();
        let (instance, binding) = (InstanceId::new("i 1"), BindingId::new("b/1"));
        let call = Call::new(Operation::BindingLastOperation, &opts)
            .binding(&instance, &binding)
            .opt_param("operation", Some("op&1"))
            .unwrap();
        assert_eq!(
            client.url(&call).unwrap().as_str(),
            "http://broker.test/prefix/v2/service_instances/i%201/service_bindings/b%2F1/last_operation?operation=op%261"
        );
        let client = Client::builder("http://broker.test").build().unwrap();
        let call = Call::new(Operation::Catalog, &opts);
        assert_eq!(
            client.url(&call).unwrap().as_str(),
            "http://broker.test/v2/catalog"
        );
        let call = Call::new(Operation::Deprovision, &opts).accepts_incomplete(Some(false));
        assert!(
            matches!(client.url(&call), Err(Error::Validation(_))),
            "an id the path needs is missing"
        );
    }

    #[test]
    fn queries_are_checked_by_their_validate_when_enabled() {
        let strict = Client::builder("http://broker.test").build().unwrap();
        let lax = Client::builder("http://broker.test")
            .validate_requests(false)
            .build()
            .unwrap();
        let field = |r: Result<(), Error>| match r {
            Err(Error::Validation(osb_types::Invalid { field, .. })) => field,
            other => panic!("expected a validation error, got {other:?}"),
        };
        let long = "x".repeat(osb_types::MAX_OPERATION_LEN + 1);
        let poll = InstanceLastOperationQuery::new().with_operation(long.as_str());
        assert_eq!(
            field(strict.check_query(&poll, InstanceLastOperationQuery::validate)),
            "operation"
        );
        assert!(
            lax.check_query(&poll, InstanceLastOperationQuery::validate)
                .is_ok()
        );
        let poll = BindingLastOperationQuery::new().with_operation(long.as_str());
        assert_eq!(
            field(strict.check_query(&poll, BindingLastOperationQuery::validate)),
            "operation"
        );
        let delete = UnbindQuery::new("svc", "");
        assert_eq!(
            field(strict.check_query(&delete, UnbindQuery::validate)),
            "plan_id"
        );
        let fetch = FetchInstanceQuery::new().with_service_id("");
        assert_eq!(
            field(strict.check_query(&fetch, FetchInstanceQuery::validate)),
            "service_id"
        );
        // With validation off an empty value is still refused, as before `validate()` existed.
        assert!(lax.check_query(&delete, UnbindQuery::validate).is_ok());
        let opts = CallOptions::new();
        let call = Call::new(Operation::Unbind, &opts).param("plan_id", "");
        assert_eq!(field(call.map(drop)), "plan_id");
    }

    #[test]
    fn fresh_request_identities_are_uuids() {
        let first = request_identity_header(None).unwrap();
        let second = request_identity_header(None).unwrap();
        assert_ne!(first, second);
        let text = first.to_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(text).unwrap().to_string(), text);
    }

    #[test]
    fn quoted_values_are_redacted_from_decode_reasons() {
        let reason = r#"invalid type: string "p@ss \"w\"", expected a map at line 1 column 30"#;
        assert_eq!(
            redact_quoted(reason),
            r#"invalid type: string "<redacted>", expected a map at line 1 column 30"#
        );
        assert_eq!(
            redact_quoted("missing field `state`"),
            "missing field `state`"
        );
    }

    #[test]
    fn client_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Client>();
    }

    #[test]
    fn error_replies_are_classified() {
        let reply = |status: u16, body: &str| Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        };
        assert!(matches!(
            reply(422, r#"{"error":"AsyncRequired"}"#).error_reply(),
            Error::Broker {
                code: Some(osb_types::ErrorCode::AsyncRequired),
                ..
            }
        ));
        assert!(matches!(
            reply(500, "oops").error_reply(),
            Error::UnexpectedStatus { .. }
        ));
        assert!(matches!(
            reply(500, "[1]").error_reply(),
            Error::UnexpectedStatus { .. }
        ));
        assert!(matches!(
            reply(400, r#"{"error": 5}"#).error_reply(),
            Error::UnexpectedStatus { .. }
        ));
        assert!(matches!(
            reply(204, "{}").error_reply(),
            Error::UnexpectedStatus { .. }
        ));
        assert!(matches!(
            reply(409, "{}").error_reply(),
            Error::Broker { code: None, .. }
        ));
    }
}
