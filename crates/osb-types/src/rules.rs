//! The protocol rules that tie a request to the catalog, in one place.
//!
//! A broker (osb-server's guards) and a platform (osb-client's `check_*`) ask the same
//! questions of a request: does the plan belong to the offering, is it bindable, may the plan
//! change, may the binding rotate, does `maintenance_info` match, do the `parameters` fit the
//! plan's schema. Each question is one function here, returning a typed [`Violation`]; callers
//! decide which rules apply where (their policy) and how a violation is answered.
//!
//! Every rule has a stable id ([`Rule::id`]) that tools and docs cite.
//!
//! ```
//! use osb_types::rules::{self, Rule};
//! use osb_types::{Catalog, Plan, PlanId, Service, ServiceId};
//!
//! let plan = Plan::new(PlanId::new("p-1"), "small", "A small plan").with_bindable(false);
//! let catalog = Catalog::new([Service::new("db", ServiceId::new("s-1"), "A database", true, [plan])]);
//! assert!(rules::known_plan(&catalog, "s-1", "p-1").is_ok());
//! let violation = rules::bindable(&catalog, "s-1", "p-1").unwrap_err();
//! assert_eq!(violation.rule, Rule::Bindable);
//! assert_eq!(violation.rule.id(), "bindable");
//! assert_eq!(violation.path, "plan_id");
//! assert_eq!(violation.to_string(), "the plan \"small\" is not bindable");
//! ```

use std::fmt;

use crate::{
    Catalog, CatalogIndex, MaintenanceInfo, Plan, Service, ServiceBindingRequest, ServiceId,
};

/// A catalog the rules can look things up in: [`Catalog`] (a linear scan) or [`CatalogIndex`].
pub trait CatalogLookup {
    /// Every offering, in catalog order.
    fn offerings(&self) -> &[Service];
    /// The offering with this id.
    fn offering(&self, service_id: &str) -> Option<&Service>;
    /// The plan with this id, wherever it is, with its offering.
    fn plan_anywhere(&self, plan_id: &str) -> Option<(&Service, &Plan)>;
}

impl CatalogLookup for Catalog {
    fn offerings(&self) -> &[Service] {
        &self.services
    }
    fn offering(&self, service_id: &str) -> Option<&Service> {
        self.service(service_id)
    }
    fn plan_anywhere(&self, plan_id: &str) -> Option<(&Service, &Plan)> {
        self.find_plan(plan_id)
    }
}

impl CatalogLookup for CatalogIndex {
    fn offerings(&self) -> &[Service] {
        &self.catalog().services
    }
    fn offering(&self, service_id: &str) -> Option<&Service> {
        self.service(service_id)
    }
    fn plan_anywhere(&self, plan_id: &str) -> Option<(&Service, &Plan)> {
        self.find_plan(plan_id)
    }
}

