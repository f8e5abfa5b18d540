//! The catalog linter: every rule of the spec and of Cloud Controller, all problems at once.
//!
//! [`Catalog::lint`] walks the whole catalog and returns a [`Problem`] for each violation, with a
//! JSON pointer to the offending value, so a broker can check its catalog at startup, in CI, or
//! before registering with a platform. [`has_errors`] tells whether any problem is an error.
//!
//! An **error** breaks a MUST of the spec, or makes Cloud Controller (the reference platform)
//! refuse to register the broker. A **warning** breaks a recommendation, or is harmless for the
//! spec but refused or ignored by Cloud Controller.
//!
//! | Rule | Severity | Source | What it checks |
//! |---|---|---|---|
//! | `empty-catalog` | warning | Cloud Controller | The catalog lists at least one offering (the spec allows none; Cloud Controller does not). |
//! | `required-field-empty` | error | spec (blank values: Cloud Controller) | Offering `id`, `name`, `description` and plan `id`, `name`, `description` are non-empty and not only whitespace. |
//! | `no-plans` | error | spec, Cloud Controller | Every offering has at least one plan. |
//! | `duplicate-service-id` | error | spec, Cloud Controller | Offering ids are unique. |
//! | `duplicate-service-name` | error | spec, Cloud Controller | Offering names are unique (case-sensitive). |
//! | `duplicate-plan-id` | error | spec, Cloud Controller | Plan ids are unique across the whole catalog. |
//! | `id-shared-by-offering-and-plan` | warning | spec (ids are globally unique) | No plan has the id of an offering. |
//! | `duplicate-plan-name` | error | spec, Cloud Controller | Plan names are unique within their offering. |
//! | `unknown-requirement` | error | spec, Cloud Controller | `requires` holds only `syslog_drain`, `route_forwarding`, `volume_mount`. |
//! | `invalid-maintenance-version` | error | spec, Cloud Controller | `maintenance_info.version` is a non-empty SemVer 2.0 version. |
//! | `maintenance-info-unknown-key` | warning | Cloud Controller | `maintenance_info` has no keys other than `version` and `description` (the OSB spec allows more; Cloud Controller refuses them). |
//! | `maintenance-info-too-long` | error | Cloud Controller | `maintenance_info` serializes to at most 2,000 characters of JSON (all its keys count, so keep `description` short). |
//! | `dashboard-client-incomplete` | error | spec (profile 2.15), Cloud Controller | `dashboard_client.id` and `dashboard_client.secret` are non-empty. |
//! | `dashboard-client-redirect-uri` | warning | Cloud Controller | `dashboard_client.redirect_uri` is present and non-empty (optional in the spec, required by Cloud Controller). |
//! | `duplicate-dashboard-client-id` | error | Cloud Controller | `dashboard_client.id` values are unique across the catalog. |
//! | `negative-polling-duration` | error | spec | `maximum_polling_duration` is not negative. |
//! | `schema-missing-dollar-schema` | error | spec | Every plan `parameters` schema declares `$schema`. |
//! | `schema-unknown-draft` | error | spec, Cloud Controller | `$schema` is a string naming a JSON Schema draft (04, 06, 07, 2019-09, 2020-12); custom meta-schemas cannot be checked and Cloud Controller refuses them. |
//! | `schema-not-draft-04` | warning | Cloud Controller | `$schema` names draft-04; Cloud Controller checks schemas against draft-04 only and refuses other drafts. |
//! | `schema-too-large` | error | spec, Cloud Controller | A `parameters` schema serializes to at most 64 KiB (65,536 bytes). |
//! | `schema-remote-ref` | error | spec, Cloud Controller | Every `$ref` points into the same document (starts with `#`). |
//! | `schema-root-not-object` | warning | Cloud Controller (spec: parameters are properties of an object) | The schema root has `"type": "object"`. |
//! | `schema-invalid` | error | Cloud Controller | With the `json-schema` feature only: the schema is valid against its draft's meta-schema (draft-04 when `$schema` is absent) and compiles. |
//! | `binding-schema-on-unbindable-plan` | warning | spec | `schemas.service_binding` appears only on plans that are effectively bindable. |
//! | `rotatable-unbindable-plan` | warning | spec | `binding_rotatable: true` appears only on plans that are effectively bindable. |
//! | `name-not-cli-friendly` | warning | spec (recommendation since 2.15) | Offering and plan names use only ASCII letters, digits, `.` and `-`. |
//! | `name-looks-like-guid` | warning | osb-rs | Offering and plan names do not look like GUIDs (a GUID name usually means the name and the id were swapped). |
//! | `string-too-long` | warning | spec (recommendation) | Offering and plan names and descriptions are at most 255 characters. |
//! | `description-too-long` | error | Cloud Controller | An offering description is at most 10,000 characters (reported instead of `string-too-long`). |
//! | `tags-too-long` | error | Cloud Controller | An offering's tags add up to at most 2,048 characters. |
//! | `malformed-costs` | warning | spec (profile metadata conventions) | Plan `metadata.costs` is an array of `{ "amount": { currency: number, … }, "unit": string }`. |
//!
//! Each violation is reported once, under one rule: an empty name is `required-field-empty`, not
//! also `name-not-cli-friendly`; a duplicate is reported at its second and later occurrences.
//! The same table is in the docs of [`Catalog::lint`], the public entry point.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::validate::semver_problem;
use crate::{Catalog, DashboardClient, MaintenanceInfo, Plan, Service, ServiceRequirement};

