//! OSB API versions, the `since` tables and shaping values for an older peer.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An OSB API version as sent in the `X-Broker-API-Version` header (`MAJOR.MINOR`).
///
/// ```
/// use osb_types::ApiVersion;
/// let v: ApiVersion = "2.15".parse().unwrap();
/// assert!(v >= ApiVersion::V2_14 && v < ApiVersion::LATEST);
/// assert_eq!(v.to_string(), "2.15");
/// ```
///
/// The constants `V2_13` to `LATEST`, `OLDEST` and `KNOWN` are generated from the spec's
/// `info.version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    major: u16,
    minor: u16,
}

impl ApiVersion {
    /// Creates a version from its parts.
    pub const fn new(major: u16, minor: u16) -> Self {
        ApiVersion { major, minor }
    }

    /// The major version (2 for every OSB release so far).
    pub const fn major(self) -> u16 {
        self.major
    }

    /// The minor version.
    pub const fn minor(self) -> u16 {
        self.minor
    }

    /// Whether this is one of the versions in [`ApiVersion::KNOWN`].
    pub fn is_known(self) -> bool {
        Self::KNOWN.contains(&self)
    }

    /// Whether a peer on this version knows an item that appeared in `since`.
    pub fn supports(self, since: ApiVersion) -> bool {
        self >= since
    }
}

impl Default for ApiVersion {
    fn default() -> Self {
        ApiVersion::LATEST
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ApiVersion {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The versions platforms send, parsed without the general path (once per request).
        if let [b'2', b'.', b'1', digit @ b'3'..=b'7'] = *s.as_bytes() {
            return Ok(ApiVersion::new(2, u16::from(digit - b'0') + 10));
        }
        let err = || crate::Error::InvalidApiVersion {
            input: s.to_string(),
        };
        let (major, minor) = s.trim().split_once('.').ok_or_else(err)?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return Err(err());
        }
        Ok(ApiVersion::new(
            major.parse().map_err(|_| err())?,
            minor.parse().map_err(|_| err())?,
        ))
    }
}

impl Serialize for ApiVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One row of [`FIELD_SINCE`](crate::FIELD_SINCE): when a field of a model appeared.
///
/// Code that needs one field's version uses its generated constant instead, e.g.
/// [`Plan::BINDING_ROTATABLE_SINCE`](crate::Plan::BINDING_ROTATABLE_SINCE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSince {
    /// The model (schema) name, e.g. `"Plan"`.
    pub schema: &'static str,
    /// The field's JSON name, e.g. `"maintenance_info"`.
    pub field: &'static str,
    /// The OSB version the field first appeared in.
    pub since: ApiVersion,
}

/// Removes what a peer on an older OSB version does not know.
///
/// Implemented for every generated model: fields that appeared after `version` are cleared,
/// recursively. Extension fields in `extra` are kept, since a broker adds them on purpose.
///
/// A nested model that had something in it and is left with nothing once its newer fields are
/// cleared is removed too, rather than sent as `{}`: a platform that replaces what it stored
/// from each reply could read `{}` as "clear it". A nested model that was already `{}` before
/// shaping is kept as it is, so JSON a broker sends on purpose goes through unchanged.
///
/// ```
/// use osb_types::{ApiVersion, Plan, PlanId, ShapeForVersion};
/// let mut plan = Plan::new(PlanId::new("plan-1"), "small", "A small plan").with_binding_rotatable(true);
/// plan.shape_for_version(ApiVersion::V2_16);
/// assert_eq!(plan.binding_rotatable, None);
/// ```
///
/// ```
/// use osb_types::{ApiVersion, ServiceBindingMetadata, ServiceBindingResponse, ShapeForVersion};
/// // `renew_before` appeared in 2.17: a 2.16 platform gets no `metadata` at all, not `{}`.
/// let metadata = ServiceBindingMetadata::new().with_renew_before("2030-01-01T00:00:00Z");
/// let mut reply = ServiceBindingResponse::new().with_metadata(metadata);
/// reply.shape_for_version(ApiVersion::V2_16);
/// assert_eq!(reply.metadata, None);
/// ```
pub trait ShapeForVersion {
    /// Clears everything that appeared after `version`.
    fn shape_for_version(&mut self, version: ApiVersion);

    /// A field set here that a peer on `version` does not know and that shaping must not drop
    /// silently, because without it the request asks for something else (a maintenance upgrade,
    /// a binding rotation: `x-osb-refuse-older` in the spec). A client refuses such a request
    /// rather than shaping it.
    ///
    /// ```
    /// use osb_types::{ApiVersion, BindingId, ServiceBindingRequest, ShapeForVersion};
    /// let rotate = ServiceBindingRequest::new("svc", "plan")
    ///     .with_predecessor_binding_id(BindingId::new("old"));
    /// let refused = rotate.unshapeable_field(ApiVersion::V2_16).unwrap();
    /// assert_eq!(refused.field, "predecessor_binding_id");
    /// assert_eq!(refused.since, ServiceBindingRequest::PREDECESSOR_BINDING_ID_SINCE);
    /// assert_eq!(rotate.unshapeable_field(ApiVersion::V2_17), None);
    /// ```
    fn unshapeable_field(&self, version: ApiVersion) -> Option<FieldSince> {
        let _ = version;
        None
    }
}

impl<T: ShapeForVersion> ShapeForVersion for Option<T> {
    fn shape_for_version(&mut self, version: ApiVersion) {
        if let Some(inner) = self {
            inner.shape_for_version(version);
        }
    }

    fn unshapeable_field(&self, version: ApiVersion) -> Option<FieldSince> {
        self.as_ref()?.unshapeable_field(version)
    }
}

impl<T: ShapeForVersion> ShapeForVersion for Vec<T> {
    fn shape_for_version(&mut self, version: ApiVersion) {
        for item in self {
            item.shape_for_version(version);
        }
    }

    fn unshapeable_field(&self, version: ApiVersion) -> Option<FieldSince> {
        self.iter().find_map(|item| item.unshapeable_field(version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_versions() {
        assert_eq!("2.13".parse::<ApiVersion>().unwrap(), ApiVersion::V2_13);
        assert_eq!(" 2.17 ".parse::<ApiVersion>().unwrap(), ApiVersion::V2_17);
        assert_eq!("3.0".parse::<ApiVersion>().unwrap(), ApiVersion::new(3, 0));
        assert!(ApiVersion::V2_13 < ApiVersion::V2_17);
        assert!(ApiVersion::new(2, 9) < ApiVersion::V2_13);
        let max = ApiVersion::new(u16::MAX, u16::MAX);
        assert_eq!(max.to_string().parse::<ApiVersion>().unwrap(), max);
        for bad in [
            "", "2", "2.", ".1", "2.x", "two.one", "2.1.1", "-2.1", "99999.1",
        ] {
            assert!(bad.parse::<ApiVersion>().is_err(), "{bad:?} must not parse");
        }
    }

    #[test]
    fn serde_uses_the_header_form() {
        assert_eq!(
            serde_json::to_string(&ApiVersion::V2_15).unwrap(),
            "\"2.15\""
        );
        let v: ApiVersion = serde_json::from_str("\"2.14\"").unwrap();
        assert_eq!(v, ApiVersion::V2_14);
    }
}
