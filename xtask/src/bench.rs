//! `cargo xtask bench [OPTIONS]`: builds the brokers and the harness (crate `osb-bench`) as
//! release binaries, then runs `osb-bench run` with the options given.
//!
//! xtask does not link the harness: it stays free of HTTP and runtime dependencies. Every option
//! is the harness's; `cargo xtask bench --help` lists them.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

/// The packages the benchmark starts, built with `--release`.
const PACKAGES: [&str; 3] = ["osb-bench", "example-memory-broker", "example-kv-broker"];

/// Builds, then runs the harness with `args`; `Ok(false)` when it fails.
pub(crate) fn run(args: &[String]) -> Result<bool> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let root = crate::project_root();
    let mut build = Command::new(&cargo);
    build
        .current_dir(&root)
        .args(["build", "--release", "--quiet"]);
    for package in PACKAGES {
        build.args(["--package", package]);
    }
    eprintln!("bench: cargo build --release -p {}", PACKAGES.join(" -p "));
    let built = build.status().context("cannot run `cargo build`")?;
    if !built.success() {
        return Ok(false);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    let bin_dir = target.join("release");
    let status = Command::new(bin_dir.join("osb-bench"))
        .current_dir(&root)
        .arg("run")
        .arg("--bin-dir")
        .arg(&bin_dir)
        .args(args)
        .status()
        .context("cannot run the benchmark harness")?;
    Ok(status.success())
}
