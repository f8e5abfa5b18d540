//! Validating `parameters` against a plan's JSON Schemas (feature `json-schema`).
//!
//! A plan may publish a JSON Schema for the `parameters` of instance create, instance update and
//! binding create (`schemas.service_instance.create.parameters`, …). [`PlanSchemas::compile`]
//! compiles all three once, typically at startup; [`ParameterSchema::validate`] then checks a
//! request's `parameters` and reports every violation with a JSON pointer into the parameters.
//!
//! - The draft comes from the schema's `$schema` (draft-04, -06, -07, 2019-09 or 2020-12); a
//!   schema without `$schema` is read as draft-04, the draft every platform supports.
//! - References must stay inside the document (`#/definitions/...`). Nothing is ever fetched: a
//!   remote `$ref` is a compile error, as the spec forbids external references.
//! - Violation messages never quote the offending value, because parameters may hold secrets.
//!
//! ```
//! use osb_types::schema::ParameterSchema;
//! use serde_json::json;
//!
//! let schema = json!({
//!     "$schema": "http://json-schema.org/draft-04/schema#",
//!     "type": "object",
//!     "properties": {"size": {"type": "integer", "minimum": 1}},
//!     "required": ["size"]
//! });
//! let schema = ParameterSchema::compile(schema.as_object().unwrap()).unwrap();
//! assert!(schema.validate(&json!({"size": 3})).is_ok());
//! let violations = schema.validate(&json!({"size": 0})).unwrap_err();
//! assert_eq!(violations[0].pointer, "/size");
//! assert_eq!(violations[0].message, "value is less than the minimum of 1");
//! ```

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::lint::{SchemaDraft, remote_refs};
use crate::{Invalid, Plan};

/// Longest meta-schema message kept by the linter, in characters.
const MAX_MESSAGE_LEN: usize = 300;

/// A compiled JSON Schema for `parameters`.
///
/// Cheap to share: `Send + Sync`, and cloning shares the compiled validator.
#[derive(Clone, Debug)]
pub struct ParameterSchema {
    validator: jsonschema::Validator,
}

/// One way in which `parameters` fail their schema.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SchemaViolation {
    /// JSON pointer to the offending value inside the parameters; `""` for the parameters object
    /// itself (for example, a missing required property).
    pub pointer: String,
    /// What is wrong, without quoting the value.
    pub message: String,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

impl SchemaDraft {
    fn to_jsonschema(self) -> jsonschema::Draft {
        match self {
            SchemaDraft::Draft4 => jsonschema::Draft::Draft4,
            SchemaDraft::Draft6 => jsonschema::Draft::Draft6,
            SchemaDraft::Draft7 => jsonschema::Draft::Draft7,
            SchemaDraft::Draft201909 => jsonschema::Draft::Draft201909,
            SchemaDraft::Draft202012 => jsonschema::Draft::Draft202012,
        }
    }
}

/// The draft a schema declares; draft-04 when it has no `$schema`.
fn declared_draft(schema: &Map<String, Value>) -> Result<SchemaDraft, Invalid> {
    match schema.get("$schema") {
        None => Ok(SchemaDraft::Draft4),
        Some(Value::String(uri)) => SchemaDraft::from_uri(uri).ok_or_else(|| {
            Invalid::new(
                "$schema",
                format!(
                    "{uri:?} is not a JSON Schema draft; use \"http://json-schema.org/draft-04/schema#\" \
                     (custom meta-schemas are not supported)"
                ),
            )
        }),
        Some(_) => Err(Invalid::new("$schema", "must be a string naming a JSON Schema draft")),
    }
}

fn located(pointer: &str, message: impl fmt::Display) -> String {
    if pointer.is_empty() {
        message.to_string()
    } else {
        format!("at {pointer}: {message}")
    }
}

