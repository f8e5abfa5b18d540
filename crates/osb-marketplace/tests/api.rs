//! Authentication on every endpoint, pagination and filters, and bad input.

mod common;

use std::time::Duration;

use osb_marketplace::auth::{Claims, TokenKeys};
use serde_json::{Value, json};

/// Every route, with whether a reader is refused (true: it needs `write` or `admin`).
async fn routes(m: &common::Running) -> Vec<(&'static str, String, bool)> {
    let broker = common::fake_broker(common::catalog(("svc-1", "db"), &[("p-1", "small")])).await;
    let (_, b) = m.register("fake", &broker.url(), "user", "pass").await;
    let broker_guid = common::guid(&b);
    let (_, s) = m.get("/v2/services").await;
    let service = common::guid(&s["resources"][0]);
    let (_, p) = m.get("/v2/service_plans").await;
    let plan = common::guid(&p["resources"][0]);
    vec![
        ("GET", "/v2/services".into(), false),
        ("POST", "/v2/services".into(), true),
        ("GET", format!("/v2/services/{service}"), false),
        ("DELETE", format!("/v2/services/{service}"), true),
        (
            "GET",
            format!("/v2/services/{service}/service_plans"),
            false,
        ),
        ("GET", "/v2/service_brokers".into(), false),
        ("POST", "/v2/service_brokers".into(), true),
        ("GET", format!("/v2/service_brokers/{broker_guid}"), false),
        ("PUT", format!("/v2/service_brokers/{broker_guid}"), true),
        ("DELETE", format!("/v2/service_brokers/{broker_guid}"), true),
        ("GET", "/v2/service_plans".into(), false),
        ("GET", format!("/v2/service_plans/{plan}"), false),
        ("PUT", format!("/v2/service_plans/{plan}"), true),
        ("GET", "/v2/service_instances".into(), false),
        ("POST", "/v2/service_instances".into(), true),
        ("GET", "/v2/service_instances/some-guid".into(), false),
        ("PUT", "/v2/service_instances/some-guid".into(), true),
        ("DELETE", "/v2/service_instances/some-guid".into(), true),
        (
            "GET",
            "/v2/service_instances/some-guid/parameters".into(),
            true,
        ),
        (
            "GET",
            "/v2/service_instances/some-guid/service_bindings".into(),
            false,
        ),
        ("GET", "/v2/service_bindings".into(), false),
        ("POST", "/v2/service_bindings".into(), true),
        ("GET", "/v2/service_bindings/some-guid".into(), false),
        ("DELETE", "/v2/service_bindings/some-guid".into(), true),
        (
            "GET",
            "/v2/service_bindings/some-guid/parameters".into(),
            true,
        ),
    ]
}

