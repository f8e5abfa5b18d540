//! The [`Store`] trait: the few atomic steps the stateful layer is built from.

use async_trait::async_trait;
use osb_server::types::OperationId;

use crate::StoreError;
use crate::record::{Key, Millis, OperationRecord, ResourceRecord, Snapshot, Write};

/// Chooses the writes of a transaction from what it read.
pub type Decide<'a> = dyn FnMut(&Snapshot) -> Vec<Write> + Send + 'a;

/// A [`Decide`] the store owns: it may run it wherever the transaction runs (the SQLite store's
/// writer runs it inline, without handing the snapshot back to the caller's task).
pub type OwnedDecide = Box<Decide<'static>>;

/// Durable broker state: resources (instances and bindings) and the operations on them.
///
/// Every method is atomic. [`transact`](Self::transact) is the only read-then-write: it reads a
/// resource with its running operation and applies the writes `decide` chooses, as one
/// transaction that no other transaction on the same store interleaves with (SQLite:
/// `BEGIN IMMEDIATE`; in memory: one lock). A store keeps at most one operation in progress
/// per resource.
///
/// The implementations are [`MemoryStore`](crate::MemoryStore) and, with the `sqlite`
/// feature, `SqliteStore`; `osb_store::testing` (feature `testing`) holds the test suite every
/// implementation must pass.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads the resource `key` and its operation in progress, then applies the writes that
    /// `decide` returns for them, atomically. Returns what was read.
    async fn transact(&self, key: &Key, decide: &mut Decide<'_>) -> Result<Snapshot, StoreError>;

    /// [`transact`](Self::transact) with a decision the store owns. The default runs it
    /// through `transact`.
    async fn transact_owned(
        &self,
        key: &Key,
        mut decide: OwnedDecide,
    ) -> Result<Snapshot, StoreError> {
        self.transact(key, &mut *decide).await
    }

    /// Whether this process is the only one that writes the store's data (in memory; SQLite:
    /// one process per file), so that the stateful layer may keep creations that were not
    /// acknowledged yet in memory (see [`Backend::commits_with_store`](crate::Backend::commits_with_store)).
    /// Default `false`: stores shared by replicas record every operation before it runs.
    fn single_process(&self) -> bool {
        false
    }

    /// The resource `key`, if it exists.
    async fn resource(&self, key: &Key) -> Result<Option<ResourceRecord>, StoreError>;

    /// The resource `key` and its operation in progress, as [`transact`](Self::transact) would
    /// read them, without writing. The default reads them one after the other.
    async fn snapshot(&self, key: &Key) -> Result<Snapshot, StoreError> {
        let resource = self.resource(key).await?;
        let active = match &resource {
            Some(_) => self
                .operation(key, None)
                .await?
                .filter(OperationRecord::is_active),
            None => None,
        };
        Ok(Snapshot { resource, active })
    }

    /// The operation `id` on `key`, or without an id the latest operation on `key`.
    async fn operation(
        &self,
        key: &Key,
        id: Option<&OperationId>,
    ) -> Result<Option<OperationRecord>, StoreError>;

    /// Claims one operation in progress that no worker holds (its lease ran out before `now`)
    /// for `owner` until `lease_until`, and returns it.
    async fn claim(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Option<OperationRecord>, StoreError>;

    /// Extends `owner`'s lease on operation `id`; `false` when another worker took it over or
    /// it finished.
    async fn renew(
        &self,
        id: &OperationId,
        owner: &str,
        lease_until: Millis,
    ) -> Result<bool, StoreError>;

    /// Ends every lease (a single-process store at start: no worker of an earlier process is
    /// left). Returns how many operations were released.
    async fn release_all(&self) -> Result<u64, StoreError>;

    /// Deletes finished operations that finished before `before`. Returns how many.
    async fn purge(&self, before: Millis) -> Result<u64, StoreError>;

    /// How many resources the store holds (instances and bindings).
    async fn count(&self) -> Result<u64, StoreError>;

    /// Checks that the store answers.
    async fn health(&self) -> Result<(), StoreError>;
}
