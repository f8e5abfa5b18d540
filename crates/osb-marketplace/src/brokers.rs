//! `/v2/service_brokers`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::auth::Scope;
use crate::body::read_object;
use crate::error::{CfCode, CfError, Result};
use crate::list::{self, Field, Kind, ListQuery};
use crate::sync::{Changes, apply, fetch_catalog};
use crate::{Marketplace, answer, guid, metadata, now};

/// A row of `service_brokers`. The password stays sealed until a broker call needs it.
#[derive(sqlx::FromRow)]
struct BrokerRow {
    id: i64,
    guid: String,
    name: String,
    broker_url: String,
    auth_username: String,
    auth_password: String,
    space_guid: Option<String>,
    created_at: String,
    updated_at: Option<String>,
}

impl std::fmt::Debug for BrokerRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerRow")
            .field("guid", &self.guid)
            .field("name", &self.name)
            .field("broker_url", &self.broker_url)
            .field("auth_username", &self.auth_username)
            .field("auth_password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

const SELECT: &str = "SELECT id, guid, name, broker_url, auth_username, auth_password, \
    space_guid, created_at, updated_at FROM service_brokers";

const FIELDS: &[Field] = &[
    Field {
        name: "name",
        column: "name",
        kind: Kind::Text,
    },
    Field {
        name: "space_guid",
        column: "space_guid",
        kind: Kind::Text,
    },
];

impl BrokerRow {
    /// The resource: never the password.
    fn resource(&self) -> Value {
        json!({
            "metadata": metadata("service_brokers", &self.guid, &self.created_at, self.updated_at.as_deref()),
            "entity": {
                "name": self.name,
                "broker_url": self.broker_url,
                "auth_username": self.auth_username,
                "space_guid": self.space_guid,
            }
        })
    }
}

async fn find(executor: impl sqlx::SqliteExecutor<'_>, guid: &str) -> Result<BrokerRow> {
    list::find_one(executor, SELECT, "guid", guid, || {
        CfError::new(
            CfCode::SERVICE_BROKER_NOT_FOUND,
            format!("The service broker was not found: {guid}"),
        )
    })
    .await
}

/// A broker URL must be absolute `http` or `https`, with a host and no user name or password.
fn check_url(url: &str) -> Result<(), CfError> {
    let invalid = || {
        CfError::new(
            CfCode::SERVICE_BROKER_URL_INVALID,
            format!("{url} is not a valid URL"),
        )
    };
    let uri: Uri = url.parse().map_err(|_| invalid())?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(invalid());
    }
    let authority = uri.authority().ok_or_else(invalid)?;
    if authority.as_str().contains('@') {
        return Err(CfError::new(
            CfCode::SERVICE_BROKER_URL_BASIC_AUTH_NOT_SUPPORTED,
            "User name and password fields in the broker URI are not supported",
        ));
    }
    if authority.host().is_empty() || uri.query().is_some() {
        return Err(invalid());
    }
    Ok(())
}

/// Refuses a name or URL that another broker has.
async fn check_taken(
    executor: &mut sqlx::SqliteConnection,
    name: &str,
    url: &str,
    except: Option<i64>,
) -> Result<()> {
    let taken: Option<(String, String)> = sqlx::query_as(
        "SELECT name, broker_url FROM service_brokers WHERE (name = ? OR broker_url = ?) AND id IS NOT ?",
    )
    .bind(name)
    .bind(url)
    .bind(except)
    .fetch_optional(&mut *executor)
    .await?;
    match taken {
        Some((n, _)) if n == name => Err(CfError::new(
            CfCode::SERVICE_BROKER_NAME_TAKEN,
            "The service broker name is taken",
        )
        .into()),
        Some(_) => Err(CfError::new(
            CfCode::SERVICE_BROKER_URL_TAKEN,
            format!("The service broker url is taken: {url}"),
        )
        .into()),
        None => Ok(()),
    }
}

/// The `X-Cf-Warnings` header: each warning percent-encoded, joined with commas.
fn warnings(changes: &Changes) -> Option<HeaderValue> {
    if changes.warnings.is_empty() {
        return None;
    }
    let text: Vec<String> = changes
        .warnings
        .iter()
        .map(|w| utf8_percent_encode(w, NON_ALPHANUMERIC).to_string())
        .collect();
    HeaderValue::from_str(&text.join(",")).ok()
}

fn log_changes(broker: &str, changes: &Changes) {
    for line in &changes.lines {
        tracing::info!(broker, "{line}");
    }
    for warning in &changes.warnings {
        tracing::warn!(broker, "{warning}");
    }
}

/// `POST /v2/service_brokers`: fetches and lints the catalog, then creates the broker, its
/// services and their plans in one transaction.
pub(crate) async fn create(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    m.keys().authorize(&headers, Scope::Admin)?;
    let f = read_object(body, m.config().body_limit).await?;
    let name = f.required("name")?;
    let url = f.required("broker_url")?.trim_end_matches('/').to_owned();
    let username = f.required("auth_username")?;
    let password = f.required("auth_password")?;
    let space_guid = f.string("space_guid")?;
    check_url(&url)?;
    {
        let mut conn = m.pool().acquire().await?;
        check_taken(&mut conn, &name, &url, None).await?;
    }
    let catalog = fetch_catalog(&url, &username, &password, m.config().broker_timeout).await?;

    let guid = guid();
    let sealed = m.secrets().seal(&password, &guid)?;
    let changes = {
        let _write = m.write_lock().await;
        let mut tx = m.pool().begin().await?;
        check_taken(&mut tx, &name, &url, None).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO service_brokers (guid, name, broker_url, auth_username, auth_password, \
             space_guid, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&guid)
        .bind(&name)
        .bind(&url)
        .bind(&username)
        .bind(&sealed)
        .bind(&space_guid)
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        let changes = apply(&mut tx, id, &catalog).await?;
        tx.commit().await?;
        changes
    };
    log_changes(&name, &changes);
    tracing::info!(%guid, name, url, services = catalog.services.len(), "service broker registered");
    let broker = find(m.pool(), &guid).await?;
    Ok(answer(
        StatusCode::CREATED,
        &guid,
        "service_brokers",
        broker.resource(),
    ))
}

