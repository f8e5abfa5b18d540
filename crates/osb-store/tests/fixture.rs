#![cfg(feature = "sqlite")]
//! A database written by the first schema version (`tests/fixtures/v1.db`, committed) opens
//! with this build: migrations carry it forward and every record reads back.

use osb_server::types::{BindingId, InstanceId, OperationId};
use osb_store::{
    Key, OperationKind, OperationRecord, OperationState, ResourceRecord, ResourceState,
    SqliteOptions, SqliteStore, Store, Write,
};
use serde_json::json;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.db");

fn instance() -> ResourceRecord {
    ResourceRecord {
        key: Key::instance(InstanceId::from("v1-instance")),
        service_id: Some("svc".into()),
        plan_id: Some("plan".into()),
        state: ResourceState::Ready,
        fingerprint: r#"{"plan_id":"plan"}"#.into(),
        request: json!({"service_id": "svc", "plan_id": "plan", "parameters": {"size": 3}}),
        reply: Some(json!({"dashboard_url": "https://dash/v1"})),
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_500,
    }
}

fn binding() -> ResourceRecord {
    ResourceRecord {
        key: Key::binding(
            InstanceId::from("v1-instance"),
            BindingId::from("v1-binding"),
        ),
        reply: Some(json!({"credentials": {"token": "t-1"}})),
        ..instance()
    }
}

fn running() -> OperationRecord {
    OperationRecord {
        id: OperationId::from("update-v1"),
        key: Key::instance(InstanceId::from("v1-instance")),
        kind: OperationKind::Update,
        state: OperationState::InProgress,
        fingerprint: "{}".into(),
        request: json!({"work": "update_instance", "request": {"service_id": "svc"}}),
        description: None,
        owner: Some("worker-of-v1".into()),
        lease_until: Some(1_700_000_030_000),
        deadline: None,
        created_at: 1_700_000_001_000,
        finished_at: None,
    }
}

/// Writes the fixture; run once with `--ignored` when a schema version is released.
#[tokio::test]
#[ignore = "writes tests/fixtures/v1.db"]
async fn write_v1_fixture() {
    let _ = std::fs::remove_file(FIXTURE);
    let store = SqliteStore::open(&format!("sqlite:{FIXTURE}"), &SqliteOptions::default())
        .await
        .unwrap();
    let key = instance().key;
    store
        .transact(&key, &mut |_| {
            vec![
                Write::PutResource(instance()),
                Write::PutResource(binding()),
                Write::PutOperation(running()),
            ]
        })
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
}

#[tokio::test]
async fn a_v1_database_opens_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("v1.db");
    std::fs::copy(FIXTURE, &copy).unwrap();
    let store = SqliteStore::open(
        &format!("sqlite:{}", copy.display()),
        &SqliteOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        store.resource(&instance().key).await.unwrap(),
        Some(instance())
    );
    assert_eq!(
        store.resource(&binding().key).await.unwrap(),
        Some(binding())
    );
    let op = store
        .operation(&instance().key, None)
        .await
        .unwrap()
        .unwrap();
    // Opening took the operation over from the worker of the process that wrote the file.
    assert_eq!(op.owner, None);
    assert_eq!(op.lease_until, None);
    assert_eq!(
        OperationRecord {
            owner: None,
            lease_until: None,
            ..running()
        },
        op
    );
    assert_eq!(store.count().await.unwrap(), 2);
}
