//! Round-trip properties, one test per endpoint, each in the modes `OSB_ROUNDTRIP_MODE` selects
//! (both by default). See the crate docs for the properties and the settings.

use osb_roundtrip::{Mode, cases, run_endpoint, run_property};
use osb_types::Operation;

#[test]
fn catalog() {
    run_endpoint("catalog", Operation::Catalog);
}

#[test]
fn provision() {
    run_endpoint("provision", Operation::Provision);
}

#[test]
fn update() {
    run_endpoint("update", Operation::Update);
}

#[test]
fn deprovision() {
    run_endpoint("deprovision", Operation::Deprovision);
}

#[test]
fn instance_last_operation() {
    run_endpoint("instance_last_operation", Operation::InstanceLastOperation);
}

#[test]
fn fetch_instance() {
    run_endpoint("fetch_instance", Operation::FetchInstance);
}

#[test]
fn bind() {
    run_endpoint("bind", Operation::Bind);
}

#[test]
fn unbind() {
    run_endpoint("unbind", Operation::Unbind);
}

#[test]
fn binding_last_operation() {
    run_endpoint("binding_last_operation", Operation::BindingLastOperation);
}

#[test]
fn fetch_binding() {
    run_endpoint("fetch_binding", Operation::FetchBinding);
}

/// Without `X-Broker-API-Version`, every endpoint answers `412` and the broker is never called.
#[test]
fn missing_version_header() {
    for mode in Mode::from_env().unwrap_or_else(|e| panic!("{e}")) {
        run_property("missing_version_header", mode, cases::arb_any_case(), true);
    }
}
