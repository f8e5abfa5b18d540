//! `osb-marketplace`: serve Cloud Controller's v2 API for brokers, services and plans, or mint a
//! development token.
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use osb_marketplace::auth::Claims;
use osb_marketplace::{Config, DEFAULT_LISTEN, Marketplace};

/// The platform side of the Open Service Broker API: Cloud Controller's v2 API for service
/// brokers, services and plans. Configured through the environment (see the README).
#[derive(Debug, Parser)]
#[command(name = "osb-marketplace", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve on OSB_MARKETPLACE_LISTEN (default 127.0.0.1:8081); the default command.
    Serve,
    /// Print a bearer token signed with OSB_MARKETPLACE_TOKEN_KEY.
    Token {
        /// The token's user_id.
        #[arg(long, default_value = "admin")]
        user_id: String,
        /// A scope to grant (repeat for several), e.g. cloud_controller.admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// The token's email claim.
        #[arg(long)]
        email: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Token {
            user_id,
            scopes,
            email,
            ttl,
        } => token(user_id, scopes, email, ttl),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("osb-marketplace: {e}");
            ExitCode::from(1)
        }
    }
}

fn token(
    user_id: String,
    scopes: Vec<String>,
    email: Option<String>,
    ttl: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("OSB_MARKETPLACE_TOKEN_KEY").is_none() {
        return Err("set OSB_MARKETPLACE_TOKEN_KEY to the key the marketplace uses".into());
    }
    let (config, _) = Config::from_env()?;
    let mut claims = Claims::new(user_id, scopes, Duration::from_secs(ttl));
    claims.email = email;
    println!("{}", config.token_keys.mint(&claims)?);
    Ok(())
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let (config, generated) = Config::from_env()?;
    let server = osb_server::Server::from_env()?;
    let listen =
        std::env::var("OSB_MARKETPLACE_LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.to_owned());
    if let Some(path) = config.database_url.strip_prefix("sqlite:") {
        let path = path
            .trim_start_matches("//")
            .split('?')
            .next()
            .unwrap_or_default();
        if let Some(dir) = std::path::Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
    }
    if !config.secrets.is_sealing() {
        tracing::warn!(
            "OSB_MARKETPLACE_SECRET_KEY is not set: broker passwords are stored unencrypted"
        );
    }
    let database = config.database_url.clone();
    let marketplace = Marketplace::open(config)
        .await
        .map_err(|e| format!("cannot open the database {database:?}: {e}"))?;
    let worker = marketplace.spawn_worker();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    if let Some(key) = generated {
        println!("Token key (HS256), generated: {key}");
        println!(
            "Mint tokens with: OSB_MARKETPLACE_TOKEN_KEY={key} osb-marketplace token --scope cloud_controller.admin"
        );
        let admin = Claims::new(
            "admin",
            vec!["cloud_controller.admin".into()],
            Duration::from_secs(3600),
        );
        println!(
            "An admin token for the next hour: {}",
            marketplace.config().token_keys.mint(&admin)?
        );
    }
    println!(
        "osb-marketplace listening on {}://{} (database {database})",
        server.scheme(),
        listener.local_addr()?
    );
    server
        .serve(
            listener,
            marketplace.router(),
            osb_server::shutdown_signal(),
        )
        .await?;
    worker.abort();
    println!("osb-marketplace stopped");
    Ok(())
}
