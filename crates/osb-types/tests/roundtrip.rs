//! Fixed cases: JSON bodies modelled on the spec's examples (written as valid JSON, with our own
//! values) parse into the typed models, carry the expected values, and serialise back to the
//! same JSON; the originating-identity vectors of the spec decode to their documented values.
//!
//! Fixtures live in `tests/fixtures/`; `every_fixture_is_covered` fails when a file there is not
//! listed in [`FIXTURES`].

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use osb_types::{
    AsyncOperation, AsyncPermit, BindOutcome, Catalog, Context, DeleteOutcome, EndpointProtocol,
    ErrorCode, ErrorResponse, FetchBindingOutcome, FetchInstanceOutcome, LastOperationOutcome,
    LastOperationResource, LastOperationState, OriginatingIdentity, ProvisionOutcome,
    ServiceBindingRequest, ServiceBindingResource, ServiceBindingResponse,
    ServiceInstanceAsyncOperation, ServiceInstanceProvisionRequest,
    ServiceInstanceProvisionResponse, ServiceInstanceResource, ServiceInstanceUpdateRequest,
    ServiceInstanceUpdateResponse, ServiceRequirement, UpdateOutcome, VolumeDeviceType,
    VolumeMountMode,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Every fixture file, with its text.
const FIXTURES: &[(&str, &str)] = &[
    ("catalog.json", include_str!("fixtures/catalog.json")),
    (
        "provision_request_cf.json",
        include_str!("fixtures/provision_request_cf.json"),
    ),
    (
        "provision_request_k8s.json",
        include_str!("fixtures/provision_request_k8s.json"),
    ),
    (
        "provision_response_created.json",
        include_str!("fixtures/provision_response_created.json"),
    ),
    (
        "provision_response_accepted.json",
        include_str!("fixtures/provision_response_accepted.json"),
    ),
    (
        "update_request.json",
        include_str!("fixtures/update_request.json"),
    ),
    (
        "update_response.json",
        include_str!("fixtures/update_response.json"),
    ),
    (
        "update_response_accepted.json",
        include_str!("fixtures/update_response_accepted.json"),
    ),
    (
        "bind_request.json",
        include_str!("fixtures/bind_request.json"),
    ),
    (
        "bind_response.json",
        include_str!("fixtures/bind_response.json"),
    ),
    (
        "bind_response_accepted.json",
        include_str!("fixtures/bind_response_accepted.json"),
    ),
    (
        "fetch_instance.json",
        include_str!("fixtures/fetch_instance.json"),
    ),
    (
        "fetch_binding.json",
        include_str!("fixtures/fetch_binding.json"),
    ),
    (
        "last_operation_in_progress.json",
        include_str!("fixtures/last_operation_in_progress.json"),
    ),
    (
        "last_operation_failed.json",
        include_str!("fixtures/last_operation_failed.json"),
    ),
    (
        "deprovision_accepted.json",
        include_str!("fixtures/deprovision_accepted.json"),
    ),
    (
        "error_async_required.json",
        include_str!("fixtures/error_async_required.json"),
    ),
    (
        "error_concurrency_error.json",
        include_str!("fixtures/error_concurrency_error.json"),
    ),
    (
        "error_requires_app.json",
        include_str!("fixtures/error_requires_app.json"),
    ),
    (
        "error_maintenance_info_conflict.json",
        include_str!("fixtures/error_maintenance_info_conflict.json"),
    ),
    (
        "error_failed_update.json",
        include_str!("fixtures/error_failed_update.json"),
    ),
    (
        "error_description_only.json",
        include_str!("fixtures/error_description_only.json"),
    ),
];

fn text(name: &str) -> &'static str {
    FIXTURES
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, text)| *text)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

/// Parses fixture `name` as `T` (from the text and from a `Value`, which take different serde
/// paths), checks both agree and that `T` serialises back to exactly the fixture's JSON.
fn roundtrip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(name: &str) -> T {
    let text = text(name);
    let expected: Value = serde_json::from_str(text).expect("fixture is valid JSON");
    let from_text: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let from_value: T = serde_json::from_value(expected.clone()).expect("parses from a Value");
    assert_eq!(
        from_text, from_value,
        "{name}: text and Value parse differently"
    );
    let back = serde_json::to_value(&from_text).expect("serialises");
    assert_eq!(back, expected, "{name}: JSON changed in the round trip");
    // The compact text form parses back to the same value too.
    let again: T = serde_json::from_str(&serde_json::to_string(&from_text).expect("serialises"))
        .expect("parses its own output");
    assert_eq!(again, from_text, "{name}");
    from_text
}

