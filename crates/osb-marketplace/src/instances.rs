//! `/v2/service_instances`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use osb_types::rules;
use osb_types::{FetchInstanceOutcome, FetchInstanceQuery, InstanceId};
use serde_json::{Map, Value, json};

use crate::auth::{Claims, Scope};
use crate::body::read_object;
use crate::error::{CfCode, CfError, Error, Result};
use crate::list::{self, Field, Kind, ListQuery};
use crate::ops::{self, Answer, Table};
use crate::{Marketplace, answer, guid, json_column, metadata, now};

/// A row of `service_instances`, with its plan and service.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct InstanceRow {
    pub(crate) id: i64,
    pub(crate) guid: String,
    pub(crate) name: String,
    pub(crate) space_guid: String,
    pub(crate) organization_guid: String,
    tags: String,
    dashboard_url: Option<String>,
    maintenance_info: Option<String>,
    pub(crate) context: String,
    pub(crate) op_type: String,
    pub(crate) op_state: String,
    op_description: Option<String>,
    op_created_at: Option<String>,
    op_updated_at: Option<String>,
    pub(crate) plan_guid: String,
    pub(crate) plan_unique_id: String,
    plan_updateable: Option<bool>,
    plan_maintenance_info: Option<String>,
    pub(crate) service_guid: String,
    pub(crate) service_unique_id: Option<String>,
    pub(crate) service_bindable: bool,
    pub(crate) plan_bindable: Option<bool>,
    service_plan_updateable: bool,
    pub(crate) instances_retrievable: bool,
    pub(crate) service_id: i64,
    pub(crate) broker_id: Option<i64>,
    created_at: String,
    updated_at: Option<String>,
    /// The latest orphan-mitigation job, as JSON text.
    orphan_mitigation: Option<String>,
}

pub(crate) const SELECT: &str = "SELECT i.id, i.guid, i.name, i.space_guid, i.organization_guid, \
    i.tags, i.dashboard_url, i.maintenance_info, i.context, i.op_type, i.op_state, \
    i.op_description, i.op_created_at, i.op_updated_at, p.guid AS plan_guid, \
    p.unique_id AS plan_unique_id, p.plan_updateable, p.maintenance_info AS plan_maintenance_info, \
    s.guid AS service_guid, s.unique_id AS service_unique_id, s.bindable AS service_bindable, \
    p.bindable AS plan_bindable, s.plan_updateable AS service_plan_updateable, \
    s.instances_retrievable, s.bindings_retrievable, s.id AS service_id, \
    s.service_broker_id AS broker_id, i.created_at, i.updated_at, \
    (SELECT json_object('state', j.state, 'attempts', j.attempts, 'last_error', j.last_error, \
    'reason', j.reason) FROM orphan_jobs j WHERE j.kind = 'instance' AND j.instance_guid = i.guid \
    ORDER BY j.id DESC LIMIT 1) AS orphan_mitigation \
    FROM service_instances i JOIN service_plans p ON p.id = i.service_plan_id \
    JOIN services s ON s.id = p.service_id";

const FIELDS: &[Field] = &[
    Field {
        name: "name",
        column: "i.name",
        kind: Kind::Text,
    },
    Field {
        name: "space_guid",
        column: "i.space_guid",
        kind: Kind::Text,
    },
    Field {
        name: "organization_guid",
        column: "i.organization_guid",
        kind: Kind::Text,
    },
    Field {
        name: "service_plan_guid",
        column: "p.guid",
        kind: Kind::Text,
    },
];

impl InstanceRow {
    /// The instance's offering with its plan (and `other`, a plan it may move to, given as
    /// unique id and `maintenance_info` column), as the catalog rules of `osb_types::rules`
    /// read them: they decide bindability, plan changes and maintenance versions here as in
    /// the server and the client.
    pub(crate) fn offering(&self, other: Option<(&str, Option<&str>)>) -> osb_types::Catalog {
        use osb_types::{Catalog, MaintenanceInfo, Plan, PlanId, Service, ServiceId};
        let maintenance = |column: Option<&str>| {
            json_column(column)["version"]
                .as_str()
                .map(MaintenanceInfo::new)
        };
        let mut plan = Plan::new(PlanId::new(self.plan_unique_id.as_str()), "current", "");
        plan.bindable = self.plan_bindable;
        plan.plan_updateable = self.plan_updateable;
        plan.maintenance_info = maintenance(self.plan_maintenance_info.as_deref());
        let mut plans = vec![plan];
        if let Some((unique_id, column)) = other.filter(|(id, _)| *id != self.plan_unique_id) {
            let mut target = Plan::new(PlanId::new(unique_id), "target", "");
            target.maintenance_info = maintenance(column);
            plans.push(target);
        }
        let mut service = Service::new(
            "offering",
            ServiceId::new(self.offering_id()),
            "",
            self.service_bindable,
            plans,
        );
        service.plan_updateable = Some(self.service_plan_updateable);
        Catalog::new([service])
    }

