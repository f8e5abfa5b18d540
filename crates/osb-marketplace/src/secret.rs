//! Secrets at rest: broker passwords sealed with XChaCha20-Poly1305 when a key is configured.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use crate::error::Error;

const PLAIN: &str = "plain:";
const SEALED: &str = "x1:";

/// Seals and opens stored secrets.
///
/// With a key, a secret is stored as `x1:` and the base64 of a random 24-byte nonce followed by
/// the ciphertext; the row's guid is the associated data, so a sealed value copied to another
/// row does not open. Without a key, secrets are stored as `plain:` and the text (and the
/// binary warns at start). Old keys open what they sealed, so keys can be rotated: configure the
/// new key and list the old ones; a secret is sealed again with the new key when its row is next
/// written.
#[derive(Clone, Default)]
pub struct Secrets {
    /// The current key first, then old keys (for opening only).
    keys: Vec<XChaCha20Poly1305>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// No key: secrets are stored as they are.
    pub fn plain() -> Secrets {
        Secrets::default()
    }

    /// Seals with `key` (32 bytes) and opens with it or any of `old`.
    pub fn with_keys(key: [u8; 32], old: &[[u8; 32]]) -> Secrets {
        let keys = std::iter::once(&key)
            .chain(old)
            .map(|k| XChaCha20Poly1305::new(Key::from_slice(k)))
            .collect();
        Secrets { keys }
    }

    /// Reads a key given as base64 of 32 bytes.
    pub fn parse_key(text: &str) -> Result<[u8; 32], Error> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| Error::Config("a secret key must be base64 (of 32 bytes)".to_owned()))?;
        bytes.try_into().map_err(|b: Vec<u8>| {
            Error::Config(format!(
                "a secret key must be 32 bytes, base64-encoded; this one has {}",
                b.len()
            ))
        })
    }

    /// Whether a key is configured.
    pub fn is_sealing(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The stored form of `secret`, bound to `row` (its guid).
    pub fn seal(&self, secret: &str, row: &str) -> Result<String, Error> {
        let Some(key) = self.keys.first() else {
            return Ok(format!("{PLAIN}{secret}"));
        };
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = key
            .encrypt(
                &nonce,
                Payload {
                    msg: secret.as_bytes(),
                    aad: row.as_bytes(),
                },
            )
            .map_err(|_| Error::Secret)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED}{}", STANDARD.encode(out)))
    }

    /// The secret in `stored`, for `row`.
    pub fn open(&self, stored: &str, row: &str) -> Result<String, Error> {
        if let Some(plain) = stored.strip_prefix(PLAIN) {
            return Ok(plain.to_owned());
        }
        let raw = stored
            .strip_prefix(SEALED)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|raw| raw.len() > 24)
            .ok_or(Error::Secret)?;
        let (nonce, sealed) = raw.split_at(24);
        let payload = || Payload {
            msg: sealed,
            aad: row.as_bytes(),
        };
        self.keys
            .iter()
            .find_map(|key| key.decrypt(XNonce::from_slice(nonce), payload()).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(Error::Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_with_the_key_or_an_old_one_for_their_row_only() {
        let old = Secrets::with_keys([1; 32], &[]);
        let stored = old.seal("hunter2", "row-1").unwrap();
        assert!(stored.starts_with("x1:") && !stored.contains("hunter2"));
        assert_eq!(old.open(&stored, "row-1").unwrap(), "hunter2");
        assert!(matches!(old.open(&stored, "row-2"), Err(Error::Secret)));
        let rotated = Secrets::with_keys([2; 32], &[[1; 32]]);
        assert_eq!(rotated.open(&stored, "row-1").unwrap(), "hunter2");
        let fresh = rotated.seal("hunter2", "row-1").unwrap();
        assert!(matches!(old.open(&fresh, "row-1"), Err(Error::Secret)));
        assert!(matches!(
            Secrets::plain().open(&stored, "row-1"),
            Err(Error::Secret)
        ));
    }

    #[test]
    fn without_a_key_secrets_are_kept_plain_and_still_open_after_a_key_is_set() {
        let stored = Secrets::plain().seal("pw", "r").unwrap();
        assert_eq!(stored, "plain:pw");
        assert_eq!(
            Secrets::with_keys([3; 32], &[]).open(&stored, "r").unwrap(),
            "pw"
        );
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(Secrets::parse_key(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(matches!(Secrets::parse_key("nope!"), Err(Error::Config(_))));
        assert!(matches!(
            Secrets::parse_key(&STANDARD.encode([7u8; 16])),
            Err(Error::Config(_))
        ));
    }
}
