//! Orphan mitigation: deciding when a platform must delete what a broker may have created, and
//! doing it.
//!
//! See [`orphan_mitigation`] for the decision table.

use std::time::{Duration, SystemTime};

use http::StatusCode;
use osb_types::{
    BindOutcome, BindingId, BindingLastOperationQuery, DeleteOutcome, DeprovisionQuery, ErrorCode,
    InstanceId, InstanceLastOperationQuery, LastOperationState, PlanId, ProvisionOutcome,
    ServiceId, UnbindQuery, UpdateOutcome,
};

use crate::client::{CallOptions, Client};
use crate::error::Error;
use crate::poll::{OperationKind, PollOutcome, PollPolicy};

/// The request whose result is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrphanOperation {
    /// Provision (`PUT /v2/service_instances/{id}`).
    Provision,
    /// Update (`PATCH /v2/service_instances/{id}`); never triggers orphan mitigation.
    Update,
    /// Deprovision (`DELETE /v2/service_instances/{id}`).
    Deprovision,
    /// Bind (`PUT …/service_bindings/{id}`).
    Bind,
    /// Unbind (`DELETE …/service_bindings/{id}`).
    Unbind,
}

/// What the platform saw of a request (or of polling its operation).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observed {
    /// A reply with `status` whose body decoded (or that the operation ignores), with the OSB
    /// error code of an error body.
    Reply {
        /// The HTTP status.
        status: u16,
        /// The `error` code of an error body, if any.
        code: Option<ErrorCode>,
    },
    /// A `2xx` reply whose body does not decode, or that cannot be used (a `202` to a request
    /// that did not set `accepts_incomplete=true`).
    ///
    /// "Does not decode" means the platform cannot use it: not a JSON object, or a field it
    /// needs (`credentials`, `operation`, `state`) mistyped. A mistyped optional field is set
    /// aside and the reply counts as well-formed (see the crate's "Decoding replies").
    MalformedReply {
        /// The HTTP status.
        status: u16,
    },
    /// The request timed out: the broker may have acted on it.
    Timeout,
    /// The connection broke after the request was sent: the broker may have acted on it.
    ReplyLost,
    /// The request never reached the broker.
    NotSent,
    /// Polling ended with this state.
    PollState(LastOperationState),
    /// Polling reached its deadline (counted as failed).
    PollDeadline,
    /// Polling ended with `410 Gone`.
    PollGone,
    /// Polling ended with `404 Not Found`.
    PollNotFound,
    /// Polling stopped on an error that repeating could not fix; the operation's fate is unknown.
    PollError,
}

/// What to delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cleanup {
    /// Nothing.
    None,
    /// The service instance (deprovision it).
    Instance,
    /// The service binding (unbind it).
    Binding,
}

/// The typed outcomes of the requests orphan mitigation judges.
pub trait Outcome {
    /// The HTTP status of the outcome.
    fn status(&self) -> StatusCode;
}

macro_rules! outcome {
    ($($ty:ty),*) => {$(
        impl Outcome for $ty {
            fn status(&self) -> StatusCode {
                <$ty>::status(self)
            }
        }
    )*};
}
outcome!(ProvisionOutcome, UpdateOutcome, DeleteOutcome, BindOutcome);

impl Observed {
    /// What a request's result shows.
    pub fn from_result<T: Outcome>(result: &Result<T, Error>) -> Self {
        match result {
            Ok(outcome) => Observed::Reply {
                status: outcome.status().as_u16(),
                code: None,
            },
            Err(e) => Observed::from_error(e),
        }
    }

    /// What an error shows.
    pub fn from_error(error: &Error) -> Self {
        match error {
            Error::Broker { status, code, .. } => Observed::Reply {
                status: status.as_u16(),
                code: code.clone(),
            },
            Error::UnexpectedStatus { status, .. } => Observed::Reply {
                status: status.as_u16(),
                code: None,
            },
            Error::Decode { status, .. } => Observed::MalformedReply {
                status: status.as_u16(),
            },
            Error::AsyncNotPermitted { .. } => Observed::MalformedReply { status: 202 },
            Error::BodyTooLarge { status, .. } if status.is_success() => Observed::MalformedReply {
                status: status.as_u16(),
            },
            Error::BodyTooLarge { status, .. } => Observed::Reply {
                status: status.as_u16(),
                code: None,
            },
            e if e.is_connect() || e.is_refused_locally() => Observed::NotSent,
            Error::Timeout { .. } => Observed::Timeout,
            Error::OperationFailed { .. } => Observed::PollState(LastOperationState::Failed),
            Error::PollDeadline { .. } => Observed::PollDeadline,
            _ => Observed::ReplyLost,
        }
    }

