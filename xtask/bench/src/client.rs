//! Client-side cases: osb-client's cost per call against raw reqwest, and one process polling
//! thousands of asynchronous operations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use osb_client::types::{InstanceId, InstanceLastOperationQuery, ServiceInstanceProvisionRequest};
use osb_client::{CallOptions, Client, OperationKind, PollOutcome, PollPolicy};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{BenchError, Result};
use crate::load::{Outcome, new_histogram};

/// Which client sends the provisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// `reqwest` with the same headers and body, decoding the reply as JSON.
    Reqwest,
    /// `osb_client::Client::provision` with its defaults (validation, request identity).
    OsbClient,
}

/// The provision body both clients send.
pub(crate) fn provision_body(service_id: &str, plan_id: &str) -> Value {
    json!({"service_id": service_id, "plan_id": plan_id,
        "organization_guid": "bench-org", "space_guid": "bench-space"})
}

/// `connections` tasks provisioning fresh instances on `url` through `via` for `duration`.
pub(crate) async fn provisions(
    http: &reqwest::Client,
    url: &str,
    via: Via,
    connections: usize,
    duration: Duration,
    body: &Value,
) -> Result<Outcome> {
    let client = Client::builder(url)
        .http_client(http.clone())
        .build()
        .map_err(|e| BenchError::Setup(format!("osb-client: {e}")))?;
    let typed: ServiceInstanceProvisionRequest = serde_json::from_value(body.clone())?;
    let started = Instant::now();
    let deadline = started + duration;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut tasks = Vec::new();
    for conn in 0..connections {
        let client = client.clone();
        let http = http.clone();
        let typed = typed.clone();
        let body = body.clone();
        let base = format!("{url}/v2/service_instances/");
        let nonce = nonce.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = new_histogram();
            let (mut ok, mut failed) = (0u64, 0u64);
            let mut seq = 0u64;
            let opts = CallOptions::new();
            let query = Default::default();
            while Instant::now() < deadline {
                seq += 1;
                let id = format!("c-{nonce}-{conn}-{seq}");
                let sent = Instant::now();
                let good = match via {
                    Via::OsbClient => client
                        .provision(&InstanceId::new(id), &typed, &query, &opts)
                        .await
                        .is_ok(),
                    Via::Reqwest => raw_provision(&http, &format!("{base}{id}"), &body).await,
                };
                if good {
                    ok += 1;
                    let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    let _ = histogram.record(micros.max(1));
                } else {
                    failed += 1;
                }
            }
            (ok, failed, histogram)
        }));
    }
    let mut outcome = Outcome::empty();
    for task in tasks {
        match task.await {
            Ok((ok, failed, histogram)) => {
                outcome.ok += ok;
                outcome.unexpected += failed;
                let _ = outcome.histogram.add(&histogram);
            }
            Err(_) => outcome.transport_errors += 1,
        }
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

async fn raw_provision(http: &reqwest::Client, url: &str, body: &Value) -> bool {
    let Ok(bytes) = serde_json::to_vec(body) else {
        return false;
    };
    let Ok(response) = http
        .put(url)
        .header("X-Broker-API-Version", "2.17")
        .header("Content-Type", "application/json")
        .body(bytes)
        .send()
        .await
    else {
        return false;
    };
    if response.status().as_u16() != 201 {
        return false;
    }
    match response.bytes().await {
        Ok(body) => serde_json::from_slice::<Value>(&body).is_ok(),
        Err(_) => false,
    }
}

/// What the poller case measured (printed as JSON by the `poller` process).
#[derive(Debug, Serialize, serde::Deserialize)]
pub(crate) struct PollerReport {
    pub(crate) operations: usize,
    pub(crate) succeeded: usize,
    /// Waits that did not end `succeeded` within their deadline.
    pub(crate) missed_deadlines: usize,
    pub(crate) polls: u64,
    pub(crate) polls_per_second: f64,
    /// How long after the broker reported success each wait ended (ms): median, 99th, max.
    pub(crate) lateness_ms_p50: u64,
    pub(crate) lateness_ms_p99: u64,
    pub(crate) lateness_ms_max: u64,
    pub(crate) seconds: f64,
    /// Peak and final resident memory of the polling process (KiB).
    pub(crate) peak_rss_kib: u64,
    pub(crate) rss_kib: u64,
}

/// Drives `operations` waits (osb-client's poller) against the poll server at `url`, which
/// answers `in progress` for `delay` after an operation's first poll, with `Retry-After`.
/// Operations start evenly over the first second. Each wait's deadline is the first poll (1 s),
/// plus `delay`, plus one `Retry-After` period, plus a second of slack.
pub(crate) async fn poller(
    url: &str,
    operations: usize,
    delay: Duration,
    retry_after: Duration,
) -> Result<PollerReport> {
    let client = Client::builder(url)
        .build()
        .map_err(|e| BenchError::Setup(format!("osb-client: {e}")))?;
    let polls = Arc::new(AtomicU64::new(0));
    let policy = PollPolicy::new();
    let first_poll = policy.min_delay;
    let limit = first_poll + delay + retry_after + Duration::from_secs(1);
    let started = Instant::now();
    let ramp = Duration::from_secs(1);
    let mut tasks = Vec::with_capacity(operations);
    for i in 0..operations {
        let client = client.clone();
        let polls = polls.clone();
        let policy = policy.clone();
        let offset = ramp.mul_f64(i as f64 / operations.max(1) as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until((started + offset).into()).await;
            let begun = Instant::now();
            let id = InstanceId::new(format!("poll-{i}"));
            let query = InstanceLastOperationQuery::new();
            let outcome = client
                .wait_for_instance_operation(&id, &query, OperationKind::Create)
                .policy(policy)
                .max_duration(limit)
                .on_progress(move |_| {
                    polls.fetch_add(1, Ordering::Relaxed);
                })
                .await;
            let took = begun.elapsed();
            let succeeded = matches!(outcome, Ok(PollOutcome::Succeeded(_)));
            let late = took.saturating_sub(first_poll + delay);
            (succeeded && took <= limit, succeeded, late)
        }));
    }
    let mut lateness = new_histogram();
    let (mut in_time, mut succeeded) = (0usize, 0usize);
    for task in tasks {
        if let Ok((on_time, ok, late)) = task.await {
            in_time += usize::from(on_time);
            succeeded += usize::from(ok);
            let _ = lateness.record(u64::try_from(late.as_millis()).unwrap_or(u64::MAX).max(1));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let polls = polls.load(Ordering::Relaxed);
    let (rss, peak) = crate::procs::rss_kib(std::process::id()).unwrap_or_default();
    Ok(PollerReport {
        operations,
        succeeded,
        missed_deadlines: operations - in_time,
        polls,
        polls_per_second: polls as f64 / seconds.max(1e-9),
        lateness_ms_p50: lateness.value_at_quantile(0.5),
        lateness_ms_p99: lateness.value_at_quantile(0.99),
        lateness_ms_max: lateness.max(),
        seconds,
        peak_rss_kib: peak,
        rss_kib: rss,
    })
}
