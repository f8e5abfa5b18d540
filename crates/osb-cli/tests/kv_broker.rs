//! The `osb` binary against the reference kv-broker (SQLite in a temporary directory): the whole
//! lifecycle by name, the bound credentials reading and writing a key, and `osb check` with every
//! MUST and SHOULD passing.

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

mod support;

use support::{Broker, ok};

fn broker() -> Broker {
    support::kv_broker(Duration::from_millis(100))
}

fn osb(home: &Path, url: &str) -> Command {
    support::osb(home, url, Duration::from_secs(60))
}

#[test]
fn the_cli_drives_the_kv_broker_and_its_credentials_work() {
    let broker = broker();
    let home = tempfile::tempdir().unwrap();
    let osb = || osb(home.path(), &broker.url);
    ok(&mut osb(), &["lint"]);
    ok(&mut osb(), &["provision", "kv", "small", "my-kv"]);
    ok(&mut osb(), &["provision", "kv", "async", "my-async"]);
    ok(&mut osb(), &["bind", "my-kv", "my-app"]);
    let uri = ok(&mut osb(), &["credentials", "my-app", "--attribute", "uri"]);
    let token = ok(
        &mut osb(),
        &["credentials", "my-app", "--attribute", "token"],
    );
    let (uri, token) = (uri.trim().to_string(), token.trim().to_string());
    assert!(uri.ends_with("/kv/my-kv") || uri.contains("/kv/"), "{uri}");

    let client = reqwest::Client::new();
    let (put, get) = broker.runtime.block_on(async {
        let put = client
            .put(format!("{uri}/greeting"))
            .bearer_auth(&token)
            .body("hello")
            .send()
            .await
            .unwrap()
            .status();
        let get = client
            .get(format!("{uri}/greeting"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (put, get)
    });
    assert_eq!(put.as_u16(), 204);
    assert_eq!(get, "hello");

    let shown: Value = serde_json::from_str(&ok(&mut osb(), &["show", "my-kv", "--json"])).unwrap();
    assert!(shown.is_object(), "{shown}");
    ok(&mut osb(), &["unbind", "my-app"]);
    let revoked = broker.runtime.block_on(async {
        client
            .get(format!("{uri}/greeting"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(revoked.as_u16(), 401);
    ok(&mut osb(), &["deprovision", "my-kv"]);
    ok(&mut osb(), &["deprovision", "my-async"]);
}

#[test]
fn osb_check_passes_every_must_and_should_against_the_kv_broker() {
    let broker = broker();
    let home = tempfile::tempdir().unwrap();
    let output = osb(home.path(), &broker.url)
        .args(["check", "--strict", "--json"])
        .output()
        .expect("osb runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
}
