//! Waiting for the operation a `202 Accepted` started, without building the last-operation
//! query by hand.

use std::time::Duration;

use http::StatusCode;
use osb_types::{
    Accepted, AsyncBody, AsyncOperation, BindingId, BindingLastOperationQuery, InstanceId,
    InstanceLastOperationQuery, LastOperationResource, Plan, PlanId, Service, ServiceId,
};

use crate::client::{CallOptions, Client};
use crate::error::Error;
use crate::poll::{OperationKind, PollOutcome, PollPolicy, WaitForOperation};

/// What [`Client::wait`] and [`Client::wait_binding`] need besides the `202` answer: what kind
/// of operation it is, and the offering and plan of the instance.
///
/// The offering and plan are sent with each poll (`service_id` / `plan_id`), and the plan's
/// `maximum_polling_duration` bounds the wait. After a plan change, give the plan the instance
/// had *before* the update, as the spec asks.
///
/// ```
/// use osb_client::{OperationKind, WaitOptions};
/// use osb_types::{Plan, PlanId, Service, ServiceId};
/// let plan = Plan::new(PlanId::new("plan-1"), "small", "Small").with_maximum_polling_duration(600);
/// let service = Service::new("db", ServiceId::new("svc-1"), "A database", true, [plan.clone()]);
/// let options = WaitOptions::create(&service, &plan);
/// assert_eq!(options.kind(), OperationKind::Create);
/// assert_eq!(options.polling_limit(), Some(std::time::Duration::from_secs(600)));
/// ```
#[derive(Clone, Debug)]
pub struct WaitOptions {
    kind: OperationKind,
    service_id: Option<ServiceId>,
    plan_id: Option<PlanId>,
    max_duration: Option<Duration>,
    policy: Option<PollPolicy>,
    call_options: CallOptions,
}

impl WaitOptions {
    /// Waiting for an operation of this kind, without offering, plan or deadline of its own.
    pub fn new(kind: OperationKind) -> Self {
        WaitOptions {
            kind,
            service_id: None,
            plan_id: None,
            max_duration: None,
            policy: None,
            call_options: CallOptions::new(),
        }
    }

    /// Waiting for a provision or bind on `plan` of `service`.
    pub fn create(service: &Service, plan: &Plan) -> Self {
        Self::new(OperationKind::Create).for_plan(service, plan)
    }

    /// Waiting for an update of an instance that was on `plan` (the plan before the update).
    pub fn update(service: &Service, plan: &Plan) -> Self {
        Self::new(OperationKind::Update).for_plan(service, plan)
    }

    /// Waiting for a deprovision or unbind on `plan` of `service`; `410 Gone` counts as done.
    pub fn delete(service: &Service, plan: &Plan) -> Self {
        Self::new(OperationKind::Delete).for_plan(service, plan)
    }

    /// Sends the ids of `service` and `plan` with each poll and stops at the plan's
    /// `maximum_polling_duration`, if it has one.
    #[must_use]
    pub fn for_plan(mut self, service: &Service, plan: &Plan) -> Self {
        self.service_id = Some(service.id.clone());
        self.plan_id = Some(plan.id.clone());
        self.max_duration = plan
            .maximum_polling_duration
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs);
        self
    }

    /// Uses this polling policy (backoff, `Retry-After` cap, the platform's own limit).
    #[must_use]
    pub fn policy(mut self, policy: PollPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Stops after `duration` at the latest (the shortest of this, the plan's and the policy's
    /// limit applies).
    #[must_use]
    pub fn max_duration(mut self, duration: Duration) -> Self {
        self.max_duration = Some(self.max_duration.map_or(duration, |d| d.min(duration)));
        self
    }

    /// Options for each poll request.
    #[must_use]
    pub fn call_options(mut self, options: CallOptions) -> Self {
        self.call_options = options;
        self
    }

    /// The kind of operation waited for.
    pub fn kind(&self) -> OperationKind {
        self.kind
    }

    /// The longest wait these options allow, if they set one.
    pub fn polling_limit(&self) -> Option<Duration> {
        self.max_duration
    }

    fn apply<'a>(&self, mut wait: WaitForOperation<'a>) -> WaitForOperation<'a> {
        if let Some(policy) = &self.policy {
            wait = wait.policy(policy.clone());
        }
        if let Some(duration) = self.max_duration {
            wait = wait.max_duration(duration);
        }
        wait.call_options(self.call_options.clone())
    }
}

