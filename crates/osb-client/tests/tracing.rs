//! Tracing carries operations, ids and statuses, never credentials or parameters.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{Reply, Server};
use osb_client::CallOptions;
use osb_types::{InstanceId, ProvisionQuery, ServiceInstanceProvisionRequest};
use serde_json::json;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn spans_name_the_call_but_not_its_secrets() {
    let server = Server::always(Reply::json(201, json!({"dashboard_url": "https://d"}))).await;
    let client = server
        .builder()
        .basic_auth("admin", "s3cr3t-pa55")
        .build()
        .unwrap();
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut parameters = serde_json::Map::new();
    parameters.insert("db_password".into(), json!("param-secret-42"));
    let body = ServiceInstanceProvisionRequest::new("svc", "plan", "org", "space")
        .with_parameters(parameters);
    let opts = CallOptions::new().request_identity("req-7");
    client
        .provision(
            &InstanceId::new("inst-9"),
            &body,
            &ProvisionQuery::new(),
            &opts,
        )
        .await
        .unwrap();

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("osb_request"), "{logs}");
    assert!(
        logs.contains("serviceInstance.provision")
            && logs.contains("inst-9")
            && logs.contains("req-7"),
        "{logs}"
    );
    assert!(logs.contains("status=201"), "{logs}");
    for secret in [
        "s3cr3t-pa55",
        "YWRtaW46czNjcjN0LXBhNTU",
        "param-secret-42",
        "db_password",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked: {logs}");
    }
}

#[tokio::test]
async fn set_aside_fields_are_logged_without_their_values() {
    use osb_types::{BindOutcome, BindQuery, BindingId, ServiceBindingRequest};

    let reply = json!({
        "credentials": {"password": "cred-secret-1"},
        "route_service_url": {"token": "route-secret-2"},
        "syslog_drain_url": ["syslog://u:drain-secret-3@logs"],
        "volume_mounts": "mount-secret-4",
    });
    let server = Server::always(Reply::json(201, reply)).await;
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let outcome = server
        .client()
        .bind(
            &InstanceId::new("i"),
            &BindingId::new("b"),
            &ServiceBindingRequest::new("s", "p"),
            &BindQuery::new(),
            &CallOptions::new(),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, BindOutcome::Created(_)), "{outcome:?}");

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 3, "{logs}");
    for field in ["route_service_url", "syslog_drain_url", "volume_mounts"] {
        assert!(
            warnings
                .iter()
                .any(|l| l.contains(&format!("field={field}"))),
            "{field}: {logs}"
        );
    }
    assert!(logs.contains("serviceBinding.binding"), "{logs}");
    for secret in [
        "cred-secret-1",
        "route-secret-2",
        "drain-secret-3",
        "mount-secret-4",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked: {logs}");
    }
}
