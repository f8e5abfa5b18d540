//! Checks on request bodies and query parameters that their types cannot express.
//!
//! Deserializing a request already enforces the shape (required fields present, `parameters` an
//! object). The `validate` methods add the spec's remaining rules and stop at the first problem,
//! returning [`Invalid`] whose `field` is the dotted JSON path of the offending field (for
//! a query, the parameter's name):
//!
//! | Rule | Fields |
//! |---|---|
//! | A required string is non-empty | `service_id`, `plan_id`, `organization_guid`, `space_guid`; the `service_id` and `plan_id` query parameters of deprovision and unbind |
//! | An optional string, when present, is non-empty | `plan_id` (update), `app_guid`, `predecessor_binding_id`, `bind_resource.*`, `previous_values.*`; the `service_id` and `plan_id` hints of the last-operation and fetch queries |
//! | `maintenance_info.version` is a SemVer 2.0 version | `maintenance_info.version`, `previous_values.maintenance_info.version` |
//! | A context names its platform | `context.platform` |
//! | An operation is 1 to 10,000 characters | `operation` (last-operation queries) |
//! | `service_id` and `plan_id` are present, except in a rotation | bind (`predecessor_binding_id` set) |
//! | A binding's expiry is an ISO 8601 UTC timestamp (`yyyy-mm-ddThh:mm:ss[.s]Z`), and `renew_before` is not after `expires_at` | `metadata.expires_at`, `metadata.renew_before` of bind and fetch-binding replies |
//!
//! The provision, update and bind queries carry only `accepts_incomplete`, a boolean, so they
//! have nothing to check.
//!
//! Whether the ids exist in the catalog, and whether `parameters` match the plan's schemas, are
//! questions for the broker, which knows its catalog.

use crate::{
    BindingLastOperationQuery, Context, DeprovisionQuery, FetchBindingQuery, FetchInstanceQuery,
    InstanceLastOperationQuery, Invalid, MaintenanceInfo, OperationId, ServiceBindingMetadata,
    ServiceBindingRequest, ServiceBindingResource, ServiceBindingResponse,
    ServiceInstancePreviousValues, ServiceInstanceProvisionRequest, ServiceInstanceUpdateRequest,
    UnbindQuery,
};

/// The longest `operation` value the spec allows, in characters (its `maxLength`).
pub const MAX_OPERATION_LEN: usize = InstanceLastOperationQuery::OPERATION_MAX_LENGTH;

/// One `minLength` / `maxLength` / `pattern` constraint the spec states for a string; the
/// generated [`STRING_CONSTRAINTS`](crate::STRING_CONSTRAINTS) lists them all, and `validate()`
/// enforces them (a test holds the two together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StringConstraint {
    /// The model (`Plan`), query (`DeprovisionQuery`) or `header`.
    pub schema: &'static str,
    /// The field, query parameter or header name.
    pub field: &'static str,
    /// `minLength`, in characters.
    pub min_length: Option<u64>,
    /// `maxLength`, in characters.
    pub max_length: Option<u64>,
    /// `pattern`, an ECMA-262 regular expression.
    pub pattern: Option<&'static str>,
}

/// Checks that an identifier is non-empty; `field` names it in the error.
///
/// ```
/// use osb_types::validate_id;
/// assert!(validate_id("instance_id", "b5b9d0ca").is_ok());
/// let err = validate_id("instance_id", "").unwrap_err();
/// assert_eq!(err.to_string(), "invalid `instance_id`: must not be empty");
/// ```
pub fn validate_id(field: &str, id: &str) -> Result<(), Invalid> {
    if id.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    Ok(())
}

/// Checks an `operation` value: non-empty and at most 10,000 characters.
pub fn validate_operation(operation: &OperationId) -> Result<(), Invalid> {
    validate_id("operation", operation)?;
    let len = operation.chars().count();
    if len > MAX_OPERATION_LEN {
        return Err(Invalid::new(
            "operation",
            format!("is {len} characters long; the limit is {MAX_OPERATION_LEN}"),
        ));
    }
    Ok(())
}

fn validate_optional(field: &str, value: Option<&str>) -> Result<(), Invalid> {
    match value {
        Some(v) => validate_id(field, v),
        None => Ok(()),
    }
}

