//! The one error type of osb-client.

use std::fmt;

use http::StatusCode;
use osb_types::{ApiVersion, ErrorCode, ErrorResponse, LastOperationResource, Operation};

/// A reply body kept as received (lossy UTF-8).
///
/// Its `Debug` output shows only the length, because a body may hold credentials (a bind reply
/// that failed to decode, for instance). Read it with [`RawBody::as_str`] when you need it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RawBody(String);

impl RawBody {
    /// Wraps received bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        RawBody(String::from_utf8_lossy(bytes).into_owned())
    }

    /// The body text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Unwraps the body text.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<&str> for RawBody {
    fn from(text: &str) -> Self {
        RawBody(text.to_string())
    }
}

impl From<String> for RawBody {
    fn from(text: String) -> Self {
        RawBody(text)
    }
}

impl fmt::Debug for RawBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawBody(<{} bytes>)", self.0.len())
    }
}

/// Everything that can go wrong when talking to a broker.
///
/// Replies are classified by status and by the OSB `error` code, never by the human-readable
/// description. Bodies are kept (as [`ErrorResponse`] or [`RawBody`]) but never printed by
/// `Display` or `Debug` (which shows only an error body's status, code and `description`), so
/// logging an error, or returning it from `main`, cannot leak credentials.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The broker answered with an error status and a JSON error body.
    #[error("{}", broker_message(*status, code.as_ref(), body))]
    Broker {
        /// The HTTP status received.
        status: StatusCode,
        /// The decoded error body (every field optional; unknown fields kept in `extra`).
        body: Box<ErrorResponse>,
        /// The body's `error` code, if it had one.
        code: Option<ErrorCode>,
    },
    /// The broker answered with a status this operation does not define and a body that is not
    /// an OSB error object (plain text from a proxy, HTML, an unexpected 2xx, …), or with a
    /// redirect (`3xx`, whatever its body): redirects are not followed.
    #[error("the broker answered with unexpected status {status}")]
    UnexpectedStatus {
        /// The HTTP status received.
        status: StatusCode,
        /// The body as received.
        body: RawBody,
    },
    /// A successful reply whose body does not match the operation's model.
    #[error("the body of the broker's {status} reply does not decode")]
    Decode {
        /// The HTTP status received.
        status: StatusCode,
        /// The body as received.
        body: RawBody,
        /// What did not match.
        #[source]
        source: osb_types::Error,
    },
    /// The broker answered `202 Accepted` although the request did not set
    /// `accepts_incomplete=true`.
    #[error(
        "the broker answered 202 Accepted although the request did not allow asynchronous operations"
    )]
    AsyncNotPermitted {
        /// The body as received.
        body: RawBody,
    },
    /// A reply body was larger than the client's limit ([`ClientBuilder::max_response_bytes`]).
    ///
    /// [`ClientBuilder::max_response_bytes`]: crate::ClientBuilder::max_response_bytes
    #[error("the broker's {status} reply exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The HTTP status received.
        status: StatusCode,
        /// The limit in bytes.
        limit: usize,
    },
    /// The request or the reply timed out.
    #[error("the request to the broker timed out")]
    Timeout {
        /// The HTTP client's error, when the timeout came from it.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The request could not be sent or the reply could not be read (DNS, TLS, connection reset…).
    ///
    /// The message names the request and the whole cause chain (`could not talk to the broker:
    /// GET http://…/v2/catalog: error sending request: client error (Connect): tcp connect error:
    /// Connection refused`), so `source()` is `None` rather than repeating it; the HTTP client's
    /// error is in `cause`.
    #[error("could not talk to the broker: {method} {url}: {}", chain(cause))]
    Transport {
        /// The request's method.
        method: http::Method,
        /// The request's URL.
        url: String,
        /// The HTTP client's error (without the URL, which is in `url`).
        cause: reqwest::Error,
    },
    /// The tower service of the in-process transport failed, or its reply body could not be
    /// read ([`ClientBuilder::service`](crate::ClientBuilder::service), `in-process` feature).
    #[error("the in-process service failed")]
    Service(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The request breaks a rule of the spec and was not sent: the field at fault and why.
    #[error(transparent)]
    Validation(osb_types::Invalid),
    /// `parameters` do not match the plan's JSON schema (from the optional checks such as
    /// [`check_provision`](crate::check_provision)); nothing was sent.
    #[error("{}", parameters_message(violations))]
    InvalidParameters {
        /// Every violation, with a JSON pointer into the parameters.
        violations: Vec<osb_types::schema::SchemaViolation>,
    },
    /// The endpoint (or one of its features) is newer than the client's configured API version;
    /// nothing was sent.
    #[error("{}", unsupported_message(*operation, *feature, *since, *configured))]
    UnsupportedVersion {
        /// The operation that was refused.
        operation: Operation,
        /// The refused feature of the operation, or `None` for the endpoint itself.
        feature: Option<&'static str>,
        /// The OSB version that introduced it.
        since: ApiVersion,
        /// The version the client is configured for.
        configured: ApiVersion,
    },
    /// An asynchronous operation ended in `failed` (reported by a helper that waits for it, such
    /// as [`cleanup_orphan`](crate::Client::cleanup_orphan)).
    #[error("the broker reports the operation as failed{}", describe(resource.description.as_deref()))]
    OperationFailed {
        /// The last-operation reply.
        resource: Box<LastOperationResource>,
    },
    /// Polling reached its deadline before the operation finished (reported by a helper that
    /// waits for it, such as [`cleanup_orphan`](crate::Client::cleanup_orphan)).
    #[error("the operation did not finish before the polling deadline")]
    PollDeadline {
        /// The last state the broker reported, if any.
        last: Option<Box<LastOperationResource>>,
    },
    /// The client configuration is unusable (bad base URL, unsupported API version, …).
    #[error("invalid client configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

/// An error and its sources, joined with `": "`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn broker_message(status: StatusCode, code: Option<&ErrorCode>, body: &ErrorResponse) -> String {
    let mut text = format!("the broker answered {status}");
    if let Some(code) = code {
        text.push_str(&format!(" ({code})"));
    }
    text.push_str(&describe(body.description.as_deref()));
    text
}

fn parameters_message(violations: &[osb_types::schema::SchemaViolation]) -> String {
    let mut text = "the parameters do not match the plan's schema".to_string();
    if let Some(first) = violations.first() {
        text.push_str(&format!(": {first}"));
    }
    if violations.len() > 1 {
        text.push_str(&format!(" (and {} more)", violations.len() - 1));
    }
    text
}

fn describe(description: Option<&str>) -> String {
    match description {
        Some(d) if !d.is_empty() => format!(": {d}"),
        _ => String::new(),
    }
}

fn unsupported_message(
    operation: Operation,
    feature: Option<&'static str>,
    since: ApiVersion,
    configured: ApiVersion,
) -> String {
    let what = match feature {
        Some(feature) => format!("`{feature}` on {}", operation.operation_id()),
        None => format!(
            "{} ({} {})",
            operation.operation_id(),
            operation.method(),
            operation.path()
        ),
    };
    format!("{what} needs OSB {since}, but the client is configured for {configured}")
}

impl Error {
    /// The HTTP status of the reply, when there was one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Broker { status, .. }
            | Error::UnexpectedStatus { status, .. }
            | Error::Decode { status, .. }
            | Error::BodyTooLarge { status, .. } => Some(*status),
            Error::AsyncNotPermitted { .. } => Some(StatusCode::ACCEPTED),
            Error::Transport { cause, .. } => cause.status(),
            _ => None,
        }
    }

    /// The OSB `error` code of a broker error reply.
    pub fn error_code(&self) -> Option<&ErrorCode> {
        match self {
            Error::Broker { code, .. } => code.as_ref(),
            _ => None,
        }
    }

    /// The decoded error body of a broker error reply.
    pub fn error_response(&self) -> Option<&ErrorResponse> {
        match self {
            Error::Broker { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The raw body of a reply that could not be classified or decoded.
    pub fn raw_body(&self) -> Option<&str> {
        match self {
            Error::UnexpectedStatus { body, .. }
            | Error::Decode { body, .. }
            | Error::AsyncNotPermitted { body } => Some(body.as_str()),
            _ => None,
        }
    }

    /// `422` with `AsyncRequired`: retry with `accepts_incomplete=true`.
    pub fn is_async_required(&self) -> bool {
        self.has_code(&ErrorCode::AsyncRequired)
    }

    /// `422` with `ConcurrencyError`: another operation is in progress; retry later.
    pub fn is_concurrency_error(&self) -> bool {
        self.has_code(&ErrorCode::ConcurrencyError)
    }

    /// `422` with `RequiresApp`: the bind request needs `bind_resource.app_guid`.
    pub fn is_requires_app(&self) -> bool {
        self.has_code(&ErrorCode::RequiresApp)
    }

    /// `422` with `MaintenanceInfoConflict`: fetch the catalog again.
    pub fn is_maintenance_info_conflict(&self) -> bool {
        self.has_code(&ErrorCode::MaintenanceInfoConflict)
    }

    /// `409 Conflict`: the resource exists with different attributes.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(StatusCode::CONFLICT)
    }

    /// `410 Gone` where the operation does not define it as an outcome.
    pub fn is_gone(&self) -> bool {
        self.status() == Some(StatusCode::GONE)
    }

    /// `401 Unauthorized`: the broker refused the credentials.
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(StatusCode::UNAUTHORIZED)
    }

    /// The request or reply timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// The request never reached the broker (the connection could not be opened), so the broker
    /// cannot have acted on it.
    pub fn is_connect(&self) -> bool {
        match self {
            Error::Transport { cause, .. } => cause.is_connect(),
            Error::Timeout { source: Some(e) } => e.is_connect(),
            _ => false,
        }
    }

    /// Nothing was sent: the request was refused by the client itself.
    pub fn is_refused_locally(&self) -> bool {
        matches!(
            self,
            Error::Validation(_)
                | Error::InvalidParameters { .. }
                | Error::UnsupportedVersion { .. }
                | Error::Config { .. }
        )
    }

    fn has_code(&self, wanted: &ErrorCode) -> bool {
        self.error_code() == Some(wanted)
    }

    /// The error of the HTTP client for a `method` request to `url`.
    pub(crate) fn from_reqwest(
        e: reqwest::Error,
        method: &http::Method,
        url: &reqwest::Url,
    ) -> Self {
        if e.is_timeout() {
            return Error::Timeout { source: Some(e) };
        }
        // The builder refuses base URLs with user info, so the URL holds no credentials.
        Error::Transport {
            method: method.clone(),
            url: url.to_string(),
            cause: e.without_url(),
        }
    }
}

