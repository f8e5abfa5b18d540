//! A full lifecycle against the kv-broker's binary at `RUST_LOG=trace`, using the binding's
//! token on the key-value API: no password, Basic credentials, token or stored value appears
//! in its output.

#[path = "../../memory-broker/tests/support/log_check.rs"]
mod log_check;

use log_check::{Logged, assert_no_secrets, lifecycle, secret_values};

#[tokio::test]
async fn trace_logs_hold_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("kv.db").display());
    let password = "kv-broker-pw-3a9b";
    let broker = Logged::start(
        env!("CARGO_BIN_EXE_example-kv-broker"),
        &[
            ("OSB_BROKER_PASSWORD", password),
            ("OSB_DATABASE_URL", &database),
        ],
    );
    let value = "stored-value-6c0e";
    let use_token = async |credentials: &serde_json::Value| {
        let (uri, token) = (credentials["uri"].as_str(), credentials["token"].as_str());
        let http = reqwest::Client::new();
        let reply = http
            .put(format!("{}/greeting", uri.unwrap()))
            .bearer_auth(token.unwrap())
            .body(value)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 204);
        let reply = http
            .get(format!("{}/greeting", uri.unwrap()))
            .bearer_auth("not-the-token-41")
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 401);
    };
    let credentials = lifecycle(&broker.url, "admin", password, "small", use_token).await;
    let mut secrets = secret_values(&credentials);
    assert!(!secrets.is_empty(), "{credentials}");
    secrets.extend([value.to_string(), "not-the-token-41".to_string()]);
    let log = broker.stop();
    assert_no_secrets(&log, "admin", password, &secrets);
}
