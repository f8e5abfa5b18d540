//! Spec guards: checks against the catalog that run before the broker is called.

use std::collections::HashMap;

use http::StatusCode;
use osb_types::rules::{self, ParametersFor, Violation, ViolationKind};
use osb_types::schema::{PlanSchemas, SchemaViolation};
use osb_types::{
    CatalogIndex, ErrorCode, ErrorResponse, MaintenanceInfo, OperationId, PlanId, Service,
    ServiceBindingRequest, validate_operation,
};
use serde_json::{Map, Value};

use crate::error::Rejection;

/// Which spec guards run before the broker is called; all are on by default.
///
/// Each guard answers with an OSB error body whose description says what to change:
///
/// | Guard | Applies to | Answer |
/// |---|---|---|
/// | [`known_ids`](Self::known_ids) | provision, and an update that chooses a plan (its `plan_id` differs from `previous_values.plan_id`, or there are no previous values) | `400` when `service_id` is not in the catalog or `plan_id` is not one of its plans |
/// | [`strict_ids`](Self::strict_ids) (off by default) | also update, deprovision, bind and unbind of existing resources | the same `400` |
/// | [`bindable`](Self::bindable) | bind | `400` when the plan is not (effectively) bindable |
/// | [`binding_rotation`](Self::binding_rotation) | bind | `400` when `predecessor_binding_id` is sent for a plan without `binding_rotatable` (or, when the rotation names no plan, when no plan of the catalog rotates bindings) |
/// | [`plan_updateable`](Self::plan_updateable) | update | `422` when the plan changes and the current plan is not (effectively) `plan_updateable` |
/// | [`context_updates`](Self::context_updates) | update | `422` when only `context` changes (no `plan_id`, `parameters` or `maintenance_info`) and the offering does not set `allow_context_updates: true`; platforms declaring OSB 2.15 or later only, since the flag appeared then |
/// | [`retrievable`](Self::retrievable) | fetch instance, fetch binding | `400` when the offering (or, without a `service_id` hint, every offering) lacks `instances_retrievable` / `bindings_retrievable` |
/// | [`maintenance_info`](Self::maintenance_info) | provision, update | `422 MaintenanceInfoConflict` when `maintenance_info.version` differs from the plan's |
/// | [`parameters`](Self::parameters) | provision, update, bind | `400` listing the JSON pointers of `parameters` that fail the plan's schema; a rotation that sends no `parameters` is not checked (the broker reuses the predecessor's) |
/// | [`operation_length`](Self::operation_length) | last operation (request), 202 replies | `400` for an `operation` over 10,000 characters; a broker's over-long token is a `500` |
///
/// Required query parameters on DELETE and well-formed bodies are not guards: they are always
/// checked, since the typed request cannot exist without them.
///
/// **Retired plans.** The spec lets a broker remove plans (and offerings) from its catalog at
/// any time, while instances of them live on; a delete must then carry the instance's old
/// `plan_id`, and Cloud Controller sends the current `plan_id` with every update. So by default
/// the ids are checked against the catalog only where a plan is being *chosen*: every other
/// request on an existing resource (deprovision, unbind, bind, polls, fetches, updates that keep
/// the plan) reaches the broker, which decides through its own records. Turn on
/// [`strict_ids`](Self::strict_ids) for a broker that never retires plans and wants unknown
/// ids refused everywhere.
///
/// ```
/// use osb_server::Guards;
/// let guards = Guards::default().parameters(false);
/// assert!(guards.known_ids && !guards.parameters && !guards.strict_ids);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Guards {
    /// Where a plan is chosen (provision, an update changing the plan), `service_id` and
    /// `plan_id` exist and the plan belongs to the offering.
    pub known_ids: bool,
    /// The `known_ids` check on every request that names a plan, existing resources included.
    /// Off by default: it locks in the instances of retired plans.
    pub strict_ids: bool,
    /// Bind only on effectively bindable plans.
    pub bindable: bool,
    /// `predecessor_binding_id` only on plans with `binding_rotatable: true`.
    pub binding_rotation: bool,
    /// Plan changes only from effectively `plan_updateable` plans.
    pub plan_updateable: bool,
    /// Context-only updates only for offerings with `allow_context_updates: true`.
    pub context_updates: bool,
    /// Fetch endpoints only for offerings with `instances_retrievable` / `bindings_retrievable`.
    pub retrievable: bool,
    /// `maintenance_info.version` equals the catalog's.
    pub maintenance_info: bool,
    /// `parameters` valid against the plan's JSON schemas.
    pub parameters: bool,
    /// `operation` at most 10,000 characters.
    pub operation_length: bool,
}

