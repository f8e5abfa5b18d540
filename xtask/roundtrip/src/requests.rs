//! Strategies for what the platform sends: versions, identities, and request bodies that use the
//! recording broker's catalog — mostly valid, sometimes breaking one guard on purpose.
//!
//! Each body strategy starts from the generated strategy of its model (every optional field
//! present or absent, nested free-form JSON, extension fields) and then picks the catalog ids,
//! `parameters`, `maintenance_info` and context the guards look at. Bodies always pass the
//! client's own `validate()` rules: the guards, not the client, must stop them.

use osb_types::testing::{
    arb_context, arb_id, arb_object, arb_originating_identity, arb_service_binding_request,
    arb_service_instance_provision_request, arb_service_instance_update_request,
};
use osb_types::{
    ApiVersion, Context, MaintenanceInfo, Operation, OriginatingIdentity, PlanId,
    ServiceBindingRequest, ServiceId, ServiceInstanceProvisionRequest,
    ServiceInstanceUpdateRequest,
};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value};

use crate::catalog::{
    BINDABLE_PLANS, MAINTENANCE_A, MAINTENANCE_B, PLAN_A_SCHEMA, PLANS, SERVICE_A, SERVICE_B,
    SERVICE_C,
};

/// A version the endpoint exists in (mostly), or any known version (sometimes, to check that
/// the client refuses endpoints newer than its version).
pub fn arb_version(operation: Operation) -> impl Strategy<Value = ApiVersion> {
    let supported: Vec<ApiVersion> = ApiVersion::KNOWN
        .into_iter()
        .filter(|v| *v >= operation.since())
        .collect();
    prop_oneof![
        9 => select(supported),
        1 => select(ApiVersion::KNOWN.to_vec()),
    ]
}

/// An `X-Broker-API-Request-Identity`: absent (the client makes a UUID), a UUID, visible ASCII
/// with inner spaces and tabs, or (rarely) text a header cannot carry as is.
pub fn arb_request_identity() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(None),
        4 => "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}".prop_map(Some),
        4 => "[!-~]([ \t!-~]{0,30}[!-~])?".prop_map(Some),
        1 => "[ \t]{0,2}[!-~]{0,4}[ \t]{0,2}".prop_map(Some),
        1 => "[!-~]{0,3}[\x00-\x1f\x7féü中][!-~]{0,3}".prop_map(Some),
    ]
}

/// Which (offering, plan) a request names.
#[derive(Clone, Debug)]
enum Ids {
    /// A pair from the list.
    Listed(usize),
    /// An offering that is not in the catalog, with a catalog plan.
    UnknownService(ServiceId, usize),
    /// A catalog offering with a plan id that is nowhere in the catalog.
    UnknownPlan(usize, PlanId),
    /// A catalog offering with the plan of another offering.
    ForeignPlan(usize, usize),
}

fn resolve(valid: &[(&str, &str)], ids: Ids) -> (ServiceId, PlanId) {
    match ids {
        Ids::Listed(i) => (valid[i].0.into(), valid[i].1.into()),
        Ids::UnknownService(s, p) => (s, PLANS[p].1.into()),
        Ids::UnknownPlan(s, p) => (valid[s].0.into(), p),
        Ids::ForeignPlan(s, p) => {
            let service = valid[s].0;
            // The first plan of another offering.
            let plan = PLANS
                .iter()
                .cycle()
                .skip(p)
                .take(PLANS.len())
                .find(|(svc, _)| *svc != service)
                .map_or(PLANS[p].1, |(_, plan)| *plan);
            (service.into(), plan.into())
        }
    }
}

/// (offering, plan) pairs: mostly from `valid`, sometimes an unknown offering, an unknown plan,
/// or the plan of another offering.
pub fn arb_plan_ids(
    valid: &'static [(&'static str, &'static str)],
) -> impl Strategy<Value = (ServiceId, PlanId)> {
    let n = valid.len();
    prop_oneof![
        12 => (0..n).prop_map(Ids::Listed),
        1 => (arb_id::<ServiceId>(), 0..PLANS.len()).prop_map(|(s, p)| Ids::UnknownService(s, p)),
        1 => (0..n, arb_id::<PlanId>()).prop_map(|(s, p)| Ids::UnknownPlan(s, p)),
        1 => (0..n, 0..PLANS.len()).prop_map(|(s, p)| Ids::ForeignPlan(s, p)),
    ]
    .prop_map(move |ids| resolve(valid, ids))
}

