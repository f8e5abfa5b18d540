//! Router policies: auth, version header, request identity, catalog ETag, version shaping,
//! body limit, timeout, guards switched off, composition, build-time checks.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::*;
use http::{Method, StatusCode};
use osb_server::types::{ApiVersion, Catalog, Operation};
use osb_server::{Auth, Broker, BrokerError, Guards, VersionPolicy};
use serde_json::{Value, json};

#[tokio::test]
async fn auth_on_every_endpoint() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    for op in Operation::ALL {
        let missing = send(&app, valid_request(op, "ok", Some("2.17"), None)).await;
        assert_eq!(
            missing.status,
            StatusCode::UNAUTHORIZED,
            "{op:?} without credentials"
        );
        assert!(
            missing.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
        assert!(missing.description().contains("requires authentication"));
        for wrong in [
            basic(USER, "wrong"),
            basic("someone", PASS),
            "Bearer s3cret".into(),
            "Basic ###".into(),
        ] {
            let reply = send(&app, valid_request(op, "ok", Some("2.17"), Some(&wrong))).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{op:?} with {wrong}"
            );
            assert!(reply.description().contains("not valid"));
        }
        let right = send(&app, ok_request(op, "ok")).await;
        assert!(
            right.status.is_success(),
            "{op:?} with the right credentials: {}",
            right.status
        );
    }
    assert_eq!(
        recorder.calls().len(),
        Operation::ALL.len() - 1,
        "only authenticated requests reach the broker (the catalog is served from memory)"
    );
}

#[tokio::test]
async fn several_credentials_bearer_tokens_and_checks() {
    let recorder = Recorder::default();
    let auth = Auth::new()
        .basic("old", "1")
        .basic("new", "2")
        .bearer("tok-1");
    let app: Router = Broker::builder(recorder.clone())
        .auth(auth)
        .build()
        .await
        .unwrap();
    for (header, ok) in [
        (basic("old", "1"), true),
        (basic("new", "2"), true),
        (basic("new", "1"), false),
        ("Bearer tok-1".to_string(), true),
        ("bearer tok-1".to_string(), true),
        ("Bearer tok-2".to_string(), false),
    ] {
        let reply = send(
            &app,
            valid_request(Operation::Catalog, "", Some("2.17"), Some(&header)),
        )
        .await;
        assert_eq!(reply.status.is_success(), ok, "{header}");
        if !ok {
            let challenges: Vec<_> = reply.headers.get_all("www-authenticate").iter().collect();
            assert_eq!(challenges.len(), 2, "Basic and Bearer challenges");
        }
    }
    let app: Router = Broker::builder(recorder)
        .auth_check(|headers| {
            let ok = headers.get("x-api-key").is_some_and(|v| v == "k-1");
            async move { ok }
        })
        .build()
        .await
        .unwrap();
    let mut req = valid_request(Operation::Catalog, "", Some("2.17"), None);
    assert_eq!(send(&app, req).await.status, StatusCode::UNAUTHORIZED);
    req = valid_request(Operation::Catalog, "", Some("2.17"), None);
    req.headers_mut()
        .insert("x-api-key", "k-1".parse().unwrap());
    assert_eq!(send(&app, req).await.status, StatusCode::OK);
}

