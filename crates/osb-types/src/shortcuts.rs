//! Short constructors for the answers brokers give most often, and credentials from any
//! serializable value.
//!
//! ```
//! use osb_types::{AsyncPermit, BindOutcome, LastOperationOutcome, ProvisionOutcome};
//! use serde_json::json;
//!
//! let permit = AsyncPermit::from_accepts_incomplete(Some(true)).unwrap();
//! let accepted = ProvisionOutcome::accepted(permit, "create-1");
//! assert_eq!(serde_json::to_string(&accepted).unwrap(), r#"{"operation":"create-1"}"#);
//!
//! let poll = LastOperationOutcome::in_progress().retry_after(1);
//! assert_eq!(serde_json::to_string(&poll).unwrap(), r#"{"state":"in progress"}"#);
//!
//! let bound = BindOutcome::created_with_credentials(json!({"uri": "db://x"})).unwrap();
//! assert_eq!(bound.credentials().unwrap()["uri"], "db://x");
//! assert!(BindOutcome::created_with_credentials("just a string").is_err());
//! ```

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    Accepted, AsyncOperation, AsyncPermit, BindOutcome, DeleteOutcome, Error, LastOperation,
    LastOperationOutcome, LastOperationResource, LastOperationState, OperationId, ProvisionOutcome,
    RetryAfter, ServiceBindingResource, ServiceBindingResponse, ServiceInstanceAsyncOperation,
    ServiceInstanceProvisionResponse, ServiceInstanceUpdateResponse, UpdateOutcome,
};

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::ServiceInstanceAsyncOperation {}
    impl Sealed for crate::AsyncOperation {}
}

/// The body of a `202 Accepted` reply: [`ServiceInstanceAsyncOperation`] for provision and
/// update, [`AsyncOperation`] for bind, unbind and deprovision.
///
/// The spec gives the two replies different fields (only the first has `dashboard_url` and
/// `metadata`), so they stay two types on the wire; this trait is what they share, the
/// `operation` token. It is sealed.
pub trait AsyncBody: sealed::Sealed + Default + Clone + std::fmt::Debug + Send + Sync {
    /// A body carrying only this operation token.
    fn from_operation(operation: OperationId) -> Self;

    /// The operation token, if the broker gave one.
    fn operation_id(&self) -> Option<&OperationId>;
}

impl AsyncBody for ServiceInstanceAsyncOperation {
    fn from_operation(operation: OperationId) -> Self {
        ServiceInstanceAsyncOperation::new().with_operation(operation)
    }

    fn operation_id(&self) -> Option<&OperationId> {
        self.operation.as_ref().and_then(Option::as_ref)
    }
}

impl AsyncBody for AsyncOperation {
    fn from_operation(operation: OperationId) -> Self {
        AsyncOperation::new().with_operation(operation)
    }

    fn operation_id(&self) -> Option<&OperationId> {
        self.operation.as_ref()
    }
}

impl<T: AsyncBody> Accepted<T> {
    /// A `202 Accepted` whose body carries only the operation token the platform will poll with.
    pub fn with_operation(permit: AsyncPermit, operation: impl Into<OperationId>) -> Self {
        Accepted::new(permit, T::from_operation(operation.into()))
    }

    /// A `202 Accepted` with an empty body (`{}`): polls will carry no `operation`.
    pub fn empty(permit: AsyncPermit) -> Self {
        Accepted::new(permit, T::default())
    }

    /// The operation token of the body, if any (the same as the `operation()` of either body).
    pub fn operation_id(&self) -> Option<&OperationId> {
        self.body().operation_id()
    }
}

impl ProvisionOutcome {
    /// `201 Created` with an empty body.
    pub fn created() -> Self {
        ProvisionOutcome::Created(ServiceInstanceProvisionResponse::new())
    }

    /// `202 Accepted` with this operation token.
    pub fn accepted(permit: AsyncPermit, operation: impl Into<OperationId>) -> Self {
        ProvisionOutcome::Accepted(Accepted::with_operation(permit, operation))
    }

    /// The `202 Accepted` answer, if this is one.
    pub fn as_accepted(&self) -> Option<&Accepted<ServiceInstanceAsyncOperation>> {
        match self {
            ProvisionOutcome::Accepted(accepted) => Some(accepted),
            _ => None,
        }
    }
}

impl UpdateOutcome {
    /// `200 OK` with an empty body.
    pub fn updated() -> Self {
        UpdateOutcome::Updated(ServiceInstanceUpdateResponse::new())
    }

