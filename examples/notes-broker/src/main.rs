//! Run with: cargo run -p example-notes-broker (Basic auth `admin` / `OSB_BROKER_PASSWORD`).
//!
//! Connection limits and TLS come from `osb_server::Server::from_env` (`OSB_HEADER_READ_TIMEOUT_MS`,
//! `OSB_IDLE_TIMEOUT_MS`, `OSB_MAX_CONNECTIONS`, `OSB_TLS_CERT`, `OSB_TLS_KEY`).
use example_notes_broker::NotesBroker;
use osb_server::{Broker, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let password = std::env::var("OSB_BROKER_PASSWORD").unwrap_or_else(|_| "notes".into());
    let mut broker = NotesBroker::default();
    broker.delay = std::time::Duration::from_secs(2);
    let builder = Broker::builder(broker).basic_auth("admin", password);
    let server = Server::from_env()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!(
        "notes broker listening on {}://127.0.0.1:8080",
        server.scheme()
    );
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    Ok(server.serve(listener, builder.build().await?, stop).await?)
}
