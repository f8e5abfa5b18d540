//! [`Error`], the error of building and serving; [`BrokerError`], a broker's answer to a request
//! that fails, and how it becomes an OSB error reply.

use std::error::Error as StdError;
use std::fmt;

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use osb_types::{ApiVersion, ErrorCode, ErrorResponse, Operation, Problem, ShapeForVersion};

/// A boxed error a broker hands to [`BrokerError::internal`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A broker's answer to a request that fails.
///
/// A broker returns a `BrokerError` from a [`ServiceBroker`](crate::ServiceBroker) method and
/// the server answers with the matching status and an OSB error body
/// (`{"error": …, "description": …}`):
///
/// | Variant | Status | Body |
/// |---|---|---|
/// | [`BadRequest`](Self::BadRequest) | 400 | `description` |
/// | [`NotFound`](Self::NotFound) | 404 | `description` |
/// | [`Conflict`](Self::Conflict) | 409 | `description` (an error object, see below) |
/// | [`Gone`](Self::Gone) | 410 | `{}` |
/// | [`UnprocessableEntity`](Self::UnprocessableEntity) | 422 | `error` code (`AsyncRequired`, `ConcurrencyError`, `RequiresApp`, `MaintenanceInfoConflict`), `description`, usability flags |
/// | [`NotSupported`](Self::NotSupported) | 422 for update, 400 otherwise | `description` naming the operation |
/// | [`Failed`](Self::Failed) | the given status (4xx or 5xx) | the given body |
/// | [`Internal`](Self::Internal) | 500 | a generic `description`; the real error is logged, never sent |
///
/// `instance_usable` is sent only on update and deprovision failures and `update_repeatable`
/// only on update failures, as the spec allows (both since OSB 2.16); on other operations, and
/// for older platforms, the server leaves them out.
///
/// 409 bodies: OSB 2.13 asked for `{}` on conflicts and later versions use error objects; an
/// error object with only a `description` satisfies both readings, so that is what is sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// `400 Bad Request`: the request is malformed or carries invalid data.
    #[error("bad request: {description}")]
    BadRequest {
        /// What is wrong, for the person who sent the request.
        description: String,
    },
    /// `404 Not Found`: the resource does not exist.
    #[error("not found: {description}")]
    NotFound {
        /// What was not found.
        description: String,
    },
    /// `409 Conflict`: the resource exists (or is being created) with different attributes.
    #[error("conflict: {description}")]
    Conflict {
        /// What conflicts.
        description: String,
    },
    /// `410 Gone`: the resource does not exist (on delete and last operation).
    #[error("gone")]
    Gone,
    /// `422 Unprocessable Entity`, optionally with one of the spec's error codes.
    #[error("unprocessable ({}): {description}", code.as_ref().map_or("no code", |c| c.as_str()))]
    UnprocessableEntity {
        /// The `error` code.
        code: Option<ErrorCode>,
        /// What the platform or user can do about it.
        description: String,
        /// Whether the instance is still usable (update and deprovision only).
        instance_usable: Option<bool>,
        /// Whether repeating the update can succeed (update only).
        update_repeatable: Option<bool>,
    },
    /// The broker does not implement this operation (the default of optional trait methods).
    #[error("operation {} is not supported by this broker", operation.operation_id())]
    NotSupported {
        /// The operation that is not supported.
        operation: Operation,
    },
    /// Any other failure, answered with `status` and `body` as given.
    ///
    /// A status below 400 is answered as 500.
    #[error("failed with status {status}: {}", body.description.as_deref().unwrap_or(""))]
    Failed {
        /// The status to answer with (4xx or 5xx).
        status: StatusCode,
        /// The error body.
        body: Box<ErrorResponse>,
    },
    /// An unexpected failure inside the broker: answered `500` with a generic description; the
    /// error itself is logged and never sent.
    #[error("internal error: {source}")]
    Internal {
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

/// The error of osb-server itself: a router or server that cannot be built, or cannot start
/// serving. Answers to requests are [`BrokerError`]s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The broker's [`catalog`](crate::ServiceBroker::catalog) failed while the router was
    /// being built.
    #[error("the broker's catalog could not be read: {0}")]
    Catalog(#[source] BrokerError),
    /// The catalog has problems the linter counts as errors; the router is not built.
    #[error("the catalog has {} error(s): {}", problems.len(), join(problems))]
    InvalidCatalog {
        /// The problems of severity error.
        problems: Vec<Problem>,
    },
    /// The router's or server's configuration is inconsistent.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// Serving could not start: the listener, a certificate file, a signal handler.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            reason: reason.into(),
        }
    }
}

