//! [`SqliteStore`]: the store in one SQLite file (sqlx).

mod batch;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use osb_server::types::OperationId;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::StoreError;
use crate::record::{Key, Millis, OperationRecord, ResourceRecord, Snapshot};
use crate::rows::{bind_key, operation_columns, operation_of, sql};
use crate::seal::Sealer;
use crate::store::{Decide, OwnedDecide, Store};

/// How a [`SqliteStore`] is opened.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// How long a statement waits for another process's lock before the store answers
    /// [`StoreError::Unavailable`]. Default 5 s.
    pub busy_timeout: Duration,
    /// Connections in the pool. Default 4.
    pub max_connections: u32,
    /// `PRAGMA synchronous=FULL` instead of `NORMAL`: also survive power loss, at the cost of
    /// one fsync per committed write. Default off.
    pub full_sync: bool,
    /// Keys that encrypt requests, replies (binding credentials) and fingerprints at rest;
    /// `None` stores them as they are. Default `None`.
    pub keys: Option<crate::StoreKeys>,
    /// The page cache of the connection every write goes through, in KiB (the others keep
    /// SQLite's 2 MiB): the pages that writes touch stay in memory as the database grows.
    /// Default 12 MiB.
    pub write_cache_kib: u32,
}

impl SqliteOptions {
    /// These options, with `keys` encrypting records at rest.
    #[must_use]
    pub fn keys(mut self, keys: crate::StoreKeys) -> Self {
        self.keys = Some(keys);
        self
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            max_connections: 4,
            full_sync: false,
            keys: None,
            write_cache_kib: 12 * 1024,
        }
    }
}

/// A [`Store`] in one SQLite file.
///
/// Settings, chosen for a broker that answers a platform only after its write is committed:
///
/// - **WAL** journal: readers never wait for the writer.
/// - **`synchronous=NORMAL`**: a commit is in the WAL file before it returns, so a write the
///   broker acknowledged survives the broker's process being killed (`kill -9`); only an
///   operating-system crash or power loss can lose the last commits. Set
///   [`SqliteOptions::full_sync`] for `FULL`, which survives those too.
/// - **`BEGIN IMMEDIATE`** for every read-then-write ([`Store::transact`]): a deferred
///   transaction that upgrades to a write fails with `SQLITE_BUSY` at once, whatever
///   `busy_timeout` says. Within the process, write transactions also queue on one async lock,
///   so they never spin on SQLite's lock.
/// - **Group commit**: [`Store::transact`] calls that queue while a transaction commits run
///   together as the next transaction (one per instance at most, up to 64), read in one round
///   trip and written with one multi-row statement per table. Each caller's `decide` still sees
///   its own snapshot and each is answered after the commit; the result is that of running them
///   one after the other. A failure rolls the whole group back and every caller in it gets the
///   error. Every write goes through one connection, whose page cache
///   ([`SqliteOptions::write_cache_kib`]) stays valid between commits.
/// - **Batched reads**: [`Store::snapshot`] and [`Store::resource`] calls queued meanwhile are
///   read in one round trip.
/// - **Foreign keys on**, a busy timeout, and versioned migrations (`sqlx::migrate!`).
///
/// One SQLite file serves one broker process: at open, the store takes over every operation
/// left in progress ([`Store::release_all`]). Several replicas need the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    write: std::sync::Arc<tokio::sync::Mutex<()>>,
    sealer: Sealer,
    /// The group-commit writer's queue ([`Store::transact`]).
    jobs: tokio::sync::mpsc::UnboundedSender<batch::Job>,
    /// The batched reads' queue ([`Store::resource`], [`Store::snapshot`]).
    reads: tokio::sync::mpsc::UnboundedSender<batch::Read>,
    /// Statements waiting for the next transaction on their key
    /// ([`execute_with`](Self::execute_with)).
    attached: std::sync::Arc<Attached>,
}

