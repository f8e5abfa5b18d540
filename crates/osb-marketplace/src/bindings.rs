//! `/v2/service_bindings`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use osb_types::{BindingId, FetchBindingOutcome, FetchBindingQuery, InstanceId};
use serde_json::{Value, json};

use crate::auth::{Claims, Scope};
use crate::body::read_object;
use crate::error::{CfCode, CfError, Result};
use crate::instances::{self, flag, idle};
use crate::list::{self, Field, Kind, ListQuery};
use crate::ops::{self, Answer, Table};
use crate::{Marketplace, answer, guid, json_column, metadata, now};

#[derive(Debug, sqlx::FromRow)]
struct BindingRow {
    id: i64,
    guid: String,
    name: Option<String>,
    app_guid: Option<String>,
    credentials: Option<String>,
    syslog_drain_url: Option<String>,
    volume_mounts: Option<String>,
    op_type: String,
    op_state: String,
    op_description: Option<String>,
    op_created_at: Option<String>,
    op_updated_at: Option<String>,
    instance_guid: String,
    bindings_retrievable: bool,
    broker_id: Option<i64>,
    service_unique_id: Option<String>,
    plan_unique_id: String,
    created_at: String,
    updated_at: Option<String>,
    /// The latest orphan-mitigation job, as JSON text.
    orphan_mitigation: Option<String>,
}

const SELECT: &str = "SELECT b.id, b.guid, b.name, b.app_guid, b.credentials, b.syslog_drain_url, \
    b.volume_mounts, b.op_type, b.op_state, b.op_description, b.op_created_at, b.op_updated_at, \
    i.guid AS instance_guid, s.bindings_retrievable, s.service_broker_id AS broker_id, \
    s.unique_id AS service_unique_id, p.unique_id AS plan_unique_id, b.created_at, b.updated_at, \
    (SELECT json_object('state', j.state, 'attempts', j.attempts, 'last_error', j.last_error, \
    'reason', j.reason) FROM orphan_jobs j WHERE j.kind = 'binding' AND j.binding_guid = b.guid \
    ORDER BY j.id DESC LIMIT 1) AS orphan_mitigation \
    FROM service_bindings b JOIN service_instances i ON i.id = b.service_instance_id \
    JOIN service_plans p ON p.id = i.service_plan_id JOIN services s ON s.id = p.service_id";

const FIELDS: &[Field] = &[
    Field {
        name: "app_guid",
        column: "b.app_guid",
        kind: Kind::Text,
    },
    Field {
        name: "name",
        column: "b.name",
        kind: Kind::Text,
    },
    Field {
        name: "service_instance_guid",
        column: "i.guid",
        kind: Kind::Text,
    },
];

impl BindingRow {
    /// The resource. Credentials are shown to writers and admins only; readers see Cloud
    /// Controller's placeholder.
    fn resource(&self, m: &Marketplace, claims: &Claims) -> Result<Value> {
        let credentials = if !claims.has(Scope::Write) {
            json!({"redacted_message": "[PRIVATE DATA HIDDEN]"})
        } else {
            match &self.credentials {
                Some(sealed) => serde_json::from_str(&m.secrets().open(sealed, &self.guid)?)
                    .unwrap_or(json!({})),
                None => json!({}),
            }
        };
        let mut entity = json!({
            "app_guid": self.app_guid,
            "service_instance_guid": self.instance_guid,
            "credentials": credentials,
            "binding_options": {},
            "gateway_data": null,
            "gateway_name": "",
            "syslog_drain_url": self.syslog_drain_url,
            "volume_mounts": match json_column(self.volume_mounts.as_deref()) { Value::Null => json!([]), v => v },
            "name": self.name,
            "last_operation": {
                "type": self.op_type,
                "state": self.op_state,
                "description": self.op_description.clone().unwrap_or_default(),
                "updated_at": self.op_updated_at,
                "created_at": self.op_created_at,
            },
            "service_instance_url": format!("/v2/service_instances/{}", self.instance_guid),
        });
        if let Some(app) = &self.app_guid {
            entity["app_url"] = json!(format!("/v2/apps/{app}"));
        }
        if self.orphan_mitigation.is_some() {
            entity["orphan_mitigation"] = json_column(self.orphan_mitigation.as_deref());
        }
        Ok(json!({
            "metadata": metadata("service_bindings", &self.guid, &self.created_at, self.updated_at.as_deref()),
            "entity": entity,
        }))
    }
}

