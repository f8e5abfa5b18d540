//! serde support for fields where an explicit `null` differs from an absent field.
//!
//! Used by the generated models as `#[serde(default, skip_serializing_if = "Option::is_none",
//! with = "crate::nullable")]` on `Option<Option<T>>` fields: absent is `None`, `null` is
//! `Some(None)`, a value is `Some(Some(v))`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) fn serialize<T: Serialize, S: Serializer>(
    value: &Option<Option<T>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(Some(v)) => v.serialize(serializer),
        // `None` is skipped by `skip_serializing_if`; `Some(None)` is an explicit null.
        _ => serializer.serialize_none(),
    }
}

pub(crate) fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}
