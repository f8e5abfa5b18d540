//! Errors, and their Cloud Controller v2 error bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A Cloud Controller v2 error kind: the numeric `code`, the `error_code` name (without the
/// `CF-` prefix) and the HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CfCode {
    /// The numeric `code` of the body.
    pub code: u32,
    /// The name; the body's `error_code` is `CF-` and this name.
    pub name: &'static str,
    /// The HTTP status.
    pub status: u16,
}

macro_rules! codes {
    ($($(#[$doc:meta])* $id:ident = $code:literal, $name:literal, $status:literal;)*) => {
        impl CfCode {
            $($(#[$doc])* pub const $id: CfCode = CfCode { code: $code, name: $name, status: $status };)*
        }
    };
}

codes! {
    /// 401: the token is expired, badly signed or not a token.
    INVALID_AUTH_TOKEN = 1000, "InvalidAuthToken", 401;
    /// 400: the body is not JSON, or a field is missing or has the wrong type.
    MESSAGE_PARSE_ERROR = 1001, "MessageParseError", 400;
    /// 400: a guid in the body names nothing.
    INVALID_RELATION = 1002, "InvalidRelation", 400;
    /// 404: no such route or resource.
    NOT_FOUND = 10000, "NotFound", 404;
    /// 401: no token was sent.
    NOT_AUTHENTICATED = 10002, "NotAuthenticated", 401;
    /// 403: the token lacks the scope.
    NOT_AUTHORIZED = 10003, "NotAuthorized", 403;
    /// 400 (or 413 for an oversized body): the request cannot be served as sent.
    INVALID_REQUEST = 10004, "InvalidRequest", 400;
    /// 400: a query parameter is malformed.
    BAD_QUERY_PARAMETER = 10005, "BadQueryParameter", 400;
    /// 422: the request cannot be done as asked (a `maintenance_info` that is not the plan's).
    UNPROCESSABLE_ENTITY = 10008, "UnprocessableEntity", 422;
    /// 400: the resource still has associations (instances).
    ASSOCIATION_NOT_EMPTY = 10006, "AssociationNotEmpty", 400;
    /// 404: no service instance has the guid.
    SERVICE_INSTANCE_NOT_FOUND = 60004, "ServiceInstanceNotFound", 404;
    /// 404: no service plan has the guid.
    SERVICE_PLAN_NOT_FOUND = 110003, "ServicePlanNotFound", 404;
    /// 400: the service breaks a rule (a taken `unique_id`, …).
    SERVICE_INVALID = 120001, "ServiceInvalid", 400;
    /// 400: a service with the label (and provider) exists.
    SERVICE_LABEL_TAKEN = 120002, "ServiceLabelTaken", 400;
    /// 404: no service has the guid.
    SERVICE_NOT_FOUND = 120003, "ServiceNotFound", 404;
    /// 400: the broker request is invalid.
    SERVICE_BROKER_INVALID = 270001, "ServiceBrokerInvalid", 400;
    /// 400: another broker has the name.
    SERVICE_BROKER_NAME_TAKEN = 270002, "ServiceBrokerNameTaken", 400;
    /// 400: another broker has the URL.
    SERVICE_BROKER_URL_TAKEN = 270003, "ServiceBrokerUrlTaken", 400;
    /// 404: no broker has the guid.
    SERVICE_BROKER_NOT_FOUND = 270004, "ServiceBrokerNotFound", 404;
    /// 400: the broker's plans still have instances.
    SERVICE_BROKER_NOT_REMOVABLE = 270010, "ServiceBrokerNotRemovable", 400;
    /// 400: the broker URL is not an http(s) URL.
    SERVICE_BROKER_URL_INVALID = 270011, "ServiceBrokerUrlInvalid", 400;
    /// 502: the broker's catalog fails the linter or does not decode.
    SERVICE_BROKER_CATALOG_INVALID = 270012, "ServiceBrokerCatalogInvalid", 502;
    /// 400: the broker URL carries a user name or password.
    SERVICE_BROKER_URL_BASIC_AUTH_NOT_SUPPORTED = 270016, "ServiceBrokerUrlBasicAuthNotSupported", 400;
    /// 502: the broker answered an unexpected status.
    SERVICE_BROKER_REQUEST_REJECTED = 270020, "ServiceBrokerRequestRejected", 502;
    /// 502: the broker's body is not a JSON object.
    SERVICE_BROKER_REQUEST_MALFORMED = 270021, "ServiceBrokerRequestMalformed", 502;
    /// 502: the broker could not be reached (relayed broker errors use code 10001).
    SERVICE_BROKER_API_UNREACHABLE = 10001, "ServiceBrokerApiUnreachable", 502;
    /// 502: the broker refused the marketplace's credentials.
    SERVICE_BROKER_API_AUTHENTICATION_FAILED = 10001, "ServiceBrokerApiAuthenticationFailed", 502;
    /// 502: the broker did not answer in time.
    SERVICE_BROKER_API_TIMEOUT = 10001, "ServiceBrokerApiTimeout", 502;
    /// 400: the instance name is taken in the space.
    SERVICE_INSTANCE_NAME_TAKEN = 60002, "ServiceInstanceNameTaken", 400;
    /// 400: the instance name is longer than 255 characters.
    SERVICE_INSTANCE_NAME_TOO_LONG = 60009, "ServiceInstanceNameTooLong", 400;
    /// 400: the tags are longer than 2048 characters together.
    SERVICE_INSTANCE_TAGS_TOO_LONG = 60015, "ServiceInstanceTagsTooLong", 400;
    /// 409: another operation runs on the instance.
    ASYNC_SERVICE_INSTANCE_OPERATION_IN_PROGRESS = 60016, "AsyncServiceInstanceOperationInProgress", 409;
    /// 400: the app is already bound to the instance, or the binding name is taken.
    SERVICE_BINDING_APP_SERVICE_TAKEN = 90003, "ServiceBindingAppServiceTaken", 400;
    /// 404: no binding has the guid.
    SERVICE_BINDING_NOT_FOUND = 90004, "ServiceBindingNotFound", 404;
    /// 400: the service is not bindable.
    UNBINDABLE_SERVICE = 90005, "UnbindableService", 400;
    /// 400: the plan cannot be used (inactive, another service's, not updateable).
    SERVICE_PLAN_INVALID = 110001, "ServicePlanInvalid", 400;
    /// 400: the offering does not allow fetching instances or bindings.
    SERVICE_FETCH_NOT_SUPPORTED = 120004, "ServiceFetchParametersNotSupported", 400;
    /// 400: the broker requires `accepts_incomplete=true`.
    SERVICE_BROKER_ASYNC_REQUIRED = 270014, "ServiceBrokerAsyncRequired", 400;
    /// 502: the broker answered 202 to a request that did not allow it.
    SERVICE_BROKER_RESPONDED_ASYNC_WHEN_NOT_ALLOWED = 270017, "ServiceBrokerRespondedAsyncWhenNotAllowed", 502;
    /// 422: the broker refuses to run two operations at once.
    SERVICE_BROKER_CONCURRENCY_ERROR = 270018, "ServiceBrokerConcurrencyError", 422;
    /// 500: something failed on the marketplace's side (details are logged, not returned).
    UNKNOWN_ERROR = 10001, "UnknownError", 500;
}

/// An answer in Cloud Controller's error format:
/// `{"code": N, "description": "...", "error_code": "CF-Name"}`.
#[derive(Clone, Debug, PartialEq)]
pub struct CfError {
    /// The kind.
    pub kind: CfCode,
    /// The human-readable description.
    pub description: String,
    /// The HTTP status, when it differs from the kind's (an oversized body is `413`).
    pub status: Option<u16>,
    /// For errors relayed from a broker: `{"uri", "method", "status"}`.
    pub http: Option<Box<Value>>,
}

impl CfError {
    /// An error of `kind` with `description`.
    pub fn new(kind: CfCode, description: impl Into<String>) -> CfError {
        CfError {
            kind,
            description: description.into(),
            status: None,
            http: None,
        }
    }

    /// `400 CF-MessageParseError` with CC's wording.
    pub fn parse(detail: impl std::fmt::Display) -> CfError {
        CfError::new(
            CfCode::MESSAGE_PARSE_ERROR,
            format!("Request invalid due to parse error: {detail}"),
        )
    }

    /// `400 CF-BadQueryParameter` with CC's wording.
    pub fn query(detail: impl std::fmt::Display) -> CfError {
        CfError::new(
            CfCode::BAD_QUERY_PARAMETER,
            format!("The query parameter is invalid: {detail}"),
        )
    }

    /// `404 CF-NotFound` for a route that does not exist.
    pub fn unknown_route() -> CfError {
        CfError::new(CfCode::NOT_FOUND, "Unknown request")
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status.unwrap_or(self.kind.status))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "code": self.kind.code,
            "description": self.description,
            "error_code": format!("CF-{}", self.kind.name),
        });
        if let Some(http) = &self.http {
            body["http"] = (**http).clone();
        }
        body
    }
}

impl std::fmt::Display for CfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CF-{}: {}", self.kind.name, self.description)
    }
}

