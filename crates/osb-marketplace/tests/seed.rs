//! Seed 003: `POST /v2/services` replayed as its cURL sends it, through the real HTTP stack.

mod common;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The seed's request body, byte for byte as its cURL sends it (`-d` with newlines).
const BODY: &str = "{\n\"label\": \"SomeMysqlService\",\n\"description\": \"Mysql stores things for you\",\n\"provider\": \"MySql Provider\",\n\"version\": \"2.0\",\n\"url\": \"http://myql.provider.com\"\n}";

/// The seed's token: HS256, for user `uaa-id-13`, expired in 2014.
const SEED_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoidWFhLWlkLTEzIiwiZW1haWwiOiJlbWFpbC0xM0Bzb21lZG9tYWluLmNvbSIsInNjb3BlIjpbImNsb3VkX2NvbnRyb2xsZXIuYWRtaW4iXSwiYXVkIjpbImNsb3VkX2NvbnRyb2xsZXIiXSwiZXhwIjoxNDE1NzU0MTMwfQ.vzGqGwaQOLKTzyykTv8vFdrNixtMvDsg2LjY9vzFPB4";

/// Sends the seed's request over a raw TCP connection (so that the foreign `Host`, the form
/// content type and the empty `Cookie` go out exactly so) and returns status, headers and body.
async fn replay(url: &str, token: &str) -> (u16, String, Value) {
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /v2/services HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\
         Authorization: bearer {token}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Cookie: \r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), serde_json::from_str(body).unwrap())
}

#[tokio::test]
async fn the_seeds_request_creates_the_service_and_answers_the_seeds_body() {
    let m = common::start().await;
    // The seed's own token, minted again with a future expiry and the configured key.
    let claims: osb_marketplace::auth::Claims = serde_json::from_value(json!({
        "user_id": "uaa-id-13", "email": "email-13@somedomain.com",
        "scope": ["cloud_controller.admin"], "aud": ["cloud_controller"],
        "exp": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 600,
    }))
    .unwrap();
    let token = osb_marketplace::auth::TokenKeys::hs256(common::KEY)
        .mint(&claims)
        .unwrap();
    let (status, head, body) = replay(&m.url, &token).await;
    assert_eq!(status, 201, "{head}\n{body}");

    // The seed's example response; only guid, url, created_at and service_plans_url may differ.
    let expected = json!({
        "metadata": {
            "guid": "b5b5748d-7659-4f22-aa15-c219947cd425",
            "url": "/v2/services/b5b5748d-7659-4f22-aa15-c219947cd425",
            "created_at": "2014-11-05T01:02:10+00:00",
            "updated_at": null
        },
        "entity": {
            "label": "SomeMysqlService", "provider": "MySql Provider", "url": "http://myql.provider.com",
            "description": "Mysql stores things for you", "long_description": null, "version": "2.0",
            "info_url": null, "active": false, "bindable": true, "unique_id": null, "extra": null,
            "tags": [], "requires": [], "documentation_url": null, "service_broker_guid": null,
            "plan_updateable": false,
            "service_plans_url": "/v2/services/b5b5748d-7659-4f22-aa15-c219947cd425/service_plans"
        }
    });
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&body), keys(&expected));
    assert_eq!(keys(&body["metadata"]), keys(&expected["metadata"]));
    assert_eq!(
        keys(&body["entity"]),
        keys(&expected["entity"]),
        "same fields, in the seed's order"
    );
    for (field, value) in expected["entity"].as_object().unwrap() {
        if field != "service_plans_url" {
            assert_eq!(&body["entity"][field], value, "entity.{field}");
        }
    }
    assert_eq!(body["metadata"]["updated_at"], Value::Null);

    // What may differ has the seed's shape.
    let guid = body["metadata"]["guid"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(guid).is_ok());
    assert_eq!(body["metadata"]["url"], format!("/v2/services/{guid}"));
    assert_eq!(
        body["entity"]["service_plans_url"],
        format!("/v2/services/{guid}/service_plans")
    );
    let created = body["metadata"]["created_at"].as_str().unwrap();
    assert!(
        created.ends_with("+00:00")
            && humantime::parse_rfc3339(&created.replace("+00:00", "Z")).is_ok(),
        "{created}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("location: /v2/services/{guid}"))
    );

    // It is stored: the service reads back, and the same label is now taken.
    let (status, shown) = m.get(&format!("/v2/services/{guid}")).await;
    assert_eq!(status, 200);
    assert_eq!(shown["entity"]["label"], "SomeMysqlService");
    assert_eq!(shown["entity"]["service_broker_name"], Value::Null);
    let (status, _, again) = replay(&m.url, &token).await;
    assert_eq!(
        (status, again["error_code"].as_str()),
        (400, Some("CF-ServiceLabelTaken"))
    );
}

#[tokio::test]
async fn the_seeds_own_token_is_refused_as_expired_and_nothing_is_created() {
    let m = common::start().await;
    let (status, _, body) = replay(&m.url, SEED_TOKEN).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code": 1000, "description": "Invalid Auth Token", "error_code": "CF-InvalidAuthToken"})
    );
    assert!(m.snapshot().await.is_empty());
}

#[tokio::test]
async fn defaults_and_every_field_of_the_seed_are_kept() {
    let m = common::start().await;
    let (status, body) = m
        .post(
            "/v2/services",
            json!({
                "label": "full", "description": "d", "long_description": "ld",
                "info_url": "http://info", "documentation_url": "http://docs", "timeout": 30,
                "active": true, "bindable": false, "extra": "{\"providerDisplayName\":\"P\"}",
                "unique_id": "u-1", "tags": ["a", "b"], "requires": ["syslog_drain"],
                "provider": "p", "version": "1", "url": "http://p"
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let e = &body["entity"];
    assert_eq!(
        (
            e["active"].clone(),
            e["bindable"].clone(),
            e["tags"].clone(),
            e["requires"].clone()
        ),
        (
            json!(true),
            json!(false),
            json!(["a", "b"]),
            json!(["syslog_drain"])
        )
    );
    assert_eq!(e["extra"], "{\"providerDisplayName\":\"P\"}");
    assert_eq!(
        (e["info_url"].clone(), e["documentation_url"].clone()),
        (json!("http://info"), json!("http://docs"))
    );
    assert_eq!(
        (e["unique_id"].clone(), e["long_description"].clone()),
        (json!("u-1"), json!("ld"))
    );

    // An object for `extra` is kept as its JSON text, as Cloud Controller stores it.
    let (status, body) = m
        .post("/v2/services", json!({"label": "obj", "extra": {"k": 1}}))
        .await;
    assert_eq!(
        (status, body["entity"]["extra"].clone()),
        (201, json!("{\"k\":1}"))
    );
    // Same label, other provider: allowed (a label is taken per provider).
    let (status, _) = m
        .post(
            "/v2/services",
            json!({"label": "full", "provider": "other"}),
        )
        .await;
    assert_eq!(status, 201);
}
