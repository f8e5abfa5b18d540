//! The SQLite store's engine: one thread owns the connection (rusqlite) that every store
//! transaction and store read goes through, and runs whatever queued while it was busy
//! together.
//!
//! A call into an async driver's SQLite connection is a round trip to the connection's own
//! thread, one per statement (and one message per row back); under load, those hand-offs and
//! the thread wake-ups they cost were most of a write's time. Here a caller hands the engine
//! one job and gets one answer: the engine runs the job's statements on its own thread, with
//! prepared statements kept in its cache.
//!
//! **Group commit.** The transactions queued while the previous group committed run as **one**
//! SQLite transaction (`BEGIN IMMEDIATE`, one `COMMIT`, at most [`MAX_GROUP`] of them, at most
//! one per instance: an instance's deletion takes its bindings with it, so two keys of one
//! instance could see each other's writes; a second one waits for the next group). The jobs'
//! writes go in one after the other; should one fail, the group starts again with each job in a
//! savepoint of its own: a job whose statements fail is rolled back alone and answered with its
//! error, and the others commit. A failure that ends the transaction itself (a full
//! disk, an I/O error) or of the `COMMIT` fails every job of the group: nothing is half-written.
//! Every caller is answered after the commit.
//!
//! **Reads** ([`Store::snapshot`](crate::Store::snapshot), [`Store::resource`](crate::Store::resource),
//! [`Store::operation`](crate::Store::operation)) queued meanwhile run in one read transaction,
//! on the connection whose page cache every write keeps warm.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, Statement};
use tokio::sync::{mpsc, oneshot};

use super::SqlValue;
use crate::StoreError;
use crate::record::{Key, OperationRecord, ResourceRecord, Snapshot, Write};
use crate::rows::{operation_of, resource_of, sealed_operation, sealed_resource, sql};
use crate::seal::Sealer;
use crate::store::OwnedDecide;

/// The most transactions one commit carries.
pub(super) const MAX_GROUP: usize = 64;

/// The most jobs taken from the queue at once.
const MAX_TAKEN: usize = 512;

/// A statement of the broker's own: SQL with `$1`, `?1` or `?` placeholders, and its values.
pub(super) type Attached = (&'static str, Vec<SqlValue>);

/// Work on the engine's connection, run on its thread.
pub(super) type Call = Box<dyn FnOnce(&Engine) + Send>;

/// What the engine is asked to do.
pub(super) enum Job {
    /// One [`Store::transact`](crate::Store::transact).
    Transact(Transact),
    /// Statements of the broker's own, committed with the next group.
    Execute(Execute),
    /// One read of a resource.
    Read(Read),
    /// Anything else, run on its own (the call answers its caller).
    Call(Call),
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
    /// The engine, inline ([`Store::transact_owned`](crate::Store::transact_owned)).
    Owned(OwnedDecide),
}

/// One queued [`Store::transact`](crate::Store::transact).
pub(super) struct Transact {
    pub(super) key: Key,
    pub(super) decision: Decision,
    /// Statements of the broker's own that go with this transaction
    /// (`SqliteStore::execute_with`), run after its writes.
    pub(super) attached: Vec<Attached>,
    /// The commit's outcome, with the snapshot of an owned decision.
    pub(super) done: oneshot::Sender<Result<Option<Snapshot>, StoreError>>,
}

/// Queued statements of the broker's own (`SqliteStore::execute_grouped`).
pub(super) struct Execute {
    pub(super) statements: Vec<Attached>,
    /// The commit's outcome: rows changed.
    pub(super) done: oneshot::Sender<Result<u64, StoreError>>,
}

/// One queued read of a resource and its operation in progress.
pub(super) struct Read {
    pub(super) key: Key,
    /// Whether its operation in progress is wanted too.
    pub(super) active: bool,
    pub(super) done: oneshot::Sender<Result<Snapshot, StoreError>>,
}

/// A transaction of a group, with its writes chosen.
struct Decided {
    writes: Vec<Write>,
    /// The snapshot, for an owned decision (a remote one has it already).
    snapshot: Option<Snapshot>,
    attached: Vec<Attached>,
    done: oneshot::Sender<Result<Option<Snapshot>, StoreError>>,
}

/// The engine's connection and what it needs to read and write records.
pub(super) struct Engine {
    conn: Connection,
    sealer: Sealer,
    /// Held while writing: writes from outside the engine (`SqliteStore::write_guard`) wait in
    /// line instead of in SQLite's busy handler.
    queue: Arc<tokio::sync::Mutex<()>>,
}

fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Incompatible(m) => StoreError::Incompatible(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
    }
}

