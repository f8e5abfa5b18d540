//! `cargo xtask spec-diff`: what an upstream OSB description has that ours lacks, and what ours adds.
//!
//! Both files are reduced to one [`Model`]: paths, operations (with their `operationId`),
//! parameters by location and name, response status codes with their headers, and component
//! schemas with their properties. OpenAPI 3 and Swagger 2 files normalise to the same model, so
//! any upstream file can be compared with our OpenAPI 3 spec.
//!
//! Comparing the two models yields [`Item`]s, each printed on one line under a stable key such as
//! `schema Service.binding_rotatable` or
//! `parameter PUT /v2/service_instances/{instance_id} header X-Broker-API-Request-Identity`:
//!
//! - `missing`: the upstream file has it and ours does not;
//! - `excused`: missing, but `spec/UPSTREAM.md` explains why (an upstream mistake);
//! - `added`: ours has it and the upstream file does not.
//!
//! Upstream schemas match ours by name, or by a name listed in our schema's `x-upstream-names` or
//! in the schema-name table of `spec/UPSTREAM.md`. The task fails when anything is missing and not
//! excused.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::{Map, Value};

/// Our spec's file name inside the spec directory.
const OUR_SPEC_FILE: &str = "osb.openapi.yaml";

/// The file (inside the spec directory) that excuses upstream mistakes and lists schema names.
const NOTES_FILE: &str = "UPSTREAM.md";

/// How many `$ref` hops or nested schemas to follow before assuming a reference cycle.
const MAX_DEPTH: usize = 32;

/// The HTTP methods an OpenAPI path item can hold, as they are spelt there.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Compares `upstream_file` with our spec in `spec_dir` and prints the report to stdout.
///
/// Returns `Ok(true)` when ours lacks nothing beyond what `spec/UPSTREAM.md` excuses.
pub(crate) fn run(upstream_file: &Path, spec_dir: &Path) -> Result<bool> {
    let upstream = Model::load(upstream_file)?;
    let ours_file = spec_dir.join(OUR_SPEC_FILE);
    let ours = Model::load(&ours_file)?;
    let notes = Notes::load(&spec_dir.join(NOTES_FILE))?;
    let report = compare(&upstream, &ours, &notes)?;
    println!(
        "spec-diff: {} ({}) against {} ({})",
        upstream_file.display(),
        upstream.format,
        ours_file.display(),
        ours.format,
    );
    print!("{}", report.render());
    Ok(report.missing.is_empty())
}

/// Compares two models and sorts the missing items into unexcused and excused ones.
fn compare(upstream: &Model, ours: &Model, notes: &Notes) -> Result<Report> {
    let diff = diff_models(upstream, ours, &notes.names)?;
    let mut report = Report::default();
    for item in diff.missing {
        match notes.excuses.get(&item.key()) {
            Some(reason) => report.excused.push((item, reason.clone())),
            None => report.missing.push(item),
        }
    }
    report.added = diff.added.into_iter().collect();
    Ok(report)
}

// ------------------------------------------------------------------------------------------------
// The normalised model
// ------------------------------------------------------------------------------------------------

/// The two description formats spec-diff reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// OpenAPI 3.x (`openapi:` key; schemas under `components/schemas`).
    OpenApi3,
    /// Swagger 2.0 (`swagger:` key; schemas under `definitions`).
    Swagger2,
}

impl Dialect {
    /// Finds the dialect and its version string from the document's top-level keys.
    fn detect(doc: &Value) -> Result<(Dialect, String)> {
        let version = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Some(v) = doc.get("openapi") {
            let v = version(v);
            ensure!(v.starts_with("3."), "unsupported OpenAPI version `{v}`");
            Ok((Dialect::OpenApi3, v))
        } else if let Some(v) = doc.get("swagger") {
            let v = version(v);
            ensure!(v.starts_with("2."), "unsupported Swagger version `{v}`");
            Ok((Dialect::Swagger2, v))
        } else {
            bail!("no `openapi:` or `swagger:` key: not an OpenAPI 3 or Swagger 2 document")
        }
    }

    /// The `$ref` prefix under which this dialect keeps its named schemas.
    fn schema_ref_prefix(self) -> &'static str {
        match self {
            Dialect::OpenApi3 => "#/components/schemas/",
            Dialect::Swagger2 => "#/definitions/",
        }
    }

    /// The schema name a `$ref` points to, if it points to a named schema.
    fn schema_ref_name(self, reference: &str) -> Option<String> {
        reference
            .strip_prefix(self.schema_ref_prefix())
            .map(|name| name.replace("~1", "/").replace("~0", "~"))
    }
}

/// One API description reduced to what spec-diff compares.
#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    /// The format and version, e.g. `OpenAPI 3.0.3`, for the report header.
    format: String,
    /// Operations by path template, then by upper-case HTTP method.
    paths: BTreeMap<String, BTreeMap<String, Operation>>,
    /// Named schemas (`components/schemas` or `definitions`) by name.
    schemas: BTreeMap<String, Schema>,
}

/// One operation: a method on a path.
#[derive(Debug, Clone, Default, PartialEq)]
struct Operation {
    /// The `operationId`, if any.
    id: Option<String>,
    /// Parameters (path-level ones merged in), without Swagger `body`/`formData` parameters.
    params: BTreeMap<ParamKey, Param>,
    /// Responses by status code (`200`, `default`, ...).
    responses: BTreeMap<String, Response>,
}

/// What identifies a parameter: its location and its name (lower-cased for headers).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ParamKey {
    /// `path`, `query`, `header` or `cookie`.
    location: String,
    /// The name, lower-cased when the location is `header`.
    name: String,
}

impl ParamKey {
    /// The key for a parameter named `name` in `location`.
    fn new(location: &str, name: &str) -> ParamKey {
        let name = if location == "header" {
            name.to_ascii_lowercase()
        } else {
            name.to_owned()
        };
        ParamKey {
            location: location.to_owned(),
            name,
        }
    }
}

