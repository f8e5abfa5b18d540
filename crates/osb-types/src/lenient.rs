//! Lenient decoding of broker replies: a field the platform does not need in order to act is set
//! aside when it does not match its model, instead of failing the whole reply.
//!
//! A reply is parsed as JSON and decoded into its model. When that fails, the JSON path of the
//! offending value says which field is at fault. If it is a top-level field the reply needs (the
//! model's `NEEDED` list, e.g. `credentials` of a bind or `state` of a last operation), decoding
//! fails as before. Otherwise the deepest object key on that path is removed and decoding is
//! tried again; a removed key whose object then lacks a required field leads to that object's
//! own key being removed next, so as little as possible is set aside. Each removed value is put
//! back, raw and under its original key, into the `extra` map of the object that held it, and a
//! [`DecodeWarning`] names it.

use std::fmt::{self, Write as _};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use serde_path_to_error::Segment;

use crate::{
    AsyncOperation, LastOperationResource, MaintenanceInfo, ServiceBindingEndpoint,
    ServiceBindingMetadata, ServiceBindingResource, ServiceBindingResponse,
    ServiceBindingVolumeMount, ServiceBindingVolumeMountDevice, ServiceInstanceAsyncOperation,
    ServiceInstanceMetadata, ServiceInstanceProvisionResponse, ServiceInstanceResource,
    ServiceInstanceUpdateResponse,
};

/// How many fields one reply may have set aside before it counts as undecodable.
pub const MAX_SET_ASIDE: usize = 32;

/// A field of a reply that did not match its model and was set aside.
///
/// The raw value is kept in the `extra` map of the object that held it, under its original key
/// (so re-encoding the model writes it back); the typed field is left absent, or empty where the
/// model gives it a default (an endpoint's `ports`).
///
/// ```
/// use osb_types::BindOutcome;
/// let body = br#"{"credentials": {"uri": "db://x"},
///                 "endpoints": [{"host": "db.internal", "ports": [5432]}]}"#;
/// let (outcome, warnings) = BindOutcome::decode_with_warnings(201, body, None).unwrap();
/// assert_eq!(warnings.len(), 1);
/// assert_eq!(warnings[0].path, "endpoints[0].ports");
/// let BindOutcome::Created(binding) = outcome else { panic!() };
/// let endpoint = &binding.endpoints.as_ref().unwrap()[0];
/// assert_eq!(endpoint.host, "db.internal");
/// assert_eq!(endpoint.extra["ports"], serde_json::json!([5432]));
/// assert_eq!(binding.credentials.unwrap()["uri"], "db://x");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeWarning {
    /// The JSON path of the field set aside, e.g. `endpoints[0].ports`.
    pub path: String,
    /// What did not match, with the path of the offending value when it lies deeper
    /// (``at `endpoints[0].ports[0]`: invalid type: integer `5432`, expected a string``). Quoted
    /// string values are replaced with `"<redacted>"`, so the reason is safe to log.
    pub reason: String,
}

