//! `cargo xtask fuzz`: runs the structured random fuzzing of the `osb-fuzz` crate, optimised.
//!
//! xtask does not link the targets: it runs `cargo run --release -p osb-fuzz -- …`.

use std::process::Command;

use anyhow::{Context, Result};

/// Settings of one run.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// How long, shared between the targets (`60s`, `10m`, `2h`).
    pub(crate) time: String,
    /// A fixed number of inputs per target instead of a time.
    pub(crate) inputs: Option<u64>,
    /// The seed, to replay a run.
    pub(crate) seed: Option<u64>,
    /// Build without optimisation (reuses the test build; slower inputs).
    pub(crate) dev: bool,
    /// The targets; all when empty.
    pub(crate) targets: Vec<String>,
}

/// Runs the fuzzer; `Ok(false)` when an input failed.
pub(crate) fn run(options: &Options) -> Result<bool> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .current_dir(crate::project_root())
        .args(["run", "--quiet"]);
    if !options.dev {
        command.arg("--release");
    }
    command.args(["-p", "osb-fuzz", "--"]);
    match options.inputs {
        Some(n) => command.args(["--inputs", &n.to_string()]),
        None => command.args(["--time", &options.time]),
    };
    if let Some(seed) = options.seed {
        command.args(["--seed", &seed.to_string()]);
    }
    command.args(&options.targets);
    let status = command.status().context("running osb-fuzz")?;
    Ok(status.success())
}