impl Default for Guards {
    /// Every guard on but [`strict_ids`](Self::strict_ids).
    fn default() -> Self {
        Self::all().strict_ids(false)
    }
}

macro_rules! setter {
    ($($field:ident => $name:ident),* $(,)?) => {
        $(
            #[doc = concat!("Turns the `", stringify!($field), "` guard on or off.")]
            #[must_use]
            pub fn $name(mut self, on: bool) -> Self {
                self.$field = on;
                self
            }
        )*
    };
}

impl Guards {
    /// Every guard on, [`strict_ids`](Self::strict_ids) included (the default leaves it off).
    pub const fn all() -> Self {
        Guards {
            known_ids: true,
            strict_ids: true,
            bindable: true,
            binding_rotation: true,
            plan_updateable: true,
            context_updates: true,
            retrievable: true,
            maintenance_info: true,
            parameters: true,
            operation_length: true,
        }
    }

    /// Every guard off: the broker sees every well-formed request.
    pub const fn none() -> Self {
        Guards {
            known_ids: false,
            strict_ids: false,
            bindable: false,
            binding_rotation: false,
            plan_updateable: false,
            context_updates: false,
            retrievable: false,
            maintenance_info: false,
            parameters: false,
            operation_length: false,
        }
    }

    setter! {
        known_ids => known_ids,
        strict_ids => strict_ids,
        bindable => bindable,
        binding_rotation => binding_rotation,
        plan_updateable => plan_updateable,
        context_updates => context_updates,
        retrievable => retrievable,
        maintenance_info => maintenance_info,
        parameters => parameters,
        operation_length => operation_length,
    }
}

/// The catalog, indexed once, with the compiled schemas of every plan.
///
/// The rules themselves are [`osb_types::rules`]; these methods decide the answers.
#[derive(Debug)]
pub(crate) struct CatalogGuards {
    pub(crate) index: std::sync::Arc<CatalogIndex>,
    schemas: HashMap<PlanId, PlanSchemas>,
    any_instances_retrievable: bool,
    any_bindings_retrievable: bool,
}

fn bad(description: String) -> Rejection {
    Rejection::bad_request(description)
}

impl CatalogGuards {
    pub(crate) fn new(index: std::sync::Arc<CatalogIndex>) -> Result<Self, String> {
        let catalog = index.catalog();
        let mut schemas = HashMap::new();
        for service in &catalog.services {
            for plan in &service.plans {
                let compiled = PlanSchemas::compile(plan).map_err(|e| {
                    format!(
                        "the schemas of plan {:?} ({}) do not compile: {e}",
                        plan.name, plan.id
                    )
                })?;
                if !compiled.is_empty() {
                    schemas.insert(plan.id.clone(), compiled);
                }
            }
        }
        let any_instances_retrievable = catalog
            .services
            .iter()
            .any(Service::instances_retrievable_or_default);
        let any_bindings_retrievable = catalog
            .services
            .iter()
            .any(Service::bindings_retrievable_or_default);
        Ok(CatalogGuards {
            index,
            schemas,
            any_instances_retrievable,
            any_bindings_retrievable,
        })
    }