    /// What waiting for the operation shows.
    pub fn from_poll(result: &Result<PollOutcome, Error>) -> Self {
        match result {
            Ok(PollOutcome::Succeeded(_)) => Observed::PollState(LastOperationState::Succeeded),
            Ok(PollOutcome::Failed(_)) => Observed::PollState(LastOperationState::Failed),
            Ok(PollOutcome::Gone) => Observed::PollGone,
            Ok(PollOutcome::NotFound) => Observed::PollNotFound,
            Ok(PollOutcome::DeadlineExceeded { .. }) => Observed::PollDeadline,
            Err(_) => Observed::PollError,
        }
    }
}

/// Decides whether `operation`, having shown `observed`, leaves something to delete.
///
/// This is the decision table of OSB v2.17 (“Orphan Mitigation”) with Cloud
/// Controller's refinement for unknown `422` errors, as a pure function. Every row:
///
/// | Request | Observed | Clean up |
/// |---|---|---|
/// | any | `200` (well-formed or malformed body) | no |
/// | any | `201` / `202` well-formed (also `201` to a delete: the spec's “any 201” row) | no |
/// | provision / bind | `201` or `202` with a malformed body (202: since 2.17) | instance / binding |
/// | provision / bind | `202` although `accepts_incomplete` was not sent (unusable, like a malformed 202) | instance / binding |
/// | deprovision / unbind | `202` with a malformed body | no (the spec lists only provision and bind) |
/// | provision / deprovision | other `2xx` (e.g. `204`, `203`) | instance |
/// | bind / unbind | other `2xx` | binding |
/// | deprovision / unbind | `410 Gone` | no (already deleted) |
/// | any | `408` (the request never reached the broker) | no |
/// | provision / bind | `422` with no error code or one the spec does not define (Cloud Controller) | instance / binding |
/// | any | other `4xx`, incl. `422` with a spec-defined code (`ConcurrencyError`, `AsyncRequired`, …) | no |
/// | provision / deprovision | `5xx` | instance |
/// | bind / unbind | `5xx` | binding |
/// | provision / bind | timeout, or the connection broke after sending | instance / binding |
/// | deprovision / unbind | timeout, or the connection broke after sending | no |
/// | any | not sent (connection refused, or refused by the client itself) | no |
/// | provision / deprovision | instance poll ends `failed`, or its deadline passes (counted as failed) | instance |
/// | bind / unbind | binding poll ends `failed`, or its deadline passes (counted as failed) | binding |
/// | any | poll ends `succeeded`, `410`, `404`, or with an error that stops polling | no |
/// | update | anything (other 2xx, 5xx, timeout, failed poll) | no |
/// | any | `1xx` / `3xx` (the client does not follow redirects: a `3xx` is [`Error::UnexpectedStatus`]) | no |
///
/// A body is *malformed* when the platform cannot use it (not a JSON object, or a needed field
/// such as `credentials` or `operation` mistyped); a mistyped optional field is set aside and
/// the reply is well-formed, so a working instance or binding is never deleted over it.
///
/// ```
/// use osb_client::{orphan_mitigation, Cleanup, Observed, OrphanOperation};
/// assert_eq!(orphan_mitigation(OrphanOperation::Provision, &Observed::Timeout), Cleanup::Instance);
/// assert_eq!(orphan_mitigation(OrphanOperation::Bind, &Observed::Reply { status: 503, code: None }), Cleanup::Binding);
/// assert_eq!(orphan_mitigation(OrphanOperation::Update, &Observed::Timeout), Cleanup::None);
/// ```
pub fn orphan_mitigation(operation: OrphanOperation, observed: &Observed) -> Cleanup {
    let (target, creates) = match operation {
        OrphanOperation::Provision => (Cleanup::Instance, true),
        OrphanOperation::Deprovision => (Cleanup::Instance, false),
        OrphanOperation::Bind => (Cleanup::Binding, true),
        OrphanOperation::Unbind => (Cleanup::Binding, false),
        OrphanOperation::Update => return Cleanup::None,
    };
    let needed = match observed {
        Observed::Reply { status, code } => match status {
            200..=202 => false,
            410 if !creates => false,
            203..=299 => true,
            408 => false,
            422 if creates => !code.as_ref().is_some_and(ErrorCode::is_known),
            400..=499 => false,
            500..=599 => true,
            _ => false,
        },
        Observed::MalformedReply { status } => match status {
            200 => false,
            201 | 202 => creates,
            203..=299 => true,
            other => {
                return orphan_mitigation(
                    operation,
                    &Observed::Reply {
                        status: *other,
                        code: None,
                    },
                );
            }
        },
        Observed::Timeout | Observed::ReplyLost => creates,
        Observed::NotSent => false,
        Observed::PollState(state) => *state == LastOperationState::Failed,
        Observed::PollDeadline => true,
        Observed::PollGone | Observed::PollNotFound | Observed::PollError => false,
    };
    if needed { target } else { Cleanup::None }
}

