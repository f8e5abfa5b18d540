//! Optional client-side checks: catalog lint and requests checked against the catalog.

use osb_client::{Client, Error, check_bind, check_provision, check_update};
use osb_types::{
    Catalog, InputParametersSchema, Plan, PlanId, Schemas, Service, ServiceBindingRequest,
    ServiceBindingSchema, ServiceId, ServiceInstanceProvisionRequest, ServiceInstanceSchema,
    ServiceInstanceUpdateRequest,
};
use serde_json::{Map, Value, json};

fn schema(value: Value) -> InputParametersSchema {
    let Value::Object(map) = value else {
        panic!("schema must be an object")
    };
    InputParametersSchema::new().with_parameters(map)
}

fn params(value: Value) -> Map<String, Value> {
    let Value::Object(map) = value else {
        panic!("parameters must be an object")
    };
    map
}

fn catalog() -> Catalog {
    let create = schema(json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"size": {"type": "integer", "minimum": 1}, "password": {"type": "string", "minLength": 12}},
        "required": ["size"]
    }));
    let update = schema(json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"size": {"type": "integer", "maximum": 10}}
    }));
    let bind = schema(json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"role": {"enum": ["read", "write"]}}
    }));
    let small = Plan::new(PlanId::new("p-small"), "small", "Small").with_schemas(
        Schemas::new()
            .with_service_instance(
                ServiceInstanceSchema::new()
                    .with_create(create)
                    .with_update(update),
            )
            .with_service_binding(ServiceBindingSchema::new().with_create(bind)),
    );
    let large = Plan::new(PlanId::new("p-large"), "large", "Large")
        .with_plan_updateable(false)
        .with_binding_rotatable(true);
    let unbindable =
        Plan::new(PlanId::new("p-nobind"), "nobind", "No bindings").with_bindable(false);
    Catalog::new([Service::new(
        "db",
        ServiceId::new("s-db"),
        "Databases",
        true,
        [small, large, unbindable],
    )])
}

#[test]
fn provision_parameters_are_checked_against_the_create_schema() {
    let catalog = catalog();
    let ok = ServiceInstanceProvisionRequest::new("s-db", "p-small", "o", "s")
        .with_parameters(params(json!({"size": 2})));
    check_provision(&catalog, &ok).unwrap();

    let secret = "abc-xyz";
    let bad = ServiceInstanceProvisionRequest::new("s-db", "p-small", "o", "s")
        .with_parameters(params(json!({"size": 0, "password": secret})));
    let err = check_provision(&catalog, &bad).unwrap_err();
    let Error::InvalidParameters { violations } = &err else {
        panic!("{err:?}")
    };
    let pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
    assert!(
        pointers.contains(&"/size") && pointers.contains(&"/password"),
        "{pointers:?}"
    );
    assert!(
        err.to_string()
            .starts_with("the parameters do not match the plan's schema: "),
        "{err}"
    );
    assert!(!err.to_string().contains(secret) && !format!("{err:?}").contains(secret));
    assert!(err.is_refused_locally());

    // Absent parameters are `{}` for a provision: the required `size` is missing.
    let absent = ServiceInstanceProvisionRequest::new("s-db", "p-small", "o", "s");
    assert!(matches!(
        check_provision(&catalog, &absent),
        Err(Error::InvalidParameters { .. })
    ));
    // A plan without schemas accepts anything.
    let free = ServiceInstanceProvisionRequest::new("s-db", "p-large", "o", "s")
        .with_parameters(params(json!({"x": 1})));
    check_provision(&catalog, &free).unwrap();
}

#[test]
fn unknown_offerings_and_plans_are_reported() {
    let catalog = catalog();
    let cases = [
        ("s-other", "p-small", "service_id"),
        ("s-db", "p-other", "plan_id"),
    ];
    for (service, plan, field) in cases {
        let body = ServiceInstanceProvisionRequest::new(service, plan, "o", "s");
        match check_provision(&catalog, &body) {
            Err(Error::Validation(osb_types::Invalid { field: got, .. })) => {
                assert_eq!(got, field)
            }
            other => panic!("{service}/{plan}: {other:?}"),
        }
    }
}

#[test]
fn updates_respect_plan_changes_and_the_update_schema() {
    let catalog = catalog();
    let current = PlanId::new("p-small");
    let body =
        ServiceInstanceUpdateRequest::new("s-db").with_parameters(params(json!({"size": 11})));
    assert!(matches!(
        check_update(&catalog, &body, &current),
        Err(Error::InvalidParameters { .. })
    ));
    check_update(
        &catalog,
        &ServiceInstanceUpdateRequest::new("s-db"),
        &current,
    )
    .unwrap();

    // small → large: small does not say, the offering does not say: not updateable.
    let change = ServiceInstanceUpdateRequest::new("s-db").with_plan_id("p-large");
    let err = check_update(&catalog, &change, &current).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `plan_id`: the plan \"small\" does not allow plan changes (plan_updateable)"
    );
    // The same plan is not a change.
    check_update(
        &catalog,
        &ServiceInstanceUpdateRequest::new("s-db").with_plan_id("p-small"),
        &current,
    )
    .unwrap();
}

#[test]
fn binds_respect_bindable_rotation_and_the_binding_schema() {
    let catalog = catalog();
    check_bind(
        &catalog,
        &ServiceBindingRequest::new("s-db", "p-small")
            .with_parameters(params(json!({"role": "read"}))),
    )
    .unwrap();
    let bad = ServiceBindingRequest::new("s-db", "p-small")
        .with_parameters(params(json!({"role": "admin"})));
    assert!(matches!(
        check_bind(&catalog, &bad),
        Err(Error::InvalidParameters { .. })
    ));
    assert!(matches!(
        check_bind(&catalog, &ServiceBindingRequest::new("s-db", "p-nobind")),
        Err(Error::Validation(_))
    ));
    let rotate = ServiceBindingRequest::new("s-db", "p-small").with_predecessor_binding_id("b-0");
    assert!(matches!(
        check_bind(&catalog, &rotate),
        Err(Error::Validation(_))
    ));
    check_bind(
        &catalog,
        &ServiceBindingRequest::new("s-db", "p-large").with_predecessor_binding_id("b-0"),
    )
    .unwrap();
}

#[test]
fn catalogs_are_linted() {
    let client = Client::builder("http://localhost").build().unwrap();
    assert!(
        !osb_types::has_errors(&client.check_catalog(&catalog())),
        "{:?}",
        client.check_catalog(&catalog())
    );
    let duplicate = Catalog::new([
        Service::new(
            "db",
            ServiceId::new("s-1"),
            "d",
            true,
            [Plan::new(PlanId::new("p"), "a", "d")],
        ),
        Service::new(
            "db",
            ServiceId::new("s-2"),
            "d",
            true,
            [Plan::new(PlanId::new("p"), "b", "d")],
        ),
    ]);
    let problems = client.check_catalog(&duplicate);
    let rules: Vec<&str> = problems.iter().map(|p| p.rule).collect();
    assert!(
        rules.contains(&"duplicate-service-name") && rules.contains(&"duplicate-plan-id"),
        "{rules:?}"
    );
}