impl ParameterSchema {
    /// Compiles a `parameters` schema.
    ///
    /// Fails with [`Invalid`] when `$schema` names no known draft, when a `$ref` points
    /// outside the document, or when the schema is not valid for its draft (for example an
    /// unknown `type` or a malformed `pattern`). The `field` of the error is `$schema`, `$ref`
    /// or `schema`; the reason gives the location inside the schema.
    pub fn compile(schema: &Map<String, Value>) -> Result<Self, Invalid> {
        let draft = declared_draft(schema)?;
        if let Some((pointer, target)) = remote_refs(schema).into_iter().next() {
            return Err(Invalid::new(
                "$ref",
                located(
                    &pointer,
                    format_args!(
                        "{target:?} points outside the schema; external references are not allowed"
                    ),
                ),
            ));
        }
        let document = Value::Object(schema.clone());
        let validator = jsonschema::options()
            .with_draft(draft.to_jsonschema())
            .offline()
            .build(&document)
            .map_err(|e| {
                let message = truncate(e.to_string());
                Invalid::new("schema", located(e.instance_path().as_str(), message))
            })?;
        Ok(ParameterSchema { validator })
    }

    /// Whether `parameters` satisfy the schema.
    pub fn is_valid(&self, parameters: &Value) -> bool {
        self.validator.is_valid(parameters)
    }

