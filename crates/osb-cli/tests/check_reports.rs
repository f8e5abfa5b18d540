//! `osb check` against the in-memory example broker: every MUST and SHOULD passes, the JSON
//! report matches its schema, and the JUnit file loads in an XML parser as JUnit.

use std::time::Duration;

use assert_cmd::Command;
use quick_xml::events::Event;
use serde_json::Value;

mod support;

use support::Broker;

fn broker() -> Broker {
    support::memory_broker(Duration::from_millis(100))
}

fn osb(url: &str, home: &std::path::Path) -> Command {
    support::osb(home, url, Duration::from_secs(60))
}

/// (testcases, failures, skipped) counted from the elements, after checking the counts in
/// the attributes agree.
fn junit_counts(xml: &str) -> (usize, usize, usize) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut cases, mut failures, mut skipped) = (0, 0, 0);
    let mut declared = None;
    let mut root_seen = false;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |name: &str| -> Option<String> {
                    e.try_get_attribute(name)
                        .expect("attribute")
                        .map(|a| a.unescape_value().expect("escaped").into_owned())
                };
                match e.name().as_ref() {
                    b"testsuites" => {
                        root_seen = true;
                        let n = |k: &str| attr(k).and_then(|v| v.parse::<usize>().ok()).expect(k);
                        declared = Some((n("tests"), n("failures"), n("skipped")));
                    }
                    b"testsuite" => assert!(attr("name").is_some() && attr("tests").is_some()),
                    b"testcase" => {
                        assert!(attr("name").is_some() && attr("classname").is_some());
                        cases += 1;
                    }
                    b"failure" => {
                        assert!(attr("message").is_some() && attr("type").is_some());
                        failures += 1;
                    }
                    b"skipped" => skipped += 1,
                    other => panic!("unexpected element {}", String::from_utf8_lossy(other)),
                }
            }
            _ => {}
        }
    }
    assert!(root_seen, "no <testsuites> root");
    assert_eq!(declared, Some((cases, failures, skipped)));
    (cases, failures, skipped)
}

#[test]
fn the_memory_broker_passes_and_reports_match_their_schemas() {
    let broker = broker();
    let home = tempfile::tempdir().unwrap();
    let junit = home.path().join("osb-check.xml");
    let output = osb(&broker.url, home.path())
        .args(["check", "--json", "--strict", "--junit"])
        .arg(&junit)
        .output()
        .expect("osb runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(report["leftovers"], serde_json::json!([]));
    // Every plan ran its lifecycle: the async plan polled, the sync plans answered at once.
    let passed = |id: &str, plan: &str| {
        report["checks"].as_array().unwrap().iter().any(|c| {
            c["id"] == id && c["plan"] == format!("memory-db/{plan}") && c["status"] == "pass"
        })
    };
    assert!(passed("provision.poll", "async"));
    assert!(passed("provision.repeat-in-progress-202", "async"));
    assert!(passed("provision.repeat-identical-200", "sync"));
    assert!(passed("bind.conflict-409", "schema"));
    assert!(passed("schemas.bind-invalid-400", "schema"));
    assert!(passed("maintenance.conflict-422", "sync"));
    assert!(passed("deprovision.repeat-410", "async"));

    let schema: Value =
        serde_json::from_str(include_str!("../schemas/check-report.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    let (cases, failures, skipped) = junit_counts(&xml);
    assert_eq!(cases, report["summary"]["total"].as_u64().unwrap() as usize);
    assert_eq!(failures, 0);
    assert_eq!(
        skipped,
        report["summary"]["skipped"].as_u64().unwrap() as usize
    );
}

#[test]
fn failures_and_credentials_in_reports() {
    let broker = broker();
    let home = tempfile::tempdir().unwrap();
    let junit = home.path().join("osb-check.xml");
    // Wrong credentials: the catalog check fails (401), nothing else can run.
    let output = osb(&broker.url, home.path())
        .env("OSB_BROKER_PASSWORD", "not-the-password")
        .args(["check", "--json", "--only", "catalog,bad-input", "--junit"])
        .arg(&junit)
        .output()
        .expect("osb runs");
    assert_eq!(output.status.code(), Some(6));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let schema: Value =
        serde_json::from_str(include_str!("../schemas/check-report.schema.json")).unwrap();
    assert!(jsonschema::is_valid(&schema, &report));
    assert_eq!(report["checks"][0]["id"], "catalog.valid-json");
    assert_eq!(report["checks"][0]["status"], "fail");
    let text = report.to_string();
    assert!(
        !text.contains("not-the-password"),
        "password leaked: {text}"
    );
    assert!(text.contains("Basic <redacted>"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let (_, failures, _) = junit_counts(&xml);
    assert_eq!(failures, 1);

    // Binding credentials are redacted (keys kept) in the exchanges.
    let output = osb(&broker.url, home.path())
        .args([
            "check",
            "--json",
            "--plan",
            "sync",
            "--only",
            "lifecycle,idempotency",
        ])
        .output()
        .expect("osb runs");
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(r#"\"password\":\"<redacted>\""#), "{text}");
    assert!(!text.contains("memory://"), "credentials leaked: {text}");

    // Unknown groups and plans are usage errors.
    let output = osb(&broker.url, home.path())
        .args(["check", "--only", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = osb(&broker.url, home.path())
        .args(["check", "--plan", "no-such-plan"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    // An unreachable broker exits 4.
    let output = osb("http://127.0.0.1:9", home.path())
        .args(["check"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4));
}
