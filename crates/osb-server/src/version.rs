//! The `X-Broker-API-Version` policy.

use http::{HeaderMap, StatusCode};
use osb_types::{ApiVersion, Operation};

use crate::error::Rejection;

/// How the router treats the `X-Broker-API-Version` header.
///
/// Defaults: a missing or unparsable header is answered `412 Precondition Failed` (what
/// conformance tools and most platforms expect; the spec also allows `400`, see
/// [`missing_header_status`](Self::missing_header_status)); a major version other than 2 or a
/// minor below the minimum (2.13) is answered `412` with a description naming the supported range;
/// a newer 2.x minor than osb-rs knows is accepted and treated as the newest known version
/// (minor versions only add optional fields); an endpoint newer than the declared version
/// (fetch instance, fetch binding and binding last operation appeared in 2.14) is answered `412`.
///
/// ```
/// use osb_server::VersionPolicy;
/// use osb_types::ApiVersion;
/// let policy = VersionPolicy::new()
///     .minimum(ApiVersion::V2_14)
///     .missing_header_status(http::StatusCode::BAD_REQUEST)
///     .refuse_newer(true);
/// assert_eq!(policy.supported_range(), "2.14 to 2.17");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionPolicy {
    minimum: ApiVersion,
    missing_status: StatusCode,
    refuse_newer: bool,
    enforce_operation_since: bool,
}

impl Default for VersionPolicy {
    fn default() -> Self {
        VersionPolicy {
            minimum: ApiVersion::OLDEST,
            missing_status: StatusCode::PRECONDITION_FAILED,
            refuse_newer: false,
            enforce_operation_since: true,
        }
    }
}

/// The versions of one request: as declared, and as used for shaping the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Negotiated {
    pub(crate) declared: ApiVersion,
    pub(crate) effective: ApiVersion,
}

impl Default for Negotiated {
    fn default() -> Self {
        Negotiated {
            declared: ApiVersion::LATEST,
            effective: ApiVersion::LATEST,
        }
    }
}

impl VersionPolicy {
    /// The default policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// The oldest 2.x version accepted (default 2.13). Replies to versions older than 2.13 are
    /// shaped as for 2.13.
    #[must_use]
    pub fn minimum(mut self, minimum: ApiVersion) -> Self {
        self.minimum = minimum;
        self
    }

    /// The status for a missing or unparsable header: `412` (default) or `400`.
    #[must_use]
    pub fn missing_header_status(mut self, status: StatusCode) -> Self {
        self.missing_status = status;
        self
    }

    /// Whether a 2.x minor newer than osb-rs knows is refused with `412` (default: accepted and
    /// treated as the newest known version).
    #[must_use]
    pub fn refuse_newer(mut self, refuse: bool) -> Self {
        self.refuse_newer = refuse;
        self
    }

    /// Whether an endpoint newer than the declared version is refused with `412` (default
    /// `true`).
    #[must_use]
    pub fn enforce_operation_since(mut self, enforce: bool) -> Self {
        self.enforce_operation_since = enforce;
        self
    }

    /// The range of versions this policy supports, as written in descriptions (`2.13 to 2.17`).
    pub fn supported_range(&self) -> String {
        format!("{} to {}", self.minimum, ApiVersion::LATEST)
    }

