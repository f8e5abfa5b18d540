//! What a platform uses, in one import: `use osb_client::prelude::*;`.
//!
//! The client ([`Client`], [`CallOptions`], [`WaitOptions`], the poll results) and the osb-types
//! items a platform names: ids, catalog models, requests, queries, outcomes and identities.
//! Everything else stays under [`osb_client`](crate) and [`osb_client::types`](crate::types).

pub use crate::{
    CallOptions, Client, OperationKind, PollOutcome, PollPolicy, PollProgress, WaitOptions,
};
pub use osb_types::{
    Accepted, AsyncBody, BindOutcome, BindQuery, BindingId, BindingLastOperationQuery, Catalog,
    CloudFoundryIdentity, Context, DeleteOutcome, DeprovisionQuery, FetchBindingOutcome,
    FetchBindingQuery, FetchInstanceOutcome, FetchInstanceQuery, InstanceId,
    InstanceLastOperationQuery, KubernetesIdentity, LastOperationOutcome, LastOperationState,
    MaintenanceInfo, OriginatingIdentity, Plan, PlanId, ProvisionOutcome, ProvisionQuery, Service,
    ServiceBindingRequest, ServiceId, ServiceInstanceProvisionRequest,
    ServiceInstanceUpdateRequest, UnbindQuery, UpdateOutcome, UpdateQuery,
};