/// A protocol rule that relates a request to the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rule {
    /// `service_id` is an offering of the catalog.
    KnownService,
    /// `plan_id` is a plan of the offering `service_id`.
    PlanOfOffering,
    /// A bind is only for an (effectively) bindable plan.
    Bindable,
    /// `predecessor_binding_id` only for a plan with `binding_rotatable: true`.
    BindingRotatable,
    /// A plan change only from an (effectively) `plan_updateable` plan.
    PlanUpdateable,
    /// A context-only update only for an offering with `allow_context_updates: true`.
    AllowContextUpdates,
    /// `maintenance_info.version` equals the plan's in the catalog.
    MaintenanceInfoVersion,
    /// `parameters` are valid against the plan's JSON schema for the request.
    ParametersSchema,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 8] = [
        Rule::KnownService,
        Rule::PlanOfOffering,
        Rule::Bindable,
        Rule::BindingRotatable,
        Rule::PlanUpdateable,
        Rule::AllowContextUpdates,
        Rule::MaintenanceInfoVersion,
        Rule::ParametersSchema,
    ];

    /// The rule's stable id, cited by tools and docs.
    pub const fn id(self) -> &'static str {
        match self {
            Rule::KnownService => "known-service",
            Rule::PlanOfOffering => "plan-of-offering",
            Rule::Bindable => "bindable",
            Rule::BindingRotatable => "binding-rotatable",
            Rule::PlanUpdateable => "plan-updateable",
            Rule::AllowContextUpdates => "allow-context-updates",
            Rule::MaintenanceInfoVersion => "maintenance-info-version",
            Rule::ParametersSchema => "parameters-schema",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// What exactly a request got wrong, with what an answer needs to explain it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// `service_id` is not an offering of the catalog.
    UnknownService {
        /// The requested `service_id`.
        service_id: String,
    },
    /// `plan_id` is not a plan of the offering (and of no other offering either).
    UnknownPlan {
        /// The requested `plan_id`.
        plan_id: String,
        /// The requested offering.
        service_id: ServiceId,
        /// Its name.
        service_name: String,
    },
    /// `plan_id` is a plan of another offering.
    PlanOfAnotherOffering {
        /// The requested `plan_id`.
        plan_id: String,
        /// The plan's name.
        plan_name: String,
        /// The requested offering.
        service_id: ServiceId,
        /// Its name.
        service_name: String,
        /// The offering the plan belongs to.
        owner_id: ServiceId,
        /// Its name.
        owner_name: String,
    },
    /// The plan is not bindable.
    NotBindable {
        /// The plan's name.
        plan_name: String,
        /// The offering's name.
        service_name: String,
    },
    /// The plan does not rotate bindings.
    NotRotatable {
        /// The plan's name.
        plan_name: String,
        /// The offering's name.
        service_name: String,
    },
    /// A rotation names no plan, and no plan of the catalog rotates bindings.
    NoRotatablePlan,
    /// The current plan cannot be changed.
    NotPlanUpdateable {
        /// The current plan's name (its id when the catalog no longer has it).
        plan_name: String,
        /// The offering's name.
        service_name: String,
    },
    /// The offering accepts no context-only updates.
    NoContextUpdates {
        /// The offering's name.
        service_name: String,
    },
    /// `maintenance_info.version` differs from the plan's, or the plan has none.
    MaintenanceInfoMismatch {
        /// The version the request sent.
        requested: String,
        /// The plan's version in the catalog, if it has one.
        current: Option<String>,
        /// The plan's name.
        plan_name: String,
    },
    /// `parameters` fail the plan's schema.
    #[cfg(feature = "json-schema")]
    InvalidParameters {
        /// Which of the plan's schemas applied.
        schema: ParametersFor,
        /// How they fail it.
        violations: Vec<crate::SchemaViolation>,
    },
}

/// A request that breaks a [`Rule`]: where, which rule, and the details.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Violation {
    /// The request field at fault: `service_id`, `plan_id`, `predecessor_binding_id`,
    /// `maintenance_info.version`, `context` or `parameters`.
    pub path: &'static str,
    /// The rule broken.
    pub rule: Rule,
    /// What exactly is wrong (boxed: a violation travels in `Err`).
    pub kind: Box<ViolationKind>,
}

impl Violation {
    fn new(path: &'static str, rule: Rule, kind: ViolationKind) -> Self {
        Violation {
            path,
            rule,
            kind: Box::new(kind),
        }
    }
}

impl fmt::Display for Violation {
    /// A short account of the violation (without the field, which is [`path`](Self::path)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.kind {
            ViolationKind::UnknownService { service_id } => {
                write!(f, "{service_id:?} is not an offering of the catalog")
            }
            ViolationKind::UnknownPlan {
                plan_id,
                service_id,
                ..
            }
            | ViolationKind::PlanOfAnotherOffering {
                plan_id,
                service_id,
                ..
            } => write!(
                f,
                "{plan_id:?} is not a plan of the offering {:?}",
                service_id.as_str()
            ),
            ViolationKind::NotBindable { plan_name, .. } => {
                write!(f, "the plan {plan_name:?} is not bindable")
            }
            ViolationKind::NotRotatable { plan_name, .. } => write!(
                f,
                "the plan {plan_name:?} does not allow binding rotation (binding_rotatable)"
            ),
            ViolationKind::NoRotatablePlan => {
                f.write_str("no plan of the catalog allows binding rotation (binding_rotatable)")
            }
            ViolationKind::NotPlanUpdateable { plan_name, .. } => write!(
                f,
                "the plan {plan_name:?} does not allow plan changes (plan_updateable)"
            ),
            ViolationKind::NoContextUpdates { service_name } => write!(
                f,
                "the offering {service_name:?} accepts no context-only updates (allow_context_updates)"
            ),
            ViolationKind::MaintenanceInfoMismatch {
                requested,
                current: Some(current),
                plan_name,
            } => write!(
                f,
                "{requested:?} is not the maintenance version {current:?} of the plan {plan_name:?}"
            ),
            ViolationKind::MaintenanceInfoMismatch {
                requested,
                current: None,
                plan_name,
            } => write!(
                f,
                "{requested:?} was sent, but the plan {plan_name:?} has no maintenance_info"
            ),
            #[cfg(feature = "json-schema")]
            ViolationKind::InvalidParameters { violations, .. } => {
                let parts: Vec<String> = violations.iter().map(ToString::to_string).collect();
                write!(f, "do not match the plan's schema: {}", parts.join("; "))
            }
        }
    }
}