/// An osb-types error raised by the broker's own code (a reply it could not build, such as
/// credentials that are not a JSON object) is an internal failure: answered `500` with a generic
/// description and logged in full, so `?` works on
/// [`BindOutcome::created_with_credentials`](osb_types::BindOutcome::created_with_credentials).
impl From<osb_types::Error> for BrokerError {
    fn from(error: osb_types::Error) -> Self {
        BrokerError::internal(error)
    }
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl BrokerError {
    /// `400 Bad Request` with a description.
    pub fn bad_request(description: impl Into<String>) -> Self {
        BrokerError::BadRequest {
            description: description.into(),
        }
    }

    /// `404 Not Found` with a description.
    pub fn not_found(description: impl Into<String>) -> Self {
        BrokerError::NotFound {
            description: description.into(),
        }
    }

    /// `409 Conflict` with a description.
    pub fn conflict(description: impl Into<String>) -> Self {
        BrokerError::Conflict {
            description: description.into(),
        }
    }

    /// `410 Gone`.
    pub fn gone() -> Self {
        BrokerError::Gone
    }

    /// `422 Unprocessable Entity` without an error code, e.g. an unsupported plan change.
    pub fn unprocessable(description: impl Into<String>) -> Self {
        Self::coded(None, description)
    }

    /// `422 AsyncRequired`: the broker can only do this asynchronously and the request did not
    /// carry `accepts_incomplete=true`.
    pub fn async_required() -> Self {
        Self::coded(
            Some(ErrorCode::AsyncRequired),
            "This operation can only be completed asynchronously; retry with accepts_incomplete=true.",
        )
    }

    /// [`async_required`](Self::async_required) for a platform that declared a version before
    /// 2.14, where bindings cannot be asynchronous at all.
    pub(crate) fn async_required_before_2_14() -> Self {
        Self::coded(
            Some(ErrorCode::AsyncRequired),
            "This operation can only be completed asynchronously; retry with accepts_incomplete=true \
             (asynchronous bindings also need X-Broker-API-Version 2.14 or later).",
        )
    }

    /// `422 ConcurrencyError`: another operation on the resource is in progress.
    pub fn concurrency_error(description: impl Into<String>) -> Self {
        Self::coded(Some(ErrorCode::ConcurrencyError), description)
    }

    /// `422 RequiresApp`: the binding needs `bind_resource.app_guid`.
    pub fn requires_app() -> Self {
        Self::coded(
            Some(ErrorCode::RequiresApp),
            "This binding requires an application; send bind_resource.app_guid.",
        )
    }

    /// `422 MaintenanceInfoConflict`: `maintenance_info.version` does not match the catalog.
    pub fn maintenance_info_conflict(description: impl Into<String>) -> Self {
        Self::coded(Some(ErrorCode::MaintenanceInfoConflict), description)
    }

    /// The operation is not implemented by this broker.
    pub fn not_supported(operation: Operation) -> Self {
        BrokerError::NotSupported { operation }
    }

    /// A failure with any status (4xx or 5xx) and a description.
    pub fn failed(status: StatusCode, description: impl Into<String>) -> Self {
        BrokerError::Failed {
            status,
            body: Box::new(ErrorResponse::described(description)),
        }
    }

    /// An unexpected failure; answered `500` with a generic description, logged in full.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        BrokerError::Internal {
            source: source.into(),
        }
    }

    fn coded(code: Option<ErrorCode>, description: impl Into<String>) -> Self {
        BrokerError::UnprocessableEntity {
            code,
            description: description.into(),
            instance_usable: None,
            update_repeatable: None,
        }
    }

    /// Sets `instance_usable` on a [`UnprocessableEntity`](Self::UnprocessableEntity) or
    /// [`Failed`](Self::Failed) error (other variants are returned unchanged).
    ///
    /// Sent only for update and deprovision failures (OSB 2.16 and later).
    #[must_use]
    pub fn with_instance_usable(mut self, usable: bool) -> Self {
        match &mut self {
            BrokerError::UnprocessableEntity {
                instance_usable, ..
            } => *instance_usable = Some(usable),
            BrokerError::Failed { body, .. } => body.instance_usable = Some(usable),
            _ => {}
        }
        self
    }

    /// Sets `update_repeatable` on a [`UnprocessableEntity`](Self::UnprocessableEntity) or
    /// [`Failed`](Self::Failed) error (other variants are returned unchanged).
    ///
    /// Sent only for update failures (OSB 2.16 and later).
    #[must_use]
    pub fn with_update_repeatable(mut self, repeatable: bool) -> Self {
        match &mut self {
            BrokerError::UnprocessableEntity {
                update_repeatable, ..
            } => *update_repeatable = Some(repeatable),
            BrokerError::Failed { body, .. } => body.update_repeatable = Some(repeatable),
            _ => {}
        }
        self
    }

    /// The status this error is answered with when returned from `operation`.
    pub fn status_for(&self, operation: Operation) -> StatusCode {
        match self {
            BrokerError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            BrokerError::NotFound { .. } => StatusCode::NOT_FOUND,
            BrokerError::Conflict { .. } => StatusCode::CONFLICT,
            BrokerError::Gone => StatusCode::GONE,
            BrokerError::UnprocessableEntity { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            BrokerError::NotSupported { .. } if operation == Operation::Update => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            BrokerError::NotSupported { .. } => StatusCode::BAD_REQUEST,
            BrokerError::Failed { status, .. } if status.as_u16() >= 400 => *status,
            BrokerError::Failed { .. } | BrokerError::Internal { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Turns the error into the reply for `operation`.
    pub(crate) fn into_rejection(self, operation: Operation) -> Rejection {
        let status = self.status_for(operation);
        let body = match self {
            BrokerError::BadRequest { description }
            | BrokerError::NotFound { description }
            | BrokerError::Conflict { description } => ErrorResponse::described(description),
            BrokerError::Gone => ErrorResponse::new(),
            BrokerError::UnprocessableEntity {
                code,
                description,
                instance_usable,
                update_repeatable,
            } => {
                let mut body = ErrorResponse::described(description);
                body.error = code.map(|c| c.as_str().to_string());
                body.instance_usable = instance_usable;
                body.update_repeatable = update_repeatable;
                body
            }
            BrokerError::NotSupported { operation } => ErrorResponse::described(format!(
                "This broker does not support {} ({} {}).",
                operation_name(operation),
                operation.method(),
                operation.path()
            )),
            BrokerError::Failed { body, .. } => *body,
            err @ BrokerError::Internal { .. } => {
                tracing::error!(error = %Chain(&err), "the broker failed");
                ErrorResponse::described(INTERNAL_DESCRIPTION)
            }
        };
        let mut rejection = Rejection::with_body(status, body);
        rejection.keep_usability = match operation {
            Operation::Update => Usability::Both,
            Operation::Deprovision => Usability::InstanceUsable,
            _ => Usability::None,
        };
        rejection
    }
}

/// On a broker's own axum routes, a `BrokerError` is answered as from an OSB route, without
/// the usability flags (they belong to update and deprovision).
impl From<BrokerError> for Rejection {
    fn from(error: BrokerError) -> Self {
        let operation = match &error {
            BrokerError::NotSupported { operation } => *operation,
            _ => Operation::Catalog,
        };
        error.into_rejection(operation)
    }
}

impl IntoResponse for BrokerError {
    fn into_response(self) -> Response {
        Rejection::from(self).into_response()
    }
}

pub(crate) const INTERNAL_DESCRIPTION: &str =
    "The broker failed unexpectedly; the error has been logged. Try again later.";

/// Displays an error with its chain of sources.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// A readable name of an operation for descriptions.
pub(crate) fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Catalog => "fetching the catalog",
        Operation::FetchInstance => "fetching service instances",
        Operation::Provision => "provisioning",
        Operation::Update => "updating service instances",
        Operation::Deprovision => "deprovisioning",
        Operation::InstanceLastOperation => "polling the last operation of service instances",
        Operation::FetchBinding => "fetching service bindings",
        Operation::Bind => "binding",
        Operation::Unbind => "unbinding",
        Operation::BindingLastOperation => "polling the last operation of service bindings",
    }
}

/// Which usability flags an error reply may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Usability {
    None,
    InstanceUsable,
    Both,
}