/// How serious a [`Problem`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Breaks a MUST of the spec, or Cloud Controller refuses the catalog.
    Error,
    /// Breaks a recommendation, or only Cloud Controller objects.
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One violation found by [`Catalog::lint`].
///
/// Displays as `error[rule] /path: message`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Problem {
    /// The stable kebab-case id of the rule (see the table in the [`Catalog::lint`] docs).
    pub rule: &'static str,
    /// Whether the problem is an error or a warning.
    pub severity: Severity,
    /// JSON pointer to the offending value, such as `/services/0/plans/2/maintenance_info/version`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    /// Whether this problem is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}] {}: {}",
            self.severity, self.rule, self.path, self.message
        )
    }
}

/// Whether any of `problems` is an error.
pub fn has_errors(problems: &[Problem]) -> bool {
    problems.iter().any(Problem::is_error)
}

#[derive(Clone, Copy, Debug)]
struct Rule {
    id: &'static str,
    severity: Severity,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $sev:ident;)*) => {
        $(const $name: Rule = Rule { id: $id, severity: Severity::$sev };)*
        #[cfg(test)]
        const RULES: &[Rule] = &[$($name),*];
    };
}

rules! {
    EMPTY_CATALOG = "empty-catalog", Warning;
    REQUIRED_FIELD_EMPTY = "required-field-empty", Error;
    NO_PLANS = "no-plans", Error;
    DUPLICATE_SERVICE_ID = "duplicate-service-id", Error;
    DUPLICATE_SERVICE_NAME = "duplicate-service-name", Error;
    DUPLICATE_PLAN_ID = "duplicate-plan-id", Error;
    DUPLICATE_PLAN_NAME = "duplicate-plan-name", Error;
    UNKNOWN_REQUIREMENT = "unknown-requirement", Error;
    INVALID_MAINTENANCE_VERSION = "invalid-maintenance-version", Error;
    MAINTENANCE_INFO_UNKNOWN_KEY = "maintenance-info-unknown-key", Warning;
    MAINTENANCE_INFO_TOO_LONG = "maintenance-info-too-long", Error;
    DASHBOARD_CLIENT_INCOMPLETE = "dashboard-client-incomplete", Error;
    DASHBOARD_CLIENT_REDIRECT_URI = "dashboard-client-redirect-uri", Warning;
    DUPLICATE_DASHBOARD_CLIENT_ID = "duplicate-dashboard-client-id", Error;
    NEGATIVE_POLLING_DURATION = "negative-polling-duration", Error;
    SCHEMA_MISSING_DOLLAR_SCHEMA = "schema-missing-dollar-schema", Error;
    SCHEMA_UNKNOWN_DRAFT = "schema-unknown-draft", Error;
    SCHEMA_NOT_DRAFT_04 = "schema-not-draft-04", Warning;
    SCHEMA_TOO_LARGE = "schema-too-large", Error;
    SCHEMA_REMOTE_REF = "schema-remote-ref", Error;
    SCHEMA_ROOT_NOT_OBJECT = "schema-root-not-object", Warning;
    SCHEMA_INVALID = "schema-invalid", Error;
    BINDING_SCHEMA_ON_UNBINDABLE_PLAN = "binding-schema-on-unbindable-plan", Warning;
    ROTATABLE_UNBINDABLE_PLAN = "rotatable-unbindable-plan", Warning;
    NAME_NOT_CLI_FRIENDLY = "name-not-cli-friendly", Warning;
    NAME_LOOKS_LIKE_GUID = "name-looks-like-guid", Warning;
    ID_SHARED_BY_OFFERING_AND_PLAN = "id-shared-by-offering-and-plan", Warning;
    STRING_TOO_LONG = "string-too-long", Warning;
    DESCRIPTION_TOO_LONG = "description-too-long", Error;
    TAGS_TOO_LONG = "tags-too-long", Error;
    MALFORMED_COSTS = "malformed-costs", Warning;
}

/// Recommended maximum length of names and descriptions, in characters.
const MAX_DISPLAY_LEN: usize = 255;
/// Cloud Controller's limit on an offering description, in characters.
const MAX_SERVICE_DESCRIPTION_LEN: usize = 10_000;
/// Cloud Controller's limit on the concatenated tags of an offering, in characters.
const MAX_TAGS_LEN: usize = 2_048;
/// Cloud Controller's limit on a plan's `maintenance_info` serialized as JSON, in characters.
const MAX_MAINTENANCE_INFO_JSON_LEN: usize = 2_000;
/// The spec's limit on a serialized `parameters` schema, in bytes.
pub(crate) const MAX_SCHEMA_BYTES: usize = 65_536;
/// How deep the `$ref` search descends into a schema.
const MAX_SCHEMA_DEPTH: usize = 256;

/// A JSON Schema draft, as named by a `$schema` URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SchemaDraft {
    Draft4,
    Draft6,
    Draft7,
    Draft201909,
    Draft202012,
}

