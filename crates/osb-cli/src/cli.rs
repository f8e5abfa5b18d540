//! The command line: global options and one subcommand per task.

use clap::{Args, Parser, Subcommand};
use osb_types::ApiVersion;

/// Shown after `osb --help`.
const AFTER_HELP: &str = "\
Environment:
  OSB_BROKER_URL, OSB_BROKER_USERNAME, OSB_BROKER_PASSWORD, OSB_BROKER_TOKEN, OSB_API_VERSION,
  OSB_ORIGINATING_IDENTITY  stand in for the options of the same name.
  OSB_HOME                  directory of the local record (default: <state dir>/osb).
  OSB_CA_CERT               stands in for --ca-cert (a PEM file of CAs to trust).

Local record:
  `osb` remembers what it created (instances, bindings, their offering and plan ids, the last
  operation, the broker URL) in OSB_HOME/state.json, so later commands take names. The file is
  replaced atomically and readable only by you (0600). Binding credentials are written to it only
  when the broker cannot return them again (the offering is not `bindings_retrievable`, or the
  API version is older than 2.14); otherwise `osb credentials` fetches them from the broker.

Asynchronous operations:
  provision, update, deprovision, bind and unbind wait for the broker by default (polling with
  Retry-After, up to the plan's maximum_polling_duration or --max-wait). --no-wait returns at
  once. Ctrl-C stops waiting, not the operation: resume with `osb last-operation NAME --wait`.

Exit codes:
  0    success
  1    the local record could not be read or written
  2    usage error: bad arguments, unknown name, offering or plan, invalid parameters
  3    the broker refused the request, or the operation failed or passed its polling deadline
  4    the broker could not be reached or did not answer in time
  5    `osb lint` found errors in the catalog
  6    `osb check`: a MUST check failed (with --strict: any check)
  130  interrupted with Ctrl-C while waiting";

/// Drive any Open Service Broker from a terminal.
///
/// Point `osb` at a broker with OSB_BROKER_URL and credentials, then look at its catalog,
/// provision, bind, read credentials, unbind and deprovision by name.
#[derive(Debug, Parser)]
#[command(
    name = "osb",
    version,
    after_help = AFTER_HELP,
    arg_required_else_help = true,
    propagate_version = true
)]
pub(crate) struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options shared by every command. `Debug` redacts the password and the token.
#[derive(Args)]
#[command(next_help_heading = "Broker and output options")]
pub(crate) struct GlobalArgs {
    /// The broker's base URL, e.g. http://127.0.0.1:8080
    #[arg(
        long,
        short = 'b',
        env = "OSB_BROKER_URL",
        global = true,
        value_name = "URL"
    )]
    pub(crate) broker_url: Option<String>,

    /// User name for HTTP Basic authentication.
    #[arg(long, short = 'u', env = "OSB_BROKER_USERNAME", global = true)]
    pub(crate) username: Option<String>,

    /// Password for HTTP Basic authentication (prefer the environment variable).
    #[arg(
        long,
        env = "OSB_BROKER_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub(crate) password: Option<String>,

    /// Bearer token, instead of Basic authentication (prefer the environment variable).
    #[arg(long, env = "OSB_BROKER_TOKEN", global = true, hide_env_values = true)]
    pub(crate) token: Option<String>,

    /// The OSB API version to speak (2.13 to 2.17; default 2.17).
    #[arg(
        long,
        env = "OSB_API_VERSION",
        global = true,
        value_name = "VERSION",
        value_parser = parse_api_version
    )]
    pub(crate) api_version: Option<ApiVersion>,

    /// Act on behalf of a user (sends an originating identity).
    #[arg(
        long = "as",
        help = "Act on behalf of a user: cloudfoundry:USER_ID or kubernetes:USERNAME[:UID]",
        global = true,
        value_name = "PLATFORM:USER",
        conflicts_with = "originating_identity"
    )]
    pub(crate) as_user: Option<String>,

    /// Raw X-Broker-API-Originating-Identity value: 'PLATFORM BASE64_JSON'.
    #[arg(
        long,
        env = "OSB_ORIGINATING_IDENTITY",
        global = true,
        value_name = "HEADER"
    )]
    pub(crate) originating_identity: Option<String>,

    /// Timeout of each request to the broker, in seconds (1 to 86400).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub(crate) timeout: u64,

    /// Print JSON on stdout (and errors as JSON on stderr), for scripts.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// PEM file of CA certificates to trust for an https broker, besides the built-in roots.
    #[arg(long, env = "OSB_CA_CERT", global = true, value_name = "FILE")]
    pub(crate) ca_cert: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for GlobalArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("GlobalArgs")
            .field("broker_url", &self.broker_url)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("token", &redacted(&self.token))
            .field("api_version", &self.api_version)
            .field("as_user", &self.as_user)
            .field("originating_identity", &self.originating_identity)
            .field("timeout", &self.timeout)
            .field("json", &self.json)
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

