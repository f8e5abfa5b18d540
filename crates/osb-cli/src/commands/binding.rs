//! `osb bind`, `osb unbind`, `osb credentials`.

use osb_client::{CallOptions, Cleanup, Client, OmOperation, check_bind, orphan_mitigation_for};
use osb_types::{
    ApiVersion, BindOutcome, BindQuery, BindingId, Catalog, DeleteOutcome, FetchBindingOutcome,
    FetchBindingQuery, Operation, ServiceBindingRequest, UnbindQuery,
};
use serde_json::{Map, Value, json};

use super::{Ctx, Subject, fetch_catalog, plan_of, record_end, record_start, wait_for};
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
    version.supports(ApiVersion::V2_14)
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
    let record = store.load()?;
    Ok(record
        .bindings
        .iter()
        .find(|e| {
            e.broker_url == entry.broker_url
                && e.instance_id == entry.instance_id
                && e.id == entry.id
        })
        .cloned()
        .unwrap_or_else(|| entry.clone()))
}

/// The sentence about credentials after a bind.
fn credentials_note(name: &str, credentials: Option<&Map<String, Value>>) -> String {
    match credentials {
        Some(c) if !c.is_empty() => {
            let keys: Vec<&str> = c.keys().map(String::as_str).collect();
            format!(
                "credentials: {} (show them with: osb credentials {})",
                keys.join(", "),
                shell_word(name)
            )
        }
        _ => "the broker returned no credentials".to_string(),
    }
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
    if record.name_taken(&instance.broker_url, &args.binding_name) {
        return Err(usage(format!(
            "the name {:?} is already used by an instance or binding of this broker; \
             `osb instances` and `osb bindings` list them",
            args.binding_name
        )));
    }
    let id = BindingId::new(
        args.id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    );
    if let Some(other) = record
        .bindings
        .iter()
        .find(|e| e.broker_url == instance.broker_url && e.instance_id == instance.id && e.id == id)
    {
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
    let label = subject.label(OpKind::Create);
    let mut query = BindQuery::new();
    if async_bindings(ctx.target.version()) {
        query = query.with_accepts_incomplete(true);
    }
    let result = client
        .bind(&instance.id, &id, &body, &query, &CallOptions::new())
        .await;
    let cleanup = orphan_mitigation_for(OmOperation::Bind, &result);
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
            let sentence = format!(
                "{verb} {:?} to instance {:?}, id {}\n{}",
                entry.name,
                entry.instance_name,
                entry.id,
                credentials_note(&entry.name, credentials.as_ref())
            );
            report(ctx, word, &entry, sentence, credentials.as_ref())
        }
        Ok(BindOutcome::Accepted(accepted)) => {
            let mut op = OpRecord::new(OpKind::Create, OpState::InProgress);
            op.operation = accepted.operation().cloned();
            let subject = record_start(&store, &subject, op)?;
            let entry = current(&store, &entry)?;
            if args.wait.no_wait {
                let sentence = format!(
                    "Binding {:?} started; follow it with: osb last-operation {} --wait",
                    entry.name,
                    shell_word(&entry.name)
                );
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
            let sentence = format!(
                "Created binding {:?} to instance {:?}, id {}\n{}",
                entry.name,
                entry.instance_name,
                entry.id,
                credentials_note(&entry.name, credentials.as_ref())
            );
            report(ctx, "succeeded", &entry, sentence, credentials.as_ref())
        }
        Ok(_) => {
            record_end(&store, &subject, OpKind::Create, OpState::Unknown, None)?;
            Err(CliError::Failed {
                message: format!("{label}: the broker's reply is not one osb understands"),
                description: None,
            })
        }
        Err(e) => {
            if cleanup == Cleanup::Binding {
                record_end(
                    &store,
                    &subject,
                    OpKind::Create,
                    OpState::Unknown,
                    Some(format!("the reply was lost or unusable: {e}")),
                )?;
                Err(call_error(&label, e).with_hint(format!(
                    "the broker may have created the binding; it stays in the local record, \
                     `osb unbind {}` cleans it up",
                    shell_word(&args.binding_name)
                )))
            } else {
                store.update(|record| {
                    record.remove_binding(&entry.broker_url, &entry.instance_id, &id);
                    Ok(())
                })?;
                Err(call_error(&label, e))
            }
        }
    }
}

/// Fetches a binding and returns its credentials.
async fn fetch_credentials(
    client: &Client,
    entry: &BindingEntry,
) -> Result<Option<Map<String, Value>>> {
    let query = FetchBindingQuery::new()
        .with_service_id(&entry.service_id)
        .with_plan_id(&entry.plan_id);
    let outcome = client
        .fetch_binding(&entry.instance_id, &entry.id, &query, &CallOptions::new())
        .await
        .map_err(|e| call_error(format!("fetching the binding {:?}", entry.name), e))?;
    match outcome {
        FetchBindingOutcome::Found(resource) => Ok(resource.credentials),
        _ => Err(CliError::Failed {
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
    match outcome {
        DeleteOutcome::Deleted | DeleteOutcome::Gone => {
            let gone = matches!(outcome, DeleteOutcome::Gone);
            record_end(&store, &subject, OpKind::Delete, OpState::Succeeded, None)?;
            let sentence = if gone {
                format!(
                    "Binding {:?} was already gone (410 Gone); removed it from the local record",
                    entry.name
                )
            } else {
                format!("Deleted binding {:?}", entry.name)
            };
            report(
                ctx,
                if gone { "gone" } else { "deleted" },
                &entry,
                sentence,
                None,
            )
        }
        DeleteOutcome::Accepted(accepted) => {
            let mut op = OpRecord::new(OpKind::Delete, OpState::InProgress);
            op.operation = accepted.operation().cloned();
            let subject = record_start(&store, &subject, op)?;
            let entry = current(&store, &entry)?;
            if args.wait.no_wait {
                let sentence = format!(
                    "Unbinding {:?} started; follow it with: osb last-operation {} --wait",
                    entry.name,
                    shell_word(&entry.name)
                );
                return report(ctx, "accepted", &entry, sentence, None);
            }
            let catalog = fetch_catalog(&client).await.ok();
            let plan = plan_of(catalog.as_ref(), &subject);
            wait_for(&store, &client, &subject, plan, args.wait.max_wait).await?;
            let sentence = format!("Deleted binding {:?}", entry.name);
            report(ctx, "succeeded", &entry, sentence, None)
        }
        _ => Err(CliError::Failed {
            message: format!("{label}: the broker's reply is not one osb understands"),
            description: None,
        }),
    }
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
