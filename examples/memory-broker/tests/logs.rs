//! A full lifecycle against the memory broker's binary at `RUST_LOG=trace`: no password,
//! Basic credentials or binding credential appears in its output.

#[path = "support/log_check.rs"]
mod log_check;

use log_check::{Logged, assert_no_secrets, lifecycle, secret_values};

#[tokio::test]
async fn trace_logs_hold_no_secret() {
    let password = "memory-broker-pw-5f2c";
    let broker = Logged::start(
        env!("CARGO_BIN_EXE_example-memory-broker"),
        &[
            ("OSB_BROKER_PASSWORD", password),
            ("OSB_ASYNC_DELAY_MS", "50"),
        ],
    );
    let credentials = lifecycle(&broker.url, "admin", password, "sync", async |_| {}).await;
    let secrets = secret_values(&credentials);
    assert!(!secrets.is_empty(), "{credentials}");
    let log = broker.stop();
    assert_no_secrets(&log, "admin", password, &secrets);
}
