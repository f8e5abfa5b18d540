//! What the client puts on the wire: headers, credentials, identities, encoded ids, bodies shaped
//! for the version; what it refuses to send; timeouts and transport failures.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{Reply, Server, closed_port_url};
use osb_client::{CallOptions, Client, Error};
use osb_types::{
    ApiVersion, BindQuery, BindingId, BindingLastOperationQuery, CloudFoundryIdentity,
    DeprovisionQuery, FetchBindingQuery, FetchInstanceQuery, InstanceId,
    InstanceLastOperationQuery, KubernetesIdentity, MaintenanceInfo, Operation,
    OriginatingIdentity, ProvisionQuery, ServiceBindingRequest, ServiceInstancePreviousValues,
    ServiceInstanceProvisionRequest, ServiceInstanceUpdateRequest, UnbindQuery, UpdateQuery,
};
use serde_json::json;

fn provision_body() -> ServiceInstanceProvisionRequest {
    ServiceInstanceProvisionRequest::new("svc", "plan", "org", "space")
}

/// Provisions instance `i-1` with `body`, synchronously.
async fn provision_with(
    client: &Client,
    body: &ServiceInstanceProvisionRequest,
    opts: &CallOptions,
) -> Result<(), Error> {
    let query = ProvisionQuery::new();
    client
        .provision(&InstanceId::new("i-1"), body, &query, opts)
        .await
        .map(drop)
}

async fn provision(client: &Client, opts: &CallOptions) -> Result<(), Error> {
    provision_with(client, &provision_body(), opts).await
}

#[tokio::test]
async fn every_request_carries_version_auth_identity_and_json_headers() {
    let server = Server::always(Reply::json(201, json!({}))).await;
    let client = server.client();
    provision(&client, &CallOptions::new()).await.unwrap();
    let request = server.last_request();
    assert_eq!(request.method, "PUT");
    assert_eq!(request.path, "/v2/service_instances/i-1");
    assert_eq!(request.header("x-broker-api-version"), Some("2.17"));
    let basic = base64::engine::general_purpose::STANDARD.encode("admin:secret");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("x-broker-api-originating-identity"), None);
    assert_eq!(
        request.json(),
        json!({"service_id": "svc", "plan_id": "plan", "organization_guid": "org", "space_guid": "space"})
    );
    assert_eq!(request.query, None, "no accepts_incomplete unless asked");

    // GET and DELETE have no body and no content type.
    client.catalog(&CallOptions::new()).await.unwrap_err();
    let request = server.last_request();
    assert_eq!(request.method, "GET");
    assert_eq!(request.header("content-type"), None);
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn bearer_auth_and_other_versions() {
    let server = Server::always(Reply::json(200, json!({"services": []}))).await;
    let client = Client::builder(server.url())
        .bearer_auth("tok-123")
        .api_version(ApiVersion::V2_14)
        .build()
        .unwrap();
    client.catalog(&CallOptions::new()).await.unwrap();
    let request = server.last_request();
    assert_eq!(request.header("authorization"), Some("Bearer tok-123"));
    assert_eq!(request.header("x-broker-api-version"), Some("2.14"));

    let anonymous = Client::builder(server.url()).build().unwrap();
    anonymous.catalog(&CallOptions::new()).await.unwrap();
    assert_eq!(server.last_request().header("authorization"), None);
}