fn parse_api_version(text: &str) -> Result<ApiVersion, String> {
    let version: ApiVersion = text.parse().map_err(|e: osb_types::Error| e.to_string())?;
    if !version.is_known() {
        return Err(format!(
            "osb speaks OSB {} to {}",
            ApiVersion::OLDEST,
            ApiVersion::LATEST
        ));
    }
    Ok(version)
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show the broker's offerings and plans.
    Catalog,
    /// Check the broker's catalog against the spec and Cloud Controller's rules.
    Lint,
    /// Check that the broker follows the OSB spec: catalog, auth, version header, lifecycle,
    /// idempotency, async rules, bad input, schemas and 2.15–2.17 features.
    ///
    /// Creates instances and bindings with ids starting `osb-check-` and deletes them again,
    /// also when a check fails or on Ctrl-C; prints what it could not delete. Exits 0 when
    /// every MUST passes, 6 when one fails (SHOULD failures are warnings unless --strict).
    Check(Box<CheckArgs>),
    /// Create a service instance: OFFERING and PLAN by name or id, NAME for later commands.
    Provision(ProvisionArgs),
    /// Change an instance's plan or parameters.
    Update(UpdateArgs),
    /// Delete a service instance.
    Deprovision(DeprovisionArgs),
    /// Create a binding to an instance.
    Bind(BindArgs),
    /// Delete a binding.
    Unbind(UnbindArgs),
    /// List the instances in the local record.
    Instances(ListArgs),
    /// List the bindings in the local record.
    Bindings(ListArgs),
    /// Show an instance or binding as the broker reports it.
    Show(ShowArgs),
    /// Poll the last operation of an instance or binding (optionally until it ends).
    #[command(name = "last-operation")]
    LastOperation(LastOperationArgs),
    /// Print a binding's credentials.
    Credentials(CredentialsArgs),
}

/// `osb check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The broker's base URL (instead of --broker-url / OSB_BROKER_URL).
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Run the per-plan checks only on this offering (name or id; repeatable).
    #[arg(long, value_name = "OFFERING")]
    pub(crate) offering: Vec<String>,
    /// Run the per-plan checks only on this plan (name or id; repeatable).
    #[arg(long, value_name = "PLAN")]
    pub(crate) plan: Vec<String>,
    /// Run only these groups: catalog, auth, version, lifecycle, idempotency, async,
    /// bad-input, schemas, features (comma-separated or repeated).
    #[arg(long, value_name = "GROUP,...", value_delimiter = ',')]
    pub(crate) only: Vec<String>,
    /// Leave out these groups.
    #[arg(long, value_name = "GROUP,...", value_delimiter = ',')]
    pub(crate) skip: Vec<String>,
    /// List the checks (id, group, level, title) and exit.
    #[arg(long)]
    pub(crate) list: bool,
    /// Treat failed SHOULD checks as failures (exit code 6).
    #[arg(long)]
    pub(crate) strict: bool,
    /// Also write the results as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<std::path::PathBuf>,
    /// Longest time to poll one asynchronous operation (e.g. 90s, 5m; the plan's
    /// maximum_polling_duration applies too).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub(crate) max_wait: std::time::Duration,
}

/// `parameters` of a request.
#[derive(Debug, Args)]
pub(crate) struct ParamArgs {
    /// Parameters as a JSON object, a JSON file, or - for stdin (repeatable; merged in order).
    #[arg(short = 'P', long = "parameters", value_name = "FILE|JSON")]
    pub(crate) parameters: Vec<String>,

    /// One parameter as `KEY=VALUE`.
    #[arg(
        long = "param",
        value_name = "KEY=VALUE",
        help = "One parameter; VALUE is JSON when it parses (3, true, [1]), otherwise text (repeatable)"
    )]
    pub(crate) param: Vec<String>,
}

/// Waiting for asynchronous operations.
#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// Return as soon as the broker accepts an asynchronous operation.
    #[arg(long)]
    pub(crate) no_wait: bool,

    /// Stop waiting after this long (e.g. 90, 90s, 5m, 1h); the plan's limit applies too.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) max_wait: Option<std::time::Duration>,
}

/// Parses `90`, `90s`, `5m` or `1h`.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("expected a number of seconds or 90s / 5m / 1h, got {text:?}"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("unknown unit {unit:?}; use s, m or h")),
    };
    value
        .checked_mul(factor)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| "duration too large".to_string())
}

