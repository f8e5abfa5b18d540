//! [`PgStore`]: the store in PostgreSQL, shared by several replicas of one broker.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use osb_server::types::OperationId;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::StoreError;
use crate::record::{Key, Millis, OperationRecord, ResourceRecord, Snapshot, Write};
use crate::rows::{
    bind_key, bind_operation, bind_resource, operation_columns, operation_of, resource_of, sql,
};
use crate::seal::Sealer;
use crate::store::{Decide, Store};

/// How a [`PgStore`] connects.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PgOptions {
    /// Connections in this replica's pool. Default 8.
    pub max_connections: u32,
    /// How long to wait for a connection (and for the server at all). Default 5 s.
    pub connect_timeout: Duration,
    /// The server-side limit of one statement (`statement_timeout`). Default 10 s.
    pub statement_timeout: Duration,
    /// Keys that encrypt requests, replies (binding credentials) and fingerprints at rest;
    /// `None` stores them as they are. Default `None`.
    pub keys: Option<crate::StoreKeys>,
}

impl PgOptions {
    /// These options, with `keys` encrypting records at rest.
    #[must_use]
    pub fn keys(mut self, keys: crate::StoreKeys) -> Self {
        self.keys = Some(keys);
        self
    }
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            keys: None,
        }
    }
}

/// A [`Store`] in PostgreSQL, for several replicas of one broker on one database.
///
/// Replicas coordinate through the database only:
///
/// - a transaction on a resource ([`Store::transact`]) holds a transaction-scoped advisory
///   lock on the resource's key, so two replicas never decide about one resource at once;
/// - a unique partial index allows one operation in progress per resource;
/// - workers claim operations with `FOR UPDATE SKIP LOCKED` and hold them under a lease; an
///   operation whose replica died is taken over by another once its lease runs out. Opening
///   the store does **not** take over operations in progress (other replicas may be running
///   them).
///
/// When the database goes away, calls fail with [`StoreError::Unavailable`] (the stateful layer
/// answers `503`), and the pool reconnects when it returns.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    sealer: Sealer,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and migrates the database.
    pub async fn open(url: &str, options: &PgOptions) -> Result<PgStore, StoreError> {
        let timeout = options.statement_timeout.as_millis().to_string();
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("not a PostgreSQL URL: {e}")))?
            .options([("statement_timeout", timeout.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Incompatible(e.to_string()))?;
        Ok(PgStore {
            pool,
            sealer: Sealer::new(options.keys.clone()),
        })
    }

    /// The connection pool, for a broker's own tables in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

async fn read_snapshot(
    tx: &mut Transaction<'static, Postgres>,
    key: &Key,
    sealer: &Sealer,
) -> Result<Snapshot, StoreError> {
    let resource = bind_key!(sqlx::query(sql::SELECT_RESOURCE), key)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(|row| resource_of(row, sealer))
        .transpose()?;
    let active = bind_key!(sqlx::query(sql::SELECT_ACTIVE), key)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(|row| operation_of(row, sealer))
        .transpose()?;
    Ok(Snapshot { resource, active })
}

/// Takes the oldest operation no worker holds, skipping those another replica is claiming.
const CLAIM: &str = concat!(
    "UPDATE operations SET owner = $1, lease_until = $2 WHERE id = (",
    "SELECT id FROM operations WHERE state = 'in progress' ",
    "AND (lease_until IS NULL OR lease_until < $3) ",
    "ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING ",
    operation_columns!()
);

/// `INSERT … ON CONFLICT (id) DO UPDATE` of an operation (`seq` is an identity column).
const INSERT_OPERATION: &str = concat!(
    "INSERT INTO operations (",
    operation_columns!(),
    ") VALUES (",
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ",
    "ON CONFLICT (id) DO UPDATE SET state = excluded.state, description = excluded.description, ",
    "owner = excluded.owner, lease_until = excluded.lease_until, deadline = excluded.deadline, ",
    "finished_at = excluded.finished_at"
);

async fn apply(
    tx: &mut Transaction<'static, Postgres>,
    write: Write,
    sealer: &Sealer,
) -> Result<(), StoreError> {
    match write {
        Write::PutResource(r) => {
            bind_resource!(sqlx::query(sql::UPSERT_RESOURCE), &r, sealer)
                .execute(&mut **tx)
                .await?;
        }
        Write::DeleteResource(key) => {
            let query = if key.binding_id.is_some() {
                sql::DELETE_BINDING
            } else {
                sql::DELETE_INSTANCE
            };
            bind_key!(sqlx::query(query), key)
                .execute(&mut **tx)
                .await?;
        }
        Write::PutOperation(op) => {
            bind_operation!(sqlx::query(INSERT_OPERATION), &op, sealer)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn transact(&self, key: &Key, decide: &mut Decide<'_>) -> Result<Snapshot, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))")
            .bind(key.instance_id.as_str())
            .bind(key.binding_column())
            .execute(&mut *tx)
            .await?;
        let snapshot = read_snapshot(&mut tx, key, &self.sealer).await?;
        for write in decide(&snapshot) {
            apply(&mut tx, write, &self.sealer).await?;
        }
        tx.commit().await?;
        Ok(snapshot)
    }

    async fn resource(&self, key: &Key) -> Result<Option<ResourceRecord>, StoreError> {
        bind_key!(sqlx::query(sql::SELECT_RESOURCE), key)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(|row| resource_of(row, &self.sealer))
            .transpose()
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
        sqlx::query(CLAIM)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(|row| operation_of(row, &self.sealer))
            .transpose()
    }

    async fn renew(
        &self,
        id: &OperationId,
        owner: &str,
        lease_until: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::RENEW)
            .bind(lease_until)
            .bind(id.as_str())
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_all(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(sql::RELEASE_ALL).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    async fn purge(&self, before: Millis) -> Result<u64, StoreError> {
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