/// A parameter as the document spells it.
#[derive(Debug, Clone, PartialEq)]
struct Param {
    /// The name as written in the document.
    name: String,
    /// Whether the parameter is required (path parameters always are).
    required: bool,
}

/// One response of an operation.
#[derive(Debug, Clone, Default, PartialEq)]
struct Response {
    /// Header names: lower-cased name to the name as written.
    headers: BTreeMap<String, String>,
}

/// An object schema: its properties and the other names it is known by.
#[derive(Debug, Clone, Default, PartialEq)]
struct Schema {
    /// Names from `x-upstream-names`.
    aliases: Vec<String>,
    /// Properties by name, including those merged in from `allOf` members.
    props: BTreeMap<String, Property>,
}

/// One property of an object schema.
#[derive(Debug, Clone, PartialEq)]
struct Property {
    /// Whether the schema lists the property under `required`.
    required: bool,
    /// What the property's value is, as far as spec-diff cares.
    shape: Shape,
}

/// The part of a property's schema that spec-diff follows.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// A reference (directly or through a one-element `allOf`) to the named schema.
    Ref(String),
    /// An inline object schema with properties of its own.
    Inline(Schema),
    /// Anything else (scalars, arrays, open objects); not compared further.
    Other,
}

impl Model {
    /// Reads and normalises an OpenAPI 3 or Swagger 2 YAML (or JSON) file.
    fn load(file: &Path) -> Result<Model> {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let doc: Value = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("parsing {} as YAML", file.display()))?;
        Model::from_document(&doc).with_context(|| format!("normalising {}", file.display()))
    }

    /// Normalises a parsed OpenAPI 3 or Swagger 2 document.
    fn from_document(root: &Value) -> Result<Model> {
        let (dialect, version) = Dialect::detect(root)?;
        let doc = Doc { root, dialect };
        let format = match dialect {
            Dialect::OpenApi3 => format!("OpenAPI {version}"),
            Dialect::Swagger2 => format!("Swagger {version}"),
        };
        let mut model = Model {
            format,
            ..Model::default()
        };
        for (path, item) in entries(root.get("paths"), "paths")? {
            let item = doc.resolve(item)?;
            let mut operations = BTreeMap::new();
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    let operation = doc
                        .operation(item, op)
                        .with_context(|| format!("{} {path}", method.to_ascii_uppercase()))?;
                    operations.insert(method.to_ascii_uppercase(), operation);
                }
            }
            model.paths.insert(path.clone(), operations);
        }
        let schemas = match dialect {
            Dialect::OpenApi3 => root.pointer("/components/schemas"),
            Dialect::Swagger2 => root.get("definitions"),
        };
        for (name, schema) in entries(schemas, "schemas")? {
            let schema = doc
                .schema(schema, 0)
                .with_context(|| format!("schema {name}"))?;
            model.schemas.insert(name.clone(), schema);
        }
        Ok(model)
    }
}

/// A parsed document being normalised: resolves references against its root.
#[derive(Debug, Clone, Copy)]
struct Doc<'a> {
    /// The whole document.
    root: &'a Value,
    /// Which format it is in.
    dialect: Dialect,
}

impl<'a> Doc<'a> {
    /// Follows `$ref`s until reaching a value that is not a reference.
    fn resolve(&self, mut value: &'a Value) -> Result<&'a Value> {
        for _ in 0..MAX_DEPTH {
            match value.get("$ref") {
                Some(reference) => {
                    let reference = reference.as_str().context("`$ref` must be a string")?;
                    value = self.pointer(reference)?;
                }
                None => return Ok(value),
            }
        }
        bail!("more than {MAX_DEPTH} `$ref` hops (a reference cycle?)")
    }

    /// The value a local `$ref` (`#/...`) points to.
    fn pointer(&self, reference: &str) -> Result<&'a Value> {
        let Some(pointer) = reference.strip_prefix('#') else {
            bail!("external `$ref` `{reference}` is not supported")
        };
        self.root
            .pointer(pointer)
            .with_context(|| format!("`$ref` `{reference}` points nowhere"))
    }

