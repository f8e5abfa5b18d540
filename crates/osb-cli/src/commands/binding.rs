//! `osb bind`, `osb unbind`, `osb credentials`.

use osb_client::{
    CallOptions, Cleanup, Client, OrphanOperation, check_bind, orphan_mitigation_for,
};
use osb_types::{
    ApiVersion, BindOutcome, BindQuery, BindingId, Catalog, Operation, ServiceBindingRequest,
    UnbindQuery,
};
use serde_json::{Map, Value, json};

use super::{
    Ctx, Subject, create_failed, create_unrecognised, end_delete, fetch_binding, fetch_catalog,
    id_or_fresh, plan_of, record_start, started_sentence, wait_for,
};
use crate::cli::{BindArgs, CredentialsArgs, UnbindArgs};
use crate::error::{CliError, Result, call_error, usage};
use crate::output::{Table, clean_lines, plain_value, shell_word, stdout_json, stdout_text};
use crate::params;
use crate::record::{BindingEntry, OpKind, OpRecord, OpState, Store};

/// Whether `osb credentials` can fetch this binding's credentials from the broker later.
fn retrievable(client: &Client, catalog: &Catalog, entry: &BindingEntry) -> bool {
    client.supports(Operation::FetchBinding)
        && catalog
            .service(&entry.service_id)
            .is_some_and(|s| s.bindings_retrievable_or_default())
}

/// Whether bind and unbind may be asynchronous at the configured version (2.14 and later).
fn async_bindings(version: ApiVersion) -> bool {
    version.supports(osb_types::BindQuery::ACCEPTS_INCOMPLETE_SINCE)
}

/// Prints the result of a command on a binding.
fn report(
    ctx: &Ctx,
    result: &str,
    entry: &BindingEntry,
    sentence: String,
    credentials: Option<&Map<String, Value>>,
) -> Result<()> {
    if ctx.json {
        let mut object = json!({"result": result, "binding": entry.view()});
        if let (Some(credentials), Some(map)) = (credentials, object.as_object_mut()) {
            map.insert("credentials".into(), Value::Object(credentials.clone()));
        }
        return stdout_json(&object);
    }
    stdout_text(&clean_lines(&sentence))
}

/// The binding as recorded now (or `entry` itself once it is gone from the record).
fn current(store: &Store, entry: &BindingEntry) -> Result<BindingEntry> {
    Ok(store
        .load()?
        .binding(&entry.broker_url, &entry.instance_id, &entry.id)
        .cloned()
        .unwrap_or_else(|| entry.clone()))
}

/// What a bind reports: `{verb} "NAME" to instance "INSTANCE", id ID` and a line naming the
/// credential keys (never their values).
fn bound_sentence(
    verb: &str,
    entry: &BindingEntry,
    credentials: Option<&Map<String, Value>>,
) -> String {
    let note = match credentials {
        Some(c) if !c.is_empty() => {
            let keys: Vec<&str> = c.keys().map(String::as_str).collect();
            format!(
                "credentials: {} (show them with: osb credentials {})",
                keys.join(", "),
                shell_word(&entry.name)
            )
        }
        _ => "the broker returned no credentials".to_string(),
    };
    format!(
        "{verb} {:?} to instance {:?}, id {}\n{note}",
        entry.name, entry.instance_name, entry.id
    )
}

