//! `osb`: drive any Open Service Broker from a terminal.
//!
//! A command-line platform for broker developers, built on `osb-client`: read and lint the
//! catalog, provision, update, bind, fetch, unbind and deprovision by name, follow asynchronous
//! operations (with `Retry-After` and the plan's polling limit), and read binding credentials.
//! What it creates is kept in a local record so later commands need no ids. Run `osb --help`.
#![warn(missing_docs)]

mod cli;
mod commands;
mod error;
mod output;
mod params;
mod record;
mod target;
mod wait;

use clap::Parser as _;

fn main() {
    let cli = cli::Cli::parse();
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            output::stderr_line(&format!("osb: cannot start the async runtime: {e}"));
            std::process::exit(error::EXIT_LOCAL);
        }
    };
    let result = runtime.block_on(commands::run(cli));
    // Drop the runtime before exiting, so no task outlives the command.
    drop(runtime);
    if let Err(e) = result {
        e.report(json);
        std::process::exit(e.exit_code());
    }
}
