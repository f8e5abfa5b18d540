//! The subcommands and what they share: catalog lookups, waiting, recording outcomes.

mod binding;
mod catalog;
mod inspect;
mod instance;

use std::time::Duration;

use osb_client::{CallOptions, Client, PollOutcome};
use osb_types::{
    BindingLastOperationQuery, Catalog, InstanceLastOperationQuery, LastOperationResource, Plan,
    Service,
};

use crate::cli::{Cli, Command};
use crate::error::{CliError, Result, call_error, usage};
use crate::output::{duration, shell_word};
use crate::record::{BindingEntry, InstanceEntry, OpKind, OpRecord, OpState, Store};
use crate::target::Target;
use crate::wait::{self, Waited};

/// What every command gets.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The broker settings.
    pub(crate) target: Target,
    /// `--json`.
    pub(crate) json: bool,
}

impl Ctx {
    /// The local record's store.
    pub(crate) fn store(&self) -> Result<Store> {
        Store::locate()
    }
}

/// Runs the command.
pub(crate) async fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        target: Target::from_args(&cli.global)?,
        json: cli.global.json,
    };
    match cli.command {
        Command::Catalog => catalog::catalog(&ctx).await,
        Command::Lint => catalog::lint(&ctx).await,
        Command::Provision(args) => instance::provision(&ctx, args).await,
        Command::Update(args) => instance::update(&ctx, args).await,
        Command::Deprovision(args) => instance::deprovision(&ctx, args).await,
        Command::Bind(args) => binding::bind(&ctx, args).await,
        Command::Unbind(args) => binding::unbind(&ctx, args).await,
        Command::Credentials(args) => binding::credentials(&ctx, args).await,
        Command::Instances(args) => inspect::instances(&ctx, &args),
        Command::Bindings(args) => inspect::bindings(&ctx, &args),
        Command::Show(args) => inspect::show(&ctx, &args).await,
        Command::LastOperation(args) => inspect::last_operation(&ctx, &args).await,
    }
}

/// Fetches the catalog.
pub(crate) async fn fetch_catalog(client: &Client) -> Result<Catalog> {
    client
        .catalog(&CallOptions::new())
        .await
        .map_err(|e| crate::error::call_error("fetching the catalog", e))
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.map(|n| format!("{n:?}")).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The offering named `key`, or with id `key`.
pub(crate) fn find_offering<'c>(catalog: &'c Catalog, key: &str) -> Result<&'c Service> {
    catalog
        .service_by_name(key)
        .or_else(|| catalog.service(key))
        .ok_or_else(|| {
            usage(format!(
                "the broker has no offering named {key:?} (or with that id); offerings: {}",
                list(catalog.services.iter().map(|s| s.name.as_str()))
            ))
        })
}

/// The plan of `service` named `key`, or with id `key`.
pub(crate) fn find_plan<'c>(service: &'c Service, key: &str) -> Result<&'c Plan> {
    service
        .plan_by_name(key)
        .or_else(|| service.plan(key))
        .ok_or_else(|| {
            usage(format!(
                "the offering {:?} has no plan named {key:?} (or with that id); plans: {}",
                service.name,
                list(service.plans.iter().map(|p| p.name.as_str()))
            ))
        })
}

/// An instance or binding whose operation is being followed.
#[derive(Clone, Debug)]
pub(crate) enum Subject {
    /// An instance.
    Instance(InstanceEntry),
    /// A binding.
    Binding(BindingEntry),
}

impl Subject {
    /// The local name.
    pub(crate) fn name(&self) -> &str {
        match self {
            Subject::Instance(e) => &e.name,
            Subject::Binding(e) => &e.name,
        }
    }

    /// The last operation.
    pub(crate) fn op(&self) -> &OpRecord {
        match self {
            Subject::Instance(e) => &e.last_operation,
            Subject::Binding(e) => &e.last_operation,
        }
    }

