//! # osb-types
//!
//! Every model of the [Open Service Broker API](https://www.openservicebrokerapi.org/) v2.17,
//! shared by the client (`osb-client`) and the broker framework (`osb-server`). No IO.
//!
//! - Models generated from osb-rs's own spec (`spec/osb.openapi.yaml`): [`Catalog`],
//!   [`ServiceInstanceProvisionRequest`], [`ServiceBindingResponse`], … Unknown fields are kept in
//!   `extra` and written back; `None` is never written as `null`.
//! - Identities and headers: id newtypes ([`InstanceId`], …), [`ApiVersion`],
//!   [`OriginatingIdentity`], [`Context`], [`header`] names.
//! - Typed outcomes whose status follows from the variant ([`ProvisionOutcome`], …) and the
//!   [`AsyncPermit`] that guards `202 Accepted`, with short constructors for the common answers
//!   ([`ProvisionOutcome::accepted`], [`LastOperationOutcome::in_progress`],
//!   [`BindOutcome::created_with_credentials`], …) and [`AsyncBody`], what the two `202` bodies
//!   share. Replies decode leniently: a mistyped field the platform does not need is set aside
//!   with a [`DecodeWarning`] instead of failing the reply.
//! - The [`ErrorResponse`] body and its [`ErrorCode`].
//! - Catalog lookups and effective flags ([`Catalog::find_plan`], [`Plan::effective_bindable`],
//!   [`CatalogIndex`]), the catalog linter ([`Catalog::lint`]), request validation of bodies
//!   ([`ServiceInstanceProvisionRequest::validate`], …) and query parameters
//!   ([`DeprovisionQuery::validate`], …) and, with the `json-schema` feature,
//!   `parameters` validation against a plan's schemas (`schema::PlanSchemas`).
//!
//! ```
//! use osb_types::{Catalog, MaintenanceInfo, ServiceInstanceProvisionRequest, has_errors};
//!
//! let catalog: Catalog = serde_json::from_str(r#"{"services": [{
//!     "id": "6c5a1d1e-0d5c-4f5e-9a4b-2f1c6f0e9b11", "name": "postgres",
//!     "description": "PostgreSQL databases", "bindable": true,
//!     "plans": [{"id": "9d1b8e36-62c6-4a4b-8b36-5a1f1a7f4c02", "name": "small",
//!                "description": "One small node", "maintenance_info": {"version": "1.4.0"}}]
//! }]}"#).unwrap();
//! let problems = catalog.lint();
//! assert!(!has_errors(&problems), "{problems:?}");
//!
//! let (service, plan) = catalog.find_plan("9d1b8e36-62c6-4a4b-8b36-5a1f1a7f4c02").unwrap();
//! assert!(plan.effective_bindable(service));
//!
//! let request = ServiceInstanceProvisionRequest::new(&service.id, &plan.id, "org-guid", "space-guid")
//!     .with_maintenance_info(MaintenanceInfo::new("1.4.0"));
//! assert!(request.validate().is_ok());
//!
//! let bad = request.with_space_guid("");
//! assert_eq!(bad.validate().unwrap_err().to_string(), "invalid `space_guid`: must not be empty");
//! ```
//!
//! `Service::new` and `Plan::new` take the typed [`ServiceId`] / [`PlanId`], so a name cannot end
//! up where the id belongs (and the linter warns about names that look like GUIDs):
//!
//! ```
//! use osb_types::{Plan, PlanId};
//! let plan = Plan::new(PlanId::new("5c1f2e7a-3b9d-4e60-8a2f-1d4c6b8e0f93"), "small", "Small");
//! ```
//!
//! ```compile_fail,E0308
//! use osb_types::{Plan, PlanId};
//! let plan = Plan::new("small", "5c1f2e7a-3b9d-4e60-8a2f-1d4c6b8e0f93", "Small");
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod binding;
mod catalog;
mod context;
mod error;
mod error_code;
#[rustfmt::skip]
mod generated;
pub mod header;
mod identity;
mod ids;
mod lenient;
mod lint;
pub(crate) mod nullable;
mod outcome;
mod query;
pub mod rules;
#[cfg(feature = "json-schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "json-schema")))]
pub mod schema;
mod shortcuts;
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod validate;
mod version;

pub use catalog::CatalogIndex;
pub use context::{
    CloudFoundryContext, Context, KubernetesContext, PLATFORM_CLOUDFOUNDRY, PLATFORM_KUBERNETES,
};
pub use error::{Error, Invalid, Result};
pub use error_code::ErrorCode;
pub use generated::*;
pub use identity::{CloudFoundryIdentity, KubernetesIdentity, OriginatingIdentity};
pub use ids::{BindingId, InstanceId, OperationId, PlanId, ServiceId};
pub use lenient::{DecodeWarning, MAX_SET_ASIDE};
pub use lint::{Problem, Severity, has_errors};
pub use outcome::{
    Accepted, AsyncPermit, BindOutcome, DeleteOutcome, DeprovisionOutcome, FetchBindingOutcome,
    FetchInstanceOutcome, LastOperation, LastOperationOutcome, ProvisionOutcome, RetryAfter,
    UnbindOutcome, UpdateOutcome, decode_json,
};
pub use query::parse_query_bool;
#[cfg(feature = "json-schema")]
pub use schema::{ParameterSchema, PlanSchemas, SchemaViolation};
pub use shortcuts::AsyncBody;
pub use validate::{MAX_OPERATION_LEN, StringConstraint, validate_id, validate_operation};
pub use version::{ApiVersion, FieldSince, ShapeForVersion};