impl DecodeWarning {
    pub(crate) fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        DecodeWarning {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for DecodeWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` set aside: {}", self.path, self.reason)
    }
}

/// One step of a JSON path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

fn display(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Step::Index(index) => {
                let _ = write!(out, "[{index}]");
            }
        }
    }
    out
}

/// A reply model that can be decoded leniently.
pub(crate) trait Lenient: DeserializeOwned {
    /// The top-level fields the platform needs to act on the reply: a mismatch there fails the
    /// decoding.
    const NEEDED: &'static [&'static str];

    /// The `extra` map of the object at `path` (object keys and array indices from the root).
    fn extra_at(&mut self, path: &[Step]) -> Option<&mut Map<String, Value>>;
}

/// Models nested in replies, with their typed children: `one` (always present), `opt`
/// (`Option`), `opt_vec` (`Option<Vec<_>>`).
macro_rules! lenient {
    ($ty:ty, needed: [$($needed:literal),*], { $($field:ident: $kind:ident),* $(,)? }) => {
        impl Lenient for $ty {
            const NEEDED: &'static [&'static str] = &[$($needed),*];

            fn extra_at(&mut self, path: &[Step]) -> Option<&mut Map<String, Value>> {
                let Some((first, _rest)) = path.split_first() else {
                    return Some(&mut self.extra);
                };
                match first {
                    $(Step::Key(key) if key == stringify!($field) => {
                        lenient!(@$kind self.$field, _rest)
                    })*
                    _ => None,
                }
            }
        }
    };
    (@one $field:expr, $rest:ident) => {
        $field.extra_at($rest)
    };
    (@opt $field:expr, $rest:ident) => {
        $field.as_mut()?.extra_at($rest)
    };
    (@opt_vec $field:expr, $rest:ident) => {
        match $rest.split_first()? {
            (Step::Index(index), rest) => $field.as_mut()?.get_mut(*index)?.extra_at(rest),
            _ => None,
        }
    };
}

lenient!(ServiceInstanceProvisionResponse, needed: [], { metadata: opt });
lenient!(ServiceInstanceUpdateResponse, needed: [], { metadata: opt });
lenient!(ServiceInstanceAsyncOperation, needed: ["operation"], { metadata: opt });
lenient!(ServiceInstanceMetadata, needed: [], {});
lenient!(ServiceInstanceResource, needed: [], { maintenance_info: opt, metadata: opt });
lenient!(MaintenanceInfo, needed: [], {});
lenient!(AsyncOperation, needed: ["operation"], {});
lenient!(LastOperationResource, needed: ["state"], {});
lenient!(ServiceBindingResponse, needed: ["credentials"], {
    metadata: opt,
    volume_mounts: opt_vec,
    endpoints: opt_vec,
});
lenient!(ServiceBindingResource, needed: ["credentials"], {
    metadata: opt,
    volume_mounts: opt_vec,
    endpoints: opt_vec,
});
lenient!(ServiceBindingMetadata, needed: [], {});
lenient!(ServiceBindingEndpoint, needed: [], {});
lenient!(ServiceBindingVolumeMount, needed: [], { device: one });
lenient!(ServiceBindingVolumeMountDevice, needed: [], {});

/// A removed value: the path of the object that held it, its key, and the value as received.
struct SetAside {
    parent: Vec<Step>,
    key: String,
    raw: Value,
}

/// A warning with the path of the field set aside and the reason with its path.
struct Noted {
    field: Vec<Step>,
    located: String,
    warning: DecodeWarning,
}

/// Decodes `body` into `T`, setting aside fields `T` does not need (see the module docs).
///
/// The error is the reason, with the JSON path of the offending value.
pub(crate) fn decode_lenient<T: Lenient>(body: &[u8]) -> Result<(T, Vec<DecodeWarning>), String> {
    let first = match serde_json::from_slice::<T>(body) {
        Ok(typed) => return Ok((typed, Vec::new())),
        Err(e) => e,
    };
    // The strict reason, with the path and the position in the body.
    let strict = || {
        crate::decode_json::<T>(body)
            .err()
            .unwrap_or_else(|| first.to_string())
    };
    let Ok(original @ Value::Object(_)) = serde_json::from_slice::<Value>(body) else {
        return Err(strict());
    };
    let mut patched = original.clone();
    let mut set_aside: Vec<SetAside> = Vec::new();
    let mut warnings: Vec<Noted> = Vec::new();
    for _ in 0..=MAX_SET_ASIDE {
        let error = match serde_path_to_error::deserialize::<_, T>(&patched) {
            // What failed the strict decoding is something the lenient one does not address
            // (such as a duplicate key): it stays an error.
            Ok(_) if set_aside.is_empty() => return Err(strict()),
            Ok(mut typed) => {
                for SetAside { parent, key, raw } in set_aside {
                    if let Some(extra) = typed.extra_at(&parent) {
                        extra.insert(key, raw);
                    }
                }
                return Ok((typed, warnings.into_iter().map(|n| n.warning).collect()));
            }
            Err(error) => error,
        };
        let steps: Option<Vec<Step>> = error
            .path()
            .iter()
            .map(|segment| match segment {
                Segment::Map { key } => Some(Step::Key(key.clone())),
                Segment::Seq { index } => Some(Step::Index(*index)),
                _ => None,
            })
            .collect();
        let inner = error.inner().to_string();
        let fail = |steps: Option<&[Step]>| match steps {
            _ if set_aside.is_empty() => strict(),
            Some(steps) if !steps.is_empty() => format!("at `{}`: {inner}", display(steps)),
            _ => inner.clone(),
        };
        let Some(steps) = steps else {
            return Err(fail(None));
        };
        let Some(k) = steps.iter().rposition(|s| matches!(s, Step::Key(_))) else {
            return Err(fail(Some(&steps)));
        };
        let (parent, Step::Key(key)) = (&steps[..k], &steps[k]) else {
            return Err(fail(Some(&steps)));
        };
        if parent.is_empty() && T::NEEDED.contains(&key.as_str()) {
            return Err(fail(Some(&steps)));
        }
        let removed = object_at_mut(&mut patched, parent).and_then(|o| o.remove(key));
        let raw = object_at(&original, parent).and_then(|o| o.get(key));
        let (Some(_), Some(raw)) = (removed, raw) else {
            return Err(fail(Some(&steps)));
        };
        let field = &steps[..=k];
        // A field set aside earlier inside this one goes with it; its reason says what was
        // wrong in the first place.
        let located = format!("at `{}`: {}", display(&steps), redact_quoted(&inner));
        let earlier = warnings
            .iter()
            .find(|w| w.field.starts_with(field))
            .map(|w| w.located.clone());
        warnings.retain(|w| !w.field.starts_with(field));
        set_aside.retain(|s| !s.parent.starts_with(field));
        let reason = match &earlier {
            Some(earlier) => earlier.clone(),
            None if steps.len() > field.len() => located.clone(),
            None => redact_quoted(&inner),
        };
        warnings.push(Noted {
            field: field.to_vec(),
            located: earlier.unwrap_or(located),
            warning: DecodeWarning {
                path: display(field),
                reason,
            },
        });
        set_aside.push(SetAside {
            parent: parent.to_vec(),
            key: key.clone(),
            raw: raw.clone(),
        });
    }
    Err(format!(
        "more than {MAX_SET_ASIDE} fields do not match the model"
    ))
}

fn object_at<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Map<String, Value>> {
    let mut here = value;
    for step in path {
        here = match step {
            Step::Key(key) => here.as_object()?.get(key)?,
            Step::Index(index) => here.as_array()?.get(*index)?,
        };
    }
    here.as_object()
}

fn object_at_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Map<String, Value>> {
    let mut here = value;
    for step in path {
        here = match step {
            Step::Key(key) => here.as_object_mut()?.get_mut(key)?,
            Step::Index(index) => here.as_array_mut()?.get_mut(*index)?,
        };
    }
    here.as_object_mut()
}

/// serde quotes offending string values in its messages (`invalid type: string "…"`); such a
/// value may be a secret, so it is replaced with `"<redacted>"`.
fn redact_quoted(reason: &str) -> String {
    match (reason.find('"'), reason.rfind('"')) {
        (Some(first), Some(last)) if first < last => {
            format!("{}\"<redacted>\"{}", &reason[..first], &reason[last + 1..])
        }
        _ => reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lenient<T: Lenient>(body: Value) -> Result<(T, Vec<DecodeWarning>), String> {
        decode_lenient(body.to_string().as_bytes())
    }

    /// The paths of the warnings, sorted (the order follows the JSON object's).
    fn paths(warnings: &[DecodeWarning]) -> Vec<&str> {
        let mut paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
        paths.sort_unstable();
        paths
    }

    fn reason<'a>(warnings: &'a [DecodeWarning], path: &str) -> &'a str {
        let found = warnings.iter().find(|w| w.path == path);
        found.map_or("", |w| w.reason.as_str())
    }

    #[test]
    fn a_mistyped_port_keeps_the_endpoint_and_the_credentials() {
        let body = json!({
            "credentials": {"password": "p"},
            "endpoints": [{"host": "a", "ports": ["1"]}, {"host": "b", "ports": [443, "444"], "protocol": "tcp"}],
        });
        let (binding, warnings) = lenient::<ServiceBindingResponse>(body).unwrap();
        assert_eq!(paths(&warnings), ["endpoints[1].ports"]);
        assert_eq!(
            warnings[0].reason,
            "at `endpoints[1].ports[0]`: invalid type: integer `443`, expected a string"
        );
        let endpoints = binding.endpoints.unwrap();
        assert_eq!(endpoints[0].ports, ["1"]);
        assert_eq!(endpoints[1].host, "b");
        assert!(endpoints[1].ports.is_empty());
        assert_eq!(endpoints[1].extra["ports"], json!([443, "444"]));
        assert_eq!(binding.credentials.unwrap()["password"], "p");
    }

    #[test]
    fn a_missing_required_field_sets_aside_the_enclosing_field() {
        // `volume_id` mistyped, then `device` lacks it, then the mount lacks `device`: the
        // mounts are set aside whole, under the first reason.
        let mount = json!({"driver": "d", "container_dir": "/c", "mode": "r",
                           "device_type": "shared", "device": {"volume_id": 7}});
        let body = json!({"credentials": {}, "volume_mounts": [mount], "syslog_drain_url": 3});
        let (binding, warnings) = lenient::<ServiceBindingResponse>(body).unwrap();
        assert_eq!(paths(&warnings), ["syslog_drain_url", "volume_mounts"]);
        assert_eq!(
            reason(&warnings, "volume_mounts"),
            "at `volume_mounts[0].device.volume_id`: invalid type: integer `7`, expected a string"
        );
        assert_eq!(binding.volume_mounts, None);
        assert_eq!(binding.syslog_drain_url, None);
        assert_eq!(binding.extra["volume_mounts"], json!([mount]));
        assert_eq!(binding.extra["syslog_drain_url"], json!(3));
    }

    #[test]
    fn nested_objects_keep_what_was_set_aside() {
        let body = json!({"state": "succeeded", "instance_usable": "false",
                          "update_repeatable": 1, "description": ["x"]});
        let (op, warnings) = lenient::<LastOperationResource>(body).unwrap();
        assert_eq!(
            paths(&warnings),
            ["description", "instance_usable", "update_repeatable"]
        );
        assert_eq!(
            reason(&warnings, "instance_usable"),
            "invalid type: string \"<redacted>\", expected a boolean"
        );
        assert_eq!(op.instance_usable, None);
        assert_eq!(op.extra["instance_usable"], "false");

        let body = json!({"metadata": {"labels": 5, "attributes": {"a": 1}}, "maintenance_info": {"version": "1", "description": 2}});
        let (instance, warnings) = lenient::<ServiceInstanceResource>(body).unwrap();
        assert_eq!(
            paths(&warnings),
            ["maintenance_info.description", "metadata.labels"]
        );
        let metadata = instance.metadata.unwrap();
        assert_eq!(metadata.extra["labels"], 5);
        assert_eq!(metadata.attributes.unwrap()["a"], 1);
        assert_eq!(instance.maintenance_info.unwrap().extra["description"], 2);
    }

    #[test]
    fn needed_fields_and_bodies_that_are_not_objects_still_fail() {
        for body in [
            json!({"credentials": "secret"}),
            json!({"credentials": [1], "syslog_drain_url": 2}),
            json!([]),
            json!("x"),
            json!(null),
        ] {
            assert!(
                lenient::<ServiceBindingResponse>(body.clone()).is_err(),
                "{body}"
            );
        }
        assert!(lenient::<LastOperationResource>(json!({"instance_usable": "x"})).is_err());
        assert!(lenient::<LastOperationResource>(json!({"state": 1})).is_err());
        assert!(lenient::<AsyncOperation>(json!({"operation": 5})).is_err());
        assert!(lenient::<ServiceInstanceAsyncOperation>(json!({"operation": {}})).is_err());
        assert!(decode_lenient::<AsyncOperation>(b"not json").is_err());
        // Duplicate keys stay an error, with the position in the body.
        let reason = decode_lenient::<AsyncOperation>(br#"{"operation": "a", "operation": "b"}"#)
            .unwrap_err();
        assert!(reason.contains("duplicate field `operation`"), "{reason}");
    }

    #[test]
    fn a_reason_after_set_aside_fields_names_the_needed_field() {
        let reason =
            lenient::<ServiceBindingResponse>(json!({"route_service_url": 1, "credentials": 2}))
                .unwrap_err();
        assert_eq!(
            reason,
            "at `credentials`: invalid type: integer `2`, expected a map"
        );
    }

    #[test]
    fn too_many_mismatches_are_an_error() {
        let extra: Map<String, Value> = (0..=MAX_SET_ASIDE)
            .map(|i| (format!("e{i}"), json!({"host": "h", "ports": [i]})))
            .collect();
        let endpoints: Vec<Value> = extra.values().cloned().collect();
        let body = json!({ "endpoints": endpoints });
        let reason = lenient::<ServiceBindingResponse>(body).unwrap_err();
        assert!(reason.starts_with("more than 32"), "{reason}");
        let body = json!({ "endpoints": &endpoints[..MAX_SET_ASIDE] });
        let (_, warnings) = lenient::<ServiceBindingResponse>(body).unwrap();
        assert_eq!(warnings.len(), MAX_SET_ASIDE);
    }
}
