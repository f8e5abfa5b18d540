//! Group commit for [`SqliteStore::transact`](super::SqliteStore): one writer task runs the
//! transactions that queued while the previous one committed as **one** SQLite transaction.
//!
//! Every statement sent to sqlx's SQLite connection is a round trip to the connection's worker
//! thread, and write transactions run one at a time; a provision used to cost two transactions
//! of six round trips each. The writer reads the resources and operations of a whole batch in
//! one round trip and runs each caller's decision on its snapshot: inline when the caller handed
//! it over (`Store::transact_owned`), else in the caller's task (`Store::transact`, whose
//! `decide` borrows). It then writes the batch's changes with one multi-row statement per table
//! and commits once. Each caller is answered only after that commit.
//!
//! Statements of the broker's own join the same commit, after the store's writes: those queued
//! for a key (`SqliteStore::execute_with`, e.g. the kv-broker's namespace rows, with the
//! transaction that records the call that wrote them) and those sent alone
//! (`SqliteStore::execute_grouped`).
//!
//! Reads outside transactions (`Store::snapshot`, `Store::resource`) are batched the same way
//! by a reader task: the keys queued meanwhile are read in one round trip.
//!
//! A batch holds at most one transaction per instance (an instance's deletion takes its bindings
//! with it, so two keys of one instance could see each other's writes): a second one waits for
//! the next batch. The result is the same as running the batch's transactions one after the
//! other, in queue order. If anything fails, the whole batch is rolled back and every caller in
//! it gets the error: nothing is half-written.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqlitePool};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::SqlValue;
use crate::StoreError;
use crate::record::{Key, OperationRecord, ResourceRecord, Snapshot, Write};
use crate::rows::{bind_operation, bind_resource, operation_columns, operation_of, resource_of};
use crate::seal::Sealer;
use crate::store::OwnedDecide;

/// The most transactions one commit carries.
const MAX_BATCH: usize = 64;

/// A statement of the broker's own, run by [`SqliteStore::execute_grouped`](super::SqliteStore).
pub(super) type Statement =
    sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments<'static>>;

/// A statement of the broker's own queued for a key (`SqliteStore::execute_with`).
pub(super) type Attached = (&'static str, Vec<SqlValue>);

/// What the writer is asked to do.
pub(super) enum Job {
    /// One [`Store::transact`](crate::Store::transact).
    Transact(Transact),
    /// Statements of the broker's own, committed with the next group.
    Execute(Execute),
}

/// Who chooses a transaction's writes.
pub(super) enum Decision {
    /// The caller, in its own task ([`Store::transact`](crate::Store::transact)): the snapshot
    /// goes to it and its writes come back.
    Remote {
        /// Where the snapshot goes (or the error that prevented reading it).
        snapshot: oneshot::Sender<Result<Snapshot, StoreError>>,
        /// The writes the caller's `decide` chose; a caller that went away chose none.
        writes: oneshot::Receiver<Vec<Write>>,
    },
    /// The writer, inline ([`Store::transact_owned`](crate::Store::transact_owned)).
    Owned(OwnedDecide),
}

/// One queued [`Store::transact`](crate::Store::transact).
pub(super) struct Transact {
    pub(super) key: Key,
    pub(super) decision: Decision,
    /// Statements of the broker's own that go with this transaction
    /// (`SqliteStore::execute_with`), run after the group's writes.
    pub(super) attached: Vec<Attached>,
    /// The commit's outcome, with the snapshot of an owned decision.
    pub(super) done: oneshot::Sender<Result<Option<Snapshot>, StoreError>>,
}

/// Queued statements of the broker's own.
pub(super) struct Execute {
    pub(super) statements: Vec<Statement>,
    /// The commit's outcome: rows changed.
    pub(super) done: oneshot::Sender<Result<u64, StoreError>>,
}

/// A job whose writes are chosen.
struct Decided {
    writes: Vec<Write>,
    /// The snapshot, for an owned decision (a remote one has it already).
    snapshot: Option<Snapshot>,
    attached: Vec<Attached>,
    done: oneshot::Sender<Result<Option<Snapshot>, StoreError>>,
}

fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Incompatible(m) => StoreError::Incompatible(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
    }
}

