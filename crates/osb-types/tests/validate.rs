//! Request validation: each rule, and the field it names.

use osb_types::{
    BindingId, BindingLastOperationQuery, CloudFoundryContext, Context, DeprovisionQuery,
    FetchBindingQuery, FetchInstanceQuery, InstanceLastOperationQuery, Invalid, KubernetesContext,
    MAX_OPERATION_LEN, MaintenanceInfo, OperationId, ServiceBindingRequest,
    ServiceBindingResourceObject, ServiceInstancePreviousValues, ServiceInstanceProvisionRequest,
    ServiceInstanceUpdateRequest, UnbindQuery, validate_id, validate_operation,
};
use serde_json::{Value, json};

fn invalid_field(result: Result<(), Invalid>) -> String {
    match result {
        Err(Invalid { field, reason }) => {
            assert!(!reason.is_empty());
            field
        }
        Ok(()) => panic!("expected Invalid, got Ok"),
    }
}

fn other_context(value: Value) -> Context {
    match value {
        Value::Object(map) => Context::Other(map),
        _ => unreachable!(),
    }
}

fn provision() -> ServiceInstanceProvisionRequest {
    ServiceInstanceProvisionRequest::new("svc", "plan", "org-guid", "space-guid")
        .with_context(CloudFoundryContext::new("org-guid", "space-guid"))
        .with_maintenance_info(MaintenanceInfo::new("1.2.3"))
}

fn update() -> ServiceInstanceUpdateRequest {
    ServiceInstanceUpdateRequest::new("svc")
        .with_plan_id("plan-2")
        .with_context(KubernetesContext::new("dev", "cluster-1"))
        .with_maintenance_info(MaintenanceInfo::new("2.0.0"))
        .with_previous_values(
            ServiceInstancePreviousValues::new()
                .with_plan_id("plan-1")
                .with_service_id("svc")
                .with_organization_id("org")
                .with_space_id("space")
                .with_maintenance_info(MaintenanceInfo::new("1.0.0")),
        )
}

fn bind() -> ServiceBindingRequest {
    ServiceBindingRequest::new("svc", "plan")
        .with_app_guid("app")
        .with_predecessor_binding_id("old-binding")
        .with_bind_resource(
            ServiceBindingResourceObject::new()
                .with_app_guid("app")
                .with_route("https://route.example.com")
                .with_space_guid("space")
                .with_credential_client_id("client"),
        )
        .with_context(other_context(json!({"platform": "mesos", "x": 1})))
}

#[test]
fn valid_requests_pass() {
    provision().validate().unwrap();
    update().validate().unwrap();
    bind().validate().unwrap();
    // Optional fields may simply be absent.
    ServiceInstanceProvisionRequest::new("s", "p", "o", "sp")
        .validate()
        .unwrap();
    ServiceInstanceUpdateRequest::new("s").validate().unwrap();
    ServiceBindingRequest::new("s", "p").validate().unwrap();
}

#[test]
fn provision_rules_name_the_field() {
    let cases: Vec<(ServiceInstanceProvisionRequest, &str)> = vec![
        (provision().with_service_id(""), "service_id"),
        (provision().with_plan_id(""), "plan_id"),
        (provision().with_organization_guid(""), "organization_guid"),
        (provision().with_space_guid(""), "space_guid"),
        (
            provision().with_maintenance_info(MaintenanceInfo::new("1.2")),
            "maintenance_info.version",
        ),
        (
            provision().with_maintenance_info(MaintenanceInfo::new("")),
            "maintenance_info.version",
        ),
        (
            provision().with_context(other_context(json!({"namespace": "x"}))),
            "context.platform",
        ),
        (
            provision().with_context(other_context(json!({"platform": ""}))),
            "context.platform",
        ),
        (
            provision().with_context(other_context(json!({"platform": null}))),
            "context.platform",
        ),
    ];
    for (request, field) in cases {
        assert_eq!(invalid_field(request.validate()), field, "{request:?}");
    }
}