fn permit() -> Option<AsyncPermit> {
    AsyncPermit::from_accepts_incomplete(Some(true))
}

#[test]
fn every_fixture_is_covered() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("fixtures directory")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    let listed: BTreeSet<String> = FIXTURES.iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(on_disk, listed);
    for (name, text) in FIXTURES {
        let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(value.is_object(), "{name} is not a JSON object");
    }
}

#[test]
fn catalog() {
    let catalog: Catalog = roundtrip("catalog.json");
    assert_eq!(catalog.services.len(), 2);

    let db = &catalog.services[0];
    assert_eq!(db.name, "relational-db");
    assert_eq!(db.id, "8f2b5c1e-3d4a-4f6b-9c7d-0e1f2a3b4c5d");
    assert!(db.bindable);
    assert_eq!(db.instances_retrievable, Some(true));
    assert_eq!(db.bindings_retrievable, Some(true));
    assert_eq!(db.allow_context_updates, Some(true));
    assert_eq!(db.plan_updateable, Some(true));
    assert_eq!(
        db.requires.as_deref(),
        Some(
            &[
                ServiceRequirement::SyslogDrain,
                ServiceRequirement::RouteForwarding
            ][..]
        )
    );
    assert_eq!(db.tags.as_ref().map(Vec::len), Some(3));
    let metadata = db.metadata.as_ref().expect("offering metadata");
    assert_eq!(metadata["displayName"], "Relational DB");
    assert_eq!(metadata["shareable"], true);
    assert_eq!(
        metadata["listing"]["blurb"],
        "Databases that scale with you"
    );
    let client = db.dashboard_client.as_ref().expect("dashboard_client");
    assert_eq!(client.id, "relational-db-dashboard");
    assert_eq!(client.secret, "s3cr3t-d4shb0ard");
    assert_eq!(
        client.redirect_uri.as_deref(),
        Some("https://dashboard.example.org/callback")
    );
    assert_eq!(db.extra.get("x-vendor-tier"), Some(&json!("gold")));

    let small = &db.plans[0];
    assert_eq!(small.id, "4c1a7e2b-9f3d-4b5a-8c6e-1d2f3a4b5c6d");
    assert_eq!(small.free, Some(false));
    assert_eq!(small.bindable, Some(true));
    assert_eq!(small.plan_updateable, Some(false));
    assert_eq!(small.binding_rotatable, Some(true));
    assert_eq!(small.maximum_polling_duration, Some(3600));
    let maintenance = small.maintenance_info.as_ref().expect("maintenance_info");
    assert_eq!(maintenance.version, "3.4.1+build.77");
    assert!(
        maintenance
            .description
            .as_deref()
            .is_some_and(|d| d.contains("3.4.1"))
    );
    let costs = &small.metadata.as_ref().expect("plan metadata")["costs"];
    assert_eq!(costs[0]["amount"]["usd"], 49.5);
    assert_eq!(costs[0]["unit"], "MONTHLY");
    let schemas = small.schemas.as_ref().expect("schemas");
    let create = schemas
        .service_instance
        .as_ref()
        .and_then(|s| s.create.as_ref())
        .and_then(|c| c.parameters.as_ref())
        .expect("instance create schema");
    assert_eq!(create["$schema"], "http://json-schema.org/draft-04/schema#");
    assert_eq!(create["required"], json!(["engine"]));
    assert!(
        schemas
            .service_instance
            .as_ref()
            .and_then(|s| s.update.as_ref())
            .is_some(),
        "instance update schema"
    );
    let binding = schemas
        .service_binding
        .as_ref()
        .and_then(|s| s.create.as_ref())
        .and_then(|c| c.parameters.as_ref())
        .expect("binding create schema");
    assert_eq!(binding["properties"]["read_only"]["type"], "boolean");

    // Absent optional fields stay absent.
    let dev = &db.plans[1];
    assert_eq!(
        (dev.free, dev.bindable, dev.schemas.as_ref()),
        (None, None, None)
    );

    let store = &catalog.services[1];
    assert!(!store.bindable);
    assert_eq!(store.plans[0].bindable, Some(true));
    assert_eq!(
        store.plans[0]
            .maintenance_info
            .as_ref()
            .map(|m| m.version.as_str()),
        Some("1.0.0")
    );

    // The costs in plan metadata also parse as the profile's `Cost` model.
    let cost: osb_types::Cost = serde_json::from_value(costs[1].clone()).expect("a Cost");
    assert_eq!(cost.unit, "1GB of messages over 20GB");
    assert_eq!(cost.amount["usd"], 0.02);
}