/// `osb bind NAME BINDING_NAME`.
pub(crate) async fn bind(ctx: &Ctx, args: BindArgs) -> Result<()> {
    let parameters = params::parameters(&args.params)?;
    let context = params::context(args.context.as_deref())?;
    if args.binding_name.trim().is_empty() {
        return Err(usage("the BINDING_NAME must not be empty"));
    }
    let store = ctx.store()?;
    let record = store.load()?;
    let instance = record.find_instance(ctx.target.url(), &args.name)?;
    let url = ctx.target.url_or(&instance.broker_url);
    record.check_name_free(&instance.broker_url, &args.binding_name)?;
    let id = BindingId::new(id_or_fresh(args.id.as_deref()));
    if let Some(other) = record.binding(&instance.broker_url, &instance.id, &id) {
        return Err(usage(format!(
            "the binding id {id} is already recorded as {:?}",
            other.name
        )));
    }
    let client = ctx.target.client(&url)?;
    let catalog = fetch_catalog(&client).await?;
    let mut body = ServiceBindingRequest::new(&instance.service_id, &instance.plan_id);
    if let Some(parameters) = parameters {
        body = body.with_parameters(parameters);
    }
    if let Some(context) = context {
        body = body.with_context(context);
    }
    if !args.no_check {
        check_bind(&catalog, &body).map_err(|e| {
            call_error("the request does not fit the catalog", e)
                .with_hint("--no-check sends it anyway")
        })?;
    }
    let entry = BindingEntry {
        name: args.binding_name.clone(),
        id: id.clone(),
        broker_url: instance.broker_url.clone(),
        instance_id: instance.id.clone(),
        instance_name: instance.name.clone(),
        service_id: instance.service_id.clone(),
        plan_id: instance.plan_id.clone(),
        last_operation: OpRecord::new(OpKind::Create, OpState::Unknown),
        credentials: None,
    };
    let keep_credentials = !retrievable(&client, &catalog, &entry);
    // Record first, so a binding the broker may create is never lost, even on Ctrl-C.
    store.update(|record| {
        record.bindings.push(entry.clone());
        Ok(())
    })?;
    let subject = Subject::Binding(entry.clone());
    let mut query = BindQuery::new();
    if async_bindings(ctx.target.version()) {
        query = query.with_accepts_incomplete(true);
    }
    let result = client
        .bind(&instance.id, &id, &body, &query, &CallOptions::new())
        .await;
    let cleanup = orphan_mitigation_for(OrphanOperation::Bind, &result);
    match result {
        Ok(outcome @ (BindOutcome::Created(_) | BindOutcome::AlreadyExists(_))) => {
            let (word, reply) = match outcome {
                BindOutcome::Created(reply) => ("created", reply),
                BindOutcome::AlreadyExists(reply) => ("exists", reply),
                _ => return Err(usage("unexpected bind outcome")),
            };
            let credentials = reply.credentials;
            store.update(|record| {
                if let Some(e) = record.binding_mut(&entry.broker_url, &entry.instance_id, &id) {
                    e.last_operation = OpRecord::new(OpKind::Create, OpState::Succeeded);
                    if keep_credentials {
                        e.credentials.clone_from(&credentials);
                    }
                }
                Ok(())
            })?;
            let entry = current(&store, &entry)?;
            let verb = if word == "created" {
                "Created binding"
            } else {
                "Binding already existed:"
            };
            let sentence = bound_sentence(verb, &entry, credentials.as_ref());
            report(ctx, word, &entry, sentence, credentials.as_ref())
        }
        Ok(BindOutcome::Accepted(accepted)) => {
            let op = OpRecord::started(OpKind::Create, accepted.operation());
            let subject = record_start(&store, &subject, op)?;
            let entry = subject.clone().into_binding(&entry);
            if args.wait.no_wait {
                let sentence = started_sentence(&subject);
                return report(ctx, "accepted", &entry, sentence, None);
            }
            let plan = plan_of(Some(&catalog), &subject);
            wait_for(&store, &client, &subject, plan, args.wait.max_wait).await?;
            // An asynchronous binding's credentials come from fetching it.
            let credentials = if client.supports(Operation::FetchBinding) {
                fetch_credentials(&client, &entry).await?
            } else {
                None
            };
            if keep_credentials && credentials.is_some() {
                store.update(|record| {
                    if let Some(e) = record.binding_mut(&entry.broker_url, &entry.instance_id, &id)
                    {
                        e.credentials.clone_from(&credentials);
                    }
                    Ok(())
                })?;
            }
            let entry = current(&store, &entry)?;
            let sentence = bound_sentence("Created binding", &entry, credentials.as_ref());
            report(ctx, "succeeded", &entry, sentence, credentials.as_ref())
        }
        Ok(_) => create_unrecognised(&store, &subject),
        Err(e) => create_failed(&store, &subject, e, cleanup == Cleanup::Binding),
    }
}

/// Fetches a binding and returns its credentials.
async fn fetch_credentials(
    client: &Client,
    entry: &BindingEntry,
) -> Result<Option<Map<String, Value>>> {
    match fetch_binding(client, entry).await? {
        Some(resource) => Ok(resource.credentials),
        None => Err(CliError::Failed {
            message: format!(
                "fetching the binding {:?}: the broker does not know it (404 Not Found)",
                entry.name
            ),
            description: None,
        }),
    }
}

