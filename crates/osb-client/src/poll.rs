//! Waiting for asynchronous operations: last-operation polling with `Retry-After`, backoff and a
//! deadline.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use http::StatusCode;
use osb_types::{
    BindingId, BindingLastOperationQuery, InstanceId, InstanceLastOperationQuery,
    LastOperationOutcome, LastOperationResource, LastOperationState, OperationId, Plan, RetryAfter,
};

use crate::client::{CallOptions, Client};
use crate::error::Error;

/// How long a poll made at (or just before) the deadline may still take to be answered.
const LAST_POLL_GRACE: Duration = Duration::from_secs(2);

/// How the poller spaces its requests and when it gives up.
///
/// Without `Retry-After`, the wait before poll *n* (0-based) is `min_delay × multiplierⁿ`, capped
/// at `max_delay`. With `Retry-After` (seconds or an HTTP date), the broker's delay is used
/// instead, raised to `min_delay` and capped at `max_retry_after`. No wait runs past the deadline,
/// and a poll in flight is abandoned at the deadline (one made at the deadline gets 2 s).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use osb_client::PollPolicy;
/// use osb_types::RetryAfter;
/// let policy = PollPolicy::new()
///     .min_delay(Duration::from_secs(2))
///     .max_delay(Duration::from_secs(30));
/// let now = SystemTime::now();
/// assert_eq!(policy.delay(0, None, now), Duration::from_secs(2));
/// assert_eq!(policy.delay(1, None, now), Duration::from_secs(4));
/// assert_eq!(policy.delay(10, None, now), Duration::from_secs(30));
/// assert_eq!(policy.delay(10, Some(&RetryAfter::seconds(90)), now), Duration::from_secs(90));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PollPolicy {
    /// The shortest wait between polls (the backoff floor). Default 1 s.
    pub min_delay: Duration,
    /// The longest wait the backoff reaches (the cap). Default 60 s.
    pub max_delay: Duration,
    /// The backoff factor between consecutive waits. Default 2.
    pub multiplier: f64,
    /// The longest `Retry-After` honoured. Default 24 h (Cloud Controller's cap).
    pub max_retry_after: Duration,
    /// The platform's own polling limit; the plan's `maximum_polling_duration` and the caller's
    /// limit can only shorten it. Default 7 days (Cloud Controller's default).
    pub max_duration: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            multiplier: 2.0,
            max_retry_after: Duration::from_secs(24 * 60 * 60),
            max_duration: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

impl PollPolicy {
    /// The defaults (1 s floor, 60 s cap, factor 2, `Retry-After` up to 24 h, 7-day limit).
    pub fn new() -> Self {
        PollPolicy::default()
    }

    /// Sets the backoff floor.
    #[must_use]
    pub fn min_delay(mut self, delay: Duration) -> Self {
        self.min_delay = delay;
        self
    }

    /// Sets the backoff cap.
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets the backoff factor (values below 1 are treated as 1).
    #[must_use]
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets the longest `Retry-After` honoured.
    #[must_use]
    pub fn max_retry_after(mut self, delay: Duration) -> Self {
        self.max_retry_after = delay;
        self
    }

    /// Sets the platform's polling limit.
    #[must_use]
    pub fn max_duration(mut self, duration: Duration) -> Self {
        self.max_duration = duration;
        self
    }

    /// The wait before poll number `attempt` (0-based), given the last `Retry-After`.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<&RetryAfter>,
        now: SystemTime,
    ) -> Duration {
        if let Some(retry_after) = retry_after {
            return retry_after
                .delay_from(now)
                .max(self.min_delay)
                .min(self.max_retry_after.max(self.min_delay));
        }
        let cap = self.max_delay.max(self.min_delay);
        let factor = if self.multiplier.is_finite() && self.multiplier > 1.0 {
            self.multiplier
        } else {
            1.0
        };
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let seconds = self.min_delay.as_secs_f64() * factor.powi(exponent);
        Duration::try_from_secs_f64(seconds).map_or(cap, |d| d.min(cap))
    }
}

/// What the operation being polled is, which decides how `410 Gone` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationKind {
    /// Provision or bind: `410 Gone` is an invalid reply, polling goes on.
    Create,
    /// Update: `410 Gone` is an invalid reply, polling goes on.
    Update,
    /// Deprovision or unbind: `410 Gone` means the resource is gone, the delete succeeded.
    Delete,
}

