//! Development tasks for the osb-rs workspace, run as `cargo xtask <task>`.
//!
//! - `codegen [--check]`: regenerate `crates/osb-types/src/generated/` from `spec/osb.openapi.yaml`.
//! - `spec-diff --upstream FILE`: compare our spec with an upstream OpenAPI 3 or Swagger 2 file.
//! - `roundtrip [--cases N] [--seed S] [--in-process | --loopback] [--release] [FILTER…]`: run the
//!   osb-client↔osb-server round-trip property tests (crate `osb-roundtrip`).
//! - `fuzz [--time 60s | --inputs N] [--seed S] [--dev] [TARGET…]`: structured random fuzzing
//!   of the decoders, the router and the client (crate `osb-fuzz`).
//! - `bench [--duration 5s] [--cases …] [--connections N] [--json] [--peer NAME=URL] …`: the
//!   benchmarks over loopback (crate `osb-bench`, release builds); see `docs/benchmarks.md`.
//!
//! `cargo test -p xtask` runs the generator in check mode, so stale generated code fails the tests.

mod bench;
mod codegen;
mod fuzz;
mod roundtrip;
mod spec;
mod spec_diff;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "xtask", about = "osb-rs development tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand, Debug)]
enum Task {
    /// Regenerate the osb-types models from spec/osb.openapi.yaml.
    Codegen {
        /// Do not write; fail if the generated files are not up to date.
        #[arg(long)]
        check: bool,
    },
    /// Compare spec/osb.openapi.yaml with an upstream OpenAPI 3 or Swagger 2 file.
    SpecDiff {
        /// The upstream file to compare against.
        #[arg(long)]
        upstream: PathBuf,
    },
    /// Run the osb-client <-> osb-server round-trip property tests for every endpoint.
    Roundtrip {
        /// Cases per endpoint and mode (default: the crate's default, 32).
        #[arg(long)]
        cases: Option<u32>,
        /// A fixed proptest seed, to replay a run.
        #[arg(long)]
        seed: Option<u64>,
        /// Only the in-process transport (no sockets).
        #[arg(long, conflicts_with = "loopback")]
        in_process: bool,
        /// Only loopback HTTP.
        #[arg(long)]
        loopback: bool,
        /// Build and run optimised (for long runs).
        #[arg(long)]
        release: bool,
        /// Test name filters passed to the test binary (e.g. `provision`).
        filter: Vec<String>,
    },
    /// Fuzz the decoders, the router and the client (models, headers, catalog, router, client).
    Fuzz {
        /// How long, shared between the targets (e.g. 60s, 10m, 2h).
        #[arg(long, default_value = "60s")]
        time: String,
        /// A number of inputs per target instead of a time.
        #[arg(long, conflicts_with = "time")]
        inputs: Option<u64>,
        /// A fixed seed, to replay a run.
        #[arg(long)]
        seed: Option<u64>,
        /// Build without optimisation.
        #[arg(long)]
        dev: bool,
        /// The targets (default: all).
        targets: Vec<String>,
    },
    /// Benchmarks over loopback: brokers against a bare axum floor, client overhead, poller
    /// scale, memory (release builds; `cargo xtask bench --help` for the options).
    #[command(disable_help_flag = true)]
    Bench {
        /// Options of the harness (`--duration 5s`, `--cases catalog,provision`, …).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// The workspace root (the parent of this crate's directory).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Codegen { check } => codegen::generate(if check {
            codegen::Mode::Check
        } else {
            codegen::Mode::Write
        }),
        Task::SpecDiff { upstream } => spec_diff::run(&upstream, &project_root().join("spec")),
        Task::Roundtrip {
            cases,
            seed,
            in_process,
            loopback,
            release,
            filter,
        } => roundtrip::run(&roundtrip::Options {
            cases,
            seed,
            modes: match (in_process, loopback) {
                (true, _) => roundtrip::Modes::InProcess,
                (_, true) => roundtrip::Modes::Loopback,
                _ => roundtrip::Modes::Both,
            },
            release,
            filter,
        }),
        Task::Fuzz {
            time,
            inputs,
            seed,
            dev,
            targets,
        } => fuzz::run(&fuzz::Options {
            time,
            inputs,
            seed,
            dev,
            targets,
        }),
        Task::Bench { args } => bench::run(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