    /// The offering's id in [`offering`](Self::offering).
    pub(crate) fn offering_id(&self) -> &str {
        self.service_unique_id
            .as_deref()
            .unwrap_or(&self.service_guid)
    }

    pub(crate) fn last_operation(&self) -> Value {
        json!({
            "type": self.op_type,
            "state": self.op_state,
            "description": self.op_description.clone().unwrap_or_default(),
            "updated_at": self.op_updated_at,
            "created_at": self.op_created_at,
        })
    }

    fn resource(&self) -> Value {
        let guid = &self.guid;
        let mut entity = json!({
            "name": self.name,
            "credentials": {},
            "service_plan_guid": self.plan_guid,
            "space_guid": self.space_guid,
            "gateway_data": null,
            "dashboard_url": self.dashboard_url,
            "type": "managed_service_instance",
            "last_operation": self.last_operation(),
            "tags": json_column(Some(&self.tags)),
            "maintenance_info": match json_column(self.maintenance_info.as_deref()) { Value::Null => json!({}), v => v },
            "service_guid": self.service_guid,
            "service_url": format!("/v2/services/{}", self.service_guid),
            "service_plan_url": format!("/v2/service_plans/{}", self.plan_guid),
            "service_bindings_url": format!("/v2/service_instances/{guid}/service_bindings"),
        });
        if self.orphan_mitigation.is_some() {
            entity["orphan_mitigation"] = json_column(self.orphan_mitigation.as_deref());
        }
        json!({
            "metadata": metadata("service_instances", guid, &self.created_at, self.updated_at.as_deref()),
            "entity": entity,
        })
    }
}

pub(crate) async fn find(m: &Marketplace, guid: &str) -> Result<InstanceRow> {
    list::find_one(m.pool(), SELECT, "i.guid", guid, || {
        CfError::new(
            CfCode::SERVICE_INSTANCE_NOT_FOUND,
            format!("The service instance could not be found: {guid}"),
        )
    })
    .await
}

/// `accepts_incomplete`, `purge`, `recursive` from the query.
pub(crate) fn flag(raw: Option<&str>, name: &str) -> Result<bool, CfError> {
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if k == name {
            return match &*v {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(CfError::query(format!(
                    "{name} must be true or false, not {other:?}"
                ))),
            };
        }
    }
    Ok(false)
}

/// The plan a request names: `400 CF-InvalidRelation` when unknown, `400 CF-ServicePlanInvalid`
/// when inactive, `403 CF-NotAuthorized` when private and the caller is not an admin.
async fn plan_for(
    m: &Marketplace,
    guid: &str,
    claims: &Claims,
) -> Result<(i64, String, Option<String>, i64, bool)> {
    #[derive(sqlx::FromRow)]
    struct Choice {
        id: i64,
        unique_id: String,
        maintenance_info: Option<String>,
        service_id: i64,
        active: bool,
        brokered: bool,
        public: bool,
    }
    let plan: Option<Choice> = sqlx::query_as(
        "SELECT p.id, p.unique_id, p.maintenance_info, p.service_id, p.active, \
         s.service_broker_id IS NOT NULL AS brokered, p.public \
         FROM service_plans p JOIN services s ON s.id = p.service_id WHERE p.guid = ?",
    )
    .bind(guid)
    .fetch_optional(m.pool())
    .await?;
    let Some(Choice {
        id,
        unique_id,
        maintenance_info: maintenance,
        service_id,
        active,
        brokered,
        public,
    }) = plan
    else {
        return Err(CfError::new(
            CfCode::INVALID_RELATION,
            format!("Could not find the service plan with guid: {guid}"),
        )
        .into());
    };
    if !active || !brokered {
        return Err(CfError::new(
            CfCode::SERVICE_PLAN_INVALID,
            format!(
                "The service plan is invalid: {}",
                if active {
                    "its service has no service broker"
                } else {
                    "the plan is not active"
                }
            ),
        )
        .into());
    }
    if !public && !claims.has(Scope::Admin) {
        return Err(CfError::new(
            CfCode::NOT_AUTHORIZED,
            "You are not authorized to perform the requested action: the service plan is not public",
        )
        .into());
    }
    Ok((id, unique_id, maintenance, service_id, brokered))
}

