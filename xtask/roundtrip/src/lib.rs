//! # osb-roundtrip
//!
//! Round-trip property tests: whatever a platform sends with osb-client, a broker built on
//! osb-server receives unchanged, and whatever the broker answers, the platform gets back
//! unchanged — for all ten endpoints, over real loopback HTTP and in process.
//!
//! ## What is tested
//!
//! For each endpoint, proptest generates a [`Case`]: the client's configured OSB version
//! (2.13–2.17), an originating identity of each platform (or none), a request identity (or none,
//! so the client makes one up), ids with characters that need percent-encoding, the query
//! (`accepts_incomplete` absent, `true` or `false`, hints, `operation`), the body (every optional
//! field present or absent, nested `parameters`/`context`/`metadata` JSON, extension fields) and
//! rotations as the spec shapes them (`predecessor_binding_id` with no `service_id`/`plan_id`,
//! mostly without `parameters`), and
//! the broker's [`Answer`](answers::Answer): every success variant (some with a broker's slip, a
//! mistyped optional field the client must set aside rather than fail on, and binding expiry
//! that is well-formed or not), or any error the broker may
//! return (`400`, `404`, `409`, `410`, `422` with each error code and the usability flags, other
//! 4xx/5xx with arbitrary error bodies, "not supported", internal errors), with `Retry-After` on
//! last operations.
//!
//! A [`RecordingBroker`] behind the osb-server router (default guards and version policy, Basic
//! auth) records every call and answers as scripted. The properties:
//!
//! 1. **The broker receives exactly what was sent**: the typed request, shaped for the client's
//!    version (the client leaves out fields newer than its version), the ids, the query, and the
//!    headers as the [`RequestContext`](osb_server::RequestContext) reports them: versions,
//!    originating identity, request identity, the async permit (`accepts_incomplete=true`) and
//!    the catalog offering and plan the request names.
//! 2. **The platform gets exactly what the broker answered**, shaped for the declared version as
//!    the spec asks (fields newer than it left out, `null` `dashboard_url`/`operation` only from
//!    2.15 and never on update replies, a binding expiry that breaks the spec as a `500`,
//!    usability flags only on update and deprovision failures from 2.16, none on binding
//!    polls), as the typed outcome — or as `Error::Broker` with the exact error body. An internal
//!    error's message never reaches the platform; `Accepted` without a permit becomes
//!    `422 AsyncRequired`.
//! 3. **Guards never let an invalid request through**: some generated requests name an unknown
//!    offering or plan where a plan is chosen (requests on existing resources reach the broker,
//!    since plans may be retired), the plan of another offering, an unbindable plan, a rotation on a plan
//!    without `binding_rotatable`, a plan change from a plan that is not `plan_updateable`, a
//!    `maintenance_info` that differs from the catalog's, `parameters` that violate the plan's
//!    schema, an originating identity whose platform contradicts the context, an over-long
//!    `operation`, or a fetch from an offering that is not retrievable. An [`oracle`] written from
//!    the guard table decides; a refused request must never reach the broker, and the platform
//!    must see the right status and error code. A separate property removes
//!    `X-Broker-API-Version` in transit: every endpoint must answer `412`.
//! 4. **The client refuses what it must not send** (endpoints and `accepts_incomplete` on
//!    bind/unbind newer than its version) without reaching the broker.
//!
//! The catalog endpoint is tested with arbitrary catalogs ([`catalog::arb_servable_catalog`]),
//! fetched twice (the second fetch revalidates with the `ETag` and gets `304`).
//!
//! ## Running
//!
//! `cargo test -p osb-roundtrip` runs every endpoint in both modes with
//! [`DEFAULT_CASES`] cases each (so `cargo test --workspace` stays fast).
//! `cargo xtask roundtrip [--cases N] [--seed S] [--in-process | --loopback] [--release]` runs
//! the same tests and the regressions, passing the settings as environment variables (which also
//! work with plain `cargo test -p osb-roundtrip`):
//!
//! | Variable | Meaning |
//! |---|---|
//! | `PROPTEST_CASES` | cases per endpoint and mode (default [`DEFAULT_CASES`]) |
//! | `PROPTEST_RNG_SEED` | a fixed seed (default: random) |
//! | [`MODE_VAR`] (`OSB_ROUNDTRIP_MODE`) | `loopback`, `in-process` or `both` (default) |
//!
//! ## Failures and regressions
//!
//! Failure persistence is off (no `proptest-regressions/` files). When a property fails,
//! proptest shrinks the case and the test panics with the differences and the minimal case as
//! JSON, already written as a test:
//!
//! ```text
//! minimal failing case; paste it into xtask/roundtrip/tests/regressions.rs:
//!
//! #[test]
//! fn provision_loopback_1() {
//!     regression(Mode::Loopback, r#"{"provision":{"headers":{"version":"2.14", …}}}"#);
//! }
//! ```
//!
//! Regressions live in `xtask/roundtrip/tests/regressions.rs` as such fixed cases, run by
//! `cargo test -p osb-roundtrip` in the mode they failed in (use [`regression_in_both_modes`] when
//! the mode did not matter). Cases are JSON so they survive changes to the strategies.
//!
//! ## A client and an osb-server broker in one process
//!
//! osb-client and osb-server never depend on each other; with osb-client's `in-process` feature,
//! a test that has both connects them without a socket:
//!
//! ```
//! use osb_client::{CallOptions, Client};
//! use osb_roundtrip::{RecordingBroker, catalog};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let router: axum::Router = osb_server::Broker::builder(RecordingBroker::new(catalog::catalog()))
//!     .basic_auth("platform", "secret")
//!     .build()
//!     .await
//!     .unwrap();
//! let client = Client::builder("http://broker.test")
//!     .basic_auth("platform", "secret")
//!     .service(router)
//!     .build()
//!     .unwrap();
//! let fetched = client.catalog(&CallOptions::new()).await.unwrap();
//! assert_eq!(fetched, catalog::catalog());
//! # });
//! ```
//!
//! ## Using the harness
//!
//! ```
//! use osb_roundtrip::{Harness, Mode, catalog};
//! use osb_types::{ApiVersion, DeleteOutcome, DeprovisionQuery, InstanceId};
//! use osb_roundtrip::answers::{Answer, DeleteReply};
//! use osb_roundtrip::broker::{Call, Script};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let harness = Harness::start(Mode::InProcess, catalog::catalog()).await.unwrap();
//! harness.broker().arm(Script::Delete(Answer::Reply(DeleteReply::Gone)));
//! let query = DeprovisionQuery::new(catalog::SERVICE_A, catalog::PLAN_A_BASIC);
//! let client = harness.client(ApiVersion::V2_17).unwrap();
//! let outcome = client
//!     .deprovision(&InstanceId::new("db/1"), &query, &Default::default())
//!     .await
//!     .unwrap();
//! assert_eq!(outcome, DeleteOutcome::Gone);
//! let received = harness.broker().received();
//! assert!(matches!(&received[0].call, Call::Deprovision { instance_id, .. } if instance_id == "db/1"));
//! # });
//! ```
#![warn(missing_docs)]

