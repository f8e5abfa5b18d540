//! # osb-server
//!
//! A framework for [Open Service Broker API](https://www.openservicebrokerapi.org/) v2.17 brokers on
//! [axum]: implement [`ServiceBroker`], get an axum [`Router`](axum::Router) that speaks the
//! protocol correctly.
//!
//! - **Typed in, typed out.** Each trait method gets the typed request from osb-types
//!   ([`ServiceInstanceProvisionRequest`](osb_types::ServiceInstanceProvisionRequest), …, or the
//!   query struct for DELETE and GET) and a [`RequestContext`] (declared version, originating and
//!   request identity, the catalog offering and plan, and an
//!   [`AsyncPermit`](osb_types::AsyncPermit) only when the platform sent
//!   `accepts_incomplete=true`). It returns an outcome enum whose variant decides the status
//!   (`Created` → 201, `Accepted` → 202, …) or a [`BrokerError`].
//! - **Every endpoint, every rule.** All ten endpoints with their query parameters, `{}` bodies
//!   where the spec says so, `Retry-After` on last operation, `X-Broker-API-Request-Identity`
//!   echoed on every reply, the catalog's `ETag` with `If-None-Match` → `304`.
//! - **Policies.** Authentication ([`Auth`]: Basic with several credentials compared in constant
//!   time, Bearer tokens, or your own check; `401` with `WWW-Authenticate`), the version header
//!   ([`VersionPolicy`]), a body-size limit (`413`) and a request timeout (`503`, counted from
//!   before authentication).
//! - **Guards on by default** ([`Guards`]): where a plan is chosen, the ids exist in the catalog
//!   and the plan belongs to the offering (requests on existing resources may name a retired
//!   plan and reach the broker), `bindable`, `plan_updateable`, `allow_context_updates`, `*_retrievable`,
//!   `maintenance_info`, `parameters` against the plan's JSON Schemas (`400` listing the failing
//!   JSON pointers), and the `operation` length. A rejected request never reaches the broker.
//! - **OSB error bodies for everything.** Unparsable JSON, wrong types, missing fields, wrong
//!   content type, a bad originating-identity header, unknown routes (`404`) and methods (`405`)
//!   all get `{"description": …}` saying what to change.
//! - **Replies shaped for the platform's version**: fields newer than the declared
//!   `X-Broker-API-Version` are left out (a 2.13 platform sees a 2.13 catalog); extension fields
//!   the broker adds are kept.
//! - **[`prelude`]**: `use osb_server::prelude::*;` imports what a broker uses; short
//!   constructors such as [`ProvisionOutcome::accepted`](osb_types::ProvisionOutcome::accepted),
//!   [`LastOperationOutcome::in_progress`](osb_types::LastOperationOutcome::in_progress) and
//!   [`BindOutcome::created_with_credentials`](osb_types::BindOutcome::created_with_credentials)
//!   keep the answers short, and [`RequestContext::require_async_permit`] gets the permit for a
//!   `202` or answers `422 AsyncRequired`.
//! - **Built once, fast per request.** The catalog is fetched, linted (errors refuse to build,
//!   warnings are logged) and serialized once per OSB version; schemas are compiled once; guards
//!   use an index.
//! - **tracing**: one `osb_request` span per request with method, route, instance and binding
//!   ids, request identity and status, and one line per request at INFO (`request answered`,
//!   `request rejected` with the reply's `description`) or WARN (`request failed`, for `5xx`),
//!   with the status and `duration_ms`. Credentials and `parameters` are never logged (text a
//!   rejection quotes from an unparsable body is redacted).
//!
//! ## Quick start
//!
//! A broker with a synchronous plan and a plan that provisions asynchronously, polled through
//! the last operation, with bindings that carry credentials.
//!
//! ```no_run
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::{Duration, Instant};
//!
//! use osb_server::prelude::*;
//! use serde_json::json;
//!
//! const DB: &str = "2a4d6c3e-0b8e-4c55-9d1e-6f5b7a9c1d20";
//! const SMALL: &str = "5c1f2e7a-3b9d-4e60-8a2f-1d4c6b8e0f93"; // ready at once
//! const LARGE: &str = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"; // ready after a minute
//!
//! #[derive(Default)]
//! struct MyBroker {
//!     /// When each instance is (or will be) ready.
//!     ready_at: Mutex<HashMap<InstanceId, Instant>>,
//! }
//!
//! #[async_trait]
//! impl ServiceBroker for MyBroker {
//!     async fn catalog(&self) -> Result<Catalog, BrokerError> {
//!         let small = Plan::new(PlanId::new(SMALL), "small", "One small node");
//!         let large = Plan::new(PlanId::new(LARGE), "large", "A cluster; takes a minute");
//!         let db = Service::new("db", ServiceId::new(DB), "A database", true, [small, large]);
//!         Ok(Catalog::new([db]))
//!     }
//!
//!     async fn provision(
//!         &self,
//!         id: InstanceId,
//!         request: ServiceInstanceProvisionRequest,
//!         ctx: RequestContext,
//!     ) -> Result<ProvisionOutcome, BrokerError> {
//!         if request.plan_id == SMALL {
//!             self.ready_at.lock().unwrap().insert(id, Instant::now());
//!             return Ok(ProvisionOutcome::created());
//!         }
//!         // Without `accepts_incomplete=true` this answers `422 AsyncRequired`.
//!         let permit = ctx.require_async_permit()?;
//!         let ready = Instant::now() + Duration::from_secs(60);
//!         self.ready_at.lock().unwrap().insert(id, ready);
//!         Ok(ProvisionOutcome::accepted(permit, "create"))
//!     }
//!
//!     async fn instance_last_operation(
//!         &self,
//!         id: InstanceId,
//!         _query: InstanceLastOperationQuery,
//!         _ctx: RequestContext,
//!     ) -> Result<LastOperationOutcome, BrokerError> {
//!         Ok(match self.ready_at.lock().unwrap().get(&id) {
//!             Some(ready) if *ready <= Instant::now() => LastOperationOutcome::succeeded(),
//!             Some(_) => LastOperationOutcome::in_progress().retry_after(5),
//!             None => LastOperationOutcome::Gone,
//!         })
//!     }
//!
//!     async fn bind(
//!         &self,
//!         id: InstanceId,
//!         binding: BindingId,
//!         _request: ServiceBindingRequest,
//!         _ctx: RequestContext,
//!     ) -> Result<BindOutcome, BrokerError> {
//!         let credentials = json!({"uri": format!("db://{id}"), "username": binding.as_str()});
//!         Ok(BindOutcome::created_with_credentials(credentials)?)
//!     }
//!
//!     async fn unbind(
//!         &self,
//!         _id: InstanceId,
//!         _binding: BindingId,
//!         _query: UnbindQuery,
//!         _ctx: RequestContext,
//!     ) -> Result<DeleteOutcome, BrokerError> {
//!         Ok(DeleteOutcome::Deleted)
//!     }
//!
//!     async fn deprovision(
//!         &self,
//!         id: InstanceId,
//!         _query: DeprovisionQuery,
//!         _ctx: RequestContext,
//!     ) -> Result<DeleteOutcome, BrokerError> {
//!         Ok(match self.ready_at.lock().unwrap().remove(&id) {
//!             Some(_) => DeleteOutcome::Deleted,
//!             None => DeleteOutcome::Gone,
//!         })
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let app: axum::Router = Broker::builder(MyBroker::default())
//!         .basic_auth("platform", "s3cret")
//!         .build()
//!         .await?;
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! `examples/notes-broker` in the repository is the same shape with its tests, and
//! `examples/memory-broker` a complete broker.
//!
//! The router is generic over its state, so it can be nested (`Router::new().nest("/osb", app)`)
//! or merged with your own routes, and takes your own tower layers. Its unknown-route reply
//! covers only paths under `/v2`, so merging never clashes with your fallback. Your own routes
//! can read the OSB headers with the [`headers`] extractors ([`ApiVersionHeader`],
//! [`OriginatingIdentityHeader`], [`RequestIdentityHeader`]) and return [`BrokerError`]: they
//! answer with the same statuses and OSB error bodies as the OSB routes.
//!
//! ## Choices where the spec leaves room
//!
//! - Missing or unparsable `X-Broker-API-Version`: `412` by default, `400` configurable.
//! - `409 Conflict` bodies are error objects with a `description` (2.13's `{}` reading is also
//!   satisfied: both are JSON objects).
//! - Optional operations a broker does not implement: update answers `422`, the others `400`,
//!   each naming the operation ([`BrokerError::NotSupported`]).
//! - Unknown `service_id`/`plan_id` where a plan is chosen (provision, an update whose
//!   `plan_id` differs from `previous_values.plan_id`), an unbindable plan, rotation on a
//!   non-rotatable plan, and fetching from an offering without `*_retrievable`: `400` (the
//!   spec's "invalid data"). A refused plan change is `422` (the spec's "change not supported").
//! - Plans may be retired from the catalog while their instances live on: deprovision, unbind,
//!   bind, polls, fetches and updates that keep the plan reach the broker even when their ids
//!   are no longer in the catalog ([`Guards::strict_ids`] refuses them instead).
//! - A rotation (`predecessor_binding_id`) may leave out `service_id`, `plan_id` and
//!   `parameters`; without `parameters` it is not checked against the plan's schema, since the
//!   broker reuses the predecessor's ([`RequestContext::service_id`] and `plan_id` are then
//!   `None`).
//! - `accepts_incomplete` is read as `true`/`false` in any case, or `1`/`0`; anything else is
//!   `400` naming the parameter.
//! - An update's `dashboard_url` that is `null` or `""`, and an update `202` whose `operation`
//!   is `null`, are left out of the reply (from 2.14 a `dashboard_url` on update must be a
//!   non-empty string).
//! - A bind or fetch-binding reply whose `metadata.expires_at` / `renew_before` is not an ISO
//!   8601 UTC timestamp, or whose `renew_before` is after `expires_at`, is a `500` with the
//!   reason logged, never a malformed answer.
//! - A context-only update (a PATCH with `context` but no `plan_id`, `parameters` or
//!   `maintenance_info`) to an offering without `allow_context_updates: true`: `422`
//!   ([`Guards::context_updates`]). Platforms that declare a version before 2.15, when the flag
//!   appeared (and whose catalog leaves it out), are not refused.
//! - A bad `X-Broker-API-Originating-Identity` header, or one whose platform differs from
//!   `context.platform`: `400`, on every endpoint including the catalog.
//! - `parameters` left out of a provision or bind are checked as `{}`, so a schema with
//!   `required` properties refuses them. An update is checked against the schema of its new
//!   plan, or else of `previous_values.plan_id`; one that names neither is not checked. Schemas
//!   are compiled for the draft their `$schema` names (draft-04 and later).
//! - A timed-out request: `503` (the broker is the origin server, not a gateway).
//! - A broker that answers `Accepted` without the request's permit: `422 AsyncRequired`, and an
//!   error is logged.
//! - Async bind and unbind need OSB 2.14 (when they appeared): older requests get no permit.
//!
//! ## Serving
//!
//! [`Server`] serves the router with a header-read timeout, an idle timeout and a limit on
//! connections (defaults, builder methods, `OSB_*` environment variables), and HTTPS with the
//! `tls` feature:
//!
//! ```no_run
//! # async fn demo(app: axum::Router) -> Result<(), osb_server::Error> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! osb_server::Server::from_env()?.serve(listener, app, std::future::pending()).await
//! # }
//! ```
//!
//! ## Feature flags
//!
//! - `tls`: HTTPS for [`Server`] through rustls (ring provider, no OpenSSL), with the
//!   certificate and key reloaded on `SIGHUP`, and optional client-certificate checks.
//!
//! JSON Schema validation (through osb-types' `json-schema` feature) is always on.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod auth;
mod broker;
mod error;
mod extract;
mod guards;
mod handlers;
pub mod headers;
pub mod prelude;
mod router;
mod serve;
#[cfg(feature = "tls")]
mod tls;
mod version;

pub use async_trait::async_trait;
pub use auth::Auth;
pub use broker::{RequestContext, ServiceBroker};
pub use error::{BoxError, BrokerError, Error, Rejection};
pub use guards::Guards;
pub use headers::{ApiVersionHeader, OriginatingIdentityHeader, RequestIdentityHeader};
pub use router::{Broker, BrokerBuilder, DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUT, router};
pub use serve::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Server,
    shutdown_signal,
};
pub use version::VersionPolicy;

/// The osb-types crate, re-exported so brokers use the same version of the models.
pub use osb_types as types;
