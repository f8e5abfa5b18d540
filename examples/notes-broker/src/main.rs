//! Run with: cargo run -p example-notes-broker (Basic auth `admin` / `OSB_BROKER_PASSWORD`).
use example_notes_broker::NotesBroker;
use osb_server::Broker;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let password = std::env::var("OSB_BROKER_PASSWORD").unwrap_or_else(|_| "notes".into());
    let mut broker = NotesBroker::default();
    broker.delay = std::time::Duration::from_secs(2);
    let builder = Broker::builder(broker).basic_auth("admin", password);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    Ok(axum::serve(listener, builder.build().await?).await?)
}
