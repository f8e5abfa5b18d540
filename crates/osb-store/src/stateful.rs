//! [`Stateful`]: a [`ServiceBroker`] built from a [`Backend`] and a [`Store`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use http::StatusCode;
use osb_server::types::{
    AsyncPermit, BindOutcome, BindingId, BindingLastOperationQuery, Catalog, DeleteOutcome,
    DeprovisionQuery, FetchBindingOutcome, FetchBindingQuery, FetchInstanceOutcome,
    FetchInstanceQuery, InstanceId, InstanceLastOperationQuery, LastOperationOutcome, OperationId,
    Plan, ProvisionOutcome, ServiceBindingRequest, ServiceBindingResource, ServiceBindingResponse,
    ServiceInstanceProvisionRequest, ServiceInstanceProvisionResponse, ServiceInstanceResource,
    ServiceInstanceUpdateRequest, ServiceInstanceUpdateResponse, UnbindQuery, UpdateOutcome,
};
use osb_server::{BrokerError, RequestContext, ServiceBroker};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{oneshot, watch};

use crate::StoreError;
use crate::backend::Backend;
use crate::record::{
    Key, Millis, OperationKind, OperationRecord, OperationState, ResourceRecord, ResourceState,
    Snapshot, Write, fingerprint, now_millis,
};
use crate::store::Store;

/// What happens to operations that an earlier process left in progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestartPolicy {
    /// Run the backend call again (the default; [`Backend`] calls must be idempotent).
    #[default]
    Resume,
    /// Fail the operation, with a description saying the broker restarted.
    Fail,
}

/// How the stateful layer answers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StatefulConfig {
    /// How long a request that allows asynchronous work (`accepts_incomplete=true`) waits for
    /// the backend before it is answered `202`. Default 5 s.
    pub sync_budget: Duration,
    /// The `Retry-After` sent with an operation in progress. Default 1 s.
    pub retry_after: Duration,
    /// How long a worker holds an operation without renewing its lease; after it, another
    /// worker takes the operation over. Default 30 s.
    pub lease: Duration,
    /// How long a finished operation stays answerable by last operation; after it, a deleted
    /// resource answers `410 Gone`. Default 1 h.
    pub retention: Duration,
    /// How often the worker looks for operations to take over and purges old ones. Default 1 s.
    pub worker_interval: Duration,
    /// What happens to operations left in progress by an earlier process.
    pub restart: RestartPolicy,
}

impl Default for StatefulConfig {
    fn default() -> Self {
        StatefulConfig {
            sync_budget: Duration::from_secs(5),
            retry_after: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            retention: Duration::from_secs(3600),
            worker_interval: Duration::from_secs(1),
            restart: RestartPolicy::Resume,
        }
    }
}

macro_rules! setters {
    ($($field:ident: $ty:ty => $name:ident),* $(,)?) => {$(
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        }
    )*};
}

impl StatefulConfig {
    setters! {
        sync_budget: Duration => sync_budget,
        retry_after: Duration => retry_after,
        lease: Duration => lease,
        retention: Duration => retention,
        worker_interval: Duration => worker_interval,
        restart: RestartPolicy => restart,
    }
}

/// The work of an operation, stored with it so that any worker can run it again.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "work", rename_all = "snake_case")]
enum Work {
    CreateInstance {
        request: ServiceInstanceProvisionRequest,
    },
    UpdateInstance {
        request: ServiceInstanceUpdateRequest,
    },
    DeleteInstance {
        previous: String,
    },
    CreateBinding {
        request: ServiceBindingRequest,
    },
    DeleteBinding {
        previous: String,
    },
}

impl Work {
    fn kind(&self) -> OperationKind {
        match self {
            Work::CreateInstance { .. } | Work::CreateBinding { .. } => OperationKind::Create,
            Work::UpdateInstance { .. } => OperationKind::Update,
            Work::DeleteInstance { .. } | Work::DeleteBinding { .. } => OperationKind::Delete,
        }
    }
}

/// What a finished backend call produced.
#[derive(Debug)]
enum Done {
    /// The reply body of a create.
    Created(Value),
    /// The reply body of an update.
    Updated(Value),
    Deleted,
}

/// Whether the platform is still waiting for the answer of the request that started an
/// operation: a failure it is told about leaves nothing behind, one it polls for stays visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Finishing,
    Async,
}

/// Where a started operation stands. `phase` also keeps the commit of a create held in memory
/// and the storing of its operation from interleaving.
#[derive(Debug)]
struct Progress {
    phase: tokio::sync::Mutex<Phase>,
    /// Whether the operation is in the store: from the start, except for a create held in
    /// memory until it outlives a request's synchronous budget.
    stored: AtomicBool,
    /// What stores the operation of a create held in memory (its resource being created and
    /// the operation in progress).
    store_writes: Vec<Write>,
}

impl Progress {
    fn stored(phase: Phase) -> Arc<Progress> {
        Arc::new(Progress {
            phase: tokio::sync::Mutex::new(phase),
            stored: AtomicBool::new(true),
            store_writes: Vec::new(),
        })
    }

    fn is_stored(&self) -> bool {
        self.stored.load(Ordering::Acquire)
    }
}

/// How a create held in memory ended, for identical requests that waited for it.
#[derive(Clone, Debug)]
enum Settled {
    /// Created, with this reply.
    Created(Option<Value>),
    /// Failed, with this description.
    Failed(String),
    /// Nothing to tell: ask the store.
    Retry,
}

/// A create held in memory (see [`Backend::commits_with_store`]).
#[derive(Debug)]
struct Claim {
    fingerprint: String,
    /// Its operation, as it is stored should it outlive a synchronous budget.
    op: OperationRecord,
    progress: Arc<Progress>,
    settled: watch::Receiver<Option<Settled>>,
}

/// Ends a [`Claim`]: removes it and tells the requests waiting for it how it ended (`Retry`
/// if dropped unsettled).
struct ClaimGuard<B, S> {
    inner: Arc<Inner<B, S>>,
    key: Key,
    op: OperationId,
    settle: Option<watch::Sender<Option<Settled>>>,
}

impl<B, S> ClaimGuard<B, S> {
    fn settle(mut self, settled: Settled) {
        self.end(settled);
    }

    fn end(&mut self, settled: Settled) {
        let Some(settle) = self.settle.take() else {
            return;
        };
        {
            let mut claims = self
                .inner
                .claims
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if claims.get(&self.key).is_some_and(|c| c.op.id == self.op) {
                claims.remove(&self.key);
            }
        }
        settle.send_replace(Some(settled));
    }
}

impl<B, S> Drop for ClaimGuard<B, S> {
    fn drop(&mut self) {
        self.end(Settled::Retry);
    }
}

/// A look at a [`Claim`]: its fingerprint, operation, progress and outcome.
type ClaimView = (
    String,
    OperationRecord,
    Arc<Progress>,
    watch::Receiver<Option<Settled>>,
);

/// A create begun in memory: its verdict, with the claim when it is to run.
type Begun<B, S> = (Begin, Option<(Arc<Progress>, ClaimGuard<B, S>)>);

/// What a create answers.
enum Created {
    /// Created now, with this reply.
    New(Value),
    /// It exists as asked (its stored reply).
    Existing(Option<Value>),
    /// Accepted: poll this operation.
    Accepted(OperationId),
}

/// A stored operation whose execution has started: what the request that started it waits on.
#[derive(Debug)]
struct Launch {
    key: Key,
    progress: Arc<Progress>,
    done: oneshot::Receiver<Result<Done, BrokerError>>,
    /// Answered `202` at once (an asynchronous plan, and the request allows it).
    immediate: bool,
}

/// The outcome of starting work on a resource.
#[derive(Debug)]
enum Begin {
    /// New work, to run.
    Started(OperationRecord, Box<Work>),
    /// New work, stored and running ([`Inner::begin_launched`]).
    Launched(OperationRecord, Launch),
    /// Identical work is running.
    Running(OperationRecord),
    /// The resource exists as asked (its stored reply).
    Exists(Option<Value>),
    /// Gone already (delete).
    Gone,
    /// Exists with other attributes.
    Conflict,
    /// Another operation runs on it.
    Busy(String),
    /// It does not exist (update).
    Missing,
}

