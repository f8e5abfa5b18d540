//! The test suite every [`Store`] passes: the store's own guarantees ([`store_suite`]) and the
//! stateful layer's answers on top of it ([`stateful_suite`]). Run both against a new store
//! implementation; a failure panics with what went wrong.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use osb_server::types::{
    AsyncPermit, BindOutcome, BindingId, BindingLastOperationQuery, Catalog, DeleteOutcome,
    DeprovisionQuery, FetchBindingOutcome, FetchBindingQuery, FetchInstanceOutcome,
    FetchInstanceQuery, InstanceId, InstanceLastOperationQuery, LastOperationOutcome,
    LastOperationState, OperationId, ProvisionOutcome, ServiceBindingRequest,
    ServiceBindingResponse, ServiceInstanceProvisionRequest, ServiceInstanceProvisionResponse,
    ServiceInstanceUpdateRequest, ServiceInstanceUpdateResponse, UnbindQuery, UpdateOutcome,
};
use osb_server::{BrokerError, RequestContext, ServiceBroker};
use serde_json::{Map, json};

use crate::record::{
    Key, OperationKind, OperationRecord, OperationState, ResourceRecord, ResourceState, Write,
    now_millis,
};
use crate::{Backend, Stateful, StatefulConfig, Store};

/// The offering of the test backend.
pub const SERVICE: &str = "svc";
/// Work finishes at once.
pub const SYNC: &str = "plan-sync";
/// Work is always asynchronous ([`Backend::is_async`]).
pub const ASYNC: &str = "plan-async";
/// Work takes [`TestBackend::delay`], longer than the synchronous budget of [`config`].
pub const SLOW: &str = "plan-slow";
/// Work fails with `400` and the description "no room".
pub const FAIL: &str = "plan-fail";

/// A backend for the suite: counts its calls, and works as its plan says.
#[derive(Debug, Default)]
pub struct TestBackend {
    /// How long work on [`ASYNC`] and [`SLOW`] takes.
    pub delay: Duration,
    /// Backend calls made, as `"create i-1"`, `"delete i-1/b-1"`, ….
    pub calls: Mutex<Vec<String>>,
    /// Credentials handed out so far (each binding gets the next number).
    pub issued: AtomicUsize,
    /// What [`Backend::commits_with_store`] answers: whether synchronous creates are held in
    /// memory on single-process stores. The suite runs both ways.
    pub commits_with_store: bool,
}

impl TestBackend {
    /// A backend whose slow work takes `delay`.
    pub fn new(delay: Duration) -> Self {
        TestBackend {
            delay,
            ..TestBackend::default()
        }
    }

    fn record(&self, call: String) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call);
    }

    /// How many calls started with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    async fn work(&self, plan: Option<&str>) -> Result<(), BrokerError> {
        match plan {
            Some(ASYNC | SLOW) => tokio::time::sleep(self.delay).await,
            Some(FAIL) => return Err(BrokerError::bad_request("no room")),
            _ => {}
        }
        Ok(())
    }
}

/// The test catalog: one offering with the four plans.
pub fn catalog() -> Catalog {
    serde_json::from_value(json!({"services": [{
        "id": SERVICE, "name": "svc", "description": "Test", "bindable": true,
        "plan_updateable": true,
        "plans": [
            {"id": SYNC, "name": "sync", "description": "At once"},
            {"id": ASYNC, "name": "async", "description": "Always async"},
            {"id": SLOW, "name": "slow", "description": "Slow"},
            {"id": FAIL, "name": "fail", "description": "Fails"}]}]}))
    .unwrap_or_else(|e| panic!("the test catalog is valid: {e}"))
}

#[async_trait]
impl Backend for Arc<TestBackend> {
    async fn catalog(&self) -> Result<Catalog, BrokerError> {
        Ok(catalog())
    }

    fn is_async(&self, plan_id: &str) -> bool {
        plan_id == ASYNC
    }

    fn commits_with_store(&self) -> bool {
        self.commits_with_store
    }

    async fn create_instance(
        &self,
        id: &InstanceId,
        request: &ServiceInstanceProvisionRequest,
    ) -> Result<ServiceInstanceProvisionResponse, BrokerError> {
        self.record(format!("create {id}"));
        self.work(Some(&request.plan_id)).await?;
        Ok(
            ServiceInstanceProvisionResponse::new()
                .with_dashboard_url(format!("https://dash/{id}")),
        )
    }

    async fn update_instance(
        &self,
        id: &InstanceId,
        request: &ServiceInstanceUpdateRequest,
    ) -> Result<ServiceInstanceUpdateResponse, BrokerError> {
        self.record(format!("update {id}"));
        self.work(request.plan_id.as_deref()).await?;
        Ok(ServiceInstanceUpdateResponse::new())
    }