/// Shows the variant and its fields, but of a broker's error body only the status, code,
/// `description` and usability flags, and of a last-operation reply only its state and
/// `description`: the rest of a body may hold anything.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Broker { status, body, code } => f
                .debug_struct("Broker")
                .field("status", status)
                .field("code", code)
                .field("description", &body.description)
                .field("instance_usable", &body.instance_usable)
                .field("update_repeatable", &body.update_repeatable)
                .finish_non_exhaustive(),
            Error::UnexpectedStatus { status, body } => f
                .debug_struct("UnexpectedStatus")
                .field("status", status)
                .field("body", body)
                .finish(),
            Error::Decode {
                status,
                body,
                source,
            } => f
                .debug_struct("Decode")
                .field("status", status)
                .field("body", body)
                .field("source", source)
                .finish(),
            Error::AsyncNotPermitted { body } => f
                .debug_struct("AsyncNotPermitted")
                .field("body", body)
                .finish(),
            Error::BodyTooLarge { status, limit } => f
                .debug_struct("BodyTooLarge")
                .field("status", status)
                .field("limit", limit)
                .finish(),
            Error::Timeout { source } => f.debug_struct("Timeout").field("source", source).finish(),
            Error::Transport { method, url, cause } => f
                .debug_struct("Transport")
                .field("method", method)
                .field("url", url)
                .field("cause", &chain(cause))
                .finish(),
            Error::Service(e) => f.debug_tuple("Service").field(e).finish(),
            Error::Validation(e) => f.debug_tuple("Validation").field(e).finish(),
            Error::InvalidParameters { violations } => f
                .debug_struct("InvalidParameters")
                .field("violations", violations)
                .finish(),
            Error::UnsupportedVersion {
                operation,
                feature,
                since,
                configured,
            } => f
                .debug_struct("UnsupportedVersion")
                .field("operation", operation)
                .field("feature", feature)
                .field("since", since)
                .field("configured", configured)
                .finish(),
            Error::OperationFailed { resource } => f
                .debug_struct("OperationFailed")
                .field("state", &resource.state)
                .field("description", &resource.description)
                .finish_non_exhaustive(),
            Error::PollDeadline { last } => f
                .debug_struct("PollDeadline")
                .field("state", &last.as_ref().map(|r| &r.state))
                .field(
                    "description",
                    &last.as_ref().and_then(|r| r.description.as_ref()),
                )
                .finish_non_exhaustive(),
            Error::Config { reason } => f.debug_struct("Config").field("reason", reason).finish(),
        }
    }
}

