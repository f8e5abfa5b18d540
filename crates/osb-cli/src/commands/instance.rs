//! `osb provision`, `osb update`, `osb deprovision`.

use osb_client::{
    CallOptions, Cleanup, OrphanOperation, check_provision, check_update, orphan_mitigation_for,
};
use osb_types::{
    DeprovisionQuery, InstanceId, LastOperationResource, MaintenanceInfo, ProvisionOutcome,
    ProvisionQuery, ServiceInstancePreviousValues, ServiceInstanceProvisionRequest,
    ServiceInstanceUpdateRequest, UpdateOutcome, UpdateQuery,
};
use serde_json::{Value, json};

use super::{
    Ctx, DeleteResult, Subject, create_failed, create_unrecognised, end_delete, fetch_catalog,
    find_offering, find_plan, id_or_fresh, record_end, record_start, started_sentence, token_text,
    unexpected_reply, wait_for,
};
use crate::cli::{DeprovisionArgs, ProvisionArgs, UpdateArgs};
use crate::error::{Result, call_error, usage};
use crate::output::{stdout_json, stdout_text};
use crate::params;
use crate::record::{InstanceEntry, OpKind, OpRecord, OpState, Store};

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
    record.check_name_free(&url, &args.name)?;
    let id = InstanceId::new(id_or_fresh(args.id.as_deref()));
    if let Some(other) = record.instance(&url, &id) {
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
    let query = ProvisionQuery::new().with_accepts_incomplete(true);
    let result = client
        .provision(&id, &body, &query, &CallOptions::new())
        .await;
    let cleanup = orphan_mitigation_for(OrphanOperation::Provision, &result);
    let where_ = format!("{}/{}", service.name, plan.name);
    match result {
        Ok(ProvisionOutcome::Created(reply)) => {
            let entry = finish(&store, &subject, &entry)?;
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
            let entry = finish(&store, &subject, &entry)?;
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
            let op = OpRecord::started(OpKind::Create, accepted.operation());
            let subject = record_start(&store, &subject, op)?;
            let dashboard = accepted
                .body()
                .dashboard_url
                .clone()
                .flatten()
                .map(Value::String);
            if args.wait.no_wait {
                let sentence = started_sentence(&subject);
                let entry = subject.into_instance(&entry);
                return report(
                    ctx,
                    "accepted",
                    &entry,
                    sentence,
                    &[("dashboard_url", dashboard)],
                );
            }
            let ended = wait_for(&store, &client, &subject, Some(plan), args.wait.max_wait).await?;
            let resource = ended.resource;
            let entry = ended.subject.into_instance(&entry);
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
        Ok(_) => create_unrecognised(&store, &subject),
        Err(e) => create_failed(&store, &subject, e, cleanup == Cleanup::Instance),
    }
}

/// Records a synchronous create as succeeded and returns the entry.
fn finish(store: &Store, subject: &Subject, entry: &InstanceEntry) -> Result<InstanceEntry> {
    Ok(record_end(store, subject, OpKind::Create, OpState::Succeeded, None)?.into_instance(entry))
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
    let changes_plan = target_plan.filter(|p| p.id != entry.plan_id);
    if parameters.is_none() && context.is_none() && !args.upgrade && changes_plan.is_none() {
        if let Some(plan) = target_plan {
            let sentence = format!(
                "Instance {:?} is already on plan {:?}; nothing to update",
                entry.name, plan.name
            );
            return report(ctx, "unchanged", &entry, sentence, &[]);
        }
        return Err(usage(
            "nothing to update: pass --plan, -P/--parameters, --param, --context or --upgrade",
        ));
    }
    let mut body = ServiceInstanceUpdateRequest::new(&entry.service_id);
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
            let entry = record_end(&store, &subject, OpKind::Update, OpState::Succeeded, None)?
                .into_instance(&entry);
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
            if args.wait.no_wait {
                let sentence = started_sentence(&subject);
                let entry = subject.into_instance(&entry);
                return report(ctx, "accepted", &entry, sentence, &[]);
            }
            let ended =
                wait_for(&store, &client, &subject, current_plan, args.wait.max_wait).await?;
            let resource = ended.resource;
            let entry = ended.subject.into_instance(&entry);
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
        _ => Err(unexpected_reply(&label)),
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
    let end = end_delete(&store, &client, &subject, outcome, &args.wait).await?;
    // An instance outside the local record has no name to follow it by, nor an entry to remove.
    let sentence = match end.result {
        DeleteResult::Accepted if !recorded => format!(
            "Deprovisioning {} started{}",
            entry.id,
            token_text(end.subject.op())
        ),
        DeleteResult::Gone if !recorded => {
            format!("Instance {} was already gone (410 Gone)", entry.id)
        }
        _ => end.sentence(format!("Deprovisioned instance {:?}", entry.name)),
    };
    report(
        ctx,
        end.result.as_str(),
        &end.subject.into_instance(&entry),
        sentence,
        &[("last_operation", resource_json(end.resource.as_ref()))],
    )
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