#[tokio::test]
async fn request_identity_is_fresh_unless_given() {
    let server = Server::always(Reply::json(201, json!({}))).await;
    let client = server.client();
    provision(&client, &CallOptions::new()).await.unwrap();
    provision(&client, &CallOptions::new()).await.unwrap();
    provision(&client, &CallOptions::new().request_identity("req-42"))
        .await
        .unwrap();
    let ids: Vec<String> = server
        .requests()
        .iter()
        .map(|r| {
            r.header("x-broker-api-request-identity")
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(uuid::Uuid::parse_str(&ids[0]).is_ok(), "{}", ids[0]);
    assert!(uuid::Uuid::parse_str(&ids[1]).is_ok());
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids[2], "req-42");

    let err = provision(&client, &CallOptions::new().request_identity(""))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation(_)), "{err:?}");
    let err = provision(&client, &CallOptions::new().request_identity("bad\nid"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation(_)), "{err:?}");
    // HTTP would trim these in transit, and a broker cannot read non-ASCII bytes as text.
    for id in [" req", "req\t", "\t", "réq"] {
        let err = provision(&client, &CallOptions::new().request_identity(id))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{id:?}: {err:?}");
    }
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn originating_identity_default_override_and_suppression() {
    let server = Server::always(Reply::json(201, json!({}))).await;
    let default = OriginatingIdentity::from(CloudFoundryIdentity::new("user-1"));
    let client = server.client_with(|b| b.originating_identity(default.clone()));

    provision(&client, &CallOptions::new()).await.unwrap();
    let header = server
        .last_request()
        .header("x-broker-api-originating-identity")
        .unwrap()
        .to_string();
    assert!(header.starts_with("cloudfoundry "), "{header}");
    assert_eq!(OriginatingIdentity::parse(&header).unwrap(), default);

    let k8s = OriginatingIdentity::from(KubernetesIdentity::new("duke", "uid-1"));
    provision(
        &client,
        &CallOptions::new().originating_identity(k8s.clone()),
    )
    .await
    .unwrap();
    let header = server
        .last_request()
        .header("x-broker-api-originating-identity")
        .unwrap()
        .to_string();
    assert_eq!(OriginatingIdentity::parse(&header).unwrap(), k8s);

    provision(&client, &CallOptions::new().without_originating_identity())
        .await
        .unwrap();
    assert_eq!(
        server
            .last_request()
            .header("x-broker-api-originating-identity"),
        None
    );

    // A platform name the header cannot carry back unchanged is refused before sending.
    for platform in ["", "my platform", "plätform"] {
        let odd = OriginatingIdentity::Other {
            platform: platform.to_string(),
            value: serde_json::Map::new(),
        };
        let err = provision(&client, &CallOptions::new().originating_identity(odd))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{platform:?}: {err:?}");
    }
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn ids_are_percent_encoded_in_paths_and_queries() {
    let server = Server::always(Reply::json(200, json!({"state": "in progress"}))).await;
    let client = server.client();
    let instance = InstanceId::new("a/b c?d#e%f");
    let binding = BindingId::new("ü~x.y_z-1");
    let query = BindingLastOperationQuery::new()
        .with_service_id("svc&x=1")
        .with_plan_id("plan+1")
        .with_operation("op=1&2 / ∞");
    client
        .binding_last_operation(&instance, &binding, &query, &CallOptions::new())
        .await
        .unwrap();
    let request = server.last_request();
    assert_eq!(
        request.path,
        "/v2/service_instances/a%2Fb%20c%3Fd%23e%25f/service_bindings/%C3%BC~x.y_z-1/last_operation"
    );
    assert_eq!(
        request.query_param("service_id").as_deref(),
        Some("svc%26x%3D1")
    );
    assert_eq!(request.query_param("plan_id").as_deref(), Some("plan%2B1"));
    assert_eq!(
        request.query_param("operation").as_deref(),
        Some("op%3D1%262%20%2F%20%E2%88%9E")
    );

    server.script(vec![Reply::json(200, json!({}))]);
    let query = DeprovisionQuery::new("s 1", "p/2").with_accepts_incomplete(false);
    client
        .deprovision(&instance, &query, &CallOptions::new())
        .await
        .unwrap();
    let request = server.last_request();
    assert_eq!(request.method, "DELETE");
    assert_eq!(
        request.query.as_deref(),
        Some("accepts_incomplete=false&service_id=s%201&plan_id=p%2F2")
    );
}

#[tokio::test]
async fn base_url_path_prefix_is_kept() {
    let server = Server::always(Reply::json(200, json!({"services": []}))).await;
    let client = Client::builder(format!("{}/brokers/mysql/", server.url()))
        .build()
        .unwrap();
    assert_eq!(client.base_url(), format!("{}/brokers/mysql", server.url()));
    client.catalog(&CallOptions::new()).await.unwrap();
    assert_eq!(server.last_request().path, "/brokers/mysql/v2/catalog");
}

#[tokio::test]
async fn newer_endpoints_are_refused_before_sending() {
    let server = Server::always(Reply::json(200, json!({}))).await;
    let client = server.client_with(|b| b.api_version(ApiVersion::V2_13));
    let opts = CallOptions::new();
    let (i, b) = (InstanceId::new("i"), BindingId::new("b"));
    let refused = [
        (
            Operation::FetchInstance,
            client
                .fetch_instance(&i, &FetchInstanceQuery::new(), &opts)
                .await
                .map(drop),
        ),
        (
            Operation::FetchBinding,
            client
                .fetch_binding(&i, &b, &FetchBindingQuery::new(), &opts)
                .await
                .map(drop),
        ),
        (
            Operation::BindingLastOperation,
            client
                .binding_last_operation(&i, &b, &BindingLastOperationQuery::new(), &opts)
                .await
                .map(drop),
        ),
    ];
    for (op, result) in refused {
        match result {
            Err(Error::UnsupportedVersion {
                operation,
                feature: None,
                since,
                configured,
            }) => {
                assert_eq!(
                    (operation, since, configured),
                    (op, ApiVersion::V2_14, ApiVersion::V2_13)
                );
            }
            other => panic!("{op:?}: {other:?}"),
        }
        assert!(!client.supports(op));
    }
    // Asynchronous bindings appeared in 2.14 too.
    let body = ServiceBindingRequest::new("s", "p");
    let err = client
        .bind(
            &i,
            &b,
            &body,
            &BindQuery::new().with_accepts_incomplete(true),
            &opts,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                operation: Operation::Bind,
                feature: Some("accepts_incomplete"),
                ..
            }
        ),
        "{err:?}"
    );
    let err = client
        .unbind(
            &i,
            &b,
            &UnbindQuery::new("s", "p").with_accepts_incomplete(true),
            &opts,
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::UnsupportedVersion {
            operation: Operation::Unbind,
            ..
        }
    ));
    assert_eq!(server.count(), 0, "nothing was sent");

    // `accepts_incomplete=false` means the same as absent and is left out.
    server.script(vec![Reply::json(201, json!({}))]);
    client
        .bind(
            &i,
            &b,
            &body,
            &BindQuery::new().with_accepts_incomplete(false),
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(server.last_request().query, None);
    assert!(client.supports(Operation::Bind));
}