/// `POST /v2/service_instances[?accepts_incomplete=true]`.
pub(crate) async fn create(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response> {
    let claims = m.keys().authorize(&headers, Scope::Write)?;
    let accepts_incomplete = flag(raw.as_deref(), "accepts_incomplete")?;
    let f = read_object(body, m.config().body_limit).await?;
    let name = f.required("name")?;
    let plan_guid = f.required("service_plan_guid")?;
    let space_guid = f.required("space_guid")?;
    let parameters = f.object("parameters")?;
    let tags = f.strings("tags")?.unwrap_or_default();
    let organization_guid = f
        .string("organization_guid")?
        .unwrap_or_else(|| space_guid.clone());
    let organization_name = f
        .string("organization_name")?
        .unwrap_or_else(|| organization_guid.clone());
    let space_name = f
        .string("space_name")?
        .unwrap_or_else(|| space_guid.clone());
    if name.chars().count() > 255 {
        return Err(CfError::new(
            CfCode::SERVICE_INSTANCE_NAME_TOO_LONG,
            "You have requested an invalid service instance name. Names are limited to 255 characters.",
        )
        .into());
    }
    if tags.iter().map(String::len).sum::<usize>() > 2048 {
        return Err(CfError::new(
            CfCode::SERVICE_INSTANCE_TAGS_TOO_LONG,
            format!("Combined length of tags for service {name} must be 2048 characters or less."),
        )
        .into());
    }
    let (plan_id, plan_unique_id, maintenance, service_id, _) =
        plan_for(&m, &plan_guid, &claims).await?;
    let service_unique_id: Option<String> =
        sqlx::query_scalar("SELECT unique_id FROM services WHERE id = ?")
            .bind(service_id)
            .fetch_one(m.pool())
            .await?;
    let context = json!({
        "platform": "cloudfoundry",
        "organization_guid": organization_guid,
        "organization_name": organization_name,
        "space_guid": space_guid,
        "space_name": space_name,
        "instance_name": name,
    });
    let mut request = json!({
        "service_id": service_unique_id,
        "plan_id": plan_unique_id,
        "organization_guid": organization_guid,
        "space_guid": space_guid,
        "context": context,
    });
    if let Some(parameters) = parameters {
        request["parameters"] = Value::Object(parameters);
    }
    if let Some(maintenance) = json_column(maintenance.as_deref())
        .as_object()
        .filter(|m| !m.is_empty())
    {
        request["maintenance_info"] = Value::Object(maintenance.clone());
    }
    let guid = guid();
    let sealed = m.secrets().seal(
        &json!({"accepts_incomplete": accepts_incomplete, "body": request}).to_string(),
        &guid,
    )?;
    let id: i64 = {
        let _write = m.write_lock().await;
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM service_instances WHERE space_guid = ? AND name = ?",
        )
        .bind(&space_guid)
        .bind(&name)
        .fetch_optional(m.pool())
        .await?;
        if taken.is_some() {
            return Err(CfError::new(
                CfCode::SERVICE_INSTANCE_NAME_TAKEN,
                format!("The service instance name is taken: {name}"),
            )
            .into());
        }
        let now = now();
        sqlx::query_scalar(
            "INSERT INTO service_instances (guid, name, space_guid, organization_guid, service_plan_id, \
             tags, maintenance_info, context, request, user_id, op_type, op_state, op_phase, \
             op_created_at, op_updated_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'create', 'in progress', 'request', ?, ?, ?) RETURNING id",
        )
        .bind(&guid)
        .bind(&name)
        .bind(&space_guid)
        .bind(&organization_guid)
        .bind(plan_id)
        .bind(json!(tags).to_string())
        .bind(&maintenance)
        .bind(context.to_string())
        .bind(&sealed)
        .bind(&claims.user_id)
        .bind(&now)
        .bind(&now)
        .bind(&now)
        .fetch_one(m.pool())
        .await?
    };
    tracing::info!(%guid, name, plan = %plan_guid, "provisioning");
    let answer_ = ops::run(&m, Table::Instance, id).await?;
    reply(&m, &guid, answer_).await
}