#[tokio::test]
async fn version_policy_matrix() {
    let recorder = Recorder::default();
    let default = app(&recorder).await;
    let lenient = builder(&recorder)
        .version_policy(VersionPolicy::new().missing_header_status(StatusCode::BAD_REQUEST))
        .build()
        .await
        .unwrap();
    let strict = builder(&recorder)
        .version_policy(
            VersionPolicy::new()
                .minimum(ApiVersion::V2_15)
                .refuse_newer(true),
        )
        .build()
        .await
        .unwrap();
    let unenforced = builder(&recorder)
        .version_policy(VersionPolicy::new().enforce_operation_since(false))
        .build()
        .await
        .unwrap();
    let auth = basic(USER, PASS);
    // (router, header, operation, status)
    let matrix: Vec<(&Router, Option<&str>, Operation, u16)> = vec![
        (&default, None, Operation::Catalog, 412),
        (&default, Some("banana"), Operation::Catalog, 412),
        (&default, Some("2"), Operation::Catalog, 412),
        (&default, Some("1.13"), Operation::Catalog, 412),
        (&default, Some("3.0"), Operation::Catalog, 412),
        (&default, Some("2.12"), Operation::Catalog, 412),
        (&default, Some("2.13"), Operation::Catalog, 200),
        (&default, Some("2.14"), Operation::Catalog, 200),
        (&default, Some("2.15"), Operation::Catalog, 200),
        (&default, Some("2.16"), Operation::Catalog, 200),
        (&default, Some("2.17"), Operation::Catalog, 200),
        (&default, Some("2.18"), Operation::Catalog, 200),
        (&default, Some("2.99"), Operation::Provision, 202),
        (&default, Some("2.13"), Operation::FetchInstance, 412),
        (&default, Some("2.13"), Operation::FetchBinding, 412),
        (&default, Some("2.13"), Operation::BindingLastOperation, 412),
        (&default, Some("2.14"), Operation::FetchInstance, 200),
        (
            &default,
            Some("2.13"),
            Operation::InstanceLastOperation,
            200,
        ),
        (&lenient, None, Operation::Catalog, 400),
        (&lenient, Some("x.y"), Operation::Provision, 400),
        (&lenient, Some("3.1"), Operation::Catalog, 412),
        (&strict, Some("2.14"), Operation::Catalog, 412),
        (&strict, Some("2.15"), Operation::Catalog, 200),
        (&strict, Some("2.17"), Operation::Catalog, 200),
        (&strict, Some("2.18"), Operation::Catalog, 412),
        (&unenforced, Some("2.13"), Operation::FetchInstance, 200),
    ];
    for (router, header, op, status) in matrix {
        let reply = send(router, valid_request(op, "async", header, Some(&auth))).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{header:?} {op:?}: {}",
            reply.body
        );
        if status == 412 && op == Operation::Catalog {
            assert!(
                reply.description().contains(" to 2.17"),
                "{}",
                reply.description()
            );
        }
    }
    let reply = send(
        &strict,
        valid_request(Operation::Catalog, "", Some("2.14"), Some(&auth)),
    )
    .await;
    assert!(
        reply.description().contains("2.15 to 2.17"),
        "{}",
        reply.description()
    );
    // A newer minor is treated as the newest known version.
    send(
        &default,
        valid_request(Operation::Provision, "ok", Some("2.42"), Some(&auth)),
    )
    .await;
    let call = recorder.last();
    assert_eq!(call.ctx.api_version(), ApiVersion::LATEST);
    assert_eq!(call.ctx.declared_api_version(), ApiVersion::new(2, 42));
}

#[tokio::test]
async fn invalid_version_policies_refuse_to_build() {
    let recorder = Recorder::default();
    for policy in [
        VersionPolicy::new().missing_header_status(StatusCode::NOT_FOUND),
        VersionPolicy::new().minimum(ApiVersion::new(3, 0)),
    ] {
        let err = builder(&recorder)
            .version_policy(policy)
            .build::<()>()
            .await
            .unwrap_err();
        assert!(
            matches!(err, osb_server::Error::InvalidConfig { .. }),
            "{err}"
        );
    }
}

#[tokio::test]
async fn request_identity_is_echoed_on_every_reply() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let with_identity = |mut req: http::Request<axum::body::Body>| {
        req.headers_mut().insert(
            "x-broker-api-request-identity",
            "e2a1b3c4-id".parse().unwrap(),
        );
        req
    };
    let auth = basic(USER, PASS);
    let mut requests = vec![
        valid_request(Operation::Catalog, "", Some("2.17"), None),
        valid_request(Operation::Catalog, "", None, Some(&auth)),
        empty(request(Method::GET, "/v2/nowhere")),
        empty(request(Method::POST, "/v2/catalog")),
        ok_request(Operation::Provision, "internal"),
        ok_request(Operation::Provision, "conflict"),
    ];
    for op in Operation::ALL {
        requests.push(ok_request(op, "ok"));
    }
    for req in requests {
        let what = format!("{} {}", req.method(), req.uri());
        let reply = send(&app, with_identity(req)).await;
        assert_eq!(
            reply
                .headers
                .get("x-broker-api-request-identity")
                .map(|v| v.to_str().unwrap()),
            Some("e2a1b3c4-id"),
            "{what} ({})",
            reply.status
        );
    }
    let reply = send(&app, ok_request(Operation::Catalog, "")).await;
    assert!(reply.headers.get("x-broker-api-request-identity").is_none());
    send(&app, with_identity(ok_request(Operation::Bind, "ok"))).await;
    assert_eq!(recorder.last().ctx.request_identity(), Some("e2a1b3c4-id"));
}

