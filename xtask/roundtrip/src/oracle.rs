//! The guard oracle: which requests the server must refuse before the broker sees them, written
//! from the guard table of osb-server's docs (not from its code), in the order the checks run.
//!
//! Each function takes the request as the server receives it (already shaped for the client's
//! version) and returns the refusal's status and `error` code, or `None` when the request must
//! reach the broker.

use osb_types::{
    ApiVersion, Catalog, Context, ErrorCode, MaintenanceInfo, OperationId, OriginatingIdentity,
    ServiceBindingRequest, ServiceInstanceProvisionRequest, ServiceInstanceUpdateRequest,
};
use serde_json::{Map, Value};

use crate::answers::{ErrorReply, ExpectedBody};
use crate::catalog::{role_is_valid, size_is_valid};
use crate::requests::identity_contradicts;

fn refuse(status: u16, code: Option<ErrorCode>) -> Option<ErrorReply> {
    Some(ErrorReply {
        status,
        body: ExpectedBody::Guard(code),
    })
}

fn bad_request() -> Option<ErrorReply> {
    refuse(400, None)
}

/// `known_ids`: the offering exists and the plan is one of its plans.
fn known_plan(catalog: &Catalog, service_id: &str, plan_id: &str) -> Option<ErrorReply> {
    match catalog.service(service_id) {
        Some(service) if service.plan(plan_id).is_some() => None,
        _ => bad_request(),
    }
}

/// The originating identity's platform must match `context.platform`.
fn identity(
    identity: Option<&OriginatingIdentity>,
    context: Option<&Context>,
) -> Option<ErrorReply> {
    if identity_contradicts(identity, context) {
        bad_request()
    } else {
        None
    }
}

/// `maintenance_info`: the version equals the plan's; a plan without one refuses any.
fn maintenance(
    catalog: &Catalog,
    service_id: &str,
    plan_id: &str,
    requested: Option<&MaintenanceInfo>,
) -> Option<ErrorReply> {
    let requested = requested?;
    let plan = catalog.plan(service_id, plan_id)?;
    match &plan.maintenance_info {
        Some(current) if current.version == requested.version => None,
        _ => refuse(422, Some(ErrorCode::MaintenanceInfoConflict)),
    }
}

/// Which plan schema a request is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Create,
    Update,
    Bind,
}

/// `parameters` against the schema of the plan with this id (wherever it is in the catalog).
fn parameters(
    catalog: &Catalog,
    plan_id: &str,
    kind: Kind,
    parameters: Option<&Map<String, Value>>,
) -> Option<ErrorReply> {
    let (_, plan) = catalog.find_plan(plan_id)?;
    let schemas = plan.schemas.as_ref()?;
    let has = match kind {
        Kind::Create => schemas
            .service_instance
            .as_ref()
            .and_then(|s| s.create.as_ref()),
        Kind::Update => schemas
            .service_instance
            .as_ref()
            .and_then(|s| s.update.as_ref()),
        Kind::Bind => schemas
            .service_binding
            .as_ref()
            .and_then(|s| s.create.as_ref()),
    }
    .is_some();
    if !has {
        return None;
    }
    let empty = Map::new();
    let parameters = match (parameters, kind) {
        (Some(p), _) => p,
        (None, Kind::Update) => return None,
        (None, _) => &empty,
    };
    let valid = match kind {
        Kind::Create => size_is_valid(parameters, true),
        Kind::Update => size_is_valid(parameters, false),
        Kind::Bind => role_is_valid(parameters),
    };
    if valid { None } else { bad_request() }
}

/// Provision: identity vs context, known ids, maintenance, parameters.
pub fn provision(
    catalog: &Catalog,
    request: &ServiceInstanceProvisionRequest,
    originating: Option<&OriginatingIdentity>,
) -> Option<ErrorReply> {
    identity(originating, request.context.as_ref())
        .or_else(|| known_plan(catalog, &request.service_id, &request.plan_id))
        .or_else(|| {
            maintenance(
                catalog,
                &request.service_id,
                &request.plan_id,
                request.maintenance_info.as_ref(),
            )
        })
        .or_else(|| {
            parameters(
                catalog,
                &request.plan_id,
                Kind::Create,
                request.parameters.as_ref(),
            )
        })
}

