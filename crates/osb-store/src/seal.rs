//! [`StoreKeys`]: what the SQL stores encrypt at rest, and how.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use crate::StoreError;

/// How a sealed column value starts; unsealed values are JSON, which never does.
const PREFIX: &str = "enc1:";
/// XChaCha20-Poly1305's nonce: 24 bytes, safe to draw at random for every write.
const NONCE_LEN: usize = 24;

/// The keys that encrypt what the SQL stores keep of each request and reply — binding
/// credentials, `parameters`, the fingerprints built from them — with XChaCha20-Poly1305 (an
/// AEAD): the current key for writing, and older keys still accepted for reading, so keys
/// can be rotated without rewriting the database (a record is sealed with the current key
/// the next time it is written).
///
/// Each sealed value is bound to its table, column and resource, so a value copied to another
/// row does not decrypt. Rows written without a key (by an older version, or before a key was
/// configured) are still read; a sealed row read without its key is
/// [`StoreError::Corrupt`].
///
/// `Debug` shows how many keys there are, never the keys.
///
/// ```
/// use osb_store::StoreKeys;
/// let keys = StoreKeys::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &[]).unwrap();
/// assert!(!format!("{keys:?}").contains("AAEC"));
/// ```
#[derive(Clone)]
pub struct StoreKeys {
    current: Key,
    old: Vec<Key>,
}

impl fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreKeys")
            .field("current", &"<redacted>")
            .field("old_keys", &self.old.len())
            .finish()
    }
}

impl StoreKeys {
    /// Seals with this 32-byte key.
    pub fn new(current: [u8; 32]) -> Self {
        StoreKeys {
            current: current.into(),
            old: Vec::new(),
        }
    }

    /// Also opens what this older key sealed.
    #[must_use]
    pub fn with_old_key(mut self, old: [u8; 32]) -> Self {
        self.old.push(old.into());
        self
    }

    /// Keys given as standard Base64 of 32 bytes each (`openssl rand -base64 32`).
    pub fn from_base64(current: &str, old: &[&str]) -> Result<Self, StoreError> {
        let mut keys = StoreKeys::new(decode_key(current, "the store key")?);
        for (i, key) in old.iter().enumerate() {
            keys = keys.with_old_key(decode_key(key, &format!("old store key #{}", i + 1))?);
        }
        Ok(keys)
    }

    /// The keys in `OSB_STORE_KEY` and `OSB_STORE_OLD_KEYS` (comma-separated), each the Base64
    /// of 32 bytes; `None` when `OSB_STORE_KEY` is unset or empty. Old keys without a current
    /// one, or a malformed key, are an error (whose message never quotes a key).
    pub fn from_env() -> Result<Option<Self>, StoreError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self::from_values(var("OSB_STORE_KEY"), var("OSB_STORE_OLD_KEYS"))
    }

    fn from_values(
        current: Option<String>,
        old: Option<String>,
    ) -> Result<Option<Self>, StoreError> {
        let old: Vec<&str> = old
            .as_deref()
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        match current {
            Some(current) => Self::from_base64(&current, &old).map(Some),
            None if old.is_empty() => Ok(None),
            None => Err(StoreError::Unavailable(
                "OSB_STORE_OLD_KEYS is set without OSB_STORE_KEY; set the current key too".into(),
            )),
        }
    }

    fn seal(&self, label: &str, text: &str) -> Result<String, StoreError> {
        let cipher = XChaCha20Poly1305::new(&self.current);
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: text.as_bytes(),
            aad: label.as_bytes(),
        };
        // Encryption fails only for messages beyond 256 GiB.
        let sealed = cipher
            .encrypt(&nonce, payload)
            .map_err(|_| StoreError::Corrupt(format!("{label}: too large to encrypt")))?;
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(bytes)))
    }

    fn open(&self, label: &str, sealed: &str) -> Result<String, StoreError> {
        let corrupt = |why: &str| StoreError::Corrupt(format!("{label}: {why}"));
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| corrupt("the sealed value is not Base64"))?;
        if bytes.len() < NONCE_LEN {
            return Err(corrupt("the sealed value is too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = XNonce::from_slice(nonce);
        for key in std::iter::once(&self.current).chain(&self.old) {
            let payload = Payload {
                msg: ciphertext,
                aad: label.as_bytes(),
            };
            if let Ok(plain) = XChaCha20Poly1305::new(key).decrypt(nonce, payload) {
                return String::from_utf8(plain).map_err(|_| corrupt("not UTF-8 once opened"));
            }
        }
        Err(corrupt(
            "sealed with a key that is not configured (OSB_STORE_KEY, OSB_STORE_OLD_KEYS), or altered",
        ))
    }
}

fn decode_key(text: &str, what: &str) -> Result<[u8; 32], StoreError> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| StoreError::Unavailable(format!("{what} is not standard Base64")))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        StoreError::Unavailable(format!(
            "{what} must be 32 bytes (Base64 of 44 characters), not {} bytes",
            bytes.len()
        ))
    })
}