/// `GET /v2/service_instances`.
pub(crate) async fn list(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    m.keys().authorize(&headers, Scope::Read)?;
    let q = ListQuery::parse(raw.as_deref(), FIELDS)?;
    let (total, rows): (i64, Vec<InstanceRow>) =
        list::fetch(m.pool(), SELECT, &q, "i.id", |_| {}).await?;
    let mut resources = Vec::with_capacity(rows.len());
    for row in &rows {
        resources.push(row.resource());
    }
    Ok(Json(q.body("/v2/service_instances", total, resources)))
}

/// `GET /v2/service_instances/:guid`.
pub(crate) async fn show(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
) -> Result<Json<Value>> {
    m.keys().authorize(&headers, Scope::Read)?;
    Ok(Json(find(&m, &guid).await?.resource()))
}

/// `GET /v2/service_instances/:guid/parameters`: fetches the instance from the broker, when the
/// offering is `instances_retrievable`. Parameters often hold secrets: writers and admins only.
pub(crate) async fn parameters(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
) -> Result<Json<Value>> {
    m.keys().authorize(&headers, Scope::Write)?;
    let row = find(&m, &guid).await?;
    if !row.instances_retrievable {
        return Err(CfError::new(
            CfCode::SERVICE_FETCH_NOT_SUPPORTED,
            "This service does not support fetching service instance parameters.",
        )
        .into());
    }
    if row.op_type == "create" && row.op_state != "succeeded" {
        return Err(CfError::new(
            CfCode::ASYNC_SERVICE_INSTANCE_OPERATION_IN_PROGRESS,
            format!(
                "An operation for service instance {} is in progress.",
                row.name
            ),
        )
        .into());
    }
    let client = ops::client_for(&m, row.broker_id).await?;
    let mut q = FetchInstanceQuery::new();
    q.service_id = row.service_unique_id.as_deref().map(Into::into);
    q.plan_id = Some(row.plan_unique_id.as_str().into());
    match client
        .fetch_instance(
            &InstanceId::from(guid.as_str()),
            &q,
            &osb_client::CallOptions::new(),
        )
        .await
    {
        Ok(FetchInstanceOutcome::Found(resource)) => {
            Ok(Json(Value::Object(resource.parameters.unwrap_or_default())))
        }
        Ok(_) => Err(CfError::new(
            CfCode::SERVICE_INSTANCE_NOT_FOUND,
            format!("The service broker does not know the service instance: {guid}"),
        )
        .into()),
        Err(e) => Err(ops::relay(&e).into()),
    }
}

/// Refuses a second operation while one runs: `409 CF-AsyncServiceInstanceOperationInProgress`.
pub(crate) fn idle(row: &InstanceRow) -> Result<(), CfError> {
    if row.op_state == "in progress" {
        return Err(CfError::new(
            CfCode::ASYNC_SERVICE_INSTANCE_OPERATION_IN_PROGRESS,
            format!(
                "An operation for service instance {} is in progress.",
                row.name
            ),
        ));
    }
    Ok(())
}

/// Starts an operation on an existing row: `request` phase, sealed request.
pub(crate) async fn begin(
    m: &Marketplace,
    (table, id, guid): (Table, i64, &str),
    op: &str,
    user: &str,
    request: Value,
    extra: &[(&str, Option<i64>)],
) -> Result<()> {
    let sealed = m.secrets().seal(&request.to_string(), guid)?;
    let _write = m.write_lock().await;
    let now = now();
    let mut sql = format!(
        "UPDATE {} SET op_type = ?, op_state = 'in progress', op_description = NULL, op_phase = 'request', \
         op_token = NULL, request = ?, user_id = ?, op_created_at = ?, op_updated_at = ?, updated_at = ?",
        table.name()
    );
    for (column, _) in extra {
        sql.push_str(&format!(", {column} = ?"));
    }
    if table == Table::Instance && !extra.iter().any(|(c, _)| *c == "pending_plan_id") {
        sql.push_str(", pending_plan_id = NULL");
    }
    sql.push_str(" WHERE id = ? AND op_state != 'in progress'");
    let mut q = sqlx::query(&sql)
        .bind(op)
        .bind(&sealed)
        .bind(user)
        .bind(&now)
        .bind(&now)
        .bind(&now);
    for (_, value) in extra {
        q = q.bind(*value);
    }
    let done = q.bind(id).execute(m.pool()).await?;
    if done.rows_affected() == 0 {
        return Err(CfError::new(
            CfCode::ASYNC_SERVICE_INSTANCE_OPERATION_IN_PROGRESS,
            format!("An operation for {guid} is in progress."),
        )
        .into());
    }
    Ok(())
}

