//! # osb-client
//!
//! An async client for [Open Service Broker API](https://www.openservicebrokerapi.org/) brokers
//! (v2.13 to v2.17), for platforms, CLIs and tests, on `reqwest`.
//!
//! - [`Client`]: one method per endpoint ([`catalog`](Client::catalog),
//!   [`provision`](Client::provision), [`update`](Client::update),
//!   [`deprovision`](Client::deprovision), [`instance_last_operation`](Client::instance_last_operation),
//!   [`fetch_instance`](Client::fetch_instance), [`bind`](Client::bind), [`unbind`](Client::unbind),
//!   [`binding_last_operation`](Client::binding_last_operation), [`fetch_binding`](Client::fetch_binding)),
//!   taking the models and query structs of [`osb_types`] and returning its typed outcomes
//!   ([`ProvisionOutcome`](osb_types::ProvisionOutcome), …). The status code of a success is the
//!   variant; everything else is an [`Error`].
//! - Headers done for you: `X-Broker-API-Version`, Basic or Bearer credentials, a fresh
//!   `X-Broker-API-Request-Identity` per request, the originating identity ([`CallOptions`]).
//!   Ids are percent-encoded in paths and queries. Endpoints and features newer than the
//!   configured version are refused before anything is sent.
//! - [`wait`](Client::wait) / [`wait_binding`](Client::wait_binding): after a `202`, polling
//!   with the query built from the answer and [`WaitOptions`] (operation token, offering and
//!   plan, the plan's deadline); [`wait_for_instance_operation`](Client::wait_for_instance_operation)
//!   / [`wait_for_binding_operation`](Client::wait_for_binding_operation) take the query. Polling with
//!   `Retry-After` (seconds or HTTP date), backoff between a floor and a cap ([`PollPolicy`]),
//!   the plan's `maximum_polling_duration`, `410` = done for deletes, progress reports, and
//!   cancellation by dropping the future.
//! - [`prelude`]: `use osb_client::prelude::*;` imports what a platform uses.
//! - Orphan mitigation: the decision table as a pure function ([`orphan_mitigation`]) and a
//!   helper that performs the cleanup ([`Client::cleanup_orphan`]).
//! - Optional checks before sending: [`Client::check_catalog`] lints a catalog;
//!   [`check_provision`], [`check_update`] and [`check_bind`] check a request against the catalog
//!   (plan of the offering, bindable, plan changes, rotation, `parameters` against the plan's JSON
//!   schemas); [`validate_parameters`] reuses compiled schemas.
//!
//! ## Choices
//!
//! - **Request bodies are shaped for the configured version** ([`ClientBuilder::shape_requests`],
//!   on by default): fields newer than it are left out (extension fields are kept). Receivers
//!   must ignore unknown fields, so this only keeps the wire exactly as the declared version
//!   describes it. The `service_id`/`plan_id` hints of the fetch endpoints (2.16) are left out
//!   for older versions. Fields that would change what the request asks for are refused
//!   instead ([`Error::UnsupportedVersion`] naming the field): `accepts_incomplete=true` on
//!   bind/unbind before 2.14, `maintenance_info` in provision and update before 2.15, and
//!   `predecessor_binding_id` (a rotation) before 2.17.
//! - **`X-Broker-API-Request-Identity` is always sent**, even to brokers older than 2.15 (which
//!   ignore unknown headers).
//! - **A slip in a field the platform does not need is not an error.** Replies decode
//!   leniently (see [Decoding replies](#decoding-replies)): only a reply the platform cannot use
//!   is an [`Error::Decode`], and so a reason for orphan mitigation.
//! - **Redirects are not followed**: a `3xx` is [`Error::UnexpectedStatus`], never the reply of
//!   another request. A `reqwest::Client` of your own ([`ClientBuilder::http_client`]) must have
//!   redirects disabled too.
//! - **Errors keep what the broker said**: a JSON error body becomes [`Error::Broker`] with its
//!   [`ErrorCode`](osb_types::ErrorCode); anything else keeps the raw body. Bodies are never
//!   printed by `Display` or `Debug` (an error body shows only its status, code and
//!   `description`), and tracing spans carry ids and statuses only — never credentials or
//!   parameters. A transport error names the request (`PUT http://…`) and its cause chain.
//!
//! ## Decoding replies
//!
//! A broker's slip in a field the platform does not need must not undo work that succeeded: a
//! `201` bind whose `endpoints[].ports` holds numbers instead of strings is a working binding,
//! and treating it as malformed would make orphan mitigation delete it. So each reply has
//! fields it *needs*, which must match the spec, and *lenient* fields:
//!
//! - A needed field that does not match, or a body that is not JSON or not a JSON object (an
//!   empty body counts as `{}`), fails the call with [`Error::Decode`]. For a `201`/`202` to a
//!   provision or a bind, that calls for orphan mitigation.
//! - A lenient field that does not match is *set aside*: its raw value moves to the `extra` map
//!   of the object that held it, under its original key (so nothing is lost, and re-encoding the
//!   model writes it back), the typed field is left absent (or empty, for an endpoint's
//!   `ports`), and the client logs a warning with `tracing::warn!` naming the field and what was
//!   wrong, never its value. As little as possible is set aside: a mistyped port sets aside that
//!   endpoint's `ports`, not the endpoint; only a nested object left without a required field
//!   (an endpoint's `host`, a volume mount's `device`, …) takes its enclosing field with it.
//!
//! | Reply | Needed (mismatch = [`Error::Decode`]) | Lenient (mismatch = warning) |
//! |---|---|---|
//! | provision `200`/`201` | a JSON object | `dashboard_url`, `metadata` (and its `labels`, `attributes`) |
//! | provision/update `202` | a JSON object; `operation` a string or `null` when present (`""` counts as no token) | `dashboard_url`, `metadata` |
//! | update `200` | a JSON object | `dashboard_url`, `metadata` |
//! | deprovision/unbind `202`, bind `202` | a JSON object; `operation` a string when present (`""` counts as no token) | — (unknown fields are kept in `extra` as always) |
//! | deprovision/unbind `200`, `410` | — (the body is not read) | — |
//! | bind `200`/`201` | a JSON object; `credentials` an object when present | `metadata`, `syslog_drain_url`, `route_service_url`, `volume_mounts` (and inside each mount), `endpoints` (`host`, `ports`, `protocol` of each) |
//! | fetch instance `200` | a JSON object | `service_id`, `plan_id`, `dashboard_url`, `parameters`, `maintenance_info`, `metadata` |
//! | fetch binding `200` | a JSON object; `credentials` an object when present | as bind `200`/`201`, and `parameters` |
//! | last operation `200` | a JSON object; `state` present and a string | `description`, `instance_usable`, `update_repeatable` |
//! | catalog `200` | the whole catalog (not lenient) | — |
//!
//! Polling therefore ends on a valid `state` even when an optional field beside it is mistyped.
//! The outcomes of [`osb_types`] apply the same rules (`decode`), and return the warnings from
//! `decode_with_warnings` ([`DecodeWarning`](osb_types::DecodeWarning)).
//!
//! ## Testing without a network
//!
//! With the `in-process` feature, `ClientBuilder::service` sends requests to a tower `Service`
//! in the same process, such as the axum `Router` of a broker built with osb-server: the same
//! client code, no socket. See its documentation for an example.
//!
//! ## Feature flags
//!
//! | Feature | Default | What it does |
//! |---|---|---|
//! | `rustls` | yes | TLS through rustls (reqwest's `rustls-tls`). |
//! | `in-process` | no | `ClientBuilder::service`: talk to a tower `Service` without a socket. |
//!
//! ## Example: the whole lifecycle
//!
//! ```no_run
//! use osb_client::prelude::*;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("https://broker.example.com")
//!     .basic_auth("admin", "secret")
//!     .originating_identity(OriginatingIdentity::from(CloudFoundryIdentity::new("user-1")))
//!     .build()?;
//! let opts = CallOptions::new();
//!
//! // Pick a plan from the catalog.
//! let catalog = client.catalog(&opts).await?;
//! let service = &catalog.services[0];
//! let plan = &service.plans[0];
//!
//! // Provision, allowing the broker to work asynchronously. After a 202, `wait` polls the last
//! // operation (with the operation token, the plan's ids, `Retry-After` and the plan's
//! // `maximum_polling_duration`) and `into_result` turns a failure or a timeout into an error.
//! let instance = InstanceId::new("instance-1");
//! let request = ServiceInstanceProvisionRequest::new(&service.id, &plan.id, "org-guid", "space-guid");
//! let query = ProvisionQuery::new().with_accepts_incomplete(true);
//! let outcome = client.provision(&instance, &request, &query, &opts).await?;
//! if let Some(accepted) = outcome.as_accepted() {
//!     client
//!         .wait(&instance, accepted, &WaitOptions::create(service, plan))
//!         .on_progress(|p| eprintln!("provisioning: {:?} ({:?})", p.state, p.description))
//!         .await?
//!         .into_result()?;
//! }
//!
//! // Bind and read the credentials; an asynchronous binding is fetched once it is ready.
//! let binding = BindingId::new("binding-1");
//! let request = ServiceBindingRequest::new(&service.id, &plan.id);
//! let query = BindQuery::new().with_accepts_incomplete(true);
//! let outcome = client.bind(&instance, &binding, &request, &query, &opts).await?;
//! let credentials = match outcome.as_accepted() {
//!     None => outcome.credentials().cloned(),
//!     Some(accepted) => {
//!         let options = WaitOptions::create(service, plan);
//!         client.wait_binding(&instance, &binding, accepted, &options).await?.into_result()?;
//!         match client.fetch_binding(&instance, &binding, &FetchBindingQuery::new(), &opts).await? {
//!             FetchBindingOutcome::Found(resource) => resource.credentials,
//!             _ => None,
//!         }
//!     }
//! };
//! println!("got {} credential fields", credentials.map_or(0, |c| c.len()));
//!
//! // Unbind, then deprovision; 410 Gone counts as deleted.
//! let query = UnbindQuery::new(&service.id, &plan.id).with_accepts_incomplete(true);
//! let outcome = client.unbind(&instance, &binding, &query, &opts).await?;
//! if let Some(accepted) = outcome.as_accepted() {
//!     let options = WaitOptions::delete(service, plan);
//!     client.wait_binding(&instance, &binding, accepted, &options).await?.into_result()?;
//! }
//! let query = DeprovisionQuery::new(&service.id, &plan.id).with_accepts_incomplete(true);
//! let outcome = client.deprovision(&instance, &query, &opts).await?;
//! if let Some(accepted) = outcome.as_accepted() {
//!     let options = WaitOptions::delete(service, plan);
//!     client.wait(&instance, accepted, &options).await?.into_result()?;
//! }
//! # Ok(()) }
//! ```
//!
//! `examples/notes-platform` in the repository runs this lifecycle against
//! `examples/notes-broker`.
//!
//! ## Orphan mitigation
//!
//! ```no_run
//! # async fn run(client: osb_client::Client, request: osb_types::ServiceInstanceProvisionRequest) {
//! use osb_client::{orphan_mitigation_for, CallOptions, Cleanup, CleanupPolicy, OrphanOperation, OrphanTarget};
//! use osb_types::{InstanceId, ProvisionQuery};
//! let instance = InstanceId::new("instance-2");
//! let query = ProvisionQuery::new().with_accepts_incomplete(true);
//! let result = client.provision(&instance, &request, &query, &CallOptions::new()).await;
//! if orphan_mitigation_for(OrphanOperation::Provision, &result) == Cleanup::Instance {
//!     let target = OrphanTarget::instance(instance, &request.service_id, &request.plan_id);
//!     let _ = client.cleanup_orphan(&target, &CleanupPolicy::new()).await;
//! }
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod builder;
mod checks;
mod client;
mod error;
#[cfg(feature = "in-process")]
mod in_process;
mod orphan;
mod poll;
pub mod prelude;
mod wait;

pub use builder::{ClientBuilder, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT};
pub use checks::{ParametersFor, check_bind, check_provision, check_update, validate_parameters};
pub use client::{CallOptions, Client};
pub use error::{Error, RawBody, Result};
pub use orphan::{
    Cleanup, CleanupOutcome, CleanupPolicy, Observed, OrphanOperation, OrphanTarget, Outcome,
    orphan_mitigation, orphan_mitigation_for,
};
pub use poll::{OperationKind, PollOutcome, PollPolicy, PollProgress, WaitForOperation};
pub use wait::WaitOptions;

/// The models, ids and outcomes the client speaks, re-exported for convenience.
pub use osb_types as types;
