//! The one error type of osb-types.

/// OSB data that breaks the spec, as osb-types finds it: a header that does not parse, a
/// request or model that does not validate ([`Invalid`], which the `validate` methods return on
/// their own), or a broker's reply that is not an outcome of its operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `X-Broker-API-Version` is not `MAJOR.MINOR`.
    #[error("invalid OSB API version {input:?}: expected MAJOR.MINOR, such as \"2.17\"")]
    InvalidApiVersion {
        /// The text that did not parse.
        input: String,
    },
    /// `X-Broker-API-Originating-Identity` is malformed.
    #[error("invalid originating identity: {reason}")]
    InvalidOriginatingIdentity {
        /// What is wrong, in words a person can act on.
        reason: String,
    },
    /// `Retry-After` is neither a number of seconds nor an HTTP date.
    #[error("invalid Retry-After value {input:?}: expected seconds or an HTTP date")]
    InvalidRetryAfter {
        /// The text that did not parse.
        input: String,
    },
    /// A request or model breaks a rule of the spec.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A reply's status code is not one of the successful outcomes of the operation.
    #[error("status {status} is not a successful outcome of this operation")]
    UnexpectedStatus {
        /// The HTTP status code received.
        status: u16,
    },
    /// A `202 Accepted` reply to a request that did not allow asynchronous operations.
    #[error(
        "the broker answered 202 Accepted although the request did not set accepts_incomplete=true"
    )]
    AsyncNotPermitted,
    /// A reply body does not match the model of its status code.
    ///
    /// Its message is the reason alone, e.g. ``at `services[0].plans[1]`: missing field `id` at
    /// line 1 column 109``: the status is in the variant, and the client's own error says which
    /// reply it was.
    #[error("{reason}")]
    Decode {
        /// The HTTP status code received.
        status: u16,
        /// What serde reported, with the JSON path of the offending value.
        reason: String,
    },
}

impl Error {
    /// A validation error for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid(Invalid::new(field, reason))
    }
}

/// A request, query or model that breaks a rule of the spec: what the `validate` methods
/// return, naming the offending field.
///
/// ```
/// use osb_types::Invalid;
/// let invalid = Invalid::new("maintenance_info.version", "must not be empty");
/// assert_eq!(invalid.to_string(), "invalid `maintenance_info.version`: must not be empty");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {reason}")]
pub struct Invalid {
    /// The JSON path of the offending field, e.g. `maintenance_info.version` (for a query, the
    /// parameter's name; for a header, its name).
    pub field: String,
    /// What is wrong, in words a person can act on.
    pub reason: String,
}

impl Invalid {
    /// A validation error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// `Result` with [`Error`](enum@Error) as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
