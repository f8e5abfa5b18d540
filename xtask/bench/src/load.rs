//! The load generator: N keep-alive HTTP/1.1 connections (hyper), each sending its next request
//! as soon as the previous answer is read, for a fixed time; latencies in an HdrHistogram.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request of a case.
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) method: Method,
    /// Path and query.
    pub(crate) path: String,
    pub(crate) body: Option<Bytes>,
    /// Kept in [`Outcome::tags`] when the answer has an expected status (e.g. a created id).
    pub(crate) tag: Option<String>,
}

/// Makes request `seq` of connection `conn`; `None` ends that connection (nothing left to do).
pub(crate) type MakeReq = Arc<dyn Fn(usize, u64) -> Option<Req> + Send + Sync>;

/// Where and how to send.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) host: HeaderValue,
    pub(crate) auth: Option<HeaderValue>,
}

/// What one load run measured.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Answers with an expected status.
    pub(crate) ok: u64,
    /// Answers with another status.
    pub(crate) unexpected: u64,
    /// The first unexpected status and the start of its body, to say what went wrong.
    pub(crate) first_unexpected: Option<String>,
    /// Connections that failed (connect, send, read).
    pub(crate) transport_errors: u64,
    pub(crate) elapsed: Duration,
    /// Latency of the expected answers, in microseconds.
    pub(crate) histogram: Histogram<u64>,
    pub(crate) tags: Vec<String>,
}

impl Outcome {
    /// No answers yet.
    pub(crate) fn empty() -> Self {
        Outcome {
            ok: 0,
            unexpected: 0,
            first_unexpected: None,
            transport_errors: 0,
            elapsed: Duration::ZERO,
            histogram: new_histogram(),
            tags: Vec::new(),
        }
    }

    /// Expected answers per second.
    pub(crate) fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.ok as f64 / seconds
        } else {
            0.0
        }
    }
}

/// A latency histogram from 1 µs to 100 s, 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("constant bounds are valid")
}

struct ConnResult {
    ok: u64,
    unexpected: u64,
    first_unexpected: Option<String>,
    transport_errors: u64,
    histogram: Histogram<u64>,
    tags: Vec<String>,
}

/// Runs `connections` connections against `target` for `duration` (or until every connection
/// ran out of requests), accepting the statuses in `expect`.
pub(crate) async fn run(
    target: &Target,
    connections: usize,
    duration: Duration,
    make: MakeReq,
    expect: &'static [u16],
) -> Outcome {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for conn in 0..connections {
        let target = target.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            connection(&target, conn, deadline, &*make, expect).await
        }));
    }
    let mut outcome = Outcome::empty();
    for task in tasks {
        match task.await {
            Ok(r) => {
                outcome.ok += r.ok;
                outcome.unexpected += r.unexpected;
                outcome.transport_errors += r.transport_errors;
                if outcome.first_unexpected.is_none() {
                    outcome.first_unexpected = r.first_unexpected;
                }
                let _ = outcome.histogram.add(&r.histogram);
                outcome.tags.extend(r.tags);
            }
            Err(_) => outcome.transport_errors += 1,
        }
    }
    // A run that ended early (nothing left to send) counts its own time.
    outcome.elapsed = started.elapsed();
    outcome
}

async fn connection(
    target: &Target,
    conn: usize,
    deadline: Instant,
    make: &(dyn Fn(usize, u64) -> Option<Req> + Send + Sync),
    expect: &'static [u16],
) -> ConnResult {
    let mut result = ConnResult {
        ok: 0,
        unexpected: 0,
        first_unexpected: None,
        transport_errors: 0,
        histogram: new_histogram(),
        tags: Vec::new(),
    };
    let mut seq = 0u64;
    'reconnect: while Instant::now() < deadline {
        let Ok(stream) = TcpStream::connect(target.addr).await else {
            result.transport_errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, driver)) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await
        else {
            result.transport_errors += 1;
            continue;
        };
        let driver = tokio::spawn(driver);
        while Instant::now() < deadline {
            let Some(req) = make(conn, seq) else {
                driver.abort();
                break 'reconnect;
            };
            seq += 1;
            let mut builder = Request::builder()
                .method(req.method)
                .uri(req.path)
                .header(HOST, target.host.clone())
                .header("X-Broker-API-Version", "2.17");
            if let Some(auth) = &target.auth {
                builder = builder.header(AUTHORIZATION, auth.clone());
            }
            let body = match req.body {
                Some(body) => {
                    builder =
                        builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    body
                }
                None => Bytes::new(),
            };
            let Ok(request) = builder.body(Full::new(body)) else {
                result.transport_errors += 1;
                continue;
            };
            let sent = Instant::now();
            let answer = async {
                let response = sender.send_request(request).await.ok()?;
                let status = response.status().as_u16();
                let body = response.into_body().collect().await.ok()?.to_bytes();
                Some((status, body))
            }
            .await;
            let Some((status, body)) = answer else {
                result.transport_errors += 1;
                driver.abort();
                continue 'reconnect;
            };
            if expect.contains(&status) {
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = result.histogram.record(micros.max(1));
                result.ok += 1;
                if let Some(tag) = req.tag {
                    result.tags.push(tag);
                }
            } else {
                result.unexpected += 1;
                if result.first_unexpected.is_none() {
                    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                    result.first_unexpected = Some(format!("{status} {text}"));
                }
            }
        }
        driver.abort();
    }
    result
}