    async fn delete_instance(&self, id: &InstanceId) -> Result<(), BrokerError> {
        self.record(format!("delete {id}"));
        Ok(())
    }

    async fn create_binding(
        &self,
        id: &InstanceId,
        binding: &BindingId,
        request: &ServiceBindingRequest,
    ) -> Result<ServiceBindingResponse, BrokerError> {
        self.record(format!("create {id}/{binding}"));
        self.work(request.plan_id.as_deref()).await?;
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        let mut credentials = Map::new();
        credentials.insert("token".into(), json!(format!("token-{n}")));
        if let Some(parameters) = &request.parameters {
            credentials.insert("parameters".into(), json!(parameters));
        }
        Ok(ServiceBindingResponse::new().with_credentials(credentials))
    }

    async fn delete_binding(
        &self,
        id: &InstanceId,
        binding: &BindingId,
    ) -> Result<(), BrokerError> {
        self.record(format!("delete {id}/{binding}"));
        Ok(())
    }
}

/// The stateful layer's configuration in the suite: a 100 ms synchronous budget, 1 s
/// retention, 2 s leases (long enough that a loaded machine does not turn a slow renewal into
/// a takeover; takeover tests set their own short leases).
pub fn config() -> StatefulConfig {
    StatefulConfig::default()
        .sync_budget(Duration::from_millis(100))
        .retention(Duration::from_secs(1))
        .lease(Duration::from_secs(2))
        .worker_interval(Duration::from_millis(50))
}

fn permit() -> Option<AsyncPermit> {
    AsyncPermit::from_accepts_incomplete(Some(true))
}

/// A request context for `plan`, with or without `accepts_incomplete=true`.
pub fn ctx(plan: &str, asynchronous: bool) -> RequestContext {
    RequestContext::new(catalog())
        .with_plan(SERVICE, plan)
        .with_async_permit(if asynchronous { permit() } else { None })
}

/// A provision request for `plan`.
pub fn provision_request(plan: &str) -> ServiceInstanceProvisionRequest {
    ServiceInstanceProvisionRequest::new(SERVICE, plan, "org", "space")
}

fn key(id: &str) -> Key {
    Key::instance(InstanceId::from(id))
}

fn resource(key: &Key, state: ResourceState) -> ResourceRecord {
    ResourceRecord {
        key: key.clone(),
        service_id: Some(SERVICE.into()),
        plan_id: Some(SYNC.into()),
        state,
        fingerprint: "f".into(),
        request: json!({"a": 1}),
        reply: Some(json!({"credentials": {"x": "y"}})),
        created_at: 1,
        updated_at: 2,
    }
}

fn operation(key: &Key, id: &str, state: OperationState) -> OperationRecord {
    OperationRecord {
        id: OperationId::from(id),
        key: key.clone(),
        kind: OperationKind::Create,
        state,
        fingerprint: "f".into(),
        request: json!({"work": "x"}),
        description: None,
        owner: None,
        lease_until: None,
        deadline: None,
        created_at: now_millis(),
        finished_at: (state != OperationState::InProgress).then_some(10),
    }
}

