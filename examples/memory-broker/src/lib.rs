//! A complete OSB broker that keeps everything in memory, built on osb-server.
//!
//! Run with: cargo run -p example-memory-broker
//!
//! One offering, `memory-db`, with three plans: `sync` (everything answers at once), `schema`
//! (publishes JSON Schemas for provision and bind `parameters`) and `async` (provision, bind,
//! unbind and deprovision answer `202` and finish after [`Config::async_delay`]). Other crates'
//! tests start it in-process with [`start`] and drive it over loopback.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use osb_server::Server;
use osb_server::prelude::*;
use serde_json::{Map, Value, json};

/// The id of the `memory-db` offering.
pub const SERVICE_ID: &str = "7d3b2e8a-5c41-4f0e-9b6a-1e2d3c4b5a60";
/// The `sync` plan: every operation completes at once (`maintenance_info.version` 1.0.0).
pub const SYNC_PLAN_ID: &str = "0f6e1c2d-8a3b-4c5d-9e7f-a1b2c3d4e5f6";
/// The `schema` plan: `parameters` must match its schemas (`size` 1–10; bind: `role`).
pub const SCHEMA_PLAN_ID: &str = "3a9c8b7d-6e5f-4a1b-8c2d-0e9f8a7b6c5d";
/// The `async` plan: provision, bind, unbind and deprovision take [`Config::async_delay`].
pub const ASYNC_PLAN_ID: &str = "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b";

/// Settings of the memory broker. `Debug` redacts the password.
#[derive(Clone)]
pub struct Config {
    /// How long asynchronous work takes (`OSB_ASYNC_DELAY_MS`, default 3000).
    pub async_delay: Duration,
    /// How long a finished async delete answers `200 succeeded` before `410 Gone`
    /// (`OSB_RETENTION_MS`, default 60000).
    pub retention: Duration,
    /// Basic auth user name (`OSB_BROKER_USERNAME`, default `admin`).
    pub username: String,
    /// Basic auth password (`OSB_BROKER_PASSWORD`, default: a fresh random one).
    pub password: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("async_delay", &self.async_delay)
            .field("retention", &self.retention)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Config {
    /// These credentials, 3 s async work and 60 s retention.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Config {
            async_delay: Duration::from_secs(3),
            retention: Duration::from_secs(60),
            username: username.into(),
            password: password.into(),
        }
    }

    /// Reads the environment; the flag says whether the password was generated.
    pub fn from_env() -> (Self, bool) {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let ms = |name, default| {
            Duration::from_millis(var(name).and_then(|v| v.parse().ok()).unwrap_or(default))
        };
        let password = var("OSB_BROKER_PASSWORD");
        let generated = password.is_none();
        let config = Config {
            async_delay: ms("OSB_ASYNC_DELAY_MS", 3000),
            retention: ms("OSB_RETENTION_MS", 60_000),
            username: var("OSB_BROKER_USERNAME").unwrap_or_else(|| "admin".into()),
            password: password.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        };
        (config, generated)
    }
}

/// The catalog: one offering with the three plans.
pub fn catalog() -> Catalog {
    let schema = |properties: Value| {
        json!({"parameters": {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
            "properties": properties, "additionalProperties": false}})
    };
    let size = json!({"size": {"type": "integer", "minimum": 1, "maximum": 10}});
    let role = json!({"role": {"enum": ["read", "write"]}});
    serde_json::from_value(json!({"services": [{
        "id": SERVICE_ID, "name": "memory-db", "description": "A key-value store that lives in memory",
        "bindable": true, "instances_retrievable": true, "bindings_retrievable": true,
        "plan_updateable": true, "tags": ["memory", "example"], "metadata": {"displayName": "Memory DB"},
        "plans": [
            {"id": SYNC_PLAN_ID, "name": "sync", "description": "Everything happens at once",
             "maintenance_info": {"version": "1.0.0", "description": "First release"}},
            {"id": SCHEMA_PLAN_ID, "name": "schema", "description": "Checks parameters against schemas",
             "schemas": {"service_instance": {"create": schema(size.clone()), "update": schema(size)},
                         "service_binding": {"create": schema(role)}}},
            {"id": ASYNC_PLAN_ID, "name": "async", "description": "Work takes a few seconds",
             "maximum_polling_duration": 600}]}]}))
    .expect("the built-in catalog is valid")
}