/// [`orphan_mitigation`] for a request's result.
///
/// ```
/// use osb_client::{orphan_mitigation_for, Cleanup, OrphanOperation};
/// use osb_types::DeleteOutcome;
/// let result: Result<DeleteOutcome, osb_client::Error> = Ok(DeleteOutcome::Gone);
/// assert_eq!(orphan_mitigation_for(OrphanOperation::Deprovision, &result), Cleanup::None);
/// ```
pub fn orphan_mitigation_for<T: Outcome>(
    operation: OrphanOperation,
    result: &Result<T, Error>,
) -> Cleanup {
    orphan_mitigation(operation, &Observed::from_result(result))
}

/// What [`Client::cleanup_orphan`] deletes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrphanTarget {
    /// A service instance.
    Instance {
        /// The instance.
        instance_id: InstanceId,
        /// Its offering.
        service_id: ServiceId,
        /// Its plan.
        plan_id: PlanId,
    },
    /// A service binding.
    Binding {
        /// The instance of the binding.
        instance_id: InstanceId,
        /// The binding.
        binding_id: BindingId,
        /// The instance's offering.
        service_id: ServiceId,
        /// The instance's plan.
        plan_id: PlanId,
    },
}

impl OrphanTarget {
    /// A service instance to deprovision.
    pub fn instance(
        instance_id: impl Into<InstanceId>,
        service_id: impl Into<ServiceId>,
        plan_id: impl Into<PlanId>,
    ) -> Self {
        OrphanTarget::Instance {
            instance_id: instance_id.into(),
            service_id: service_id.into(),
            plan_id: plan_id.into(),
        }
    }

    /// A service binding to unbind.
    pub fn binding(
        instance_id: impl Into<InstanceId>,
        binding_id: impl Into<BindingId>,
        service_id: impl Into<ServiceId>,
        plan_id: impl Into<PlanId>,
    ) -> Self {
        OrphanTarget::Binding {
            instance_id: instance_id.into(),
            binding_id: binding_id.into(),
            service_id: service_id.into(),
            plan_id: plan_id.into(),
        }
    }
}

/// How hard [`Client::cleanup_orphan`] tries.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CleanupPolicy {
    /// How many delete requests to send at most (at least one is sent). Default 5.
    pub attempts: u32,
    /// Spacing of the retries (its backoff) and of the polls of an asynchronous delete, and the
    /// polling limit of each asynchronous delete.
    pub poll: PollPolicy,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            attempts: 5,
            poll: PollPolicy::default().max_duration(Duration::from_secs(60 * 60)),
        }
    }
}

impl CleanupPolicy {
    /// The defaults (5 attempts, default backoff, one hour per asynchronous delete).
    pub fn new() -> Self {
        CleanupPolicy::default()
    }

    /// Sets the number of attempts.
    #[must_use]
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// Sets the retry and polling policy.
    #[must_use]
    pub fn poll(mut self, poll: PollPolicy) -> Self {
        self.poll = poll;
        self
    }
}

/// How a cleanup ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CleanupOutcome {
    /// The broker deleted the resource (`200`, or an asynchronous delete that succeeded).
    Deleted {
        /// Delete requests sent.
        attempts: u32,
    },
    /// The broker does not have the resource (`410`, or `404` while polling the delete).
    Gone {
        /// Delete requests sent.
        attempts: u32,
    },
}