/// A context the client accepts: a context of another platform always names it.
pub fn arb_valid_context() -> impl Strategy<Value = Context> {
    arb_context().prop_map(|context| match context {
        Context::Other(mut map) => {
            let named = matches!(map.get("platform"), Some(Value::String(p)) if !p.is_empty());
            if !named {
                map.insert("platform".into(), Value::String("x-platform".into()));
            }
            Context::Other(map)
        }
        other => other,
    })
}

/// An originating identity of each platform, and (rarely) one of another platform whose name a
/// header cannot carry (empty, with spaces, non-ASCII), which the client must refuse.
pub fn arb_identity() -> impl Strategy<Value = OriginatingIdentity> {
    let odd = ("[ a-zé]{0,2}[ é][a-z ]{0,2}", arb_object())
        .prop_map(|(platform, value)| OriginatingIdentity::Other { platform, value });
    prop_oneof![12 => arb_originating_identity(), 1 => odd]
}

/// Whether an originating identity contradicts a context's platform (the server refuses that).
pub fn identity_contradicts(
    identity: Option<&OriginatingIdentity>,
    context: Option<&Context>,
) -> bool {
    match (identity, context.and_then(Context::platform)) {
        (Some(identity), Some(platform)) => identity.platform() != platform,
        _ => false,
    }
}

/// A body's context and the originating identity sent with it: usually consistent, sometimes
/// contradicting each other.
pub fn arb_context_and_identity()
-> impl Strategy<Value = (Option<Context>, Option<OriginatingIdentity>)> {
    (
        proptest::option::of(arb_valid_context()),
        proptest::option::of(arb_identity()),
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(context, identity, contradict)| {
            if !contradict && identity_contradicts(identity.as_ref(), context.as_ref()) {
                (context, None)
            } else {
                (context, identity)
            }
        })
}

/// How `maintenance_info` is chosen.
#[derive(Clone, Copy, Debug)]
enum Maintenance {
    /// Left out.
    Absent,
    /// The plan's version (or left out if the plan has none).
    PlansOwn,
    /// A valid SemVer version the catalog does not use.
    Other,
}

fn arb_maintenance() -> impl Strategy<Value = Maintenance> {
    prop_oneof![
        3 => Just(Maintenance::Absent),
        3 => Just(Maintenance::PlansOwn),
        1 => Just(Maintenance::Other),
    ]
}

/// The catalog's maintenance version of a plan.
fn plan_maintenance(plan_id: &str) -> Option<&'static str> {
    match plan_id {
        crate::catalog::PLAN_A_BASIC => Some(MAINTENANCE_A),
        crate::catalog::PLAN_B_BINDABLE => Some(MAINTENANCE_B),
        _ => None,
    }
}

/// Replaces the version of a generated `maintenance_info` (any text) with a SemVer one.
fn choose_maintenance(
    generated: Option<MaintenanceInfo>,
    choice: Maintenance,
    plan_id: &str,
) -> Option<MaintenanceInfo> {
    let version = match choice {
        Maintenance::Absent => return None,
        Maintenance::PlansOwn => plan_maintenance(plan_id)?,
        Maintenance::Other => "9.9.9-other+x",
    };
    let mut info = generated.unwrap_or_else(|| MaintenanceInfo::new(version));
    info.version = version.to_string();
    Some(info)
}

/// How `parameters` are chosen.
#[derive(Clone, Copy, Debug)]
enum Parameters {
    /// As generated (free-form), made valid for the plan's schema.
    Valid,
    /// Made invalid for the plan's schema (no effect on plans without one).
    Invalid,
}

fn arb_parameters_choice() -> impl Strategy<Value = Parameters> {
    prop_oneof![6 => Just(Parameters::Valid), 1 => Just(Parameters::Invalid)]
}

/// Which schema of a plan applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Schema {
    Create,
    Update,
    Bind,
}

fn has_schema(plan_id: &str, schema: Schema) -> bool {
    match schema {
        Schema::Create | Schema::Update => plan_id == PLAN_A_SCHEMA,
        Schema::Bind => plan_id == PLAN_A_SCHEMA || plan_id == crate::catalog::PLAN_C,
    }
}