/// The broker's router, with Basic auth from `config`.
pub async fn app(config: Config) -> Result<axum::Router, osb_server::Error> {
    let (user, password) = (config.username.clone(), config.password.clone());
    let broker = MemoryBroker {
        state: Mutex::default(),
        config,
    };
    let builder = Broker::builder(broker).catalog(catalog());
    builder.basic_auth(user, password).build().await
}

/// A broker started by [`start`]; abort `task` to stop it.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server task.
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts the broker on `127.0.0.1` at a free port, in the current tokio runtime.
pub async fn start(config: Config) -> std::io::Result<Running> {
    let app = app(config).await.map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let serve = Server::new().serve(listener, app, std::future::pending());
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok(Running { addr, task })
}

/// An instance `(id, None)` or a binding `(instance id, Some(binding id))`.
type Key = (InstanceId, Option<BindingId>);

/// Where a resource is; asynchronous work runs until an instant, under an operation token.
#[derive(Clone, Debug, PartialEq)]
enum Work {
    Ready,
    Creating(Instant, OperationId),
    Deleting(Instant, OperationId),
}

#[derive(Clone, Debug)]
struct Resource {
    plan_id: PlanId,
    parameters: Option<Map<String, Value>>,
    credentials: Map<String, Value>,
    work: Work,
}

/// The state. Every request touches only the resources it names and the work that has come
/// due, so it costs the same however many resources there are.
#[derive(Debug, Default)]
struct State {
    live: HashMap<Key, Resource>,
    /// The bindings of each instance.
    bindings: HashMap<InstanceId, HashSet<BindingId>>,
    /// Asynchronous work by the time it finishes (with a sequence number to keep keys apart).
    due: BTreeMap<(Instant, u64), Key>,
    next: u64,
    /// Everything deleted (`410 Gone` when polled), with the time an asynchronous delete
    /// finished (polls answer `200 succeeded` during the retention).
    deleted: HashMap<Key, Option<Instant>>,
}

impl State {
    fn insert(&mut self, key: Key, resource: Resource) {
        if let (id, Some(binding)) = &key {
            self.bindings
                .entry(id.clone())
                .or_default()
                .insert(binding.clone());
        }
        self.live.insert(key, resource);
    }

    /// Remembers that the work on `key` finishes at `until`.
    fn schedule(&mut self, until: Instant, key: Key) {
        self.next += 1;
        self.due.insert((until, self.next), key);
    }

    /// Finishes the work that has come due.
    fn advance(&mut self, now: Instant) {
        while let Some(entry) = self.due.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            match self.live.get_mut(&key).map(|r| &r.work) {
                Some(Work::Deleting(t, _)) if *t <= now => self.remove(key, Some(now)),
                Some(Work::Creating(t, _)) if *t <= now => {
                    if let Some(r) = self.live.get_mut(&key) {
                        r.work = Work::Ready;
                    }
                }
                _ => {}
            }
        }
    }

    /// Deletes a resource (an instance with its bindings, which then answer `410 Gone`).
    fn remove(&mut self, key: Key, finished: Option<Instant>) {
        self.live.remove(&key);
        match &key {
            (id, None) => {
                for binding in self.bindings.remove(id).unwrap_or_default() {
                    let binding_key = (id.clone(), Some(binding));
                    self.live.remove(&binding_key);
                    self.deleted.insert(binding_key, None);
                }
            }
            (id, Some(binding)) => {
                if let Some(bindings) = self.bindings.get_mut(id) {
                    bindings.remove(binding);
                }
            }
        }
        self.deleted.insert(key, finished);
    }
}

/// The in-memory broker.
#[derive(Debug)]
pub struct MemoryBroker {
    state: Mutex<State>,
    config: Config,
}

fn busy() -> BrokerError {
    BrokerError::concurrency_error(
        "Another operation on this resource is in progress; retry shortly.",
    )
}

/// What a create request found or started.
enum Created {
    New(Resource),
    Existing(Resource),
    /// Asynchronous creation runs; poll with this token.
    Accepted(AsyncPermit, OperationId),
}

impl MemoryBroker {
    /// Locks the state after finishing the work whose time has come.
    fn state(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.advance(Instant::now());
        state
    }

    /// On the async plan, the request's permit and when new work would finish; `None` on the
    /// synchronous plans.
    fn asynchronous(
        &self,
        plan_id: &str,
        ctx: &RequestContext,
    ) -> Result<Option<(AsyncPermit, Instant)>, BrokerError> {
        if plan_id != ASYNC_PLAN_ID {
            return Ok(None);
        }
        let permit = ctx.require_async_permit()?;
        Ok(Some((permit, Instant::now() + self.config.async_delay)))
    }

