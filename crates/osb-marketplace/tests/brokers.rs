//! Registering real brokers over loopback, re-reading catalogs, and removing brokers.

mod common;

use common::{catalog, fake_broker};
use serde_json::{Value, json};

fn error_code(body: &Value) -> &str {
    body["error_code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn the_memory_broker_registers_and_its_services_and_plans_are_listed() {
    let m = common::start().await;
    let broker = example_memory_broker::start(example_memory_broker::Config::new("admin", "pw"))
        .await
        .unwrap();
    let (status, body) = m.register("memory", &broker.url(), "admin", "pw").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["entity"]["name"], "memory");
    assert_eq!(body["entity"]["auth_username"], "admin");
    assert!(
        body["entity"].get("auth_password").is_none(),
        "never the password: {body}"
    );
    let broker_guid = common::guid(&body);

    let expected = example_memory_broker::catalog();
    let (_, services) = m.get("/v2/services").await;
    assert_eq!(services["total_results"], expected.services.len());
    for (service, offering) in services["resources"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&expected.services)
    {
        let e = &service["entity"];
        assert_eq!(e["label"], offering.name);
        assert_eq!(e["unique_id"], offering.id.as_str());
        assert_eq!(e["service_broker_guid"], broker_guid);
        assert_eq!(e["service_broker_name"], "memory");
        assert_eq!(e["active"], true);
        assert_eq!(e["bindable"], offering.bindable);
        let (_, plans) = m.get(e["service_plans_url"].as_str().unwrap()).await;
        let names: Vec<_> = plans["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["entity"]["name"].clone())
            .collect();
        let want: Vec<_> = offering.plans.iter().map(|p| json!(p.name)).collect();
        assert_eq!(names, want);
        for plan in plans["resources"].as_array().unwrap() {
            assert_eq!(plan["entity"]["service_guid"], service["metadata"]["guid"]);
            assert_eq!(
                plan["entity"]["public"], false,
                "new plans are private until made public"
            );
            assert_eq!(plan["entity"]["active"], true);
        }
    }
    let (_, brokers) = m.get("/v2/service_brokers").await;
    assert_eq!(brokers["total_results"], 1);
    assert!(!brokers.to_string().contains("\"pw\""));
}

#[tokio::test]
async fn the_kv_broker_registers_with_its_schemas_and_maintenance_info() {
    let m = common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("kv.db").display());
    let kv = example_kv_broker::start(example_kv_broker::Config::new("admin", "secret", db))
        .await
        .unwrap();
    let (status, body) = m
        .register("kv", &format!("http://{}", kv.addr), "admin", "secret")
        .await;
    assert_eq!(status, 201, "{body}");
    let expected = example_kv_broker::catalog();
    let (_, plans) = m.get("/v2/service_plans?results-per-page=100").await;
    assert_eq!(plans["total_results"], expected.services[0].plans.len());
    for plan in &expected.services[0].plans {
        let (_, found) = m
            .get(&format!("/v2/service_plans?q=unique_id:{}", plan.id))
            .await;
        let e = &found["resources"][0]["entity"];
        assert_eq!(e["name"], plan.name);
        let create = plan
            .schemas
            .as_ref()
            .and_then(|s| s.service_instance.as_ref())
            .and_then(|s| s.create.as_ref())
            .and_then(|c| c.parameters.clone());
        match create {
            Some(schema) => assert_eq!(
                e["schemas"]["service_instance"]["create"]["parameters"],
                json!(schema)
            ),
            None => assert_eq!(
                e["schemas"]["service_instance"]["create"]["parameters"],
                json!({})
            ),
        }
    }
}

