//! The `osb` binary against the in-memory example broker, started in-process on 127.0.0.1:0.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use example_memory_broker::{SCHEMA_PLAN_ID, SERVICE_ID, SYNC_PLAN_ID};
use serde_json::Value;

mod support;

use support::{Broker, ok, run};

fn broker(async_delay: Duration) -> Broker {
    support::memory_broker(async_delay)
}

fn osb(home: &Path, url: &str) -> Command {
    support::osb(home, url, Duration::from_secs(30))
}

/// Runs with `--json`, expects success, and parses stdout.
fn json(cmd: &mut Command, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let stdout = ok(cmd, &all);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("osb {args:?}: {e}: {stdout}"))
}

#[test]
fn full_lifecycle_by_name() {
    let broker = broker(Duration::from_millis(50));
    let home = tempfile::tempdir().unwrap();
    let osb = || osb(home.path(), &broker.url);

    let table = ok(&mut osb(), &["catalog"]);
    let header = table.lines().next().unwrap();
    for column in [
        "OFFERING",
        "PLAN",
        "FREE",
        "BINDABLE",
        "UPDATEABLE",
        "MAINTENANCE",
        "PLAN ID",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let sync_row = table.lines().find(|l| l.contains(SYNC_PLAN_ID)).unwrap();
    assert!(sync_row.starts_with("memory-db  sync"), "{sync_row}");
    assert!(sync_row.contains("1.0.0"), "{sync_row}");
    let catalog = json(&mut osb(), &["catalog"]);
    assert_eq!(catalog["services"][0]["id"], SERVICE_ID);
    assert_eq!(catalog["services"][0]["plans"].as_array().unwrap().len(), 3);

    let lint = json(&mut osb(), &["lint"]);
    assert_eq!(lint["errors"], 0);

    let out = ok(&mut osb(), &["provision", "memory-db", "sync", "db"]);
    assert!(out.starts_with("Created instance \"db\""), "{out}");
    let instances = json(&mut osb(), &["instances"]);
    assert_eq!(instances.as_array().unwrap().len(), 1);
    let instance = &instances[0];
    assert_eq!(instance["name"], "db");
    assert_eq!(instance["plan_id"], SYNC_PLAN_ID);
    assert_eq!(instance["last_operation"]["state"], "succeeded");
    let instance_id = instance["id"].as_str().unwrap().to_string();

    let out = ok(&mut osb(), &["bind", "db", "creds"]);
    assert!(out.contains("credentials: uri, password"), "{out}");
    let credentials = json(&mut osb(), &["credentials", "creds"]);
    assert_eq!(credentials["uri"], format!("memory://{instance_id}"));
    let uri = ok(&mut osb(), &["credentials", "creds", "--attribute", "uri"]);
    assert_eq!(uri.trim_end(), format!("memory://{instance_id}"));
    let table = ok(&mut osb(), &["credentials", "creds"]);
    assert!(table.starts_with("KEY"), "{table}");

    let shown = json(&mut osb(), &["show", "db"]);
    assert_eq!(shown["instance"]["name"], "db");
    assert_eq!(shown["broker"]["plan_id"], SYNC_PLAN_ID);
    let shown = ok(&mut osb(), &["show", &instance_id]);
    assert!(
        shown.contains("last operation  create succeeded"),
        "{shown}"
    );
    let shown = json(&mut osb(), &["show", "creds"]);
    assert_eq!(shown["binding"]["instance_name"], "db");
    assert_eq!(shown["binding"]["credentials_stored"], false);
    let shown = ok(&mut osb(), &["show", "creds"]);
    assert!(shown.contains("uri, password (from the broker)"), "{shown}");
    assert!(!shown.contains("memory://"), "show hides credential values");

    let bindings = json(&mut osb(), &["bindings"]);
    assert_eq!(bindings[0]["name"], "creds");
    assert!(bindings[0].get("credentials").is_none());
    let listing = ok(&mut osb(), &["bindings"]);
    assert!(
        listing.lines().nth(1).unwrap().starts_with("creds  db"),
        "{listing}"
    );
    let last = json(&mut osb(), &["last-operation", "db"]);
    assert_eq!(last["state"], "succeeded");
    assert_eq!(last["operation"], "create");

    let updated = json(
        &mut osb(),
        &["update", "db", "--plan", "schema", "--param", "size=3"],
    );
    assert_eq!(updated["result"], "updated");
    assert_eq!(updated["instance"]["plan_id"], SCHEMA_PLAN_ID);
    // Asking for the plan the instance is on sends nothing.
    let out = ok(&mut osb(), &["update", "db", "--plan", "schema"]);
    assert_eq!(
        out.trim_end(),
        "Instance \"db\" is already on plan \"schema\"; nothing to update"
    );
    let shown = json(&mut osb(), &["show", "db"]);
    assert_eq!(shown["broker"]["parameters"]["size"], 3);

    let out = ok(&mut osb(), &["unbind", "creds"]);
    assert_eq!(out.trim_end(), "Deleted binding \"creds\"");
    let out = ok(&mut osb(), &["deprovision", "db"]);
    assert_eq!(out.trim_end(), "Deprovisioned instance \"db\"");
    assert_eq!(json(&mut osb(), &["instances"]), Value::Array(vec![]));
    assert_eq!(json(&mut osb(), &["bindings"]), Value::Array(vec![]));
}

#[test]
fn ids_parameter_files_and_acting_as_a_user() {
    let broker = broker(Duration::from_millis(50));
    let home = tempfile::tempdir().unwrap();
    let osb = || osb(home.path(), &broker.url);

    // Offering and plan by id, the instance id chosen with --id, parameters from a file.
    let params = home.path().join("params.json");
    std::fs::write(&params, r#"{"size": 4}"#).unwrap();
    let params = params.to_str().unwrap();
    let out = ok(
        &mut osb(),
        &[
            "provision",
            SERVICE_ID,
            SCHEMA_PLAN_ID,
            "by-id",
            "--id",
            "chosen-instance-id",
            "-P",
            params,
            "--as",
            "cloudfoundry:user-42",
        ],
    );
    assert!(out.contains("id chosen-instance-id"), "{out}");
    let shown = json(&mut osb(), &["show", "chosen-instance-id"]);
    assert_eq!(shown["instance"]["name"], "by-id");
    assert_eq!(shown["broker"]["plan_id"], SCHEMA_PLAN_ID);
    assert_eq!(
        shown["broker"]["parameters"],
        serde_json::json!({"size": 4})
    );

    // A malformed --as is a usage error before anything is sent.
    let (code, _, stderr) = run(
        &mut osb(),
        &["provision", "memory-db", "sync", "x", "--as", "nobody"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        json(&mut osb(), &["instances"]).as_array().unwrap().len(),
        1
    );
}

/// A one-shot HTTP server that answers its first request with `body` as a JSON catalog.
fn serve_catalog_once(body: &'static str) -> String {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
        let mut stream = reader.into_inner();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    url
}

#[test]
fn lint_errors_exit_5() {
    let url = serve_catalog_once(
        r#"{"services":[{"id":"s","name":"bad","description":"d","bindable":true,"plans":[]}]}"#,
    );
    let home = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(&mut osb(home.path(), &url), &["lint"]);
    assert_eq!(code, 5, "{stdout}{stderr}");
    assert!(
        stdout.contains("error[no-plans] /services/0/plans"),
        "{stdout}"
    );
    assert!(stdout.contains("1 error(s)"), "{stdout}");
}

#[test]
fn asynchronous_plan_waits_and_resumes() {
    let broker = broker(Duration::from_millis(200));
    let home = tempfile::tempdir().unwrap();
    let osb = || osb(home.path(), &broker.url);

    let (code, stdout, stderr) = run(&mut osb(), &["provision", "memory-db", "async", "slow"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("Provisioned instance \"slow\""),
        "{stdout}"
    );
    assert!(
        stderr.contains("provisioning \"slow\": succeeded (poll 1"),
        "{stderr}"
    );

    // --no-wait returns the operation; last-operation picks it up from the local record.
    let accepted = json(&mut osb(), &["bind", "slow", "b", "--no-wait"]);
    assert_eq!(accepted["result"], "accepted");
    assert_eq!(
        accepted["binding"]["last_operation"]["state"],
        "in progress"
    );
    let token = accepted["binding"]["last_operation"]["operation"]
        .as_str()
        .unwrap();
    assert!(token.starts_with("create-"), "{token}");
    let done = json(&mut osb(), &["last-operation", "b", "--wait"]);
    assert_eq!(done["state"], "succeeded");
    let bindings = json(&mut osb(), &["bindings"]);
    assert_eq!(bindings[0]["last_operation"]["state"], "succeeded");
    let credentials = json(&mut osb(), &["credentials", "b"]);
    assert!(
        credentials["uri"]
            .as_str()
            .unwrap()
            .starts_with("memory://")
    );

    // Without waiting, the sentence gives the operation and how to follow it.
    let out = ok(&mut osb(), &["unbind", "b", "--no-wait"]);
    assert!(
        out.starts_with("Unbinding \"b\" started (operation "),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("; follow it with: osb last-operation b --wait"),
        "{out}"
    );
    let done = json(&mut osb(), &["last-operation", "b", "--wait"]);
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["operation"], "delete");
    assert_eq!(json(&mut osb(), &["bindings"]), Value::Array(vec![]));
    let gone = json(&mut osb(), &["deprovision", "slow"]);
    assert_eq!(gone["result"], "succeeded");
    assert_eq!(gone["instance"]["last_operation"]["kind"], "delete");
    assert_eq!(gone["instance"]["last_operation"]["state"], "succeeded");
    assert_eq!(json(&mut osb(), &["instances"]), Value::Array(vec![]));
}

#[test]
fn waiting_stops_at_the_deadline() {
    let broker = broker(Duration::from_secs(30));
    let home = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(
        &mut osb(home.path(), &broker.url),
        &[
            "provision",
            "memory-db",
            "async",
            "slow",
            "--max-wait",
            "1s",
        ],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("gave up provisioning \"slow\" after --max-wait 1s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("osb last-operation slow --wait"),
        "{stderr}"
    );
    let instances = json(&mut osb(home.path(), &broker.url), &["instances"]);
    assert_eq!(instances[0]["last_operation"]["state"], "in progress");
}

#[cfg(unix)]
#[test]
fn ctrl_c_while_waiting_keeps_the_operation() {
    let broker = broker(Duration::from_millis(1500));
    let home = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_osb"))
        .args(["provision", "memory-db", "async", "slow"])
        .env("OSB_HOME", home.path())
        .env("OSB_BROKER_URL", &broker.url)
        .env("OSB_BROKER_USERNAME", "admin")
        .env("OSB_BROKER_PASSWORD", "secret")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("waiting for the broker"), "{line}");
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(
        rest.contains("stopped waiting: provisioning \"slow\" is still running at the broker"),
        "{rest}"
    );
    assert!(rest.contains("`osb last-operation slow --wait`"), "{rest}");

    let osb = || osb(home.path(), &broker.url);
    let instances = json(&mut osb(), &["instances"]);
    assert_eq!(instances[0]["last_operation"]["state"], "in progress");
    let done = json(&mut osb(), &["last-operation", "slow", "--wait"]);
    assert_eq!(done["state"], "succeeded");
    let instances = json(&mut osb(), &["instances"]);
    assert_eq!(instances[0]["last_operation"]["state"], "succeeded");
}

#[test]
fn credentials_are_stored_only_when_the_broker_cannot_return_them() {
    let broker = broker(Duration::from_millis(50));
    let home = tempfile::tempdir().unwrap();
    let osb = || osb(home.path(), &broker.url);
    ok(&mut osb(), &["provision", "memory-db", "sync", "db"]);

    // The offering is bindings_retrievable: `osb credentials` fetches them, nothing is kept.
    let bound = json(&mut osb(), &["bind", "db", "fetched"]);
    let password = bound["credentials"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    let state = std::fs::read_to_string(home.path().join("state.json")).unwrap();
    assert!(!state.contains(&password), "{state}");

    // OSB 2.13 cannot fetch bindings: the credentials are kept, in a file only we can read.
    let mut legacy = osb();
    legacy.env("OSB_API_VERSION", "2.13");
    let bound = json(&mut legacy, &["bind", "db", "kept"]);
    let password = bound["credentials"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    let state = std::fs::read_to_string(home.path().join("state.json")).unwrap();
    assert!(state.contains(&password), "{state}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(home.path().join("state.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut legacy = osb();
    legacy.env("OSB_API_VERSION", "2.13");
    let out = ok(&mut legacy, &["credentials", "kept", "-a", "password"]);
    assert_eq!(out.trim_end(), password);
    let listing = ok(&mut osb(), &["bindings"]);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("kept") && l.contains("stored")),
        "{listing}"
    );
    let unbound = json(&mut osb(), &["unbind", "fetched"]);
    assert_eq!(unbound["result"], "deleted");
    assert_eq!(unbound["binding"]["last_operation"]["kind"], "delete");
    assert_eq!(unbound["binding"]["last_operation"]["state"], "succeeded");
}

#[test]
fn bad_input_gets_clear_errors_and_exit_codes() {
    let broker = broker(Duration::from_millis(50));
    let home = tempfile::tempdir().unwrap();
    let osb = || osb(home.path(), &broker.url);

    // Unknown plan or offering: usage error, with what exists.
    let (code, _, stderr) = run(&mut osb(), &["provision", "memory-db", "gold", "x"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "the offering \"memory-db\" has no plan named \"gold\" (or with that id); \
             plans: \"sync\", \"schema\", \"async\""
        ),
        "{stderr}"
    );
    let (code, _, stderr) = run(&mut osb(), &["provision", "postgres", "sync", "x"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("offerings: \"memory-db\""), "{stderr}");

    // Invalid JSON parameters: usage error before anything is sent.
    let (code, _, stderr) = run(
        &mut osb(),
        &["provision", "memory-db", "sync", "x", "-P", "{\"size\": 3"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("-P/--parameters: the value is not valid JSON"),
        "{stderr}"
    );
    let (code, _, stderr) = run(
        &mut osb(),
        &["provision", "memory-db", "sync", "x", "-P", "missing.json"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("\"missing.json\" is neither a JSON object"),
        "{stderr}"
    );

    // Parameters against the plan's schema: refused locally, or by the broker with --no-check.
    let args = [
        "provision",
        "memory-db",
        "schema",
        "x",
        "--param",
        "size=11",
    ];
    let (code, _, stderr) = run(&mut osb(), &args);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("/size: value is greater than the maximum of 10"),
        "{stderr}"
    );
    let mut no_check = args.to_vec();
    no_check.push("--no-check");
    let (code, _, stderr) = run(&mut osb(), &no_check);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("provisioning \"x\": the broker answered 400 Bad Request"),
        "{stderr}"
    );
    assert!(
        stderr.contains("description  parameters do not match"),
        "{stderr}"
    );
    assert_eq!(json(&mut osb(), &["instances"]), Value::Array(vec![]));

    // The broker's error body in JSON, on stderr.
    let (code, stdout, stderr) = run(&mut osb(), &["catalog", "--json", "--password", "wrong"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stdout.is_empty());
    let error: Value = serde_json::from_str(&stderr).unwrap();
    assert_eq!(error["error"]["kind"], "broker");
    assert_eq!(error["error"]["status"], 401);
    assert!(error["error"]["broker"]["description"].is_string());

    // Names that are not in the local record, and names already taken.
    let (code, _, stderr) = run(&mut osb(), &["deprovision", "nothing"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no instance named \"nothing\""), "{stderr}");
    // A name outside the local record is polled as an instance id, which the broker lacks.
    for args in [
        &["last-operation", "nothing"][..],
        &["last-operation", "nothing", "--wait"],
    ] {
        let (code, stdout, stderr) = run(&mut osb(), args);
        assert_eq!(code, 3, "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains(
                "no instance or binding named \"nothing\" in the local record, and the broker \
                 does not know an instance with that id (404 Not Found)"
            ),
            "{args:?}: {stderr}"
        );
    }
    ok(&mut osb(), &["provision", "memory-db", "sync", "db"]);
    let (code, _, stderr) = run(&mut osb(), &["provision", "memory-db", "sync", "db"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("already used"), "{stderr}");

    // Command-line mistakes.
    let (code, _, _) = run(&mut osb(), &["provision", "memory-db"]);
    assert_eq!(code, 2);
    // With --json, a command line clap refuses is a JSON error object too.
    let (code, _, stderr) = run(&mut osb(), &["--json", "provision", "memory-db"]);
    assert_eq!(code, 2, "{stderr}");
    let error: Value = serde_json::from_str(stderr.trim()).expect("a JSON error object");
    assert_eq!(error["error"]["kind"], "usage");
    assert_eq!(error["error"]["exit_code"], 2);
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("<PLAN>"), "{message}");
    let (code, _, stderr) = run(&mut osb(), &["catalog", "--api-version", "3.1"]);
    assert_eq!(code, 2, "{stderr}");
    let mut no_url = osb();
    no_url.env_remove("OSB_BROKER_URL");
    let (code, _, stderr) = run(&mut no_url, &["catalog"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("set OSB_BROKER_URL"), "{stderr}");
}

#[test]
fn broker_down_is_a_transport_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let home = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let (code, _, stderr) = run(&mut osb(home.path(), &url), &["catalog"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.starts_with("osb: fetching the catalog: could not talk to the broker"),
        "{stderr}"
    );
    assert!(stderr.contains("is the broker running?"), "{stderr}");
    let (code, _, stderr) = run(
        &mut osb(home.path(), &url),
        &["provision", "memory-db", "sync", "x", "--json"],
    );
    assert_eq!(code, 4, "{stderr}");
    let error: Value = serde_json::from_str(&stderr).unwrap();
    assert_eq!(error["error"]["kind"], "transport");
}

#[test]
fn help_documents_environment_and_exit_codes() {
    let (code, stdout, _) = run(&mut Command::new(env!("CARGO_BIN_EXE_osb")), &["--help"]);
    assert_eq!(code, 0);
    for needle in [
        "OSB_BROKER_URL",
        "OSB_HOME",
        "Exit codes:",
        "2    usage error",
        "3    the broker refused",
        "4    the broker could not be reached",
        "5    `osb lint` found errors",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
}
