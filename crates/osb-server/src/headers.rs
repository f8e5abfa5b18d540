//! Extractors for the OSB headers, for a broker's own axum routes beside the OSB ones.
//!
//! Each is checked as the OSB routes check it and fails with a [`Rejection`]: the right status
//! and an OSB error body.
//!
//! | Extractor | Header | Missing | Malformed |
//! |---|---|---|---|
//! | [`ApiVersionHeader`] | `X-Broker-API-Version` | `412` | `412` (or unsupported) |
//! | [`OriginatingIdentityHeader`] | `X-Broker-API-Originating-Identity` | `400` (`None` as an `Option`) | `400` |
//! | [`RequestIdentityHeader`] | `X-Broker-API-Request-Identity` | `400` (`None` as an `Option`) | `400` |
//!
//! ```
//! use axum::{Json, Router, routing::get};
//! use osb_server::{ApiVersionHeader, BrokerError, OriginatingIdentityHeader};
//! use serde_json::{Value, json};
//!
//! async fn usage(
//!     version: ApiVersionHeader,
//!     identity: Option<OriginatingIdentityHeader>,
//! ) -> Result<Json<Value>, BrokerError> {
//!     let platform = identity.as_ref().map(|i| i.0.platform().to_string());
//!     if platform.as_deref() == Some("forbidden") {
//!         return Err(BrokerError::bad_request("not for this platform"));
//!     }
//!     Ok(Json(json!({"version": version.declared.to_string(), "platform": platform})))
//! }
//!
//! let routes: Router = Router::new().route("/usage", get(usage));
//! ```

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::HeaderMap;
use http::request::Parts;
use osb_types::{ApiVersion, OriginatingIdentity};

use crate::error::Rejection;
use crate::extract::names;
use crate::version::VersionPolicy;

/// `X-Broker-API-Version`, checked with the default [`VersionPolicy`]: a missing, malformed or
/// unsupported version is answered `412 Precondition Failed`. For another policy, use
/// [`VersionPolicy::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiVersionHeader {
    /// The version exactly as declared.
    pub declared: ApiVersion,
    /// The version to shape replies for: the declared one, or the newest osb-rs knows when the
    /// platform declared a newer 2.x minor.
    pub effective: ApiVersion,
}

impl<S: Send + Sync> FromRequestParts<S> for ApiVersionHeader {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        VersionPolicy::default().check(&parts.headers)
    }
}

impl VersionPolicy {
    /// Checks a request's `X-Broker-API-Version` against this policy, as the OSB routes do.
    ///
    /// ```
    /// use osb_server::VersionPolicy;
    /// use osb_types::ApiVersion;
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-broker-api-version", "2.13".parse().unwrap());
    /// let policy = VersionPolicy::new().minimum(ApiVersion::V2_14);
    /// assert_eq!(policy.check(&headers).unwrap_err().status(), http::StatusCode::PRECONDITION_FAILED);
    /// headers.insert("x-broker-api-version", "2.19".parse().unwrap());
    /// let version = policy.check(&headers).unwrap();
    /// assert_eq!(version.effective, ApiVersion::LATEST);
    /// ```
    pub fn check(&self, headers: &HeaderMap) -> Result<ApiVersionHeader, Rejection> {
        let negotiated = self.negotiate(headers)?;
        Ok(ApiVersionHeader {
            declared: negotiated.declared,
            effective: negotiated.effective,
        })
    }
}

/// `X-Broker-API-Originating-Identity`: the platform and the user behind a request.
///
/// Required as itself (`400` when missing); as `Option<OriginatingIdentityHeader>`, `None`
/// when missing. Malformed is `400` either way.
#[derive(Clone, Debug, PartialEq)]
pub struct OriginatingIdentityHeader(pub OriginatingIdentity);

impl<S: Send + Sync> FromRequestParts<S> for OriginatingIdentityHeader {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        crate::extract::originating_identity(&parts.headers)?
            .map(OriginatingIdentityHeader)
            .ok_or_else(|| missing("X-Broker-API-Originating-Identity"))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for OriginatingIdentityHeader {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Rejection> {
        Ok(crate::extract::originating_identity(&parts.headers)?.map(OriginatingIdentityHeader))
    }
}

/// `X-Broker-API-Request-Identity`: the platform's id of a request, for correlating logs.
///
/// Required as itself (`400` when missing); as `Option<RequestIdentityHeader>`, `None` when
/// missing. A value that is not visible ASCII is `400` either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestIdentityHeader(pub String);

fn request_identity(headers: &HeaderMap) -> Result<Option<RequestIdentityHeader>, Rejection> {
    let Some(value) = headers.get(names::REQUEST_IDENTITY) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(text) => Ok(Some(RequestIdentityHeader(text.to_string()))),
        Err(_) => Err(Rejection::bad_request(
            "The X-Broker-API-Request-Identity header is not ASCII; send an identifier such as a UUID.",
        )),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestIdentityHeader {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        request_identity(&parts.headers)?.ok_or_else(|| missing("X-Broker-API-Request-Identity"))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for RequestIdentityHeader {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Rejection> {
        request_identity(&parts.headers)
    }
}

fn missing(name: &str) -> Rejection {
    Rejection::bad_request(format!("The {name} header is required on this route."))
}
