//! `osb provision`, `osb update`, `osb deprovision`.

use osb_client::{
    CallOptions, Cleanup, OmOperation, check_provision, check_update, orphan_mitigation_for,
};
use osb_types::{
    DeleteOutcome, DeprovisionQuery, InstanceId, LastOperationResource, MaintenanceInfo,
    ProvisionOutcome, ProvisionQuery, ServiceInstancePreviousValues,
    ServiceInstanceProvisionRequest, ServiceInstanceUpdateRequest, UpdateOutcome, UpdateQuery,
};
use serde_json::{Value, json};

use super::{
    Ctx, Subject, fetch_catalog, find_offering, find_plan, plan_of, record_end, record_start,
    wait_for,
};
use crate::cli::{DeprovisionArgs, ProvisionArgs, UpdateArgs};
use crate::error::{CliError, Result, call_error, usage};
use crate::output::{shell_word, stdout_json, stdout_text};
use crate::params;
use crate::record::{InstanceEntry, OpKind, OpRecord, OpState};

/// Prints the result of a command on an instance.
fn report(
    ctx: &Ctx,
    result: &str,
    entry: &InstanceEntry,
    sentence: String,
    extra: &[(&str, Option<Value>)],
) -> Result<()> {
    if ctx.json {
        let mut object = json!({"result": result, "instance": entry});
        for (key, value) in extra {
            if let (Some(value), Some(map)) = (value, object.as_object_mut()) {
                map.insert((*key).to_string(), value.clone());
            }
        }
        return stdout_json(&object);
    }
    let mut text = sentence;
    for (key, value) in extra {
        if let Some(Value::String(value)) = value {
            text.push_str(&format!("\n{}: {}", key.replace('_', " "), value));
        }
    }
    stdout_text(&crate::output::clean_lines(&text))
}

fn resource_json(resource: Option<&LastOperationResource>) -> Option<Value> {
    resource.and_then(|r| serde_json::to_value(r).ok())
}