#[test]
fn provision_request_with_cloud_foundry_context() {
    let request: ServiceInstanceProvisionRequest = roundtrip("provision_request_cf.json");
    assert_eq!(request.service_id, "8f2b5c1e-3d4a-4f6b-9c7d-0e1f2a3b4c5d");
    assert_eq!(request.plan_id, "4c1a7e2b-9f3d-4b5a-8c6e-1d2f3a4b5c6d");
    assert_eq!(
        request.organization_guid,
        "1113aa00-124e-4af2-9526-6bfacf61b111"
    );
    assert_eq!(request.space_guid, "aaaa1234-da91-4f12-8ffa-b51d0336aaaa");
    assert_eq!(
        request.parameters.as_ref().map(|p| p["storage_gb"].clone()),
        Some(json!(100))
    );
    assert_eq!(
        request
            .maintenance_info
            .as_ref()
            .map(|m| m.version.as_str()),
        Some("3.4.1+build.77")
    );
    let Some(Context::CloudFoundry(cf)) = &request.context else {
        panic!("expected a Cloud Foundry context: {:?}", request.context)
    };
    assert_eq!(
        cf.organization_guid.as_deref(),
        Some("1113aa00-124e-4af2-9526-6bfacf61b111")
    );
    assert_eq!(cf.organization_name.as_deref(), Some("finance"));
    assert_eq!(cf.space_name.as_deref(), Some("staging"));
    assert_eq!(cf.instance_name.as_deref(), Some("ledger-db"));
    assert_eq!(
        cf.organization_annotations
            .as_ref()
            .map(|a| a["example.org/cost-center"].clone()),
        Some(json!("cc-042"))
    );
    assert!(cf.extra.is_empty());
}

#[test]
fn provision_request_with_kubernetes_context() {
    let request: ServiceInstanceProvisionRequest = roundtrip("provision_request_k8s.json");
    assert_eq!(request.maintenance_info, None);
    let Some(Context::Kubernetes(k8s)) = &request.context else {
        panic!("expected a Kubernetes context: {:?}", request.context)
    };
    assert_eq!(k8s.namespace.as_deref(), Some("payments"));
    assert_eq!(k8s.clusterid.as_deref(), Some("cluster-eu-west-7"));
    assert_eq!(k8s.instance_name.as_deref(), Some("payments-db"));
    assert!(k8s.namespace_annotations.is_some() && k8s.instance_annotations.is_some());
    assert_eq!(
        k8s.extra.get("x-request-origin"),
        Some(&json!("catalog-operator"))
    );
    assert_eq!(
        request.context.as_ref().and_then(Context::platform),
        Some("kubernetes")
    );
}