#[test]
fn update_rules_name_the_field() {
    let previous = |p: ServiceInstancePreviousValues| update().with_previous_values(p);
    let cases: Vec<(ServiceInstanceUpdateRequest, &str)> = vec![
        (update().with_service_id(""), "service_id"),
        (update().with_plan_id(""), "plan_id"),
        (
            update().with_maintenance_info(MaintenanceInfo::new("v2")),
            "maintenance_info.version",
        ),
        (
            update().with_context(other_context(json!({}))),
            "context.platform",
        ),
        (
            previous(ServiceInstancePreviousValues::new().with_plan_id("")),
            "previous_values.plan_id",
        ),
        (
            previous(ServiceInstancePreviousValues::new().with_service_id("")),
            "previous_values.service_id",
        ),
        (
            previous(ServiceInstancePreviousValues::new().with_organization_id("")),
            "previous_values.organization_id",
        ),
        (
            previous(ServiceInstancePreviousValues::new().with_space_id("")),
            "previous_values.space_id",
        ),
        (
            previous(
                ServiceInstancePreviousValues::new()
                    .with_maintenance_info(MaintenanceInfo::new("1")),
            ),
            "previous_values.maintenance_info.version",
        ),
    ];
    for (request, field) in cases {
        assert_eq!(invalid_field(request.validate()), field, "{request:?}");
    }
}

#[test]
fn bind_rules_name_the_field() {
    let resource = |r: ServiceBindingResourceObject| bind().with_bind_resource(r);
    let cases: Vec<(ServiceBindingRequest, &str)> = vec![
        (bind().with_service_id(""), "service_id"),
        (bind().with_plan_id(""), "plan_id"),
        (bind().with_app_guid(""), "app_guid"),
        (
            bind().with_predecessor_binding_id(BindingId::new("")),
            "predecessor_binding_id",
        ),
        (
            resource(ServiceBindingResourceObject::new().with_app_guid("")),
            "bind_resource.app_guid",
        ),
        (
            resource(ServiceBindingResourceObject::new().with_route("")),
            "bind_resource.route",
        ),
        (
            resource(ServiceBindingResourceObject::new().with_space_guid("")),
            "bind_resource.space_guid",
        ),
        (
            resource(ServiceBindingResourceObject::new().with_credential_client_id("")),
            "bind_resource.credential_client_id",
        ),
        (
            bind().with_context(other_context(json!({"platform": 7}))),
            "context.platform",
        ),
    ];
    for (request, field) in cases {
        assert_eq!(invalid_field(request.validate()), field, "{request:?}");
    }
}

#[test]
fn the_first_problem_in_field_order_is_reported() {
    let request = ServiceInstanceProvisionRequest::new("", "", "", "");
    assert_eq!(invalid_field(request.validate()), "service_id");
    let request = ServiceBindingRequest::new("svc", "").with_app_guid("");
    assert_eq!(invalid_field(request.validate()), "plan_id");
}

#[test]
fn requests_parsed_from_json_are_validated() {
    let request: ServiceInstanceProvisionRequest = serde_json::from_value(json!({
        "service_id": "svc", "plan_id": "plan", "organization_guid": "org", "space_guid": "",
        "context": {"platform": "cloudfoundry", "organization_guid": "org", "space_guid": ""},
        "parameters": {"size": 3}
    }))
    .unwrap();
    let err = request.validate().unwrap_err();
    assert_eq!(err.to_string(), "invalid `space_guid`: must not be empty");
}

#[test]
fn maintenance_info_validates_semver() {
    for ok in ["1.0.0", "2.1.1+abcdef", "1.0.0-beta.2"] {
        MaintenanceInfo::new(ok).validate().unwrap();
    }
    for bad in ["", "1", "1.0", "v1.0.0", "1.0.0.0", "01.0.0", "latest"] {
        assert_eq!(
            invalid_field(MaintenanceInfo::new(bad).validate()),
            "maintenance_info.version",
            "{bad:?}"
        );
    }
}

