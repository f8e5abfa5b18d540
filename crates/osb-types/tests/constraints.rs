//! `validate()` agrees with the `minLength` / `maxLength` / `pattern` constraints the spec
//! states (the generated `STRING_CONSTRAINTS`): strings at and around every boundary are
//! judged by a JSON Schema validator and by our own checks.

use osb_types::{
    ApiVersion, BindingLastOperationQuery, DeprovisionQuery, FetchBindingQuery, FetchInstanceQuery,
    InstanceLastOperationQuery, Invalid, OriginatingIdentity, STRING_CONSTRAINTS,
    ServiceBindingMetadata, ServiceBindingRequest, ServiceInstancePreviousValues,
    ServiceInstanceProvisionRequest, ServiceInstanceUpdateRequest, StringConstraint, UnbindQuery,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Reply models: a broker's `operation` is checked by the server's `operation_length` guard,
/// not by a `validate()`.
const NOT_VALIDATED: &[(&str, &str)] = &[
    ("ServiceInstanceAsyncOperation", "operation"),
    ("AsyncOperation", "operation"),
];

fn validated<T: DeserializeOwned>(
    body: Value,
    validate: impl Fn(&T) -> Result<(), Invalid>,
) -> bool {
    let value: T = serde_json::from_value(body).expect("the test body deserializes");
    validate(&value).is_ok()
}

/// Whether our checks accept `value` in `row.field` of an otherwise valid request; `None` for
/// rows `validate()` does not cover.
fn ours(row: &StringConstraint, value: &str) -> Option<bool> {
    let with = |mut base: Value| {
        base[row.field] = json!(value);
        base
    };
    let ids = json!({"service_id": "s", "plan_id": "p"});
    Some(match row.schema {
        "ServiceInstanceProvisionRequest" => validated(
            with(
                json!({"service_id": "s", "plan_id": "p", "organization_guid": "o", "space_guid": "s"}),
            ),
            ServiceInstanceProvisionRequest::validate,
        ),
        "ServiceInstanceUpdateRequest" => validated(
            with(json!({"service_id": "s"})),
            ServiceInstanceUpdateRequest::validate,
        ),
        "ServiceInstancePreviousValues" => {
            validated(with(json!({})), ServiceInstancePreviousValues::validate)
        }
        "ServiceBindingRequest" => validated(with(ids), ServiceBindingRequest::validate),
        "ServiceBindingMetadata" => validated(with(json!({})), ServiceBindingMetadata::validate),
        "ServiceBindingResourceObject" => validated(
            json!({"service_id": "s", "plan_id": "p", "bind_resource": with(json!({}))}),
            ServiceBindingRequest::validate,
        ),
        "FetchInstanceQuery" => validated(with(ids), FetchInstanceQuery::validate),
        "FetchBindingQuery" => validated(with(ids), FetchBindingQuery::validate),
        "DeprovisionQuery" => validated(with(ids), DeprovisionQuery::validate),
        "UnbindQuery" => validated(with(ids), UnbindQuery::validate),
        "InstanceLastOperationQuery" => validated(with(ids), InstanceLastOperationQuery::validate),
        "BindingLastOperationQuery" => validated(with(ids), BindingLastOperationQuery::validate),
        "header" => match row.field {
            "X-Broker-API-Version" => value.parse::<ApiVersion>().is_ok(),
            "X-Broker-API-Originating-Identity" => OriginatingIdentity::parse(value).is_ok(),
            other => panic!("no check known for the header {other}"),
        },
        _ => return None,
    })
}

/// What the spec says of `value`, judged by a JSON Schema validator.
fn spec(row: &StringConstraint, value: &str) -> bool {
    let mut schema = json!({"type": "string"});
    if let Some(min) = row.min_length {
        schema["minLength"] = json!(min);
    }
    if let Some(max) = row.max_length {
        schema["maxLength"] = json!(max);
    }
    if let Some(pattern) = row.pattern {
        schema["pattern"] = json!(pattern);
    }
    jsonschema::validator_for(&schema)
        .expect("the spec's constraint compiles")
        .is_valid(&json!(value))
}

/// Strings at and around the row's boundaries (ASCII and multi-byte, since lengths count
/// characters), and samples for patterns.
fn samples(row: &StringConstraint) -> Vec<String> {
    let mut lengths = Vec::new();
    for bound in [row.min_length, row.max_length].into_iter().flatten() {
        lengths.extend([bound.saturating_sub(1), bound, bound + 1]);
    }
    let mut out: Vec<String> = lengths
        .iter()
        .flat_map(|&n| ["x".repeat(n as usize), "é".repeat(n as usize)])
        .collect();
    if row.pattern.is_some() {
        let identity = "cloudfoundry eyJ1c2VyX2lkIjoiNjgzZWE3NDgifQ==";
        out.extend(
            [
                "2.17",
                "2.13",
                "10.0",
                "2",
                "2.",
                ".17",
                "2.17.1",
                "v2.17",
                "",
                "2.x",
                identity,
                "cloudfoundry",
                "cloudfoundry ",
                " eyJ9",
                "a b c",
                "cf e30=",
                "2030-01-01T00:00:00Z",
                "2030-01-01T00:00:00.25Z",
                "2030-01-01",
                "2030-01-01T00:00:00+01:00",
                "2030-01-01 00:00:00Z",
                "2030-1-1T0:0:0Z",
            ]
            .map(String::from),
        );
    }
    out
}

#[test]
fn validate_agrees_with_every_string_constraint_of_the_spec() {
    assert!(!STRING_CONSTRAINTS.is_empty());
    let mut unchecked = Vec::new();
    for row in STRING_CONSTRAINTS {
        for value in samples(row) {
            let Some(ours) = ours(row, &value) else {
                unchecked.push((row.schema, row.field));
                break;
            };
            let spec = spec(row, &value);
            let shown: String = value.chars().take(20).collect();
            if row.pattern.is_some() {
                // Parsing is stricter than a pattern (an identity's JSON is decoded, a
                // timestamp's date checked): whatever we accept, the spec accepts.
                assert!(
                    !ours || spec,
                    "{}.{}: we accept {shown:?} (length {}), the spec does not",
                    row.schema,
                    row.field,
                    value.chars().count()
                );
            } else {
                assert_eq!(
                    ours,
                    spec,
                    "{}.{}: {shown:?} (length {})",
                    row.schema,
                    row.field,
                    value.chars().count()
                );
            }
        }
    }
    assert_eq!(unchecked, NOT_VALIDATED, "constraints no validate() covers");
}