#[test]
fn provision_responses() {
    let created: ServiceInstanceProvisionResponse = roundtrip("provision_response_created.json");
    assert_eq!(
        created.dashboard_url,
        Some(Some(
            "https://dashboard.example.org/instances/ledger-db".to_string()
        ))
    );
    let metadata = created.metadata.as_ref().expect("metadata");
    assert_eq!(
        metadata.labels.as_ref().map(|l| l["region"].clone()),
        Some(json!("eu-west"))
    );
    assert_eq!(
        metadata
            .attributes
            .as_ref()
            .map(|a| a["broker.example.org/replicas"].clone()),
        Some(json!(1))
    );
    let outcome = ProvisionOutcome::decode(
        201,
        text("provision_response_created.json").as_bytes(),
        None,
    )
    .expect("201 decodes");
    assert_eq!(outcome, ProvisionOutcome::Created(created));

    let accepted: ServiceInstanceAsyncOperation = roundtrip("provision_response_accepted.json");
    assert_eq!(
        accepted.dashboard_url,
        Some(None),
        "an explicit null is kept"
    );
    assert_eq!(
        accepted.operation.clone().flatten().as_deref(),
        Some("provision/ledger-db/7a1c")
    );
    let body = text("provision_response_accepted.json").as_bytes();
    let ProvisionOutcome::Accepted(a) =
        ProvisionOutcome::decode(202, body, permit()).expect("202 decodes")
    else {
        panic!("expected Accepted")
    };
    assert_eq!(
        a.operation().map(|op| op.as_str()),
        Some("provision/ledger-db/7a1c")
    );
    assert_eq!(a.body(), &accepted);
    assert!(
        ProvisionOutcome::decode(202, body, None).is_err(),
        "202 needs a permit"
    );
}

#[test]
fn update_request_and_responses() {
    let request: ServiceInstanceUpdateRequest = roundtrip("update_request.json");
    assert_eq!(
        request.plan_id.as_deref(),
        Some("4c1a7e2b-9f3d-4b5a-8c6e-1d2f3a4b5c6d")
    );
    let previous = request.previous_values.as_ref().expect("previous_values");
    assert_eq!(
        previous.plan_id.as_deref(),
        Some("9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b")
    );
    assert_eq!(
        previous.organization_id.as_deref(),
        Some("1113aa00-124e-4af2-9526-6bfacf61b111")
    );
    assert_eq!(
        previous.space_id.as_deref(),
        Some("aaaa1234-da91-4f12-8ffa-b51d0336aaaa")
    );
    assert_eq!(
        previous
            .maintenance_info
            .as_ref()
            .map(|m| m.version.as_str()),
        Some("3.3.0")
    );
    assert_eq!(
        request
            .maintenance_info
            .as_ref()
            .map(|m| m.version.as_str()),
        Some("3.4.1+build.77")
    );
    let Some(Context::CloudFoundry(cf)) = &request.context else {
        panic!("expected a Cloud Foundry context")
    };
    assert_eq!(cf.instance_name.as_deref(), Some("ledger-db-renamed"));

    let updated: ServiceInstanceUpdateResponse = roundtrip("update_response.json");
    assert_eq!(
        updated.dashboard_url,
        Some(Some(
            "https://dashboard.example.org/v2/instances/ledger-db".to_string()
        ))
    );
    let outcome = UpdateOutcome::decode(200, text("update_response.json").as_bytes(), None)
        .expect("200 decodes");
    assert_eq!(outcome, UpdateOutcome::Updated(updated));

    let accepted: ServiceInstanceAsyncOperation = roundtrip("update_response_accepted.json");
    assert_eq!(
        accepted.operation.clone().flatten().as_deref(),
        Some("update/ledger-db/storage-200")
    );
    assert_eq!(accepted.metadata, None);
}

#[test]
fn bind_request() {
    let request: ServiceBindingRequest = roundtrip("bind_request.json");
    assert_eq!(
        request.app_guid.as_deref(),
        Some("3e2c1a0b-7d6f-4e5a-9b8c-1f0e2d3c4b5a")
    );
    assert_eq!(
        request.predecessor_binding_id.as_deref(),
        Some("b-2024-01-ledger")
    );
    let resource = request.bind_resource.as_ref().expect("bind_resource");
    assert_eq!(
        resource.app_guid.as_deref(),
        Some("3e2c1a0b-7d6f-4e5a-9b8c-1f0e2d3c4b5a")
    );
    assert_eq!(resource.route.as_deref(), Some("ledger.apps.example.org"));
    assert_eq!(
        resource.space_guid.as_deref(),
        Some("aaaa1234-da91-4f12-8ffa-b51d0336aaaa")
    );
    assert_eq!(
        resource.credential_client_id.as_deref(),
        Some("cc_client_ledger")
    );
    assert_eq!(
        resource
            .app_annotations
            .as_ref()
            .map(|a| a["example.org/component"].clone()),
        Some(json!("api"))
    );
    assert_eq!(
        request.parameters.as_ref().map(|p| p["read_only"].clone()),
        Some(json!(true))
    );
    assert!(matches!(request.context, Some(Context::CloudFoundry(_))));
}

