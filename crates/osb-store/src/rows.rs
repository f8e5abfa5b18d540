//! Records from SQL rows and back, the same for every database.

use osb_server::types::{BindingId, InstanceId, OperationId};
use serde_json::Value;

use crate::StoreError;
use crate::record::{
    Key, OperationKind, OperationRecord, OperationState, ResourceRecord, ResourceState,
};
use crate::seal::Sealer;

/// The columns of `resources`, in the order the stores write them.
macro_rules! resource_columns {
    () => {
        "instance_id, binding_id, service_id, plan_id, state, fingerprint, request, reply, created_at, updated_at"
    };
}

/// The columns of `operations`, in the order the stores write them.
macro_rules! operation_columns {
    () => {
        "id, instance_id, binding_id, kind, state, fingerprint, request, description, owner, lease_until, deadline, created_at, finished_at"
    };
}
pub(crate) use operation_columns;

/// The statements SQLite and PostgreSQL share (both read `$n` placeholders and `ON CONFLICT`).
pub(crate) mod sql {
    pub(crate) const SELECT_RESOURCE: &str = concat!(
        "SELECT ",
        resource_columns!(),
        " FROM resources WHERE instance_id = $1 AND binding_id = $2"
    );
    pub(crate) const SELECT_ACTIVE: &str = concat!(
        "SELECT ",
        operation_columns!(),
        " FROM operations WHERE instance_id = $1 AND binding_id = $2 AND state = 'in progress'"
    );
    pub(crate) const SELECT_OPERATION: &str = concat!(
        "SELECT ",
        operation_columns!(),
        " FROM operations WHERE id = $3 AND instance_id = $1 AND binding_id = $2"
    );
    pub(crate) const SELECT_LATEST: &str = concat!(
        "SELECT ",
        operation_columns!(),
        " FROM operations WHERE instance_id = $1 AND binding_id = $2 ORDER BY seq DESC LIMIT 1"
    );
    pub(crate) const UPSERT_RESOURCE: &str = concat!(
        "INSERT INTO resources (",
        resource_columns!(),
        ") ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ",
        "ON CONFLICT (instance_id, binding_id) DO UPDATE SET service_id = excluded.service_id, ",
        "plan_id = excluded.plan_id, state = excluded.state, fingerprint = excluded.fingerprint, ",
        "request = excluded.request, reply = excluded.reply, created_at = excluded.created_at, ",
        "updated_at = excluded.updated_at"
    );
    pub(crate) const DELETE_BINDING: &str =
        "DELETE FROM resources WHERE instance_id = $1 AND binding_id = $2";
    /// An instance takes its bindings with it (`$2` is `''` for an instance).
    pub(crate) const DELETE_INSTANCE: &str =
        "DELETE FROM resources WHERE instance_id = $1 AND $2 = ''";
    pub(crate) const RENEW: &str = "UPDATE operations SET lease_until = $1 \
        WHERE id = $2 AND owner = $3 AND state = 'in progress'";
    pub(crate) const RELEASE_ALL: &str =
        "UPDATE operations SET owner = NULL, lease_until = NULL WHERE state = 'in progress'";
    pub(crate) const PURGE: &str =
        "DELETE FROM operations WHERE finished_at IS NOT NULL AND finished_at < $1";
    pub(crate) const COUNT: &str = "SELECT COUNT(*) FROM resources";
}

/// Binds a resource's key (`$1`, `$2`) to a query.
#[cfg(feature = "postgres")]
macro_rules! bind_key {
    ($query:expr, $key:expr) => {
        $query
            .bind($key.instance_id.as_str())
            .bind($key.binding_column())
    };
}
#[cfg(feature = "postgres")]
pub(crate) use bind_key;

/// A resource's sealed columns: fingerprint, request and reply, as stored.
pub(crate) fn sealed_resource(
    r: &ResourceRecord,
    sealer: &Sealer,
) -> Result<(String, String, Option<String>), StoreError> {
    let label = |column: &str| resource_label(&r.key, column);
    let reply = match &r.reply {
        Some(reply) => Some(sealer.seal(&label("reply"), reply.to_string())?),
        None => None,
    };
    Ok((
        sealer.seal(&label("fingerprint"), r.fingerprint.clone())?,
        sealer.seal(&label("request"), r.request.to_string())?,
        reply,
    ))
}

/// An operation's sealed columns: fingerprint and request, as stored.
pub(crate) fn sealed_operation(
    op: &OperationRecord,
    sealer: &Sealer,
) -> Result<(String, String), StoreError> {
    let label = |column: &str| operation_label(&op.id, column);
    Ok((
        sealer.seal(&label("fingerprint"), op.fingerprint.clone())?,
        sealer.seal(&label("request"), op.request.to_string())?,
    ))
}