#[tokio::test]
async fn fields_that_change_the_request_are_refused_for_older_versions() {
    let server = Server::always(Reply::json(200, json!({}))).await;
    let opts = CallOptions::new();
    let i = InstanceId::new("i");
    let maintenance = MaintenanceInfo::new("1.2.3");
    let provision = ServiceInstanceProvisionRequest::new("s", "p", "org", "space")
        .with_maintenance_info(maintenance.clone());
    let update = ServiceInstanceUpdateRequest::new("s").with_maintenance_info(maintenance);
    let rotation = ServiceBindingRequest::new("s", "p").with_predecessor_binding_id("old");

    let v2_14 = server.client_with(|b| b.api_version(ApiVersion::V2_14));
    let refused = [
        (
            Operation::Provision,
            "maintenance_info",
            ApiVersion::V2_15,
            v2_14
                .provision(&i, &provision, &ProvisionQuery::new(), &opts)
                .await
                .map(drop),
        ),
        (
            Operation::Update,
            "maintenance_info",
            ApiVersion::V2_15,
            v2_14
                .update(&i, &update, &UpdateQuery::new(), &opts)
                .await
                .map(drop),
        ),
    ];
    let v2_16 = server.client_with(|b| b.api_version(ApiVersion::V2_16));
    let rotated = v2_16
        .bind(
            &i,
            &BindingId::new("b"),
            &rotation,
            &BindQuery::new(),
            &opts,
        )
        .await
        .map(drop);
    let refused = refused.into_iter().chain([(
        Operation::Bind,
        "predecessor_binding_id",
        ApiVersion::V2_17,
        rotated,
    )]);
    for (op, field, introduced, result) in refused {
        match result {
            Err(Error::UnsupportedVersion {
                operation,
                feature: Some(feature),
                since,
                ..
            }) => assert_eq!((operation, feature, since), (op, field, introduced)),
            other => panic!("{op:?}: {other:?}"),
        }
    }
    assert_eq!(server.count(), 0, "nothing was sent");

    // From the version that introduced them, the fields are sent.
    let v2_17 = server.client_with(|b| b.api_version(ApiVersion::V2_17));
    server.script(vec![Reply::json(201, json!({}))]);
    v2_17
        .bind(
            &i,
            &BindingId::new("b"),
            &rotation,
            &BindQuery::new(),
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(
        server.last_request().json()["predecessor_binding_id"],
        json!("old")
    );
}

#[tokio::test]
async fn fetch_hints_are_sent_from_2_16_only() {
    let server = Server::always(Reply::json(200, json!({}))).await;
    let query = FetchInstanceQuery::new()
        .with_service_id("s")
        .with_plan_id("p");
    for (version, expected) in [
        (ApiVersion::V2_15, None),
        (ApiVersion::V2_16, Some("service_id=s&plan_id=p")),
    ] {
        let client = server.client_with(|b| b.api_version(version));
        client
            .fetch_instance(&InstanceId::new("i"), &query, &CallOptions::new())
            .await
            .unwrap();
        assert_eq!(
            server.last_request().query.as_deref(),
            expected,
            "{version}"
        );
    }
}

#[tokio::test]
async fn bodies_are_shaped_for_the_configured_version() {
    let server = Server::always(Reply::json(200, json!({}))).await;
    let body = ServiceInstanceUpdateRequest::new("svc")
        .with_previous_values(
            ServiceInstancePreviousValues::new()
                .with_plan_id("plan")
                .with_maintenance_info(MaintenanceInfo::new("1.2.3")),
        )
        .with_extra("x-team", "blue");
    let sent = async |client: Client| {
        client
            .update(
                &InstanceId::new("i-1"),
                &body,
                &UpdateQuery::new(),
                &CallOptions::new(),
            )
            .await
            .unwrap();
        server.last_request().json()
    };

    let old = sent(server.client_with(|b| b.api_version(ApiVersion::V2_14))).await;
    let previous = &old["previous_values"];
    assert!(previous.get("maintenance_info").is_none(), "{old}");
    assert_eq!(previous["plan_id"], "plan");
    assert_eq!(old["x-team"], "blue", "extension fields are kept");

    let unshaped = server.client_with(|b| b.api_version(ApiVersion::V2_14).shape_requests(false));
    let version =
        |sent: serde_json::Value| sent["previous_values"]["maintenance_info"]["version"].clone();
    assert_eq!(version(sent(unshaped.clone()).await), "1.2.3");
    let latest = server.client();
    assert_eq!(version(sent(latest).await), "1.2.3");

    // Unshaped, even a field that changes the request's meaning is sent as it is.
    provision_with(
        &unshaped,
        &provision_body().with_maintenance_info(MaintenanceInfo::new("1.2.3")),
        &CallOptions::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        server.last_request().json()["maintenance_info"]["version"],
        "1.2.3"
    );
}

#[tokio::test]
async fn invalid_requests_are_not_sent() {
    let server = Server::always(Reply::json(201, json!({}))).await;
    let client = server.client();
    let opts = CallOptions::new();
    let query = ProvisionQuery::new();
    let cases: Vec<(InstanceId, ServiceInstanceProvisionRequest)> = vec![
        (InstanceId::new(""), provision_body()),
        (InstanceId::new(".."), provision_body()),
        (
            InstanceId::new("i"),
            ServiceInstanceProvisionRequest::new("", "p", "o", "s"),
        ),
        (
            InstanceId::new("i"),
            provision_body().with_maintenance_info(MaintenanceInfo::new("not-semver")),
        ),
    ];
    for (id, body) in cases {
        let err = client
            .provision(&id, &body, &query, &opts)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{err:?}");
        assert!(err.is_refused_locally());
    }
    let err = client
        .deprovision(
            &InstanceId::new("i"),
            &DeprovisionQuery::new("", "p"),
            &opts,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation(_)));
    let empty_op = InstanceLastOperationQuery::new().with_operation("");
    let err = client
        .instance_last_operation(&InstanceId::new("i"), &empty_op, &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation(_)));
    assert_eq!(server.count(), 0);

    // Validation can be switched off, e.g. to test a broker's own checks.
    let lax = server.client_with(|b| b.validate_requests(false));
    let body = ServiceInstanceProvisionRequest::new("", "p", "o", "s");
    lax.provision(&InstanceId::new("i"), &body, &query, &opts)
        .await
        .unwrap();
    assert_eq!(server.last_request().json()["service_id"], "");
}

