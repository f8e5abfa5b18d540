//! `osb`: drive any Open Service Broker from a terminal.
//!
//! A command-line platform for broker developers, built on `osb-client`: read and lint the
//! catalog, provision, update, bind, fetch, unbind and deprovision by name, follow asynchronous
//! operations (with `Retry-After` and the plan's polling limit), and read binding credentials.
//! What it creates is kept in a local record so later commands need no ids. Run `osb --help`.
#![warn(missing_docs)]

mod check;
mod cli;
mod commands;
mod error;
mod output;
mod params;
mod record;
mod target;
mod wait;

use clap::Parser as _;
use clap::error::ErrorKind;

/// Reports a command line clap refused: as clap does, or as a JSON error object when `--json`
/// is among the arguments (scripts then read every error the same way). Exits.
fn usage_error(e: clap::Error) -> ! {
    let informational = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational || !std::env::args_os().any(|a| a == "--json") {
        e.exit();
    }
    let text = e.render().to_string();
    let message = text
        .trim()
        .strip_prefix("error: ")
        .unwrap_or(text.trim())
        .to_string();
    let error = error::CliError::Usage(message);
    error.report(true);
    std::process::exit(error.exit_code());
}

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
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
