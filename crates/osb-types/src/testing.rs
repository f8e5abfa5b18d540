//! [proptest](mod@proptest) strategies for osb-types values, for property tests in this and other crates.
//!
//! Enabled by the `testing` feature. The base strategies here produce the building blocks
//! (free-form JSON, text, ids, extension fields, unknown enum values, [`Context`],
//! [`OriginatingIdentity`], [`ApiVersion`]); every generated model has its own
//! `arb_<model>()` strategy built from them, and the typed outcomes have `arb_<outcome>()`.
//!
//! Every value a strategy produces survives a JSON round trip unchanged: numbers are integers
//! (no float rounding), extension keys never collide with declared field names, and unknown enum
//! values are never one of the known ones.
//!
//! ```
//! use osb_types::testing::arb_context;
//! use proptest::prelude::*;
//!
//! proptest!(|(ctx in arb_context())| {
//!     let json = serde_json::to_value(&ctx).unwrap();
//!     prop_assert_eq!(serde_json::from_value::<osb_types::Context>(json).unwrap(), ctx);
//! });
//! ```

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value};

use crate::{
    ApiVersion, CloudFoundryContext, CloudFoundryIdentity, Context, KubernetesContext,
    KubernetesIdentity, OriginatingIdentity, PLATFORM_CLOUDFOUNDRY, PLATFORM_KUBERNETES,
};

/// Characters JSON must escape, and others that trip naive string handling.
const TRICKY: &[char] = &[
    '"', '\\', '/', '\n', '\r', '\t', '\u{0}', '\u{8}', '\u{c}', '\u{1f}', '\u{7f}', ' ', '%', '#',
    '?', '&', '=', '+', '\'', '<', '>',
];

/// Non-ASCII characters of every UTF-8 length, including JavaScript line separators and a BOM.
const UNICODE: &[char] = &[
    'é',
    'ß',
    'ü',
    'Ω',
    'ж',
    '中',
    '文',
    '한',
    '€',
    '\u{2028}',
    '\u{2029}',
    '\u{feff}',
    '😀',
    '🦀',
    '\u{10ffff}',
];

/// Characters of ids: mostly URL-safe, with some that must be percent-encoded in paths and
/// query strings.
const ID_SPECIAL: &[char] = &[
    '-', '.', '_', '~', ' ', '/', '?', '#', '%', '+', '&', '=', ':', '@', '!', '$', '\'', '(', ')',
    '*', ',', ';', '[', ']', '"', '\\', 'é', '中', '😀',
];

fn alnum() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        1 => proptest::char::range('A', 'Z'),
        1 => proptest::char::range('0', '9'),
    ]
}

fn json_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => alnum(),
        2 => select(TRICKY),
        2 => select(UNICODE),
        1 => any::<char>(),
    ]
}

/// Any JSON string (possibly empty), with escapes and non-ASCII characters.
fn json_string() -> impl Strategy<Value = String> {
    vec(json_char(), 0..8).prop_map(String::from_iter)
}

