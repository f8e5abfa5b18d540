//! The subcommands and what they share: catalog lookups, waiting, recording outcomes.

mod binding;
mod catalog;
mod inspect;
mod instance;

use std::time::Duration;

use osb_client::{CallOptions, Client, PollOutcome};
use osb_types::{
    BindingLastOperationQuery, Catalog, DeleteOutcome, FetchBindingOutcome, FetchBindingQuery,
    InstanceLastOperationQuery, LastOperationResource, Plan, Service, ServiceBindingResource,
};

use crate::cli::{Cli, Command, WaitArgs};
use crate::error::{CliError, Result, call_error, usage};
use crate::output::{duration, shell_word};
use crate::record::{BindingEntry, InstanceEntry, OpKind, OpRecord, OpState, Record, Store};
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
        Command::Check(args) => crate::check::check(&ctx, *args).await,
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
        .map_err(|e| call_error("fetching the catalog", e))
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

/// The id given with `--id`, or a fresh UUID.
pub(crate) fn id_or_fresh(given: Option<&str>) -> String {
    given.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
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

    /// `instance` or `binding`.
    pub(crate) fn noun(&self) -> &'static str {
        match self {
            Subject::Instance(_) => "instance",
            Subject::Binding(_) => "binding",
        }
    }

    /// The last operation.
    pub(crate) fn op(&self) -> &OpRecord {
        match self {
            Subject::Instance(e) => &e.last_operation,
            Subject::Binding(e) => &e.last_operation,
        }
    }

    /// Whether the offering and plan are known (polls send them as hints): not for an instance
    /// known only by its id, outside the local record.
    pub(crate) fn has_plan(&self) -> bool {
        match self {
            Subject::Instance(e) => e.has_plan(),
            Subject::Binding(_) => true,
        }
    }

    /// `provisioning "db"`, `unbinding "creds"`, …; for an instance known only by its id,
    /// `the last operation of instance "ID"`.
    pub(crate) fn label(&self, kind: OpKind) -> String {
        if !self.has_plan() {
            return format!("the last operation of instance {:?}", self.name());
        }
        let verb = match (self, kind) {
            (Subject::Instance(_), OpKind::Create) => "provisioning",
            (Subject::Instance(_), OpKind::Update) => "updating",
            (Subject::Instance(_), OpKind::Delete) => "deprovisioning",
            (Subject::Binding(_), OpKind::Create | OpKind::Update) => "binding",
            (Subject::Binding(_), OpKind::Delete) => "unbinding",
        };
        format!("{verb} {:?}", self.name())
    }

    /// The instance entry, or `fallback` for a binding.
    pub(crate) fn into_instance(self, fallback: &InstanceEntry) -> InstanceEntry {
        match self {
            Subject::Instance(e) => e,
            Subject::Binding(_) => fallback.clone(),
        }
    }

    /// The binding entry, or `fallback` for an instance.
    pub(crate) fn into_binding(self, fallback: &BindingEntry) -> BindingEntry {
        match self {
            Subject::Binding(e) => e,
            Subject::Instance(_) => fallback.clone(),
        }
    }

    /// The subject with `op` as its last operation.
    fn with_op(&self, op: OpRecord) -> Subject {
        let mut subject = self.clone();
        match &mut subject {
            Subject::Instance(e) => e.last_operation = op,
            Subject::Binding(e) => e.last_operation = op,
        }
        subject
    }
}

/// ` (operation TOKEN)` when the broker gave an operation token.
pub(crate) fn token_text(op: &OpRecord) -> String {
    op.operation
        .as_ref()
        .map(|t| format!(" (operation {t})"))
        .unwrap_or_default()
}

/// `Provisioning "db" started (operation …); follow it with: osb last-operation db --wait`.
pub(crate) fn started_sentence(subject: &Subject) -> String {
    let op = subject.op();
    let label = subject.label(op.kind);
    let mut chars = label.chars();
    let capitalized: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    format!(
        "{capitalized} started{}; follow it with: osb last-operation {} --wait",
        token_text(op),
        shell_word(subject.name())
    )
}

/// The error for a reply that is none of the outcomes osb knows for the request.
pub(crate) fn unexpected_reply(label: &str) -> CliError {
    CliError::Failed {
        message: format!("{label}: the broker's reply is not one osb understands"),
        description: None,
    }
}

/// The error for an id that is neither in the local record nor known to the broker.
pub(crate) fn unknown_instance(key: &str) -> CliError {
    CliError::Failed {
        message: format!(
            "no instance or binding named {key:?} in the local record, and the broker does not \
             know an instance with that id (404 Not Found)"
        ),
        description: None,
    }
}

/// Removes the subject's entry from the record (an instance with its bindings).
fn remove(record: &mut Record, subject: &Subject) {
    match subject {
        Subject::Instance(e) => record.remove_instance(&e.broker_url, &e.id),
        Subject::Binding(e) => record.remove_binding(&e.broker_url, &e.instance_id, &e.id),
    }
}

