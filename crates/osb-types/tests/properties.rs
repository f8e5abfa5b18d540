//! Property tests over the strategies of `osb_types::testing` (feature `testing`).
//!
//! For every model: typed → JSON → typed is equal; JSON with unknown fields at every level keeps
//! them exactly; `None` never serialises as `null`; absent and `null` stay distinct where the
//! spec makes a field nullable. For every outcome: `decode(status, body) == outcome`. Headers
//! (`X-Broker-API-Originating-Identity`, `X-Broker-API-Version`, `Retry-After`) round-trip and
//! never panic on arbitrary input, and neither does the catalog linter.
//!
//! Run with `cargo test -p osb-types --all-features --test properties`. The number of cases per
//! property comes from `PROPTEST_CASES` (default 256), e.g. `PROPTEST_CASES=5000` for a deeper run.
//!
//! Failures are not persisted (`failure_persistence: None`, so no `proptest-regressions/`
//! directory is written or committed): proptest prints the shrunk input of a failure, and each
//! one found is added as a fixed case to `tests/roundtrip.rs` or to the unit tests of the module
//! at fault, where it documents the bug it caught.
#![cfg(feature = "testing")]

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use osb_types::testing::*;
use osb_types::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn permit() -> Option<AsyncPermit> {
    AsyncPermit::from_accepts_incomplete(Some(true))
}

// ---------------------------------------------------------------------------------------------
// Checks shared by every model.

/// typed → JSON (`Value` and text) → typed gives the same value.
fn check_roundtrip<T>(x: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let value = serde_json::to_value(x)?;
    let back: T = serde_json::from_value(value.clone())
        .map_err(|e| TestCaseError::fail(format!("{e} in {value}")))?;
    prop_assert_eq!(&back, x);
    let text = serde_json::to_string(x)?;
    let back: T =
        serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e} in {text}")))?;
    prop_assert_eq!(&back, x);
    Ok(())
}

/// Adds `extra` to every object in `value` (but not inside the added values).
fn inject(value: &mut Value, extra: &Map<String, Value>) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(|v| inject(v, extra));
            map.extend(extra.clone());
        }
        Value::Array(items) => items.iter_mut().for_each(|v| inject(v, extra)),
        _ => {}
    }
}

/// The JSON of `x` with extension fields added to every object parses and serialises back to
/// exactly that JSON.
fn check_unknown_fields<T>(x: &T, extra: &Map<String, Value>) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut value = serde_json::to_value(x)?;
    inject(&mut value, extra);
    let typed: T = serde_json::from_value(value.clone())
        .map_err(|e| TestCaseError::fail(format!("{e} in {value}")))?;
    prop_assert_eq!(&serde_json::to_value(&typed)?, &value);
    let typed: T = serde_json::from_str(&value.to_string())?;
    prop_assert_eq!(serde_json::to_value(&typed)?, value);
    Ok(())
}

/// Extension fields to inject: at least one `x-` key with any JSON value.
fn injected() -> impl Strategy<Value = Map<String, Value>> {
    arb_extra(&[]).prop_filter("at least one extension field", |m| !m.is_empty())
}

/// Every JSON name a generated model declares: a key outside this set is an extension field.
fn typed_keys() -> BTreeSet<&'static str> {
    [
        Catalog::FIELDS,
        Service::FIELDS,
        DashboardClient::FIELDS,
        Plan::FIELDS,
        Schemas::FIELDS,
        ServiceInstanceSchema::FIELDS,
        ServiceBindingSchema::FIELDS,
        InputParametersSchema::FIELDS,
        MaintenanceInfo::FIELDS,
        ServiceInstanceProvisionRequest::FIELDS,
        ServiceInstanceProvisionResponse::FIELDS,
        ServiceInstanceAsyncOperation::FIELDS,
        ServiceInstanceMetadata::FIELDS,
        ServiceInstanceUpdateRequest::FIELDS,
        ServiceInstanceUpdateResponse::FIELDS,
        ServiceInstancePreviousValues::FIELDS,
        ServiceInstanceResource::FIELDS,
        AsyncOperation::FIELDS,
        LastOperationResource::FIELDS,
        ServiceBindingRequest::FIELDS,
        ServiceBindingResourceObject::FIELDS,
        ServiceBindingResponse::FIELDS,
        ServiceBindingResource::FIELDS,
        ServiceBindingMetadata::FIELDS,
        ServiceBindingEndpoint::FIELDS,
        ServiceBindingVolumeMount::FIELDS,
        ServiceBindingVolumeMountDevice::FIELDS,
        ErrorResponse::FIELDS,
        Cost::FIELDS,
    ]
    .into_iter()
    .flatten()
    .copied()
    .chain(["service_id", "plan_id", "operation", "accepts_incomplete"]) // query structs
    .collect()
}

/// Fields whose value is free-form JSON, where `null` is ordinary data. `context` is checked
/// separately (`context_known_fields_are_never_null`).
const FREE_FORM: &[&str] = &[
    "parameters",
    "context",
    "credentials",
    "labels",
    "attributes",
    "mount_config",
    "app_annotations",
    "amount",
];

/// Where a model's JSON may hold `null`.
#[derive(Clone, Copy)]
struct Nulls {
    /// Top-level fields the spec makes nullable.
    nullable: &'static [&'static str],
    /// Whether `metadata` is a free-form object (offerings and plans) rather than a model.
    free_metadata: bool,
}