#[tokio::test]
async fn a_catalog_the_linter_refuses_is_a_502_listing_each_finding_and_creates_nothing() {
    let m = common::start().await;
    let mut bad = catalog(
        ("svc-1", "bad"),
        &[("plan-1", "small"), ("plan-1", "large")],
    );
    bad["services"][0]["plans"][0]["maintenance_info"]["version"] = json!("not semver");
    let broker = fake_broker(bad).await;
    let (status, body) = m.register("bad", &broker.url(), "user", "pass").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], 270012);
    assert_eq!(error_code(&body), "CF-ServiceBrokerCatalogInvalid");
    let description = body["description"].as_str().unwrap();
    assert!(
        description.contains("/services/0/plans/0/maintenance_info/version"),
        "{description}"
    );
    assert!(
        description.contains("/services/0/plans/1/id"),
        "{description}"
    );
    assert!(m.snapshot().await.is_empty());

    // A catalog that is JSON but not a catalog, and a body that is not JSON.
    *broker.catalog.lock().unwrap() = json!({"services": [{"id": 1}]});
    let (status, body) = m.register("bad", &broker.url(), "user", "pass").await;
    assert_eq!(
        (status, error_code(&body)),
        (502, "CF-ServiceBrokerCatalogInvalid"),
        "{body}"
    );
    *broker.catalog.lock().unwrap() = json!("a string");
    let (status, body) = m.register("bad", &broker.url(), "user", "pass").await;
    assert_eq!(
        (status, error_code(&body)),
        (502, "CF-ServiceBrokerRequestMalformed"),
        "{body}"
    );
    assert!(m.snapshot().await.is_empty());
}

#[tokio::test]
async fn a_broker_that_is_down_or_refuses_the_credentials_is_not_registered() {
    let m = common::start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (status, body) = m
        .register("down", &format!("http://{closed}"), "u", "p")
        .await;
    assert_eq!(
        (status, body["code"].clone(), error_code(&body)),
        (502, json!(10001), "CF-ServiceBrokerApiUnreachable")
    );

    let broker = example_memory_broker::start(example_memory_broker::Config::new("admin", "pw"))
        .await
        .unwrap();
    let (status, body) = m.register("memory", &broker.url(), "admin", "wrong").await;
    assert_eq!(
        (status, error_code(&body)),
        (502, "CF-ServiceBrokerApiAuthenticationFailed"),
        "{body}"
    );
    assert_eq!(body["http"]["status"], 401);
    assert!(
        !body.to_string().contains("wrong"),
        "the password is not echoed: {body}"
    );
    assert!(m.snapshot().await.is_empty());
}

#[tokio::test]
async fn names_and_urls_are_unique_and_offering_ids_are_not_shared_between_brokers() {
    let m = common::start().await;
    let a = fake_broker(catalog(("svc-a", "alpha"), &[("plan-a", "small")])).await;
    let b = fake_broker(catalog(("svc-a", "beta"), &[("plan-b", "small")])).await;
    let (status, body) = m.register("a", &a.url(), "user", "pass").await;
    assert_eq!(status, 201, "{body}");
    let before = m.snapshot().await;
    let (status, body) = m.register("a", &b.url(), "user", "pass").await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "CF-ServiceBrokerNameTaken")
    );
    let (status, body) = m
        .register("other", &format!("{}/", a.url()), "user", "pass")
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "CF-ServiceBrokerUrlTaken"),
        "a trailing slash is the same URL"
    );
    let (status, body) = m.register("b", &b.url(), "user", "pass").await;
    assert_eq!(
        (status, error_code(&body)),
        (502, "CF-ServiceBrokerCatalogInvalid")
    );
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("/services/0/id"),
        "{body}"
    );
    *b.catalog.lock().unwrap() = catalog(("svc-b", "alpha"), &[("plan-b", "small")]);
    let (status, body) = m.register("b", &b.url(), "user", "pass").await;
    assert_eq!(
        (status, error_code(&body)),
        (502, "CF-ServiceBrokerCatalogInvalid")
    );
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("/services/0/name"),
        "{body}"
    );
    assert_eq!(m.snapshot().await, before);
}

