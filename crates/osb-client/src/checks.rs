//! Optional checks before sending: catalog lint, and requests checked against the catalog
//! (plan belongs to the offering, bindable, plan changes allowed, rotation allowed, `parameters`
//! valid against the plan's JSON schemas).
//!
//! The broker has the last word; these checks let a platform or CLI report a mistake before a
//! round trip, with JSON pointers into the parameters.

use osb_types::rules::{self, Violation, ViolationKind};
use osb_types::schema::PlanSchemas;
use osb_types::{
    Catalog, Plan, PlanId, Problem, ServiceBindingRequest, ServiceInstanceProvisionRequest,
    ServiceInstanceUpdateRequest,
};
use serde_json::{Map, Value};

use crate::client::Client;
use crate::error::Error;

pub use osb_types::rules::ParametersFor;

/// Checks `parameters` against the plan's compiled schemas
/// ([`rules::parameters_schema`](osb_types::rules::parameters_schema)).
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
    rules::parameters_schema(schemas, which, parameters).map_err(refused)
}

/// A broken rule as the client reports it: parameters with their JSON pointers, anything else
/// as the request field at fault.
fn refused(violation: Violation) -> Error {
    match *violation.kind {
        ViolationKind::InvalidParameters { violations, .. } => {
            Error::InvalidParameters { violations }
        }
        _ => Error::Validation(osb_types::Invalid::new(
            violation.path,
            violation.to_string(),
        )),
    }
}

fn compile(plan: &Plan) -> Result<PlanSchemas, Error> {
    PlanSchemas::compile(plan).map_err(Error::Validation)
}

/// Checks a provision request against the catalog: the plan belongs to the offering,
/// `maintenance_info` matches the plan's, and `parameters` match the plan's create schema.
pub fn check_provision(
    catalog: &Catalog,
    body: &ServiceInstanceProvisionRequest,
) -> Result<(), Error> {
    let (_, plan) = rules::known_plan(catalog, &body.service_id, &body.plan_id).map_err(refused)?;
    if let Some(info) = &body.maintenance_info {
        rules::maintenance_info_version(catalog, &body.service_id, &body.plan_id, info)
            .map_err(refused)?;
    }
    validate_parameters(
        &compile(plan)?,
        ParametersFor::InstanceCreate,
        body.parameters.as_ref(),
    )
}

/// Checks an update request against the catalog, for an instance currently on `current_plan`:
/// both plans belong to the offering, a plan change is allowed (effective `plan_updateable` of the
/// current plan), `maintenance_info` matches, and `parameters` match the update schema of the
/// plan the instance ends up on.
pub fn check_update(
    catalog: &Catalog,
    body: &ServiceInstanceUpdateRequest,
    current_plan: &PlanId,
) -> Result<(), Error> {
    let (_, current) =
        rules::known_plan(catalog, &body.service_id, current_plan).map_err(refused)?;
    let target = match &body.plan_id {
        Some(plan_id) if plan_id != current_plan => {
            rules::plan_updateable(catalog, &body.service_id, current_plan, plan_id)
                .map_err(refused)?;
            rules::known_plan(catalog, &body.service_id, plan_id)
                .map_err(refused)?
                .1
        }
        _ => current,
    };
    if let Some(info) = &body.maintenance_info {
        rules::maintenance_info_version(catalog, &body.service_id, &target.id, info)
            .map_err(refused)?;
    }
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
        return rules::binding_rotatable(catalog, body).map_err(refused);
    };
    let (_, plan) = rules::known_plan(catalog, service_id, plan_id).map_err(refused)?;
    rules::bindable(catalog, service_id, plan_id).map_err(refused)?;
    rules::binding_rotatable(catalog, body).map_err(refused)?;
    if !rules::bind_parameters_checked(body) {
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