/// `osb provision OFFERING PLAN NAME`.
pub(crate) async fn provision(ctx: &Ctx, args: ProvisionArgs) -> Result<()> {
    let parameters = params::parameters(&args.params)?;
    let context = params::context(args.context.as_deref())?;
    if args.name.trim().is_empty() {
        return Err(usage("the instance NAME must not be empty"));
    }
    let url = ctx.target.require_url()?;
    let store = ctx.store()?;
    let record = store.load()?;
    if record.name_taken(&url, &args.name) {
        return Err(usage(format!(
            "the name {:?} is already used by an instance or binding of this broker; \
             `osb instances` and `osb bindings` list them",
            args.name
        )));
    }
    let id = InstanceId::new(
        args.id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    );
    if let Some(other) = record
        .instances
        .iter()
        .find(|e| e.broker_url == url && e.id == id)
    {
        return Err(usage(format!(
            "the instance id {id} is already recorded as {:?}",
            other.name
        )));
    }
    let organization = args
        .organization_guid
        .clone()
        .or_else(|| record.organization_guid.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let space = args
        .space_guid
        .clone()
        .or_else(|| record.space_guid.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

    let client = ctx.target.client(&url)?;
    let catalog = fetch_catalog(&client).await?;
    let service = find_offering(&catalog, &args.offering)?;
    let plan = find_plan(service, &args.plan)?;
    let mut body =
        ServiceInstanceProvisionRequest::new(&service.id, &plan.id, &organization, &space);
    if let Some(parameters) = parameters {
        body = body.with_parameters(parameters);
    }
    if let Some(context) = context {
        body = body.with_context(context);
    }
    if let Some(info) = &plan.maintenance_info {
        body = body.with_maintenance_info(MaintenanceInfo::new(&info.version));
    }
    if !args.no_check {
        check_provision(&catalog, &body).map_err(|e| {
            call_error("the request does not fit the catalog", e)
                .with_hint("--no-check sends it anyway")
        })?;
    }

    // Record first, so an instance the broker may create is never lost, even on Ctrl-C.
    let entry = InstanceEntry {
        name: args.name.clone(),
        id: id.clone(),
        broker_url: url.clone(),
        service_id: service.id.clone(),
        service_name: service.name.clone(),
        plan_id: plan.id.clone(),
        plan_name: plan.name.clone(),
        last_operation: OpRecord::new(OpKind::Create, OpState::Unknown),
    };
    store.update(|record| {
        record.organization_guid.get_or_insert(organization.clone());
        record.space_guid.get_or_insert(space.clone());
        record.instances.push(entry.clone());
        Ok(())
    })?;
    let subject = Subject::Instance(entry.clone());
    let label = subject.label(OpKind::Create);
    let query = ProvisionQuery::new().with_accepts_incomplete(true);
    let result = client
        .provision(&id, &body, &query, &CallOptions::new())
        .await;
    let cleanup = orphan_mitigation_for(OmOperation::Provision, &result);
    let where_ = format!("{}/{}", service.name, plan.name);
    match result {
        Ok(ProvisionOutcome::Created(reply)) => {
            let entry = finish(&store, &subject)?;
            let sentence = format!(
                "Created instance {:?} ({where_}), id {}",
                entry.name, entry.id
            );
            let dashboard = reply.dashboard_url.flatten().map(Value::String);
            report(
                ctx,
                "created",
                &entry,
                sentence,
                &[("dashboard_url", dashboard)],
            )
        }
        Ok(ProvisionOutcome::AlreadyExists(reply)) => {
            let entry = finish(&store, &subject)?;
            let sentence = format!(
                "Instance {:?} already existed with these attributes ({where_}), id {}",
                entry.name, entry.id
            );
            let dashboard = reply.dashboard_url.flatten().map(Value::String);
            report(
                ctx,
                "exists",
                &entry,
                sentence,
                &[("dashboard_url", dashboard)],
            )
        }
        Ok(ProvisionOutcome::Accepted(accepted)) => {
            let mut op = OpRecord::new(OpKind::Create, OpState::InProgress);
            op.operation = accepted.operation().cloned();
            let subject = record_start(&store, &subject, op)?;
            let dashboard = accepted
                .body()
                .dashboard_url
                .clone()
                .flatten()
                .map(Value::String);
            let entry = current(&store, &entry)?;
            if args.wait.no_wait {
                let sentence = format!(
                    "Provisioning {:?} started{}; follow it with: osb last-operation {} --wait",
                    entry.name,
                    token_text(&entry),
                    shell_word(&entry.name)
                );
                return report(
                    ctx,
                    "accepted",
                    &entry,
                    sentence,
                    &[("dashboard_url", dashboard)],
                );
            }
            let resource =
                wait_for(&store, &client, &subject, Some(plan), args.wait.max_wait).await?;
            let entry = current(&store, &entry)?;
            let sentence = format!(
                "Provisioned instance {:?} ({where_}), id {}",
                entry.name, entry.id
            );
            report(
                ctx,
                "succeeded",
                &entry,
                sentence,
                &[
                    ("dashboard_url", dashboard),
                    ("last_operation", resource_json(resource.as_ref())),
                ],
            )
        }
        Ok(_) => {
            record_end(
                &store,
                &subject,
                OpKind::Create,
                OpState::Unknown,
                Some("unrecognised reply".into()),
            )?;
            Err(CliError::Failed {
                message: format!("{label}: the broker's reply is not one osb understands"),
                description: None,
            })
        }
        Err(e) => {
            if cleanup == Cleanup::Instance {
                record_end(
                    &store,
                    &subject,
                    OpKind::Create,
                    OpState::Unknown,
                    Some(format!("the reply was lost or unusable: {e}")),
                )?;
                Err(call_error(&label, e).with_hint(format!(
                    "the broker may have created the instance; it stays in the local record, \
                     `osb deprovision {}` cleans it up",
                    shell_word(&args.name)
                )))
            } else {
                store.update(|record| {
                    record.remove_instance(&url, &id);
                    Ok(())
                })?;
                Err(call_error(&label, e))
            }
        }
    }
}

/// Records a synchronous success and returns the entry.
fn finish(store: &crate::record::Store, subject: &Subject) -> Result<InstanceEntry> {
    match record_end(store, subject, OpKind::Create, OpState::Succeeded, None)? {
        Some(Subject::Instance(entry)) => Ok(entry),
        _ => match subject {
            Subject::Instance(entry) => Ok(entry.clone()),
            Subject::Binding(_) => Err(usage("not an instance")),
        },
    }
}

/// The entry as recorded now (or `entry` itself once it is gone from the record).
fn current(store: &crate::record::Store, entry: &InstanceEntry) -> Result<InstanceEntry> {
    let record = store.load()?;
    Ok(record
        .instances
        .iter()
        .find(|e| e.broker_url == entry.broker_url && e.id == entry.id)
        .cloned()
        .unwrap_or_else(|| entry.clone()))
}

/// ` (operation TOKEN)` when the broker gave a token.
fn token_text(entry: &InstanceEntry) -> String {
    entry
        .last_operation
        .operation
        .as_ref()
        .map(|t| format!(" (operation {t})"))
        .unwrap_or_default()
}

/// `osb update NAME`.
pub(crate) async fn update(ctx: &Ctx, args: UpdateArgs) -> Result<()> {
    let parameters = params::parameters(&args.params)?;
    let context = params::context(args.context.as_deref())?;
    let store = ctx.store()?;
    let entry = store.load()?.find_instance(ctx.target.url(), &args.name)?;
    let url = ctx.target.url_or(&entry.broker_url);
    let client = ctx.target.client(&url)?;
    let catalog = fetch_catalog(&client).await?;
    let service = catalog.service(&entry.service_id).ok_or_else(|| {
        usage(format!(
            "the broker's catalog no longer has the offering {} of {:?}",
            entry.service_id, entry.name
        ))
    })?;
    let target_plan = match &args.plan {
        Some(key) => Some(find_plan(service, key)?),
        None => None,
    };
    let current_plan = service.plan(&entry.plan_id);
    if parameters.is_none() && context.is_none() && !args.upgrade && target_plan.is_none() {
        return Err(usage(
            "nothing to update: pass --plan, -P/--parameters, --param, --context or --upgrade",
        ));
    }
    let mut body = ServiceInstanceUpdateRequest::new(&entry.service_id);
    let changes_plan = target_plan.filter(|p| p.id != entry.plan_id);
    if let Some(plan) = changes_plan {
        body = body.with_plan_id(&plan.id);
    }
    if let Some(parameters) = parameters {
        body = body.with_parameters(parameters);
    }
    if let Some(context) = context {
        body = body.with_context(context);
    }
    let mut previous = ServiceInstancePreviousValues::new()
        .with_service_id(&entry.service_id)
        .with_plan_id(&entry.plan_id);
    if let Some(info) = current_plan.and_then(|p| p.maintenance_info.as_ref()) {
        previous = previous.with_maintenance_info(MaintenanceInfo::new(&info.version));
    }
    body = body.with_previous_values(previous);
    if args.upgrade {
        let plan = changes_plan.or(current_plan).ok_or_else(|| {
            usage(format!(
                "--upgrade: the catalog no longer has the plan {} of {:?}",
                entry.plan_id, entry.name
            ))
        })?;
        let info = plan.maintenance_info.as_ref().ok_or_else(|| {
            usage(format!(
                "--upgrade: the plan {:?} has no maintenance_info",
                plan.name
            ))
        })?;
        body = body.with_maintenance_info(MaintenanceInfo::new(&info.version));
    }
    if !args.no_check {
        check_update(&catalog, &body, &entry.plan_id).map_err(|e| {
            call_error("the request does not fit the catalog", e)
                .with_hint("--no-check sends it anyway")
        })?;
    }
    let subject = Subject::Instance(entry.clone());
    let label = subject.label(OpKind::Update);
    let query = UpdateQuery::new().with_accepts_incomplete(true);
    let outcome = client
        .update(&entry.id, &body, &query, &CallOptions::new())
        .await
        .map_err(|e| call_error(&label, e))?;
    let mut op = OpRecord::new(OpKind::Update, OpState::InProgress);
    if let Some(plan) = changes_plan {
        op.target_plan_id = Some(plan.id.clone());
        op.target_plan_name = Some(plan.name.clone());
    }
    match outcome {
        UpdateOutcome::Updated(reply) => {
            let subject = record_start(&store, &subject, op)?;
            record_end(&store, &subject, OpKind::Update, OpState::Succeeded, None)?;
            let entry = current(&store, &entry)?;
            let dashboard = reply.dashboard_url.flatten().map(Value::String);
            let sentence = format!(
                "Updated instance {:?} ({}/{})",
                entry.name, service.name, entry.plan_name
            );
            report(
                ctx,
                "updated",
                &entry,
                sentence,
                &[("dashboard_url", dashboard)],
            )
        }
        UpdateOutcome::Accepted(accepted) => {
            op.operation = accepted.operation().cloned();
            let subject = record_start(&store, &subject, op)?;
            let entry = current(&store, &entry)?;
            if args.wait.no_wait {
                let sentence = format!(
                    "Updating {:?} started{}; follow it with: osb last-operation {} --wait",
                    entry.name,
                    token_text(&entry),
                    shell_word(&entry.name)
                );
                return report(ctx, "accepted", &entry, sentence, &[]);
            }
            let resource =
                wait_for(&store, &client, &subject, current_plan, args.wait.max_wait).await?;
            let entry = current(&store, &entry)?;
            let sentence = format!(
                "Updated instance {:?} ({}/{})",
                entry.name, service.name, entry.plan_name
            );
            report(
                ctx,
                "succeeded",
                &entry,
                sentence,
                &[("last_operation", resource_json(resource.as_ref()))],
            )
        }
        _ => Err(CliError::Failed {
            message: format!("{label}: the broker's reply is not one osb understands"),
            description: None,
        }),
    }
}

/// `osb deprovision NAME`.
pub(crate) async fn deprovision(ctx: &Ctx, args: DeprovisionArgs) -> Result<()> {
    let store = ctx.store()?;
    let record = store.load()?;
    let (entry, recorded) = match record.find_instance(ctx.target.url(), &args.name) {
        Ok(entry) => (entry, true),
        Err(missing) => match &args.plan {
            None => return Err(missing),
            Some(_) => (unrecorded(ctx, &args).await?, false),
        },
    };
    let url = ctx.target.url_or(&entry.broker_url);
    let bindings = record.bindings_of(&entry.broker_url, &entry.id);
    if !bindings.is_empty() && !args.force {
        let names: Vec<String> = bindings.iter().map(|b| format!("{:?}", b.name)).collect();
        return Err(usage(format!(
            "{:?} has bindings in the local record ({}); unbind them first, or pass --force",
            entry.name,
            names.join(", ")
        )));
    }
    let client = ctx.target.client(&url)?;
    let subject = Subject::Instance(entry.clone());
    let label = subject.label(OpKind::Delete);
    let query =
        DeprovisionQuery::new(&entry.service_id, &entry.plan_id).with_accepts_incomplete(true);
    let outcome = client
        .deprovision(&entry.id, &query, &CallOptions::new())
        .await
        .map_err(|e| call_error(&label, e))?;
    match outcome {
        DeleteOutcome::Deleted | DeleteOutcome::Gone => {
            let gone = matches!(outcome, DeleteOutcome::Gone);
            record_end(&store, &subject, OpKind::Delete, OpState::Succeeded, None)?;
            let sentence = if gone {
                format!(
                    "Instance {:?} was already gone (410 Gone); removed it from the local record",
                    entry.name
                )
            } else {
                format!("Deprovisioned instance {:?}", entry.name)
            };
            report(
                ctx,
                if gone { "gone" } else { "deleted" },
                &entry,
                sentence,
                &[],
            )
        }
        DeleteOutcome::Accepted(accepted) => {
            let mut op = OpRecord::new(OpKind::Delete, OpState::InProgress);
            op.operation = accepted.operation().cloned();
            let subject = record_start(&store, &subject, op)?;
            let Subject::Instance(entry) = &subject else {
                return Err(usage("not an instance"));
            };
            if args.wait.no_wait {
                let sentence = if recorded {
                    format!(
                        "Deprovisioning {:?} started{}; follow it with: osb last-operation {} --wait",
                        entry.name,
                        token_text(entry),
                        shell_word(&entry.name)
                    )
                } else {
                    format!("Deprovisioning {} started{}", entry.id, token_text(entry))
                };
                return report(ctx, "accepted", entry, sentence, &[]);
            }
            let catalog = fetch_catalog(&client).await.ok();
            let plan = plan_of(catalog.as_ref(), &subject);
            let resource = wait_for(&store, &client, &subject, plan, args.wait.max_wait).await?;
            let sentence = format!("Deprovisioned instance {:?}", entry.name);
            report(
                ctx,
                "succeeded",
                entry,
                sentence,
                &[("last_operation", resource_json(resource.as_ref()))],
            )
        }
        _ => Err(CliError::Failed {
            message: format!("{label}: the broker's reply is not one osb understands"),
            description: None,
        }),
    }
}

/// An instance missing from the local record, described by `--plan` (and `--offering`).
async fn unrecorded(ctx: &Ctx, args: &DeprovisionArgs) -> Result<InstanceEntry> {
    let url = ctx.target.require_url()?;
    let client = ctx.target.client(&url)?;
    let catalog = fetch_catalog(&client).await?;
    let plan_key = args.plan.as_deref().unwrap_or_default();
    let (service, plan) = match &args.offering {
        Some(offering) => {
            let service = find_offering(&catalog, offering)?;
            (service, find_plan(service, plan_key)?)
        }
        None => {
            let matches: Vec<_> = catalog
                .services
                .iter()
                .filter_map(|s| {
                    s.plan_by_name(plan_key)
                        .or(s.plan(plan_key))
                        .map(|p| (s, p))
                })
                .collect();
            match matches.as_slice() {
                [one] => *one,
                [] => {
                    return Err(usage(format!(
                        "no offering of the catalog has a plan named {plan_key:?} (or with that id)"
                    )));
                }
                _ => {
                    return Err(usage(format!(
                        "several offerings have a plan {plan_key:?}; pass --offering"
                    )));
                }
            }
        }
    };
    Ok(InstanceEntry {
        name: args.name.clone(),
        id: InstanceId::new(&args.name),
        broker_url: url,
        service_id: service.id.clone(),
        service_name: service.name.clone(),
        plan_id: plan.id.clone(),
        plan_name: plan.name.clone(),
        last_operation: OpRecord::new(OpKind::Delete, OpState::Unknown),
    })
}