    fn range_sentence(&self) -> String {
        if self.refuse_newer {
            format!(
                "This broker supports OSB API versions {}.",
                self.supported_range()
            )
        } else {
            format!(
                "This broker supports OSB API versions {} (newer 2.x versions are answered as {}).",
                self.supported_range(),
                ApiVersion::LATEST
            )
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if !matches!(self.missing_status.as_u16(), 400 | 412) {
            return Err(format!(
                "the status for a missing version header must be 400 or 412, not {}",
                self.missing_status.as_u16()
            ));
        }
        if self.minimum.major() != 2 || self.minimum > ApiVersion::LATEST {
            return Err(format!(
                "the minimum OSB version must be a 2.x version no newer than {}, not {}",
                ApiVersion::LATEST,
                self.minimum
            ));
        }
        Ok(())
    }

    /// Checks the header of a request.
    pub(crate) fn negotiate(&self, headers: &HeaderMap) -> Result<Negotiated, Rejection> {
        let Some(value) = headers.get(crate::extract::names::API_VERSION) else {
            return Err(Rejection::described(
                self.missing_status,
                format!(
                    "The X-Broker-API-Version header is missing. {} Send e.g. `X-Broker-API-Version: {}`.",
                    self.range_sentence(),
                    ApiVersion::LATEST
                ),
            ));
        };
        let text = value.to_str().unwrap_or("");
        let declared: ApiVersion = match text.parse() {
            Ok(v) => v,
            Err(_) => {
                return Err(Rejection::described(
                    self.missing_status,
                    format!(
                        "The X-Broker-API-Version header {:?} is not MAJOR.MINOR. {} Send e.g. `X-Broker-API-Version: {}`.",
                        String::from_utf8_lossy(value.as_bytes()),
                        self.range_sentence(),
                        ApiVersion::LATEST
                    ),
                ));
            }
        };
        let newer = declared.major() == 2 && declared > ApiVersion::LATEST;
        if declared.major() != 2 || declared < self.minimum || (newer && self.refuse_newer) {
            return Err(Rejection::described(
                StatusCode::PRECONDITION_FAILED,
                format!(
                    "OSB API version {declared} is not supported. {}",
                    self.range_sentence()
                ),
            ));
        }
        Ok(Negotiated {
            declared,
            effective: declared.clamp(ApiVersion::OLDEST, ApiVersion::LATEST),
        })
    }

    /// Checks that the operation exists in the declared version.
    pub(crate) fn check_operation(
        &self,
        operation: Operation,
        negotiated: Negotiated,
    ) -> Result<(), Rejection> {
        // `since` 2.13 means "2.13 or earlier", so compare the version clamped to 2.13..=latest.
        if self.enforce_operation_since && negotiated.effective < operation.since() {
            return Err(Rejection::described(
                StatusCode::PRECONDITION_FAILED,
                format!(
                    "{} {} appeared in OSB API version {}; the request declared {}. Send `X-Broker-API-Version: {}` or later.",
                    operation.method(),
                    operation.path(),
                    operation.since(),
                    negotiated.declared,
                    operation.since()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = v {
            h.insert(osb_types::header::API_VERSION, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn default_policy_matrix() {
        let p = VersionPolicy::default();
        let status = |v| {
            p.negotiate(&headers(v))
                .map(|n| n.effective)
                .map_err(|r| r.status.as_u16())
        };
        assert_eq!(status(None), Err(412));
        assert_eq!(status(Some("abc")), Err(412));
        assert_eq!(status(Some("1.13")), Err(412));
        assert_eq!(status(Some("3.0")), Err(412));
        assert_eq!(status(Some("2.12")), Err(412));
        assert_eq!(status(Some("2.13")), Ok(ApiVersion::V2_13));
        assert_eq!(status(Some("2.17")), Ok(ApiVersion::V2_17));
        assert_eq!(status(Some("2.99")), Ok(ApiVersion::V2_17));
        let strict = p
            .refuse_newer(true)
            .missing_header_status(StatusCode::BAD_REQUEST);
        assert_eq!(
            strict.negotiate(&headers(Some("2.18"))).unwrap_err().status,
            412
        );
        assert_eq!(strict.negotiate(&headers(None)).unwrap_err().status, 400);
    }

    #[test]
    fn versions_older_than_2_13_can_be_allowed() {
        let p = VersionPolicy::new().minimum(ApiVersion::new(2, 11));
        assert!(p.validate().is_ok());
        let n = p.negotiate(&headers(Some("2.12"))).unwrap();
        assert_eq!(
            (n.declared, n.effective),
            (ApiVersion::new(2, 12), ApiVersion::V2_13)
        );
        assert!(p.check_operation(Operation::Catalog, n).is_ok());
        assert!(p.check_operation(Operation::FetchInstance, n).is_err());
    }

    #[test]
    fn validation_rejects_odd_settings() {
        assert!(VersionPolicy::new().validate().is_ok());
        assert!(
            VersionPolicy::new()
                .missing_header_status(StatusCode::OK)
                .validate()
                .is_err()
        );
        assert!(
            VersionPolicy::new()
                .minimum(ApiVersion::new(3, 0))
                .validate()
                .is_err()
        );
        assert!(
            VersionPolicy::new()
                .minimum(ApiVersion::new(2, 18))
                .validate()
                .is_err()
        );
    }
}
