//! `/v2/services`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::auth::Scope;
use crate::body::read_object;
use crate::error::{CfCode, CfError, Result};
use crate::list::{self, Field, Kind, ListQuery};
use crate::plans;
use crate::{Marketplace, answer, guid, json_column, metadata, now};

/// A row of `services`, with its broker's guid and name.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ServiceRow {
    pub(crate) id: i64,
    pub(crate) guid: String,
    pub(crate) label: String,
    provider: Option<String>,
    url: Option<String>,
    description: Option<String>,
    long_description: Option<String>,
    version: Option<String>,
    info_url: Option<String>,
    documentation_url: Option<String>,
    active: bool,
    bindable: bool,
    unique_id: Option<String>,
    extra: Option<String>,
    tags: String,
    requires: String,
    plan_updateable: bool,
    instances_retrievable: bool,
    bindings_retrievable: bool,
    allow_context_updates: bool,
    broker_guid: Option<String>,
    broker_name: Option<String>,
    created_at: String,
    updated_at: Option<String>,
}

pub(crate) const SELECT: &str = "SELECT s.id, s.guid, s.label, s.provider, s.url, s.description, \
    s.long_description, s.version, s.info_url, s.documentation_url, s.active, s.bindable, \
    s.unique_id, s.extra, s.tags, s.requires, s.plan_updateable, s.instances_retrievable, \
    s.bindings_retrievable, s.allow_context_updates, b.guid AS broker_guid, b.name AS broker_name, \
    s.created_at, s.updated_at \
    FROM services s LEFT JOIN service_brokers b ON b.id = s.service_broker_id";

const FIELDS: &[Field] = &[
    Field {
        name: "label",
        column: "s.label",
        kind: Kind::Text,
    },
    Field {
        name: "active",
        column: "s.active",
        kind: Kind::Bool,
    },
    Field {
        name: "provider",
        column: "s.provider",
        kind: Kind::Text,
    },
    Field {
        name: "service_broker_guid",
        column: "b.guid",
        kind: Kind::Text,
    },
    Field {
        name: "unique_id",
        column: "s.unique_id",
        kind: Kind::Text,
    },
];

impl ServiceRow {
    /// The entity as the seed's `POST /v2/services` example shows it, field for field and in
    /// its order.
    fn entity(&self) -> serde_json::Map<String, Value> {
        let list = |text: &str| match json_column(Some(text)) {
            Value::Array(items) => Value::Array(items),
            _ => json!([]),
        };
        let Value::Object(entity) = json!({
            "label": self.label,
            "provider": self.provider,
            "url": self.url,
            "description": self.description,
            "long_description": self.long_description,
            "version": self.version,
            "info_url": self.info_url,
            "active": self.active,
            "bindable": self.bindable,
            "unique_id": self.unique_id,
            "extra": self.extra,
            "tags": list(&self.tags),
            "requires": list(&self.requires),
            "documentation_url": self.documentation_url,
            "service_broker_guid": self.broker_guid,
            "plan_updateable": self.plan_updateable,
            "service_plans_url": format!("/v2/services/{}/service_plans", self.guid),
        }) else {
            unreachable!("a JSON object literal")
        };
        entity
    }

    fn metadata(&self) -> Value {
        metadata(
            "services",
            &self.guid,
            &self.created_at,
            self.updated_at.as_deref(),
        )
    }

    /// The resource as `POST /v2/services` answers it.
    fn created(&self) -> Value {
        json!({"metadata": self.metadata(), "entity": self.entity()})
    }

    /// The resource as listings and `GET` show it: the seed's fields, then the later ones
    /// (`bindings_retrievable`, `instances_retrievable`, `allow_context_updates`) and the
    /// owning broker's name, before `service_plans_url`.
    pub(crate) fn resource(&self) -> Value {
        let mut entity = self.entity();
        let plans_url = entity.remove("service_plans_url").unwrap_or(Value::Null);
        entity.insert(
            "bindings_retrievable".into(),
            self.bindings_retrievable.into(),
        );
        entity.insert(
            "instances_retrievable".into(),
            self.instances_retrievable.into(),
        );
        entity.insert(
            "allow_context_updates".into(),
            self.allow_context_updates.into(),
        );
        entity.insert("service_broker_name".into(), json!(self.broker_name));
        entity.insert("service_plans_url".into(), plans_url);
        json!({"metadata": self.metadata(), "entity": entity})
    }
}

pub(crate) async fn find(
    executor: impl sqlx::SqliteExecutor<'_>,
    guid: &str,
) -> Result<ServiceRow> {
    list::find_one(executor, SELECT, "s.guid", guid, || {
        CfError::new(
            CfCode::SERVICE_NOT_FOUND,
            format!("The service could not be found: {guid}"),
        )
    })
    .await
}

