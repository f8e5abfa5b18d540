//! Crash safety: the kv-broker binary is killed with SIGKILL in the middle of a load of
//! provisions and binds, restarted on the same database, and every instance and binding it
//! acknowledged is there, with working credentials.
mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use example_kv_broker::{SERVICE_ID, SMALL_PLAN_ID};
use osb_client::prelude::*;
use reqwest::Method;

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn spawn(database: &std::path::Path, addr: SocketAddr) -> Child {
    Command::new(env!("CARGO_BIN_EXE_example-kv-broker"))
        .env("OSB_LISTEN", addr.to_string())
        .env("OSB_DATABASE_URL", format!("sqlite:{}", database.display()))
        .env("OSB_BROKER_USERNAME", USER)
        .env("OSB_BROKER_PASSWORD", PASS)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the kv-broker binary starts")
}

async fn wait_healthy(addr: SocketAddr) {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        if let Ok(response) = reqwest::get(format!("http://{addr}/healthz")).await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the kv-broker at {addr} did not become healthy");
}

/// What the broker acknowledged: instances, and bindings with their tokens.
#[derive(Default)]
struct Acknowledged {
    instances: Vec<InstanceId>,
    bindings: Vec<(InstanceId, BindingId, String)>,
}

async fn load(addr: SocketAddr, round: usize, acknowledged: Arc<Mutex<Acknowledged>>) {
    let client = client(addr);
    let opts = CallOptions::new();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let client = client.clone();
        let opts = opts.clone();
        let acknowledged = acknowledged.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let instance = InstanceId::from(format!("r{round}-w{worker}-{n}"));
                let provisioned = client
                    .provision(
                        &instance,
                        &provision_request(SMALL_PLAN_ID),
                        &ProvisionQuery::new(),
                        &opts,
                    )
                    .await;
                if !matches!(provisioned, Ok(ProvisionOutcome::Created(_))) {
                    return;
                }
                acknowledged
                    .lock()
                    .unwrap()
                    .instances
                    .push(instance.clone());
                let binding = BindingId::from(format!("b{n}"));
                let bound = client
                    .bind(
                        &instance,
                        &binding,
                        &ServiceBindingRequest::new(SERVICE_ID, SMALL_PLAN_ID),
                        &BindQuery::new(),
                        &opts,
                    )
                    .await;
                let Ok(outcome @ BindOutcome::Created(_)) = bound else {
                    return;
                };
                let (_, token) = credentials(&outcome);
                acknowledged
                    .lock()
                    .unwrap()
                    .bindings
                    .push((instance, binding, token));
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

async fn crash_rounds(rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("kv.db");
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    for round in 0..rounds {
        let addr = free_port();
        let mut child = spawn(&database, addr);
        wait_healthy(addr).await;
        let load = tokio::spawn(load(addr, round, acknowledged.clone()));
        tokio::time::sleep(Duration::from_millis(300 + 50 * (round as u64 % 4))).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        let _ = load.await;

        let addr = free_port();
        let mut child = spawn(&database, addr);
        wait_healthy(addr).await;
        let client = client(addr);
        let opts = CallOptions::new();
        let (instances, bindings) = {
            let acknowledged = acknowledged.lock().unwrap();
            (
                acknowledged.instances.clone(),
                acknowledged.bindings.clone(),
            )
        };
        assert!(
            !instances.is_empty(),
            "round {round}: the load did something"
        );
        for instance in &instances {
            let found = client
                .fetch_instance(instance, &FetchInstanceQuery::new(), &opts)
                .await
                .unwrap();
            assert!(
                matches!(found, FetchInstanceOutcome::Found(_)),
                "round {round}: {instance} lost"
            );
        }
        for (instance, binding, token) in &bindings {
            let found = client
                .fetch_binding(instance, binding, &FetchBindingQuery::new(), &opts)
                .await
                .unwrap();
            assert!(
                matches!(found, FetchBindingOutcome::Found(_)),
                "round {round}: {binding} lost"
            );
            let uri = format!("http://{addr}/kv/{instance}");
            let (status, _) = kv(Method::GET, &uri, "nothing", token, None).await;
            assert_eq!(
                status, 404,
                "round {round}: the token of {binding} still opens {instance}"
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_instances_and_bindings_survive_kill_9() {
    crash_rounds(3).await;
}

/// The long form: `cargo test -p example-kv-broker --test crash -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "20 rounds; run on demand"]
async fn acknowledged_instances_and_bindings_survive_twenty_kill_9() {
    crash_rounds(20).await;
}