pub mod answers;
pub mod broker;
pub mod cases;
pub mod catalog;
mod harness;
pub mod oracle;
pub mod requests;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

pub use broker::RecordingBroker;
pub use cases::Case;
pub use harness::{Harness, Mode, PASSWORD, USERNAME};

/// Cases per endpoint and mode when `PROPTEST_CASES` is not set.
pub const DEFAULT_CASES: u32 = 32;

/// The environment variable that selects the modes: `loopback`, `in-process` or `both`.
pub const MODE_VAR: &str = "OSB_ROUNDTRIP_MODE";

/// The proptest configuration: `PROPTEST_CASES` cases (default [`DEFAULT_CASES`]), the seed of
/// `PROPTEST_RNG_SEED` if set, no failure persistence.
pub fn config() -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    config.failure_persistence = None;
    config.max_shrink_time = 120_000;
    config
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs the property over `strategy` in `mode`; with `drop_version_header`, the version header
/// is removed in transit. Panics with the differences and the minimal failing case, written as
/// a regression test.
pub fn run_property(
    name: &str,
    mode: Mode,
    strategy: impl Strategy<Value = Case>,
    drop_version_header: bool,
) {
    let rt = runtime();
    let harness = rt
        .block_on(Harness::start_with(
            mode,
            catalog::catalog(),
            drop_version_header,
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut runner = TestRunner::new(config());
    let result = runner.run(&strategy, |case| {
        rt.block_on(case.check(&harness))
            .map_err(TestCaseError::fail)
    });
    harness.broker().reset();
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => {
            let function = if drop_version_header {
                "regression_without_version"
            } else {
                "regression"
            };
            // A serializer bug also damages the printed case: say so, and show the values.
            let faithful = Case::from_json(&case.to_json()).is_ok_and(|back| back == case);
            let warning = if faithful {
                String::new()
            } else {
                format!(
                    "\nwarning: this case does not survive its own JSON round trip, so a model's \
                     Serialize or Deserialize loses something and the JSON above lacks it; the \
                     case as generated:\n{case:#?}\n"
                )
            };
            panic!(
                "{name} ({mode}) failed: {reason}\n\n\
                 minimal failing case; paste it into xtask/roundtrip/tests/regressions.rs:\n\n\
                 #[test]\nfn {name}_{mode_ident}_1() {{\n    {function}(Mode::{mode:?}, {literal});\n}}\n{warning}",
                mode_ident = mode.to_string().replace('-', "_"),
                literal = case.to_literal(),
            );
        }
        Err(TestError::Abort(reason)) => panic!("{name} ({mode}) aborted: {reason}"),
    }
}

/// Runs the property of one endpoint in every mode selected by [`MODE_VAR`].
pub fn run_endpoint(name: &str, operation: osb_types::Operation) {
    for mode in Mode::from_env().unwrap_or_else(|e| panic!("{e}")) {
        run_property(name, mode, cases::arb_case(operation), false);
    }
}

fn check_json(mode: Mode, json: &str, drop_version_header: bool) {
    let case = Case::from_json(json).unwrap_or_else(|e| panic!("{e}"));
    let rt = runtime();
    rt.block_on(async {
        let harness = Harness::start_with(mode, catalog::catalog(), drop_version_header)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if let Err(problems) = case.check(&harness).await {
            panic!("regression ({mode}) fails again:\n{problems}");
        }
    });
}

/// Runs one fixed case (JSON, as printed by a failing property) in `mode`.
pub fn regression(mode: Mode, json: &str) {
    check_json(mode, json, false);
}

/// Runs one fixed case in both modes.
pub fn regression_in_both_modes(json: &str) {
    for mode in Mode::ALL {
        check_json(mode, json, false);
    }
}

/// Runs one fixed case in `mode` with the version header removed in transit.
pub fn regression_without_version(mode: Mode, json: &str) {
    check_json(mode, json, true);
}