/// Binds a resource's columns (the ten of a row of `resources`, in table order) to an insert,
/// with the fingerprint, request and reply sealed by the store's
/// [`Sealer`](crate::seal::Sealer) (`?` on failure). `$r` is a `&ResourceRecord`.
#[cfg(feature = "postgres")]
macro_rules! bind_resource {
    ($query:expr, $r:expr, $sealer:expr) => {{
        let r: &crate::record::ResourceRecord = $r;
        let (fingerprint, request, reply) = crate::rows::sealed_resource(r, $sealer)?;
        $query
            .bind(r.key.instance_id.as_str().to_owned())
            .bind(r.key.binding_column().to_owned())
            .bind(r.service_id.clone())
            .bind(r.plan_id.clone())
            .bind(r.state.as_str())
            .bind(fingerprint)
            .bind(request)
            .bind(reply)
            .bind(r.created_at)
            .bind(r.updated_at)
    }};
}
#[cfg(feature = "postgres")]
pub(crate) use bind_resource;

/// Binds an operation's columns (the thirteen of [`operation_columns`], in order) to an insert,
/// with the fingerprint and request sealed (`?` on failure). `$op` is a `&OperationRecord`.
#[cfg(feature = "postgres")]
macro_rules! bind_operation {
    ($query:expr, $op:expr, $sealer:expr) => {{
        let op: &crate::record::OperationRecord = $op;
        let (fingerprint, request) = crate::rows::sealed_operation(op, $sealer)?;
        $query
            .bind(op.id.as_str().to_owned())
            .bind(op.key.instance_id.as_str().to_owned())
            .bind(op.key.binding_column().to_owned())
            .bind(op.kind.as_str())
            .bind(op.state.as_str())
            .bind(fingerprint)
            .bind(request)
            .bind(op.description.clone())
            .bind(op.owner.clone())
            .bind(op.lease_until)
            .bind(op.deadline)
            .bind(op.created_at)
            .bind(op.finished_at)
    }};
}
#[cfg(feature = "postgres")]
pub(crate) use bind_operation;

/// What a resource's sealed column is bound to: table, column and key.
pub(crate) fn resource_label(key: &Key, column: &str) -> String {
    format!(
        "resources.{column}/{}/{}",
        key.instance_id.as_str(),
        key.binding_column()
    )
}

/// What an operation's sealed column is bound to: table, column and id.
pub(crate) fn operation_label(id: &OperationId, column: &str) -> String {
    format!("operations.{column}/{}", id.as_str())
}

/// A row's columns by name, whatever library read it.
pub(crate) trait Columns {
    /// A text column.
    fn text(&self, column: &str) -> Result<String, StoreError>;
    /// A text column that may be `NULL`.
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    /// An integer column.
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    /// An integer column that may be `NULL`.
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
}

#[cfg(feature = "postgres")]
impl Columns for sqlx::postgres::PgRow {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(sqlx::Row::try_get(self, column)?)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::Row::try_get(self, column)?)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(sqlx::Row::try_get(self, column)?)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::Row::try_get(self, column)?)
    }
}

#[cfg(feature = "sqlite")]
impl Columns for rusqlite::Row<'_> {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.get(column)?)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get(column)?)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.get(column)?)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.get(column)?)
    }
}

fn json(text: &str) -> Result<Value, StoreError> {
    Ok(serde_json::from_str(text)?)
}

fn key_of(row: &impl Columns) -> Result<Key, StoreError> {
    let binding = row.text("binding_id")?;
    Ok(Key {
        instance_id: InstanceId::from(row.text("instance_id")?),
        binding_id: (!binding.is_empty()).then(|| BindingId::from(binding)),
    })
}

/// A resource from a row with the columns of `resources`.
pub(crate) fn resource_of(
    row: &impl Columns,
    sealer: &Sealer,
) -> Result<ResourceRecord, StoreError> {
    let state = row.text("state")?;
    let key = key_of(row)?;
    let open = |column: &str, stored: String| sealer.open(&resource_label(&key, column), stored);
    let reply = row
        .opt_text("reply")?
        .map(|r| open("reply", r))
        .transpose()?;
    Ok(ResourceRecord {
        service_id: row.opt_text("service_id")?,
        plan_id: row.opt_text("plan_id")?,
        state: ResourceState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("resource state {state:?}")))?,
        fingerprint: open("fingerprint", row.text("fingerprint")?)?,
        request: json(&open("request", row.text("request")?)?)?,
        reply: reply.as_deref().map(json).transpose()?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
        key,
    })
}

/// An operation from a row with [`operation_columns`].
pub(crate) fn operation_of(
    row: &impl Columns,
    sealer: &Sealer,
) -> Result<OperationRecord, StoreError> {
    let kind = row.text("kind")?;
    let state = row.text("state")?;
    let id = OperationId::from(row.text("id")?);
    let open = |column: &str, stored: String| sealer.open(&operation_label(&id, column), stored);
    let fingerprint = open("fingerprint", row.text("fingerprint")?)?;
    let request = json(&open("request", row.text("request")?)?)?;
    Ok(OperationRecord {
        id,
        key: key_of(row)?,
        kind: OperationKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("operation kind {kind:?}")))?,
        state: OperationState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("operation state {state:?}")))?,
        fingerprint,
        request,
        description: row.opt_text("description")?,
        owner: row.opt_text("owner")?,
        lease_until: row.opt_int("lease_until")?,
        deadline: row.opt_int("deadline")?,
        created_at: row.int("created_at")?,
        finished_at: row.opt_int("finished_at")?,
    })
}