#[tokio::test]
async fn catalog_etag_and_if_none_match() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let auth = basic(USER, PASS);
    let first = send(&app, ok_request(Operation::Catalog, "")).await;
    let etag = first.headers["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let second = send(&app, ok_request(Operation::Catalog, "")).await;
    assert_eq!(second.headers["etag"], etag.as_str(), "stable");
    assert_eq!(first.raw, second.raw);
    let old = send(
        &app,
        valid_request(Operation::Catalog, "", Some("2.13"), Some(&auth)),
    )
    .await;
    assert_ne!(
        old.headers["etag"],
        etag.as_str(),
        "a 2.13 catalog has other bytes"
    );

    for (if_none_match, status) in [
        (etag.clone(), 304),
        (format!("W/{etag}"), 304),
        (format!("\"nope\", {etag}"), 304),
        ("*".to_string(), 304),
        ("\"nope\"".to_string(), 200),
        (old.headers["etag"].to_str().unwrap().to_string(), 200),
    ] {
        let req =
            empty(request(Method::GET, "/v2/catalog").header("if-none-match", &if_none_match));
        let reply = send(&app, req).await;
        assert_eq!(reply.status.as_u16(), status, "{if_none_match}");
        assert_eq!(reply.headers["etag"], etag.as_str());
        if status == 304 {
            assert!(reply.raw.is_empty(), "304 has no body");
        }
    }
}

fn has_path(value: &Value, path: &[&str]) -> bool {
    let mut at = value;
    for key in path {
        match at.get(key) {
            Some(next) => at = next,
            None => return false,
        }
    }
    true
}

#[tokio::test]
async fn replies_are_shaped_for_the_declared_version() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let auth = basic(USER, PASS);
    let catalog_for = |v: &'static str| valid_request(Operation::Catalog, "", Some(v), Some(&auth));
    let new = send(&app, catalog_for("2.17")).await.body;
    let old = send(&app, catalog_for("2.13")).await.body;
    let svc = |c: &Value| c["services"][0].clone();
    let small = |c: &Value| c["services"][0]["plans"][0].clone();
    let large = |c: &Value| c["services"][0]["plans"][1].clone();
    for (field, since) in [
        ("instances_retrievable", "2.14"),
        ("allow_context_updates", "2.15"),
    ] {
        assert!(has_path(&svc(&new), &[field]), "{field} in 2.17");
        assert!(
            !has_path(&svc(&old), &[field]),
            "{field} (since {since}) not in 2.13"
        );
    }
    assert!(has_path(&small(&new), &["maintenance_info"]));
    assert!(!has_path(&small(&old), &["maintenance_info"]));
    for field in [
        "binding_rotatable",
        "maximum_polling_duration",
        "plan_updateable",
    ] {
        assert!(has_path(&large(&new), &[field]), "{field} in 2.17");
        assert!(!has_path(&large(&old), &[field]), "{field} not in 2.13");
    }
    assert_eq!(svc(&old)["x-team"], "blue", "extension fields are kept");
    let v16 = send(&app, catalog_for("2.16")).await.body;
    assert!(
        !has_path(&large(&v16), &["binding_rotatable"]),
        "2.17 field not in 2.16"
    );
    assert!(has_path(&large(&v16), &["maximum_polling_duration"]));

    // Provision reply: metadata (2.16), metadata.attributes (2.17); extensions kept.
    let reply = |v| valid_request(Operation::Provision, "rich", Some(v), Some(&auth));
    let body = send(&app, reply("2.17")).await.body;
    assert_eq!(
        body["metadata"],
        json!({"labels": {"team": "blue"}, "attributes": {"tier": "gold"}})
    );
    assert_eq!(body["x-extension"], "kept");
    let body = send(&app, reply("2.16")).await.body;
    assert_eq!(body["metadata"], json!({"labels": {"team": "blue"}}));
    let body = send(&app, reply("2.15")).await.body;
    assert_eq!(
        body,
        json!({"dashboard_url": "https://dash", "x-extension": "kept"})
    );

    // Async provision: `dashboard_url: null` only from 2.15.
    let body = send(
        &app,
        valid_request(
            Operation::Provision,
            "async-rich",
            Some("2.17"),
            Some(&auth),
        ),
    )
    .await
    .body;
    assert_eq!(body["dashboard_url"], Value::Null);
    assert!(has_path(&body, &["dashboard_url"]));
    let body = send(
        &app,
        valid_request(
            Operation::Provision,
            "async-rich",
            Some("2.14"),
            Some(&auth),
        ),
    )
    .await
    .body;
    assert_eq!(body, json!({"operation": "op-async-rich"}));

    // Fetch replies: maintenance_info and metadata on instances (2.17), renew_before (2.17).
    let body = send(
        &app,
        valid_request(Operation::FetchInstance, "rich", Some("2.16"), Some(&auth)),
    )
    .await
    .body;
    assert_eq!(body, json!({"service_id": SVC, "plan_id": SMALL}));
    let body = send(
        &app,
        valid_request(Operation::FetchBinding, "rich", Some("2.16"), Some(&auth)),
    )
    .await
    .body;
    assert_eq!(
        body,
        json!({"metadata": {"expires_at": "2030-01-01T00:00:00.0Z"}})
    );
    let body = send(
        &app,
        valid_request(Operation::FetchBinding, "rich", Some("2.17"), Some(&auth)),
    )
    .await
    .body;
    assert_eq!(body["metadata"]["renew_before"], "2029-12-01T00:00:00.0Z");
}