/// How waiting for an operation ended.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PollOutcome {
    /// The broker reports `succeeded`.
    Succeeded(LastOperationResource),
    /// The broker reports `failed`.
    Failed(LastOperationResource),
    /// `410 Gone` while polling a delete: the delete succeeded. A `404 Not Found` while polling
    /// a delete means the same (nothing is left) and is reported as `Gone` too.
    Gone,
    /// `404 Not Found` while polling a create or an update: the broker does not know the
    /// instance or binding.
    NotFound,
    /// The deadline passed before the operation finished. The spec says to count the operation
    /// as failed.
    DeadlineExceeded {
        /// The last state the broker reported, if any reply was valid.
        last: Option<LastOperationResource>,
    },
}

impl PollOutcome {
    /// Whether the operation finished successfully (`Succeeded`, or `Gone` after a delete).
    ///
    /// ```
    /// use osb_client::PollOutcome;
    /// assert!(PollOutcome::Gone.is_success());
    /// assert!(!PollOutcome::NotFound.is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        matches!(self, PollOutcome::Succeeded(_) | PollOutcome::Gone)
    }

    /// The last-operation body, when the broker reported a final state.
    pub fn resource(&self) -> Option<&LastOperationResource> {
        match self {
            PollOutcome::Succeeded(r) | PollOutcome::Failed(r) => Some(r),
            PollOutcome::DeadlineExceeded { last } => last.as_ref(),
            _ => None,
        }
    }
}

/// A progress report after each poll, for drawing a progress line.
#[derive(Debug)]
#[non_exhaustive]
pub struct PollProgress<'a> {
    /// How many polls were made so far (1 after the first).
    pub attempt: u32,
    /// Time since waiting began.
    pub elapsed: Duration,
    /// The last state the broker reported, if any reply so far was valid.
    pub state: Option<&'a LastOperationState>,
    /// The last description the broker gave.
    pub description: Option<&'a str>,
    /// The `Retry-After` of this reply, if any.
    pub retry_after: Option<&'a RetryAfter>,
    /// Why this poll did not count (an invalid reply, a transport error, …); polling goes on.
    pub invalid_reply: Option<&'a Error>,
    /// The wait before the next poll, or `None` when waiting is over.
    pub next_delay: Option<Duration>,
}

type ProgressFn<'a> = Box<dyn FnMut(&PollProgress<'_>) + Send + 'a>;

enum Target {
    Instance {
        instance_id: InstanceId,
        query: InstanceLastOperationQuery,
    },
    Binding {
        instance_id: InstanceId,
        binding_id: BindingId,
        query: BindingLastOperationQuery,
    },
}

/// A wait for an asynchronous operation; configure it, then `.await` it.
///
/// Created by [`Client::wait_for_instance_operation`] and [`Client::wait_for_binding_operation`].
/// Dropping the future cancels the wait; no request is sent after that.
///
/// Polling goes on through `in progress`, invalid replies (other status codes, bodies that do not
/// decode, `410` outside a delete), `5xx` and transport errors, until a final state, `410` on a
/// delete, `404`, the deadline, or an error that repeating cannot fix (`400 Bad Request`, or a
/// request the client refuses to send).
#[must_use = "a wait does nothing until it is awaited"]
pub struct WaitForOperation<'a> {
    client: Client,
    target: Target,
    kind: OperationKind,
    policy: PollPolicy,
    max_duration: Option<Duration>,
    opts: CallOptions,
    progress: Option<ProgressFn<'a>>,
}

impl fmt::Debug for WaitForOperation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForOperation")
            .field("kind", &self.kind)
            .field("policy", &self.policy)
            .field("max_duration", &self.max_duration)
            .finish_non_exhaustive()
    }
}

impl<'a> WaitForOperation<'a> {
    fn new(client: &Client, target: Target, kind: OperationKind) -> Self {
        WaitForOperation {
            client: client.clone(),
            target,
            kind,
            policy: PollPolicy::default(),
            max_duration: None,
            opts: CallOptions::default(),
            progress: None,
        }
    }