impl SchemaDraft {
    /// The draft a `$schema` URI names (`http` or `https`, with or without a trailing `#`).
    pub(crate) fn from_uri(uri: &str) -> Option<SchemaDraft> {
        let uri = uri.trim_end_matches('#');
        let rest = uri
            .strip_prefix("http://json-schema.org/")
            .or_else(|| uri.strip_prefix("https://json-schema.org/"))?;
        match rest {
            "draft-04/schema" => Some(SchemaDraft::Draft4),
            "draft-06/schema" => Some(SchemaDraft::Draft6),
            "draft-07/schema" => Some(SchemaDraft::Draft7),
            "draft/2019-09/schema" => Some(SchemaDraft::Draft201909),
            "draft/2020-12/schema" | "schema" => Some(SchemaDraft::Draft202012),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            SchemaDraft::Draft4 => "draft-04",
            SchemaDraft::Draft6 => "draft-06",
            SchemaDraft::Draft7 => "draft-07",
            SchemaDraft::Draft201909 => "draft 2019-09",
            SchemaDraft::Draft202012 => "draft 2020-12",
        }
    }
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/`.
pub(crate) fn pointer_push(base: &str, token: &str) -> String {
    let mut out = String::with_capacity(base.len() + token.len() + 1);
    out.push_str(base);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// Every `$ref` in `schema` that does not start with `#`, as (pointer to the `$ref`, value).
///
/// Only keywords whose values are schemas are searched, so `enum`, `const`, `default` and
/// `examples` data that happens to contain a `$ref` key is not mistaken for a reference.
pub(crate) fn remote_refs(schema: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    remote_refs_in(schema, "", 0, &mut out);
    out
}

fn remote_refs_in(
    schema: &Map<String, Value>,
    pointer: &str,
    depth: usize,
    out: &mut Vec<(String, String)>,
) {
    if depth > MAX_SCHEMA_DEPTH {
        return;
    }
    fn descend(value: &Value, at: String, depth: usize, out: &mut Vec<(String, String)>) {
        if let Value::Object(child) = value {
            remote_refs_in(child, &at, depth + 1, out);
        }
    }
    for (key, value) in schema {
        let here = pointer_push(pointer, key);
        match key.as_str() {
            "$ref" => {
                if let Value::String(target) = value
                    && !(target.is_empty() || target.starts_with('#'))
                {
                    out.push((here, target.clone()));
                }
            }
            "properties" | "patternProperties" | "definitions" | "$defs" | "dependentSchemas"
            | "dependencies" => {
                if let Value::Object(children) = value {
                    for (name, child) in children {
                        descend(child, pointer_push(&here, name), depth, out);
                    }
                }
            }
            "items" | "prefixItems" | "allOf" | "anyOf" | "oneOf" => match value {
                Value::Array(children) => {
                    for (i, child) in children.iter().enumerate() {
                        descend(child, pointer_push(&here, &i.to_string()), depth, out);
                    }
                }
                other => descend(other, here, depth, out),
            },
            "additionalItems"
            | "additionalProperties"
            | "not"
            | "contains"
            | "propertyNames"
            | "if"
            | "then"
            | "else"
            | "unevaluatedItems"
            | "unevaluatedProperties"
            | "contentSchema" => descend(value, here, depth, out),
            _ => {}
        }
    }
}

fn is_cli_friendly(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// Whether `value` has the shape of a GUID (`8-4-4-4-12` hexadecimal digits).
fn looks_like_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_blank(value: &str) -> bool {
    value.chars().all(char::is_whitespace)
}

/// Where a unique value was first seen.
struct Seen<'a, T> {
    first: HashMap<&'a str, T>,
}

impl<T> Default for Seen<'_, T> {
    fn default() -> Self {
        Seen {
            first: HashMap::new(),
        }
    }
}

impl<'a, T: Copy> Seen<'a, T> {
    /// `None` the first time `key` is seen, then where it was first seen.
    fn check(&mut self, key: &'a str, at: T) -> Option<T> {
        match self.first.get(key) {
            Some(&first) => Some(first),
            None => {
                self.first.insert(key, at);
                None
            }
        }
    }
}

/// Collects problems while walking the catalog, remembering the ids and names seen so far.
#[derive(Default)]
struct Linter<'a> {
    problems: Vec<Problem>,
    service_ids: Seen<'a, usize>,
    service_names: Seen<'a, usize>,
    dashboard_ids: Seen<'a, usize>,
    plan_ids: Seen<'a, (usize, usize)>,
    /// Every offering id of the catalog, with the index of its first offering.
    all_service_ids: HashMap<&'a str, usize>,
}