    /// Normalises one operation; `path_item` supplies path-level parameters.
    fn operation(&self, path_item: &'a Value, op: &'a Value) -> Result<Operation> {
        let mut operation = Operation {
            id: op
                .get("operationId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            ..Operation::default()
        };
        // Operation-level parameters come second, so they override path-level ones.
        for list in [path_item.get("parameters"), op.get("parameters")] {
            for param in items(list, "parameters")? {
                let param = self.resolve(param)?;
                let location = str_field(param, "in")?;
                let name = str_field(param, "name")?;
                if matches!(location, "body" | "formData") {
                    continue; // Swagger 2 request bodies are compared through their schemas.
                }
                let required = location == "path"
                    || param
                        .get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                operation.params.insert(
                    ParamKey::new(location, name),
                    Param {
                        name: name.to_owned(),
                        required,
                    },
                );
            }
        }
        for (code, response) in entries(op.get("responses"), "responses")? {
            let response = self.resolve(response)?;
            let headers = entries(response.get("headers"), "headers")?
                .map(|(name, _)| (name.to_ascii_lowercase(), name.clone()))
                .collect();
            operation
                .responses
                .insert(status_code(code), Response { headers });
        }
        Ok(operation)
    }

    /// Normalises a (possibly referenced) object schema.
    fn schema(&self, schema: &'a Value, depth: usize) -> Result<Schema> {
        let aliases = match schema.get("x-upstream-names") {
            None => Vec::new(),
            Some(names) => names
                .as_array()
                .context("`x-upstream-names` must be a list")?
                .iter()
                .map(|name| {
                    name.as_str()
                        .map(str::to_owned)
                        .context("`x-upstream-names` entries must be strings")
                })
                .collect::<Result<_>>()?,
        };
        let mut props = BTreeMap::new();
        let mut required = BTreeSet::new();
        self.collect(schema, &mut props, &mut required, depth)?;
        for name in required {
            if let Some(prop) = props.get_mut(&name) {
                prop.required = true;
            }
        }
        Ok(Schema { aliases, props })
    }

    /// Adds the properties and `required` names of `schema` and its `allOf` members.
    fn collect(
        &self,
        schema: &'a Value,
        props: &mut BTreeMap<String, Property>,
        required: &mut BTreeSet<String>,
        depth: usize,
    ) -> Result<()> {
        ensure!(
            depth < MAX_DEPTH,
            "schemas nested too deeply (a reference cycle?)"
        );
        let schema = self.resolve(schema)?;
        for (name, prop) in entries(schema.get("properties"), "properties")? {
            let shape = self
                .shape(prop, depth + 1)
                .with_context(|| format!("property {name}"))?;
            props.insert(
                name.clone(),
                Property {
                    required: false,
                    shape,
                },
            );
        }
        for name in items(schema.get("required"), "required")? {
            let name = name
                .as_str()
                .context("`required` entries must be strings")?;
            required.insert(name.to_owned());
        }
        for member in items(schema.get("allOf"), "allOf")? {
            self.collect(member, props, required, depth + 1)?;
        }
        Ok(())
    }

    /// Works out what a property's schema is: a named schema, an inline object, or other.
    fn shape(&self, prop: &'a Value, depth: usize) -> Result<Shape> {
        ensure!(
            depth < MAX_DEPTH,
            "schemas nested too deeply (a reference cycle?)"
        );
        if let Some(reference) = prop.get("$ref") {
            let reference = reference.as_str().context("`$ref` must be a string")?;
            return match self.dialect.schema_ref_name(reference) {
                Some(name) => Ok(Shape::Ref(name)),
                None => self.shape(self.pointer(reference)?, depth + 1),
            };
        }
        let all_of = prop.get("allOf").and_then(Value::as_array);
        match (all_of.map(Vec::as_slice), prop.get("properties")) {
            (Some([only]), None) => self.shape(only, depth + 1),
            (Some(_), _) | (None, Some(_)) => Ok(Shape::Inline(self.schema(prop, depth + 1)?)),
            (None, None) => Ok(Shape::Other),
        }
    }
}

/// A status code as compared: a range's `x`s upper-cased (`2xx` and `2XX` are the same range).
fn status_code(code: &str) -> String {
    if code.len() == 3 && code.starts_with(|c: char| c.is_ascii_digit()) {
        code.replace('x', "X")
    } else {
        code.to_owned()
    }
}

/// The entries of an optional mapping (an absent or `null` value has none).
fn entries<'a>(
    value: Option<&'a Value>,
    what: &str,
) -> Result<impl Iterator<Item = (&'a String, &'a Value)>> {
    let map: Option<&Map<String, Value>> = match value {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => bail!("`{what}` must be a mapping"),
    };
    Ok(map.into_iter().flatten())
}

/// The elements of an optional sequence (an absent or `null` value has none).
fn items<'a>(value: Option<&'a Value>, what: &str) -> Result<impl Iterator<Item = &'a Value>> {
    let list: Option<&Vec<Value>> = match value {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(list),
        Some(_) => bail!("`{what}` must be a list"),
    };
    Ok(list.into_iter().flatten())
}

/// A required string field of a mapping.
fn str_field<'a>(value: &'a Value, field: &str) -> Result<&'a str> {
    value
        .get(field)
        .and_then(Value::as_str)
        .with_context(|| format!("missing string field `{field}`"))
}

// ------------------------------------------------------------------------------------------------
// Differences
// ------------------------------------------------------------------------------------------------

/// What kind of thing an [`Item`] is; its word starts the item's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A path template (`path /v2/catalog`).
    Path,
    /// A method on a path (`operation GET /v2/catalog`).
    Operation,
    /// An operation's `operationId` (`operation-id GET /v2/catalog catalog.get`).
    OperationId,
    /// A parameter (`parameter GET /v2/catalog header X-Broker-API-Version`).
    Parameter,
    /// A parameter's being required (same subject as [`Kind::Parameter`]).
    ParameterRequired,
    /// A response status code (`response GET /v2/catalog 200`).
    Response,
    /// A header of a response (`response-header GET /v2/... 200 Retry-After`).
    ResponseHeader,
    /// A named schema (`schema Catalog`) or a property of one (`schema Catalog.services`).
    Schema,
    /// A property's being required (`schema-required Catalog.services`).
    SchemaRequired,
}

impl Kind {
    /// Every kind, in report order.
    const ALL: [Kind; 9] = [
        Kind::Path,
        Kind::Operation,
        Kind::OperationId,
        Kind::Parameter,
        Kind::ParameterRequired,
        Kind::Response,
        Kind::ResponseHeader,
        Kind::Schema,
        Kind::SchemaRequired,
    ];

    /// The word that starts the key of an item of this kind.
    fn word(self) -> &'static str {
        match self {
            Kind::Path => "path",
            Kind::Operation => "operation",
            Kind::OperationId => "operation-id",
            Kind::Parameter => "parameter",
            Kind::ParameterRequired => "parameter-required",
            Kind::Response => "response",
            Kind::ResponseHeader => "response-header",
            Kind::Schema => "schema",
            Kind::SchemaRequired => "schema-required",
        }
    }

    /// The kind whose key starts with `word`.
    fn from_word(word: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.word() == word)
    }
}