    /// `provisioning "db"`, `unbinding "creds"`, …
    pub(crate) fn label(&self, kind: OpKind) -> String {
        let verb = match (self, kind) {
            (Subject::Instance(_), OpKind::Create) => "provisioning",
            (Subject::Instance(_), OpKind::Update) => "updating",
            (Subject::Instance(_), OpKind::Delete) => "deprovisioning",
            (Subject::Binding(_), OpKind::Create | OpKind::Update) => "binding",
            (Subject::Binding(_), OpKind::Delete) => "unbinding",
        };
        format!("{verb} {:?}", self.name())
    }
}

/// Records how an operation ended and returns the entry as it now stands (`None` once deleted).
pub(crate) fn record_end(
    store: &Store,
    subject: &Subject,
    kind: OpKind,
    state: OpState,
    description: Option<String>,
) -> Result<Option<Subject>> {
    let deleted = kind == OpKind::Delete && state == OpState::Succeeded;
    store.update(|record| {
        Ok(match subject {
            Subject::Instance(e) => {
                if deleted {
                    record.remove_instance(&e.broker_url, &e.id);
                    return Ok(None);
                }
                let Some(entry) = record.instance_mut(&e.broker_url, &e.id) else {
                    return Ok(None);
                };
                let previous =
                    std::mem::replace(&mut entry.last_operation, OpRecord::new(kind, state));
                if kind == OpKind::Update && state == OpState::Succeeded {
                    if let Some(plan) = previous.target_plan_id {
                        entry.plan_id = plan;
                    }
                    if let Some(name) = previous.target_plan_name {
                        entry.plan_name = name;
                    }
                }
                entry.last_operation.description = description;
                Some(Subject::Instance(entry.clone()))
            }
            Subject::Binding(e) => {
                if deleted {
                    record.remove_binding(&e.broker_url, &e.instance_id, &e.id);
                    return Ok(None);
                }
                let Some(entry) = record.binding_mut(&e.broker_url, &e.instance_id, &e.id) else {
                    return Ok(None);
                };
                entry.last_operation = OpRecord::new(kind, state);
                entry.last_operation.description = description;
                Some(Subject::Binding(entry.clone()))
            }
        })
    })
}

/// Records that an asynchronous operation started.
pub(crate) fn record_start(store: &Store, subject: &Subject, op: OpRecord) -> Result<Subject> {
    store.update(|record| {
        Ok(match subject {
            Subject::Instance(e) => match record.instance_mut(&e.broker_url, &e.id) {
                Some(entry) => {
                    entry.last_operation = op;
                    Subject::Instance(entry.clone())
                }
                None => {
                    let mut entry = e.clone();
                    entry.last_operation = op;
                    Subject::Instance(entry)
                }
            },
            Subject::Binding(e) => match record.binding_mut(&e.broker_url, &e.instance_id, &e.id) {
                Some(entry) => {
                    entry.last_operation = op;
                    Subject::Binding(entry.clone())
                }
                None => {
                    let mut entry = e.clone();
                    entry.last_operation = op;
                    Subject::Binding(entry)
                }
            },
        })
    })
}

/// The plan an entry is on, from the catalog (for its `maximum_polling_duration`).
pub(crate) fn plan_of<'c>(catalog: Option<&'c Catalog>, subject: &Subject) -> Option<&'c Plan> {
    let (service, plan) = match subject {
        Subject::Instance(e) => (&e.service_id, &e.plan_id),
        Subject::Binding(e) => (&e.service_id, &e.plan_id),
    };
    catalog.and_then(|c| c.plan(service, plan))
}