    /// Creates the resource, or finds the identical one.
    fn create(
        &self,
        key: Key,
        plan_id: PlanId,
        parameters: Option<Map<String, Value>>,
        ctx: &RequestContext,
    ) -> Result<Created, BrokerError> {
        let asynchronous = self.asynchronous(&plan_id, ctx)?;
        let mut state = self.state();
        if let Some(r) = state.live.get(&key) {
            if r.plan_id != plan_id || r.parameters != parameters {
                return Err(BrokerError::conflict(
                    "It already exists with other attributes.",
                ));
            }
            return match (&r.work, asynchronous) {
                (Work::Ready, _) => Ok(Created::Existing(r.clone())),
                (Work::Creating(_, token), Some((permit, _))) => {
                    Ok(Created::Accepted(permit, token.clone()))
                }
                _ => Err(busy()),
            };
        }
        let mut credentials = Map::new();
        credentials.insert("uri".into(), json!(format!("memory://{}", key.0)));
        credentials.insert("password".into(), json!(uuid::Uuid::new_v4().to_string()));
        let mut r = Resource {
            plan_id,
            parameters,
            credentials,
            work: Work::Ready,
        };
        let Some((permit, until)) = asynchronous else {
            state.insert(key, r.clone());
            return Ok(Created::New(r));
        };
        let token = new_operation("create");
        r.work = Work::Creating(until, token.clone());
        state.schedule(until, key.clone());
        state.insert(key, r);
        Ok(Created::Accepted(permit, token))
    }

    fn delete(&self, key: Key, ctx: &RequestContext) -> Result<DeleteOutcome, BrokerError> {
        let mut state = self.state();
        let Some(r) = state.live.get_mut(&key) else {
            return Ok(DeleteOutcome::Gone);
        };
        let Some((permit, until)) = self.asynchronous(&r.plan_id, ctx)? else {
            state.remove(key, None);
            return Ok(DeleteOutcome::Deleted);
        };
        let token = match &r.work {
            Work::Deleting(_, token) => token.clone(),
            _ => {
                let token = new_operation("delete");
                r.work = Work::Deleting(until, token.clone());
                state.schedule(until, key);
                token
            }
        };
        Ok(DeleteOutcome::accepted(permit, token))
    }

    fn poll(&self, key: Key) -> LastOperationOutcome {
        let state = self.state();
        match state.live.get(&key).map(|r| &r.work) {
            Some(Work::Ready) => LastOperationOutcome::succeeded(),
            Some(Work::Creating(until, _) | Work::Deleting(until, _)) => {
                let wait = until.saturating_duration_since(Instant::now()).as_secs() + 1;
                LastOperationOutcome::in_progress().retry_after(wait)
            }
            None => match state.deleted.get(&key) {
                Some(Some(at)) if at.elapsed() < self.config.retention => {
                    LastOperationOutcome::succeeded()
                }
                Some(_) => LastOperationOutcome::Gone,
                None => LastOperationOutcome::NotFound,
            },
        }
    }

    /// The resource, once created.
    fn ready(&self, key: &Key) -> Option<Resource> {
        let state = self.state();
        state
            .live
            .get(key)
            .filter(|r| !matches!(r.work, Work::Creating(..)))
            .cloned()
    }
}

fn new_operation(kind: &str) -> OperationId {
    OperationId::new(format!("{kind}-{}", uuid::Uuid::new_v4()))
}

#[async_trait]
impl ServiceBroker for MemoryBroker {
    async fn catalog(&self) -> Result<Catalog, BrokerError> {
        Ok(catalog())
    }

    async fn provision(
        &self,
        id: InstanceId,
        req: ServiceInstanceProvisionRequest,
        ctx: RequestContext,
    ) -> Result<ProvisionOutcome, BrokerError> {
        let created = self.create((id, None), req.plan_id, req.parameters, &ctx)?;
        let body = ServiceInstanceProvisionResponse::new();
        Ok(match created {
            Created::New(_) => ProvisionOutcome::Created(body),
            Created::Existing(_) => ProvisionOutcome::AlreadyExists(body),
            Created::Accepted(permit, token) => ProvisionOutcome::accepted(permit, token),
        })
    }

