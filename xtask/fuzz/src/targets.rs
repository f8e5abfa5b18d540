//! The fuzz targets.

use std::convert::Infallible;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use example_memory_broker::{ASYNC_PLAN_ID, Config, SCHEMA_PLAN_ID, SERVICE_ID, SYNC_PLAN_ID};
use http_body_util::{BodyExt as _, Full};
use osb_client::{CallOptions, Client};
use osb_types::{
    ApiVersion, BindQuery, BindingId, BindingLastOperationQuery, Catalog, CatalogIndex,
    DeprovisionQuery, ErrorResponse, FetchBindingQuery, FetchInstanceQuery, InstanceId,
    InstanceLastOperationQuery, LastOperationResource, OperationId, OriginatingIdentity,
    ProvisionQuery, RetryAfter, ServiceBindingRequest, ServiceBindingResource,
    ServiceBindingResponse, ServiceInstanceProvisionRequest, ServiceInstanceProvisionResponse,
    ServiceInstanceResource, ServiceInstanceUpdateRequest, ServiceInstanceUpdateResponse,
    UnbindQuery, UpdateQuery, decode_json, parse_query_bool, validate_id, validate_operation,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::Target;
use crate::mutate::{Rng, json_input, mutate_string, string};

fn provision_body() -> Value {
    json!({"service_id": SERVICE_ID, "plan_id": SYNC_PLAN_ID,
        "organization_guid": "org-1", "space_guid": "space-1",
        "context": {"platform": "cloudfoundry", "organization_guid": "org-1", "space_guid": "space-1"},
        "parameters": {"size": 3}, "maintenance_info": {"version": "1.0.0"}})
}

fn update_body() -> Value {
    json!({"service_id": SERVICE_ID, "plan_id": SCHEMA_PLAN_ID, "parameters": {"size": 4},
        "context": {"platform": "kubernetes", "namespace": "ns", "clusterid": "c"},
        "previous_values": {"plan_id": SYNC_PLAN_ID, "service_id": SERVICE_ID,
            "maintenance_info": {"version": "1.0.0"}},
        "maintenance_info": {"version": "1.0.0"}})
}

fn bind_body() -> Value {
    json!({"service_id": SERVICE_ID, "plan_id": SYNC_PLAN_ID, "app_guid": "app-1",
        "bind_resource": {"app_guid": "app-1", "route": "r.example"},
        "context": {"platform": "cloudfoundry"}, "parameters": {"role": "read"},
        "predecessor_binding_id": "b-0"})
}

fn binding_reply() -> Value {
    json!({"credentials": {"uri": "db://x", "password": "p"}, "syslog_drain_url": "syslog://x",
        "route_service_url": "https://r", "metadata": {"expires_at": "2026-01-01T00:00:00.000Z",
            "renew_before": "2025-12-01T00:00:00.000Z"},
        "volume_mounts": [{"driver": "d", "container_dir": "/data", "mode": "rw",
            "device_type": "shared", "device": {"volume_id": "v", "mount_config": {}}}],
        "endpoints": [{"host": "h", "ports": ["80", "8000-8010"], "protocol": "tcp"}],
        "parameters": {"role": "read"}})
}

/// Valid values of each model, the seeds of the `models` and `client` targets.
fn model_seeds() -> Vec<Value> {
    vec![
        serde_json::to_value(example_memory_broker::catalog()).unwrap_or_default(),
        provision_body(),
        update_body(),
        bind_body(),
        json!({"dashboard_url": "https://dash", "operation": "op-1",
            "metadata": {"labels": {"a": "b"}, "attributes": {"c": 1}}}),
        json!({"state": "in progress", "description": "half way", "instance_usable": true,
            "update_repeatable": false}),
        binding_reply(),
        json!({"error": "AsyncRequired", "description": "needs async", "instance_usable": false,
            "update_repeatable": true}),
        json!({"service_id": SERVICE_ID, "plan_id": SYNC_PLAN_ID, "dashboard_url": "https://d",
            "parameters": {"size": 1}, "maintenance_info": {"version": "1.0.0"},
            "metadata": {"labels": {}}}),
        json!({"operation": "op-2"}),
    ]
}

/// Decodes `bytes` as `T`; what decodes must re-encode to JSON that decodes to the same.
fn check_model<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<(), String> {
    let Ok(value) = decode_json::<T>(bytes) else {
        return Ok(());
    };
    let first = serde_json::to_value(&value).map_err(|e| format!("re-encoding failed: {e}"))?;
    let again: T = serde_json::from_value(first.clone()).map_err(|e| {
        format!(
            "{}: its own encoding does not decode ({e}): {first}",
            std::any::type_name::<T>()
        )
    })?;
    let second = serde_json::to_value(&again).map_err(|e| format!("re-encoding failed: {e}"))?;
    if first != second {
        return Err(format!(
            "{}: not stable: {first} then {second}",
            std::any::type_name::<T>()
        ));
    }
    Ok(())
}

/// Every request and reply model from mutated JSON.
pub(crate) struct Models {
    seeds: Vec<Value>,
}

impl Models {
    pub(crate) fn new() -> Self {
        Models {
            seeds: model_seeds(),
        }
    }
}

impl Target for Models {
    fn one(&mut self, rng: &mut Rng) -> Result<(), String> {
        let seed = rng.pick(&self.seeds).clone();
        let bytes = json_input(rng, &seed);
        // Every model, whatever the seed: a field of one is often valid in another.
        check_model::<Catalog>(&bytes)?;
        check_model::<ServiceInstanceProvisionRequest>(&bytes)?;
        check_model::<ServiceInstanceProvisionResponse>(&bytes)?;
        check_model::<ServiceInstanceUpdateRequest>(&bytes)?;
        check_model::<ServiceInstanceUpdateResponse>(&bytes)?;
        check_model::<ServiceInstanceResource>(&bytes)?;
        check_model::<LastOperationResource>(&bytes)?;
        check_model::<ServiceBindingRequest>(&bytes)?;
        check_model::<ServiceBindingResponse>(&bytes)?;
        check_model::<ServiceBindingResource>(&bytes)?;
        check_model::<ErrorResponse>(&bytes)?;
        check_model::<osb_types::Context>(&bytes)?;
        Ok(())
    }
}

/// The header and query parsers, and the id and operation checks.
pub(crate) struct Headers {
    identities: Vec<String>,
}

impl Headers {
    pub(crate) fn new() -> Self {
        let encode = |v: Value| base64::engine::general_purpose::STANDARD.encode(v.to_string());
        Headers {
            identities: vec![
                format!("cloudfoundry {}", encode(json!({"user_id": "u-1"}))),
                format!(
                    "kubernetes {}",
                    encode(json!({"username": "duke", "uid": "1", "groups": ["a"], "extra": {}}))
                ),
                format!("other {}", encode(json!({"x": [1, {"y": null}]}))),
            ],
        }
    }
}

impl Target for Headers {
    fn one(&mut self, rng: &mut Rng) -> Result<(), String> {
        match rng.below(6) {
            0 => {
                let text = mutate_string(rng, "2.17");
                if let Ok(version) = ApiVersion::from_str(&text) {
                    let again = ApiVersion::from_str(&version.to_string());
                    if again.as_ref().ok() != Some(&version) {
                        return Err(format!("version {text:?} prints as {version}"));
                    }
                }
            }
            1 => {
                let seed = rng.pick(&self.identities).clone();
                let text = if rng.one_in(2) {
                    mutate_string(rng, &seed)
                } else {
                    // Damage the JSON inside the Base64.
                    let (platform, encoded) = seed.split_once(' ').unwrap_or(("x", ""));
                    let json = base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .unwrap_or_default();
                    let value = serde_json::from_slice(&json).unwrap_or(Value::Null);
                    let damaged = json_input(rng, &value);
                    format!(
                        "{platform} {}",
                        base64::engine::general_purpose::STANDARD.encode(damaged)
                    )
                };
                if let Ok(identity) = OriginatingIdentity::parse(&text) {
                    let header = identity.to_header_value();
                    let again = OriginatingIdentity::parse(&header)
                        .map_err(|e| format!("identity {text:?} prints as {header:?}: {e}"))?;
                    if again != identity {
                        return Err(format!("identity {text:?} does not round-trip"));
                    }
                }
            }
            2 => {
                let seeds = ["30", "0", "Sun, 06 Nov 1994 08:49:37 GMT"];
                let seed = *rng.pick(&seeds);
                let text = mutate_string(rng, seed);
                if let Ok(retry) = RetryAfter::parse(&text) {
                    let header = retry.to_header_value();
                    RetryAfter::parse(&header)
                        .map_err(|e| format!("Retry-After {text:?} prints as {header:?}: {e}"))?;
                }
            }
            3 => {
                let text = mutate_string(rng, "true");
                let _ = parse_query_bool(&text);
            }
            4 => {
                let seed = string(rng);
                let text = mutate_string(rng, &seed);
                let _ = validate_id("instance_id", &text);
            }
            _ => {
                let text = mutate_string(rng, "op-1");
                let _ = validate_operation(&OperationId::from(text));
            }
        }
        Ok(())
    }
}

/// Mutated catalogs through the linter and the index.
pub(crate) struct CatalogLint {
    seeds: Vec<Value>,
}

impl CatalogLint {
    pub(crate) fn new() -> Self {
        let memory = serde_json::to_value(example_memory_broker::catalog()).unwrap_or_default();
        let rich = json!({"services": [{"id": "s-1", "name": "svc", "description": "d",
            "bindable": false, "plan_updateable": true, "allow_context_updates": true,
            "tags": ["t"], "requires": ["syslog_drain", "route_forwarding", "volume_mount"],
            "dashboard_client": {"id": "c", "secret": "s", "redirect_uri": "https://r"},
            "plans": [{"id": "p-1", "name": "plan", "description": "d", "free": false,
                "bindable": true, "binding_rotatable": true, "plan_updateable": false,
                "maximum_polling_duration": 60,
                "maintenance_info": {"version": "2.0.0-rc.1+b", "description": "x"},
                "metadata": {"costs": [{"amount": {"usd": 1.5}, "unit": "MONTHLY"}]},
                "schemas": {"service_instance": {
                    "create": {"parameters": {"$schema": "http://json-schema.org/draft-07/schema#",
                        "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}},
                    "update": {"parameters": {"type": "object"}}},
                    "service_binding": {"create": {"parameters": {"$schema":
                        "https://json-schema.org/draft/2020-12/schema", "type": "object"}}}}}]}]});
        CatalogLint {
            seeds: vec![memory, rich],
        }
    }
}

impl Target for CatalogLint {
    fn one(&mut self, rng: &mut Rng) -> Result<(), String> {
        let seed = rng.pick(&self.seeds).clone();
        let bytes = json_input(rng, &seed);
        if let Ok(catalog) = decode_json::<Catalog>(&bytes) {
            let problems = catalog.lint();
            let _ = osb_types::has_errors(&problems);
            let _ = CatalogIndex::new(&catalog);
        }
        Ok(())
    }
}

/// One request template: method, path, query and body (`Null`: none).
struct Template {
    method: &'static str,
    path: String,
    query: Vec<(String, String)>,
    body: Value,
}

fn templates() -> Vec<Template> {
    let i = "/v2/service_instances/fz-1";
    let b = "/v2/service_instances/fz-1/service_bindings/fb-1";
    let ids = || {
        vec![
            ("service_id".to_string(), SERVICE_ID.to_string()),
            ("plan_id".to_string(), SYNC_PLAN_ID.to_string()),
        ]
    };
    let with = |mut q: Vec<(String, String)>, k: &str, v: &str| {
        q.push((k.to_string(), v.to_string()));
        q
    };
    let mut async_provision = provision_body();
    async_provision["plan_id"] = json!(ASYNC_PLAN_ID);
    vec![
        Template {
            method: "GET",
            path: "/v2/catalog".into(),
            query: vec![],
            body: Value::Null,
        },
        Template {
            method: "PUT",
            path: i.into(),
            query: vec![],
            body: provision_body(),
        },
        Template {
            method: "PUT",
            path: i.into(),
            query: vec![("accepts_incomplete".into(), "true".into())],
            body: async_provision,
        },
        Template {
            method: "PATCH",
            path: i.into(),
            query: vec![("accepts_incomplete".into(), "true".into())],
            body: update_body(),
        },
        Template {
            method: "DELETE",
            path: i.into(),
            query: with(ids(), "accepts_incomplete", "true"),
            body: Value::Null,
        },
        Template {
            method: "GET",
            path: format!("{i}/last_operation"),
            query: with(ids(), "operation", "op-1"),
            body: Value::Null,
        },
        Template {
            method: "GET",
            path: i.into(),
            query: ids(),
            body: Value::Null,
        },
        Template {
            method: "PUT",
            path: b.into(),
            query: vec![],
            body: bind_body(),
        },
        Template {
            method: "DELETE",
            path: b.into(),
            query: ids(),
            body: Value::Null,
        },
        Template {
            method: "GET",
            path: format!("{b}/last_operation"),
            query: with(ids(), "operation", "op-1"),
            body: Value::Null,
        },
        Template {
            method: "GET",
            path: b.into(),
            query: ids(),
            body: Value::Null,
        },
    ]
}

/// Percent-encodes what a URI does not take as it is.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Mutated requests to every endpoint of the memory broker's router, in process.
pub(crate) struct Router {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    templates: Vec<Template>,
    auth: String,
    identity: String,
    statuses: std::collections::BTreeMap<String, u64>,
}

impl Router {
    pub(crate) fn new() -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let mut config = Config::new("admin", "pw");
        config.async_delay = Duration::from_millis(1);
        config.retention = Duration::from_millis(5);
        let app = runtime
            .block_on(example_memory_broker::app(config))
            .map_err(|e| e.to_string())?;
        Ok(Router {
            runtime,
            app,
            templates: templates(),
            auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("admin:pw")
            ),
            identity: Headers::new().identities[0].clone(),
            statuses: std::collections::BTreeMap::new(),
        })
    }
}

impl Target for Router {
    fn reached(&self) -> std::collections::BTreeMap<String, u64> {
        self.statuses.clone()
    }

    fn one(&mut self, rng: &mut Rng) -> Result<(), String> {
        let template = rng.pick(&self.templates);
        let mut method = template.method.to_string();
        let mut segments: Vec<String> = template.path.split('/').map(str::to_string).collect();
        let mut query = template.query.clone();
        let mut headers: Vec<(&str, String)> = vec![
            ("authorization", self.auth.clone()),
            ("x-broker-api-version", "2.17".into()),
            ("content-type", "application/json".into()),
            ("x-broker-api-originating-identity", self.identity.clone()),
            (
                "x-broker-api-request-identity",
                "9f1c6a3e-1b2d-4c5e-8f70-1a2b3c4d5e6f".into(),
            ),
        ];
        let mut body = if template.body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&template.body).unwrap_or_default()
        };
        for _ in 0..1 + rng.below(3) {
            match rng.below(10) {
                0 => {
                    method = (*rng
                        .pick(&["GET", "PUT", "PATCH", "DELETE", "POST", "HEAD", "OPTIONS"]))
                    .to_string();
                }
                1 => {
                    let i = 1 + rng.below(segments.len().saturating_sub(1).max(1));
                    if let Some(segment) = segments.get_mut(i) {
                        *segment = encode(&mutate_string(rng, segment));
                    }
                }
                2 if !query.is_empty() => {
                    let i = rng.below(query.len());
                    if rng.one_in(3) {
                        query.remove(i);
                    } else {
                        query[i].1 = mutate_string(rng, &query[i].1);
                    }
                }
                3 => {
                    let name = (*rng.pick(&[
                        "accepts_incomplete",
                        "service_id",
                        "plan_id",
                        "operation",
                        "x",
                    ]))
                    .to_string();
                    query.push((name, string(rng)));
                }
                4 => {
                    let i = rng.below(headers.len());
                    if rng.one_in(3) {
                        headers.remove(i);
                    } else {
                        headers[i].1 = mutate_string(rng, &headers[i].1);
                    }
                }
                5 if !template.body.is_null() => {
                    body = json_input(rng, &template.body);
                }
                6 => body = json_input(rng, &Value::Null),
                _ if !template.body.is_null() => body = json_input(rng, &template.body),
                _ => {}
            }
        }
        let path = segments.join("/");
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let uri = if query.is_empty() {
            path
        } else {
            format!("{path}?{}", query.join("&"))
        };
        let mut request = http::Request::builder().method(method.as_str()).uri(&uri);
        for (name, value) in &headers {
            // Values HTTP cannot carry never reach a server.
            if let Ok(value) = http::HeaderValue::from_str(value) {
                request = request.header(*name, value);
            }
        }
        let Ok(request) = request.body(axum::body::Body::from(body.clone())) else {
            return Ok(());
        };
        let app = self.app.clone();
        let (status, reply) = self.runtime.block_on(async move {
            let response = app.oneshot(request).await.unwrap_or_else(|e| match e {});
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (status, bytes)
        });
        *self
            .statuses
            .entry(status.as_u16().to_string())
            .or_default() += 1;
        let describe = || {
            format!(
                "{method} {uri} {headers:?} body {:?} -> {status} {}",
                String::from_utf8_lossy(&body[..body.len().min(300)]),
                String::from_utf8_lossy(&reply[..reply.len().min(300)])
            )
        };
        if status.is_server_error() {
            return Err(format!("5xx for a request: {}", describe()));
        }
        // The router answers for `/v2` only (it merges with other routes); the spec's body of
        // a `404` on fetches and of a `410` is `{}`.
        let ours = uri == "/v2" || uri.starts_with("/v2/") || uri.starts_with("/v2?");
        if status.is_client_error() && method != "HEAD" && ours {
            let json: Value = serde_json::from_slice(&reply)
                .map_err(|_| format!("a 4xx without a JSON body: {}", describe()))?;
            let described = json.get("description").is_some_and(Value::is_string);
            let empty_allowed =
                matches!(status, http::StatusCode::GONE | http::StatusCode::NOT_FOUND);
            if !json.is_object() || !(described || empty_allowed) {
                return Err(format!("a 4xx without an OSB error body: {}", describe()));
            }
        }
        Ok(())
    }
}

