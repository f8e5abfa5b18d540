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
//!   [`AsyncPermit`] that guards `202 Accepted`.
//! - The [`ErrorResponse`] body and its [`ErrorCode`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod catalog;
mod context;
mod error;
mod error_code;
#[rustfmt::skip]
mod generated;
pub mod header;
mod identity;
mod ids;
mod lint;
pub(crate) mod nullable;
mod outcome;
#[cfg(feature = "json-schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "json-schema")))]
pub mod schema;
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod validate;
mod version;

pub use context::{
    CloudFoundryContext, Context, KubernetesContext, PLATFORM_CLOUDFOUNDRY, PLATFORM_KUBERNETES,
};
pub use error::{Error, Result};
pub use error_code::ErrorCode;
pub use generated::*;
pub use identity::{CloudFoundryIdentity, KubernetesIdentity, OriginatingIdentity};
pub use ids::{BindingId, InstanceId, OperationId, PlanId, ServiceId};
pub use outcome::{
    Accepted, AsyncPermit, BindOutcome, DeleteOutcome, DeprovisionOutcome, FetchBindingOutcome,
    FetchInstanceOutcome, LastOperation, LastOperationOutcome, ProvisionOutcome, RetryAfter,
    UnbindOutcome, UpdateOutcome,
};
pub use version::{ApiVersion, FieldSince, ShapeForVersion, field_since, schema_since};
