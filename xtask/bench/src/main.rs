//! The benchmark harness behind `cargo xtask bench`.
//!
//! `osb-bench run` starts the brokers as release binaries on loopback (the memory broker, the
//! kv-broker on SQLite and, when a database is given, on PostgreSQL, osb-store's stateful layer
//! over `MemoryStore`, and the floor: a bare axum server giving the same replies), drives each
//! case against all of them in alternating rounds, and prints medians and ratios. The other
//! subcommands are the servers and the poller it starts as processes of their own.
//!
//! Timings are reported, never asserted.

mod client;
mod error;
mod load;
mod procs;
mod run;
mod servers;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::error::{BenchError, Result};

/// The allocator of the kv-broker, so that the stateful layer over `MemoryStore` (served by this
/// binary) is compared with it on equal terms, and the load generator is as fast as it can be.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "osb-bench", about = "osb-rs benchmarks over loopback")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the benchmark (what `cargo xtask bench` runs).
    Run(run::Options),
    /// The floor: a bare axum server with the same replies as the brokers.
    #[command(hide = true)]
    Floor {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// The catalog's bytes to serve.
        #[arg(long)]
        catalog: PathBuf,
    },
    /// osb-store's stateful layer over `MemoryStore`, with a backend that does no work.
    #[command(hide = true)]
    StatefulMemory {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        #[arg(long)]
        catalog: PathBuf,
        #[arg(long)]
        user: String,
        #[arg(long)]
        password: String,
    },
    /// A broker answering last operation `in progress` with `Retry-After`, then `succeeded`.
    #[command(hide = true)]
    PollServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        #[arg(long, value_parser = run::parse_duration)]
        delay: Duration,
        #[arg(long, default_value_t = 1)]
        retry_after: u64,
    },
    /// Waits for many operations at once with osb-client's poller; prints a JSON report.
    #[command(hide = true)]
    Poller {
        #[arg(long)]
        url: String,
        #[arg(long)]
        operations: usize,
        #[arg(long, value_parser = run::parse_duration)]
        delay: Duration,
        #[arg(long, default_value_t = 1)]
        retry_after: u64,
    },
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(BenchError::io("cannot start the Tokio runtime"))
}

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(BenchError::io(format!("cannot read {}", path.display())))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(options) => {
            runtime(options.threads).and_then(|rt| rt.block_on(run::run(options)))
        }
        Command::Floor { listen, catalog } => read(&catalog).and_then(|catalog| {
            runtime(2).and_then(|rt| rt.block_on(servers::floor(&listen, catalog)))
        }),
        Command::StatefulMemory {
            listen,
            catalog,
            user,
            password,
        } => read(&catalog).and_then(|catalog| {
            runtime(2).and_then(|rt| {
                rt.block_on(servers::stateful_memory(
                    &listen, &catalog, &user, &password,
                ))
            })
        }),
        Command::PollServer {
            listen,
            delay,
            retry_after,
        } => {
            runtime(2).and_then(|rt| rt.block_on(servers::poll_server(&listen, delay, retry_after)))
        }
        Command::Poller {
            url,
            operations,
            delay,
            retry_after,
        } => runtime(2).and_then(|rt| {
            rt.block_on(client::poller(
                &url,
                operations,
                delay,
                Duration::from_secs(retry_after),
            ))
            .and_then(|report| {
                println!("{}", serde_json::to_string(&report)?);
                Ok(())
            })
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("osb-bench: {e}");
            ExitCode::from(2)
        }
    }
}
