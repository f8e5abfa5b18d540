//! `ShapeForVersion` and nested models: a nested object that shaping empties is removed, never
//! sent as `{}` (a platform replacing stored labels from each reply could read `{}` as "clear
//! them"); an object that was `{}` before shaping, or that keeps an old or extension field, is
//! kept as it is.
//!
//! Run with `cargo test -p osb-types --all-features --test shaping`.

use osb_types::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Decodes `body` as a `T`, shapes it for `version` and encodes it again.
fn shaped_json<T>(body: Value, version: ApiVersion) -> Value
where
    T: Serialize + DeserializeOwned + ShapeForVersion,
{
    let mut value: T = serde_json::from_value(body).expect("the body decodes");
    value.shape_for_version(version);
    serde_json::to_value(&value).expect("the value encodes")
}

fn provision(body: Value, version: ApiVersion) -> Value {
    shaped_json::<ServiceInstanceProvisionResponse>(body, version)
}

fn bind(body: Value, version: ApiVersion) -> Value {
    shaped_json::<ServiceBindingResponse>(body, version)
}

// ---------------------------------------------------------------------------------------------
// Nested objects that shaping empties are removed.

#[test]
fn provision_response_metadata_with_only_attributes_is_removed_at_2_16() {
    let body = json!({
        "dashboard_url": "https://dash.example.com/1",
        "metadata": {"attributes": {"tier": "gold"}}
    });
    assert_eq!(
        provision(body.clone(), ApiVersion::V2_16),
        json!({"dashboard_url": "https://dash.example.com/1"}),
        "a 2.16 platform must not get \"metadata\": {{}}"
    );
    assert_eq!(provision(body.clone(), ApiVersion::V2_17), body);

    // The typed API gives the same answer.
    let mut reply = ServiceInstanceProvisionResponse::new().with_metadata(
        ServiceInstanceMetadata::new().with_attributes(json_object(json!({"a": 1}))),
    );
    reply.shape_for_version(ApiVersion::V2_16);
    assert_eq!(reply.metadata, None);
}

#[test]
fn binding_response_metadata_with_only_renew_before_is_removed_at_2_16() {
    let body = json!({
        "credentials": {"uri": "db://u:p@host/db"},
        "metadata": {"renew_before": "2029-12-01T00:00:00.0Z"}
    });
    assert_eq!(
        bind(body.clone(), ApiVersion::V2_16),
        json!({"credentials": {"uri": "db://u:p@host/db"}}),
        "a 2.16 platform must not get \"metadata\": {{}}"
    );
    assert_eq!(bind(body.clone(), ApiVersion::V2_17), body);

    let mut reply = ServiceBindingResponse::new()
        .with_metadata(ServiceBindingMetadata::new().with_renew_before("2029-12-01T00:00:00.0Z"));
    reply.shape_for_version(ApiVersion::V2_16);
    assert_eq!(reply.metadata, None);
}

#[test]
fn async_operation_metadata_with_only_attributes_is_removed_at_2_16() {
    let body = json!({"operation": "op-1", "metadata": {"attributes": {"tier": "gold"}}});
    assert_eq!(
        shaped_json::<ServiceInstanceAsyncOperation>(body.clone(), ApiVersion::V2_16),
        json!({"operation": "op-1"})
    );
    assert_eq!(
        shaped_json::<ServiceInstanceAsyncOperation>(body.clone(), ApiVersion::V2_17),
        body
    );
}

#[test]
fn metadata_is_removed_below_its_own_version_whatever_it_holds() {
    // `metadata` itself appeared in 2.16: before that it goes, even when it was `{}`.
    for metadata in [
        json!({}),
        json!({"labels": {"team": "blue"}}),
        json!({"x-ext": 1}),
    ] {
        let body = json!({"metadata": metadata});
        assert_eq!(provision(body.clone(), ApiVersion::V2_15), json!({}));
        assert_eq!(bind(body, ApiVersion::V2_15), json!({}));
    }
}

#[test]
fn shaping_an_emptied_object_again_changes_nothing() {
    let body = json!({"metadata": {"renew_before": "2029-12-01T00:00:00.0Z"}});
    let once = bind(body, ApiVersion::V2_16);
    assert_eq!(once, json!({}));
    assert_eq!(bind(once.clone(), ApiVersion::V2_16), once);
}

// ---------------------------------------------------------------------------------------------
// Nested objects that keep something, or were `{}` already, stay.

#[test]
fn metadata_with_an_old_field_keeps_it() {
    let body = json!({"metadata": {"labels": {"team": "blue"}, "attributes": {"tier": "gold"}}});
    assert_eq!(
        provision(body.clone(), ApiVersion::V2_16),
        json!({"metadata": {"labels": {"team": "blue"}}})
    );
    assert_eq!(provision(body.clone(), ApiVersion::V2_17), body);

    let body = json!({"metadata": {
        "expires_at": "2030-01-01T00:00:00.0Z",
        "renew_before": "2029-12-01T00:00:00.0Z"
    }});
    assert_eq!(
        bind(body.clone(), ApiVersion::V2_16),
        json!({"metadata": {"expires_at": "2030-01-01T00:00:00.0Z"}})
    );
    assert_eq!(bind(body.clone(), ApiVersion::V2_17), body);
}

