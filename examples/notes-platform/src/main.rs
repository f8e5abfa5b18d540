//! Run with: cargo run -p example-notes-platform -- [PLAN], against the notes broker at
//! `OSB_BROKER_URL` (default `http://127.0.0.1:8080`; user `admin`, `OSB_BROKER_PASSWORD`).
use example_notes_platform::{BoxError, lifecycle};
use osb_client::Client;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let env = |name, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let client = Client::builder(env("OSB_BROKER_URL", "http://127.0.0.1:8080"))
        .basic_auth("admin", env("OSB_BROKER_PASSWORD", "notes"))
        .build()?;
    let plan = std::env::args().nth(1).unwrap_or_else(|| "slow".into());
    let credentials = lifecycle(&client, &plan).await?;
    println!("{}", serde_json::to_string_pretty(&credentials)?);
    Ok(())
}