/// A value bound to a statement of [`SqliteStore::execute_with`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SqlValue {
    /// `NULL`.
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// Statements queued by [`SqliteStore::execute_with`], by key.
#[derive(Default)]
struct Attached(std::sync::Mutex<HashMap<Key, Vec<batch::Attached>>>);

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        f.debug_struct("Attached").field("keys", &keys).finish()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite:path/to/file.db`, or
    /// `sqlite::memory:`), checks that it is this store's or empty, and migrates it.
    ///
    /// A file that is not a SQLite database, or one that holds another program's tables, is
    /// refused with [`StoreError::Incompatible`]; a database locked by another process past
    /// the busy timeout, or a directory that cannot be written, with
    /// [`StoreError::Unavailable`].
    pub async fn open(url: &str, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let mut connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("{url:?} is not a SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.full_sync {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        if options.keys.is_some() {
            // Bytes a rewrite frees (a row sealed now, in clear before) are zeroed, not left
            // in the file's free space.
            connect = connect.pragma("secure_delete", "ON");
        }
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = SqlitePoolOptions::new()
            // An in-memory database lives in one connection.
            .max_connections(if in_memory {
                1
            } else {
                options.max_connections.max(1)
            })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            .acquire_timeout(options.busy_timeout + Duration::from_secs(1))
            // A connection to a local file does not go stale; a ping per acquire would be one
            // more round trip to the connection's thread for every statement.
            .test_before_acquire(false)
            .connect_with(connect)
            .await?;
        check_ours(&pool).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Incompatible(e.to_string()))?;
        let write = std::sync::Arc::default();
        let sealer = Sealer::new(options.keys.clone());
        let (jobs, queue) = tokio::sync::mpsc::unbounded_channel();
        // The writer ends when the last clone of the store is dropped.
        tokio::spawn(batch::writer(
            options.write_cache_kib,
            pool.clone(),
            std::sync::Arc::clone(&write),
            queue,
            sealer.clone(),
        ));
        let (reads, read_queue) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(batch::reader(pool.clone(), read_queue, sealer.clone()));
        let store = SqliteStore {
            reads,
            pool,
            write,
            sealer,
            jobs,
            attached: std::sync::Arc::default(),
        };
        let released = store.release_all().await?;
        if released > 0 {
            tracing::info!(
                released,
                "took over the operations left in progress by an earlier process"
            );
        }
        Ok(store)
    }

    /// The connection pool, for a broker's own tables in the same database (run your own
    /// migrations on it; leave this store's tables alone).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Queues for this store's writes: hold the guard while writing to the same database from
    /// outside the store (a broker's own tables), so that writers wait in line instead of in
    /// SQLite's busy handler, which sleeps.
    pub async fn write_guard(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write.lock().await
    }

    /// Runs `statements` (on the broker's own tables) in order, in the store's next group
    /// commit, and returns the rows they changed once committed. Far cheaper under load than a
    /// transaction of one's own: the statements share the commit of the store's transactions
    /// queued at the same time.
    ///
    /// All or nothing: if one fails, nothing of the group is written and the error is returned
    /// (to every caller in the group, whose changes are rolled back too; they may retry).
    ///
    /// ```no_run
    /// # async fn demo(store: osb_store::SqliteStore) -> Result<(), osb_store::StoreError> {
    /// let changed = store
    ///     .execute_grouped(vec![
    ///         sqlx::query("INSERT INTO my_table (id) VALUES ($1) ON CONFLICT DO NOTHING")
    ///             .bind("i-1".to_string()),
    ///     ])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute_grouped(
        &self,
        statements: Vec<
            sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments<'static>>,
        >,
    ) -> Result<u64, StoreError> {
        let stopped = || StoreError::Unavailable("the store's writer has stopped".into());
        let (done, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(batch::Job::Execute(batch::Execute { statements, done }))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Queues `statements` (on the broker's own tables: SQL with `$1`, `$2`, … or `?`
    /// placeholders, and the values bound to them) to run in the same transaction as the next
    /// [`Store::transact`] on `key` in this process, after that transaction's writes, and
    /// returns at once. For a [`Backend`](crate::Backend) on this store:
    /// [`Stateful`](crate::Stateful) records the outcome of every backend call with a
    /// transaction on the call's resource (`Key::instance` for instance calls, `Key::binding`
    /// for binding calls), so the call's own writes and the record of its outcome are committed
    /// together, or neither is.
    ///
    /// A call's statements run in order; the statements of calls on different resources in the
    /// same group commit may run in any order relative to each other (identical statements of
    /// several calls go to SQLite in one round trip), so each should touch its own resource's
    /// rows only. A failure of one of them fails that transaction (and its group). The
    /// statements run even if the call that queued them then fails.
    ///
    /// ```no_run
    /// # fn demo(store: &osb_store::SqliteStore) {
    /// use osb_store::{Key, SqlValue};
    /// store.execute_with(
    ///     &Key::instance("i-1".into()),
    ///     vec![(
    ///         "INSERT INTO my_table (id) VALUES ($1) ON CONFLICT DO NOTHING",
    ///         vec![SqlValue::Text("i-1".into())],
    ///     )],
    /// );
    /// # }
    /// ```
    pub fn execute_with(&self, key: &Key, statements: Vec<(&'static str, Vec<SqlValue>)>) {
        if statements.is_empty() {
            return;
        }
        self.attached
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .extend(statements);
    }

    /// Reads `key` (and its operation in progress when `active` says so) in the reader's next
    /// batch.
    async fn read(&self, key: &Key, active: bool) -> Result<Snapshot, StoreError> {
        let stopped = || StoreError::Unavailable("the store's reader has stopped".into());
        let (done, answer) = tokio::sync::oneshot::channel();
        self.reads
            .send(batch::Read {
                key: key.clone(),
                active,
                done,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// The statements queued for `key` by [`execute_with`](Self::execute_with).
    fn take_attached(&self, key: &Key) -> Vec<batch::Attached> {
        let mut attached = self
            .attached
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if attached.is_empty() {
            return Vec::new();
        }
        attached.remove(key).unwrap_or_default()
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Refuses a database that holds tables but not this store's migrations.
async fn check_ours(pool: &SqlitePool) -> Result<(), StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(pool)
    .await?;
    if !tables.is_empty() && !tables.iter().any(|t| t == "_sqlx_migrations") {
        return Err(StoreError::Incompatible(format!(
            "the database holds tables of another program ({}); point the store at a new file",
            tables.join(", ")
        )));
    }
    Ok(())
}

/// The oldest operation no worker holds.
const CLAIMABLE: &str = concat!(
    "SELECT ",
    operation_columns!(),
    " FROM operations WHERE state = 'in progress' ",
    "AND (lease_until IS NULL OR lease_until < $1) ORDER BY seq LIMIT 1"
);

#[async_trait]
impl Store for SqliteStore {
    async fn transact(&self, key: &Key, decide: &mut Decide<'_>) -> Result<Snapshot, StoreError> {
        let stopped = || StoreError::Unavailable("the store's writer has stopped".into());
        let (snapshot_tx, snapshot_rx) = tokio::sync::oneshot::channel();
        let (writes_tx, writes_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(batch::Job::Transact(batch::Transact {
                key: key.clone(),
                decision: batch::Decision::Remote {
                    snapshot: snapshot_tx,
                    writes: writes_rx,
                },
                attached: self.take_attached(key),
                done: done_tx,
            }))
            .map_err(|_| stopped())?;
        let snapshot = snapshot_rx.await.map_err(|_| stopped())??;
        let _ = writes_tx.send(decide(&snapshot));
        done_rx.await.map_err(|_| stopped())??;
        Ok(snapshot)
    }

    async fn transact_owned(&self, key: &Key, decide: OwnedDecide) -> Result<Snapshot, StoreError> {
        let stopped = || StoreError::Unavailable("the store's writer has stopped".into());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(batch::Job::Transact(batch::Transact {
                key: key.clone(),
                decision: batch::Decision::Owned(decide),
                attached: self.take_attached(key),
                done: done_tx,
            }))
            .map_err(|_| stopped())?;
        done_rx
            .await
            .map_err(|_| stopped())??
            .ok_or_else(|| StoreError::Unavailable("the store's writer lost a snapshot".into()))
    }

    fn single_process(&self) -> bool {
        true
    }

    async fn resource(&self, key: &Key) -> Result<Option<ResourceRecord>, StoreError> {
        Ok(self.read(key, false).await?.resource)
    }

    /// Reads queued meanwhile by other callers go to SQLite together, in one round trip.
    async fn snapshot(&self, key: &Key) -> Result<Snapshot, StoreError> {
        self.read(key, true).await
    }

    async fn operation(
        &self,
        key: &Key,
        id: Option<&OperationId>,
    ) -> Result<Option<OperationRecord>, StoreError> {
        let row = match id {
            Some(id) => {
                bind_key!(sqlx::query(sql::SELECT_OPERATION), key)
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                bind_key!(sqlx::query(sql::SELECT_LATEST), key)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        row.as_ref()
            .map(|row| operation_of(row, &self.sealer))
            .transpose()
    }

    async fn claim(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Option<OperationRecord>, StoreError> {
        let _queue = self.write.lock().await;
        let mut tx = self.begin().await?;
        let row = sqlx::query(CLAIMABLE)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let mut op = operation_of(&row, &self.sealer)?;
        sqlx::query("UPDATE operations SET owner = $1, lease_until = $2 WHERE id = $3")
            .bind(owner)
            .bind(lease_until)
            .bind(op.id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        op.owner = Some(owner.to_string());
        op.lease_until = Some(lease_until);
        Ok(Some(op))
    }

    async fn renew(
        &self,
        id: &OperationId,
        owner: &str,
        lease_until: Millis,
    ) -> Result<bool, StoreError> {
        let _queue = self.write.lock().await;
        let done = sqlx::query(sql::RENEW)
            .bind(lease_until)
            .bind(id.as_str())
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_all(&self) -> Result<u64, StoreError> {
        let _queue = self.write.lock().await;
        let done = sqlx::query(sql::RELEASE_ALL).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    async fn purge(&self, before: Millis) -> Result<u64, StoreError> {
        let _queue = self.write.lock().await;
        let done = sqlx::query(sql::PURGE)
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(sql::COUNT).fetch_one(&self.pool).await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn health(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
