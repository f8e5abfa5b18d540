//! Structured random fuzzing of osb-rs, in process: valid inputs (models, header values,
//! catalogs, requests to every endpoint, broker replies) mutated at random — in their JSON
//! structure and in their bytes — and fed to the decoders and the router.
//!
//! Targets:
//!
//! | target | what it feeds | what must hold |
//! |---|---|---|
//! | `models` | every request and reply model of osb-types, from mutated JSON | no panic; what decodes re-encodes to JSON that decodes to the same value |
//! | `headers` | the version, originating-identity and `Retry-After` parsers, the query booleans, id and operation checks | no panic; parsed values print back to what parses to them |
//! | `catalog` | mutated catalogs through the linter and the catalog index | no panic |
//! | `router` | mutated requests (method, path, query, headers, body) to every endpoint of the memory broker's router | no panic, never a `5xx`, every `4xx` an OSB error body |
//! | `client` | osb-client's decoders: mutated replies (status, headers, body) to every operation | no panic |
//!
//! Run with `cargo xtask fuzz --time 60s [TARGET…]`; `cargo test -p osb-fuzz` runs a short
//! smoke pass of each target.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

mod mutate;
mod targets;

pub use mutate::Rng;

/// The targets, in the order a run without names takes them.
pub const TARGETS: &[&str] = &["models", "headers", "catalog", "router", "client"];

/// When a target stops.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// After this many inputs.
    Inputs(u64),
    /// After this long.
    Time(Duration),
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Inputs tried.
    pub inputs: u64,
    /// How many failed (panicked, or broke the target's property).
    pub failures: u64,
    /// The first failures, described.
    pub examples: Vec<String>,
    /// How long it ran.
    pub elapsed: Duration,
    /// What the inputs reached (for the router: how many answers of each status).
    pub reached: std::collections::BTreeMap<String, u64>,
}

/// One fuzz target: tries one input drawn from `rng`; `Err` describes a broken property.
pub(crate) trait Target {
    fn one(&mut self, rng: &mut Rng) -> Result<(), String>;

    /// What the inputs reached so far.
    fn reached(&self) -> std::collections::BTreeMap<String, u64> {
        std::collections::BTreeMap::new()
    }
}

/// Runs `target` until `stop`, drawing inputs from `seed`.
pub fn run(target: &str, stop: Stop, seed: u64) -> Result<Report, String> {
    let mut target: Box<dyn Target> = match target {
        "models" => Box::new(targets::Models::new()),
        "headers" => Box::new(targets::Headers::new()),
        "catalog" => Box::new(targets::CatalogLint::new()),
        "router" => Box::new(targets::Router::new()?),
        "client" => Box::new(targets::ClientDecoders::new()?),
        other => {
            return Err(format!(
                "no target {other:?}; targets: {}",
                TARGETS.join(", ")
            ));
        }
    };
    let mut rng = Rng::new(seed);
    let mut report = Report::default();
    let started = Instant::now();
    loop {
        let done = match stop {
            Stop::Inputs(n) => report.inputs >= n,
            Stop::Time(limit) => report.inputs % 64 == 0 && started.elapsed() >= limit,
        };
        if done {
            break;
        }
        report.inputs += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| target.one(&mut rng)));
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(panic) => Some(format!("panic: {}", panic_message(panic.as_ref()))),
        };
        if let Some(why) = failure {
            report.failures += 1;
            if report.examples.len() < 10 {
                report.examples.push(why);
            }
        }
    }
    report.elapsed = started.elapsed();
    report.reached = target.reached();
    Ok(report)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(not a string)".to_string()
    }
}

/// The peak resident memory of this process in KiB (Linux), for the report.
pub fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