    /// Uses this polling policy.
    pub fn policy(mut self, policy: PollPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Stops after `duration` at the latest (the shortest of this, the plan's and the policy's
    /// limit applies).
    pub fn max_duration(mut self, duration: Duration) -> Self {
        self.max_duration = Some(self.max_duration.map_or(duration, |d| d.min(duration)));
        self
    }

    /// Applies the plan's `maximum_polling_duration` (seconds), if it has one.
    pub fn plan(self, plan: &Plan) -> Self {
        match plan
            .maximum_polling_duration
            .and_then(|s| u64::try_from(s).ok())
        {
            Some(seconds) => self.max_duration(Duration::from_secs(seconds)),
            None => self,
        }
    }

    /// Options for each poll request (e.g. no originating identity).
    pub fn call_options(mut self, opts: CallOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Calls `progress` after every poll.
    pub fn on_progress(mut self, progress: impl FnMut(&PollProgress<'_>) + Send + 'a) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }

    async fn run(self) -> Result<PollOutcome, Error> {
        let WaitForOperation {
            client,
            target,
            kind,
            policy,
            max_duration,
            opts,
            progress,
        } = self;
        let mut progress = Reporter {
            progress,
            started: Instant::now(),
        };
        let started = progress.started;
        let limit = max_duration.map_or(policy.max_duration, |d| d.min(policy.max_duration));
        let deadline = started.checked_add(limit);
        let remaining =
            |now: Instant| deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(now));
        let mut last: Option<LastOperationResource> = None;
        let mut delay = policy.delay(0, None, SystemTime::now()).min(limit);
        let mut attempt: u32 = 0;
        loop {
            tokio::time::sleep(delay).await;
            attempt = attempt.saturating_add(1);
            // A poll may take no longer than the time left (the poll at the deadline gets a
            // short grace to answer): a broker that does not answer cannot hold the wait past
            // its deadline.
            let allowed = remaining(Instant::now()).max(LAST_POLL_GRACE);
            let Ok(result) =
                tokio::time::timeout(allowed, poll_once(&client, &target, &opts)).await
            else {
                progress.report(attempt, last.as_ref(), None, None, None);
                return Ok(PollOutcome::DeadlineExceeded { last });
            };
            let mut retry_after = None;
            let mut invalid = None;
            let done = match result {
                Ok(LastOperationOutcome::State(op)) => {
                    retry_after = op.retry_after;
                    match op.resource.state {
                        LastOperationState::Succeeded => Some(PollOutcome::Succeeded(op.resource)),
                        LastOperationState::Failed => Some(PollOutcome::Failed(op.resource)),
                        _ => {
                            last = Some(op.resource);
                            None
                        }
                    }
                }
                Ok(LastOperationOutcome::Gone | LastOperationOutcome::NotFound)
                    if kind == OperationKind::Delete =>
                {
                    Some(PollOutcome::Gone)
                }
                Ok(LastOperationOutcome::Gone) => {
                    invalid = Some(Error::UnexpectedStatus {
                        status: StatusCode::GONE,
                        body: Default::default(),
                    });
                    None
                }
                Ok(LastOperationOutcome::NotFound) => Some(PollOutcome::NotFound),
                Ok(_) => None,
                Err(e) if is_final(&e) => {
                    progress.report(attempt, last.as_ref(), None, Some(&e), None);
                    return Err(e);
                }
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "invalid last-operation reply; polling goes on");
                    invalid = Some(e);
                    None
                }
            };
            if let Some(outcome) = done {
                // The final state, or after `410` / `404` the last state seen before.
                let state = outcome.resource().or(last.as_ref());
                progress.report(attempt, state, retry_after.as_ref(), invalid.as_ref(), None);
                return Ok(outcome);
            }
            let now = Instant::now();
            let left = remaining(now);
            if left.is_zero() {
                progress.report(
                    attempt,
                    last.as_ref(),
                    retry_after.as_ref(),
                    invalid.as_ref(),
                    None,
                );
                return Ok(PollOutcome::DeadlineExceeded { last });
            }
            delay = policy
                .delay(attempt, retry_after.as_ref(), SystemTime::now())
                .min(left);
            progress.report(
                attempt,
                last.as_ref(),
                retry_after.as_ref(),
                invalid.as_ref(),
                Some(delay),
            );
        }
    }
}

async fn poll_once(
    client: &Client,
    target: &Target,
    opts: &CallOptions,
) -> Result<LastOperationOutcome, Error> {
    match target {
        Target::Instance { instance_id, query } => {
            client
                .instance_last_operation(instance_id, query, opts)
                .await
        }
        Target::Binding {
            instance_id,
            binding_id,
            query,
        } => {
            client
                .binding_last_operation(instance_id, binding_id, query, opts)
                .await
        }
    }
}

struct Reporter<'a> {
    progress: Option<ProgressFn<'a>>,
    started: Instant,
}

impl Reporter<'_> {
    fn report(
        &mut self,
        attempt: u32,
        last: Option<&LastOperationResource>,
        retry_after: Option<&RetryAfter>,
        invalid_reply: Option<&Error>,
        next_delay: Option<Duration>,
    ) {
        if let Some(progress) = self.progress.as_mut() {
            progress(&PollProgress {
                attempt,
                elapsed: self.started.elapsed(),
                state: last.map(|r| &r.state),
                description: last.and_then(|r| r.description.as_deref()),
                retry_after,
                invalid_reply,
                next_delay,
            });
        }
    }
}

