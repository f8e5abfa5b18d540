//! The store test suite against PostgreSQL, and what replicas sharing one database need.
//!
//! Needs a server: `OSB_TEST_POSTGRES_URL` names a database whose user may create databases
//! (`.ci/run` starts a throwaway cluster and sets it). Each test works in a database of its own.
#![cfg(feature = "postgres")]

use std::sync::Arc;
use std::time::Duration;

use osb_server::ServiceBroker;
use osb_server::types::{InstanceId, ProvisionOutcome};
use osb_store::testing::{
    SYNC, TestBackend, check_resumed, config, ctx, leave_running, provision_request,
    stateful_suite, store_suite,
};
use osb_store::{PgOptions, PgStore, Stateful};
use sqlx::Connection as _;

/// A new, empty database; `None` (the test is skipped) when no server is configured, which
/// CI never allows.
async fn fresh_database() -> Option<String> {
    let Ok(admin) = std::env::var("OSB_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide OSB_TEST_POSTGRES_URL for the PostgreSQL tests"
        );
        eprintln!("skipped: OSB_TEST_POSTGRES_URL is not set");
        return None;
    };
    let name = format!("osb_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("the server answers");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("a test database");
    conn.close().await.ok();
    let base = admin.split('?').next().unwrap_or(&admin);
    let cut = base.rfind('/').expect("the URL names a database");
    Some(format!("{}/{name}", &base[..cut]))
}

async fn open(url: &str) -> PgStore {
    PgStore::open(url, &PgOptions::default())
        .await
        .expect("the store opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_store_suite() {
    if fresh_database().await.is_none() {
        return;
    }
    store_suite(|| async { open(&fresh_database().await.expect("configured")).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_stateful_suite() {
    let Some(url) = fresh_database().await else {
        return;
    };
    stateful_suite(|| open(&url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_takes_over_the_operation_of_one_that_died() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let token = leave_running(&open(&url).await, "died-1").await;
    // Another replica, on the same database: it does not release anything at start, and
    // takes the operation over once the dead worker's lease runs out.
    check_resumed(open(&url).await, "died-1", &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_create_an_instance_once() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let backend = Arc::new(TestBackend::new(Duration::from_millis(50)));
    let a = Stateful::new(backend.clone(), open(&url).await, config());
    let b = Stateful::new(backend.clone(), open(&url).await, config());
    let mut tasks = Vec::new();
    for n in 0..64 {
        let replica = if n % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            replica
                .provision(
                    InstanceId::from("shared"),
                    provision_request(SYNC),
                    ctx(SYNC, false),
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
    assert_eq!(backend.count("create shared"), 1);
}