/// The store's own guarantees, each on a new store from `new_store`.
pub async fn store_suite<S, F, Fut>(new_store: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    // A transaction reads what the last one wrote, records round-trip exactly.
    let store = new_store().await;
    let k = key("i-1");
    let snapshot = store
        .transact(&k, &mut |_| {
            vec![
                Write::PutResource(resource(&k, ResourceState::Creating)),
                Write::PutOperation(operation(&k, "op-1", OperationState::InProgress)),
            ]
        })
        .await
        .unwrap();
    assert_eq!(snapshot.resource, None, "the first read sees nothing");
    let again = store.transact(&k, &mut |_| Vec::new()).await.unwrap();
    assert_eq!(again.resource, Some(resource(&k, ResourceState::Creating)));
    assert_eq!(again.active.as_ref().map(|o| o.id.as_str()), Some("op-1"));
    assert_eq!(
        again.active,
        Some(operation(&k, "op-1", OperationState::InProgress)).map(|mut o| {
            o.created_at = again.active.as_ref().map_or(0, |a| a.created_at);
            o
        })
    );
    assert_eq!(store.count().await.unwrap(), 1);

    // A snapshot reads the same without a transaction, for readers of one key or of several
    // at once.
    let other = key("nothing");
    let (a, b, none) = tokio::join!(
        store.snapshot(&k),
        store.snapshot(&k),
        store.snapshot(&other)
    );
    assert_eq!(a.unwrap(), again);
    assert_eq!(b.unwrap(), again);
    assert_eq!(none.unwrap(), crate::record::Snapshot::default());

    // Finishing the operation leaves no active one; the latest operation is the last written.
    store
        .transact(&k, &mut |s| {
            let mut op = s.active.clone().expect("active");
            op.state = OperationState::Succeeded;
            op.finished_at = Some(10);
            vec![
                Write::PutOperation(op),
                Write::PutResource(resource(&k, ResourceState::Ready)),
            ]
        })
        .await
        .unwrap();
    let snapshot = store.transact(&k, &mut |_| Vec::new()).await.unwrap();
    assert_eq!(snapshot.active, None);
    assert_eq!(
        snapshot.resource.map(|r| r.state),
        Some(ResourceState::Ready)
    );
    store
        .transact(&k, &mut |_| {
            vec![Write::PutOperation(operation(
                &k,
                "op-2",
                OperationState::InProgress,
            ))]
        })
        .await
        .unwrap();
    let latest = store.operation(&k, None).await.unwrap().expect("latest");
    assert_eq!(latest.id.as_str(), "op-2");
    let named = store
        .operation(&k, Some(&OperationId::from("op-1")))
        .await
        .unwrap()
        .expect("op-1");
    assert_eq!(named.state, OperationState::Succeeded);
    assert!(
        store
            .operation(&key("other"), Some(&OperationId::from("op-1")))
            .await
            .unwrap()
            .is_none(),
        "an operation is found only on its own resource"
    );

    // Claims: a free operation is claimed once, renewed by its owner only, released.
    let now = now_millis();
    let claimed = store
        .claim("w1", now, now + 1000)
        .await
        .unwrap()
        .expect("free op");
    assert_eq!(claimed.id.as_str(), "op-2");
    assert_eq!(claimed.owner.as_deref(), Some("w1"));
    assert!(
        store.claim("w2", now, now + 1000).await.unwrap().is_none(),
        "held by w1"
    );
    assert!(store.renew(&claimed.id, "w1", now + 2000).await.unwrap());
    assert!(!store.renew(&claimed.id, "w2", now + 2000).await.unwrap());
    let taken = store.claim("w2", now + 3000, now + 4000).await.unwrap();
    assert_eq!(
        taken.map(|o| o.owner),
        Some(Some("w2".into())),
        "an expired lease is taken over"
    );
    assert_eq!(store.release_all().await.unwrap(), 1);
    assert!(store.claim("w3", now, now + 1000).await.unwrap().is_some());

    // Purge removes finished operations before the cutoff only.
    assert_eq!(store.purge(11).await.unwrap(), 1, "op-1 finished at 10");
    assert!(
        store
            .operation(&k, Some(&OperationId::from("op-1")))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .operation(&k, Some(&OperationId::from("op-2")))
            .await
            .unwrap()
            .is_some()
    );

    // Deleting an instance deletes its bindings; deleting a binding only itself.
    let store = new_store().await;
    let i = key("i-2");
    let b1 = Key::binding(InstanceId::from("i-2"), BindingId::from("b-1"));
    let b2 = Key::binding(InstanceId::from("i-2"), BindingId::from("b-2"));
    let other = key("i-3");
    for k in [&i, &b1, &b2, &other] {
        store
            .transact(k, &mut |_| {
                vec![Write::PutResource(resource(k, ResourceState::Ready))]
            })
            .await
            .unwrap();
    }
    store
        .transact(&b1, &mut |_| vec![Write::DeleteResource(b1.clone())])
        .await
        .unwrap();
    assert!(store.resource(&b1).await.unwrap().is_none());
    assert!(store.resource(&b2).await.unwrap().is_some());
    store
        .transact(&i, &mut |_| vec![Write::DeleteResource(i.clone())])
        .await
        .unwrap();
    assert!(store.resource(&b2).await.unwrap().is_none());
    assert!(store.resource(&other).await.unwrap().is_some());
    assert_eq!(store.count().await.unwrap(), 1);

    // Concurrent transactions on one key never interleave: 64 increments, 64 counted.
    let store = Arc::new(new_store().await);
    let k = key("counter");
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let store = store.clone();
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            store
                .transact(&k, &mut |s| {
                    let n = s.resource.as_ref().map_or(0, |r| r.updated_at);
                    let mut r = resource(&k, ResourceState::Ready);
                    r.updated_at = n + 1;
                    vec![Write::PutResource(r)]
                })
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        store.resource(&k).await.unwrap().map(|r| r.updated_at),
        Some(64)
    );
    store.health().await.unwrap();
}

