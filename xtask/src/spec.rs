//! Loading `spec/osb.openapi.yaml` into the small model the generator works from.

use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Map, Value};

/// Reads a YAML file into JSON, turning non-string mapping keys (such as `200:`) into strings.
pub(crate) fn load_yaml(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    yaml_to_json(yaml)
}

fn yaml_to_json(value: serde_yaml_ng::Value) -> Result<Value> {
    use serde_yaml_ng::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n)?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            Value::Array(items.into_iter().map(yaml_to_json).collect::<Result<_>>()?)
        }
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => bail!("unsupported mapping key {other:?}"),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value)?,
    })
}

/// An OSB version as written in `x-osb-since`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Since {
    pub(crate) major: u16,
    pub(crate) minor: u16,
}

impl Since {
    pub(crate) const BASE: Since = Since {
        major: 2,
        minor: 13,
    };

    fn parse(text: &str) -> Result<Since> {
        let (major, minor) = text
            .split_once('.')
            .ok_or_else(|| anyhow!("x-osb-since {text:?} is not MAJOR.MINOR"))?;
        Ok(Since {
            major: major.parse()?,
            minor: minor.parse()?,
        })
    }
}

/// The type of a property or query parameter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ty {
    String,
    Bool,
    Integer,
    Number,
    /// A free-form JSON object.
    Object,
    /// Any JSON value.
    Any,
    /// A model or enum defined in `components/schemas`.
    Named(String),
    Array(Box<Ty>),
    /// A Rust type path given by `x-rust-type`.
    Rust(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Property {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) since: Since,
    pub(crate) ty: Ty,
    pub(crate) required: bool,
    pub(crate) nullable: bool,
    /// `x-osb-null-since`: the version from which an explicit `null` is allowed, where that is
    /// later than the field itself.
    pub(crate) null_since: Option<Since>,
    pub(crate) deprecated: bool,
    /// `x-rust-constructor: true`: an optional field that `new` still takes.
    pub(crate) constructor: bool,
    /// `x-rust-strategy`: the proptest strategy expression for the field's values.
    pub(crate) strategy: Option<String>,
    /// `x-rust-exact: true`: the constructor takes the type itself, not `impl Into<…>`.
    pub(crate) exact: bool,
    /// `x-osb-refuse-older: true`: a request field whose loss changes what the request asks
    /// for, so a client refuses to send it to an older peer rather than leave it out.
    pub(crate) refuse_older: bool,
    /// `minLength`, `maxLength` and `pattern` of a string.
    pub(crate) constraints: Constraints,
}

/// The string constraints the spec states for a property or parameter.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Constraints {
    pub(crate) min_length: Option<u64>,
    pub(crate) max_length: Option<u64>,
    pub(crate) pattern: Option<String>,
}

impl Constraints {
    fn of(schema: &Value) -> Constraints {
        Constraints {
            min_length: schema.get("minLength").and_then(Value::as_u64),
            max_length: schema.get("maxLength").and_then(Value::as_u64),
            pattern: schema
                .get("pattern")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == Constraints::default()
    }
}

#[derive(Clone, Debug)]
pub(crate) enum SchemaKind {
    Struct(Vec<Property>),
    /// A free-form JSON object (no Rust type of its own).
    OpenObject,
    /// A string enum: (value, Rust variant name, description) per variant.
    Enum(Vec<(String, String)>),
}

#[derive(Clone, Debug)]
pub(crate) struct Schema {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) since: Since,
    pub(crate) kind: SchemaKind,
}

#[derive(Clone, Debug)]
pub(crate) struct QueryParam {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) since: Since,
    pub(crate) ty: Ty,
    pub(crate) required: bool,
    pub(crate) constraints: Constraints,
}

#[derive(Clone, Debug)]
pub(crate) struct Operation {
    pub(crate) rust_name: String,
    pub(crate) operation_id: String,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) summary: String,
    pub(crate) description: String,
    pub(crate) since: Since,
    pub(crate) query: Vec<QueryParam>,
    pub(crate) request_body: Option<String>,
    /// Status codes the spec lists (without `default`), with the body schema of each.
    pub(crate) responses: Vec<(u16, Option<String>)>,
}

