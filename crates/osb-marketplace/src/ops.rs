//! Operations on brokers for instances and bindings: sending the request, polling, and orphan
//! mitigation. Every operation is a row first; what the broker answers is written after.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use osb_client::{CallOptions, Cleanup, Client, Observed, OrphanOperation, orphan_mitigation};
use osb_types::{
    BindOutcome, BindQuery, BindingId, BindingLastOperationQuery, CloudFoundryIdentity,
    DeleteOutcome, DeprovisionQuery, ErrorCode, FetchBindingQuery, InstanceId,
    InstanceLastOperationQuery, LastOperationOutcome, LastOperationState, OriginatingIdentity,
    ProvisionOutcome, ProvisionQuery, ServiceBindingRequest, ServiceInstanceProvisionRequest,
    ServiceInstanceUpdateRequest, UnbindQuery, UpdateOutcome, UpdateQuery,
};
use serde_json::{Value, json};

use crate::error::{CfCode, CfError, Error, Result};
use crate::{Marketplace, now};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Instances or bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    Instance,
    Binding,
}

impl Table {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Instance => "service_instances",
            Table::Binding => "service_bindings",
        }
    }
}

/// How a request to a broker ended, for the handler's status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Done: created, updated or deleted.
    Done,
    /// The broker works asynchronously; the worker polls.
    Accepted,
}

/// What a broker call needs to know about a row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Target {
    pub(crate) id: i64,
    pub(crate) guid: String,
    pub(crate) instance_guid: String,
    pub(crate) broker_id: Option<i64>,
    pub(crate) service_unique_id: Option<String>,
    pub(crate) plan_unique_id: String,
    pub(crate) max_polling: Option<i64>,
    pub(crate) op_type: String,
    pub(crate) op_token: Option<String>,
    pub(crate) op_phase: Option<String>,
    pub(crate) op_created_at: Option<String>,
    pub(crate) request: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) poll_deadline: Option<i64>,
}

const INSTANCE_TARGET: &str = "SELECT i.id, i.guid, i.guid AS instance_guid, \
    s.service_broker_id AS broker_id, s.unique_id AS service_unique_id, \
    p.unique_id AS plan_unique_id, \
    coalesce(pp.maximum_polling_duration, p.maximum_polling_duration) AS max_polling, \
    i.op_type, i.op_token, i.op_phase, i.op_created_at, i.request, i.user_id, i.poll_deadline \
    FROM service_instances i JOIN service_plans p ON p.id = i.service_plan_id \
    LEFT JOIN service_plans pp ON pp.id = i.pending_plan_id \
    JOIN services s ON s.id = p.service_id";

const BINDING_TARGET: &str = "SELECT b.id, b.guid, i.guid AS instance_guid, \
    s.service_broker_id AS broker_id, s.unique_id AS service_unique_id, \
    p.unique_id AS plan_unique_id, p.maximum_polling_duration AS max_polling, \
    b.op_type, b.op_token, b.op_phase, b.op_created_at, b.request, b.user_id, b.poll_deadline \
    FROM service_bindings b JOIN service_instances i ON i.id = b.service_instance_id \
    JOIN service_plans p ON p.id = i.service_plan_id JOIN services s ON s.id = p.service_id";

pub(crate) async fn target(m: &Marketplace, table: Table, id: i64) -> Result<Option<Target>> {
    let sql = match table {
        Table::Instance => format!("{INSTANCE_TARGET} WHERE i.id = ?"),
        Table::Binding => format!("{BINDING_TARGET} WHERE b.id = ?"),
    };
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(m.pool())
        .await?)
}

/// An osb-client for the broker, with its credentials opened.
pub(crate) async fn client_for(m: &Marketplace, broker_id: Option<i64>) -> Result<Client> {
    let Some(broker_id) = broker_id else {
        return Err(CfError::new(
            CfCode::SERVICE_PLAN_INVALID,
            "The service plan is invalid: its service has no service broker",
        )
        .into());
    };
    let (guid, url, username, sealed): (String, String, String, String) = sqlx::query_as(
        "SELECT guid, broker_url, auth_username, auth_password FROM service_brokers WHERE id = ?",
    )
    .bind(broker_id)
    .fetch_one(m.pool())
    .await?;
    let password = m.secrets().open(&sealed, &guid)?;
    Client::builder(url)
        .basic_auth(username, password)
        .timeout(m.config().broker_timeout)
        .catalog_cache(false)
        .build()
        .map_err(|e| Error::Config(format!("cannot build a client for the broker: {e}")))
}

