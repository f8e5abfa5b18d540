//! How query parameters are read.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// Reads a boolean query parameter as platforms spell it: `true`/`false` in any case, or
/// `1`/`0`. Anything else is an error that names the accepted spellings.
pub(crate) fn lenient_bool<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    deserializer.deserialize_any(LenientBool)
}

/// Parses one boolean query value; `None` for a spelling that is not accepted.
///
/// ```
/// use osb_types::parse_query_bool;
/// assert_eq!(parse_query_bool("TRUE"), Some(true));
/// assert_eq!(parse_query_bool("0"), Some(false));
/// assert_eq!(parse_query_bool("yes"), None);
/// ```
pub fn parse_query_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") || value == "1" {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") || value == "0" {
        Some(false)
    } else {
        None
    }
}

struct LenientBool;

impl<'de> Visitor<'de> for LenientBool {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true or false (in any case), 1 or 0")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Ok(Some(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        match value {
            0 => Ok(Some(false)),
            1 => Ok(Some(true)),
            _ => Err(E::invalid_value(de::Unexpected::Unsigned(value), &self)),
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(E::invalid_value(de::Unexpected::Signed(value), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        parse_query_bool(value)
            .map(Some)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(value), &self))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(LenientBool)
    }
}

#[cfg(test)]
mod tests {
    use crate::{BindQuery, ProvisionQuery};

    fn provision(query: &str) -> Result<ProvisionQuery, String> {
        let pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_incomplete_spellings_in_any_case_and_as_digits() {
        for (text, expected) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("1", true),
            ("false", false),
            ("False", false),
            ("FALSE", false),
            ("0", false),
        ] {
            let query = provision(&format!("accepts_incomplete={text}")).unwrap();
            assert_eq!(query.accepts_incomplete, Some(expected), "{text}");
        }
        assert_eq!(provision("").unwrap().accepts_incomplete, None);
    }

    #[test]
    fn accepts_incomplete_other_spellings_are_refused_with_the_accepted_ones() {
        for text in ["yes", "no", "2", "", "t", "truee", " true"] {
            let err = provision(&format!("accepts_incomplete={text}")).unwrap_err();
            assert!(err.contains("true or false"), "{text}: {err}");
        }
    }

    #[test]
    fn accepts_incomplete_from_json_booleans() {
        let query: BindQuery =
            serde_json::from_value(serde_json::json!({"accepts_incomplete": true})).unwrap();
        assert_eq!(query.accepts_incomplete, Some(true));
        let back = serde_json::to_value(&query).unwrap();
        assert_eq!(back, serde_json::json!({"accepts_incomplete": true}));
    }
}