/// One difference between the two descriptions.
///
/// Items sort by kind, then path, then method, then the rest, which keeps each operation's items
/// together.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    /// What kind of thing differs.
    kind: Kind,
    /// The path template, for path and operation items; empty otherwise.
    path: String,
    /// The upper-case method, for operation items; empty otherwise.
    method: String,
    /// The rest of the key (location and name, status code, schema and property, ...).
    detail: String,
}

impl Item {
    /// An item about a whole path.
    fn path(path: &str) -> Item {
        Item {
            kind: Kind::Path,
            path: path.to_owned(),
            method: String::new(),
            detail: String::new(),
        }
    }

    /// An item about an operation (`detail` may be empty).
    fn operation(kind: Kind, method: &str, path: &str, detail: String) -> Item {
        Item {
            kind,
            path: path.to_owned(),
            method: method.to_owned(),
            detail,
        }
    }

    /// An item about a schema or one of its properties.
    fn schema(kind: Kind, detail: String) -> Item {
        Item {
            kind,
            path: String::new(),
            method: String::new(),
            detail,
        }
    }

    /// The key the report prints and `UPSTREAM.md` uses, e.g. `response GET /v2/catalog 200`.
    fn key(&self) -> String {
        let mut key = self.kind.word().to_owned();
        for part in [&self.method, &self.path, &self.detail] {
            if !part.is_empty() {
                key.push(' ');
                key.push_str(part);
            }
        }
        key
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// The raw result of comparing two models.
#[derive(Debug, Default)]
struct Diff {
    /// Items the upstream file has and ours lacks.
    missing: BTreeSet<Item>,
    /// Items ours has and the upstream file lacks.
    added: BTreeSet<Item>,
}

/// The comparison result after applying the excuses.
#[derive(Debug, Default)]
struct Report {
    /// Missing items `UPSTREAM.md` does not excuse, sorted.
    missing: Vec<Item>,
    /// Missing items `UPSTREAM.md` excuses, with the reason, sorted.
    excused: Vec<(Item, String)>,
    /// Items only ours has, sorted.
    added: Vec<Item>,
}

impl Report {
    /// The report text: one line per item (missing, then excused, then added) and a summary line.
    fn render(&self) -> String {
        let mut out = String::new();
        for item in &self.missing {
            out.push_str(&format!("{:<9}{item}\n", "missing"));
        }
        for (item, reason) in &self.excused {
            out.push_str(&format!("{:<9}{item} ({reason})\n", "excused"));
        }
        for item in &self.added {
            out.push_str(&format!("{:<9}{item}\n", "added"));
        }
        out.push_str(&format!(
            "spec-diff: {} missing, {} excused, {} added\n",
            self.missing.len(),
            self.excused.len(),
            self.added.len()
        ));
        out
    }
}

/// Compares two models; `extra_names` maps further upstream schema names to our schema names.
fn diff_models(
    upstream: &Model,
    ours: &Model,
    extra_names: &BTreeMap<String, String>,
) -> Result<Diff> {
    let mut diff = Diff::default();

    for (path, up_ops) in &upstream.paths {
        let Some(our_ops) = ours.paths.get(path) else {
            diff.missing.insert(Item::path(path));
            continue;
        };
        for (method, up_op) in up_ops {
            match our_ops.get(method) {
                Some(our_op) => diff_operation(method, path, up_op, our_op, &mut diff),
                None => {
                    diff.missing.insert(Item::operation(
                        Kind::Operation,
                        method,
                        path,
                        String::new(),
                    ));
                }
            }
        }
        for method in our_ops.keys().filter(|m| !up_ops.contains_key(*m)) {
            diff.added.insert(Item::operation(
                Kind::Operation,
                method,
                path,
                String::new(),
            ));
        }
    }
    for path in ours
        .paths
        .keys()
        .filter(|p| !upstream.paths.contains_key(*p))
    {
        diff.added.insert(Item::path(path));
    }

    let matches = match_schemas(upstream, ours, extra_names)?;
    let mut covered = BTreeSet::new();
    for (up_name, up_schema) in &upstream.schemas {
        let Some(our_name) = matches.get(up_name) else {
            diff.missing
                .insert(Item::schema(Kind::Schema, up_name.clone()));
            continue;
        };
        covered.insert(our_name.clone());
        let our_schema = &ours.schemas[our_name];
        diff_props(
            up_name,
            up_schema,
            our_schema,
            ours,
            &mut covered,
            &mut diff,
        );
    }
    for name in ours.schemas.keys().filter(|n| !covered.contains(*n)) {
        diff.added.insert(Item::schema(Kind::Schema, name.clone()));
    }
    Ok(diff)
}

/// Compares one operation that both models have.
fn diff_operation(method: &str, path: &str, up: &Operation, ours: &Operation, diff: &mut Diff) {
    let item = |kind, detail: String| Item::operation(kind, method, path, detail);

    if up.id != ours.id {
        if let Some(id) = &up.id {
            diff.missing.insert(item(Kind::OperationId, id.clone()));
        }
        if let Some(id) = &ours.id {
            diff.added.insert(item(Kind::OperationId, id.clone()));
        }
    }

    for (key, up_param) in &up.params {
        let detail = format!("{} {}", key.location, up_param.name);
        match ours.params.get(key) {
            None => {
                diff.missing.insert(item(Kind::Parameter, detail));
            }
            Some(our_param) if up_param.required && !our_param.required => {
                diff.missing.insert(item(Kind::ParameterRequired, detail));
            }
            Some(our_param) if !up_param.required && our_param.required => {
                let detail = format!("{} {}", key.location, our_param.name);
                diff.added.insert(item(Kind::ParameterRequired, detail));
            }
            Some(_) => {}
        }
    }
    for (key, our_param) in &ours.params {
        if !up.params.contains_key(key) {
            let detail = format!("{} {}", key.location, our_param.name);
            diff.added.insert(item(Kind::Parameter, detail));
        }
    }

    for (code, up_response) in &up.responses {
        let Some(our_response) = ours.responses.get(code) else {
            diff.missing.insert(item(Kind::Response, code.clone()));
            continue;
        };
        for (lower, name) in &up_response.headers {
            if !our_response.headers.contains_key(lower) {
                diff.missing
                    .insert(item(Kind::ResponseHeader, format!("{code} {name}")));
            }
        }
        for (lower, name) in &our_response.headers {
            if !up_response.headers.contains_key(lower) {
                diff.added
                    .insert(item(Kind::ResponseHeader, format!("{code} {name}")));
            }
        }
    }
    for code in ours.responses.keys() {
        if !up.responses.contains_key(code) {
            diff.added.insert(item(Kind::Response, code.clone()));
        }
    }
}

/// Compares the properties of two matched schemas; `prefix` names the upstream schema (and the
/// property path, inside inline objects).
///
/// An inline object upstream is compared with whatever ours has there: the schema it references
/// (which then counts as matched) or an inline object.
fn diff_props(
    prefix: &str,
    up: &Schema,
    our: &Schema,
    ours: &Model,
    covered: &mut BTreeSet<String>,
    diff: &mut Diff,
) {
    let empty = Schema::default();
    for (name, up_prop) in &up.props {
        let subject = format!("{prefix}.{name}");
        let Some(our_prop) = our.props.get(name) else {
            diff.missing.insert(Item::schema(Kind::Schema, subject));
            continue;
        };
        if up_prop.required && !our_prop.required {
            diff.missing
                .insert(Item::schema(Kind::SchemaRequired, subject.clone()));
        } else if !up_prop.required && our_prop.required {
            diff.added
                .insert(Item::schema(Kind::SchemaRequired, subject.clone()));
        }
        if let Shape::Inline(up_inner) = &up_prop.shape {
            let our_inner = match &our_prop.shape {
                Shape::Ref(target) => {
                    covered.insert(target.clone());
                    ours.schemas.get(target).unwrap_or(&empty)
                }
                Shape::Inline(inner) => inner,
                Shape::Other => &empty,
            };
            diff_props(&subject, up_inner, our_inner, ours, covered, diff);
        }
    }
    for name in our.props.keys().filter(|n| !up.props.contains_key(*n)) {
        diff.added
            .insert(Item::schema(Kind::Schema, format!("{prefix}.{name}")));
    }
}

/// Maps each upstream schema name to our schema of that name or alias.
///
/// An alias (from `x-upstream-names` or from `extra_names`) wins over an equal name. Two of our
/// schemas claiming the same upstream name, or an alias naming a schema we don't have, is an error.
fn match_schemas(
    upstream: &Model,
    ours: &Model,
    extra_names: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let mut aliases: BTreeMap<&str, &str> = BTreeMap::new();
    let declared = ours.schemas.iter().flat_map(|(our_name, schema)| {
        schema
            .aliases
            .iter()
            .map(move |alias| (alias.as_str(), our_name.as_str()))
    });
    let listed = extra_names
        .iter()
        .map(|(alias, our_name)| (alias.as_str(), our_name.as_str()));
    for (alias, our_name) in declared.chain(listed) {
        ensure!(
            ours.schemas.contains_key(our_name),
            "upstream schema name `{alias}` is mapped to `{our_name}`, which our spec does not define"
        );
        if let Some(previous) = aliases.insert(alias, our_name) {
            ensure!(
                previous == our_name,
                "upstream schema name `{alias}` is claimed by both `{previous}` and `{our_name}`"
            );
        }
    }
    Ok(upstream
        .schemas
        .keys()
        .filter_map(|up_name| {
            let our_name = match aliases.get(up_name.as_str()) {
                Some(our_name) => *our_name,
                None if ours.schemas.contains_key(up_name) => up_name.as_str(),
                None => return None,
            };
            Some((up_name.clone(), our_name.to_owned()))
        })
        .collect())
}

// ------------------------------------------------------------------------------------------------
// spec/UPSTREAM.md
// ------------------------------------------------------------------------------------------------

/// What `spec/UPSTREAM.md` tells the tool.
///
/// The file is Markdown for humans; the tool reads two kinds of table from it, recognised by the
/// first header cell:
///
/// - `| item | reason |`: each row excuses one missing item; the first cell is the item's key exactly
///   as the report prints it (backticks and repeated spaces are ignored);
/// - `| upstream name | our schema |`: each row lets an upstream schema name match our schema, like
///   an entry in that schema's `x-upstream-names`.
///
/// Other tables and text are ignored. Extra columns are allowed.
#[derive(Debug, Default, PartialEq)]
struct Notes {
    /// Excused item keys and the reason for each.
    excuses: BTreeMap<String, String>,
    /// Upstream schema names mapped to our schema names.
    names: BTreeMap<String, String>,
}

impl Notes {
    /// Reads and parses the notes file.
    fn load(file: &Path) -> Result<Notes> {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        Notes::parse(&text).with_context(|| format!("parsing {}", file.display()))
    }

    /// Parses the notes from Markdown text.
    fn parse(text: &str) -> Result<Notes> {
        /// Which kind of table the parser is inside.
        #[derive(Clone, Copy)]
        enum Table {
            /// Not in a table, or in a table the tool ignores.
            Other,
            /// The excuse table's header has been read.
            Excuses,
            /// The schema-name table's header has been read.
            Names,
        }

        let mut notes = Notes::default();
        let mut table: Option<Table> = None;
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim();
            if !line.starts_with('|') {
                table = None;
                continue;
            }
            let cells = split_row(line);
            let Some(kind) = table else {
                table = Some(match plain(&cells[0]).to_ascii_lowercase().as_str() {
                    "item" => Table::Excuses,
                    "upstream name" => Table::Names,
                    _ => Table::Other,
                });
                continue;
            };
            if cells.iter().all(|cell| is_separator(cell)) {
                continue;
            }
            match kind {
                Table::Other => {}
                Table::Excuses => {
                    let key = plain(&cells[0]);
                    let reason = cells.get(1).map(|c| c.trim()).unwrap_or_default();
                    let word = key.split(' ').next().unwrap_or_default();
                    ensure!(
                        Kind::from_word(word).is_some() && key.contains(' '),
                        "line {line_no}: `{key}` is not an item key (it must start with one of: {})",
                        Kind::ALL.map(Kind::word).join(", ")
                    );
                    ensure!(!reason.is_empty(), "line {line_no}: `{key}` has no reason");
                    let previous = notes.excuses.insert(key.clone(), reason.to_owned());
                    ensure!(
                        previous.is_none(),
                        "line {line_no}: `{key}` is listed twice"
                    );
                }
                Table::Names => {
                    let upstream = plain(&cells[0]);
                    let ours = cells.get(1).map(|c| plain(c)).unwrap_or_default();
                    ensure!(
                        is_name(&upstream) && is_name(&ours),
                        "line {line_no}: a schema-name row needs one upstream name and one of ours"
                    );
                    let previous = notes.names.insert(upstream.clone(), ours);
                    ensure!(
                        previous.is_none(),
                        "line {line_no}: `{upstream}` is listed twice"
                    );
                }
            }
        }
        Ok(notes)
    }
}

/// Splits a Markdown table row into trimmed cells; `\|` is a literal bar.
fn split_row(line: &str) -> Vec<String> {
    let inner = line.strip_prefix('|').unwrap_or(line);
    let inner = match inner.strip_suffix('|') {
        Some(rest) if !rest.ends_with('\\') => rest,
        _ => inner,
    };
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cell).trim().to_owned()),
            _ => cell.push(c),
        }
    }
    cells.push(cell.trim().to_owned());
    cells
}