fn choose_parameters(
    generated: Option<Map<String, Value>>,
    size: u64,
    choice: Parameters,
    plan_id: &str,
    schema: Schema,
) -> Option<Map<String, Value>> {
    if !has_schema(plan_id, schema) {
        return generated;
    }
    let key = if schema == Schema::Bind {
        "role"
    } else {
        "size"
    };
    match choice {
        Parameters::Valid => {
            let mut map = match (generated, schema) {
                (Some(map), _) => map,
                (None, Schema::Create) => Map::new(),
                (None, _) => return None,
            };
            let value = if schema == Schema::Bind {
                Value::String(
                    if size.is_multiple_of(2) {
                        "reader"
                    } else {
                        "writer"
                    }
                    .into(),
                )
            } else {
                Value::from(size.max(1))
            };
            if schema == Schema::Bind && size.is_multiple_of(3) {
                map.shift_remove(key);
            } else {
                map.insert(key.into(), value);
            }
            Some(map)
        }
        Parameters::Invalid => {
            let mut map = generated.unwrap_or_default();
            let value = match size % 3 {
                0 => Value::from(0),
                1 => Value::String("large".into()),
                _ => Value::Null,
            };
            if schema == Schema::Create && size.is_multiple_of(4) {
                map.shift_remove(key);
            } else {
                map.insert(key.into(), value);
            }
            Some(map)
        }
    }
}

/// A provision body for the catalog, and the originating identity sent with it.
pub fn arb_provision_request()
-> impl Strategy<Value = (ServiceInstanceProvisionRequest, Option<OriginatingIdentity>)> {
    (
        arb_service_instance_provision_request(),
        arb_plan_ids(PLANS),
        arb_context_and_identity(),
        (arb_maintenance(), arb_parameters_choice(), any::<u64>()),
    )
        .prop_map(
            |(mut request, (service_id, plan_id), (context, identity), (m, p, size))| {
                request.maintenance_info =
                    choose_maintenance(request.maintenance_info, m, &plan_id);
                request.parameters =
                    choose_parameters(request.parameters, size, p, &plan_id, Schema::Create);
                request.service_id = service_id;
                request.plan_id = plan_id;
                request.context = context;
                (request, identity)
            },
        )
}

/// How an update names plans.
#[derive(Clone, Debug)]
enum UpdatePlans {
    /// No `plan_id`, no previous plan.
    Neither,
    /// A `plan_id` (from the ids strategy), no previous plan.
    New,
    /// A previous plan of the same offering, no `plan_id`.
    Previous(usize),
    /// A plan change: `plan_id` and a previous plan of the same offering.
    Change(usize),
    /// A previous plan that is any plan of the catalog, or not in it.
    PreviousAnywhere(Option<usize>),
}

fn arb_update_plans() -> impl Strategy<Value = UpdatePlans> {
    prop_oneof![
        2 => Just(UpdatePlans::Neither),
        2 => Just(UpdatePlans::New),
        2 => (0..PLANS.len()).prop_map(UpdatePlans::Previous),
        4 => (0..PLANS.len()).prop_map(UpdatePlans::Change),
        1 => proptest::option::of(0..PLANS.len()).prop_map(UpdatePlans::PreviousAnywhere),
    ]
}

/// A plan of `service`, picked by `i`, or `None` for an offering not in the catalog.
fn plan_of(service: &str, i: usize) -> Option<PlanId> {
    let plans: Vec<&str> = PLANS
        .iter()
        .filter(|(s, _)| *s == service)
        .map(|(_, p)| *p)
        .collect();
    (!plans.is_empty()).then(|| PlanId::from(plans[i % plans.len()]))
}

