//! What a store keeps: resources (instances and bindings) and the operations on them.

use osb_server::types::{BindingId, InstanceId, OperationId};
use serde_json::{Map, Value};

/// Milliseconds since the Unix epoch: how records tell time.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Which resource: an instance, or a binding of one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The instance.
    pub instance_id: InstanceId,
    /// The binding, for a binding.
    pub binding_id: Option<BindingId>,
}

impl Key {
    /// The key of an instance.
    pub fn instance(instance_id: InstanceId) -> Self {
        Key {
            instance_id,
            binding_id: None,
        }
    }

    /// The key of a binding.
    pub fn binding(instance_id: InstanceId, binding_id: BindingId) -> Self {
        Key {
            instance_id,
            binding_id: Some(binding_id),
        }
    }

    /// The binding id as stored (`""` for an instance).
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn binding_column(&self) -> &str {
        self.binding_id.as_deref().unwrap_or("")
    }
}

/// Where a resource stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceState {
    /// Being created; not usable yet.
    Creating,
    /// Created and usable.
    Ready,
    /// Being updated.
    Updating,
    /// Being deleted.
    Deleting,
    /// Its creation failed; it waits for the platform to delete it.
    Failed,
}

impl ResourceState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceState::Creating => "creating",
            ResourceState::Ready => "ready",
            ResourceState::Updating => "updating",
            ResourceState::Deleting => "deleting",
            ResourceState::Failed => "failed",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "creating" => ResourceState::Creating,
            "ready" => ResourceState::Ready,
            "updating" => ResourceState::Updating,
            "deleting" => ResourceState::Deleting,
            "failed" => ResourceState::Failed,
            _ => return None,
        })
    }
}

/// An instance or a binding as the store keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceRecord {
    /// Which resource.
    pub key: Key,
    /// Its offering, when the request named one.
    pub service_id: Option<String>,
    /// Its plan.
    pub plan_id: Option<String>,
    /// Where it stands.
    pub state: ResourceState,
    /// The fingerprint of the request that created it (see [`fingerprint`]).
    pub fingerprint: String,
    /// The request that created it, as JSON.
    pub request: Value,
    /// The body of the success reply (provision or bind response), once created.
    pub reply: Option<Value>,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationKind {
    /// Provision or bind.
    Create,
    /// Update an instance.
    Update,
    /// Deprovision or unbind.
    Delete,
}

impl OperationKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Create => "create",
            OperationKind::Update => "update",
            OperationKind::Delete => "delete",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "create" => OperationKind::Create,
            "update" => OperationKind::Update,
            "delete" => OperationKind::Delete,
            _ => return None,
        })
    }
}

/// Where an operation stands; the spellings are the OSB `state` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationState {
    /// Running, or waiting for a worker.
    InProgress,
    /// Done.
    Succeeded,
    /// Failed; `description` says why.
    Failed,
}

impl OperationState {
    /// The stored spelling (the OSB `state` value).
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::InProgress => "in progress",
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "in progress" => OperationState::InProgress,
            "succeeded" => OperationState::Succeeded,
            "failed" => OperationState::Failed,
            _ => return None,
        })
    }
}

/// One operation on a resource. Its id is the `operation` token the platform polls with.
#[derive(Clone, Debug, PartialEq)]
pub struct OperationRecord {
    /// The operation token.
    pub id: OperationId,
    /// The resource it works on.
    pub key: Key,
    /// What it does.
    pub kind: OperationKind,
    /// Where it stands.
    pub state: OperationState,
    /// The fingerprint of the request that started it.
    pub fingerprint: String,
    /// The request that started it, as JSON (what a worker needs to run it again).
    pub request: Value,
    /// Why it failed, or what it is doing.
    pub description: Option<String>,
    /// The worker running it, while it holds the lease.
    pub owner: Option<String>,
    /// Until when the owner's lease runs; after it, any worker may take the operation over.
    pub lease_until: Option<Millis>,
    /// When it must have finished (the plan's `maximum_polling_duration`); after it, it fails.
    pub deadline: Option<Millis>,
    /// When it started.
    pub created_at: Millis,
    /// When it finished.
    pub finished_at: Option<Millis>,
}

impl OperationRecord {
    /// Whether it is still running.
    pub fn is_active(&self) -> bool {
        self.state == OperationState::InProgress
    }
}

/// A resource and its running operation, read together in one transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// The resource, if it exists.
    pub resource: Option<ResourceRecord>,
    /// Its operation in progress, if one is.
    pub active: Option<OperationRecord>,
}

/// One change a transaction applies.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Inserts or replaces the resource.
    PutResource(ResourceRecord),
    /// Removes the resource with this key (a removed instance takes its bindings with it).
    DeleteResource(Key),
    /// Inserts or replaces the operation.
    PutOperation(OperationRecord),
}

/// The canonical text of a JSON value (object keys sorted at every level): two requests with
/// the same attributes have the same fingerprint whatever order their fields came in.
pub fn fingerprint(value: &Value) -> String {
    fn canonical(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut sorted = Map::new();
                for key in keys {
                    sorted.insert(key.clone(), canonical(&map[key]));
                }
                Value::Object(sorted)
            }
            Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }
    canonical(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprints_ignore_key_order_only() {
        let a = json!({"b": 1, "a": {"y": [1, {"q": 1, "p": 2}], "x": null}});
        let b = json!({"a": {"x": null, "y": [1, {"p": 2, "q": 1}]}, "b": 1});
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = json!({"a": {"x": null, "y": [{"p": 2, "q": 1}, 1]}, "b": 1});
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn states_round_trip_their_spellings() {
        for s in [
            ResourceState::Creating,
            ResourceState::Ready,
            ResourceState::Updating,
            ResourceState::Deleting,
            ResourceState::Failed,
        ] {
            assert_eq!(ResourceState::parse(s.as_str()), Some(s));
        }
        for s in [
            OperationState::InProgress,
            OperationState::Succeeded,
            OperationState::Failed,
        ] {
            assert_eq!(OperationState::parse(s.as_str()), Some(s));
        }
        for k in [
            OperationKind::Create,
            OperationKind::Update,
            OperationKind::Delete,
        ] {
            assert_eq!(OperationKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ResourceState::parse("gone"), None);
    }
}
