//! [`AnyStore`]: one of the stores, chosen at run time from a database URL.

use async_trait::async_trait;
use osb_server::types::OperationId;

use crate::record::{Key, Millis, OperationRecord, ResourceRecord, Snapshot};
use crate::store::{Decide, OwnedDecide, Store};
use crate::{MemoryStore, StoreError};

/// One of the stores, chosen at run time, e.g. from a broker's `OSB_DATABASE_URL`
/// ([`AnyStore::open`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// In memory.
    Memory(MemoryStore),
    /// In a SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(crate::SqliteStore),
    /// In PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(crate::PgStore),
}

impl AnyStore {
    /// Opens the store `url` names: `sqlite:…` (feature `sqlite`), `postgres://…` or
    /// `postgresql://…` (feature `postgres`), or `memory:`; with each store's default options.
    pub async fn open(url: &str) -> Result<AnyStore, StoreError> {
        Self::open_with_keys(url, None).await
    }

    /// [`open`](Self::open), with these keys encrypting what the SQL stores write
    /// ([`StoreKeys`](crate::StoreKeys); the memory store keeps nothing at rest).
    pub async fn open_with_keys(
        url: &str,
        keys: Option<crate::StoreKeys>,
    ) -> Result<AnyStore, StoreError> {
        let _ = &keys;
        if url == "memory:" {
            return Ok(AnyStore::Memory(MemoryStore::new()));
        }
        #[cfg(feature = "sqlite")]
        if url.starts_with("sqlite:") {
            let options = crate::SqliteOptions {
                keys,
                ..Default::default()
            };
            let store = crate::SqliteStore::open(url, &options).await?;
            return Ok(AnyStore::Sqlite(store));
        }
        #[cfg(feature = "postgres")]
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = crate::PgOptions {
                keys,
                ..Default::default()
            };
            let store = crate::PgStore::open(url, &options).await?;
            return Ok(AnyStore::Postgres(store));
        }
        let scheme = url.split(':').next().unwrap_or(url);
        Err(StoreError::Unavailable(format!(
            "no store for {scheme:?} URLs in this build (sqlite: and postgres:// with their features, memory:)"
        )))
    }
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($store) => $call,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($store) => $call,
        }
    };
}

#[async_trait]
impl Store for AnyStore {
    async fn transact(&self, key: &Key, decide: &mut Decide<'_>) -> Result<Snapshot, StoreError> {
        dispatch!(self, s => s.transact(key, decide).await)
    }

    async fn transact_owned(&self, key: &Key, decide: OwnedDecide) -> Result<Snapshot, StoreError> {
        dispatch!(self, s => s.transact_owned(key, decide).await)
    }

    fn single_process(&self) -> bool {
        dispatch!(self, s => s.single_process())
    }

    async fn resource(&self, key: &Key) -> Result<Option<ResourceRecord>, StoreError> {
        dispatch!(self, s => s.resource(key).await)
    }

    async fn snapshot(&self, key: &Key) -> Result<Snapshot, StoreError> {
        dispatch!(self, s => s.snapshot(key).await)
    }

    async fn operation(
        &self,
        key: &Key,
        id: Option<&OperationId>,
    ) -> Result<Option<OperationRecord>, StoreError> {
        dispatch!(self, s => s.operation(key, id).await)
    }

    async fn claim(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Option<OperationRecord>, StoreError> {
        dispatch!(self, s => s.claim(owner, now, lease_until).await)
    }

    async fn renew(
        &self,
        id: &OperationId,
        owner: &str,
        lease_until: Millis,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.renew(id, owner, lease_until).await)
    }

    async fn release_all(&self) -> Result<u64, StoreError> {
        dispatch!(self, s => s.release_all().await)
    }

    async fn purge(&self, before: Millis) -> Result<u64, StoreError> {
        dispatch!(self, s => s.purge(before).await)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        dispatch!(self, s => s.count().await)
    }

    async fn health(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.health().await)
    }
}