/// `osb unbind BINDING_NAME`.
pub(crate) async fn unbind(ctx: &Ctx, args: UnbindArgs) -> Result<()> {
    let store = ctx.store()?;
    let entry = store
        .load()?
        .find_binding(ctx.target.url(), &args.binding_name)?;
    let url = ctx.target.url_or(&entry.broker_url);
    let client = ctx.target.client(&url)?;
    let subject = Subject::Binding(entry.clone());
    let label = subject.label(OpKind::Delete);
    let mut query = UnbindQuery::new(&entry.service_id, &entry.plan_id);
    if async_bindings(ctx.target.version()) {
        query = query.with_accepts_incomplete(true);
    }
    let outcome = client
        .unbind(&entry.instance_id, &entry.id, &query, &CallOptions::new())
        .await
        .map_err(|e| call_error(&label, e))?;
    let end = end_delete(&store, &client, &subject, outcome, &args.wait).await?;
    let sentence = end.sentence(format!("Deleted binding {:?}", entry.name));
    report(
        ctx,
        end.result.as_str(),
        &end.subject.into_binding(&entry),
        sentence,
        None,
    )
}

/// Looks up `--attribute`: a top-level key, or a JSON pointer starting with `/`.
fn attribute(credentials: &Map<String, Value>, key: &str) -> Option<Value> {
    if key.starts_with('/') {
        Value::Object(credentials.clone()).pointer(key).cloned()
    } else {
        credentials.get(key).cloned()
    }
}

/// `osb credentials BINDING_NAME`.
pub(crate) async fn credentials(ctx: &Ctx, args: CredentialsArgs) -> Result<()> {
    let store = ctx.store()?;
    let entry = store
        .load()?
        .find_binding(ctx.target.url(), &args.binding_name)?;
    let credentials = match &entry.credentials {
        Some(stored) => stored.clone(),
        None => {
            let url = ctx.target.url_or(&entry.broker_url);
            let client = ctx.target.client(&url)?;
            if !client.supports(Operation::FetchBinding) {
                return Err(usage(format!(
                    "the local record has no credentials for {:?}, and OSB {} cannot fetch \
                     bindings (2.14 and later can)",
                    entry.name,
                    client.api_version()
                )));
            }
            let catalog = fetch_catalog(&client).await?;
            if !retrievable(&client, &catalog, &entry) {
                return Err(usage(format!(
                    "the local record has no credentials for {:?}, and the offering does not \
                     allow fetching bindings (bindings_retrievable)",
                    entry.name
                )));
            }
            fetch_credentials(&client, &entry)
                .await?
                .unwrap_or_default()
        }
    };
    if let Some(key) = &args.attribute {
        let value = attribute(&credentials, key).ok_or_else(|| {
            let keys: Vec<&str> = credentials.keys().map(String::as_str).collect();
            usage(format!(
                "the credentials of {:?} have no attribute {key:?}; attributes: {}",
                entry.name,
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                }
            ))
        })?;
        return if ctx.json {
            stdout_json(&value)
        } else {
            stdout_text(&plain_value(&value))
        };
    }
    if ctx.json {
        return stdout_json(&credentials);
    }
    if credentials.is_empty() {
        return stdout_text(&format!("The binding {:?} has no credentials.", entry.name));
    }
    let mut table = Table::new(&["KEY", "VALUE"]);
    for (key, value) in &credentials {
        table.row(vec![key.clone(), plain_value(value)]);
    }
    stdout_text(&table.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_by_key_or_pointer() {
        let Value::Object(c) = json!({"uri": "x://y", "db": {"a/b": 1, "n": [10, 20]}}) else {
            unreachable!()
        };
        assert_eq!(attribute(&c, "uri"), Some(json!("x://y")));
        assert_eq!(attribute(&c, "/uri"), Some(json!("x://y")));
        assert_eq!(attribute(&c, "/db/a~1b"), Some(json!(1)));
        assert_eq!(attribute(&c, "/db/n/1"), Some(json!(20)));
        assert_eq!(attribute(&c, "/db/none"), None);
        assert_eq!(attribute(&c, "nope"), None);
        assert_eq!(attribute(&c, "/"), None);
    }
}
