//! The recording broker's catalog: three offerings whose plans cover every guard.
//!
//! | Offering | Flags | Plans |
//! |---|---|---|
//! | [`SERVICE_A`] | bindable, `plan_updateable`, instances and bindings retrievable, `allow_context_updates` | [`PLAN_A_BASIC`] (maintenance `1.2.3`, `binding_rotatable`), [`PLAN_A_SCHEMA`] (parameter schemas for create, update and bind), [`PLAN_A_FIXED`] (not bindable, not `plan_updateable`) |
//! | [`SERVICE_B`] | not bindable, nothing retrievable, no context-only updates | [`PLAN_B_BINDABLE`] (bindable, maintenance `2.0.0-rc.1+build.5`), [`PLAN_B_PLAIN`] (not bindable) |
//! | [`SERVICE_C`] | bindable, instances retrievable, bindings not, no context-only updates | [`PLAN_C`] (binding schema only) |
//!
//! Ids contain characters that must be percent-encoded in query strings (`/`, space, `?`, `&`,
//! `=`, `+`, `%`, `#`, non-ASCII), so deprovision and unbind exercise the encoding too.
//!
//! The schemas are chosen so that whether `parameters` are valid is easy to state (see
//! [`size_is_valid`] and [`role_is_valid`]), which keeps the guard oracle independent of the
//! JSON Schema validator.

