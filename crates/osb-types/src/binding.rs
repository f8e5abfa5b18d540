//! Bind requests that rotate a binding.

use crate::{BindingId, ServiceBindingRequest};

impl ServiceBindingRequest {
    /// A rotation (OSB 2.17): a new binding that replaces `predecessor`, an unexpired binding on
    /// the same instance. `service_id`, `plan_id` and `parameters` may be left out, since the
    /// broker knows them from the predecessor; add them with the setters when the platform has
    /// them.
    ///
    /// ```
    /// use osb_types::{BindingId, ServiceBindingRequest};
    /// let request = ServiceBindingRequest::rotation(BindingId::from("binding-1"));
    /// assert!(request.is_rotation());
    /// assert_eq!(
    ///     serde_json::to_string(&request).unwrap(),
    ///     r#"{"predecessor_binding_id":"binding-1"}"#
    /// );
    /// ```
    pub fn rotation(predecessor: impl Into<BindingId>) -> Self {
        ServiceBindingRequest {
            predecessor_binding_id: Some(predecessor.into()),
            ..ServiceBindingRequest::default()
        }
    }

    /// Whether this request rotates a binding (it names a `predecessor_binding_id`).
    pub fn is_rotation(&self) -> bool {
        self.predecessor_binding_id.is_some()
    }
}