impl<'a> Linter<'a> {
    fn push(&mut self, rule: Rule, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            rule: rule.id,
            severity: rule.severity,
            path: path.into(),
            message: message.into(),
        });
    }

    /// `required-field-empty`; returns whether the value is usable (non-blank).
    fn required(&mut self, base: &str, field: &str, what: &str, value: &str) -> bool {
        if value.is_empty() {
            self.push(
                REQUIRED_FIELD_EMPTY,
                pointer_push(base, field),
                format!(
                    "the {what} `{field}` is empty; it is required and must be a non-empty string"
                ),
            );
            false
        } else if is_blank(value) {
            self.push(
                REQUIRED_FIELD_EMPTY,
                pointer_push(base, field),
                format!(
                    "the {what} `{field}` is only whitespace; Cloud Controller treats it as missing"
                ),
            );
            false
        } else {
            true
        }
    }

    fn name(&mut self, base: &str, what: &str, name: &str) {
        if looks_like_guid(name) {
            self.push(
                NAME_LOOKS_LIKE_GUID,
                pointer_push(base, "name"),
                format!(
                    "the {what} name {name:?} looks like a GUID; the name is what users see and the id identifies the {what}; were the name and the id swapped?"
                ),
            );
        }
        if !is_cli_friendly(name) {
            self.push(
                NAME_NOT_CLI_FRIENDLY,
                pointer_push(base, "name"),
                format!(
                    "the {what} name {name:?} is not CLI-friendly; use only ASCII letters, digits, `.` and `-`"
                ),
            );
        }
        self.length(base, "name", what, name);
    }

    fn length(&mut self, base: &str, field: &str, what: &str, value: &str) {
        let len = value.chars().count();
        if len > MAX_DISPLAY_LEN {
            self.push(
                STRING_TOO_LONG,
                pointer_push(base, field),
                format!(
                    "the {what} `{field}` is {len} characters long; keep it to {MAX_DISPLAY_LEN} so platforms can display it"
                ),
            );
        }
    }

    fn service(&mut self, i: usize, service: &'a Service) {
        let base = format!("/services/{i}");
        if self.required(&base, "id", "offering", &service.id)
            && let Some(first) = self.service_ids.check(service.id.as_str(), i)
        {
            self.push(
                DUPLICATE_SERVICE_ID,
                pointer_push(&base, "id"),
                format!(
                    "offering id {:?} is already used by /services/{first}; offering ids must be unique",
                    service.id.as_str()
                ),
            );
        }
        if self.required(&base, "name", "offering", &service.name) {
            if let Some(first) = self.service_names.check(service.name.as_str(), i) {
                self.push(
                    DUPLICATE_SERVICE_NAME,
                    pointer_push(&base, "name"),
                    format!(
                        "offering name {:?} is already used by /services/{first}; offering names must be unique",
                        service.name
                    ),
                );
            }
            self.name(&base, "offering", &service.name);
        }
        if self.required(&base, "description", "offering", &service.description) {
            let len = service.description.chars().count();
            if len > MAX_SERVICE_DESCRIPTION_LEN {
                self.push(
                    DESCRIPTION_TOO_LONG,
                    pointer_push(&base, "description"),
                    format!(
                        "the offering description is {len} characters long; Cloud Controller accepts at most {MAX_SERVICE_DESCRIPTION_LEN}"
                    ),
                );
            } else {
                self.length(&base, "description", "offering", &service.description);
            }
        }
        if let Some(tags) = &service.tags {
            let len: usize = tags.iter().map(|t| t.chars().count()).sum();
            if len > MAX_TAGS_LEN {
                self.push(
                    TAGS_TOO_LONG,
                    pointer_push(&base, "tags"),
                    format!(
                        "the tags add up to {len} characters; Cloud Controller accepts at most {MAX_TAGS_LEN}"
                    ),
                );
            }
        }
        for (k, requirement) in service.requires.iter().flatten().enumerate() {
            if let ServiceRequirement::Unknown(value) = requirement {
                self.push(
                    UNKNOWN_REQUIREMENT,
                    format!("{base}/requires/{k}"),
                    format!(
                        "{value:?} is not a requirement the spec defines; use syslog_drain, route_forwarding or volume_mount"
                    ),
                );
            }
        }
        if let Some(client) = &service.dashboard_client {
            self.dashboard_client(&base, i, client);
        }
        if service.plans.is_empty() {
            self.push(
                NO_PLANS,
                pointer_push(&base, "plans"),
                format!(
                    "the offering {:?} has no plans; add at least one",
                    service.name
                ),
            );
        }
        let mut plan_names = Seen::default();
        for (j, plan) in service.plans.iter().enumerate() {
            let plan_base = format!("{base}/plans/{j}");
            if self.required(&plan_base, "id", "plan", &plan.id)
                && let Some((si, pj)) = self.plan_ids.check(plan.id.as_str(), (i, j))
            {
                self.push(
                    DUPLICATE_PLAN_ID,
                    pointer_push(&plan_base, "id"),
                    format!(
                        "plan id {:?} is already used by /services/{si}/plans/{pj}; plan ids must be unique across the catalog",
                        plan.id.as_str()
                    ),
                );
            }
            if let Some(&si) = self.all_service_ids.get(plan.id.as_str()) {
                self.push(
                    ID_SHARED_BY_OFFERING_AND_PLAN,
                    pointer_push(&plan_base, "id"),
                    format!(
                        "plan id {:?} is also the id of the offering /services/{si}; ids are meant to be globally unique, so give the plan an id of its own",
                        plan.id.as_str()
                    ),
                );
            }
            if self.required(&plan_base, "name", "plan", &plan.name) {
                if let Some(first) = plan_names.check(plan.name.as_str(), j) {
                    self.push(
                        DUPLICATE_PLAN_NAME,
                        pointer_push(&plan_base, "name"),
                        format!(
                            "plan name {:?} is already used by {base}/plans/{first}; plan names must be unique within an offering",
                            plan.name
                        ),
                    );
                }
                self.name(&plan_base, "plan", &plan.name);
            }
            if self.required(&plan_base, "description", "plan", &plan.description) {
                self.length(&plan_base, "description", "plan", &plan.description);
            }
            lint_plan(self, &plan_base, service, plan);
        }
    }

    fn dashboard_client(&mut self, base: &str, i: usize, client: &'a DashboardClient) {
        let client_base = pointer_push(base, "dashboard_client");
        for (field, value) in [("id", &client.id), ("secret", &client.secret)] {
            if value.is_empty() {
                self.push(
                    DASHBOARD_CLIENT_INCOMPLETE,
                    pointer_push(&client_base, field),
                    format!(
                        "dashboard_client.{field} is empty; a dashboard client needs a non-empty id and secret"
                    ),
                );
            }
        }
        if !client.id.is_empty()
            && let Some(first) = self.dashboard_ids.check(client.id.as_str(), i)
        {
            self.push(
                DUPLICATE_DASHBOARD_CLIENT_ID,
                pointer_push(&client_base, "id"),
                format!(
                    "dashboard client id {:?} is already used by /services/{first}; Cloud Controller requires unique dashboard client ids",
                    client.id
                ),
            );
        }
        if client.redirect_uri.as_deref().is_none_or(str::is_empty) {
            self.push(
                DASHBOARD_CLIENT_REDIRECT_URI,
                pointer_push(&client_base, "redirect_uri"),
                "dashboard_client.redirect_uri is missing or empty; Cloud Controller requires it",
            );
        }
    }
}