/// Runs batches until every sender is gone.
pub(super) async fn writer(
    cache_kib: u32,
    pool: SqlitePool,
    queue: Arc<Mutex<()>>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    sealer: Sealer,
) {
    let mut held: VecDeque<Job> = VecDeque::new();
    // One connection for every batch: as the only writer, its page cache stays valid between
    // commits (a connection whose database another one changed drops its cache).
    let mut conn: Option<PoolConnection<Sqlite>> = None;
    // Closing the pool waits for every connection to come back: give the held one back then.
    let closed = pool.close_event();
    tokio::pin!(closed);
    loop {
        let first = match held.pop_front() {
            Some(job) => job,
            None => tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                () = &mut closed => return,
            },
        };
        let mut instances = HashSet::new();
        let mut batch = Vec::new();
        let mut later = VecDeque::new();
        let mut offer = |job: Job, batch: &mut Vec<Job>, later: &mut VecDeque<Job>| {
            let fits = batch.len() < MAX_BATCH
                && match &job {
                    Job::Transact(t) => instances.insert(t.key.instance_id.as_str().to_owned()),
                    Job::Execute(_) => true,
                };
            if fits {
                batch.push(job);
            } else {
                later.push_back(job);
            }
        };
        offer(first, &mut batch, &mut later);
        while let Some(job) = held.pop_front() {
            offer(job, &mut batch, &mut later);
        }
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => offer(job, &mut batch, &mut later),
                Err(_) => break,
            }
        }
        held = later;
        // A caller that went away before its snapshot was read has nothing to decide (an owned
        // decision runs all the same: it records work that was done).
        batch.retain(|job| match job {
            Job::Transact(Transact {
                decision: Decision::Remote { snapshot, .. },
                ..
            }) => !snapshot.is_closed(),
            _ => true,
        });
        if batch.is_empty() {
            continue;
        }
        let _queue = queue.lock().await;
        tracing::trace!(jobs = batch.len(), "group commit");
        run(cache_kib, &pool, &mut conn, batch, &sealer).await;
    }
}

/// One queued read of a resource and its operation in progress.
pub(super) struct Read {
    pub(super) key: Key,
    /// Whether its operation in progress is wanted too.
    pub(super) active: bool,
    pub(super) done: oneshot::Sender<Result<Snapshot, StoreError>>,
}

/// Reads resources for every caller queued meanwhile in one round trip (up to [`MAX_BATCH`]
/// keys), until every sender is gone.
pub(super) async fn reader(
    pool: SqlitePool,
    mut reads: mpsc::UnboundedReceiver<Read>,
    sealer: Sealer,
) {
    let closed = pool.close_event();
    tokio::pin!(closed);
    loop {
        let first = tokio::select! {
            read = reads.recv() => match read {
                Some(read) => read,
                None => return,
            },
            () = &mut closed => return,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match reads.try_recv() {
                Ok(read) => batch.push(read),
                Err(_) => break,
            }
        }
        batch.retain(|read| !read.done.is_closed());
        if batch.is_empty() {
            continue;
        }
        let keys: Vec<Key> = batch.iter().map(|read| read.key.clone()).collect();
        let with_active: Vec<bool> = batch.iter().map(|read| read.active).collect();
        let result = async {
            let mut conn = pool.acquire().await?;
            let read = read_keys(&mut conn, &keys, &with_active, &sealer, false).await;
            if read.is_err() {
                // Whatever the failure left open is not reused.
                let _ = rollback(&mut conn).await;
            }
            read
        }
        .await;
        match result {
            Ok((snapshots, _)) => {
                for (read, snapshot) in batch.into_iter().zip(snapshots) {
                    let _ = read.done.send(snapshot);
                }
            }
            Err(error) => {
                for read in batch {
                    let _ = read.done.send(Err(copy(&error)));
                }
            }
        }
    }
}

