//! Run with: cargo run -p example-kv-broker
//!
//! Serves the kv-broker on `OSB_LISTEN` (default `127.0.0.1:8080`) until Ctrl-C or SIGTERM, with
//! its state in `OSB_DATABASE_URL` (default `sqlite:data/kv-broker.db`, created on first run), with
//! the connection limits and TLS of `osb_server::Server::from_env` (`OSB_HEADER_READ_TIMEOUT_MS`,
//! `OSB_IDLE_TIMEOUT_MS`, `OSB_MAX_CONNECTIONS`, `OSB_TLS_CERT`, `OSB_TLS_KEY`, `OSB_TLS_CLIENT_CA`).
use std::net::SocketAddr;
use std::process::ExitCode;

use example_kv_broker::{Config, app};
use osb_server::Server;

/// The store's thread and the server's threads hand records to each other, so much memory is
/// freed by a thread other than the one that allocated it. glibc's allocator takes a lock of the
/// allocating thread's arena for each such free; mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv-broker: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (mut config, generated) = Config::from_env();
    config.store_keys = osb_store::StoreKeys::from_env()?;
    let server = Server::from_env()?;
    let listen = std::env::var("OSB_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr: SocketAddr = listener.local_addr()?;
    if generated {
        println!(
            "Basic auth: user {:?}, generated password {:?}",
            config.username, config.password
        );
    }
    let database = example_kv_broker::redact_url(&config.database_url);
    let (router, _broker) = app(config, addr)
        .await
        .map_err(|e| format!("cannot open the database {database:?}: {e}"))?;
    println!(
        "kv-broker listening on {}://{addr} (database {database})",
        server.scheme()
    );
    server
        .serve(listener, router, osb_server::shutdown_signal())
        .await?;
    println!("kv-broker stopped");
    Ok(())
}
