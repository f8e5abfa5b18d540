//! The `osb` binary against the reference kv-broker (SQLite in a temporary directory): the whole
//! lifecycle by name, the bound credentials reading and writing a key, and `osb check` with every
//! MUST and SHOULD passing.

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

/// The kv-broker on loopback until dropped.
struct Broker {
    url: String,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn broker() -> Broker {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().unwrap();
    let mut config = example_kv_broker::Config::new(
        "admin",
        "secret",
        format!("sqlite:{}", dir.path().join("kv.db").display()),
    );
    config.async_delay = Duration::from_millis(100);
    let running = runtime
        .block_on(example_kv_broker::start(config))
        .expect("the kv-broker starts");
    Broker {
        url: format!("http://{}", running.addr),
        runtime,
        _dir: dir,
    }
}

fn osb(home: &Path, url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_osb"));
    cmd.env("OSB_HOME", home)
        .env("OSB_BROKER_URL", url)
        .env("OSB_BROKER_USERNAME", "admin")
        .env("OSB_BROKER_PASSWORD", "secret")
        .env_remove("OSB_BROKER_TOKEN")
        .env_remove("OSB_API_VERSION")
        .env_remove("OSB_ORIGINATING_IDENTITY")
        .timeout(Duration::from_secs(60));
    cmd
}

fn ok(cmd: &mut Command, args: &[&str]) -> String {
    let output = cmd.args(args).output().expect("osb runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "osb {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
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
