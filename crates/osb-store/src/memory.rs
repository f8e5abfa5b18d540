//! [`MemoryStore`]: the store in memory, for tests and examples.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use osb_server::types::OperationId;

use crate::StoreError;
use crate::record::{Key, Millis, OperationRecord, ResourceRecord, Snapshot, Write};
use crate::store::{Decide, Store};

/// A [`Store`] in memory: fast, and gone with the process.
///
/// ```
/// use osb_store::{Key, MemoryStore, Store};
/// # tokio_test_block_on(async {
/// let store = MemoryStore::new();
/// let key = Key::instance("i-1".into());
/// assert!(store.resource(&key).await.unwrap().is_none());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    resources: BTreeMap<Key, ResourceRecord>,
    operations: HashMap<OperationId, OperationRecord>,
    /// The operations of each resource, oldest first.
    by_key: HashMap<Key, Vec<OperationId>>,
}

impl State {
    fn active(&self, key: &Key) -> Option<&OperationRecord> {
        self.by_key
            .get(key)?
            .iter()
            .rev()
            .filter_map(|id| self.operations.get(id))
            .find(|op| op.is_active())
    }

    fn put_operation(&mut self, op: OperationRecord) {
        let ids = self.by_key.entry(op.key.clone()).or_default();
        if !ids.contains(&op.id) {
            ids.push(op.id.clone());
        }
        self.operations.insert(op.id.clone(), op);
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn transact(&self, key: &Key, decide: &mut Decide<'_>) -> Result<Snapshot, StoreError> {
        let mut state = self.lock();
        let snapshot = Snapshot {
            resource: state.resources.get(key).cloned(),
            active: state.active(key).cloned(),
        };
        for write in decide(&snapshot) {
            match write {
                Write::PutResource(resource) => {
                    state.resources.insert(resource.key.clone(), resource);
                }
                Write::DeleteResource(key) => {
                    state.resources.remove(&key);
                    if key.binding_id.is_none() {
                        // Keys sort by instance first: its bindings follow it.
                        let bindings: Vec<Key> = state
                            .resources
                            .range(&key..)
                            .map(|(k, _)| k)
                            .take_while(|k| k.instance_id == key.instance_id)
                            .cloned()
                            .collect();
                        for binding in bindings {
                            state.resources.remove(&binding);
                        }
                    }
                }
                Write::PutOperation(op) => state.put_operation(op),
            }
        }
        Ok(snapshot)
    }

    async fn resource(&self, key: &Key) -> Result<Option<ResourceRecord>, StoreError> {
        Ok(self.lock().resources.get(key).cloned())
    }

    async fn operation(
        &self,
        key: &Key,
        id: Option<&OperationId>,
    ) -> Result<Option<OperationRecord>, StoreError> {
        let state = self.lock();
        Ok(match id {
            Some(id) => state
                .operations
                .get(id)
                .filter(|op| op.key == *key)
                .cloned(),
            None => state
                .by_key
                .get(key)
                .and_then(|ids| ids.last())
                .and_then(|id| state.operations.get(id))
                .cloned(),
        })
    }

    async fn claim(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Option<OperationRecord>, StoreError> {
        let mut state = self.lock();
        let free = state
            .operations
            .values_mut()
            .filter(|op| op.is_active() && op.lease_until.is_none_or(|until| until < now))
            .min_by_key(|op| op.created_at);
        Ok(free.map(|op| {
            op.owner = Some(owner.to_string());
            op.lease_until = Some(lease_until);
            op.clone()
        }))
    }

    async fn renew(
        &self,
        id: &OperationId,
        owner: &str,
        lease_until: Millis,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        match state.operations.get_mut(id) {
            Some(op) if op.is_active() && op.owner.as_deref() == Some(owner) => {
                op.lease_until = Some(lease_until);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_all(&self) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let mut released = 0;
        for op in state.operations.values_mut().filter(|op| op.is_active()) {
            op.owner = None;
            op.lease_until = None;
            released += 1;
        }
        Ok(released)
    }

    async fn purge(&self, before: Millis) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let old: Vec<OperationId> = state
            .operations
            .values()
            .filter(|op| op.finished_at.is_some_and(|at| at < before))
            .map(|op| op.id.clone())
            .collect();
        for id in &old {
            if let Some(op) = state.operations.remove(id)
                && let Some(ids) = state.by_key.get_mut(&op.key)
            {
                ids.retain(|i| i != id);
                if ids.is_empty() {
                    state.by_key.remove(&op.key);
                }
            }
        }
        Ok(old.len() as u64)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.lock().resources.len() as u64)
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn single_process(&self) -> bool {
        true
    }
}
