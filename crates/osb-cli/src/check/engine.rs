//! The checks themselves: catalog, auth, version header, bad input, and per plan the
//! lifecycle with idempotency, async, schema and 2.15–2.17 feature checks.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};

use super::http::encode_component;
use osb_types::rules::{self, ParametersFor, Rule};
use osb_types::{
    ApiVersion, Catalog, MaintenanceInfo, Plan, PlanSchemas, RetryAfter, Service,
    ServiceInstanceAsyncOperation,
};

use super::defs::{self, CheckResult, Def, Status};
use super::http::{AuthMode, Exchange, Http, Req, VersionMode, snippet};

/// Something `osb check` created and must delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resource {
    /// A service instance.
    Instance {
        /// Instance id.
        instance_id: String,
        /// Offering id.
        service_id: String,
        /// Plan id.
        plan_id: String,
    },
    /// A service binding.
    Binding {
        /// Instance id.
        instance_id: String,
        /// Binding id.
        binding_id: String,
        /// Offering id.
        service_id: String,
        /// Plan id.
        plan_id: String,
    },
}

/// What is left to delete, shared with the cleanup that runs after the checks (or Ctrl-C).
pub(crate) type Ledger = Arc<Mutex<Vec<Resource>>>;

/// The results so far, shared so an interrupted run can still report them.
pub(crate) type Results = Arc<Mutex<Vec<CheckResult>>>;

/// What to check.
#[derive(Debug)]
pub(crate) struct Options {
    /// The groups to run.
    pub(crate) groups: Vec<&'static str>,
    /// `--offering` names or ids.
    pub(crate) offerings: Vec<String>,
    /// `--plan` names or ids.
    pub(crate) plans: Vec<String>,
    /// The longest time to poll one operation.
    pub(crate) max_wait: Duration,
    /// The API version spoken.
    pub(crate) version: ApiVersion,
}

/// Why the run could not go on.
#[derive(Debug)]
pub(crate) enum Abort {
    /// The broker could not be reached.
    Unreachable(String),
    /// `--offering` / `--plan` name nothing in the catalog.
    Usage(String),
}

/// A verdict before it is recorded.
enum V {
    Pass,
    Fail(String),
    Skip(String),
}

fn fail(message: impl Into<String>) -> V {
    V::Fail(message.into())
}

/// What the checks need to know about one plan.
#[derive(Debug, Clone)]
struct PlanCtx {
    sid: String,
    pid: String,
    label: String,
    bindable: bool,
    instances_retrievable: bool,
    bindings_retrievable: bool,
    allow_context_updates: bool,
    maintenance: Option<String>,
    rotatable: bool,
    max_poll: Option<u64>,
    create_schema: Option<Value>,
    bind_schema: Option<Value>,
    sibling: Option<String>,
}

/// The engine.
#[derive(Debug)]
pub(crate) struct Engine {
    http: Http,
    opts: Options,
    results: Results,
    ledger: Ledger,
    /// The broker's catalog, once it parsed: what the rules of refusal checks are judged by.
    catalog: OnceLock<Catalog>,
}

fn new_id() -> String {
    format!("osb-check-{}", uuid::Uuid::new_v4())
}

fn instance_path(iid: &str) -> String {
    format!("/v2/service_instances/{}", encode_component(iid))
}

fn binding_path(iid: &str, bid: &str) -> String {
    format!(
        "{}/service_bindings/{}",
        instance_path(iid),
        encode_component(bid)
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a reply is an OSB error with this `error` code.
fn has_code(ex: &Exchange, code: &str) -> bool {
    ex.field("error").and_then(Value::as_str) == Some(code)
}

fn is_2xx(ex: &Exchange) -> bool {
    (200..300).contains(&ex.status())
}

/// Two distinct sets of parameters a schema accepts (`None` for the first means "send none").
fn variants(schema: Option<&Value>) -> Option<(Option<Value>, Value)> {
    let Some(schema) = schema else {
        return Some((None, json!({"osb_check": "conflict"})));
    };
    if schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
    {
        return None;
    }
    for (key, prop) in schema.get("properties")?.as_object()? {
        if let Some(values) = prop.get("enum").and_then(Value::as_array)
            && values.len() >= 2
        {
            return Some((Some(json!({key: values[0]})), json!({key: values[1]})));
        }
        match prop.get("type").and_then(Value::as_str) {
            Some("integer" | "number") => {
                let lo = prop.get("minimum").and_then(Value::as_i64).unwrap_or(1);
                let hi = prop
                    .get("maximum")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::MAX);
                if lo < hi {
                    return Some((Some(json!({key: lo})), json!({key: lo + 1})));
                }
            }
            Some("boolean") => return Some((Some(json!({key: true})), json!({key: false}))),
            Some("string") if prop.get("pattern").is_none() && prop.get("format").is_none() => {
                return Some((
                    Some(json!({key: "osb-check-a"})),
                    json!({key: "osb-check-b"}),
                ));
            }
            _ => {}
        }
    }
    None
}

/// Parameters that break a schema, when one can be made simply.
fn violating(schema: Option<&Value>) -> Option<Value> {
    let schema = schema?;
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, prop) in props {
            if prop.get("enum").is_some() {
                return Some(json!({key: {"osb-check": "not one of the enum"}}));
            }
            match prop.get("type").and_then(Value::as_str) {
                Some("string") => return Some(json!({key: 12345})),
                Some("integer" | "number" | "boolean" | "object" | "array") => {
                    return Some(json!({key: "osb-check-wrong-type"}));
                }
                _ => {}
            }
        }
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        return Some(json!({"osb-check-unknown-parameter": true}));
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array)
        && !required.is_empty()
    {
        return Some(json!({}));
    }
    None
}

/// How an operation's polling ended.
enum PollEnd {
    Succeeded,
    Failed(String),
    Gone,
    Timeout(String),
    Invalid(String),
}

/// The `Retry-After` values a plan's polls saw.
#[derive(Default)]
struct RetryLog {
    seen: usize,
    bad: Vec<Exchange>,
}

impl Engine {
    /// An engine sending with `http`.
    pub(crate) fn new(http: Http, opts: Options, results: Results, ledger: Ledger) -> Self {
        Engine {
            http,
            opts,
            results,
            ledger,
            catalog: OnceLock::new(),
        }
    }

    /// Whether the request a refusal check is about to send breaks the check's rule, as
    /// `osb_types::rules` judges it against the broker's catalog; if not, the check is skipped
    /// (a broker that accepts a request breaking no rule is right to).
    fn breaks_rule(&self, def: &'static Def, plan: Option<&PlanCtx>, body: &Value) -> bool {
        let Some(rule) = def.rule else { return true };
        let Some(catalog) = self.catalog.get() else {
            return true;
        };
        let text = |key: &str| body[key].as_str().unwrap_or_default().to_string();
        let (sid, pid) = (text("service_id"), text("plan_id"));
        let parameters = body.get("parameters").and_then(Value::as_object);
        let found = match rule {
            Rule::KnownService | Rule::PlanOfOffering => {
                rules::known_plan(catalog, &sid, &pid).err()
            }
            Rule::MaintenanceInfoVersion => {
                let requested = MaintenanceInfo::new(
                    body["maintenance_info"]["version"]
                        .as_str()
                        .unwrap_or_default(),
                );
                rules::maintenance_info_version(catalog, &sid, &pid, &requested).err()
            }
            Rule::ParametersSchema => {
                let which = if body.get("bind_resource").is_some() {
                    ParametersFor::BindingCreate
                } else {
                    ParametersFor::InstanceCreate
                };
                catalog
                    .service(&sid)
                    .and_then(|s| s.plan(&pid))
                    .and_then(|plan| PlanSchemas::compile(plan).ok())
                    .and_then(|schemas| rules::parameters_schema(&schemas, which, parameters).err())
            }
            _ => None,
        };
        match found {
            Some(violation)
                if violation.rule == rule
                    || (rule == Rule::KnownService && violation.rule == Rule::PlanOfOffering) =>
            {
                true
            }
            _ => {
                self.record(
                    def,
                    plan,
                    V::Skip(format!(
                        "the request osb check built breaks no `{rule}` rule against the catalog, so there is nothing to refuse"
                    )),
                    Vec::new(),
                );
                false
            }
        }
    }