impl std::error::Error for Violation {}

fn unknown_service(service_id: &str) -> Violation {
    Violation::new(
        "service_id",
        Rule::KnownService,
        ViolationKind::UnknownService {
            service_id: service_id.to_string(),
        },
    )
}

/// [`Rule::KnownService`]: the offering `service_id`.
pub fn known_service<'c, C: CatalogLookup + ?Sized>(
    catalog: &'c C,
    service_id: &str,
) -> Result<&'c Service, Violation> {
    catalog
        .offering(service_id)
        .ok_or_else(|| unknown_service(service_id))
}

/// [`Rule::KnownService`] and [`Rule::PlanOfOffering`]: the offering `service_id` and its plan
/// `plan_id`.
pub fn known_plan<'c, C: CatalogLookup + ?Sized>(
    catalog: &'c C,
    service_id: &str,
    plan_id: &str,
) -> Result<(&'c Service, &'c Plan), Violation> {
    let service = known_service(catalog, service_id)?;
    if let Some(plan) = service.plan(plan_id) {
        return Ok((service, plan));
    }
    let kind = match catalog.plan_anywhere(plan_id) {
        Some((owner, plan)) => ViolationKind::PlanOfAnotherOffering {
            plan_id: plan_id.to_string(),
            plan_name: plan.name.clone(),
            service_id: service.id.clone(),
            service_name: service.name.clone(),
            owner_id: owner.id.clone(),
            owner_name: owner.name.clone(),
        },
        None => ViolationKind::UnknownPlan {
            plan_id: plan_id.to_string(),
            service_id: service.id.clone(),
            service_name: service.name.clone(),
        },
    };
    Err(Violation::new("plan_id", Rule::PlanOfOffering, kind))
}

/// The offering and plan when both are known; the rules below pass what they cannot look up
/// (whether unknown ids are refused is [`known_plan`]'s business, and the caller's policy).
fn lookup<'c, C: CatalogLookup + ?Sized>(
    catalog: &'c C,
    service_id: &str,
    plan_id: &str,
) -> Option<(&'c Service, &'c Plan)> {
    let service = catalog.offering(service_id)?;
    Some((service, service.plan(plan_id)?))
}

/// [`Rule::Bindable`]: a bind needs an effectively bindable plan. Unknown ids pass.
pub fn bindable<C: CatalogLookup + ?Sized>(
    catalog: &C,
    service_id: &str,
    plan_id: &str,
) -> Result<(), Violation> {
    match lookup(catalog, service_id, plan_id) {
        Some((service, plan)) if !plan.effective_bindable(service) => Err(Violation::new(
            "plan_id",
            Rule::Bindable,
            ViolationKind::NotBindable {
                plan_name: plan.name.clone(),
                service_name: service.name.clone(),
            },
        )),
        _ => Ok(()),
    }
}

/// [`Rule::BindingRotatable`]: a rotation (`predecessor_binding_id`) needs a plan with
/// `binding_rotatable: true`. A rotation may name no `service_id`/`plan_id` (the broker knows
/// the predecessor's); then some plan of the catalog must rotate bindings. A bind that is no
/// rotation, and unknown ids, pass.
pub fn binding_rotatable<C: CatalogLookup + ?Sized>(
    catalog: &C,
    body: &ServiceBindingRequest,
) -> Result<(), Violation> {
    if !body.is_rotation() {
        return Ok(());
    }
    let (Some(service_id), Some(plan_id)) = (&body.service_id, &body.plan_id) else {
        let rotates = catalog
            .offerings()
            .iter()
            .flat_map(|s| &s.plans)
            .any(Plan::effective_binding_rotatable);
        return if rotates {
            Ok(())
        } else {
            Err(Violation::new(
                "predecessor_binding_id",
                Rule::BindingRotatable,
                ViolationKind::NoRotatablePlan,
            ))
        };
    };
    match lookup(catalog, service_id, plan_id) {
        Some((service, plan)) if !plan.effective_binding_rotatable() => Err(Violation::new(
            "predecessor_binding_id",
            Rule::BindingRotatable,
            ViolationKind::NotRotatable {
                plan_name: plan.name.clone(),
                service_name: service.name.clone(),
            },
        )),
        _ => Ok(()),
    }
}

