//! `cargo xtask roundtrip`: runs the client↔server round-trip property tests of the
//! `osb-roundtrip` crate.
//!
//! xtask does not link the client or the server: it runs
//! `cargo test -p osb-roundtrip --test roundtrip --test regressions` with the settings in
//! environment variables (`PROPTEST_CASES`, `PROPTEST_RNG_SEED`, `OSB_ROUNDTRIP_MODE`).
//!
//! The dev profile is the default: it reuses what `cargo test --workspace` already built, and
//! a few hundred cases per endpoint take seconds. `--release` pays a release build once and runs
//! cases about ten times faster, for long runs (tens of thousands of cases).

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Which transports to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Modes {
    /// Loopback HTTP and in process.
    Both,
    /// Only loopback HTTP.
    Loopback,
    /// Only in process.
    InProcess,
}

impl Modes {
    fn as_env(self) -> &'static str {
        match self {
            Modes::Both => "both",
            Modes::Loopback => "loopback",
            Modes::InProcess => "in-process",
        }
    }
}

/// Settings of one run.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Cases per endpoint and mode.
    pub(crate) cases: Option<u32>,
    /// A fixed proptest seed.
    pub(crate) seed: Option<u64>,
    /// The transports.
    pub(crate) modes: Modes,
    /// Build and run optimised.
    pub(crate) release: bool,
    /// Extra arguments for the test binary (e.g. a test name filter).
    pub(crate) filter: Vec<String>,
}

/// Runs the suite; `Ok(false)` when a property fails.
pub(crate) fn run(options: &Options) -> Result<bool> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command.current_dir(crate::project_root()).arg("test");
    if options.release {
        command.arg("--release");
    }
    command
        .args([
            "--package",
            "osb-roundtrip",
            "--test",
            "roundtrip",
            "--test",
            "regressions",
            "--",
        ])
        .args(&options.filter)
        .env("OSB_ROUNDTRIP_MODE", options.modes.as_env());
    if let Some(cases) = options.cases {
        if cases == 0 {
            bail!("--cases must be at least 1");
        }
        command.env("PROPTEST_CASES", cases.to_string());
    }
    // A seed is always chosen here and printed, so any run can be replayed with `--seed`.
    let seed = options.seed.unwrap_or_else(fresh_seed);
    command.env("PROPTEST_RNG_SEED", seed.to_string());
    eprintln!(
        "round trip: {} case(s) per endpoint and mode, modes: {}, seed: {}, profile: {}",
        options
            .cases
            .map_or_else(|| "default".to_string(), |c| c.to_string()),
        options.modes.as_env(),
        seed,
        if options.release { "release" } else { "dev" },
    );
    let started = Instant::now();
    let status = command
        .status()
        .context("cannot run `cargo test -p osb-roundtrip`")?;
    eprintln!(
        "round trip: {} in {:.1} s{}",
        if status.success() { "passed" } else { "FAILED" },
        started.elapsed().as_secs_f64(),
        if status.success() {
            String::new()
        } else {
            format!("; replay with: cargo xtask roundtrip --seed {seed} (and the same --cases)")
        }
    );
    Ok(status.success())
}

/// A seed from the clock and the process id (proptest seeds are 64-bit).
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}
