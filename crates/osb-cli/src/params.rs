//! Request `parameters` and `context` from the command line: inline JSON, files, stdin and
//! `key=value` pairs.

use std::io::Read as _;

use osb_types::Context;
use serde_json::{Map, Value};

use crate::cli::ParamArgs;
use crate::error::{Result, usage};

/// Reads a JSON document given inline (`{...}`), from a file, or from stdin (`-`).
fn read_json(option: &str, source: &str) -> Result<Value> {
    let trimmed = source.trim_start();
    let (text, origin) = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        (source.to_string(), "the value".to_string())
    } else if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| usage(format!("{option}: cannot read stdin: {e}")))?;
        (text, "stdin".to_string())
    } else {
        let text = std::fs::read_to_string(source).map_err(|e| {
            usage(format!(
                "{option}: {source:?} is neither a JSON object nor a readable file ({e})"
            ))
        })?;
        (text, format!("the file {source:?}"))
    };
    serde_json::from_str(&text)
        .map_err(|e| usage(format!("{option}: {origin} is not valid JSON: {e}")))
}

/// Reads a JSON object (see [`read_json`]).
fn read_object(option: &str, source: &str) -> Result<Map<String, Value>> {
    match read_json(option, source)? {
        Value::Object(map) => Ok(map),
        other => Err(usage(format!(
            "{option}: expected a JSON object, got {}",
            kind(&other)
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The `parameters` object from `-P` (merged in order) and `--param` (applied last), or `None`
/// when neither was given.
pub(crate) fn parameters(args: &ParamArgs) -> Result<Option<Map<String, Value>>> {
    if args.parameters.is_empty() && args.param.is_empty() {
        return Ok(None);
    }
    let mut merged = Map::new();
    for source in &args.parameters {
        merged.extend(read_object("-P/--parameters", source)?);
    }
    for pair in &args.param {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            usage(format!(
                "--param: expected KEY=VALUE, got {pair:?} (e.g. --param size=3)"
            ))
        })?;
        if key.is_empty() {
            return Err(usage(format!("--param: the key of {pair:?} is empty")));
        }
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        merged.insert(key.to_string(), value);
    }
    Ok(Some(merged))
}

/// The `context` object from `--context`.
pub(crate) fn context(source: Option<&str>) -> Result<Option<Context>> {
    let Some(source) = source else {
        return Ok(None);
    };
    let object = read_object("--context", source)?;
    serde_json::from_value(Value::Object(object))
        .map(Some)
        .map_err(|e| usage(format!("--context: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(parameters: &[&str], param: &[&str]) -> ParamArgs {
        ParamArgs {
            parameters: parameters.iter().map(|s| s.to_string()).collect(),
            param: param.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn nothing_given_means_no_parameters() {
        assert_eq!(parameters(&args(&[], &[])).unwrap(), None);
    }

    #[test]
    fn inline_json_and_pairs_merge() {
        let p = parameters(&args(
            &[r#"{"size": 1, "tier": "gold"}"#, r#" {"size": 2}"#],
            &["size=3", "name=db", "flag=true", "quoted=\"7\"", "empty="],
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"size": 3, "tier": "gold", "name": "db", "flag": true, "quoted": "7", "empty": ""})
        );
    }

    #[test]
    fn files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, r#"{"size": 4}"#).unwrap();
        let p = parameters(&args(&[path.to_str().unwrap()], &[]))
            .unwrap()
            .unwrap();
        assert_eq!(p["size"], 4);
    }

    #[test]
    fn bad_input_gets_clear_messages() {
        let cases: [(&[&str], &[&str], &str); 6] = [
            (&["{not json"], &[], "not valid JSON"),
            (&["[1, 2]"], &[], "expected a JSON object, got an array"),
            (
                &["/no/such/file.json"],
                &[],
                "neither a JSON object nor a readable file",
            ),
            (&[], &["novalue"], "expected KEY=VALUE"),
            (&[], &["=3"], "key of \"=3\" is empty"),
            (&["{\"a\": 1,}"], &[], "not valid JSON"),
        ];
        for (p, kv, needle) in cases {
            let err = parameters(&args(p, kv)).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn contexts_parse() {
        let ctx = context(Some(r#"{"platform": "kubernetes", "namespace": "dev"}"#))
            .unwrap()
            .unwrap();
        assert_eq!(ctx.platform(), Some("kubernetes"));
        assert!(context(None).unwrap().is_none());
        assert!(context(Some("[]")).is_err());
    }
}