/// `PUT /v2/service_instances/:guid[?accepts_incomplete=true]`: a new plan, parameters or
/// maintenance version go to the broker (with `previous_values`); a new name or tags alone are
/// kept by the marketplace.
pub(crate) async fn update(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response> {
    let claims = m.keys().authorize(&headers, Scope::Write)?;
    let accepts_incomplete = flag(raw.as_deref(), "accepts_incomplete")?;
    let f = read_object(body, m.config().body_limit).await?;
    let new_name = f.string("name")?;
    let plan_guid = f.string("service_plan_guid")?;
    let parameters = f.object("parameters")?;
    let tags = f.strings("tags")?;
    let maintenance = f.object("maintenance_info")?;
    if new_name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(CfError::parse("Field: name, Error: must not be empty").into());
    }
    let row = find(&m, &guid).await?;
    idle(&row)?;
    let mut pending_plan = None;
    let mut plan_unique_id = None;
    let mut target_maintenance = row.plan_maintenance_info.clone();
    if let Some(plan_guid) = plan_guid.as_deref().filter(|g| *g != row.plan_guid) {
        let (id, unique_id, mi, service_id, _) = plan_for(&m, plan_guid, &claims).await?;
        if service_id != row.service_id {
            return Err(CfError::new(
                CfCode::SERVICE_PLAN_INVALID,
                "The service plan is invalid: it belongs to another service",
            )
            .into());
        }
        let offering = row.offering(Some((&unique_id, mi.as_deref())));
        if rules::plan_updateable(
            &offering,
            row.offering_id(),
            &row.plan_unique_id,
            &unique_id,
        )
        .is_err()
        {
            return Err(CfError::new(
                CfCode::SERVICE_PLAN_INVALID,
                "The service plan is invalid: the service does not support changing plans.",
            )
            .into());
        }
        pending_plan = Some(id);
        plan_unique_id = Some(unique_id);
        target_maintenance = mi;
    }
    if let Some(version) = maintenance.as_ref().map(|m| m.get("version")) {
        let Some(version) = version.and_then(Value::as_str) else {
            return Err(CfError::parse(
                "Field: maintenance_info, Error: must have a string version",
            )
            .into());
        };
        // Only the plan's current version can be asked for (an upgrade to it).
        let target = plan_unique_id.as_deref().unwrap_or(&row.plan_unique_id);
        let offering = row.offering(
            plan_unique_id
                .as_deref()
                .map(|id| (id, target_maintenance.as_deref())),
        );
        let requested = osb_types::MaintenanceInfo::new(version);
        if rules::maintenance_info_version(&offering, row.offering_id(), target, &requested)
            .is_err()
        {
            let current = json_column(target_maintenance.as_deref());
            return Err(CfError::new(
                CfCode::UNPROCESSABLE_ENTITY,
                format!(
                    "maintenance_info.version {version:?} is not the plan's current version ({})",
                    current["version"].as_str().unwrap_or("the plan has none")
                ),
            )
            .into());
        }
    }
    if let Some(name) = &new_name {
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM service_instances WHERE space_guid = ? AND name = ? AND id != ?",
        )
        .bind(&row.space_guid)
        .bind(name)
        .bind(row.id)
        .fetch_optional(m.pool())
        .await?;
        if taken.is_some() {
            return Err(CfError::new(
                CfCode::SERVICE_INSTANCE_NAME_TAKEN,
                format!("The service instance name is taken: {name}"),
            )
            .into());
        }
    }
    let tags_text = tags.as_ref().map(|t| json!(t).to_string());
    if pending_plan.is_none() && parameters.is_none() && maintenance.is_none() {
        // Name and tags alone: the marketplace's own.
        if new_name.is_some() || tags.is_some() {
            let _write = m.write_lock().await;
            sqlx::query(
                "UPDATE service_instances SET name = coalesce(?, name), tags = coalesce(?, tags), \
                 context = CASE WHEN ? IS NULL THEN context ELSE json_set(context, '$.instance_name', ?) END, \
                 updated_at = ? WHERE id = ? AND op_state != 'in progress'",
            )
            .bind(&new_name)
            .bind(&tags_text)
            .bind(&new_name)
            .bind(&new_name)
            .bind(now())
            .bind(row.id)
            .execute(m.pool())
            .await?;
        }
        let row = find(&m, &guid).await?;
        return Ok(answer(
            StatusCode::CREATED,
            &guid,
            "service_instances",
            row.resource(),
        ));
    }
    let mut context: Map<String, Value> = serde_json::from_str(&row.context).unwrap_or_default();
    if let Some(name) = &new_name {
        context.insert("instance_name".into(), json!(name));
    }
    let mut request = json!({
        "service_id": row.service_unique_id,
        "plan_id": plan_unique_id.clone().unwrap_or_else(|| row.plan_unique_id.clone()),
        "context": context,
        "previous_values": {
            "service_id": row.service_unique_id,
            "plan_id": row.plan_unique_id,
            "organization_id": row.organization_guid,
            "space_id": row.space_guid,
        },
    });
    if let Some(p) = parameters {
        request["parameters"] = Value::Object(p);
    }
    if let Some(mi) = maintenance {
        request["maintenance_info"] = Value::Object(mi);
    }
    begin(
        &m,
        (Table::Instance, row.id, &guid),
        "update",
        &claims.user_id,
        // A new name and tags are kept once the broker has done the update.
        json!({"accepts_incomplete": accepts_incomplete, "body": request,
               "local": {"name": new_name, "tags": tags_text}}),
        &[("pending_plan_id", pending_plan)],
    )
    .await?;
    let answer_ = ops::run(&m, Table::Instance, row.id).await?;
    reply(&m, &guid, answer_).await
}