#[tokio::test]
async fn bind_replies_are_shaped_for_the_declared_version() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let auth = basic(USER, PASS);
    let credentials = json!({"username": "app-user", "password": CREDENTIAL_SECRET});
    let endpoints = json!([{"host": "db.internal", "ports": ["5432"]}]);
    // `rich` answers with credentials, endpoints (2.15), metadata.expires_at (2.16),
    // metadata.renew_before (2.17) and an extension field.
    let expected = [
        (
            "2.13",
            json!({"credentials": credentials, "x-extension": "kept"}),
        ),
        (
            "2.14",
            json!({"credentials": credentials, "x-extension": "kept"}),
        ),
        (
            "2.15",
            json!({"credentials": credentials, "endpoints": endpoints, "x-extension": "kept"}),
        ),
        (
            "2.16",
            json!({"credentials": credentials, "endpoints": endpoints,
                "metadata": {"expires_at": "2030-01-01T00:00:00.0Z"}, "x-extension": "kept"}),
        ),
        (
            "2.17",
            json!({"credentials": credentials, "endpoints": endpoints,
                "metadata": {"expires_at": "2030-01-01T00:00:00.0Z",
                             "renew_before": "2029-12-01T00:00:00.0Z"},
                "x-extension": "kept"}),
        ),
    ];
    for (version, body) in expected {
        let reply = send(
            &app,
            valid_request(Operation::Bind, "rich", Some(version), Some(&auth)),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{version}: {}",
            reply.body
        );
        assert_eq!(reply.body, body, "bind reply at {version}");
        assert_eq!(recorder.last().ctx.api_version().to_string(), version);
    }
}

#[tokio::test]
async fn provision_replies_are_shaped_for_the_declared_version() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let auth = basic(USER, PASS);
    let provision = |v| valid_request(Operation::Provision, "rich", Some(v), Some(&auth));
    // `rich` answers with metadata (2.16; attributes since 2.17) and an extension field.
    let reply = send(&app, provision("2.13")).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        reply.body,
        json!({"dashboard_url": "https://dash", "x-extension": "kept"})
    );
    let reply = send(&app, provision("2.17")).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        reply.body,
        json!({"dashboard_url": "https://dash",
            "metadata": {"labels": {"team": "blue"}, "attributes": {"tier": "gold"}},
            "x-extension": "kept"})
    );
}

