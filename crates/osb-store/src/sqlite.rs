//! [`SqliteStore`]: the store in one SQLite file (sqlx).

mod engine;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use osb_server::types::OperationId;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreError;
use crate::record::{Key, Millis, OperationRecord, ResourceRecord, Snapshot};
use crate::rows::{operation_columns, operation_of, sql};
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
/// - **One engine thread**: every store transaction and store read runs on one connection
///   (rusqlite) owned by one thread, whose page cache ([`SqliteOptions::write_cache_kib`])
///   stays valid between commits. A caller hands it one job and gets one answer.
/// - **Group commit**: [`Store::transact`] calls that queue while a transaction commits run
///   together as the next transaction (one per instance at most, up to 64): each caller's
///   `decide` sees its own snapshot and each is answered after the commit; the result is that
///   of running them one after the other. A caller whose writes fail is rolled back alone (the
///   group starts again with a savepoint per caller); a failure of the transaction itself (full
///   disk, I/O error) or of the commit rolls the whole group back and every caller in it gets
///   the error.
/// - **Batched reads**: [`Store::snapshot`], [`Store::resource`] and [`Store::operation`]
///   calls queued meanwhile run in one read transaction.
/// - **Background checkpoints**: a thread of its own copies committed pages from the WAL into
///   the database file every 20 ms, so that commits seldom wait for a checkpoint's writes and
///   `fsync` (the engine checkpoints by itself only past 4,000 WAL pages).
/// - **Foreign keys on**, a busy timeout, and versioned migrations (`sqlx::migrate!`).
///
/// Records cross between the engine thread and the caller's threads, so much memory is freed
/// by a thread other than the one that allocated it. glibc's allocator takes the allocating
/// thread's arena lock for each such free; under load, a broker binary does better with an
/// allocator built for it, such as mimalloc (the kv-broker's provisions: about +45 %).
///
/// One SQLite file serves one broker process: at open, the store takes over every operation
/// left in progress ([`Store::release_all`]). Several replicas need the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    write: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The engine's queue.
    jobs: tokio::sync::mpsc::UnboundedSender<engine::Job>,
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
struct Attached(std::sync::Mutex<HashMap<Key, Vec<engine::Attached>>>);

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
            .connect_with(connect.clone())
            .await?;
        check_ours(&pool).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Incompatible(e.to_string()))?;
        let conn = engine_connection(&connect, in_memory, options)?;
        let write = std::sync::Arc::default();
        let sealer = Sealer::new(options.keys.clone());
        let (jobs, queue) = tokio::sync::mpsc::unbounded_channel();
        let engine = engine::Engine::new(conn, sealer, std::sync::Arc::clone(&write));
        let closed = pool.clone();
        let cannot_start = |e: std::io::Error| {
            StoreError::Unavailable(format!("cannot start the store's thread: {e}"))
        };
        // The checkpointer stops with the engine.
        let (engine_alive, stopped) = std::sync::mpsc::channel::<()>();
        if !in_memory {
            let conn = connection(&connect, false, options)?;
            std::thread::Builder::new()
                .name("osb-sqlite-checkpoint".into())
                .spawn(move || checkpointer(&conn, &stopped))
                .map_err(cannot_start)?;
        }
        // The engine ends when the last clone of the store is dropped; once the pool is closed,
        // it refuses every job.
        std::thread::Builder::new()
            .name("osb-sqlite".into())
            .spawn(move || {
                engine::run(engine, queue, move || closed.is_closed());
                drop(engine_alive);
            })
            .map_err(cannot_start)?;
        let store = SqliteStore {
            pool,
            write,
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

    /// Runs `statements` (on the broker's own tables: SQL with `$1`, `$2`, … or `?`
    /// placeholders, and the values bound to them) in order, in the store's next group commit,
    /// and returns the rows they changed once committed. Far cheaper under load than a
    /// transaction of one's own: the statements share the commit of the store's transactions
    /// queued at the same time.
    ///
    /// All or nothing: if one fails, none of them is written and the error is returned; the
    /// rest of the group commits.
    ///
    /// ```no_run
    /// # async fn demo(store: osb_store::SqliteStore) -> Result<(), osb_store::StoreError> {
    /// use osb_store::SqlValue;
    /// let changed = store
    ///     .execute_grouped(vec![(
    ///         "INSERT INTO my_table (id) VALUES ($1) ON CONFLICT DO NOTHING",
    ///         vec![SqlValue::Text("i-1".into())],
    ///     )])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute_grouped(
        &self,
        statements: Vec<(&'static str, Vec<SqlValue>)>,
    ) -> Result<u64, StoreError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(engine::Job::Execute(engine::Execute { statements, done }))
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
    /// rows only. A failure of one of them fails that transaction (nothing of it is written).
    /// The statements run even if the call that queued them then fails.
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

    /// Reads `key` (and its operation in progress when `active` says so) in the engine's next
    /// batch of reads.
    async fn read(&self, key: &Key, active: bool) -> Result<Snapshot, StoreError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(engine::Job::Read(engine::Read {
                key: key.clone(),
                active,
                done,
            }))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `f` on the engine's thread.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&engine::Engine) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(engine::Job::Call(Box::new(move |engine| {
                let _ = done.send(f(engine));
            })))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// The statements queued for `key` by [`execute_with`](Self::execute_with).
    fn take_attached(&self, key: &Key) -> Vec<engine::Attached> {
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
}

/// A job the engine dropped: the store is closed, or the job's transaction failed in a way
/// that left no answer (it was rolled back).
fn stopped() -> StoreError {
    StoreError::Unavailable("the store is closed or could not run the request".into())
}

/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);

