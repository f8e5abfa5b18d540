//! # osb-store
//!
//! Durable state for [Open Service Broker API](https://www.openservicebrokerapi.org/) brokers
//! built on [osb-server](osb_server): a broker author writes the work itself (a [`Backend`]:
//! create, update and delete instances, create and delete bindings), and [`Stateful`] answers
//! everything else the spec asks of every broker, from a [`Store`]:
//!
//! - idempotent repeats (`200` / `202` with the same operation / `409`) and
//!   `422 ConcurrencyError`;
//! - asynchronous operations with last operation, `Retry-After`, deadlines and retention, then
//!   `410 Gone`;
//! - fetch instance and fetch binding;
//! - operations that survive restarts: rows held under a lease, resumed or failed, never
//!   "in progress" forever.
//!
//! Stores: [`MemoryStore`] (tests), `SqliteStore` (feature `sqlite`, the default: one file,
//! WAL, `BEGIN IMMEDIATE`, versioned migrations). Every store passes the same test suite
//! (`osb_store::testing`, feature `testing`).
//!
//! ```no_run
//! use osb_server::prelude::*;
//! use osb_store::{Backend, SqliteOptions, SqliteStore, Stateful, StatefulConfig};
//!
//! struct Databases;
//!
//! #[async_trait]
//! impl Backend for Databases {
//!     async fn catalog(&self) -> Result<Catalog, BrokerError> {
//!         Ok(Catalog::new([Service::new("db", ServiceId::new("5f1c…"), "Databases", true,
//!             [Plan::new(PlanId::new("9b2d…"), "small", "One small database")])]))
//!     }
//!     async fn create_instance(&self, id: &InstanceId, _: &ServiceInstanceProvisionRequest)
//!         -> Result<ServiceInstanceProvisionResponse, BrokerError> {
//!         // create the database `id` if it does not exist yet
//!         Ok(ServiceInstanceProvisionResponse::new())
//!     }
//!     async fn delete_instance(&self, id: &InstanceId) -> Result<(), BrokerError> {
//!         // drop the database `id` if it still exists
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SqliteStore::open("sqlite:broker.db", &SqliteOptions::default()).await?;
//! let broker = Stateful::new(Databases, store, StatefulConfig::default());
//! let app: axum::Router = Broker::builder(broker).basic_auth("platform", "s3cret").build().await?;
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod any;
mod backend;
mod error;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod record;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
mod seal;
#[cfg(feature = "sqlite")]
mod sqlite;
mod stateful;
mod store;
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use any::AnyStore;
pub use backend::Backend;
pub use error::StoreError;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PgOptions, PgStore};
pub use record::{
    Key, Millis, OperationKind, OperationRecord, OperationState, ResourceRecord, ResourceState,
    Snapshot, Write, fingerprint, now_millis,
};
pub use seal::StoreKeys;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{SqlValue, SqliteOptions, SqliteStore};
pub use stateful::{RestartPolicy, Stateful, StatefulConfig};
pub use store::{Decide, OwnedDecide, Store};
