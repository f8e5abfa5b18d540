//! Throughput of osb-server against a bare axum handler doing the same JSON work.
//!
//! Run with `cargo bench -p osb-server --bench throughput`. Both routers are driven in process
//! through `tower::ServiceExt::oneshot` (no sockets), so the figures compare framework work only:
//! routing, header policies, guards, parsing and serialisation.
//!
//! - catalog: the bare handler serialises the catalog on every request, as a hand-written axum
//!   broker would; osb-server serves bytes computed once per OSB version.
//! - provision: both parse a `ServiceInstanceProvisionRequest` and answer `201` with a
//!   `ServiceInstanceProvisionResponse`; osb-server also checks auth, the version header, the
//!   originating identity, the catalog guards and the plan's parameter schema.
//!
//! Environment: `BENCH_ITERATIONS` (default 20000 per round), `BENCH_ROUNDS` (default 5),
//! `BENCH_CASE` (`catalog` or `provision`; default both), `BENCH_ROUTER` (`bare` or `osb`: run
//! one router only, e.g. under `valgrind --tool=callgrind`). With `BENCH_LISTEN=ADDR` it instead
//! serves the benchmark broker over HTTP on ADDR (one thread, Basic `platform:s3cret`) until
//! stopped, for load generators such as wrk and for comparisons with other frameworks.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::{get, put};
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use osb_server::types::{
    Catalog, DeleteOutcome, DeprovisionQuery, InstanceId, ProvisionOutcome,
    ServiceInstanceProvisionRequest, ServiceInstanceProvisionResponse,
};
use osb_server::{Broker, BrokerError, RequestContext, ServiceBroker, async_trait};
use serde_json::json;
use tower::ServiceExt as _;

const SERVICE: &str = "0b5f1a9e-3c44-4f7a-9a55-2d1c7e9b0a11";
const PLAN: &str = "7e2c4d1b-9a8f-4b3e-8c6d-5f0a1e2b3c44";