#[tokio::test]
async fn builder_rejects_bad_configuration() {
    for version in [
        ApiVersion::new(2, 12),
        ApiVersion::new(2, 18),
        ApiVersion::new(3, 0),
    ] {
        let err = Client::builder("http://localhost")
            .api_version(version)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{version}: {err:?}");
    }
    for url in [
        "not a url",
        "ftp://host",
        "http://host/?q=1",
        "mailto:x@y",
        "http://host/#frag",
        "http://admin:secret@host",
    ] {
        assert!(
            matches!(Client::builder(url).build(), Err(Error::Config { .. })),
            "{url}"
        );
    }
    assert!(matches!(
        Client::builder("http://h").bearer_auth("tok\nen").build(),
        Err(Error::Config { .. })
    ));
    let client = Client::builder("https://h")
        .basic_auth("admin", "hunter2")
        .build()
        .unwrap();
    assert!(!format!("{client:?}").contains("hunter2"));
    assert!(!format!("{client:?}").contains("YWRtaW46aHVudGVyMg"));
    for version in ApiVersion::KNOWN {
        assert_eq!(
            Client::builder("http://h")
                .api_version(version)
                .build()
                .unwrap()
                .api_version(),
            version
        );
    }
}

#[tokio::test]
async fn catalog_is_revalidated_with_etag() {
    let catalog = json!({"services": [{"id": "s", "name": "db", "description": "d", "bindable": false, "plans": [{"id": "p", "name": "small", "description": "d"}]}]});
    let server = Server::start(vec![
        Reply::json(200, catalog)
            .header("etag", "\"v1\"")
            .header("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        Reply::text(304, ""),
    ])
    .await;
    let client = server.client();
    let first = client.catalog(&CallOptions::new()).await.unwrap();
    assert_eq!(server.last_request().header("if-none-match"), None);
    let clone = client.clone();
    let second = clone.catalog(&CallOptions::new()).await.unwrap();
    let request = server.last_request();
    assert_eq!(request.header("if-none-match"), Some("\"v1\""));
    assert_eq!(
        request.header("if-modified-since"),
        Some("Sun, 06 Nov 1994 08:49:37 GMT")
    );
    assert_eq!(first, second);
    assert_eq!(second.services[0].plans[0].name, "small");

    // Without a cached catalog, 304 is not a usable answer.
    let uncached = server.client_with(|b| b.catalog_cache(false));
    let err = uncached.catalog(&CallOptions::new()).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(304));
    assert_eq!(server.last_request().header("if-none-match"), None);
}