/// An error reply: a status and an OSB error body (`{"error": …, "description": …}`), shaped
/// for the request's version when it becomes a response.
///
/// The rejection of osb-server's [extractors](crate::headers), and what a [`BrokerError`]
/// becomes on a broker's own axum routes (`BrokerError` implements `IntoResponse`).
///
/// ```
/// use axum::response::IntoResponse;
/// use osb_server::Rejection;
/// let rejection = Rejection::new(http::StatusCode::CONFLICT, "the key exists");
/// assert_eq!(rejection.status(), http::StatusCode::CONFLICT);
/// assert_eq!(rejection.body().description.as_deref(), Some("the key exists"));
/// assert_eq!(rejection.into_response().status(), 409);
/// ```
#[derive(Debug)]
pub struct Rejection {
    pub(crate) status: StatusCode,
    pub(crate) body: Box<ErrorResponse>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) keep_usability: Usability,
    pub(crate) version: ApiVersion,
    /// The description may quote the request body (serde's messages quote offending values), so
    /// the log line gets it with quoted text redacted.
    pub(crate) quotes_input: bool,
}

/// A rejection's description, put in the response's extensions for the request's log line.
#[derive(Clone, Debug)]
pub(crate) struct LoggedDescription(pub(crate) String);

impl Rejection {
    /// A rejection with `status` (4xx or 5xx; anything else is answered `500`) and a
    /// description.
    pub fn new(status: StatusCode, description: impl Into<String>) -> Self {
        let status = if status.is_client_error() || status.is_server_error() {
            status
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        Self::with_body(status, ErrorResponse::described(description))
    }

    /// The status answered.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error body answered (before shaping for the request's version).
    pub fn body(&self) -> &ErrorResponse {
        &self.body
    }

    pub(crate) fn with_body(status: StatusCode, body: ErrorResponse) -> Self {
        Rejection {
            status,
            body: Box::new(body),
            headers: Vec::new(),
            keep_usability: Usability::None,
            version: ApiVersion::LATEST,
            quotes_input: false,
        }
    }

    /// Marks the description as possibly quoting the request body (see `quotes_input`).
    pub(crate) fn quoting_input(mut self) -> Self {
        self.quotes_input = true;
        self
    }

    /// A rejection with only a description.
    pub(crate) fn described(status: StatusCode, description: impl Into<String>) -> Self {
        Self::with_body(status, ErrorResponse::described(description))
    }

    pub(crate) fn bad_request(description: impl Into<String>) -> Self {
        Self::described(StatusCode::BAD_REQUEST, description)
    }

    /// `500` with the generic description (the cause is logged, never sent).
    pub(crate) fn internal() -> Self {
        Self::described(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_DESCRIPTION)
    }

    /// `503` for a request that took longer than `limit`.
    pub(crate) fn timed_out(limit: std::time::Duration) -> Self {
        Self::described(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "The broker did not answer within {} seconds; the request was abandoned.",
                limit.as_secs_f64()
            ),
        )
    }

