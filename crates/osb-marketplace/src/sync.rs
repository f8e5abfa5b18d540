//! Reading a broker's catalog and bringing the marketplace's services and plans in line with it.

use std::collections::HashSet;
use std::time::Duration;

use osb_client::{CallOptions, Client};
use osb_types::{Catalog, has_errors};
use serde_json::{Value, json};
use sqlx::SqliteConnection;

use crate::error::{CfCode, CfError, Result};
use crate::{guid, now};

/// Fetches `/v2/catalog` from the broker at `url` and lints it.
///
/// Cloud Controller's answers: unreachable or timed out (`502`, code 10001), credentials
/// refused (`502 CF-ServiceBrokerApiAuthenticationFailed`), another status
/// (`502 CF-ServiceBrokerRequestRejected`), a body that is not a JSON object
/// (`502 CF-ServiceBrokerRequestMalformed`), a catalog that does not decode or that the linter
/// finds errors in (`502 CF-ServiceBrokerCatalogInvalid`, each finding with its JSON path).
pub(crate) async fn fetch_catalog(
    url: &str,
    username: &str,
    password: &str,
    timeout: Duration,
) -> Result<Catalog, CfError> {
    let client = Client::builder(url)
        .basic_auth(username, password)
        .timeout(timeout)
        .catalog_cache(false)
        .build()
        .map_err(|e| {
            CfError::new(
                CfCode::SERVICE_BROKER_URL_INVALID,
                format!("{url} is not a valid URL ({e})"),
            )
        })?;
    let catalog_url = format!("{}/v2/catalog", url.trim_end_matches('/'));
    let catalog = client
        .catalog(&CallOptions::new())
        .await
        .map_err(|e| broker_error(&e, &catalog_url))?;
    let problems = catalog.lint();
    if has_errors(&problems) {
        let findings: Vec<String> = problems
            .iter()
            .filter(|p| p.is_error())
            .map(|p| format!("{}: {} [{}]", p.path, p.message, p.rule))
            .collect();
        return Err(CfError::new(
            CfCode::SERVICE_BROKER_CATALOG_INVALID,
            format!(
                "Service broker catalog is invalid: \n{}",
                findings.join("\n")
            ),
        ));
    }
    Ok(catalog)
}

fn broker_error(e: &osb_client::Error, url: &str) -> CfError {
    use osb_client::Error as E;
    let relayed = |kind, description: String, status: Option<u16>| {
        let mut e = CfError::new(kind, description);
        if let Some(status) = status {
            e.http = Some(Box::new(
                json!({"uri": url, "method": "GET", "status": status}),
            ));
        }
        e
    };
    match e {
        E::Timeout { .. } => relayed(
            CfCode::SERVICE_BROKER_API_TIMEOUT,
            format!("The request to the service broker timed out: {url}"),
            None,
        ),
        E::Transport { .. } => relayed(
            CfCode::SERVICE_BROKER_API_UNREACHABLE,
            format!("The service broker could not be reached: {url}"),
            None,
        ),
        E::Config { reason } => CfError::new(
            CfCode::SERVICE_BROKER_URL_INVALID,
            format!("{url} is not a valid URL ({reason})"),
        ),
        E::Decode { body, source, .. } => {
            if matches!(
                serde_json::from_str::<Value>(body.as_str()),
                Ok(Value::Object(_))
            ) {
                CfError::new(
                    CfCode::SERVICE_BROKER_CATALOG_INVALID,
                    format!("Service broker catalog is invalid: \n{source}"),
                )
            } else {
                relayed(
                    CfCode::SERVICE_BROKER_REQUEST_MALFORMED,
                    "The service broker returned an invalid response: expected valid JSON object in body. Please check that the URL points to a valid service broker.".to_owned(),
                    Some(200),
                )
            }
        }
        E::BodyTooLarge { limit, .. } => relayed(
            CfCode::SERVICE_BROKER_REQUEST_MALFORMED,
            format!(
                "The service broker returned an invalid response: the catalog exceeds {limit} bytes"
            ),
            None,
        ),
        other => match other.status().map(|s| s.as_u16()) {
            Some(401) => relayed(
                CfCode::SERVICE_BROKER_API_AUTHENTICATION_FAILED,
                format!(
                    "Authentication failed for the service broker API. Double-check that the username and password are correct: {url}"
                ),
                Some(401),
            ),
            status => relayed(
                CfCode::SERVICE_BROKER_REQUEST_REJECTED,
                format!(
                    "The service broker rejected the request. Status Code: {}. Please check that the URL points to a valid service broker.",
                    status.map_or_else(|| "none".to_owned(), |s| s.to_string())
                ),
                status,
            ),
        },
    }
}

