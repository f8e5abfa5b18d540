//! A full lifecycle against the notes broker's binary at `RUST_LOG=trace`: no password,
//! Basic credentials or binding credential appears in its output.

#[path = "../../memory-broker/tests/support/log_check.rs"]
mod log_check;

use log_check::{Logged, assert_no_secrets, lifecycle, secret_values};

#[tokio::test]
async fn trace_logs_hold_no_secret() {
    let password = "notes-broker-pw-8d1e";
    let broker = Logged::start(
        env!("CARGO_BIN_EXE_example-notes-broker"),
        &[("OSB_BROKER_PASSWORD", password)],
    );
    let credentials = lifecycle(&broker.url, "admin", password, "slow", async |_| {}).await;
    let secrets = secret_values(&credentials);
    assert!(!secrets.is_empty(), "{credentials}");
    let log = broker.stop();
    assert_no_secrets(&log, "admin", password, &secrets);
}