/// `POST /v2/services`.
pub(crate) async fn create(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    m.keys().authorize(&headers, Scope::Admin)?;
    let f = read_object(body, m.config().body_limit).await?;
    let label = f.required("label")?;
    let provider = f.string("provider")?;
    let description = f.string("description")?;
    let long_description = f.string("long_description")?;
    let info_url = f.string("info_url")?;
    let documentation_url = f.string("documentation_url")?;
    let timeout = f.integer("timeout")?;
    let active = f.boolean("active")?.unwrap_or(false);
    let bindable = f.boolean("bindable")?.unwrap_or(true);
    let extra = f.json_text("extra")?;
    let unique_id = f.string("unique_id")?;
    let tags = f.strings("tags")?.unwrap_or_default();
    let requires = f.strings("requires")?.unwrap_or_default();
    let version = f.string("version")?;
    let url = f.string("url")?;
    let broker_guid = f.string("service_broker_guid")?;

    let guid = guid();
    {
        let _write = m.write_lock().await;
        let mut tx = m.pool().begin().await?;
        let broker_id: Option<i64> = match &broker_guid {
            None => None,
            Some(g) => Some(
                sqlx::query_scalar("SELECT id FROM service_brokers WHERE guid = ?")
                    .bind(g)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| {
                        CfError::new(
                            CfCode::INVALID_RELATION,
                            format!("Could not find the service broker with guid: {g}"),
                        )
                    })?,
            ),
        };
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM services WHERE label = ? AND coalesce(provider, '') = coalesce(?, '')",
        )
        .bind(&label)
        .bind(&provider)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(CfError::new(
                CfCode::SERVICE_LABEL_TAKEN,
                format!("The service label is taken: {label}"),
            )
            .into());
        }
        if let Some(id) = &unique_id {
            let taken: Option<i64> =
                sqlx::query_scalar("SELECT id FROM services WHERE unique_id = ?")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if taken.is_some() {
                return Err(CfError::new(
                    CfCode::SERVICE_INVALID,
                    format!("The service is invalid: unique_id {id} is taken"),
                )
                .into());
            }
        }
        sqlx::query(
            "INSERT INTO services (guid, label, provider, url, description, long_description, \
             version, info_url, documentation_url, timeout, active, bindable, unique_id, extra, \
             tags, requires, service_broker_id, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&guid)
        .bind(&label)
        .bind(&provider)
        .bind(&url)
        .bind(&description)
        .bind(&long_description)
        .bind(&version)
        .bind(&info_url)
        .bind(&documentation_url)
        .bind(timeout)
        .bind(active)
        .bind(bindable)
        .bind(&unique_id)
        .bind(&extra)
        .bind(json!(tags).to_string())
        .bind(json!(requires).to_string())
        .bind(broker_id)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    let row = find(m.pool(), &guid).await?;
    tracing::info!(guid = %row.guid, label = %row.label, "service created");
    Ok(answer(
        StatusCode::CREATED,
        &guid,
        "services",
        row.created(),
    ))
}

/// `GET /v2/services`.
pub(crate) async fn list(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    m.keys().authorize(&headers, Scope::Read)?;
    let q = ListQuery::parse(raw.as_deref(), FIELDS)?;
    Ok(Json(page(&m, &q, "/v2/services").await?))
}

async fn page(m: &Marketplace, q: &ListQuery, path: &str) -> Result<Value> {
    let (total, rows): (i64, Vec<ServiceRow>) =
        list::fetch(m.pool(), SELECT, q, "s.id", |_| {}).await?;
    Ok(q.body(path, total, rows.iter().map(ServiceRow::resource).collect()))
}

/// `GET /v2/services/:guid`.
pub(crate) async fn show(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
) -> Result<Json<Value>> {
    m.keys().authorize(&headers, Scope::Read)?;
    Ok(Json(find(m.pool(), &guid).await?.resource()))
}

/// `GET /v2/services/:guid/service_plans`.
pub(crate) async fn plans(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    m.keys().authorize(&headers, Scope::Read)?;
    let service = find(m.pool(), &guid).await?;
    let q = ListQuery::parse(raw.as_deref(), plans::FIELDS)?;
    let path = format!("/v2/services/{guid}/service_plans");
    Ok(Json(plans::page(&m, &q, Some(service.id), &path).await?))
}

/// `DELETE /v2/services/:guid[?purge=true]`: refused while its plans have instances, unless
/// `purge=true`, which removes the service, its plans and their instances from the marketplace
/// without calling any broker.
pub(crate) async fn delete(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode> {
    m.keys().authorize(&headers, Scope::Admin)?;
    let purge = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .any(|(k, v)| k == "purge" && v == "true");
    let _write = m.write_lock().await;
    let mut tx = m.pool().begin().await?;
    let service = find(&mut *tx, &guid).await?;
    let instances: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM service_instances i JOIN service_plans p ON p.id = i.service_plan_id \
         WHERE p.service_id = ?",
    )
    .bind(service.id)
    .fetch_one(&mut *tx)
    .await?;
    if instances > 0 && !purge {
        return Err(CfError::new(
            CfCode::ASSOCIATION_NOT_EMPTY,
            "Please delete the service_instances associations for your services.",
        )
        .into());
    }
    // Their bindings go with them (ON DELETE CASCADE).
    sqlx::query(
        "DELETE FROM service_instances WHERE service_plan_id IN \
         (SELECT id FROM service_plans WHERE service_id = ?)",
    )
    .bind(service.id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM services WHERE id = ?")
        .bind(service.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(%guid, purge, instances, "service deleted");
    Ok(StatusCode::NO_CONTENT)
}
