//! Turning the parts of a request into typed values, with OSB error bodies for every failure.

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use osb_types::{Context, OriginatingIdentity};
use serde::de::DeserializeOwned;

use crate::error::Rejection;

/// The header names the handlers use: OSB's from `osb_types::header`, plus one platform header.
pub(crate) mod names {
    use http::HeaderName;

    pub(crate) use osb_types::header::{API_VERSION, ORIGINATING_IDENTITY, REQUEST_IDENTITY};

    /// `X-Api-Info-Location` (Cloud Controller).
    pub(crate) const API_INFO_LOCATION: HeaderName = HeaderName::from_static("x-api-info-location");
}

/// The OSB headers of a request besides the version.
#[derive(Debug, Default)]
pub(crate) struct OsbHeaders {
    pub(crate) originating_identity: Option<OriginatingIdentity>,
    pub(crate) request_identity: Option<String>,
    pub(crate) api_info_location: Option<String>,
}

/// The originating identity header, parsed; `None` when absent.
pub(crate) fn originating_identity(
    headers: &HeaderMap,
) -> Result<Option<OriginatingIdentity>, Rejection> {
    let Some(value) = headers.get(names::ORIGINATING_IDENTITY) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        Rejection::bad_request(
            "The X-Broker-API-Originating-Identity header is not ASCII; expected `<platform> <base64 JSON object>`.",
        )
    })?;
    OriginatingIdentity::parse(text).map(Some).map_err(|e| {
        let reason = match e {
            osb_types::Error::InvalidOriginatingIdentity { reason } => reason,
            other => other.to_string(),
        };
        Rejection::bad_request(format!(
            "The X-Broker-API-Originating-Identity header is malformed: {}. Expected `<platform> <base64 of a JSON object>`, e.g. `cloudfoundry eyJ1c2VyX2lkIjoiYWJjIn0=`.",
            reason.trim_end_matches('.')
        ))
    })
}

pub(crate) fn osb_headers(headers: &HeaderMap) -> Result<OsbHeaders, Rejection> {
    let originating_identity = originating_identity(headers)?;
    let text = |name: http::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Ok(OsbHeaders {
        originating_identity,
        request_identity: text(names::REQUEST_IDENTITY),
        api_info_location: text(names::API_INFO_LOCATION),
    })
}

/// The platform of the originating identity must match the body's `context.platform`.
pub(crate) fn identity_matches_context(
    identity: Option<&OriginatingIdentity>,
    context: Option<&Context>,
) -> Result<(), Rejection> {
    let (Some(identity), Some(context)) = (identity, context) else {
        return Ok(());
    };
    match context.platform() {
        Some(platform) if platform != identity.platform() => Err(Rejection::bad_request(format!(
            "The X-Broker-API-Originating-Identity header names platform {:?} but context.platform is {platform:?}; they must match.",
            identity.platform()
        ))),
        _ => Ok(()),
    }
}

pub(crate) fn path_rejection(rejection: PathRejection) -> Rejection {
    Rejection::bad_request(format!(
        "The request path is invalid: {}.",
        rejection.body_text()
    ))
}

pub(crate) fn query_rejection(rejection: QueryRejection, accepted: &[&str]) -> Rejection {
    let text = rejection.body_text();
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    let expected = if accepted.is_empty() {
        String::new()
    } else {
        format!(" This endpoint takes: {}.", accepted.join(", "))
    };
    Rejection::bad_request(format!("The query string is invalid: {detail}.{expected}"))
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// Reads a JSON body into `T`.
///
/// `model` names the body for descriptions, `fields` lists its required fields.
pub(crate) async fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    require_content_type: bool,
    model: &str,
    required: &str,
) -> Result<T, Rejection> {
    match headers.get(header::CONTENT_TYPE) {
        None if require_content_type => {
            return Err(Rejection::bad_request(format!(
                "The Content-Type header is missing; send the {model} as JSON with `Content-Type: application/json`."
            )));
        }
        None => {}
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            if !is_json(text) {
                return Err(Rejection::bad_request(format!(
                    "The Content-Type {:?} is not JSON; send the {model} as JSON with `Content-Type: application/json`.",
                    String::from_utf8_lossy(value.as_bytes())
                )));
            }
        }
    }
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let source = e.into_inner();
            if source
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Err(too_large(limit));
            }
            return Err(Rejection::bad_request(format!(
                "The request body could not be read: {source}."
            )));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Rejection::bad_request(format!(
            "The request body is empty; send the {model} as a JSON object with at least {required}."
        )));
    }
    // Fast path: plain serde_json. Only a body that fails is parsed again with path tracking,
    // to name the offending field in the rejection.
    if let Ok(value) = serde_json::from_slice::<T>(&bytes) {
        return Ok(value);
    }
    match axum::Json::<T>::from_bytes(&bytes) {
        Ok(axum::Json(value)) => Ok(value),
        Err(rejection) => Err(json_rejection(rejection, &bytes, model, required)),
    }
}

fn too_large(limit: usize) -> Rejection {
    Rejection::described(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("The request body is larger than this broker accepts ({limit} bytes)."),
    )
}

fn json_rejection(
    rejection: JsonRejection,
    bytes: &[u8],
    model: &str,
    required: &str,
) -> Rejection {
    let text = rejection.body_text();
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match rejection {
        JsonRejection::JsonSyntaxError(_) => {
            let detail = text
                .strip_prefix("Failed to parse the request body as JSON: ")
                .unwrap_or(&text);
            Rejection::bad_request(format!("The request body is not valid JSON: {detail}."))
                .quoting_input()
        }
        JsonRejection::JsonDataError(_) if first != Some(b'{') => Rejection::bad_request(format!(
            "The request body must be a JSON object (the {model}), with at least {required}."
        )),
        _ => {
            let detail = text
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .unwrap_or(&text);
            Rejection::bad_request(format!(
                "The request body is not a valid {model}: {detail}. Required fields: {required}."
            ))
            .quoting_input()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.osb+json",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/xml",
            "json",
            "",
            "application/+json",
            "application/jsonx",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}