/// What a catalog sync changed, for the log and the `X-Cf-Warnings` header.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Human-readable lines: what was added, removed or deactivated.
    pub(crate) lines: Vec<String>,
    /// Warnings (plans and services kept inactive because instances use them).
    pub(crate) warnings: Vec<String>,
}

fn json_text<T: serde::Serialize>(value: &Option<T>) -> Option<String> {
    value.as_ref().map(|v| json!(v).to_string())
}

/// Brings the services and plans of broker `broker_id` in line with `catalog`, inside the
/// caller's transaction.
///
/// Offerings and plans are matched by their broker ids (`unique_id`). New plans are private
/// (`public: false`) until an admin makes them public; existing plans keep their visibility.
/// Plans gone from the catalog are deleted, or made inactive while instances use them;
/// services likewise. An offering id or name that another broker's (or a directly created)
/// service holds refuses the whole catalog.
pub(crate) async fn apply(
    tx: &mut SqliteConnection,
    broker_id: i64,
    catalog: &Catalog,
) -> Result<Changes> {
    let mut changes = Changes::default();
    let invalid = |text: String| {
        CfError::new(
            CfCode::SERVICE_BROKER_CATALOG_INVALID,
            format!("Service broker catalog is invalid: \n{text}"),
        )
    };
    for (i, offering) in catalog.services.iter().enumerate() {
        let other: Option<String> = sqlx::query_scalar(
            "SELECT label FROM services WHERE unique_id = ? AND service_broker_id IS NOT ?",
        )
        .bind(offering.id.as_str())
        .bind(broker_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(label) = other {
            return Err(invalid(format!(
                "/services/{i}/id: the offering id {} is already used by the service {label:?} of another broker",
                offering.id
            ))
            .into());
        }
        let other: Option<String> = sqlx::query_scalar(
            "SELECT guid FROM services WHERE label = ? AND provider IS NULL \
             AND (service_broker_id IS NOT ? OR unique_id IS NOT ?)",
        )
        .bind(&offering.name)
        .bind(broker_id)
        .bind(offering.id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if other.is_some() {
            return Err(invalid(format!(
                "/services/{i}/name: a service named {:?} already exists in the marketplace",
                offering.name
            ))
            .into());
        }
    }

    let now = now();
    let mut kept_services = HashSet::new();
    let mut kept_plans = HashSet::new();
    for offering in &catalog.services {
        let metadata = |key: &str| {
            offering
                .metadata
                .as_ref()
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM services WHERE service_broker_id = ? AND unique_id = ?",
        )
        .bind(broker_id)
        .bind(offering.id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let tags = json!(offering.tags.clone().unwrap_or_default()).to_string();
        let requires = json!(offering.requires.clone().unwrap_or_default()).to_string();
        let service_id: i64 = match existing {
            Some(id) => {
                sqlx::query(
                    "UPDATE services SET label = ?, description = ?, long_description = ?, \
                     documentation_url = ?, active = ?, bindable = ?, extra = ?, tags = ?, \
                     requires = ?, plan_updateable = ?, instances_retrievable = ?, \
                     bindings_retrievable = ?, allow_context_updates = ?, updated_at = ? WHERE id = ?",
                )
                .bind(&offering.name)
                .bind(&offering.description)
                .bind(metadata("longDescription"))
                .bind(metadata("documentationUrl"))
                .bind(!offering.plans.is_empty())
                .bind(offering.bindable)
                .bind(json_text(&offering.metadata))
                .bind(&tags)
                .bind(&requires)
                .bind(offering.plan_updateable.unwrap_or(false))
                .bind(offering.instances_retrievable.unwrap_or(false))
                .bind(offering.bindings_retrievable.unwrap_or(false))
                .bind(offering.allow_context_updates.unwrap_or(false))
                .bind(&now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
            None => {
                changes
                    .lines
                    .push(format!("service {} added", offering.name));
                sqlx::query_scalar(
                    "INSERT INTO services (guid, label, description, long_description, \
                     documentation_url, active, bindable, unique_id, extra, tags, requires, \
                     plan_updateable, instances_retrievable, bindings_retrievable, \
                     allow_context_updates, service_broker_id, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(guid())
                .bind(&offering.name)
                .bind(&offering.description)
                .bind(metadata("longDescription"))
                .bind(metadata("documentationUrl"))
                .bind(!offering.plans.is_empty())
                .bind(offering.bindable)
                .bind(offering.id.as_str())
                .bind(json_text(&offering.metadata))
                .bind(&tags)
                .bind(&requires)
                .bind(offering.plan_updateable.unwrap_or(false))
                .bind(offering.instances_retrievable.unwrap_or(false))
                .bind(offering.bindings_retrievable.unwrap_or(false))
                .bind(offering.allow_context_updates.unwrap_or(false))
                .bind(broker_id)
                .bind(&now)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        kept_services.insert(service_id);
        for plan in &offering.plans {
            let existing: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM service_plans WHERE service_id = ? AND unique_id = ?",
            )
            .bind(service_id)
            .bind(plan.id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let query = match existing {
                Some(_) => sqlx::query_scalar(
                    "UPDATE service_plans SET name = ?, free = ?, description = ?, extra = ?, \
                     active = 1, bindable = ?, plan_updateable = ?, schemas = ?, \
                     maintenance_info = ?, maximum_polling_duration = ?, binding_rotatable = ?, \
                     updated_at = ? WHERE id = ? RETURNING id",
                ),
                None => {
                    changes.lines.push(format!(
                        "plan {} of service {} added",
                        plan.name, offering.name
                    ));
                    sqlx::query_scalar(
                        "INSERT INTO service_plans (name, free, description, extra, active, \
                         bindable, plan_updateable, schemas, maintenance_info, \
                         maximum_polling_duration, binding_rotatable, created_at, guid, \
                         service_id, unique_id, public) \
                         VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) RETURNING id",
                    )
                }
            };
            // Both statements take the common columns first, in the same order.
            let mut query = query
                .bind(&plan.name)
                .bind(plan.free.unwrap_or(true))
                .bind(&plan.description)
                .bind(json_text(&plan.metadata))
                .bind(plan.bindable)
                .bind(plan.plan_updateable)
                .bind(json_text(&plan.schemas))
                .bind(json_text(&plan.maintenance_info))
                .bind(plan.maximum_polling_duration)
                .bind(plan.binding_rotatable)
                .bind(&now);
            query = match existing {
                Some(id) => query.bind(id),
                None => query.bind(guid()).bind(service_id).bind(plan.id.as_str()),
            };
            let plan_id: i64 = query.fetch_one(&mut *tx).await?;
            kept_plans.insert(plan_id);
        }
    }

    // Plans and services of this broker that the catalog no longer lists.
    let plans: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT p.id, p.name, s.label, \
         (SELECT count(*) FROM service_instances i WHERE i.service_plan_id = p.id) \
         FROM service_plans p JOIN services s ON s.id = p.service_id \
         WHERE s.service_broker_id = ?",
    )
    .bind(broker_id)
    .fetch_all(&mut *tx)
    .await?;
    for (id, name, label, instances) in plans.into_iter().filter(|p| !kept_plans.contains(&p.0)) {
        let in_use = instances > 0;
        retire(tx, "service_plans", id, in_use, &now).await?;
        if in_use {
            changes.warnings.push(format!(
                "Plan {name} of service {label} is missing from the broker's catalog but has {instances} instance(s); it has been deactivated and will be removed when its instances are gone."
            ));
        } else {
            changes
                .lines
                .push(format!("plan {name} of service {label} removed"));
        }
    }
    let services: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT s.id, s.label, (SELECT count(*) FROM service_plans p WHERE p.service_id = s.id) \
         FROM services s WHERE s.service_broker_id = ?",
    )
    .bind(broker_id)
    .fetch_all(&mut *tx)
    .await?;
    for (id, label, plans) in services
        .into_iter()
        .filter(|s| !kept_services.contains(&s.0))
    {
        let in_use = plans > 0;
        retire(tx, "services", id, in_use, &now).await?;
        if in_use {
            changes.warnings.push(format!(
                "Service {label} is missing from the broker's catalog but its plans have instances; it has been deactivated."
            ));
        } else {
            changes.lines.push(format!("service {label} removed"));
        }
    }
    Ok(changes)
}

/// A plan or service gone from the catalog: deactivated while something still uses it,
/// deleted otherwise.
async fn retire(
    tx: &mut SqliteConnection,
    table: &str,
    id: i64,
    in_use: bool,
    now: &str,
) -> Result<()> {
    if in_use {
        sqlx::query(&format!(
            "UPDATE {table} SET active = 0, updated_at = ? WHERE id = ?"
        ))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query(&format!("DELETE FROM {table} WHERE id = ?"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