/// The optional `service_id` / `plan_id` hints of a query: non-empty when present.
fn validate_hints(service_id: Option<&str>, plan_id: Option<&str>) -> Result<(), Invalid> {
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

fn validate_maintenance_info(prefix: &str, info: &MaintenanceInfo) -> Result<(), Invalid> {
    match semver_problem(&info.version) {
        Some(reason) => Err(Invalid::new(format!("{prefix}.version"), reason)),
        None => Ok(()),
    }
}

fn validate_context(context: Option<&Context>) -> Result<(), Invalid> {
    let Some(Context::Other(map)) = context else {
        return Ok(());
    };
    match map.get("platform") {
        Some(serde_json::Value::String(p)) if !p.is_empty() => Ok(()),
        Some(serde_json::Value::String(_)) => {
            Err(Invalid::new("context.platform", "must not be empty"))
        }
        Some(_) => Err(Invalid::new("context.platform", "must be a string")),
        None => Err(Invalid::new(
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
    pub fn validate(&self) -> Result<(), Invalid> {
        validate_maintenance_info("maintenance_info", self)
    }
}

impl ServiceInstanceProvisionRequest {
    /// Checks the rules of a provision body: non-empty `service_id`, `plan_id`,
    /// `organization_guid` and `space_guid`, a context that names its platform, and a SemVer
    /// `maintenance_info.version`.
    pub fn validate(&self) -> Result<(), Invalid> {
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
    pub fn validate(&self) -> Result<(), Invalid> {
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
    pub fn validate(&self) -> Result<(), Invalid> {
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
    /// Checks the rules of a bind body: `service_id` and `plan_id` present and non-empty (a
    /// rotation, which names its `predecessor_binding_id`, may leave them out), non-empty
    /// `app_guid`, `predecessor_binding_id` and `bind_resource` strings when present, and a
    /// context that names its platform.
    ///
    /// ```
    /// use osb_types::{BindingId, ServiceBindingRequest};
    /// assert!(ServiceBindingRequest::new("svc", "plan").validate().is_ok());
    /// let rotation = ServiceBindingRequest::rotation(BindingId::from("old-binding"));
    /// assert!(rotation.validate().is_ok());
    /// let err = ServiceBindingRequest::default().validate().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid `service_id`: is required unless the request rotates a binding (predecessor_binding_id)"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), Invalid> {
        let rotation = self.predecessor_binding_id.is_some();
        for (field, value) in [
            ("service_id", self.service_id.as_deref()),
            ("plan_id", self.plan_id.as_deref()),
        ] {
            match value {
                Some(id) => validate_id(field, id)?,
                None if rotation => {}
                None => {
                    return Err(Invalid::new(
                        field,
                        "is required unless the request rotates a binding (predecessor_binding_id)",
                    ));
                }
            }
        }
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
    pub fn validate(&self) -> Result<(), Invalid> {
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
    pub fn validate(&self) -> Result<(), Invalid> {
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
    pub fn validate(&self) -> Result<(), Invalid> {
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
    pub fn validate(&self) -> Result<(), Invalid> {
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
    pub fn validate(&self) -> Result<(), Invalid> {
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
    pub fn validate(&self) -> Result<(), Invalid> {
        validate_hints(self.service_id.as_deref(), self.plan_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<(), Invalid>) -> String {
        match r {
            Err(Invalid { field, .. }) => field,
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

/// A UTC timestamp as the spec writes binding expiry: `yyyy-mm-ddThh:mm:ss[.fraction]Z`.
///
/// Ordered as the instants it names (the fraction compares digit by digit, so `.5` equals
/// `.50`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct UtcTimestamp {
    /// Year, month, day, hour, minute, second.
    fields: [u32; 6],
    /// The fraction's digits without trailing zeros.
    fraction: String,
}

impl UtcTimestamp {
    fn parse(text: &str) -> Option<UtcTimestamp> {
        let bytes = text.as_bytes();
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = bytes.get(range)?;
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(part).ok()?.parse().ok()
        };
        let at = |i: usize, c: u8| bytes.get(i) == Some(&c);
        if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
            return None;
        }
        let fields = [
            digits(0..4)?,
            digits(5..7)?,
            digits(8..10)?,
            digits(11..13)?,
            digits(14..16)?,
            digits(17..19)?,
        ];
        let rest = text.get(19..)?;
        let fraction = match rest.strip_suffix('Z')? {
            "" => "",
            dotted => {
                let digits = dotted.strip_prefix('.')?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits
            }
        };
        let [year, month, day, hour, minute, second] = fields;
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let month_days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        if day == 0 || day > month_days || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        Some(UtcTimestamp {
            fields,
            fraction: fraction.trim_end_matches('0').to_string(),
        })
    }
}

fn timestamp(field: &str, value: &str) -> Result<UtcTimestamp, Invalid> {
    UtcTimestamp::parse(value).ok_or_else(|| {
        Invalid::new(
            field,
            format!(
                "{value:?} is not an ISO 8601 UTC timestamp of the form yyyy-mm-ddThh:mm:ss.sZ"
            ),
        )
    })
}

impl ServiceBindingMetadata {
    /// Checks the binding's expiry: `expires_at` and `renew_before` are ISO 8601 UTC timestamps
    /// (`yyyy-mm-ddThh:mm:ss.sZ`; the fraction may be left out or longer), and `renew_before`
    /// is not after `expires_at`. Errors name the fields under `metadata.`.
    ///
    /// ```
    /// use osb_types::ServiceBindingMetadata;
    /// let ok = ServiceBindingMetadata::new()
    ///     .with_expires_at("2030-12-31T23:59:59.0Z")
    ///     .with_renew_before("2030-12-01T00:00:00.0Z");
    /// assert!(ok.validate().is_ok());
    /// let late = ok.clone().with_renew_before("2031-01-01T00:00:00Z");
    /// assert_eq!(
    ///     late.validate().unwrap_err().to_string(),
    ///     "invalid `metadata.renew_before`: is after expires_at"
    /// );
    /// let local = ok.with_expires_at("2030-12-31T23:59:59+01:00");
    /// assert!(local.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Invalid> {
        let expires = self
            .expires_at
            .as_deref()
            .map(|v| timestamp("metadata.expires_at", v))
            .transpose()?;
        let renew = self
            .renew_before
            .as_deref()
            .map(|v| timestamp("metadata.renew_before", v))
            .transpose()?;
        if let (Some(expires), Some(renew)) = (expires, renew)
            && renew > expires
        {
            return Err(Invalid::new("metadata.renew_before", "is after expires_at"));
        }
        Ok(())
    }
}

impl ServiceBindingMetadata {
    /// Moves an expiry that breaks [`validate`](Self::validate) into `extra`, raw and under its
    /// key, with a warning: a platform reading a reply keeps the binding and ignores the
    /// malformed expiry rather than failing the call.
    pub(crate) fn set_aside_bad_expiry(&mut self, warnings: &mut Vec<crate::DecodeWarning>) {
        if self.validate().is_ok() {
            return;
        }
        for field in ["expires_at", "renew_before"] {
            let value = match field {
                "expires_at" => &mut self.expires_at,
                _ => &mut self.renew_before,
            };
            let path = format!("metadata.{field}");
            let bad = value
                .as_deref()
                .is_some_and(|v| UtcTimestamp::parse(v).is_none());
            if bad {
                if let Some(raw) = value.take() {
                    self.extra.insert(field.to_string(), raw.into());
                }
                warnings.push(crate::DecodeWarning::new(
                    path,
                    "is not an ISO 8601 UTC timestamp of the form yyyy-mm-ddThh:mm:ss.sZ",
                ));
            }
        }
        if self.validate().is_err() {
            // Both are timestamps, but renew_before is after expires_at.
            if let Some(raw) = self.renew_before.take() {
                self.extra.insert("renew_before".to_string(), raw.into());
            }
            warnings.push(crate::DecodeWarning::new(
                "metadata.renew_before",
                "is after expires_at",
            ));
        }
    }
}

impl ServiceBindingResponse {
    /// Checks what a bind reply promises beyond its shape: the binding's expiry in `metadata`
    /// ([`ServiceBindingMetadata::validate`]).
    pub fn validate(&self) -> Result<(), Invalid> {
        self.metadata
            .as_ref()
            .map_or(Ok(()), ServiceBindingMetadata::validate)
    }
}

impl ServiceBindingResource {
    /// Checks what a fetched binding promises beyond its shape: the binding's expiry in
    /// `metadata` ([`ServiceBindingMetadata::validate`]).
    pub fn validate(&self) -> Result<(), Invalid> {
        self.metadata
            .as_ref()
            .map_or(Ok(()), ServiceBindingMetadata::validate)
    }
}

#[cfg(test)]
mod timestamp_tests {
    use super::UtcTimestamp;

    #[test]
    fn binding_expiry_timestamps_are_iso_8601_utc() {
        for good in [
            "2019-12-31T23:59:59.0Z",
            "2019-12-31T23:59:59Z",
            "2024-02-29T00:00:00.123456Z",
            "2016-12-31T23:59:60Z",
        ] {
            assert!(UtcTimestamp::parse(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "2019-12-31",
            "2019-12-31T23:59:59",
            "2019-12-31T23:59:59+00:00",
            "2019-12-31 23:59:59Z",
            "2019-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2019-12-31T24:00:00Z",
            "2019-12-31T23:59:59.Z",
            "2019-12-31T23:59:59.5xZ",
            "+019-12-31T23:59:59Z",
            "２019-12-31T23:59:59Z",
        ] {
            assert!(UtcTimestamp::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn binding_expiry_timestamps_compare_as_instants() {
        let t = |s| UtcTimestamp::parse(s).unwrap();
        assert_eq!(t("2020-01-01T00:00:00.5Z"), t("2020-01-01T00:00:00.50Z"));
        assert_eq!(t("2020-01-01T00:00:00Z"), t("2020-01-01T00:00:00.000Z"));
        assert!(t("2020-01-01T00:00:00.09Z") < t("2020-01-01T00:00:00.1Z"));
        assert!(t("2019-12-31T23:59:59.9Z") < t("2020-01-01T00:00:00Z"));
    }
}
