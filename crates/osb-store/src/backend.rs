//! [`Backend`]: the work a broker author writes; the stateful layer does the rest.

use async_trait::async_trait;
use osb_server::BrokerError;
use osb_server::types::{
    BindingId, Catalog, InstanceId, Operation, ServiceBindingRequest, ServiceBindingResponse,
    ServiceInstanceProvisionRequest, ServiceInstanceProvisionResponse,
    ServiceInstanceUpdateRequest, ServiceInstanceUpdateResponse,
};

/// What a broker does, without the bookkeeping: create, update and delete instances, create
/// and delete bindings. [`Stateful`](crate::Stateful) turns it into a full
/// [`ServiceBroker`](osb_server::ServiceBroker): idempotent repeats, `409`, `422
/// ConcurrencyError`, asynchronous operations with last operation, fetches, retention and
/// restarts are answered from the store.
///
/// **Every method may be called again for the same resource** — after a restart, or when
/// another worker takes over an operation whose worker died — so each must be idempotent:
/// creating what already exists (as asked) succeeds, deleting what is gone succeeds. A call
/// may take long; the layer answers `202` and lets the platform poll when the request allows
/// it and the call outlives the synchronous budget, or at once on plans
/// [`is_async`](Self::is_async) names.
///
/// A method's [`BrokerError`] reaches the platform as it is when the request is still waiting
/// for its answer, and as the failed operation's description when it is polled.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The catalog.
    async fn catalog(&self) -> Result<Catalog, BrokerError>;

    /// Whether work on this plan is always asynchronous: requests without
    /// `accepts_incomplete=true` get `422 AsyncRequired`, others `202` at once. Default: no
    /// plan is (work still goes asynchronous when it outlives the synchronous budget and the
    /// request allows it).
    fn is_async(&self, plan_id: &str) -> bool {
        let _ = plan_id;
        false
    }

    /// Whether every effect of this backend's create calls is written in the store's
    /// transaction that records the call's outcome (on SQLite through
    /// `SqliteStore::execute_with`), or stays in this process. Then, on a store one process
    /// holds alone ([`Store::single_process`](crate::Store::single_process)), a synchronous
    /// create runs with its resource held in memory (concurrent requests on it are answered as
    /// if it were stored) and is written once, with its outcome: one transaction instead of
    /// two. Should it outlive the synchronous budget of a request that allows `202`, it is
    /// stored as an operation in progress first.
    ///
    /// Default `false`: the operation is stored before the call, so that if the process dies
    /// during a call with effects elsewhere, the operation is resumed after a restart.
    fn commits_with_store(&self) -> bool {
        false
    }

    /// Creates the instance; the reply's `dashboard_url` and `metadata` are stored and sent.
    async fn create_instance(
        &self,
        instance_id: &InstanceId,
        request: &ServiceInstanceProvisionRequest,
    ) -> Result<ServiceInstanceProvisionResponse, BrokerError>;

    /// Applies an update. Default: not supported (`422`).
    async fn update_instance(
        &self,
        instance_id: &InstanceId,
        request: &ServiceInstanceUpdateRequest,
    ) -> Result<ServiceInstanceUpdateResponse, BrokerError> {
        let _ = (instance_id, request);
        Err(BrokerError::not_supported(Operation::Update))
    }

    /// Deletes the instance (its bindings were deleted first, or are deleted with it).
    async fn delete_instance(&self, instance_id: &InstanceId) -> Result<(), BrokerError>;

    /// Creates a binding; the reply (credentials and the rest) is stored and sent again on
    /// identical repeats and fetches. For a rotation, `request` names the predecessor and
    /// carries its `service_id`, `plan_id` and (when the platform sent none) `parameters`.
    /// Default: not supported (`400`).
    async fn create_binding(
        &self,
        instance_id: &InstanceId,
        binding_id: &BindingId,
        request: &ServiceBindingRequest,
    ) -> Result<ServiceBindingResponse, BrokerError> {
        let _ = (instance_id, binding_id, request);
        Err(BrokerError::not_supported(Operation::Bind))
    }

    /// Deletes a binding (revokes its credentials). Default: nothing to do.
    async fn delete_binding(
        &self,
        instance_id: &InstanceId,
        binding_id: &BindingId,
    ) -> Result<(), BrokerError> {
        let _ = (instance_id, binding_id);
        Ok(())
    }
}