/// An HTTP header the spec names, in a request parameter or a response.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    /// The name as the spec writes it, e.g. `X-Broker-API-Version`.
    pub(crate) name: String,
    /// The Rust constant name: `x-rust-name`, else the name without `X-Broker-API-` in
    /// upper snake case.
    pub(crate) rust_name: String,
    pub(crate) description: String,
    pub(crate) since: Since,
    pub(crate) constraints: Constraints,
}

/// The parts of the spec the generator uses.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    /// The OSB version the spec describes (`info.version`): the newest one the code knows.
    pub(crate) version: Since,
    pub(crate) schemas: Vec<Schema>,
    pub(crate) operations: Vec<Operation>,
    /// Every header, once, in the order the spec first names it.
    pub(crate) headers: Vec<Header>,
}

fn header_of(name: &str, def: &Value, what: &str) -> Result<Header> {
    let rust_name = match def.get("x-rust-name").and_then(Value::as_str) {
        Some(rust) => rust.to_string(),
        None => name
            .strip_prefix("X-Broker-API-")
            .unwrap_or(name)
            .replace('-', "_")
            .to_ascii_uppercase(),
    };
    Ok(Header {
        name: name.to_string(),
        rust_name,
        description: str_field(def, "description", what)?.to_string(),
        since: since_of(def, what)?,
        constraints: def.get("schema").map(Constraints::of).unwrap_or_default(),
    })
}

/// The headers an operation names: its header parameters and its responses' headers.
fn operation_headers(root: &Value, op: &Value, headers: &mut Vec<Header>) -> Result<()> {
    let mut add = |header: Header| match headers
        .iter_mut()
        .find(|h| h.name.eq_ignore_ascii_case(&header.name))
    {
        Some(known) => known.since = known.since.min(header.since),
        None => headers.push(header),
    };
    for param in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let param = resolve_parameter(root, param)?;
        if param.get("in").and_then(Value::as_str) == Some("header") {
            let name = str_field(param, "name", "header parameter")?;
            add(header_of(name, param, &format!("header {name}"))?);
        }
    }
    for response in op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|r| r.values())
    {
        for (name, def) in response
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let def = match def.get("$ref").and_then(Value::as_str) {
                Some(r) => root
                    .pointer(&format!("/components/headers/{}", ref_name(r)?))
                    .ok_or_else(|| anyhow!("unresolved header {r}"))?,
                None => def,
            };
            add(header_of(name, def, &format!("header {name}"))?);
        }
    }
    Ok(())
}

fn str_field<'a>(obj: &'a Value, key: &str, what: &str) -> Result<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{what}: missing string `{key}`"))
}

/// A boolean member of a mapping; absent counts as `false`.
fn flag(obj: &Value, key: &str) -> bool {
    obj.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn since_of(obj: &Value, what: &str) -> Result<Since> {
    Since::parse(str_field(obj, "x-osb-since", what)?).with_context(|| what.to_string())
}

fn ref_name(reference: &str) -> Result<String> {
    reference
        .rsplit('/')
        .next()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("bad $ref {reference}"))
}

/// The `$ref` of a schema, directly or through a one-element `allOf`.
fn schema_ref(schema: &Value) -> Result<Option<String>> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return Ok(Some(ref_name(r)?));
    }
    if let Some([single]) = schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return schema_ref(single);
    }
    Ok(None)
}

fn type_of(schema: &Value, what: &str) -> Result<Ty> {
    if let Some(rust) = schema.get("x-rust-type").and_then(Value::as_str) {
        return Ok(Ty::Rust(rust.to_string()));
    }
    if let Some(name) = schema_ref(schema)? {
        return Ok(Ty::Named(name));
    }
    Ok(match schema.get("type").and_then(Value::as_str) {
        Some("string") => Ty::String,
        Some("boolean") => Ty::Bool,
        Some("integer") => Ty::Integer,
        Some("number") => Ty::Number,
        Some("object") => {
            if schema.get("properties").is_some() {
                bail!(
                    "{what}: inline object schemas with properties are not supported; use a $ref"
                );
            }
            Ty::Object
        }
        Some("array") => {
            let items = schema
                .get("items")
                .ok_or_else(|| anyhow!("{what}: array without items"))?;
            Ty::Array(Box::new(type_of(items, what)?))
        }
        None => Ty::Any,
        Some(other) => bail!("{what}: unsupported type {other}"),
    })
}