/// Runs one batch as one transaction and answers its callers.
async fn run(
    cache_kib: u32,
    pool: &SqlitePool,
    held: &mut Option<PoolConnection<Sqlite>>,
    batch: Vec<Job>,
    sealer: &Sealer,
) {
    let mut transacts = Vec::new();
    let mut executes = Vec::new();
    for job in batch {
        match job {
            Job::Transact(t) => transacts.push(t),
            Job::Execute(e) => executes.push(e),
        }
    }
    let fail_all = |error: &StoreError, transacts: Vec<Transact>, executes: Vec<Execute>| {
        for job in transacts {
            match job.decision {
                Decision::Remote { snapshot, .. } => {
                    let _ = snapshot.send(Err(copy(error)));
                }
                Decision::Owned(_) => {
                    let _ = job.done.send(Err(copy(error)));
                }
            }
        }
        for job in executes {
            let _ = job.done.send(Err(copy(error)));
        }
    };
    let mut conn = match held.take() {
        Some(conn) => conn,
        None => {
            let acquired = async {
                let mut conn = pool.acquire().await?;
                sqlx::query(&format!("PRAGMA cache_size = -{cache_kib}"))
                    .execute(&mut *conn)
                    .await?;
                Ok::<_, sqlx::Error>(conn)
            };
            match acquired.await {
                Ok(conn) => conn,
                Err(e) => return fail_all(&StoreError::from(e), transacts, executes),
            }
        }
    };
    // Begin and read, and hand out the snapshots.
    let keys: Vec<Key> = transacts.iter().map(|job| job.key.clone()).collect();
    let (snapshots, max_seq) = match read(&mut conn, &keys, sealer).await {
        Ok(read) => read,
        Err(error) => {
            if rollback(&mut conn).await {
                *held = Some(conn);
            }
            return fail_all(&error, transacts, executes);
        }
    };
    // Owned decisions run here; remote ones in their callers' tasks, all at once.
    let mut decided = Vec::with_capacity(transacts.len());
    let mut waiting = Vec::new();
    for (job, snapshot) in transacts.into_iter().zip(snapshots) {
        match job.decision {
            Decision::Owned(mut decide) => decided.push(Decided {
                writes: decide(&snapshot),
                snapshot: Some(snapshot),
                attached: job.attached,
                done: job.done,
            }),
            Decision::Remote {
                snapshot: to_caller,
                writes,
            } => {
                if to_caller.send(Ok(snapshot)).is_ok() {
                    waiting.push((writes, job.attached, job.done));
                }
            }
        }
    }
    for (writes, attached, done) in waiting {
        decided.push(Decided {
            writes: writes.await.unwrap_or_default(),
            snapshot: None,
            attached,
            done,
        });
    }
    // Write and commit.
    let mut changed = Vec::with_capacity(executes.len());
    let mut answers = Vec::with_capacity(executes.len());
    for job in executes {
        changed.push(job.statements);
        answers.push(job.done);
    }
    let attached: Vec<Vec<Attached>> = decided
        .iter_mut()
        .map(|d| std::mem::take(&mut d.attached))
        .filter(|a| !a.is_empty())
        .collect();
    let result = async {
        apply(&mut conn, &decided, max_seq, sealer).await?;
        run_attached(&mut conn, attached).await?;
        let mut rows = Vec::with_capacity(changed.len());
        for statements in changed {
            let mut n = 0;
            for statement in statements {
                n += statement.execute(&mut *conn).await?.rows_affected();
            }
            rows.push(n);
        }
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        Ok::<Vec<u64>, StoreError>(rows)
    }
    .await;
    if result.is_err() {
        if rollback(&mut conn).await {
            *held = Some(conn);
        }
    } else {
        *held = Some(conn);
    }
    for job in decided {
        let _ = job.done.send(match &result {
            Ok(_) => Ok(job.snapshot),
            Err(error) => Err(copy(error)),
        });
    }
    for (i, done) in answers.into_iter().enumerate() {
        let _ = done.send(match &result {
            Ok(rows) => Ok(rows.get(i).copied().unwrap_or(0)),
            Err(error) => Err(copy(error)),
        });
    }
}