/// [`Rule::PlanUpdateable`]: changing from `current_plan` to `new_plan` needs the current plan
/// to be effectively `plan_updateable` (the offering's flag when the catalog no longer has the
/// current plan). The same plan is no change; an unknown offering passes.
pub fn plan_updateable<C: CatalogLookup + ?Sized>(
    catalog: &C,
    service_id: &str,
    current_plan: &str,
    new_plan: &str,
) -> Result<(), Violation> {
    if current_plan == new_plan {
        return Ok(());
    }
    let Some(service) = catalog.offering(service_id) else {
        return Ok(());
    };
    let current = service.plan(current_plan);
    let updateable = match current {
        Some(plan) => plan.effective_plan_updateable(service),
        None => service.plan_updateable.unwrap_or(false),
    };
    if updateable {
        return Ok(());
    }
    Err(Violation::new(
        "plan_id",
        Rule::PlanUpdateable,
        ViolationKind::NotPlanUpdateable {
            plan_name: current
                .map_or(current_plan, |p| p.name.as_str())
                .to_string(),
            service_name: service.name.clone(),
        },
    ))
}

/// [`Rule::AllowContextUpdates`]: an update that changes only the context needs the
/// offering's `allow_context_updates: true`. An unknown offering passes. Which updates are
/// context-only, and from which version the rule holds
/// ([`Service::ALLOW_CONTEXT_UPDATES_SINCE`](crate::Service::ALLOW_CONTEXT_UPDATES_SINCE)), is the caller's to say.
pub fn allow_context_updates<C: CatalogLookup + ?Sized>(
    catalog: &C,
    service_id: &str,
) -> Result<(), Violation> {
    match catalog.offering(service_id) {
        Some(service) if !service.allow_context_updates_or_default() => Err(Violation::new(
            "context",
            Rule::AllowContextUpdates,
            ViolationKind::NoContextUpdates {
                service_name: service.name.clone(),
            },
        )),
        _ => Ok(()),
    }
}

/// [`Rule::MaintenanceInfoVersion`]: a requested `maintenance_info.version` equals the
/// plan's. Unknown ids pass.
pub fn maintenance_info_version<C: CatalogLookup + ?Sized>(
    catalog: &C,
    service_id: &str,
    plan_id: &str,
    requested: &MaintenanceInfo,
) -> Result<(), Violation> {
    let Some((_, plan)) = lookup(catalog, service_id, plan_id) else {
        return Ok(());
    };
    let current = match &plan.maintenance_info {
        Some(current) if current.version == requested.version => return Ok(()),
        Some(current) => Some(current.version.clone()),
        None => None,
    };
    Err(Violation::new(
        "maintenance_info.version",
        Rule::MaintenanceInfoVersion,
        ViolationKind::MaintenanceInfoMismatch {
            requested: requested.version.clone(),
            current,
            plan_name: plan.name.clone(),
        },
    ))
}

/// Which request's `parameters` a plan schema applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParametersFor {
    /// Provision: `schemas.service_instance.create`.
    InstanceCreate,
    /// Update: `schemas.service_instance.update`.
    InstanceUpdate,
    /// Bind: `schemas.service_binding.create`.
    BindingCreate,
}

impl ParametersFor {
    /// The schema's path in the plan, e.g. `schemas.service_instance.create.parameters`.
    pub const fn path(self) -> &'static str {
        match self {
            ParametersFor::InstanceCreate => "schemas.service_instance.create.parameters",
            ParametersFor::InstanceUpdate => "schemas.service_instance.update.parameters",
            ParametersFor::BindingCreate => "schemas.service_binding.create.parameters",
        }
    }
}

