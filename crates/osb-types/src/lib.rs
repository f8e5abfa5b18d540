//! # osb-types
//!
//! Every model of the [Open Service Broker API](https://www.openservicebrokerapi.org/) v2.17,
//! shared by the client ([`osb-client`]) and the broker framework ([`osb-server`]). No IO.
//!
//! [`osb-client`]: https://docs.rs/osb-client
//! [`osb-server`]: https://docs.rs/osb-server
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod context;
#[rustfmt::skip]
mod generated;
mod ids;
pub(crate) mod nullable;
mod version;

pub use context::{
    CloudFoundryContext, Context, KubernetesContext, PLATFORM_CLOUDFOUNDRY, PLATFORM_KUBERNETES,
};
pub use generated::*;
pub use ids::{BindingId, InstanceId, OperationId, PlanId, ServiceId};
pub use version::{
    field_since, schema_since, ApiVersion, FieldSince, ParseApiVersionError, ShapeForVersion,
};