fn pascal_case(value: &str) -> String {
    value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn parse_schema(name: &str, schema: &Value) -> Result<Schema> {
    let what = format!("schema {name}");
    let description = str_field(schema, "description", &what)?.to_string();
    let since = since_of(schema, &what)?;
    let kind = match schema.get("type").and_then(Value::as_str) {
        Some("string") => {
            let values = schema
                .get("enum")
                .and_then(Value::as_array)
                .ok_or_else(|| anyhow!("{what}: a string schema must be an enum"))?;
            let names = schema.get("x-enum-names").and_then(Value::as_array);
            let mut variants = Vec::new();
            for (i, v) in values.iter().enumerate() {
                let value = v
                    .as_str()
                    .ok_or_else(|| anyhow!("{what}: enum values are strings"))?;
                let rust = match names {
                    Some(names) => names
                        .get(i)
                        .and_then(Value::as_str)
                        .ok_or_else(|| anyhow!("{what}: x-enum-names is shorter than enum"))?
                        .to_string(),
                    None => pascal_case(value),
                };
                variants.push((value.to_string(), rust));
            }
            SchemaKind::Enum(variants)
        }
        Some("object") => match schema.get("properties").and_then(Value::as_object) {
            None => SchemaKind::OpenObject,
            Some(props) => {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let mut out = Vec::new();
                for (prop_name, prop) in props {
                    let what = format!("{name}.{prop_name}");
                    out.push(Property {
                        name: prop_name.clone(),
                        description: str_field(prop, "description", &what)?.to_string(),
                        since: since_of(prop, &what)?,
                        ty: type_of(prop, &what)?,
                        required: required.contains(&prop_name.as_str()),
                        nullable: flag(prop, "nullable"),
                        null_since: prop
                            .get("x-osb-null-since")
                            .map(|v| {
                                Since::parse(v.as_str().unwrap_or_default())
                                    .with_context(|| format!("{what}: x-osb-null-since"))
                            })
                            .transpose()?,
                        deprecated: flag(prop, "deprecated"),
                        constructor: flag(prop, "x-rust-constructor"),
                        strategy: prop
                            .get("x-rust-strategy")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        exact: flag(prop, "x-rust-exact"),
                        refuse_older: flag(prop, "x-osb-refuse-older"),
                        constraints: Constraints::of(prop),
                    });
                }
                for r in &required {
                    if !props.contains_key(*r) {
                        bail!("{what}: required property {r} is not defined");
                    }
                }
                SchemaKind::Struct(out)
            }
        },
        other => bail!("{what}: unsupported schema type {other:?}"),
    };
    Ok(Schema {
        name: name.to_string(),
        description,
        since,
        kind,
    })
}

/// Resolves a parameter that may be a `$ref` into `components/parameters`.
fn resolve_parameter<'a>(root: &'a Value, param: &'a Value) -> Result<&'a Value> {
    match param.get("$ref").and_then(Value::as_str) {
        Some(r) => root
            .pointer(&format!("/components/parameters/{}", ref_name(r)?))
            .ok_or_else(|| anyhow!("unresolved parameter {r}")),
        None => Ok(param),
    }
}

fn response_schema(response: &Value) -> Result<Option<String>> {
    match response.pointer("/content/application~1json/schema") {
        Some(schema) => schema_ref(schema),
        None => Ok(None),
    }
}

fn parse_operation(root: &Value, method: &str, path: &str, op: &Value) -> Result<Operation> {
    let what = format!("{} {path}", method.to_uppercase());
    let mut query = Vec::new();
    for param in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let param = resolve_parameter(root, param)?;
        if param.get("in").and_then(Value::as_str) != Some("query") {
            continue;
        }
        let name = str_field(param, "name", &what)?.to_string();
        let what = format!("{what} query {name}");
        let schema = param
            .get("schema")
            .ok_or_else(|| anyhow!("{what}: no schema"))?;
        let ty = match param.get("x-rust-type").and_then(Value::as_str) {
            Some(rust) => Ty::Rust(rust.to_string()),
            None => type_of(schema, &what)?,
        };
        query.push(QueryParam {
            description: str_field(param, "description", &what)?.to_string(),
            since: since_of(param, &what)?,
            required: flag(param, "required"),
            constraints: Constraints::of(schema),
            name,
            ty,
        });
    }
    let request_body = match op.pointer("/requestBody/content/application~1json/schema") {
        Some(schema) => schema_ref(schema)?,
        None => None,
    };
    let mut responses = Vec::new();
    for (code, response) in op
        .get("responses")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("{what}: no responses"))?
    {
        if code == "default" {
            continue;
        }
        let status: u16 = code
            .parse()
            .with_context(|| format!("{what}: status {code}"))?;
        responses.push((status, response_schema(response)?));
    }
    responses.sort_by_key(|(status, _)| *status);
    Ok(Operation {
        rust_name: str_field(op, "x-rust-name", &what)?.to_string(),
        operation_id: str_field(op, "operationId", &what)?.to_string(),
        method: method.to_uppercase(),
        path: path.to_string(),
        summary: str_field(op, "summary", &what)?.to_string(),
        description: str_field(op, "description", &what)?.to_string(),
        since: since_of(op, &what)?,
        query,
        request_body,
        responses,
    })
}