#[test]
fn metadata_that_was_empty_before_shaping_stays_empty() {
    // A broker that sends `{}` on purpose gets it through unchanged (lossless JSON).
    let body = json!({"metadata": {}});
    for version in [ApiVersion::V2_16, ApiVersion::V2_17] {
        assert_eq!(
            provision(body.clone(), version),
            body,
            "provision at {version}"
        );
        assert_eq!(bind(body.clone(), version), body, "bind at {version}");
        assert_eq!(
            shaped_json::<ServiceInstanceAsyncOperation>(body.clone(), version),
            body,
            "async operation at {version}"
        );
    }
    // An old field holding `{}` is kept as well.
    let body = json!({"metadata": {"labels": {}}});
    assert_eq!(provision(body.clone(), ApiVersion::V2_16), body);
}

#[test]
fn metadata_with_only_extension_fields_stays() {
    let body = json!({"metadata": {"x-broker-note": "kept"}});
    for version in [ApiVersion::V2_16, ApiVersion::V2_17] {
        assert_eq!(
            provision(body.clone(), version),
            body,
            "provision at {version}"
        );
        assert_eq!(bind(body.clone(), version), body, "bind at {version}");
    }
    // Newer fields next to an extension field go; the object stays for the extension field.
    assert_eq!(
        provision(
            json!({"metadata": {"attributes": {"tier": "gold"}, "x-broker-note": "kept"}}),
            ApiVersion::V2_16
        ),
        body
    );
    assert_eq!(
        bind(
            json!({"metadata": {"renew_before": "2029-12-01T00:00:00.0Z", "x-broker-note": "kept"}}),
            ApiVersion::V2_16
        ),
        body
    );
}

// ---------------------------------------------------------------------------------------------
// The generated `is_empty`.

#[test]
fn is_empty_means_serializes_as_an_empty_object() {
    let empty = ServiceBindingMetadata::new();
    assert!(empty.is_empty());
    assert_eq!(serde_json::to_value(&empty).unwrap(), json!({}));
    assert!(
        !ServiceBindingMetadata::new()
            .with_expires_at("2030-01-01T00:00:00Z")
            .is_empty()
    );
    assert!(
        !ServiceBindingMetadata::new()
            .with_extra("x-ext", 1)
            .is_empty()
    );
    assert!(
        !ServiceInstanceMetadata::new()
            .with_labels(serde_json::Map::new())
            .is_empty()
    );
}

fn json_object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// For any value: shaping never leaves `{}` where there was something.

#[cfg(feature = "testing")]
mod properties {
    use super::*;
    use osb_types::testing::*;
    use proptest::prelude::*;

    fn config() -> ProptestConfig {
        ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// Paths (below the root, through object members only) where `shaped` holds `{}` but
    /// `original` held something else. Shaping only removes members and keeps array elements
    /// in place, so every path of `shaped` is a path of `original`. Array elements are not
    /// followed: shaping does not remove elements, so one may be left as `{}`.
    fn emptied(original: &Value, shaped: &Value, path: &str, out: &mut Vec<String>) {
        if let (Value::Object(o), Value::Object(s)) = (original, shaped) {
            for (key, value) in s {
                let here = format!("{path}/{key}");
                let before = &o[key];
                if value == &json!({}) && before != &json!({}) {
                    out.push(format!("{here}: was {before}"));
                }
                emptied(before, value, &here, out);
            }
        }
    }

    fn check<T>(x: &T) -> Result<(), TestCaseError>
    where
        T: Serialize + ShapeForVersion + Clone,
    {
        let original = serde_json::to_value(x).unwrap();
        for version in ApiVersion::KNOWN {
            let mut shaped = x.clone();
            shaped.shape_for_version(version);
            let shaped_json = serde_json::to_value(&shaped).unwrap();
            let mut found = Vec::new();
            emptied(&original, &shaped_json, "", &mut found);
            prop_assert!(
                found.is_empty(),
                "shaping for {} left {{}} behind: {:?}",
                version,
                found
            );
            // Shaping twice is shaping once.
            let mut again = shaped.clone();
            again.shape_for_version(version);
            prop_assert_eq!(serde_json::to_value(&again).unwrap(), shaped_json);
        }
        Ok(())
    }

    // The models where shaping can empty a nested object with the spec as it is. (The catalog
    // and the instance resource cannot: no nested model of theirs gains fields after it.)
    proptest! {
        #![proptest_config(config())]

        #[test]
        fn provision_response_is_never_emptied(x in arb_service_instance_provision_response()) {
            check(&x)?;
        }

        #[test]
        fn async_operation_is_never_emptied(x in arb_service_instance_async_operation()) {
            check(&x)?;
        }

        #[test]
        fn update_request_is_never_emptied(x in arb_service_instance_update_request()) {
            check(&x)?;
        }

        #[test]
        fn binding_request_is_never_emptied(x in arb_service_binding_request()) {
            check(&x)?;
        }

        #[test]
        fn binding_response_is_never_emptied(x in arb_service_binding_response()) {
            check(&x)?;
        }

        #[test]
        fn binding_resource_is_never_emptied(x in arb_service_binding_resource()) {
            check(&x)?;
        }
    }
}