#[test]
fn bind_response() {
    let response: ServiceBindingResponse = roundtrip("bind_response.json");
    let metadata = response.metadata.as_ref().expect("metadata");
    assert_eq!(
        metadata.expires_at.as_deref(),
        Some("2031-06-30T23:59:59.0Z")
    );
    assert_eq!(
        metadata.renew_before.as_deref(),
        Some("2031-06-01T00:00:00.0Z")
    );
    let credentials = response.credentials.as_ref().expect("credentials");
    assert_eq!(credentials["password"], "pa$$");
    assert_eq!(credentials["tls"]["required"], true);
    assert_eq!(
        response.syslog_drain_url.as_deref(),
        Some("syslog-tls://logs.example.org:6514")
    );
    assert_eq!(
        response.route_service_url.as_deref(),
        Some("https://proxy.example.org/ledger")
    );

    let mounts = response.volume_mounts.as_ref().expect("volume_mounts");
    assert_eq!(mounts.len(), 2);
    assert_eq!(mounts[0].driver, "nfsv3driver");
    assert_eq!(mounts[0].mode, VolumeMountMode::ReadWrite);
    assert_eq!(mounts[1].mode, VolumeMountMode::ReadOnly);
    assert_eq!(mounts[0].device_type, VolumeDeviceType::Shared);
    assert_eq!(mounts[0].device.volume_id, "vol-7c3e");
    assert_eq!(
        mounts[0]
            .device
            .mount_config
            .as_ref()
            .map(|c| c["uid"].clone()),
        Some(json!("1000"))
    );
    assert_eq!(mounts[1].device.mount_config, None);

    let endpoints = response.endpoints.as_ref().expect("endpoints");
    assert_eq!(endpoints.len(), 3);
    assert_eq!(endpoints[0].protocol, Some(EndpointProtocol::Tcp));
    assert_eq!(endpoints[1].ports, ["9000-9010", "9443"]);
    assert_eq!(endpoints[1].protocol, Some(EndpointProtocol::Udp));
    assert_eq!(
        endpoints[2].protocol, None,
        "the default (tcp) is not filled in"
    );

    let outcome =
        BindOutcome::decode(201, text("bind_response.json").as_bytes(), None).expect("201 decodes");
    assert_eq!(outcome, BindOutcome::Created(response));

    let accepted: AsyncOperation = roundtrip("bind_response_accepted.json");
    assert_eq!(accepted.operation.as_deref(), Some("bind/b-2024-02-ledger"));
    let body = text("bind_response_accepted.json").as_bytes();
    let BindOutcome::Accepted(a) = BindOutcome::decode(202, body, permit()).expect("202") else {
        panic!("expected Accepted")
    };
    assert_eq!(
        a.operation().map(|op| op.as_str()),
        Some("bind/b-2024-02-ledger")
    );
}

