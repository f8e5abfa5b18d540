//! `osb-bench run`: starts the targets, runs the cases in alternating rounds, reports.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::Method;
use hyper::header::HeaderValue;
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{self, PollerReport, Via};
use crate::error::{BenchError, Result};
use crate::load::{self, MakeReq, Outcome, Req};
use crate::procs::{Proc, rss_kib};
use crate::stats::{median, ratio_of_rounds, round_order};

/// The server-side cases, in the order each round runs them (provision fills the pool that
/// deprovision empties).
const SERVER_CASES: [&str; 6] = [
    "catalog",
    "provision",
    "provision-repeat",
    "bind",
    "last-operation",
    "deprovision",
];
/// The other cases.
const OTHER_CASES: [&str; 4] = ["growth", "memory", "client", "poller"];

/// Basic auth of the brokers the harness starts.
const USER: &str = "bench";
const PASSWORD: &str = "bench";

/// Options of a run.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Options {
    /// Cases, comma-separated (default: all): catalog, provision, provision-repeat, bind,
    /// last-operation, deprovision, growth, memory, client, poller.
    #[arg(long, value_delimiter = ',')]
    cases: Vec<String>,
    /// How long each target runs each case in each round (`5s`, `500ms`, `1m`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Rounds; the order of the targets alternates between rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Print the results as JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also measure a running broker: `NAME=http://user:password@host:port`.
    #[arg(long = "peer", value_parser = parse_peer)]
    peers: Vec<(String, String)>,
    /// A PostgreSQL database for the kv-broker (a scratch database: the broker creates its
    /// tables there).
    #[arg(long, env = "OSB_TEST_POSTGRES_URL", hide_env_values = true)]
    postgres: Option<String>,
    /// Instances the growth case fills its second broker of each kind with.
    #[arg(long, default_value_t = 200_000)]
    growth: u64,
    /// Instances held when the memory case reads a broker's resident memory.
    #[arg(long, default_value_t = 100_000)]
    memory_instances: u64,
    /// Concurrent operations of the poller case.
    #[arg(long, default_value_t = 10_000)]
    poll_operations: usize,
    /// How long each polled operation stays `in progress`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    poll_delay: Duration,
    /// Where the release binaries are (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Targets, comma-separated (default: all): floor, memory-broker, stateful-memory,
    /// kv-sqlite, kv-postgres and the names of `--peer`s. Ratios and goals need their baselines.
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
}

/// `5s`, `250ms`, `2m`, or a number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 5s, 500ms, 1m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        other => return Err(format!("unknown unit {other:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

fn parse_peer(text: &str) -> Result<(String, String), String> {
    let (name, url) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected NAME=URL"))?;
    if name.is_empty() || !url.starts_with("http://") {
        return Err(format!("{text:?}: expected NAME=http://…"));
    }
    Ok((name.to_string(), url.trim_end_matches('/').to_string()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Floor,
    MemoryBroker,
    StatefulMemory,
    KvSqlite,
    KvPostgres,
    Peer,
}

/// A server under load.
#[derive(Debug)]
struct Target {
    name: String,
    kind: Kind,
    url: String,
    load: load::Target,
    process: Option<Proc>,
    service_id: String,
    plan_id: String,
    /// Instances to deprovision.
    pool: Arc<Mutex<Vec<String>>>,
    /// Memory after start and setup (KiB).
    idle_rss: Option<(u64, u64)>,
}

impl Target {
    fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Proc::pid)
    }
}

/// One row of results: a case on a target.
#[derive(Debug, Default, Serialize)]
struct Row {
    case: String,
    target: String,
    /// Expected answers per second, one value per round.
    rates: Vec<f64>,
    median: f64,
    p50_us: u64,
    p99_us: u64,
    /// The target the ratio compares with.
    baseline: Option<String>,
    /// Median over rounds of this target's rate over the baseline's.
    ratio: Option<f64>,
    unexpected: u64,
    transport_errors: u64,
    first_unexpected: Option<String>,
    #[serde(skip)]
    histogram: Option<Histogram<u64>>,
}

impl Row {
    fn add(&mut self, outcome: Outcome) {
        self.rates.push(outcome.rate());
        self.unexpected += outcome.unexpected;
        self.transport_errors += outcome.transport_errors;
        if self.first_unexpected.is_none() {
            self.first_unexpected = outcome.first_unexpected;
        }
        match &mut self.histogram {
            Some(h) => {
                let _ = h.add(&outcome.histogram);
            }
            None => self.histogram = Some(outcome.histogram),
        }
    }

    fn finish(&mut self) {
        self.median = median(&self.rates).unwrap_or(0.0);
        if let Some(h) = &self.histogram {
            self.p50_us = h.value_at_quantile(0.5);
            self.p99_us = h.value_at_quantile(0.99);
        }
    }
}

