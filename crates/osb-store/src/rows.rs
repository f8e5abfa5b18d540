//! Records from SQL rows, the same for every sqlx database.

use osb_server::types::{BindingId, InstanceId, OperationId};
use serde_json::Value;
use sqlx::{ColumnIndex, Database, Decode, Row, Type};

use crate::StoreError;
use crate::record::{
    Key, OperationKind, OperationRecord, OperationState, ResourceRecord, ResourceState,
};

/// The columns of `resources`, in the order the stores write them.
pub(crate) const RESOURCE_COLUMNS: &str = "instance_id, binding_id, service_id, plan_id, state, fingerprint, request, reply, created_at, updated_at";
/// The columns of `operations`, in the order the stores write them.
pub(crate) const OPERATION_COLUMNS: &str = "id, instance_id, binding_id, kind, state, fingerprint, request, description, owner, lease_until, deadline, created_at, finished_at";

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
pub(crate) fn resource_of<R, DB>(row: &R) -> Result<ResourceRecord, StoreError>
where
    DB: Database,
    R: Row<Database = DB>,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
{
    let state = text(row, "state")?;
    let reply: Option<String> = row.try_get("reply")?;
    Ok(ResourceRecord {
        key: key_of(row)?,
        service_id: row.try_get("service_id")?,
        plan_id: row.try_get("plan_id")?,
        state: ResourceState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("resource state {state:?}")))?,
        fingerprint: text(row, "fingerprint")?,
        request: json(&text(row, "request")?)?,
        reply: reply.as_deref().map(json).transpose()?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// An operation from a row with [`OPERATION_COLUMNS`].
pub(crate) fn operation_of<R, DB>(row: &R) -> Result<OperationRecord, StoreError>
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
    Ok(OperationRecord {
        id: OperationId::from(text(row, "id")?),
        key: key_of(row)?,
        kind: OperationKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("operation kind {kind:?}")))?,
        state: OperationState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("operation state {state:?}")))?,
        fingerprint: text(row, "fingerprint")?,
        request: json(&text(row, "request")?)?,
        description: row.try_get("description")?,
        owner: row.try_get("owner")?,
        lease_until: row.try_get("lease_until")?,
        deadline: row.try_get("deadline")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}