/// Records how an operation ended and returns the entry as it now stands: once deleted (or
/// when it is not in the record), `subject` with the final last operation.
pub(crate) fn record_end(
    store: &Store,
    subject: &Subject,
    kind: OpKind,
    state: OpState,
    description: Option<String>,
) -> Result<Subject> {
    let mut op = OpRecord::new(kind, state);
    op.description = description;
    if kind == OpKind::Delete && state == OpState::Succeeded {
        store.update(|record| {
            remove(record, subject);
            Ok(())
        })?;
        return Ok(subject.with_op(op));
    }
    record_start(store, subject, op)
}

/// Records `op` as the last operation and returns the entry as it now stands (`subject` with
/// `op` when it is not in the record). A successful update moves the instance to the plan the
/// update targeted.
pub(crate) fn record_start(store: &Store, subject: &Subject, op: OpRecord) -> Result<Subject> {
    let recorded = store.update(|record| {
        Ok(match subject {
            Subject::Instance(e) => record.instance_mut(&e.broker_url, &e.id).map(|entry| {
                let previous = std::mem::replace(&mut entry.last_operation, op.clone());
                if op.kind == OpKind::Update && op.state == OpState::Succeeded {
                    if let Some(plan) = previous.target_plan_id {
                        entry.plan_id = plan;
                    }
                    if let Some(name) = previous.target_plan_name {
                        entry.plan_name = name;
                    }
                }
                Subject::Instance(entry.clone())
            }),
            Subject::Binding(e) => record
                .binding_mut(&e.broker_url, &e.instance_id, &e.id)
                .map(|entry| {
                    entry.last_operation = op.clone();
                    Subject::Binding(entry.clone())
                }),
        })
    })?;
    Ok(recorded.unwrap_or_else(|| subject.with_op(op)))
}

/// Ends a create request (provision, bind) that failed with `error`. When the broker may have
/// created the resource anyway (`may_exist`: orphan mitigation is due), the entry stays in the
/// local record with an unknown state and the error says how to clean up; otherwise it is
/// forgotten.
pub(crate) fn create_failed<T>(
    store: &Store,
    subject: &Subject,
    error: osb_client::Error,
    may_exist: bool,
) -> Result<T> {
    let label = subject.label(OpKind::Create);
    if !may_exist {
        store.update(|record| {
            remove(record, subject);
            Ok(())
        })?;
        return Err(call_error(&label, error));
    }
    record_end(
        store,
        subject,
        OpKind::Create,
        OpState::Unknown,
        Some(format!("the reply was lost or unusable: {error}")),
    )?;
    let delete = match subject {
        Subject::Instance(_) => "deprovision",
        Subject::Binding(_) => "unbind",
    };
    Err(call_error(&label, error).with_hint(format!(
        "the broker may have created the {}; it stays in the local record, \
         `osb {delete} {}` cleans it up",
        subject.noun(),
        shell_word(subject.name())
    )))
}

/// Ends a create request (provision, bind) whose reply osb does not understand: the entry stays
/// in the local record with an unknown state.
pub(crate) fn create_unrecognised<T>(store: &Store, subject: &Subject) -> Result<T> {
    record_end(
        store,
        subject,
        OpKind::Create,
        OpState::Unknown,
        Some("unrecognised reply".into()),
    )?;
    Err(unexpected_reply(&subject.label(OpKind::Create)))
}

/// How a delete request (deprovision, unbind) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeleteResult {
    /// `200 OK`.
    Deleted,
    /// `410 Gone`: it was already deleted.
    Gone,
    /// Accepted and not waited for (`--no-wait`).
    Accepted,
    /// Accepted, waited for, and succeeded.
    Succeeded,
}

impl DeleteResult {
    /// `result` in `--json` output.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DeleteResult::Deleted => "deleted",
            DeleteResult::Gone => "gone",
            DeleteResult::Accepted => "accepted",
            DeleteResult::Succeeded => "succeeded",
        }
    }
}

/// A delete request, recorded (and waited for).
#[derive(Debug)]
pub(crate) struct DeleteEnd {
    /// How it ended.
    pub(crate) result: DeleteResult,
    /// The entry with its last operation (also once removed from the record).
    pub(crate) subject: Subject,
    /// The broker's final last-operation reply, after waiting.
    pub(crate) resource: Option<LastOperationResource>,
}

impl DeleteEnd {
    /// What to print: `done` once deleted, otherwise that it was already gone, or how to follow
    /// the running operation.
    pub(crate) fn sentence(&self, done: String) -> String {
        match self.result {
            DeleteResult::Deleted | DeleteResult::Succeeded => done,
            DeleteResult::Gone => {
                let noun = match &self.subject {
                    Subject::Instance(_) => "Instance",
                    Subject::Binding(_) => "Binding",
                };
                format!(
                    "{noun} {:?} was already gone (410 Gone); removed it from the local record",
                    self.subject.name()
                )
            }
            DeleteResult::Accepted => started_sentence(&self.subject),
        }
    }
}