#[derive(Debug, Serialize)]
struct Memory {
    target: String,
    /// After start and setup (KiB).
    idle_rss_kib: Option<u64>,
    /// Holding `instances` instances (KiB).
    loaded_rss_kib: Option<u64>,
    instances: Option<u64>,
    /// The process's peak at the end of the run (KiB).
    peak_rss_kib: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Fill {
    target: String,
    instances: u64,
    seconds: f64,
    per_second: f64,
    unexpected: u64,
}

#[derive(Debug, Serialize)]
struct Goal {
    goal: String,
    value: String,
    met: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Report {
    date_unix: u64,
    machine: String,
    command: String,
    duration_s: f64,
    connections: usize,
    rounds: usize,
    rows: Vec<Row>,
    fills: Vec<Fill>,
    memory: Vec<Memory>,
    poller: Option<PollerReport>,
    goals: Vec<Goal>,
}

struct Ids {
    nonce: String,
    batch: AtomicU64,
}

impl Ids {
    /// A prefix no earlier load run used.
    fn prefix(&self) -> String {
        format!(
            "{}-{}",
            self.nonce,
            self.batch.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// Runs the benchmark.
pub(crate) async fn run(options: Options) -> Result<()> {
    let wanted = |case: &str| options.cases.is_empty() || options.cases.iter().any(|c| c == case);
    for case in &options.cases {
        if !SERVER_CASES.contains(&case.as_str()) && !OTHER_CASES.contains(&case.as_str()) {
            return Err(BenchError::Usage(format!(
                "unknown case {case:?}; cases: {}, {}",
                SERVER_CASES.join(", "),
                OTHER_CASES.join(", ")
            )));
        }
    }
    if options.connections == 0 || options.rounds == 0 {
        return Err(BenchError::Usage(
            "--connections and --rounds must be at least 1".into(),
        ));
    }
    let bin_dir = match &options.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .map_err(BenchError::io("cannot find this executable"))?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };
    let scratch =
        tempfile::tempdir().map_err(BenchError::io("cannot create a scratch directory"))?;
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| BenchError::Setup(format!("reqwest: {e}")))?;
    let ids = Ids {
        nonce: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        batch: AtomicU64::new(0),
    };
    let say = |text: &str| {
        let mut err = std::io::stderr();
        let _ = writeln!(err, "bench: {text}");
    };

    // Targets. The kv-broker first: its catalog is what the floor and the stateful layer serve.
    let start_kv = |name: &str, database: String| -> Result<Proc> {
        let mut command = Command::new(bin_dir.join("example-kv-broker"));
        broker_env(&mut command).env("OSB_DATABASE_URL", database);
        Proc::start(name, command, &scratch.path().join(format!("{name}.log")))
    };
    let start_memory = |name: &str| -> Result<Proc> {
        let mut command = Command::new(bin_dir.join("example-memory-broker"));
        broker_env(&mut command);
        Proc::start(name, command, &scratch.path().join(format!("{name}.log")))
    };
    let kv_db = |name: &str| {
        format!(
            "sqlite:{}",
            scratch.path().join(format!("{name}.db")).display()
        )
    };
    let kv = start_kv("kv-sqlite", kv_db("kv-sqlite"))?;
    let catalog = http
        .get(format!("{}/v2/catalog", kv.url))
        .basic_auth(USER, Some(PASSWORD))
        .header("X-Broker-API-Version", "2.17")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| BenchError::Setup(format!("kv-broker catalog: {e}")))?
        .bytes()
        .await
        .map_err(|e| BenchError::Setup(format!("kv-broker catalog: {e}")))?;
    let catalog_file = scratch.path().join("catalog.json");
    std::fs::write(&catalog_file, &catalog).map_err(BenchError::io("cannot write the catalog"))?;
    let bench = std::env::current_exe().map_err(BenchError::io("cannot find this executable"))?;
    let start_floor = || -> Result<Proc> {
        let mut command = Command::new(&bench);
        command.arg("floor").arg("--catalog").arg(&catalog_file);
        Proc::start("floor", command, &scratch.path().join("floor.log"))
    };
    let start_stateful = |name: &str| -> Result<Proc> {
        let mut command = Command::new(&bench);
        command
            .args([
                "stateful-memory",
                "--user",
                USER,
                "--password",
                PASSWORD,
                "--catalog",
            ])
            .arg(&catalog_file);
        Proc::start(name, command, &scratch.path().join(format!("{name}.log")))
    };