/// Waits for the recorded operation of `subject`, records how it ended, and returns the final
/// last-operation reply (`None` when the broker answered `410 Gone` or `404` to a delete).
pub(crate) async fn wait_for(
    store: &Store,
    client: &Client,
    subject: &Subject,
    plan: Option<&Plan>,
    max_wait: Option<Duration>,
) -> Result<Option<LastOperationResource>> {
    let op = subject.op().clone();
    let kind = op.kind;
    let label = subject.label(kind);
    let mut waiting = match subject {
        Subject::Instance(e) => {
            let mut query = InstanceLastOperationQuery::new();
            // An instance outside the local record has no hints.
            if !e.service_id.as_str().is_empty() && !e.plan_id.as_str().is_empty() {
                query = query
                    .with_service_id(&e.service_id)
                    .with_plan_id(&e.plan_id);
            }
            if let Some(token) = &op.operation {
                query = query.with_operation(token);
            }
            client.wait_for_instance_operation(&e.id, &query, kind.poll_kind())
        }
        Subject::Binding(e) => {
            let mut query = BindingLastOperationQuery::new()
                .with_service_id(&e.service_id)
                .with_plan_id(&e.plan_id);
            if let Some(token) = &op.operation {
                query = query.with_operation(token);
            }
            client.wait_for_binding_operation(&e.instance_id, &e.id, &query, kind.poll_kind())
        }
    };
    if let Some(plan) = plan {
        waiting = waiting.plan(plan);
    }
    let resume = format!("osb last-operation {} --wait", shell_word(subject.name()));
    let outcome = match wait::run(waiting, &label, max_wait).await {
        Waited::Interrupted => {
            let token = op
                .operation
                .as_ref()
                .map(|t| format!(" (operation {t})"))
                .unwrap_or_default();
            return Err(CliError::Interrupted(format!(
                "stopped waiting: {label} is still running at the broker{token}; \
                 the local record keeps it, `{resume}` resumes waiting"
            )));
        }
        Waited::Done(Err(e)) => {
            return Err(call_error(&label, e)
                .with_hint(format!("the operation may still be running: `{resume}`")));
        }
        Waited::Done(Ok(outcome)) => outcome,
    };
    match outcome {
        PollOutcome::Succeeded(resource) => {
            let description = resource.description.clone();
            record_end(store, subject, kind, OpState::Succeeded, description)?;
            Ok(Some(resource))
        }
        PollOutcome::Gone | PollOutcome::NotFound if kind == OpKind::Delete => {
            record_end(store, subject, kind, OpState::Succeeded, None)?;
            Ok(None)
        }
        PollOutcome::Failed(resource) => {
            let description = resource.description.clone();
            record_end(store, subject, kind, OpState::Failed, description.clone())?;
            Err(CliError::Failed {
                message: format!("{label} failed: the broker reports the operation as failed"),
                description,
            })
        }
        PollOutcome::DeadlineExceeded { last } => {
            let limit = match (max_wait, plan.and_then(|p| p.maximum_polling_duration)) {
                (Some(max), Some(plan_max))
                    if u64::try_from(plan_max).is_ok_and(|p| p < max.as_secs()) =>
                {
                    format!("the plan's maximum_polling_duration ({plan_max}s)")
                }
                (Some(max), _) => format!("--max-wait {}", duration(max)),
                (None, Some(plan_max)) => {
                    format!("the plan's maximum_polling_duration ({plan_max}s)")
                }
                (None, None) => "the polling limit".to_string(),
            };
            Err(CliError::Failed {
                message: format!(
                    "gave up {label} after {limit}; OSB counts the operation as failed, but the \
                     broker may still be working: `{resume}` keeps waiting"
                ),
                description: last.and_then(|r| r.description),
            })
        }
        other => {
            let what = match other {
                PollOutcome::NotFound => "the broker no longer knows it (404 Not Found)",
                PollOutcome::Gone => "the broker answered 410 Gone",
                _ => "the broker's answer ended polling",
            };
            record_end(
                store,
                subject,
                kind,
                OpState::Failed,
                Some(what.to_string()),
            )?;
            Err(CliError::Failed {
                message: format!("{label} failed: {what}"),
                description: None,
            })
        }
    }
}
