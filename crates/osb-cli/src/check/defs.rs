//! The checks `osb check` knows: stable ids, groups, spec levels and sections, and results.

use osb_types::rules::Rule;
use serde::Serialize;

use super::http::Exchange;

/// How binding a rule is, in RFC 2119 terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum Level {
    /// A MUST of the spec: a failure makes `osb check` fail.
    #[serde(rename = "MUST")]
    Must,
    /// A SHOULD: a failure is a warning unless `--strict`.
    #[serde(rename = "SHOULD")]
    Should,
    /// A MAY: an optional feature, checked when the broker offers it.
    #[serde(rename = "MAY")]
    May,
}

impl Level {
    /// `MUST`, `SHOULD` or `MAY`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

/// The groups, as named on the command line.
pub(crate) const GROUPS: [&str; 9] = [
    "catalog",
    "auth",
    "version",
    "lifecycle",
    "idempotency",
    "async",
    "bad-input",
    "schemas",
    "features",
];

/// One check: what it verifies and where the rule comes from.
#[derive(Debug)]
pub(crate) struct Def {
    /// Stable id, e.g. `provision.repeat-identical-200`.
    pub(crate) id: &'static str,
    /// Its group (one of [`GROUPS`]).
    pub(crate) group: &'static str,
    /// Its level.
    pub(crate) level: Level,
    /// The spec section the rule comes from.
    pub(crate) section: &'static str,
    /// What passes.
    pub(crate) title: &'static str,
    /// The rule of `osb_types::rules` whose refusal this check expects, if any: the check runs
    /// only on a request that breaks it, and the report cites its id.
    pub(crate) rule: Option<Rule>,
}

macro_rules! defs {
    ($($name:ident = $id:literal, $group:literal, $level:ident, $section:literal, $title:literal $(, $rule:ident)?;)*) => {
        $(
            #[doc = $title]
            pub(crate) const $name: Def = Def {
                id: $id, group: $group, level: Level::$level, section: $section, title: $title,
                rule: rule!($($rule)?),
            };
        )*
        /// Every check, in the order they run.
        pub(crate) const ALL: &[&Def] = &[$(&$name),*];
    };
}

macro_rules! rule {
    () => {
        None
    };
    ($rule:ident) => {
        Some(Rule::$rule)
    };
}

defs! {
    CATALOG_VALID = "catalog.valid-json", "catalog", Must, "Catalog Management",
        "GET /v2/catalog answers 200 with a catalog object";
    CATALOG_LINT_ERRORS = "catalog.lint-errors", "catalog", Must, "Catalog Management",
        "the catalog breaks no MUST (osb lint errors)";
    CATALOG_LINT_WARNINGS = "catalog.lint-warnings", "catalog", Should, "Catalog Management",
        "the catalog follows the recommendations (osb lint warnings)";
    CATALOG_ETAG = "catalog.etag-not-modified", "catalog", May, "Catalog Management (caching, 2.16)",
        "a catalog ETag answers 304 to If-None-Match";
    AUTH_MISSING = "auth.missing-401", "auth", Must, "Platform to Service Broker Authentication",
        "every endpoint answers 401 without credentials";
    AUTH_WRONG = "auth.wrong-401", "auth", Must, "Platform to Service Broker Authentication",
        "every endpoint answers 401 with wrong credentials";
    VERSION_MISSING = "version.missing-rejected", "version", Should, "API Version Header",
        "a request without X-Broker-API-Version is refused with 400 or 412";
    VERSION_OLDER = "version.older-412", "version", Should, "API Version Header",
        "a version older than 2.13 (2.12) is refused with 412";
    VERSION_NEWER_MINOR = "version.newer-minor-accepted", "version", Should, "API Version Header",
        "a newer minor version (2.99) is accepted: minor versions only add";
    VERSION_OTHER_MAJOR = "version.other-major-412", "version", Should, "API Version Header",
        "another major version (3.0) is refused with 412";
    ASYNC_PROVISION_NO_202 = "async.provision-no-202-without-accepts", "async", Must, "Asynchronous Operations",
        "a provision without accepts_incomplete never answers 202";
    ASYNC_PROVISION_422 = "async.provision-required-422", "async", Must, "Asynchronous Operations",
        "a plan that needs asynchronous work answers 422 AsyncRequired without accepts_incomplete";
    PROVISION_CREATE = "provision.create-201", "lifecycle", Must, "Provisioning: Response",
        "a new instance answers 201 Created (202 Accepted when asynchronous)";
    PROVISION_BODY = "provision.response-body", "lifecycle", Must, "Provisioning: Response Body",
        "the provision reply is a JSON object whose fields are well typed for the API version";
    PROVISION_IN_PROGRESS = "provision.repeat-in-progress-202", "idempotency", Must, "Provisioning: Response",
        "an identical provision while it runs answers 202 with the same operation";
    PROVISION_POLL = "provision.poll", "lifecycle", Must, "Polling Last Operation for Service Instances",
        "last_operation of an asynchronous provision reports succeeded within the polling limit";
    LASTOP_RETRY_AFTER = "lastop.retry-after", "lifecycle", Should, "Polling Last Operation: Headers (2.15)",
        "Retry-After on last_operation is a number of seconds or an HTTP date";
    PROVISION_REPEAT = "provision.repeat-identical-200", "idempotency", Should, "Provisioning: Response",
        "an identical provision of an existing instance answers 200 OK";
    PROVISION_CONFLICT = "provision.conflict-409", "idempotency", Must, "Provisioning: Response",
        "a provision of an existing id with other attributes answers 409 Conflict";
    MAINTENANCE_CONFLICT = "maintenance.conflict-422", "features", Must, "Provisioning: maintenance_info (2.15)",
        "a maintenance_info version other than the catalog's answers 422 MaintenanceInfoConflict", MaintenanceInfoVersion;
    SCHEMA_PROVISION = "schemas.provision-invalid-400", "schemas", Should, "Schemas / Provisioning: Request Body",
        "parameters that break the plan's create schema answer 400", ParametersSchema;
    INSTANCE_FETCH = "instance.fetch", "lifecycle", Must, "Fetching a Service Instance (2.14)",
        "GET of the instance answers 200 with its offering and plan";
    UPDATE_APPLY = "update.apply", "lifecycle", Should, "Updating a Service Instance",
        "an update that keeps the plan answers 200 (or 202 and succeeds)";
    MAINTENANCE_UPGRADE = "maintenance.upgrade", "features", Should, "Updating a Service Instance: maintenance_info (2.15)",
        "an update to the catalog's maintenance_info version answers 200 (or 202 and succeeds)";
    CONTEXT_UPDATE = "update.context-only", "features", Should, "Updating a Service Instance: allow_context_updates (2.15)",
        "a context-only update answers 200 (or 202 and succeeds)";
    ASYNC_BIND_NO_202 = "async.bind-no-202-without-accepts", "async", Must, "Asynchronous Operations",
        "a bind without accepts_incomplete never answers 202";
    ASYNC_BIND_422 = "async.bind-required-422", "async", Must, "Asynchronous Operations",
        "a binding that needs asynchronous work answers 422 AsyncRequired without accepts_incomplete";
    BIND_CREATE = "bind.create-201", "lifecycle", Must, "Binding: Response",
        "a new binding answers 201 Created (202 when asynchronous) with credentials as an object";
    BIND_POLL = "bind.poll", "lifecycle", Must, "Polling Last Operation for Service Bindings (2.14)",
        "last_operation of an asynchronous bind reports succeeded within the polling limit";
    BIND_REPEAT = "bind.repeat-identical-200", "idempotency", Should, "Binding: Response",
        "an identical bind of an existing binding answers 200 OK";
    BIND_SAME_CREDENTIALS = "bind.repeat-same-credentials", "idempotency", Should, "Binding: Response",
        "an identical bind answers with the credentials of the first reply";
    BIND_CONFLICT = "bind.conflict-409", "idempotency", Must, "Binding: Response",
        "a bind of an existing id with other parameters answers 409 Conflict";
    SCHEMA_BIND = "schemas.bind-invalid-400", "schemas", Should, "Schemas / Binding: Request Body",
        "parameters that break the plan's binding schema answer 400", ParametersSchema;
    BIND_ENDPOINTS = "bind.endpoints-valid", "features", Must, "Binding: Endpoint object (2.15)",
        "endpoints, when returned, have a host and string ports";
    BIND_METADATA = "bind.metadata-valid", "features", Must, "Binding: BindingMetadata (2.16)",
        "binding metadata, when returned, has ISO 8601 times with renew_before before expires_at";
    BINDING_FETCH = "binding.fetch", "lifecycle", Must, "Fetching a Service Binding (2.14)",
        "GET of the binding answers 200 with its credentials";
    BIND_ROTATION = "bind.rotation", "features", Must, "Binding Rotation (2.17)",
        "a bind with predecessor_binding_id answers 201 (or 202 and succeeds)";
    UNBIND_DELETE = "unbind.delete", "lifecycle", Must, "Unbinding",
        "unbind answers 200 (or 202 and succeeds)";
    UNBIND_REPEAT = "unbind.repeat-410", "lifecycle", Must, "Unbinding: Response",
        "unbinding a deleted binding answers 410 Gone";
    DEPROVISION_DELETE = "deprovision.delete", "lifecycle", Must, "Deprovisioning",
        "deprovision answers 200 (or 202 and succeeds)";
    DEPROVISION_REPEAT = "deprovision.repeat-410", "lifecycle", Must, "Deprovisioning: Response",
        "deprovisioning a deleted instance answers 410 Gone";
    DEPROVISION_POLL_FINISHED = "deprovision.poll-finished", "lifecycle", Should, "Polling Last Operation: Response",
        "polling a finished asynchronous delete answers 410 Gone (or 200 succeeded)";
    BAD_JSON = "bad-input.malformed-json-400", "bad-input", Must, "Provisioning: Response (400)",
        "a provision with a body that is not JSON answers 400";
    BAD_MISSING = "bad-input.missing-fields-400", "bad-input", Must, "Provisioning: Response (400)",
        "a provision without service_id and plan_id answers 400";
    BAD_UNKNOWN_IDS = "bad-input.unknown-ids-400", "bad-input", Should, "Service Broker Errors (invalid data, 2.16)",
        "a provision with unknown service_id and plan_id answers 400", KnownService;
    BAD_ERROR_BODY = "bad-input.error-body", "bad-input", Must, "Service Broker Errors",
        "400 replies carry a JSON error object (string error and description when present)";
}

/// The verdict of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// The broker follows the rule.
    Pass,
    /// The broker breaks the rule.
    Fail,
    /// The rule could not be checked or does not apply.
    Skip,
}

/// One check's result.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CheckResult {
    /// The check's id.
    pub(crate) id: &'static str,
    /// Its group.
    pub(crate) group: &'static str,
    /// Its level.
    pub(crate) level: Level,
    /// The spec section.
    pub(crate) section: &'static str,
    /// What passes.
    pub(crate) title: &'static str,
    /// The id of the `osb_types::rules` rule the check expects the broker to enforce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rule: Option<&'static str>,
    /// The plan it ran on (`offering/plan`), for per-plan checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) plan: Option<String>,
    /// Pass, fail or skip.
    pub(crate) status: Status,
    /// Why it failed or was skipped (empty on a pass).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) message: String,
    /// The requests and replies that decided it (credentials redacted).
    pub(crate) exchanges: Vec<Exchange>,
}

impl CheckResult {
    /// `id` or `id [plan]`.
    pub(crate) fn name(&self) -> String {
        match &self.plan {
            Some(plan) => format!("{} [{plan}]", self.id),
            None => self.id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_groups_known() {
        let mut ids: Vec<_> = ALL.iter().map(|d| d.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ALL.len());
        for def in ALL {
            assert!(GROUPS.contains(&def.group), "{}", def.id);
            assert!(def.id.contains('.'), "{}", def.id);
        }
    }
}