/// `201` with the instance when the broker is done, `202` while it works.
async fn reply(m: &Marketplace, guid: &str, outcome: Answer) -> Result<Response> {
    let status = if outcome == Answer::Done {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    let row = find(m, guid).await?;
    Ok(answer(status, guid, "service_instances", row.resource()))
}

/// `DELETE /v2/service_instances/:guid[?accepts_incomplete=true][&purge=true][&recursive=true]`.
pub(crate) async fn delete(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let claims = m.keys().authorize(&headers, Scope::Write)?;
    let accepts_incomplete = flag(raw.as_deref(), "accepts_incomplete")?;
    let purge = flag(raw.as_deref(), "purge")?;
    let recursive = flag(raw.as_deref(), "recursive")?;
    let row = find(&m, &guid).await?;
    if purge {
        if !claims.has(Scope::Admin) {
            return Err(CfError::new(
                CfCode::NOT_AUTHORIZED,
                "You are not authorized to perform the requested action",
            )
            .into());
        }
        let _write = m.write_lock().await;
        // Its bindings go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM service_instances WHERE id = ?")
            .bind(row.id)
            .execute(m.pool())
            .await?;
        tracing::info!(%guid, "service instance purged");
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    idle(&row)?;
    let bindings: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, guid FROM service_bindings WHERE service_instance_id = ?")
            .bind(row.id)
            .fetch_all(m.pool())
            .await?;
    if !bindings.is_empty() {
        if !recursive {
            return Err(CfError::new(
                CfCode::ASSOCIATION_NOT_EMPTY,
                "Please delete the service_bindings, service_keys, and routes associations for your service_instances.",
            )
            .into());
        }
        for (id, binding_guid) in bindings {
            crate::instances::begin(
                &m,
                (Table::Binding, id, &binding_guid),
                "delete",
                &claims.user_id,
                json!({"accepts_incomplete": false}),
                &[],
            )
            .await?;
            ops::run(&m, Table::Binding, id).await.map_err(|e| match e {
                Error::Api(cf) => Error::Api(CfError::new(
                    CfCode::SERVICE_BROKER_REQUEST_REJECTED,
                    format!("Deletion of service instance {} failed because one or more associated resources could not be deleted: {}", row.name, cf.description),
                )),
                other => other,
            })?;
        }
    }
    begin(
        &m,
        (Table::Instance, row.id, &guid),
        "delete",
        &claims.user_id,
        json!({"accepts_incomplete": accepts_incomplete}),
        &[],
    )
    .await?;
    match ops::run(&m, Table::Instance, row.id).await? {
        Answer::Done => {
            tracing::info!(%guid, "service instance deleted");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Answer::Accepted => {
            let row = find(&m, &guid).await?;
            Ok(answer(
                StatusCode::ACCEPTED,
                &guid,
                "service_instances",
                row.resource(),
            ))
        }
    }
}
