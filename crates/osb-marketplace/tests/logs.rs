//! The binary at `trace` level through a whole lifecycle: no password, token or credential
//! appears in what it prints.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

#[tokio::test]
async fn nothing_secret_is_logged_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let kv_db = format!("sqlite:{}", dir.path().join("kv.db").display());
    let broker_password = "broker-password-5f1c";
    let kv = example_kv_broker::start(example_kv_broker::Config::new(
        "admin",
        broker_password,
        kv_db,
    ))
    .await
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let key = "token-key-for-the-log-test";
    let mut child = Command::new(env!("CARGO_BIN_EXE_osb-marketplace"))
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .env("OSB_MARKETPLACE_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "OSB_MARKETPLACE_DATABASE_URL",
            format!("sqlite:{}", dir.path().join("m.db").display()),
        )
        .env("OSB_MARKETPLACE_TOKEN_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let claims = osb_marketplace::auth::Claims::new(
        "log-user",
        vec!["cloud_controller.admin".into()],
        Duration::from_secs(600),
    );
    let token = osb_marketplace::auth::TokenKeys::hs256(key.as_bytes())
        .mint(&claims)
        .unwrap();
    let call = |method: &str, path: &str, body: Option<Value>| {
        let mut r = http
            .request(method.parse().unwrap(), format!("{url}{path}"))
            .bearer_auth(&token);
        if let Some(body) = body {
            r = r.body(body.to_string());
        }
        async move {
            let response = r.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                serde_json::from_str::<Value>(&response.text().await.unwrap())
                    .unwrap_or(Value::Null),
            )
        }
    };
    for _ in 0..200 {
        if http.get(format!("{url}/v2/services")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, _) = call(
        "POST",
        "/v2/service_brokers",
        Some(json!({"name": "kv", "broker_url": format!("http://{}", kv.addr), "auth_username": "admin", "auth_password": broker_password})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, plans) = call("GET", "/v2/service_plans?q=name:small", None).await;
    let plan = common::guid(&plans["resources"][0]);
    let (status, instance) = call(
        "POST",
        "/v2/service_instances",
        Some(json!({"name": "logged", "service_plan_guid": plan, "space_guid": "s", "parameters": {"secret_parameter": "param-5f1c"}})),
    )
    .await;
    assert_eq!(status, 201, "{instance}");
    let (status, binding) = call(
        "POST",
        "/v2/service_bindings",
        Some(json!({"service_instance_guid": common::guid(&instance), "app_guid": "a"})),
    )
    .await;
    assert_eq!(status, 201);
    let credential = binding["entity"]["credentials"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        "GET",
        &format!("/v2/service_bindings/{}", common::guid(&binding)),
        None,
    )
    .await;
    call(
        "DELETE",
        &format!("/v2/service_bindings/{}", common::guid(&binding)),
        None,
    )
    .await;
    call(
        "DELETE",
        &format!("/v2/service_instances/{}", common::guid(&instance)),
        None,
    )
    .await;

    child.kill().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child.wait().unwrap();
    assert!(
        out.contains("TRACE") || out.contains("DEBUG"),
        "the log ran at trace level: {out}"
    );
    assert!(out.contains("service broker registered"), "{out}");
    for secret in [
        broker_password,
        credential.as_str(),
        "param-5f1c",
        token.as_str(),
        key,
    ] {
        assert!(!out.contains(secret), "{secret} appears in the log");
    }
}
