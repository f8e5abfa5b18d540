//! `osb-fuzz [--time 60s | --inputs N] [--seed S] [TARGET…]`: runs the fuzz targets (all of
//! them by default; the time is shared between them) and prints what each found. Exits 1 when
//! an input failed. `cargo xtask fuzz` runs it optimised.

use std::process::ExitCode;
use std::time::Duration;

use osb_fuzz::{Stop, TARGETS, peak_memory_kib, run};

fn duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok()?;
    match unit {
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        "h" => Some(Duration::from_secs(n * 3600)),
        "ms" => Some(Duration::from_millis(n)),
        _ => None,
    }
}

fn main() -> ExitCode {
    let mut time = Duration::from_secs(60);
    let mut inputs = None;
    let mut seed = None;
    let mut targets = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = |args: &mut dyn Iterator<Item = String>| args.next().unwrap_or_default();
        match arg.as_str() {
            "--time" => match duration(&value(&mut args)) {
                Some(t) => time = t,
                None => {
                    eprintln!("--time takes a duration such as 60s, 10m or 2h");
                    return ExitCode::from(2);
                }
            },
            "--inputs" => inputs = value(&mut args).parse().ok(),
            "--seed" => seed = value(&mut args).parse().ok(),
            "-h" | "--help" => {
                println!(
                    "osb-fuzz [--time 60s | --inputs N] [--seed S] [TARGET…]\ntargets: {}",
                    TARGETS.join(", ")
                );
                return ExitCode::SUCCESS;
            }
            target => targets.push(target.to_string()),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let stop = match inputs {
        Some(n) => Stop::Inputs(n),
        None => Stop::Time(time / targets.len() as u32),
    };
    println!("seed {seed}");
    let (mut total, mut failed) = (0, 0);
    for target in &targets {
        let report = match run(target, stop, seed) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("{target}: {e}");
                return ExitCode::from(2);
            }
        };
        total += report.inputs;
        failed += report.failures;
        let rate = report.inputs as f64 / report.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{target:8} {:>12} inputs {:>6} failures {:>10.0}/s  {:.1}s",
            report.inputs,
            report.failures,
            rate,
            report.elapsed.as_secs_f64()
        );
        if !report.reached.is_empty() {
            let reached: Vec<String> = report
                .reached
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            println!("    reached {}", reached.join(", "));
        }
        for example in &report.examples {
            println!("    {example}");
        }
    }
    let memory = peak_memory_kib().map_or("unknown".to_string(), |k| format!("{} MiB", k / 1024));
    println!("total    {total:>12} inputs {failed:>6} failures  peak memory {memory}");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