/// The keys of a store, if any: seals values on the way in and opens them on the way out.
#[derive(Clone, Debug, Default)]
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) struct Sealer(Option<Arc<StoreKeys>>);

#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
impl Sealer {
    pub(crate) fn new(keys: Option<StoreKeys>) -> Self {
        Sealer(keys.map(Arc::new))
    }

    /// `text` sealed for `label` (table, column and row), or as it is without keys.
    pub(crate) fn seal(&self, label: &str, text: String) -> Result<String, StoreError> {
        match &self.0 {
            Some(keys) => keys.seal(label, &text),
            None => Ok(text),
        }
    }

    /// The text of a column value: opened if sealed, else as stored.
    pub(crate) fn open(&self, label: &str, stored: String) -> Result<String, StoreError> {
        match stored.strip_prefix(PREFIX) {
            None => Ok(stored),
            Some(sealed) => match &self.0 {
                Some(keys) => keys.open(label, sealed),
                None => Err(StoreError::Corrupt(format!(
                    "{label} is encrypted, but no store key is configured (OSB_STORE_KEY)"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn seals_and_opens_with_rotation() {
        let old = Sealer::new(Some(StoreKeys::from_base64(&key(1), &[]).unwrap()));
        let sealed = old
            .seal("resources.reply/i/b", r#"{"password":"pw-1"}"#.into())
            .unwrap();
        assert!(sealed.starts_with(PREFIX), "{sealed}");
        assert!(!sealed.contains("pw-1"));
        assert_eq!(
            old.open("resources.reply/i/b", sealed.clone()).unwrap(),
            r#"{"password":"pw-1"}"#
        );
        // Another row, or another key, does not open it.
        assert!(old.open("resources.reply/i/c", sealed.clone()).is_err());
        let new = Sealer::new(Some(StoreKeys::from_base64(&key(2), &[]).unwrap()));
        assert!(new.open("resources.reply/i/b", sealed.clone()).is_err());
        // The new key with the old one for reading does.
        let rotated = Sealer::new(Some(StoreKeys::from_base64(&key(2), &[&key(1)]).unwrap()));
        assert!(rotated.open("resources.reply/i/b", sealed.clone()).is_ok());
        // No keys: plain values pass, sealed ones are refused.
        let none = Sealer::new(None);
        assert_eq!(none.open("x", "{}".into()).unwrap(), "{}");
        assert!(matches!(
            none.open("x", sealed),
            Err(StoreError::Corrupt(_))
        ));
        // Keys read the plain rows of before.
        assert_eq!(rotated.open("x", "{}".into()).unwrap(), "{}");
        // A character in the middle carries six bits of the ciphertext (the last one may carry
        // fewer, so replacing it can leave the bytes as they were).
        let sealed = rotated.seal("x", "{}".into()).unwrap();
        let middle = sealed.len() / 2;
        let replacement = if &sealed[middle..=middle] == "A" {
            "B"
        } else {
            "A"
        };
        let tampered = format!(
            "{}{replacement}{}",
            &sealed[..middle],
            &sealed[middle + 1..]
        );
        assert_ne!(tampered, sealed);
        assert!(rotated.open("x", tampered).is_err());
    }

    #[test]
    fn keys_from_the_environment_values() {
        assert!(StoreKeys::from_values(None, None).unwrap().is_none());
        let keys = StoreKeys::from_values(Some(key(3)), Some(format!("{}, {}", key(1), key(2))))
            .unwrap()
            .unwrap();
        assert_eq!(keys.old.len(), 2);
        let text = format!("{keys:?}");
        assert!(!text.contains(&key(3)[..8]), "{text}");
        assert!(StoreKeys::from_values(None, Some(key(1))).is_err());
        let err = StoreKeys::from_values(Some("c2hvcnQ=".into()), None).unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
        assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
        assert!(StoreKeys::from_values(Some("not base64!".into()), None).is_err());
    }
}