#[test]
fn fetch_bodies() {
    let instance: ServiceInstanceResource = roundtrip("fetch_instance.json");
    assert_eq!(
        instance.service_id.as_deref(),
        Some("8f2b5c1e-3d4a-4f6b-9c7d-0e1f2a3b4c5d")
    );
    assert_eq!(
        instance.plan_id.as_deref(),
        Some("4c1a7e2b-9f3d-4b5a-8c6e-1d2f3a4b5c6d")
    );
    assert_eq!(
        instance.dashboard_url.as_deref(),
        Some("https://dashboard.example.org/instances/ledger-db")
    );
    assert_eq!(
        instance
            .maintenance_info
            .as_ref()
            .map(|m| m.version.as_str()),
        Some("3.4.2")
    );
    assert_eq!(
        instance.parameters.as_ref().map(|p| p["engine"].clone()),
        Some(json!("postgres"))
    );
    assert!(
        instance
            .metadata
            .as_ref()
            .and_then(|m| m.attributes.as_ref())
            .is_some()
    );
    let outcome = FetchInstanceOutcome::decode(200, text("fetch_instance.json").as_bytes())
        .expect("200 decodes");
    assert_eq!(outcome, FetchInstanceOutcome::Found(instance));

    let binding: ServiceBindingResource = roundtrip("fetch_binding.json");
    assert_eq!(
        binding
            .metadata
            .as_ref()
            .and_then(|m| m.expires_at.as_deref()),
        Some("2031-06-30T23:59:59.0Z")
    );
    assert_eq!(
        binding
            .metadata
            .as_ref()
            .and_then(|m| m.renew_before.as_deref()),
        None
    );
    assert_eq!(
        binding.credentials.as_ref().map(|c| c["username"].clone()),
        Some(json!("ledger_ro"))
    );
    assert_eq!(
        binding.parameters.as_ref().map(|p| p["read_only"].clone()),
        Some(json!(true))
    );
    assert_eq!(binding.endpoints.as_ref().map(Vec::len), Some(1));
    assert_eq!(binding.volume_mounts, None);
    let outcome = FetchBindingOutcome::decode(200, text("fetch_binding.json").as_bytes())
        .expect("200 decodes");
    assert_eq!(outcome, FetchBindingOutcome::Found(binding));
}

#[test]
fn last_operations() {
    let in_progress: LastOperationResource = roundtrip("last_operation_in_progress.json");
    assert_eq!(in_progress.state, LastOperationState::InProgress);
    assert_eq!(
        in_progress.description.as_deref(),
        Some("Restoring the latest backup (step 2 of 3)")
    );
    assert_eq!(
        (in_progress.instance_usable, in_progress.update_repeatable),
        (None, None)
    );

    let failed: LastOperationResource = roundtrip("last_operation_failed.json");
    assert_eq!(failed.state, LastOperationState::Failed);
    assert_eq!(failed.instance_usable, Some(true));
    assert_eq!(failed.update_repeatable, Some(false));

    let body = text("last_operation_failed.json").as_bytes();
    let LastOperationOutcome::State(op) =
        LastOperationOutcome::decode(200, body, Some("30")).expect("200 decodes")
    else {
        panic!("expected a state")
    };
    assert_eq!(op.resource, failed);
    assert_eq!(op.retry_after, Some(osb_types::RetryAfter::seconds(30)));
}

#[test]
fn delete_accepted() {
    let accepted: AsyncOperation = roundtrip("deprovision_accepted.json");
    assert_eq!(accepted.operation.as_deref(), Some("deprovision/ledger-db"));
    let body = text("deprovision_accepted.json").as_bytes();
    let DeleteOutcome::Accepted(a) = DeleteOutcome::decode(202, body, permit()).expect("202")
    else {
        panic!("expected Accepted")
    };
    assert_eq!(a.body(), &accepted);
}

#[test]
fn error_bodies() {
    let cases = [
        ("error_async_required.json", ErrorCode::AsyncRequired),
        ("error_concurrency_error.json", ErrorCode::ConcurrencyError),
        ("error_requires_app.json", ErrorCode::RequiresApp),
        (
            "error_maintenance_info_conflict.json",
            ErrorCode::MaintenanceInfoConflict,
        ),
    ];
    for (name, code) in cases {
        let body: ErrorResponse = roundtrip(name);
        assert_eq!(body.code(), Some(code.clone()), "{name}");
        assert!(code.is_known());
        assert_eq!(body.error.as_deref(), Some(code.as_str()));
        assert!(
            body.description.as_deref().is_some_and(|d| !d.is_empty()),
            "{name}"
        );
        assert_eq!(
            (body.instance_usable, body.update_repeatable),
            (None, None),
            "{name}"
        );
        // Building the same body through the helper gives the same JSON.
        let built = ErrorResponse::coded(code, body.description.clone().unwrap_or_default());
        assert_eq!(built, body, "{name}");
    }

    let failed: ErrorResponse = roundtrip("error_failed_update.json");
    assert_eq!(
        failed.code(),
        Some(ErrorCode::Unknown("StorageShrinkNotSupported".into()))
    );
    assert_eq!(failed.instance_usable, Some(true));
    assert_eq!(failed.update_repeatable, Some(false));
    assert_eq!(failed.extra.get("x-support-ticket"), Some(&json!("T-5521")));

    let plain: ErrorResponse = roundtrip("error_description_only.json");
    assert_eq!(plain.code(), None);
    assert_eq!(
        plain,
        ErrorResponse::described("Broker database unavailable; try again later.")
    );
}