/// WAL pages after which the engine checkpoints by itself, should the checkpointer fall behind.
const ENGINE_CHECKPOINT_PAGES: u32 = 4000;

/// Copies committed pages from the WAL into the database file every [`CHECKPOINT_EVERY`], on a
/// connection of its own, so that the engine's commits seldom wait for a checkpoint's writes
/// and `fsync`. Ends when the engine does (`stop` disconnects).
fn checkpointer(conn: &rusqlite::Connection, stop: &std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY)
    {
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "the background checkpoint failed");
        }
    }
}

/// A connection of the store's own to the pool's database (in memory: shared by name within
/// the process), with the pool's busy timeout and `synchronous` setting.
fn connection(
    connect: &SqliteConnectOptions,
    in_memory: bool,
    options: &SqliteOptions,
) -> Result<rusqlite::Connection, StoreError> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let filename = connect.get_filename();
    let conn = if in_memory {
        let name = filename.to_string_lossy();
        let name = name.strip_prefix("file:").unwrap_or(&name);
        rusqlite::Connection::open_with_flags(
            format!("file:{name}?mode=memory&cache=shared"),
            flags | OpenFlags::SQLITE_OPEN_SHARED_CACHE,
        )?
    } else {
        rusqlite::Connection::open_with_flags(filename, flags)?
    };
    conn.busy_timeout(options.busy_timeout)?;
    conn.execute_batch(if options.full_sync {
        "PRAGMA synchronous = FULL;"
    } else {
        "PRAGMA synchronous = NORMAL;"
    })?;
    Ok(conn)
}

/// The engine's connection: [`connection`], with foreign keys, its page cache and its own
/// checkpoints past [`ENGINE_CHECKPOINT_PAGES`].
fn engine_connection(
    connect: &SqliteConnectOptions,
    in_memory: bool,
    options: &SqliteOptions,
) -> Result<rusqlite::Connection, StoreError> {
    let conn = connection(connect, in_memory, options)?;
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA cache_size = -{}; \
         PRAGMA wal_autocheckpoint = {ENGINE_CHECKPOINT_PAGES};{}",
        options.write_cache_kib,
        if options.keys.is_some() {
            " PRAGMA secure_delete = ON;"
        } else {
            ""
        },
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
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
        let (snapshot_tx, snapshot_rx) = tokio::sync::oneshot::channel();
        let (writes_tx, writes_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(engine::Job::Transact(engine::Transact {
                key: key.clone(),
                decision: engine::Decision::Remote {
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
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(engine::Job::Transact(engine::Transact {
                key: key.clone(),
                decision: engine::Decision::Owned(decide),
                attached: self.take_attached(key),
                done: done_tx,
            }))
            .map_err(|_| stopped())?;
        done_rx
            .await
            .map_err(|_| stopped())??
            .ok_or_else(|| StoreError::Unavailable("the store's engine lost a snapshot".into()))
    }

    fn single_process(&self) -> bool {
        true
    }

    async fn resource(&self, key: &Key) -> Result<Option<ResourceRecord>, StoreError> {
        Ok(self.read(key, false).await?.resource)
    }

    /// Reads queued meanwhile by other callers run together, in one read transaction.
    async fn snapshot(&self, key: &Key) -> Result<Snapshot, StoreError> {
        self.read(key, true).await
    }

    async fn operation(
        &self,
        key: &Key,
        id: Option<&OperationId>,
    ) -> Result<Option<OperationRecord>, StoreError> {
        let key = key.clone();
        let id = id.map(|id| id.as_str().to_owned());
        self.call(move |engine| engine.operation(&key, id.as_deref()))
            .await
    }

    async fn claim(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Option<OperationRecord>, StoreError> {
        let owner = owner.to_owned();
        self.call(move |engine| {
            engine.writing(|| {
                engine.execute("BEGIN IMMEDIATE", &[])?;
                let claimed = (|| {
                    let found = engine
                        .query_row(CLAIMABLE, &[&now], |row| operation_of(row, engine.sealer()))?;
                    let Some(mut op) = found else {
                        return Ok(None);
                    };
                    engine.execute(
                        "UPDATE operations SET owner = $1, lease_until = $2 WHERE id = $3",
                        &[&owner, &lease_until, &op.id.as_str()],
                    )?;
                    op.owner = Some(owner.clone());
                    op.lease_until = Some(lease_until);
                    Ok(Some(op))
                })();
                engine.finish(claimed)
            })
        })
        .await
    }

    async fn renew(
        &self,
        id: &OperationId,
        owner: &str,
        lease_until: Millis,
    ) -> Result<bool, StoreError> {
        let (id, owner) = (id.as_str().to_owned(), owner.to_owned());
        self.call(move |engine| {
            engine.writing(|| engine.execute(sql::RENEW, &[&lease_until, &id, &owner]))
        })
        .await
        .map(|changed| changed == 1)
    }

    async fn release_all(&self) -> Result<u64, StoreError> {
        self.call(|engine| engine.writing(|| engine.execute(sql::RELEASE_ALL, &[])))
            .await
            .map(|changed| changed as u64)
    }

    async fn purge(&self, before: Millis) -> Result<u64, StoreError> {
        self.call(move |engine| engine.writing(|| engine.execute(sql::PURGE, &[&before])))
            .await
            .map(|changed| changed as u64)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.call(|engine| {
            engine
                .query_row(sql::COUNT, &[], |row| Ok(row.get::<_, i64>(0)?))
                .map(|count| u64::try_from(count.unwrap_or(0)).unwrap_or(0))
        })
        .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.call(|engine| engine.query_row("SELECT 1", &[], |_| Ok(())).map(|_| ()))
            .await
    }
}
