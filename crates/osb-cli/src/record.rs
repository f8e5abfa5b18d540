//! The local record of what `osb` created: instances, bindings, their ids and last operation.
//!
//! One JSON file, `state.json`, in `OSB_HOME` or the platform's state directory
//! (`dirs::state_dir()`, falling back to `dirs::data_local_dir()`), under `osb/`. It is replaced
//! atomically (written to a temporary file in the same directory, then renamed) and created with
//! mode 0600 in a 0700 directory, because it may hold binding credentials.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use osb_types::{BindingId, InstanceId, OperationId, PlanId, ServiceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{CliError, Result, usage};

/// The record format written by this version.
const FORMAT: u32 = 1;
/// The record's file name.
const FILE: &str = "state.json";
/// The advisory lock that serialises changes to the record.
const LOCK_FILE: &str = "state.lock";

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OpKind {
    /// Provision or bind.
    Create,
    /// Update.
    Update,
    /// Deprovision or unbind.
    Delete,
}

impl OpKind {
    /// `create`, `update` or `delete`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Update => "update",
            OpKind::Delete => "delete",
        }
    }

    /// How the client's poller reads `410 Gone` for this operation.
    pub(crate) fn poll_kind(self) -> osb_client::OperationKind {
        match self {
            OpKind::Create => osb_client::OperationKind::Create,
            OpKind::Update => osb_client::OperationKind::Update,
            OpKind::Delete => osb_client::OperationKind::Delete,
        }
    }
}

/// Where an operation stands, as far as `osb` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum OpState {
    /// The broker is working on it.
    #[serde(rename = "in progress")]
    InProgress,
    /// Done.
    #[serde(rename = "succeeded")]
    Succeeded,
    /// The broker reports failure (or polling passed its deadline).
    #[serde(rename = "failed")]
    Failed,
    /// The reply was lost or unusable: the broker may or may not have acted.
    #[serde(rename = "unknown")]
    Unknown,
}

impl OpState {
    /// The state as shown to people.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OpState::InProgress => "in progress",
            OpState::Succeeded => "succeeded",
            OpState::Failed => "failed",
            OpState::Unknown => "unknown",
        }
    }
}

/// The last operation on an instance or binding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct OpRecord {
    /// What the operation does.
    pub(crate) kind: OpKind,
    /// Where it stands.
    pub(crate) state: OpState,
    /// The broker's operation token, sent back when polling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) operation: Option<OperationId>,
    /// The broker's last description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// For an update that changes the plan: the plan the instance moves to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target_plan_id: Option<PlanId>,
    /// For an update that changes the plan: the name of that plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target_plan_name: Option<String>,
}

impl OpRecord {
    /// An operation in `state`.
    pub(crate) fn new(kind: OpKind, state: OpState) -> Self {
        OpRecord {
            kind,
            state,
            operation: None,
            description: None,
            target_plan_id: None,
            target_plan_name: None,
        }
    }

    /// An asynchronous operation the broker accepted, with its operation token if any.
    pub(crate) fn started(kind: OpKind, operation: Option<&OperationId>) -> Self {
        OpRecord {
            operation: operation.cloned(),
            ..OpRecord::new(kind, OpState::InProgress)
        }
    }

    /// `create succeeded`, `delete in progress`, …
    pub(crate) fn summary(&self) -> String {
        format!("{} {}", self.kind.as_str(), self.state.as_str())
    }
}

/// A service instance `osb` created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct InstanceEntry {
    /// The local name.
    pub(crate) name: String,
    /// The instance id.
    pub(crate) id: InstanceId,
    /// The broker's base URL.
    pub(crate) broker_url: String,
    /// The offering id.
    pub(crate) service_id: ServiceId,
    /// The offering name when it was created.
    pub(crate) service_name: String,
    /// The current plan id.
    pub(crate) plan_id: PlanId,
    /// The current plan name, as far as `osb` knows.
    pub(crate) plan_name: String,
    /// The last operation.
    pub(crate) last_operation: OpRecord,
}

impl InstanceEntry {
    /// Whether the offering and plan are known: not for an instance known only by its id.
    pub(crate) fn has_plan(&self) -> bool {
        !self.service_id.as_str().is_empty() && !self.plan_id.as_str().is_empty()
    }
}