const CF_VECTOR: &str =
    "cloudfoundry eyANCiAgInVzZXJfaWQiOiAiNjgzZWE3NDgtMzA5Mi00ZmY0LWI2NTYtMzljYWNjNGQ1MzYwIg0KfQ==";
const K8S_VECTOR: &str = "kubernetes ew0KICAidXNlcm5hbWUiOiAiZHVrZSIsDQogICJ1aWQiOiAiYzJkZGUyNDItNWNlNC0xMWU3LTk4OGMtMDAwYzI5NDZmMTRmIiwNCiAgImdyb3VwcyI6IFsgImFkbWluIiwgImRldiIgXSwNCiAgImV4dHJhIjogew0KICAgICJteWRhdGEiOiBbICJkYXRhMSIsICJkYXRhMyIgXQ0KICB9DQp9";

/// The decoded JSON of a header value.
fn decoded_json(header: &str) -> String {
    let (_, encoded) = header.split_once(' ').expect("a space");
    let bytes = STANDARD
        .decode(encoded)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
        .expect("base64");
    String::from_utf8(bytes).expect("UTF-8")
}

#[test]
fn cloud_foundry_identity_vector() {
    // The vector's JSON is pretty-printed with CRLF line endings.
    assert!(decoded_json(CF_VECTOR).contains("\r\n"));
    let identity = OriginatingIdentity::parse(CF_VECTOR).expect("the CF vector parses");
    let OriginatingIdentity::CloudFoundry(cf) = &identity else {
        panic!("expected Cloud Foundry: {identity:?}")
    };
    assert_eq!(cf.user_id, "683ea748-3092-4ff4-b656-39cacc4d5360");
    assert!(cf.extra.is_empty());
    assert_eq!(identity.platform(), "cloudfoundry");
    assert_eq!(
        Value::Object(identity.value()),
        json!({"user_id": "683ea748-3092-4ff4-b656-39cacc4d5360"})
    );
    assert_eq!(
        OriginatingIdentity::parse(&identity.to_header_value()).expect("re-parses"),
        identity
    );
}

#[test]
fn kubernetes_identity_vector() {
    assert!(decoded_json(K8S_VECTOR).contains("\r\n"));
    let identity = OriginatingIdentity::parse(K8S_VECTOR).expect("the K8s vector parses");
    let OriginatingIdentity::Kubernetes(k8s) = &identity else {
        panic!("expected Kubernetes: {identity:?}")
    };
    assert_eq!(k8s.username, "duke");
    assert_eq!(k8s.uid, "c2dde242-5ce4-11e7-988c-000c2946f14f");
    assert_eq!(k8s.groups, ["admin", "dev"]);
    assert_eq!(
        Value::Object(k8s.extra.clone()),
        json!({"mydata": ["data1", "data3"]})
    );
    assert!(k8s.unknown.is_empty());
    assert_eq!(
        Value::Object(identity.value()),
        json!({
            "username": "duke",
            "uid": "c2dde242-5ce4-11e7-988c-000c2946f14f",
            "groups": ["admin", "dev"],
            "extra": {"mydata": ["data1", "data3"]}
        })
    );
    assert_eq!(
        OriginatingIdentity::parse(&identity.to_header_value()).expect("re-parses"),
        identity
    );
}

#[test]
fn cloud_foundry_identity_keeps_extra_keys() {
    // Older profiles' example also carried `user_name`; extra keys are kept, not rejected.
    let json = "{\r\n  \"user_id\": \"u-42\",\r\n  \"user_name\": \"ops@example.org\"\r\n}";
    let header = format!("cloudfoundry {}", STANDARD.encode(json));
    let OriginatingIdentity::CloudFoundry(cf) =
        OriginatingIdentity::parse(&header).expect("parses")
    else {
        panic!("expected Cloud Foundry")
    };
    assert_eq!(cf.user_id, "u-42");
    assert_eq!(cf.extra.get("user_name"), Some(&json!("ops@example.org")));
}
