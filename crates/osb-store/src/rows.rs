//! Records from SQL rows, the same for every sqlx database.

use osb_server::types::{BindingId, InstanceId, OperationId};
use serde_json::Value;
use sqlx::{ColumnIndex, Database, Decode, Row, Type};

use crate::StoreError;
use crate::record::{
    Key, OperationKind, OperationRecord, OperationState, ResourceRecord, ResourceState,
};
use crate::seal::Sealer;

/// The columns of `resources`, in the order the stores write them.
#[cfg(feature = "postgres")]
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

/// The statements SQLite and PostgreSQL share (both read `$n` placeholders and `ON CONFLICT`);
/// SQLite's transactions write with its own multi-row statements (`sqlite/batch.rs`).
pub(crate) mod sql {
    #[cfg(feature = "postgres")]
    pub(crate) const SELECT_RESOURCE: &str = concat!(
        "SELECT ",
        resource_columns!(),
        " FROM resources WHERE instance_id = $1 AND binding_id = $2"
    );
    #[cfg(feature = "postgres")]
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
    #[cfg(feature = "postgres")]
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
    #[cfg(feature = "postgres")]
    pub(crate) const DELETE_BINDING: &str =
        "DELETE FROM resources WHERE instance_id = $1 AND binding_id = $2";
    /// An instance takes its bindings with it (`$2` is `''` for an instance).
    #[cfg(feature = "postgres")]
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
macro_rules! bind_key {
    ($query:expr, $key:expr) => {
        $query
            .bind($key.instance_id.as_str())
            .bind($key.binding_column())
    };
}
pub(crate) use bind_key;

/// Binds a resource's columns (the ten of a row of `resources`, in table order) to an insert,
/// with the fingerprint, request and reply sealed by the store's
/// [`Sealer`](crate::seal::Sealer) (`?` on failure). `$r` is a `&ResourceRecord`.
macro_rules! bind_resource {
    ($query:expr, $r:expr, $sealer:expr) => {{
        let r: &crate::record::ResourceRecord = $r;
        let sealer: &crate::seal::Sealer = $sealer;
        let label = |column: &str| crate::rows::resource_label(&r.key, column);
        let fingerprint = sealer.seal(&label("fingerprint"), r.fingerprint.clone())?;
        let request = sealer.seal(&label("request"), r.request.to_string())?;
        let reply = match &r.reply {
            Some(reply) => Some(sealer.seal(&label("reply"), reply.to_string())?),
            None => None,
        };
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
pub(crate) use bind_resource;

/// Binds an operation's columns (the thirteen of [`operation_columns`], in order) to an insert,
/// with the fingerprint and request sealed (`?` on failure). `$op` is a `&OperationRecord`.
macro_rules! bind_operation {
    ($query:expr, $op:expr, $sealer:expr) => {{
        let op: &crate::record::OperationRecord = $op;
        let sealer: &crate::seal::Sealer = $sealer;
        let label = |column: &str| crate::rows::operation_label(&op.id, column);
        let fingerprint = sealer.seal(&label("fingerprint"), op.fingerprint.clone())?;
        let request = sealer.seal(&label("request"), op.request.to_string())?;
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

fn text<R: Row>(row: &R, column: &str) -> Result<String, StoreError>
where
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(row.try_get::<String, _>(column)?)
}

fn json(text: &str) -> Result<Value, StoreError> {
    Ok(serde_json::from_str(text)?)
}

fn key_of<R: Row>(row: &R) -> Result<Key, StoreError>
where
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let binding = text(row, "binding_id")?;
    Ok(Key {
        instance_id: InstanceId::from(text(row, "instance_id")?),
        binding_id: (!binding.is_empty()).then(|| BindingId::from(binding)),
    })
}

/// A resource from a row with [`RESOURCE_COLUMNS`].
pub(crate) fn resource_of<R, DB>(row: &R, sealer: &Sealer) -> Result<ResourceRecord, StoreError>
where
    DB: Database,
    R: Row<Database = DB>,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
{
    let state = text(row, "state")?;
    let key = key_of(row)?;
    let open = |column: &str, stored: String| sealer.open(&resource_label(&key, column), stored);
    let reply: Option<String> = row.try_get("reply")?;
    let reply = reply.map(|r| open("reply", r)).transpose()?;
    Ok(ResourceRecord {
        service_id: row.try_get("service_id")?,
        plan_id: row.try_get("plan_id")?,
        state: ResourceState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("resource state {state:?}")))?,
        fingerprint: open("fingerprint", text(row, "fingerprint")?)?,
        request: json(&open("request", text(row, "request")?)?)?,
        reply: reply.as_deref().map(json).transpose()?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        key,
    })
}

/// An operation from a row with [`OPERATION_COLUMNS`].
pub(crate) fn operation_of<R, DB>(row: &R, sealer: &Sealer) -> Result<OperationRecord, StoreError>
where
    DB: Database,
    R: Row<Database = DB>,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> Option<i64>: Decode<'r, DB> + Type<DB>,
{
    let kind = text(row, "kind")?;
    let state = text(row, "state")?;
    let id = OperationId::from(text(row, "id")?);
    let open = |column: &str, stored: String| sealer.open(&operation_label(&id, column), stored);
    let fingerprint = open("fingerprint", text(row, "fingerprint")?)?;
    let request = json(&open("request", text(row, "request")?)?)?;
    Ok(OperationRecord {
        id,
        key: key_of(row)?,
        kind: OperationKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("operation kind {kind:?}")))?,
        state: OperationState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("operation state {state:?}")))?,
        fingerprint,
        request,
        description: row.try_get("description")?,
        owner: row.try_get("owner")?,
        lease_until: row.try_get("lease_until")?,
        deadline: row.try_get("deadline")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}