/// A service binding `osb` created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct BindingEntry {
    /// The local name.
    pub(crate) name: String,
    /// The binding id.
    pub(crate) id: BindingId,
    /// The broker's base URL.
    pub(crate) broker_url: String,
    /// The instance id.
    pub(crate) instance_id: InstanceId,
    /// The instance's local name.
    pub(crate) instance_name: String,
    /// The offering id of the instance.
    pub(crate) service_id: ServiceId,
    /// The plan id of the instance when the binding was created.
    pub(crate) plan_id: PlanId,
    /// The last operation.
    pub(crate) last_operation: OpRecord,
    /// The credentials, kept only when the broker cannot return them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) credentials: Option<Map<String, Value>>,
}

/// A binding as shown by `osb bindings --json` (never with the credentials themselves).
#[derive(Debug, Serialize)]
pub(crate) struct BindingView<'a> {
    /// The local name.
    pub(crate) name: &'a str,
    /// The binding id.
    pub(crate) id: &'a BindingId,
    /// The broker's base URL.
    pub(crate) broker_url: &'a str,
    /// The instance id.
    pub(crate) instance_id: &'a InstanceId,
    /// The instance's local name.
    pub(crate) instance_name: &'a str,
    /// The offering id.
    pub(crate) service_id: &'a ServiceId,
    /// The plan id.
    pub(crate) plan_id: &'a PlanId,
    /// The last operation.
    pub(crate) last_operation: &'a OpRecord,
    /// Whether the credentials are kept in the local record.
    pub(crate) credentials_stored: bool,
}

impl BindingEntry {
    /// The entry without its credentials.
    pub(crate) fn view(&self) -> BindingView<'_> {
        BindingView {
            name: &self.name,
            id: &self.id,
            broker_url: &self.broker_url,
            instance_id: &self.instance_id,
            instance_name: &self.instance_name,
            service_id: &self.service_id,
            plan_id: &self.plan_id,
            last_operation: &self.last_operation,
            credentials_stored: self.credentials.is_some(),
        }
    }
}

/// Everything in the record file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The file format.
    #[serde(default)]
    pub(crate) format: u32,
    /// The `organization_guid` sent when provisioning without `--organization-guid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) organization_guid: Option<String>,
    /// The `space_guid` sent when provisioning without `--space-guid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) space_guid: Option<String>,
    /// Instances, oldest first.
    #[serde(default)]
    pub(crate) instances: Vec<InstanceEntry>,
    /// Bindings, oldest first.
    #[serde(default)]
    pub(crate) bindings: Vec<BindingEntry>,
}

/// A base URL without trailing slashes, so `http://x/` and `http://x` are the same broker.
pub(crate) fn normalize_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

/// An instance or a binding found by name or id.
#[derive(Debug)]
pub(crate) enum Found {
    /// An instance.
    Instance(InstanceEntry),
    /// A binding.
    Binding(BindingEntry),
}

impl Record {
    /// The instance named `key` (or with id `key`), on `broker` when given.
    pub(crate) fn find_instance(&self, broker: Option<&str>, key: &str) -> Result<InstanceEntry> {
        pick(&self.instances, broker, key, instance_fields)
            .cloned()
            .map_err(|miss| miss.into_error("instance", key, broker))
    }

    /// The binding named `key` (or with id `key`), on `broker` when given.
    pub(crate) fn find_binding(&self, broker: Option<&str>, key: &str) -> Result<BindingEntry> {
        pick(&self.bindings, broker, key, binding_fields)
            .cloned()
            .map_err(|miss| miss.into_error("binding", key, broker))
    }

    /// An instance or binding named `key` (or with id `key`); `Ok(None)` when neither exists.
    pub(crate) fn find_any(&self, broker: Option<&str>, key: &str) -> Result<Option<Found>> {
        let instance = pick(&self.instances, broker, key, instance_fields);
        let binding = pick(&self.bindings, broker, key, binding_fields);
        match (instance, binding) {
            (Ok(i), Ok(b)) => {
                // A name wins over an id; names are unique across the instances and bindings of
                // a broker, but an id may equal another entry's name.
                if i.name == key && b.name != key {
                    Ok(Some(Found::Instance(i.clone())))
                } else if b.name == key && i.name != key {
                    Ok(Some(Found::Binding(b.clone())))
                } else {
                    Err(usage(format!(
                        "{key:?} matches instance {:?} and binding {:?}; use a name",
                        i.name, b.name
                    )))
                }
            }
            (Ok(i), Err(_)) => Ok(Some(Found::Instance(i.clone()))),
            (Err(_), Ok(b)) => Ok(Some(Found::Binding(b.clone()))),
            (Err(miss @ (Miss::Ambiguous(_) | Miss::OtherBroker(_))), _) => {
                Err(miss.into_error("instance", key, broker))
            }
            (_, Err(miss @ (Miss::Ambiguous(_) | Miss::OtherBroker(_)))) => {
                Err(miss.into_error("binding", key, broker))
            }
            (Err(Miss::None), Err(Miss::None)) => Ok(None),
        }
    }