const UPSERT_OPERATION: &str = concat!(
    "INSERT INTO operations (",
    crate::rows::operation_columns!(),
    ", seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ",
    "ON CONFLICT (id) DO UPDATE SET state = excluded.state, ",
    "description = excluded.description, owner = excluded.owner, ",
    "lease_until = excluded.lease_until, deadline = excluded.deadline, ",
    "finished_at = excluded.finished_at"
);
const MAX_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) FROM operations";

impl ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            SqlValue::Null => ValueRef::Null,
            SqlValue::Int(i) => ValueRef::Integer(*i),
            SqlValue::Real(r) => ValueRef::Real(*r),
            SqlValue::Text(t) => ValueRef::Text(t.as_bytes()),
            SqlValue::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// Binds `values` to `statement` as sqlx does: a numbered placeholder (`$N`, `?N`) takes the
/// `N`th value wherever it appears, the `k`th bare `?` the `k`th value.
fn bind(statement: &mut Statement<'_>, values: &[&dyn ToSql]) -> rusqlite::Result<()> {
    let mut bare = 0;
    for index in 1..=statement.parameter_count() {
        let which = match statement.parameter_name(index) {
            None => {
                bare += 1;
                bare - 1
            }
            Some(name) => match name.get(1..).map(str::parse::<usize>) {
                Some(Ok(n)) if n > 0 && (name.starts_with('$') || name.starts_with('?')) => n - 1,
                _ => return Err(rusqlite::Error::InvalidParameterName(name.to_owned())),
            },
        };
        let value = values
            .get(which)
            .ok_or(rusqlite::Error::InvalidParameterCount(
                which + 1,
                values.len(),
            ))?;
        statement.raw_bind_parameter(index, value)?;
    }
    Ok(())
}

impl Engine {
    /// An engine on `conn`.
    pub(super) fn new(
        conn: Connection,
        sealer: Sealer,
        queue: Arc<tokio::sync::Mutex<()>>,
    ) -> Self {
        Engine {
            conn,
            sealer,
            queue,
        }
    }

    /// The record sealer, for calls.
    pub(super) fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// Runs `f` while holding the write queue (for a call that writes).
    pub(super) fn writing<T>(&self, f: impl FnOnce() -> T) -> T {
        let _queue = self.queue.blocking_lock();
        f()
    }

