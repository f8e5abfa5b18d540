//! With `OSB_STORE_KEY`, the kv-broker's database files never hold a binding's token (the
//! stored reply is encrypted, the token table keeps digests); without it they do, and the
//! broker warns once at start.

#[path = "../../memory-broker/tests/support/log_check.rs"]
mod log_check;

use std::path::Path;

use log_check::{Logged, lifecycle};

/// Whether the SQLite database or its WAL holds `needle`.
fn files_hold(database: &Path, needle: &str) -> bool {
    ["", "-wal"].iter().any(|suffix| {
        std::fs::read(format!("{}{suffix}", database.display())).is_ok_and(|bytes| {
            bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        })
    })
}

/// Runs a lifecycle; while the binding exists, says whether the files hold its token.
async fn token_in_files(env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("kv.db");
    let url = format!("sqlite:{}", database.display());
    let mut env = env.to_vec();
    env.extend([
        ("OSB_BROKER_PASSWORD", "pw"),
        ("OSB_DATABASE_URL", url.as_str()),
    ]);
    let broker = Logged::start(env!("CARGO_BIN_EXE_example-kv-broker"), &env);
    let mut held = None;
    let check = async |credentials: &serde_json::Value| {
        let token = credentials["token"].as_str().unwrap();
        // The token works, so it is the real one.
        let reply = reqwest::Client::new()
            .put(format!("{}/k", credentials["uri"].as_str().unwrap()))
            .bearer_auth(token)
            .body("v")
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 204);
        held = Some(files_hold(&database, token));
    };
    lifecycle(&broker.url, "admin", "pw", "small", check).await;
    (held.unwrap(), broker.stop())
}

#[tokio::test]
async fn with_a_key_the_database_never_holds_a_token() {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let (held, log) = token_in_files(&[("OSB_STORE_KEY", key)]).await;
    assert!(!held, "the database holds the token");
    assert!(!log.contains("OSB_STORE_KEY is not set"), "{log}");
    assert!(!log.contains(key), "{log}");
}

#[tokio::test]
async fn without_a_key_it_does_and_the_broker_warns_once() {
    let (held, log) = token_in_files(&[]).await;
    assert!(held, "the check cannot see stored tokens");
    assert_eq!(log.matches("OSB_STORE_KEY is not set").count(), 1, "{log}");
}

#[test]
fn a_malformed_key_stops_the_broker() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_example-kv-broker"))
        .env("OSB_LISTEN", "127.0.0.1:0")
        .env("OSB_DATABASE_URL", "sqlite::memory:")
        .env("OSB_STORE_KEY", "c2hvcnQta2V5")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("32 bytes"), "{stderr}");
    assert!(!stderr.contains("c2hvcnQta2V5"), "{stderr}");
}