#[test]
fn ids_and_operations() {
    validate_id("instance_id", "abc").unwrap();
    assert_eq!(invalid_field(validate_id("binding_id", "")), "binding_id");

    validate_operation(&OperationId::new("task-42")).unwrap();
    validate_operation(&OperationId::new("o".repeat(MAX_OPERATION_LEN))).unwrap();
    assert_eq!(
        invalid_field(validate_operation(&OperationId::new(""))),
        "operation"
    );
    let err = validate_operation(&OperationId::new("o".repeat(MAX_OPERATION_LEN + 1))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `operation`: is 10001 characters long; the limit is 10000"
    );
}

#[test]
fn delete_queries_require_service_and_plan_ids() {
    DeprovisionQuery::new("svc", "plan")
        .with_accepts_incomplete(true)
        .validate()
        .unwrap();
    UnbindQuery::new("svc", "plan")
        .with_accepts_incomplete(false)
        .validate()
        .unwrap();
    let deprovision = |s: &str, p: &str| DeprovisionQuery::new(s, p).validate();
    let unbind = |s: &str, p: &str| UnbindQuery::new(s, p).validate();
    for check in [deprovision, unbind] {
        assert_eq!(invalid_field(check("", "plan")), "service_id");
        assert_eq!(invalid_field(check("svc", "")), "plan_id");
        // The first problem in field order is reported.
        assert_eq!(invalid_field(check("", "")), "service_id");
    }
    let err = DeprovisionQuery::new("svc", "").validate().unwrap_err();
    assert_eq!(err.to_string(), "invalid `plan_id`: must not be empty");
}

#[test]
fn delete_queries_parsed_from_a_query_string_are_validated() {
    // A broker that decodes `?service_id=&plan_id=p` gets empty strings, not missing fields.
    let query: DeprovisionQuery =
        serde_json::from_value(json!({"service_id": "", "plan_id": "p"})).unwrap();
    assert_eq!(invalid_field(query.validate()), "service_id");
    let query: UnbindQuery =
        serde_json::from_value(json!({"service_id": "s", "plan_id": ""})).unwrap();
    assert_eq!(invalid_field(query.validate()), "plan_id");
}

#[test]
fn last_operation_queries_check_hints_and_operation() {
    let long = || "o".repeat(MAX_OPERATION_LEN + 1);
    // Every field is optional.
    InstanceLastOperationQuery::new().validate().unwrap();
    BindingLastOperationQuery::new().validate().unwrap();
    InstanceLastOperationQuery::new()
        .with_service_id("svc")
        .with_plan_id("old-plan")
        .with_operation("é".repeat(MAX_OPERATION_LEN))
        .validate()
        .unwrap();
    BindingLastOperationQuery::new()
        .with_service_id("svc")
        .with_plan_id("plan")
        .with_operation("op")
        .validate()
        .unwrap();

    let instance = InstanceLastOperationQuery::new;
    let cases: Vec<(InstanceLastOperationQuery, &str)> = vec![
        (instance().with_service_id(""), "service_id"),
        (instance().with_plan_id(""), "plan_id"),
        (instance().with_operation(""), "operation"),
        (instance().with_operation(long()), "operation"),
        (instance().with_plan_id("").with_operation(""), "plan_id"),
    ];
    for (query, field) in cases {
        assert_eq!(invalid_field(query.validate()), field, "{query:?}");
    }
    let binding = BindingLastOperationQuery::new;
    let cases: Vec<(BindingLastOperationQuery, &str)> = vec![
        (binding().with_service_id(""), "service_id"),
        (binding().with_plan_id(""), "plan_id"),
        (binding().with_operation(""), "operation"),
        (binding().with_operation(long()), "operation"),
        (binding().with_service_id("").with_plan_id(""), "service_id"),
    ];
    for (query, field) in cases {
        assert_eq!(invalid_field(query.validate()), field, "{query:?}");
    }
    // The same rule and message as `validate_operation`.
    let query = BindingLastOperationQuery::new().with_operation(long());
    assert_eq!(
        query.validate().unwrap_err(),
        validate_operation(&OperationId::new(long())).unwrap_err()
    );
}

