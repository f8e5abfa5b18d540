//! The platform `context` object (OSB profile), typed for Cloud Foundry and Kubernetes.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The platform string Cloud Foundry sends.
pub const PLATFORM_CLOUDFOUNDRY: &str = "cloudfoundry";
/// The platform string Kubernetes sends.
pub const PLATFORM_KUBERNETES: &str = "kubernetes";

/// Contextual data about where a request comes from, sent by the platform in `context`.
///
/// The variant follows the object's `platform` field. Fields the profile does not define are
/// kept in `extra` and written back unchanged.
///
/// ```
/// use osb_types::Context;
/// let ctx: Context = serde_json::from_value(serde_json::json!({
///     "platform": "kubernetes", "namespace": "dev", "clusterid": "c-1", "x-team": "blue"
/// })).unwrap();
/// let Context::Kubernetes(k8s) = &ctx else { panic!() };
/// assert_eq!(k8s.namespace.as_deref(), Some("dev"));
/// assert_eq!(k8s.extra["x-team"], "blue");
/// assert_eq!(ctx.platform(), Some("kubernetes"));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Context {
    /// `platform: "cloudfoundry"`.
    CloudFoundry(CloudFoundryContext),
    /// `platform: "kubernetes"`.
    Kubernetes(KubernetesContext),
    /// Any other platform (or none), kept as the raw object.
    Other(Map<String, Value>),
}

/// The Cloud Foundry context (OSB profile).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CloudFoundryContext {
    /// The GUID of the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_guid: Option<String>,
    /// The name of the organization (2.15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    /// The GUID of the space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_guid: Option<String>,
    /// The name of the space (2.15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_name: Option<String>,
    /// The name of the service instance (2.15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    /// Annotations of the organization (2.16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_annotations: Option<Map<String, Value>>,
    /// Annotations of the space (2.16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_annotations: Option<Map<String, Value>>,
    /// Annotations of the service instance (2.16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_annotations: Option<Map<String, Value>>,
    /// Fields the profile does not define, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The Kubernetes context (OSB profile).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KubernetesContext {
    /// The namespace of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The id of the cluster (2.14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusterid: Option<String>,
    /// The name of the service instance (2.16 profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    /// Annotations of the namespace (2.16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_annotations: Option<Map<String, Value>>,
    /// Annotations of the service instance (2.16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_annotations: Option<Map<String, Value>>,
    /// Fields the profile does not define, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CloudFoundryContext {
    /// A Cloud Foundry context for an organization and space.
    pub fn new(organization_guid: impl Into<String>, space_guid: impl Into<String>) -> Self {
        CloudFoundryContext {
            organization_guid: Some(organization_guid.into()),
            space_guid: Some(space_guid.into()),
            ..Default::default()
        }
    }
}

impl KubernetesContext {
    /// The id of the cluster, however the platform spelled it: the profile's `clusterid`, or
    /// `cluster_id` as some Kubernetes platforms send it (kept in `extra`). `None` when neither
    /// is a string.
    ///
    /// ```
    /// use osb_types::Context;
    /// let spelled = |json| -> Option<String> {
    ///     let ctx: Context = serde_json::from_value(json).unwrap();
    ///     ctx.cluster_id().map(str::to_string)
    /// };
    /// use serde_json::json;
    /// assert_eq!(spelled(json!({"platform": "kubernetes", "clusterid": "c-1"})).as_deref(), Some("c-1"));
    /// assert_eq!(spelled(json!({"platform": "kubernetes", "cluster_id": "c-2"})).as_deref(), Some("c-2"));
    /// assert_eq!(spelled(json!({"platform": "kubernetes", "namespace": "dev"})), None);
    /// ```
    pub fn cluster_id(&self) -> Option<&str> {
        self.clusterid
            .as_deref()
            .or_else(|| self.extra.get("cluster_id").and_then(Value::as_str))
    }

    /// A Kubernetes context for a namespace in a cluster.
    pub fn new(namespace: impl Into<String>, clusterid: impl Into<String>) -> Self {
        KubernetesContext {
            namespace: Some(namespace.into()),
            clusterid: Some(clusterid.into()),
            ..Default::default()
        }
    }
}

impl Context {
    /// The Kubernetes cluster id, in either spelling ([`KubernetesContext::cluster_id`]);
    /// `None` for other platforms.
    pub fn cluster_id(&self) -> Option<&str> {
        match self {
            Context::Kubernetes(k8s) => k8s.cluster_id(),
            _ => None,
        }
    }