    /// Checks `parameters` and returns every violation.
    ///
    /// Request models hold `parameters` as a map; to check one without copying it, move it into
    /// a [`Value`] and back:
    ///
    /// ```
    /// # use osb_types::schema::ParameterSchema;
    /// # let schema = ParameterSchema::compile(&serde_json::Map::new()).unwrap();
    /// # let mut request = osb_types::ServiceInstanceProvisionRequest::new("s", "p", "o", "sp")
    /// #     .with_parameters(serde_json::Map::new());
    /// if let Some(map) = request.parameters.take() {
    ///     let parameters = serde_json::Value::Object(map);
    ///     let outcome = schema.validate(&parameters);
    ///     if let serde_json::Value::Object(map) = parameters {
    ///         request.parameters = Some(map);
    ///     }
    ///     assert!(outcome.is_ok());
    /// }
    /// ```
    pub fn validate(&self, parameters: &Value) -> Result<(), Vec<SchemaViolation>> {
        if self.validator.is_valid(parameters) {
            return Ok(());
        }
        let violations: Vec<SchemaViolation> = self
            .validator
            .iter_errors(parameters)
            .map(|e| SchemaViolation {
                pointer: e.instance_path().as_str().to_string(),
                message: e.masked().to_string(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }
}

/// The compiled `parameters` schemas of one plan; `None` where the plan publishes none.
#[derive(Clone, Debug, Default)]
pub struct PlanSchemas {
    /// `schemas.service_instance.create.parameters`: checks provision requests.
    pub instance_create: Option<ParameterSchema>,
    /// `schemas.service_instance.update.parameters`: checks update requests.
    pub instance_update: Option<ParameterSchema>,
    /// `schemas.service_binding.create.parameters`: checks bind requests.
    pub binding_create: Option<ParameterSchema>,
}

impl PlanSchemas {
    /// Compiles every schema the plan publishes.
    ///
    /// The error's `field` is the schema's path in the plan followed by the field from
    /// [`ParameterSchema::compile`], e.g. `schemas.service_instance.create.parameters.$schema`.
    pub fn compile(plan: &Plan) -> Result<Self, Invalid> {
        let Some(schemas) = &plan.schemas else {
            return Ok(PlanSchemas::default());
        };
        let instance = schemas.service_instance.as_ref();
        let compile = |field: &str, schema: Option<&Map<String, Value>>| {
            schema
                .map(|s| {
                    ParameterSchema::compile(s).map_err(
                        |Invalid {
                             field: inner,
                             reason,
                         }| {
                            Invalid::new(format!("{field}.{inner}"), reason)
                        },
                    )
                })
                .transpose()
        };
        Ok(PlanSchemas {
            instance_create: compile(
                "schemas.service_instance.create.parameters",
                instance
                    .and_then(|i| i.create.as_ref())
                    .and_then(|c| c.parameters.as_ref()),
            )?,
            instance_update: compile(
                "schemas.service_instance.update.parameters",
                instance
                    .and_then(|i| i.update.as_ref())
                    .and_then(|u| u.parameters.as_ref()),
            )?,
            binding_create: compile(
                "schemas.service_binding.create.parameters",
                schemas
                    .service_binding
                    .as_ref()
                    .and_then(|b| b.create.as_ref())
                    .and_then(|c| c.parameters.as_ref()),
            )?,
        })
    }

    /// Whether the plan publishes no schema at all.
    pub fn is_empty(&self) -> bool {
        self.instance_create.is_none()
            && self.instance_update.is_none()
            && self.binding_create.is_none()
    }
}

fn truncate(mut message: String) -> String {
    if let Some((at, _)) = message.char_indices().nth(MAX_MESSAGE_LEN) {
        message.truncate(at);
        message.push('…');
    }
    message
}

/// Meta-schema violations of `schema` for `draft`, as (pointer into the schema, message).
pub(crate) fn meta_schema_errors(draft: SchemaDraft, schema: &Value) -> Vec<(String, String)> {
    let validator = match draft {
        SchemaDraft::Draft4 => jsonschema::draft4::meta::validator(),
        SchemaDraft::Draft6 => jsonschema::draft6::meta::validator(),
        SchemaDraft::Draft7 => jsonschema::draft7::meta::validator(),
        SchemaDraft::Draft201909 => jsonschema::draft201909::meta::validator(),
        SchemaDraft::Draft202012 => jsonschema::draft202012::meta::validator(),
    };
    validator
        .iter_errors(schema)
        .map(|e| {
            (
                e.instance_path().as_str().to_string(),
                truncate(e.to_string()),
            )
        })
        .collect()
}

/// What the linter reports as `schema-invalid`: meta-schema violations, or else the reason the
/// schema does not compile. Pointers are relative to the schema.
pub(crate) fn schema_problems(
    draft: SchemaDraft,
    schema: &Map<String, Value>,
) -> Vec<(String, String)> {
    let document = Value::Object(schema.clone());
    let mut problems: Vec<(String, String)> = meta_schema_errors(draft, &document)
        .into_iter()
        .map(|(at, message)| {
            let message = format!(
                "does not conform to the JSON Schema {} meta-schema: {message}",
                draft.name()
            );
            (at, message)
        })
        .collect();
    if problems.is_empty()
        && let Err(e) = jsonschema::options()
            .with_draft(draft.to_jsonschema())
            .offline()
            .build(&document)
    {
        problems.push((
            e.instance_path().as_str().to_string(),
            truncate(format!("the schema does not compile: {e}")),
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        InputParametersSchema, PlanId, Schemas, ServiceBindingSchema, ServiceInstanceSchema,
    };
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn invalid_field(e: Invalid) -> String {
        e.field
    }

    #[test]
    fn shareable_between_threads() {
        fn assert_shared<T: Send + Sync + fmt::Debug + Clone>() {}
        assert_shared::<ParameterSchema>();
        assert_shared::<PlanSchemas>();
    }

    #[test]
    fn reports_every_violation_with_pointers_and_no_values() {
        let schema = ParameterSchema::compile(&map(json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "password": {"type": "string", "minLength": 12},
                "nodes": {"type": "array", "items": {"type": "integer", "maximum": 5}}
            },
            "required": ["name"],
            "additionalProperties": false
        })))
        .unwrap();
        let parameters = json!({"password": "hunter2", "nodes": [1, 9], "extra": true});
        assert!(!schema.is_valid(&parameters));
        let violations = schema.validate(&parameters).unwrap_err();
        let mut pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
        pointers.sort_unstable();
        assert_eq!(pointers, ["", "", "/nodes/1", "/password"]);
        for v in &violations {
            assert!(!v.message.contains("hunter2"), "value leaked: {v}");
        }
        assert!(
            violations
                .iter()
                .any(|v| v.message.contains("\"name\" is a required property"))
        );
        let shown = violations
            .iter()
            .find(|v| v.pointer == "/password")
            .unwrap()
            .to_string();
        assert!(shown.starts_with("/password: "), "{shown}");
        assert!(schema.validate(&json!({"name": "x", "nodes": [5]})).is_ok());
    }

    #[test]
    fn draft_follows_dollar_schema_and_defaults_to_draft_04() {
        // In draft-04 exclusiveMinimum is a boolean; in draft-06 and later a number.
        let draft4 = map(
            json!({"type": "object", "properties": {"n": {"minimum": 1, "exclusiveMinimum": true}}}),
        );
        let s = ParameterSchema::compile(&draft4).unwrap();
        assert!(s.validate(&json!({"n": 1})).is_err());
        assert!(s.validate(&json!({"n": 2})).is_ok());
        let numeric = map(json!({"properties": {"n": {"exclusiveMinimum": 1}}}));
        assert_eq!(
            invalid_field(ParameterSchema::compile(&numeric).unwrap_err()),
            "schema"
        );
        let mut draft7 = numeric.clone();
        draft7.insert(
            "$schema".into(),
            json!("http://json-schema.org/draft-07/schema#"),
        );
        let s = ParameterSchema::compile(&draft7).unwrap();
        assert!(s.validate(&json!({"n": 1})).is_err());
        assert!(s.validate(&json!({"n": 1.5})).is_ok());
    }

    #[test]
    fn refuses_unknown_drafts_and_remote_refs() {
        for bad in [
            json!({"$schema": "http://example.com/meta#"}),
            json!({"$schema": 4}),
        ] {
            assert_eq!(
                invalid_field(ParameterSchema::compile(&map(bad)).unwrap_err()),
                "$schema"
            );
        }
        let remote = map(json!({"properties": {"a": {"$ref": "http://127.0.0.1:9/x.json"}}}));
        let err = ParameterSchema::compile(&remote).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `$ref`: at /properties/a/$ref: \"http://127.0.0.1:9/x.json\" points outside the schema; external references are not allowed"
        );
        let local = map(json!({
            "definitions": {"size": {"type": "integer"}},
            "properties": {"a": {"$ref": "#/definitions/size"}}
        }));
        let s = ParameterSchema::compile(&local).unwrap();
        assert!(s.validate(&json!({"a": "x"})).is_err());
        assert!(s.validate(&json!({"a": 1})).is_ok());
    }

    #[test]
    fn malformed_schemas_are_errors_not_panics() {
        for bad in [
            json!({"type": 12}),
            json!({"type": "strin"}),
            json!({"properties": {"a": {"pattern": "(["}}}),
            json!({"$ref": "#/definitions/missing"}),
            json!({"required": []}),
            json!({"properties": []}),
            json!({"items": "x"}),
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "$ref": "#/nope"}),
        ] {
            let result = ParameterSchema::compile(&map(bad.clone()));
            assert!(result.is_err(), "{bad} compiled");
        }
        // Odd but valid schemas compile.
        for ok in [
            json!({}),
            json!({"not": {}}),
            json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": {}}),
        ] {
            assert!(ParameterSchema::compile(&map(ok.clone())).is_ok(), "{ok}");
        }
    }

    #[test]
    fn plan_schemas_compile_each_action() {
        let create = map(json!({"type": "object", "required": ["size"]}));
        let bind = map(json!({"type": "object", "properties": {"role": {"enum": ["ro", "rw"]}}}));
        let plan = Plan::new(PlanId::new("p"), "small", "Small").with_schemas(
            Schemas::new()
                .with_service_instance(
                    ServiceInstanceSchema::new()
                        .with_create(InputParametersSchema::new().with_parameters(create)),
                )
                .with_service_binding(
                    ServiceBindingSchema::new()
                        .with_create(InputParametersSchema::new().with_parameters(bind)),
                ),
        );
        let schemas = PlanSchemas::compile(&plan).unwrap();
        assert!(!schemas.is_empty());
        assert!(schemas.instance_update.is_none());
        let create = schemas.instance_create.as_ref().unwrap();
        assert!(create.validate(&json!({})).is_err());
        let bind = schemas.binding_create.as_ref().unwrap();
        assert!(bind.validate(&json!({"role": "admin"})).is_err());
        assert!(bind.validate(&json!({"role": "ro"})).is_ok());

        assert!(
            PlanSchemas::compile(&Plan::new(PlanId::new("p"), "n", "d"))
                .unwrap()
                .is_empty()
        );

        let broken =
            plan.clone().with_schemas(
                Schemas::new().with_service_instance(
                    ServiceInstanceSchema::new().with_update(
                        InputParametersSchema::new()
                            .with_parameters(map(json!({"$schema": "urn:custom"}))),
                    ),
                ),
            );
        let err = PlanSchemas::compile(&broken).unwrap_err();
        assert_eq!(
            invalid_field(err),
            "schemas.service_instance.update.parameters.$schema"
        );
    }

    const KEYWORDS: &[&str] = &[
        "$schema",
        "$ref",
        "$id",
        "id",
        "type",
        "properties",
        "items",
        "additionalProperties",
        "definitions",
        "$defs",
        "required",
        "enum",
        "const",
        "pattern",
        "format",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "if",
        "then",
        "dependencies",
        "patternProperties",
        "a",
    ];

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            Just(json!(1.5)),
            prop::sample::select(vec![
                "object",
                "string",
                "integer",
                "#",
                "#/definitions/a",
                "#/properties/a",
                "http://json-schema.org/draft-04/schema#",
                "https://json-schema.org/draft/2020-12/schema",
                "([",
                "^a+$",
                "date-time",
                "",
                "~1/~0",
                "urn:x",
            ])
            .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                arbitrary_object(inner).prop_map(Value::Object),
            ]
        })
    }

    fn arbitrary_object(
        values: impl proptest::strategy::Strategy<Value = Value>,
    ) -> impl proptest::strategy::Strategy<Value = Map<String, Value>> {
        use proptest::prelude::*;
        prop::collection::btree_map(prop::sample::select(KEYWORDS), values, 0..6)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(512))]
        #[test]
        fn compile_and_lint_agree_and_never_panic(
            schema in arbitrary_object(arbitrary_json()),
            instance in arbitrary_json(),
        ) {
            let compiled = ParameterSchema::compile(&schema);
            if let Ok(compiled) = &compiled {
                let _ = compiled.validate(&instance);
            }
            let plan = Plan::new(PlanId::new("p"), "n", "d").with_schemas(
                Schemas::new().with_service_instance(
                    ServiceInstanceSchema::new()
                        .with_create(InputParametersSchema::new().with_parameters(schema)),
                ),
            );
            let catalog = crate::Catalog::new([crate::Service::new("s", crate::ServiceId::new("s"), "d", true, [plan])]);
            let blocking: Vec<_> = catalog
                .lint()
                .into_iter()
                .filter(|p| {
                    ["schema-invalid", "schema-remote-ref", "schema-unknown-draft"].contains(&p.rule)
                })
                .collect();
            proptest::prop_assert_eq!(
                compiled.is_ok(),
                blocking.is_empty(),
                "compile: {:?}, lint: {:?}",
                compiled.err(),
                blocking
            );
        }
    }

    #[test]
    fn meta_schema_errors_point_into_the_schema() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "strin"}, "b": {"minimum": "x"}}});
        let errors = meta_schema_errors(SchemaDraft::Draft4, &schema);
        let pointers: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(pointers, ["/properties/a/type", "/properties/b/minimum"]);
        assert!(meta_schema_errors(SchemaDraft::Draft4, &json!({"type": "object"})).is_empty());
        let compile_only =
            map(json!({"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}}));
        let problems = schema_problems(SchemaDraft::Draft4, &compile_only);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].1.starts_with("the schema does not compile"),
            "{problems:?}"
        );
        assert_eq!(
            truncate("é".repeat(MAX_MESSAGE_LEN + 5)).chars().count(),
            MAX_MESSAGE_LEN + 1
        );
    }
}