/// The paths of `null`s in `value` that no free-form field or nullable field explains.
fn stray_nulls(value: &Value, rules: Nulls) -> Vec<String> {
    fn walk(
        value: &Value,
        path: &str,
        top: bool,
        rules: Nulls,
        typed: &BTreeSet<&str>,
        out: &mut Vec<String>,
    ) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    let free = FREE_FORM.contains(&key.as_str())
                        || (rules.free_metadata && key == "metadata")
                        || !typed.contains(key.as_str());
                    let here = format!("{path}/{key}");
                    if free {
                        continue;
                    }
                    if v.is_null() {
                        if !(top && rules.nullable.contains(&key.as_str())) {
                            out.push(here);
                        }
                    } else {
                        walk(v, &here, false, rules, typed, out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    if v.is_null() {
                        out.push(format!("{path}/{i}"));
                    } else {
                        walk(v, &format!("{path}/{i}"), false, rules, typed, out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, "", true, rules, &typed_keys(), &mut out);
    out
}

fn check_no_null<T: Serialize>(x: &T, rules: Nulls) -> Result<(), TestCaseError> {
    let value = serde_json::to_value(x)?;
    let stray = stray_nulls(&value, rules);
    prop_assert!(stray.is_empty(), "null at {:?} in {}", stray, value);
    Ok(())
}

const NO_NULLS: Nulls = Nulls {
    nullable: &[],
    free_metadata: false,
};
const FREE_METADATA: Nulls = Nulls {
    nullable: &[],
    free_metadata: true,
};

/// One test module per model: round trip, unknown fields, no stray `null`.
macro_rules! model_properties {
    ($($name:ident: $ty:ty = $strategy:expr, $nulls:expr;)*) => {$(
        mod $name {
            use super::*;
            proptest! {
                #![proptest_config(config())]

                #[test]
                fn typed_json_typed(x in $strategy) {
                    check_roundtrip::<$ty>(&x)?;
                }

                #[test]
                fn unknown_fields_are_kept(x in $strategy, extra in injected()) {
                    check_unknown_fields::<$ty>(&x, &extra)?;
                }

                #[test]
                fn none_is_never_null(x in $strategy) {
                    check_no_null::<$ty>(&x, $nulls)?;
                }
            }
        }
    )*};
}

model_properties! {
    catalog: Catalog = arb_catalog(), FREE_METADATA;
    service: Service = arb_service(), FREE_METADATA;
    dashboard_client: DashboardClient = arb_dashboard_client(), NO_NULLS;
    plan: Plan = arb_plan(), FREE_METADATA;
    schemas: Schemas = arb_schemas(), NO_NULLS;
    service_instance_schema: ServiceInstanceSchema = arb_service_instance_schema(), NO_NULLS;
    service_binding_schema: ServiceBindingSchema = arb_service_binding_schema(), NO_NULLS;
    input_parameters_schema: InputParametersSchema = arb_input_parameters_schema(), NO_NULLS;
    maintenance_info: MaintenanceInfo = arb_maintenance_info(), NO_NULLS;
    provision_request: ServiceInstanceProvisionRequest =
        arb_service_instance_provision_request(), NO_NULLS;
    provision_response: ServiceInstanceProvisionResponse =
        arb_service_instance_provision_response(),
        Nulls { nullable: &["dashboard_url"], free_metadata: false };
    instance_async_operation: ServiceInstanceAsyncOperation =
        arb_service_instance_async_operation(),
        Nulls { nullable: &["dashboard_url", "operation"], free_metadata: false };
    instance_metadata: ServiceInstanceMetadata = arb_service_instance_metadata(), NO_NULLS;
    update_request: ServiceInstanceUpdateRequest = arb_service_instance_update_request(), NO_NULLS;
    update_response: ServiceInstanceUpdateResponse =
        arb_service_instance_update_response(),
        Nulls { nullable: &["dashboard_url"], free_metadata: false };
    previous_values: ServiceInstancePreviousValues =
        arb_service_instance_previous_values(), NO_NULLS;
    instance_resource: ServiceInstanceResource = arb_service_instance_resource(), NO_NULLS;
    async_operation: AsyncOperation = arb_async_operation(), NO_NULLS;
    last_operation_resource: LastOperationResource = arb_last_operation_resource(), NO_NULLS;
    binding_request: ServiceBindingRequest = arb_service_binding_request(), NO_NULLS;
    bind_resource: ServiceBindingResourceObject =
        arb_service_binding_resource_object(), NO_NULLS;
    binding_response: ServiceBindingResponse = arb_service_binding_response(), NO_NULLS;
    binding_resource: ServiceBindingResource = arb_service_binding_resource(), NO_NULLS;
    binding_metadata: ServiceBindingMetadata = arb_service_binding_metadata(), NO_NULLS;
    endpoint: ServiceBindingEndpoint = arb_service_binding_endpoint(), NO_NULLS;
    volume_mount: ServiceBindingVolumeMount = arb_service_binding_volume_mount(), NO_NULLS;
    volume_mount_device: ServiceBindingVolumeMountDevice =
        arb_service_binding_volume_mount_device(), NO_NULLS;
    error_response: ErrorResponse = arb_error_response(), NO_NULLS;
    cost: Cost = arb_cost(), NO_NULLS;
}

/// Query parameter structs keep no unknown fields (they are not JSON bodies); they round-trip and
/// never write `null`.
mod queries {
    use super::*;

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn round_trip_without_nulls(
            fetch_instance in arb_fetch_instance_query(),
            provision in arb_provision_query(),
            update in arb_update_query(),
            deprovision in arb_deprovision_query(),
            instance_last_operation in arb_instance_last_operation_query(),
            fetch_binding in arb_fetch_binding_query(),
            bind in arb_bind_query(),
            unbind in arb_unbind_query(),
            binding_last_operation in arb_binding_last_operation_query(),
        ) {
            check_roundtrip(&fetch_instance)?;
            check_roundtrip(&provision)?;
            check_roundtrip(&update)?;
            check_roundtrip(&deprovision)?;
            check_roundtrip(&instance_last_operation)?;
            check_roundtrip(&fetch_binding)?;
            check_roundtrip(&bind)?;
            check_roundtrip(&unbind)?;
            check_roundtrip(&binding_last_operation)?;
            check_no_null(&fetch_instance, NO_NULLS)?;
            check_no_null(&provision, NO_NULLS)?;
            check_no_null(&update, NO_NULLS)?;
            check_no_null(&deprovision, NO_NULLS)?;
            check_no_null(&instance_last_operation, NO_NULLS)?;
            check_no_null(&fetch_binding, NO_NULLS)?;
            check_no_null(&bind, NO_NULLS)?;
            check_no_null(&unbind, NO_NULLS)?;
            check_no_null(&binding_last_operation, NO_NULLS)?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Nullable fields: absent, `null` and a value are three different things.

/// `field` (read by `get`) is absent, `null` or a value in `x`'s JSON exactly as its
/// `Option<Option<_>>` says, and setting the key in the JSON to each form parses to that form.
fn check_nullable<T, V>(
    x: &T,
    key: &str,
    get: impl Fn(&T) -> Option<Option<V>>,
) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned,
    V: Serialize + From<String> + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_value(x)?;
    let Value::Object(object) = json else {
        return Err(TestCaseError::fail(format!("not an object: {json}")));
    };
    match get(x) {
        None => prop_assert!(!object.contains_key(key), "{key} absent, but in {object:?}"),
        Some(None) => prop_assert_eq!(object.get(key), Some(&Value::Null)),
        Some(Some(v)) => prop_assert_eq!(object.get(key), Some(&serde_json::to_value(&v)?)),
    }
    let forms: [(Option<Value>, Option<Option<V>>); 3] = [
        (None, None),
        (Some(Value::Null), Some(None)),
        (
            Some(Value::from("https://x.example/é?a=1")),
            Some(Some(V::from("https://x.example/é?a=1".into()))),
        ),
    ];
    for (json_form, typed_form) in forms {
        let mut object = object.clone();
        match &json_form {
            None => object.shift_remove(key),
            Some(v) => object.insert(key.to_string(), v.clone()),
        };
        let parsed: T = serde_json::from_value(Value::Object(object.clone()))?;
        prop_assert_eq!(get(&parsed), typed_form);
        let Value::Object(again) = serde_json::to_value(&parsed)? else {
            return Err(TestCaseError::fail("not an object"));
        };
        prop_assert_eq!(again.get(key), json_form.as_ref());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn provision_response_dashboard_url_is_nullable(x in arb_service_instance_provision_response()) {
        check_nullable(&x, "dashboard_url", |r: &ServiceInstanceProvisionResponse| {
            r.dashboard_url.clone()
        })?;
    }

    #[test]
    fn async_operation_dashboard_url_and_operation_are_nullable(
        x in arb_service_instance_async_operation(),
    ) {
        check_nullable(&x, "dashboard_url", |r: &ServiceInstanceAsyncOperation| {
            r.dashboard_url.clone()
        })?;
        check_nullable(&x, "operation", |r: &ServiceInstanceAsyncOperation| r.operation.clone())?;
    }

    #[test]
    fn update_response_dashboard_url_is_nullable(x in arb_service_instance_update_response()) {
        check_nullable(&x, "dashboard_url", |r: &ServiceInstanceUpdateResponse| {
            r.dashboard_url.clone()
        })?;
    }
}

// ---------------------------------------------------------------------------------------------
// Enums and error codes keep every string.

proptest! {
    #![proptest_config(config())]

    #[test]
    fn enums_keep_any_string(s in any::<String>()) {
        check_enum::<ServiceRequirement>(&s, ServiceRequirement::VALUES, |e| {
            matches!(e, ServiceRequirement::Unknown(_))
        })?;
        check_enum::<LastOperationState>(&s, LastOperationState::VALUES, |e| {
            matches!(e, LastOperationState::Unknown(_))
        })?;
        check_enum::<EndpointProtocol>(&s, EndpointProtocol::VALUES, |e| {
            matches!(e, EndpointProtocol::Unknown(_))
        })?;
        check_enum::<VolumeMountMode>(&s, VolumeMountMode::VALUES, |e| {
            matches!(e, VolumeMountMode::Unknown(_))
        })?;
        check_enum::<VolumeDeviceType>(&s, VolumeDeviceType::VALUES, |e| {
            matches!(e, VolumeDeviceType::Unknown(_))
        })?;
    }

    #[test]
    fn known_enum_values_are_typed(known in prop_oneof![
        select(ServiceRequirement::VALUES).prop_map(|v| ("requirement", v)),
        select(LastOperationState::VALUES).prop_map(|v| ("state", v)),
        select(EndpointProtocol::VALUES).prop_map(|v| ("protocol", v)),
        select(VolumeMountMode::VALUES).prop_map(|v| ("mode", v)),
        select(VolumeDeviceType::VALUES).prop_map(|v| ("device_type", v)),
    ]) {
        let (kind, value) = known;
        let unknown = match kind {
            "requirement" => matches!(ServiceRequirement::from(value), ServiceRequirement::Unknown(_)),
            "state" => matches!(LastOperationState::from(value), LastOperationState::Unknown(_)),
            "protocol" => matches!(EndpointProtocol::from(value), EndpointProtocol::Unknown(_)),
            "mode" => matches!(VolumeMountMode::from(value), VolumeMountMode::Unknown(_)),
            _ => matches!(VolumeDeviceType::from(value), VolumeDeviceType::Unknown(_)),
        };
        prop_assert!(!unknown, "{} {:?} parsed as unknown", kind, value);
    }

    #[test]
    fn error_codes_keep_any_string(s in any::<String>(), description in arb_text()) {
        let code = ErrorCode::from(s.as_str());
        prop_assert_eq!(code.as_str(), s.as_str());
        prop_assert_eq!(code.to_string(), s.clone());
        let known = ["AsyncRequired", "ConcurrencyError", "RequiresApp", "MaintenanceInfoConflict"];
        prop_assert_eq!(code.is_known(), known.contains(&s.as_str()));
        let body = ErrorResponse::coded(code.clone(), description.clone());
        let json = serde_json::to_value(&body)?;
        prop_assert_eq!(&json["error"], &Value::from(s.as_str()));
        prop_assert_eq!(&json["description"], &Value::from(description));
        prop_assert_eq!(serde_json::from_value::<ErrorResponse>(json)?.code(), Some(code));
    }
}

/// An enum built from any string writes that string back, parses from it, and is `Unknown`
/// exactly when the string is not one of the spec's values.
fn check_enum<E>(
    s: &str,
    known: &[&str],
    is_unknown: impl Fn(&E) -> bool,
) -> Result<(), TestCaseError>
where
    E: Serialize + DeserializeOwned + for<'a> From<&'a str> + PartialEq + std::fmt::Debug,
{
    let e = E::from(s);
    prop_assert_eq!(serde_json::to_value(&e)?, Value::from(s));
    prop_assert_eq!(serde_json::from_value::<E>(Value::from(s))?, e);
    prop_assert_eq!(is_unknown(&E::from(s)), !known.contains(&s));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Outcomes: the status and body of an outcome decode to the same outcome.

proptest! {
    #![proptest_config(config())]

    #[test]
    fn provision_outcome_decodes(x in arb_provision_outcome()) {
        let (status, body) = (x.status().as_u16(), serde_json::to_vec(&x)?);
        prop_assert_eq!(ProvisionOutcome::decode(status, &body, permit())?, x.clone());
        let without = ProvisionOutcome::decode(status, &body, None);
        if matches!(x, ProvisionOutcome::Accepted(_)) {
            prop_assert_eq!(without, Err(Error::AsyncNotPermitted));
        } else {
            prop_assert_eq!(without, Ok(x));
        }
    }

    #[test]
    fn update_outcome_decodes(x in arb_update_outcome()) {
        let (status, body) = (x.status().as_u16(), serde_json::to_vec(&x)?);
        prop_assert_eq!(UpdateOutcome::decode(status, &body, permit())?, x.clone());
        let without = UpdateOutcome::decode(status, &body, None);
        if matches!(x, UpdateOutcome::Accepted(_)) {
            prop_assert_eq!(without, Err(Error::AsyncNotPermitted));
        } else {
            prop_assert_eq!(without, Ok(x));
        }
    }

    #[test]
    fn delete_outcome_decodes(x in arb_delete_outcome()) {
        let (status, body) = (x.status().as_u16(), serde_json::to_vec(&x)?);
        prop_assert_eq!(DeleteOutcome::decode(status, &body, permit())?, x.clone());
        let without = DeleteOutcome::decode(status, &body, None);
        if matches!(x, DeleteOutcome::Accepted(_)) {
            prop_assert_eq!(without, Err(Error::AsyncNotPermitted));
        } else {
            prop_assert_eq!(without, Ok(x));
        }
    }

    #[test]
    fn bind_outcome_decodes(x in arb_bind_outcome()) {
        let (status, body) = (x.status().as_u16(), serde_json::to_vec(&x)?);
        prop_assert_eq!(BindOutcome::decode(status, &body, permit())?, x.clone());
        let without = BindOutcome::decode(status, &body, None);
        if matches!(x, BindOutcome::Accepted(_)) {
            prop_assert_eq!(without, Err(Error::AsyncNotPermitted));
        } else {
            prop_assert_eq!(without, Ok(x));
        }
    }

    #[test]
    fn fetch_outcomes_decode(
        instance in arb_fetch_instance_outcome(),
        binding in arb_fetch_binding_outcome(),
    ) {
        let body = serde_json::to_vec(&instance)?;
        prop_assert_eq!(FetchInstanceOutcome::decode(instance.status().as_u16(), &body)?, instance);
        let body = serde_json::to_vec(&binding)?;
        prop_assert_eq!(FetchBindingOutcome::decode(binding.status().as_u16(), &body)?, binding);
    }

    #[test]
    fn last_operation_outcome_decodes(x in arb_last_operation_outcome()) {
        let body = serde_json::to_vec(&x)?;
        let retry_after = match &x {
            LastOperationOutcome::State(op) => op.retry_after.map(|r| r.to_header_value()),
            _ => None,
        };
        let back = LastOperationOutcome::decode(x.status().as_u16(), &body, retry_after.as_deref())?;
        prop_assert_eq!(back, x);
    }

    #[test]
    fn other_statuses_are_unexpected(status in 100u16..600, body in arb_json()) {
        let body = serde_json::to_vec(&body)?;
        let unexpected = Error::UnexpectedStatus { status };
        if ![200, 201, 202].contains(&status) {
            prop_assert_eq!(ProvisionOutcome::decode(status, &body, permit()).err(), Some(unexpected.clone()));
            prop_assert_eq!(BindOutcome::decode(status, &body, permit()).err(), Some(unexpected.clone()));
        }
        if ![200, 202].contains(&status) {
            prop_assert_eq!(UpdateOutcome::decode(status, &body, permit()).err(), Some(unexpected.clone()));
        }
        if ![200, 202, 410].contains(&status) {
            prop_assert_eq!(DeleteOutcome::decode(status, &body, permit()).err(), Some(unexpected.clone()));
        }
        if ![200, 404].contains(&status) {
            prop_assert_eq!(FetchInstanceOutcome::decode(status, &body).err(), Some(unexpected.clone()));
            prop_assert_eq!(FetchBindingOutcome::decode(status, &body).err(), Some(unexpected.clone()));
        }
        if ![200, 404, 410].contains(&status) {
            prop_assert_eq!(LastOperationOutcome::decode(status, &body, None).err(), Some(unexpected.clone()));
        }
    }

    #[test]
    fn retry_after_round_trips(x in arb_retry_after()) {
        prop_assert_eq!(RetryAfter::parse(&x.to_header_value())?, x);
    }

    #[test]
    fn retry_after_parse_never_panics(s in any::<String>()) {
        if let Ok(r) = RetryAfter::parse(&s) {
            prop_assert_eq!(RetryAfter::parse(&r.to_header_value())?, r);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lenient decoding: a mistyped optional field of a valid reply is set aside, not fatal.

/// What a field holds, which decides which values do not match it.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Text,
    Flag,
    List,
    Object,
}

/// Values of the wrong type for a field of `kind`.
fn mismatches(kind: Kind) -> [Value; 4] {
    match kind {
        Kind::Text => [json!(42), json!(true), json!([1]), json!({"k": 1})],
        Kind::Flag => [json!("false"), json!(1), json!([true]), json!({"k": 1})],
        Kind::List => [json!(42), json!("x"), json!(true), json!({"k": 1})],
        Kind::Object => [json!(42), json!("x"), json!(true), json!([1])],
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The paths a pattern such as `endpoints[].ports[]` reaches in `body`. A top-level field that
/// is absent is reached too (it is then added).
fn expand(body: &Value, pattern: &str) -> Vec<Vec<Seg>> {
    let parts: Vec<&str> = pattern.split('.').collect();
    let mut paths: Vec<Vec<Seg>> = vec![Vec::new()];
    for part in &parts {
        let (key, each) = match part.strip_suffix("[]") {
            Some(key) => (key, true),
            None => (*part, false),
        };
        let mut next = Vec::new();
        for path in paths {
            let mut keyed = path.clone();
            keyed.push(Seg::Key(key.to_string()));
            match value_at(body, &keyed) {
                Some(Value::Array(items)) if each => {
                    next.extend((0..items.len()).map(|i| {
                        let mut indexed = keyed.clone();
                        indexed.push(Seg::Index(i));
                        indexed
                    }));
                }
                Some(_) if !each => next.push(keyed),
                None if parts.len() == 1 && !each => next.push(keyed),
                _ => {}
            }
        }
        paths = next;
    }
    paths
}

fn value_at<'a>(value: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(value, |here, seg| match seg {
        Seg::Key(key) => here.get(key.as_str()),
        Seg::Index(i) => here.get(*i),
    })
}

fn set_at(value: &mut Value, path: &[Seg], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut here = value;
    for seg in parents {
        here = match seg {
            Seg::Key(key) => &mut here[key.as_str()],
            Seg::Index(i) => &mut here[*i],
        };
    }
    match last {
        Seg::Key(key) => here[key.as_str()] = new,
        Seg::Index(i) => here[*i] = new,
    }
}

/// The path of the field a corrupted value belongs to, as warnings write it: up to the last
/// key (a corrupted port is the endpoint's `ports` field).
fn field_path(path: &[Seg]) -> String {
    let last_key = path
        .iter()
        .rposition(|s| matches!(s, Seg::Key(_)))
        .unwrap_or(0);
    let mut out = String::new();
    for seg in &path[..=last_key] {
        match seg {
            Seg::Key(key) if out.is_empty() => out.push_str(key),
            Seg::Key(key) => out.push_str(&format!(".{key}")),
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Corrupts one optional field of `original`'s body (picked by `pick` among `fields`) with a
/// value of the wrong type, then checks that the reply still decodes, its needed fields are the
/// original's, exactly one warning names the field, and re-encoding gives the corrupted body back.
fn check_lenient<T, N>(
    original: &T,
    fields: &[(&str, Kind)],
    pick: &proptest::sample::Index,
    corruption: usize,
    decode: impl Fn(&[u8]) -> Result<(T, Vec<DecodeWarning>), Error>,
    needed: impl Fn(&T) -> N,
) -> Result<(), TestCaseError>
where
    T: Serialize + std::fmt::Debug,
    N: PartialEq + std::fmt::Debug,
{
    let body = serde_json::to_value(original)?;
    let candidates: Vec<(Vec<Seg>, Kind)> = fields
        .iter()
        .flat_map(|(pattern, kind)| expand(&body, pattern).into_iter().map(|p| (p, *kind)))
        .collect();
    prop_assert!(
        !candidates.is_empty(),
        "absent top-level fields are candidates too"
    );
    let (path, kind) = pick.get(&candidates);
    let mut corrupted = body.clone();
    set_at(
        &mut corrupted,
        path,
        mismatches(*kind)[corruption % 4].clone(),
    );
    let bytes = serde_json::to_vec(&corrupted)?;
    let (decoded, warnings) =
        decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e} in {corrupted}")))?;
    prop_assert_eq!(needed(&decoded), needed(original));
    let paths: Vec<String> = warnings.iter().map(|w| w.path.clone()).collect();
    prop_assert_eq!(paths, vec![field_path(path)], "{}", corrupted);
    prop_assert_eq!(
        serde_json::to_value(&decoded)?,
        corrupted,
        "nothing is lost"
    );
    Ok(())
}

const BINDING_FIELDS: &[(&str, Kind)] = &[
    ("metadata", Kind::Object),
    ("metadata.expires_at", Kind::Text),
    ("metadata.renew_before", Kind::Text),
    ("syslog_drain_url", Kind::Text),
    ("route_service_url", Kind::Text),
    ("volume_mounts", Kind::List),
    ("volume_mounts[].device.mount_config", Kind::Object),
    ("endpoints", Kind::List),
    ("endpoints[].ports", Kind::List),
    ("endpoints[].ports[]", Kind::Text),
    ("endpoints[].protocol", Kind::Text),
];

const INSTANCE_FIELDS: &[(&str, Kind)] = &[
    ("dashboard_url", Kind::Text),
    ("metadata", Kind::Object),
    ("metadata.labels", Kind::Object),
    ("metadata.attributes", Kind::Object),
];

const LAST_OPERATION_FIELDS: &[(&str, Kind)] = &[
    ("description", Kind::Text),
    ("instance_usable", Kind::Flag),
    ("update_repeatable", Kind::Flag),
];

fn bind_credentials(outcome: &BindOutcome) -> Option<Map<String, Value>> {
    match outcome {
        BindOutcome::Created(b) | BindOutcome::AlreadyExists(b) => b.credentials.clone(),
        _ => None,
    }
}

fn provision_operation(outcome: &ProvisionOutcome) -> Option<OperationId> {
    match outcome {
        ProvisionOutcome::Accepted(a) => a.operation().cloned(),
        _ => None,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lenient_decoding_sets_aside_one_mistyped_optional_field(
        bind in arb_bind_outcome().prop_filter("a body with credentials", |x| !matches!(x, BindOutcome::Accepted(_))),
        provision in arb_provision_outcome(),
        last in arb_last_operation_resource(),
        pick in any::<proptest::sample::Index>(),
        corruption in 0usize..4,
    ) {
        let status = bind.status().as_u16();
        check_lenient(
            &bind,
            BINDING_FIELDS,
            &pick,
            corruption,
            |body| BindOutcome::decode_with_warnings(status, body, None),
            bind_credentials,
        )?;
        let status = provision.status().as_u16();
        check_lenient(
            &provision,
            INSTANCE_FIELDS,
            &pick,
            corruption,
            |body| ProvisionOutcome::decode_with_warnings(status, body, permit()),
            |x| (x.status(), provision_operation(x)),
        )?;
        let last = LastOperationOutcome::State(LastOperation::new(last));
        check_lenient(
            &last,
            LAST_OPERATION_FIELDS,
            &pick,
            corruption,
            |body| LastOperationOutcome::decode_with_warnings(200, body, None),
            |x| match x {
                LastOperationOutcome::State(op) => Some(op.resource.state.clone()),
                _ => None,
            },
        )?;
    }

    #[test]
    fn lenient_decoding_still_fails_on_a_mistyped_needed_field(
        bind in arb_bind_outcome().prop_filter("a body", |x| !matches!(x, BindOutcome::Accepted(_))),
        last in arb_last_operation_resource(),
        corruption in 0usize..4,
    ) {
        let mut body = serde_json::to_value(&bind)?;
        body["credentials"] = mismatches(Kind::Object)[corruption].clone();
        let status = bind.status().as_u16();
        let decoded = BindOutcome::decode_with_warnings(status, &serde_json::to_vec(&body)?, None);
        prop_assert!(matches!(decoded, Err(Error::Decode { .. })), "{:?}", decoded);
        let mut body = serde_json::to_value(&last)?;
        body["state"] = mismatches(Kind::Text)[corruption].clone();
        let decoded = LastOperationOutcome::decode_with_warnings(200, &serde_json::to_vec(&body)?, None);
        prop_assert!(matches!(decoded, Err(Error::Decode { .. })), "{:?}", decoded);
    }
}

// ---------------------------------------------------------------------------------------------
// Context.

/// The profile's field names for each typed platform (their values are strings or objects).
const CF_KNOWN: &[&str] = &[
    "organization_guid",
    "organization_name",
    "space_guid",
    "space_name",
    "instance_name",
    "organization_annotations",
    "space_annotations",
    "instance_annotations",
];
const K8S_KNOWN: &[&str] = &[
    "namespace",
    "clusterid",
    "instance_name",
    "namespace_annotations",
    "instance_annotations",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn context_round_trips(ctx in arb_context()) {
        check_roundtrip(&ctx)?;
        let object = ctx.to_object();
        prop_assert_eq!(Value::Object(object.clone()), serde_json::to_value(&ctx)?);
        prop_assert_eq!(Context::from(object.clone()), ctx.clone());
        prop_assert_eq!(ctx.platform(), object.get("platform").and_then(Value::as_str));
    }

    #[test]
    fn context_keeps_unknown_fields(ctx in arb_context(), extra in injected()) {
        check_unknown_fields(&ctx, &extra)?;
    }

    #[test]
    fn context_known_fields_are_never_null(ctx in arb_context()) {
        let known = match &ctx {
            Context::CloudFoundry(_) => CF_KNOWN,
            Context::Kubernetes(_) => K8S_KNOWN,
            _ => &[],
        };
        let json = serde_json::to_value(&ctx)?;
        for key in known {
            prop_assert_ne!(json.get(*key), Some(&Value::Null), "{} in {}", key, json);
        }
        if !known.is_empty() {
            prop_assert_eq!(json.get("platform").and_then(Value::as_str), ctx.platform());
        }
    }

    #[test]
    fn context_from_any_object_never_panics(object in arb_object(), platform in prop_oneof![
        Just(Value::from("cloudfoundry")),
        Just(Value::from("kubernetes")),
        arb_json(),
    ]) {
        let mut object = object;
        object.insert("platform".into(), platform);
        // Typed parsing fails only on wrongly typed known fields; `From` keeps those raw.
        let ctx = Context::from(object.clone());
        prop_assert_eq!(Value::Object(ctx.to_object()), Value::Object(object.clone()));
        if let Ok(parsed) = serde_json::from_value::<Context>(Value::Object(object.clone())) {
            prop_assert_eq!(serde_json::to_value(&parsed)?, Value::Object(object));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// X-Broker-API-Originating-Identity.

/// A Base64 rendering of `bytes`, padded or not.
fn base64(bytes: &[u8], padded: bool) -> String {
    if padded {
        STANDARD.encode(bytes)
    } else {
        STANDARD_NO_PAD.encode(bytes)
    }
}

/// Decoded payloads that are near-valid identities: objects with or without `user_id` /
/// `username`, other JSON, and arbitrary bytes.
fn identity_payload() -> impl Strategy<Value = Vec<u8>> {
    let with_key = |key: &'static str| {
        (
            arb_object(),
            prop_oneof![arb_text().prop_map(Value::from), arb_json()],
        )
            .prop_map(move |(mut object, value)| {
                object.insert(key.to_string(), value);
                Value::Object(object).to_string().into_bytes()
            })
    };
    prop_oneof![
        with_key("user_id"),
        with_key("username"),
        arb_json().prop_map(|v| v.to_string().into_bytes()),
        vec(any::<u8>(), 0..48),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn identity_header_round_trips(identity in arb_originating_identity()) {
        let header = identity.to_header_value();
        prop_assert!(http::HeaderValue::from_str(&header).is_ok(), "not a header value: {header:?}");
        prop_assert_eq!(OriginatingIdentity::parse(&header)?, identity.clone());
        prop_assert_eq!(header.parse::<OriginatingIdentity>()?, identity.clone());
        prop_assert_eq!(identity.to_string(), header);
        let rebuilt = OriginatingIdentity::from_parts(identity.platform(), identity.value())?;
        prop_assert_eq!(rebuilt, identity);
    }

    #[test]
    fn identity_parse_never_panics(header in any::<String>()) {
        if let Ok(identity) = OriginatingIdentity::parse(&header) {
            prop_assert_eq!(OriginatingIdentity::parse(&identity.to_header_value())?, identity);
        }
    }

    #[test]
    fn identity_parse_of_near_valid_headers_is_stable(
        platform in prop_oneof![
            Just("cloudfoundry".to_string()),
            Just("kubernetes".to_string()),
            "[!-~]{1,8}",
            "\\PC{0,4}",
        ],
        separator in select(vec![" ", "  ", "\t", ""]),
        payload in identity_payload(),
        padded in any::<bool>(),
    ) {
        let header = format!("{platform}{separator}{}", base64(&payload, padded));
        if let Ok(identity) = OriginatingIdentity::parse(&header) {
            prop_assert_eq!(OriginatingIdentity::parse(&identity.to_header_value())?, identity);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// X-Broker-API-Version.

proptest! {
    #![proptest_config(config())]

    #[test]
    fn api_version_round_trips(v in arb_api_version()) {
        prop_assert!(v.is_known());
        prop_assert_eq!(v.to_string().parse::<ApiVersion>()?, v);
        prop_assert_eq!(serde_json::from_value::<ApiVersion>(serde_json::to_value(v)?)?, v);
    }

    #[test]
    fn api_version_display_parses_back(major in 0u16..10_000, minor in 0u16..10_000) {
        let v = ApiVersion::new(major, minor);
        prop_assert_eq!(v.to_string().parse::<ApiVersion>()?, v);
        prop_assert_eq!((v.major(), v.minor()), (major, minor));
    }

    #[test]
    fn api_version_parse_never_panics(s in prop_oneof![any::<String>(), "[0-9 .]{0,12}"]) {
        if let Ok(v) = s.parse::<ApiVersion>() {
            prop_assert_eq!(v.to_string().parse::<ApiVersion>()?, v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ids.

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ids_are_non_empty_transparent_strings(id in arb_id::<InstanceId>()) {
        prop_assert!(!id.is_empty());
        prop_assert!(!id.chars().all(|c| c == '.'));
        prop_assert_eq!(serde_json::to_value(&id)?, Value::from(id.as_str()));
        check_roundtrip(&id)?;
    }
}

// ---------------------------------------------------------------------------------------------
// The catalog linter.

/// JSON Schema keywords, so generated schemas reach the linter's schema rules.
const KEYWORDS: &[&str] = &[
    "$schema",
    "$ref",
    "$id",
    "id",
    "type",
    "properties",
    "items",
    "required",
    "enum",
    "const",
    "pattern",
    "patternProperties",
    "additionalProperties",
    "minimum",
    "maximum",
    "format",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "definitions",
    "$defs",
    "dependencies",
    "default",
];

/// Values that matter to JSON Schema keywords.
const SCHEMA_STRINGS: &[&str] = &[
    "http://json-schema.org/draft-04/schema#",
    "http://json-schema.org/draft-07/schema#",
    "https://json-schema.org/draft/2020-12/schema",
    "http://example.org/custom-meta-schema#",
    "#",
    "#/definitions/a",
    "#/properties/x",
    "https://example.org/remote.json#/a",
    "other.json",
    "object",
    "string",
    "integer",
    "array",
    "(",
    "[a-",
    "^\\d+$",
    "date-time",
];

/// Objects that look like JSON Schemas: known keywords with plausible and implausible values.
fn schema_like() -> impl Strategy<Value = Map<String, Value>> {
    let leaf = prop_oneof![
        2 => select(SCHEMA_STRINGS).prop_map(Value::from),
        1 => arb_json(),
    ];
    let node = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Value::Array),
            vec((select(KEYWORDS), inner), 0..4).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                )
            }),
        ]
    });
    (vec((select(KEYWORDS), node), 0..5), any::<bool>()).prop_map(|(entries, draft_04)| {
        let mut schema: Map<String, Value> = entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        if draft_04 {
            schema.insert("$schema".into(), Value::from(SCHEMA_STRINGS[0]));
        }
        schema
    })
}

/// A catalog with colliding ids and names, schema-like `parameters` and odd maintenance versions.
fn lintable_catalog() -> impl Strategy<Value = Catalog> {
    let names = || {
        select(
            ["db", "db", "cache", "My Service", "", " ", &"x".repeat(300)]
                .map(String::from)
                .to_vec(),
        )
    };
    (
        arb_catalog(),
        vec(names(), 8),
        vec(schema_like(), 1..4),
        vec(
            select(vec!["1.0.0", "1.0", "", "2.1.1+abcdef", "v1", "1.2.3-rc.1"]),
            4,
        ),
    )
        .prop_map(|(catalog, pool, schemas, versions)| {
            let mut value = serde_json::to_value(&catalog).unwrap_or(Value::Null);
            let mut n = 0;
            let next = |n: &mut usize| {
                *n += 1;
                pool[*n % pool.len()].clone()
            };
            if let Some(services) = value.get_mut("services").and_then(Value::as_array_mut) {
                for service in services {
                    service["id"] = Value::from(next(&mut n));
                    service["name"] = Value::from(next(&mut n));
                    if let Some(plans) = service.get_mut("plans").and_then(Value::as_array_mut) {
                        for plan in plans {
                            plan["id"] = Value::from(next(&mut n));
                            plan["name"] = Value::from(next(&mut n));
                            let schema = Value::Object(schemas[n % schemas.len()].clone());
                            plan["schemas"] = serde_json::json!({
                                "service_instance": {"create": {"parameters": schema}},
                                "service_binding": {"create": {"parameters": schema}},
                            });
                            plan["maintenance_info"] =
                                serde_json::json!({"version": versions[n % versions.len()]});
                        }
                    }
                }
            }
            serde_json::from_value(value).unwrap_or(catalog)
        })
}

/// Every problem has a rule, a message and a JSON pointer whose parent exists in the catalog.
fn check_lint(catalog: &Catalog) -> Result<(), TestCaseError> {
    let problems = catalog.lint();
    prop_assert_eq!(&catalog.lint(), &problems, "lint is deterministic");
    let json = serde_json::to_value(catalog)?;
    for problem in &problems {
        prop_assert!(
            !problem.rule.is_empty() && !problem.message.is_empty(),
            "{}",
            problem
        );
        prop_assert!(problem.path.starts_with('/'), "{}", problem);
        let parent = problem
            .path
            .rsplit_once('/')
            .map_or("", |(parent, _)| parent);
        prop_assert!(
            json.pointer(parent).is_some(),
            "{} does not point into {}",
            problem,
            json
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lint_never_panics(catalog in arb_catalog()) {
        check_lint(&catalog)?;
    }

    #[test]
    fn lint_never_panics_on_schemas_and_collisions(catalog in lintable_catalog()) {
        check_lint(&catalog)?;
    }
}

#[test]
fn lintable_catalogs_reach_the_schema_and_collision_rules() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = lintable_catalog();
    let mut rules = BTreeSet::new();
    for _ in 0..64 {
        let catalog = strategy.new_tree(&mut runner).expect("a catalog").current();
        rules.extend(catalog.lint().into_iter().map(|p| p.rule));
    }
    for rule in [
        "required-field-empty",
        "duplicate-service-id",
        "duplicate-service-name",
        "duplicate-plan-id",
        "invalid-maintenance-version",
        "schema-missing-dollar-schema",
        "schema-remote-ref",
        "name-not-cli-friendly",
        "string-too-long",
    ] {
        assert!(
            rules.contains(rule),
            "no catalog triggered {rule}; got {rules:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The checkers themselves: they must be able to fail.

#[test]
fn stray_nulls_finds_nulls_outside_free_form_and_nullable_fields() {
    let json = serde_json::json!({
        "dashboard_url": null,
        "operation": null,
        "metadata": {"labels": {"a": null}, "expires_at": null},
        "parameters": {"p": null},
        "x-ext": null,
        "services": [{"plans": [{"free": null, "metadata": {"m": null}, "x-m": {"free": null}}]}],
        "tags": [null],
    });
    let provision = Nulls {
        nullable: &["dashboard_url"],
        free_metadata: false,
    };
    assert_eq!(
        stray_nulls(&json, provision),
        [
            "/operation",
            "/metadata/expires_at",
            "/services/0/plans/0/free",
            "/tags/0"
        ]
    );
    assert_eq!(
        stray_nulls(&json, FREE_METADATA),
        [
            "/dashboard_url",
            "/operation",
            "/services/0/plans/0/free",
            "/tags/0"
        ]
    );
}

#[test]
fn inject_reaches_every_object() {
    let mut json = serde_json::json!({"a": [{"b": {}}, 1], "c": {"d": null}});
    let extra: Map<String, Value> = [("x-k".to_string(), Value::from(1))].into_iter().collect();
    inject(&mut json, &extra);
    assert_eq!(
        json,
        serde_json::json!({"a": [{"b": {"x-k": 1}, "x-k": 1}, 1], "c": {"d": null, "x-k": 1}, "x-k": 1})
    );
}
