//! Run with: cargo run -p example-notes-broker (Basic auth `admin` / `OSB_BROKER_PASSWORD`).
//!
//! Listens on `OSB_LISTEN` (default `127.0.0.1:8080`) until Ctrl-C or SIGTERM; logs at
//! `RUST_LOG` (default `info`). Connection limits and TLS come from
//! `osb_server::Server::from_env` (`OSB_HEADER_READ_TIMEOUT_MS`, `OSB_IDLE_TIMEOUT_MS`,
//! `OSB_MAX_CONNECTIONS`, `OSB_TLS_CERT`, `OSB_TLS_KEY`).
use example_notes_broker::NotesBroker;
use osb_server::{Broker, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let password = std::env::var("OSB_BROKER_PASSWORD").unwrap_or_else(|_| "notes".into());
    let mut broker = NotesBroker::default();
    broker.delay = std::time::Duration::from_secs(2);
    let builder = Broker::builder(broker).basic_auth("admin", password);
    let server = Server::from_env()?;
    let listen = std::env::var("OSB_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "notes broker listening on {}://{}",
        server.scheme(),
        listener.local_addr()?
    );
    Ok(server
        .serve(
            listener,
            builder.build().await?,
            osb_server::shutdown_signal(),
        )
        .await?)
}