async fn poll<B: Backend, S: Store>(
    broker: &Stateful<B, S>,
    id: &str,
    operation: Option<&OperationId>,
) -> LastOperationOutcome {
    let mut query = InstanceLastOperationQuery::new();
    query.operation = operation.cloned();
    broker
        .instance_last_operation(InstanceId::from(id), query, ctx(SYNC, false))
        .await
        .unwrap()
}

async fn poll_until_done<B: Backend, S: Store>(
    broker: &Stateful<B, S>,
    id: &str,
    operation: &OperationId,
) -> LastOperationOutcome {
    for _ in 0..400 {
        let outcome = poll(broker, id, Some(operation)).await;
        if outcome.state() != Some(&LastOperationState::InProgress) {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("operation {operation} of {id} never finished")
}

/// The stateful layer's answers over a store from `new_store`, with a [`TestBackend`] whose
/// slow work takes 300 ms: with synchronous creates stored before they run, then, on a
/// [`Store::single_process`] store, on a second new store with them held in memory
/// ([`Backend::commits_with_store`]).
pub async fn stateful_suite<S, F, Fut>(new_store: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let backend = Arc::new(TestBackend::new(Duration::from_millis(300)));
    stateful_answers(backend, new_store().await).await;
    let store = new_store().await;
    if store.single_process() {
        let backend = Arc::new(TestBackend {
            commits_with_store: true,
            ..TestBackend::new(Duration::from_millis(300))
        });
        stateful_answers(backend, store).await;
    }
}

async fn stateful_answers<S: Store>(backend: Arc<TestBackend>, store: S) {
    let broker = Stateful::new(backend.clone(), store, config());
    let id = || InstanceId::from("i-1");

    // Create, identical repeat → 200 with the stored reply, different → 409.
    let created = broker
        .provision(id(), provision_request(SYNC), ctx(SYNC, false))
        .await
        .unwrap();
    let ProvisionOutcome::Created(body) = &created else {
        panic!("{created:?}")
    };
    assert_eq!(body.dashboard_url, Some(Some("https://dash/i-1".into())));
    let repeat = broker
        .provision(id(), provision_request(SYNC), ctx(SYNC, true))
        .await
        .unwrap();
    assert!(
        matches!(&repeat, ProvisionOutcome::AlreadyExists(b) if b == body),
        "{repeat:?}"
    );
    let mut reordered = provision_request(SYNC);
    reordered.parameters = Some(Map::new());
    let same = broker
        .provision(id(), reordered, ctx(SYNC, false))
        .await
        .unwrap();
    assert!(
        matches!(same, ProvisionOutcome::AlreadyExists(_)),
        "absent parameters equal {{}}"
    );
    let mut different = provision_request(SYNC);
    different.parameters = Some([("size".to_string(), json!(2))].into_iter().collect());
    let conflict = broker
        .provision(id(), different, ctx(SYNC, false))
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, BrokerError::Conflict { .. }),
        "{conflict:?}"
    );
    assert_eq!(backend.count("create i-1"), 1);

    // Fetch from the store.
    let fetched = broker
        .fetch_instance(id(), FetchInstanceQuery::new(), ctx(SYNC, false))
        .await
        .unwrap();
    let FetchInstanceOutcome::Found(found) = fetched else {
        panic!("{fetched:?}")
    };
    assert_eq!(found.plan_id.as_deref(), Some(SYNC));
    assert_eq!(found.dashboard_url.as_deref(), Some("https://dash/i-1"));

    // Bind: credentials stored and repeated; rotation reuses the predecessor's parameters.
    let bind = |b: &str, request: ServiceBindingRequest| {
        broker.bind(id(), BindingId::from(b), request, ctx(SYNC, true))
    };
    let with_role = ServiceBindingRequest::new(SERVICE, SYNC).with_parameters(
        [("role".to_string(), json!("r"))]
            .into_iter()
            .collect::<Map<_, _>>(),
    );
    let first = bind("b-1", with_role.clone()).await.unwrap();
    let again = bind("b-1", with_role.clone()).await.unwrap();
    assert_eq!(
        first.credentials(),
        again.credentials(),
        "the same credentials on a repeat"
    );
    assert!(matches!(again, BindOutcome::AlreadyExists(_)));
    let rotated = bind(
        "b-2",
        ServiceBindingRequest::rotation(BindingId::from("b-1")),
    )
    .await
    .unwrap();
    let credentials = rotated.credentials().expect("credentials").clone();
    assert_eq!(credentials["parameters"], json!({"role": "r"}));
    assert_ne!(Some(&credentials), first.credentials());
    let unknown = bind(
        "b-3",
        ServiceBindingRequest::rotation(BindingId::from("b-9")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(unknown, BrokerError::BadRequest { .. }),
        "{unknown:?}"
    );
    let fetched = broker
        .fetch_binding(
            id(),
            BindingId::from("b-1"),
            FetchBindingQuery::new(),
            ctx(SYNC, false),
        )
        .await
        .unwrap();
    let FetchBindingOutcome::Found(found) = fetched else {
        panic!("{fetched:?}")
    };
    assert_eq!(found.credentials.as_ref(), first.credentials());
    let no_instance = broker
        .bind(
            InstanceId::from("nope"),
            BindingId::from("b"),
            ServiceBindingRequest::new(SERVICE, SYNC),
            ctx(SYNC, false),
        )
        .await
        .unwrap_err();
    assert!(matches!(no_instance, BrokerError::BadRequest { .. }));

    // Unbind, deprovision, then 410; the finished delete answers last operation until purged.
    let unbind = broker
        .unbind(
            id(),
            BindingId::from("b-1"),
            UnbindQuery::new(SERVICE, SYNC),
            ctx(SYNC, false),
        )
        .await
        .unwrap();
    assert!(matches!(unbind, DeleteOutcome::Deleted));
    let gone = broker
        .unbind(
            id(),
            BindingId::from("b-1"),
            UnbindQuery::new(SERVICE, SYNC),
            ctx(SYNC, false),
        )
        .await
        .unwrap();
    assert!(matches!(gone, DeleteOutcome::Gone));
    let deleted = broker
        .deprovision(id(), DeprovisionQuery::new(SERVICE, SYNC), ctx(SYNC, false))
        .await
        .unwrap();
    assert!(matches!(deleted, DeleteOutcome::Deleted));
    assert_eq!(backend.count("delete i-1"), 2, "b-1 and the instance");
    let fetched = broker
        .fetch_binding(
            id(),
            BindingId::from("b-2"),
            FetchBindingQuery::new(),
            ctx(SYNC, false),
        )
        .await
        .unwrap();
    assert!(
        matches!(fetched, FetchBindingOutcome::NotFound),
        "bindings go with the instance"
    );
    assert_eq!(
        poll(&broker, "i-1", None).await.state(),
        Some(&LastOperationState::Succeeded)
    );
    let gone = broker
        .deprovision(id(), DeprovisionQuery::new(SERVICE, SYNC), ctx(SYNC, false))
        .await
        .unwrap();
    assert!(matches!(gone, DeleteOutcome::Gone));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    broker.run_worker_once().await.unwrap();
    assert_eq!(poll(&broker, "i-1", None).await, LastOperationOutcome::Gone);

    // A failing synchronous create leaves nothing behind and says why.
    let failed = broker
        .provision(
            InstanceId::from("f-1"),
            provision_request(FAIL),
            ctx(FAIL, false),
        )
        .await
        .unwrap_err();
    assert!(matches!(&failed, BrokerError::BadRequest { description } if description == "no room"));
    assert!(
        broker
            .store()
            .resource(&key("f-1"))
            .await
            .unwrap()
            .is_none()
    );

    // An always-asynchronous plan: 422 without a permit, 202 with, the same token on repeats,
    // ConcurrencyError for an update or a delete meanwhile, then succeeded.
    let refused = broker
        .provision(
            InstanceId::from("a-1"),
            provision_request(ASYNC),
            ctx(ASYNC, false),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, BrokerError::UnprocessableEntity { .. }));
    let accepted = broker
        .provision(
            InstanceId::from("a-1"),
            provision_request(ASYNC),
            ctx(ASYNC, true),
        )
        .await
        .unwrap();
    let token = accepted
        .as_accepted()
        .and_then(|a| a.operation_id())
        .cloned()
        .expect("202");
    let repeat = broker
        .provision(
            InstanceId::from("a-1"),
            provision_request(ASYNC),
            ctx(ASYNC, true),
        )
        .await
        .unwrap();
    assert_eq!(
        repeat.as_accepted().and_then(|a| a.operation_id()),
        Some(&token)
    );
    let busy = broker
        .deprovision(
            InstanceId::from("a-1"),
            DeprovisionQuery::new(SERVICE, ASYNC),
            ctx(ASYNC, true),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(busy, BrokerError::UnprocessableEntity { .. }),
        "{busy:?}"
    );
    let fetched = broker
        .fetch_instance(
            InstanceId::from("a-1"),
            FetchInstanceQuery::new(),
            ctx(ASYNC, false),
        )
        .await
        .unwrap();
    assert!(
        matches!(fetched, FetchInstanceOutcome::NotFound),
        "404 while creating"
    );
    let in_progress = poll(&broker, "a-1", Some(&token)).await;
    assert_eq!(in_progress.state(), Some(&LastOperationState::InProgress));
    assert!(matches!(&in_progress, LastOperationOutcome::State(s) if s.retry_after.is_some()));
    let done = poll_until_done(&broker, "a-1", &token).await;
    assert_eq!(done.state(), Some(&LastOperationState::Succeeded));
    assert_eq!(backend.count("create a-1"), 1);

    // An update runs asynchronously when it outlives the budget; fetch answers 422 meanwhile.
    let update = ServiceInstanceUpdateRequest::new(SERVICE).with_plan_id(SLOW);
    let updating = broker
        .update(InstanceId::from("a-1"), update.clone(), ctx(SLOW, true))
        .await
        .unwrap();
    let UpdateOutcome::Accepted(accepted) = &updating else {
        panic!("{updating:?}")
    };
    let update_token = accepted.operation_id().cloned().expect("token");
    let fetch = broker
        .fetch_instance(
            InstanceId::from("a-1"),
            FetchInstanceQuery::new(),
            ctx(SLOW, false),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(fetch, BrokerError::UnprocessableEntity { .. }),
        "{fetch:?}"
    );
    let twin = broker
        .update(InstanceId::from("a-1"), update, ctx(SLOW, true))
        .await
        .unwrap();
    assert_eq!(
        twin.as_accepted().and_then(|a| a.operation_id()),
        Some(&update_token)
    );
    assert_eq!(
        poll_until_done(&broker, "a-1", &update_token).await.state(),
        Some(&LastOperationState::Succeeded)
    );
    let fetched = broker
        .fetch_instance(
            InstanceId::from("a-1"),
            FetchInstanceQuery::new(),
            ctx(SLOW, false),
        )
        .await
        .unwrap();
    assert!(
        matches!(&fetched, FetchInstanceOutcome::Found(r) if r.plan_id.as_deref() == Some(SLOW))
    );

    // 64 concurrent identical provisions: one creates, the others find it.
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let broker = broker.clone();
        tasks.push(tokio::spawn(async move {
            broker
                .provision(
                    InstanceId::from("c-1"),
                    provision_request(SYNC),
                    ctx(SYNC, false),
                )
                .await
        }));
    }
    let mut created = 0;
    let mut existing = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            ProvisionOutcome::Created(_) => created += 1,
            ProvisionOutcome::AlreadyExists(_) => existing += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((created, existing), (1, 63));
    assert_eq!(backend.count("create c-1"), 1);

    // 256 concurrent repeats of it, with and without a permit: all find it.
    let mut tasks = Vec::new();
    for n in 0..256 {
        let broker = broker.clone();
        tasks.push(tokio::spawn(async move {
            broker
                .provision(
                    InstanceId::from("c-1"),
                    provision_request(SYNC),
                    ctx(SYNC, n % 2 == 0),
                )
                .await
        }));
    }
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(
            matches!(outcome, ProvisionOutcome::AlreadyExists(_)),
            "{outcome:?}"
        );
    }
    assert_eq!(backend.count("create c-1"), 1);

    // Provisions given up at any point (the platform hung up) leave no claim behind: the next
    // provision of each instance answers.
    for n in 0..64u64 {
        let id = format!("gone-{n}");
        let given_up = broker.provision(
            InstanceId::from(id.clone()),
            provision_request(SYNC),
            ctx(SYNC, false),
        );
        let _ = tokio::time::timeout(Duration::from_micros(n * 25), given_up).await;
        let again = tokio::time::timeout(
            Duration::from_secs(10),
            broker.provision(
                InstanceId::from(id),
                provision_request(SYNC),
                ctx(SYNC, false),
            ),
        )
        .await
        .expect("a provision after one given up answers")
        .unwrap();
        assert!(
            matches!(
                again,
                ProvisionOutcome::Created(_) | ProvisionOutcome::AlreadyExists(_)
            ),
            "{again:?}"
        );
    }

    // 64 concurrent identical async provisions: one token.
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let broker = broker.clone();
        tasks.push(tokio::spawn(async move {
            broker
                .provision(
                    InstanceId::from("c-2"),
                    provision_request(ASYNC),
                    ctx(ASYNC, true),
                )
                .await
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        tokens.insert(
            outcome
                .as_accepted()
                .and_then(|a| a.operation_id())
                .cloned()
                .expect("202"),
        );
    }
    assert_eq!(tokens.len(), 1);

    // 64 concurrent different bindings on one instance: all created.
    let mut tasks = Vec::new();
    for n in 0..64 {
        let broker = broker.clone();
        tasks.push(tokio::spawn(async move {
            broker
                .bind(
                    InstanceId::from("c-1"),
                    BindingId::from(format!("cb-{n}")),
                    ServiceBindingRequest::new(SERVICE, SYNC),
                    ctx(SYNC, false),
                )
                .await
        }));
    }
    for task in tasks {
        assert!(matches!(
            task.await.unwrap().unwrap(),
            BindOutcome::Created(_)
        ));
    }
    assert_eq!(backend.count("create c-1/"), 64);

    let last = broker
        .binding_last_operation(
            InstanceId::from("c-1"),
            BindingId::from("cb-0"),
            BindingLastOperationQuery::new(),
            ctx(SYNC, false),
        )
        .await
        .unwrap();
    assert_eq!(last.state(), Some(&LastOperationState::Succeeded));

    // A synchronous create that outlives the budget: 202 when allowed, the same token on a
    // repeat, ConcurrencyError for a delete or a bind meanwhile, then succeeded.
    let slow = || InstanceId::from("s-1");
    let accepted = broker
        .provision(slow(), provision_request(SLOW), ctx(SLOW, true))
        .await
        .unwrap();
    let token = accepted
        .as_accepted()
        .and_then(|a| a.operation_id())
        .cloned()
        .expect("202");
    let repeat = broker
        .provision(slow(), provision_request(SLOW), ctx(SLOW, true))
        .await
        .unwrap();
    assert_eq!(
        repeat.as_accepted().and_then(|a| a.operation_id()),
        Some(&token)
    );
    let busy = broker
        .deprovision(
            slow(),
            DeprovisionQuery::new(SERVICE, SLOW),
            ctx(SLOW, true),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(busy, BrokerError::UnprocessableEntity { .. }),
        "{busy:?}"
    );
    let busy = broker
        .bind(
            slow(),
            BindingId::from("sb-1"),
            ServiceBindingRequest::new(SERVICE, SLOW),
            ctx(SLOW, true),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(busy, BrokerError::UnprocessableEntity { .. }),
        "{busy:?}"
    );
    assert_eq!(
        poll_until_done(&broker, "s-1", &token).await.state(),
        Some(&LastOperationState::Succeeded)
    );
    assert_eq!(backend.count("create s-1"), 1);

    // The same create without a permit is waited for; a repeat that allows 202 gets one after
    // the budget, and its operation succeeds with the create; last operation says "in
    // progress" meanwhile.
    let waited = {
        let broker = broker.clone();
        tokio::spawn(async move {
            broker
                .provision(
                    InstanceId::from("s-2"),
                    provision_request(SLOW),
                    ctx(SLOW, false),
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(
        poll(&broker, "s-2", None).await.state(),
        Some(&LastOperationState::InProgress)
    );
    let twin = broker
        .provision(
            InstanceId::from("s-2"),
            provision_request(SLOW),
            ctx(SLOW, true),
        )
        .await
        .unwrap();
    let twin_token = twin
        .as_accepted()
        .and_then(|a| a.operation_id())
        .cloned()
        .expect("202 for the repeat");
    let waited = waited.await.unwrap().unwrap();
    assert!(matches!(waited, ProvisionOutcome::Created(_)), "{waited:?}");
    assert_eq!(
        poll_until_done(&broker, "s-2", &twin_token).await.state(),
        Some(&LastOperationState::Succeeded)
    );
    assert_eq!(backend.count("create s-2"), 1);

    // A failing create that outlived the budget of a request that allowed 202 stays, failed,
    // until deleted.
    let failing = broker
        .provision(
            InstanceId::from("f-2"),
            provision_request(FAIL),
            ctx(FAIL, true),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&failing, BrokerError::BadRequest { description } if description == "no room")
    );
    assert!(
        broker
            .store()
            .resource(&key("f-2"))
            .await
            .unwrap()
            .is_none(),
        "a failure answered at once leaves nothing behind"
    );
}

/// What a restart leaves: an operation in progress in `store`, held by a worker that is gone.
/// Returns its token. The caller reopens the store (as a restarted process would) and checks
/// with [`check_resumed`].
pub async fn leave_running<S: Store>(store: &S, id: &str) -> OperationId {
    let k = key(id);
    let request = json!({
        "work": "create_instance",
        "request": provision_request(SLOW),
    });
    let mut op = operation(&k, &format!("create-{id}"), OperationState::InProgress);
    op.request = request.clone();
    op.owner = Some("a-dead-worker".into());
    op.lease_until = Some(now_millis() + 100);
    let mut r = resource(&k, ResourceState::Creating);
    r.request = json!(provision_request(SLOW));
    r.reply = None;
    store
        .transact(&k, &mut |_| {
            vec![
                Write::PutResource(r.clone()),
                Write::PutOperation(op.clone()),
            ]
        })
        .await
        .unwrap();
    op.id
}

/// After a restart: the operation left by [`leave_running`] is taken over and finishes
/// (`succeeded`), never staying in progress.
pub async fn check_resumed<S: Store>(store: S, id: &str, token: &OperationId) {
    let backend = Arc::new(TestBackend::new(Duration::from_millis(20)));
    let broker = Stateful::new(backend.clone(), store, config());
    let done = poll_until_done(&broker, id, token).await;
    assert_eq!(done.state(), Some(&LastOperationState::Succeeded));
    assert_eq!(backend.count(&format!("create {id}")), 1, "run again once");
    let found = broker
        .fetch_instance(
            InstanceId::from(id),
            FetchInstanceQuery::new(),
            ctx(SLOW, false),
        )
        .await
        .unwrap();
    assert!(matches!(found, FetchInstanceOutcome::Found(_)));
}

/// A PostgreSQL server for tests: the one `OSB_TEST_POSTGRES_URL` names, or a throwaway
/// cluster started from the machine's PostgreSQL with the repository's `.ci/postgres` script
/// and stopped on drop. Tests are skipped only when `OSB_SKIP_POSTGRES=1` says so.
#[cfg(feature = "postgres")]
pub mod postgres {
    use sqlx::Connection as _;

    /// A server for one test.
    #[derive(Debug)]
    pub struct Server {
        admin: String,
        cluster: Option<std::path::PathBuf>,
    }

    fn script() -> &'static str {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/postgres")
    }

    impl Drop for Server {
        fn drop(&mut self) {
            if let Some(dir) = &self.cluster {
                let _ = std::process::Command::new("bash")
                    .arg(script())
                    .arg("stop")
                    .arg(dir)
                    .status();
            }
        }
    }

    impl Server {
        /// The cluster's directory, when this process started the cluster.
        fn cluster_dir(&self) -> std::path::PathBuf {
            self.cluster.clone().unwrap_or_else(|| {
                panic!("only a cluster of this test's own can be stopped: use private_server()")
            })
        }

        fn control(&self, command: &str) {
            let status = std::process::Command::new("bash")
                .arg(script())
                .arg(command)
                .arg(self.cluster_dir())
                .status()
                .unwrap_or_else(|e| panic!("bash runs: {e}"));
            assert!(status.success(), "postgres {command} failed");
        }

        /// Stops the server as a crash would.
        pub fn pause(&self) {
            self.control("pause");
        }

        /// Starts the server again on the same data.
        pub fn resume(&self) {
            self.control("resume");
        }

        /// The URL of the server's `postgres` database (a user who may create databases).
        pub fn admin_url(&self) -> &str {
            &self.admin
        }

        /// A new, empty database on the server; its URL.
        pub async fn fresh_database(&self) -> String {
            let name = format!("osb_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&self.admin)
                .await
                .unwrap_or_else(|e| panic!("the server at {} answers: {e}", self.admin));
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("a test database: {e}"));
            conn.close().await.ok();
            let base = self.admin.split('?').next().unwrap_or(&self.admin);
            let cut = base.rfind('/').unwrap_or(base.len());
            format!("{}/{name}", &base[..cut])
        }
    }

    fn skipped() -> bool {
        let skip = std::env::var("OSB_SKIP_POSTGRES").as_deref() == Ok("1");
        if skip {
            eprintln!("skipped: OSB_SKIP_POSTGRES=1");
        }
        skip
    }

    /// The server to test against; `None` only when `OSB_SKIP_POSTGRES=1`.
    pub fn server() -> Option<Server> {
        if skipped() {
            return None;
        }
        if let Ok(admin) = std::env::var("OSB_TEST_POSTGRES_URL") {
            return Some(Server {
                admin,
                cluster: None,
            });
        }
        private_server()
    }

    /// A throwaway cluster of this test's own, even when `OSB_TEST_POSTGRES_URL` names a shared
    /// server: for tests that stop and start the server ([`Server::pause`]). `None` only when
    /// `OSB_SKIP_POSTGRES=1`.
    pub fn private_server() -> Option<Server> {
        if skipped() {
            return None;
        }
        let dir = std::env::temp_dir().join(format!("osb-pg-{}", uuid::Uuid::new_v4().simple()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("a free port: {e}"));
        let output = std::process::Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(&dir)
            .env("OSB_TEST_PGPORT", port.to_string())
            .output()
            .unwrap_or_else(|e| panic!("bash runs: {e}"));
        assert!(
            output.status.success(),
            "could not start a PostgreSQL cluster (install Debian's postgresql, set \
             OSB_TEST_POSTGRES_URL, or set OSB_SKIP_POSTGRES=1 to skip these tests): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Some(Server {
            admin: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            cluster: Some(dir),
        })
    }
}