impl Client {
    /// Deletes a suspected orphan: deprovisions the instance or unbinds the binding, retrying
    /// with backoff until the broker reports success or `410 Gone`, or the attempts run out.
    ///
    /// Requests go out with `accepts_incomplete=true` (asynchronous deletes are polled to the
    /// end) and without an originating identity, as no user asked for them. Returns the last
    /// error when every attempt failed, or at once when retrying cannot help: the client refuses
    /// the request, or the broker answers `400`, `401`, `403` or `412`.
    #[doc(alias = "orphan_mitigation")]
    pub async fn cleanup_orphan(
        &self,
        target: &OrphanTarget,
        policy: &CleanupPolicy,
    ) -> Result<CleanupOutcome, Error> {
        let opts = CallOptions::new().without_originating_identity();
        let attempts = policy.attempts.max(1);
        let mut last_error = None;
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(policy.poll.delay(attempt - 2, None, SystemTime::now())).await;
            }
            match self.delete_orphan(target, &opts, policy).await {
                Ok(Deleted::Deleted) => return Ok(CleanupOutcome::Deleted { attempts: attempt }),
                Ok(Deleted::Gone) => return Ok(CleanupOutcome::Gone { attempts: attempt }),
                Err(e) if retrying_cannot_help(&e) => return Err(e),
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "orphan cleanup attempt failed");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or(Error::PollDeadline { last: None }))
    }

    async fn delete_orphan(
        &self,
        target: &OrphanTarget,
        opts: &CallOptions,
        policy: &CleanupPolicy,
    ) -> Result<Deleted, Error> {
        let outcome = match target {
            OrphanTarget::Instance {
                instance_id,
                service_id,
                plan_id,
            } => {
                let query =
                    DeprovisionQuery::new(service_id, plan_id).with_accepts_incomplete(true);
                match self.deprovision(instance_id, &query, opts).await? {
                    DeleteOutcome::Accepted(accepted) => {
                        let mut poll = InstanceLastOperationQuery::new()
                            .with_service_id(service_id)
                            .with_plan_id(plan_id);
                        if let Some(op) = accepted.operation() {
                            poll = poll.with_operation(op);
                        }
                        self.wait_for_instance_operation(instance_id, &poll, OperationKind::Delete)
                            .policy(policy.poll.clone())
                            .call_options(opts.clone())
                            .await?
                    }
                    other => return Ok(Deleted::from_delete(&other)),
                }
            }
            OrphanTarget::Binding {
                instance_id,
                binding_id,
                service_id,
                plan_id,
            } => {
                let mut query = UnbindQuery::new(service_id, plan_id);
                if self.api_version() >= UnbindQuery::ACCEPTS_INCOMPLETE_SINCE {
                    query = query.with_accepts_incomplete(true);
                }
                match self.unbind(instance_id, binding_id, &query, opts).await? {
                    DeleteOutcome::Accepted(accepted) => {
                        let mut poll = BindingLastOperationQuery::new()
                            .with_service_id(service_id)
                            .with_plan_id(plan_id);
                        if let Some(op) = accepted.operation() {
                            poll = poll.with_operation(op);
                        }
                        self.wait_for_binding_operation(
                            instance_id,
                            binding_id,
                            &poll,
                            OperationKind::Delete,
                        )
                        .policy(policy.poll.clone())
                        .call_options(opts.clone())
                        .await?
                    }
                    other => return Ok(Deleted::from_delete(&other)),
                }
            }
        };
        match outcome {
            PollOutcome::Succeeded(_) => Ok(Deleted::Deleted),
            PollOutcome::Gone | PollOutcome::NotFound => Ok(Deleted::Gone),
            PollOutcome::Failed(resource) => Err(Error::OperationFailed {
                resource: Box::new(resource),
            }),
            PollOutcome::DeadlineExceeded { last } => Err(Error::PollDeadline {
                last: last.map(Box::new),
            }),
        }
    }
}

/// Errors a cleanup gives up on at once: requests the client refuses, and replies saying the
/// request itself is wrong (`400`), its credentials are (`401`, `403`) or its version is (`412`),
/// which the next attempt would repeat. `422 ConcurrencyError` and `5xx` are worth waiting out.
fn retrying_cannot_help(e: &Error) -> bool {
    e.is_refused_locally() || matches!(e.status().map(|s| s.as_u16()), Some(400 | 401 | 403 | 412))
}

enum Deleted {
    Deleted,
    Gone,
}

impl Deleted {
    fn from_delete(outcome: &DeleteOutcome) -> Self {
        match outcome {
            DeleteOutcome::Gone => Deleted::Gone,
            _ => Deleted::Deleted,
        }
    }
}
