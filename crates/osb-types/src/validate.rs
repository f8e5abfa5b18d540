//! Checks on request bodies and query parameters that their types cannot express.
//!
//! Deserializing a request already enforces the shape (required fields present, `parameters` an
//! object). The `validate` methods add the spec's remaining rules and stop at the first problem,
//! returning [`Error::Invalid`] whose `field` is the dotted JSON path of the offending field (for
//! a query, the parameter's name):
//!
//! | Rule | Fields |
//! |---|---|
//! | A required string is non-empty | `service_id`, `plan_id`, `organization_guid`, `space_guid`; the `service_id` and `plan_id` query parameters of deprovision and unbind |
//! | An optional string, when present, is non-empty | `plan_id` (update), `app_guid`, `predecessor_binding_id`, `bind_resource.*`, `previous_values.*`; the `service_id` and `plan_id` hints of the last-operation and fetch queries |
//! | `maintenance_info.version` is a SemVer 2.0 version | `maintenance_info.version`, `previous_values.maintenance_info.version` |
//! | A context names its platform | `context.platform` |
//! | An operation is 1 to 10,000 characters | `operation` (last-operation queries) |
//!
//! The provision, update and bind queries carry only `accepts_incomplete`, a boolean, so they
//! have nothing to check.
//!
//! Whether the ids exist in the catalog, and whether `parameters` match the plan's schemas, are
//! questions for the broker, which knows its catalog.

use crate::{
    BindingLastOperationQuery, Context, DeprovisionQuery, Error, FetchBindingQuery,
    FetchInstanceQuery, InstanceLastOperationQuery, MaintenanceInfo, OperationId,
    ServiceBindingRequest, ServiceInstancePreviousValues, ServiceInstanceProvisionRequest,
    ServiceInstanceUpdateRequest, UnbindQuery,
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

/// The optional `service_id` / `plan_id` hints of a query: non-empty when present.
fn validate_hints(service_id: Option<&str>, plan_id: Option<&str>) -> Result<(), Error> {
    validate_optional("service_id", service_id)?;
    validate_optional("plan_id", plan_id)
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

impl DeprovisionQuery {
    /// Checks the query of a deprovision: the required `service_id` and `plan_id` are
    /// non-empty.
    ///
    /// ```
    /// use osb_types::DeprovisionQuery;
    /// assert!(DeprovisionQuery::new("svc", "plan").validate().is_ok());
    /// let err = DeprovisionQuery::new("svc", "").validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid `plan_id`: must not be empty");
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        validate_id("service_id", &self.service_id)?;
        validate_id("plan_id", &self.plan_id)
    }
}

impl UnbindQuery {
    /// Checks the query of an unbind: the required `service_id` and `plan_id` are non-empty.
    ///
    /// ```
    /// use osb_types::UnbindQuery;
    /// assert!(UnbindQuery::new("svc", "plan").validate().is_ok());
    /// let err = UnbindQuery::new("", "plan").validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid `service_id`: must not be empty");
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        validate_id("service_id", &self.service_id)?;
        validate_id("plan_id", &self.plan_id)
    }
}

impl InstanceLastOperationQuery {
    /// Checks the query of an instance last-operation poll: the `service_id` and `plan_id`
    /// hints are non-empty when present, and `operation`, when present, is 1 to 10,000
    /// characters ([`validate_operation`]).
    ///
    /// ```
    /// use osb_types::{InstanceLastOperationQuery, MAX_OPERATION_LEN};
    /// assert!(InstanceLastOperationQuery::new().validate().is_ok());
    /// let query = InstanceLastOperationQuery::new().with_plan_id("plan").with_operation("op-42");
    /// assert!(query.validate().is_ok());
    /// let long = InstanceLastOperationQuery::new().with_operation("x".repeat(MAX_OPERATION_LEN + 1));
    /// assert_eq!(
    ///     long.validate().unwrap_err().to_string(),
    ///     "invalid `operation`: is 10001 characters long; the limit is 10000"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        validate_hints(self.service_id.as_deref(), self.plan_id.as_deref())?;
        match &self.operation {
            Some(operation) => validate_operation(operation),
            None => Ok(()),
        }
    }
}

impl BindingLastOperationQuery {
    /// Checks the query of a binding last-operation poll: the `service_id` and `plan_id`
    /// hints are non-empty when present, and `operation`, when present, is 1 to 10,000
    /// characters ([`validate_operation`]).
    ///
    /// ```
    /// use osb_types::BindingLastOperationQuery;
    /// assert!(BindingLastOperationQuery::new().with_operation("op-7").validate().is_ok());
    /// let err = BindingLastOperationQuery::new().with_operation("").validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid `operation`: must not be empty");
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        validate_hints(self.service_id.as_deref(), self.plan_id.as_deref())?;
        match &self.operation {
            Some(operation) => validate_operation(operation),
            None => Ok(()),
        }
    }
}

impl FetchInstanceQuery {
    /// Checks the query of a fetch-instance: the `service_id` and `plan_id` hints are
    /// non-empty when present.
    ///
    /// ```
    /// use osb_types::FetchInstanceQuery;
    /// assert!(FetchInstanceQuery::new().with_service_id("svc").validate().is_ok());
    /// let err = FetchInstanceQuery::new().with_service_id("").validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid `service_id`: must not be empty");
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        validate_hints(self.service_id.as_deref(), self.plan_id.as_deref())
    }
}

impl FetchBindingQuery {
    /// Checks the query of a fetch-binding: the `service_id` and `plan_id` hints are
    /// non-empty when present.
    ///
    /// ```
    /// use osb_types::FetchBindingQuery;
    /// assert!(FetchBindingQuery::new().validate().is_ok());
    /// let err = FetchBindingQuery::new().with_plan_id("").validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid `plan_id`: must not be empty");
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        validate_hints(self.service_id.as_deref(), self.plan_id.as_deref())
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