/// The plan whose update schema checks an update's `parameters`: the new plan, else the one in
/// `previous_values`, else `current` (what the caller knows of the instance).
pub fn update_plan<'a>(
    body: &'a crate::ServiceInstanceUpdateRequest,
    current: Option<&'a crate::PlanId>,
) -> Option<&'a crate::PlanId> {
    body.plan_id
        .as_ref()
        .or_else(|| body.previous_values.as_ref()?.plan_id.as_ref())
        .or(current)
}

/// Whether a bind's `parameters` are checked at all: a rotation without `parameters` reuses
/// the predecessor's, so there is nothing to check.
pub fn bind_parameters_checked(body: &ServiceBindingRequest) -> bool {
    !(body.is_rotation() && body.parameters.is_none())
}

/// [`Rule::ParametersSchema`]: `parameters` are valid against the plan's schema for the
/// request. Absent parameters count as `{}` for provision and bind (so missing required
/// properties are reported) and are not checked for an update (absent means "unchanged"). A
/// plan without a schema for the request accepts anything.
#[cfg(feature = "json-schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "json-schema")))]
pub fn parameters_schema(
    schemas: &crate::PlanSchemas,
    which: ParametersFor,
    parameters: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<(), Violation> {
    use serde_json::{Map, Value};
    let schema = match which {
        ParametersFor::InstanceCreate => &schemas.instance_create,
        ParametersFor::InstanceUpdate => &schemas.instance_update,
        ParametersFor::BindingCreate => &schemas.binding_create,
    };
    let Some(schema) = schema else { return Ok(()) };
    let value = match parameters {
        Some(map) => Value::Object(map.clone()),
        None if which == ParametersFor::InstanceUpdate => return Ok(()),
        None => Value::Object(Map::new()),
    };
    schema.validate(&value).map_err(|violations| {
        Violation::new(
            "parameters",
            Rule::ParametersSchema,
            ViolationKind::InvalidParameters {
                schema: which,
                violations,
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PlanId, ServiceId};

    fn catalog() -> Catalog {
        let small = Plan::new(PlanId::new("p-small"), "small", "d").with_binding_rotatable(false);
        let large = Plan::new(PlanId::new("p-large"), "large", "d").with_binding_rotatable(true);
        let other = Plan::new(PlanId::new("p-other"), "other", "d");
        Catalog::new([
            Service::new("db", ServiceId::new("s-db"), "d", true, [small, large]),
            Service::new("mq", ServiceId::new("s-mq"), "d", false, [other]),
        ])
    }

    #[test]
    fn rule_ids_are_unique() {
        let mut ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
    }

    #[test]
    fn ids_are_looked_up_in_the_catalog_and_its_index() {
        let catalog = catalog();
        let index = catalog.index();
        for lookup in [&catalog as &dyn CatalogLookup, &index] {
            assert!(known_plan(lookup, "s-db", "p-small").is_ok());
            assert_eq!(
                known_plan(lookup, "s-x", "p-small").unwrap_err().rule,
                Rule::KnownService
            );
            let other = known_plan(lookup, "s-db", "p-other").unwrap_err();
            assert!(matches!(
                *other.kind,
                ViolationKind::PlanOfAnotherOffering { ref owner_name, .. } if owner_name == "mq"
            ));
            let unknown = known_plan(lookup, "s-db", "p-none").unwrap_err();
            assert_eq!(
                unknown.to_string(),
                "\"p-none\" is not a plan of the offering \"s-db\""
            );
        }
    }

    #[test]
    fn rotations_without_ids_need_some_rotating_plan() {
        let rotation = ServiceBindingRequest::default().with_predecessor_binding_id("b-0");
        assert!(binding_rotatable(&catalog(), &rotation).is_ok());
        let none = Catalog::new([Service::new(
            "db",
            ServiceId::new("s"),
            "d",
            true,
            [Plan::new(PlanId::new("p"), "p", "d")],
        )]);
        assert_eq!(
            *binding_rotatable(&none, &rotation).unwrap_err().kind,
            ViolationKind::NoRotatablePlan
        );
        let named = ServiceBindingRequest::new("s-db", "p-small").with_predecessor_binding_id("b");
        assert_eq!(
            binding_rotatable(&catalog(), &named).unwrap_err().rule,
            Rule::BindingRotatable
        );
    }
}