    async fn update(
        &self,
        id: InstanceId,
        req: ServiceInstanceUpdateRequest,
        _ctx: RequestContext,
    ) -> Result<UpdateOutcome, BrokerError> {
        let mut state = self.state();
        let Some(r) = state.live.get_mut(&(id, None)) else {
            return Err(BrokerError::unprocessable("The instance does not exist."));
        };
        if r.work != Work::Ready {
            return Err(busy());
        }
        r.plan_id = req.plan_id.unwrap_or(r.plan_id.clone());
        r.parameters = req.parameters.or(r.parameters.take());
        Ok(UpdateOutcome::Updated(ServiceInstanceUpdateResponse::new()))
    }

    async fn deprovision(
        &self,
        id: InstanceId,
        _q: DeprovisionQuery,
        ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        self.delete((id, None), &ctx)
    }

    async fn instance_last_operation(
        &self,
        id: InstanceId,
        _q: InstanceLastOperationQuery,
        _ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        Ok(self.poll((id, None)))
    }

    async fn fetch_instance(
        &self,
        id: InstanceId,
        _q: FetchInstanceQuery,
        _ctx: RequestContext,
    ) -> Result<FetchInstanceOutcome, BrokerError> {
        let Some(r) = self.ready(&(id, None)) else {
            return Ok(FetchInstanceOutcome::NotFound);
        };
        let mut found = ServiceInstanceResource::new()
            .with_service_id(SERVICE_ID)
            .with_plan_id(r.plan_id);
        found.parameters = r.parameters;
        Ok(FetchInstanceOutcome::Found(found))
    }

    async fn bind(
        &self,
        id: InstanceId,
        binding: BindingId,
        req: ServiceBindingRequest,
        ctx: RequestContext,
    ) -> Result<BindOutcome, BrokerError> {
        // A binding is made on the instance's plan; a rotation may name none, and reuses its
        // predecessor's parameters unless it sends its own.
        let (plan_id, parameters) = {
            let state = self.state();
            let instance_plan = match state.live.get(&(id.clone(), None)) {
                None => {
                    return Err(BrokerError::bad_request(format!(
                        "Instance {id} does not exist."
                    )));
                }
                Some(r) if matches!(r.work, Work::Ready) => r.plan_id.clone(),
                Some(_) => return Err(busy()),
            };
            let mut parameters = req.parameters;
            if let Some(predecessor) = &req.predecessor_binding_id {
                let Some(old) = state.live.get(&(id.clone(), Some(predecessor.clone()))) else {
                    return Err(BrokerError::bad_request(format!(
                        "Binding {predecessor} to rotate does not exist on instance {id}."
                    )));
                };
                if parameters.is_none() {
                    parameters.clone_from(&old.parameters);
                }
            }
            (req.plan_id.unwrap_or(instance_plan), parameters)
        };
        let created = self.create((id, Some(binding)), plan_id, parameters, &ctx)?;
        let body = |r: Resource| ServiceBindingResponse::new().with_credentials(r.credentials);
        Ok(match created {
            Created::New(r) => BindOutcome::Created(body(r)),
            Created::Existing(r) => BindOutcome::AlreadyExists(body(r)),
            Created::Accepted(permit, token) => BindOutcome::accepted(permit, token),
        })
    }

    async fn unbind(
        &self,
        id: InstanceId,
        binding: BindingId,
        _q: UnbindQuery,
        ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        self.delete((id, Some(binding)), &ctx)
    }

    async fn binding_last_operation(
        &self,
        id: InstanceId,
        binding: BindingId,
        _q: BindingLastOperationQuery,
        _ctx: RequestContext,
    ) -> Result<LastOperationOutcome, BrokerError> {
        Ok(self.poll((id, Some(binding))))
    }

    async fn fetch_binding(
        &self,
        id: InstanceId,
        binding: BindingId,
        _q: FetchBindingQuery,
        _ctx: RequestContext,
    ) -> Result<FetchBindingOutcome, BrokerError> {
        let Some(r) = self.ready(&(id, Some(binding))) else {
            return Ok(FetchBindingOutcome::NotFound);
        };
        let mut found = ServiceBindingResource::new().with_credentials(r.credentials);
        found.parameters = r.parameters;
        Ok(FetchBindingOutcome::Found(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_password() {
        let text = format!("{:?}", Config::new("admin", "s3cret-pw-1"));
        assert!(text.contains("admin"), "{text}");
        assert!(!text.contains("s3cret-pw-1"), "{text}");
    }
}
