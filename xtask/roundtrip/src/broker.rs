//! The recording broker: remembers every call it receives and answers with a scripted answer.

use std::sync::{Mutex, MutexGuard, PoisonError};

use osb_server::{BrokerError, RequestContext, ServiceBroker, async_trait};
use osb_types::{
    ApiVersion, BindOutcome, BindingId, BindingLastOperationQuery, Catalog, DeleteOutcome,
    DeprovisionQuery, FetchBindingOutcome, FetchBindingQuery, FetchInstanceOutcome,
    FetchInstanceQuery, InstanceId, InstanceLastOperationQuery, LastOperationOutcome, Operation,
    OriginatingIdentity, PlanId, ProvisionOutcome, ServiceBindingRequest, ServiceId,
    ServiceInstanceProvisionRequest, ServiceInstanceUpdateRequest, UnbindQuery, UpdateOutcome,
};

use crate::answers::{
    Answer, BindReply, DeleteReply, FetchBindingReply, FetchInstanceReply, LastOperationReply,
    ProvisionReply, UpdateReply,
};

/// The answer the broker gives to the next call.
#[derive(Clone, Debug, PartialEq)]
pub enum Script {
    /// For provision.
    Provision(Answer<ProvisionReply>),
    /// For update.
    Update(Answer<UpdateReply>),
    /// For deprovision or unbind.
    Delete(Answer<DeleteReply>),
    /// For bind.
    Bind(Answer<BindReply>),
    /// For fetching an instance.
    FetchInstance(Answer<FetchInstanceReply>),
    /// For fetching a binding.
    FetchBinding(Answer<FetchBindingReply>),
    /// For a last-operation poll.
    LastOperation(Answer<LastOperationReply>),
}

/// One call the broker received, with what it was told about the request.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// The endpoint and its typed input.
    pub call: Call,
    /// What the [`RequestContext`] said.
    pub context: ReceivedContext,
}

impl Received {
    /// A call with its context.
    pub fn new(call: Call, context: ReceivedContext) -> Self {
        Received { call, context }
    }
}

/// The typed input of one call.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)] // the fields are the trait method's parameters
pub enum Call {
    Provision {
        instance_id: InstanceId,
        request: ServiceInstanceProvisionRequest,
    },
    Update {
        instance_id: InstanceId,
        request: ServiceInstanceUpdateRequest,
    },
    Deprovision {
        instance_id: InstanceId,
        query: DeprovisionQuery,
    },
    InstanceLastOperation {
        instance_id: InstanceId,
        query: InstanceLastOperationQuery,
    },
    FetchInstance {
        instance_id: InstanceId,
        query: FetchInstanceQuery,
    },
    Bind {
        instance_id: InstanceId,
        binding_id: BindingId,
        request: ServiceBindingRequest,
    },
    Unbind {
        instance_id: InstanceId,
        binding_id: BindingId,
        query: UnbindQuery,
    },
    BindingLastOperation {
        instance_id: InstanceId,
        binding_id: BindingId,
        query: BindingLastOperationQuery,
    },
    FetchBinding {
        instance_id: InstanceId,
        binding_id: BindingId,
        query: FetchBindingQuery,
    },
}

/// What a [`RequestContext`] told the broker.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedContext {
    /// [`RequestContext::api_version`].
    pub api_version: ApiVersion,
    /// [`RequestContext::declared_api_version`].
    pub declared_api_version: ApiVersion,
    /// [`RequestContext::originating_identity`].
    pub originating_identity: Option<OriginatingIdentity>,
    /// [`RequestContext::request_identity`].
    pub request_identity: Option<String>,
    /// Whether [`RequestContext::async_permit`] was present.
    pub async_permit: bool,
    /// The id of [`RequestContext::service`].
    pub service: Option<ServiceId>,
    /// The id of [`RequestContext::plan`].
    pub plan: Option<PlanId>,
}

impl ReceivedContext {
    fn of(ctx: &RequestContext) -> Self {
        ReceivedContext {
            api_version: ctx.api_version(),
            declared_api_version: ctx.declared_api_version(),
            originating_identity: ctx.originating_identity().cloned(),
            request_identity: ctx.request_identity().map(str::to_string),
            async_permit: ctx.async_permit().is_some(),
            service: ctx.service().map(|s| s.id.clone()),
            plan: ctx.plan().map(|p| p.id.clone()),
        }
    }
}

/// A [`ServiceBroker`] that records every call and answers with the armed [`Script`].
///
/// A call without an armed script of the right kind is recorded and answered with an internal
/// error, so the property that sees it fails.
#[derive(Debug)]
pub struct RecordingBroker {
    catalog: Catalog,
    script: Mutex<Option<Script>>,
    received: Mutex<Vec<Received>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RecordingBroker {
    /// A broker serving `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        RecordingBroker {
            catalog,
            script: Mutex::new(None),
            received: Mutex::new(Vec::new()),
        }
    }

    /// The catalog it serves.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Sets the answer to the next call and forgets earlier calls.
    pub fn arm(&self, script: Script) {
        *lock(&self.script) = Some(script);
        lock(&self.received).clear();
    }

    /// Forgets the script and earlier calls.
    pub fn reset(&self) {
        *lock(&self.script) = None;
        lock(&self.received).clear();
    }

    /// The calls received since the last [`arm`](Self::arm) or [`reset`](Self::reset).
    pub fn received(&self) -> Vec<Received> {
        lock(&self.received).clone()
    }

    fn record(&self, call: Call, ctx: &RequestContext) -> Option<Script> {
        lock(&self.received).push(Received {
            call,
            context: ReceivedContext::of(ctx),
        });
        lock(&self.script).take()
    }
}

