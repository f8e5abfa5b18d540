//! `osb check` against a table of planted faults: a raw axum broker that follows the spec,
//! perturbed one fault at a time. Each fault must fail the check meant for it and no other.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assert_cmd::Command;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

mod support;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    Create200,
    RepeatCreate201,
    NoProvisionConflict,
    Delete404,
    Async202WithoutAccepts,
    NoAsyncRequiredCode,
    TextErrorBody,
    NoAuthOnLastOperation,
    AnyTokenOnFetchBinding,
    MissingVersionAccepted,
    OldVersionAccepted,
    OtherMajorAccepted,
    NewerMinorRefused,
    NeverFinishes,
    BadRetryAfter,
    DashboardNullAt214,
    BindCredentialsDiffer,
    OperationChanges,
    UnknownIds500,
    MalformedJson422,
    MissingFieldsAccepted,
    UnbindRepeat200,
    NoBindConflict,
    BindRepeat201,
    SchemaIgnored,
    BindSchemaIgnored,
    MaintenanceIgnored,
    FetchInstance404,
    FetchBindingWithoutCredentials,
    PollFinishedDelete404,
    EndpointPortsNumbers,
    MetadataNotIso8601,
    ContextUpdateRefused,
    RotationRefused,
    UpdateFails,
    CreateBodyNotObject,
    /// Not a fault: the plan's maintenance_info version is the very one `osb check` probes
    /// with, so its probe breaks no rule.
    ProbeVersionIsCurrent,
}

const TOKEN: &str = "fault-token";
const SERVICE: &str = "svc-fault";
const SYNC: &str = "plan-sync";
const ASYNC: &str = "plan-async";

#[derive(Clone, Debug)]
struct Op {
    token: String,
    polls_left: u32,
    deleting: bool,
}

#[derive(Debug)]
struct Resource {
    plan: String,
    params: Value,
    credentials: Value,
    op: Option<Op>,
}

#[derive(Default, Debug)]
struct Store {
    live: HashMap<String, Resource>,
    gone: HashSet<String>,
    counter: u64,
}

#[derive(Clone)]
struct App {
    fault: Fault,
    store: Arc<Mutex<Store>>,
}

/// The sync plan's `maintenance_info.version`.
fn maintenance_version(fault: Fault) -> &'static str {
    if fault == Fault::ProbeVersionIsCurrent {
        "0.0.0-osb-check"
    } else {
        "1.0.0"
    }
}

fn catalog(fault: Fault) -> Value {
    let schema = |props: Value| {
        json!({"parameters": {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
               "properties": props, "additionalProperties": false}})
    };
    json!({"services": [{
        "id": SERVICE, "name": "fault-db", "description": "A broker with planted faults",
        "bindable": true, "instances_retrievable": true, "bindings_retrievable": true,
        "allow_context_updates": true, "plan_updateable": true,
        "plans": [
            {"id": SYNC, "name": "sync", "description": "Everything at once",
             "maintenance_info": {"version": maintenance_version(fault)}, "binding_rotatable": true,
             "schemas": {
                "service_instance": {"create": schema(json!({"size": {"type": "integer", "minimum": 1, "maximum": 10}}))},
                "service_binding": {"create": schema(json!({"role": {"enum": ["read", "write"]}}))}}},
            {"id": ASYNC, "name": "async", "description": "Work takes two polls",
             "maximum_polling_duration": 60}]}]})
}

