//! Shared helpers: a client for a running kv-broker, and the key-value API.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use example_kv_broker::{
    ASYNC_PLAN_ID, Config, Running, SERVICE_ID, SIZED_PLAN_ID, SMALL_PLAN_ID, start,
};
use osb_client::prelude::*;
use serde_json::Value;

pub const USER: &str = "admin";
pub const PASS: &str = "secret";

pub fn config(database: &std::path::Path) -> Config {
    let mut config = Config::new(USER, PASS, format!("sqlite:{}", database.display()));
    config.async_delay = Duration::from_millis(200);
    config
}

pub async fn running(database: &std::path::Path) -> Running {
    start(config(database)).await.expect("the broker starts")
}

pub fn client(addr: std::net::SocketAddr) -> Client {
    Client::builder(format!("http://{addr}"))
        .basic_auth(USER, PASS)
        .build()
        .expect("a client")
}

pub fn provision_request(plan: &str) -> ServiceInstanceProvisionRequest {
    ServiceInstanceProvisionRequest::new(SERVICE_ID, plan, "org", "space")
}

pub fn plans() -> [&'static str; 3] {
    [SMALL_PLAN_ID, ASYNC_PLAN_ID, SIZED_PLAN_ID]
}

/// The uri and token of a bind outcome's credentials.
pub fn credentials(outcome: &BindOutcome) -> (String, String) {
    let credentials = outcome.credentials().expect("credentials");
    let text = |k: &str| {
        credentials[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} is a string"))
            .to_string()
    };
    (text("uri"), text("token"))
}

/// Provisions `instance` on the small plan and binds `b` to it: the binding's uri and token.
pub async fn small_instance_bound(client: &Client, instance: &InstanceId) -> (String, String) {
    let opts = CallOptions::new();
    client
        .provision(
            instance,
            &provision_request(SMALL_PLAN_ID),
            &ProvisionQuery::new(),
            &opts,
        )
        .await
        .expect("the instance is provisioned");
    let bound = client
        .bind(
            instance,
            &BindingId::from("b"),
            &ServiceBindingRequest::new(SERVICE_ID, SMALL_PLAN_ID),
            &BindQuery::new(),
            &opts,
        )
        .await
        .expect("the binding is created");
    credentials(&bound)
}

/// `method` on `{uri}/{key}` with the token: the status and the body.
pub async fn kv(
    method: reqwest::Method,
    uri: &str,
    key: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{uri}/{key}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().await.expect("the key-value API answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A write of a new `key` is refused with `507`: the instance holds its maximum of `max` keys.
pub async fn assert_full(uri: &str, key: &str, token: &str, max: usize) {
    let (status, body) = kv(reqwest::Method::PUT, uri, key, token, Some("v")).await;
    assert_eq!(status, 507, "{body}");
    assert!(
        json_of(&body)["description"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("maximum of {max}")),
        "{body}"
    );
}

pub fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}