async fn find(m: &Marketplace, guid: &str) -> Result<BindingRow> {
    list::find_one(m.pool(), SELECT, "b.guid", guid, || {
        CfError::new(
            CfCode::SERVICE_BINDING_NOT_FOUND,
            format!("The service binding could not be found: {guid}"),
        )
    })
    .await
}

/// `POST /v2/service_bindings[?accepts_incomplete=true]`.
pub(crate) async fn create(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response> {
    let claims = m.keys().authorize(&headers, Scope::Write)?;
    let accepts_incomplete = flag(raw.as_deref(), "accepts_incomplete")?;
    let f = read_object(body, m.config().body_limit).await?;
    let instance_guid = f.required("service_instance_guid")?;
    let app_guid = f.string("app_guid")?;
    let name = f.string("name")?;
    let parameters = f.object("parameters")?;
    if app_guid.as_deref().is_some_and(|a| a.trim().is_empty()) {
        return Err(CfError::parse("Field: app_guid, Error: must not be empty").into());
    }
    let instance = match instances::find(&m, &instance_guid).await {
        Ok(row) => row,
        Err(crate::Error::Api(_)) => {
            return Err(CfError::new(
                CfCode::INVALID_RELATION,
                format!("Could not find the service instance with guid: {instance_guid}"),
            )
            .into());
        }
        Err(e) => return Err(e),
    };
    let offering = instance.offering(None);
    if osb_types::rules::bindable(&offering, instance.offering_id(), &instance.plan_unique_id)
        .is_err()
    {
        return Err(CfError::new(
            CfCode::UNBINDABLE_SERVICE,
            "The service instance doesn't support binding.",
        )
        .into());
    }
    idle(&instance)?;
    if instance.op_state == "failed" && instance.op_type == "create" {
        return Err(CfError::new(
            CfCode::SERVICE_INSTANCE_NOT_FOUND,
            format!(
                "The service instance could not be found: {instance_guid} (its creation failed)"
            ),
        )
        .into());
    }
    let context: Value = serde_json::from_str(&instance.context).unwrap_or(json!({}));
    let mut request = json!({
        "service_id": instance.service_unique_id,
        "plan_id": instance.plan_unique_id,
        "context": context,
    });
    if let Some(app) = &app_guid {
        request["app_guid"] = json!(app);
        request["bind_resource"] = json!({"app_guid": app, "space_guid": instance.space_guid});
    }
    if let Some(p) = parameters {
        request["parameters"] = Value::Object(p);
    }
    let guid = guid();
    let sealed = m.secrets().seal(
        &json!({"accepts_incomplete": accepts_incomplete, "body": request}).to_string(),
        &guid,
    )?;
    let id: i64 = {
        let _write = m.write_lock().await;
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM service_bindings WHERE service_instance_id = ? AND (app_guid = ? OR name = ?)",
        )
        .bind(instance.id)
        .bind(&app_guid)
        .bind(&name)
        .fetch_optional(m.pool())
        .await?;
        if taken.is_some() {
            return Err(CfError::new(
                CfCode::SERVICE_BINDING_APP_SERVICE_TAKEN,
                "The app is already bound to the service instance, or the binding name is taken.",
            )
            .into());
        }
        let now = now();
        sqlx::query_scalar(
            "INSERT INTO service_bindings (guid, name, service_instance_id, app_guid, request, user_id, \
             op_type, op_state, op_phase, op_created_at, op_updated_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, 'create', 'in progress', 'request', ?, ?, ?) RETURNING id",
        )
        .bind(&guid)
        .bind(&name)
        .bind(instance.id)
        .bind(&app_guid)
        .bind(&sealed)
        .bind(&claims.user_id)
        .bind(&now)
        .bind(&now)
        .bind(&now)
        .fetch_one(m.pool())
        .await?
    };
    tracing::info!(%guid, instance = %instance_guid, "binding");
    let answer_ = ops::run(&m, Table::Binding, id).await?;
    let row = find(&m, &guid).await?;
    let status = if answer_ == Answer::Done {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok(answer(
        status,
        &guid,
        "service_bindings",
        row.resource(&m, &claims)?,
    ))
}

async fn page(
    m: &Marketplace,
    claims: &Claims,
    q: &ListQuery,
    instance: Option<i64>,
    path: &str,
) -> Result<Value> {
    let (total, rows): (i64, Vec<BindingRow>) = list::fetch(m.pool(), SELECT, q, "b.id", |sql| {
        if let Some(id) = instance {
            sql.push(" AND b.service_instance_id = ").push_bind(id);
        }
    })
    .await?;
    let mut resources = Vec::with_capacity(rows.len());
    for row in &rows {
        resources.push(row.resource(m, claims)?);
    }
    Ok(q.body(path, total, resources))
}

/// `GET /v2/service_bindings`.
pub(crate) async fn list(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let claims = m.keys().authorize(&headers, Scope::Read)?;
    let q = ListQuery::parse(raw.as_deref(), FIELDS)?;
    Ok(Json(
        page(&m, &claims, &q, None, "/v2/service_bindings").await?,
    ))
}

/// `GET /v2/service_instances/:guid/service_bindings`.
pub(crate) async fn of_instance(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let claims = m.keys().authorize(&headers, Scope::Read)?;
    let instance = instances::find(&m, &guid).await?;
    let q = ListQuery::parse(raw.as_deref(), FIELDS)?;
    let path = format!("/v2/service_instances/{guid}/service_bindings");
    Ok(Json(page(&m, &claims, &q, Some(instance.id), &path).await?))
}

/// `GET /v2/service_bindings/:guid`.
pub(crate) async fn show(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
) -> Result<Json<Value>> {
    let claims = m.keys().authorize(&headers, Scope::Read)?;
    Ok(Json(find(&m, &guid).await?.resource(&m, &claims)?))
}

/// `GET /v2/service_bindings/:guid/parameters`: fetches the binding from the broker, when the
/// offering is `bindings_retrievable`.
pub(crate) async fn parameters(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
) -> Result<Json<Value>> {
    m.keys().authorize(&headers, Scope::Write)?;
    let row = find(&m, &guid).await?;
    if !row.bindings_retrievable {
        return Err(CfError::new(
            CfCode::SERVICE_FETCH_NOT_SUPPORTED,
            "This service does not support fetching service binding parameters.",
        )
        .into());
    }
    let client = ops::client_for(&m, row.broker_id).await?;
    let mut q = FetchBindingQuery::new();
    q.service_id = row.service_unique_id.as_deref().map(Into::into);
    q.plan_id = Some(row.plan_unique_id.as_str().into());
    match client
        .fetch_binding(
            &InstanceId::from(row.instance_guid.as_str()),
            &BindingId::from(guid.as_str()),
            &q,
            &osb_client::CallOptions::new(),
        )
        .await
    {
        Ok(FetchBindingOutcome::Found(resource)) => {
            Ok(Json(Value::Object(resource.parameters.unwrap_or_default())))
        }
        Ok(_) => Err(CfError::new(
            CfCode::SERVICE_BINDING_NOT_FOUND,
            format!("The service broker does not know the service binding: {guid}"),
        )
        .into()),
        Err(e) => Err(ops::relay(&e).into()),
    }
}

/// `DELETE /v2/service_bindings/:guid[?accepts_incomplete=true]`: `204`, or `202` while the
/// broker unbinds.
pub(crate) async fn delete(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let claims = m.keys().authorize(&headers, Scope::Write)?;
    let accepts_incomplete = flag(raw.as_deref(), "accepts_incomplete")?;
    let row = find(&m, &guid).await?;
    if row.op_state == "in progress" {
        return Err(CfError::new(
            CfCode::ASYNC_SERVICE_INSTANCE_OPERATION_IN_PROGRESS,
            format!("An operation for the service binding {guid} is in progress."),
        )
        .into());
    }
    instances::begin(
        &m,
        (Table::Binding, row.id, &guid),
        "delete",
        &claims.user_id,
        json!({"accepts_incomplete": accepts_incomplete}),
        &[],
    )
    .await?;
    match ops::run(&m, Table::Binding, row.id).await? {
        Answer::Done => Ok(StatusCode::NO_CONTENT.into_response()),
        Answer::Accepted => {
            let row = find(&m, &guid).await?;
            Ok(answer(
                StatusCode::ACCEPTED,
                &guid,
                "service_bindings",
                row.resource(&m, &claims)?,
            ))
        }
    }
}
