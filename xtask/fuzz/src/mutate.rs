//! Random numbers and mutations of strings, JSON values and bytes.

use serde_json::{Map, Number, Value};

/// A small, fast, seedable generator (SplitMix64): runs replay from their seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is `0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// `true` once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One of `items` (which must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Strings that tend to find bugs in parsers.
pub(crate) const STRINGS: &[&str] = &[
    "",
    " ",
    "null",
    "true",
    "TRUE",
    "1",
    "0",
    "-1",
    "yes",
    "2.17",
    "2.13",
    "2.12",
    "2.18",
    "3.0",
    "2.",
    ".17",
    "2.17.0",
    "02.017",
    "18446744073709551616",
    "99999999999999999999999999",
    "1e309",
    "-0",
    "NaN",
    "\u{0}",
    "\u{7f}",
    "é",
    "🦀",
    "\u{202e}",
    "../..",
    "%2F",
    "%",
    "%%",
    "%ff",
    "a b",
    "\"",
    "\\",
    "'",
    "{}",
    "[]",
    "\r\n",
    "cloudfoundry",
    "cloudfoundry ",
    "cloudfoundry eyJ1c2VyX2lkIjoiMSJ9",
    "kubernetes e30=",
    "kubernetes W10=",
    "cloudfoundry bm90IGpzb24=",
    "x eyJ1c2VyX2lkIjoiMSJ9",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Sun, 06 Nov 1994 08:49:37 GMT",
    "Sunday, 06-Nov-94 08:49:37 GMT",
    "Sun Nov  6 08:49:37 1994",
    "2026-01-01T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "in progress",
    "succeeded",
    "failed",
    "AsyncRequired",
    "ConcurrencyError",
    "Basic YWRtaW46cHc=",
    "Bearer x",
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
];

/// Field names of the protocol, so mutations add fields the decoders know.
pub(crate) const FIELDS: &[&str] = &[
    "services",
    "plans",
    "id",
    "name",
    "description",
    "bindable",
    "plan_updateable",
    "instances_retrievable",
    "bindings_retrievable",
    "allow_context_updates",
    "binding_rotatable",
    "maximum_polling_duration",
    "maintenance_info",
    "version",
    "schemas",
    "service_instance",
    "service_binding",
    "create",
    "update",
    "parameters",
    "$schema",
    "type",
    "properties",
    "required",
    "service_id",
    "plan_id",
    "context",
    "platform",
    "organization_guid",
    "space_guid",
    "previous_values",
    "bind_resource",
    "app_guid",
    "route",
    "predecessor_binding_id",
    "credentials",
    "metadata",
    "expires_at",
    "renew_before",
    "labels",
    "attributes",
    "dashboard_url",
    "operation",
    "state",
    "instance_usable",
    "update_repeatable",
    "error",
    "syslog_drain_url",
    "route_service_url",
    "volume_mounts",
    "endpoints",
    "host",
    "ports",
    "protocol",
    "driver",
    "container_dir",
    "mode",
    "device_type",
    "device",
    "volume_id",
    "mount_config",
    "dashboard_client",
    "secret",
    "redirect_uri",
    "tags",
    "requires",
    "free",
    "costs",
    "amount",
    "unit",
    "plan_retired",
];

/// A random string: a known troublemaker, random ASCII, random Unicode, or (rarely) long.
pub(crate) fn string(rng: &mut Rng) -> String {
    match rng.below(8) {
        0..=2 => (*rng.pick(STRINGS)).to_string(),
        3 => (*rng.pick(FIELDS)).to_string(),
        4 | 5 => (0..rng.below(24))
            .map(|_| (b' ' + rng.below(95) as u8) as char)
            .collect(),
        6 => (0..rng.below(12))
            .map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}'))
            .collect(),
        _ => {
            if rng.one_in(16) {
                "x".repeat(rng.below(20_000))
            } else {
                format!(
                    "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                    rng.next_u64() as u32,
                    rng.below(0x10000),
                    rng.below(0x1000),
                    rng.below(0x1000),
                    rng.next_u64() & 0xffff_ffff_ffff
                )
            }
        }
    }
}

/// `text` changed a little: truncated, extended, a character replaced or doubled.
pub(crate) fn mutate_string(rng: &mut Rng, text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    match rng.below(6) {
        0 => string(rng),
        1 => chars[..rng.below(chars.len() + 1)].iter().collect(),
        2 => format!("{text}{}", string(rng)),
        3 => format!("{}{text}", string(rng)),
        4 if !chars.is_empty() => {
            let mut chars = chars;
            let i = rng.below(chars.len());
            chars[i] = string(rng).chars().next().unwrap_or('\u{0}');
            chars.into_iter().collect()
        }
        _ => text.repeat(1 + rng.below(3)),
    }
}