/// Runs the statements calls queued with `SqliteStore::execute_with`, each call's in order:
/// the first statements of every call, then the second ones, and so on. Identical statements
/// of one such round go to SQLite together, as one multi-statement text (their placeholders
/// renumbered), in chunks of power-of-two sizes so that few distinct texts are prepared.
async fn run_attached(
    conn: &mut PoolConnection<Sqlite>,
    calls: Vec<Vec<Attached>>,
) -> Result<(), StoreError> {
    let depth = calls.iter().map(Vec::len).max().unwrap_or(0);
    let mut calls: Vec<std::vec::IntoIter<Attached>> =
        calls.into_iter().map(Vec::into_iter).collect();
    for _ in 0..depth {
        // Same text and as many values: one text repeated.
        let mut alike: Vec<(&'static str, usize, Vec<Vec<SqlValue>>)> = Vec::new();
        for (sql, values) in calls.iter_mut().filter_map(Iterator::next) {
            match alike
                .iter_mut()
                .find(|(s, n, _)| *s == sql && *n == values.len())
            {
                Some((_, _, all)) => all.push(values),
                None => alike.push((sql, values.len(), vec![values])),
            }
        }
        for (sql, n, all) in alike {
            let mut rest = all.as_slice();
            while !rest.is_empty() {
                let size = prev_power_of_two(rest.len().min(MAX_ROWS));
                let (chunk, tail) = rest.split_at(size);
                rest = tail;
                let text = if size == 1 {
                    sql.to_string()
                } else {
                    (0..size)
                        .map(|i| renumber(sql, i * n))
                        .collect::<Vec<_>>()
                        .join(";\n")
                };
                let mut query = sqlx::query(&text);
                for value in chunk.iter().flatten() {
                    query = match value {
                        SqlValue::Null => query.bind(None::<i64>),
                        SqlValue::Int(i) => query.bind(*i),
                        SqlValue::Real(r) => query.bind(*r),
                        SqlValue::Text(t) => query.bind(t.clone()),
                        SqlValue::Blob(b) => query.bind(b.clone()),
                    };
                }
                query.execute(&mut **conn).await?;
            }
        }
    }
    Ok(())
}

/// The largest power of two at most `n` (`n` ≥ 1).
fn prev_power_of_two(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.max(1).leading_zeros())
}

/// `sql` with its numbered placeholders (`$N`, `?N`) moved up by `offset`, outside quotes.
fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '$' || c == '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                match digits.parse::<usize>() {
                    Ok(n) => out.push_str(&(n + offset).to_string()),
                    Err(_) => out.push_str(&digits),
                }
            }
            None => {}
        }
    }
    out
}

/// Ends a failed transaction; a connection that cannot is closed rather than reused (`false`).
async fn rollback(conn: &mut PoolConnection<Sqlite>) -> bool {
    if sqlx::query("ROLLBACK").execute(&mut **conn).await.is_err() {
        // "no transaction is active" (it never began) also lands here; closing is safe either way.
        conn.close_on_drop();
        return false;
    }
    true
}

/// Keys in `VALUES` form for a join: `(?, ?), (?, ?), …`.
fn key_values(n: usize) -> String {
    vec!["(?, ?)"; n].join(", ")
}

/// `BEGIN IMMEDIATE`, then the resources, the operations in progress and the last operation
/// number, in one round trip.
async fn read(
    conn: &mut PoolConnection<Sqlite>,
    keys: &[Key],
    sealer: &Sealer,
) -> Result<(Vec<Snapshot>, i64), StoreError> {
    let (snapshots, max_seq) = read_keys(conn, keys, &vec![true; keys.len()], sealer, true).await?;
    Ok((snapshots.into_iter().collect::<Result<_, _>>()?, max_seq))
}

/// The snapshots of `keys` (with their operation in progress where `with_active` says so): in
/// the writer's transaction (`write`: `BEGIN IMMEDIATE`, left open, with the last operation
/// number), or in a read transaction of their own.
async fn read_keys(
    conn: &mut PoolConnection<Sqlite>,
    keys: &[Key],
    with_active: &[bool],
    sealer: &Sealer,
    write: bool,
) -> Result<(Vec<Result<Snapshot, StoreError>>, i64), StoreError> {
    if keys.is_empty() {
        if write {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut **conn).await?;
        }
        return Ok((Vec::new(), 0));
    }
    // Padded to a power of two (repeating the last key) so that few statements are prepared.
    let padded = keys.len().next_power_of_two();
    let values = key_values(padded);
    let (begin, end) = if write {
        (
            "BEGIN IMMEDIATE",
            "SELECT COALESCE(MAX(seq), 0) AS max_seq FROM operations",
        )
    } else {
        ("BEGIN", "COMMIT")
    };
    let sql = format!(
        "{begin}; \
         SELECT r.instance_id, r.binding_id, r.service_id, r.plan_id, r.state, r.fingerprint, \
         r.request, r.reply, r.created_at, r.updated_at \
         FROM (VALUES {values}) AS k JOIN resources r \
         ON r.instance_id = k.column1 AND r.binding_id = k.column2; \
         SELECT o.{ops} FROM (VALUES {values}) AS k JOIN operations o \
         ON o.instance_id = k.column1 AND o.binding_id = k.column2 AND o.state = 'in progress'; \
         {end}",
        ops = operation_columns!().replace(", ", ", o."),
    );
    let mut query = sqlx::query(&sql);
    let last = keys.last();
    for _ in 0..2 {
        for key in keys
            .iter()
            .chain(std::iter::repeat_n(last, padded - keys.len()).flatten())
        {
            query = query
                .bind(key.instance_id.as_str())
                .bind(key.binding_column());
        }
    }
    let rows: Vec<SqliteRow> = query.fetch_all(&mut **conn).await?;
    // Rows that do not decode fail the reads of their own key only.
    let mut resources: HashMap<(String, String), Result<ResourceRecord, StoreError>> =
        HashMap::new();
    let mut active: HashMap<(String, String), Result<OperationRecord, StoreError>> = HashMap::new();
    let mut max_seq = 0;
    for row in &rows {
        if row.try_column("max_seq").is_ok() {
            max_seq = row.try_get("max_seq")?;
            continue;
        }
        let key: (String, String) = (row.try_get("instance_id")?, row.try_get("binding_id")?);
        if row.try_column("kind").is_ok() {
            active.insert(key, operation_of(row, sealer));
        } else {
            resources.insert(key, resource_of(row, sealer));
        }
    }
    let snapshots = keys
        .iter()
        .zip(with_active)
        // A key may come several times (reads of the same resource).
        .map(|(key, with_active)| {
            let key = (
                key.instance_id.as_str().to_owned(),
                key.binding_column().to_owned(),
            );
            Ok(Snapshot {
                resource: found(resources.get(&key))?,
                active: if *with_active {
                    found(active.get(&key))?
                } else {
                    None
                },
            })
        })
        .collect();
    Ok((snapshots, max_seq))
}