/// Update: identity vs context, known ids, context-only updates (from 2.15), plan change, then
/// maintenance and parameters for the target plan (the new one, or the previous one).
pub fn update(
    catalog: &Catalog,
    request: &ServiceInstanceUpdateRequest,
    originating: Option<&OriginatingIdentity>,
    version: ApiVersion,
) -> Option<ErrorReply> {
    if let Some(refusal) = identity(originating, request.context.as_ref()) {
        return Some(refusal);
    }
    let service_id = request.service_id.as_str();
    let previous = request
        .previous_values
        .as_ref()
        .and_then(|p| p.plan_id.as_ref());
    // `known_ids` applies where a plan is chosen: a `plan_id` other than the previous one.
    let chooses_plan = request
        .plan_id
        .as_ref()
        .is_some_and(|plan| previous != Some(plan));
    if chooses_plan {
        let plan_id = request.plan_id.as_deref()?;
        if known_plan(catalog, service_id, plan_id).is_some() {
            return bad_request();
        }
    }
    let Some(service) = catalog.service(service_id) else {
        // An update that keeps a retired offering's plan reaches the broker.
        return None;
    };
    let context_only = request.context.is_some()
        && request.plan_id.is_none()
        && request.parameters.is_none()
        && request.maintenance_info.is_none();
    if context_only
        && version >= ApiVersion::V2_15
        && !service.allow_context_updates.unwrap_or(false)
    {
        return refuse(422, None);
    }
    if let (Some(new_plan), Some(current)) = (&request.plan_id, previous)
        && new_plan != current
    {
        let updateable = match service.plan(current) {
            Some(plan) => plan.effective_plan_updateable(service),
            None => service.plan_updateable.unwrap_or(false),
        };
        if !updateable {
            return refuse(422, None);
        }
    }
    let target = request.plan_id.as_ref().or(previous)?;
    maintenance(
        catalog,
        service_id,
        target,
        request.maintenance_info.as_ref(),
    )
    .or_else(|| parameters(catalog, target, Kind::Update, request.parameters.as_ref()))
}

/// Deprovision and unbind: nothing; a delete names the resource's plan, which the catalog may
/// have retired (`known_ids` guards only where a plan is chosen).
pub fn delete(_catalog: &Catalog, _service_id: &str, _plan_id: &str) -> Option<ErrorReply> {
    None
}

/// Bind: identity vs context, bindable, rotation, parameters. A bind is made on an existing
/// instance, so unknown ids reach the broker; a rotation may name no ids, and without
/// `parameters` is not checked against a schema.
pub fn bind(
    catalog: &Catalog,
    request: &ServiceBindingRequest,
    originating: Option<&OriginatingIdentity>,
) -> Option<ErrorReply> {
    let rotation = request.predecessor_binding_id.is_some();
    identity(originating, request.context.as_ref())
        .or_else(|| {
            let (Some(service_id), Some(plan_id)) = (&request.service_id, &request.plan_id) else {
                let rotates = catalog
                    .services
                    .iter()
                    .flat_map(|s| &s.plans)
                    .any(|p| p.binding_rotatable == Some(true));
                return if rotates { None } else { bad_request() };
            };
            let service = catalog.service(service_id)?;
            let plan = service.plan(plan_id)?;
            if !plan.effective_bindable(service) {
                return bad_request();
            }
            if rotation && !plan.effective_binding_rotatable() {
                return bad_request();
            }
            None
        })
        .or_else(|| {
            if rotation && request.parameters.is_none() {
                return None;
            }
            parameters(
                catalog,
                request.plan_id.as_ref()?,
                Kind::Bind,
                request.parameters.as_ref(),
            )
        })
}

/// Fetching an instance: the hinted offering (or, without a known hint, any offering) sets
/// `instances_retrievable`.
pub fn fetch_instance(catalog: &Catalog, service_hint: Option<&str>) -> Option<ErrorReply> {
    let ok = match service_hint.and_then(|id| catalog.service(id)) {
        Some(service) => service.instances_retrievable_or_default(),
        None => catalog
            .services
            .iter()
            .any(|s| s.instances_retrievable_or_default()),
    };
    if ok { None } else { bad_request() }
}

/// Fetching a binding: as [`fetch_instance`], with `bindings_retrievable`.
pub fn fetch_binding(catalog: &Catalog, service_hint: Option<&str>) -> Option<ErrorReply> {
    let ok = match service_hint.and_then(|id| catalog.service(id)) {
        Some(service) => service.bindings_retrievable_or_default(),
        None => catalog
            .services
            .iter()
            .any(|s| s.bindings_retrievable_or_default()),
    };
    if ok { None } else { bad_request() }
}

/// Last operation: `operation` is at most 10,000 characters.
pub fn last_operation(operation: Option<&OperationId>) -> Option<ErrorReply> {
    match operation {
        Some(op) if op.chars().count() > osb_types::MAX_OPERATION_LEN => bad_request(),
        _ => None,
    }
}