    /// Commits the transaction a call began when `result` is a success, else rolls it back.
    pub(super) fn finish<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let finished = result.and_then(|value| self.execute("COMMIT", &[]).map(|_| value));
        if finished.is_err() {
            self.rollback();
        }
        finished
    }

    /// Runs `sql` with `values`; the rows it changed.
    pub(super) fn execute(&self, sql: &str, values: &[&dyn ToSql]) -> Result<usize, StoreError> {
        let mut statement = self.conn.prepare_cached(sql)?;
        bind(&mut statement, values)?;
        Ok(statement.raw_execute()?)
    }

    /// The first row of `sql` with `values`, read by `f`.
    pub(super) fn query_row<T>(
        &self,
        sql: &str,
        values: &[&dyn ToSql],
        f: impl FnOnce(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut statement = self.conn.prepare_cached(sql)?;
        bind(&mut statement, values)?;
        let mut rows = statement.raw_query();
        match rows.next()? {
            Some(row) => f(row).map(Some),
            None => Ok(None),
        }
    }

    /// The resource `key` and, when `active`, its operation in progress.
    fn snapshot(&self, key: &Key, active: bool) -> Result<Snapshot, StoreError> {
        let values: [&dyn ToSql; 2] = [&key.instance_id.as_str(), &key.binding_column()];
        let resource = self.query_row(sql::SELECT_RESOURCE, &values, |row| {
            resource_of(row, &self.sealer)
        })?;
        let active = match (&resource, active) {
            (Some(_), true) => self.query_row(sql::SELECT_ACTIVE, &values, |row| {
                operation_of(row, &self.sealer)
            })?,
            _ => None,
        };
        Ok(Snapshot { resource, active })
    }

    /// The operation `id` on `key`, or the latest one.
    pub(super) fn operation(
        &self,
        key: &Key,
        id: Option<&str>,
    ) -> Result<Option<OperationRecord>, StoreError> {
        let instance = key.instance_id.as_str();
        let binding = key.binding_column();
        let read = |row: &rusqlite::Row<'_>| operation_of(row, &self.sealer);
        match id {
            Some(id) => self.query_row(sql::SELECT_OPERATION, &[&instance, &binding, &id], read),
            None => self.query_row(sql::SELECT_LATEST, &[&instance, &binding], read),
        }
    }

    /// Applies one write; `seq` numbers new operations.
    fn apply(&self, write: &Write, seq: &mut i64) -> Result<(), StoreError> {
        match write {
            Write::PutResource(r) => self.put_resource(r),
            Write::PutOperation(op) => {
                *seq += 1;
                self.put_operation(op, *seq)
            }
            Write::DeleteResource(key) => {
                let statement = match key.binding_id {
                    Some(_) => sql::DELETE_BINDING,
                    None => sql::DELETE_INSTANCE,
                };
                self.execute(
                    statement,
                    &[&key.instance_id.as_str(), &key.binding_column()],
                )?;
                Ok(())
            }
        }
    }

    fn put_resource(&self, r: &ResourceRecord) -> Result<(), StoreError> {
        let (fingerprint, request, reply) = sealed_resource(r, &self.sealer)?;
        self.execute(
            sql::UPSERT_RESOURCE,
            &[
                &r.key.instance_id.as_str(),
                &r.key.binding_column(),
                &r.service_id,
                &r.plan_id,
                &r.state.as_str(),
                &fingerprint,
                &request,
                &reply,
                &r.created_at,
                &r.updated_at,
            ],
        )?;
        Ok(())
    }

    fn put_operation(&self, op: &OperationRecord, seq: i64) -> Result<(), StoreError> {
        let (fingerprint, request) = sealed_operation(op, &self.sealer)?;
        self.execute(
            UPSERT_OPERATION,
            &[
                &op.id.as_str(),
                &op.key.instance_id.as_str(),
                &op.key.binding_column(),
                &op.kind.as_str(),
                &op.state.as_str(),
                &fingerprint,
                &request,
                &op.description,
                &op.owner,
                &op.lease_until,
                &op.deadline,
                &op.created_at,
                &op.finished_at,
                &seq,
            ],
        )?;
        Ok(())
    }

    /// Runs a broker's statements in order; the rows they changed.
    fn run_statements(&self, statements: &[Attached]) -> Result<u64, StoreError> {
        let mut changed = 0;
        for (sql, values) in statements {
            let values: Vec<&dyn ToSql> = values.iter().map(|v| v as &dyn ToSql).collect();
            changed += self.execute(sql, &values)? as u64;
        }
        Ok(changed)
    }

    /// Runs `f` in a savepoint: kept when it succeeds, rolled back when it fails. When the
    /// savepoint cannot be rolled back, the whole transaction is (the caller sees the
    /// connection back in autocommit and fails the group).
    fn savepoint<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.execute("SAVEPOINT job", &[])?;
        let result = f();
        if self.conn.is_autocommit() {
            // The failure ended the transaction itself.
            return result;
        }
        let ended = match &result {
            Ok(_) => self.execute("RELEASE job", &[]),
            Err(_) => self
                .execute("ROLLBACK TO job", &[])
                .and_then(|_| self.execute("RELEASE job", &[])),
        };
        if let Err(error) = ended {
            self.rollback();
            return Err(error);
        }
        result
    }

    /// Answers every read, from one read transaction.
    fn read_all(&self, reads: Vec<Read>) {
        let began = self.execute("BEGIN", &[]).is_ok();
        for read in reads {
            if read.done.is_closed() {
                continue;
            }
            let _ = read.done.send(self.snapshot(&read.key, read.active));
        }
        if began && !self.conn.is_autocommit() {
            let _ = self.execute("COMMIT", &[]);
        }
    }

    /// Runs one group of writes as one transaction and answers its callers.
    fn commit_group(&self, transacts: Vec<Transact>, executes: Vec<Execute>) {
        let _queue = self.queue.blocking_lock();
        let fail_all = |error: &StoreError, transacts: Vec<Transact>, executes: Vec<Execute>| {
            for job in transacts {
                if let Decision::Remote { snapshot, .. } = job.decision {
                    let _ = snapshot.send(Err(copy(error)));
                }
                let _ = job.done.send(Err(copy(error)));
            }
            for job in executes {
                let _ = job.done.send(Err(copy(error)));
            }
        };
        let mut seq = match self.begin_write() {
            Ok(seq) => seq,
            Err(error) => return fail_all(&error, transacts, executes),
        };
        // The snapshots first, so that every remote caller decides at the same time.
        let mut jobs = Vec::with_capacity(transacts.len());
        for job in transacts {
            let snapshot = self.snapshot(&job.key, true);
            let decision = match (job.decision, snapshot) {
                (Decision::Remote { snapshot: to, .. }, Err(error)) => {
                    let _ = to.send(Err(error));
                    continue;
                }
                (Decision::Owned(_), Err(error)) => {
                    let _ = job.done.send(Err(error));
                    continue;
                }
                (
                    Decision::Remote {
                        snapshot: to,
                        writes,
                    },
                    Ok(snapshot),
                ) => {
                    if to.send(Ok(snapshot)).is_err() {
                        // The caller went away before deciding.
                        continue;
                    }
                    (None, Err(writes))
                }
                (Decision::Owned(decide), Ok(snapshot)) => (Some(snapshot), Ok(decide)),
            };
            jobs.push((decision, job.attached, job.done));
        }
        // Then the decisions: the writes of every job, on its snapshot.
        let decided: Vec<Decided> = jobs
            .into_iter()
            .map(|((snapshot, decide), attached, done)| Decided {
                writes: match (decide, &snapshot) {
                    (Ok(mut decide), Some(snapshot)) => decide(snapshot),
                    (Err(writes), _) => writes.blocking_recv().unwrap_or_default(),
                    (Ok(_), None) => Vec::new(),
                },
                snapshot,
                attached,
                done,
            })
            .collect();
        // Every job's writes at once; should one fail, the group starts again (from the same
        // state: no other writer ran meanwhile) with each job in a savepoint of its own, so
        // that only the failing jobs fail.
        let at_once = (|| {
            for job in &decided {
                for write in &job.writes {
                    self.apply(write, &mut seq)?;
                }
                self.run_statements(&job.attached)?;
            }
            executes
                .iter()
                .map(|job| self.run_statements(&job.statements))
                .collect::<Result<Vec<u64>, StoreError>>()
        })();
        let (results, changed, broken) = match at_once {
            Ok(changed) => (
                decided.iter().map(|_| Ok(())).collect(),
                changed.into_iter().map(Ok).collect(),
                None,
            ),
            Err(_) => {
                self.rollback();
                match self.begin_write() {
                    Ok(again) => {
                        seq = again;
                        self.one_by_one(&decided, &executes, &mut seq)
                    }
                    Err(error) => (
                        decided.iter().map(|_| Err(copy(&error))).collect(),
                        executes.iter().map(|_| Err(copy(&error))).collect(),
                        Some(error),
                    ),
                }
            }
        };
        let committed = match broken {
            Some(error) => Err(error),
            None => self.execute("COMMIT", &[]).map(|_| ()),
        };
        if committed.is_err() {
            self.rollback();
        }
        for (job, result) in decided.into_iter().zip(results) {
            let _ = job.done.send(match &committed {
                Ok(()) => result.map(|()| job.snapshot),
                Err(error) => Err(copy(error)),
            });
        }
        for (job, result) in executes.into_iter().zip(changed) {
            let _ = job.done.send(match &committed {
                Ok(()) => result,
                Err(error) => Err(copy(error)),
            });
        }
    }

    /// `BEGIN IMMEDIATE`, and the last operation number; nothing is left open on a failure.
    fn begin_write(&self) -> Result<i64, StoreError> {
        let begun = self.execute("BEGIN IMMEDIATE", &[]).and_then(|_| {
            self.query_row(MAX_SEQ, &[], |row| Ok(row.get(0)?))
                .map(Option::unwrap_or_default)
        });
        if begun.is_err() {
            self.rollback();
        }
        begun
    }

    /// Applies each job in a savepoint of its own: the results of the transactions and of the
    /// broker statements, and the error that ended the whole transaction, if one did.
    #[allow(clippy::type_complexity)]
    fn one_by_one(
        &self,
        decided: &[Decided],
        executes: &[Execute],
        seq: &mut i64,
    ) -> (
        Vec<Result<(), StoreError>>,
        Vec<Result<u64, StoreError>>,
        Option<StoreError>,
    ) {
        let mut broken = None;
        let mut note = |error: Option<&StoreError>| {
            if let Some(error) = error
                && self.conn.is_autocommit()
            {
                broken = Some(copy(error));
            }
        };
        let mut results = Vec::with_capacity(decided.len());
        for job in decided {
            let result = self.savepoint(|| {
                for write in &job.writes {
                    self.apply(write, seq)?;
                }
                self.run_statements(&job.attached).map(|_| ())
            });
            note(result.as_ref().err());
            results.push(result);
        }
        let mut changed = Vec::with_capacity(executes.len());
        for job in executes {
            let result = self.savepoint(|| self.run_statements(&job.statements));
            note(result.as_ref().err());
            changed.push(result);
        }
        (results, changed, broken)
    }

    /// Ends a transaction that failed, if it is still open.
    fn rollback(&self) {
        if !self.conn.is_autocommit()
            && let Err(error) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(%error, "cannot roll back a failed transaction");
        }
    }
}