/// A record read by [`read_keys`], or the error that its row gave.
fn found<T: Clone>(found: Option<&Result<T, StoreError>>) -> Result<Option<T>, StoreError> {
    match found {
        None => Ok(None),
        Some(Ok(record)) => Ok(Some(record.clone())),
        Some(Err(error)) => Err(copy(error)),
    }
}

/// The most rows one statement writes.
const MAX_ROWS: usize = 64;

/// How `n` rows are written: `(rows, statement size)` per statement, in order. A statement's
/// size is a power of two (its last row repeated: every write is an idempotent upsert or
/// delete), so that few distinct statements are prepared and cached, and a group's rows of one
/// kind go in one statement.
fn chunks(mut n: usize) -> Vec<(usize, usize)> {
    let mut sizes = Vec::new();
    while n > 0 {
        let rows = n.min(MAX_ROWS);
        sizes.push((rows, rows.next_power_of_two()));
        n -= rows;
    }
    sizes
}

const RESOURCE_ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const UPSERT_RESOURCES_TAIL: &str = " ON CONFLICT (instance_id, binding_id) DO UPDATE SET \
    service_id = excluded.service_id, plan_id = excluded.plan_id, state = excluded.state, \
    fingerprint = excluded.fingerprint, request = excluded.request, reply = excluded.reply, \
    created_at = excluded.created_at, updated_at = excluded.updated_at";
const OPERATION_ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const UPSERT_OPERATIONS_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
    description = excluded.description, owner = excluded.owner, \
    lease_until = excluded.lease_until, deadline = excluded.deadline, \
    finished_at = excluded.finished_at";

/// Applies the writes of the batch. Callers write to distinct instances, so only the order of
/// a caller's own writes matters; when no caller both puts and deletes a resource, the puts go
/// first and the writes are grouped into multi-row statements per table, else they run one by
/// one in order.
async fn apply(
    conn: &mut PoolConnection<Sqlite>,
    decided: &[Decided],
    max_seq: i64,
    sealer: &Sealer,
) -> Result<(), StoreError> {
    let mixed = decided.iter().any(|d| {
        d.writes.iter().any(|w| matches!(w, Write::PutResource(_)))
            && d.writes
                .iter()
                .any(|w| matches!(w, Write::DeleteResource(_)))
    });
    let mut seq = max_seq;
    if mixed {
        for write in decided.iter().flat_map(|d| &d.writes) {
            apply_group(conn, std::slice::from_ref(write), &mut seq, sealer).await?;
        }
        return Ok(());
    }
    let writes: Vec<&Write> = decided.iter().flat_map(|d| &d.writes).collect();
    let resources: Vec<Write> = writes
        .iter()
        .filter(|w| matches!(w, Write::PutResource(_)))
        .map(|w| (*w).clone())
        .collect();
    let deletes: Vec<Write> = writes
        .iter()
        .filter(|w| matches!(w, Write::DeleteResource(_)))
        .map(|w| (*w).clone())
        .collect();
    let operations: Vec<Write> = writes
        .iter()
        .filter(|w| matches!(w, Write::PutOperation(_)))
        .map(|w| (*w).clone())
        .collect();
    apply_group(conn, &resources, &mut seq, sealer).await?;
    apply_group(conn, &deletes, &mut seq, sealer).await?;
    apply_group(conn, &operations, &mut seq, sealer).await?;
    Ok(())
}

