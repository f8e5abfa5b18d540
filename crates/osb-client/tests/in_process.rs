//! The in-process transport sends what the HTTP transport would: origin-form target under the
//! base path, `Host` from the base URL, the OSB headers, and a sized JSON body.
#![cfg(feature = "in-process")]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use osb_client::{CallOptions, Client, ClientBuilder, Error};
use osb_types::{DeprovisionQuery, InstanceId, ProvisionOutcome, ProvisionQuery};

type Seen = Arc<Mutex<Vec<http::Request<Bytes>>>>;

/// A client on `base` whose broker records each request and answers `status` with `body`.
fn client(
    base: &str,
    status: u16,
    body: &'static str,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> (Seen, Client) {
    let seen = Seen::default();
    let sink = seen.clone();
    let broker = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
        let sink = sink.clone();
        async move {
            let (parts, body_in) = request.into_parts();
            let bytes = body_in.collect().await?.to_bytes();
            sink.lock()
                .unwrap()
                .push(http::Request::from_parts(parts, bytes));
            let mut response = http::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            Ok::<_, Infallible>(response)
        }
    });
    let client = configure(Client::builder(base).service(broker))
        .build()
        .unwrap();
    (seen, client)
}

#[tokio::test]
async fn requests_look_like_http_requests() {
    let (seen, client) = client(
        "http://broker.test:8080/prefix/",
        201,
        r#"{"dashboard_url": "https://d"}"#,
        |b| b.basic_auth("admin", "secret"),
    );
    let body = osb_types::ServiceInstanceProvisionRequest::new("s", "p", "o", "sp");
    let query = ProvisionQuery::new().with_accepts_incomplete(true);
    let outcome = client
        .provision(&InstanceId::new("i 1"), &body, &query, &CallOptions::new())
        .await
        .unwrap();
    assert!(
        matches!(outcome, ProvisionOutcome::Created(_)),
        "{outcome:?}"
    );

    let request = seen.lock().unwrap().pop().unwrap();
    assert_eq!(request.method(), http::Method::PUT);
    assert_eq!(
        request.uri(),
        "/prefix/v2/service_instances/i%201?accepts_incomplete=true"
    );
    let headers = request.headers();
    assert_eq!(headers["host"], "broker.test:8080");
    assert_eq!(headers["x-broker-api-version"], "2.17");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["content-length"], request.body().len().to_string());
    assert!(
        headers["authorization"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    assert!(
        headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("osb-rs/")
    );
    let sent: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(sent["service_id"], "s");
}

#[tokio::test]
async fn replies_over_the_limit_are_cut_off() {
    let padded = r#"{"padding": "0123456789012345678901234567890123456789"}"#;
    let (seen, client) = client("http://broker.test", 200, padded, |b| {
        b.max_response_bytes(16)
    });
    let query = DeprovisionQuery::new("s", "p");
    let err = client
        .deprovision(&InstanceId::new("i"), &query, &CallOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BodyTooLarge { limit: 16, .. }),
        "{err:?}"
    );
    let request = seen.lock().unwrap().pop().unwrap();
    assert_eq!(request.headers()["host"], "broker.test");
    assert!(request.headers().get("content-type").is_none());
}