/// What the fake broker answers next.
#[derive(Clone, Default)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// osb-client's decoders: every operation against a fake broker whose replies are mutated.
pub(crate) struct ClientDecoders {
    runtime: tokio::runtime::Runtime,
    client: Client,
    next: Arc<Mutex<Reply>>,
    seeds: Vec<Value>,
}

impl ClientDecoders {
    pub(crate) fn new() -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let next = Arc::new(Mutex::new(Reply::default()));
        let shared = next.clone();
        let service = tower::service_fn(move |_request: http::Request<Full<Bytes>>| {
            let reply = shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            async move {
                let mut response = http::Response::builder().status(reply.status);
                for (name, value) in &reply.headers {
                    if let Ok(value) = http::HeaderValue::from_str(value) {
                        response = response.header(*name, value);
                    }
                }
                let response = response
                    .body(Full::new(Bytes::from(reply.body)))
                    .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new())));
                Ok::<_, Infallible>(response)
            }
        });
        let client = Client::builder("http://broker.test")
            .basic_auth("admin", "pw")
            .catalog_cache(false)
            .timeout(Duration::from_secs(5))
            .service(service)
            .build()
            .map_err(|e| e.to_string())?;
        let mut seeds = model_seeds();
        seeds.extend([json!({}), json!({"description": "x"})]);
        Ok(ClientDecoders {
            runtime,
            client,
            next,
            seeds,
        })
    }
}

