//! Run with: cargo run -p example-memory-broker
//!
//! Serves the in-memory broker on `OSB_LISTEN` (default `127.0.0.1:8080`) until Ctrl-C or SIGTERM,
//! with the connection limits and TLS of `osb_server::Server::from_env` (`OSB_HEADER_READ_TIMEOUT_MS`,
//! `OSB_IDLE_TIMEOUT_MS`, `OSB_MAX_CONNECTIONS`, `OSB_TLS_CERT`, `OSB_TLS_KEY`, `OSB_TLS_CLIENT_CA`).
use example_memory_broker::{Config, app};
use osb_server::Server;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (config, generated) = Config::from_env();
    let server = Server::from_env()?;
    let listen = std::env::var("OSB_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let user = config.username.clone();
    if generated {
        println!(
            "Basic auth: user {user:?}, generated password {:?}",
            config.password
        );
    }
    let router = app(config).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "memory broker listening on {}://{}",
        server.scheme(),
        listener.local_addr()?
    );
    server
        .serve(listener, router, osb_server::shutdown_signal())
        .await?;
    println!("memory broker stopped");
    Ok(())
}