#[tokio::test]
async fn body_limit_and_timeout() {
    let recorder = Recorder::default();
    let app = builder(&recorder)
        .body_limit(300)
        .request_timeout(Some(Duration::from_millis(50)))
        .build()
        .await
        .unwrap();
    let mut body = provision_body(SMALL);
    body["parameters"] = json!({"blob": "x".repeat(400)});
    let reply = send(
        &app,
        with_json(request(Method::PUT, "/v2/service_instances/ok"), &body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    // The request above carries no Content-Length, so the limit held while reading; a declared
    // length over the limit is refused before reading.
    let req = request(Method::PUT, "/v2/service_instances/ok")
        .header("content-type", "application/json")
        .header("content-length", "100000")
        .body(axum::body::Body::from(provision_body(SMALL).to_string()))
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(recorder.calls().is_empty());

    let reply = send(&app, ok_request(Operation::Provision, "slow")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply.description().contains("did not answer"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn timeout_and_panic_guard_cover_authentication() {
    let recorder = Recorder::default();
    let auth = Auth::new().check(|headers| {
        assert!(!headers.contains_key("x-panic"), "a bug in the check");
        let hang = headers.contains_key("x-hang");
        async move {
            if hang {
                std::future::pending::<()>().await;
            }
            true
        }
    });
    let app = Broker::builder(recorder.clone())
        .auth(auth)
        .request_timeout(Some(Duration::from_millis(50)))
        .build()
        .await
        .unwrap();
    let catalog = |header: Option<&'static str>| {
        let mut req = ok_request(Operation::Catalog, "");
        if let Some(name) = header {
            req.headers_mut()
                .insert(name, http::HeaderValue::from_static("1"));
        }
        req
    };
    assert_eq!(send(&app, catalog(None)).await.status, StatusCode::OK);
    let reply = send(&app, catalog(Some("x-hang"))).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply.description().contains("did not answer"),
        "{}",
        reply.body
    );
    let reply = send(&app, catalog(Some("x-panic"))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!reply.description().is_empty());
}

#[tokio::test]
async fn guards_can_be_switched_off() {
    let recorder = Recorder::default();
    let app = builder(&recorder)
        .guards(Guards::none())
        .build()
        .await
        .unwrap();
    let unknown = json!({"service_id": "svc-9", "plan_id": "plan-9", "organization_guid": "o", "space_guid": "s"});
    let reply = send(
        &app,
        with_json(request(Method::PUT, "/v2/service_instances/ok"), &unknown),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert!(recorder.last().ctx.plan().is_none());
    let reply = send(
        &app,
        with_json(
            request(Method::PUT, &binding_path("ok")),
            &bind_body(NOBIND),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let mut body = provision_body(LARGE);
    body["parameters"] = json!({"size": 0});
    let reply = send(
        &app,
        with_json(request(Method::PUT, "/v2/service_instances/ok"), &body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);

    let only_params_off = builder(&recorder)
        .guards(Guards::default().parameters(false))
        .build()
        .await
        .unwrap();
    let reply = send(
        &only_params_off,
        with_json(request(Method::PUT, "/v2/service_instances/ok"), &body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let reply = send(
        &only_params_off,
        with_json(request(Method::PUT, "/v2/service_instances/ok"), &unknown),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

/// A PATCH of instance `ok` declaring `version`.
async fn patch(app: &Router, version: &'static str, body: &Value) -> Reply {
    let mut req = with_json(request(Method::PATCH, "/v2/service_instances/ok"), body);
    req.headers_mut().insert(
        "x-broker-api-version",
        http::HeaderValue::from_static(version),
    );
    send(app, req).await
}

#[tokio::test]
async fn context_only_updates_need_allow_context_updates() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let context = json!({"platform": "cloudfoundry", "organization_guid": "o", "space_guid": "s",
        "instance_name": "renamed"});
    let only_context = json!({"service_id": OTHER_SVC, "context": context});
    // `other` does not set allow_context_updates.
    for version in ["2.15", "2.17"] {
        let reply = patch(&app, version, &only_context).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{version}");
        assert!(
            reply.description().contains("allow_context_updates")
                && reply.description().contains("\"other\""),
            "{}",
            reply.body
        );
        assert_eq!(reply.error(), None);
    }
    let with_previous = json!({"service_id": OTHER_SVC, "context": context,
        "previous_values": {"plan_id": OTHER_PLAN}});
    let reply = patch(&app, "2.17", &with_previous).await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert!(recorder.calls().is_empty(), "the broker was called");

    // 2.14 had no allow_context_updates, and a 2.14 platform sees a catalog without it.
    assert_eq!(
        patch(&app, "2.14", &only_context).await.status,
        StatusCode::OK
    );
    // `svc` sets allow_context_updates: true.
    let allowed = json!({"service_id": SVC, "context": context});
    assert_eq!(patch(&app, "2.17", &allowed).await.status, StatusCode::OK);
    assert_eq!(
        recorder.last().body.unwrap()["context"]["instance_name"],
        "renamed"
    );
    // Anything besides the context makes it an ordinary update.
    for (key, value) in [
        ("parameters", json!({})),
        ("plan_id", json!(OTHER_PLAN)),
        ("maintenance_info", json!({"version": "1.0.0"})),
    ] {
        let mut body = only_context.clone();
        body[key] = value;
        let reply = patch(&app, "2.17", &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{key}: {}", reply.body);
    }
    let nothing = json!({"service_id": OTHER_SVC});
    assert_eq!(patch(&app, "2.17", &nothing).await.status, StatusCode::OK);
    assert_eq!(recorder.calls().len(), 6);

    let switched_off = builder(&recorder)
        .guards(Guards::default().context_updates(false))
        .build()
        .await
        .unwrap();
    assert_eq!(
        patch(&switched_off, "2.17", &only_context).await.status,
        StatusCode::OK
    );
    assert!(!Guards::none().context_updates && Guards::default().context_updates);
}

#[tokio::test]
async fn lenient_content_type() {
    let recorder = Recorder::default();
    let app = builder(&recorder)
        .require_content_type(false)
        .build()
        .await
        .unwrap();
    let req = request(Method::PUT, "/v2/service_instances/ok")
        .body(axum::body::Body::from(provision_body(SMALL).to_string()))
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::CREATED);
    let req = request(Method::PUT, "/v2/service_instances/ok")
        .header("content-type", "text/plain")
        .body(axum::body::Body::from(provision_body(SMALL).to_string()))
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn nests_and_merges_with_other_routes() {
    #[derive(Clone)]
    struct AppState {
        greeting: &'static str,
    }
    let recorder = Recorder::default();
    let osb: Router<AppState> = builder(&recorder).build().await.unwrap();
    let app: Router = Router::new()
        .route(
            "/hello",
            get(
                |axum::extract::State(s): axum::extract::State<AppState>| async move { s.greeting },
            ),
        )
        .nest("/platform-a", osb.clone())
        .merge(osb)
        .fallback(|| async { (StatusCode::IM_A_TEAPOT, "mine") })
        .with_state(AppState { greeting: "hi" });
    let reply = send(&app, empty(request(Method::GET, "/platform-a/v2/catalog"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        send(&app, empty(request(Method::GET, "/v2/catalog")))
            .await
            .status,
        StatusCode::OK
    );
    let reply = send(&app, empty(request(Method::GET, "/platform-a/v2/unknown"))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let hello = tower::ServiceExt::oneshot(app.clone(), empty(request(Method::GET, "/hello")))
        .await
        .unwrap();
    assert_eq!(hello.status(), StatusCode::OK);
    let other = tower::ServiceExt::oneshot(app, empty(request(Method::GET, "/elsewhere")))
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        StatusCode::IM_A_TEAPOT,
        "the user's fallback is untouched"
    );
}

#[tokio::test]
async fn method_not_allowed_lists_the_allowed_methods() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let reply = send(
        &app,
        empty(request(Method::POST, "/v2/service_instances/x")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let allow = reply.headers["allow"].to_str().unwrap();
    for method in ["GET", "PUT", "PATCH", "DELETE"] {
        assert!(allow.contains(method), "{allow}");
    }
}

#[tokio::test]
async fn catalog_errors_refuse_to_build() {
    let recorder = Recorder::default();
    let bad: Catalog = serde_json::from_value(json!({"services": [
        {"id": "a", "name": "a", "description": "A", "bindable": true, "plans": []},
        {"id": "a", "name": "b", "description": "B", "bindable": true,
         "plans": [{"id": "p", "name": "p", "description": "P", "maintenance_info": {"version": "one"}}]}
    ]}))
    .unwrap();
    let err = builder(&recorder)
        .catalog(bad)
        .build::<()>()
        .await
        .unwrap_err();
    let osb_server::Error::InvalidCatalog { problems } = &err else {
        panic!("{err}")
    };
    let rules: Vec<_> = problems.iter().map(|p| p.rule).collect();
    assert!(rules.contains(&"no-plans"), "{rules:?}");
    assert!(rules.contains(&"duplicate-service-id"), "{rules:?}");
    assert!(rules.contains(&"invalid-maintenance-version"), "{rules:?}");
    assert!(err.to_string().contains("no-plans"));

    // Warnings alone do not stop the build.
    let warned: Catalog = serde_json::from_value(json!({"services": [
        {"id": "a", "name": "Not CLI Friendly", "description": "A", "bindable": true,
         "plans": [{"id": "p", "name": "p", "description": "P"}]}]}))
    .unwrap();
    assert!(
        builder(&recorder)
            .catalog(warned)
            .build::<()>()
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_failing_catalog_call_refuses_to_build() {
    struct Broken;
    #[osb_server::async_trait]
    impl osb_server::ServiceBroker for Broken {
        async fn catalog(&self) -> Result<Catalog, BrokerError> {
            Err(BrokerError::internal("no catalog today"))
        }
        async fn provision(
            &self,
            _: osb_server::types::InstanceId,
            _: osb_server::types::ServiceInstanceProvisionRequest,
            _: osb_server::RequestContext,
        ) -> Result<osb_server::types::ProvisionOutcome, BrokerError> {
            unreachable!()
        }
        async fn deprovision(
            &self,
            _: osb_server::types::InstanceId,
            _: osb_server::types::DeprovisionQuery,
            _: osb_server::RequestContext,
        ) -> Result<osb_server::types::DeleteOutcome, BrokerError> {
            unreachable!()
        }
    }
    let err = osb_server::router::<(), _>(Broken).await.unwrap_err();
    assert!(err.to_string().contains("no catalog today"), "{err}");
    let osb_server::Error::Catalog(answer) = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(answer, BrokerError::Internal { .. }), "{answer:?}");
}

#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The fields of the `osb_request` span on a log line, e.g. `instance_id` → `"inst-7"` (values
/// as rendered: strings quoted, numbers bare); `None` for lines outside the span.
fn span_fields(line: &str) -> Option<BTreeMap<&str, &str>> {
    let start = line.find("osb_request{")? + "osb_request{".len();
    // Routes hold braces (`{instance_id}`); the span's own brace is followed by `: `.
    let end = start + line[start..].find("}: ")?;
    Some(
        line[start..end]
            .split(' ')
            .map(|field| field.split_once('=').expect("a key=value field"))
            .collect(),
    )
}

#[tokio::test]
async fn one_span_per_request_without_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    // A provision whose parameters hold a secret.
    let mut body = provision_body(LARGE);
    body["parameters"] = json!({"size": 2, "admin_password": "parameter-secret-42"});
    let req = request(
        Method::PUT,
        "/v2/service_instances/inst-7?accepts_incomplete=true",
    )
    .header("x-broker-api-request-identity", "req-7");
    let reply = send(&app, with_json(req, &body)).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        recorder.last().body.unwrap()["parameters"]["admin_password"],
        "parameter-secret-42",
        "the broker got the parameter"
    );
    // Wrong credentials.
    let wrong = valid_request(
        Operation::Catalog,
        "",
        Some("2.17"),
        Some(&basic(USER, "guessed-pw-99")),
    );
    assert_eq!(send(&app, wrong).await.status, StatusCode::UNAUTHORIZED);
    // A refused bind whose parameters hold a secret.
    let mut bad = provision_body(LARGE);
    bad["parameters"] = json!({"role": "parameter-secret-43"});
    let req = with_json(
        request(
            Method::PUT,
            "/v2/service_instances/inst-8/service_bindings/b-8",
        ),
        &bad,
    );
    assert_eq!(send(&app, req).await.status, StatusCode::BAD_REQUEST);
    // A bind that returns credentials.
    let req = request(
        Method::PUT,
        "/v2/service_instances/rich-9/service_bindings/b-9",
    )
    .header("x-broker-api-request-identity", "req-9");
    let reply = send(&app, with_json(req, &bind_body(SMALL))).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        reply.body["credentials"]["password"], CREDENTIAL_SECRET,
        "the platform got the credentials"
    );

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let spans: Vec<_> = logs.lines().filter_map(span_fields).collect();
    let instance_route = "\"/v2/service_instances/{instance_id}\"";
    let binding_route = "\"/v2/service_instances/{instance_id}/service_bindings/{binding_id}\"";
    let expected = [
        vec![
            ("method", "PUT"),
            ("route", instance_route),
            ("request_identity", "\"req-7\""),
            ("instance_id", "\"inst-7\""),
            ("status", "201"),
        ],
        vec![
            ("method", "GET"),
            ("route", "\"/v2/catalog\""),
            ("status", "401"),
        ],
        vec![
            ("method", "PUT"),
            ("route", binding_route),
            ("instance_id", "\"inst-8\""),
            ("binding_id", "\"b-8\""),
            ("status", "400"),
        ],
        vec![
            ("method", "PUT"),
            ("route", binding_route),
            ("request_identity", "\"req-9\""),
            ("instance_id", "\"rich-9\""),
            ("binding_id", "\"b-9\""),
            ("status", "201"),
        ],
    ];
    for fields in expected {
        let fields: BTreeMap<_, _> = fields.into_iter().collect();
        // The status is recorded when the reply is ready, so only the final line has it.
        let lines = spans
            .iter()
            .filter(|s| s.contains_key("status"))
            .filter(|s| {
                s.get("instance_id") == fields.get("instance_id")
                    && s.get("route") == fields.get("route")
            });
        let lines: Vec<_> = lines.collect();
        assert_eq!(lines, [&fields], "one finished span per request:\n{logs}");
    }
    let line = logs
        .lines()
        .find(|l| l.contains("instance_id=\"inst-7\""))
        .unwrap();
    assert!(
        line.contains(" INFO ") && line.contains("request answered status=201 duration_ms="),
        "the reply's status and duration are logged at INFO: {line}"
    );
    for secret in [
        "parameter-secret",
        CREDENTIAL_SECRET,
        PASS,
        "guessed-pw-99",
        &basic(USER, PASS)[6..],
        &basic(USER, "guessed-pw-99")[6..],
    ] {
        assert!(!logs.contains(secret), "{secret} was logged:\n{logs}");
    }
}

/// Captures what `run` logs at INFO and above.
async fn info_logs<F: std::future::Future<Output = ()>>(run: impl FnOnce() -> F) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    run().await;
    String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
}

#[tokio::test]
async fn every_request_logs_one_info_line_and_rejections_say_why() {
    let recorder = Recorder::default();
    let app = app(&recorder).await;
    let logs = info_logs(|| async {
        // Answered.
        let reply = send(&app, ok_request(Operation::Catalog, "")).await;
        assert_eq!(reply.status, StatusCode::OK);
        // No version header: 412.
        let reply = send(
            &app,
            valid_request(Operation::Catalog, "", None, Some(&basic(USER, PASS))),
        )
        .await;
        assert_eq!(reply.status, StatusCode::PRECONDITION_FAILED);
        // A broker that can only work asynchronously, asked without accepts_incomplete: 422.
        let req = request(Method::PUT, "/v2/service_instances/async")
            .header("x-broker-api-request-identity", "req-async");
        let reply = send(&app, with_json(req, &provision_body(SMALL))).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        // A body whose `parameters` is a string: 400, whose serde message quotes the value.
        let mut body = provision_body(SMALL);
        body["parameters"] = json!("parameter-secret-77");
        let req = request(Method::PUT, "/v2/service_instances/p-1");
        let reply = send(&app, with_json(req, &body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(
            reply.description().contains("parameter-secret-77"),
            "the platform is told: {}",
            reply.description()
        );
        // A deprovision answered `410 Gone`: an outcome, not a rejection.
        let reply = send(&app, ok_request(Operation::Deprovision, "gone-1")).await;
        assert_eq!(reply.status, StatusCode::GONE);
    })
    .await;
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("osb_request{"))
        .collect();
    assert_eq!(lines.len(), 5, "one INFO line per request:\n{logs}");
    assert!(
        lines[4].contains("request answered status=410"),
        "{}",
        lines[4]
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" INFO ") && l.contains(" duration_ms=")),
        "{logs}"
    );
    assert!(
        lines[0].contains("route=\"/v2/catalog\"")
            && lines[0].contains("request answered status=200"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("request rejected status=412")
            && lines[1].contains("description=\"The X-Broker-API-Version header"),
        "the 412 says why: {}",
        lines[1]
    );
    assert!(
        lines[2].contains("request_identity=\"req-async\"")
            && lines[2].contains("request rejected status=422")
            && lines[2].contains("retry with accepts_incomplete=true"),
        "the 422 says why: {}",
        lines[2]
    );
    assert!(
        lines[3].contains("request rejected status=400")
            && lines[3].contains("description=\"The request body is not a valid"),
        "{}",
        lines[3]
    );
    assert!(
        !logs.contains("parameter-secret-77"),
        "a quoted parameter reached the log:\n{logs}"
    );
}