/// Arbitrary JSON: `null`, booleans, integers (no floats, so equality after a round trip is
/// exact), strings with escapes and unicode, and arrays and objects nested up to three levels.
pub fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        3 => json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((json_string(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// An arbitrary JSON object (0–3 keys), for free-form fields such as `parameters`.
pub fn arb_object() -> impl Strategy<Value = Map<String, Value>> {
    vec((json_string(), arb_json()), 0..4).prop_map(|entries| entries.into_iter().collect())
}

/// An ISO 8601 UTC timestamp as the spec writes binding expiry (`yyyy-mm-ddThh:mm:ss.sZ`, the
/// fraction 0 to 3 digits or left out), in a year of `years`. The generated binding metadata
/// draws `renew_before` from years before 5000 and `expires_at` from later ones, so that every
/// generated pair is in order.
pub fn arb_utc_timestamp(years: std::ops::Range<u32>) -> impl Strategy<Value = String> {
    let fraction = prop_oneof![Just(String::new()), "\\.[0-9]{1,3}"];
    (
        years,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        fraction,
    )
        .prop_map(|(year, month, day, hour, minute, second, fraction)| {
            format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z")
        })
}

/// Non-empty human-readable text: ASCII, non-ASCII letters and emoji, quotes, backslashes and
/// spaces (including leading and trailing ones).
pub fn arb_text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        8 => alnum(),
        2 => Just(' '),
        1 => select(vec!['"', '\'', '\\', '-', '.', '/', ':', '(', ')']),
        2 => select(UNICODE),
    ];
    vec(ch, 1..16).prop_map(String::from_iter)
}

/// A non-empty id: often a GUID, otherwise a mix of URL-safe characters and characters that
/// need percent-encoding (space, `/`, `?`, `#`, `%`, `+`, non-ASCII, …).
///
/// Ids made only of dots (`.`, `..`) are never produced: URL parsers resolve such path segments
/// even when percent-encoded, so no client can send them as a path parameter.
pub fn arb_id<T: From<String> + std::fmt::Debug>() -> impl Strategy<Value = T> {
    let ch = prop_oneof![3 => alnum(), 1 => select(ID_SPECIAL)];
    let free = vec(ch, 1..16).prop_map(String::from_iter);
    let guid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
    prop_oneof![1 => guid.prop_map(String::from), 3 => free].prop_map(|mut id| {
        if id.chars().all(|c| c == '.') {
            id.insert(0, 'i');
        }
        T::from(id)
    })
}

/// An extension key: `x-` followed by letters, digits and a few other characters.
fn extension_key() -> impl Strategy<Value = String> {
    let ch = prop_oneof![6 => alnum(), 1 => select(vec!['-', '_', '.', ' ', 'é', '中'])];
    vec(ch, 1..10).prop_map(|chars| format!("x-{}", String::from_iter(chars)))
}

/// 0–2 extension fields with arbitrary JSON values, whose keys (prefixed `x-`) are never in
/// `known`; meant for a model's flattened `extra` map, with `known` its declared field names.
pub fn arb_extra(known: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    btree_map(extension_key(), arb_json(), 0..3).prop_map(move |entries| {
        entries
            .into_iter()
            .filter(|(key, _)| !known.contains(&key.as_str()))
            .collect()
    })
}

/// A non-empty string that is not one of `known`, for the `Unknown(String)` variant of an enum.
pub fn arb_unknown_enum(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    let ch = prop_oneof![6 => alnum(), 1 => select(vec![' ', '_', '-', '.', 'é'])];
    let free = vec(ch, 1..12).prop_map(String::from_iter);
    // Near misses of the known values (case, padding) must stay unknown too.
    let near = select(known).prop_flat_map(|value| {
        select(vec![
            value.to_uppercase(),
            format!(" {value}"),
            format!("{value}_v2"),
        ])
    });
    let any = if known.is_empty() {
        free.boxed()
    } else {
        prop_oneof![3 => free, 1 => near].boxed()
    };
    any.prop_map(move |mut value| {
        while known.contains(&value.as_str()) {
            value.push('~');
        }
        value
    })
}

/// Annotations as the profile describes them: keys to string values.
fn annotations() -> impl Strategy<Value = Map<String, Value>> {
    btree_map(json_string(), arb_text().prop_map(Value::String), 0..3)
        .prop_map(|entries| entries.into_iter().collect())
}

/// The JSON names of [`CloudFoundryContext`]'s fields, plus `platform`.
const CF_CONTEXT_FIELDS: &[&str] = &[
    "platform",
    "organization_guid",
    "organization_name",
    "space_guid",
    "space_name",
    "instance_name",
    "organization_annotations",
    "space_annotations",
    "instance_annotations",
];

/// The JSON names of [`KubernetesContext`]'s fields, plus `platform`.
const K8S_CONTEXT_FIELDS: &[&str] = &[
    "platform",
    "namespace",
    "clusterid",
    "instance_name",
    "namespace_annotations",
    "instance_annotations",
];

const KNOWN_PLATFORMS: &[&str] = &[PLATFORM_CLOUDFOUNDRY, PLATFORM_KUBERNETES];

fn cloud_foundry_context() -> impl Strategy<Value = CloudFoundryContext> {
    let o = || proptest::option::of(arb_text());
    let a = || proptest::option::of(annotations());
    (
        (o(), o(), o(), o(), o()),
        (a(), a(), a()),
        arb_extra(CF_CONTEXT_FIELDS),
    )
        .prop_map(
            |((org_guid, org_name, space_guid, space_name, instance_name), (oa, sa, ia), extra)| {
                CloudFoundryContext {
                    organization_guid: org_guid,
                    organization_name: org_name,
                    space_guid,
                    space_name,
                    instance_name,
                    organization_annotations: oa,
                    space_annotations: sa,
                    instance_annotations: ia,
                    extra,
                }
            },
        )
}

fn kubernetes_context() -> impl Strategy<Value = KubernetesContext> {
    let o = || proptest::option::of(arb_text());
    let a = || proptest::option::of(annotations());
    (o(), o(), o(), a(), a(), arb_extra(K8S_CONTEXT_FIELDS)).prop_map(
        |(namespace, clusterid, instance_name, na, ia, extra)| KubernetesContext {
            namespace,
            clusterid,
            instance_name,
            namespace_annotations: na,
            instance_annotations: ia,
            extra,
        },
    )
}

/// A platform `context`: Cloud Foundry or Kubernetes with a random subset of the profile's fields
/// and extension fields, or another platform's object (with a `platform` that is neither
/// `cloudfoundry` nor `kubernetes`, a non-string `platform`, or none).
pub fn arb_context() -> impl Strategy<Value = Context> {
    let platform = prop_oneof![
        3 => arb_unknown_enum(KNOWN_PLATFORMS).prop_map(|p| Some(Value::String(p))),
        1 => Just(None),
        1 => arb_json().prop_filter("a non-string platform", |v| !v.is_string()).prop_map(Some),
    ];
    let other = (platform, arb_extra(&["platform"])).prop_map(|(platform, extra)| {
        let mut map = Map::new();
        if let Some(platform) = platform {
            map.insert("platform".to_string(), platform);
        }
        map.extend(extra);
        Context::Other(map)
    });
    prop_oneof![
        2 => cloud_foundry_context().prop_map(Context::CloudFoundry),
        2 => kubernetes_context().prop_map(Context::Kubernetes),
        1 => other,
    ]
}

/// A platform name for an originating identity: visible ASCII, no whitespace, never
/// `cloudfoundry` or `kubernetes`.
fn other_platform() -> impl Strategy<Value = String> {
    "[a-z][!-~]{0,11}".prop_map(|mut platform| {
        while KNOWN_PLATFORMS.contains(&platform.as_str()) {
            platform.push('x');
        }
        platform
    })
}

/// An `X-Broker-API-Originating-Identity`: a Cloud Foundry user (with extra keys), a Kubernetes
/// user (groups, `extra` attributes and unknown keys), or another platform's JSON object.
pub fn arb_originating_identity() -> impl Strategy<Value = OriginatingIdentity> {
    let cf = (arb_text(), arb_extra(&["user_id"])).prop_map(|(user_id, extra)| {
        OriginatingIdentity::CloudFoundry(CloudFoundryIdentity { user_id, extra })
    });
    let attributes = btree_map(
        json_string(),
        vec(arb_text().prop_map(Value::String), 0..3).prop_map(Value::Array),
        0..3,
    )
    .prop_map(|entries| entries.into_iter().collect::<Map<_, _>>());
    let k8s = (
        arb_text(),
        arb_text(),
        vec(arb_text(), 0..3),
        attributes,
        arb_extra(&["username", "uid", "groups", "extra"]),
    )
        .prop_map(|(username, uid, groups, extra, unknown)| {
            OriginatingIdentity::Kubernetes(KubernetesIdentity {
                username,
                uid,
                groups,
                extra,
                unknown,
            })
        });
    let other = (other_platform(), arb_object())
        .prop_map(|(platform, value)| OriginatingIdentity::Other { platform, value });
    prop_oneof![cf, k8s, other]
}

/// One of [`ApiVersion::KNOWN`].
pub fn arb_api_version() -> impl Strategy<Value = ApiVersion> {
    select(ApiVersion::KNOWN.to_vec())
}

/// A permit, as the server hands out for `accepts_incomplete=true`.
#[cfg(feature = "testing")]
fn permit() -> crate::AsyncPermit {
    crate::AsyncPermit::from_accepts_incomplete(Some(true))
        .expect("accepts_incomplete=true always yields a permit")
}

/// A `Retry-After` value that survives the header form: a delay in seconds, or a whole-second
/// time between 1970 and 9999 (the range of HTTP dates).
#[cfg(feature = "testing")]
pub fn arb_retry_after() -> impl Strategy<Value = crate::RetryAfter> {
    use std::time::{Duration, UNIX_EPOCH};
    prop_oneof![
        (0u64..=86_400).prop_map(crate::RetryAfter::seconds),
        any::<u64>().prop_map(crate::RetryAfter::seconds),
        (0u64..253_402_300_800)
            .prop_map(|secs| crate::RetryAfter::At(UNIX_EPOCH + Duration::from_secs(secs))),
    ]
}

/// Any [`ProvisionOutcome`](crate::ProvisionOutcome), `Accepted` included.
#[cfg(feature = "testing")]
pub fn arb_provision_outcome() -> impl Strategy<Value = crate::ProvisionOutcome> {
    use crate::ProvisionOutcome as O;
    prop_oneof![
        arb_service_instance_provision_response().prop_map(O::Created),
        arb_service_instance_provision_response().prop_map(O::AlreadyExists),
        arb_service_instance_async_operation()
            .prop_map(|body| O::Accepted(crate::Accepted::new(permit(), body))),
    ]
}

/// Any [`UpdateOutcome`](crate::UpdateOutcome), `Accepted` included.
#[cfg(feature = "testing")]
pub fn arb_update_outcome() -> impl Strategy<Value = crate::UpdateOutcome> {
    use crate::UpdateOutcome as O;
    prop_oneof![
        arb_service_instance_update_response().prop_map(O::Updated),
        arb_service_instance_async_operation()
            .prop_map(|body| O::Accepted(crate::Accepted::new(permit(), body))),
    ]
}

/// Any [`DeleteOutcome`](crate::DeleteOutcome) (deprovision and unbind), `Accepted` included.
#[cfg(feature = "testing")]
pub fn arb_delete_outcome() -> impl Strategy<Value = crate::DeleteOutcome> {
    use crate::DeleteOutcome as O;
    prop_oneof![
        Just(O::Deleted),
        Just(O::Gone),
        arb_async_operation().prop_map(|body| O::Accepted(crate::Accepted::new(permit(), body))),
    ]
}

/// Any [`BindOutcome`](crate::BindOutcome), `Accepted` included.
#[cfg(feature = "testing")]
pub fn arb_bind_outcome() -> impl Strategy<Value = crate::BindOutcome> {
    use crate::BindOutcome as O;
    prop_oneof![
        arb_service_binding_response().prop_map(O::Created),
        arb_service_binding_response().prop_map(O::AlreadyExists),
        arb_async_operation().prop_map(|body| O::Accepted(crate::Accepted::new(permit(), body))),
    ]
}

/// Any [`FetchInstanceOutcome`](crate::FetchInstanceOutcome).
#[cfg(feature = "testing")]
pub fn arb_fetch_instance_outcome() -> impl Strategy<Value = crate::FetchInstanceOutcome> {
    use crate::FetchInstanceOutcome as O;
    prop_oneof![3 => arb_service_instance_resource().prop_map(O::Found), 1 => Just(O::NotFound)]
}

/// Any [`FetchBindingOutcome`](crate::FetchBindingOutcome).
#[cfg(feature = "testing")]
pub fn arb_fetch_binding_outcome() -> impl Strategy<Value = crate::FetchBindingOutcome> {
    use crate::FetchBindingOutcome as O;
    prop_oneof![3 => arb_service_binding_resource().prop_map(O::Found), 1 => Just(O::NotFound)]
}

/// Any [`LastOperation`](crate::LastOperation), with or without `Retry-After`.
#[cfg(feature = "testing")]
pub fn arb_last_operation() -> impl Strategy<Value = crate::LastOperation> {
    (
        arb_last_operation_resource(),
        proptest::option::of(arb_retry_after()),
    )
        .prop_map(|(resource, retry_after)| match retry_after {
            Some(retry_after) => crate::LastOperation::new(resource).with_retry_after(retry_after),
            None => crate::LastOperation::new(resource),
        })
}

/// Any [`LastOperationOutcome`](crate::LastOperationOutcome).
#[cfg(feature = "testing")]
pub fn arb_last_operation_outcome() -> impl Strategy<Value = crate::LastOperationOutcome> {
    use crate::LastOperationOutcome as O;
    prop_oneof![
        4 => arb_last_operation().prop_map(O::State),
        1 => Just(O::Gone),
        1 => Just(O::NotFound),
    ]
}

#[cfg(feature = "testing")]
pub use crate::generated::strategies::*;
