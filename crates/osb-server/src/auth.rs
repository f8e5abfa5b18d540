//! Authentication: Basic credentials, Bearer tokens, or a check of your own.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::FutureExt as _;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use subtle::{Choice, ConstantTimeEq};
use tokio::time::Instant;

use crate::error::Rejection;

type CheckFuture = Pin<Box<dyn Future<Output = bool> + Send>>;
type CheckFn = dyn Fn(&HeaderMap) -> CheckFuture + Send + Sync;

/// Who may call the broker.
///
/// A request passes when it matches any configured method: one of the Basic credentials, one of
/// the Bearer tokens, or the custom check. Credentials and tokens are compared in constant time
/// (all of them, every time). A failed check is answered `401 Unauthorized` with an OSB error
/// body and a `WWW-Authenticate` challenge for each configured scheme.
///
/// An `Auth` with nothing configured lets every request through; the router logs a warning at
/// startup unless [`Auth::anonymous`] was chosen on purpose.
///
/// ```
/// use osb_server::Auth;
/// let auth = Auth::new().basic("platform", "s3cret").basic("rotating", "n3xt").bearer("token-1");
/// assert!(auth.is_configured());
/// ```
#[derive(Clone, Default)]
pub struct Auth {
    /// The Base64 of each accepted `user:password`, as it appears after `Basic `.
    basic: Vec<Vec<u8>>,
    bearer: Vec<Vec<u8>>,
    check: Option<Arc<CheckFn>>,
    anonymous: bool,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("basic_credentials", &self.basic.len())
            .field("bearer_tokens", &self.bearer.len())
            .field("custom_check", &self.check.is_some())
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

impl Auth {
    /// No methods yet (every request passes until one is added).
    pub fn new() -> Self {
        Self::default()
    }

    /// Every request passes, on purpose (no startup warning).
    pub fn anonymous() -> Self {
        Auth {
            anonymous: true,
            ..Self::default()
        }
    }

    /// Accepts HTTP Basic with this user name and password (call again for more credentials,
    /// e.g. while rotating them).
    #[must_use]
    pub fn basic(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        let pair = format!("{}:{}", username.into(), password.into());
        self.basic.push(STANDARD.encode(pair).into_bytes());
        self
    }

    /// Accepts `Authorization: Bearer <token>` with this token (call again for more tokens).
    #[must_use]
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.bearer.push(token.into().into_bytes());
        self
    }

