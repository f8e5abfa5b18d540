//! Request bodies: read as JSON whatever the `Content-Type` says, as Cloud Controller does, and
//! checked field by field with Cloud Controller's wording.

use axum::body::Body;
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value};

use crate::error::{CfCode, CfError};

/// Reads `body` (at most `limit` bytes) as a JSON object. An empty body is `{}`.
///
/// Too large: `413 CF-InvalidRequest`; not a JSON object: `400 CF-MessageParseError`.
pub async fn read_object(body: Body, limit: usize) -> Result<Fields, CfError> {
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let mut e = CfError::new(
                CfCode::INVALID_REQUEST,
                format!("The request is invalid: the body exceeds {limit} bytes"),
            );
            e.status = Some(413);
            return Err(e);
        }
        Err(_) => return Err(CfError::parse("the body could not be read")),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Fields(Map::new()));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(Fields(map)),
        Ok(_) => Err(CfError::parse("the body must be a JSON object")),
        Err(e) => Err(CfError::parse(format!("the body is not valid JSON ({e})"))),
    }
}

/// The fields of a JSON request body.
#[derive(Debug)]
pub struct Fields(pub Map<String, Value>);

fn wrong(key: &str, what: &str) -> CfError {
    CfError::parse(format!("Field: {key}, Error: must be {what}"))
}

impl Fields {
    /// Whether `key` was sent (even as `null`).
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// An optional string (`null` counts as absent).
    pub fn string(&self, key: &str) -> Result<Option<String>, CfError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong(key, "a string")),
        }
    }

    /// A required, non-empty string.
    pub fn required(&self, key: &str) -> Result<String, CfError> {
        match self.string(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(CfError::parse(format!(
                "Field: {key}, Error: must not be empty"
            ))),
            None => Err(CfError::parse(format!(
                "Field: {key}, Error: Missing field {key}"
            ))),
        }
    }

    /// An optional boolean.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, CfError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong(key, "a boolean")),
        }
    }

    /// An optional integer.
    pub fn integer(&self, key: &str) -> Result<Option<i64>, CfError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| wrong(key, "an integer")),
            Some(_) => Err(wrong(key, "an integer")),
        }
    }

    /// An optional list of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, CfError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| wrong(key, "a list of strings"))
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(wrong(key, "a list of strings")),
        }
    }

    /// An optional JSON object.
    pub fn object(&self, key: &str) -> Result<Option<Map<String, Value>>, CfError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(_) => Err(wrong(key, "an object")),
        }
    }

    /// `extra` as Cloud Controller keeps it: a JSON string. An object is accepted too, and
    /// kept as its JSON text.
    pub fn json_text(&self, key: &str) -> Result<Option<String>, CfError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ Value::Object(_)) => Ok(Some(v.to_string())),
            Some(_) => Err(wrong(key, "a JSON string or an object")),
        }
    }
}