    /// `202 Accepted` with this operation token.
    pub fn accepted(permit: AsyncPermit, operation: impl Into<OperationId>) -> Self {
        UpdateOutcome::Accepted(Accepted::with_operation(permit, operation))
    }

    /// The `202 Accepted` answer, if this is one.
    pub fn as_accepted(&self) -> Option<&Accepted<ServiceInstanceAsyncOperation>> {
        match self {
            UpdateOutcome::Accepted(accepted) => Some(accepted),
            _ => None,
        }
    }
}

impl DeleteOutcome {
    /// `202 Accepted` with this operation token.
    pub fn accepted(permit: AsyncPermit, operation: impl Into<OperationId>) -> Self {
        DeleteOutcome::Accepted(Accepted::with_operation(permit, operation))
    }

    /// The `202 Accepted` answer, if this is one.
    pub fn as_accepted(&self) -> Option<&Accepted<AsyncOperation>> {
        match self {
            DeleteOutcome::Accepted(accepted) => Some(accepted),
            _ => None,
        }
    }
}

impl BindOutcome {
    /// `201 Created` with these credentials: any value that serializes to a JSON object, such as
    /// `json!({...})`, a map or a struct. Anything else is an [`Error::Invalid`] naming
    /// `credentials`.
    pub fn created_with_credentials(credentials: impl Serialize) -> Result<Self, Error> {
        ServiceBindingResponse::new()
            .try_with_credentials(credentials)
            .map(BindOutcome::Created)
    }

    /// `202 Accepted` with this operation token.
    pub fn accepted(permit: AsyncPermit, operation: impl Into<OperationId>) -> Self {
        BindOutcome::Accepted(Accepted::with_operation(permit, operation))
    }

    /// The `202 Accepted` answer, if this is one.
    pub fn as_accepted(&self) -> Option<&Accepted<AsyncOperation>> {
        match self {
            BindOutcome::Accepted(accepted) => Some(accepted),
            _ => None,
        }
    }

    /// The credentials of a `201` or `200` reply, if it carried any.
    pub fn credentials(&self) -> Option<&Map<String, Value>> {
        match self {
            BindOutcome::Created(reply) | BindOutcome::AlreadyExists(reply) => {
                reply.credentials.as_ref()
            }
            BindOutcome::Accepted(_) => None,
        }
    }
}

/// Serializes `value` into the JSON object a `credentials` field needs.
fn credentials_object(value: impl Serialize) -> Result<Map<String, Value>, Error> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Error::invalid(
            "credentials",
            format!("must be a JSON object, not {}", json_kind(&other)),
        )),
        Err(e) => Err(Error::invalid(
            "credentials",
            format!("cannot be serialized as JSON: {e}"),
        )),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl ServiceBindingResponse {
    /// Sets `credentials` from any value that serializes to a JSON object (`json!({...})`, a map,
    /// a struct). Anything else is an [`Error::Invalid`] naming `credentials`; nothing panics.
    pub fn try_with_credentials(mut self, credentials: impl Serialize) -> Result<Self, Error> {
        self.credentials = Some(credentials_object(credentials)?);
        Ok(self)
    }
}

impl ServiceBindingResource {
    /// Sets `credentials` from any value that serializes to a JSON object (`json!({...})`, a map,
    /// a struct). Anything else is an [`Error::Invalid`] naming `credentials`; nothing panics.
    pub fn try_with_credentials(mut self, credentials: impl Serialize) -> Result<Self, Error> {
        self.credentials = Some(credentials_object(credentials)?);
        Ok(self)
    }
}

impl LastOperationOutcome {
    /// `200 OK` with `"state": "in progress"`; add [`retry_after`](Self::retry_after) to say when
    /// to ask again.
    pub fn in_progress() -> Self {
        Self::with_state(LastOperationState::InProgress)
    }

    /// `200 OK` with `"state": "succeeded"`.
    pub fn succeeded() -> Self {
        Self::with_state(LastOperationState::Succeeded)
    }

    /// `200 OK` with `"state": "failed"` and a description the platform may show to users.
    pub fn failed(description: impl Into<String>) -> Self {
        Self::with_state(LastOperationState::Failed).with_description(description)
    }

    fn with_state(state: LastOperationState) -> Self {
        LastOperationOutcome::State(LastOperation::new(LastOperationResource::new(state)))
    }