fn call_options(user_id: Option<&str>) -> CallOptions {
    match user_id {
        Some(user) => CallOptions::new().originating_identity(OriginatingIdentity::CloudFoundry(
            CloudFoundryIdentity::new(user),
        )),
        None => CallOptions::new(),
    }
}

/// A broker's failure as Cloud Controller reports it to the user.
pub(crate) fn relay(e: &osb_client::Error) -> CfError {
    use osb_client::Error as E;
    let status = e.status().map(|s| s.as_u16());
    let described = e
        .error_response()
        .and_then(|b| b.description.clone())
        .map(|d| format!(" Description: {d}"))
        .unwrap_or_default();
    match (e, e.error_code()) {
        (_, Some(ErrorCode::AsyncRequired)) => CfError::new(
            CfCode::SERVICE_BROKER_ASYNC_REQUIRED,
            "This service plan requires client support for asynchronous service operations.",
        ),
        (_, Some(ErrorCode::ConcurrencyError)) => CfError::new(
            CfCode::SERVICE_BROKER_CONCURRENCY_ERROR,
            "The service broker could not perform this operation in parallel with other running operations",
        ),
        (E::AsyncNotPermitted { .. }, _) => CfError::new(
            CfCode::SERVICE_BROKER_RESPONDED_ASYNC_WHEN_NOT_ALLOWED,
            "The service broker responded asynchronously to a request, but the accepts_incomplete query parameter was false or not given.",
        ),
        (E::Timeout { .. }, _) => CfError::new(
            CfCode::SERVICE_BROKER_API_TIMEOUT,
            "The request to the service broker timed out.",
        ),
        (E::Transport { .. }, _) => CfError::new(
            CfCode::SERVICE_BROKER_API_UNREACHABLE,
            "The service broker could not be reached.",
        ),
        (E::Decode { .. } | E::BodyTooLarge { .. }, _) => CfError::new(
            CfCode::SERVICE_BROKER_REQUEST_MALFORMED,
            "The service broker returned an invalid response.",
        ),
        _ => CfError::new(
            CfCode::SERVICE_BROKER_REQUEST_REJECTED,
            format!(
                "The service broker rejected the request. Status Code: {}.{described}",
                status.map_or_else(|| "none".to_owned(), |s| s.to_string())
            ),
        ),
    }
}