fn reply(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

impl App {
    fn error(&self, status: u16, code: Option<&str>, description: &str) -> Response {
        if self.fault == Fault::TextErrorBody && status == 400 {
            return Response::builder()
                .status(400)
                .header("content-type", "text/plain")
                .body(Body::from("bad request"))
                .unwrap_or_default();
        }
        let mut body = json!({"description": description});
        if let Some(code) = code {
            body["error"] = json!(code);
        }
        reply(status, &body)
    }

    fn next_token(store: &mut Store, kind: &str) -> String {
        store.counter += 1;
        format!("{kind}-{}", store.counter)
    }

    fn handle(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &str) -> Response {
        let path: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
        let query: HashMap<&str, &str> = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let accepts = query.get("accepts_incomplete") == Some(&"true");
        let is_last_op = path.last() == Some(&"last_operation");
        let is_get_binding = *method == Method::GET && path.len() == 5;

        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        let auth_ok = match auth {
            Some(value) if value == format!("Bearer {TOKEN}") => true,
            Some(value) => {
                self.fault == Fault::AnyTokenOnFetchBinding
                    && is_get_binding
                    && value.starts_with("Bearer ")
            }
            None => self.fault == Fault::NoAuthOnLastOperation && is_last_op,
        };
        if !auth_ok {
            return self.error(401, None, "Unauthorized");
        }
        let version = headers
            .get("x-broker-api-version")
            .and_then(|v| v.to_str().ok());
        let version_ok = match version.and_then(|v| v.split_once('.')) {
            None => self.fault == Fault::MissingVersionAccepted,
            Some((major, minor)) => {
                let minor: u32 = minor.parse().unwrap_or(0);
                if major != "2" {
                    self.fault == Fault::OtherMajorAccepted
                } else if minor < 13 {
                    self.fault == Fault::OldVersionAccepted
                } else {
                    !(self.fault == Fault::NewerMinorRefused && minor > 17)
                }
            }
        };
        if !version_ok {
            return self.error(412, None, "Unsupported API version");
        }
        let v214 = version == Some("2.14");

        match (method.as_str(), path.as_slice()) {
            ("GET", ["v2", "catalog"]) => reply(200, &catalog(self.fault)),
            ("PUT", ["v2", "service_instances", iid]) => self.provision(iid, body, accepts, v214),
            ("PATCH", ["v2", "service_instances", iid]) => self.update(iid, body),
            ("DELETE", ["v2", "service_instances", iid]) => {
                self.delete(iid.to_string(), accepts, false)
            }
            ("GET", ["v2", "service_instances", iid]) => self.fetch_instance(iid),
            ("GET", ["v2", "service_instances", iid, "last_operation"]) => {
                self.poll(iid.to_string(), false)
            }
            ("PUT", ["v2", "service_instances", iid, "service_bindings", bid]) => {
                self.bind(iid, bid, body, accepts)
            }
            ("GET", ["v2", "service_instances", iid, "service_bindings", bid]) => {
                self.fetch_binding(&format!("{iid}/{bid}"))
            }
            ("DELETE", ["v2", "service_instances", iid, "service_bindings", bid]) => {
                self.delete(format!("{iid}/{bid}"), accepts, true)
            }
            (
                "GET",
                [
                    "v2",
                    "service_instances",
                    iid,
                    "service_bindings",
                    bid,
                    "last_operation",
                ],
            ) => self.poll(format!("{iid}/{bid}"), true),
            _ => self.error(404, None, "No such endpoint"),
        }
    }

    fn provision(&self, iid: &str, body: &str, accepts: bool, v214: bool) -> Response {
        let Ok(req) = serde_json::from_str::<Value>(body) else {
            let status = if self.fault == Fault::MalformedJson422 {
                422
            } else {
                400
            };
            return self.error(status, None, "The body is not JSON.");
        };
        let (sid, pid) = (req["service_id"].as_str(), req["plan_id"].as_str());
        let (Some(sid), Some(pid)) = (sid, pid) else {
            if self.fault == Fault::MissingFieldsAccepted {
                let mut store = self.store.lock().unwrap();
                store.live.insert(
                    iid.to_string(),
                    Resource {
                        plan: SYNC.into(),
                        params: Value::Null,
                        credentials: Value::Null,
                        op: None,
                    },
                );
                return reply(201, &json!({}));
            }
            return self.error(400, None, "service_id and plan_id are required.");
        };
        if sid != SERVICE || (pid != SYNC && pid != ASYNC) {
            if self.fault == Fault::UnknownIds500 {
                return self.error(500, None, "boom");
            }
            return self.error(400, None, "Unknown service_id or plan_id.");
        }
        if let Some(version) = req["maintenance_info"]["version"].as_str()
            && (pid != SYNC || version != maintenance_version(self.fault))
            && self.fault != Fault::MaintenanceIgnored
        {
            return self.error(
                422,
                Some("MaintenanceInfoConflict"),
                "No such maintenance_info.",
            );
        }
        let params = req.get("parameters").cloned().unwrap_or(Value::Null);
        if pid == SYNC && self.fault != Fault::SchemaIgnored && !params.is_null() {
            let ok = params.as_object().is_some_and(|m| {
                m.iter()
                    .all(|(k, v)| k == "size" && v.as_i64().is_some_and(|n| (1..=10).contains(&n)))
            });
            if !ok {
                return self.error(400, None, "The parameters do not match the schema.");
            }
        }
        let asynchronous = pid == ASYNC;
        if asynchronous && !accepts && self.fault != Fault::Async202WithoutAccepts {
            let code = (self.fault != Fault::NoAsyncRequiredCode).then_some("AsyncRequired");
            return self.error(422, code, "This plan is asynchronous.");
        }
        let mut store = self.store.lock().unwrap();
        if let Some(existing) = store.live.get(iid) {
            if existing.plan != pid || existing.params != params {
                if self.fault == Fault::NoProvisionConflict {
                    return reply(200, &json!({}));
                }
                return self.error(409, None, "It exists with other attributes.");
            }
            if let Some(op) = existing.op.clone() {
                let token = if self.fault == Fault::OperationChanges {
                    Self::next_token(&mut store, "create")
                } else {
                    op.token
                };
                return reply(202, &json!({"operation": token}));
            }
            let status = if self.fault == Fault::RepeatCreate201 {
                201
            } else {
                200
            };
            return reply(
                status,
                &json!({"dashboard_url": format!("http://dash/{iid}")}),
            );
        }
        let op = asynchronous.then(|| Op {
            token: Self::next_token(&mut store, "create"),
            polls_left: 2,
            deleting: false,
        });
        store.live.insert(
            iid.to_string(),
            Resource {
                plan: pid.into(),
                params,
                credentials: Value::Null,
                op: op.clone(),
            },
        );
        if let Some(op) = op {
            return reply(
                202,
                &json!({"operation": op.token, "dashboard_url": format!("http://dash/{iid}")}),
            );
        }
        let body = match self.fault {
            Fault::DashboardNullAt214 if v214 => json!({"dashboard_url": null}),
            Fault::CreateBodyNotObject => json!(["created"]),
            _ => {
                json!({"dashboard_url": format!("http://dash/{iid}"), "metadata": {"labels": {"a": "b"}}})
            }
        };
        let status = if self.fault == Fault::Create200 {
            200
        } else {
            201
        };
        reply(status, &body)
    }

    fn update(&self, iid: &str, body: &str) -> Response {
        let Ok(req) = serde_json::from_str::<Value>(body) else {
            return self.error(400, None, "The body is not JSON.");
        };
        if self.fault == Fault::UpdateFails
            && req.get("plan_id").is_some()
            && req.get("maintenance_info").is_none()
        {
            return self.error(500, None, "boom");
        }
        let store = self.store.lock().unwrap();
        let Some(instance) = store.live.get(iid) else {
            return self.error(404, None, "No such instance.");
        };
        if req.get("plan_id").is_none()
            && req.get("context").is_some()
            && self.fault == Fault::ContextUpdateRefused
        {
            return self.error(422, None, "Context updates are not supported.");
        }
        if let Some(version) = req["maintenance_info"]["version"].as_str()
            && (instance.plan != SYNC || version != maintenance_version(self.fault))
        {
            return self.error(
                422,
                Some("MaintenanceInfoConflict"),
                "No such maintenance_info.",
            );
        }
        reply(200, &json!({}))
    }

    fn delete(&self, key: String, accepts: bool, binding: bool) -> Response {
        let mut store = self.store.lock().unwrap();
        let Some(resource) = store.live.get(&key) else {
            return match (binding, self.fault) {
                (false, Fault::Delete404) => self.error(404, None, "No such instance."),
                (true, Fault::UnbindRepeat200) => reply(200, &json!({})),
                _ => self.error(410, None, "Gone."),
            };
        };
        if resource.plan == ASYNC {
            if !accepts {
                return self.error(422, Some("AsyncRequired"), "This plan is asynchronous.");
            }
            let token = Self::next_token(&mut store, "delete");
            if let Some(resource) = store.live.get_mut(&key) {
                resource.op = Some(Op {
                    token: token.clone(),
                    polls_left: 2,
                    deleting: true,
                });
            }
            return reply(202, &json!({"operation": token}));
        }
        store.live.remove(&key);
        if !binding {
            store.live.retain(|k, _| !k.starts_with(&format!("{key}/")));
        }
        store.gone.insert(key);
        reply(200, &json!({}))
    }

    fn poll(&self, key: String, _binding: bool) -> Response {
        let mut store = self.store.lock().unwrap();
        let Some(resource) = store.live.get_mut(&key) else {
            if store.gone.contains(&key) && self.fault != Fault::PollFinishedDelete404 {
                return self.error(410, None, "Gone.");
            }
            return self.error(404, None, "No such resource.");
        };
        let retry_after = if self.fault == Fault::BadRetryAfter {
            "soon"
        } else {
            "0"
        };
        let in_progress = || {
            let mut response = reply(200, &json!({"state": "in progress"}));
            response
                .headers_mut()
                .insert("retry-after", retry_after.parse().unwrap());
            response
        };
        let Some(op) = resource.op.as_mut() else {
            return reply(200, &json!({"state": "succeeded"}));
        };
        if self.fault == Fault::NeverFinishes {
            return in_progress();
        }
        if op.polls_left > 0 {
            op.polls_left -= 1;
            return in_progress();
        }
        if op.deleting {
            store.live.remove(&key);
            store.live.retain(|k, _| !k.starts_with(&format!("{key}/")));
            store.gone.insert(key);
        } else {
            resource.op = None;
        }
        reply(200, &json!({"state": "succeeded"}))
    }

    fn fetch_instance(&self, iid: &str) -> Response {
        let store = self.store.lock().unwrap();
        match store.live.get(iid) {
            Some(r) if r.op.is_none() && self.fault != Fault::FetchInstance404 => reply(
                200,
                &json!({"service_id": SERVICE, "plan_id": r.plan, "parameters": {}}),
            ),
            _ => self.error(404, None, "No such instance."),
        }
    }

    fn binding_body(&self, credentials: &Value) -> Value {
        let ports = if self.fault == Fault::EndpointPortsNumbers {
            json!([5432])
        } else {
            json!(["5432"])
        };
        let expires = if self.fault == Fault::MetadataNotIso8601 {
            "tomorrow"
        } else {
            "2099-01-01T00:00:00.0Z"
        };
        json!({"credentials": credentials, "endpoints": [{"host": "db.local", "ports": ports}],
               "metadata": {"expires_at": expires, "renew_before": "2098-12-01T00:00:00Z"}})
    }

    fn bind(&self, iid: &str, bid: &str, body: &str, accepts: bool) -> Response {
        let Ok(req) = serde_json::from_str::<Value>(body) else {
            return self.error(400, None, "The body is not JSON.");
        };
        let mut store = self.store.lock().unwrap();
        let Some(plan) = store.live.get(iid).map(|r| r.plan.clone()) else {
            return self.error(400, None, "No such instance.");
        };
        let mut params = req.get("parameters").cloned().unwrap_or(Value::Null);
        if let Some(predecessor) = req["predecessor_binding_id"].as_str() {
            if self.fault == Fault::RotationRefused {
                return self.error(400, None, "Rotation is not supported.");
            }
            match store.live.get(&format!("{iid}/{predecessor}")) {
                Some(old) => params = old.params.clone(),
                None => return self.error(400, None, "No such predecessor."),
            }
        } else if plan == SYNC && self.fault != Fault::BindSchemaIgnored && !params.is_null() {
            let ok = params.as_object().is_some_and(|m| {
                m.iter()
                    .all(|(k, v)| k == "role" && (v == "read" || v == "write"))
            });
            if !ok {
                return self.error(400, None, "The parameters do not match the schema.");
            }
        }
        let asynchronous = plan == ASYNC;
        if asynchronous && !accepts {
            return self.error(422, Some("AsyncRequired"), "This plan is asynchronous.");
        }
        let key = format!("{iid}/{bid}");
        store.counter += 1;
        let fresh =
            json!({"uri": format!("fault://{key}"), "password": format!("pw-{}", store.counter)});
        if let Some(existing) = store.live.get(&key) {
            if existing.params != params {
                if self.fault == Fault::NoBindConflict {
                    return reply(200, &self.binding_body(&existing.credentials));
                }
                return self.error(409, None, "It exists with other parameters.");
            }
            if let Some(op) = &existing.op {
                return reply(202, &json!({"operation": op.token}));
            }
            let credentials = if self.fault == Fault::BindCredentialsDiffer {
                fresh
            } else {
                existing.credentials.clone()
            };
            let status = if self.fault == Fault::BindRepeat201 {
                201
            } else {
                200
            };
            return reply(status, &self.binding_body(&credentials));
        }
        let op = asynchronous.then(|| Op {
            token: Self::next_token(&mut store, "bind"),
            polls_left: 2,
            deleting: false,
        });
        store.live.insert(
            key,
            Resource {
                plan,
                params,
                credentials: fresh.clone(),
                op: op.clone(),
            },
        );
        match op {
            Some(op) => reply(202, &json!({"operation": op.token})),
            None => reply(201, &self.binding_body(&fresh)),
        }
    }

    fn fetch_binding(&self, key: &str) -> Response {
        let store = self.store.lock().unwrap();
        match store.live.get(key) {
            Some(r) if r.op.is_none() => {
                let mut body = self.binding_body(&r.credentials);
                if self.fault == Fault::FetchBindingWithoutCredentials {
                    body.as_object_mut().map(|m| m.remove("credentials"));
                }
                reply(200, &body)
            }
            _ => self.error(404, None, "No such binding."),
        }
    }
}

async fn handler(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    app.handle(&method, &uri, &headers, &body)
}

/// A fault broker serving on loopback until dropped.
struct Broker {
    url: String,
    store: Arc<Mutex<Store>>,
    _runtime: tokio::runtime::Runtime,
}

fn start(fault: Fault) -> Broker {
    let runtime = support::runtime();
    let store = Arc::new(Mutex::new(Store::default()));
    let app = App {
        fault,
        store: store.clone(),
    };
    let router = axum::Router::new().fallback(handler).with_state(app);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    runtime.spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Broker {
        url: format!("http://{addr}"),
        store,
        _runtime: runtime,
    }
}

/// Runs `osb check --json` against `url`; returns (exit code, report, stderr).
fn check(url: &str, extra: &[&str]) -> (i32, Value, String) {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_osb"))
        .env("OSB_HOME", home.path())
        .env("OSB_BROKER_URL", url)
        .env("OSB_BROKER_TOKEN", TOKEN)
        .env_remove("OSB_BROKER_USERNAME")
        .env_remove("OSB_BROKER_PASSWORD")
        .env_remove("OSB_API_VERSION")
        .env_remove("OSB_ORIGINATING_IDENTITY")
        .args(["check", "--json", "--max-wait", "1s"])
        .args(extra)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("osb runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (
        output.status.code().unwrap_or(-1),
        report,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ids_with(report: &Value, status: &str) -> BTreeSet<String> {
    report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == status)
        .map(|c| c["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// fault → the check meant to catch it, and extra arguments.
const TABLE: &[(Fault, &str, &[&str])] = &[
    (Fault::Create200, "provision.create-201", &[]),
    (Fault::CreateBodyNotObject, "provision.response-body", &[]),
    (
        Fault::DashboardNullAt214,
        "provision.response-body",
        &["--api-version", "2.14"],
    ),
    (
        Fault::RepeatCreate201,
        "provision.repeat-identical-200",
        &[],
    ),
    (Fault::NoProvisionConflict, "provision.conflict-409", &[]),
    (
        Fault::OperationChanges,
        "provision.repeat-in-progress-202",
        &[],
    ),
    (Fault::Delete404, "deprovision.repeat-410", &[]),
    (Fault::UnbindRepeat200, "unbind.repeat-410", &[]),
    (
        Fault::Async202WithoutAccepts,
        "async.provision-no-202-without-accepts",
        &[],
    ),
    (
        Fault::NoAsyncRequiredCode,
        "async.provision-required-422",
        &[],
    ),
    (Fault::TextErrorBody, "bad-input.error-body", &[]),
    (Fault::NoAuthOnLastOperation, "auth.missing-401", &[]),
    (Fault::AnyTokenOnFetchBinding, "auth.wrong-401", &[]),
    (
        Fault::MissingVersionAccepted,
        "version.missing-rejected",
        &[],
    ),
    (Fault::OldVersionAccepted, "version.older-412", &[]),
    (Fault::OtherMajorAccepted, "version.other-major-412", &[]),
    (
        Fault::NewerMinorRefused,
        "version.newer-minor-accepted",
        &[],
    ),
    (Fault::NeverFinishes, "provision.poll", &[]),
    (Fault::BadRetryAfter, "lastop.retry-after", &[]),
    (
        Fault::BindCredentialsDiffer,
        "bind.repeat-same-credentials",
        &[],
    ),
    (Fault::UnknownIds500, "bad-input.unknown-ids-400", &[]),
    (Fault::MalformedJson422, "bad-input.malformed-json-400", &[]),
    (
        Fault::MissingFieldsAccepted,
        "bad-input.missing-fields-400",
        &[],
    ),
    (Fault::NoBindConflict, "bind.conflict-409", &[]),
    (Fault::BindRepeat201, "bind.repeat-identical-200", &[]),
    (Fault::SchemaIgnored, "schemas.provision-invalid-400", &[]),
    (Fault::BindSchemaIgnored, "schemas.bind-invalid-400", &[]),
    (Fault::MaintenanceIgnored, "maintenance.conflict-422", &[]),
    (Fault::FetchInstance404, "instance.fetch", &[]),
    (Fault::FetchBindingWithoutCredentials, "binding.fetch", &[]),
    (
        Fault::PollFinishedDelete404,
        "deprovision.poll-finished",
        &[],
    ),
    (Fault::EndpointPortsNumbers, "bind.endpoints-valid", &[]),
    (Fault::MetadataNotIso8601, "bind.metadata-valid", &[]),
    (Fault::ContextUpdateRefused, "update.context-only", &[]),
    (Fault::RotationRefused, "bind.rotation", &[]),
    (Fault::UpdateFails, "update.apply", &[]),
];

#[test]
fn the_good_broker_passes_every_check() {
    let broker = start(Fault::None);
    let (code, report, stderr) = check(&broker.url, &["--strict"]);
    assert_eq!(ids_with(&report, "fail"), BTreeSet::new(), "{report:#}");
    assert_eq!(code, 0, "{stderr}");
    let passed = ids_with(&report, "pass");
    // Every check meant for a fault runs (and passes) on the good broker.
    for (_, id, _) in TABLE {
        assert!(
            passed.contains(*id),
            "{id} did not pass on the good broker: {report:#}"
        );
    }
    assert!(broker.store.lock().unwrap().live.is_empty(), "left behind");
}

#[test]
fn refusal_checks_run_only_on_requests_that_break_their_rule() {
    let broker = start(Fault::ProbeVersionIsCurrent);
    let (code, report, stderr) = check(&broker.url, &["--strict"]);
    assert_eq!(ids_with(&report, "fail"), BTreeSet::new(), "{report:#}");
    assert_eq!(code, 0, "{stderr}");
    let check = |id: &str| -> Value {
        report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in {report:#}"))
    };
    let maintenance = check("maintenance.conflict-422");
    assert_eq!(maintenance["status"], "skip", "{maintenance:#}");
    assert_eq!(maintenance["rule"], "maintenance-info-version");
    assert!(
        maintenance["message"]
            .as_str()
            .unwrap_or_default()
            .contains("breaks no `maintenance-info-version` rule"),
        "{maintenance:#}"
    );
    // The other refusal checks break their rules, run, and cite them.
    for (id, rule) in [
        ("schemas.provision-invalid-400", "parameters-schema"),
        ("schemas.bind-invalid-400", "parameters-schema"),
        ("bad-input.unknown-ids-400", "known-service"),
    ] {
        let found = check(id);
        assert_eq!(found["status"], "pass", "{found:#}");
        assert_eq!(found["rule"], rule, "{found:#}");
    }
    // Checks that enforce no catalog rule cite none.
    assert_eq!(check("provision.create-201").get("rule"), None);
}

#[test]
fn each_planted_fault_is_caught_by_its_check_alone() {
    let mut missed = Vec::new();
    for (fault, id, extra) in TABLE {
        let broker = start(*fault);
        let (code, report, stderr) = check(&broker.url, extra);
        let failed = ids_with(&report, "fail");
        let expected: BTreeSet<String> = [id.to_string()].into();
        if failed != expected {
            missed.push(format!(
                "{fault:?}: expected {expected:?}, failed {failed:?}"
            ));
            continue;
        }
        let level = report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == *id))
            .map(|c| c["level"].clone())
            .unwrap_or_default();
        let wanted = if level == "MUST" { 6 } else { 0 };
        if code != wanted {
            missed.push(format!(
                "{fault:?}: exit code {code}, expected {wanted}: {stderr}"
            ));
        }
        let left = broker
            .store
            .lock()
            .unwrap()
            .live
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        if *fault == Fault::NeverFinishes {
            // Its delete never finishes either: the leftovers are reported with their ids.
            assert!(!left.is_empty());
            for key in &left {
                let id = key.split('/').next_back().unwrap_or_default();
                assert!(stderr.contains(id), "{key} not reported: {stderr}");
            }
            assert_eq!(
                report["leftovers"].as_array().map(Vec::len),
                Some(left.len())
            );
        } else if !left.is_empty() {
            missed.push(format!("{fault:?}: left behind {left:?}"));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
    assert!(TABLE.len() >= 25);
}
