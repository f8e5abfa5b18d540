//! Checks on request bodies that their types cannot express.
//!
//! Deserializing a request already enforces the shape (required fields present, `parameters` an
//! object). The `validate` methods add the spec's remaining rules and stop at the first problem,
//! returning [`Error::Invalid`] whose `field` is the dotted JSON path of the offending field:
//!
//! | Rule | Fields |
//! |---|---|
//! | A required string is non-empty | `service_id`, `plan_id`, `organization_guid`, `space_guid` |
//! | An optional string, when present, is non-empty | `plan_id` (update), `app_guid`, `predecessor_binding_id`, `bind_resource.*`, `previous_values.*` |
//! | `maintenance_info.version` is a SemVer 2.0 version | `maintenance_info.version`, `previous_values.maintenance_info.version` |
//! | A context names its platform | `context.platform` |
//! | An operation is 1 to 10,000 characters | `operation` |
//!
//! Whether the ids exist in the catalog, and whether `parameters` match the plan's schemas, are
//! questions for the broker, which knows its catalog.

use crate::{
    Context, Error, MaintenanceInfo, OperationId, ServiceBindingRequest,
    ServiceInstancePreviousValues, ServiceInstanceProvisionRequest, ServiceInstanceUpdateRequest,
};

/// The longest `operation` value the spec allows, in characters.
pub const MAX_OPERATION_LEN: usize = 10_000;

/// Checks that an identifier is non-empty; `field` names it in the error.
///
/// ```
/// use osb_types::validate_id;
/// assert!(validate_id("instance_id", "b5b9d0ca").is_ok());
/// let err = validate_id("instance_id", "").unwrap_err();
/// assert_eq!(err.to_string(), "invalid `instance_id`: must not be empty");
/// ```
pub fn validate_id(field: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    Ok(())
}

/// Checks an `operation` value: non-empty and at most 10,000 characters.
pub fn validate_operation(operation: &OperationId) -> Result<(), Error> {
    validate_id("operation", operation)?;
    let len = operation.chars().count();
    if len > MAX_OPERATION_LEN {
        return Err(Error::invalid(
            "operation",
            format!("is {len} characters long; the limit is {MAX_OPERATION_LEN}"),
        ));
    }
    Ok(())
}

fn validate_optional(field: &str, value: Option<&str>) -> Result<(), Error> {
    match value {
        Some(v) => validate_id(field, v),
        None => Ok(()),
    }
}

/// Checks a `maintenance_info.version` string: non-empty and a SemVer 2.0 version.
pub(crate) fn semver_problem(version: &str) -> Option<String> {
    if version.is_empty() {
        return Some("must not be empty; use a SemVer 2.0 version such as \"1.0.0\"".into());
    }
    match semver::Version::parse(version) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "{version:?} is not a SemVer 2.0 version ({e}); use MAJOR.MINOR.PATCH, such as \"2.1.1+abcdef\""
        )),
    }
}

fn validate_maintenance_info(prefix: &str, info: &MaintenanceInfo) -> Result<(), Error> {
    match semver_problem(&info.version) {
        Some(reason) => Err(Error::invalid(format!("{prefix}.version"), reason)),
        None => Ok(()),
    }
}

fn validate_context(context: Option<&Context>) -> Result<(), Error> {
    let Some(Context::Other(map)) = context else {
        return Ok(());
    };
    match map.get("platform") {
        Some(serde_json::Value::String(p)) if !p.is_empty() => Ok(()),
        Some(serde_json::Value::String(_)) => {
            Err(Error::invalid("context.platform", "must not be empty"))
        }
        Some(_) => Err(Error::invalid("context.platform", "must be a string")),
        None => Err(Error::invalid(
            "context.platform",
            "is required: a context object must say which platform sent it",
        )),
    }
}

impl MaintenanceInfo {
    /// Checks that `version` is a non-empty SemVer 2.0 version.
    ///
    /// ```
    /// use osb_types::MaintenanceInfo;
    /// assert!(MaintenanceInfo::new("2.1.1+abcdef").validate().is_ok());
    /// assert!(MaintenanceInfo::new("2.1").validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        validate_maintenance_info("maintenance_info", self)
    }
}