fn catalog() -> Catalog {
    let schema = json!({"parameters": {"$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}}});
    let plans: Vec<_> = (0..8)
        .map(|i| {
            let id = if i == 0 {
                PLAN.to_string()
            } else {
                format!("plan-{i}")
            };
            json!({"id": id, "name": format!("plan-{i}"), "description": "A plan of the benchmark",
                   "free": i % 2 == 0, "maintenance_info": {"version": "1.2.3"},
                   "metadata": {"bullets": ["one", "two"], "displayName": format!("Plan {i}")},
                   "schemas": {"service_instance": {"create": schema.clone()}}})
        })
        .collect();
    serde_json::from_value(json!({"services": [{
        "id": SERVICE, "name": "bench-db", "description": "A database for benchmarks",
        "bindable": true, "tags": ["sql", "bench"], "metadata": {"displayName": "Bench DB"},
        "plans": plans}]}))
    .expect("the benchmark catalog is valid")
}

struct BenchBroker;

#[async_trait]
impl ServiceBroker for BenchBroker {
    async fn catalog(&self) -> Result<Catalog, BrokerError> {
        Ok(catalog())
    }

    async fn provision(
        &self,
        _id: InstanceId,
        _request: ServiceInstanceProvisionRequest,
        _ctx: RequestContext,
    ) -> Result<ProvisionOutcome, BrokerError> {
        Ok(ProvisionOutcome::Created(
            ServiceInstanceProvisionResponse::new()
                .with_dashboard_url("https://dashboard.example/i"),
        ))
    }

    async fn deprovision(
        &self,
        _id: InstanceId,
        _query: DeprovisionQuery,
        _ctx: RequestContext,
    ) -> Result<DeleteOutcome, BrokerError> {
        Ok(DeleteOutcome::Deleted)
    }
}

fn bare_router() -> Router {
    let cat = catalog();
    Router::new()
        .route(
            "/v2/catalog",
            get(move || {
                let cat = cat.clone();
                async move { axum::Json(cat) }
            }),
        )
        .route(
            "/v2/service_instances/{instance_id}",
            put(
                |axum::Json(_req): axum::Json<ServiceInstanceProvisionRequest>| async {
                    let body = ServiceInstanceProvisionResponse::new()
                        .with_dashboard_url("https://dashboard.example/i");
                    (StatusCode::CREATED, axum::Json(body))
                },
            ),
        )
}

const AUTH: &str = "Basic cGxhdGZvcm06czNjcmV0"; // platform:s3cret

fn catalog_request() -> Request<Body> {
    Request::get("/v2/catalog")
        .header("x-broker-api-version", "2.17")
        .header("authorization", AUTH)
        .body(Body::empty())
        .expect("valid request")
}

/// The provision body, serialised once so the loop measures the routers, not the benchmark.
static PROVISION_BODY: std::sync::LazyLock<bytes::Bytes> = std::sync::LazyLock::new(|| {
    json!({"service_id": SERVICE, "plan_id": PLAN, "organization_guid": "org",
        "space_guid": "space", "parameters": {"size": 3},
        "context": {"platform": "cloudfoundry", "organization_guid": "org", "space_guid": "space"}})
    .to_string()
    .into()
});

fn provision_request(i: usize) -> Request<Body> {
    Request::put(format!("/v2/service_instances/instance-{i}"))
        .header("x-broker-api-version", "2.17")
        .header("authorization", AUTH)
        .header("content-type", "application/json")
        .header(
            "x-broker-api-request-identity",
            "8f1e3c1a-2b4d-4e6f-8a0b-1c2d3e4f5a6b",
        )
        .body(Body::from(PROVISION_BODY.clone()))
        .expect("valid request")
}

/// Builds the `i`-th request of a case.
type MakeRequest = dyn Fn(usize) -> Request<Body>;

async fn drive(router: &Router, make: &MakeRequest, n: usize) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        let response = router.clone().oneshot(make(i)).await.expect("infallible");
        assert!(
            response.status().is_success(),
            "unexpected status {}",
            response.status()
        );
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        std::hint::black_box(bytes);
    }
    start.elapsed()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let iterations = env_usize("BENCH_ITERATIONS", 20_000);
    let rounds = env_usize("BENCH_ROUNDS", 5).max(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let osb: Router = Broker::builder(BenchBroker)
            .basic_auth("platform", "s3cret")
            .request_timeout(if std::env::var("NO_TIMEOUT").is_ok() {
                None
            } else {
                Some(Duration::from_secs(60))
            })
            .guards(if std::env::var("NO_GUARDS").is_ok() {
                osb_server::Guards::none()
            } else {
                osb_server::Guards::all()
            })
            .build()
            .await
            .expect("the broker builds");
        if let Ok(addr) = std::env::var("BENCH_LISTEN") {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .expect("bind BENCH_LISTEN");
            println!("serving the benchmark broker on http://{addr}");
            axum::serve(listener, osb).await.expect("serve");
            return;
        }
        let bare = bare_router();
        println!(
            "{iterations} requests per round, {rounds} rounds, median requests/s (in process)"
        );
        println!(
            "{:<10} {:>12} {:>12} {:>7}",
            "endpoint", "bare axum", "osb-server", "ratio"
        );
        let cases: [(&str, &MakeRequest); 2] = [
            ("catalog", &|_| catalog_request()),
            ("provision", &provision_request),
        ];
        let only = std::env::var("BENCH_CASE").ok();
        for (name, make) in cases {
            if only.as_deref().is_some_and(|o| o != name) {
                continue;
            }
            // Warm up both routers (schema compilation, allocator, caches).
            drive(&bare, make, 500).await;
            drive(&osb, make, 500).await;
            let (mut b, mut o) = (Vec::new(), Vec::new());
            let router = std::env::var("BENCH_ROUTER").ok();
            let runs = |which: &str| router.as_deref().is_none_or(|r| r == which);
            for _ in 0..rounds {
                if runs("bare") {
                    b.push(iterations as f64 / drive(&bare, make, iterations).await.as_secs_f64());
                }
                if runs("osb") {
                    o.push(iterations as f64 / drive(&osb, make, iterations).await.as_secs_f64());
                }
            }
            if b.is_empty() || o.is_empty() {
                // One router only (for profilers): no ratio.
                let (label, rates) = if b.is_empty() {
                    ("osb-server", o)
                } else {
                    ("bare axum", b)
                };
                println!("{name:<10} {label} {:.0}", median(rates));
                continue;
            }
            let (b, o) = (median(b), median(o));
            println!("{name:<10} {b:>12.0} {o:>12.0} {:>7.2}", o / b);
        }
    });
}