/// Sets the operation of row `id` (if it is still the operation `op_created_at`).
async fn set_op(
    m: &Marketplace,
    table: Table,
    t: &Target,
    state: &str,
    description: Option<&str>,
    extra: &[(&str, Value)],
) -> Result<bool> {
    let _write = m.write_lock().await;
    let mut sql = format!(
        "UPDATE {} SET op_state = ?, op_description = ?, op_updated_at = ?, updated_at = ?",
        table.name()
    );
    for (column, _) in extra {
        sql.push_str(&format!(", {column} = ?"));
    }
    sql.push_str(" WHERE id = ? AND op_created_at IS ?");
    let now = now();
    let mut q = sqlx::query(&sql)
        .bind(state)
        .bind(description)
        .bind(&now)
        .bind(&now);
    for (_, value) in extra {
        q = match value {
            Value::Null => q.bind(None::<String>),
            Value::Bool(b) => q.bind(*b),
            Value::Number(n) => q.bind(n.as_i64()),
            Value::String(s) => q.bind(s.clone()),
            other => q.bind(other.to_string()),
        };
    }
    let done = q
        .bind(t.id)
        .bind(&t.op_created_at)
        .execute(m.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes a row the broker confirmed deleted (an instance takes its bindings with it: ON
/// DELETE CASCADE).
async fn remove(m: &Marketplace, table: Table, id: i64) -> Result<()> {
    let _write = m.write_lock().await;
    sqlx::query(&format!("DELETE FROM {} WHERE id = ?", table.name()))
        .bind(id)
        .execute(m.pool())
        .await?;
    Ok(())
}

/// The request stored in the row, opened.
fn request(m: &Marketplace, t: &Target) -> Result<Value> {
    let sealed = t.request.as_deref().ok_or(Error::Secret)?;
    let text = m.secrets().open(sealed, &t.guid)?;
    serde_json::from_str(&text).map_err(|_| Error::Secret)
}

fn decode<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T> {
    serde_json::from_value(value.clone())
        .map_err(|e| Error::Config(format!("a stored request does not decode: {e}")))
}

/// Moves the operation to polling.
async fn to_poll(
    m: &Marketplace,
    table: Table,
    t: &Target,
    token: Option<String>,
    extra: &[(&str, Value)],
) -> Result<()> {
    let timing = &m.config().timing;
    // A broker's maximum_polling_duration is capped at ten years.
    let deadline = now_ms().saturating_add(t.max_polling.filter(|s| *s > 0).map_or_else(
        || ms(timing.default_deadline),
        |s| s.min(315_360_000).saturating_mul(1000),
    ));
    let mut columns = vec![
        ("op_phase", json!("poll")),
        ("op_token", token.map_or(Value::Null, Value::String)),
        ("poll_at", json!(now_ms() + ms(timing.poll_interval))),
        ("poll_deadline", json!(deadline)),
    ];
    columns.extend(extra.iter().cloned());
    set_op(m, table, t, "in progress", None, &columns).await?;
    Ok(())
}

/// [`execute`] in a task of its own, so that a client that hangs up does not cancel a request
/// to the broker half-way: the answer is recorded whoever waits for it.
pub(crate) async fn run(m: &Marketplace, table: Table, id: i64) -> Result<Answer> {
    let m = m.clone();
    tokio::spawn(async move { execute(&m, table, id).await })
        .await
        .map_err(|e| Error::Config(format!("the broker call stopped: {e}")))?
}

/// Sends the request of row `id` (in phase `request`, or `sending` left by a caller that
/// stopped) to the broker and records the answer.
///
/// The row is claimed first (`sending`), so two callers never send it at once. A failure that
/// is not the broker's (a key that no longer opens the request, the database) fails the
/// operation with a description rather than leaving it in progress.
pub(crate) async fn execute(m: &Marketplace, table: Table, id: i64) -> Result<Answer> {
    claim_and_send(m, table, id, None).await
}

/// Claims row `id` and sends its request: a row in phase `request`, or, with `left_before`, a
/// row in `request` or `sending` whose operation was last touched before that time (its caller
/// is gone).
async fn claim_and_send(
    m: &Marketplace,
    table: Table,
    id: i64,
    left_before: Option<&str>,
) -> Result<Answer> {
    let claimed = {
        let _write = m.write_lock().await;
        let condition = if left_before.is_some() {
            "op_phase IN ('request', 'sending') AND op_updated_at < ?"
        } else {
            "op_phase = 'request' AND ? IS NULL"
        };
        sqlx::query(&format!(
            "UPDATE {} SET op_phase = 'sending', op_updated_at = ? WHERE id = ? AND {condition}",
            table.name()
        ))
        .bind(now())
        .bind(id)
        .bind(left_before)
        .execute(m.pool())
        .await?
        .rows_affected()
    };
    if claimed == 0 {
        return Ok(Answer::Accepted);
    }
    let Some(t) = target(m, table, id).await? else {
        return Err(Error::Config("the operation's row is gone".to_owned()));
    };
    match send(m, table, &t).await {
        Err(
            e @ (Error::Database(_) | Error::Secret | Error::Config(_) | Error::Incompatible(_)),
        ) => {
            tracing::warn!(table = table.name(), id, error = %e, "the operation failed in the marketplace");
            let description = "The marketplace could not complete the operation; see its log.";
            let mut columns = vec![("op_phase", Value::Null), ("request", Value::Null)];
            if table == Table::Instance {
                columns.push(("pending_plan_id", Value::Null));
            }
            let _ = set_op(m, table, &t, "failed", Some(description), &columns).await;
            Err(e)
        }
        other => other,
    }
}

async fn send(m: &Marketplace, table: Table, t: &Target) -> Result<Answer> {
    let client = client_for(m, t.broker_id).await?;
    let stored = request(m, t)?;
    let accepts_incomplete = stored["accepts_incomplete"].as_bool().unwrap_or(false);
    let opts = call_options(t.user_id.as_deref());
    let instance = InstanceId::from(t.instance_guid.as_str());
    let service_id = t.service_unique_id.clone().unwrap_or_default();
    let done_columns = [("op_phase", Value::Null), ("request", Value::Null)];
    match (table, t.op_type.as_str()) {
        (Table::Instance, "create") => {
            let body: ServiceInstanceProvisionRequest = decode(&stored["body"])?;
            let query = ProvisionQuery::new().with_accepts_incomplete(accepts_incomplete);
            let result = client.provision(&instance, &body, &query, &opts).await;
            match result {
                Ok(ProvisionOutcome::Created(r) | ProvisionOutcome::AlreadyExists(r)) => {
                    let dashboard = r.dashboard_url.flatten();
                    let mut columns = done_columns.to_vec();
                    columns.push((
                        "dashboard_url",
                        dashboard.map_or(Value::Null, Value::String),
                    ));
                    set_op(m, table, t, "succeeded", None, &columns).await?;
                    Ok(Answer::Done)
                }
                Ok(ProvisionOutcome::Accepted(a)) => {
                    let body = a.into_body();
                    let dashboard = body.dashboard_url.flatten();
                    let token = body.operation.flatten().map(String::from);
                    to_poll(
                        m,
                        table,
                        t,
                        token,
                        &[
                            (
                                "dashboard_url",
                                dashboard.map_or(Value::Null, Value::String),
                            ),
                            ("request", Value::Null),
                        ],
                    )
                    .await?;
                    Ok(Answer::Accepted)
                }
                Err(e) => fail_create(m, table, t, OrphanOperation::Provision, &e).await,
                Ok(_) => Err(unexpected()),
            }
        }
        (Table::Instance, "update") => {
            let body: ServiceInstanceUpdateRequest = decode(&stored["body"])?;
            let query = UpdateQuery::new().with_accepts_incomplete(accepts_incomplete);
            match client.update(&instance, &body, &query, &opts).await {
                Ok(UpdateOutcome::Updated(r)) => {
                    finish_update(m, t, r.dashboard_url.flatten()).await?;
                    Ok(Answer::Done)
                }
                Ok(UpdateOutcome::Accepted(a)) => {
                    // The request stays: its new name, tags and maintenance version apply when
                    // the update succeeds.
                    let token = a.into_body().operation.flatten().map(String::from);
                    to_poll(m, table, t, token, &[]).await?;
                    Ok(Answer::Accepted)
                }
                Err(e) => {
                    let cf = relay(&e);
                    let columns = [
                        ("op_phase", Value::Null),
                        ("request", Value::Null),
                        ("pending_plan_id", Value::Null),
                    ];
                    set_op(m, table, t, "failed", Some(&cf.description), &columns).await?;
                    Err(cf.into())
                }
                Ok(_) => Err(unexpected()),
            }
        }
        (_, "delete") => {
            let result = match table {
                Table::Instance => {
                    let q = DeprovisionQuery::new(service_id.as_str(), t.plan_unique_id.as_str())
                        .with_accepts_incomplete(accepts_incomplete);
                    client.deprovision(&instance, &q, &opts).await
                }
                Table::Binding => {
                    let q = UnbindQuery::new(service_id.as_str(), t.plan_unique_id.as_str())
                        .with_accepts_incomplete(accepts_incomplete);
                    client
                        .unbind(&instance, &BindingId::from(t.guid.as_str()), &q, &opts)
                        .await
                }
            };
            match result {
                Ok(DeleteOutcome::Deleted | DeleteOutcome::Gone) => {
                    remove(m, table, t.id).await?;
                    Ok(Answer::Done)
                }
                Ok(DeleteOutcome::Accepted(a)) => {
                    let token = a.into_body().operation.map(String::from);
                    to_poll(m, table, t, token, &[("request", Value::Null)]).await?;
                    Ok(Answer::Accepted)
                }
                Err(e) => {
                    let cf = relay(&e);
                    set_op(m, table, t, "failed", Some(&cf.description), &done_columns).await?;
                    Err(cf.into())
                }
                Ok(_) => Err(unexpected()),
            }
        }
        (Table::Binding, "create") => {
            let body: ServiceBindingRequest = decode(&stored["body"])?;
            let query = BindQuery::new().with_accepts_incomplete(accepts_incomplete);
            match client
                .bind(
                    &instance,
                    &BindingId::from(t.guid.as_str()),
                    &body,
                    &query,
                    &opts,
                )
                .await
            {
                Ok(BindOutcome::Created(r) | BindOutcome::AlreadyExists(r)) => {
                    let mut columns = done_columns.to_vec();
                    columns.extend(binding_columns(m, t, &r)?);
                    set_op(m, table, t, "succeeded", None, &columns).await?;
                    Ok(Answer::Done)
                }
                Ok(BindOutcome::Accepted(a)) => {
                    let token = a.into_body().operation.map(String::from);
                    to_poll(m, table, t, token, &[("request", Value::Null)]).await?;
                    Ok(Answer::Accepted)
                }
                Err(e) => fail_create(m, table, t, OrphanOperation::Bind, &e).await,
                Ok(_) => Err(unexpected()),
            }
        }
        (_, other) => Err(Error::Config(format!("unknown operation {other:?}"))),
    }
}

/// An outcome newer than this marketplace knows.
fn unexpected() -> Error {
    CfError::new(
        CfCode::SERVICE_BROKER_REQUEST_REJECTED,
        "The service broker gave an answer this marketplace does not know.",
    )
    .into()
}

/// The columns a binding reply fills: credentials sealed, drain and volume mounts.
fn binding_columns(
    m: &Marketplace,
    t: &Target,
    r: &osb_types::ServiceBindingResponse,
) -> Result<Vec<(&'static str, Value)>> {
    let credentials = json!(r.credentials.clone().unwrap_or_default()).to_string();
    Ok(vec![
        (
            "credentials",
            Value::String(m.secrets().seal(&credentials, &t.guid)?),
        ),
        (
            "syslog_drain_url",
            r.syslog_drain_url
                .clone()
                .map_or(Value::Null, Value::String),
        ),
        (
            "volume_mounts",
            r.volume_mounts
                .as_ref()
                .map_or(Value::Null, |v| Value::String(json!(v).to_string())),
        ),
    ])
}

/// A create that failed: orphan mitigation when the decision table calls for it (the row stays,
/// `failed`, with the jobs visible), otherwise the row goes (nothing exists at the broker).
async fn fail_create(
    m: &Marketplace,
    table: Table,
    t: &Target,
    operation: OrphanOperation,
    e: &osb_client::Error,
) -> Result<Answer> {
    let cf = relay(e);
    if orphan_mitigation(operation, &Observed::from_error(e)) == Cleanup::None {
        remove(m, table, t.id).await?;
    } else {
        fail_with_orphan(m, table, t, &cf.description).await?;
    }
    Err(cf.into())
}

/// Fails the operation and queues orphan mitigation, in one transaction.
async fn fail_with_orphan(
    m: &Marketplace,
    table: Table,
    t: &Target,
    description: &str,
) -> Result<()> {
    let _write = m.write_lock().await;
    let mut tx = m.pool().begin().await?;
    let now = now();
    let failed = sqlx::query(&format!(
        "UPDATE {} SET op_state = 'failed', op_description = ?, op_phase = NULL, request = NULL, \
         op_updated_at = ?, updated_at = ? WHERE id = ? AND op_created_at IS ?",
        table.name()
    ))
    .bind(description)
    .bind(&now)
    .bind(&now)
    .bind(t.id)
    .bind(&t.op_created_at)
    .execute(&mut *tx)
    .await?;
    if failed.rows_affected() == 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO orphan_jobs (kind, broker_id, instance_guid, binding_guid, service_unique_id, \
         plan_unique_id, reason, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(match table {
        Table::Instance => "instance",
        Table::Binding => "binding",
    })
    .bind(t.broker_id)
    .bind(&t.instance_guid)
    .bind((table == Table::Binding).then_some(&t.guid))
    .bind(t.service_unique_id.as_deref().unwrap_or_default())
    .bind(&t.plan_unique_id)
    .bind(description)
    .bind(now_ms())
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::warn!(kind = table.name(), guid = %t.guid, reason = description, "orphan mitigation queued");
    Ok(())
}

/// An update that succeeded: the pending plan becomes the plan, and the name, tags and
/// maintenance version the request carried are kept.
async fn finish_update(m: &Marketplace, t: &Target, dashboard: Option<String>) -> Result<()> {
    let stored = if t.request.is_some() {
        request(m, t)?
    } else {
        Value::Null
    };
    let name = stored["local"]["name"].as_str().map(str::to_owned);
    let tags = stored["local"]["tags"].as_str().map(str::to_owned);
    let maintenance = stored["body"]
        .get("maintenance_info")
        .filter(|v| v.is_object())
        .map(Value::to_string);
    let _write = m.write_lock().await;
    let now = now();
    sqlx::query(
        "UPDATE service_instances SET op_state = 'succeeded', op_description = NULL, op_phase = NULL, \
         request = NULL, op_updated_at = ?1, updated_at = ?1, \
         service_plan_id = coalesce(pending_plan_id, service_plan_id), \
         maintenance_info = coalesce(?2, (SELECT maintenance_info FROM service_plans WHERE id = pending_plan_id), maintenance_info), \
         pending_plan_id = NULL, \
         name = CASE WHEN ?3 IS NULL OR EXISTS (SELECT 1 FROM service_instances o \
             WHERE o.space_guid = service_instances.space_guid AND o.name = ?3 AND o.id != service_instances.id) \
             THEN name ELSE ?3 END, \
         context = CASE WHEN ?3 IS NULL THEN context ELSE json_set(context, '$.instance_name', ?3) END, \
         tags = coalesce(?4, tags), \
         dashboard_url = coalesce(?5, dashboard_url) WHERE id = ?6 AND op_created_at IS ?7",
    )
    .bind(&now)
    .bind(maintenance)
    .bind(&name)
    .bind(tags)
    .bind(dashboard)
    .bind(t.id)
    .bind(&t.op_created_at)
    .execute(m.pool())
    .await?;
    Ok(())
}

/// Cloud Controller's wording for an operation past its deadline.
fn deadline_message(table: Table, op: &str) -> String {
    let verb = match (table, op) {
        (Table::Instance, "create") => "provision",
        (Table::Instance, "update") => "update",
        (Table::Instance, _) => "deprovision",
        (Table::Binding, "create") => "bind",
        (Table::Binding, _) => "unbind",
    };
    format!("Service Broker failed to {verb} within the required time.")
}

/// Polls the operation of row `id` once (phase `poll`), and records what it shows.
pub(crate) async fn poll(m: &Marketplace, table: Table, id: i64) -> Result<()> {
    let Some(t) = target(m, table, id).await? else {
        return Ok(());
    };
    if t.op_phase.as_deref() != Some("poll") {
        return Ok(());
    }
    let timing = m.config().timing.clone();
    if t.poll_deadline.is_some_and(|d| now_ms() >= d) {
        let description = deadline_message(table, &t.op_type);
        return fail_polled(m, table, &t, &description, &Observed::PollDeadline).await;
    }
    let client = client_for(m, t.broker_id).await?;
    let opts = call_options(t.user_id.as_deref());
    let instance = InstanceId::from(t.instance_guid.as_str());
    let result = match table {
        Table::Instance => {
            let mut q = InstanceLastOperationQuery::new();
            q.service_id = t.service_unique_id.as_deref().map(Into::into);
            q.plan_id = Some(t.plan_unique_id.as_str().into());
            q.operation = t.op_token.as_deref().map(Into::into);
            client.instance_last_operation(&instance, &q, &opts).await
        }
        Table::Binding => {
            let mut q = BindingLastOperationQuery::new();
            q.service_id = t.service_unique_id.as_deref().map(Into::into);
            q.plan_id = Some(t.plan_unique_id.as_str().into());
            q.operation = t.op_token.as_deref().map(Into::into);
            client
                .binding_last_operation(&instance, &BindingId::from(t.guid.as_str()), &q, &opts)
                .await
        }
    };
    let reschedule = |after: Duration| {
        let after = after
            .max(timing.poll_interval)
            .min(timing.max_poll_interval);
        json!(now_ms() + ms(after))
    };
    match result {
        Ok(LastOperationOutcome::State(lo)) => {
            let description = lo.resource.description.clone();
            match lo.resource.state {
                LastOperationState::InProgress => {
                    let after = lo
                        .retry_after
                        .map_or(timing.poll_interval, |r| r.delay_from(SystemTime::now()));
                    set_op(
                        m,
                        table,
                        &t,
                        "in progress",
                        description.as_deref(),
                        &[("poll_at", reschedule(after))],
                    )
                    .await?;
                }
                LastOperationState::Succeeded => {
                    succeeded(m, table, &t, &client, description.as_deref()).await?
                }
                LastOperationState::Failed => {
                    let description = description.as_deref().unwrap_or("The operation failed.");
                    let observed = Observed::PollState(LastOperationState::Failed);
                    fail_polled(m, table, &t, description, &observed).await?;
                }
                _ => {
                    set_op(
                        m,
                        table,
                        &t,
                        "in progress",
                        description.as_deref(),
                        &[("poll_at", reschedule(timing.poll_interval))],
                    )
                    .await?;
                }
            }
        }
        Ok(LastOperationOutcome::Gone) if t.op_type == "delete" => remove(m, table, t.id).await?,
        // A 410 while creating or updating is not an answer: polling goes on until the deadline.
        Ok(_) | Err(_) => {
            if let Err(e) = &result {
                tracing::info!(guid = %t.guid, error = %e, "polling failed; trying again later");
            }
            set_op(
                m,
                table,
                &t,
                "in progress",
                None,
                &[("poll_at", reschedule(timing.poll_interval))],
            )
            .await?;
        }
    }
    Ok(())
}

/// Fails a polled operation; a create is orphan-mitigated when the decision table says so.
async fn fail_polled(
    m: &Marketplace,
    table: Table,
    t: &Target,
    description: &str,
    observed: &Observed,
) -> Result<()> {
    let operation = match table {
        Table::Instance => OrphanOperation::Provision,
        Table::Binding => OrphanOperation::Bind,
    };
    if t.op_type == "create" && orphan_mitigation(operation, observed) != Cleanup::None {
        return fail_with_orphan(m, table, t, description).await;
    }
    let mut columns = vec![("op_phase", Value::Null), ("request", Value::Null)];
    if table == Table::Instance {
        columns.push(("pending_plan_id", Value::Null));
    }
    set_op(m, table, t, "failed", Some(description), &columns).await?;
    Ok(())
}

async fn succeeded(
    m: &Marketplace,
    table: Table,
    t: &Target,
    client: &Client,
    description: Option<&str>,
) -> Result<()> {
    match (table, t.op_type.as_str()) {
        (_, "delete") => remove(m, table, t.id).await,
        (Table::Instance, "update") => finish_update(m, t, None).await,
        (Table::Binding, "create") => {
            // An asynchronous binding's credentials come from fetching it.
            let mut q = FetchBindingQuery::new();
            q.service_id = t.service_unique_id.as_deref().map(Into::into);
            q.plan_id = Some(t.plan_unique_id.as_str().into());
            let fetched = client
                .fetch_binding(
                    &InstanceId::from(t.instance_guid.as_str()),
                    &BindingId::from(t.guid.as_str()),
                    &q,
                    &call_options(t.user_id.as_deref()),
                )
                .await;
            match fetched {
                Ok(osb_types::FetchBindingOutcome::Found(resource)) => {
                    let response: osb_types::ServiceBindingResponse =
                        serde_json::from_value(json!(resource)).unwrap_or_default();
                    let mut columns = vec![("op_phase", Value::Null)];
                    columns.extend(binding_columns(m, t, &response)?);
                    set_op(m, table, t, "succeeded", description, &columns).await?;
                }
                other => {
                    tracing::info!(guid = %t.guid, ok = other.is_ok(), "fetching the binding failed; trying again later");
                    let at = json!(now_ms() + ms(m.config().timing.poll_interval));
                    set_op(m, table, t, "in progress", description, &[("poll_at", at)]).await?;
                }
            }
            Ok(())
        }
        _ => {
            set_op(
                m,
                table,
                t,
                "succeeded",
                description,
                &[("op_phase", Value::Null)],
            )
            .await?;
            Ok(())
        }
    }
}

/// One orphan-mitigation attempt for job `id`.
pub(crate) async fn mitigate(m: &Marketplace, id: i64) -> Result<()> {
    #[derive(sqlx::FromRow)]
    struct Job {
        kind: String,
        broker_id: i64,
        instance_guid: String,
        binding_guid: Option<String>,
        service_unique_id: String,
        plan_unique_id: String,
        attempts: i64,
    }
    let job: Option<Job> = sqlx::query_as(
        "SELECT kind, broker_id, instance_guid, binding_guid, service_unique_id, plan_unique_id, \
         attempts FROM orphan_jobs WHERE id = ? AND state = 'pending'",
    )
    .bind(id)
    .fetch_optional(m.pool())
    .await?;
    let Some(Job {
        kind,
        broker_id,
        instance_guid: instance,
        binding_guid: binding,
        service_unique_id: service,
        plan_unique_id: plan,
        attempts,
    }) = job
    else {
        return Ok(());
    };
    let instance = InstanceId::from(instance);
    let client = match client_for(m, Some(broker_id)).await {
        Ok(client) => client,
        Err(e) => return record_attempt(m, id, attempts, Some(e.to_string())).await,
    };
    let result = match binding {
        Some(binding) if kind == "binding" => {
            let q = UnbindQuery::new(service.as_str(), plan.as_str()).with_accepts_incomplete(true);
            client
                .unbind(
                    &instance,
                    &BindingId::from(binding),
                    &q,
                    &CallOptions::new(),
                )
                .await
        }
        _ => {
            let q = DeprovisionQuery::new(service.as_str(), plan.as_str())
                .with_accepts_incomplete(true);
            client.deprovision(&instance, &q, &CallOptions::new()).await
        }
    };
    let error = match &result {
        Ok(DeleteOutcome::Deleted | DeleteOutcome::Gone) => None,
        // Still being deleted: the next attempt repeats the delete until it is confirmed.
        Ok(DeleteOutcome::Accepted(_)) => Some("the broker is deleting it".to_owned()),
        Err(e) => Some(e.to_string()),
        Ok(_) => Some("an answer this marketplace does not know".to_owned()),
    };
    record_attempt(m, id, attempts, error).await
}

/// Records an orphan-mitigation attempt: `succeeded` without an error, else `pending` with
/// backoff, or `failed` after the last attempt.
async fn record_attempt(
    m: &Marketplace,
    id: i64,
    attempts: i64,
    error: Option<String>,
) -> Result<()> {
    let attempts = attempts + 1;
    let timing = &m.config().timing;
    let backoff = ms(timing.orphan_backoff).saturating_mul(1_i64 << attempts.min(30));
    let state = match error {
        None => "succeeded",
        Some(_) if attempts >= i64::from(timing.orphan_attempts) => "failed",
        Some(_) => "pending",
    };
    let _write = m.write_lock().await;
    sqlx::query(
        "UPDATE orphan_jobs SET state = ?, attempts = ?, next_at = ?, last_error = ?, updated_at = ? WHERE id = ?",
    )
    .bind(state)
    .bind(attempts)
    .bind(now_ms().saturating_add(backoff))
    .bind(&error)
    .bind(now())
    .bind(id)
    .execute(m.pool())
    .await?;
    tracing::info!(job = id, attempts, state, "orphan mitigation attempt");
    Ok(())
}

/// Sends again the requests in flight that no caller is sending: those an earlier process left
/// (touched before this one started), and those whose caller has been gone longer than two
/// broker timeouts.
async fn resend(m: &Marketplace, left_before: &str) {
    for table in [Table::Instance, Table::Binding] {
        let rows: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM {} WHERE op_phase IN ('request', 'sending') AND op_updated_at < ? ORDER BY id LIMIT 100",
            table.name()
        ))
        .bind(left_before)
        .fetch_all(m.pool())
        .await
        .unwrap_or_default();
        for id in rows {
            tracing::info!(table = table.name(), id, "sending a request left in flight");
            if let Err(e) = claim_and_send(m, table, id, Some(left_before)).await {
                tracing::warn!(table = table.name(), id, error = %e, "the resent request failed");
            }
        }
    }
}

/// The background worker: sends requests left in flight, polls due operations and runs due
/// orphan-mitigation jobs, every tick.
pub(crate) async fn work(m: Marketplace) {
    let started = m.clone();
    // Times have whole seconds: what was touched in this very second counts as left by the
    // earlier process (the worker starts before the server takes requests).
    let start = crate::rfc3339(SystemTime::now() + Duration::from_secs(1));
    tokio::spawn(async move { resend(&started, &start).await });
    let mut tick = tokio::time::interval(m.config().timing.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = now_ms();
        let stale = crate::rfc3339(
            SystemTime::now() - m.config().broker_timeout * 2 - Duration::from_secs(5),
        );
        resend(&m, &stale).await;
        for table in [Table::Instance, Table::Binding] {
            let due: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT id FROM {} WHERE op_phase = 'poll' AND poll_at <= ? ORDER BY poll_at LIMIT 100",
                table.name()
            ))
            .bind(now)
            .fetch_all(m.pool())
            .await
            .unwrap_or_default();
            for id in due {
                if let Err(e) = poll(&m, table, id).await {
                    tracing::warn!(table = table.name(), id, error = %e, "polling failed; trying again later");
                    let later = now_ms().saturating_add(ms(m.config().timing.poll_interval));
                    let _write = m.write_lock().await;
                    let _ = sqlx::query(&format!(
                        "UPDATE {} SET poll_at = ? WHERE id = ?",
                        table.name()
                    ))
                    .bind(later)
                    .bind(id)
                    .execute(m.pool())
                    .await;
                }
            }
        }
        let jobs: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM orphan_jobs WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT 100",
        )
        .bind(now)
        .fetch_all(m.pool())
        .await
        .unwrap_or_default();
        for id in jobs {
            if let Err(e) = mitigate(&m, id).await {
                tracing::warn!(job = id, error = %e, "orphan mitigation failed");
            }
        }
    }
}