    /// The `platform` value, if the object has one.
    pub fn platform(&self) -> Option<&str> {
        match self {
            Context::CloudFoundry(_) => Some(PLATFORM_CLOUDFOUNDRY),
            Context::Kubernetes(_) => Some(PLATFORM_KUBERNETES),
            Context::Other(map) => map.get("platform").and_then(Value::as_str),
        }
    }

    /// The context as a JSON object.
    pub fn to_object(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
}

impl From<CloudFoundryContext> for Context {
    fn from(c: CloudFoundryContext) -> Self {
        Context::CloudFoundry(c)
    }
}

impl From<KubernetesContext> for Context {
    fn from(c: KubernetesContext) -> Self {
        Context::Kubernetes(c)
    }
}

impl From<Map<String, Value>> for Context {
    fn from(map: Map<String, Value>) -> Self {
        match map.get("platform").and_then(Value::as_str) {
            Some(PLATFORM_CLOUDFOUNDRY) | Some(PLATFORM_KUBERNETES) => {
                // Typed parsing can fail only on wrongly typed known fields; keep those raw.
                Context::from_object(map.clone()).unwrap_or(Context::Other(map))
            }
            _ => Context::Other(map),
        }
    }
}

impl Context {
    fn from_object(mut map: Map<String, Value>) -> Result<Context, serde_json::Error> {
        match map.get("platform").and_then(Value::as_str) {
            Some(PLATFORM_CLOUDFOUNDRY) => {
                map.shift_remove("platform");
                serde_json::from_value(Value::Object(map)).map(Context::CloudFoundry)
            }
            Some(PLATFORM_KUBERNETES) => {
                map.shift_remove("platform");
                serde_json::from_value(Value::Object(map)).map(Context::Kubernetes)
            }
            _ => Ok(Context::Other(map)),
        }
    }
}

fn with_platform<T: Serialize>(
    platform: &str,
    body: &T,
) -> Result<Map<String, Value>, serde_json::Error> {
    let mut out = Map::new();
    out.insert("platform".into(), Value::String(platform.into()));
    if let Value::Object(fields) = serde_json::to_value(body)? {
        // The variant decides the platform; a stray `platform` key in `extra` must not override it.
        out.extend(fields.into_iter().filter(|(k, _)| k != "platform"));
    }
    Ok(out)
}

impl Serialize for Context {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        match self {
            Context::CloudFoundry(c) => with_platform(PLATFORM_CLOUDFOUNDRY, c)
                .map_err(S::Error::custom)?
                .serialize(serializer),
            Context::Kubernetes(k) => with_platform(PLATFORM_KUBERNETES, k)
                .map_err(S::Error::custom)?
                .serialize(serializer),
            Context::Other(map) => map.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Context {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        Context::from_object(map).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cloud_foundry_round_trips_with_extra_fields() {
        let input = json!({
            "platform": "cloudfoundry",
            "organization_guid": "org", "space_guid": "space",
            "organization_name": "o", "space_name": "s", "instance_name": "i",
            "instance_annotations": {"a": "b"},
            "x-custom": [1, 2]
        });
        let ctx: Context = serde_json::from_value(input.clone()).unwrap();
        let Context::CloudFoundry(cf) = &ctx else {
            panic!("expected CF: {ctx:?}")
        };
        assert_eq!(cf.space_name.as_deref(), Some("s"));
        assert_eq!(cf.extra["x-custom"], json!([1, 2]));
        assert_eq!(serde_json::to_value(&ctx).unwrap(), input);
    }

    #[test]
    fn extra_platform_key_does_not_change_the_variant() {
        let mut cf = CloudFoundryContext::new("o", "s");
        cf.extra.insert("platform".into(), json!("kubernetes"));
        let json = serde_json::to_value(Context::CloudFoundry(cf)).unwrap();
        assert_eq!(json["platform"], "cloudfoundry");
    }

    #[test]
    fn unknown_platform_and_missing_platform_stay_raw() {
        for input in [json!({"platform": "mesos", "a": 1}), json!({"a": 1})] {
            let ctx: Context = serde_json::from_value(input.clone()).unwrap();
            assert!(matches!(ctx, Context::Other(_)));
            assert_eq!(serde_json::to_value(&ctx).unwrap(), input);
        }
    }

    #[test]
    fn wrongly_typed_known_field_is_an_error() {
        let input = json!({"platform": "kubernetes", "namespace": 5});
        assert!(serde_json::from_value::<Context>(input).is_err());
        assert!(serde_json::from_value::<Context>(json!([1])).is_err());
    }
}