#[tokio::test]
async fn timeouts_are_distinguished() {
    let server =
        Server::always(Reply::json(201, json!({})).delay(Duration::from_millis(500))).await;
    let client = server.client_with(|b| b.timeout(Duration::from_millis(40)));
    let err = provision(&client, &CallOptions::new()).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(!err.is_connect());

    // A per-call timeout overrides the client's.
    let patient = server.client_with(|b| b.timeout(Duration::from_secs(30)));
    let err = provision(
        &patient,
        &CallOptions::new().timeout(Duration::from_millis(40)),
    )
    .await
    .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn connection_failures_are_transport_errors_that_never_reached_the_broker() {
    let client = Client::builder(closed_port_url().await).build().unwrap();
    let err = provision(&client, &CallOptions::new()).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_connect());
    assert_eq!(err.status(), None);
}

#[tokio::test]
async fn transport_errors_name_the_request_and_the_cause() {
    let base = closed_port_url().await;
    let client = Client::builder(&base).build().unwrap();
    let err = provision(&client, &CallOptions::new()).await.unwrap_err();
    let text = err.to_string();
    let request = format!("PUT {base}/v2/service_instances/i-1");
    assert!(
        text.starts_with(&format!("could not talk to the broker: {request}: ")),
        "{text}"
    );
    assert!(text.contains("error sending request"), "{text}");
    assert!(
        text.to_lowercase().contains("connect"),
        "the cause chain is in the message: {text}"
    );
    assert_eq!(
        text.matches(&base).count(),
        1,
        "the URL is named once: {text}"
    );
    assert!(std::error::Error::source(&err).is_none(), "not repeated");
    let debug = format!("{err:?}");
    assert!(
        debug.starts_with("Transport {") && debug.contains(&base) && debug.contains("PUT"),
        "{debug}"
    );
}

#[tokio::test]
async fn broker_error_bodies_stay_out_of_debug() {
    let body = json!({"error": "ConcurrencyError", "description": "busy", "token": "hunter2"});
    let server = Server::always(Reply::json(422, body)).await;
    let err = provision(&server.client(), &CallOptions::new())
        .await
        .unwrap_err();
    let debug = format!("{err:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(
        debug.contains("ConcurrencyError") && debug.contains("\"busy\""),
        "{debug}"
    );
    assert_eq!(
        err.error_response().unwrap().extra["token"],
        "hunter2",
        "kept for callers"
    );
    let shown = format!("Error: {err:?}");
    assert!(shown.starts_with("Error: Broker { status: 422"), "{shown}");
}

#[tokio::test]
async fn oversized_replies_are_cut_off() {
    let big = "x".repeat(4096);
    let server = Server::always(Reply::json(201, json!({ "dashboard_url": big }))).await;
    let client = server.client_with(|b| b.max_response_bytes(1024));
    let err = provision(&client, &CallOptions::new()).await.unwrap_err();
    assert!(
        matches!(err, Error::BodyTooLarge { limit: 1024, .. }),
        "{err:?}"
    );
}