fn unscripted(operation: Operation) -> BrokerError {
    BrokerError::internal(format!("no script armed for {}", operation.operation_id()))
}

fn answer<T, R>(
    operation: Operation,
    answer: Answer<R>,
    reply: impl FnOnce(&R) -> T,
) -> Result<T, BrokerError> {
    match answer {
        Answer::Reply(r) => Ok(reply(&r)),
        Answer::Error(e) => Err(e.to_error(operation)),
    }
}

#[async_trait]
impl ServiceBroker for RecordingBroker {
    async fn catalog(&self) -> Result<Catalog, BrokerError> {
        Ok(self.catalog.clone())
    }

    async fn provision(
        &self,
        instance_id: InstanceId,
        request: ServiceInstanceProvisionRequest,
        ctx: RequestContext,
    ) -> Result<ProvisionOutcome, BrokerError> {
        let op = Operation::Provision;
        let call = Call::Provision {
            instance_id,
            request,
        };
        match self.record(call, &ctx) {
            Some(Script::Provision(a)) => answer(op, a, |r| r.to_outcome(ctx.async_permit())),
            _ => Err(unscripted(op)),
        }
    }

    async fn update(
        &self,
        instance_id: InstanceId,
        request: ServiceInstanceUpdateRequest,
        ctx: RequestContext,
    ) -> Result<UpdateOutcome, BrokerError> {
        let op = Operation::Update;
        let call = Call::Update {
            instance_id,
            request,
        };
        match self.record(call, &ctx) {
            Some(Script::Update(a)) => answer(op, a, |r| r.to_outcome(ctx.async_permit())),
            _ => Err(unscripted(op)),
        }
    }

    async fn deprovision(
        &self,
        instance_id: InstanceId,
        query: DeprovisionQuery,
        ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        let op = Operation::Deprovision;
        let call = Call::Deprovision { instance_id, query };
        match self.record(call, &ctx) {
            Some(Script::Delete(a)) => answer(op, a, |r| r.to_outcome(ctx.async_permit())),
            _ => Err(unscripted(op)),
        }
    }

    async fn instance_last_operation(
        &self,
        instance_id: InstanceId,
        query: InstanceLastOperationQuery,
        ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        let op = Operation::InstanceLastOperation;
        let call = Call::InstanceLastOperation { instance_id, query };
        match self.record(call, &ctx) {
            Some(Script::LastOperation(a)) => answer(op, a, LastOperationReply::to_outcome),
            _ => Err(unscripted(op)),
        }
    }

    async fn fetch_instance(
        &self,
        instance_id: InstanceId,
        query: FetchInstanceQuery,
        ctx: RequestContext,
    ) -> Result<FetchInstanceOutcome, BrokerError> {
        let op = Operation::FetchInstance;
        let call = Call::FetchInstance { instance_id, query };
        match self.record(call, &ctx) {
            Some(Script::FetchInstance(a)) => answer(op, a, FetchInstanceReply::to_outcome),
            _ => Err(unscripted(op)),
        }
    }

    async fn bind(
        &self,
        instance_id: InstanceId,
        binding_id: BindingId,
        request: ServiceBindingRequest,
        ctx: RequestContext,
    ) -> Result<BindOutcome, BrokerError> {
        let op = Operation::Bind;
        let call = Call::Bind {
            instance_id,
            binding_id,
            request,
        };
        match self.record(call, &ctx) {
            Some(Script::Bind(a)) => answer(op, a, |r| r.to_outcome(ctx.async_permit())),
            _ => Err(unscripted(op)),
        }
    }

    async fn unbind(
        &self,
        instance_id: InstanceId,
        binding_id: BindingId,
        query: UnbindQuery,
        ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        let op = Operation::Unbind;
        let call = Call::Unbind {
            instance_id,
            binding_id,
            query,
        };
        match self.record(call, &ctx) {
            Some(Script::Delete(a)) => answer(op, a, |r| r.to_outcome(ctx.async_permit())),
            _ => Err(unscripted(op)),
        }
    }

    async fn binding_last_operation(
        &self,
        instance_id: InstanceId,
        binding_id: BindingId,
        query: BindingLastOperationQuery,
        ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        let op = Operation::BindingLastOperation;
        let call = Call::BindingLastOperation {
            instance_id,
            binding_id,
            query,
        };
        match self.record(call, &ctx) {
            Some(Script::LastOperation(a)) => answer(op, a, LastOperationReply::to_outcome),
            _ => Err(unscripted(op)),
        }
    }

    async fn fetch_binding(
        &self,
        instance_id: InstanceId,
        binding_id: BindingId,
        query: FetchBindingQuery,
        ctx: RequestContext,
    ) -> Result<FetchBindingOutcome, BrokerError> {
        let op = Operation::FetchBinding;
        let call = Call::FetchBinding {
            instance_id,
            binding_id,
            query,
        };
        match self.record(call, &ctx) {
            Some(Script::FetchBinding(a)) => answer(op, a, FetchBindingReply::to_outcome),
            _ => Err(unscripted(op)),
        }
    }
}
