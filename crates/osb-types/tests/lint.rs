//! The catalog linter: a clean catalog, then one seeded violation per rule.

use std::collections::BTreeSet;

use osb_types::{Catalog, Problem, Severity, has_errors};
use serde_json::{Value, json};

const DRAFT_04: &str = "http://json-schema.org/draft-04/schema#";
const CREATE: &str = "/services/0/plans/0/schemas/service_instance/create/parameters";
const UPDATE: &str = "/services/0/plans/0/schemas/service_instance/update/parameters";
const BIND: &str = "/services/0/plans/0/schemas/service_binding/create/parameters";

/// A catalog that uses every feature the linter looks at, correctly.
fn valid() -> Value {
    json!({"services": [
        {
            "id": "svc-pg", "name": "postgres", "description": "PostgreSQL databases",
            "bindable": true, "tags": ["sql", "postgres"], "requires": ["syslog_drain", "volume_mount"],
            "instances_retrievable": true, "bindings_retrievable": true, "plan_updateable": true,
            "metadata": {"displayName": "PostgreSQL"},
            "dashboard_client": {
                "id": "pg-dashboard", "secret": "s3cret", "redirect_uri": "https://dashboard.example.com"
            },
            "plans": [
                {
                    "id": "plan-pg-small", "name": "small", "description": "One small node",
                    "free": true, "maximum_polling_duration": 3600, "binding_rotatable": true,
                    "maintenance_info": {"version": "1.4.0+pg16.2", "description": "PostgreSQL 16.2"},
                    "metadata": {"bullets": ["1 GB"], "costs": [{"amount": {"usd": 0.0, "eur": 0}, "unit": "MONTHLY"}]},
                    "schemas": {
                        "service_instance": {
                            "create": {"parameters": {
                                "$schema": DRAFT_04, "type": "object",
                                "definitions": {"size": {"type": "integer", "minimum": 1}},
                                "properties": {
                                    "storage_gb": {"$ref": "#/definitions/size"},
                                    "version": {"enum": ["15", "16"], "default": {"$ref": "not-a-ref"}}
                                },
                                "required": ["version"]
                            }},
                            "update": {"parameters": {
                                "$schema": DRAFT_04, "type": "object",
                                "properties": {"storage_gb": {"type": "integer"}}
                            }}
                        },
                        "service_binding": {"create": {"parameters": {
                            "$schema": DRAFT_04, "type": "object",
                            "properties": {"role": {"enum": ["ro", "rw"]}}
                        }}}
                    }
                },
                {
                    "id": "plan-pg-large", "name": "large.v2", "description": "Three nodes",
                    "free": false, "bindable": true, "plan_updateable": false,
                    "maximum_polling_duration": 0
                }
            ]
        },
        {
            "id": "svc-queue", "name": "queue", "description": "Message queues", "bindable": false,
            "plans": [
                {"id": "plan-q-small", "name": "small", "description": "A small queue"}
            ]
        }
    ]})
}

fn catalog(value: Value) -> Catalog {
    serde_json::from_value(value).expect("the seeded catalog must still parse")
}

fn at<'a>(value: &'a mut Value, pointer: &str) -> &'a mut Value {
    value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no value at {pointer}"))
}

/// Replaces the value at `pointer`, or adds it to its parent object.
fn set(value: &mut Value, pointer: &str, new: Value) {
    if let Some(slot) = value.pointer_mut(pointer) {
        *slot = new;
        return;
    }
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let parent = at(value, parent)
        .as_object_mut()
        .expect("parent is an object");
    parent.insert(key.replace("~1", "/").replace("~0", "~"), new);
}

fn remove(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let removed = at(value, parent)
        .as_object_mut()
        .expect("parent is an object")
        .remove(key);
    assert!(removed.is_some(), "nothing to remove at {pointer}");
}

struct Case {
    rule: &'static str,
    severity: Severity,
    path: String,
    seed: Box<dyn Fn(&mut Value)>,
}

fn case(
    rule: &'static str,
    severity: Severity,
    path: impl Into<String>,
    seed: impl Fn(&mut Value) + 'static,
) -> Case {
    Case {
        rule,
        severity,
        path: path.into(),
        seed: Box::new(seed),
    }
}

