//! `X-Broker-API-Originating-Identity`: `<platform> <base64(JSON object)>`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, PLATFORM_CLOUDFOUNDRY, PLATFORM_KUBERNETES};

/// The user on whose behalf the platform sends a request.
///
/// ```
/// use osb_types::OriginatingIdentity;
/// let header = "cloudfoundry eyANCiAgInVzZXJfaWQiOiAiNjgzZWE3NDgtMzA5Mi00ZmY0LWI2NTYtMzljYWNjNGQ1MzYwIg0KfQ==";
/// let id = OriginatingIdentity::parse(header).unwrap();
/// let OriginatingIdentity::CloudFoundry(cf) = &id else { panic!() };
/// assert_eq!(cf.user_id, "683ea748-3092-4ff4-b656-39cacc4d5360");
/// // Encoding and parsing again gives the same identity.
/// assert_eq!(OriginatingIdentity::parse(&id.to_header_value()).unwrap(), id);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum OriginatingIdentity {
    /// A Cloud Foundry user (`cloudfoundry`).
    CloudFoundry(CloudFoundryIdentity),
    /// A Kubernetes user (`kubernetes`).
    Kubernetes(KubernetesIdentity),
    /// Any other platform, with its decoded JSON object.
    Other {
        /// The platform name before the space.
        platform: String,
        /// The decoded JSON object.
        value: Map<String, Value>,
    },
}

/// A Cloud Foundry originating identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CloudFoundryIdentity {
    /// The user's id, from the Cloud Foundry token.
    pub user_id: String,
    /// Any other keys of the object, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CloudFoundryIdentity {
    /// An identity for a user id.
    pub fn new(user_id: impl Into<String>) -> Self {
        CloudFoundryIdentity {
            user_id: user_id.into(),
            extra: Map::new(),
        }
    }
}

/// A Kubernetes originating identity (the `user.info` of the request).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KubernetesIdentity {
    /// The user name.
    pub username: String,
    /// The user's uid.
    #[serde(default)]
    pub uid: String,
    /// The user's groups.
    #[serde(default, deserialize_with = "null_as_default")]
    pub groups: Vec<String>,
    /// The user's extra attributes (`extra` in Kubernetes' user info).
    #[serde(default, deserialize_with = "null_as_default")]
    pub extra: Map<String, Value>,
    /// Any other keys of the object, kept as received.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

impl KubernetesIdentity {
    /// An identity for a user name and uid.
    pub fn new(username: impl Into<String>, uid: impl Into<String>) -> Self {
        KubernetesIdentity {
            username: username.into(),
            uid: uid.into(),
            ..Default::default()
        }
    }
}

/// Reads `null` as the empty value (Go encoders write `null` for nil slices and maps).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidOriginatingIdentity {
        reason: reason.into(),
    }
}

impl OriginatingIdentity {
    /// Parses a header value: a platform name, one space, and the standard Base64 encoding of a
    /// JSON object.
    pub fn parse(header: &str) -> Result<Self, Error> {
        let header = header.trim();
        let (platform, encoded) = header.split_once(' ').ok_or_else(|| {
            invalid("expected `<platform> <base64 JSON>` separated by one space; found no space")
        })?;
        if platform.is_empty() {
            return Err(invalid("the platform name before the space is empty"));
        }
        let encoded = encoded.trim();
        let bytes = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded))
            .map_err(|e| {
                invalid(format!(
                    "the value after `{platform} ` is not standard Base64: {e}"
                ))
            })?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("the decoded value is not JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(invalid("the decoded value must be a JSON object"));
        };
        Self::from_parts(platform, map)
    }

    /// Builds an identity from a platform name and its decoded object.
    pub fn from_parts(platform: &str, map: Map<String, Value>) -> Result<Self, Error> {
        match platform {
            PLATFORM_CLOUDFOUNDRY => serde_json::from_value(Value::Object(map))
                .map(OriginatingIdentity::CloudFoundry)
                .map_err(|e| invalid(format!("cloudfoundry identity: {e}"))),
            PLATFORM_KUBERNETES => serde_json::from_value(Value::Object(map))
                .map(OriginatingIdentity::Kubernetes)
                .map_err(|e| invalid(format!("kubernetes identity: {e}"))),
            other => Ok(OriginatingIdentity::Other {
                platform: other.to_string(),
                value: map,
            }),
        }
    }

    /// The platform name.
    pub fn platform(&self) -> &str {
        match self {
            OriginatingIdentity::CloudFoundry(_) => PLATFORM_CLOUDFOUNDRY,
            OriginatingIdentity::Kubernetes(_) => PLATFORM_KUBERNETES,
            OriginatingIdentity::Other { platform, .. } => platform,
        }
    }

    /// The identity's JSON object.
    pub fn value(&self) -> Map<String, Value> {
        let value = match self {
            OriginatingIdentity::CloudFoundry(cf) => serde_json::to_value(cf),
            OriginatingIdentity::Kubernetes(k8s) => serde_json::to_value(k8s),
            OriginatingIdentity::Other { value, .. } => return value.clone(),
        };
        match value {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    /// Encodes the identity as a header value.
    pub fn to_header_value(&self) -> String {
        let json = Value::Object(self.value()).to_string();
        format!("{} {}", self.platform(), STANDARD.encode(json))
    }
}

impl fmt::Display for OriginatingIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header_value())
    }
}

