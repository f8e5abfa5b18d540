//! Raw HTTP for the checks: requests osb-client would refuse to send (bad JSON, no version
//! header, wrong credentials), and a record of each exchange with credentials redacted.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// Which credentials a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthMode {
    /// The configured ones.
    Good,
    /// None at all.
    Missing,
    /// The configured user with a wrong password (or a wrong token).
    Wrong,
}

/// Which `X-Broker-API-Version` a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VersionMode {
    /// The configured version.
    Default,
    /// No header.
    Missing,
    /// This value.
    Value(&'static str),
}

/// The configured credentials.
#[derive(Clone, Debug)]
pub(crate) enum Credentials {
    /// None configured.
    None,
    /// HTTP Basic.
    Basic(String, String),
    /// A bearer token.
    Bearer(String),
}

/// A request to send.
#[derive(Debug)]
pub(crate) struct Req {
    method: reqwest::Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<String>,
    auth: AuthMode,
    version: VersionMode,
    headers: Vec<(&'static str, String)>,
}

impl Req {
    fn new(method: reqwest::Method, path: String) -> Self {
        Req {
            method,
            path,
            query: Vec::new(),
            body: None,
            auth: AuthMode::Good,
            version: VersionMode::Default,
            headers: Vec::new(),
        }
    }

    /// `GET path`.
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Req::new(reqwest::Method::GET, path.into())
    }

    /// `PUT path` with a JSON body.
    pub(crate) fn put(path: impl Into<String>, body: &Value) -> Self {
        Req::new(reqwest::Method::PUT, path.into()).raw(body.to_string())
    }

    /// `PATCH path` with a JSON body.
    pub(crate) fn patch(path: impl Into<String>, body: &Value) -> Self {
        Req::new(reqwest::Method::PATCH, path.into()).raw(body.to_string())
    }

    /// `DELETE path`.
    pub(crate) fn delete(path: impl Into<String>) -> Self {
        Req::new(reqwest::Method::DELETE, path.into())
    }

    /// Adds a query parameter (percent-encoded when sent).
    pub(crate) fn q(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// Adds `accepts_incomplete=true` when `yes`.
    pub(crate) fn accepts_incomplete(self, yes: bool) -> Self {
        if yes {
            self.q("accepts_incomplete", "true")
        } else {
            self
        }
    }

    /// Sets the body text as is.
    pub(crate) fn raw(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the credentials to send.
    pub(crate) fn auth(mut self, auth: AuthMode) -> Self {
        self.auth = auth;
        self
    }

    /// Sets the version header to send.
    pub(crate) fn version(mut self, version: VersionMode) -> Self {
        self.version = version;
        self
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// The request half of an exchange, as reported.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SentRequest {
    /// The method.
    pub(crate) method: String,
    /// Path and query.
    pub(crate) url: String,
    /// The headers that matter, `Authorization` redacted.
    pub(crate) headers: Vec<(String, String)>,
    /// The body, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) body: Option<String>,
}

/// The reply half of an exchange, as reported.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The headers that matter (`Content-Type`, `Retry-After`, `ETag`).
    pub(crate) headers: Vec<(String, String)>,
    /// The body, with binding credentials' values redacted.
    pub(crate) body: String,
}

/// One request and its reply (or why there was none).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Exchange {
    /// What was sent.
    pub(crate) request: SentRequest,
    /// What came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response: Option<Reply>,
    /// Why nothing came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// The reply body as JSON, unredacted (never reported).
    #[serde(skip)]
    json: Option<Value>,
}

impl Exchange {
    /// The status code, or 0 when the request failed.
    pub(crate) fn status(&self) -> u16 {
        self.response.as_ref().map_or(0, |r| r.status)
    }

    /// The reply body as JSON, when it parses.
    pub(crate) fn json(&self) -> Option<&Value> {
        self.json.as_ref()
    }

    /// A field of a JSON object reply.
    pub(crate) fn field(&self, name: &str) -> Option<&Value> {
        self.json.as_ref().and_then(|v| v.get(name))
    }

    /// A reply header.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let reply = self.response.as_ref()?;
        reply
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `PUT /v2/… → 201` or the transport error, for messages.
    pub(crate) fn summary(&self) -> String {
        match &self.response {
            Some(reply) => format!(
                "{} {} → {}",
                self.request.method, self.request.url, reply.status
            ),
            None => format!(
                "{} {} → {}",
                self.request.method,
                self.request.url,
                self.error.as_deref().unwrap_or("no reply")
            ),
        }
    }