    /// Accepts requests for which `check` resolves to `true`, e.g. a token review against an
    /// identity service. The check sees the request headers; copy what it needs before the
    /// returned future.
    ///
    /// ```
    /// use osb_server::Auth;
    /// let auth = Auth::new().check(|headers| {
    ///     let ok = headers.get("x-api-key").is_some_and(|v| v == "k-1");
    ///     async move { ok }
    /// });
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn check<F, Fut>(mut self, check: F) -> Self
    where
        F: Fn(&HeaderMap) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.check = Some(Arc::new(move |headers: &HeaderMap| -> CheckFuture {
            Box::pin(check(headers))
        }));
        self
    }

    /// Whether any method is configured.
    pub fn is_configured(&self) -> bool {
        !self.basic.is_empty() || !self.bearer.is_empty() || self.check.is_some()
    }

    pub(crate) fn is_anonymous(&self) -> bool {
        self.anonymous
    }

    /// Checks a request's headers. A custom check must finish before the request's `deadline`
    /// (its instant and the limit, for the description), and a panicking one answers `500`.
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
        deadline: Option<(Instant, Duration)>,
    ) -> Result<(), Rejection> {
        if !self.is_configured() {
            return Ok(());
        }
        if self.matches_static(headers) {
            return Ok(());
        }
        if let Some(check) = &self.check {
            let verdict = AssertUnwindSafe(async { check(headers).await }).catch_unwind();
            let verdict = match deadline {
                Some((at, limit)) => tokio::time::timeout_at(at, verdict)
                    .await
                    .map_err(|_| Rejection::timed_out(limit))?,
                None => verdict.await,
            };
            match verdict {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(_) => {
                    tracing::error!("the authentication check panicked");
                    return Err(Rejection::internal());
                }
            }
        }
        Err(self.unauthorized(headers.contains_key(header::AUTHORIZATION)))
    }

    fn matches_static(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return false;
        };
        let value = value.as_bytes();
        let Some(space) = value.iter().position(|b| *b == b' ') else {
            return false;
        };
        let (scheme, rest) = value.split_at(space);
        let rest = rest.trim_ascii();
        if scheme.eq_ignore_ascii_case(b"basic") && !self.basic.is_empty() {
            // Canonical Base64 is unique (the decoder refuses other paddings and trailing bits),
            // so comparing the encoded form is comparing the credentials, without decoding.
            let mut found = Choice::from(0);
            for expected in &self.basic {
                found |= expected.as_slice().ct_eq(rest);
            }
            return found.into();
        }
        if scheme.eq_ignore_ascii_case(b"bearer") && !self.bearer.is_empty() {
            let mut found = Choice::from(0);
            for token in &self.bearer {
                found |= token.as_slice().ct_eq(rest);
            }
            return found.into();
        }
        false
    }

    fn unauthorized(&self, had_credentials: bool) -> Rejection {
        let description = if had_credentials {
            "The credentials in the Authorization header are not valid for this broker."
        } else {
            "This broker requires authentication; send the credentials the broker was registered with in the Authorization header."
        };
        let mut rejection = Rejection::described(StatusCode::UNAUTHORIZED, description);
        if !self.basic.is_empty() || self.bearer.is_empty() {
            rejection = rejection.with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"osb\", charset=\"UTF-8\""),
            );
        }
        if !self.bearer.is_empty() {
            rejection = rejection.with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"osb\""),
            );
        }
        rejection
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    async fn passes(auth: &Auth, headers: &HeaderMap) -> bool {
        auth.authenticate(headers, None).await.is_ok()
    }

    fn basic(user: &str, pass: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
    }

    #[tokio::test]
    async fn basic_and_bearer() {
        let auth = Auth::new()
            .basic("a", "1")
            .basic("b", "2:with:colons")
            .bearer("tok");
        assert!(passes(&auth, &headers(&basic("a", "1"))).await);
        assert!(passes(&auth, &headers(&basic("b", "2:with:colons"))).await);
        assert!(!passes(&auth, &headers(&basic("a", "2"))).await);
        assert!(!passes(&auth, &headers(&basic("", ""))).await);
        assert!(!passes(&auth, &headers("basic !!!")).await);
        assert!(passes(&auth, &headers("Bearer tok")).await);
        assert!(passes(&auth, &headers("bearer tok")).await);
        assert!(!passes(&auth, &headers("Bearer to")).await);
        assert!(!passes(&auth, &headers("Digest x")).await);
        let err = auth.authenticate(&HeaderMap::new(), None).await;
        let err = err.unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        assert_eq!(err.headers.len(), 2);
    }

    #[test]
    fn debug_redacts_credentials_and_tokens() {
        let auth = Auth::new()
            .basic("platform", "pw-s3cret-1")
            .bearer("tok-s3cret-2");
        let text = format!("{auth:?}");
        let encoded = STANDARD.encode("platform:pw-s3cret-1");
        for secret in ["pw-s3cret-1", "tok-s3cret-2", encoded.as_str()] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("basic_credentials: 1"), "{text}");
    }

    #[tokio::test]
    async fn custom_check_and_unconfigured() {
        let auth = Auth::new().check(|h| {
            let ok = h.contains_key("x-ok");
            async move { ok }
        });
        let mut h = HeaderMap::new();
        assert!(!passes(&auth, &h).await);
        h.insert("x-ok", HeaderValue::from_static("1"));
        assert!(passes(&auth, &h).await);
        assert!(passes(&Auth::new(), &HeaderMap::new()).await);
    }
}