    pub(crate) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn for_version(mut self, version: ApiVersion) -> Self {
        self.version = version;
        self
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let Rejection {
            status,
            mut body,
            headers,
            keep_usability,
            version,
            quotes_input,
        } = self;
        keep_allowed_usability(&mut body, keep_usability, version);
        let mut response = json_response(status, &*body);
        for (name, value) in headers {
            response.headers_mut().append(name, value);
        }
        if let Some(description) = body.description.filter(|d| !d.is_empty()) {
            let logged = if quotes_input {
                redact_quoted(&description)
            } else {
                description
            };
            response.extensions_mut().insert(LoggedDescription(logged));
        }
        response
    }
}

/// Replaces every double-quoted span with `"…"`: serde quotes offending string values in its
/// messages (`invalid type: string "…"`), and a parameter or credential must not reach the logs.
fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let mut quoted = true;
    for part in parts {
        if quoted {
            out.push_str("\"…");
        } else {
            out.push('"');
            out.push_str(part);
        }
        quoted = !quoted;
    }
    if !quoted {
        out.push('"');
    }
    out
}

/// Shapes the body for the version and drops the usability flags where they are not allowed.
///
/// `instance_usable` and `update_repeatable` appeared in 2.16 (shaping drops them before) and
/// belong to update and deprovision failures only. The `error` code is kept for every version:
/// 2.13 already used `AsyncRequired` and `RequiresApp`.
fn keep_allowed_usability(body: &mut ErrorResponse, keep: Usability, version: ApiVersion) {
    body.shape_for_version(version);
    if keep == Usability::None {
        body.instance_usable = None;
        body.update_repeatable = None;
    } else if keep == Usability::InstanceUsable {
        body.update_repeatable = None;
    }
}