/// A [`ServiceBroker`] that keeps its state in a [`Store`] and does its work through a
/// [`Backend`].
///
/// Per the spec, and the same for every broker built on it:
///
/// - **Repeats.** A create (provision, bind) is fingerprinted over every attribute of the
///   request (ids, plan, `parameters` — absent counts as `{}` —, the context, organization and
///   space, `maintenance_info`, `bind_resource`, `app_guid`, the predecessor). An identical
///   repeat of a finished create answers `200` with the stored reply (the same credentials); of
///   a running one, `202` with the **same** operation (or, on a synchronous plan, `200` once it
///   finishes); a different request for the same id answers `409`. The context counts except
///   its `instance_name` and `*_annotations`, which platforms change without asking for
///   anything else.
/// - **`422 ConcurrencyError`** while another operation runs on the resource: an update or a
///   delete during a create, a create or update during a delete, a bind on an instance being
///   created or deleted. An identical update or delete while its twin runs answers `202` with
///   that operation.
/// - **Asynchronous on the broker's terms**: plans [`Backend::is_async`] names answer `202` at
///   once (and `422 AsyncRequired` without `accepts_incomplete=true`); on other plans, a call
///   that outlives [`StatefulConfig::sync_budget`] answers `202` when the request allows it,
///   and is waited for otherwise.
/// - **Last operation** from the store, with `Retry-After` while in progress and the failure's
///   description. A finished operation is kept for [`StatefulConfig::retention`]; after it, a
///   deleted resource answers `410 Gone`.
/// - **Fetches** from the store: `404` while a resource is being created, `422
///   ConcurrencyError` while an instance is being updated.
/// - **Deadlines**: an operation past its plan's `maximum_polling_duration` is failed, with a
///   description.
/// - **Durable execution**: operations are rows held by a worker under a lease that it renews
///   while the backend works. An operation whose worker died (or whose process restarted) is
///   taken over once the lease runs out and run again ([`RestartPolicy::Resume`]) or failed
///   ([`RestartPolicy::Fail`]): never "in progress" forever.
/// - **Nothing half-written**: a write is committed before the platform is answered; a failed
///   synchronous create leaves no resource behind; a store that cannot be reached answers `503`
///   with an OSB body.
///
/// Cloning is cheap (one `Arc`); the worker runs on the Tokio runtime `new` is called in, as
/// long as a clone is alive.
pub struct Stateful<B, S> {
    inner: Arc<Inner<B, S>>,
}

impl<B, S> Clone for Stateful<B, S> {
    fn clone(&self) -> Self {
        Stateful {
            inner: self.inner.clone(),
        }
    }
}

impl<B, S> std::fmt::Debug for Stateful<B, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stateful")
            .field("owner", &self.inner.owner)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner<B, S> {
    backend: B,
    store: S,
    config: StatefulConfig,
    /// This process's worker id (the owner of its leases).
    owner: String,
    /// Whether synchronous creates are held in memory until they are written with their
    /// outcome ([`Backend::commits_with_store`] on a [`Store::single_process`] store).
    in_memory: bool,
    /// The creates held in memory now.
    claims: Mutex<BTreeMap<Key, Claim>>,
}

/// How long a synchronous repeat waits for its running twin before `422 ConcurrencyError`.
const SYNCHRONOUS_TWIN_WAIT: Duration = Duration::from_secs(60);

fn millis(duration: Duration) -> Millis {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The store's failure as the platform sees it: `503` (retry later) when unavailable, `500`
/// otherwise.
fn unavailable(error: StoreError) -> BrokerError {
    match error {
        StoreError::Unavailable(reason) => {
            tracing::warn!(%reason, "the store is unavailable");
            BrokerError::failed(
                StatusCode::SERVICE_UNAVAILABLE,
                "The broker's store is unavailable; try again later.",
            )
        }
        other => BrokerError::internal(other),
    }
}

/// What an operation's failure says when polled; internal errors stay in the log.
fn describe(error: &BrokerError) -> String {
    match error {
        BrokerError::BadRequest { description }
        | BrokerError::NotFound { description }
        | BrokerError::Conflict { description }
        | BrokerError::UnprocessableEntity { description, .. } => description.clone(),
        BrokerError::Failed { body, .. } => body
            .description
            .clone()
            .unwrap_or_else(|| "The operation failed.".into()),
        BrokerError::NotSupported { operation } => {
            format!("The broker does not support {}.", operation.operation_id())
        }
        other => {
            tracing::error!(error = %other, "an operation failed");
            "The operation failed unexpectedly; the broker logged the error.".into()
        }
    }
}

/// The context as fingerprints count it: without the fields platforms change on their own.
fn counted_context<T: Serialize>(context: &Option<T>) -> Value {
    let mut value = serde_json::to_value(context).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.retain(|k, _| k != "instance_name" && !k.ends_with("_annotations"));
    }
    value
}

fn parameters_or_empty(parameters: &Option<Map<String, Value>>) -> Value {
    Value::Object(parameters.clone().unwrap_or_default())
}

fn provision_fingerprint(r: &ServiceInstanceProvisionRequest) -> String {
    fingerprint(&json!({
        "service_id": r.service_id, "plan_id": r.plan_id,
        "organization_guid": r.organization_guid, "space_guid": r.space_guid,
        "parameters": parameters_or_empty(&r.parameters),
        "context": counted_context(&r.context),
        "maintenance_info": r.maintenance_info,
    }))
}

fn update_fingerprint(r: &ServiceInstanceUpdateRequest) -> String {
    fingerprint(&json!({
        "service_id": r.service_id, "plan_id": r.plan_id, "parameters": r.parameters,
        "context": counted_context(&r.context), "maintenance_info": r.maintenance_info,
    }))
}

fn bind_fingerprint(r: &ServiceBindingRequest) -> String {
    fingerprint(&json!({
        "service_id": r.service_id, "plan_id": r.plan_id,
        "parameters": parameters_or_empty(&r.parameters),
        "context": counted_context(&r.context), "bind_resource": r.bind_resource,
        "app_guid": r.app_guid, "predecessor_binding_id": r.predecessor_binding_id,
    }))
}

fn deadline(plan: Option<&Plan>, now: Millis) -> Option<Millis> {
    let seconds = plan?.maximum_polling_duration?;
    Some(now.saturating_add(seconds.saturating_mul(1000)))
}

fn new_operation(
    key: &Key,
    work: &Work,
    fingerprint: String,
    owner: &str,
    lease: Duration,
    deadline: Option<Millis>,
) -> Result<OperationRecord, StoreError> {
    let now = now_millis();
    let mut buffer = uuid::Uuid::encode_buffer();
    let token = uuid::Uuid::new_v4()
        .simple()
        .encode_lower(&mut buffer)
        .to_string();
    Ok(OperationRecord {
        id: OperationId::from(format!("{}-{token}", work.kind().as_str())),
        key: key.clone(),
        kind: work.kind(),
        state: OperationState::InProgress,
        fingerprint,
        request: serde_json::to_value(work)?,
        description: None,
        owner: Some(owner.to_string()),
        lease_until: Some(now.saturating_add(millis(lease))),
        deadline,
        created_at: now,
        finished_at: None,
    })
}

impl<B: Backend, S: Store> Stateful<B, S> {
    /// The layer over `backend` and `store`. Starts the worker on the current Tokio runtime
    /// (so call it inside one), which takes over operations left in progress and purges
    /// finished ones older than the retention.
    pub fn new(backend: B, store: S, config: StatefulConfig) -> Self {
        let in_memory = backend.commits_with_store() && store.single_process();
        let inner = Arc::new(Inner {
            backend,
            store,
            config,
            owner: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            in_memory,
            claims: Mutex::new(BTreeMap::new()),
        });
        let weak = Arc::downgrade(&inner);
        let interval = inner.config.worker_interval;
        tokio::spawn(worker(weak, interval));
        Stateful { inner }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.inner.backend
    }