impl Target for ClientDecoders {
    fn one(&mut self, rng: &mut Rng) -> Result<(), String> {
        let statuses = [
            200, 201, 202, 204, 301, 304, 400, 401, 404, 409, 410, 412, 413, 422, 500, 503,
        ];
        let status = if rng.one_in(8) {
            100 + rng.below(500) as u16
        } else {
            *rng.pick(&statuses)
        };
        let seed = rng.pick(&self.seeds).clone();
        let mut headers = vec![("content-type", "application/json".to_string())];
        if rng.one_in(2) {
            let seeds = ["5", "Sun, 06 Nov 1994 08:49:37 GMT", "-1"];
            let seed = *rng.pick(&seeds);
            headers.push(("retry-after", mutate_string(rng, seed)));
        }
        if rng.one_in(4) {
            headers.push(("etag", mutate_string(rng, "\"abc\"")));
        }
        *self.next.lock().unwrap_or_else(PoisonError::into_inner) = Reply {
            status,
            headers,
            body: json_input(rng, &seed),
        };
        let client = &self.client;
        let operation = rng.below(10);
        self.runtime.block_on(async {
            let opts = CallOptions::new();
            let id = InstanceId::new("fz-1");
            let binding = BindingId::new("fb-1");
            let provision: ServiceInstanceProvisionRequest =
                serde_json::from_value(provision_body()).unwrap_or_else(|_| {
                    ServiceInstanceProvisionRequest::new(SERVICE_ID, SYNC_PLAN_ID, "o", "s")
                });
            let bind = ServiceBindingRequest::new(SERVICE_ID, SYNC_PLAN_ID);
            let ask = ProvisionQuery::new().with_accepts_incomplete(true);
            let _ = match operation {
                0 => client.catalog(&opts).await.map(drop),
                1 => client
                    .provision(&id, &provision, &ask, &opts)
                    .await
                    .map(drop),
                2 => {
                    let update = ServiceInstanceUpdateRequest::new(SERVICE_ID);
                    let query = UpdateQuery::new().with_accepts_incomplete(true);
                    client.update(&id, &update, &query, &opts).await.map(drop)
                }
                3 => {
                    let query = DeprovisionQuery::new(SERVICE_ID, SYNC_PLAN_ID)
                        .with_accepts_incomplete(true);
                    client.deprovision(&id, &query, &opts).await.map(drop)
                }
                4 => {
                    let query = InstanceLastOperationQuery::new();
                    client
                        .instance_last_operation(&id, &query, &opts)
                        .await
                        .map(drop)
                }
                5 => {
                    let query = FetchInstanceQuery::new();
                    client.fetch_instance(&id, &query, &opts).await.map(drop)
                }
                6 => {
                    let query = BindQuery::new().with_accepts_incomplete(true);
                    client
                        .bind(&id, &binding, &bind, &query, &opts)
                        .await
                        .map(drop)
                }
                7 => {
                    let query = UnbindQuery::new(SERVICE_ID, SYNC_PLAN_ID);
                    client.unbind(&id, &binding, &query, &opts).await.map(drop)
                }
                8 => {
                    let query = BindingLastOperationQuery::new();
                    client
                        .binding_last_operation(&id, &binding, &query, &opts)
                        .await
                        .map(drop)
                }
                _ => {
                    let query = FetchBindingQuery::new();
                    client
                        .fetch_binding(&id, &binding, &query, &opts)
                        .await
                        .map(drop)
                }
            };
        });
        Ok(())
    }
}