/// A cell's text without backticks, with runs of whitespace collapsed to one space.
fn plain(cell: &str) -> String {
    cell.replace('`', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a cell is a header separator such as `---` or `:--:`.
fn is_separator(cell: &str) -> bool {
    let dashes = cell.trim_matches(':');
    !dashes.is_empty() && dashes.chars().all(|c| c == '-')
}

/// Whether `text` can be a schema name (non-empty, no spaces).
fn is_name(text: &str) -> bool {
    !text.is_empty() && !text.contains(char::is_whitespace)
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a YAML test document.
    fn yaml(text: &str) -> Value {
        serde_yaml_ng::from_str(text).expect("test YAML parses")
    }

    /// Normalises a YAML test document.
    fn model(text: &str) -> Model {
        Model::from_document(&yaml(text)).expect("test document normalises")
    }

    /// The rendered item lines of a comparison, without the summary line.
    fn lines(upstream: &Model, ours: &Model, notes: &Notes) -> Vec<String> {
        let report = compare(upstream, ours, notes).expect("comparison succeeds");
        let text = report.render();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.pop();
        lines
    }

    /// A small OpenAPI 3 document using references, path-level parameters and inline objects.
    const OAS3: &str = r##"
openapi: 3.0.3
paths:
  /v2/things/{thing_id}:
    parameters:
      - $ref: '#/components/parameters/ThingId'
    put:
      operationId: thing.put
      parameters:
        - $ref: '#/components/parameters/Version'
        - name: accepts_incomplete
          in: query
          schema: {type: boolean}
      responses:
        200:
          description: ok
          headers:
            Retry-After:
              $ref: '#/components/headers/RetryAfter'
        '4xx':
          $ref: '#/components/responses/Failure'
        default:
          description: other
components:
  parameters:
    Version:
      $ref: '#/components/parameters/RealVersion'
    RealVersion:
      name: X-Version
      in: header
      required: true
    ThingId:
      name: thing_id
      in: path
  headers:
    RetryAfter:
      schema: {type: string}
  responses:
    Failure:
      description: failure
      headers:
        X-Why: {schema: {type: string}}
  schemas:
    Thing:
      type: object
      x-upstream-names: [OldThing]
      required: [id]
      properties:
        id: {type: string}
        part:
          allOf:
            - $ref: '#/components/schemas/Part'
          description: a part
        inline:
          type: object
          required: [a]
          properties:
            a: {type: string}
    Part:
      allOf:
        - $ref: '#/components/schemas/Base'
        - type: object
          properties:
            size: {type: integer}
    Base:
      type: object
      required: [name]
      properties:
        name: {type: string}
"##;

    /// A small Swagger 2 document using top-level parameters and responses.
    const SWAGGER: &str = r##"
swagger: '2.0'
paths:
  '/v2/things/{thing_id}':
    parameters:
      - $ref: '#/parameters/Version'
      - name: thing_id
        in: path
        required: true
        type: string
    put:
      operationId: thing.put
      parameters:
        - name: body
          in: body
          schema: {$ref: '#/definitions/OldThing'}
        - $ref: '#/parameters/accepts_incomplete'
      responses:
        '200':
          description: ok
          headers:
            RetryAfter: {type: string}
        '4XX':
          $ref: '#/responses/Failure'
        '412':
          $ref: '#/responses/Failure'
parameters:
  Version:
    name: x-version
    in: header
    required: true
    type: string
  accepts_incomplete:
    name: accepts_incomplete
    in: query
    required: true
    type: boolean
responses:
  Failure:
    description: failure
    headers:
      x-why: {type: string}
definitions:
  OldThing:
    type: object
    required: [id, extra]
    properties:
      id: {type: string}
      extra: {type: string}
      part: {$ref: '#/definitions/Part'}
      inline:
        type: object
        properties:
          a: {type: string}
          b: {type: string}
  Part:
    type: object
    properties:
      name: {type: string}
"##;

    #[test]
    fn normalises_openapi3() {
        let m = model(OAS3);
        assert_eq!(m.format, "OpenAPI 3.0.3");
        let op = &m.paths["/v2/things/{thing_id}"]["PUT"];
        assert_eq!(op.id.as_deref(), Some("thing.put"));
        let version = &op.params[&ParamKey::new("header", "X-VERSION")];
        assert_eq!(version.name, "X-Version");
        assert!(version.required);
        assert!(op.params[&ParamKey::new("path", "thing_id")].required);
        assert!(!op.params[&ParamKey::new("query", "accepts_incomplete")].required);
        assert_eq!(
            op.responses.keys().collect::<Vec<_>>(),
            ["200", "4XX", "default"]
        );
        assert_eq!(op.responses["200"].headers["retry-after"], "Retry-After");
        assert_eq!(op.responses["4XX"].headers["x-why"], "X-Why");

        let thing = &m.schemas["Thing"];
        assert_eq!(thing.aliases, ["OldThing"]);
        assert!(thing.props["id"].required);
        assert_eq!(thing.props["part"].shape, Shape::Ref("Part".into()));
        let Shape::Inline(inline) = &thing.props["inline"].shape else {
            panic!("inline object expected");
        };
        assert!(inline.props["a"].required);
        // allOf members, referenced or inline, are merged.
        let part = &m.schemas["Part"];
        assert_eq!(part.props.keys().collect::<Vec<_>>(), ["name", "size"]);
        assert!(part.props["name"].required);
    }

    #[test]
    fn normalises_swagger2() {
        let m = model(SWAGGER);
        assert_eq!(m.format, "Swagger 2.0");
        let op = &m.paths["/v2/things/{thing_id}"]["PUT"];
        let keys: Vec<String> = op
            .params
            .keys()
            .map(|k| format!("{} {}", k.location, k.name))
            .collect();
        // The body parameter is left out; path-level parameters are merged in.
        assert_eq!(
            keys,
            [
                "header x-version",
                "path thing_id",
                "query accepts_incomplete"
            ]
        );
        assert_eq!(op.responses["412"].headers["x-why"], "x-why");
        assert_eq!(op.responses["200"].headers["retryafter"], "RetryAfter");
        let thing = &m.schemas["OldThing"];
        assert_eq!(thing.props["part"].shape, Shape::Ref("Part".into()));
        assert!(thing.props["extra"].required);
    }

    #[test]
    fn detects_the_dialect() {
        assert!(Model::from_document(&yaml("openapi: 3.1.0\n")).is_ok());
        assert!(Model::from_document(&yaml("swagger: '2.0'\n")).is_ok());
        let err = Model::from_document(&yaml("openapi: 2.0.0\n")).unwrap_err();
        assert!(err.to_string().contains("unsupported"), "{err}");
        let err = Model::from_document(&yaml("info: {}\n")).unwrap_err();
        assert!(err.to_string().contains("openapi"), "{err}");
    }

    #[test]
    fn resolves_references() {
        let root = yaml(
            r##"
openapi: 3.0.0
a: {$ref: '#/b'}
b: {$ref: '#/c~1d'}
c/d: {value: 1}
loop: {$ref: '#/loop'}
"##,
        );
        let doc = Doc {
            root: &root,
            dialect: Dialect::OpenApi3,
        };
        let resolved = doc.resolve(&root["a"]).unwrap();
        assert_eq!(resolved["value"], 1);
        assert!(doc.resolve(&root["loop"]).is_err());
        let dangling = yaml("$ref: '#/nowhere'");
        assert!(doc.resolve(&dangling).is_err());
        let external = yaml("$ref: 'other.yaml#/x'");
        let err = doc.resolve(&external).unwrap_err();
        assert!(err.to_string().contains("external"), "{err}");
        assert_eq!(
            Dialect::Swagger2.schema_ref_name("#/definitions/Plan"),
            Some("Plan".to_owned())
        );
        assert_eq!(
            Dialect::OpenApi3.schema_ref_name("#/definitions/Plan"),
            None
        );
    }

    #[test]
    fn compares_operations_and_schemas_by_alias() {
        let upstream = model(SWAGGER);
        let ours = model(OAS3);
        let got = lines(&upstream, &ours, &Notes::default());
        let want = [
            "missing  parameter-required PUT /v2/things/{thing_id} query accepts_incomplete",
            "missing  response PUT /v2/things/{thing_id} 412",
            "missing  response-header PUT /v2/things/{thing_id} 200 RetryAfter",
            "missing  schema OldThing.extra",
            "missing  schema OldThing.inline.b",
            "added    response PUT /v2/things/{thing_id} default",
            "added    response-header PUT /v2/things/{thing_id} 200 Retry-After",
            "added    schema Base",
            "added    schema Part.size",
            "added    schema-required OldThing.inline.a",
            "added    schema-required Part.name",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn compares_inline_objects_with_referenced_schemas() {
        let upstream = model(
            r#"
openapi: 3.0.0
components:
  schemas:
    Holder:
      properties:
        create:
          type: object
          properties:
            parameters: {type: object}
"#,
        );
        let ours = model(
            r##"
openapi: 3.0.3
paths:
  /v2/catalog:
    get:
      operationId: catalog.get
components:
  schemas:
    Holder:
      properties:
        create:
          allOf: [{$ref: '#/components/schemas/Input'}]
    Input:
      properties:
        parameters: {type: object}
        more: {type: string}
"##,
        );
        let got = lines(&upstream, &ours, &Notes::default());
        // `Input` counts as matched through the inline object, so it is not an added schema.
        assert_eq!(
            got,
            [
                "added    path /v2/catalog",
                "added    schema Holder.create.more"
            ]
        );
    }

    #[test]
    fn reports_operations_paths_and_ids() {
        let upstream = model(
            r#"
swagger: '2.0'
paths:
  /a:
    get: {operationId: a.get}
    delete: {}
  /gone:
    get: {}
definitions:
  Lost: {type: object}
"#,
        );
        let ours = model(
            r#"
openapi: 3.0.0
paths:
  /a:
    get: {operationId: a.fetch}
    put: {}
"#,
        );
        let got = lines(&upstream, &ours, &Notes::default());
        assert_eq!(
            got,
            [
                "missing  path /gone",
                "missing  operation DELETE /a",
                "missing  operation-id GET /a a.get",
                "missing  schema Lost",
                "added    operation PUT /a",
                "added    operation-id GET /a a.fetch",
            ]
        );
    }

    #[test]
    fn rejects_conflicting_aliases() {
        let upstream = model("swagger: '2.0'\ndefinitions: {Old: {}}\n");
        let ours =
            model("openapi: 3.0.0\ncomponents: {schemas: {A: {x-upstream-names: [Old]}, B: {}}}\n");
        let names = BTreeMap::from([("Old".to_owned(), "B".to_owned())]);
        let err = diff_models(&upstream, &ours, &names).unwrap_err();
        assert!(err.to_string().contains("claimed by both"), "{err}");
        let names = BTreeMap::from([("Old".to_owned(), "Missing".to_owned())]);
        assert!(diff_models(&upstream, &ours, &names).is_err());
        // A name-table entry works like x-upstream-names.
        let names = BTreeMap::from([("Old".to_owned(), "A".to_owned())]);
        let diff = diff_models(&upstream, &ours, &names).unwrap();
        assert!(diff.missing.is_empty());
        assert_eq!(diff.added.len(), 1, "{:?}", diff.added);
    }

    /// Notes text with both kinds of table and one ignored table.
    const NOTES: &str = r"
# Notes

| item | reason |
|------|--------|
| `schema   Service.binding_rotatable` | plans only; see \| the spec |
| response-header GET /x 200 RetryAfter | misspelt |

| upstream name | our schema | note |
|:--|:--|---|
| `ServiceBindingResouceObject` | `ServiceBindingResourceObject` | typo |

| something | else |
|---|---|
| not parsed | at all |
";

    #[test]
    fn parses_notes() {
        let notes = Notes::parse(NOTES).unwrap();
        assert_eq!(
            notes.excuses,
            BTreeMap::from([
                (
                    "schema Service.binding_rotatable".to_owned(),
                    "plans only; see | the spec".to_owned()
                ),
                (
                    "response-header GET /x 200 RetryAfter".to_owned(),
                    "misspelt".to_owned()
                ),
            ])
        );
        assert_eq!(
            notes.names,
            BTreeMap::from([(
                "ServiceBindingResouceObject".to_owned(),
                "ServiceBindingResourceObject".to_owned()
            )])
        );
    }

    #[test]
    fn rejects_bad_notes() {
        let bad_kind = "| item | reason |\n|---|---|\n| thing Foo.bar | why |\n";
        assert!(Notes::parse(bad_kind).is_err());
        let no_reason = "| item | reason |\n|---|---|\n| schema Foo.bar | |\n";
        assert!(Notes::parse(no_reason).is_err());
        let twice = "| item | reason |\n|---|---|\n| schema A | x |\n| schema  A | y |\n";
        assert!(Notes::parse(twice).is_err());
        let bad_name = "| upstream name | ours |\n|---|---|\n| A B | C |\n";
        assert!(Notes::parse(bad_name).is_err());
    }

    #[test]
    fn applies_excuses() {
        let upstream = model(SWAGGER);
        let ours = model(OAS3);
        let notes = Notes {
            excuses: BTreeMap::from([(
                "response-header PUT /v2/things/{thing_id} 200 RetryAfter".to_owned(),
                "misspelt upstream".to_owned(),
            )]),
            names: BTreeMap::new(),
        };
        let report = compare(&upstream, &ours, &notes).unwrap();
        assert_eq!(report.missing.len(), 4);
        assert_eq!(report.excused.len(), 1);
        let text = report.render();
        assert!(text.contains(
            "excused  response-header PUT /v2/things/{thing_id} 200 RetryAfter (misspelt upstream)\n"
        ));
        assert!(
            text.ends_with("spec-diff: 4 missing, 1 excused, 6 added\n"),
            "{text}"
        );
    }

    /// Runs the real comparison of every upstream file with our spec: nothing may be missing
    /// unless `UPSTREAM.md` excuses it, and every excuse must apply to at least one file.
    #[test]
    fn upstream_files_lack_nothing_unexcused() {
        let root = crate::project_root();
        let reference = root.join("../shared/reference/osb-spec");
        if !reference.is_dir() {
            eprintln!(
                "note: {} is not present; skipping the upstream comparison",
                reference.display()
            );
            return;
        }
        let spec_dir = root.join("spec");
        let ours = Model::load(&spec_dir.join(OUR_SPEC_FILE)).unwrap();
        let notes = Notes::load(&spec_dir.join(NOTES_FILE)).unwrap();
        let mut used = BTreeSet::new();
        for file in [
            "openapi-v2.17.yaml",
            "swagger-v2.17.yaml",
            "openapi-v2.13.yaml",
        ] {
            let upstream = Model::load(&reference.join(file)).unwrap();
            let report = compare(&upstream, &ours, &notes).unwrap();
            assert!(
                report.missing.is_empty(),
                "our spec lacks items of {file}:\n{}",
                report.render()
            );
            used.extend(report.excused.iter().map(|(item, _)| item.key()));
        }
        let unused: Vec<&String> = notes
            .excuses
            .keys()
            .filter(|key| !used.contains(*key))
            .collect();
        assert!(
            unused.is_empty(),
            "UPSTREAM.md excuses items no upstream file has: {unused:?}"
        );
    }
}
