#![cfg(feature = "sqlite")]
//! Binding credentials at rest: with a key, the SQLite files never hold them in clear; keys
//! rotate; rows written before a key was set still read.

use base64::Engine as _;
use osb_server::types::{BindingId, InstanceId, OperationId};
use osb_store::{
    Key, OperationKind, OperationRecord, OperationState, ResourceRecord, ResourceState,
    SqliteOptions, SqliteStore, Store, StoreError, StoreKeys, Write,
};
use serde_json::json;

const CREDENTIAL: &str = "cred-6e1f-only-in-the-reply";
const PARAMETER: &str = "param-93bd-only-in-the-request";

fn key_text(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn keys(current: u8, old: &[u8]) -> StoreKeys {
    let old: Vec<String> = old.iter().map(|b| key_text(*b)).collect();
    let old: Vec<&str> = old.iter().map(String::as_str).collect();
    StoreKeys::from_base64(&key_text(current), &old).unwrap()
}

fn binding() -> ResourceRecord {
    ResourceRecord {
        key: Key::binding(InstanceId::from("inst-1"), BindingId::from("bind-1")),
        service_id: Some("svc".into()),
        plan_id: Some("plan".into()),
        state: ResourceState::Ready,
        fingerprint: format!(r#"{{"parameters":{{"password":"{PARAMETER}"}}}}"#),
        request: json!({"service_id": "svc", "parameters": {"password": PARAMETER}}),
        reply: Some(json!({"credentials": {"password": CREDENTIAL}})),
        created_at: 1,
        updated_at: 2,
    }
}

fn operation() -> OperationRecord {
    OperationRecord {
        id: OperationId::from("op-1"),
        key: binding().key,
        kind: OperationKind::Create,
        state: OperationState::InProgress,
        fingerprint: format!(r#"{{"password":"{PARAMETER}"}}"#),
        request: json!({"parameters": {"password": PARAMETER}}),
        description: None,
        owner: None,
        lease_until: None,
        deadline: None,
        created_at: 1,
        finished_at: None,
    }
}

async fn open(path: &std::path::Path, keys: Option<StoreKeys>) -> Result<SqliteStore, StoreError> {
    let options = match keys {
        Some(keys) => SqliteOptions::default().keys(keys),
        None => SqliteOptions::default(),
    };
    SqliteStore::open(&format!("sqlite:{}", path.display()), &options).await
}

async fn write(store: &SqliteStore) {
    store
        .transact(&binding().key, &mut |_| {
            vec![
                Write::PutResource(binding()),
                Write::PutOperation(operation()),
            ]
        })
        .await
        .unwrap();
}

/// Every byte the database keeps: the file, its WAL and shared memory.
fn files_hold(path: &std::path::Path, needle: &str) -> bool {
    ["", "-wal", "-shm"].iter().any(|suffix| {
        let file = format!("{}{suffix}", path.display());
        std::fs::read(file).is_ok_and(|bytes| {
            bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        })
    })
}

#[tokio::test]
async fn with_a_key_the_files_never_hold_credentials_or_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = dir.path().join("sealed.db");
    let store = open(&sealed, Some(keys(7, &[]))).await.unwrap();
    write(&store).await;
    assert_eq!(
        store.resource(&binding().key).await.unwrap(),
        Some(binding())
    );
    let op = store
        .operation(&binding().key, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(op.request, operation().request);
    store.pool().close().await;
    assert!(!files_hold(&sealed, CREDENTIAL));
    assert!(!files_hold(&sealed, PARAMETER));

    // The same writes without a key: the check finds them, so it can tell.
    let plain = dir.path().join("plain.db");
    let store = open(&plain, None).await.unwrap();
    write(&store).await;
    store.pool().close().await;
    assert!(files_hold(&plain, CREDENTIAL));
    assert!(files_hold(&plain, PARAMETER));
}

#[tokio::test]
async fn keys_rotate_and_a_missing_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotate.db");
    let store = open(&path, Some(keys(1, &[]))).await.unwrap();
    write(&store).await;
    store.pool().close().await;

    // A new key alone cannot read it; without any key it is refused too, never misread.
    let store = open(&path, Some(keys(2, &[]))).await.unwrap();
    let err = store.resource(&binding().key).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(!err.to_string().contains(CREDENTIAL));
    store.pool().close().await;
    let store = open(&path, None).await.unwrap();
    assert!(matches!(
        store.resource(&binding().key).await,
        Err(StoreError::Corrupt(_))
    ));
    store.pool().close().await;

    // The new key with the old one for reading reads it, and rewrites it with the new key.
    let store = open(&path, Some(keys(2, &[1]))).await.unwrap();
    assert_eq!(
        store.resource(&binding().key).await.unwrap(),
        Some(binding())
    );
    write(&store).await;
    store.pool().close().await;
    let store = open(&path, Some(keys(2, &[]))).await.unwrap();
    assert_eq!(
        store.resource(&binding().key).await.unwrap(),
        Some(binding())
    );
}

#[tokio::test]
async fn rows_written_without_a_key_still_read_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("before.db");
    let store = open(&path, None).await.unwrap();
    write(&store).await;
    store.pool().close().await;
    let store = open(&path, Some(keys(3, &[]))).await.unwrap();
    assert_eq!(
        store.resource(&binding().key).await.unwrap(),
        Some(binding())
    );
    let op = store
        .operation(&binding().key, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(op.fingerprint, operation().fingerprint);
    // Written again, the row is sealed, and once the WAL is checkpointed (SQLite does it on
    // its own as the WAL grows) the clear bytes are gone from the files: freed space is zeroed.
    write(&store).await;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
    // (An operation's request is written once: one from before the key stays as it was until
    // retention purges the operation.)
    assert!(!files_hold(&path, CREDENTIAL));
}