fn cases() -> Vec<Case> {
    use Severity::{Error, Warning};
    #[allow(unused_mut)]
    let mut cases = vec![
        case("empty-catalog", Warning, "/services", |c| {
            set(c, "/services", json!([]))
        }),
        case(
            "required-field-empty",
            Error,
            "/services/0/description",
            |c| set(c, "/services/0/description", json!("")),
        ),
        case("required-field-empty", Error, "/services/1/id", |c| {
            set(c, "/services/1/id", json!(""))
        }),
        case(
            "required-field-empty",
            Error,
            "/services/0/plans/1/id",
            |c| set(c, "/services/0/plans/1/id", json!("  ")),
        ),
        case(
            "required-field-empty",
            Error,
            "/services/1/plans/0/name",
            |c| set(c, "/services/1/plans/0/name", json!("")),
        ),
        case("no-plans", Error, "/services/1/plans", |c| {
            set(c, "/services/1/plans", json!([]))
        }),
        case("no-plans", Error, "/services/1/plans", |c| {
            remove(c, "/services/1/plans")
        }),
        case("duplicate-service-id", Error, "/services/1/id", |c| {
            set(c, "/services/1/id", json!("svc-pg"))
        }),
        case("duplicate-service-name", Error, "/services/1/name", |c| {
            set(c, "/services/1/name", json!("postgres"))
        }),
        case("duplicate-plan-id", Error, "/services/1/plans/0/id", |c| {
            set(c, "/services/1/plans/0/id", json!("plan-pg-large"))
        }),
        case("duplicate-plan-id", Error, "/services/0/plans/1/id", |c| {
            set(c, "/services/0/plans/1/id", json!("plan-pg-small"))
        }),
        case(
            "id-shared-by-offering-and-plan",
            Warning,
            "/services/0/plans/1/id",
            |c| set(c, "/services/0/plans/1/id", json!("svc-queue")),
        ),
        case("name-looks-like-guid", Warning, "/services/1/name", |c| {
            set(
                c,
                "/services/1/name",
                json!("0f6e1c2d-8a3b-4c5d-9e7f-a1b2c3d4e5f6"),
            )
        }),
        case(
            "name-looks-like-guid",
            Warning,
            "/services/0/plans/0/name",
            |c| {
                set(
                    c,
                    "/services/0/plans/0/name",
                    json!("5C1F2E7A-3B9D-4E60-8A2F-1D4C6B8E0F93"),
                )
            },
        ),
        case(
            "duplicate-plan-name",
            Error,
            "/services/0/plans/1/name",
            |c| set(c, "/services/0/plans/1/name", json!("small")),
        ),
        case(
            "unknown-requirement",
            Error,
            "/services/0/requires/1",
            |c| set(c, "/services/0/requires/1", json!("log_shipping")),
        ),
        case(
            "invalid-maintenance-version",
            Error,
            "/services/0/plans/0/maintenance_info/version",
            |c| {
                set(
                    c,
                    "/services/0/plans/0/maintenance_info/version",
                    json!("1.4"),
                )
            },
        ),
        case(
            "invalid-maintenance-version",
            Error,
            "/services/0/plans/0/maintenance_info/version",
            |c| set(c, "/services/0/plans/0/maintenance_info/version", json!("")),
        ),
        case(
            "maintenance-info-unknown-key",
            Warning,
            "/services/0/plans/0/maintenance_info/release_notes",
            |c| {
                set(
                    c,
                    "/services/0/plans/0/maintenance_info/release_notes",
                    json!("https://example.com/notes"),
                )
            },
        ),
        case(
            "maintenance-info-too-long",
            Error,
            "/services/0/plans/0/maintenance_info",
            |c| {
                set(
                    c,
                    "/services/0/plans/0/maintenance_info/description",
                    json!("d".repeat(2_000)),
                )
            },
        ),
        case(
            "dashboard-client-incomplete",
            Error,
            "/services/0/dashboard_client/secret",
            |c| set(c, "/services/0/dashboard_client/secret", json!("")),
        ),
        case(
            "dashboard-client-incomplete",
            Error,
            "/services/0/dashboard_client/id",
            |c| set(c, "/services/0/dashboard_client/id", json!("")),
        ),
        case(
            "dashboard-client-redirect-uri",
            Warning,
            "/services/0/dashboard_client/redirect_uri",
            |c| remove(c, "/services/0/dashboard_client/redirect_uri"),
        ),
        case(
            "duplicate-dashboard-client-id",
            Error,
            "/services/1/dashboard_client/id",
            |c| {
                set(
                    c,
                    "/services/1/dashboard_client",
                    json!({"id": "pg-dashboard", "secret": "other", "redirect_uri": "https://q.example.com"}),
                )
            },
        ),
        case(
            "negative-polling-duration",
            Error,
            "/services/0/plans/1/maximum_polling_duration",
            |c| set(c, "/services/0/plans/1/maximum_polling_duration", json!(-1)),
        ),
        case("schema-missing-dollar-schema", Error, UPDATE, |c| {
            remove(c, &format!("{UPDATE}/$schema"))
        }),
        case(
            "schema-unknown-draft",
            Error,
            format!("{UPDATE}/$schema"),
            |c| {
                set(
                    c,
                    &format!("{UPDATE}/$schema"),
                    json!("https://example.com/my-meta-schema#"),
                )
            },
        ),
        case(
            "schema-unknown-draft",
            Error,
            format!("{UPDATE}/$schema"),
            |c| set(c, &format!("{UPDATE}/$schema"), json!(4)),
        ),
        case(
            "schema-not-draft-04",
            Warning,
            format!("{BIND}/$schema"),
            |c| {
                set(
                    c,
                    &format!("{BIND}/$schema"),
                    json!("http://json-schema.org/draft-07/schema#"),
                )
            },
        ),
        case("schema-too-large", Error, UPDATE, |c| {
            set(
                c,
                &format!("{UPDATE}/description"),
                json!("x".repeat(70_000)),
            )
        }),
        case(
            "schema-remote-ref",
            Error,
            format!("{CREATE}/properties/storage_gb/$ref"),
            |c| {
                set(
                    c,
                    &format!("{CREATE}/properties/storage_gb/$ref"),
                    json!("https://example.com/size.json"),
                )
            },
        ),
        case(
            "schema-remote-ref",
            Error,
            format!("{BIND}/properties/role/allOf/0/$ref"),
            |c| {
                set(
                    c,
                    &format!("{BIND}/properties/role/allOf"),
                    json!([{"$ref": "roles.json#/role"}]),
                )
            },
        ),
        case(
            "schema-root-not-object",
            Warning,
            format!("{UPDATE}/type"),
            |c| remove(c, &format!("{UPDATE}/type")),
        ),
        case(
            "binding-schema-on-unbindable-plan",
            Warning,
            "/services/1/plans/0/schemas/service_binding",
            |c| {
                set(
                    c,
                    "/services/1/plans/0/schemas",
                    json!({"service_binding": {"create": {"parameters": {"$schema": DRAFT_04, "type": "object"}}}}),
                )
            },
        ),
        case(
            "binding-schema-on-unbindable-plan",
            Warning,
            "/services/0/plans/0/schemas/service_binding",
            |c| {
                set(c, "/services/0/plans/0/bindable", json!(false));
                remove(c, "/services/0/plans/0/binding_rotatable");
            },
        ),
        case(
            "rotatable-unbindable-plan",
            Warning,
            "/services/1/plans/0/binding_rotatable",
            |c| set(c, "/services/1/plans/0/binding_rotatable", json!(true)),
        ),
        case("name-not-cli-friendly", Warning, "/services/1/name", |c| {
            set(c, "/services/1/name", json!("message queue"))
        }),
        case(
            "name-not-cli-friendly",
            Warning,
            "/services/0/plans/1/name",
            |c| set(c, "/services/0/plans/1/name", json!("large_v2")),
        ),
        case(
            "string-too-long",
            Warning,
            "/services/0/plans/1/description",
            |c| set(c, "/services/0/plans/1/description", json!("d".repeat(256))),
        ),
        case("string-too-long", Warning, "/services/1/description", |c| {
            set(c, "/services/1/description", json!("é".repeat(9_999)))
        }),
        case("string-too-long", Warning, "/services/1/name", |c| {
            set(c, "/services/1/name", json!("q".repeat(300)))
        }),
        case(
            "description-too-long",
            Error,
            "/services/1/description",
            |c| set(c, "/services/1/description", json!("d".repeat(10_001))),
        ),
        case("tags-too-long", Error, "/services/0/tags", |c| {
            set(
                c,
                "/services/0/tags",
                json!(["a".repeat(1_000), "b".repeat(1_049)]),
            )
        }),
        case(
            "malformed-costs",
            Warning,
            "/services/0/plans/0/metadata/costs/0/amount",
            |c| {
                set(
                    c,
                    "/services/0/plans/0/metadata/costs/0/amount",
                    json!({"usd": "ten"}),
                )
            },
        ),
        case(
            "malformed-costs",
            Warning,
            "/services/0/plans/0/metadata/costs/0/unit",
            |c| remove(c, "/services/0/plans/0/metadata/costs/0/unit"),
        ),
        case(
            "malformed-costs",
            Warning,
            "/services/0/plans/0/metadata/costs",
            |c| set(c, "/services/0/plans/0/metadata/costs", json!({"usd": 1})),
        ),
    ];
    #[cfg(feature = "json-schema")]
    cases.extend([
        case(
            "schema-invalid",
            Error,
            format!("{UPDATE}/properties/storage_gb/type"),
            |c| {
                set(
                    c,
                    &format!("{UPDATE}/properties/storage_gb/type"),
                    json!("int"),
                )
            },
        ),
        case("schema-invalid", Error, format!("{CREATE}/required"), |c| {
            set(c, &format!("{CREATE}/required"), json!([]))
        }),
        case("schema-invalid", Error, CREATE, |c| {
            set(
                c,
                &format!("{CREATE}/properties/storage_gb/$ref"),
                json!("#/definitions/missing"),
            )
        }),
    ]);
    cases
}

