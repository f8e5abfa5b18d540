//! Bearer tokens: JWTs as UAA issues them, verified with `jsonwebtoken`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{CfCode, CfError, Error};

/// The audience every token must name.
pub const AUDIENCE: &str = "cloud_controller";

/// A scope a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `cloud_controller.read` (or admin): list and show.
    Read,
    /// `cloud_controller.write` (or admin): instances and bindings.
    Write,
    /// `cloud_controller.admin`: brokers, services and plan visibility.
    Admin,
}

impl Scope {
    /// The scope's name in a token.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "cloud_controller.read",
            Scope::Write => "cloud_controller.write",
            Scope::Admin => "cloud_controller.admin",
        }
    }
}

/// The claims of a token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id (the originating identity sent to brokers).
    pub user_id: String,
    /// The user's email, if the token carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The scopes granted.
    #[serde(default, deserialize_with = "scopes")]
    pub scope: Vec<String>,
    /// The audiences (a list, or one string).
    #[serde(default, deserialize_with = "scopes")]
    pub aud: Vec<String>,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
}

impl Claims {
    /// Claims for `user_id` with `scopes`, for the audience `cloud_controller`, expiring after
    /// `ttl`.
    pub fn new(user_id: impl Into<String>, scopes: Vec<String>, ttl: Duration) -> Claims {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Claims {
            user_id: user_id.into(),
            email: None,
            scope: scopes,
            aud: vec![AUDIENCE.to_owned()],
            exp: (now + ttl).as_secs(),
        }
    }

    /// Whether the token grants `scope`. `cloud_controller.admin` grants every scope.
    pub fn has(&self, scope: Scope) -> bool {
        self.scope
            .iter()
            .any(|s| s == Scope::Admin.as_str() || s == scope.as_str())
    }
}

/// A list of strings as UAA sends `scope` and `aud`, or one space-separated string.
fn scopes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scopes {
        List(Vec<String>),
        One(String),
    }
    Ok(match Scopes::deserialize(d)? {
        Scopes::List(list) => list,
        Scopes::One(s) => s.split_whitespace().map(str::to_owned).collect(),
    })
}

/// The keys tokens are checked with (and, for HS256, minted with).
#[derive(Clone)]
pub struct TokenKeys {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    algorithm: Algorithm,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("algorithm", &self.algorithm)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl TokenKeys {
    /// HS256 with a shared secret: verifies and mints.
    pub fn hs256(secret: &[u8]) -> TokenKeys {
        TokenKeys {
            decoding: DecodingKey::from_secret(secret),
            encoding: Some(EncodingKey::from_secret(secret)),
            algorithm: Algorithm::HS256,
        }
    }

    /// RS256 with the PEM public key of the token issuer: verifies only.
    pub fn rs256_public_pem(pem: &[u8]) -> Result<TokenKeys, Error> {
        Ok(TokenKeys {
            decoding: DecodingKey::from_rsa_pem(pem)
                .map_err(|e| Error::Config(format!("the RS256 public key is not usable: {e}")))?,
            encoding: None,
            algorithm: Algorithm::RS256,
        })
    }

    /// Signs `claims` (HS256 keys only).
    pub fn mint(&self, claims: &Claims) -> Result<String, Error> {
        let key = self.encoding.as_ref().ok_or_else(|| {
            Error::Config("tokens can be minted with an HS256 key only".to_owned())
        })?;
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, key)
            .map_err(|e| Error::Config(format!("cannot sign the token: {e}")))
    }

    /// Checks the `Authorization: bearer <JWT>` header and the scope.
    ///
    /// - no header: `401 CF-NotAuthenticated`;
    /// - not a bearer token, badly signed, expired (60 s leeway), or not for the audience
    ///   `cloud_controller`: `401 CF-InvalidAuthToken`;
    /// - without `scope` (or admin): `403 CF-NotAuthorized`.
    pub fn authorize(&self, headers: &HeaderMap, scope: Scope) -> Result<Claims, CfError> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(CfError::new(
                CfCode::NOT_AUTHENTICATED,
                "Authentication error",
            ));
        };
        let invalid = || CfError::new(CfCode::INVALID_AUTH_TOKEN, "Invalid Auth Token");
        let value = value.to_str().map_err(|_| invalid())?.trim();
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(invalid()),
        };
        let mut validation = Validation::new(self.algorithm);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| {
                tracing::debug!(reason = %e, "token refused");
                invalid()
            })?
            .claims;
        if !claims.has(scope) {
            return Err(CfError::new(
                CfCode::NOT_AUTHORIZED,
                "You are not authorized to perform the requested action",
            ));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, format!("bearer {token}").parse().unwrap());
        h
    }

    #[test]
    fn a_minted_token_is_accepted_with_its_scopes_only() {
        let keys = TokenKeys::hs256(b"k");
        let claims = Claims::new(
            "u1",
            vec!["cloud_controller.read".into()],
            Duration::from_secs(60),
        );
        let token = keys.mint(&claims).unwrap();
        assert_eq!(
            keys.authorize(&header(&token), Scope::Read).unwrap(),
            claims
        );
        let e = keys.authorize(&header(&token), Scope::Admin).unwrap_err();
        assert_eq!(e.kind, CfCode::NOT_AUTHORIZED);
    }

    #[test]
    fn a_token_signed_with_another_key_or_for_another_audience_is_invalid() {
        let claims = Claims::new(
            "u",
            vec!["cloud_controller.admin".into()],
            Duration::from_secs(60),
        );
        let other = TokenKeys::hs256(b"other").mint(&claims).unwrap();
        let keys = TokenKeys::hs256(b"k");
        assert_eq!(
            keys.authorize(&header(&other), Scope::Read)
                .unwrap_err()
                .kind,
            CfCode::INVALID_AUTH_TOKEN
        );
        let mut foreign = claims.clone();
        foreign.aud = vec!["uaa".into()];
        let foreign = keys.mint(&foreign).unwrap();
        assert_eq!(
            keys.authorize(&header(&foreign), Scope::Read)
                .unwrap_err()
                .kind,
            CfCode::INVALID_AUTH_TOKEN
        );
    }

    #[test]
    fn a_space_separated_scope_string_is_read_as_a_list() {
        let c: Claims = serde_json::from_value(serde_json::json!({
            "user_id": "u", "scope": "cloud_controller.read cloud_controller.write",
            "aud": ["cloud_controller"], "exp": 1
        }))
        .unwrap();
        assert!(c.has(Scope::Write) && c.has(Scope::Read) && !c.has(Scope::Admin));
    }
}
