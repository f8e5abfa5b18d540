//! Optional checks before sending: catalog lint, and requests checked against the catalog
//! (plan belongs to the offering, bindable, plan changes allowed, rotation allowed, `parameters`
//! valid against the plan's JSON schemas).
//!
//! The broker has the last word; these checks let a platform or CLI report a mistake before a
//! round trip, with JSON pointers into the parameters.

use osb_types::schema::{PlanSchemas, SchemaViolation};
use osb_types::{
    Catalog, Plan, PlanId, Problem, Service, ServiceBindingRequest,
    ServiceInstanceProvisionRequest, ServiceInstanceUpdateRequest,
};
use serde_json::{Map, Value};

use crate::client::Client;
use crate::error::Error;

/// Which request's `parameters` a schema applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParametersFor {
    /// Provision: `schemas.service_instance.create`.
    InstanceCreate,
    /// Update: `schemas.service_instance.update`.
    InstanceUpdate,
    /// Bind: `schemas.service_binding.create`.
    BindingCreate,
}

/// Checks `parameters` against the plan's compiled schemas.
///
/// Absent parameters are checked as `{}` for provision and bind (so missing required properties
/// are reported) and not at all for update (absent means “unchanged”). A plan without a schema
/// for the request accepts anything. Violations come back as [`Error::InvalidParameters`].
///
/// ```
/// use osb_client::{validate_parameters, Error, ParametersFor};
/// use osb_types::schema::PlanSchemas;
/// use osb_types::{InputParametersSchema, Plan, PlanId, Schemas, ServiceInstanceSchema};
/// use serde_json::json;
///
/// let schema = json!({"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
///     "properties": {"size": {"type": "integer"}}, "required": ["size"]});
/// let create = InputParametersSchema::new().with_parameters(schema.as_object().unwrap().clone());
/// let plan = Plan::new(PlanId::new("p"), "small", "d")
///     .with_schemas(Schemas::new().with_service_instance(ServiceInstanceSchema::new().with_create(create)));
/// let schemas = PlanSchemas::compile(&plan).unwrap();
///
/// let ok = json!({"size": 3});
/// assert!(validate_parameters(&schemas, ParametersFor::InstanceCreate, ok.as_object()).is_ok());
/// let bad = json!({"size": "large"});
/// let Err(Error::InvalidParameters { violations }) =
///     validate_parameters(&schemas, ParametersFor::InstanceCreate, bad.as_object())
/// else { panic!() };
/// assert_eq!(violations[0].pointer, "/size");
/// ```
pub fn validate_parameters(
    schemas: &PlanSchemas,
    which: ParametersFor,
    parameters: Option<&Map<String, Value>>,
) -> Result<(), Error> {
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
    schema
        .validate(&value)
        .map_err(|violations: Vec<SchemaViolation>| Error::InvalidParameters { violations })
}

fn invalid(field: &str, reason: String) -> Error {
    Error::Validation(osb_types::Error::invalid(field, reason))
}

fn lookup<'c>(
    catalog: &'c Catalog,
    service_id: &str,
    plan_id: &str,
) -> Result<(&'c Service, &'c Plan), Error> {
    let service = catalog.service(service_id).ok_or_else(|| {
        invalid(
            "service_id",
            format!("{service_id:?} is not an offering of the catalog"),
        )
    })?;
    let plan = service.plan(plan_id).ok_or_else(|| {
        invalid(
            "plan_id",
            format!("{plan_id:?} is not a plan of the offering {service_id:?}"),
        )
    })?;
    Ok((service, plan))
}

fn compile(plan: &Plan) -> Result<PlanSchemas, Error> {
    PlanSchemas::compile(plan).map_err(Error::Validation)
}

/// Checks a provision request against the catalog: the plan belongs to the offering, and
/// `parameters` match the plan's create schema.
pub fn check_provision(
    catalog: &Catalog,
    body: &ServiceInstanceProvisionRequest,
) -> Result<(), Error> {
    let (_, plan) = lookup(catalog, &body.service_id, &body.plan_id)?;
    validate_parameters(
        &compile(plan)?,
        ParametersFor::InstanceCreate,
        body.parameters.as_ref(),
    )
}

/// Checks an update request against the catalog, for an instance currently on `current_plan`:
/// both plans belong to the offering, a plan change is allowed (effective `plan_updateable` of the
/// current plan), and `parameters` match the update schema of the plan the instance ends up on.
pub fn check_update(
    catalog: &Catalog,
    body: &ServiceInstanceUpdateRequest,
    current_plan: &PlanId,
) -> Result<(), Error> {
    let (service, current) = lookup(catalog, &body.service_id, current_plan)?;
    let target = match &body.plan_id {
        Some(plan_id) if plan_id != current_plan => {
            if !current.effective_plan_updateable(service) {
                return Err(invalid(
                    "plan_id",
                    format!(
                        "the plan {:?} does not allow plan changes (plan_updateable)",
                        current.name
                    ),
                ));
            }
            lookup(catalog, &body.service_id, plan_id)?.1
        }
        _ => current,
    };
    validate_parameters(
        &compile(target)?,
        ParametersFor::InstanceUpdate,
        body.parameters.as_ref(),
    )
}

/// Checks a bind request against the catalog: the plan belongs to the offering and is bindable,
/// rotation (`predecessor_binding_id`) is allowed by the plan, and `parameters` match the plan's
/// binding schema. A rotation that names no plan is checked only for a plan of the catalog that
/// rotates bindings (the broker knows the predecessor's plan and parameters).
pub fn check_bind(catalog: &Catalog, body: &ServiceBindingRequest) -> Result<(), Error> {
    let (Some(service_id), Some(plan_id)) = (&body.service_id, &body.plan_id) else {
        if !body.is_rotation() {
            body.validate().map_err(Error::Validation)?;
        }
        let rotates = catalog
            .services
            .iter()
            .flat_map(|s| &s.plans)
            .any(osb_types::Plan::effective_binding_rotatable);
        if rotates {
            return Ok(());
        }
        return Err(invalid(
            "predecessor_binding_id",
            "no plan of the catalog allows binding rotation (binding_rotatable)".to_string(),
        ));
    };
    let (service, plan) = lookup(catalog, service_id, plan_id)?;
    if !plan.effective_bindable(service) {
        return Err(invalid(
            "plan_id",
            format!("the plan {:?} is not bindable", plan.name),
        ));
    }
    if body.predecessor_binding_id.is_some() && !plan.effective_binding_rotatable() {
        return Err(invalid(
            "predecessor_binding_id",
            format!(
                "the plan {:?} does not allow binding rotation (binding_rotatable)",
                plan.name
            ),
        ));
    }
    if body.is_rotation() && body.parameters.is_none() {
        return Ok(());
    }
    validate_parameters(
        &compile(plan)?,
        ParametersFor::BindingCreate,
        body.parameters.as_ref(),
    )
}

impl Client {
    /// Lints a catalog (every rule of the spec and of Cloud Controller); see
    /// [`Catalog::lint`](osb_types::Catalog::lint).
    pub fn check_catalog(&self, catalog: &Catalog) -> Vec<Problem> {
        catalog.lint()
    }
}