/// Writes of one kind (as [`apply`] groups them), in chunks.
async fn apply_group(
    conn: &mut PoolConnection<Sqlite>,
    writes: &[Write],
    seq: &mut i64,
    sealer: &Sealer,
) -> Result<(), StoreError> {
    let mut rest = writes;
    for (rows, size) in chunks(writes.len()) {
        let (chunk, tail) = rest.split_at(rows);
        rest = tail;
        let padded = || {
            chunk
                .iter()
                .chain(std::iter::repeat_n(&chunk[rows - 1], size - rows))
                .enumerate()
        };
        match &chunk[0] {
            Write::PutResource(_) => {
                let sql = format!(
                    "INSERT INTO resources (instance_id, binding_id, service_id, plan_id, state, \
                     fingerprint, request, reply, created_at, updated_at) VALUES {}{}",
                    vec![RESOURCE_ROW; size].join(", "),
                    UPSERT_RESOURCES_TAIL
                );
                let mut query = sqlx::query(&sql);
                for (_, write) in padded() {
                    if let Write::PutResource(r) = write {
                        query = bind_resource!(query, r, sealer);
                    }
                }
                query.execute(&mut **conn).await?;
            }
            Write::PutOperation(_) => {
                let sql = format!(
                    "INSERT INTO operations ({}, seq) VALUES {}{}",
                    operation_columns!(),
                    vec![OPERATION_ROW; size].join(", "),
                    UPSERT_OPERATIONS_TAIL
                );
                let mut query = sqlx::query(&sql);
                for (i, write) in padded() {
                    if let Write::PutOperation(op) = write {
                        if i < rows {
                            *seq += 1;
                        }
                        query = bind_operation!(query, op, sealer).bind(*seq);
                    }
                }
                query.execute(&mut **conn).await?;
            }
            Write::DeleteResource(_) => {
                // An instance takes its bindings with it; a binding goes alone.
                let sql = format!(
                    "DELETE FROM resources WHERE (instance_id, binding_id) IN (SELECT column1, \
                     column2 FROM (VALUES {values})) OR instance_id IN (SELECT column1 FROM \
                     (VALUES {values}) WHERE column2 = '')",
                    values = key_values(size)
                );
                let mut query = sqlx::query(&sql);
                for _ in 0..2 {
                    for (_, write) in padded() {
                        if let Write::DeleteResource(key) = write {
                            query = query
                                .bind(key.instance_id.as_str().to_owned())
                                .bind(key.binding_column().to_owned());
                        }
                    }
                }
                query.execute(&mut **conn).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_outside_quotes() {
        assert_eq!(
            renumber(
                "UPDATE t SET a = $1, b = '$2', c = ?2 WHERE d = \"$1\" AND e = ?",
                3
            ),
            "UPDATE t SET a = $4, b = '$2', c = ?5 WHERE d = \"$1\" AND e = ?"
        );
        assert_eq!(renumber("SELECT $10", 0), "SELECT $10");
        assert_eq!(renumber("SELECT $10", 5), "SELECT $15");
        assert_eq!(prev_power_of_two(1), 1);
        assert_eq!(prev_power_of_two(37), 32);
        assert_eq!(prev_power_of_two(64), 64);
    }

    #[test]
    fn chunks_cover_the_rows_with_power_of_two_statements() {
        assert_eq!(chunks(0), Vec::<(usize, usize)>::new());
        assert_eq!(chunks(1), vec![(1, 1)]);
        assert_eq!(chunks(37), vec![(37, 64)]);
        assert_eq!(chunks(130), vec![(64, 64), (64, 64), (2, 2)]);
        for n in 0..300 {
            let sizes = chunks(n);
            assert_eq!(sizes.iter().map(|(rows, _)| rows).sum::<usize>(), n);
            assert!(sizes.iter().all(|&(rows, size)| {
                rows <= size && size <= MAX_ROWS && size.is_power_of_two() && size < 2 * rows
            }));
        }
    }
}