impl Spec {
    /// Loads and interprets our spec.
    pub(crate) fn load(path: &Path) -> Result<Spec> {
        let root = load_yaml(path)?;
        let mut schemas = Vec::new();
        for (name, schema) in root
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .ok_or_else(|| anyhow!("the spec has no components/schemas"))?
        {
            schemas.push(parse_schema(name, schema)?);
        }
        let mut operations = Vec::new();
        let mut headers = Vec::new();
        for (path, item) in root
            .get("paths")
            .and_then(Value::as_object)
            .ok_or_else(|| anyhow!("the spec has no paths"))?
        {
            for method in ["get", "put", "patch", "delete", "post"] {
                if let Some(op) = item.get(method) {
                    operations.push(parse_operation(&root, method, path, op)?);
                    operation_headers(&root, op, &mut headers)?;
                }
            }
        }
        let version = root
            .pointer("/info/version")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("the spec has no info.version"))
            .and_then(Since::parse)
            .context("info.version")?;
        if version < Since::BASE {
            bail!(
                "info.version {}.{} is older than the oldest version osb-rs speaks ({}.{})",
                version.major,
                version.minor,
                Since::BASE.major,
                Since::BASE.minor
            );
        }
        let spec = Spec {
            version,
            schemas,
            operations,
            headers,
        };
        spec.check_references()?;
        spec.check_versions()?;
        Ok(spec)
    }

    pub(crate) fn schema(&self, name: &str) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.name == name)
    }

    /// Every `x-osb-since` is a version from 2.13 to `info.version`.
    fn check_versions(&self) -> Result<()> {
        let mut items: Vec<(String, Since)> = Vec::new();
        for schema in &self.schemas {
            items.push((schema.name.clone(), schema.since));
            if let SchemaKind::Struct(props) = &schema.kind {
                for p in props {
                    items.push((format!("{}.{}", schema.name, p.name), p.since));
                    if let Some(null_since) = p.null_since {
                        items.push((format!("{}.{} null", schema.name, p.name), null_since));
                    }
                }
            }
        }
        for op in &self.operations {
            items.push((op.operation_id.clone(), op.since));
            for q in &op.query {
                items.push((format!("{} ?{}", op.operation_id, q.name), q.since));
            }
        }
        for h in &self.headers {
            items.push((h.name.clone(), h.since));
        }
        for (what, since) in items {
            if since < Since::BASE || since > self.version || since.major != self.version.major {
                bail!(
                    "{what}: x-osb-since {}.{} is outside {}.{} to {}.{} (info.version)",
                    since.major,
                    since.minor,
                    Since::BASE.major,
                    Since::BASE.minor,
                    self.version.major,
                    self.version.minor
                );
            }
        }
        Ok(())
    }

    fn check_references(&self) -> Result<()> {
        fn check(spec: &Spec, ty: &Ty, what: &str) -> Result<()> {
            match ty {
                Ty::Named(name) if spec.schema(name).is_none() => {
                    bail!("{what}: reference to unknown schema {name}")
                }
                Ty::Array(inner) => check(spec, inner, what),
                _ => Ok(()),
            }
        }
        for schema in &self.schemas {
            if let SchemaKind::Struct(props) = &schema.kind {
                for p in props {
                    check(self, &p.ty, &format!("{}.{}", schema.name, p.name))?;
                }
            }
        }
        for op in &self.operations {
            for name in op
                .request_body
                .iter()
                .chain(op.responses.iter().filter_map(|r| r.1.as_ref()))
            {
                check(self, &Ty::Named(name.clone()), &op.operation_id)?;
            }
        }
        Ok(())
    }
}
