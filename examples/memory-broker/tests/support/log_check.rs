//! Shared by the example brokers' log tests (`#[path]`-included): start a broker binary at
//! `RUST_LOG=trace`, run a lifecycle through osb-client, and look for secrets in what it wrote.

#![allow(dead_code, unreachable_pub)]

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use osb_client::prelude::*;
use serde_json::Value;

/// A broker binary writing stdout and stderr to one file.
pub struct Logged {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    /// Its base URL.
    pub url: String,
}

impl Logged {
    /// Starts `binary` on a free port at `RUST_LOG=trace` with `env`, waiting until it listens.
    pub fn start(binary: &str, env: &[(&str, &str)]) -> Logged {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("broker.log");
        let file = File::create(&log).unwrap();
        let child = Command::new(binary)
            .env("OSB_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap().to_string();
                break url;
            }
            assert!(
                Instant::now() < deadline,
                "the broker did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Logged {
            child,
            log,
            _dir: dir,
            url,
        }
    }

    /// Stops the broker (SIGTERM, so it shuts down as in production) and returns its output.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap()
    }
}

/// Provisions an instance of the first offering on the plan named `plan`, binds (and fetches
/// the binding when the offering allows), hands the credentials to `bound`, unbinds and
/// deprovisions; makes one call with a wrong password too. Returns the binding's credentials.
pub async fn lifecycle(
    url: &str,
    user: &str,
    password: &str,
    plan: &str,
    bound: impl AsyncFnOnce(&Value),
) -> Value {
    let client = Client::builder(url)
        .basic_auth(user, password)
        .build()
        .unwrap();
    let opts = CallOptions::new();
    let catalog = client.catalog(&opts).await.unwrap();
    let service = &catalog.services[0];
    let plan = service.plan_by_name(plan).unwrap();
    let id = InstanceId::new("log-check-instance");

    let request = ServiceInstanceProvisionRequest::new(&service.id, &plan.id, "org", "space");
    let query = ProvisionQuery::new().with_accepts_incomplete(true);
    let outcome = client
        .provision(&id, &request, &query, &opts)
        .await
        .unwrap();
    if let Some(accepted) = outcome.as_accepted() {
        let create = WaitOptions::create(service, plan);
        client.wait(&id, accepted, &create).await.unwrap();
    }

    let binding = BindingId::new("log-check-binding");
    let request = ServiceBindingRequest::new(&service.id, &plan.id);
    let outcome = client
        .bind(&id, &binding, &request, &BindQuery::new(), &opts)
        .await
        .unwrap();
    let credentials = Value::Object(outcome.credentials().cloned().expect("credentials"));
    if service.bindings_retrievable == Some(true) {
        client
            .fetch_binding(&id, &binding, &FetchBindingQuery::new(), &opts)
            .await
            .unwrap();
    }
    bound(&credentials).await;
    let query = UnbindQuery::new(&service.id, &plan.id);
    client.unbind(&id, &binding, &query, &opts).await.unwrap();
    let query = DeprovisionQuery::new(&service.id, &plan.id).with_accepts_incomplete(true);
    let outcome = client.deprovision(&id, &query, &opts).await.unwrap();
    if let Some(accepted) = outcome.as_accepted() {
        let delete = WaitOptions::delete(service, plan);
        client.wait(&id, accepted, &delete).await.unwrap();
    }

    let intruder = Client::builder(url)
        .basic_auth(user, "wrong-password-77")
        .build()
        .unwrap();
    assert!(intruder.catalog(&opts).await.is_err());
    credentials
}

/// The string values under secret-looking keys (`password`, `token`, `secret`, `key`) of a
/// credentials object, at any depth.
pub fn secret_values(credentials: &Value) -> Vec<String> {
    let mut found = Vec::new();
    fn walk(value: &Value, secret: bool, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (name, value) in map {
                    let name = name.to_ascii_lowercase();
                    let secret = ["password", "token", "secret", "key"]
                        .iter()
                        .any(|s| name.contains(s));
                    walk(value, secret, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, secret, found)),
            Value::String(s) if secret => found.push(s.clone()),
            _ => {}
        }
    }
    walk(credentials, false, &mut found);
    found
}

/// Fails if `log` is empty or quotes any of `secrets` (or the Basic credentials' Base64).
pub fn assert_no_secrets(log: &str, user: &str, password: &str, secrets: &[String]) {
    // Catalog, provision, bind, unbind, deprovision at least, and the refused call.
    let answered = log.matches("request answered").count();
    assert!(answered >= 5, "{answered} requests logged:\n{log}");
    assert!(
        log.contains("status=401"),
        "the refused call was not logged:\n{log}"
    );
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut all = secrets.to_vec();
    all.extend([password.to_string(), basic, "wrong-password-77".to_string()]);
    for secret in &all {
        assert!(!secret.is_empty());
        assert!(
            !log.contains(secret.as_str()),
            "the log quotes a secret ({secret:?}):\n{log}"
        );
    }
}