#[test]
fn fetch_queries_check_their_hints() {
    FetchInstanceQuery::new().validate().unwrap();
    FetchBindingQuery::new().validate().unwrap();
    FetchInstanceQuery::new()
        .with_service_id("svc")
        .with_plan_id("plan")
        .validate()
        .unwrap();
    FetchBindingQuery::new()
        .with_service_id("svc")
        .with_plan_id("plan")
        .validate()
        .unwrap();
    let fetch_instance = |s: Option<&str>, p: Option<&str>| {
        let mut query = FetchInstanceQuery::new();
        query.service_id = s.map(Into::into);
        query.plan_id = p.map(Into::into);
        query.validate()
    };
    let fetch_binding = |s: Option<&str>, p: Option<&str>| {
        let mut query = FetchBindingQuery::new();
        query.service_id = s.map(Into::into);
        query.plan_id = p.map(Into::into);
        query.validate()
    };
    for check in [fetch_instance, fetch_binding] {
        assert_eq!(invalid_field(check(Some(""), None)), "service_id");
        assert_eq!(invalid_field(check(None, Some(""))), "plan_id");
        assert_eq!(invalid_field(check(Some("svc"), Some(""))), "plan_id");
        assert_eq!(invalid_field(check(Some(""), Some(""))), "service_id");
        check(None, Some("plan")).unwrap();
    }
}

#[test]
fn binding_expiry_must_be_iso_8601_utc_and_renew_before_not_after_expiry() {
    use osb_types::{ServiceBindingMetadata, ServiceBindingResponse};
    let good = ServiceBindingMetadata::new()
        .with_expires_at("2031-01-01T00:00:00.0Z")
        .with_renew_before("2030-12-31T00:00:00Z");
    assert!(
        ServiceBindingResponse::new()
            .with_metadata(good.clone())
            .validate()
            .is_ok()
    );
    for (metadata, field) in [
        (
            good.clone().with_expires_at("2031-01-01"),
            "metadata.expires_at",
        ),
        (
            good.clone().with_expires_at("2031-01-01T00:00:00+00:00"),
            "metadata.expires_at",
        ),
        (
            good.clone().with_renew_before("soon"),
            "metadata.renew_before",
        ),
        (
            good.clone().with_renew_before("2031-01-01T00:00:00.1Z"),
            "metadata.renew_before",
        ),
    ] {
        let err = ServiceBindingResponse::new()
            .with_metadata(metadata)
            .validate()
            .unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
}

#[test]
fn a_client_sets_aside_a_malformed_binding_expiry_and_keeps_the_binding() {
    use osb_types::{BindOutcome, FetchBindingOutcome};
    let body = br#"{"credentials": {"uri": "db://x"},
        "metadata": {"expires_at": "2031-01-01T00:00:00Z", "renew_before": "2032-01-01T00:00:00Z"}}"#;
    let (outcome, warnings) = BindOutcome::decode_with_warnings(201, body, None).unwrap();
    let BindOutcome::Created(binding) = outcome else {
        panic!("{outcome:?}")
    };
    let metadata = binding.metadata.unwrap();
    assert_eq!(metadata.expires_at.as_deref(), Some("2031-01-01T00:00:00Z"));
    assert_eq!(metadata.renew_before, None);
    assert_eq!(metadata.extra["renew_before"], "2032-01-01T00:00:00Z");
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].path, "metadata.renew_before");

    let body = br#"{"metadata": {"expires_at": "tomorrow"}}"#;
    let (outcome, warnings) = FetchBindingOutcome::decode_with_warnings(200, body).unwrap();
    let FetchBindingOutcome::Found(binding) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(binding.metadata.unwrap().extra["expires_at"], "tomorrow");
    assert_eq!(warnings[0].path, "metadata.expires_at");
}