    /// Refuses `name` for a new entry when an instance or binding of `broker` already has it.
    pub(crate) fn check_name_free(&self, broker: &str, name: &str) -> Result<()> {
        let taken = self
            .instances
            .iter()
            .any(|e| e.broker_url == broker && e.name == name)
            || self
                .bindings
                .iter()
                .any(|e| e.broker_url == broker && e.name == name);
        if taken {
            return Err(usage(format!(
                "the name {name:?} is already used by an instance or binding of this broker; \
                 `osb instances` and `osb bindings` list them"
            )));
        }
        Ok(())
    }

    /// The instance with this id on this broker.
    pub(crate) fn instance(&self, broker: &str, id: &InstanceId) -> Option<&InstanceEntry> {
        self.instances
            .iter()
            .find(|e| e.broker_url == broker && &e.id == id)
    }

    /// The binding with this id on this broker.
    pub(crate) fn binding(
        &self,
        broker: &str,
        instance: &InstanceId,
        id: &BindingId,
    ) -> Option<&BindingEntry> {
        self.bindings
            .iter()
            .find(|e| e.broker_url == broker && &e.instance_id == instance && &e.id == id)
    }

    /// The instance with this id on this broker, mutably.
    pub(crate) fn instance_mut(
        &mut self,
        broker: &str,
        id: &InstanceId,
    ) -> Option<&mut InstanceEntry> {
        self.instances
            .iter_mut()
            .find(|e| e.broker_url == broker && &e.id == id)
    }

    /// The binding with this id on this broker, mutably.
    pub(crate) fn binding_mut(
        &mut self,
        broker: &str,
        instance: &InstanceId,
        id: &BindingId,
    ) -> Option<&mut BindingEntry> {
        self.bindings
            .iter_mut()
            .find(|e| e.broker_url == broker && &e.instance_id == instance && &e.id == id)
    }

    /// Forgets an instance and its bindings.
    pub(crate) fn remove_instance(&mut self, broker: &str, id: &InstanceId) {
        self.instances
            .retain(|e| !(e.broker_url == broker && &e.id == id));
        self.bindings
            .retain(|e| !(e.broker_url == broker && &e.instance_id == id));
    }

    /// Forgets a binding.
    pub(crate) fn remove_binding(&mut self, broker: &str, instance: &InstanceId, id: &BindingId) {
        self.bindings
            .retain(|e| !(e.broker_url == broker && &e.instance_id == instance && &e.id == id));
    }

    /// The bindings of an instance.
    pub(crate) fn bindings_of(&self, broker: &str, id: &InstanceId) -> Vec<&BindingEntry> {
        self.bindings
            .iter()
            .filter(|e| e.broker_url == broker && &e.instance_id == id)
            .collect()
    }
}

fn instance_fields(e: &InstanceEntry) -> (&String, &str, &String) {
    (&e.name, e.id.as_str(), &e.broker_url)
}

fn binding_fields(e: &BindingEntry) -> (&String, &str, &String) {
    (&e.name, e.id.as_str(), &e.broker_url)
}

/// Why a lookup found nothing.
enum Miss {
    /// Nothing anywhere.
    None,
    /// Only entries of other brokers.
    OtherBroker(String),
    /// Several entries have this id.
    Ambiguous(usize),
}

impl Miss {
    fn into_error(self, what: &str, key: &str, broker: Option<&str>) -> CliError {
        match self {
            Miss::None => usage(format!(
                "no {what} named {key:?} (or with that id) in the local record; \
                 `osb {what}s --all` lists them"
            )),
            Miss::OtherBroker(url) => usage(format!(
                "the {what} {key:?} belongs to the broker at {url}, not {}; pass --broker-url {url}",
                broker.unwrap_or("the current one")
            )),
            Miss::Ambiguous(n) => usage(format!(
                "{key:?} matches {n} {what}s of different brokers; pass --broker-url"
            )),
        }
    }
}