impl Catalog {
    /// Checks the catalog against the spec and Cloud Controller's rules and returns every
    /// problem found, in catalog order. An empty list means the catalog is clean.
    ///
    /// An **error** breaks a MUST of the spec, or makes Cloud Controller (the reference platform)
    /// refuse to register the broker. A **warning** breaks a recommendation, or is harmless for
    /// the spec but refused or ignored by Cloud Controller. Each violation is reported once, under
    /// one rule; a duplicate is reported at its second and later occurrences. The
    /// `schema-invalid` rule needs the `json-schema` feature; the others always run.
    ///
    /// | Rule | Severity | Source | What it checks |
    /// |---|---|---|---|
    /// | `empty-catalog` | warning | Cloud Controller | The catalog lists at least one offering (the spec allows none; Cloud Controller does not). |
    /// | `required-field-empty` | error | spec (blank values: Cloud Controller) | Offering `id`, `name`, `description` and plan `id`, `name`, `description` are non-empty and not only whitespace. |
    /// | `no-plans` | error | spec, Cloud Controller | Every offering has at least one plan. |
    /// | `duplicate-service-id` | error | spec, Cloud Controller | Offering ids are unique. |
    /// | `duplicate-service-name` | error | spec, Cloud Controller | Offering names are unique (case-sensitive). |
    /// | `duplicate-plan-id` | error | spec, Cloud Controller | Plan ids are unique across the whole catalog. |
    /// | `id-shared-by-offering-and-plan` | warning | spec (ids are globally unique) | No plan has the id of an offering. |
    /// | `duplicate-plan-name` | error | spec, Cloud Controller | Plan names are unique within their offering. |
    /// | `unknown-requirement` | error | spec, Cloud Controller | `requires` holds only `syslog_drain`, `route_forwarding`, `volume_mount`. |
    /// | `invalid-maintenance-version` | error | spec, Cloud Controller | `maintenance_info.version` is a non-empty SemVer 2.0 version. |
    /// | `maintenance-info-unknown-key` | warning | Cloud Controller | `maintenance_info` has no keys other than `version` and `description` (the OSB spec allows more; Cloud Controller refuses them). |
    /// | `maintenance-info-too-long` | error | Cloud Controller | `maintenance_info` serializes to at most 2,000 characters of JSON (all its keys count, so keep `description` short). |
    /// | `dashboard-client-incomplete` | error | spec (profile 2.15), Cloud Controller | `dashboard_client.id` and `dashboard_client.secret` are non-empty. |
    /// | `dashboard-client-redirect-uri` | warning | Cloud Controller | `dashboard_client.redirect_uri` is present and non-empty (optional in the spec, required by Cloud Controller). |
    /// | `duplicate-dashboard-client-id` | error | Cloud Controller | `dashboard_client.id` values are unique across the catalog. |
    /// | `negative-polling-duration` | error | spec | `maximum_polling_duration` is not negative. |
    /// | `schema-missing-dollar-schema` | error | spec | Every plan `parameters` schema declares `$schema`. |
    /// | `schema-unknown-draft` | error | spec, Cloud Controller | `$schema` is a string naming a JSON Schema draft (04, 06, 07, 2019-09, 2020-12); custom meta-schemas cannot be checked and Cloud Controller refuses them. |
    /// | `schema-not-draft-04` | warning | Cloud Controller | `$schema` names draft-04; Cloud Controller checks schemas against draft-04 only and refuses other drafts. |
    /// | `schema-too-large` | error | spec, Cloud Controller | A `parameters` schema serializes to at most 64 KiB (65,536 bytes). |
    /// | `schema-remote-ref` | error | spec, Cloud Controller | Every `$ref` points into the same document (starts with `#`). |
    /// | `schema-root-not-object` | warning | Cloud Controller (spec: parameters are properties of an object) | The schema root has `"type": "object"`. |
    /// | `schema-invalid` | error | Cloud Controller | With the `json-schema` feature only: the schema is valid against its draft's meta-schema (draft-04 when `$schema` is absent) and compiles. |
    /// | `binding-schema-on-unbindable-plan` | warning | spec | `schemas.service_binding` appears only on plans that are effectively bindable. |
    /// | `rotatable-unbindable-plan` | warning | spec | `binding_rotatable: true` appears only on plans that are effectively bindable. |
    /// | `name-not-cli-friendly` | warning | spec (recommendation since 2.15) | Offering and plan names use only ASCII letters, digits, `.` and `-`. |
    /// | `name-looks-like-guid` | warning | osb-rs | Offering and plan names do not look like GUIDs (a GUID name usually means the name and the id were swapped). |
    /// | `string-too-long` | warning | spec (recommendation) | Offering and plan names and descriptions are at most 255 characters. |
    /// | `description-too-long` | error | Cloud Controller | An offering description is at most 10,000 characters (reported instead of `string-too-long`). |
    /// | `tags-too-long` | error | Cloud Controller | An offering's tags add up to at most 2,048 characters. |
    /// | `malformed-costs` | warning | spec (profile metadata conventions) | Plan `metadata.costs` is an array of `{ "amount": { currency: number, … }, "unit": string }`. |
    ///
    /// ```
    /// use osb_types::{Catalog, Severity, has_errors};
    /// let catalog: Catalog = serde_json::from_value(serde_json::json!({"services": [{
    ///     "id": "svc-1", "name": "my db", "description": "A database", "bindable": true,
    ///     "plans": [{"id": "plan-1", "name": "small", "description": "Small",
    ///                "maintenance_info": {"version": "1.0"}}]
    /// }]})).unwrap();
    /// let problems = catalog.lint();
    /// assert!(has_errors(&problems));
    /// let rules: Vec<_> = problems.iter().map(|p| (p.rule, p.severity)).collect();
    /// assert_eq!(rules, [
    ///     ("name-not-cli-friendly", Severity::Warning),
    ///     ("invalid-maintenance-version", Severity::Error),
    /// ]);
    /// assert_eq!(problems[1].path, "/services/0/plans/0/maintenance_info/version");
    /// ```
    pub fn lint(&self) -> Vec<Problem> {
        let mut lint = Linter::default();
        if self.services.is_empty() {
            lint.push(
                EMPTY_CATALOG,
                "/services",
                "the catalog has no service offerings; Cloud Controller refuses to register a broker without one",
            );
        }
        for (i, service) in self.services.iter().enumerate().rev() {
            lint.all_service_ids.insert(service.id.as_str(), i);
        }
        for (i, service) in self.services.iter().enumerate() {
            lint.service(i, service);
        }
        lint.problems
    }
}

