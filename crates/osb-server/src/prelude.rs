//! What a broker uses, in one import: `use osb_server::prelude::*;`.
//!
//! The framework ([`Broker`], [`ServiceBroker`], [`RequestContext`], [`BrokerError`],
//! [`async_trait`](macro@crate::async_trait)) and the osb-types items a broker names: the catalog models, ids, request and
//! query types, outcomes and their bodies. Everything else stays under [`osb_server`](crate) and
//! [`osb_server::types`](crate::types).

pub use crate::{
    Auth, Broker, BrokerError, Guards, RequestContext, ServiceBroker, VersionPolicy, async_trait,
};
pub use osb_types::{
    Accepted, AsyncBody, AsyncOperation, AsyncPermit, BindOutcome, BindingId,
    BindingLastOperationQuery, Catalog, DeleteOutcome, DeprovisionQuery, FetchBindingOutcome,
    FetchBindingQuery, FetchInstanceOutcome, FetchInstanceQuery, InstanceId,
    InstanceLastOperationQuery, LastOperation, LastOperationOutcome, LastOperationResource,
    LastOperationState, MaintenanceInfo, OperationId, Plan, PlanId, ProvisionOutcome, RetryAfter,
    Service, ServiceBindingRequest, ServiceBindingResource, ServiceBindingResponse, ServiceId,
    ServiceInstanceAsyncOperation, ServiceInstanceProvisionRequest,
    ServiceInstanceProvisionResponse, ServiceInstanceResource, ServiceInstanceUpdateRequest,
    ServiceInstanceUpdateResponse, UnbindQuery, UpdateOutcome,
};