    fn enabled(&self, group: &str) -> bool {
        self.opts.groups.contains(&group)
    }

    fn record(
        &self,
        def: &'static Def,
        plan: Option<&PlanCtx>,
        verdict: V,
        exchanges: Vec<Exchange>,
    ) {
        if !self.enabled(def.group) {
            return;
        }
        let (status, message) = match verdict {
            V::Pass => (Status::Pass, String::new()),
            V::Fail(m) => (Status::Fail, m),
            V::Skip(m) => (Status::Skip, m),
        };
        lock(&self.results).push(CheckResult {
            id: def.id,
            group: def.group,
            level: def.level,
            section: def.section,
            title: def.title,
            rule: def.rule.map(Rule::id),
            plan: plan.map(|p| p.label.clone()),
            status,
            message,
            exchanges,
        });
    }

    fn skip_all(&self, defs: &[&'static Def], plan: Option<&PlanCtx>, reason: &str) {
        for def in defs {
            self.record(def, plan, V::Skip(reason.to_string()), Vec::new());
        }
    }

    fn remember(&self, resource: Resource) {
        let mut ledger = lock(&self.ledger);
        if !ledger.contains(&resource) {
            ledger.push(resource);
        }
    }

    fn forget(&self, resource: &Resource) {
        lock(&self.ledger).retain(|r| r != resource);
    }

    fn instance(&self, p: &PlanCtx, iid: &str) -> Resource {
        Resource::Instance {
            instance_id: iid.to_string(),
            service_id: p.sid.clone(),
            plan_id: p.pid.clone(),
        }
    }

    fn binding(&self, p: &PlanCtx, iid: &str, bid: &str) -> Resource {
        Resource::Binding {
            instance_id: iid.to_string(),
            binding_id: bid.to_string(),
            service_id: p.sid.clone(),
            plan_id: p.pid.clone(),
        }
    }

    fn at_least(&self, version: ApiVersion) -> bool {
        self.opts.version >= version
    }

    /// Runs every selected group.
    pub(crate) async fn run(&self) -> Result<(), Abort> {
        let catalog = self.catalog().await?;
        if self.enabled("auth") {
            self.auth().await;
        }
        if self.enabled("version") {
            self.version().await;
        }
        let Some(catalog) = catalog else {
            return Ok(());
        };
        let plans = self.plans(&catalog)?;
        if self.enabled("bad-input") {
            match plans.first() {
                Some(p) => self.bad_input(p).await,
                None => self.skip_all(
                    &[
                        &defs::BAD_JSON,
                        &defs::BAD_MISSING,
                        &defs::BAD_UNKNOWN_IDS,
                        &defs::BAD_ERROR_BODY,
                    ],
                    None,
                    "the catalog has no plan",
                ),
            }
        }
        if ["lifecycle", "idempotency", "async", "schemas", "features"]
            .iter()
            .any(|g| self.enabled(g))
        {
            for p in &plans {
                self.plan(p).await;
            }
        }
        Ok(())
    }

    /// The catalog group; the catalog as JSON when it parses.
    async fn catalog(&self) -> Result<Option<Value>, Abort> {
        let ex = self.http.send(Req::get("/v2/catalog")).await;
        if ex.response.is_none() {
            return Err(Abort::Unreachable(ex.summary()));
        }
        let parsed = match (ex.status(), ex.json()) {
            (200, Some(json)) => serde_json::from_value::<Catalog>(json.clone())
                .map(|c| (c, json.clone()))
                .map_err(|e| format!("the catalog does not parse: {e}")),
            (200, None) => Err("the catalog is not JSON".to_string()),
            (status, _) => Err(format!("GET /v2/catalog answered {status}")),
        };
        let (catalog, value) = match parsed {
            Ok(ok) => ok,
            Err(message) => {
                self.record(&defs::CATALOG_VALID, None, fail(message), vec![ex]);
                self.skip_all(
                    &[
                        &defs::CATALOG_LINT_ERRORS,
                        &defs::CATALOG_LINT_WARNINGS,
                        &defs::CATALOG_ETAG,
                    ],
                    None,
                    "no valid catalog",
                );
                return Ok(None);
            }
        };
        self.record(&defs::CATALOG_VALID, None, V::Pass, vec![ex.clone()]);
        let _ = self.catalog.set(catalog.clone());
        let problems = catalog.lint();
        let list = |errors: bool| -> Vec<String> {
            problems
                .iter()
                .filter(|p| p.is_error() == errors)
                .map(ToString::to_string)
                .collect()
        };
        for (def, errors) in [
            (&defs::CATALOG_LINT_ERRORS, true),
            (&defs::CATALOG_LINT_WARNINGS, false),
        ] {
            let found = list(errors);
            let verdict = if found.is_empty() {
                V::Pass
            } else {
                fail(found.join("\n"))
            };
            self.record(def, None, verdict, Vec::new());
        }
        match ex.header("etag") {
            None => self.record(
                &defs::CATALOG_ETAG,
                None,
                V::Skip("the broker sends no ETag".into()),
                Vec::new(),
            ),
            Some(etag) => {
                let again = self
                    .http
                    .send(Req::get("/v2/catalog").header("If-None-Match", etag))
                    .await;
                let verdict = if again.status() == 304 {
                    V::Pass
                } else {
                    fail(format!(
                        "If-None-Match {etag} answered {}, not 304",
                        again.status()
                    ))
                };
                self.record(&defs::CATALOG_ETAG, None, verdict, vec![again]);
            }
        }
        Ok(Some(value))
    }

    /// The plans to run the lifecycle on.
    fn plans(&self, catalog: &Value) -> Result<Vec<PlanCtx>, Abort> {
        let empty = Vec::new();
        let services = catalog["services"].as_array().unwrap_or(&empty);
        let str_of = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let flag = |v: &Value, k: &str| v.get(k).and_then(Value::as_bool);
        let mut out = Vec::new();
        let mut offerings_seen = vec![false; self.opts.offerings.len()];
        let mut plans_seen = vec![false; self.opts.plans.len()];
        for s in services {
            let (sid, sname) = (str_of(s, "id"), str_of(s, "name"));
            if !self.opts.offerings.is_empty() {
                let Some(i) = self
                    .opts
                    .offerings
                    .iter()
                    .position(|o| *o == sid || *o == sname)
                else {
                    continue;
                };
                offerings_seen[i] = true;
            }
            let plans = s["plans"].as_array().unwrap_or(&empty);
            for (j, plan) in plans.iter().enumerate() {
                let (pid, pname) = (str_of(plan, "id"), str_of(plan, "name"));
                if !self.opts.plans.is_empty() {
                    let Some(i) = self
                        .opts
                        .plans
                        .iter()
                        .position(|o| *o == pid || *o == pname)
                    else {
                        continue;
                    };
                    plans_seen[i] = true;
                }
                let sibling = plans
                    .iter()
                    .enumerate()
                    .find(|(k, _)| *k != j)
                    .map(|(_, other)| str_of(other, "id"));
                let schema = |path: &[&str]| {
                    let mut v = plan.get("schemas")?;
                    for key in path {
                        v = v.get(*key)?;
                    }
                    v.get("parameters").cloned()
                };
                out.push(PlanCtx {
                    label: format!("{sname}/{pname}"),
                    bindable: flag(plan, "bindable")
                        .or(flag(s, "bindable"))
                        .unwrap_or(false),
                    instances_retrievable: flag(s, "instances_retrievable").unwrap_or(false),
                    bindings_retrievable: flag(s, "bindings_retrievable").unwrap_or(false),
                    allow_context_updates: flag(s, "allow_context_updates").unwrap_or(false),
                    maintenance: plan
                        .get("maintenance_info")
                        .and_then(|m| m.get("version"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    rotatable: flag(plan, "binding_rotatable").unwrap_or(false),
                    max_poll: plan.get("maximum_polling_duration").and_then(Value::as_u64),
                    create_schema: schema(&["service_instance", "create"]),
                    bind_schema: schema(&["service_binding", "create"]),
                    sibling,
                    sid: sid.clone(),
                    pid,
                });
            }
        }
        let unknown: Vec<&str> = (self.opts.offerings.iter().zip(&offerings_seen))
            .chain(self.opts.plans.iter().zip(&plans_seen))
            .filter(|(_, seen)| !**seen)
            .map(|(name, _)| name.as_str())
            .collect();
        if !unknown.is_empty() {
            return Err(Abort::Usage(format!(
                "not in the catalog: {}",
                unknown.join(", ")
            )));
        }
        Ok(out)
    }

    /// Every endpoint, with ids nobody uses; PUT and PATCH bodies are `{}` so that a broker
    /// that skips authentication still creates nothing.
    fn endpoints() -> Vec<Req> {
        let (iid, bid) = (new_id(), new_id());
        let (ip, bp) = (instance_path(&iid), binding_path(&iid, &bid));
        vec![
            Req::get("/v2/catalog"),
            Req::put(ip.clone(), &json!({})),
            Req::get(ip.clone()),
            Req::patch(ip.clone(), &json!({})),
            Req::delete(ip.clone())
                .q("service_id", "x")
                .q("plan_id", "x"),
            Req::get(format!("{ip}/last_operation")),
            Req::put(bp.clone(), &json!({})),
            Req::get(bp.clone()),
            Req::delete(bp.clone())
                .q("service_id", "x")
                .q("plan_id", "x"),
            Req::get(format!("{bp}/last_operation")),
        ]
    }

    async fn auth(&self) {
        if !self.http.has_credentials() {
            self.skip_all(
                &[&defs::AUTH_MISSING, &defs::AUTH_WRONG],
                None,
                "no credentials configured (OSB_BROKER_USERNAME/PASSWORD or OSB_BROKER_TOKEN)",
            );
            return;
        }
        for (def, mode) in [
            (&defs::AUTH_MISSING, AuthMode::Missing),
            (&defs::AUTH_WRONG, AuthMode::Wrong),
        ] {
            let mut failed = Vec::new();
            let mut exchanges = Vec::new();
            for req in Self::endpoints() {
                let ex = self.http.send(req.auth(mode)).await;
                if ex.status() != 401 {
                    failed.push(ex.summary());
                    exchanges.push(ex);
                }
            }
            let verdict = if failed.is_empty() {
                V::Pass
            } else {
                fail(format!("not 401: {}", failed.join("; ")))
            };
            self.record(def, None, verdict, exchanges);
        }
    }

    async fn version(&self) {
        let cases: [(&'static Def, VersionMode, &[u16]); 4] = [
            (&defs::VERSION_MISSING, VersionMode::Missing, &[400, 412]),
            (&defs::VERSION_OLDER, VersionMode::Value("2.12"), &[412]),
            (
                &defs::VERSION_NEWER_MINOR,
                VersionMode::Value("2.99"),
                &[200],
            ),
            (
                &defs::VERSION_OTHER_MAJOR,
                VersionMode::Value("3.0"),
                &[412],
            ),
        ];
        for (def, mode, expected) in cases {
            let ex = self.http.send(Req::get("/v2/catalog").version(mode)).await;
            let verdict = if expected.contains(&ex.status()) {
                V::Pass
            } else {
                let wanted: Vec<String> = expected.iter().map(u16::to_string).collect();
                fail(format!(
                    "{}, expected {}",
                    ex.summary(),
                    wanted.join(" or ")
                ))
            };
            self.record(def, None, verdict, vec![ex]);
        }
    }

    fn provision_body(&self, p: &PlanCtx, plan_id: &str, parameters: Option<&Value>) -> Value {
        let mut body = json!({
            "service_id": p.sid,
            "plan_id": plan_id,
            "organization_guid": "osb-check-org",
            "space_guid": "osb-check-space",
            "context": {"platform": "cloudfoundry", "organization_guid": "osb-check-org",
                        "space_guid": "osb-check-space", "instance_name": "osb-check"},
        });
        if let Some(parameters) = parameters {
            body["parameters"] = parameters.clone();
        }
        body
    }

    fn bind_body(&self, p: &PlanCtx, parameters: Option<&Value>) -> Value {
        let mut body = json!({
            "service_id": p.sid,
            "plan_id": p.pid,
            "bind_resource": {"app_guid": "osb-check-app"},
            "context": {"platform": "cloudfoundry", "organization_guid": "osb-check-org",
                        "space_guid": "osb-check-space"},
        });
        if let Some(parameters) = parameters {
            body["parameters"] = parameters.clone();
        }
        body
    }

    async fn bad_input(&self, p: &PlanCtx) {
        let mut bad_requests = Vec::new();
        let unknown = format!("osb-check-unknown-{}", uuid::Uuid::new_v4());
        let cases: [(&'static Def, String); 3] = [
            (&defs::BAD_JSON, "{\"service_id\": ".to_string()),
            (
                &defs::BAD_MISSING,
                json!({"organization_guid": "osb-check-org", "space_guid": "osb-check-space"})
                    .to_string(),
            ),
            (
                &defs::BAD_UNKNOWN_IDS,
                self.provision_body(
                    &PlanCtx {
                        sid: unknown.clone(),
                        ..p.clone()
                    },
                    &unknown,
                    None,
                )
                .to_string(),
            ),
        ];
        for (def, body) in cases {
            if let Ok(value) = serde_json::from_str::<Value>(&body)
                && !self.breaks_rule(def, None, &value)
            {
                continue;
            }
            let iid = new_id();
            let req = Req::put(instance_path(&iid), &Value::Null)
                .raw(body)
                .accepts_incomplete(true);
            let ex = self.http.send(req).await;
            if is_2xx(&ex) {
                self.remember(self.instance(p, &iid));
            }
            let verdict = if ex.status() == 400 {
                bad_requests.push(ex.clone());
                V::Pass
            } else {
                fail(format!("{}, expected 400", ex.summary()))
            };
            self.record(def, None, verdict, vec![ex]);
        }
        let problems: Vec<String> = bad_requests
            .iter()
            .filter_map(Exchange::error_body_problem)
            .collect();
        let verdict = match (bad_requests.is_empty(), problems.is_empty()) {
            (true, _) => V::Skip("no request was answered 400".into()),
            (false, true) => V::Pass,
            (false, false) => fail(problems.join("; ")),
        };
        self.record(&defs::BAD_ERROR_BODY, None, verdict, bad_requests);
    }

    /// Polls a last_operation endpoint until the operation ends.
    async fn poll(
        &self,
        path: &str,
        p: &PlanCtx,
        operation: Option<&str>,
        deleting: bool,
        exchanges: &mut Vec<Exchange>,
        log: &mut RetryLog,
    ) -> PollEnd {
        let limit = p
            .max_poll
            .map(Duration::from_secs)
            .map_or(self.opts.max_wait, |d| d.min(self.opts.max_wait));
        let start = Instant::now();
        let mut backoff = Duration::from_millis(50);
        let mut polls = 0usize;
        let mut last = String::from("no reply");
        loop {
            let mut req = Req::get(path.to_string())
                .q("service_id", &p.sid)
                .q("plan_id", &p.pid);
            if let Some(op) = operation {
                req = req.q("operation", op);
            }
            let ex = self.http.send(req).await;
            polls += 1;
            let mut delay = backoff;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            if let Some(value) = ex.header("retry-after") {
                log.seen += 1;
                match RetryAfter::parse(value) {
                    Ok(ra) => delay = ra.delay_from(SystemTime::now()),
                    Err(_) => {
                        if log.bad.is_empty() {
                            log.bad.push(ex.clone());
                        }
                    }
                }
            }
            let state = ex
                .field("state")
                .and_then(Value::as_str)
                .map(str::to_string);
            let end = match (ex.status(), state.as_deref()) {
                (200, Some("succeeded")) => Some(PollEnd::Succeeded),
                (200, Some("failed")) => Some(PollEnd::Failed(
                    ex.field("description")
                        .and_then(Value::as_str)
                        .unwrap_or("no description")
                        .to_string(),
                )),
                (200, Some("in progress")) => None,
                (200, other) => Some(PollEnd::Invalid(format!(
                    "last_operation answered 200 with state {other:?}, not \"in progress\", \"succeeded\" or \"failed\""
                ))),
                (410, _) if deleting => Some(PollEnd::Gone),
                _ => {
                    last = ex.summary();
                    None
                }
            };
            if polls <= 2 || end.is_some() {
                exchanges.push(ex);
            } else if let Some(previous) = exchanges.last_mut() {
                *previous = ex;
            }
            if let Some(end) = end {
                return end;
            }
            let elapsed = start.elapsed();
            if elapsed >= limit {
                return PollEnd::Timeout(format!(
                    "still not finished after {:.1} s and {polls} polls (last: {last})",
                    elapsed.as_secs_f64()
                ));
            }
            let delay = delay.max(Duration::from_millis(20)).min(limit - elapsed);
            tokio::time::sleep(delay).await;
        }
    }

    fn poll_verdict(end: &PollEnd, deleting: bool) -> V {
        match end {
            PollEnd::Succeeded => V::Pass,
            PollEnd::Gone if deleting => V::Pass,
            PollEnd::Gone => fail("last_operation answered 410"),
            PollEnd::Failed(d) => fail(format!("the operation failed: {d}")),
            PollEnd::Timeout(m) | PollEnd::Invalid(m) => fail(m.clone()),
        }
    }

    /// `provision.response-body`: field types per API version.
    fn provision_body_problem(&self, ex: &Exchange) -> Option<String> {
        let Some(Value::Object(body)) = ex.json() else {
            return Some(format!("the {} reply is not a JSON object", ex.status()));
        };
        let nullable = self.at_least(ServiceInstanceAsyncOperation::OPERATION_NULL_SINCE);
        for key in ["dashboard_url", "operation"] {
            match body.get(key) {
                None => {}
                Some(Value::Null) if nullable => {}
                Some(Value::Null) => {
                    return Some(format!(
                        "`{key}` is null, which OSB {} does not allow (null is allowed since 2.15)",
                        self.opts.version
                    ));
                }
                Some(Value::String(s)) if s.is_empty() => {
                    return Some(format!("`{key}` is an empty string"));
                }
                Some(Value::String(s)) if s.len() > 10_000 => {
                    return Some(format!("`{key}` is longer than 10,000 characters"));
                }
                Some(Value::String(_)) => {}
                Some(other) => return Some(format!("`{key}` is not a string: {other}")),
            }
        }
        if let Some(metadata) = body.get("metadata") {
            let Value::Object(m) = metadata else {
                return Some("`metadata` is not an object".into());
            };
            for key in ["labels", "attributes"] {
                if m.get(key).is_some_and(|v| !v.is_object()) {
                    return Some(format!("`metadata.{key}` is not an object"));
                }
            }
        }
        None
    }

    /// Creates a resource the way a careful platform probes: first without
    /// `accepts_incomplete` (checking the async rules), then with it when the broker asks.
    /// Returns the deciding reply (201/200/202) or `None` when creation failed.
    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        p: &PlanCtx,
        path: &str,
        body: &Value,
        resource: Resource,
        create_def: &'static Def,
        no_202: &'static Def,
        required_422: &'static Def,
    ) -> Option<Exchange> {
        let first = self.http.send(Req::put(path.to_string(), body)).await;
        if is_2xx(&first) {
            self.remember(resource.clone());
        }
        let decisive = match first.status() {
            200 | 201 => {
                self.record(no_202, Some(p), V::Pass, vec![first.clone()]);
                self.record(
                    required_422,
                    Some(p),
                    V::Skip("the plan works synchronously".into()),
                    Vec::new(),
                );
                first
            }
            202 => {
                self.record(
                    no_202,
                    Some(p),
                    fail("the broker answered 202 to a request without accepts_incomplete=true"),
                    vec![first.clone()],
                );
                self.record(
                    required_422,
                    Some(p),
                    V::Skip("the broker answered 202 instead".into()),
                    Vec::new(),
                );
                first
            }
            status if status == 422 || has_code(&first, "AsyncRequired") => {
                self.record(no_202, Some(p), V::Pass, vec![first.clone()]);
                let verdict = if status == 422 && has_code(&first, "AsyncRequired") {
                    V::Pass
                } else {
                    fail(format!(
                        "{} with error {:?}; expected 422 with error \"AsyncRequired\"",
                        first.summary(),
                        first.field("error")
                    ))
                };
                self.record(required_422, Some(p), verdict, vec![first.clone()]);
                let second = self
                    .http
                    .send(Req::put(path.to_string(), body).accepts_incomplete(true))
                    .await;
                if is_2xx(&second) {
                    self.remember(resource.clone());
                }
                second
            }
            _ => {
                self.record(no_202, Some(p), V::Pass, vec![first.clone()]);
                self.record(
                    required_422,
                    Some(p),
                    V::Skip("the create failed".into()),
                    Vec::new(),
                );
                first
            }
        };
        let verdict = match decisive.status() {
            201 | 202 => V::Pass,
            200 => {
                fail("200 for a new resource: 200 means it already existed; expected 201 (or 202)")
            }
            _ => fail(format!("{}, expected 201 or 202", decisive.summary())),
        };
        let ok = matches!(verdict, V::Pass) || decisive.status() == 200;
        self.record(create_def, Some(p), verdict, vec![decisive.clone()]);
        ok.then_some(decisive)
    }

    /// Sends an update and waits for it; the verdict of `def`.
    async fn update(
        &self,
        p: &PlanCtx,
        iid: &str,
        body: Value,
        def: &'static Def,
        log: &mut RetryLog,
    ) {
        let ex = self
            .http
            .send(Req::patch(instance_path(iid), &body).accepts_incomplete(true))
            .await;
        let mut exchanges = vec![ex.clone()];
        let verdict = match ex.status() {
            200 => V::Pass,
            202 => {
                let op = ex
                    .field("operation")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let path = format!("{}/last_operation", instance_path(iid));
                let end = self
                    .poll(&path, p, op.as_deref(), false, &mut exchanges, log)
                    .await;
                Self::poll_verdict(&end, false)
            }
            _ => fail(format!("{}, expected 200 or 202", ex.summary())),
        };
        self.record(def, Some(p), verdict, exchanges);
    }

    /// Deletes (unbind or deprovision), waiting for an asynchronous delete. Returns the
    /// operation when it was asynchronous.
    async fn delete(
        &self,
        p: &PlanCtx,
        path: &str,
        resource: &Resource,
        def: Option<&'static Def>,
        log: &mut RetryLog,
    ) -> Option<Option<String>> {
        let req = Req::delete(path.to_string())
            .q("service_id", &p.sid)
            .q("plan_id", &p.pid)
            .accepts_incomplete(true);
        let ex = self.http.send(req).await;
        let mut exchanges = vec![ex.clone()];
        let mut asynchronous = None;
        let verdict = match ex.status() {
            200 => {
                self.forget(resource);
                match ex.json() {
                    Some(Value::Object(_)) => V::Pass,
                    _ => fail("the 200 reply's body is not a JSON object (`{}`)"),
                }
            }
            202 => {
                let op = ex
                    .field("operation")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let end = self
                    .poll(
                        &format!("{path}/last_operation"),
                        p,
                        op.as_deref(),
                        true,
                        &mut exchanges,
                        log,
                    )
                    .await;
                let verdict = Self::poll_verdict(&end, true);
                if matches!(verdict, V::Pass) {
                    self.forget(resource);
                }
                asynchronous = Some(op);
                verdict
            }
            _ => fail(format!("{}, expected 200 or 202", ex.summary())),
        };
        if let Some(def) = def {
            self.record(def, Some(p), verdict, exchanges);
        }
        asynchronous
    }

    /// `…repeat-410`: deleting again answers 410.
    async fn repeat_delete(&self, p: &PlanCtx, path: &str, def: &'static Def) {
        let req = Req::delete(path.to_string())
            .q("service_id", &p.sid)
            .q("plan_id", &p.pid)
            .accepts_incomplete(true);
        let ex = self.http.send(req).await;
        let verdict = if ex.status() == 410 {
            V::Pass
        } else {
            fail(format!("{}, expected 410 Gone", ex.summary()))
        };
        self.record(def, Some(p), verdict, vec![ex]);
    }

    /// The lifecycle of one plan, with the checks that ride along.
    async fn plan(&self, p: &PlanCtx) {
        let mut log = RetryLog::default();
        self.plan_inner(p, &mut log).await;
        let verdict = match (log.seen, log.bad.is_empty()) {
            (0, _) => V::Skip("no Retry-After was sent".into()),
            (_, true) => V::Pass,
            (_, false) => fail(format!(
                "Retry-After {:?} is neither seconds nor an HTTP date",
                log.bad[0].header("retry-after").unwrap_or_default()
            )),
        };
        let bad = std::mem::take(&mut log.bad);
        self.record(&defs::LASTOP_RETRY_AFTER, Some(p), verdict, bad);
    }

    async fn plan_inner(&self, p: &PlanCtx, log: &mut RetryLog) {
        let iid = new_id();
        let ipath = instance_path(&iid);
        let body = self.provision_body(p, &p.pid, None);
        let after_create: &[&'static Def] = &[
            &defs::PROVISION_BODY,
            &defs::PROVISION_IN_PROGRESS,
            &defs::PROVISION_POLL,
            &defs::PROVISION_REPEAT,
            &defs::PROVISION_CONFLICT,
            &defs::MAINTENANCE_CONFLICT,
            &defs::SCHEMA_PROVISION,
            &defs::INSTANCE_FETCH,
            &defs::UPDATE_APPLY,
            &defs::MAINTENANCE_UPGRADE,
            &defs::CONTEXT_UPDATE,
            &defs::ASYNC_BIND_NO_202,
            &defs::ASYNC_BIND_422,
            &defs::BIND_CREATE,
            &defs::BIND_POLL,
            &defs::BIND_REPEAT,
            &defs::BIND_SAME_CREDENTIALS,
            &defs::BIND_CONFLICT,
            &defs::SCHEMA_BIND,
            &defs::BIND_ENDPOINTS,
            &defs::BIND_METADATA,
            &defs::BINDING_FETCH,
            &defs::BIND_ROTATION,
            &defs::UNBIND_DELETE,
            &defs::UNBIND_REPEAT,
            &defs::DEPROVISION_DELETE,
            &defs::DEPROVISION_REPEAT,
            &defs::DEPROVISION_POLL_FINISHED,
        ];
        let instance = self.instance(p, &iid);
        let Some(created) = self
            .create(
                p,
                &ipath,
                &body,
                instance.clone(),
                &defs::PROVISION_CREATE,
                &defs::ASYNC_PROVISION_NO_202,
                &defs::ASYNC_PROVISION_422,
            )
            .await
        else {
            self.skip_all(after_create, Some(p), "provisioning failed");
            return;
        };
        let verdict = match self.provision_body_problem(&created) {
            None => V::Pass,
            Some(problem) => fail(problem),
        };
        self.record(
            &defs::PROVISION_BODY,
            Some(p),
            verdict,
            vec![created.clone()],
        );

        // Asynchronous: an identical repeat while it runs, then poll.
        if created.status() == 202 {
            let op = created.field("operation").cloned();
            let again = self
                .http
                .send(Req::put(ipath.clone(), &body).accepts_incomplete(true))
                .await;
            let verdict = match again.status() {
                202 if again.field("operation").cloned() == op => V::Pass,
                202 => fail(format!(
                    "the repeat's operation {:?} differs from the first reply's {:?}",
                    again.field("operation"),
                    op
                )),
                200 => V::Skip("the operation had finished before the repeat".into()),
                _ => fail(format!(
                    "{}, expected 202 with the same operation",
                    again.summary()
                )),
            };
            self.record(
                &defs::PROVISION_IN_PROGRESS,
                Some(p),
                verdict,
                vec![created.clone(), again],
            );
            let mut exchanges = Vec::new();
            let op = op.as_ref().and_then(Value::as_str).map(str::to_string);
            let end = self
                .poll(
                    &format!("{ipath}/last_operation"),
                    p,
                    op.as_deref(),
                    false,
                    &mut exchanges,
                    log,
                )
                .await;
            let verdict = Self::poll_verdict(&end, false);
            let finished = matches!(verdict, V::Pass);
            self.record(&defs::PROVISION_POLL, Some(p), verdict, exchanges);
            if !finished {
                self.skip_all(&after_create[3..], Some(p), "provisioning did not finish");
                return;
            }
        } else {
            self.skip_all(
                &[&defs::PROVISION_IN_PROGRESS, &defs::PROVISION_POLL],
                Some(p),
                "the provision was synchronous",
            );
        }

        self.provision_probes(p, &ipath, &body).await;
        self.instance_probes(p, &iid, log).await;
        if p.bindable {
            self.bind_probes(p, &iid, log).await;
        } else {
            self.skip_all(&after_create[11..25], Some(p), "the plan is not bindable");
        }

        let deleted = self
            .delete(p, &ipath, &instance, Some(&defs::DEPROVISION_DELETE), log)
            .await;
        self.repeat_delete(p, &ipath, &defs::DEPROVISION_REPEAT)
            .await;
        match deleted {
            Some(op) => self.poll_finished(p, &ipath, op.as_deref()).await,
            None => self.record(
                &defs::DEPROVISION_POLL_FINISHED,
                Some(p),
                V::Skip("the deprovision was not asynchronous".into()),
                Vec::new(),
            ),
        }
    }

    /// `deprovision.poll-finished`, when the delete was asynchronous.
    async fn poll_finished(&self, p: &PlanCtx, ipath: &str, op: Option<&str>) {
        let mut req = Req::get(format!("{ipath}/last_operation"))
            .q("service_id", &p.sid)
            .q("plan_id", &p.pid);
        if let Some(op) = op {
            req = req.q("operation", op);
        }
        let ex = self.http.send(req).await;
        let verdict = match (ex.status(), ex.field("state").and_then(Value::as_str)) {
            (410, _) | (200, Some("succeeded")) => V::Pass,
            _ => fail(format!(
                "{}, expected 410 Gone (or 200 succeeded)",
                ex.summary()
            )),
        };
        self.record(&defs::DEPROVISION_POLL_FINISHED, Some(p), verdict, vec![ex]);
    }

    /// Repeats, conflicts, maintenance_info and schema probes on provision.
    async fn provision_probes(&self, p: &PlanCtx, ipath: &str, body: &Value) {
        let again = self
            .http
            .send(Req::put(ipath.to_string(), body).accepts_incomplete(true))
            .await;
        let verdict = match again.status() {
            200 => V::Pass,
            201 => {
                fail("201 for an instance that already exists with these attributes; expected 200")
            }
            _ => fail(format!("{}, expected 200", again.summary())),
        };
        self.record(&defs::PROVISION_REPEAT, Some(p), verdict, vec![again]);

        let other = match (&p.sibling, variants(p.create_schema.as_ref())) {
            (Some(sibling), _) => Some(self.provision_body(p, sibling, None)),
            (None, Some((_, b))) => Some(self.provision_body(p, &p.pid, Some(&b))),
            (None, None) => None,
        };
        match other {
            None => self.record(
                &defs::PROVISION_CONFLICT,
                Some(p),
                V::Skip("no other plan and no other valid parameters to send".into()),
                Vec::new(),
            ),
            Some(other) => {
                let ex = self
                    .http
                    .send(Req::put(ipath.to_string(), &other).accepts_incomplete(true))
                    .await;
                let verdict = if ex.status() == 409 {
                    V::Pass
                } else {
                    fail(format!("{}, expected 409 Conflict", ex.summary()))
                };
                self.record(&defs::PROVISION_CONFLICT, Some(p), verdict, vec![ex]);
            }
        }

        match &p.maintenance {
            Some(_) if self.at_least(Plan::MAINTENANCE_INFO_SINCE) => 'check: {
                let iid = new_id();
                let mut body = self.provision_body(p, &p.pid, None);
                body["maintenance_info"] = json!({"version": "0.0.0-osb-check"});
                if !self.breaks_rule(&defs::MAINTENANCE_CONFLICT, Some(p), &body) {
                    break 'check;
                }
                let ex = self
                    .http
                    .send(Req::put(instance_path(&iid), &body).accepts_incomplete(true))
                    .await;
                if is_2xx(&ex) {
                    self.remember(self.instance(p, &iid));
                }
                let verdict = if ex.status() == 422 && has_code(&ex, "MaintenanceInfoConflict") {
                    V::Pass
                } else {
                    fail(format!(
                        "{} with error {:?}; expected 422 MaintenanceInfoConflict",
                        ex.summary(),
                        ex.field("error")
                    ))
                };
                self.record(&defs::MAINTENANCE_CONFLICT, Some(p), verdict, vec![ex]);
            }
            Some(_) => self.skip_all(
                &[&defs::MAINTENANCE_CONFLICT],
                Some(p),
                "maintenance_info needs OSB 2.15",
            ),
            None => self.skip_all(
                &[&defs::MAINTENANCE_CONFLICT],
                Some(p),
                "the plan has no maintenance_info",
            ),
        }

        match violating(p.create_schema.as_ref()) {
            None => self.skip_all(
                &[&defs::SCHEMA_PROVISION],
                Some(p),
                "the plan publishes no create schema to break",
            ),
            Some(bad) => 'check: {
                let iid = new_id();
                let body = self.provision_body(p, &p.pid, Some(&bad));
                if !self.breaks_rule(&defs::SCHEMA_PROVISION, Some(p), &body) {
                    break 'check;
                }
                let ex = self
                    .http
                    .send(Req::put(instance_path(&iid), &body).accepts_incomplete(true))
                    .await;
                if is_2xx(&ex) {
                    self.remember(self.instance(p, &iid));
                }
                let verdict = if ex.status() == 400 {
                    V::Pass
                } else {
                    fail(format!(
                        "{} for parameters {bad}, expected 400",
                        ex.summary()
                    ))
                };
                self.record(&defs::SCHEMA_PROVISION, Some(p), verdict, vec![ex]);
            }
        }
    }

    /// Fetch and updates of the instance.
    async fn instance_probes(&self, p: &PlanCtx, iid: &str, log: &mut RetryLog) {
        if p.instances_retrievable && self.at_least(Service::INSTANCES_RETRIEVABLE_SINCE) {
            let ex = self
                .http
                .send(
                    Req::get(instance_path(iid))
                        .q("service_id", &p.sid)
                        .q("plan_id", &p.pid),
                )
                .await;
            let mismatch = ["service_id", "plan_id"].into_iter().find(|key| {
                let expected = if *key == "service_id" { &p.sid } else { &p.pid };
                ex.field(key).is_some_and(|v| v.as_str() != Some(expected))
            });
            let verdict = match (ex.status(), mismatch) {
                (200, None) if ex.json().is_some_and(Value::is_object) => V::Pass,
                (200, None) => fail("the 200 reply is not a JSON object"),
                (200, Some(key)) => fail(format!(
                    "`{key}` is {:?}, not the instance's",
                    ex.field(key)
                )),
                _ => fail(format!("{}, expected 200", ex.summary())),
            };
            self.record(&defs::INSTANCE_FETCH, Some(p), verdict, vec![ex]);
        } else {
            self.skip_all(
                &[&defs::INSTANCE_FETCH],
                Some(p),
                "the offering is not instances_retrievable (or OSB < 2.14)",
            );
        }

        let base = json!({"service_id": p.sid, "plan_id": p.pid,
            "previous_values": {"service_id": p.sid, "plan_id": p.pid}});
        self.update(p, iid, base.clone(), &defs::UPDATE_APPLY, log)
            .await;

        match &p.maintenance {
            Some(version)
                if self.at_least(Plan::MAINTENANCE_INFO_SINCE) && self.enabled("features") =>
            {
                let mut body = base.clone();
                body["maintenance_info"] = json!({"version": version});
                body["previous_values"]["maintenance_info"] = json!({"version": version});
                self.update(p, iid, body, &defs::MAINTENANCE_UPGRADE, log)
                    .await;
            }
            _ => self.skip_all(
                &[&defs::MAINTENANCE_UPGRADE],
                Some(p),
                "the plan has no maintenance_info (or OSB < 2.15)",
            ),
        }

        if p.allow_context_updates
            && self.at_least(Service::ALLOW_CONTEXT_UPDATES_SINCE)
            && self.enabled("features")
        {
            let body = json!({"service_id": p.sid, "context": {"platform": "cloudfoundry",
                "organization_guid": "osb-check-org", "space_guid": "osb-check-space",
                "instance_name": "osb-check-renamed"}});
            self.update(p, iid, body, &defs::CONTEXT_UPDATE, log).await;
        } else {
            self.skip_all(
                &[&defs::CONTEXT_UPDATE],
                Some(p),
                "the offering does not allow_context_updates (or OSB < 2.15)",
            );
        }
    }

    /// Binds, checks the binding's replies and rules, unbinds.
    async fn bind_probes(&self, p: &PlanCtx, iid: &str, log: &mut RetryLog) {
        let bid = new_id();
        let bpath = binding_path(iid, &bid);
        let pair = variants(p.bind_schema.as_ref());
        let first_params = pair.as_ref().and_then(|(a, _)| a.clone());
        let body = self.bind_body(p, first_params.as_ref());
        let binding = self.binding(p, iid, &bid);
        let after_bind: &[&'static Def] = &[
            &defs::BIND_POLL,
            &defs::BIND_REPEAT,
            &defs::BIND_SAME_CREDENTIALS,
            &defs::BIND_CONFLICT,
            &defs::SCHEMA_BIND,
            &defs::BIND_ENDPOINTS,
            &defs::BIND_METADATA,
            &defs::BINDING_FETCH,
            &defs::BIND_ROTATION,
            &defs::UNBIND_DELETE,
            &defs::UNBIND_REPEAT,
        ];
        let Some(created) = self
            .create(
                p,
                &bpath,
                &body,
                binding.clone(),
                &defs::BIND_CREATE,
                &defs::ASYNC_BIND_NO_202,
                &defs::ASYNC_BIND_422,
            )
            .await
        else {
            self.skip_all(after_bind, Some(p), "binding failed");
            return;
        };
        let asynchronous = created.status() == 202;
        if !asynchronous && created.field("credentials").is_some_and(|c| !c.is_object()) {
            // The create check passed on the status; credentials that are not an object fail it.
            lock(&self.results)
                .retain(|r| !(r.id == defs::BIND_CREATE.id && r.plan.as_deref() == Some(&p.label)));
            self.record(
                &defs::BIND_CREATE,
                Some(p),
                fail("`credentials` is not an object"),
                vec![created.clone()],
            );
        }
        if asynchronous {
            let op = created
                .field("operation")
                .and_then(Value::as_str)
                .map(str::to_string);
            let mut exchanges = Vec::new();
            let end = self
                .poll(
                    &format!("{bpath}/last_operation"),
                    p,
                    op.as_deref(),
                    false,
                    &mut exchanges,
                    log,
                )
                .await;
            let verdict = Self::poll_verdict(&end, false);
            let finished = matches!(verdict, V::Pass);
            self.record(&defs::BIND_POLL, Some(p), verdict, exchanges);
            if !finished {
                self.skip_all(&after_bind[1..9], Some(p), "binding did not finish");
                self.unbind_probes(p, &bpath, &binding, log).await;
                return;
            }
        } else {
            self.skip_all(&[&defs::BIND_POLL], Some(p), "the bind was synchronous");
        }

        // Fetch (also the source of the binding's details after an asynchronous bind).
        let mut details = (!asynchronous).then(|| created.clone());
        if p.bindings_retrievable && self.at_least(Service::BINDINGS_RETRIEVABLE_SINCE) {
            let ex = self
                .http
                .send(
                    Req::get(bpath.clone())
                        .q("service_id", &p.sid)
                        .q("plan_id", &p.pid),
                )
                .await;
            let had_credentials = asynchronous || created.field("credentials").is_some();
            let verdict = match ex.status() {
                200 if !ex.json().is_some_and(Value::is_object) => {
                    fail("the 200 reply is not a JSON object")
                }
                200 if had_credentials
                    && !ex.field("credentials").is_some_and(Value::is_object) =>
                {
                    fail(
                        "the binding has credentials but the fetch returns none (or not an object)",
                    )
                }
                200 => V::Pass,
                _ => fail(format!("{}, expected 200", ex.summary())),
            };
            if asynchronous && ex.status() == 200 {
                details = Some(ex.clone());
            }
            self.record(&defs::BINDING_FETCH, Some(p), verdict, vec![ex]);
        } else {
            self.skip_all(
                &[&defs::BINDING_FETCH],
                Some(p),
                "the offering is not bindings_retrievable (or OSB < 2.14)",
            );
        }
        self.binding_details(p, details.as_ref());

        // An identical repeat.
        let again = self
            .http
            .send(Req::put(bpath.clone(), &body).accepts_incomplete(true))
            .await;
        let verdict = match again.status() {
            200 => V::Pass,
            201 => {
                fail("201 for a binding that already exists with these parameters; expected 200")
            }
            _ => fail(format!("{}, expected 200", again.summary())),
        };
        self.record(&defs::BIND_REPEAT, Some(p), verdict, vec![again.clone()]);
        let verdict = match (
            asynchronous,
            created.field("credentials"),
            again.field("credentials"),
        ) {
            (true, _, _) => V::Skip("the credentials came from an asynchronous bind".into()),
            (false, Some(first), Some(second)) if is_2xx(&again) => {
                if first == second {
                    V::Pass
                } else {
                    let keys = |v: &Value| {
                        v.as_object()
                            .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
                            .unwrap_or_default()
                    };
                    fail(format!(
                        "the repeat's credentials (keys: {}) differ from the first reply's (keys: {})",
                        keys(second),
                        keys(first)
                    ))
                }
            }
            (false, None, None) => V::Skip("the broker issues no credentials".into()),
            (false, _, _) if !is_2xx(&again) => V::Skip("the repeat failed".into()),
            (false, _, _) => fail("only one of the two replies has credentials"),
        };
        self.record(
            &defs::BIND_SAME_CREDENTIALS,
            Some(p),
            verdict,
            vec![created.clone(), again],
        );

        // A conflicting repeat.
        match &pair {
            None => self.skip_all(
                &[&defs::BIND_CONFLICT],
                Some(p),
                "no two valid parameter sets to send",
            ),
            Some((_, other)) => {
                let ex = self
                    .http
                    .send(
                        Req::put(bpath.clone(), &self.bind_body(p, Some(other)))
                            .accepts_incomplete(true),
                    )
                    .await;
                let verdict = if ex.status() == 409 {
                    V::Pass
                } else {
                    fail(format!(
                        "{} for other parameters, expected 409 Conflict",
                        ex.summary()
                    ))
                };
                self.record(&defs::BIND_CONFLICT, Some(p), verdict, vec![ex]);
            }
        }

        // Parameters that break the binding schema.
        match violating(p.bind_schema.as_ref()) {
            None => self.skip_all(
                &[&defs::SCHEMA_BIND],
                Some(p),
                "the plan publishes no binding schema to break",
            ),
            Some(bad) => 'check: {
                let other = new_id();
                let body = self.bind_body(p, Some(&bad));
                if !self.breaks_rule(&defs::SCHEMA_BIND, Some(p), &body) {
                    break 'check;
                }
                let ex = self
                    .http
                    .send(Req::put(binding_path(iid, &other), &body).accepts_incomplete(true))
                    .await;
                if is_2xx(&ex) {
                    self.remember(self.binding(p, iid, &other));
                }
                let verdict = if ex.status() == 400 {
                    V::Pass
                } else {
                    fail(format!(
                        "{} for parameters {bad}, expected 400",
                        ex.summary()
                    ))
                };
                self.record(&defs::SCHEMA_BIND, Some(p), verdict, vec![ex]);
            }
        }

        // Rotation.
        if p.rotatable && self.at_least(Plan::BINDING_ROTATABLE_SINCE) && self.enabled("features") {
            let next = new_id();
            let npath = binding_path(iid, &next);
            let mut body =
                json!({"service_id": p.sid, "plan_id": p.pid, "predecessor_binding_id": bid});
            body["context"] = self.bind_body(p, None)["context"].clone();
            let ex = self
                .http
                .send(Req::put(npath.clone(), &body).accepts_incomplete(true))
                .await;
            let next_binding = self.binding(p, iid, &next);
            if is_2xx(&ex) {
                self.remember(next_binding.clone());
            }
            let mut exchanges = vec![ex.clone()];
            let verdict = match ex.status() {
                201 => V::Pass,
                202 => {
                    let op = ex
                        .field("operation")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    let end = self
                        .poll(
                            &format!("{npath}/last_operation"),
                            p,
                            op.as_deref(),
                            false,
                            &mut exchanges,
                            log,
                        )
                        .await;
                    Self::poll_verdict(&end, false)
                }
                _ => fail(format!("{}, expected 201 or 202", ex.summary())),
            };
            self.record(&defs::BIND_ROTATION, Some(p), verdict, exchanges);
            if is_2xx(&ex) {
                self.delete(p, &npath, &next_binding, None, log).await;
            }
        } else {
            self.skip_all(
                &[&defs::BIND_ROTATION],
                Some(p),
                "the plan is not binding_rotatable (or OSB < 2.17)",
            );
        }

        self.unbind_probes(p, &bpath, &binding, log).await;
    }

    async fn unbind_probes(
        &self,
        p: &PlanCtx,
        bpath: &str,
        binding: &Resource,
        log: &mut RetryLog,
    ) {
        self.delete(p, bpath, binding, Some(&defs::UNBIND_DELETE), log)
            .await;
        self.repeat_delete(p, bpath, &defs::UNBIND_REPEAT).await;
    }

    /// `bind.endpoints-valid` and `bind.metadata-valid` on the binding's details.
    fn binding_details(&self, p: &PlanCtx, details: Option<&Exchange>) {
        let Some(ex) = details else {
            self.skip_all(
                &[&defs::BIND_ENDPOINTS, &defs::BIND_METADATA],
                Some(p),
                "the binding's details could not be read",
            );
            return;
        };
        let endpoints = ex.field("endpoints");
        let verdict = match endpoints {
            None => V::Skip("the binding has no endpoints".into()),
            Some(Value::Array(list)) => match list.iter().find_map(endpoint_problem) {
                None => V::Pass,
                Some(problem) => fail(problem),
            },
            Some(_) => fail("`endpoints` is not an array"),
        };
        self.record(&defs::BIND_ENDPOINTS, Some(p), verdict, vec![ex.clone()]);
        let verdict = match ex.field("metadata") {
            None => V::Skip("the binding has no metadata".into()),
            Some(Value::Object(m)) => match metadata_problem(m) {
                None => V::Pass,
                Some(problem) => fail(problem),
            },
            Some(_) => fail("`metadata` is not an object"),
        };
        self.record(&defs::BIND_METADATA, Some(p), verdict, vec![ex.clone()]);
    }
}

fn endpoint_problem(endpoint: &Value) -> Option<String> {
    let host = endpoint.get("host").and_then(Value::as_str);
    if host.is_none_or(str::is_empty) {
        return Some(format!("endpoint {endpoint} has no host"));
    }
    let ports = endpoint.get("ports").and_then(Value::as_array);
    let good_port = |p: &Value| {
        p.as_str().is_some_and(|s| {
            let mut parts = s.splitn(2, '-');
            parts.all(|n| !n.is_empty() && n.parse::<u16>().is_ok())
        })
    };
    match ports {
        Some(list) if !list.is_empty() && list.iter().all(good_port) => {}
        _ => {
            return Some(format!(
                "endpoint {endpoint}: `ports` must be a non-empty array of strings like \"443\" or \"9000-9010\""
            ));
        }
    }
    match endpoint.get("protocol").map(|v| v.as_str()) {
        None | Some(Some("tcp" | "udp" | "all")) => None,
        Some(_) => Some(format!(
            "endpoint {endpoint}: `protocol` must be tcp, udp or all"
        )),
    }
}

fn metadata_problem(metadata: &Map<String, Value>) -> Option<String> {
    let mut times = Vec::new();
    for key in ["expires_at", "renew_before"] {
        if let Some(value) = metadata.get(key) {
            let Some(text) = value.as_str() else {
                return Some(format!("`metadata.{key}` is not a string"));
            };
            match parse_iso8601(text) {
                Some(t) => times.push(t),
                None => {
                    return Some(format!(
                        "`metadata.{key}` {} is not an ISO 8601 time",
                        snippet(text)
                    ));
                }
            }
        }
    }
    if let [expires, renew] = &times[..]
        && renew > expires
    {
        return Some("`metadata.renew_before` is after `expires_at`".into());
    }
    None
}

/// `YYYY-MM-DDThh:mm:ss[.fff]Z` as a sortable tuple (UTC only, as the spec's pattern).
fn parse_iso8601(text: &str) -> Option<(u32, u32, u32, u32, u32, u32, String)> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|n| n.parse::<u32>().ok());
    let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|n| n.parse::<u32>().ok());
    let (h, mi, s) = (t.next()??, t.next()??, t.next()??);
    let valid = date.len() == 10
        && (1..=12).contains(&mo)
        && (1..=31).contains(&day)
        && h < 24
        && mi < 60
        && s < 61
        && fraction.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| (y, mo, day, h, mi, s, fraction.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_variants_and_violations() {
        let schema = json!({"type": "object", "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 10}}});
        assert_eq!(
            variants(Some(&schema)),
            Some((Some(json!({"size": 1})), json!({"size": 2})))
        );
        assert_eq!(
            violating(Some(&schema)),
            Some(json!({"size": "osb-check-wrong-type"}))
        );
        let role = json!({"properties": {"role": {"enum": ["read", "write"]}}});
        assert_eq!(
            variants(Some(&role)),
            Some((Some(json!({"role": "read"})), json!({"role": "write"})))
        );
        assert!(violating(Some(&json!({"type": "object"}))).is_none());
        assert!(variants(Some(&json!({"required": ["x"]}))).is_none());
    }

    #[test]
    fn times_and_endpoints() {
        assert!(parse_iso8601("2019-12-31T23:59:59.0Z").is_some());
        assert!(parse_iso8601("tomorrow").is_none());
        assert!(parse_iso8601("2019-13-31T23:59:59Z").is_none());
        let mut m = Map::new();
        m.insert("expires_at".into(), json!("2030-01-01T00:00:00Z"));
        m.insert("renew_before".into(), json!("2031-01-01T00:00:00Z"));
        assert!(metadata_problem(&m).is_some());
        assert!(endpoint_problem(&json!({"host": "h", "ports": ["443", "9000-9010"]})).is_none());
        assert!(endpoint_problem(&json!({"host": "h", "ports": [443]})).is_some());
        assert!(endpoint_problem(&json!({"ports": ["1"]})).is_some());
    }
}