/// Runs jobs until every sender is gone; after `closed` says so, answers every job with
/// [`StoreError::Unavailable`].
pub(super) fn run(
    engine: Engine,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    closed: impl Fn() -> bool,
) {
    let mut held: VecDeque<Job> = VecDeque::new();
    loop {
        let mut taken: Vec<Job> = held.drain(..).collect();
        if taken.is_empty() {
            match jobs.blocking_recv() {
                Some(job) => taken.push(job),
                None => return,
            }
        }
        while taken.len() < MAX_TAKEN {
            match jobs.try_recv() {
                Ok(job) => taken.push(job),
                Err(_) => break,
            }
        }
        if closed() {
            let error = StoreError::Unavailable("the store is closed".into());
            for job in taken {
                match job {
                    Job::Transact(t) => {
                        if let Decision::Remote { snapshot, .. } = t.decision {
                            let _ = snapshot.send(Err(copy(&error)));
                        }
                        let _ = t.done.send(Err(copy(&error)));
                    }
                    Job::Execute(e) => {
                        let _ = e.done.send(Err(copy(&error)));
                    }
                    Job::Read(r) => {
                        let _ = r.done.send(Err(copy(&error)));
                    }
                    // Dropped unanswered: its caller sees the engine gone.
                    Job::Call(_) => {}
                }
            }
            continue;
        }
        // A job that panics (a decision with a bug) loses its own iteration, which is rolled
        // back; the engine goes on with the next jobs.
        let iteration = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut reads = Vec::new();
            let mut transacts = Vec::new();
            let mut executes = Vec::new();
            let mut instances = HashSet::new();
            for job in taken {
                match job {
                    Job::Read(read) => reads.push(read),
                    Job::Call(call) => call(&engine),
                    Job::Execute(execute) if transacts.len() + executes.len() < MAX_GROUP => {
                        executes.push(execute);
                    }
                    Job::Transact(t)
                        if transacts.len() + executes.len() < MAX_GROUP
                            && !instances.contains(t.key.instance_id.as_str()) =>
                    {
                        instances.insert(t.key.instance_id.as_str().to_owned());
                        transacts.push(t);
                    }
                    // The next group's.
                    job @ (Job::Transact(_) | Job::Execute(_)) => held.push_back(job),
                }
            }
            if !reads.is_empty() {
                engine.read_all(reads);
            }
            if !transacts.is_empty() || !executes.is_empty() {
                tracing::trace!(jobs = transacts.len() + executes.len(), "group commit");
                engine.commit_group(transacts, executes);
            }
        }));
        if iteration.is_err() {
            tracing::error!("a store job panicked; its transaction was rolled back");
            engine.rollback();
        }
    }
}