/// `GET /v2/service_brokers`.
pub(crate) async fn list(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    m.keys().authorize(&headers, Scope::Read)?;
    let q = ListQuery::parse(raw.as_deref(), FIELDS)?;
    let (total, rows): (i64, Vec<BrokerRow>) =
        list::fetch(m.pool(), SELECT, &q, "id", |_| {}).await?;
    Ok(Json(q.body(
        "/v2/service_brokers",
        total,
        rows.iter().map(BrokerRow::resource).collect(),
    )))
}

/// `GET /v2/service_brokers/:guid`.
pub(crate) async fn show(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
) -> Result<Json<Value>> {
    m.keys().authorize(&headers, Scope::Read)?;
    Ok(Json(find(m.pool(), &guid).await?.resource()))
}

/// `PUT /v2/service_brokers/:guid`: new name, URL or credentials (all optional), then the
/// catalog is read again and the services and plans brought in line with it. What could not be
/// removed is reported in `X-Cf-Warnings`.
pub(crate) async fn update(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
    body: Body,
) -> Result<Response> {
    m.keys().authorize(&headers, Scope::Admin)?;
    let f = read_object(body, m.config().body_limit).await?;
    let name = f.string("name")?;
    let url = f
        .string("broker_url")?
        .map(|u| u.trim_end_matches('/').to_owned());
    let username = f.string("auth_username")?;
    let password = f.string("auth_password")?;
    let space_guid = f.string("space_guid")?;
    for (key, value) in [
        ("name", &name),
        ("broker_url", &url),
        ("auth_username", &username),
        ("auth_password", &password),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(CfError::parse(format!("Field: {key}, Error: must not be empty")).into());
        }
    }
    if let Some(url) = &url {
        check_url(url)?;
    }
    let current = find(m.pool(), &guid).await?;
    if f.has("space_guid") && space_guid != current.space_guid {
        return Err(CfError::new(
            CfCode::SERVICE_BROKER_INVALID,
            "Service broker is invalid: space_guid cannot be changed",
        )
        .into());
    }
    let name = name.unwrap_or_else(|| current.name.clone());
    let url = url.unwrap_or_else(|| current.broker_url.clone());
    let username = username.unwrap_or_else(|| current.auth_username.clone());
    let password = match password {
        Some(p) => p,
        None => m.secrets().open(&current.auth_password, &guid)?,
    };
    {
        let mut conn = m.pool().acquire().await?;
        check_taken(&mut conn, &name, &url, Some(current.id)).await?;
    }
    let catalog = fetch_catalog(&url, &username, &password, m.config().broker_timeout).await?;
    let sealed = m.secrets().seal(&password, &guid)?;
    let changes = {
        let _write = m.write_lock().await;
        let mut tx = m.pool().begin().await?;
        check_taken(&mut tx, &name, &url, Some(current.id)).await?;
        let updated = sqlx::query(
            "UPDATE service_brokers SET name = ?, broker_url = ?, auth_username = ?, \
             auth_password = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&name)
        .bind(&url)
        .bind(&username)
        .bind(&sealed)
        .bind(now())
        .bind(current.id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            // Deleted meanwhile.
            find(&mut *tx, &guid).await?;
        }
        let changes = apply(&mut tx, current.id, &catalog).await?;
        tx.commit().await?;
        changes
    };
    log_changes(&name, &changes);
    tracing::info!(%guid, name, "service broker updated");
    let broker = find(m.pool(), &guid).await?;
    let mut response = Json(broker.resource()).into_response();
    if let Some(value) = warnings(&changes) {
        response.headers_mut().insert("x-cf-warnings", value);
    }
    Ok(response)
}

/// `DELETE /v2/service_brokers/:guid`: refused while its plans have instances.
pub(crate) async fn delete(
    State(m): State<Marketplace>,
    headers: HeaderMap,
    Path(guid): Path<String>,
) -> Result<StatusCode> {
    m.keys().authorize(&headers, Scope::Admin)?;
    let _write = m.write_lock().await;
    let mut tx = m.pool().begin().await?;
    let broker = find(&mut *tx, &guid).await?;
    let instances: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM service_instances i JOIN service_plans p ON p.id = i.service_plan_id \
         JOIN services s ON s.id = p.service_id WHERE s.service_broker_id = ?",
    )
    .bind(broker.id)
    .fetch_one(&mut *tx)
    .await?;
    if instances > 0 {
        return Err(CfError::new(
            CfCode::SERVICE_BROKER_NOT_REMOVABLE,
            format!(
                "Can not remove brokers that have associated service instances: {}",
                broker.name
            ),
        )
        .into());
    }
    sqlx::query("DELETE FROM service_brokers WHERE id = ?")
        .bind(broker.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(%guid, name = broker.name, "service broker deleted");
    Ok(StatusCode::NO_CONTENT)
}