    /// One round of the worker: purges old operations, then takes over every operation no
    /// worker holds. Returns how many it took over. The worker runs this every
    /// [`StatefulConfig::worker_interval`]; tests call it to make a round happen now.
    pub async fn run_worker_once(&self) -> Result<usize, StoreError> {
        tick(&self.inner).await
    }
}

async fn worker<B: Backend, S: Store>(inner: Weak<Inner<B, S>>, interval: Duration) {
    loop {
        {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            if let Err(error) = tick(&inner).await {
                tracing::warn!(%error, "the operation worker could not read the store");
            }
        }
        tokio::time::sleep(interval).await;
    }
}

async fn tick<B: Backend, S: Store>(inner: &Arc<Inner<B, S>>) -> Result<usize, StoreError> {
    let now = now_millis();
    inner
        .store
        .purge(now.saturating_sub(millis(inner.config.retention)))
        .await?;
    let mut taken = 0;
    while let Some(op) = inner
        .store
        .claim(
            &inner.owner,
            now,
            now.saturating_add(millis(inner.config.lease)),
        )
        .await?
    {
        taken += 1;
        let work: Result<Work, _> = serde_json::from_value(op.request.clone());
        let failure = match (&work, inner.config.restart) {
            (Err(e), _) => Some(format!(
                "The operation's stored request does not decode ({e}); it cannot be resumed."
            )),
            (Ok(_), _) if op.deadline.is_some_and(|d| d < now) => Some(
                "The operation did not finish within the plan's maximum_polling_duration.".into(),
            ),
            (Ok(_), RestartPolicy::Fail) => {
                Some("The broker restarted while the operation was in progress.".into())
            }
            (Ok(_), RestartPolicy::Resume) => None,
        };
        match (work, failure) {
            (Ok(work), None) => {
                tracing::info!(operation = %op.id, "resuming an operation");
                let (tx, _rx) = oneshot::channel();
                tokio::spawn(inner.clone().execute(
                    op,
                    work,
                    Progress::stored(Phase::Async),
                    tx,
                    None,
                ));
            }
            (work, description) => {
                let description = description
                    .unwrap_or_else(|| "The operation's stored request does not decode.".into());
                tracing::warn!(operation = %op.id, %description, "failing an operation");
                inner.fail(&op, work.ok().as_ref(), description).await?;
            }
        }
        if taken >= 256 {
            break;
        }
    }
    Ok(taken)
}