use osb_types::testing::arb_catalog;
use osb_types::{
    Catalog, InputParametersSchema, MaintenanceInfo, Plan, PlanId, Schemas, Service,
    ServiceBindingSchema, ServiceId, ServiceInstanceSchema, ServiceRequirement,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Offering A: bindable, plans updateable, instances and bindings retrievable, context-only
/// updates allowed.
pub const SERVICE_A: &str = "svc-a/é ?&=+%#";
/// Plan of A with `maintenance_info` 1.2.3 and `binding_rotatable: true`.
pub const PLAN_A_BASIC: &str = "plan a-basic";
/// Plan of A with parameter schemas: create needs an integer `size` ≥ 1, update allows one, bind
/// allows a `role` of `reader` or `writer`.
pub const PLAN_A_SCHEMA: &str = "8f0c3e1a-6b2d-4c7e-9a15-2d4f6b8c0e13";
/// Plan of A that is neither bindable nor `plan_updateable`.
pub const PLAN_A_FIXED: &str = "plan/a:fixed";
/// Offering B: not bindable (one plan overrides it), nothing retrievable, plans not updateable.
pub const SERVICE_B: &str = "0b6c2f5e-93d1-4a7b-8e2f-5c1d3a9b7e60";
/// Plan of B that is bindable, with `maintenance_info` 2.0.0-rc.1+build.5.
pub const PLAN_B_BINDABLE: &str = "plan-b+bindable";
/// Plan of B that inherits "not bindable".
pub const PLAN_B_PLAIN: &str = "plan-b-plain";
/// Offering C: bindable, instances retrievable, bindings not.
pub const SERVICE_C: &str = "svc-c";
/// The plan of C, with a binding schema only.
pub const PLAN_C: &str = "plan-c~1";

/// The maintenance version of [`PLAN_A_BASIC`].
pub const MAINTENANCE_A: &str = "1.2.3";
/// The maintenance version of [`PLAN_B_BINDABLE`].
pub const MAINTENANCE_B: &str = "2.0.0-rc.1+build.5";

const DRAFT_04: &str = "http://json-schema.org/draft-04/schema#";

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn size_schema(required: bool) -> InputParametersSchema {
    let mut schema = json!({
        "$schema": DRAFT_04,
        "type": "object",
        "properties": {"size": {"type": "integer", "minimum": 1}},
    });
    if required {
        schema["required"] = json!(["size"]);
    }
    InputParametersSchema::new().with_parameters(object(schema))
}

fn role_schema() -> InputParametersSchema {
    InputParametersSchema::new().with_parameters(object(json!({
        "$schema": DRAFT_04,
        "type": "object",
        "properties": {"role": {"type": "string", "enum": ["reader", "writer"]}},
    })))
}

/// The catalog every recording broker serves.
pub fn catalog() -> Catalog {
    let a = Service::new(
        "roundtrip-a",
        ServiceId::new(SERVICE_A),
        "Offering with every feature",
        true,
        [
            Plan::new(
                PlanId::new(PLAN_A_BASIC),
                "basic",
                "Maintained, rotatable bindings",
            )
            .with_maintenance_info(
                MaintenanceInfo::new(MAINTENANCE_A).with_description("Patch release"),
            )
            .with_binding_rotatable(true),
            Plan::new(
                PlanId::new(PLAN_A_SCHEMA),
                "schema",
                "Checks its parameters",
            )
            .with_schemas(
                Schemas::new()
                    .with_service_instance(
                        ServiceInstanceSchema::new()
                            .with_create(size_schema(true))
                            .with_update(size_schema(false)),
                    )
                    .with_service_binding(ServiceBindingSchema::new().with_create(role_schema())),
            ),
            Plan::new(
                PlanId::new(PLAN_A_FIXED),
                "fixed",
                "Neither bindable nor changeable",
            )
            .with_bindable(false)
            .with_plan_updateable(false),
        ],
    )
    .with_plan_updateable(true)
    .with_instances_retrievable(true)
    .with_bindings_retrievable(true)
    .with_allow_context_updates(true);
    let b = Service::new(
        "roundtrip-b",
        ServiceId::new(SERVICE_B),
        "Offering with the defaults",
        false,
        [
            Plan::new(
                PlanId::new(PLAN_B_BINDABLE),
                "bindable",
                "Bindable despite its offering",
            )
            .with_bindable(true)
            .with_maintenance_info(MaintenanceInfo::new(MAINTENANCE_B)),
            Plan::new(PlanId::new(PLAN_B_PLAIN), "plain", "Not bindable"),
        ],
    );
    let c = Service::new(
        "roundtrip-c",
        ServiceId::new(SERVICE_C),
        "Offering with fetchable instances only",
        true,
        [
            Plan::new(PlanId::new(PLAN_C), "only", "Checks binding parameters").with_schemas(
                Schemas::new()
                    .with_service_binding(ServiceBindingSchema::new().with_create(role_schema())),
            ),
        ],
    )
    .with_instances_retrievable(true)
    .with_bindings_retrievable(false);
    Catalog::new([a, b, c])
}

/// Every (offering, plan) pair of [`catalog`].
pub const PLANS: &[(&str, &str)] = &[
    (SERVICE_A, PLAN_A_BASIC),
    (SERVICE_A, PLAN_A_SCHEMA),
    (SERVICE_A, PLAN_A_FIXED),
    (SERVICE_B, PLAN_B_BINDABLE),
    (SERVICE_B, PLAN_B_PLAIN),
    (SERVICE_C, PLAN_C),
];

/// The (offering, plan) pairs that are effectively bindable.
pub const BINDABLE_PLANS: &[(&str, &str)] = &[
    (SERVICE_A, PLAN_A_BASIC),
    (SERVICE_A, PLAN_A_SCHEMA),
    (SERVICE_B, PLAN_B_BINDABLE),
    (SERVICE_C, PLAN_C),
];

/// Whether `parameters` satisfy a `size` schema: `size`, when present, is an integer ≥ 1; when
/// `required`, it must be present.
pub fn size_is_valid(parameters: &Map<String, Value>, required: bool) -> bool {
    match parameters.get("size") {
        Some(Value::Number(n)) => n.as_u64().is_some_and(|v| v >= 1),
        Some(_) => false,
        None => !required,
    }
}

/// Whether `parameters` satisfy the `role` schema: `role`, when present, is `reader` or `writer`.
pub fn role_is_valid(parameters: &Map<String, Value>) -> bool {
    match parameters.get("role") {
        Some(Value::String(role)) => role == "reader" || role == "writer",
        Some(_) => false,
        None => true,
    }
}

/// Arbitrary catalogs (every optional field present or absent, extension fields, unknown enum
/// values where the linter allows them) made to pass the linter, so a broker can serve them:
/// ids and names are made unique and non-blank, maintenance versions SemVer, requirements known,
/// parameter schemas valid draft-04, and every offering gets a plan.
pub fn arb_servable_catalog() -> impl Strategy<Value = Catalog> {
    arb_catalog().prop_map(make_servable)
}

fn non_blank(text: &mut String, fallback: &str) {
    if text.trim().is_empty() {
        text.insert_str(0, fallback);
    }
}

fn make_servable(mut catalog: Catalog) -> Catalog {
    for (i, service) in catalog.services.iter_mut().enumerate() {
        service.id = ServiceId::from(format!("{}~s{i}", service.id));
        service.name = format!("{}-s{i}", service.name.trim());
        non_blank(&mut service.description, "offering");
        if let Some(requires) = &mut service.requires {
            requires.retain(|r| !matches!(r, ServiceRequirement::Unknown(_)));
        }
        if let Some(client) = &mut service.dashboard_client {
            client.id = format!("{}-d{i}", client.id.trim());
            non_blank(&mut client.secret, "secret");
        }
        if service.plans.is_empty() {
            service
                .plans
                .push(Plan::new(PlanId::new("plan"), "plan", "The only plan"));
        }
        for (j, plan) in service.plans.iter_mut().enumerate() {
            plan.id = PlanId::from(format!("{}~s{i}p{j}", plan.id));
            plan.name = format!("{}-p{j}", plan.name.trim());
            non_blank(&mut plan.description, "plan");
            if let Some(info) = &mut plan.maintenance_info {
                info.version = format!("{i}.{j}.0-rc.{}", info.version.len());
                // Cloud Controller's limit on the whole object, which the linter enforces.
                let length = serde_json::to_string(info).map_or(0, |text| text.chars().count());
                if length > 2000 {
                    info.extra.clear();
                    info.description = None;
                }
            }
            if let Some(schemas) = &mut plan.schemas {
                if let Some(instance) = &mut schemas.service_instance {
                    for schema in [&mut instance.create, &mut instance.update]
                        .into_iter()
                        .flatten()
                    {
                        if schema.parameters.is_some() {
                            schema.parameters = size_schema(false).parameters;
                        }
                    }
                }
                if let Some(binding) = schemas
                    .service_binding
                    .as_mut()
                    .and_then(|s| s.create.as_mut())
                    && binding.parameters.is_some()
                {
                    binding.parameters = role_schema().parameters;
                }
            }
        }
    }
    catalog
}

#[cfg(test)]
mod tests {
    use super::*;
    use osb_types::schema::PlanSchemas;

    #[test]
    fn catalog_is_clean_and_pairs_match() {
        let catalog = catalog();
        let problems = catalog.lint();
        assert!(!osb_types::has_errors(&problems), "{problems:?}");
        let mut pairs = Vec::new();
        for service in &catalog.services {
            for plan in &service.plans {
                pairs.push((service.id.as_str(), plan.id.as_str()));
                let bindable = BINDABLE_PLANS.contains(&(service.id.as_str(), plan.id.as_str()));
                assert_eq!(plan.effective_bindable(service), bindable, "{}", plan.id);
            }
        }
        assert_eq!(pairs, PLANS);
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(64) })]
        #[test]
        fn servable_catalogs_pass_the_linter(catalog in arb_servable_catalog()) {
            let problems = catalog.lint();
            prop_assert!(!osb_types::has_errors(&problems), "{problems:#?}");
        }
    }

    #[test]
    fn oracles_agree_with_the_schemas() {
        let catalog = catalog();
        let (_, plan) = catalog.find_plan(PLAN_A_SCHEMA).unwrap();
        let schemas = PlanSchemas::compile(plan).unwrap();
        let create = schemas.instance_create.unwrap();
        let update = schemas.instance_update.unwrap();
        let bind = schemas.binding_create.unwrap();
        let samples = [
            json!({}),
            json!({"size": 1}),
            json!({"size": 0}),
            json!({"size": -3}),
            json!({"size": u64::MAX}),
            json!({"size": "2"}),
            json!({"size": null, "role": "reader"}),
            json!({"role": "writer", "x": [1]}),
            json!({"role": "admin"}),
            json!({"role": 7}),
        ];
        for sample in samples {
            let map = object(sample.clone());
            assert_eq!(
                create.is_valid(&sample),
                size_is_valid(&map, true),
                "{sample}"
            );
            assert_eq!(
                update.is_valid(&sample),
                size_is_valid(&map, false),
                "{sample}"
            );
            assert_eq!(bind.is_valid(&sample), role_is_valid(&map), "{sample}");
        }
    }
}