/// A JSON reply; a body that cannot be serialized becomes a 500 with a fixed error body.
pub(crate) fn json_response<T: serde::Serialize + ?Sized>(
    status: StatusCode,
    body: &T,
) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_bytes_response(status, bytes.into()),
        Err(e) => {
            tracing::error!(error = %e, "could not serialize a reply body");
            let fallback = format!(r#"{{"description":"{INTERNAL_DESCRIPTION}"}}"#);
            json_bytes_response(StatusCode::INTERNAL_SERVER_ERROR, fallback.into())
        }
    }
}

pub(crate) fn json_bytes_response(status: StatusCode, bytes: bytes::Bytes) -> Response {
    let mut response = Response::new(axum::body::Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_variant_and_operation() {
        let cases = [
            (BrokerError::bad_request("x"), Operation::Provision, 400),
            (BrokerError::not_found("x"), Operation::FetchInstance, 404),
            (BrokerError::conflict("x"), Operation::Bind, 409),
            (BrokerError::gone(), Operation::Unbind, 410),
            (BrokerError::async_required(), Operation::Provision, 422),
            (
                BrokerError::not_supported(Operation::Update),
                Operation::Update,
                422,
            ),
            (
                BrokerError::not_supported(Operation::FetchBinding),
                Operation::FetchBinding,
                400,
            ),
            (
                BrokerError::failed(StatusCode::SERVICE_UNAVAILABLE, "x"),
                Operation::Provision,
                503,
            ),
            (
                BrokerError::failed(StatusCode::OK, "x"),
                Operation::Provision,
                500,
            ),
            (BrokerError::internal("boom"), Operation::Provision, 500),
        ];
        for (err, op, status) in cases {
            assert_eq!(err.status_for(op).as_u16(), status, "{err:?}");
        }
    }

    #[test]
    fn quoted_text_is_redacted_for_the_log() {
        assert_eq!(
            redact_quoted(r#"invalid type: string "s3cret", expected a map"#),
            r#"invalid type: string "…", expected a map"#
        );
        assert_eq!(redact_quoted(r#"a "b" c "d" e"#), r#"a "…" c "…" e"#);
        assert_eq!(redact_quoted(r#"open "quote"#), r#"open "…""#);
        assert_eq!(redact_quoted("no quotes"), "no quotes");
    }

    #[test]
    fn usability_flags_only_where_allowed() {
        let err = || {
            BrokerError::failed(StatusCode::INTERNAL_SERVER_ERROR, "x")
                .with_instance_usable(false)
                .with_update_repeatable(false)
        };
        let body = |op| err().into_rejection(op).body_for_test();
        assert_eq!(body(Operation::Update), (Some(false), Some(false)));
        assert_eq!(body(Operation::Deprovision), (Some(false), None));
        assert_eq!(body(Operation::Provision), (None, None));
        let mut old = ErrorResponse::described("x").with_instance_usable(false);
        keep_allowed_usability(&mut old, Usability::Both, ApiVersion::V2_15);
        assert_eq!(old.instance_usable, None);
    }

    impl Rejection {
        fn body_for_test(self) -> (Option<bool>, Option<bool>) {
            let mut body = *self.body;
            keep_allowed_usability(&mut body, self.keep_usability, ApiVersion::V2_16);
            (body.instance_usable, body.update_repeatable)
        }
    }
}