#[test]
fn valid_catalog_lints_clean() {
    let problems = catalog(valid()).lint();
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(!has_errors(&problems));
}

#[test]
fn each_rule_is_reported_alone_at_the_right_path() {
    let mut failures = Vec::new();
    for case in cases() {
        let mut seeded = valid();
        (case.seed)(&mut seeded);
        let problems = catalog(seeded).lint();
        let expected = (case.rule, case.severity, case.path.as_str());
        let found: Vec<(&str, Severity, &str)> = problems
            .iter()
            .map(|p| (p.rule, p.severity, p.path.as_str()))
            .collect();
        if found != [expected] {
            failures.push(format!("expected {expected:?}, found {found:?}"));
            continue;
        }
        let problem = &problems[0];
        assert!(!problem.message.is_empty(), "{problem:?}");
        assert_eq!(has_errors(&problems), case.severity == Severity::Error);
        assert_eq!(
            problem.to_string(),
            format!(
                "{}[{}] {}: {}",
                case.severity, case.rule, case.path, problem.message
            )
        );
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_has_a_case() {
    let rules: BTreeSet<&str> = cases().iter().map(|c| c.rule).collect();
    let expected = if cfg!(feature = "json-schema") {
        31
    } else {
        30
    };
    assert_eq!(rules.len(), expected, "{rules:?}");
}

#[test]
fn all_problems_are_reported_at_once() {
    let mut seeded = valid();
    let cases = cases();
    // Seeds that touch different places can be combined; the linter must report each.
    let picked = [
        "duplicate-service-name",
        "unknown-requirement",
        "negative-polling-duration",
        "schema-root-not-object",
        "malformed-costs",
    ];
    let mut expected = Vec::new();
    for rule in picked {
        let case = cases.iter().find(|c| c.rule == rule).unwrap();
        (case.seed)(&mut seeded);
        expected.push((case.rule, case.path.clone()));
    }
    let problems = catalog(seeded).lint();
    let mut found: Vec<(&str, String)> =
        problems.iter().map(|p| (p.rule, p.path.clone())).collect();
    found.sort();
    expected.sort();
    assert_eq!(found, expected);
    assert!(has_errors(&problems));
}

#[test]
fn duplicates_are_reported_at_each_later_occurrence() {
    let mut seeded = valid();
    let services = at(&mut seeded, "/services").as_array_mut().unwrap();
    let copy = services[1].clone();
    services.push(copy.clone());
    services.push(copy);
    let problems = catalog(seeded).lint();
    let found: Vec<(&str, &str)> = problems.iter().map(|p| (p.rule, p.path.as_str())).collect();
    assert_eq!(
        found,
        [
            ("duplicate-service-id", "/services/2/id"),
            ("duplicate-service-name", "/services/2/name"),
            ("duplicate-plan-id", "/services/2/plans/0/id"),
            ("duplicate-service-id", "/services/3/id"),
            ("duplicate-service-name", "/services/3/name"),
            ("duplicate-plan-id", "/services/3/plans/0/id"),
        ]
    );
    assert!(
        problems[0].message.contains("/services/1"),
        "{}",
        problems[0].message
    );
}

#[test]
fn maintenance_info_limit_counts_json_characters() {
    // `{"version":"1.0.0","description":"…"}` is 36 characters around the description.
    let lint_with = |description: String| {
        let mut seeded = valid();
        set(
            &mut seeded,
            "/services/0/plans/0/maintenance_info",
            json!({"version": "1.0.0", "description": description}),
        );
        catalog(seeded).lint()
    };
    // Cloud Controller counts characters, not bytes: 1,964 two-byte characters still fit.
    assert!(lint_with("é".repeat(1_964)).is_empty());
    let problems = lint_with("é".repeat(1_965));
    let found: Vec<(&str, &str)> = problems.iter().map(|p| (p.rule, p.path.as_str())).collect();
    assert_eq!(
        found,
        [(
            "maintenance-info-too-long",
            "/services/0/plans/0/maintenance_info"
        )]
    );
    assert!(
        problems[0].message.contains("2001 characters")
            && problems[0].message.contains("at most 2000")
            && problems[0].message.contains("shorten `description`"),
        "{}",
        problems[0].message
    );
    // Escapes count as they are written: a quote is two characters of JSON.
    assert!(lint_with("\"".repeat(982)).is_empty());
    assert_eq!(lint_with("\"".repeat(983)).len(), 1);
}

#[test]
fn each_unknown_maintenance_info_key_is_reported() {
    let mut seeded = valid();
    set(
        &mut seeded,
        "/services/0/plans/1/maintenance_info",
        json!({"version": "2.0.0", "notes/v2": "x", "level": 3}),
    );
    let problems = catalog(seeded).lint();
    let found: Vec<(&str, Severity, &str)> = problems
        .iter()
        .map(|p| (p.rule, p.severity, p.path.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "maintenance-info-unknown-key",
                Severity::Warning,
                "/services/0/plans/1/maintenance_info/notes~1v2"
            ),
            (
                "maintenance-info-unknown-key",
                Severity::Warning,
                "/services/0/plans/1/maintenance_info/level"
            ),
        ]
    );
    assert!(
        problems[1].message.contains("\"level\"")
            && problems[1].message.contains("`version` and `description`"),
        "{}",
        problems[1].message
    );
}

#[test]
fn pointer_tokens_are_escaped_in_paths() {
    let mut seeded = valid();
    set(
        &mut seeded,
        &format!("{UPDATE}/properties"),
        json!({"a/b~c": {"$ref": "http://x/y"}}),
    );
    let problems = catalog(seeded).lint();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, [format!("{UPDATE}/properties/a~1b~0c/$ref")]);
}