    /// Sets `Retry-After` to `seconds` (on a `200` answer; `Gone` and `NotFound` are unchanged).
    #[must_use]
    pub fn retry_after(self, seconds: u64) -> Self {
        self.map_state(|op| op.retry_after = Some(RetryAfter::seconds(seconds)))
    }

    /// Sets the `description` (on a `200` answer; `Gone` and `NotFound` are unchanged).
    #[must_use]
    pub fn with_description(self, description: impl Into<String>) -> Self {
        let description = description.into();
        self.map_state(|op| op.resource.description = Some(description))
    }

    fn map_state(mut self, change: impl FnOnce(&mut LastOperation)) -> Self {
        if let LastOperationOutcome::State(op) = &mut self {
            change(op);
        }
        self
    }

    /// The reported state of a `200` answer.
    pub fn state(&self) -> Option<&LastOperationState> {
        match self {
            LastOperationOutcome::State(op) => Some(&op.resource.state),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permit() -> AsyncPermit {
        AsyncPermit::from_accepts_incomplete(Some(true)).unwrap()
    }

    #[test]
    fn last_operation_shortcuts_build_the_long_forms() {
        let long = LastOperationOutcome::State(
            LastOperation::new(LastOperationResource::new(LastOperationState::InProgress))
                .with_retry_after(RetryAfter::seconds(1)),
        );
        assert_eq!(LastOperationOutcome::in_progress().retry_after(1), long);
        let failed = LastOperationOutcome::failed("disk full");
        let LastOperationOutcome::State(op) = &failed else {
            panic!("a state")
        };
        assert_eq!(op.resource.state, LastOperationState::Failed);
        assert_eq!(op.resource.description.as_deref(), Some("disk full"));
        assert_eq!(op.retry_after, None);
        assert_eq!(
            LastOperationOutcome::succeeded().state(),
            Some(&LastOperationState::Succeeded)
        );
        assert_eq!(
            LastOperationOutcome::Gone.retry_after(3),
            LastOperationOutcome::Gone
        );
    }

    #[test]
    fn accepted_shortcuts_keep_the_wire_format() {
        let provision = ProvisionOutcome::accepted(permit(), "op-1");
        let long = ProvisionOutcome::Accepted(Accepted::new(
            permit(),
            ServiceInstanceAsyncOperation::new().with_operation("op-1"),
        ));
        assert_eq!(provision, long);
        assert_eq!(
            provision.as_accepted().unwrap().operation_id().unwrap(),
            "op-1"
        );
        let delete = DeleteOutcome::accepted(permit(), "op-2");
        assert_eq!(
            serde_json::to_string(&delete).unwrap(),
            r#"{"operation":"op-2"}"#
        );
        let bind = BindOutcome::accepted(permit(), "op-3");
        assert_eq!(
            bind.as_accepted().unwrap().operation(),
            Some(&"op-3".into())
        );
        let update = UpdateOutcome::accepted(permit(), "op-4");
        assert_eq!(update.status().as_u16(), 202);
        let empty = Accepted::<AsyncOperation>::empty(permit());
        assert_eq!(empty.operation_id(), None);
        assert_eq!(serde_json::to_string(empty.body()).unwrap(), "{}");
        assert_eq!(ProvisionOutcome::created().status().as_u16(), 201);
        assert_eq!(UpdateOutcome::updated().status().as_u16(), 200);
        assert!(ProvisionOutcome::created().as_accepted().is_none());
    }

    #[test]
    fn credentials_from_any_object_and_a_clear_error_otherwise() {
        #[derive(Serialize)]
        struct Creds {
            uri: String,
        }
        let from_struct = ServiceBindingResponse::new()
            .try_with_credentials(Creds {
                uri: "db://x".into(),
            })
            .unwrap();
        assert_eq!(from_struct.credentials.unwrap()["uri"], "db://x");
        let from_json = BindOutcome::created_with_credentials(serde_json::json!({"a": 1})).unwrap();
        assert_eq!(from_json.credentials().unwrap()["a"], 1);
        for (value, kind) in [
            (serde_json::json!("secret"), "a string"),
            (serde_json::json!([1]), "an array"),
            (Value::Null, "null"),
        ] {
            let err = BindOutcome::created_with_credentials(value).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid `credentials`: must be a JSON object, not {kind}")
            );
        }
        let resource = ServiceBindingResource::new()
            .try_with_credentials(serde_json::json!({"b": true}))
            .unwrap();
        assert_eq!(resource.credentials.unwrap()["b"], true);
    }
}
