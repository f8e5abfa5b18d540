//! `/v2/service_plans`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::auth::Scope;
use crate::body::read_object;
use crate::error::{CfCode, CfError, Result};
use crate::list::{self, Field, Kind, ListQuery};
use crate::{Marketplace, json_column, metadata, now};

/// A row of `service_plans`, with what its entity needs from its service and broker.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PlanRow {
    pub(crate) guid: String,
    name: String,
    free: bool,
    description: String,
    extra: Option<String>,
    unique_id: String,
    public: bool,
    active: bool,
    bindable: Option<bool>,
    plan_updateable: Option<bool>,
    schemas: Option<String>,
    maintenance_info: Option<String>,
    maximum_polling_duration: Option<i64>,
    service_guid: String,
    service_bindable: bool,
    service_plan_updateable: bool,
    created_at: String,
    updated_at: Option<String>,
}

const SELECT: &str = "SELECT p.id, p.guid, p.name, p.free, p.description, p.extra, p.unique_id, \
    p.public, p.active, p.bindable, p.plan_updateable, p.schemas, p.maintenance_info, \
    p.maximum_polling_duration, s.guid AS service_guid, s.bindable AS service_bindable, \
    s.plan_updateable AS service_plan_updateable, p.created_at, p.updated_at \
    FROM service_plans p JOIN services s ON s.id = p.service_id \
    LEFT JOIN service_brokers b ON b.id = s.service_broker_id";

pub(crate) const FIELDS: &[Field] = &[
    Field {
        name: "active",
        column: "p.active",
        kind: Kind::Bool,
    },
    Field {
        name: "name",
        column: "p.name",
        kind: Kind::Text,
    },
    Field {
        name: "service_guid",
        column: "s.guid",
        kind: Kind::Text,
    },
    Field {
        name: "service_broker_guid",
        column: "b.guid",
        kind: Kind::Text,
    },
    Field {
        name: "unique_id",
        column: "p.unique_id",
        kind: Kind::Text,
    },
];

impl PlanRow {
    /// The resource. `bindable` and `plan_updateable` fall back to the service's; `schemas`
    /// always has its three places (`{}` where the broker gave none), as Cloud Controller shows
    /// them.
    pub(crate) fn resource(&self) -> Value {
        let schemas = json_column(self.schemas.as_deref());
        let params = |a: &str, b: &str| {
            let p = schemas
                .pointer(&format!("/{a}/{b}/parameters"))
                .cloned()
                .unwrap_or_else(|| json!({}));
            json!({"parameters": p})
        };
        let maintenance = match json_column(self.maintenance_info.as_deref()) {
            Value::Null => json!({}),
            other => other,
        };
        json!({
            "metadata": metadata("service_plans", &self.guid, &self.created_at, self.updated_at.as_deref()),
            "entity": {
                "name": self.name,
                "free": self.free,
                "description": self.description,
                "service_guid": self.service_guid,
                "extra": self.extra,
                "unique_id": self.unique_id,
                "public": self.public,
                "active": self.active,
                "bindable": self.bindable.unwrap_or(self.service_bindable),
                "plan_updateable": self.plan_updateable.unwrap_or(self.service_plan_updateable),
                "schemas": {
                    "service_instance": {
                        "create": params("service_instance", "create"),
                        "update": params("service_instance", "update"),
                    },
                    "service_binding": {"create": params("service_binding", "create")},
                },
                "maintenance_info": maintenance,
                "maximum_polling_duration": self.maximum_polling_duration,
                "service_url": format!("/v2/services/{}", self.service_guid),
                "service_instances_url": format!("/v2/service_plans/{}/service_instances", self.guid),
            }
        })
    }
}

async fn find(m: &Marketplace, guid: &str) -> Result<PlanRow> {
    list::find_one(m.pool(), SELECT, "p.guid", guid, || {
        CfError::new(
            CfCode::SERVICE_PLAN_NOT_FOUND,
            format!("The service plan could not be found: {guid}"),
        )
    })
    .await
}

/// A page of plans, of one service or of all.
pub(crate) async fn page(
    m: &Marketplace,
    q: &ListQuery,
    service_id: Option<i64>,
    path: &str,
) -> Result<Value> {
    let (total, rows): (i64, Vec<PlanRow>) = list::fetch(m.pool(), SELECT, q, "p.id", |sql| {
        if let Some(id) = service_id {
            sql.push(" AND p.service_id = ").push_bind(id);
        }
    })
    .await?;
    Ok(q.body(path, total, rows.iter().map(PlanRow::resource).collect()))
}

/// `GET /v2/service_plans`.
pub(crate) async fn list(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    m.keys().authorize(&headers, Scope::Read)?;
    let q = ListQuery::parse(raw.as_deref(), FIELDS)?;
    Ok(Json(page(&m, &q, None, "/v2/service_plans").await?))
}

/// `GET /v2/service_plans/:guid`.
pub(crate) async fn show(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
) -> Result<Json<Value>> {
    m.keys().authorize(&headers, Scope::Read)?;
    Ok(Json(find(&m, &guid).await?.resource()))
}

/// `PUT /v2/service_plans/:guid` with `{"public": bool}`: `201` with the plan, as Cloud
/// Controller's v2 updates answer.
pub(crate) async fn update(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Value>)> {
    m.keys().authorize(&headers, Scope::Admin)?;
    let f = read_object(body, m.config().body_limit).await?;
    let public = f.boolean("public")?;
    find(&m, &guid).await?;
    if let Some(public) = public {
        let _write = m.write_lock().await;
        sqlx::query("UPDATE service_plans SET public = ?, updated_at = ? WHERE guid = ?")
            .bind(public)
            .bind(now())
            .bind(&guid)
            .execute(m.pool())
            .await?;
        tracing::info!(%guid, public, "service plan updated");
    }
    Ok((StatusCode::CREATED, Json(find(&m, &guid).await?.resource())))
}
