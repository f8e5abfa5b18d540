//! Names of the HTTP headers OSB uses (lower case, as `http::HeaderName` expects).

/// `X-Broker-API-Version`: the OSB version of the request (`MAJOR.MINOR`).
pub const API_VERSION: &str = "x-broker-api-version";
/// `X-Broker-API-Originating-Identity`: the user behind the request (`platform base64(json)`).
pub const ORIGINATING_IDENTITY: &str = "x-broker-api-originating-identity";
/// `X-Broker-API-Request-Identity`: an opaque id of the request, echoed by the broker (2.15).
pub const REQUEST_IDENTITY: &str = "x-broker-api-request-identity";
/// `Retry-After`: when to poll a last operation again (2.15).
pub const RETRY_AFTER: &str = "retry-after";