/// Finds the entry named `key`, else the entry with id `key`, among entries of `broker` (all
/// entries when `None`).
fn pick<'r, T>(
    entries: &'r [T],
    broker: Option<&str>,
    key: &str,
    fields: impl Fn(&T) -> (&String, &str, &String),
) -> std::result::Result<&'r T, Miss> {
    let on_broker = |e: &&T| broker.is_none_or(|b| fields(e).2 == b);
    let by_name: Vec<&T> = entries
        .iter()
        .filter(on_broker)
        .filter(|e| fields(e).0 == key)
        .collect();
    let candidates = if by_name.is_empty() {
        entries
            .iter()
            .filter(on_broker)
            .filter(|e| fields(e).1 == key)
            .collect()
    } else {
        by_name
    };
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => match entries
            .iter()
            .find(|e| fields(e).0 == key || fields(e).1 == key)
        {
            Some(other) if broker.is_some() => Err(Miss::OtherBroker(fields(other).2.clone())),
            _ => Err(Miss::None),
        },
        many => Err(Miss::Ambiguous(many.len())),
    }
}

/// Where the record lives.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    /// `OSB_HOME`, or `<state dir>/osb`.
    pub(crate) fn locate() -> Result<Store> {
        if let Some(home) = std::env::var_os("OSB_HOME").filter(|v| !v.is_empty()) {
            return Ok(Store {
                dir: PathBuf::from(home),
            });
        }
        let base = dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .ok_or_else(|| CliError::Local {
                message: "cannot find a state directory for the local record; set OSB_HOME"
                    .to_string(),
            })?;
        Ok(Store {
            dir: base.join("osb"),
        })
    }

    /// A store in `dir`.
    #[cfg(test)]
    pub(crate) fn at(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// The record file.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Reads the record; a missing file is an empty record.
    pub(crate) fn load(&self) -> Result<Record> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::default()),
            Err(e) => return Err(local(&path, "cannot read", &e)),
        };
        let record: Record = serde_json::from_str(&text).map_err(|e| CliError::Local {
            message: format!(
                "the local record {} is damaged ({e}); fix or remove it",
                path.display()
            ),
        })?;
        if record.format > FORMAT {
            return Err(CliError::Local {
                message: format!(
                    "the local record {} was written by a newer osb (format {})",
                    path.display(),
                    record.format
                ),
            });
        }
        Ok(record)
    }

    /// Replaces the record atomically.
    pub(crate) fn save(&self, record: &mut Record) -> Result<()> {
        record.format = FORMAT;
        create_private_dir(&self.dir).map_err(|e| local(&self.dir, "cannot create", &e))?;
        let mut text = serde_json::to_vec_pretty(record).map_err(|e| CliError::Local {
            message: format!("cannot encode the local record: {e}"),
        })?;
        text.push(b'\n');
        let path = self.path();
        let temp = self.dir.join(format!(
            ".{FILE}.{}.{}.tmp",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let written = write_private(&temp, &text).and_then(|()| fs::rename(&temp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(local(&path, "cannot write", &e));
        }
        Ok(())
    }

    /// Loads the record, applies `change` and saves it (unless `change` fails), holding an
    /// exclusive lock on `state.lock` throughout, so that `osb` commands running at the same
    /// time each see the others' changes instead of overwriting them.
    pub(crate) fn update<T>(&self, change: impl FnOnce(&mut Record) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        let mut record = self.load()?;
        let value = change(&mut record)?;
        self.save(&mut record)?;
        Ok(value)
    }

    /// Takes the record's advisory lock, waiting for other `osb` processes; it is released
    /// when the returned file is dropped (or the process ends).
    fn lock(&self) -> Result<fs::File> {
        create_private_dir(&self.dir).map_err(|e| local(&self.dir, "cannot create", &e))?;
        let path = self.dir.join(LOCK_FILE);
        let mut options = fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options
            .open(&path)
            .map_err(|e| local(&path, "cannot open the lock of", &e))?;
        file.lock().map_err(|e| local(&path, "cannot lock", &e))?;
        Ok(file)
    }
}

fn local(path: &Path, what: &str, e: &std::io::Error) -> CliError {
    CliError::Local {
        message: format!("{what} the local record {}: {e}", path.display()),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

/// Writes a new file readable only by its owner, and syncs it to disk.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(name: &str, id: &str, broker: &str) -> InstanceEntry {
        InstanceEntry {
            name: name.into(),
            id: InstanceId::new(id),
            broker_url: broker.into(),
            service_id: ServiceId::new("s"),
            service_name: "svc".into(),
            plan_id: PlanId::new("p"),
            plan_name: "plan".into(),
            last_operation: OpRecord::new(OpKind::Create, OpState::Succeeded),
        }
    }

    fn binding(name: &str, id: &str, instance: &InstanceEntry) -> BindingEntry {
        BindingEntry {
            name: name.into(),
            id: BindingId::new(id),
            broker_url: instance.broker_url.clone(),
            instance_id: instance.id.clone(),
            instance_name: instance.name.clone(),
            service_id: instance.service_id.clone(),
            plan_id: instance.plan_id.clone(),
            last_operation: OpRecord::new(OpKind::Create, OpState::Succeeded),
            credentials: None,
        }
    }

    #[test]
    fn lookups_by_name_then_id_per_broker() {
        let a = instance("db", "id-1", "http://a");
        let b = instance("db", "id-2", "http://b");
        let c = instance("id-1", "id-3", "http://a");
        let record = Record {
            instances: vec![a.clone(), b.clone(), c.clone()],
            bindings: vec![binding("creds", "b-1", &a)],
            ..Record::default()
        };
        assert_eq!(record.find_instance(Some("http://a"), "db").unwrap(), a);
        assert_eq!(record.find_instance(Some("http://b"), "db").unwrap(), b);
        assert_eq!(record.find_instance(Some("http://b"), "id-2").unwrap(), b);
        // A name wins over another entry's id.
        assert_eq!(record.find_instance(Some("http://a"), "id-1").unwrap(), c);
        let err = record.find_instance(None, "db").unwrap_err().to_string();
        assert!(err.contains("matches 2 instances"), "{err}");
        let err = record
            .find_instance(Some("http://c"), "db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("belongs to the broker at http://a"), "{err}");
        let err = record
            .find_instance(Some("http://a"), "nope")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no instance named \"nope\""), "{err}");

        assert!(matches!(
            record.find_any(Some("http://a"), "creds").unwrap(),
            Some(Found::Binding(_))
        ));
        assert!(matches!(
            record.find_any(Some("http://a"), "b-1").unwrap(),
            Some(Found::Binding(_))
        ));
        assert!(matches!(
            record.find_any(Some("http://a"), "db").unwrap(),
            Some(Found::Instance(_))
        ));
        assert!(record.find_any(Some("http://a"), "zzz").unwrap().is_none());
        assert!(record.find_any(None, "db").is_err());
        let err = record.check_name_free("http://a", "creds").unwrap_err();
        assert!(err.to_string().contains("already used"), "{err}");
        assert!(record.check_name_free("http://a", "db").is_err());
        assert!(record.check_name_free("http://b", "creds").is_ok());
    }

    #[test]
    fn removing_an_instance_forgets_its_bindings() {
        let a = instance("db", "id-1", "http://a");
        let mut record = Record {
            instances: vec![a.clone()],
            bindings: vec![binding("creds", "b-1", &a)],
            ..Record::default()
        };
        assert_eq!(record.bindings_of("http://a", &a.id).len(), 1);
        record.remove_instance("http://a", &a.id);
        assert!(record.instances.is_empty() && record.bindings.is_empty());
    }

    #[test]
    fn saves_atomically_and_privately() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("nested"));
        assert!(store.load().unwrap().instances.is_empty());
        store
            .update(|r| {
                r.instances.push(instance("db", "id-1", "http://a"));
                Ok(())
            })
            .unwrap();
        let record = store.load().unwrap();
        assert_eq!(record.instances[0].name, "db");
        assert_eq!(record.format, FORMAT);
        let names: Vec<_> = fs::read_dir(dir.path().join("nested"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let mut names: Vec<_> = names.iter().map(|n| n.to_string_lossy()).collect();
        names.sort();
        assert_eq!(
            names,
            ["state.json", "state.lock"],
            "no temporary file is left behind"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(store.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = fs::metadata(dir.path().join("nested"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn concurrent_updates_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    // Each writer opens its own store, as separate `osb` processes do.
                    let store = Store::at(&path);
                    for j in 0..5 {
                        let name = format!("db-{i}-{j}");
                        store
                            .update(|r| {
                                r.instances.push(instance(&name, &name, "http://a"));
                                Ok(())
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let record = Store::at(&path).load().unwrap();
        assert_eq!(record.instances.len(), 40, "no update was lost");
    }

    #[test]
    fn damaged_or_newer_records_are_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        fs::write(store.path(), "{not json").unwrap();
        let err = store.load().unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("damaged"), "{err}");
        assert!(store.update(|_| Ok(())).is_err());
        assert_eq!(fs::read_to_string(store.path()).unwrap(), "{not json");

        fs::write(store.path(), r#"{"format": 99}"#).unwrap();
        assert!(store.load().unwrap_err().to_string().contains("newer osb"));
    }

    #[test]
    fn urls_are_normalized() {
        assert_eq!(normalize_url(" http://x:8080// "), "http://x:8080");
    }
}