fn number(rng: &mut Rng) -> Value {
    let n = match rng.below(8) {
        0 => Number::from(0),
        1 => Number::from(-1),
        2 => Number::from(i64::MAX),
        3 => Number::from(u64::MAX),
        4 => Number::from(i64::MIN),
        5 => Number::from_f64(1.5).unwrap_or_else(|| Number::from(0)),
        6 => Number::from_f64(-1e300).unwrap_or_else(|| Number::from(0)),
        _ => Number::from(rng.below(2000) as u64),
    };
    Value::Number(n)
}

/// A random JSON value, at most `depth` levels deep.
pub(crate) fn value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 4 } else { 6 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => number(rng),
        3 => Value::String(string(rng)),
        4 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth - 1)).collect()),
        _ => {
            let mut map = Map::new();
            for _ in 0..rng.below(4) {
                let key = if rng.one_in(2) {
                    (*rng.pick(FIELDS)).to_string()
                } else {
                    string(rng)
                };
                map.insert(key, value(rng, depth - 1));
            }
            Value::Object(map)
        }
    }
}

/// One structural change somewhere in `target`: a node replaced, a key added or removed, an
/// array item added, dropped or doubled, a string or number changed.
pub(crate) fn mutate_value(rng: &mut Rng, target: &mut Value) {
    // Walk down a random path, stopping at random.
    let descend = match target {
        Value::Object(map) => !map.is_empty() && !rng.one_in(3),
        Value::Array(items) => !items.is_empty() && !rng.one_in(3),
        _ => false,
    };
    if descend {
        match target {
            Value::Object(map) => {
                let i = rng.below(map.len());
                if let Some((_, child)) = map.iter_mut().nth(i) {
                    mutate_value(rng, child);
                }
            }
            Value::Array(items) => {
                let i = rng.below(items.len());
                mutate_value(rng, &mut items[i]);
            }
            _ => {}
        }
        return;
    }
    match target {
        Value::Object(map) => match rng.below(4) {
            0 if !map.is_empty() => {
                let i = rng.below(map.len());
                let key = map.keys().nth(i).cloned().unwrap_or_default();
                map.remove(&key);
            }
            1 | 2 => {
                let key = (*rng.pick(FIELDS)).to_string();
                map.insert(key, value(rng, 2));
            }
            _ => *target = value(rng, 2),
        },
        Value::Array(items) => match rng.below(4) {
            0 if !items.is_empty() => {
                items.remove(rng.below(items.len()));
            }
            1 if !items.is_empty() => {
                let item = items[rng.below(items.len())].clone();
                items.push(item);
            }
            2 => items.push(value(rng, 2)),
            _ => *target = value(rng, 2),
        },
        Value::String(s) => {
            if rng.one_in(4) {
                *target = value(rng, 1);
            } else {
                *s = mutate_string(rng, s);
            }
        }
        _ => *target = value(rng, 2),
    }
}

/// Byte-level damage: a byte flipped, inserted or deleted, a range doubled or cut, a JSON
/// token dropped in, or the end cut off.
pub(crate) fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) {
    const TOKENS: &[&[u8]] = &[
        b"{", b"}", b"[", b"]", b"\"", b",", b":", b"null", b"\\u0000", b"\\ud800", b"1e999", b"-",
        b"\xff", b"\xc3", b"\\",
    ];
    let len = bytes.len();
    match rng.below(7) {
        0 if len > 0 => {
            let i = rng.below(len);
            bytes[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(len + 1);
            bytes.insert(i, rng.next_u64() as u8);
        }
        2 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(16));
            bytes.drain(i..i + n);
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            let copy = bytes[i..i + n].to_vec();
            let at = rng.below(len + 1);
            bytes.splice(at..at, copy);
        }
        4 => bytes.truncate(rng.below(len + 1)),
        _ => {
            let at = rng.below(len + 1);
            let token = rng.pick(TOKENS);
            bytes.splice(at..at, token.iter().copied());
        }
    }
}

/// A seed value mutated structurally 1–4 times, then serialized, and a quarter of the time
/// damaged at the byte level too.
pub(crate) fn json_input(rng: &mut Rng, seed: &Value) -> Vec<u8> {
    let mut value = seed.clone();
    for _ in 0..1 + rng.below(4) {
        mutate_value(rng, &mut value);
    }
    let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
    if rng.one_in(4) {
        for _ in 0..1 + rng.below(3) {
            mutate_bytes(rng, &mut bytes);
        }
    }
    bytes
}