/// Everything that can go wrong in the marketplace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An answer to a request, in Cloud Controller's format.
    #[error("{0}")]
    Api(CfError),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The database could not be opened or migrated: it is another program's, or newer.
    #[error("the database cannot be used: {0}")]
    Incompatible(String),
    /// The configuration is unusable (a bad key, a bad address, …).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A stored secret cannot be opened with the configured keys.
    #[error("a stored secret cannot be decrypted with the configured keys")]
    Secret,
}

impl From<CfError> for Error {
    fn from(e: CfError) -> Error {
        Error::Api(e)
    }
}

impl Error {
    /// The Cloud Controller answer for this error. Failures of the marketplace itself are
    /// `500 CF-UnknownError` with a generic description; their details go to the log only.
    pub fn to_cf(&self) -> CfError {
        match self {
            Error::Api(e) => e.clone(),
            other => CfError::new(
                CfCode::UNKNOWN_ERROR,
                match other {
                    Error::Database(_) | Error::Incompatible(_) => {
                        "An unknown error occurred: the marketplace's database failed."
                    }
                    _ => "An unknown error occurred.",
                },
            ),
        }
    }
}

impl IntoResponse for CfError {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self.body())).into_response()
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if !matches!(self, Error::Api(_)) {
            tracing::error!(error = %self, "request failed");
        }
        self.to_cf().into_response()
    }
}

/// The result of a handler.
pub type Result<T, E = Error> = std::result::Result<T, E>;
