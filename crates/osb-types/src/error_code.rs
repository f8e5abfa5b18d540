//! The `error` codes of OSB error bodies, and helpers on [`ErrorResponse`].

use std::fmt;

use crate::ErrorResponse;

/// The machine-readable `error` code of an OSB error body.
///
/// The spec defines four codes; any other value is kept in `Unknown`. Clients classify errors by
/// this code, never by the human-readable `description`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `AsyncRequired` (422): the broker can only do this asynchronously; retry with
    /// `accepts_incomplete=true`.
    AsyncRequired,
    /// `ConcurrencyError` (422): another operation on the resource is in progress; retry later.
    ConcurrencyError,
    /// `RequiresApp` (422): the bind request needs `bind_resource.app_guid`.
    RequiresApp,
    /// `MaintenanceInfoConflict` (422): `maintenance_info.version` does not match the catalog.
    MaintenanceInfoConflict,
    /// Any other code, kept as received.
    Unknown(String),
}

impl ErrorCode {
    /// The code as written in the `error` field.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::AsyncRequired => "AsyncRequired",
            ErrorCode::ConcurrencyError => "ConcurrencyError",
            ErrorCode::RequiresApp => "RequiresApp",
            ErrorCode::MaintenanceInfoConflict => "MaintenanceInfoConflict",
            ErrorCode::Unknown(other) => other,
        }
    }

    /// Whether this is one of the four codes the spec defines.
    pub fn is_known(&self) -> bool {
        !matches!(self, ErrorCode::Unknown(_))
    }
}

impl From<&str> for ErrorCode {
    fn from(code: &str) -> Self {
        match code {
            "AsyncRequired" => ErrorCode::AsyncRequired,
            "ConcurrencyError" => ErrorCode::ConcurrencyError,
            "RequiresApp" => ErrorCode::RequiresApp,
            "MaintenanceInfoConflict" => ErrorCode::MaintenanceInfoConflict,
            other => ErrorCode::Unknown(other.to_string()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorResponse {
    /// An error body with a code and a description.
    ///
    /// ```
    /// use osb_types::{ErrorCode, ErrorResponse};
    /// let body = ErrorResponse::coded(ErrorCode::ConcurrencyError, "another update is running");
    /// assert_eq!(body.code(), Some(ErrorCode::ConcurrencyError));
    /// ```
    pub fn coded(code: ErrorCode, description: impl Into<String>) -> Self {
        ErrorResponse::new()
            .with_code(code)
            .with_description(description)
    }

    /// An error body with only a description.
    pub fn described(description: impl Into<String>) -> Self {
        ErrorResponse::new().with_description(description)
    }

    /// Sets the `error` code.
    #[must_use]
    pub fn with_code(self, code: ErrorCode) -> Self {
        self.with_error(code.as_str())
    }

    /// The `error` code, if the body has one.
    pub fn code(&self) -> Option<ErrorCode> {
        self.error.as_deref().map(ErrorCode::from)
    }
}