impl Client {
    /// Waits for the operation a `202 Accepted` started on a service instance (provision,
    /// update, deprovision) and returns how it ended.
    ///
    /// Polls `GET /v2/service_instances/{instance_id}/last_operation` with the `operation` token
    /// of `accepted` and the offering and plan of `options`, as
    /// [`wait_for_instance_operation`](Self::wait_for_instance_operation) does. The returned
    /// wait can be configured further (e.g. [`on_progress`](WaitForOperation::on_progress))
    /// before it is awaited.
    ///
    /// ```no_run
    /// # async fn demo(client: osb_client::Client, service: osb_types::Service, plan: osb_types::Plan)
    /// # -> Result<(), osb_client::Error> {
    /// use osb_client::prelude::*;
    /// let id = InstanceId::new("instance-1");
    /// let request = ServiceInstanceProvisionRequest::new(&service.id, &plan.id, "org", "space");
    /// let query = ProvisionQuery::new().with_accepts_incomplete(true);
    /// let outcome = client.provision(&id, &request, &query, &CallOptions::new()).await?;
    /// if let Some(accepted) = outcome.as_accepted() {
    ///     client.wait(&id, accepted, &WaitOptions::create(&service, &plan)).await?.into_result()?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn wait<'a, B: AsyncBody>(
        &self,
        instance_id: &InstanceId,
        accepted: &Accepted<B>,
        options: &WaitOptions,
    ) -> WaitForOperation<'a> {
        let mut query = InstanceLastOperationQuery::new();
        query.service_id = options.service_id.clone();
        query.plan_id = options.plan_id.clone();
        query.operation = accepted.operation_id().cloned();
        options.apply(self.wait_for_instance_operation(instance_id, &query, options.kind))
    }

    /// Waits for the operation a `202 Accepted` started on a service binding (bind, unbind) and
    /// returns how it ended; see [`wait`](Self::wait).
    pub fn wait_binding<'a>(
        &self,
        instance_id: &InstanceId,
        binding_id: &BindingId,
        accepted: &Accepted<AsyncOperation>,
        options: &WaitOptions,
    ) -> WaitForOperation<'a> {
        let mut query = BindingLastOperationQuery::new();
        query.service_id = options.service_id.clone();
        query.plan_id = options.plan_id.clone();
        query.operation = accepted.operation_id().cloned();
        options.apply(self.wait_for_binding_operation(
            instance_id,
            binding_id,
            &query,
            options.kind,
        ))
    }
}

impl PollOutcome {
    /// `Ok` when the operation succeeded (with the broker's last-operation reply, or `None` after
    /// `410 Gone` on a delete); otherwise the error that says how it ended:
    /// [`Error::OperationFailed`], [`Error::PollDeadline`], or for `404 Not Found` on a create or
    /// update, [`Error::UnexpectedStatus`] with status 404.
    ///
    /// ```
    /// use osb_client::PollOutcome;
    /// assert!(matches!(PollOutcome::Gone.into_result(), Ok(None)));
    /// let err = PollOutcome::DeadlineExceeded { last: None }.into_result().unwrap_err();
    /// assert_eq!(err.to_string(), "the operation did not finish before the polling deadline");
    /// ```
    pub fn into_result(self) -> Result<Option<LastOperationResource>, Error> {
        match self {
            PollOutcome::Succeeded(resource) => Ok(Some(resource)),
            PollOutcome::Gone => Ok(None),
            PollOutcome::Failed(resource) => Err(Error::OperationFailed {
                resource: Box::new(resource),
            }),
            PollOutcome::DeadlineExceeded { last } => Err(Error::PollDeadline {
                last: last.map(Box::new),
            }),
            PollOutcome::NotFound => Err(Error::UnexpectedStatus {
                status: StatusCode::NOT_FOUND,
                body: Default::default(),
            }),
        }
    }
}