/// `osb provision`.
#[derive(Debug, Args)]
pub(crate) struct ProvisionArgs {
    /// The offering, by name or id.
    pub(crate) offering: String,
    /// The plan, by name or id.
    pub(crate) plan: String,
    /// A local name for the instance.
    pub(crate) name: String,
    /// The instance id to use (default: a fresh UUID).
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// Request parameters.
    #[command(flatten)]
    pub(crate) params: ParamArgs,
    /// The `context` object to send, as JSON or a JSON file.
    #[arg(long, value_name = "FILE|JSON")]
    pub(crate) context: Option<String>,
    /// organization_guid to send (default: one generated for this local record).
    #[arg(long, value_name = "GUID")]
    pub(crate) organization_guid: Option<String>,
    /// space_guid to send (default: one generated for this local record).
    #[arg(long, value_name = "GUID")]
    pub(crate) space_guid: Option<String>,
    /// Send without checking the request against the catalog (plan, parameter schemas).
    #[arg(long)]
    pub(crate) no_check: bool,
    /// Waiting.
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

/// `osb update`.
#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    /// The instance, by name or id.
    pub(crate) name: String,
    /// Move to this plan (name or id).
    #[arg(long)]
    pub(crate) plan: Option<String>,
    /// Request parameters.
    #[command(flatten)]
    pub(crate) params: ParamArgs,
    /// The `context` object to send, as JSON or a JSON file.
    #[arg(long, value_name = "FILE|JSON")]
    pub(crate) context: Option<String>,
    /// Send the plan's current maintenance_info (upgrade the instance to it).
    #[arg(long)]
    pub(crate) upgrade: bool,
    /// Send without checking the request against the catalog.
    #[arg(long)]
    pub(crate) no_check: bool,
    /// Waiting.
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

/// `osb deprovision`.
#[derive(Debug, Args)]
pub(crate) struct DeprovisionArgs {
    /// The instance, by name or id (an id outside the local record needs --plan).
    pub(crate) name: String,
    /// Deprovision even though the local record lists bindings of the instance.
    #[arg(long)]
    pub(crate) force: bool,
    /// For an instance id missing from the local record: its plan (name or id).
    #[arg(long)]
    pub(crate) plan: Option<String>,
    /// For an instance id missing from the local record: its offering (name or id).
    #[arg(long, requires = "plan")]
    pub(crate) offering: Option<String>,
    /// Waiting.
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

/// `osb bind`.
#[derive(Debug, Args)]
pub(crate) struct BindArgs {
    /// The instance, by name or id.
    pub(crate) name: String,
    /// A local name for the binding.
    pub(crate) binding_name: String,
    /// The binding id to use (default: a fresh UUID).
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// Request parameters.
    #[command(flatten)]
    pub(crate) params: ParamArgs,
    /// The `context` object to send, as JSON or a JSON file.
    #[arg(long, value_name = "FILE|JSON")]
    pub(crate) context: Option<String>,
    /// Send without checking the request against the catalog.
    #[arg(long)]
    pub(crate) no_check: bool,
    /// Waiting.
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

/// `osb unbind`.
#[derive(Debug, Args)]
pub(crate) struct UnbindArgs {
    /// The binding, by name or id.
    pub(crate) binding_name: String,
    /// Waiting.
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

/// `osb instances` / `osb bindings`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// List entries of every broker, not only the current one.
    #[arg(long)]
    pub(crate) all: bool,
}

/// `osb show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// An instance or binding, by name or id (an unrecorded id is fetched as an instance).
    pub(crate) name: String,
}

/// `osb last-operation`.
#[derive(Debug, Args)]
pub(crate) struct LastOperationArgs {
    /// An instance or binding, by name or id (an unrecorded id is polled as an instance).
    pub(crate) name: String,
    /// Keep polling until the operation ends.
    #[arg(long)]
    pub(crate) wait: bool,
    /// Stop waiting after this long (with --wait).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "wait")]
    pub(crate) max_wait: Option<std::time::Duration>,
}

/// `osb credentials`.
#[derive(Debug, Args)]
pub(crate) struct CredentialsArgs {
    /// The binding, by name or id.
    pub(crate) binding_name: String,
    /// Print only this attribute (a top-level key, or a JSON pointer such as /db/uri).
    #[arg(long, short = 'a', value_name = "KEY")]
    pub(crate) attribute: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;
    use std::time::Duration;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        assert!(parse_duration("18446744073709551615h").is_err());
    }

    #[test]
    fn api_versions_are_checked() {
        assert_eq!(parse_api_version("2.14"), Ok(ApiVersion::V2_14));
        assert!(parse_api_version("3.0").is_err());
        assert!(parse_api_version("two").is_err());
    }
}