fn lint_plan(lint: &mut Linter<'_>, base: &str, service: &Service, plan: &Plan) {
    let bindable = plan.effective_bindable(service);
    if let Some(info) = &plan.maintenance_info
        && let Some(reason) = semver_problem(&info.version)
    {
        lint.push(
            INVALID_MAINTENANCE_VERSION,
            format!("{base}/maintenance_info/version"),
            format!("maintenance_info.version {reason}"),
        );
    }
    if let Some(info) = &plan.maintenance_info {
        lint_maintenance_info(lint, &pointer_push(base, "maintenance_info"), info);
    }
    if let Some(duration) = plan.maximum_polling_duration
        && duration < 0
    {
        lint.push(
            NEGATIVE_POLLING_DURATION,
            pointer_push(base, "maximum_polling_duration"),
            format!("maximum_polling_duration is {duration}; it is a number of seconds and must not be negative"),
        );
    }
    if plan.binding_rotatable == Some(true) && !bindable {
        lint.push(
            ROTATABLE_UNBINDABLE_PLAN,
            pointer_push(base, "binding_rotatable"),
            "binding_rotatable is true but the plan is not bindable; make the plan bindable or drop the flag",
        );
    }
    if let Some(schemas) = &plan.schemas {
        let schemas_base = pointer_push(base, "schemas");
        if let Some(instance) = &schemas.service_instance {
            for (action, schema) in [("create", &instance.create), ("update", &instance.update)] {
                if let Some(parameters) = schema.as_ref().and_then(|s| s.parameters.as_ref()) {
                    let path = format!("{schemas_base}/service_instance/{action}/parameters");
                    lint_schema(lint, &path, parameters);
                }
            }
        }
        if let Some(binding) = &schemas.service_binding {
            if !bindable {
                lint.push(
                    BINDING_SCHEMA_ON_UNBINDABLE_PLAN,
                    pointer_push(&schemas_base, "service_binding"),
                    "the plan is not bindable, so platforms never use schemas.service_binding; make the plan bindable or remove it",
                );
            }
            if let Some(parameters) = binding.create.as_ref().and_then(|s| s.parameters.as_ref()) {
                let path = format!("{schemas_base}/service_binding/create/parameters");
                lint_schema(lint, &path, parameters);
            }
        }
    }
    if let Some(costs) = plan.metadata.as_ref().and_then(|m| m.get("costs")) {
        lint_costs(lint, &format!("{base}/metadata/costs"), costs);
    }
}

