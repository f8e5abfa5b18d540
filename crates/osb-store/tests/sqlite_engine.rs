//! The SQLite store's engine: broker statements and their placeholders, and one group commit
//! whose callers fail alone.
#![cfg(feature = "sqlite")]

use osb_server::types::InstanceId;
use osb_store::{
    Key, ResourceRecord, ResourceState, SqlValue, SqliteOptions, SqliteStore, Store, Write,
};
use serde_json::json;

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    let url = format!("sqlite:{}", dir.path().join("engine.db").display());
    let store = SqliteStore::open(&url, &SqliteOptions::default())
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notes (id TEXT PRIMARY KEY NOT NULL, a TEXT NOT NULL, b INTEGER)")
        .execute(store.pool())
        .await
        .unwrap();
    store
}

fn instance(id: &str) -> ResourceRecord {
    ResourceRecord {
        key: Key::instance(InstanceId::from(id)),
        service_id: Some("svc".into()),
        plan_id: Some("plan".into()),
        state: ResourceState::Ready,
        fingerprint: "{}".into(),
        request: json!({}),
        reply: Some(json!({})),
        created_at: 1,
        updated_at: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_statements_bind_numbered_and_bare_placeholders_as_sqlx_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let changed = store
        .execute_grouped(vec![
            // Numbered placeholders out of order, and one used twice.
            (
                "INSERT INTO notes (b, a, id) VALUES ($3, $2, $1 || '-' || $1)",
                vec![
                    SqlValue::Text("x".into()),
                    SqlValue::Text("first".into()),
                    SqlValue::Int(7),
                ],
            ),
            (
                "INSERT INTO notes (id, a, b) VALUES (?, ?, ?)",
                vec![
                    SqlValue::Text("y".into()),
                    SqlValue::Text("second".into()),
                    SqlValue::Null,
                ],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(changed, 2);
    let rows: Vec<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT id, a, b FROM notes ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            ("x-x".to_string(), "first".to_string(), Some(7)),
            ("y".to_string(), "second".to_string(), None),
        ]
    );
    // Too few values is an error, and writes nothing.
    let refused = store
        .execute_grouped(vec![
            ("INSERT INTO notes (id, a) VALUES ('z', 'z')", vec![]),
            ("INSERT INTO notes (id, a) VALUES ($1, $2)", vec![]),
        ])
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        count, 2,
        "the failed call's first statement was rolled back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_statements_fail_is_rolled_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    // 32 transactions queued together; every fourth one's own statement breaks a constraint.
    let mut calls = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        calls.push(tokio::spawn(async move {
            let record = instance(&format!("i-{i}"));
            let key = record.key.clone();
            let a = if i % 4 == 0 {
                SqlValue::Null
            } else {
                SqlValue::Text(format!("note {i}"))
            };
            store.execute_with(
                &key,
                vec![(
                    "INSERT INTO notes (id, a) VALUES ($1, $2)",
                    vec![SqlValue::Text(format!("i-{i}")), a],
                )],
            );
            store
                .transact(&key, &mut |_| vec![Write::PutResource(record.clone())])
                .await
        }));
    }
    for (i, call) in calls.into_iter().enumerate() {
        let result = call.await.unwrap();
        let key = Key::instance(InstanceId::from(format!("i-{i}")));
        let stored = store.resource(&key).await.unwrap();
        let note: Option<String> = sqlx::query_scalar("SELECT a FROM notes WHERE id = $1")
            .bind(format!("i-{i}"))
            .fetch_optional(store.pool())
            .await
            .unwrap();
        if i % 4 == 0 {
            assert!(result.is_err(), "transaction {i}: {result:?}");
            assert_eq!(stored, None, "transaction {i} left its resource");
            assert_eq!(note, None);
        } else {
            assert!(result.is_ok(), "transaction {i}: {result:?}");
            assert_eq!(stored, Some(instance(&format!("i-{i}"))));
            assert_eq!(note, Some(format!("note {i}")));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_writes_reach_the_database_file_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    for i in 0..10 {
        let record = instance(&format!("i-{i}"));
        store
            .transact(&record.key.clone(), &mut |_| {
                vec![Write::PutResource(record.clone())]
            })
            .await
            .unwrap();
    }
    // The database file alone, without its WAL: what checkpoints copied into it.
    let file_only = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("engine.db"))
        .immutable(true)
        .read_only(true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut conn = sqlx::ConnectOptions::connect(&file_only).await.unwrap();
        // Before the first checkpoint, even the tables are only in the WAL.
        let in_file: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM resources")
            .fetch_one(&mut conn)
            .await
            .unwrap_or(0);
        if in_file == 10 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{in_file} of 10 resources in the database file after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_that_panics_fails_its_transaction_and_the_store_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let broken = instance("broken");
    let key = broken.key.clone();
    store.execute_with(
        &key,
        vec![("INSERT INTO notes (id, a) VALUES ('broken', 'x')", vec![])],
    );
    let refused = store
        .transact_owned(
            &key,
            Box::new(move |_| -> Vec<Write> { panic!("a decision with a bug") }),
        )
        .await;
    assert!(
        matches!(refused, Err(osb_store::StoreError::Unavailable(_))),
        "{refused:?}"
    );
    assert_eq!(store.resource(&key).await.unwrap(), None);
    // The store still works, and nothing of the failed transaction was written.
    let fine = instance("fine");
    store
        .transact(&fine.key.clone(), &mut |_| {
            vec![Write::PutResource(fine.clone())]
        })
        .await
        .unwrap();
    assert_eq!(store.resource(&fine.key).await.unwrap(), Some(fine));
    let notes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(notes, 0);
}
