//! The store test suite against PostgreSQL, and what replicas sharing one database need.
//!
//! Each test works in a database of its own, on the server `OSB_TEST_POSTGRES_URL` names (its
//! user may create databases; `.ci/run` starts a throwaway cluster and sets it) or, without it,
//! on a throwaway cluster the test starts from the machine's PostgreSQL (`.ci/postgres`) and
//! stops. They are skipped only when `OSB_SKIP_POSTGRES=1` says so.
#![cfg(feature = "postgres")]

use std::sync::Arc;
use std::time::Duration;

use osb_server::ServiceBroker;
use osb_server::types::{InstanceId, ProvisionOutcome};
use osb_store::testing::postgres::{Server, server};
use osb_store::testing::{
    SYNC, TestBackend, check_resumed, config, ctx, leave_running, provision_request,
    stateful_suite, store_suite,
};
use osb_store::{PgOptions, PgStore, Stateful};

async fn fresh_database(server: &Server) -> String {
    server.fresh_database().await
}

async fn open(url: &str) -> PgStore {
    PgStore::open(url, &PgOptions::default())
        .await
        .expect("the store opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_store_suite() {
    let Some(server) = server() else {
        return;
    };
    store_suite(|| async { open(&fresh_database(&server).await).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_stateful_suite() {
    let Some(server) = server() else {
        return;
    };
    let url = fresh_database(&server).await;
    stateful_suite(|| open(&url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_takes_over_the_operation_of_one_that_died() {
    let Some(server) = server() else {
        return;
    };
    let url = fresh_database(&server).await;
    let token = leave_running(&open(&url).await, "died-1").await;
    // Another replica, on the same database: it does not release anything at start, and
    // takes the operation over once the dead worker's lease runs out.
    check_resumed(open(&url).await, "died-1", &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_create_an_instance_once() {
    let Some(server) = server() else {
        return;
    };
    let url = fresh_database(&server).await;
    let backend = Arc::new(TestBackend::new(Duration::from_millis(50)));
    // A lease long enough that no takeover happens on a loaded machine: a takeover runs the
    // (idempotent) work again by design, which is not what this test is about.
    let config = || config().lease(Duration::from_secs(10));
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

async fn open_sealed(url: &str, keys: osb_store::StoreKeys) -> PgStore {
    PgStore::open(url, &PgOptions::default().keys(keys))
        .await
        .expect("the store opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_with_keys_passes_the_stateful_suite() {
    let Some(server) = server() else {
        return;
    };
    let url = fresh_database(&server).await;
    let keys = osb_store::StoreKeys::new([5; 32]).with_old_key([4; 32]);
    stateful_suite(|| open_sealed(&url, keys.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_the_columns_never_hold_credentials() {
    use osb_server::types::BindingId;
    use osb_store::{Key, ResourceRecord, ResourceState, Store, Write};
    let Some(server) = server() else {
        return;
    };
    let url = fresh_database(&server).await;
    let credential = "pg-cred-41d7-only-in-the-reply";
    let record = ResourceRecord {
        key: Key::binding(InstanceId::from("i"), BindingId::from("b")),
        service_id: None,
        plan_id: None,
        state: ResourceState::Ready,
        fingerprint: "{}".into(),
        request: serde_json::json!({}),
        reply: Some(serde_json::json!({"credentials": {"password": credential}})),
        created_at: 1,
        updated_at: 1,
    };
    let store = open_sealed(&url, osb_store::StoreKeys::new([6; 32])).await;
    let put = record.clone();
    store
        .transact(&record.key, &mut |_| vec![Write::PutResource(put.clone())])
        .await
        .unwrap();
    assert_eq!(store.resource(&record.key).await.unwrap(), Some(record));
    let stored: String = sqlx::query_scalar("SELECT reply FROM resources")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(stored.starts_with("enc1:"), "{stored}");
    assert!(!stored.contains(credential), "{stored}");
}
