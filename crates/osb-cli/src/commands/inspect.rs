//! `osb instances`, `osb bindings`, `osb show`, `osb last-operation`.

use osb_client::{CallOptions, Client};
use osb_types::{
    FetchInstanceOutcome, FetchInstanceQuery, InstanceId, LastOperationOutcome, LastOperationState,
    Operation, RetryAfter,
};
use serde_json::{Map, Value, json};

use super::{
    Ctx, Subject, binding_poll_query, fetch_binding, fetch_catalog, instance_poll_query, plan_of,
    record_end, unknown_instance, wait_for,
};
use crate::cli::{LastOperationArgs, ListArgs, ShowArgs};
use crate::error::{Result, call_error, usage};
use crate::output::{Table, duration, key_values, stdout_json, stdout_text};
use crate::record::{BindingEntry, Found, InstanceEntry, OpKind, OpRecord, OpState};

/// Whether entries of `broker_url` are listed.
fn listed(ctx: &Ctx, args: &ListArgs, broker_url: &str) -> bool {
    args.all || ctx.target.url().is_none_or(|url| url == broker_url)
}

/// Prints the table of `osb instances` or `osb bindings` (`empty` when there are no rows). The
/// last cell of each row is the broker URL, shown as a BROKER column only when the entries of
/// every broker are listed.
fn print_listing(
    ctx: &Ctx,
    args: &ListArgs,
    header: &[&str],
    rows: Vec<Vec<String>>,
    empty: &str,
) -> Result<()> {
    if rows.is_empty() {
        return stdout_text(empty);
    }
    let mut header = header.to_vec();
    if args.all || ctx.target.url().is_none() {
        header.push("BROKER");
    }
    let mut table = Table::new(&header);
    for row in rows {
        table.row(row);
    }
    stdout_text(&table.render())
}

/// `osb instances`.
pub(crate) fn instances(ctx: &Ctx, args: &ListArgs) -> Result<()> {
    let record = ctx.store()?.load()?;
    let entries: Vec<&InstanceEntry> = record
        .instances
        .iter()
        .filter(|e| listed(ctx, args, &e.broker_url))
        .collect();
    if ctx.json {
        return stdout_json(&entries);
    }
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                e.name.clone(),
                e.service_name.clone(),
                e.plan_name.clone(),
                e.last_operation.summary(),
                e.id.to_string(),
                e.broker_url.clone(),
            ]
        })
        .collect();
    print_listing(
        ctx,
        args,
        &["NAME", "OFFERING", "PLAN", "LAST OPERATION", "ID"],
        rows,
        "No instances in the local record.",
    )
}

/// `osb bindings`.
pub(crate) fn bindings(ctx: &Ctx, args: &ListArgs) -> Result<()> {
    let record = ctx.store()?.load()?;
    let entries: Vec<&BindingEntry> = record
        .bindings
        .iter()
        .filter(|e| listed(ctx, args, &e.broker_url))
        .collect();
    if ctx.json {
        let views: Vec<_> = entries.iter().map(|e| e.view()).collect();
        return stdout_json(&views);
    }
    let rows = entries
        .iter()
        .map(|e| {
            let credentials = if e.credentials.is_some() {
                "stored"
            } else {
                "from broker"
            };
            vec![
                e.name.clone(),
                e.instance_name.clone(),
                e.last_operation.summary(),
                credentials.to_string(),
                e.id.to_string(),
                e.broker_url.clone(),
            ]
        })
        .collect();
    print_listing(
        ctx,
        args,
        &["NAME", "INSTANCE", "LAST OPERATION", "CREDENTIALS", "ID"],
        rows,
        "No bindings in the local record.",
    )
}