#[tokio::test]
async fn every_endpoint_refuses_missing_expired_foreign_and_underscoped_tokens() {
    let m = common::start().await;
    let routes = routes(&m).await;
    let before = m.snapshot().await;
    let mut expired = Claims::new("u", vec!["cloud_controller.admin".into()], Duration::ZERO);
    expired.exp -= 3600;
    let expired = TokenKeys::hs256(common::KEY).mint(&expired).unwrap();
    let foreign = TokenKeys::hs256(b"another key")
        .mint(&Claims::new(
            "u",
            vec!["cloud_controller.admin".into()],
            Duration::from_secs(600),
        ))
        .unwrap();
    let body = Some(json!({"label": "x", "public": true, "name": "x"}));
    for (method, path, admin_only) in &routes {
        let send = |auth: Option<String>| {
            let mut r = m
                .http
                .request(method.parse().unwrap(), format!("{}{path}", m.url))
                .body(body.clone().unwrap().to_string());
            if let Some(auth) = auth {
                r = r.header("authorization", auth);
            }
            async move {
                let response = r.send().await.unwrap();
                let status = response.status().as_u16();
                (
                    status,
                    serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap(),
                )
            }
        };
        let cases = [
            (None, 401, 10002, "CF-NotAuthenticated"),
            (
                Some(format!("bearer {expired}")),
                401,
                1000,
                "CF-InvalidAuthToken",
            ),
            (
                Some(format!("bearer {foreign}")),
                401,
                1000,
                "CF-InvalidAuthToken",
            ),
            (
                Some("bearer not.a.jwt".to_owned()),
                401,
                1000,
                "CF-InvalidAuthToken",
            ),
            (
                Some("Basic YWRtaW46cHc=".to_owned()),
                401,
                1000,
                "CF-InvalidAuthToken",
            ),
            (
                Some(format!("bearer {}", common::token(&["openid"]))),
                403,
                10003,
                "CF-NotAuthorized",
            ),
        ];
        for (auth, status, code, name) in cases {
            let (got, body) = send(auth.clone()).await;
            assert_eq!(
                (got, body["code"].clone(), body["error_code"].clone()),
                (status, json!(code), json!(name)),
                "{method} {path} with {auth:?}"
            );
        }
        if *admin_only {
            let (got, body) = send(Some(format!("bearer {}", common::reader()))).await;
            assert_eq!(
                (got, body["error_code"].as_str()),
                (403, Some("CF-NotAuthorized")),
                "{method} {path} as a reader"
            );
        }
    }
    assert_eq!(m.snapshot().await, before);
    // A reader reads (what exists: 200; what does not: 404, past authentication).
    for (method, path, admin_only) in &routes {
        if !admin_only {
            let (status, _) = m.call(method, path, &common::reader(), None).await;
            let expected = if path.contains("some-guid") { 404 } else { 200 };
            assert_eq!(status, expected, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn pages_filters_and_their_edges() {
    let m = common::start().await;
    for i in 0..7 {
        let (status, _) = m
            .post("/v2/services", json!({"label": format!("svc-{i}"), "active": i % 2 == 0, "unique_id": format!("u-{i}")}))
            .await;
        assert_eq!(status, 201);
    }
    let labels = |body: &Value| -> Vec<String> {
        body["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["entity"]["label"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, all) = m.get("/v2/services").await;
    assert_eq!(
        (all["total_results"].clone(), all["total_pages"].clone()),
        (json!(7), json!(1))
    );
    assert_eq!(
        (all["prev_url"].clone(), all["next_url"].clone()),
        (Value::Null, Value::Null)
    );

    // 7 results, 3 per page: pages 1 (next only), 2 (both), 3 (one result, prev only), 4 (empty).
    let (_, p1) = m.get("/v2/services?results-per-page=3").await;
    assert_eq!(labels(&p1), ["svc-0", "svc-1", "svc-2"]);
    assert_eq!(p1["total_pages"], 3);
    assert_eq!(p1["prev_url"], Value::Null);
    let (_, p2) = m.get(p1["next_url"].as_str().unwrap()).await;
    assert_eq!(labels(&p2), ["svc-3", "svc-4", "svc-5"]);
    let (_, p3) = m.get(p2["next_url"].as_str().unwrap()).await;
    assert_eq!(labels(&p3), ["svc-6"]);
    assert_eq!(p3["next_url"], Value::Null);
    assert_eq!(
        p3["prev_url"],
        "/v2/services?order-direction=asc&page=2&results-per-page=3"
    );
    let (_, p4) = m.get("/v2/services?results-per-page=3&page=4").await;
    assert!(labels(&p4).is_empty());
    assert_eq!(p4["total_results"], 7);
    let (_, desc) = m
        .get("/v2/services?results-per-page=2&order-direction=desc")
        .await;
    assert_eq!(labels(&desc), ["svc-6", "svc-5"]);
    assert_eq!(
        desc["next_url"],
        "/v2/services?order-direction=desc&page=2&results-per-page=2"
    );
    let (_, max) = m.get("/v2/services?results-per-page=100").await;
    assert_eq!(labels(&max).len(), 7);

    // Filters, with the page links keeping them.
    let (_, active) = m.get("/v2/services?q=active:true&results-per-page=2").await;
    assert_eq!(labels(&active), ["svc-0", "svc-2"]);
    assert_eq!(active["total_results"], 4);
    assert_eq!(
        active["next_url"],
        "/v2/services?order-direction=asc&page=2&results-per-page=2&q=active%3Atrue"
    );
    let (_, next) = m.get(active["next_url"].as_str().unwrap()).await;
    assert_eq!(labels(&next), ["svc-4", "svc-6"]);
    let (_, one) = m.get("/v2/services?q=label:svc-3").await;
    assert_eq!(labels(&one), ["svc-3"]);
    let (_, some) = m.get("/v2/services?q=label%20IN%20svc-1,svc-5,nope").await;
    assert_eq!(labels(&some), ["svc-1", "svc-5"]);
    let (_, ge) = m.get("/v2/services?q=label>=svc-5").await;
    assert_eq!(labels(&ge), ["svc-5", "svc-6"]);
    let (_, lt) = m.get("/v2/services?q=label<svc-2").await;
    assert_eq!(labels(&lt), ["svc-0", "svc-1"]);
    let (_, both) = m.get("/v2/services?q=active:false&q=unique_id:u-3").await;
    assert_eq!(labels(&both), ["svc-3"]);
    let (_, semi) = m.get("/v2/services?q=active:false;label<=svc-3").await;
    assert_eq!(labels(&semi), ["svc-1", "svc-3"]);
    let (_, none) = m.get("/v2/services?q=service_broker_guid:nope").await;
    assert_eq!(
        (none["total_results"].clone(), none["total_pages"].clone()),
        (json!(0), json!(0))
    );
}

/// Requests that must each be refused with a CF error body, leaving the database unchanged.
#[tokio::test]
async fn bad_input_gets_a_cf_error_and_changes_nothing() {
    let m = common::start().await;
    let broker = common::fake_broker(common::catalog(("svc-1", "db"), &[("p-1", "small")])).await;
    let (_, b) = m.register("fake", &broker.url(), "user", "pass").await;
    let broker_guid = common::guid(&b);
    let (_, s) = m
        .post(
            "/v2/services",
            json!({"label": "taken", "unique_id": "uid-taken"}),
        )
        .await;
    let service = common::guid(&s);
    let (_, p) = m.get("/v2/service_plans").await;
    let plan = common::guid(&p["resources"][0]);
    let missing = "11111111-2222-3333-4444-555555555555";
    let big = format!("{{\"label\": \"{}\"}}", "x".repeat(2 << 20));
    let other = common::fake_broker(common::catalog(("svc-2", "other"), &[("p-2", "small")])).await;
    let broker_body = |patch: Value| {
        let mut body = json!({"name": "new", "broker_url": other.url(), "auth_username": "user", "auth_password": "pass"});
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body.to_string()
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        // POST /v2/services
        ("POST", "/v2/services".into(), "{".into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), "not json".into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), "[1, 2]".into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), "\"label\"".into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), "".into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), "{}".into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": ""}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": 5}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": null}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": "a", "active": "yes"}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": "a", "bindable": 1}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": "a", "tags": "x"}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": "a", "tags": [1]}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": "a", "requires": {}}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": "a", "timeout": "30"}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": "a", "timeout": 1.5}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": "a", "extra": 7}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": "a", "description": []}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), r#"{"label": "a", "service_broker_guid": 3}"#.into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/services".into(), format!(r#"{{"label": "a", "service_broker_guid": "{missing}"}}"#), 400, "CF-InvalidRelation"),
        ("POST", "/v2/services".into(), r#"{"label": "taken"}"#.into(), 400, "CF-ServiceLabelTaken"),
        ("POST", "/v2/services".into(), r#"{"label": "a", "unique_id": "uid-taken"}"#.into(), 400, "CF-ServiceInvalid"),
        ("POST", "/v2/services".into(), r#"{"label": "db"}"#.into(), 400, "CF-ServiceLabelTaken"),
        ("POST", "/v2/services".into(), big.clone(), 413, "CF-InvalidRequest"),
        // Services
        ("GET", format!("/v2/services/{missing}"), String::new(), 404, "CF-ServiceNotFound"),
        ("GET", "/v2/services/not-a-guid".into(), String::new(), 404, "CF-ServiceNotFound"),
        ("DELETE", format!("/v2/services/{missing}"), String::new(), 404, "CF-ServiceNotFound"),
        ("GET", format!("/v2/services/{missing}/service_plans"), String::new(), 404, "CF-ServiceNotFound"),
        ("GET", "/v2/services?page=0".into(), String::new(), 400, "CF-BadQueryParameter"),
        ("GET", "/v2/services?page=-1".into(), String::new(), 400, "CF-BadQueryParameter"),
        ("GET", "/v2/services?results-per-page=101".into(), String::new(), 400, "CF-BadQueryParameter"),
        ("GET", "/v2/services?results-per-page=abc".into(), String::new(), 400, "CF-BadQueryParameter"),
        ("GET", "/v2/services?order-direction=sideways".into(), String::new(), 400, "CF-BadQueryParameter"),
        ("GET", "/v2/services?q=nonsense".into(), String::new(), 400, "CF-BadQueryParameter"),
        ("GET", "/v2/services?q=guid:x".into(), String::new(), 400, "CF-BadQueryParameter"),
        ("GET", "/v2/services?q=active:maybe".into(), String::new(), 400, "CF-BadQueryParameter"),
        ("GET", format!("/v2/services/{service}/service_plans?q=label:x"), String::new(), 400, "CF-BadQueryParameter"),
        // Brokers
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"name": null})), 400, "CF-MessageParseError"),
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"broker_url": null})), 400, "CF-MessageParseError"),
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"auth_username": null})), 400, "CF-MessageParseError"),
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"auth_password": null})), 400, "CF-MessageParseError"),
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"auth_password": 12})), 400, "CF-MessageParseError"),
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"space_guid": []})), 400, "CF-MessageParseError"),
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"name": "fake"})), 400, "CF-ServiceBrokerNameTaken"),
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"broker_url": broker.url()})), 400, "CF-ServiceBrokerUrlTaken"),
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"broker_url": "ftp://x"})), 400, "CF-ServiceBrokerUrlInvalid"),
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"broker_url": "not a url"})), 400, "CF-ServiceBrokerUrlInvalid"),
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"broker_url": "/relative"})), 400, "CF-ServiceBrokerUrlInvalid"),
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"broker_url": "http://u:p@host"})), 400, "CF-ServiceBrokerUrlBasicAuthNotSupported"),
        ("POST", "/v2/service_brokers".into(), broker_body(json!({"auth_password": "wrong"})), 502, "CF-ServiceBrokerApiAuthenticationFailed"),
        ("POST", "/v2/service_brokers".into(), "{\"name\": ".into(), 400, "CF-MessageParseError"),
        ("POST", "/v2/service_brokers".into(), big.clone(), 413, "CF-InvalidRequest"),
        ("GET", format!("/v2/service_brokers/{missing}"), String::new(), 404, "CF-ServiceBrokerNotFound"),
        ("PUT", format!("/v2/service_brokers/{missing}"), "{}".into(), 404, "CF-ServiceBrokerNotFound"),
        ("DELETE", format!("/v2/service_brokers/{missing}"), String::new(), 404, "CF-ServiceBrokerNotFound"),
        ("PUT", format!("/v2/service_brokers/{broker_guid}"), r#"{"name": ""}"#.into(), 400, "CF-MessageParseError"),
        ("PUT", format!("/v2/service_brokers/{broker_guid}"), r#"{"name": 1}"#.into(), 400, "CF-MessageParseError"),
        ("PUT", format!("/v2/service_brokers/{broker_guid}"), r#"{"broker_url": "gopher://x"}"#.into(), 400, "CF-ServiceBrokerUrlInvalid"),
        ("PUT", format!("/v2/service_brokers/{broker_guid}"), r#"{"space_guid": "other"}"#.into(), 400, "CF-ServiceBrokerInvalid"),
        ("PUT", format!("/v2/service_brokers/{broker_guid}"), "[]".into(), 400, "CF-MessageParseError"),
        ("GET", "/v2/service_brokers?q=broker_url:x".into(), String::new(), 400, "CF-BadQueryParameter"),
        // Plans
        ("GET", format!("/v2/service_plans/{missing}"), String::new(), 404, "CF-ServicePlanNotFound"),
        ("PUT", format!("/v2/service_plans/{missing}"), r#"{"public": true}"#.into(), 404, "CF-ServicePlanNotFound"),
        ("PUT", format!("/v2/service_plans/{plan}"), r#"{"public": "yes"}"#.into(), 400, "CF-MessageParseError"),
        ("PUT", format!("/v2/service_plans/{plan}"), "{public}".into(), 400, "CF-MessageParseError"),
        ("GET", "/v2/service_plans?q=active:1".into(), String::new(), 400, "CF-BadQueryParameter"),
        ("GET", "/v2/service_plans?q=label:db".into(), String::new(), 400, "CF-BadQueryParameter"),
        // Routes and methods that do not exist.
        ("GET", "/v2/nothing".into(), String::new(), 404, "CF-NotFound"),
        ("PATCH", "/v2/services".into(), String::new(), 404, "CF-NotFound"),
        ("PUT", format!("/v2/services/{service}"), "{}".into(), 404, "CF-NotFound"),
        ("POST", "/v2/service_plans".into(), "{}".into(), 404, "CF-NotFound"),
    ];
    assert!(cases.len() >= 40);
    let before = m.snapshot().await;
    for (method, path, body, status, code) in &cases {
        let response = m
            .http
            .request(method.parse().unwrap(), format!("{}{path}", m.url))
            .bearer_auth(common::admin())
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let got = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert_eq!(
            (got, body["error_code"].as_str().unwrap_or("")),
            (*status, *code),
            "{method} {path}: {body}"
        );
        assert!(
            body["code"].is_u64() && body["description"].is_string(),
            "{method} {path}: {body}"
        );
    }
    assert_eq!(
        m.snapshot().await,
        before,
        "a refused request changed the database"
    );
}

#[tokio::test]
async fn a_plan_is_made_public_and_private() {
    let m = common::start().await;
    let broker = common::fake_broker(common::catalog(("svc-1", "db"), &[("p-1", "small")])).await;
    m.register("fake", &broker.url(), "user", "pass").await;
    let (_, plans) = m.get("/v2/service_plans").await;
    let guid = plans["resources"][0]["metadata"]["guid"].as_str().unwrap();
    for public in [true, false] {
        let (status, body) = m
            .call(
                "PUT",
                &format!("/v2/service_plans/{guid}"),
                &common::admin(),
                Some(json!({"public": public})),
            )
            .await;
        assert_eq!(
            (status, body["entity"]["public"].clone()),
            (201, json!(public))
        );
        let (_, shown) = m.get(&format!("/v2/service_plans/{guid}")).await;
        assert_eq!(shown["entity"]["public"], public);
        assert!(shown["metadata"]["updated_at"].is_string());
    }
}

#[test]
fn the_token_command_mints_a_token_the_marketplace_accepts() {
    let output = assert_cmd::Command::cargo_bin("osb-marketplace")
        .unwrap()
        .env(
            "OSB_MARKETPLACE_TOKEN_KEY",
            std::str::from_utf8(common::KEY).unwrap(),
        )
        .args([
            "token",
            "--user-id",
            "uaa-id-13",
            "--scope",
            "cloud_controller.read",
            "--scope",
            "cloud_controller.write",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("bearer {}", token.trim()).parse().unwrap(),
    );
    let claims = TokenKeys::hs256(common::KEY)
        .authorize(&headers, osb_marketplace::auth::Scope::Write)
        .unwrap();
    assert_eq!(claims.user_id, "uaa-id-13");
    assert_eq!(
        claims.scope,
        ["cloud_controller.read", "cloud_controller.write"]
    );

    let without_key = assert_cmd::Command::cargo_bin("osb-marketplace")
        .unwrap()
        .env_remove("OSB_MARKETPLACE_TOKEN_KEY")
        .args(["token", "--scope", "cloud_controller.admin"])
        .output()
        .unwrap();
    assert_eq!(without_key.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&without_key.stderr).contains("OSB_MARKETPLACE_TOKEN_KEY"));
}

#[tokio::test]
async fn rs256_tokens_are_verified_with_the_issuers_public_key() {
    // A key pair made for these tests only: the marketplace holds the public half, as it would
    // hold UAA's.
    let public = include_bytes!("fixtures/rs256-test-public.pem");
    let private = include_bytes!("fixtures/rs256-test-private.pem");
    let m = common::start_with(|mut c| {
        c.token_keys = TokenKeys::rs256_public_pem(public).unwrap();
        c
    })
    .await;
    let claims = Claims::new(
        "uaa-user",
        vec!["cloud_controller.read".into()],
        Duration::from_secs(600),
    );
    let sign = |alg, key: &jsonwebtoken::EncodingKey| {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, key).unwrap()
    };
    let rs256 = sign(
        jsonwebtoken::Algorithm::RS256,
        &jsonwebtoken::EncodingKey::from_rsa_pem(private).unwrap(),
    );
    let (status, _) = m.call("GET", "/v2/services", &rs256, None).await;
    assert_eq!(status, 200);
    // An HS256 token signed with the public key as a shared secret (algorithm confusion) is refused.
    let confused = sign(
        jsonwebtoken::Algorithm::HS256,
        &jsonwebtoken::EncodingKey::from_secret(public),
    );
    let (status, body) = m.call("GET", "/v2/services", &confused, None).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (401, Some("CF-InvalidAuthToken"))
    );
    assert!(matches!(
        TokenKeys::rs256_public_pem(b"not a key"),
        Err(osb_marketplace::Error::Config(_))
    ));
}