    /// The answer to a broken rule, with a description that says what to change.
    fn answer(&self, violation: Violation) -> Rejection {
        match *violation.kind {
            ViolationKind::UnknownService { service_id } => {
                let offerings: Vec<String> = self
                    .index
                    .catalog()
                    .services
                    .iter()
                    .map(|s| format!("{:?} ({})", s.name, s.id))
                    .collect();
                bad(format!(
                    "service_id {service_id:?} is not an offering in this broker's catalog; the offerings are {} (GET /v2/catalog).",
                    if offerings.is_empty() {
                        "none".to_string()
                    } else {
                        offerings.join(", ")
                    }
                ))
            }
            ViolationKind::PlanOfAnotherOffering {
                plan_id,
                plan_name,
                service_id,
                service_name,
                owner_id,
                owner_name,
            } => bad(format!(
                "plan_id {plan_id:?} (plan {plan_name:?}) belongs to offering {owner_name:?} ({owner_id}), not to service_id {:?} (offering {service_name:?}).",
                service_id.as_str()
            )),
            ViolationKind::UnknownPlan {
                plan_id,
                service_id,
                service_name,
            } => bad(format!(
                "plan_id {plan_id:?} is not a plan of offering {service_name:?} ({service_id}); its plans are {}.",
                self.index
                    .service(&service_id)
                    .map_or_else(|| "none".to_string(), plan_list)
            )),
            ViolationKind::NotBindable {
                plan_name,
                service_name,
            } => bad(format!(
                "Plan {plan_name:?} of offering {service_name:?} is not bindable; the catalog does not allow bindings for it."
            )),
            ViolationKind::NoRotatablePlan => bad(
                "predecessor_binding_id is only allowed for plans with binding_rotatable: true, and no plan of this broker's catalog rotates bindings.".to_string(),
            ),
            ViolationKind::NotRotatable {
                plan_name,
                service_name,
            } => bad(format!(
                "predecessor_binding_id is only allowed for plans with binding_rotatable: true; plan {plan_name:?} of offering {service_name:?} does not rotate bindings."
            )),
            ViolationKind::NotPlanUpdateable {
                plan_name,
                service_name,
            } => Rejection::described(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "Plan {plan_name:?} of offering {service_name:?} cannot be changed to another plan (plan_updateable is false); parameters can still be updated."
                ),
            ),
            ViolationKind::NoContextUpdates { service_name } => Rejection::described(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "This update changes only the context, but offering {service_name:?} does not set allow_context_updates: true, so it accepts no context-only updates; include a plan_id, parameters or maintenance_info change, or leave the update out."
                ),
            ),
            ViolationKind::MaintenanceInfoMismatch {
                requested,
                current,
                plan_name,
            } => {
                let description = match current {
                    Some(current) => format!(
                        "maintenance_info.version {requested:?} does not match the version {current:?} of plan {plan_name:?} in the catalog; fetch the catalog again and retry."
                    ),
                    None => format!(
                        "maintenance_info.version {requested:?} was sent, but plan {plan_name:?} has no maintenance_info in the catalog; fetch the catalog again and retry without it."
                    ),
                };
                Rejection::with_body(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorResponse::coded(ErrorCode::MaintenanceInfoConflict, description),
                )
            }
            // A kind added later: the rule's own account, as a bad request.
            _ => bad(format!("{}: {violation}.", violation.path)),
        }
    }

    /// Checks that `service_id` is an offering and `plan_id` one of its plans.
    pub(crate) fn known_plan(&self, service_id: &str, plan_id: &str) -> Result<(), Rejection> {
        rules::known_plan(&*self.index, service_id, plan_id)
            .map(drop)
            .map_err(|v| self.answer(v))
    }

    /// Checks that `service_id` is an offering.
    pub(crate) fn known_service(&self, service_id: &str) -> Result<(), Rejection> {
        rules::known_service(&*self.index, service_id)
            .map(drop)
            .map_err(|v| self.answer(v))
    }

    /// Bind only on bindable plans.
    pub(crate) fn bindable(&self, service_id: &str, plan_id: &str) -> Result<(), Rejection> {
        rules::bindable(&*self.index, service_id, plan_id).map_err(|v| self.answer(v))
    }

    /// Rotation only on rotatable plans.
    pub(crate) fn rotation(&self, body: &ServiceBindingRequest) -> Result<(), Rejection> {
        rules::binding_rotatable(&*self.index, body).map_err(|v| self.answer(v))
    }

    /// A plan change needs the current plan to be plan_updateable.
    pub(crate) fn plan_change(
        &self,
        service_id: &str,
        current_plan: &str,
        new_plan: &str,
    ) -> Result<(), Rejection> {
        rules::plan_updateable(&*self.index, service_id, current_plan, new_plan)
            .map_err(|v| self.answer(v))
    }

    /// An update that changes only the context needs the offering's `allow_context_updates`.
    pub(crate) fn context_update(&self, service_id: &str) -> Result<(), Rejection> {
        rules::allow_context_updates(&*self.index, service_id).map_err(|v| self.answer(v))
    }

    /// `maintenance_info.version` equals the plan's.
    pub(crate) fn maintenance(
        &self,
        service_id: &str,
        plan_id: &str,
        requested: &MaintenanceInfo,
    ) -> Result<(), Rejection> {
        rules::maintenance_info_version(&*self.index, service_id, plan_id, requested)
            .map_err(|v| self.answer(v))
    }

    /// `parameters` valid against the plan's schema of this kind (absent parameters count as
    /// `{}` for create requests and are not checked for updates).
    pub(crate) fn parameters(
        &self,
        plan_id: &str,
        which: ParametersFor,
        parameters: Option<&Map<String, Value>>,
    ) -> Result<(), Rejection> {
        let Some(schemas) = self.schemas.get(plan_id) else {
            return Ok(());
        };
        rules::parameters_schema(schemas, which, parameters).map_err(|violation| {
            let ViolationKind::InvalidParameters { violations, .. } = &*violation.kind else {
                return self.answer(violation);
            };
            let plan = self
                .index
                .find_plan(plan_id)
                .map_or(plan_id, |(_, p)| p.name.as_str());
            bad(describe_violations(violations, plan, which))
        })
    }

    /// Fetching instances needs `instances_retrievable`.
    pub(crate) fn instances_retrievable(
        &self,
        service_hint: Option<&str>,
    ) -> Result<(), Rejection> {
        let ok = match service_hint.and_then(|id| self.index.service(id)) {
            Some(service) => service.instances_retrievable_or_default(),
            None => self.any_instances_retrievable,
        };
        if ok {
            return Ok(());
        }
        Err(bad(match service_hint.and_then(|id| self.index.service(id)) {
            Some(service) => format!(
                "Offering {:?} does not set instances_retrievable, so its instances cannot be fetched.",
                service.name
            ),
            None => "No offering of this broker sets instances_retrievable, so instances cannot be fetched.".to_string(),
        }))
    }

    /// Fetching bindings needs `bindings_retrievable`.
    pub(crate) fn bindings_retrievable(&self, service_hint: Option<&str>) -> Result<(), Rejection> {
        let ok = match service_hint.and_then(|id| self.index.service(id)) {
            Some(service) => service.bindings_retrievable_or_default(),
            None => self.any_bindings_retrievable,
        };
        if ok {
            return Ok(());
        }
        Err(bad(match service_hint.and_then(|id| self.index.service(id)) {
            Some(service) => format!(
                "Offering {:?} does not set bindings_retrievable, so its bindings cannot be fetched.",
                service.name
            ),
            None => "No offering of this broker sets bindings_retrievable, so bindings cannot be fetched.".to_string(),
        }))
    }
}