    /// Whether the reply is an OSB error object: a JSON object whose `error` and
    /// `description`, when present, are strings. `Err` says what is wrong.
    pub(crate) fn error_body_problem(&self) -> Option<String> {
        let Some(reply) = &self.response else {
            return Some("no reply".into());
        };
        let Some(Value::Object(body)) = &self.json else {
            return Some(format!(
                "the {} reply's body is not a JSON object: {:?}",
                reply.status,
                snippet(&reply.body)
            ));
        };
        for key in ["error", "description"] {
            if let Some(value) = body.get(key)
                && !value.is_string()
            {
                return Some(format!(
                    "`{key}` in the {} reply is not a string",
                    reply.status
                ));
            }
        }
        None
    }
}

/// The first 200 characters of `text`.
pub(crate) fn snippet(text: &str) -> String {
    let mut out: String = text.chars().take(200).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Replaces the values of `credentials` in a reply (keys stay visible).
fn redact(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(Value::Object(credentials)) = value.get_mut("credentials") {
        for v in credentials.values_mut() {
            *v = Value::String("<redacted>".into());
        }
    }
    value
}

/// Sends requests to one broker.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
    credentials: Credentials,
    version: String,
}

impl Http {
    /// A sender for the broker at `base`.
    pub(crate) fn new(
        base: &str,
        credentials: Credentials,
        version: String,
        timeout: Duration,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder().timeout(timeout);
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("--ca-cert: {e}"))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        Ok(Http {
            client,
            base: base.trim_end_matches('/').to_string(),
            credentials,
            version,
        })
    }

    /// Whether credentials are configured.
    pub(crate) fn has_credentials(&self) -> bool {
        !matches!(self.credentials, Credentials::None)
    }

    /// Sends `req` and records the exchange.
    pub(crate) async fn send(&self, req: Req) -> Exchange {
        let mut url = req.path.clone();
        for (i, (key, value)) in req.query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(key);
            url.push('=');
            url.push_str(&encode_component(value));
        }
        let mut builder = self
            .client
            .request(req.method.clone(), format!("{}{url}", self.base));
        let mut shown = Vec::new();
        match req.version {
            VersionMode::Default => {
                builder = builder.header("X-Broker-API-Version", &self.version);
                shown.push(("X-Broker-API-Version".to_string(), self.version.clone()));
            }
            VersionMode::Value(v) => {
                builder = builder.header("X-Broker-API-Version", v);
                shown.push(("X-Broker-API-Version".to_string(), v.to_string()));
            }
            VersionMode::Missing => {}
        }
        let auth_shown = match (&self.credentials, req.auth) {
            (_, AuthMode::Missing) | (Credentials::None, _) => None,
            (Credentials::Basic(user, password), AuthMode::Good) => {
                builder = builder.basic_auth(user, Some(password));
                Some("Basic <redacted>".to_string())
            }
            (Credentials::Basic(user, _), AuthMode::Wrong) => {
                builder = builder.basic_auth(user, Some("osb-check-wrong-password"));
                Some("Basic <redacted: wrong password>".to_string())
            }
            (Credentials::Bearer(token), AuthMode::Good) => {
                builder = builder.bearer_auth(token);
                Some("Bearer <redacted>".to_string())
            }
            (Credentials::Bearer(_), AuthMode::Wrong) => {
                builder = builder.bearer_auth("osb-check-wrong-token");
                Some("Bearer <redacted: wrong token>".to_string())
            }
        };
        if let Some(value) = auth_shown {
            shown.push(("Authorization".to_string(), value));
        }
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
            shown.push((name.to_string(), value.clone()));
        }
        if let Some(body) = &req.body {
            builder = builder
                .header("Content-Type", "application/json")
                .body(body.clone());
            shown.push(("Content-Type".to_string(), "application/json".to_string()));
        }
        let request = SentRequest {
            method: req.method.to_string(),
            url,
            headers: shown,
            body: req.body,
        };
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => {
                return Exchange {
                    request,
                    response: None,
                    error: Some(error_chain(&e)),
                    json: None,
                };
            }
        };
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = ["content-type", "retry-after", "etag"]
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(*name)?;
                Some((
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                ))
            })
            .collect();
        let (body, error) = match response.text().await {
            Ok(text) => (text, None),
            Err(e) => (String::new(), Some(error_chain(&e))),
        };
        let json: Option<Value> = serde_json::from_str(&body).ok();
        let body = match &json {
            Some(value) if value.get("credentials").is_some() => redact(value).to_string(),
            _ => body,
        };
        Exchange {
            request,
            response: Some(Reply {
                status,
                headers,
                body,
            }),
            error,
            json,
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_are_redacted_keys_kept() {
        let value = json!({"credentials": {"uri": "x://secret", "password": "p"}, "other": 1});
        let redacted = redact(&value);
        assert_eq!(
            redacted,
            json!({"credentials": {"uri": "<redacted>", "password": "<redacted>"}, "other": 1})
        );
    }
}

/// Every byte outside RFC 3986 "unreserved" is percent-encoded in a path segment or query value.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a path segment or query value.
pub(crate) fn encode_component(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod encoding_tests {
    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(super::encode_component("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(super::encode_component("Az09-._~"), "Az09-._~");
    }
}