/// An empty operation token is no token (a `202` may carry `"operation": ""`).
fn drop_empty(operation: &mut Option<OperationId>) {
    if operation.as_ref().is_some_and(|op| op.as_str().is_empty()) {
        *operation = None;
    }
}

/// Errors that polling again cannot fix.
fn is_final(e: &Error) -> bool {
    e.is_refused_locally() || e.status() == Some(StatusCode::BAD_REQUEST)
}

impl<'a> IntoFuture for WaitForOperation<'a> {
    type Output = Result<PollOutcome, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<PollOutcome, Error>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl Client {
    /// Waits for an asynchronous operation on a service instance by polling its last operation.
    ///
    /// `query` carries the `operation` token from the `202` reply and the `service_id` /
    /// `plan_id` hints (after a plan change, the *old* plan). `kind` decides how `410 Gone` reads.
    /// An empty `operation` is no token: the polls go without the `operation` parameter.
    ///
    /// ```no_run
    /// # async fn demo(client: osb_client::Client, plan: osb_types::Plan) -> Result<(), osb_client::Error> {
    /// use osb_client::{OperationKind, PollOutcome};
    /// use osb_types::{InstanceId, InstanceLastOperationQuery};
    /// let id = InstanceId::new("instance-1");
    /// let query = InstanceLastOperationQuery::new().with_operation("op-42");
    /// let outcome = client
    ///     .wait_for_instance_operation(&id, &query, OperationKind::Create)
    ///     .plan(&plan)
    ///     .on_progress(|p| eprintln!("#{} {:?} next in {:?}", p.attempt, p.state, p.next_delay))
    ///     .await?;
    /// assert!(matches!(outcome, PollOutcome::Succeeded(_)));
    /// # Ok(()) }
    /// ```
    pub fn wait_for_instance_operation<'a>(
        &self,
        instance_id: &InstanceId,
        query: &InstanceLastOperationQuery,
        kind: OperationKind,
    ) -> WaitForOperation<'a> {
        let mut query = query.clone();
        drop_empty(&mut query.operation);
        let target = Target::Instance {
            instance_id: instance_id.clone(),
            query,
        };
        WaitForOperation::new(self, target, kind)
    }

    /// Waits for an asynchronous operation on a service binding by polling its last operation.
    ///
    /// An empty `operation` in `query` is no token: the polls go without the `operation`
    /// parameter.
    pub fn wait_for_binding_operation<'a>(
        &self,
        instance_id: &InstanceId,
        binding_id: &BindingId,
        query: &BindingLastOperationQuery,
        kind: OperationKind,
    ) -> WaitForOperation<'a> {
        let mut query = query.clone();
        drop_empty(&mut query.operation);
        let target = Target::Binding {
            instance_id: instance_id.clone(),
            binding_id: binding_id.clone(),
            query,
        };
        WaitForOperation::new(self, target, kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_from_the_floor_to_the_cap() {
        let p = PollPolicy::new()
            .min_delay(Duration::from_millis(10))
            .max_delay(Duration::from_millis(70))
            .multiplier(2.0);
        let now = SystemTime::now();
        let delays: Vec<u128> = (0..5).map(|n| p.delay(n, None, now).as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 70, 70]);
        assert_eq!(p.delay(u32::MAX, None, now), Duration::from_millis(70));
        let flat = p.clone().multiplier(f64::NAN);
        assert_eq!(flat.delay(3, None, now), Duration::from_millis(10));
    }

    #[test]
    fn retry_after_wins_within_floor_and_cap() {
        let p = PollPolicy::new()
            .min_delay(Duration::from_secs(1))
            .max_retry_after(Duration::from_secs(100));
        let now = SystemTime::now();
        assert_eq!(
            p.delay(0, Some(&RetryAfter::seconds(30)), now),
            Duration::from_secs(30)
        );
        assert_eq!(
            p.delay(0, Some(&RetryAfter::seconds(0)), now),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.delay(0, Some(&RetryAfter::seconds(5000)), now),
            Duration::from_secs(100)
        );
        let at = RetryAfter::At(now + Duration::from_secs(20));
        assert_eq!(p.delay(0, Some(&at), now), Duration::from_secs(20));
        let past = RetryAfter::At(now - Duration::from_secs(20));
        assert_eq!(p.delay(0, Some(&past), now), Duration::from_secs(1));
    }
}