/// Cloud Controller's rules on a plan's `maintenance_info` beyond its `version`: only the keys
/// `version` and `description`, and at most 2,000 characters as JSON.
fn lint_maintenance_info(lint: &mut Linter<'_>, path: &str, info: &MaintenanceInfo) {
    for key in info.extra.keys() {
        lint.push(
            MAINTENANCE_INFO_UNKNOWN_KEY,
            pointer_push(path, key),
            format!(
                "maintenance_info has the key {key:?}; Cloud Controller accepts only `version` and `description`, so remove it (plan-level data belongs in the plan's `metadata`)"
            ),
        );
    }
    // Cloud Controller measures the whole object, unknown keys included, as compact JSON and
    // counts characters, not bytes; serde_json escapes the same characters Ruby's `to_json` does.
    let len = serde_json::to_string(info).map_or(0, |json| json.chars().count());
    if len > MAX_MAINTENANCE_INFO_JSON_LEN {
        let hint = match (&info.description, info.extra.is_empty()) {
            (_, false) => {
                "remove the keys other than `version` and `description`, and shorten `description` if that is not enough".to_string()
            }
            (Some(description), true) => format!(
                "shorten `description` (now {} characters)",
                description.chars().count()
            ),
            (None, true) => "shorten `version`".to_string(),
        };
        lint.push(
            MAINTENANCE_INFO_TOO_LONG,
            path,
            format!(
                "maintenance_info is {len} characters long as JSON; Cloud Controller accepts at most {MAX_MAINTENANCE_INFO_JSON_LEN}, so {hint}"
            ),
        );
    }
}

fn lint_schema(lint: &mut Linter<'_>, path: &str, schema: &Map<String, Value>) {
    let size = serde_json::to_vec(schema).map_or(0, |bytes| bytes.len());
    if size > MAX_SCHEMA_BYTES {
        lint.push(
            SCHEMA_TOO_LARGE,
            path,
            format!("the schema is {size} bytes as JSON; the limit is {MAX_SCHEMA_BYTES} (64 KiB)"),
        );
    }
    let draft = match schema.get("$schema") {
        None => {
            lint.push(
                SCHEMA_MISSING_DOLLAR_SCHEMA,
                path,
                "the schema has no `$schema`; add \"$schema\": \"http://json-schema.org/draft-04/schema#\"",
            );
            Some(SchemaDraft::Draft4)
        }
        Some(Value::String(uri)) => match SchemaDraft::from_uri(uri) {
            Some(SchemaDraft::Draft4) => Some(SchemaDraft::Draft4),
            Some(other) => {
                lint.push(
                    SCHEMA_NOT_DRAFT_04,
                    pointer_push(path, "$schema"),
                    format!(
                        "the schema uses JSON Schema {}; Cloud Controller accepts only draft-04 (\"http://json-schema.org/draft-04/schema#\")",
                        other.name()
                    ),
                );
                Some(other)
            }
            None => {
                lint.push(
                    SCHEMA_UNKNOWN_DRAFT,
                    pointer_push(path, "$schema"),
                    format!(
                        "{uri:?} is not a JSON Schema draft; use \"http://json-schema.org/draft-04/schema#\" (custom meta-schemas are not supported)"
                    ),
                );
                None
            }
        },
        Some(_) => {
            lint.push(
                SCHEMA_UNKNOWN_DRAFT,
                pointer_push(path, "$schema"),
                "`$schema` must be a string such as \"http://json-schema.org/draft-04/schema#\"",
            );
            None
        }
    };
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        lint.push(
            SCHEMA_ROOT_NOT_OBJECT,
            pointer_push(path, "type"),
            "the schema root should have \"type\": \"object\" (parameters are always an object); Cloud Controller refuses other schemas",
        );
    }
    let remote = remote_refs(schema);
    for (at, target) in &remote {
        lint.push(
            SCHEMA_REMOTE_REF,
            format!("{path}{at}"),
            format!("$ref {target:?} points outside the schema; inline it under \"definitions\" and use \"#/definitions/...\""),
        );
    }
    #[cfg(feature = "json-schema")]
    if let Some(draft) = draft
        && remote.is_empty()
    {
        for (at, message) in crate::schema::schema_problems(draft, schema) {
            lint.push(SCHEMA_INVALID, format!("{path}{at}"), message);
        }
    }
    #[cfg(not(feature = "json-schema"))]
    let _ = (draft, SCHEMA_INVALID);
}