impl<B: Backend, S: Store> Inner<B, S> {
    /// Runs the backend call of `op` while renewing its lease, records the result, and sends it
    /// to the request waiting for it (if any). A create held in memory (`claim`) is written
    /// with its result, unless it was stored meanwhile.
    async fn execute(
        self: Arc<Self>,
        op: OperationRecord,
        work: Work,
        progress: Arc<Progress>,
        tx: oneshot::Sender<Result<Done, BrokerError>>,
        claim: Option<ClaimGuard<B, S>>,
    ) {
        let renew = async {
            let every = (self.config.lease / 3).max(Duration::from_millis(10));
            loop {
                tokio::time::sleep(every).await;
                if !progress.is_stored() {
                    continue;
                }
                let until = now_millis().saturating_add(millis(self.config.lease));
                match self.store.renew(&op.id, &self.owner, until).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(error) => tracing::warn!(%error, "could not renew a lease"),
                }
            }
        };
        let result = tokio::select! {
            result = self.call(&op.key, &work) => result,
            () = renew => {
                tracing::warn!(operation = %op.id, "another worker took the operation over");
                return;
            }
        };
        let mut phase = progress.phase.lock().await;
        if *phase == Phase::Waiting {
            *phase = Phase::Finishing;
        }
        let answered_async = *phase == Phase::Async;
        let recorded = if progress.is_stored() {
            drop(phase);
            self.finish(&op, &work, &result, answered_async)
                .await
                .map(|()| true)
        } else {
            // Held in memory: written now, with the result, while `phase` keeps it from
            // being stored meanwhile.
            let recorded = self
                .finish_in_memory(&op, &work, &progress, &result, answered_async)
                .await;
            drop(phase);
            recorded
        };
        if let Some(claim) = claim {
            claim.settle(match (&recorded, &result) {
                (Ok(true), Ok(Done::Created(reply))) => Settled::Created(Some(reply.clone())),
                (Ok(true), Err(error)) => Settled::Failed(describe(error)),
                _ => Settled::Retry,
            });
        }
        let _ = tx.send(match recorded {
            Ok(true) => result,
            Ok(false) => Err(BrokerError::concurrency_error(
                "The resource changed while it was being created; retry.",
            )),
            Err(error) => {
                // The work is done but not recorded: an operation in the store stays in
                // progress and is run again (idempotently) once its lease runs out; one held
                // in memory was never acknowledged.
                tracing::error!(%error, operation = %op.id, "could not record a finished operation");
                Err(unavailable(error))
            }
        });
    }

    /// Writes a create held in memory with its result, in one transaction: the resource once
    /// created (no operation: none was announced), the failed operation once failed. `false` when the resource changed meanwhile (another
    /// writer of the store): nothing is written.
    async fn finish_in_memory(
        &self,
        op: &OperationRecord,
        work: &Work,
        progress: &Progress,
        result: &Result<Done, BrokerError>,
        answered_async: bool,
    ) -> Result<bool, StoreError> {
        let outcome = Outcome::of(result);
        let (op, work) = (op.clone(), work.clone());
        let creating = progress.store_writes.iter().find_map(|w| match w {
            Write::PutResource(r) => Some(r.clone()),
            _ => None,
        });
        let Some(creating) = creating else {
            return Ok(false);
        };
        let now = now_millis();
        let written = Arc::new(AtomicBool::new(false));
        let flag = written.clone();
        self.store
            .transact_owned(
                &op.key.clone(),
                Box::new(move |snapshot: &Snapshot| {
                    if !is_free(snapshot) {
                        return Vec::new();
                    }
                    flag.store(true, Ordering::Release);
                    let mut writes =
                        finished_writes(&op, &creating, &work, &outcome, answered_async, now);
                    if let Outcome::Created(_) = outcome {
                        // Nobody was given the operation: last operation answers from the
                        // resource. A failure keeps its operation, which says why.
                        writes.retain(|w| !matches!(w, Write::PutOperation(_)));
                    }
                    writes
                }),
            )
            .await?;
        Ok(written.load(Ordering::Acquire))
    }

    /// Stores the operation of a create held in memory (it outlived a synchronous budget), so
    /// that it can be polled and resumed. The caller holds `progress.phase`.
    async fn store_claim(&self, key: &Key, progress: &Progress) -> Result<(), BrokerError> {
        if progress.is_stored() {
            return Ok(());
        }
        let writes = progress.store_writes.clone();
        self.store
            .transact_owned(
                key,
                Box::new(move |snapshot: &Snapshot| {
                    if is_free(snapshot) {
                        writes.clone()
                    } else {
                        Vec::new()
                    }
                }),
            )
            .await
            .map_err(unavailable)?;
        progress.stored.store(true, Ordering::Release);
        Ok(())
    }

    async fn call(&self, key: &Key, work: &Work) -> Result<Done, BrokerError> {
        let instance = &key.instance_id;
        let binding = key.binding_id.as_ref();
        let backend = &self.backend;
        match (work, binding) {
            (Work::CreateInstance { request }, _) => {
                let reply = backend.create_instance(instance, request).await?;
                Ok(Done::Created(
                    serde_json::to_value(reply).map_err(BrokerError::internal)?,
                ))
            }
            (Work::UpdateInstance { request }, _) => {
                let reply = backend.update_instance(instance, request).await?;
                Ok(Done::Updated(
                    serde_json::to_value(reply).map_err(BrokerError::internal)?,
                ))
            }
            (Work::DeleteInstance { .. }, _) => {
                backend.delete_instance(instance).await?;
                Ok(Done::Deleted)
            }
            (Work::CreateBinding { request }, Some(binding)) => {
                let reply = backend.create_binding(instance, binding, request).await?;
                Ok(Done::Created(
                    serde_json::to_value(reply).map_err(BrokerError::internal)?,
                ))
            }
            (Work::DeleteBinding { .. }, Some(binding)) => {
                backend.delete_binding(instance, binding).await?;
                Ok(Done::Deleted)
            }
            (_, None) => Err(BrokerError::internal("binding work without a binding id")),
        }
    }

    /// Records the result of `op`, if it is still the resource's running operation.
    async fn finish(
        &self,
        op: &OperationRecord,
        work: &Work,
        result: &Result<Done, BrokerError>,
        answered_async: bool,
    ) -> Result<(), StoreError> {
        let outcome = Outcome::of(result);
        let (op, work) = (op.clone(), work.clone());
        let now = now_millis();
        self.store
            .transact_owned(
                &op.key.clone(),
                Box::new(move |snapshot: &Snapshot| {
                    let (Some(active), Some(resource)) = (&snapshot.active, &snapshot.resource)
                    else {
                        return Vec::new();
                    };
                    if active.id != op.id {
                        return Vec::new();
                    }
                    finished_writes(active, resource, &work, &outcome, answered_async, now)
                }),
            )
            .await
            .map(|_| ())
    }

    /// Fails `op` without running it (a deadline passed, or the restart policy says so).
    async fn fail(
        &self,
        op: &OperationRecord,
        work: Option<&Work>,
        description: String,
    ) -> Result<(), StoreError> {
        let failure: Result<Done, BrokerError> = Err(BrokerError::unprocessable(description));
        match work {
            Some(work) => self.finish(op, work, &failure, true).await,
            None => {
                // The work does not decode: fail the operation and leave the resource failed.
                let fallback = Work::DeleteInstance {
                    previous: ResourceState::Failed.as_str().to_string(),
                };
                self.finish(op, &fallback, &failure, true).await
            }
        }
    }

    /// Starts a create on `key` (or finds what a repeat finds).
    async fn begin_create(
        &self,
        key: &Key,
        fingerprint: String,
        work: Work,
        ids: (Option<String>, Option<String>),
        deadline: Option<Millis>,
    ) -> Result<Begin, BrokerError> {
        let op = new_operation(
            key,
            &work,
            fingerprint.clone(),
            &self.owner,
            self.config.lease,
            deadline,
        )
        .map_err(BrokerError::internal)?;
        // The create request, as the operation stores it (`Work`'s `request` member).
        let request = op.request.get("request").cloned().unwrap_or(Value::Null);
        let verdict = Arc::new(Mutex::new(None));
        let slot = verdict.clone();
        self.store
            .transact_owned(
                key,
                Box::new(move |snapshot: &Snapshot| {
                    let (decision, writes) =
                        decide_create(snapshot, &fingerprint, &op, &work, &request, &ids);
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(decision);
                    writes
                }),
            )
            .await
            .map_err(unavailable)?;
        let verdict = verdict
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        verdict.ok_or_else(|| BrokerError::internal("the store did not run the transaction"))
    }

    /// Starts an update or a delete on `key`.
    async fn begin_change(
        &self,
        key: &Key,
        fingerprint: String,
        work: Work,
        deadline: Option<Millis>,
    ) -> Result<Begin, BrokerError> {
        let op = new_operation(
            key,
            &work,
            fingerprint.clone(),
            &self.owner,
            self.config.lease,
            deadline,
        )
        .map_err(BrokerError::internal)?;
        let kind = work.kind();
        if let Some(why) = self.claimed_by_create(key) {
            return Ok(Begin::Busy(why.into()));
        }
        let verdict = Arc::new(Mutex::new(None));
        let slot = verdict.clone();
        self.store
            .transact_owned(
                key,
                Box::new(move |snapshot: &Snapshot| {
                    let mut op = op.clone();
                    let (decision, writes) =
                        decide_change(snapshot, kind, &fingerprint, &mut op, &work);
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(decision);
                    writes
                }),
            )
            .await
            .map_err(unavailable)?;
        let verdict = verdict
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        verdict.ok_or_else(|| BrokerError::internal("the store did not run the transaction"))
    }

    /// Runs a started operation and waits for it as the request allows: `Ok(None)` means
    /// "answer 202". A create held in memory comes with its `claim`; it is stored before a
    /// `202`.
    async fn run(
        self: &Arc<Self>,
        op: OperationRecord,
        work: Work,
        permit: Option<AsyncPermit>,
        always_async: bool,
        progress: Arc<Progress>,
        claim: Option<ClaimGuard<B, S>>,
    ) -> Result<Option<Done>, BrokerError> {
        let immediate = always_async && permit.is_some();
        let launch = self.launch(op, work, immediate, progress, claim).await;
        self.wait(launch, permit).await
    }

    /// Starts the execution of `op`, which then runs to its end whatever becomes of the
    /// request that started it.
    async fn launch(
        self: &Arc<Self>,
        op: OperationRecord,
        work: Work,
        immediate: bool,
        progress: Arc<Progress>,
        claim: Option<ClaimGuard<B, S>>,
    ) -> Launch {
        if immediate {
            *progress.phase.lock().await = Phase::Async;
        }
        let (tx, done) = oneshot::channel();
        let key = op.key.clone();
        tokio::spawn(self.clone().execute(op, work, progress.clone(), tx, claim));
        Launch {
            key,
            progress,
            done,
            immediate,
        }
    }

    /// Runs `begin` (a transaction that may store a new operation) and, when it stores one,
    /// starts its execution, both in a task of their own: a request given up meanwhile (the
    /// platform hung up) leaves no stored operation that nobody runs until its lease ends.
    /// A started operation comes back as [`Begin::Launched`].
    async fn begin_launched<F>(
        self: &Arc<Self>,
        begin: F,
        immediate: bool,
    ) -> Result<Begin, BrokerError>
    where
        F: std::future::Future<Output = Result<Begin, BrokerError>> + Send + 'static,
    {
        let inner = self.clone();
        tokio::spawn(async move {
            Ok(match begin.await? {
                Begin::Started(op, work) => {
                    let progress = Progress::stored(Phase::Waiting);
                    let launch = inner
                        .launch(op.clone(), *work, immediate, progress, None)
                        .await;
                    Begin::Launched(op, launch)
                }
                other => other,
            })
        })
        .await
        .map_err(|e| BrokerError::internal(format!("starting an operation failed: {e}")))?
    }

    /// [`begin_change`](Self::begin_change) with its operation launched
    /// ([`begin_launched`](Self::begin_launched)).
    async fn begin_change_launched(
        self: &Arc<Self>,
        key: Key,
        fingerprint: String,
        work: Work,
        deadline: Option<Millis>,
        immediate: bool,
    ) -> Result<Begin, BrokerError> {
        let inner = self.clone();
        self.begin_launched(
            async move { inner.begin_change(&key, fingerprint, work, deadline).await },
            immediate,
        )
        .await
    }

    /// Waits for a launched operation: its result, or `None` when the request is answered
    /// `202` (at once, or once the synchronous budget is spent and the request allows it).
    async fn wait(
        &self,
        launch: Launch,
        permit: Option<AsyncPermit>,
    ) -> Result<Option<Done>, BrokerError> {
        let Launch {
            key,
            progress,
            mut done,
            immediate,
        } = launch;
        if immediate {
            return Ok(None);
        }
        let received = if permit.is_some() {
            match tokio::time::timeout(self.config.sync_budget, &mut done).await {
                Ok(received) => received,
                Err(_) => {
                    let mut phase = progress.phase.lock().await;
                    if *phase == Phase::Waiting {
                        *phase = Phase::Async;
                    }
                    if *phase == Phase::Finishing {
                        drop(phase);
                        done.await
                    } else {
                        self.store_claim(&key, &progress).await?;
                        return Ok(None);
                    }
                }
            }
        } else {
            done.await
        };
        match received {
            Ok(result) => result.map(Some),
            Err(_) => Err(BrokerError::failed(
                StatusCode::SERVICE_UNAVAILABLE,
                "The operation was taken over by another worker; poll its last operation.",
            )),
        }
    }

    /// Waits for a create held in memory that an identical request started: up to the
    /// synchronous budget when this request allows a `202` (then its operation is stored and
    /// polled), else up to a minute.
    async fn wait_for_claim(
        &self,
        key: &Key,
        op: &OperationRecord,
        progress: &Progress,
        mut settled: watch::Receiver<Option<Settled>>,
        permit: Option<AsyncPermit>,
    ) -> Result<Result<Settled, OperationId>, BrokerError> {
        let limit = match permit {
            Some(_) => self.config.sync_budget,
            None => self.config.sync_budget.max(SYNCHRONOUS_TWIN_WAIT),
        };
        let wait = |settled: &mut watch::Receiver<Option<Settled>>| {
            let mut settled = settled.clone();
            async move {
                match settled.wait_for(Option::is_some).await {
                    Ok(value) => value.clone().unwrap_or(Settled::Retry),
                    Err(_) => Settled::Retry,
                }
            }
        };
        if let Ok(done) = tokio::time::timeout(limit, wait(&mut settled)).await {
            return Ok(Ok(done));
        }
        if permit.is_none() {
            return Err(BrokerError::concurrency_error(
                "An identical request is still being worked on; retry later.",
            ));
        }
        let phase = progress.phase.lock().await;
        if *phase == Phase::Finishing {
            drop(phase);
            return Ok(Ok(wait(&mut settled).await));
        }
        self.store_claim(key, progress).await?;
        Ok(Err(op.id.clone()))
    }

    /// Starts a create held in memory on `key`: reads what the store holds and, when there is
    /// a create to run, claims the key and reads again (a create of it may have finished
    /// between the two). `Ok(None)` when another request claimed it first; a verdict other than
    /// `Started` comes without a claim (repeats never claim).
    async fn begin_in_memory(
        self: &Arc<Self>,
        key: &Key,
        fingerprint: &str,
        work: &Work,
        ids: &(Option<String>, Option<String>),
        deadline: Option<Millis>,
    ) -> Result<Option<Begun<B, S>>, BrokerError> {
        let op = new_operation(
            key,
            work,
            fingerprint.to_string(),
            &self.owner,
            self.config.lease,
            deadline,
        )
        .map_err(BrokerError::internal)?;
        let request = op.request.get("request").cloned().unwrap_or(Value::Null);
        let snapshot = self.store.snapshot(key).await.map_err(unavailable)?;
        if let Some(other) = create_blocked(&snapshot, fingerprint) {
            return Ok(Some((other, None)));
        }
        let (started, store_writes) =
            decide_create(&Snapshot::default(), fingerprint, &op, work, &request, ids);
        let progress = Arc::new(Progress {
            phase: tokio::sync::Mutex::new(Phase::Waiting),
            stored: AtomicBool::new(false),
            store_writes,
        });
        let (settle, settled) = watch::channel(None);
        {
            let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
            if claims.contains_key(key) {
                return Ok(None);
            }
            claims.insert(
                key.clone(),
                Claim {
                    fingerprint: fingerprint.to_string(),
                    op: op.clone(),
                    progress: progress.clone(),
                    settled,
                },
            );
        }
        let guard = ClaimGuard {
            inner: self.clone(),
            key: key.clone(),
            op: op.id.clone(),
            settle: Some(settle),
        };
        let snapshot = self.store.snapshot(key).await.map_err(unavailable)?;
        match create_blocked(&snapshot, fingerprint) {
            None => Ok(Some((started, Some((progress, guard))))),
            Some(other) => Ok(Some((other, None))),
        }
    }

    /// The create held in memory on `key`, if any: its fingerprint, operation, progress and
    /// outcome.
    fn claim_of(&self, key: &Key) -> Option<ClaimView> {
        if !self.in_memory {
            return None;
        }
        let claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        claims.get(key).map(|c| {
            (
                c.fingerprint.clone(),
                c.op.clone(),
                c.progress.clone(),
                c.settled.clone(),
            )
        })
    }

    /// Why a change on `key` must wait for a create held in memory, if one must.
    fn claimed_by_create(&self, key: &Key) -> Option<&'static str> {
        if !self.in_memory {
            return None;
        }
        let claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        if claims.contains_key(key) {
            return Some("It is being created.");
        }
        if key.binding_id.is_none()
            && claims
                .range(key..)
                .take_while(|(k, _)| k.instance_id == key.instance_id)
                .next()
                .is_some()
        {
            return Some("A binding of it is being created.");
        }
        None
    }

    /// Waits for a running operation to finish: up to the synchronous budget when the request
    /// allows a `202`, else (its twin is being answered synchronously) up to a minute.
    async fn wait_for(
        &self,
        op: &OperationRecord,
        permit: Option<AsyncPermit>,
    ) -> Result<Option<OperationRecord>, BrokerError> {
        let limit = match permit {
            Some(_) => self.config.sync_budget,
            None => self.config.sync_budget.max(SYNCHRONOUS_TWIN_WAIT),
        };
        let until = tokio::time::Instant::now() + limit;
        let mut pause = Duration::from_millis(2);
        loop {
            let current = self
                .store
                .operation(&op.key, Some(&op.id))
                .await
                .map_err(unavailable)?;
            match current {
                Some(current) if current.is_active() => {}
                other => return Ok(other),
            }
            if tokio::time::Instant::now() >= until {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    async fn last_operation(
        &self,
        key: &Key,
        operation: Option<&OperationId>,
    ) -> Result<LastOperationOutcome, BrokerError> {
        if let Some((_, op, progress, _)) = self.claim_of(key)
            && !progress.is_stored()
            && operation.is_none_or(|id| *id == op.id)
        {
            return Ok(LastOperationOutcome::in_progress().retry_after(self.retry_after_secs()));
        }
        let op = self
            .store
            .operation(key, operation)
            .await
            .map_err(unavailable)?;
        let Some(mut op) = op else {
            let resource = self.store.resource(key).await.map_err(unavailable)?;
            return Ok(match resource.map(|r| r.state) {
                None => LastOperationOutcome::Gone,
                Some(ResourceState::Ready | ResourceState::Updating) => {
                    LastOperationOutcome::succeeded()
                }
                Some(ResourceState::Failed) => {
                    LastOperationOutcome::failed("The resource's creation failed.")
                }
                Some(ResourceState::Creating | ResourceState::Deleting) => {
                    LastOperationOutcome::in_progress().retry_after(self.retry_after_secs())
                }
            });
        };
        if op.is_active() && op.deadline.is_some_and(|d| d < now_millis()) {
            let description =
                "The operation did not finish within the plan's maximum_polling_duration.";
            let work: Option<Work> = serde_json::from_value(op.request.clone()).ok();
            self.fail(&op, work.as_ref(), description.into())
                .await
                .map_err(unavailable)?;
            op.state = OperationState::Failed;
            op.description = Some(description.into());
        }
        Ok(match op.state {
            OperationState::InProgress => {
                LastOperationOutcome::in_progress().retry_after(self.retry_after_secs())
            }
            OperationState::Succeeded => LastOperationOutcome::succeeded(),
            OperationState::Failed => LastOperationOutcome::failed(
                op.description
                    .unwrap_or_else(|| "The operation failed.".into()),
            ),
        })
    }

    fn retry_after_secs(&self) -> u64 {
        self.config.retry_after.as_secs().max(1)
    }
}

/// Whether a create may be written on what `snapshot` holds: nothing, or a resource whose
/// creation failed, with no operation running.
fn is_free(snapshot: &Snapshot) -> bool {
    snapshot.active.is_none()
        && snapshot
            .resource
            .as_ref()
            .is_none_or(|r| r.state == ResourceState::Failed)
}

/// A backend call's result as the store records it.
#[derive(Clone, Debug)]
enum Outcome {
    /// The reply body of a create.
    Created(Value),
    Updated,
    Deleted,
    /// The failure's description.
    Failed(String),
}

impl Outcome {
    fn of(result: &Result<Done, BrokerError>) -> Outcome {
        match result {
            Ok(Done::Created(reply)) => Outcome::Created(reply.clone()),
            Ok(Done::Updated(_)) => Outcome::Updated,
            Ok(Done::Deleted) => Outcome::Deleted,
            Err(error) => Outcome::Failed(describe(error)),
        }
    }
}

/// The writes that record the end of `active` (the running operation of `resource`).
fn finished_writes(
    active: &OperationRecord,
    resource: &ResourceRecord,
    work: &Work,
    outcome: &Outcome,
    answered_async: bool,
    now: Millis,
) -> Vec<Write> {
    let mut finished = active.clone();
    finished.finished_at = Some(now);
    finished.owner = None;
    finished.lease_until = None;
    let mut resource = resource.clone();
    resource.updated_at = now;
    let mut writes = Vec::new();
    match (outcome, work) {
        (Outcome::Created(reply), _) => {
            resource.state = ResourceState::Ready;
            resource.reply = Some(reply.clone());
            writes.push(Write::PutResource(resource));
        }
        (Outcome::Updated, Work::UpdateInstance { request }) => {
            resource.state = ResourceState::Ready;
            if let Some(plan) = &request.plan_id {
                resource.plan_id = Some(plan.to_string());
                resource.request["plan_id"] = json!(plan);
            }
            if let Some(parameters) = &request.parameters {
                resource.request["parameters"] = json!(parameters);
            }
            if let Some(info) = &request.maintenance_info {
                resource.request["maintenance_info"] = json!(info);
            }
            writes.push(Write::PutResource(resource));
        }
        (
            Outcome::Updated | Outcome::Deleted,
            Work::DeleteInstance { .. } | Work::DeleteBinding { .. },
        ) => {
            writes.push(Write::DeleteResource(active.key.clone()));
        }
        (Outcome::Updated | Outcome::Deleted, _) => {
            resource.state = ResourceState::Ready;
            writes.push(Write::PutResource(resource));
        }
        (Outcome::Failed(_), Work::CreateInstance { .. } | Work::CreateBinding { .. }) => {
            if answered_async {
                resource.state = ResourceState::Failed;
                writes.push(Write::PutResource(resource));
            } else {
                writes.push(Write::DeleteResource(active.key.clone()));
            }
        }
        (Outcome::Failed(_), Work::UpdateInstance { .. }) => {
            resource.state = ResourceState::Ready;
            writes.push(Write::PutResource(resource));
        }
        (
            Outcome::Failed(_),
            Work::DeleteInstance { previous } | Work::DeleteBinding { previous },
        ) => {
            resource.state = ResourceState::parse(previous).unwrap_or(ResourceState::Ready);
            writes.push(Write::PutResource(resource));
        }
    }
    match outcome {
        Outcome::Failed(description) => {
            finished.state = OperationState::Failed;
            finished.description = Some(description.clone());
        }
        _ => {
            finished.state = OperationState::Succeeded;
            finished.description = None;
        }
    }
    writes.push(Write::PutOperation(finished));
    writes
}

/// What a create finds on `snapshot` when it cannot start there (the resource exists, is being
/// created or deleted, or another request created it); `None` when it may start.
fn create_blocked(snapshot: &Snapshot, fingerprint: &str) -> Option<Begin> {
    let resource = snapshot.resource.as_ref()?;
    if let Some(active) = &snapshot.active
        && active.kind == OperationKind::Delete
    {
        return Some(Begin::Busy("It is being deleted.".into()));
    }
    if resource.state == ResourceState::Failed {
        return None;
    }
    if resource.fingerprint != fingerprint {
        return Some(Begin::Conflict);
    }
    Some(match (resource.state, &snapshot.active) {
        (ResourceState::Creating, Some(active)) => Begin::Running(active.clone()),
        (ResourceState::Deleting, _) => Begin::Busy("It is being deleted.".into()),
        _ => Begin::Exists(resource.reply.clone()),
    })
}

fn decide_create(
    snapshot: &Snapshot,
    fingerprint: &str,
    op: &OperationRecord,
    work: &Work,
    request: &Value,
    ids: &(Option<String>, Option<String>),
) -> (Begin, Vec<Write>) {
    if let Some(begin) = create_blocked(snapshot, fingerprint) {
        return (begin, Vec::new());
    }
    let now = op.created_at;
    let resource = ResourceRecord {
        key: op.key.clone(),
        service_id: ids.0.clone(),
        plan_id: ids.1.clone(),
        state: ResourceState::Creating,
        fingerprint: fingerprint.to_string(),
        request: request.clone(),
        reply: None,
        created_at: now,
        updated_at: now,
    };
    (
        Begin::Started(op.clone(), Box::new(work.clone())),
        vec![
            Write::PutResource(resource),
            Write::PutOperation(op.clone()),
        ],
    )
}

fn decide_change(
    snapshot: &Snapshot,
    kind: OperationKind,
    fingerprint: &str,
    op: &mut OperationRecord,
    work: &Work,
) -> (Begin, Vec<Write>) {
    let Some(resource) = &snapshot.resource else {
        return (
            if kind == OperationKind::Delete {
                Begin::Gone
            } else {
                Begin::Missing
            },
            Vec::new(),
        );
    };
    if let Some(active) = &snapshot.active {
        if active.kind == kind
            && (kind == OperationKind::Delete || active.fingerprint == fingerprint)
        {
            return (Begin::Running(active.clone()), Vec::new());
        }
        let doing = match active.kind {
            OperationKind::Create => "being created",
            OperationKind::Update => "being updated",
            OperationKind::Delete => "being deleted",
        };
        return (Begin::Busy(format!("It is {doing}.")), Vec::new());
    }
    if kind == OperationKind::Update && resource.state != ResourceState::Ready {
        return (
            Begin::Busy("Its creation failed; delete it and create it again.".into()),
            Vec::new(),
        );
    }
    // A delete records the state to return to should it fail.
    let mut work = work.clone();
    if let Work::DeleteInstance { previous } | Work::DeleteBinding { previous } = &mut work {
        *previous = resource.state.as_str().to_string();
        if let Ok(request) = serde_json::to_value(&work) {
            op.request = request;
        }
    }
    let mut changed = resource.clone();
    changed.state = if kind == OperationKind::Delete {
        ResourceState::Deleting
    } else {
        ResourceState::Updating
    };
    changed.updated_at = op.created_at;
    (
        Begin::Started(op.clone(), Box::new(work)),
        vec![Write::PutResource(changed), Write::PutOperation(op.clone())],
    )
}

fn from_reply<T: for<'de> Deserialize<'de> + Default>(reply: Option<Value>) -> T {
    reply
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

impl<B: Backend, S: Store> Stateful<B, S> {
    /// Answers a create that found its resource running: `202` with the same operation on an
    /// asynchronous plan, else waits for it.
    async fn repeat_of_running(
        &self,
        op: OperationRecord,
        permit: Option<AsyncPermit>,
        always_async: bool,
    ) -> Result<Option<Option<Value>>, BrokerError> {
        if always_async {
            return match permit {
                Some(_) => Ok(None),
                None => Err(BrokerError::async_required()),
            };
        }
        match self.inner.wait_for(&op, permit).await? {
            Some(done) if done.state == OperationState::Succeeded => {
                let resource = self
                    .inner
                    .store
                    .resource(&op.key)
                    .await
                    .map_err(unavailable)?;
                Ok(Some(resource.and_then(|r| r.reply)))
            }
            Some(done) => Err(BrokerError::bad_request(done.description.unwrap_or_else(
                || "The identical request that was running failed.".into(),
            ))),
            None if permit.is_some() => Ok(None),
            None => Err(BrokerError::concurrency_error(
                "An identical request is still being worked on; retry later.",
            )),
        }
    }

    /// Starts a create (provision or bind) on `key`, or answers a repeat, and waits for it as
    /// the request allows.
    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        key: Key,
        fingerprint: String,
        work: Work,
        ids: (Option<String>, Option<String>),
        deadline: Option<Millis>,
        permit: Option<AsyncPermit>,
        always_async: bool,
    ) -> Result<Created, BrokerError> {
        let inner = &self.inner;
        let what = if key.binding_id.is_some() {
            "binding"
        } else {
            "instance"
        };
        // A create held in memory answers for its key until it is written; another request
        // may claim the key between two looks, hence the few rounds.
        for _ in 0..8 {
            if let Some((claimed, op, progress, settled)) = inner.claim_of(&key) {
                if claimed != fingerprint {
                    return Err(self.conflict(what));
                }
                match inner
                    .wait_for_claim(&key, &op, &progress, settled, permit)
                    .await?
                {
                    Ok(Settled::Created(reply)) => return Ok(Created::Existing(reply)),
                    Ok(Settled::Failed(description)) => {
                        return Err(BrokerError::bad_request(description));
                    }
                    Ok(Settled::Retry) => continue,
                    Err(id) => return Ok(Created::Accepted(id)),
                }
            }
            let (begin, claim) = if inner.in_memory && !always_async {
                match inner
                    .begin_in_memory(&key, &fingerprint, &work, &ids, deadline)
                    .await?
                {
                    Some(begun) => begun,
                    None => continue,
                }
            } else {
                let (starter, key, fingerprint, work, ids) = (
                    inner.clone(),
                    key.clone(),
                    fingerprint.clone(),
                    work.clone(),
                    ids.clone(),
                );
                let begin = inner
                    .begin_launched(
                        async move {
                            starter
                                .begin_create(&key, fingerprint, work, ids, deadline)
                                .await
                        },
                        always_async && permit.is_some(),
                    )
                    .await?;
                (begin, None)
            };
            return match begin {
                Begin::Started(op, work) => {
                    let id = op.id.clone();
                    let (progress, claim) = match claim {
                        Some((progress, claim)) => (progress, Some(claim)),
                        None => (Progress::stored(Phase::Waiting), None),
                    };
                    match inner
                        .run(op, *work, permit, always_async, progress, claim)
                        .await?
                    {
                        Some(Done::Created(v)) => Ok(Created::New(v)),
                        Some(_) => Err(BrokerError::internal("a create finished as another kind")),
                        None => Ok(Created::Accepted(id)),
                    }
                }
                Begin::Launched(op, launch) => match inner.wait(launch, permit).await? {
                    Some(Done::Created(v)) => Ok(Created::New(v)),
                    Some(_) => Err(BrokerError::internal("a create finished as another kind")),
                    None => Ok(Created::Accepted(op.id)),
                },
                Begin::Running(op) => {
                    let id = op.id.clone();
                    match self.repeat_of_running(op, permit, always_async).await? {
                        Some(v) => Ok(Created::Existing(v)),
                        None => Ok(Created::Accepted(id)),
                    }
                }
                Begin::Exists(v) => Ok(Created::Existing(v)),
                Begin::Conflict => Err(self.conflict(what)),
                Begin::Busy(why) => Err(BrokerError::concurrency_error(why)),
                Begin::Gone | Begin::Missing => {
                    Err(BrokerError::internal("unexpected create verdict"))
                }
            };
        }
        Err(BrokerError::concurrency_error(
            "The resource is being created by another request; retry later.",
        ))
    }

    fn conflict(&self, what: &str) -> BrokerError {
        BrokerError::conflict(format!(
            "The {what} already exists (or is being created) with other attributes."
        ))
    }
}

#[async_trait]
impl<B: Backend, S: Store> ServiceBroker for Stateful<B, S> {
    async fn catalog(&self) -> Result<Catalog, BrokerError> {
        self.inner.backend.catalog().await
    }

    async fn provision(
        &self,
        instance_id: InstanceId,
        request: ServiceInstanceProvisionRequest,
        ctx: RequestContext,
    ) -> Result<ProvisionOutcome, BrokerError> {
        let always_async = self.inner.backend.is_async(&request.plan_id);
        let permit = ctx.async_permit();
        if always_async && permit.is_none() {
            return Err(BrokerError::async_required());
        }
        let key = Key::instance(instance_id);
        let fingerprint = provision_fingerprint(&request);
        let ids = (
            Some(request.service_id.to_string()),
            Some(request.plan_id.to_string()),
        );
        let deadline = deadline(ctx.plan(), now_millis());
        let work = Work::CreateInstance { request };
        let reply = |v: Option<Value>| from_reply::<ServiceInstanceProvisionResponse>(v);
        match self
            .create(key, fingerprint, work, ids, deadline, permit, always_async)
            .await?
        {
            Created::New(v) => Ok(ProvisionOutcome::Created(reply(Some(v)))),
            Created::Existing(v) => Ok(ProvisionOutcome::AlreadyExists(reply(v))),
            Created::Accepted(id) => match permit {
                Some(permit) => Ok(ProvisionOutcome::accepted(permit, id)),
                None => Err(BrokerError::async_required()),
            },
        }
    }

    async fn update(
        &self,
        instance_id: InstanceId,
        request: ServiceInstanceUpdateRequest,
        ctx: RequestContext,
    ) -> Result<UpdateOutcome, BrokerError> {
        let key = Key::instance(instance_id.clone());
        let plan = request
            .plan_id
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| ctx.plan_id().map(ToString::to_string))
            .unwrap_or_default();
        let always_async = self.inner.backend.is_async(&plan);
        let permit = ctx.async_permit();
        if always_async && permit.is_none() {
            return Err(BrokerError::async_required());
        }
        let fingerprint = update_fingerprint(&request);
        let deadline = deadline(ctx.plan(), now_millis());
        let work = Work::UpdateInstance { request };
        let immediate = always_async && permit.is_some();
        match self
            .inner
            .begin_change_launched(key, fingerprint, work, deadline, immediate)
            .await?
        {
            Begin::Launched(op, launch) => {
                let id = op.id.clone();
                match (self.inner.wait(launch, permit).await?, permit) {
                    (Some(Done::Updated(v)), _) => {
                        Ok(UpdateOutcome::Updated(from_reply::<
                            ServiceInstanceUpdateResponse,
                        >(Some(v))))
                    }
                    (Some(_), _) => {
                        Err(BrokerError::internal("an update finished as another kind"))
                    }
                    (None, Some(permit)) => Ok(UpdateOutcome::accepted(permit, id)),
                    (None, None) => Err(BrokerError::internal("no permit for an accepted update")),
                }
            }
            Begin::Running(op) => match permit {
                Some(permit) => Ok(UpdateOutcome::accepted(permit, op.id)),
                None => Err(BrokerError::concurrency_error(
                    "An identical update is still being worked on; retry later.",
                )),
            },
            Begin::Missing => Err(BrokerError::bad_request(format!(
                "Instance {instance_id} does not exist."
            ))),
            Begin::Busy(why) => Err(BrokerError::concurrency_error(why)),
            _ => Err(BrokerError::internal("unexpected update verdict")),
        }
    }

    async fn deprovision(
        &self,
        instance_id: InstanceId,
        query: DeprovisionQuery,
        ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        let always_async = self.inner.backend.is_async(&query.plan_id);
        self.delete(Key::instance(instance_id), ctx, always_async)
            .await
    }

    async fn instance_last_operation(
        &self,
        instance_id: InstanceId,
        query: InstanceLastOperationQuery,
        _ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        self.inner
            .last_operation(&Key::instance(instance_id), query.operation.as_ref())
            .await
    }

    async fn fetch_instance(
        &self,
        instance_id: InstanceId,
        _query: FetchInstanceQuery,
        _ctx: RequestContext,
    ) -> Result<FetchInstanceOutcome, BrokerError> {
        let key = Key::instance(instance_id);
        let resource = self.inner.store.resource(&key).await.map_err(unavailable)?;
        let Some(resource) = resource else {
            return Ok(FetchInstanceOutcome::NotFound);
        };
        match resource.state {
            ResourceState::Creating | ResourceState::Failed => Ok(FetchInstanceOutcome::NotFound),
            ResourceState::Updating => Err(BrokerError::concurrency_error(
                "The instance is being updated; fetch it again when the update finishes.",
            )),
            ResourceState::Ready | ResourceState::Deleting => {
                let reply = resource.reply.unwrap_or(Value::Null);
                let found = json!({
                    "service_id": resource.service_id, "plan_id": resource.plan_id,
                    "dashboard_url": reply.get("dashboard_url"),
                    "metadata": reply.get("metadata"),
                    "parameters": resource.request.get("parameters"),
                    "maintenance_info": resource.request.get("maintenance_info"),
                });
                let found = strip_nulls(found);
                let found: ServiceInstanceResource =
                    serde_json::from_value(found).map_err(BrokerError::internal)?;
                Ok(FetchInstanceOutcome::Found(found))
            }
        }
    }

    async fn bind(
        &self,
        instance_id: InstanceId,
        binding_id: BindingId,
        mut request: ServiceBindingRequest,
        ctx: RequestContext,
    ) -> Result<BindOutcome, BrokerError> {
        if self
            .inner
            .claim_of(&Key::instance(instance_id.clone()))
            .is_some()
        {
            return Err(BrokerError::concurrency_error(format!(
                "Instance {instance_id} is being created or deleted."
            )));
        }
        let instance = self
            .inner
            .store
            .resource(&Key::instance(instance_id.clone()))
            .await
            .map_err(unavailable)?;
        let instance = match instance {
            None => {
                return Err(BrokerError::bad_request(format!(
                    "Instance {instance_id} does not exist."
                )));
            }
            Some(r) if matches!(r.state, ResourceState::Ready | ResourceState::Updating) => r,
            Some(r) if r.state == ResourceState::Failed => {
                return Err(BrokerError::unprocessable(format!(
                    "Instance {instance_id} failed to be created; it cannot be bound."
                )));
            }
            Some(_) => {
                return Err(BrokerError::concurrency_error(format!(
                    "Instance {instance_id} is being created or deleted."
                )));
            }
        };
        if request.service_id.is_none() {
            request.service_id = instance.service_id.clone().map(Into::into);
        }
        if request.plan_id.is_none() {
            request.plan_id = instance.plan_id.clone().map(Into::into);
        }
        if let Some(predecessor) = request.predecessor_binding_id.clone() {
            let old = self
                .inner
                .store
                .resource(&Key::binding(instance_id.clone(), predecessor.clone()))
                .await
                .map_err(unavailable)?;
            match old {
                Some(old) if old.state == ResourceState::Ready => {
                    if request.parameters.is_none() {
                        request.parameters = old
                            .request
                            .get("parameters")
                            .and_then(Value::as_object)
                            .cloned();
                    }
                }
                _ => {
                    return Err(BrokerError::bad_request(format!(
                        "predecessor_binding_id {predecessor:?} is not a binding of instance {instance_id}."
                    )));
                }
            }
        }
        let plan = request.plan_id.as_deref().unwrap_or("").to_string();
        let always_async = self.inner.backend.is_async(&plan);
        let permit = ctx.async_permit();
        if always_async && permit.is_none() {
            return Err(BrokerError::async_required());
        }
        let key = Key::binding(instance_id, binding_id);
        let fingerprint = bind_fingerprint(&request);
        let ids = (
            request.service_id.as_ref().map(ToString::to_string),
            request.plan_id.as_ref().map(ToString::to_string),
        );
        let deadline = deadline(ctx.plan(), now_millis());
        let work = Work::CreateBinding { request };
        let reply = |v: Option<Value>| from_reply::<ServiceBindingResponse>(v);
        match self
            .create(key, fingerprint, work, ids, deadline, permit, always_async)
            .await?
        {
            Created::New(v) => Ok(BindOutcome::Created(reply(Some(v)))),
            Created::Existing(v) => Ok(BindOutcome::AlreadyExists(reply(v))),
            Created::Accepted(id) => match permit {
                Some(permit) => Ok(BindOutcome::accepted(permit, id)),
                None => Err(BrokerError::async_required()),
            },
        }
    }

    async fn unbind(
        &self,
        instance_id: InstanceId,
        binding_id: BindingId,
        query: UnbindQuery,
        ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        let always_async = self.inner.backend.is_async(&query.plan_id);
        self.delete(Key::binding(instance_id, binding_id), ctx, always_async)
            .await
    }

    async fn binding_last_operation(
        &self,
        instance_id: InstanceId,
        binding_id: BindingId,
        query: BindingLastOperationQuery,
        _ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        self.inner
            .last_operation(
                &Key::binding(instance_id, binding_id),
                query.operation.as_ref(),
            )
            .await
    }

    async fn fetch_binding(
        &self,
        instance_id: InstanceId,
        binding_id: BindingId,
        _query: FetchBindingQuery,
        _ctx: RequestContext,
    ) -> Result<FetchBindingOutcome, BrokerError> {
        let key = Key::binding(instance_id, binding_id);
        let resource = self.inner.store.resource(&key).await.map_err(unavailable)?;
        match resource {
            Some(r) if matches!(r.state, ResourceState::Ready | ResourceState::Deleting) => {
                let mut found = match r.reply {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                if let Some(parameters) = r.request.get("parameters").filter(|p| !p.is_null()) {
                    found.insert("parameters".into(), parameters.clone());
                }
                let found: ServiceBindingResource =
                    serde_json::from_value(Value::Object(found)).map_err(BrokerError::internal)?;
                Ok(FetchBindingOutcome::Found(found))
            }
            _ => Ok(FetchBindingOutcome::NotFound),
        }
    }
}

impl<B: Backend, S: Store> Stateful<B, S> {
    async fn delete(
        &self,
        key: Key,
        ctx: RequestContext,
        always_async: bool,
    ) -> Result<DeleteOutcome, BrokerError> {
        let permit = ctx.async_permit();
        if always_async && permit.is_none() {
            return Err(BrokerError::async_required());
        }
        let fingerprint = fingerprint(&json!({"delete": true}));
        let deadline = deadline(ctx.plan(), now_millis());
        let work = match &key.binding_id {
            Some(_) => Work::DeleteBinding {
                previous: String::new(),
            },
            None => Work::DeleteInstance {
                previous: String::new(),
            },
        };
        let immediate = always_async && permit.is_some();
        match self
            .inner
            .begin_change_launched(key, fingerprint, work, deadline, immediate)
            .await?
        {
            Begin::Launched(op, launch) => {
                let id = op.id.clone();
                match (self.inner.wait(launch, permit).await?, permit) {
                    (Some(_), _) => Ok(DeleteOutcome::Deleted),
                    (None, Some(permit)) => Ok(DeleteOutcome::accepted(permit, id)),
                    (None, None) => Err(BrokerError::internal("no permit for an accepted delete")),
                }
            }
            Begin::Running(op) => {
                if let Some(permit) = permit {
                    return Ok(DeleteOutcome::accepted(permit, op.id));
                }
                match self.inner.wait_for(&op, permit).await? {
                    Some(done) if done.state == OperationState::Succeeded => {
                        Ok(DeleteOutcome::Deleted)
                    }
                    Some(done) => Err(BrokerError::unprocessable(done.description.unwrap_or_else(
                        || "The identical delete that was running failed.".into(),
                    ))),
                    None => Err(BrokerError::concurrency_error(
                        "The resource is being deleted; retry later.",
                    )),
                }
            }
            Begin::Gone => Ok(DeleteOutcome::Gone),
            Begin::Busy(why) => Err(BrokerError::concurrency_error(why)),
            _ => Err(BrokerError::internal("unexpected delete verdict")),
        }
    }
}

/// Removes the `null` members of a JSON object (absent fields stay absent).
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}