/// `Result` with [`Error`](enum@Error) as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_errors_classify_by_code() {
        let err = Error::Broker {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: Box::new(ErrorResponse::coded(ErrorCode::ConcurrencyError, "busy")),
            code: Some(ErrorCode::ConcurrencyError),
        };
        assert!(err.is_concurrency_error());
        assert!(!err.is_async_required());
        assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
        assert_eq!(
            err.to_string(),
            "the broker answered 422 Unprocessable Entity (ConcurrencyError): busy"
        );
    }

    #[test]
    fn raw_bodies_stay_out_of_debug_and_display() {
        let err = Error::Decode {
            status: StatusCode::CREATED,
            body: RawBody::from(r#"{"credentials": "hunter2"}"#),
            source: osb_types::Error::Decode {
                status: 201,
                reason: "bad".into(),
            },
        };
        assert!(!format!("{err:?}").contains("hunter2"));
        assert!(!err.to_string().contains("hunter2"));
        assert_eq!(err.raw_body(), Some(r#"{"credentials": "hunter2"}"#));
    }

    #[test]
    fn unsupported_version_names_what_and_when() {
        let err = Error::UnsupportedVersion {
            operation: Operation::FetchBinding,
            feature: None,
            since: ApiVersion::V2_14,
            configured: ApiVersion::V2_13,
        };
        let text = err.to_string();
        assert!(
            text.contains("serviceBinding.get") && text.contains("2.14") && text.contains("2.13"),
            "{text}"
        );
        assert!(err.is_refused_locally());
    }
}