fn lint_costs(lint: &mut Linter<'_>, path: &str, costs: &Value) {
    const SHAPE: &str = "{\"amount\": {\"usd\": 10.0}, \"unit\": \"MONTHLY\"}";
    let Value::Array(items) = costs else {
        lint.push(
            MALFORMED_COSTS,
            path,
            format!("metadata.costs must be an array of objects like {SHAPE}"),
        );
        return;
    };
    for (k, cost) in items.iter().enumerate() {
        let at = format!("{path}/{k}");
        let Value::Object(cost) = cost else {
            lint.push(
                MALFORMED_COSTS,
                at,
                format!("a cost must be an object like {SHAPE}"),
            );
            continue;
        };
        match cost.get("amount") {
            Some(Value::Object(amount)) if !amount.is_empty() && amount.values().all(Value::is_number) => {}
            _ => lint.push(
                MALFORMED_COSTS,
                pointer_push(&at, "amount"),
                "`amount` must be a non-empty object mapping currency codes to numbers, such as {\"usd\": 10.0}",
            ),
        }
        match cost.get("unit") {
            Some(Value::String(unit)) if !unit.is_empty() => {}
            _ => lint.push(
                MALFORMED_COSTS,
                pointer_push(&at, "unit"),
                "`unit` must be a non-empty string, such as \"MONTHLY\"",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_rule_is_documented_once_in_both_tables() {
        let source = include_str!("lint.rs");
        let module_table: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("//! |"))
            .collect();
        let method_table: Vec<&str> = source
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("/// |"))
            .collect();
        assert_eq!(
            module_table, method_table,
            "the two copies of the rule table differ"
        );
        assert_eq!(
            module_table.len(),
            RULES.len() + 2,
            "header, separator, one row per rule"
        );
        let mut ids = std::collections::HashSet::new();
        for rule in RULES {
            assert!(ids.insert(rule.id), "duplicate rule id {}", rule.id);
            let row = format!(" `{}` | {} |", rule.id, rule.severity);
            let rows = module_table.iter().filter(|l| l.starts_with(&row)).count();
            assert_eq!(rows, 1, "table row for {}", rule.id);
            assert!(
                rule.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{} is not kebab-case",
                rule.id
            );
        }
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(pointer_push("/a", "b/c~d"), "/a/b~1c~0d");
        assert_eq!(pointer_push("", "$schema"), "/$schema");
    }

    #[test]
    fn drafts_are_recognised_by_uri() {
        for (uri, draft) in [
            (
                "http://json-schema.org/draft-04/schema#",
                Some(SchemaDraft::Draft4),
            ),
            (
                "https://json-schema.org/draft-04/schema",
                Some(SchemaDraft::Draft4),
            ),
            (
                "http://json-schema.org/draft-06/schema#",
                Some(SchemaDraft::Draft6),
            ),
            (
                "http://json-schema.org/draft-07/schema#",
                Some(SchemaDraft::Draft7),
            ),
            (
                "https://json-schema.org/draft/2019-09/schema",
                Some(SchemaDraft::Draft201909),
            ),
            (
                "https://json-schema.org/draft/2020-12/schema",
                Some(SchemaDraft::Draft202012),
            ),
            (
                "http://json-schema.org/schema#",
                Some(SchemaDraft::Draft202012),
            ),
            ("http://example.com/meta#", None),
            ("draft-04", None),
            ("", None),
        ] {
            assert_eq!(SchemaDraft::from_uri(uri), draft, "{uri}");
        }
    }

    #[test]
    fn remote_refs_are_found_only_in_schema_positions() {
        let schema = map(json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "definitions": {"a/b": {"$ref": "http://example.com/x.json"}},
            "properties": {
                "local": {"$ref": "#/definitions/a~1b"},
                "whole": {"$ref": "#"},
                "empty": {"$ref": ""},
                "file": {"items": [{"$ref": "other.json#/x"}]},
                "deep": {"anyOf": [{"not": {"$ref": "https://example.com/y"}}]},
                "$ref": {"type": "string"},
                "data": {"enum": [{"$ref": "http://not-a-ref"}], "default": {"$ref": "http://nope"}}
            },
            "additionalProperties": {"$ref": "urn:z"}
        }));
        let found = remote_refs(&schema);
        assert_eq!(
            found,
            vec![
                (
                    "/definitions/a~1b/$ref".to_string(),
                    "http://example.com/x.json".to_string()
                ),
                (
                    "/properties/file/items/0/$ref".to_string(),
                    "other.json#/x".to_string()
                ),
                (
                    "/properties/deep/anyOf/0/not/$ref".to_string(),
                    "https://example.com/y".to_string()
                ),
                (
                    "/additionalProperties/$ref".to_string(),
                    "urn:z".to_string()
                ),
            ]
        );
    }

    #[test]
    fn problem_display_and_has_errors() {
        let warning = Problem {
            rule: "string-too-long",
            severity: Severity::Warning,
            path: "/services/0/name".into(),
            message: "too long".into(),
        };
        assert_eq!(
            warning.to_string(),
            "warning[string-too-long] /services/0/name: too long"
        );
        assert!(!has_errors(std::slice::from_ref(&warning)));
        let error = Problem {
            severity: Severity::Error,
            ..warning.clone()
        };
        assert_eq!(
            error.to_string(),
            "error[string-too-long] /services/0/name: too long"
        );
        assert!(has_errors(&[warning, error]));
        assert!(!has_errors(&[]));
        assert_eq!(
            serde_json::to_value(Severity::Warning).unwrap(),
            json!("warning")
        );
    }

    #[test]
    fn cli_friendly_names() {
        for ok in ["my-db", "MyDB.v2", "a", "0"] {
            assert!(is_cli_friendly(ok), "{ok}");
        }
        for bad in ["my db", "my_db", "dé", "a/b"] {
            assert!(!is_cli_friendly(bad), "{bad}");
        }
    }

    #[test]
    fn guid_shapes() {
        for guid in [
            "2a4d6c3e-0b8e-4c55-9d1e-6f5b7a9c1d20",
            "2A4D6C3E-0B8E-4C55-9D1E-6F5B7A9C1D20",
        ] {
            assert!(looks_like_guid(guid), "{guid}");
        }
        for name in [
            "small",
            "2a4d6c3e0b8e4c559d1e6f5b7a9c1d20",
            "2a4d6c3e-0b8e-4c55-9d1e-6f5b7a9c1d2",
            "2a4d6c3e-0b8e-4c55-9d1e-6f5b7a9c1d2g",
            "2a4d6c3e-0b8e-4c55-9d1e-6f5b7a9c1d20-1",
        ] {
            assert!(!looks_like_guid(name), "{name}");
        }
    }
}
