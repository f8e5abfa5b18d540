//! Several replicas of the kv-broker on one PostgreSQL database, with requests spread across
//! them. The server comes from `osb_store::testing::postgres` (a throwaway cluster unless
//! `OSB_TEST_POSTGRES_URL` names one; skipped only with `OSB_SKIP_POSTGRES=1`).
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use example_kv_broker::{ASYNC_PLAN_ID, Config, SERVICE_ID, SMALL_PLAN_ID, start};
use osb_client::prelude::*;
use osb_store::testing::postgres::{private_server, server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_create_an_instance_once_and_every_binding() {
    let Some(server) = server() else {
        return;
    };
    let url = server.fresh_database().await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let config = Config::new(USER, PASS, url.clone());
        replicas.push(start(config).await.expect("a replica starts"));
    }
    let clients: Vec<Client> = replicas.iter().map(|r| client(r.addr)).collect();
    let mut tasks = Vec::new();
    for n in 0..64 {
        let client = clients[n % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            client
                .provision(
                    &InstanceId::from("shared"),
                    &provision_request(SMALL_PLAN_ID),
                    &ProvisionQuery::new(),
                    &CallOptions::new(),
                )
                .await
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            ProvisionOutcome::Created(_) => created += 1,
            ProvisionOutcome::AlreadyExists(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 1);

    let mut tasks = Vec::new();
    for n in 0..64 {
        let client = clients[n % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            client
                .bind(
                    &InstanceId::from("shared"),
                    &BindingId::from(format!("b-{n}")),
                    &ServiceBindingRequest::new(SERVICE_ID, SMALL_PLAN_ID),
                    &BindQuery::new(),
                    &CallOptions::new(),
                )
                .await
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(matches!(outcome, BindOutcome::Created(_)), "{outcome:?}");
        tokens.insert(credentials(&outcome).1);
    }
    assert_eq!(tokens.len(), 64);
    // A token issued through one replica opens the instance through another.
    let token = tokens.iter().next().unwrap();
    let uri = format!("http://{}/kv/shared", replicas[2].addr);
    assert_eq!(
        kv(reqwest::Method::PUT, &uri, "k", token, Some("v"))
            .await
            .0,
        204
    );
    let uri = format!("http://{}/kv/shared", replicas[0].addr);
    assert_eq!(
        kv(reqwest::Method::GET, &uri, "k", token, None).await,
        (200, "v".into())
    );
}

/// An instance without a limit of its own holds its plan's default, however many writes
/// through however many replicas race for the last keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_hold_an_instance_to_its_key_limit() {
    let Some(server) = server() else {
        return;
    };
    let url = server.fresh_database().await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(
            start(Config::new(USER, PASS, url.clone()))
                .await
                .expect("a replica starts"),
        );
    }
    let token = small_instance_bound(&client(replicas[0].addr), &InstanceId::from("limited"))
        .await
        .1;
    let limit = usize::try_from(example_kv_broker::DEFAULT_MAX_KEYS).unwrap();
    let uri = |n: usize| format!("http://{}/kv/limited", replicas[n % replicas.len()].addr);
    for n in 0..limit - 3 {
        let (status, body) = kv(
            reqwest::Method::PUT,
            &uri(n),
            &format!("k-{n}"),
            &token,
            Some("v"),
        )
        .await;
        assert_eq!(status, 204, "{body}");
    }
    // 30 writers, each on a connection of its own made beforehand, race for the last 3 keys.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(30));
    let mut tasks = Vec::new();
    for n in limit..limit + 30 {
        let (uri, token, start) = (uri(n), token.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let warm = http
                .get(format!("{uri}/k-{n}"))
                .bearer_auth(&token)
                .send()
                .await;
            assert_eq!(warm.expect("the key-value API answers").status(), 404);
            start.wait().await;
            let put = http
                .put(format!("{uri}/k-{n}"))
                .bearer_auth(&token)
                .body("v")
                .send()
                .await;
            put.expect("the key-value API answers").status().as_u16()
        }));
    }
    let mut stored = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            204 => stored += 1,
            507 => refused += 1,
            other => panic!("a write answered {other}"),
        }
    }
    assert_eq!((stored, refused), (3, 27));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_finishes_the_operation_of_one_killed_with_sigkill() {
    let Some(server) = server() else {
        return;
    };
    let url = server.fresh_database().await;
    let spawn = |addr: std::net::SocketAddr| {
        Command::new(env!("CARGO_BIN_EXE_example-kv-broker"))
            .env("OSB_LISTEN", addr.to_string())
            .env("OSB_DATABASE_URL", &url)
            .env("OSB_BROKER_USERNAME", USER)
            .env("OSB_BROKER_PASSWORD", PASS)
            .env("OSB_ASYNC_DELAY_MS", "1500")
            .env("OSB_LEASE_MS", "600")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("a replica starts")
    };
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
    };
    let (a_addr, b_addr) = (port(), port());
    let mut a = spawn(a_addr);
    let mut b = spawn(b_addr);
    for addr in [a_addr, b_addr] {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = reqwest::get(format!("http://{addr}/healthz"))
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                break;
            }
            assert!(Instant::now() < until, "replica {addr} did not start");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    let instance = InstanceId::from("orphaned");
    let accepted = client(a_addr)
        .provision(
            &instance,
            &provision_request(ASYNC_PLAN_ID),
            &ProvisionQuery::new().with_accepts_incomplete(true),
            &CallOptions::new(),
        )
        .await
        .unwrap()
        .as_accepted()
        .expect("202")
        .clone();
    a.kill().unwrap();
    a.wait().unwrap();
    let b_client = client(b_addr);
    let catalog = b_client.catalog(&CallOptions::new()).await.unwrap();
    let (service, plan) = catalog.find_plan(ASYNC_PLAN_ID).unwrap();
    let done = b_client
        .wait(&instance, &accepted, &WaitOptions::create(service, plan))
        .await
        .unwrap();
    assert!(matches!(done, PollOutcome::Succeeded(_)), "{done:?}");
    let found = b_client
        .fetch_instance(&instance, &FetchInstanceQuery::new(), &CallOptions::new())
        .await
        .unwrap();
    assert!(matches!(found, FetchInstanceOutcome::Found(_)));
    b.kill().unwrap();
    b.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_loses_no_acknowledged_write() {
    let Some(server) = private_server() else {
        return;
    };
    let url = server.fresh_database().await;
    let mut replicas = Vec::new();
    for _ in 0..2 {
        replicas.push(start(Config::new(USER, PASS, url.clone())).await.unwrap());
    }
    let clients: Vec<Client> = replicas.iter().map(|r| client(r.addr)).collect();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for worker in 0..4 {
        let client = clients[worker % 2].clone();
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let id = InstanceId::from(format!("w{worker}-{n}"));
                let outcome = client
                    .provision(
                        &id,
                        &provision_request(SMALL_PLAN_ID),
                        &ProvisionQuery::new(),
                        &CallOptions::new(),
                    )
                    .await;
                match outcome {
                    Ok(ProvisionOutcome::Created(_)) => acknowledged.lock().unwrap().push(id),
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.pause();
    // While the database is away, the replicas stay up and say so.
    let health = reqwest::get(format!("http://{}/healthz", replicas[0].addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let refused = clients[1]
        .provision(
            &InstanceId::from("during"),
            &provision_request(SMALL_PLAN_ID),
            &ProvisionQuery::new(),
            &CallOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, osb_client::Error::Broker { status, .. } if status.as_u16() >= 500),
        "{refused}"
    );
    server.resume();
    let until = Instant::now() + Duration::from_secs(20);
    for replica in &replicas {
        loop {
            let ok = reqwest::get(format!("http://{}/healthz", replica.addr))
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                break;
            }
            assert!(Instant::now() < until, "a replica did not recover");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let before = acknowledged.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > before,
        "service resumed after the restart"
    );
    for id in &acknowledged {
        let found = clients[0]
            .fetch_instance(id, &FetchInstanceQuery::new(), &CallOptions::new())
            .await
            .unwrap();
        assert!(matches!(found, FetchInstanceOutcome::Found(_)), "{id} lost");
    }
}