/// An update body for the catalog, and the originating identity sent with it.
pub fn arb_update_request()
-> impl Strategy<Value = (ServiceInstanceUpdateRequest, Option<OriginatingIdentity>)> {
    (
        arb_service_instance_update_request(),
        arb_plan_ids(PLANS),
        arb_update_plans(),
        arb_context_and_identity(),
        (
            arb_maintenance(),
            arb_parameters_choice(),
            any::<u64>(),
            arb_id::<PlanId>(),
        ),
    )
        .prop_map(
            |(
                mut request,
                (service_id, plan_id),
                plans,
                (context, identity),
                (m, p, size, stray_plan),
            )| {
                let (new_plan, previous_plan) = match plans {
                    UpdatePlans::Neither => (None, None),
                    UpdatePlans::New => (Some(plan_id), None),
                    UpdatePlans::Previous(i) => (None, plan_of(&service_id, i)),
                    UpdatePlans::Change(i) => (Some(plan_id), plan_of(&service_id, i)),
                    UpdatePlans::PreviousAnywhere(i) => (
                        None,
                        Some(i.map_or(stray_plan, |i| PlanId::from(PLANS[i].1))),
                    ),
                };
                if let Some(previous) = &mut request.previous_values {
                    // Any SemVer version: previous values are informational.
                    if let Some(info) = &mut previous.maintenance_info {
                        info.version = format!("0.{}.0", size % 7);
                    }
                    previous.plan_id = previous_plan;
                } else if let Some(previous_plan) = previous_plan {
                    request.previous_values = Some(
                        osb_types::ServiceInstancePreviousValues::new().with_plan_id(previous_plan),
                    );
                }
                let target = new_plan
                    .clone()
                    .or_else(|| request.previous_values.as_ref()?.plan_id.clone())
                    .unwrap_or_default();
                request.maintenance_info = choose_maintenance(request.maintenance_info, m, &target);
                request.parameters =
                    choose_parameters(request.parameters, size, p, &target, Schema::Update);
                request.service_id = service_id;
                request.plan_id = new_plan;
                request.context = context;
                (request, identity)
            },
        )
}

/// A bind body for the catalog, and the originating identity sent with it.
pub fn arb_bind_request()
-> impl Strategy<Value = (ServiceBindingRequest, Option<OriginatingIdentity>)> {
    let ids = prop_oneof![
        6 => arb_plan_ids(BINDABLE_PLANS),
        1 => arb_plan_ids(PLANS),
    ];
    (
        arb_service_binding_request(),
        ids,
        arb_context_and_identity(),
        (
            arb_parameters_choice(),
            any::<u64>(),
            proptest::bool::weighted(0.8),
            proptest::bool::weighted(0.4),
        ),
    )
        .prop_map(
            |(
                mut request,
                (service_id, plan_id),
                (context, identity),
                (p, size, follow, minimal),
            )| {
                // Rotation is allowed on rotatable plans only; mostly follow that rule.
                let rotatable = plan_id == crate::catalog::PLAN_A_BASIC;
                if follow && !rotatable {
                    request.predecessor_binding_id = None;
                }
                request.parameters =
                    choose_parameters(request.parameters, size, p, &plan_id, Schema::Bind);
                request.context = context;
                if minimal && request.is_rotation() {
                    // A rotation as the spec shapes it: no ids, and mostly no parameters.
                    if size % 3 != 0 {
                        request.parameters = None;
                    }
                    return (request, identity);
                }
                request.service_id = Some(service_id);
                request.plan_id = Some(plan_id);
                (request, identity)
            },
        )
}

/// `service_id` / `plan_id` hints for fetch and last-operation queries: absent, from the catalog,
/// or unknown.
pub fn arb_hints() -> impl Strategy<Value = (Option<ServiceId>, Option<PlanId>)> {
    let services = vec![SERVICE_A, SERVICE_B, SERVICE_C];
    let service = prop_oneof![
        1 => Just(None),
        3 => select(services).prop_map(|s| Some(ServiceId::from(s))),
        1 => arb_id::<ServiceId>().prop_map(Some),
    ];
    let plan = prop_oneof![
        1 => Just(None),
        2 => select(PLANS.to_vec()).prop_map(|(_, p)| Some(PlanId::from(p))),
        1 => arb_id::<PlanId>().prop_map(Some),
    ];
    (service, plan)
}

/// An `operation` value for a last-operation query: absent, an id, or longer than the spec
/// allows (10,000 characters).
pub fn arb_operation() -> impl Strategy<Value = Option<osb_types::OperationId>> {
    prop_oneof![
        2 => Just(None),
        6 => arb_id::<osb_types::OperationId>().prop_map(Some),
        1 => (10_001usize..10_010).prop_map(|n| Some(osb_types::OperationId::from("o".repeat(n)))),
    ]
}