#[test]
fn problems_serialize_for_tools() {
    let mut seeded = valid();
    set(&mut seeded, "/services/1/name", json!("message queue"));
    let problems: Vec<Problem> = catalog(seeded).lint();
    assert_eq!(
        serde_json::to_value(&problems[0]).unwrap(),
        json!({
            "rule": "name-not-cli-friendly",
            "severity": "warning",
            "path": "/services/1/name",
            "message": problems[0].message,
        })
    );
}

#[test]
fn swapped_names_and_ids_are_warned_about() {
    // What `Service::new(id, name, …)` and `Plan::new(name, id, …)` produced before the
    // constructors took typed ids.
    let swapped = catalog(json!({"services": [{
        "id": "notes", "name": "2a4d6c3e-0b8e-4c55-9d1e-6f5b7a9c1d20", "description": "Notes",
        "bindable": true,
        "plans": [{"id": "free", "name": "5c1f2e7a-3b9d-4e60-8a2f-1d4c6b8e0f93", "description": "Free"},
                  {"id": "notes", "name": "slow", "description": "Slow"}]
    }]}));
    let problems = swapped.lint();
    let found: Vec<(&str, Severity, &str)> = problems
        .iter()
        .map(|p| (p.rule, p.severity, p.path.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "name-looks-like-guid",
                Severity::Warning,
                "/services/0/name"
            ),
            (
                "name-looks-like-guid",
                Severity::Warning,
                "/services/0/plans/0/name"
            ),
            (
                "id-shared-by-offering-and-plan",
                Severity::Warning,
                "/services/0/plans/1/id"
            ),
        ]
    );
    assert!(!has_errors(&problems), "warnings only: the spec allows it");
    assert_eq!(
        problems[0].to_string(),
        "warning[name-looks-like-guid] /services/0/name: the offering name \"2a4d6c3e-0b8e-4c55-9d1e-6f5b7a9c1d20\" looks like a GUID; the name is what users see and the id identifies the offering; were the name and the id swapped?"
    );
    assert!(
        problems[2].message.contains("/services/0"),
        "{}",
        problems[2].message
    );
}