    let basic = Some(basic_auth(USER, PASSWORD));
    let mut targets = vec![
        target("floor", Kind::Floor, start_floor()?, None)?,
        target(
            "memory-broker",
            Kind::MemoryBroker,
            start_memory("memory-broker")?,
            basic.clone(),
        )?,
        target(
            "stateful-memory",
            Kind::StatefulMemory,
            start_stateful("stateful-memory")?,
            basic.clone(),
        )?,
        target("kv-sqlite", Kind::KvSqlite, kv, basic.clone())?,
    ];
    if let Some(url) = &options.postgres {
        let proc_ = start_kv("kv-postgres", url.clone())?;
        targets.push(target(
            "kv-postgres",
            Kind::KvPostgres,
            proc_,
            basic.clone(),
        )?);
    }
    for (name, url) in &options.peers {
        targets.push(peer(name, url).await?);
    }
    for name in &options.targets {
        if !targets.iter().any(|t| &t.name == name) {
            return Err(BenchError::Usage(format!(
                "unknown target {name:?}; targets: {}",
                targets
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    // Dropping a target stops its process.
    targets.retain(|t| options.targets.is_empty() || options.targets.contains(&t.name));
    for t in &mut targets {
        setup(&http, t, options.connections).await?;
        t.idle_rss = t.pid().and_then(rss_kib);
        say(&format!(
            "{} at {} ({} / plan {})",
            t.name,
            t.url,
            t.kind_name(),
            t.plan_id
        ));
    }

    // The growth twins: a second broker of each kind, filled.
    let mut fills = Vec::new();
    let mut memory = Vec::new();
    let mut twins: Vec<(usize, Target)> = Vec::new();
    if wanted("growth") || wanted("memory") {
        for (i, t) in targets.iter().enumerate() {
            let name = format!("{}-grown", t.name);
            let process = match t.kind {
                Kind::MemoryBroker => start_memory(&name)?,
                Kind::StatefulMemory => start_stateful(&name)?,
                Kind::KvSqlite => start_kv(&name, kv_db(&name))?,
                _ => continue,
            };
            let mut twin = target(&name, t.kind, process, basic.clone())?;
            setup(&http, &mut twin, options.connections).await?;
            twins.push((i, twin));
        }
        let first = options.memory_instances.min(if wanted("growth") {
            options.growth.max(options.memory_instances)
        } else {
            options.memory_instances
        });
        let target_total = if wanted("growth") {
            options.growth.max(first)
        } else {
            first
        };
        for (i, twin) in &twins {
            say(&format!("filling {} with {first} instances", twin.name));
            fills.push(fill(twin, &ids, first, options.connections).await);
            let loaded = twin.pid().and_then(rss_kib);
            memory.push(Memory {
                target: targets[*i].name.clone(),
                idle_rss_kib: targets[*i].idle_rss.map(|m| m.0),
                loaded_rss_kib: loaded.map(|m| m.0),
                instances: Some(first),
                peak_rss_kib: None,
            });
            if target_total > first {
                say(&format!(
                    "filling {} to {target_total} instances",
                    twin.name
                ));
                fills.push(fill(twin, &ids, target_total - first, options.connections).await);
            }
        }
    }

    // Server-side cases, rounds outermost so that a round's provisions are its deprovisions.
    let mut rows: BTreeMap<(usize, usize), Row> = BTreeMap::new();
    let mut growth_rows: BTreeMap<(usize, bool), Row> = BTreeMap::new();
    let server_cases: Vec<&str> = SERVER_CASES.iter().copied().filter(|c| wanted(c)).collect();
    for round in 0..options.rounds {
        for (ci, case) in SERVER_CASES.iter().enumerate() {
            if !server_cases.contains(case) {
                continue;
            }
            for ti in round_order(targets.len(), round) {
                let t = &targets[ti];
                let make = request_maker(case, t, &ids);
                // The floor keeps no state: a repeat is created again.
                let expect = match (*case, t.kind) {
                    ("provision-repeat", Kind::Floor) => &[200, 201][..],
                    _ => expected(case),
                };
                let outcome =
                    load::run(&t.load, options.connections, options.duration, make, expect).await;
                if *case == "provision" {
                    lock(&t.pool).extend(outcome.tags.iter().cloned());
                }
                say(&format!(
                    "round {} {case:>16} {:>18}: {:>9.0} req/s{}",
                    round + 1,
                    t.name,
                    outcome.rate(),
                    errors_note(&outcome)
                ));
                rows.entry((ci, ti))
                    .or_insert_with(|| Row {
                        case: (*case).into(),
                        target: t.name.clone(),
                        ..Row::default()
                    })
                    .add(outcome);
            }
        }
        if wanted("growth") {
            for pi in round_order(twins.len(), round) {
                let (bi, twin) = &twins[pi];
                let pair = [(&targets[*bi], false), (twin, true)];
                let order = round_order(2, round / 2 + pi);
                for side in order {
                    let (t, grown) = pair[side];
                    let make = request_maker("provision", t, &ids);
                    let outcome =
                        load::run(&t.load, options.connections, options.duration, make, &[201])
                            .await;
                    // Put the broker back where it was: delete what the run created.
                    let created = outcome.tags.clone();
                    say(&format!(
                        "round {} {:>16} {:>18}: {:>9.0} req/s{}",
                        round + 1,
                        "growth",
                        t.name,
                        outcome.rate(),
                        errors_note(&outcome)
                    ));
                    growth_rows
                        .entry((pi, grown))
                        .or_insert_with(|| Row {
                            case: "growth provision".into(),
                            target: t.name.clone(),
                            ..Row::default()
                        })
                        .add(outcome);
                    let pool = Arc::new(Mutex::new(created));
                    let cleanup = deprovision_maker(t, pool);
                    let _ = load::run(
                        &t.load,
                        options.connections,
                        Duration::from_secs(3600),
                        cleanup,
                        &[200, 410],
                    )
                    .await;
                }
            }
        }
    }

    // Ratios: every server case against the floor; growth against the same kind without growth.
    let floor = targets.iter().position(|t| t.kind == Kind::Floor);
    let mut table: Vec<Row> = Vec::new();
    let keys: Vec<(usize, usize)> = rows.keys().copied().collect();
    for (ci, ti) in &keys {
        let base = floor.and_then(|f| rows.get(&(*ci, f)).map(|r| r.rates.clone()));
        if let Some(row) = rows.get_mut(&(*ci, *ti)) {
            row.finish();
            if let (Some(base), false) = (base, Some(*ti) == floor) {
                row.ratio = ratio_of_rounds(&row.rates, &base);
                row.baseline = Some("floor".into());
            }
        }
    }
    table.extend(rows.into_values());
    let growth_keys: Vec<(usize, bool)> = growth_rows.keys().copied().collect();
    for (pi, grown) in &growth_keys {
        let base = growth_rows.get(&(*pi, false)).map(|r| r.rates.clone());
        if let Some(row) = growth_rows.get_mut(&(*pi, *grown)) {
            row.finish();
            if *grown && let Some(base) = base {
                row.ratio = ratio_of_rounds(&row.rates, &base);
                row.baseline = Some(targets[twins[*pi].0].name.clone());
            }
        }
    }
    table.extend(growth_rows.into_values());

    // Client-side: osb-client against raw reqwest, both provisioning on the floor.
    if wanted("client")
        && let Some(f) = floor
    {
        let floor = &targets[f];
        let body = client::provision_body(&floor.service_id, &floor.plan_id);
        let mut raw = Row {
            case: "client provision".into(),
            target: "reqwest (raw)".into(),
            ..Row::default()
        };
        let mut osb = Row {
            case: "client provision".into(),
            target: "osb-client".into(),
            ..Row::default()
        };
        for round in 0..options.rounds {
            for side in round_order(2, round) {
                let via = if side == 0 {
                    Via::Reqwest
                } else {
                    Via::OsbClient
                };
                let outcome = client::provisions(
                    &http,
                    &floor.url,
                    via,
                    options.connections,
                    options.duration,
                    &body,
                )
                .await?;
                say(&format!(
                    "round {} {:>16} {:>18}: {:>9.0} req/s{}",
                    round + 1,
                    "client",
                    if side == 0 { "reqwest" } else { "osb-client" },
                    outcome.rate(),
                    errors_note(&outcome)
                ));
                if side == 0 { &mut raw } else { &mut osb }.add(outcome);
            }
        }
        raw.finish();
        osb.finish();
        osb.ratio = ratio_of_rounds(&osb.rates, &raw.rates);
        osb.baseline = Some("reqwest (raw)".into());
        table.push(raw);
        table.push(osb);
    }

    // Poller scale, in processes of its own so that its memory is its own.
    let poller = if wanted("poller") {
        say(&format!(
            "poller: {} operations, each in progress for {:?}",
            options.poll_operations, options.poll_delay
        ));
        Some(run_poller(&bench, &scratch, &options).await?)
    } else {
        None
    };

    // Memory at the end: every process's peak.
    if wanted("memory") || wanted("growth") {
        for t in &targets {
            let peak = t.pid().and_then(rss_kib).map(|m| m.1);
            match memory.iter_mut().find(|m| m.target == t.name) {
                Some(m) => m.peak_rss_kib = peak,
                None if t.pid().is_some() => memory.push(Memory {
                    target: t.name.clone(),
                    idle_rss_kib: t.idle_rss.map(|m| m.0),
                    loaded_rss_kib: None,
                    instances: None,
                    peak_rss_kib: peak,
                }),
                None => {}
            }
        }
        for (_, twin) in &twins {
            memory.push(Memory {
                target: twin.name.clone(),
                idle_rss_kib: None,
                loaded_rss_kib: twin.pid().and_then(rss_kib).map(|m| m.0),
                instances: None,
                peak_rss_kib: twin.pid().and_then(rss_kib).map(|m| m.1),
            });
        }
    }

    let goals = goals(&table, &memory, poller.as_ref(), &options);
    let report = Report {
        date_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        machine: machine(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        duration_s: options.duration.as_secs_f64(),
        connections: options.connections,
        rounds: options.rounds,
        rows: table,
        fills,
        memory,
        poller,
        goals,
    };
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

impl Target {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Floor => "bare axum",
            Kind::MemoryBroker => "example-memory-broker",
            Kind::StatefulMemory => "osb-store Stateful over MemoryStore",
            Kind::KvSqlite => "example-kv-broker on SQLite",
            Kind::KvPostgres => "example-kv-broker on PostgreSQL",
            Kind::Peer => "peer",
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn errors_note(outcome: &Outcome) -> String {
    if outcome.unexpected == 0 && outcome.transport_errors == 0 {
        return String::new();
    }
    format!(
        " ({} unexpected, {} transport errors; first: {})",
        outcome.unexpected,
        outcome.transport_errors,
        outcome.first_unexpected.as_deref().unwrap_or("-")
    )
}

fn broker_env(command: &mut Command) -> &mut Command {
    command
        .env("OSB_LISTEN", "127.0.0.1:0")
        .env("OSB_BROKER_USERNAME", USER)
        .env("OSB_BROKER_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn")
}

fn basic_auth(user: &str, password: &str) -> HeaderValue {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    HeaderValue::from_str(&format!("Basic {token}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn load_target(url: &str, auth: Option<HeaderValue>) -> Result<load::Target> {
    let authority = url
        .strip_prefix("http://")
        .ok_or_else(|| BenchError::Setup(format!("{url}: not an http:// URL")))?;
    let authority = authority.split('/').next().unwrap_or(authority);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host_port)
        .map_err(BenchError::io(format!("cannot resolve {host_port}")))?
        .next()
        .ok_or_else(|| BenchError::Setup(format!("{host_port} resolves to nothing")))?;
    let host = HeaderValue::from_str(host_port)
        .map_err(|_| BenchError::Setup(format!("{host_port}: not a host")))?;
    Ok(load::Target { addr, host, auth })
}

fn target(name: &str, kind: Kind, process: Proc, auth: Option<HeaderValue>) -> Result<Target> {
    let url = process.url.clone();
    Ok(Target {
        name: name.into(),
        kind,
        load: load_target(&url, auth)?,
        url,
        process: Some(process),
        service_id: String::new(),
        plan_id: String::new(),
        pool: Arc::default(),
        idle_rss: None,
    })
}

async fn peer(name: &str, url: &str) -> Result<Target> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| BenchError::Usage(format!("--peer {url}: {e}")))?;
    let auth = (!parsed.username().is_empty())
        .then(|| basic_auth(parsed.username(), parsed.password().unwrap_or("")));
    let mut plain = parsed.clone();
    let _ = plain.set_username("");
    let _ = plain.set_password(None);
    let url = plain.as_str().trim_end_matches('/').to_string();
    Ok(Target {
        name: name.into(),
        kind: Kind::Peer,
        load: load_target(&url, auth)?,
        url,
        process: None,
        service_id: String::new(),
        plan_id: String::new(),
        pool: Arc::default(),
        idle_rss: None,
    })
}

/// The instance that provision-repeat sends again and again.
const REPEAT_ID: &str = "bench-repeat";

fn fixture_id(conn: usize) -> String {
    format!("bench-fixture-{conn}")
}

async fn send(
    http: &reqwest::Client,
    t: &Target,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Bytes)> {
    let mut request = http
        .request(method, format!("{}{path}", t.url))
        .header("X-Broker-API-Version", "2.17");
    if let Some(auth) = &t.load.auth {
        request = request.header("Authorization", auth.clone());
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| BenchError::Setup(format!("{}: {path}: {e}", t.name)))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| BenchError::Setup(format!("{}: {path}: {e}", t.name)))?;
    Ok((status, bytes))
}

/// Picks the first service's first synchronous plan without schemas, and provisions the
/// instances the repeat, bind and last-operation cases use.
async fn setup(http: &reqwest::Client, t: &mut Target, connections: usize) -> Result<()> {
    let (status, body) = send(http, t, reqwest::Method::GET, "/v2/catalog", None).await?;
    if status != 200 {
        return Err(BenchError::Setup(format!(
            "{}: catalog answered {status}",
            t.name
        )));
    }
    let catalog: Value = serde_json::from_slice(&body)?;
    let service = &catalog["services"][0];
    let plan = service["plans"]
        .as_array()
        .and_then(|plans| {
            plans
                .iter()
                .find(|p| p.get("maximum_polling_duration").is_none() && p.get("schemas").is_none())
        })
        .ok_or_else(|| BenchError::Setup(format!("{}: no synchronous plan", t.name)))?;
    t.service_id = service["id"].as_str().unwrap_or_default().to_string();
    t.plan_id = plan["id"].as_str().unwrap_or_default().to_string();
    let body = client::provision_body(&t.service_id, &t.plan_id);
    for id in std::iter::once(REPEAT_ID.to_string()).chain((0..connections).map(fixture_id)) {
        let path = format!("/v2/service_instances/{id}");
        let (status, reply) = send(http, t, reqwest::Method::PUT, &path, Some(&body)).await?;
        if status != 201 && status != 200 {
            return Err(BenchError::Setup(format!(
                "{}: provisioning {id} answered {status}: {}",
                t.name,
                String::from_utf8_lossy(&reply)
            )));
        }
    }
    Ok(())
}

fn expected(case: &str) -> &'static [u16] {
    match case {
        "provision" | "bind" => &[201],
        _ => &[200],
    }
}

fn provision_bytes(t: &Target) -> Bytes {
    Bytes::from(client::provision_body(&t.service_id, &t.plan_id).to_string())
}

fn request_maker(case: &str, t: &Target, ids: &Ids) -> MakeReq {
    let prefix = ids.prefix();
    match case {
        "catalog" => Arc::new(|_, _| {
            Some(Req {
                method: Method::GET,
                path: "/v2/catalog".into(),
                body: None,
                tag: None,
            })
        }),
        "provision" => {
            let body = provision_bytes(t);
            Arc::new(move |conn, seq| {
                let id = format!("{prefix}-{conn}-{seq}");
                Some(Req {
                    method: Method::PUT,
                    path: format!("/v2/service_instances/{id}"),
                    body: Some(body.clone()),
                    tag: Some(id),
                })
            })
        }
        "provision-repeat" => {
            let body = provision_bytes(t);
            Arc::new(move |_, _| {
                Some(Req {
                    method: Method::PUT,
                    path: format!("/v2/service_instances/{REPEAT_ID}"),
                    body: Some(body.clone()),
                    tag: None,
                })
            })
        }
        "bind" => {
            let body =
                Bytes::from(json!({"service_id": t.service_id, "plan_id": t.plan_id}).to_string());
            Arc::new(move |conn, seq| {
                Some(Req {
                    method: Method::PUT,
                    path: format!(
                        "/v2/service_instances/{}/service_bindings/{prefix}-{conn}-{seq}",
                        fixture_id(conn)
                    ),
                    body: Some(body.clone()),
                    tag: None,
                })
            })
        }
        "last-operation" => Arc::new(|conn, _| {
            Some(Req {
                method: Method::GET,
                path: format!("/v2/service_instances/{}/last_operation", fixture_id(conn)),
                body: None,
                tag: None,
            })
        }),
        _ => deprovision_maker(t, t.pool.clone()),
    }
}

fn deprovision_maker(t: &Target, pool: Arc<Mutex<Vec<String>>>) -> MakeReq {
    let query = format!("service_id={}&plan_id={}", t.service_id, t.plan_id);
    Arc::new(move |_, _| {
        let id = lock(&pool).pop()?;
        Some(Req {
            method: Method::DELETE,
            path: format!("/v2/service_instances/{id}?{query}"),
            body: None,
            tag: None,
        })
    })
}

/// Provisions `count` more instances on `t` through concurrent connections.
async fn fill(t: &Target, ids: &Ids, count: u64, connections: usize) -> Fill {
    let prefix = ids.prefix();
    let next = Arc::new(AtomicU64::new(0));
    let body = provision_bytes(t);
    let make: MakeReq = Arc::new(move |_, _| {
        let k = next.fetch_add(1, Ordering::Relaxed);
        (k < count).then(|| Req {
            method: Method::PUT,
            path: format!("/v2/service_instances/{prefix}-fill-{k}"),
            body: Some(body.clone()),
            tag: None,
        })
    });
    let started = Instant::now();
    let outcome = load::run(
        &t.load,
        connections,
        Duration::from_secs(24 * 3600),
        make,
        &[201],
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    Fill {
        target: t.name.clone(),
        instances: outcome.ok,
        seconds,
        per_second: outcome.ok as f64 / seconds.max(1e-9),
        unexpected: outcome.unexpected + outcome.transport_errors,
    }
}

async fn run_poller(
    bench: &Path,
    scratch: &tempfile::TempDir,
    options: &Options,
) -> Result<PollerReport> {
    let mut command = Command::new(bench);
    command
        .arg("poll-server")
        .arg("--delay")
        .arg(format!("{}ms", options.poll_delay.as_millis()));
    let server = Proc::start(
        "poll-server",
        command,
        &scratch.path().join("poll-server.log"),
    )?;
    let output = child::output(
        Command::new(bench)
            .arg("poller")
            .arg("--url")
            .arg(&server.url)
            .arg("--operations")
            .arg(options.poll_operations.to_string())
            .arg("--delay")
            .arg(format!("{}ms", options.poll_delay.as_millis())),
    )
    .await?;
    drop(server);
    let line = String::from_utf8_lossy(&output);
    let last = line.lines().last().unwrap_or_default();
    Ok(serde_json::from_str(last)?)
}

/// Runs a command to its end off the runtime's threads; returns its standard output.
mod child {
    use std::process::{Command, Stdio};

    use crate::error::{BenchError, Result};

    pub(super) async fn output(command: &mut Command) -> Result<Vec<u8>> {
        command.stdin(Stdio::null()).stderr(Stdio::inherit());
        let mut command = std::mem::replace(command, Command::new("true"));
        let output = ::tokio::task::spawn_blocking(move || command.output())
            .await
            .map_err(|e| BenchError::Setup(format!("the poller task failed: {e}")))?
            .map_err(BenchError::io("cannot run the poller"))?;
        if !output.status.success() {
            return Err(BenchError::Setup(format!(
                "the poller failed ({})",
                output.status
            )));
        }
        Ok(output.stdout)
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or_else(String::new, |kib| format!(", {} GiB", kib / (1024 * 1024)));
    format!("{cores} cores, {model}{memory}")
}

fn find<'a>(rows: &'a [Row], case: &str, target: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.case == case && r.target == target)
}

fn goals(
    rows: &[Row],
    memory: &[Memory],
    poller: Option<&PollerReport>,
    options: &Options,
) -> Vec<Goal> {
    let mut goals = Vec::new();
    let mut ratio_goal = |goal: String, ratio: Option<f64>, at_least: f64| {
        if let Some(r) = ratio {
            goals.push(Goal {
                goal,
                value: format!("{r:.2}×"),
                met: Some(r >= at_least),
            });
        }
    };
    let ratio = |case: &str, target: &str| find(rows, case, target).and_then(|r| r.ratio);
    ratio_goal(
        "catalog, memory broker ≥ 0.9× the floor".into(),
        ratio("catalog", "memory-broker"),
        0.9,
    );
    ratio_goal(
        "catalog, kv-broker on SQLite ≥ 0.9× the floor".into(),
        ratio("catalog", "kv-sqlite"),
        0.9,
    );
    ratio_goal(
        "provision, memory broker ≥ 0.8× the floor".into(),
        ratio("provision", "memory-broker"),
        0.8,
    );
    let growth = options.growth;
    ratio_goal(
        format!("provision, memory broker at {growth} instances ≥ 0.9× at 0"),
        ratio("growth provision", "memory-broker-grown"),
        0.9,
    );
    let between = |a: &str, b: &str| {
        let a = find(rows, "provision", a)?;
        let b = find(rows, "provision", b)?;
        ratio_of_rounds(&a.rates, &b.rates)
    };
    ratio_goal(
        "provision, kv-broker on SQLite ≥ 0.5× the memory broker (issue 17)".into(),
        between("kv-sqlite", "memory-broker"),
        0.5,
    );
    ratio_goal(
        "provision, kv-broker on SQLite ≥ 0.5× Stateful over MemoryStore (issue 13)".into(),
        between("kv-sqlite", "stateful-memory"),
        0.5,
    );
    ratio_goal(
        format!("provision, kv-broker on SQLite at {growth} instances ≥ 0.9× at 0"),
        ratio("growth provision", "kv-sqlite-grown"),
        0.9,
    );
    if let Some(r) = ratio("client provision", "osb-client") {
        let overhead = if r > 0.0 { 1.0 / r } else { f64::INFINITY };
        goals.push(Goal {
            goal: "osb-client call ≤ 1.05× raw reqwest (time per call)".into(),
            value: format!("{overhead:.3}×"),
            met: Some(overhead <= 1.05),
        });
    }
    for m in memory {
        if let (Some(idle), true) = (
            m.idle_rss_kib,
            m.target.ends_with("broker") || m.target.starts_with("kv-"),
        ) {
            goals.push(Goal {
                goal: format!("{} idle RSS ≤ 10 MiB", m.target),
                value: mib(idle),
                met: Some(idle <= 10 * 1024),
            });
        }
        if let (Some(loaded), Some(n), true) =
            (m.loaded_rss_kib, m.instances, m.target == "kv-sqlite")
        {
            goals.push(Goal {
                goal: format!("kv-broker on SQLite RSS holding {n} instances ≤ 40 MiB"),
                value: mib(loaded),
                met: Some(loaded <= 40 * 1024),
            });
        }
    }
    if let Some(p) = poller {
        goals.push(Goal {
            goal: format!(
                "{} concurrent polls in ≤ 100 MiB, no missed deadline",
                p.operations
            ),
            value: format!(
                "{} peak, {} missed",
                mib(p.peak_rss_kib),
                p.missed_deadlines
            ),
            met: Some(p.peak_rss_kib <= 100 * 1024 && p.missed_deadlines == 0),
        });
    }
    for target in ["memory-broker", "kv-sqlite"] {
        if let Some(r) = find(rows, "catalog", target) {
            goals.push(Goal {
                goal: format!(
                    "catalog p99 < 2 ms at {} connections, {target}",
                    options.connections
                ),
                value: format!("{:.2} ms", r.p99_us as f64 / 1000.0),
                met: Some(r.p99_us < 2000),
            });
        }
    }
    goals
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn thousands(value: f64) -> String {
    let n = value.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn render(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("machine: {}", report.machine));
    line(format!(
        "{} s per target per round, {} connections, {} rounds",
        report.duration_s, report.connections, report.rounds
    ));
    line(String::new());
    line("| case | target | req/s (median) | rounds | p50 | p99 | ratio | errors |".into());
    line("|---|---|---:|---|---:|---:|---|---:|".into());
    for r in &report.rows {
        let rounds = r
            .rates
            .iter()
            .map(|v| thousands(*v))
            .collect::<Vec<_>>()
            .join(" / ");
        let ratio = match (&r.ratio, &r.baseline) {
            (Some(x), Some(b)) => format!("{x:.2}× {b}"),
            _ => String::new(),
        };
        line(format!(
            "| {} | {} | {} | {} | {:.2} ms | {:.2} ms | {} | {} |",
            r.case,
            r.target,
            thousands(r.median),
            rounds,
            r.p50_us as f64 / 1000.0,
            r.p99_us as f64 / 1000.0,
            ratio,
            r.unexpected + r.transport_errors
        ));
    }
    let errors: Vec<&Row> = report
        .rows
        .iter()
        .filter(|r| r.first_unexpected.is_some())
        .collect();
    if !errors.is_empty() {
        line(String::new());
        for r in errors {
            line(format!(
                "first unexpected answer, {} on {}: {}",
                r.case,
                r.target,
                r.first_unexpected.as_deref().unwrap_or_default()
            ));
        }
    }
    if !report.fills.is_empty() {
        line(String::new());
        line("| fill | instances | seconds | provisions/s | errors |".into());
        line("|---|---:|---:|---:|---:|".into());
        for f in &report.fills {
            line(format!(
                "| {} | {} | {:.1} | {} | {} |",
                f.target,
                thousands(f.instances as f64),
                f.seconds,
                thousands(f.per_second),
                f.unexpected
            ));
        }
    }
    if !report.memory.is_empty() {
        line(String::new());
        line("| memory | idle RSS | RSS holding instances | peak RSS (end) |".into());
        line("|---|---:|---:|---:|".into());
        for m in &report.memory {
            let loaded = match (m.loaded_rss_kib, m.instances) {
                (Some(kib), Some(n)) => format!("{} ({} instances)", mib(kib), thousands(n as f64)),
                (Some(kib), None) => format!("{} (end of run)", mib(kib)),
                _ => String::new(),
            };
            line(format!(
                "| {} | {} | {} | {} |",
                m.target,
                m.idle_rss_kib.map(mib).unwrap_or_default(),
                loaded,
                m.peak_rss_kib.map(mib).unwrap_or_default()
            ));
        }
    }
    if let Some(p) = &report.poller {
        line(String::new());
        line(format!(
            "poller: {} operations, {} succeeded, {} missed deadlines, {} polls in {:.1} s ({} polls/s), \
             lateness p50 {} ms / p99 {} ms / max {} ms, peak RSS {}",
            thousands(p.operations as f64),
            thousands(p.succeeded as f64),
            p.missed_deadlines,
            thousands(p.polls as f64),
            p.seconds,
            thousands(p.polls_per_second),
            p.lateness_ms_p50,
            p.lateness_ms_p99,
            p.lateness_ms_max,
            mib(p.peak_rss_kib)
        ));
    }
    if !report.goals.is_empty() {
        line(String::new());
        line("| goal | measured | met |".into());
        line("|---|---|---|".into());
        for g in &report.goals {
            let met = match g.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            line(format!("| {} | {} | {met} |", g.goal, g.value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn peers_parse() {
        assert_eq!(
            parse_peer("go=http://u:p@127.0.0.1:3000/"),
            Ok(("go".into(), "http://u:p@127.0.0.1:3000".into()))
        );
        assert!(parse_peer("http://x").is_err());
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }
}
