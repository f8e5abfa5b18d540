//! osb-server's header extractors and `BrokerError` on a broker's own axum routes, beside the
//! OSB routes: the same checks, statuses and OSB error bodies as the OSB routes give.

use axum::body::Body;
use axum::routing::get;
use axum::{Json, Router};
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use osb_server::types::ApiVersion;
use osb_server::{
    ApiVersionHeader, BrokerError, OriginatingIdentityHeader, RequestIdentityHeader, VersionPolicy,
};
use serde_json::{Value, json};
use tower::ServiceExt as _;

async fn usage(
    version: ApiVersionHeader,
    identity: Option<OriginatingIdentityHeader>,
    request: Option<RequestIdentityHeader>,
) -> Result<Json<Value>, BrokerError> {
    if let Some(OriginatingIdentityHeader(identity)) = &identity
        && identity.platform() == "forbidden"
    {
        return Err(BrokerError::conflict("this platform may not read usage"));
    }
    Ok(Json(json!({
        "declared": version.declared.to_string(),
        "effective": version.effective.to_string(),
        "platform": identity.map(|i| i.0.platform().to_string()),
        "request": request.map(|r| r.0),
    })))
}

async fn audit(
    OriginatingIdentityHeader(identity): OriginatingIdentityHeader,
    RequestIdentityHeader(request): RequestIdentityHeader,
) -> Json<Value> {
    Json(json!({"platform": identity.platform(), "request": request}))
}

async fn strict(headers: http::HeaderMap) -> Result<String, osb_server::Rejection> {
    let version = VersionPolicy::new()
        .minimum(ApiVersion::V2_16)
        .check(&headers)?;
    Ok(version.declared.to_string())
}

fn app() -> Router {
    Router::new()
        .route("/usage", get(usage))
        .route("/audit", get(audit))
        .route("/strict", get(strict))
}

fn identity(platform: &str) -> String {
    use base64::Engine as _;
    format!(
        "{platform} {}",
        base64::engine::general_purpose::STANDARD.encode(br#"{"user_id":"u-1"}"#)
    )
}

async fn call(path: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

#[tokio::test]
async fn headers_are_read_as_the_osb_routes_read_them() {
    let cf = identity("cloudfoundry");
    let (status, body) = call(
        "/usage",
        &[
            ("X-Broker-API-Version", "2.19"),
            ("X-Broker-API-Originating-Identity", &cf),
            ("X-Broker-API-Request-Identity", "req-42"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["declared"], "2.19");
    assert_eq!(body["effective"], ApiVersion::LATEST.to_string());
    assert_eq!(body["platform"], "cloudfoundry");
    assert_eq!(body["request"], "req-42");

    // Optional headers may be absent.
    let (status, body) = call("/usage", &[("X-Broker-API-Version", "2.13")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["platform"], Value::Null);
    assert_eq!(body["request"], Value::Null);
}

#[tokio::test]
async fn bad_headers_get_osb_error_bodies() {
    for (path, headers, status, words) in [
        (
            "/usage",
            vec![],
            412,
            "X-Broker-API-Version header is missing",
        ),
        (
            "/usage",
            vec![("X-Broker-API-Version", "two")],
            412,
            "is not MAJOR.MINOR",
        ),
        (
            "/usage",
            vec![("X-Broker-API-Version", "3.0")],
            412,
            "not supported",
        ),
        (
            "/usage",
            vec![
                ("X-Broker-API-Version", "2.17"),
                (
                    "X-Broker-API-Originating-Identity",
                    "cloudfoundry not-base64!",
                ),
            ],
            400,
            "Originating-Identity header is malformed",
        ),
        (
            "/audit",
            vec![("X-Broker-API-Request-Identity", "r")],
            400,
            "X-Broker-API-Originating-Identity header is required",
        ),
        (
            "/strict",
            vec![("X-Broker-API-Version", "2.15")],
            412,
            "2.16 to",
        ),
    ] {
        let (got, body) = call(path, &headers).await;
        assert_eq!(got.as_u16(), status, "{path} {headers:?}: {body}");
        let description = body["description"].as_str().unwrap_or_default();
        assert!(description.contains(words), "{path} {headers:?}: {body}");
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "only a description: {body}"
        );
    }

    let cf = identity("cloudfoundry");
    let (status, body) = call(
        "/audit",
        &[
            ("X-Broker-API-Originating-Identity", &cf),
            ("X-Broker-API-Request-Identity", "r-1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"platform": "cloudfoundry", "request": "r-1"}));
    let (status, body) = call("/strict", &[("X-Broker-API-Version", "2.16")]).await;
    assert_eq!(
        (status, body.to_string()),
        (StatusCode::OK, "2.16".to_string())
    );
}

#[tokio::test]
async fn broker_errors_answer_as_on_osb_routes() {
    let forbidden = identity("forbidden");
    let (status, body) = call(
        "/usage",
        &[
            ("X-Broker-API-Version", "2.17"),
            ("X-Broker-API-Originating-Identity", &forbidden),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({"description": "this platform may not read usage"})
    );

    // An internal error is logged, never sent.
    let response =
        axum::response::IntoResponse::into_response(BrokerError::internal("disk on fire"));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("disk on fire"), "{text}");
    assert!(text.contains("description"), "{text}");
}