/// Checks a request's `operation` query value.
pub(crate) fn operation_length(operation: &OperationId) -> Result<(), Rejection> {
    validate_operation(operation).map_err(|osb_types::Invalid { field, reason }| {
        bad(format!(
            "The query parameter `{field}` {reason}; send back the operation exactly as the broker returned it."
        ))
    })
}

fn plan_list(service: &Service) -> String {
    let plans: Vec<String> = service
        .plans
        .iter()
        .map(|p| format!("{:?} ({})", p.name, p.id))
        .collect();
    if plans.is_empty() {
        "none".to_string()
    } else {
        plans.join(", ")
    }
}

fn describe_violations(violations: &[SchemaViolation], plan: &str, which: ParametersFor) -> String {
    const SHOWN: usize = 20;
    let mut parts: Vec<String> = violations
        .iter()
        .take(SHOWN)
        .map(|v| {
            let pointer = if v.pointer.is_empty() {
                "(root)"
            } else {
                v.pointer.as_str()
            };
            format!("{pointer}: {}", v.message)
        })
        .collect();
    if violations.len() > SHOWN {
        parts.push(format!("and {} more", violations.len() - SHOWN));
    }
    format!(
        "parameters do not match the schema of plan {plan:?} ({}): {}.",
        which.path(),
        parts.join("; ")
    )
}
