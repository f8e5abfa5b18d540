//! What the `osb` binary's tests share: brokers on loopback and the command itself.
#![allow(dead_code)] // each test file uses its own part

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;

/// A one-thread runtime for a broker that serves while a test runs the binary.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A broker on loopback until dropped.
pub(crate) struct Broker {
    pub(crate) url: String,
    pub(crate) runtime: tokio::runtime::Runtime,
    _dir: Option<tempfile::TempDir>,
}

/// The in-memory example broker (`admin` / `secret`).
pub(crate) fn memory_broker(async_delay: Duration) -> Broker {
    let runtime = runtime();
    let mut config = example_memory_broker::Config::new("admin", "secret");
    config.async_delay = async_delay;
    let running = runtime
        .block_on(example_memory_broker::start(config))
        .expect("broker starts");
    Broker {
        url: running.url(),
        runtime,
        _dir: None,
    }
}

/// The kv-broker on SQLite in a temporary directory (`admin` / `secret`).
pub(crate) fn kv_broker(async_delay: Duration) -> Broker {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut config = example_kv_broker::Config::new(
        "admin",
        "secret",
        format!("sqlite:{}", dir.path().join("kv.db").display()),
    );
    config.async_delay = async_delay;
    let running = runtime
        .block_on(example_kv_broker::start(config))
        .expect("the kv-broker starts");
    Broker {
        url: format!("http://{}", running.addr),
        runtime,
        _dir: Some(dir),
    }
}

/// `osb` with its record in `home`, talking to `url` with the brokers' credentials, and none of
/// the caller's own `OSB_*` settings.
pub(crate) fn osb(home: &Path, url: &str, timeout: Duration) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_osb"));
    cmd.env("OSB_HOME", home)
        .env("OSB_BROKER_URL", url)
        .env("OSB_BROKER_USERNAME", "admin")
        .env("OSB_BROKER_PASSWORD", "secret")
        .env_remove("OSB_BROKER_TOKEN")
        .env_remove("OSB_API_VERSION")
        .env_remove("OSB_ORIGINATING_IDENTITY")
        .timeout(timeout);
    cmd
}

/// Runs and returns (exit code, stdout, stderr).
pub(crate) fn run(cmd: &mut Command, args: &[&str]) -> (i32, String, String) {
    let output = cmd.args(args).output().expect("osb runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs, expects success, and returns stdout.
pub(crate) fn ok(cmd: &mut Command, args: &[&str]) -> String {
    let (code, stdout, stderr) = run(cmd, args);
    assert_eq!(code, 0, "osb {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}
