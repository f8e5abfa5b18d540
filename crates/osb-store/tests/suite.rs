//! The store test suite against the in-memory and SQLite stores.

use osb_store::MemoryStore;
#[cfg(feature = "sqlite")]
use osb_store::testing::{check_resumed, leave_running};
use osb_store::testing::{stateful_suite, store_suite};
#[cfg(feature = "sqlite")]
use osb_store::{SqliteOptions, SqliteStore};

#[cfg(feature = "sqlite")]
async fn sqlite(dir: &tempfile::TempDir, name: &str) -> SqliteStore {
    let url = format!("sqlite:{}", dir.path().join(name).display());
    SqliteStore::open(&url, &SqliteOptions::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_store_suite() {
    store_suite(|| async { MemoryStore::new() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_stateful_suite() {
    stateful_suite(|| async { MemoryStore::new() }).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_passes_the_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    store_suite(|| {
        let name = format!(
            "store-{}.db",
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let dir = &dir;
        async move { sqlite(dir, &name).await }
    })
    .await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_passes_the_stateful_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    stateful_suite(|| {
        let name = format!(
            "stateful-{}.db",
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let dir = &dir;
        async move { sqlite(dir, &name).await }
    })
    .await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_left_in_progress_is_resumed_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir, "restart.db").await;
    let token = leave_running(&store, "r-1").await;
    drop(store);
    // The process restarts: a new store on the same file.
    check_resumed(sqlite(&dir, "restart.db").await, "r-1", &token).await;
}

/// Keys that encrypt the SQLite store's records at rest.
#[cfg(feature = "sqlite")]
fn keys() -> osb_store::StoreKeys {
    osb_store::StoreKeys::new([9; 32]).with_old_key([8; 32])
}

#[cfg(feature = "sqlite")]
async fn sealed_sqlite(dir: &tempfile::TempDir, name: &str) -> SqliteStore {
    let url = format!("sqlite:{}", dir.path().join(name).display());
    let options = SqliteOptions::default().keys(keys());
    SqliteStore::open(&url, &options).await.unwrap()
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_with_keys_passes_the_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    store_suite(|| {
        let name = format!(
            "sealed-{}.db",
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let dir = &dir;
        async move { sealed_sqlite(dir, &name).await }
    })
    .await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_with_keys_passes_the_stateful_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    stateful_suite(|| {
        let name = format!(
            "sealed-stateful-{}.db",
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let dir = &dir;
        async move { sealed_sqlite(dir, &name).await }
    })
    .await;
}