/// A JSON value on one line, or `-`.
fn compact(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn to_value(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// `osb show NAME|BINDING_NAME`.
pub(crate) async fn show(ctx: &Ctx, args: &ShowArgs) -> Result<()> {
    let store = ctx.store()?;
    let found = store.load()?.find_any(ctx.target.url(), &args.name)?;
    match found {
        Some(Found::Instance(entry)) => show_instance(ctx, Some(&entry), &entry.id.clone()).await,
        Some(Found::Binding(entry)) => show_binding(ctx, &entry).await,
        None => {
            if ctx.target.url().is_none() {
                return Err(usage(format!(
                    "no instance or binding named {:?} in the local record (set OSB_BROKER_URL \
                     to fetch an instance by id)",
                    args.name
                )));
            }
            show_instance(ctx, None, &InstanceId::new(&args.name)).await
        }
    }
}

async fn show_instance(ctx: &Ctx, entry: Option<&InstanceEntry>, id: &InstanceId) -> Result<()> {
    let url = match entry {
        Some(e) => ctx.target.url_or(&e.broker_url),
        None => ctx.target.require_url()?,
    };
    let client = ctx.target.client(&url)?;
    let mut note = None;
    let mut broker = None;
    let supported = match entry {
        Some(e) if client.supports(Operation::FetchInstance) => {
            let catalog = fetch_catalog(&client).await?;
            let service = catalog.service(&e.service_id);
            if service.is_some_and(|s| s.instances_retrievable_or_default()) {
                true
            } else {
                note =
                    Some("the offering does not allow fetching instances (instances_retrievable)");
                false
            }
        }
        Some(_) => {
            note = Some("OSB versions before 2.14 cannot fetch instances");
            false
        }
        None => true,
    };
    if supported {
        let mut query = FetchInstanceQuery::new();
        if let Some(e) = entry {
            query = query
                .with_service_id(&e.service_id)
                .with_plan_id(&e.plan_id);
        }
        let what = match entry {
            Some(e) => format!("fetching the instance {:?}", e.name),
            None => format!("fetching the instance {id}"),
        };
        let outcome = client
            .fetch_instance(id, &query, &CallOptions::new())
            .await
            .map_err(|e| call_error(&what, e))?;
        match outcome {
            FetchInstanceOutcome::Found(resource) => broker = Some(resource),
            _ if entry.is_none() => return Err(unknown_instance(id.as_str())),
            _ => note = Some("the broker does not know it, or it is still being created (404)"),
        }
    }
    if ctx.json {
        return stdout_json(&json!({
            "instance": entry,
            "broker": broker.as_ref().map(to_value),
            "note": note,
        }));
    }
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(e) = entry {
        pairs.extend([
            ("name", e.name.clone()),
            ("id", e.id.to_string()),
            ("broker", e.broker_url.clone()),
            ("offering", format!("{} ({})", e.service_name, e.service_id)),
            ("plan", format!("{} ({})", e.plan_name, e.plan_id)),
            ("last operation", e.last_operation.summary()),
        ]);
    } else {
        pairs.push(("id", id.to_string()));
    }
    if let Some(r) = &broker {
        if entry.is_none() {
            pairs.push((
                "offering id",
                compact(r.service_id.as_ref().map(to_value).as_ref()),
            ));
            pairs.push((
                "plan id",
                compact(r.plan_id.as_ref().map(to_value).as_ref()),
            ));
        } else if r
            .plan_id
            .as_ref()
            .is_some_and(|p| Some(p) != entry.map(|e| &e.plan_id))
        {
            pairs.push((
                "broker's plan",
                compact(r.plan_id.as_ref().map(to_value).as_ref()),
            ));
        }
        pairs.push((
            "dashboard",
            r.dashboard_url.clone().unwrap_or_else(|| "-".into()),
        ));
        pairs.push((
            "parameters",
            compact(r.parameters.clone().map(Value::Object).as_ref()),
        ));
        pairs.push((
            "maintenance",
            r.maintenance_info
                .as_ref()
                .map_or_else(|| "-".to_string(), |m| m.version.clone()),
        ));
        if let Some(metadata) = &r.metadata {
            pairs.push(("metadata", to_value(metadata).to_string()));
        }
    }
    if let Some(note) = note {
        pairs.push(("note", note.to_string()));
    }
    stdout_text(&key_values(&pairs))
}

/// Credential keys with their values hidden.
fn masked(credentials: Option<&Map<String, Value>>) -> String {
    match credentials {
        Some(c) if !c.is_empty() => {
            let keys: Vec<&str> = c.keys().map(String::as_str).collect();
            keys.join(", ")
        }
        _ => "-".to_string(),
    }
}

async fn show_binding(ctx: &Ctx, entry: &BindingEntry) -> Result<()> {
    let url = ctx.target.url_or(&entry.broker_url);
    let client = ctx.target.client(&url)?;
    let mut note = None;
    let mut broker = None;
    if client.supports(Operation::FetchBinding) {
        let catalog = fetch_catalog(&client).await?;
        let retrievable = catalog
            .service(&entry.service_id)
            .is_some_and(|s| s.bindings_retrievable_or_default());
        if retrievable {
            broker = fetch_binding(&client, entry).await?;
            if broker.is_none() {
                note = Some("the broker does not know it, or it is still being created (404)");
            }
        } else {
            note = Some("the offering does not allow fetching bindings (bindings_retrievable)");
        }
    } else {
        note = Some("OSB versions before 2.14 cannot fetch bindings");
    }
    if ctx.json {
        return stdout_json(&json!({
            "binding": entry.view(),
            "broker": broker.as_ref().map(to_value),
            "note": note,
        }));
    }
    let credentials = broker
        .as_ref()
        .and_then(|r| r.credentials.as_ref())
        .or(entry.credentials.as_ref());
    let mut pairs: Vec<(&str, String)> = vec![
        ("name", entry.name.clone()),
        ("id", entry.id.to_string()),
        ("broker", entry.broker_url.clone()),
        (
            "instance",
            format!("{} ({})", entry.instance_name, entry.instance_id),
        ),
        ("last operation", entry.last_operation.summary()),
        (
            "credentials",
            format!(
                "{} ({})",
                masked(credentials),
                if entry.credentials.is_some() {
                    "stored in the local record"
                } else {
                    "from the broker"
                }
            ),
        ),
    ];
    if let Some(r) = &broker {
        pairs.push((
            "parameters",
            compact(r.parameters.clone().map(Value::Object).as_ref()),
        ));
        if let Some(url) = &r.syslog_drain_url {
            pairs.push(("syslog drain", url.clone()));
        }
        if let Some(url) = &r.route_service_url {
            pairs.push(("route service", url.clone()));
        }
        if let Some(endpoints) = &r.endpoints {
            pairs.push(("endpoints", to_value(endpoints).to_string()));
        }
        if let Some(mounts) = &r.volume_mounts {
            pairs.push(("volume mounts", to_value(mounts).to_string()));
        }
        if let Some(metadata) = &r.metadata {
            pairs.push(("metadata", to_value(metadata).to_string()));
        }
    }
    if let Some(note) = note {
        pairs.push(("note", note.to_string()));
    }
    stdout_text(&key_values(&pairs))
}

/// `osb last-operation NAME|BINDING_NAME`.
pub(crate) async fn last_operation(ctx: &Ctx, args: &LastOperationArgs) -> Result<()> {
    let store = ctx.store()?;
    let found = store.load()?.find_any(ctx.target.url(), &args.name)?;
    let subject = match found {
        Some(Found::Instance(e)) => Subject::Instance(e),
        Some(Found::Binding(e)) => Subject::Binding(e),
        None => {
            // An instance outside the local record: poll without hints.
            let url = ctx.target.require_url().map_err(|_| {
                usage(format!(
                    "no instance or binding named {:?} in the local record (set \
                     OSB_BROKER_URL to poll an instance by id)",
                    args.name
                ))
            })?;
            Subject::Instance(InstanceEntry {
                name: args.name.clone(),
                id: InstanceId::new(&args.name),
                broker_url: url,
                service_id: Default::default(),
                service_name: String::new(),
                plan_id: Default::default(),
                plan_name: String::new(),
                last_operation: OpRecord::new(OpKind::Delete, OpState::Unknown),
            })
        }
    };
    let broker_url = match &subject {
        Subject::Instance(e) => &e.broker_url,
        Subject::Binding(e) => &e.broker_url,
    };
    let client = ctx.target.client(&ctx.target.url_or(broker_url))?;
    if args.wait {
        return wait_again(ctx, &client, &subject, args).await;
    }
    poll_once(ctx, &client, &subject).await
}

async fn wait_again(
    ctx: &Ctx,
    client: &Client,
    subject: &Subject,
    args: &LastOperationArgs,
) -> Result<()> {
    let store = ctx.store()?;
    // An id outside the local record is followed as a delete (so `410 Gone` ends the wait), but
    // a broker that has never heard of it (`404`) must not read as a finished delete.
    if let Subject::Instance(e) = subject
        && !e.has_plan()
    {
        let label = format!("polling the last operation of {:?}", subject.name());
        let first = client
            .instance_last_operation(&e.id, &instance_poll_query(e), &CallOptions::new())
            .await
            .map_err(|err| call_error(&label, err))?;
        if first == LastOperationOutcome::NotFound {
            return Err(unknown_instance(subject.name()));
        }
    }
    let catalog = fetch_catalog(client).await.ok();
    let plan = plan_of(catalog.as_ref(), subject);
    let resource = wait_for(&store, client, subject, plan, args.max_wait)
        .await?
        .resource;
    let kind = subject.has_plan().then_some(subject.op().kind);
    let state = match &resource {
        Some(r) => r.state.as_str().to_string(),
        None => "gone".to_string(),
    };
    let description = resource.as_ref().and_then(|r| r.description.clone());
    print_state(ctx, subject, kind, &state, description.as_deref(), None)
}

async fn poll_once(ctx: &Ctx, client: &Client, subject: &Subject) -> Result<()> {
    let op = subject.op().clone();
    // An instance outside the local record has no operation of its own to follow.
    let recorded = subject.has_plan();
    let label = format!("polling the last operation of {:?}", subject.name());
    let outcome = match subject {
        Subject::Instance(e) => {
            client
                .instance_last_operation(&e.id, &instance_poll_query(e), &CallOptions::new())
                .await
        }
        Subject::Binding(e) => {
            client
                .binding_last_operation(
                    &e.instance_id,
                    &e.id,
                    &binding_poll_query(e),
                    &CallOptions::new(),
                )
                .await
        }
    }
    .map_err(|e| call_error(&label, e))?;
    let pending = matches!(op.state, OpState::InProgress | OpState::Unknown);
    let store = ctx.store()?;
    match outcome {
        LastOperationOutcome::State(last) => {
            let resource = last.resource;
            let description = resource.description.clone();
            if recorded && pending {
                let state = match resource.state {
                    LastOperationState::Succeeded => Some(OpState::Succeeded),
                    LastOperationState::Failed => Some(OpState::Failed),
                    _ => None,
                };
                if let Some(state) = state {
                    record_end(&store, subject, op.kind, state, description.clone())?;
                }
            }
            print_state(
                ctx,
                subject,
                recorded.then_some(op.kind),
                resource.state.as_str(),
                description.as_deref(),
                last.retry_after.as_ref(),
            )
        }
        LastOperationOutcome::Gone => {
            if recorded && pending && op.kind == OpKind::Delete {
                record_end(&store, subject, op.kind, OpState::Succeeded, None)?;
            }
            let kind = recorded.then_some(op.kind);
            print_state(ctx, subject, kind, "gone", Some("410 Gone"), None)
        }
        _ if !recorded => Err(unknown_instance(subject.name())),
        _ => print_state(
            ctx,
            subject,
            Some(op.kind),
            "not found",
            Some("404 Not Found"),
            None,
        ),
    }
}

/// Prints a last-operation state; `kind` is `None` for an instance outside the local record.
fn print_state(
    ctx: &Ctx,
    subject: &Subject,
    kind: Option<OpKind>,
    state: &str,
    description: Option<&str>,
    retry_after: Option<&RetryAfter>,
) -> Result<()> {
    let what = subject.noun();
    let id = match subject {
        Subject::Instance(e) => e.id.to_string(),
        Subject::Binding(e) => e.id.to_string(),
    };
    let retry = retry_after.map(|r| r.delay_from(std::time::SystemTime::now()));
    if ctx.json {
        return stdout_json(&json!({
            "name": subject.name(),
            "id": id,
            "type": what,
            "operation": kind.map(OpKind::as_str),
            "state": state,
            "description": description,
            "retry_after_seconds": retry.map(|d| d.as_secs()),
        }));
    }
    let mut pairs = vec![(what, subject.name().to_string()), ("id", id)];
    if let Some(kind) = kind {
        pairs.push(("operation", kind.as_str().to_string()));
    }
    pairs.push(("state", state.to_string()));
    if let Some(description) = description {
        pairs.push(("description", description.to_string()));
    }
    if let Some(retry) = retry {
        pairs.push(("poll again in", duration(retry)));
    }
    stdout_text(&key_values(&pairs))
}