impl ServiceInstanceProvisionRequest {
    /// Checks the rules of a provision body: non-empty `service_id`, `plan_id`,
    /// `organization_guid` and `space_guid`, a context that names its platform, and a SemVer
    /// `maintenance_info.version`.
    pub fn validate(&self) -> Result<(), Error> {
        validate_id("service_id", &self.service_id)?;
        validate_id("plan_id", &self.plan_id)?;
        validate_id("organization_guid", &self.organization_guid)?;
        validate_id("space_guid", &self.space_guid)?;
        validate_context(self.context.as_ref())?;
        if let Some(info) = &self.maintenance_info {
            validate_maintenance_info("maintenance_info", info)?;
        }
        Ok(())
    }
}

impl ServiceInstancePreviousValues {
    /// Checks that the fields present are non-empty and that `maintenance_info.version` is
    /// SemVer; errors name the field under `previous_values.`.
    pub fn validate(&self) -> Result<(), Error> {
        validate_optional("previous_values.service_id", self.service_id.as_deref())?;
        validate_optional("previous_values.plan_id", self.plan_id.as_deref())?;
        validate_optional(
            "previous_values.organization_id",
            self.organization_id.as_deref(),
        )?;
        validate_optional("previous_values.space_id", self.space_id.as_deref())?;
        if let Some(info) = &self.maintenance_info {
            validate_maintenance_info("previous_values.maintenance_info", info)?;
        }
        Ok(())
    }
}

impl ServiceInstanceUpdateRequest {
    /// Checks the rules of an update body: non-empty `service_id`, non-empty `plan_id` when
    /// present, a context that names its platform, SemVer `maintenance_info.version`, and
    /// well-formed `previous_values`.
    pub fn validate(&self) -> Result<(), Error> {
        validate_id("service_id", &self.service_id)?;
        validate_optional("plan_id", self.plan_id.as_deref())?;
        validate_context(self.context.as_ref())?;
        if let Some(info) = &self.maintenance_info {
            validate_maintenance_info("maintenance_info", info)?;
        }
        if let Some(previous) = &self.previous_values {
            previous.validate()?;
        }
        Ok(())
    }
}

impl ServiceBindingRequest {
    /// Checks the rules of a bind body: non-empty `service_id` and `plan_id`, non-empty
    /// `app_guid`, `predecessor_binding_id` and `bind_resource` strings when present, and a
    /// context that names its platform.
    pub fn validate(&self) -> Result<(), Error> {
        validate_id("service_id", &self.service_id)?;
        validate_id("plan_id", &self.plan_id)?;
        validate_optional("app_guid", self.app_guid.as_deref())?;
        validate_optional(
            "predecessor_binding_id",
            self.predecessor_binding_id.as_deref(),
        )?;
        if let Some(resource) = &self.bind_resource {
            validate_optional("bind_resource.app_guid", resource.app_guid.as_deref())?;
            validate_optional("bind_resource.route", resource.route.as_deref())?;
            validate_optional("bind_resource.space_guid", resource.space_guid.as_deref())?;
            validate_optional(
                "bind_resource.credential_client_id",
                resource.credential_client_id.as_deref(),
            )?;
        }
        validate_context(self.context.as_ref())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<(), Error>) -> String {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Error::Invalid, got {other:?}"),
        }
    }

    #[test]
    fn semver_rules() {
        for ok in ["1.0.0", "2.1.1+abcdef", "1.0.0-rc.1", "0.0.1-alpha+001"] {
            assert_eq!(semver_problem(ok), None, "{ok}");
        }
        for bad in [
            "", "1", "1.0", "v1.0.0", "01.0.0", "1.0.0-01", " 1.0.0", "1.0.0 ",
        ] {
            assert!(semver_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn operation_limits_count_characters() {
        assert!(validate_operation(&OperationId::new("op")).is_ok());
        assert!(validate_operation(&OperationId::new("é".repeat(MAX_OPERATION_LEN))).is_ok());
        assert_eq!(
            field(validate_operation(&OperationId::new(""))),
            "operation"
        );
        let long = OperationId::new("x".repeat(MAX_OPERATION_LEN + 1));
        assert_eq!(field(validate_operation(&long)), "operation");
    }

    #[test]
    fn other_context_needs_a_platform_string() {
        let ctx = |v: serde_json::Value| match v {
            serde_json::Value::Object(m) => Context::Other(m),
            _ => unreachable!(),
        };
        assert!(validate_context(None).is_ok());
        assert!(validate_context(Some(&ctx(serde_json::json!({"platform": "mesos"})))).is_ok());
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"platform": ""}),
            serde_json::json!({"platform": 3}),
        ] {
            assert_eq!(field(validate_context(Some(&ctx(bad)))), "context.platform");
        }
    }
}