impl std::str::FromStr for OriginatingIdentity {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OriginatingIdentity::parse(s)
    }
}

impl From<CloudFoundryIdentity> for OriginatingIdentity {
    fn from(id: CloudFoundryIdentity) -> Self {
        OriginatingIdentity::CloudFoundry(id)
    }
}

impl From<KubernetesIdentity> for OriginatingIdentity {
    fn from(id: KubernetesIdentity) -> Self {
        OriginatingIdentity::Kubernetes(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K8S: &str = "kubernetes ew0KICAidXNlcm5hbWUiOiAiZHVrZSIsDQogICJ1aWQiOiAiYzJkZGUyNDItNWNlNC0xMWU3LTk4OGMtMDAwYzI5NDZmMTRmIiwNCiAgImdyb3VwcyI6IFsgImFkbWluIiwgImRldiIgXSwNCiAgImV4dHJhIjogew0KICAgICJteWRhdGEiOiBbICJkYXRhMSIsICJkYXRhMyIgXQ0KICB9DQp9";

    #[test]
    fn kubernetes_vector_decodes() {
        let OriginatingIdentity::Kubernetes(k) = OriginatingIdentity::parse(K8S).unwrap() else {
            panic!("expected kubernetes")
        };
        assert_eq!(k.username, "duke");
        assert_eq!(k.uid, "c2dde242-5ce4-11e7-988c-000c2946f14f");
        assert_eq!(k.groups, ["admin", "dev"]);
        assert_eq!(k.extra["mydata"], serde_json::json!(["data1", "data3"]));
    }

    #[test]
    fn malformed_headers_get_clear_errors() {
        let cases = [
            ("cloudfoundry", "no space"),
            (" eyJ9", "no space"),
            ("cloudfoundry !!!", "Base64"),
            ("cloudfoundry bm90IGpzb24=", "not JSON"),
            ("cloudfoundry WzEsMl0=", "JSON object"),
            ("cloudfoundry e30=", "user_id"),
        ];
        for (header, needle) in cases {
            let err = OriginatingIdentity::parse(header).unwrap_err().to_string();
            assert!(err.contains(needle), "{header:?}: {err}");
        }
    }

    #[test]
    fn kubernetes_null_collections_read_as_empty() {
        let map = serde_json::json!({"username": "u", "uid": "1", "groups": null, "extra": null});
        let Value::Object(map) = map else {
            unreachable!()
        };
        let OriginatingIdentity::Kubernetes(k) =
            OriginatingIdentity::from_parts("kubernetes", map).unwrap()
        else {
            panic!("expected kubernetes")
        };
        assert!(k.groups.is_empty() && k.extra.is_empty());
    }

    #[test]
    fn other_platforms_keep_their_object() {
        let id = OriginatingIdentity::parse("mesos eyJhIjoxfQ==").unwrap();
        assert_eq!(id.platform(), "mesos");
        assert_eq!(id.value()["a"], 1);
    }
}