#[tokio::test]
async fn updating_a_broker_reads_its_catalog_again_and_keeps_plans_that_have_instances() {
    let m = common::start().await;
    let broker = fake_broker(catalog(
        ("svc-1", "db"),
        &[("p-small", "small"), ("p-big", "big"), ("p-old", "old")],
    ))
    .await;
    let (_, body) = m.register("fake", &broker.url(), "user", "pass").await;
    let guid = common::guid(&body);
    let plan_guid = |name: &'static str| {
        let m = &m;
        async move {
            let (_, found) = m.get(&format!("/v2/service_plans?q=name:{name}")).await;
            found["resources"][0]["metadata"]["guid"]
                .as_str()
                .map(str::to_owned)
        }
    };
    let big = plan_guid("big").await.unwrap();
    let small = plan_guid("small").await.unwrap();
    m.add_instance(&big).await;
    // Make `small` public: visibility survives a sync.
    let (status, body) = m
        .call(
            "PUT",
            &format!("/v2/service_plans/{small}"),
            &common::admin(),
            Some(json!({"public": true})),
        )
        .await;
    assert_eq!(
        (status, body["entity"]["public"].clone()),
        (201, json!(true))
    );

    // The catalog drops `big` (in use) and `old` (unused), renames `small`, adds `new`.
    *broker.catalog.lock().unwrap() = catalog(
        ("svc-1", "db"),
        &[("p-small", "small-renamed"), ("p-new", "new")],
    );
    let response = m
        .http
        .put(format!("{}/v2/service_brokers/{guid}", m.url))
        .bearer_auth(common::admin())
        .body(json!({"name": "renamed"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let warnings = response
        .headers()
        .get("x-cf-warnings")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let warnings = percent_encoding::percent_decode_str(&warnings)
        .decode_utf8()
        .unwrap()
        .into_owned();
    assert!(
        warnings.contains("Plan big") && warnings.contains("deactivated"),
        "{warnings}"
    );
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["entity"]["name"], "renamed");
    assert!(body["metadata"]["updated_at"].is_string());

    let (_, plans) = m.get("/v2/service_plans").await;
    let state: Vec<(String, bool, bool)> = plans["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let e = &p["entity"];
            (
                e["name"].as_str().unwrap().to_owned(),
                e["active"].as_bool().unwrap(),
                e["public"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        state,
        [
            ("small-renamed".to_owned(), true, true),
            ("big".to_owned(), false, false),
            ("new".to_owned(), true, false)
        ]
    );
    let (_, active) = m.get("/v2/service_plans?q=active:true").await;
    assert_eq!(active["total_results"], 2);
    assert_eq!(
        plan_guid("small-renamed").await.unwrap(),
        small,
        "a plan keeps its guid"
    );

    // space_guid cannot change; a broker that now refuses the credentials changes nothing.
    let before = m.snapshot().await;
    let (status, body) = m
        .call(
            "PUT",
            &format!("/v2/service_brokers/{guid}"),
            &common::admin(),
            Some(json!({"space_guid": "s"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "CF-ServiceBrokerInvalid")
    );
    let (status, body) = m
        .call(
            "PUT",
            &format!("/v2/service_brokers/{guid}"),
            &common::admin(),
            Some(json!({"auth_password": "nope"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (502, "CF-ServiceBrokerApiAuthenticationFailed")
    );
    assert_eq!(m.snapshot().await, before);
}

#[tokio::test]
async fn brokers_and_services_with_instances_are_not_removed_unless_purged() {
    let m = common::start().await;
    let broker = fake_broker(catalog(("svc-1", "db"), &[("p-1", "small")])).await;
    let (_, body) = m.register("fake", &broker.url(), "user", "pass").await;
    let broker_guid = common::guid(&body);
    let (_, plans) = m.get("/v2/service_plans").await;
    m.add_instance(plans["resources"][0]["metadata"]["guid"].as_str().unwrap())
        .await;
    // The instance has a binding too: purging removes both.
    sqlx::query(
        "INSERT INTO service_bindings (guid, service_instance_id, app_guid, created_at) \
         SELECT 'binding-1', id, 'app-1', '2026-01-01T00:00:00+00:00' FROM service_instances",
    )
    .execute(m.marketplace.pool())
    .await
    .unwrap();
    let (_, services) = m.get("/v2/services").await;
    let service = common::guid(&services["resources"][0]);

    let before = m.snapshot().await;
    let (status, body) = m
        .call(
            "DELETE",
            &format!("/v2/service_brokers/{broker_guid}"),
            &common::admin(),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].clone(), error_code(&body)),
        (400, json!(270010), "CF-ServiceBrokerNotRemovable")
    );
    let (status, body) = m
        .call(
            "DELETE",
            &format!("/v2/services/{service}"),
            &common::admin(),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].clone(), error_code(&body)),
        (400, json!(10006), "CF-AssociationNotEmpty")
    );
    assert_eq!(m.snapshot().await, before);

    let (status, _) = m
        .call(
            "DELETE",
            &format!("/v2/services/{service}?purge=true"),
            &common::admin(),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(m.get("/v2/service_plans").await.1["total_results"], 0);
    assert_eq!(m.get("/v2/services").await.1["total_results"], 0);
    let (status, _) = m
        .call(
            "DELETE",
            &format!("/v2/service_brokers/{broker_guid}"),
            &common::admin(),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(m.snapshot().await.is_empty());
    let (status, body) = m.get(&format!("/v2/service_brokers/{broker_guid}")).await;
    assert_eq!(
        (status, error_code(&body)),
        (404, "CF-ServiceBrokerNotFound")
    );
}

#[tokio::test]
async fn deleting_a_broker_removes_its_services_and_plans() {
    let m = common::start().await;
    let broker = fake_broker(catalog(
        ("svc-1", "db"),
        &[("p-1", "small"), ("p-2", "large")],
    ))
    .await;
    let (_, body) = m.register("fake", &broker.url(), "user", "pass").await;
    m.post("/v2/services", json!({"label": "unrelated"})).await;
    let guid = body["metadata"]["guid"].as_str().unwrap();
    let (status, _) = m
        .call(
            "DELETE",
            &format!("/v2/service_brokers/{guid}"),
            &common::admin(),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, services) = m.get("/v2/services").await;
    assert_eq!(services["total_results"], 1);
    assert_eq!(services["resources"][0]["entity"]["label"], "unrelated");
    assert_eq!(m.get("/v2/service_plans").await.1["total_results"], 0);
}

#[tokio::test]
async fn broker_passwords_are_sealed_at_rest_when_a_key_is_configured() {
    use osb_marketplace::secret::Secrets;
    let password = "correct-horse-battery-staple";
    let m = common::start_with(|mut c| {
        c.secrets = Secrets::with_keys([9; 32], &[]);
        c
    })
    .await;
    let broker =
        example_memory_broker::start(example_memory_broker::Config::new("admin", password))
            .await
            .unwrap();
    let (status, body) = m.register("memory", &broker.url(), "admin", password).await;
    assert_eq!(status, 201, "{body}");
    let guid = common::guid(&body);
    // Checkpoint the WAL so that the database file holds every write, then look for the text.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(m.marketplace.pool())
        .await
        .unwrap();
    let mut bytes = std::fs::read(&m.db_path).unwrap();
    if let Ok(wal) = std::fs::read(m.db_path.with_extension("db-wal")) {
        bytes.extend(wal);
    }
    assert!(
        !bytes
            .windows(password.len())
            .any(|w| w == password.as_bytes()),
        "the password is in the database file"
    );
    // The sealed password still works: a PUT without a password re-reads the catalog with it.
    let (status, body) = m
        .call(
            "PUT",
            &format!("/v2/service_brokers/{guid}"),
            &common::admin(),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}