/// Records the outcome of a delete request for `subject` and, unless `--no-wait`, waits for an
/// asynchronous delete to end.
pub(crate) async fn end_delete(
    store: &Store,
    client: &Client,
    subject: &Subject,
    outcome: DeleteOutcome,
    wait: &WaitArgs,
) -> Result<DeleteEnd> {
    let (result, subject, resource) = match outcome {
        DeleteOutcome::Deleted | DeleteOutcome::Gone => {
            let result = if matches!(outcome, DeleteOutcome::Gone) {
                DeleteResult::Gone
            } else {
                DeleteResult::Deleted
            };
            let subject = record_end(store, subject, OpKind::Delete, OpState::Succeeded, None)?;
            (result, subject, None)
        }
        DeleteOutcome::Accepted(accepted) => {
            let op = OpRecord::started(OpKind::Delete, accepted.operation());
            let subject = record_start(store, subject, op)?;
            if wait.no_wait {
                (DeleteResult::Accepted, subject, None)
            } else {
                let catalog = fetch_catalog(client).await.ok();
                let plan = plan_of(catalog.as_ref(), &subject);
                let ended = wait_for(store, client, &subject, plan, wait.max_wait).await?;
                (DeleteResult::Succeeded, ended.subject, ended.resource)
            }
        }
        _ => return Err(unexpected_reply(&subject.label(OpKind::Delete))),
    };
    Ok(DeleteEnd {
        result,
        subject,
        resource,
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

/// The query polling an instance's last operation: the operation token and, when known, the
/// offering and plan (before a plan change completes, the old plan).
pub(crate) fn instance_poll_query(entry: &InstanceEntry) -> InstanceLastOperationQuery {
    let mut query = InstanceLastOperationQuery::new();
    if entry.has_plan() {
        query = query
            .with_service_id(&entry.service_id)
            .with_plan_id(&entry.plan_id);
    }
    if let Some(token) = &entry.last_operation.operation {
        query = query.with_operation(token);
    }
    query
}

/// The query polling a binding's last operation: offering, plan and operation token.
pub(crate) fn binding_poll_query(entry: &BindingEntry) -> BindingLastOperationQuery {
    let mut query = BindingLastOperationQuery::new()
        .with_service_id(&entry.service_id)
        .with_plan_id(&entry.plan_id);
    if let Some(token) = &entry.last_operation.operation {
        query = query.with_operation(token);
    }
    query
}

/// Fetches a binding; `None` when the broker does not know it (or is still creating it).
pub(crate) async fn fetch_binding(
    client: &Client,
    entry: &BindingEntry,
) -> Result<Option<ServiceBindingResource>> {
    let query = FetchBindingQuery::new()
        .with_service_id(&entry.service_id)
        .with_plan_id(&entry.plan_id);
    let outcome = client
        .fetch_binding(&entry.instance_id, &entry.id, &query, &CallOptions::new())
        .await
        .map_err(|e| call_error(format!("fetching the binding {:?}", entry.name), e))?;
    Ok(match outcome {
        FetchBindingOutcome::Found(resource) => Some(resource),
        _ => None,
    })
}

/// How an operation ended after waiting for it.
#[derive(Debug)]
pub(crate) struct Ended {
    /// The entry as it now stands, with its final last operation (also once deleted).
    pub(crate) subject: Subject,
    /// The broker's final last-operation reply (`None` after `410 Gone` or `404` to a delete).
    pub(crate) resource: Option<LastOperationResource>,
}

/// Waits for the recorded operation of `subject`, records how it ended, and returns that.
pub(crate) async fn wait_for(
    store: &Store,
    client: &Client,
    subject: &Subject,
    plan: Option<&Plan>,
    max_wait: Option<Duration>,
) -> Result<Ended> {
    let op = subject.op().clone();
    let kind = op.kind;
    let label = subject.label(kind);
    let mut waiting = match subject {
        Subject::Instance(e) => {
            client.wait_for_instance_operation(&e.id, &instance_poll_query(e), kind.poll_kind())
        }
        Subject::Binding(e) => client.wait_for_binding_operation(
            &e.instance_id,
            &e.id,
            &binding_poll_query(e),
            kind.poll_kind(),
        ),
    };
    if let Some(plan) = plan {
        waiting = waiting.plan(plan);
    }
    let resume = format!("osb last-operation {} --wait", shell_word(subject.name()));
    let outcome = match wait::run(waiting, &label, max_wait).await {
        Waited::Interrupted => {
            return Err(CliError::Interrupted(format!(
                "stopped waiting: {label} is still running at the broker{}; \
                 the local record keeps it, `{resume}` resumes waiting",
                token_text(&op)
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
            let subject = record_end(store, subject, kind, OpState::Succeeded, description)?;
            Ok(Ended {
                subject,
                resource: Some(resource),
            })
        }
        // A delete that finished: `410 Gone`, or `404` (osb-client reads both as `Gone`).
        PollOutcome::Gone if kind == OpKind::Delete => {
            let subject = record_end(store, subject, kind, OpState::Succeeded, None)?;
            Ok(Ended {
                subject,
                resource: None,
            })
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
