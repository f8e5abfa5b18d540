//! Instances and bindings through real brokers over loopback: the kv-broker end to end, and a
//! scripted broker for each fault.

mod common;

use std::time::Duration;

use common::{Reply, scripted_broker};
use serde_json::{Value, json};

fn writer() -> String {
    common::token(&["cloud_controller.read", "cloud_controller.write"])
}

fn code(body: &Value) -> &str {
    body["error_code"].as_str().unwrap_or("")
}

async fn kv_marketplace(
    async_delay: Duration,
) -> (
    common::Running,
    example_kv_broker::Running,
    tempfile::TempDir,
) {
    let m = common::start_working().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = example_kv_broker::Config::new(
        "admin",
        "secret",
        format!("sqlite:{}", dir.path().join("kv.db").display()),
    );
    config.async_delay = async_delay;
    let kv = example_kv_broker::start(config).await.unwrap();
    let (status, body) = m
        .register("kv", &format!("http://{}", kv.addr), "admin", "secret")
        .await;
    assert_eq!(status, 201, "{body}");
    m.publish_all().await;
    (m, kv, dir)
}

/// Binds `instance`, writes and reads a key with the credentials, unbinds (the token stops
/// working), for the lifecycle tests.
async fn bind_use_unbind(m: &common::Running, instance: &str, accepts_incomplete: bool) {
    let (status, binding) = m
        .call(
            "POST",
            &format!("/v2/service_bindings?accepts_incomplete={accepts_incomplete}"),
            &writer(),
            Some(json!({"service_instance_guid": instance, "app_guid": "app-1", "name": "b1"})),
        )
        .await;
    let binding = if accepts_incomplete {
        assert_eq!(status, 202, "{binding}");
        let path = format!(
            "/v2/service_bindings/{}",
            binding["metadata"]["guid"].as_str().unwrap()
        );
        m.settle(&path).await;
        m.call("GET", &path, &writer(), None).await.1
    } else {
        assert_eq!(status, 201, "{binding}");
        binding
    };
    let credentials = &binding["entity"]["credentials"];
    let uri = credentials["uri"].as_str().unwrap();
    let token = credentials["token"].as_str().unwrap();
    let kv = reqwest::Client::new();
    let put = kv
        .put(format!("{uri}/greeting"))
        .bearer_auth(token)
        .body("hello")
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let got = kv
        .get(format!("{uri}/greeting"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.text().await.unwrap(), "hello");

    // A reader sees the binding, not its credentials.
    let guid = binding["metadata"]["guid"].as_str().unwrap();
    let (_, as_reader) = m
        .call(
            "GET",
            &format!("/v2/service_bindings/{guid}"),
            &common::reader(),
            None,
        )
        .await;
    assert_eq!(
        as_reader["entity"]["credentials"],
        json!({"redacted_message": "[PRIVATE DATA HIDDEN]"})
    );
    assert!(!as_reader.to_string().contains(token));
    let (_, listed) = m
        .get(&format!(
            "/v2/service_instances/{instance}/service_bindings"
        ))
        .await;
    assert_eq!(listed["total_results"], 1);

    let (status, _) = m
        .call(
            "DELETE",
            &format!("/v2/service_bindings/{guid}?accepts_incomplete={accepts_incomplete}"),
            &writer(),
            None,
        )
        .await;
    if accepts_incomplete {
        assert_eq!(status, 202);
        m.wait_for(&format!("/v2/service_bindings/{guid}"), |status, _| {
            status == 404
        })
        .await;
    } else {
        assert_eq!(status, 204);
    }
    let revoked = kv
        .get(format!("{uri}/greeting"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 401, "unbinding revokes the token");
    let (status, _) = m.get(&format!("/v2/service_bindings/{guid}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_kv_broker_lifecycle_on_its_synchronous_plan() {
    let (m, _kv, _dir) = kv_marketplace(Duration::from_millis(200)).await;
    let plan = m.plan("small").await;
    let (status, instance) = m.create_instance("my-kv", &plan, true).await;
    assert_eq!(status, 201, "{instance}");
    let e = &instance["entity"];
    assert_eq!(e["last_operation"]["type"], "create");
    assert_eq!(e["last_operation"]["state"], "succeeded");
    assert_eq!(e["service_plan_guid"], plan);
    assert!(e["dashboard_url"].as_str().unwrap().contains("/kv/"));
    let guid = instance["metadata"]["guid"].as_str().unwrap();

    // The fetch-instance endpoint (the kv offering is instances_retrievable).
    let (status, parameters) = m
        .get(&format!("/v2/service_instances/{guid}/parameters"))
        .await;
    assert_eq!((status, parameters), (200, json!({})));

    bind_use_unbind(&m, guid, false).await;

    let (status, _) = m
        .call(
            "DELETE",
            &format!("/v2/service_instances/{guid}"),
            &writer(),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = m.get(&format!("/v2/service_instances/{guid}")).await;
    assert_eq!((status, code(&body)), (404, "CF-ServiceInstanceNotFound"));
}

#[tokio::test]
async fn the_kv_broker_lifecycle_on_its_asynchronous_plan() {
    let (m, _kv, _dir) = kv_marketplace(Duration::from_millis(300)).await;
    let plan = m.plan("async").await;

    // Without accepts_incomplete the broker says it needs it.
    let before = m.snapshot().await;
    let (status, body) = m.create_instance("slow", &plan, false).await;
    assert_eq!(
        (status, code(&body)),
        (400, "CF-ServiceBrokerAsyncRequired"),
        "{body}"
    );
    assert_eq!(
        m.snapshot().await,
        before,
        "a refused provision leaves nothing behind"
    );

    let (status, instance) = m.create_instance("slow", &plan, true).await;
    assert_eq!(status, 202, "{instance}");
    assert_eq!(instance["entity"]["last_operation"]["state"], "in progress");
    let guid = common::guid(&instance);
    let path = format!("/v2/service_instances/{guid}");

    // A second operation while the first runs is refused.
    let (status, body) = m
        .call(
            "DELETE",
            &format!("{path}?accepts_incomplete=true"),
            &writer(),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "CF-AsyncServiceInstanceOperationInProgress")
    );

    let (_, done) = m.settle(&path).await;
    assert_eq!(
        done["entity"]["last_operation"]["state"], "succeeded",
        "{done}"
    );
    bind_use_unbind(&m, &guid, true).await;

    let (status, body) = m
        .call(
            "DELETE",
            &format!("{path}?accepts_incomplete=true"),
            &writer(),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["entity"]["last_operation"]["type"], "delete");
    m.wait_for(&path, |status, _| status == 404).await;
}

#[tokio::test]
async fn sixteen_concurrent_creates_of_one_name_make_one_instance_and_one_provision() {
    let (m, broker) = common::with_scripted().await;
    let plan = m.plan("fast").await;
    let results = futures_join(16, |_| m.create_instance("same", &plan, true)).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let taken = results
        .iter()
        .filter(|(s, b)| *s == 400 && code(b) == "CF-ServiceInstanceNameTaken")
        .count();
    assert_eq!((created, taken), (1, 15), "{results:?}");
    assert_eq!(broker.seen("PUT", "/v2/service_instances/").len(), 1);
    assert_eq!(m.get("/v2/service_instances").await.1["total_results"], 1);
}

async fn futures_join<F, Fut>(n: usize, f: F) -> Vec<(u16, Value)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let mut set = Vec::new();
    for i in 0..n {
        set.push(f(i));
    }
    let mut out = Vec::new();
    // Drive them concurrently on this task.
    let mut pinned: Vec<_> = set.into_iter().map(Box::pin).collect();
    let mut done = vec![None; n];
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, fut) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().map(Option::unwrap));
    out
}

#[tokio::test]
async fn a_500_on_provision_is_relayed_and_orphan_mitigation_deletes_the_instance() {
    let (m, broker) = common::with_scripted().await;
    broker.push(
        "provision",
        Reply::new(500, json!({"description": "the disk is on fire"})),
    );
    let (status, body) = m
        .create_instance("doomed", &m.plan("fast").await, true)
        .await;
    assert_eq!(
        (status, code(&body)),
        (502, "CF-ServiceBrokerRequestRejected"),
        "{body}"
    );
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("the disk is on fire")
    );
    let (_, listed) = m.get("/v2/service_instances?q=name:doomed").await;
    let guid = common::guid(&listed["resources"][0]);
    let path = format!("/v2/service_instances/{guid}");
    let body = m
        .wait_for(&path, |_, b| {
            b["entity"]["orphan_mitigation"]["state"] == "succeeded"
        })
        .await;
    assert_eq!(body["entity"]["last_operation"]["state"], "failed");
    assert_eq!(body["entity"]["orphan_mitigation"]["attempts"], 1);
    let deletes = broker.seen("DELETE", &format!("/v2/service_instances/{guid}"));
    assert_eq!(deletes.len(), 1);
    assert!(
        deletes[0].path.contains("service_id=scripted-svc")
            && deletes[0].path.contains("plan_id=plan-fast")
    );
}

#[tokio::test]
async fn a_timeout_on_bind_triggers_orphan_mitigation_of_the_binding() {
    let (m, broker) = common::with_scripted().await;
    let (_, instance) = m.create_instance("i", &m.plan("fast").await, true).await;
    let instance = common::guid(&instance);
    let mut slow = Reply::new(201, json!({"credentials": {}}));
    slow.delay = Duration::from_secs(2);
    broker.push("bind", slow);
    let (status, body) = m
        .call(
            "POST",
            "/v2/service_bindings",
            &writer(),
            Some(json!({"service_instance_guid": instance, "app_guid": "a"})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (502, "CF-ServiceBrokerApiTimeout"),
        "{body}"
    );
    let (_, listed) = m.get("/v2/service_bindings").await;
    let guid = common::guid(&listed["resources"][0]);
    m.wait_for(&format!("/v2/service_bindings/{guid}"), |_, b| {
        b["entity"]["orphan_mitigation"]["state"] == "succeeded"
    })
    .await;
    assert_eq!(
        broker
            .seen("DELETE", &format!("/service_bindings/{guid}"))
            .len(),
        1
    );
}

#[tokio::test]
async fn an_accepted_provision_that_fails_is_failed_with_the_brokers_description() {
    let (m, broker) = common::with_scripted().await;
    broker.push("provision", Reply::new(202, json!({"operation": "op-1"})));
    broker.push(
        "last_operation",
        Reply::new(200, json!({"state": "in progress"})),
    );
    broker.push(
        "last_operation",
        Reply::new(
            200,
            json!({"state": "failed", "description": "quota exceeded"}),
        ),
    );
    let (status, body) = m.create_instance("f", &m.plan("fast").await, true).await;
    assert_eq!(status, 202, "{body}");
    let guid = body["metadata"]["guid"].as_str().unwrap();
    let (_, done) = m.settle(&format!("/v2/service_instances/{guid}")).await;
    assert_eq!(done["entity"]["last_operation"]["state"], "failed");
    assert_eq!(
        done["entity"]["last_operation"]["description"],
        "quota exceeded"
    );
    let polls = broker.seen("GET", "/last_operation");
    assert!(
        polls.iter().all(|p| p.path.contains("operation=op-1")),
        "{polls:?}"
    );
}

#[tokio::test]
async fn an_operation_past_its_plans_deadline_fails_with_cloud_controllers_wording() {
    let (m, broker) = common::with_scripted().await;
    broker.push("provision", Reply::new(202, json!({})));
    for _ in 0..200 {
        broker.push(
            "last_operation",
            Reply::new(200, json!({"state": "in progress"})),
        );
    }
    let (status, body) = m
        .create_instance("late", &m.plan("bounded").await, true)
        .await;
    assert_eq!(status, 202);
    let guid = common::guid(&body);
    let (_, done) = m.settle(&format!("/v2/service_instances/{guid}")).await;
    assert_eq!(done["entity"]["last_operation"]["state"], "failed");
    assert_eq!(
        done["entity"]["last_operation"]["description"],
        "Service Broker failed to provision within the required time."
    );
    // Orphan mitigation deletes what may have been half-made.
    m.wait_for(&format!("/v2/service_instances/{guid}"), |_, b| {
        b["entity"]["orphan_mitigation"]["state"] == "succeeded"
    })
    .await;
}

#[tokio::test]
async fn a_410_while_deleting_counts_as_deleted() {
    let (m, broker) = common::with_scripted().await;
    let (_, body) = m.create_instance("g", &m.plan("fast").await, true).await;
    let guid = common::guid(&body);
    broker.push("deprovision", Reply::new(202, json!({})));
    broker.push("last_operation", Reply::new(410, json!({})));
    let path = format!("/v2/service_instances/{guid}");
    let (status, _) = m
        .call(
            "DELETE",
            &format!("{path}?accepts_incomplete=true"),
            &writer(),
            None,
        )
        .await;
    assert_eq!(status, 202);
    m.wait_for(&path, |status, _| status == 404).await;
    // A synchronous 410 to the delete itself is a deletion too.
    let (_, body) = m.create_instance("g2", &m.plan("fast").await, true).await;
    let guid = common::guid(&body);
    broker.push("deprovision", Reply::new(410, json!({})));
    let (status, _) = m
        .call(
            "DELETE",
            &format!("/v2/service_instances/{guid}"),
            &writer(),
            None,
        )
        .await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn a_failed_delete_keeps_the_instance_and_can_be_retried() {
    let (m, broker) = common::with_scripted().await;
    let (_, body) = m.create_instance("keep", &m.plan("fast").await, true).await;
    let guid = common::guid(&body);
    broker.push(
        "deprovision",
        Reply::new(500, json!({"description": "busy"})),
    );
    let path = format!("/v2/service_instances/{guid}");
    let (status, body) = m.call("DELETE", &path, &writer(), None).await;
    assert_eq!(
        (status, code(&body)),
        (502, "CF-ServiceBrokerRequestRejected")
    );
    let (status, shown) = m.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(shown["entity"]["last_operation"]["type"], "delete");
    assert_eq!(shown["entity"]["last_operation"]["state"], "failed");
    assert!(
        shown["entity"].get("orphan_mitigation").is_none(),
        "no orphan mitigation after a delete"
    );
    let (status, _) = m.call("DELETE", &path, &writer(), None).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn a_concurrency_error_is_relayed_and_orphan_mitigation_retries_it_later() {
    let (m, broker) = common::with_scripted().await;
    let (_, body) = m.create_instance("c", &m.plan("fast").await, true).await;
    let guid = common::guid(&body);
    let concurrency = || {
        Reply::new(
            422,
            json!({"error": "ConcurrencyError", "description": "busy"}),
        )
    };
    broker.push("bind", concurrency());
    let (status, body) = m
        .call(
            "POST",
            "/v2/service_bindings",
            &writer(),
            Some(json!({"service_instance_guid": guid, "app_guid": "a"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone(), code(&body)),
        (422, json!(270018), "CF-ServiceBrokerConcurrencyError")
    );
    assert_eq!(
        m.get("/v2/service_bindings").await.1["total_results"],
        0,
        "nothing kept: the broker made nothing"
    );

    // Orphan mitigation meeting a ConcurrencyError tries again later.
    broker.push("provision", Reply::new(500, json!({})));
    broker.push("deprovision", concurrency());
    broker.push("deprovision", concurrency());
    let (status, _) = m.create_instance("c2", &m.plan("fast").await, true).await;
    assert_eq!(status, 502);
    let (_, listed) = m.get("/v2/service_instances?q=name:c2").await;
    let guid = common::guid(&listed["resources"][0]);
    let body = m
        .wait_for(&format!("/v2/service_instances/{guid}"), |_, b| {
            b["entity"]["orphan_mitigation"]["state"] == "succeeded"
        })
        .await;
    assert_eq!(body["entity"]["orphan_mitigation"]["attempts"], 3);
    let deletes = broker.seen("DELETE", &format!("/v2/service_instances/{guid}"));
    assert_eq!(deletes.len(), 3);
    assert!(
        deletes[2].at - deletes[1].at >= Duration::from_millis(80),
        "backoff doubles: 20 ms × 2^2"
    );
}

#[tokio::test]
async fn retry_after_sets_the_time_between_polls() {
    let (m, broker) = common::with_scripted().await;
    broker.push("provision", Reply::new(202, json!({})));
    let mut wait = Reply::new(200, json!({"state": "in progress"}));
    wait.retry_after = Some(1);
    broker.push("last_operation", wait);
    let (_, body) = m.create_instance("r", &m.plan("fast").await, true).await;
    let guid = common::guid(&body);
    let (_, done) = m.settle(&format!("/v2/service_instances/{guid}")).await;
    assert_eq!(done["entity"]["last_operation"]["state"], "succeeded");
    let polls = broker.seen("GET", "/last_operation");
    assert_eq!(polls.len(), 2);
    let gap = polls[1].at - polls[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "the second poll came {gap:?} after the first, not after Retry-After: 1"
    );
}

#[tokio::test]
async fn an_asynchronous_binding_is_polled_then_fetched_for_its_credentials() {
    let (m, broker) = common::with_scripted().await;
    let (_, body) = m.create_instance("b", &m.plan("fast").await, true).await;
    let instance = common::guid(&body);
    broker.push("bind", Reply::new(202, json!({"operation": "bind-1"})));
    let (status, body) = m
        .call(
            "POST",
            "/v2/service_bindings?accepts_incomplete=true",
            &writer(),
            Some(json!({"service_instance_guid": instance, "app_guid": "a"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let guid = common::guid(&body);
    let path = format!("/v2/service_bindings/{guid}");
    let (_, done) = m.settle(&path).await;
    assert_eq!(done["entity"]["last_operation"]["state"], "succeeded");
    let (_, as_writer) = m.call("GET", &path, &writer(), None).await;
    assert_eq!(
        as_writer["entity"]["credentials"]["password"],
        "fetched-secret",
        "{as_writer} {:?}",
        broker.seen("GET", "")
    );
    assert!(
        !broker
            .seen("GET", &format!("/service_bindings/{guid}/last_operation"))
            .is_empty()
    );
}

#[tokio::test]
async fn a_restart_mid_operation_resumes_polling_and_loses_or_doubles_nothing() {
    let m = common::start_with(common::fast).await;
    let worker = m.marketplace.spawn_worker();
    let broker = scripted_broker().await;
    m.register("scripted", &broker.url(), "user", "pass").await;
    m.publish_all().await;
    broker.push(
        "provision",
        Reply::new(202, json!({"operation": "slow-op"})),
    );
    for _ in 0..3 {
        broker.push(
            "last_operation",
            Reply::new(200, json!({"state": "in progress"})),
        );
    }
    let (status, body) = m
        .create_instance("survivor", &m.plan("fast").await, true)
        .await;
    assert_eq!(status, 202);
    let guid = common::guid(&body);

    // Stop the worker (the process "dies"), then open the same database in a new marketplace.
    worker.abort();
    let db = m.db_path.clone();
    let config = common::fast(osb_marketplace::Config::new(
        format!("sqlite:{}", db.display()),
        osb_marketplace::auth::TokenKeys::hs256(common::KEY),
    ));
    let again = osb_marketplace::Marketplace::open(config).await.unwrap();
    again.spawn_worker();
    let path = format!("/v2/service_instances/{guid}");
    m.wait_for(&path, |_, b| {
        b["entity"]["last_operation"]["state"] == "succeeded"
    })
    .await;
    assert_eq!(
        broker.seen("PUT", "/v2/service_instances/").len(),
        1,
        "the provision was sent once"
    );
    assert!(
        broker
            .seen("GET", "/last_operation")
            .iter()
            .all(|p| p.path.contains("operation=slow-op"))
    );
}

#[tokio::test]
async fn a_request_left_in_flight_is_sent_again_after_a_restart() {
    let m = common::start_with(common::fast).await;
    let broker = scripted_broker().await;
    m.register("scripted", &broker.url(), "user", "pass").await;
    m.publish_all().await;
    // The broker never answers in time: the marketplace "dies" while the request is in flight.
    let mut hang = Reply::new(201, json!({}));
    hang.delay = Duration::from_secs(30);
    broker.push("provision", hang);
    let plan = m.plan("fast").await;
    let request = tokio::spawn({
        let url = m.url.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{url}/v2/service_instances"))
                .bearer_auth(writer())
                .body(
                    json!({"name": "inflight", "service_plan_guid": plan, "space_guid": "s"})
                        .to_string(),
                )
                .send()
                .await
        }
    });
    let mut listed = Value::Null;
    for _ in 0..500 {
        listed = m.get("/v2/service_instances?q=name:inflight").await.1;
        if listed["total_results"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    request.abort();
    let guid = common::guid(&listed["resources"][0]);
    let again = osb_marketplace::Marketplace::open(common::fast(osb_marketplace::Config::new(
        format!("sqlite:{}", m.db_path.display()),
        osb_marketplace::auth::TokenKeys::hs256(common::KEY),
    )))
    .await
    .unwrap();
    again.spawn_worker();
    m.wait_for(&format!("/v2/service_instances/{guid}"), |_, b| {
        b["entity"]["last_operation"]["state"] == "succeeded"
    })
    .await;
    let puts = broker.seen("PUT", &format!("/v2/service_instances/{guid}"));
    assert_eq!(puts.len(), 2, "sent again, to the same instance id");
}

/// Requests on instances and bindings that must each be refused with a CF error body, leaving
/// the database unchanged (and the broker uncalled).
#[tokio::test]
async fn bad_input_on_instances_and_bindings_gets_a_cf_error_and_changes_nothing() {
    let (m, broker) = common::with_scripted().await;
    let plan = m.plan("fast").await;
    let (_, body) = m.create_instance("taken", &plan, true).await;
    let instance = common::guid(&body);
    let (status, body) = m
        .call(
            "POST",
            "/v2/service_bindings",
            &writer(),
            Some(json!({"service_instance_guid": instance, "app_guid": "app-1", "name": "bound"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let binding = common::guid(&body);
    // An unbindable service, created directly, with a plan it cannot have: its plans are the
    // broker's only, so an inactive plan stands in.
    sqlx::query("UPDATE service_plans SET active = 0 WHERE name = 'bounded'")
        .execute(m.marketplace.pool())
        .await
        .unwrap();
    let inactive = m.plan("bounded").await;
    let (_, other_service) = m.post("/v2/services", json!({"label": "v1-service"})).await;
    let _ = other_service;
    let missing = "11111111-2222-3333-4444-555555555555";
    let long_name = "n".repeat(256);
    let long_tags: Vec<String> = (0..30).map(|i| format!("{i:0>80}")).collect();
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20));
    let create = |patch: Value| {
        let mut body = json!({"name": "new", "service_plan_guid": plan, "space_guid": "space-1"});
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body.to_string()
    };
    let si = "/v2/service_instances".to_owned();
    let sb = "/v2/service_bindings".to_owned();
    #[rustfmt::skip]
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        ("POST", si.clone(), "{".into(), 400, "CF-MessageParseError"),
        ("POST", si.clone(), "[]".into(), 400, "CF-MessageParseError"),
        ("POST", si.clone(), "".into(), 400, "CF-MessageParseError"),
        ("POST", si.clone(), create(json!({"name": null})), 400, "CF-MessageParseError"),
        ("POST", si.clone(), create(json!({"name": ""})), 400, "CF-MessageParseError"),
        ("POST", si.clone(), create(json!({"name": 3})), 400, "CF-MessageParseError"),
        ("POST", si.clone(), create(json!({"service_plan_guid": null})), 400, "CF-MessageParseError"),
        ("POST", si.clone(), create(json!({"service_plan_guid": true})), 400, "CF-MessageParseError"),
        ("POST", si.clone(), create(json!({"space_guid": null})), 400, "CF-MessageParseError"),
        ("POST", si.clone(), create(json!({"space_guid": ["s"]})), 400, "CF-MessageParseError"),
        ("POST", si.clone(), create(json!({"parameters": "x"})), 400, "CF-MessageParseError"),
        ("POST", si.clone(), create(json!({"parameters": [1]})), 400, "CF-MessageParseError"),
        ("POST", si.clone(), create(json!({"tags": "t"})), 400, "CF-MessageParseError"),
        ("POST", si.clone(), create(json!({"tags": [1, 2]})), 400, "CF-MessageParseError"),
        ("POST", si.clone(), create(json!({"name": long_name})), 400, "CF-ServiceInstanceNameTooLong"),
        ("POST", si.clone(), create(json!({"tags": long_tags})), 400, "CF-ServiceInstanceTagsTooLong"),
        ("POST", si.clone(), create(json!({"service_plan_guid": missing})), 400, "CF-InvalidRelation"),
        ("POST", si.clone(), create(json!({"service_plan_guid": inactive})), 400, "CF-ServicePlanInvalid"),
        ("POST", si.clone(), create(json!({"name": "taken"})), 400, "CF-ServiceInstanceNameTaken"),
        ("POST", format!("{si}?accepts_incomplete=maybe"), create(json!({})), 400, "CF-BadQueryParameter"),
        ("POST", si.clone(), big.clone(), 413, "CF-InvalidRequest"),
        ("GET", format!("{si}/{missing}"), String::new(), 404, "CF-ServiceInstanceNotFound"),
        ("GET", format!("{si}/{missing}/service_bindings"), String::new(), 404, "CF-ServiceInstanceNotFound"),
        ("GET", format!("{si}/{missing}/parameters"), String::new(), 404, "CF-ServiceInstanceNotFound"),
        ("GET", format!("{si}?q=plan:x"), String::new(), 400, "CF-BadQueryParameter"),
        ("GET", format!("{si}?results-per-page=0"), String::new(), 400, "CF-BadQueryParameter"),
        ("PUT", format!("{si}/{missing}"), "{}".into(), 404, "CF-ServiceInstanceNotFound"),
        ("PUT", format!("{si}/{instance}"), "{".into(), 400, "CF-MessageParseError"),
        ("PUT", format!("{si}/{instance}"), r#"{"name": ""}"#.into(), 400, "CF-MessageParseError"),
        ("PUT", format!("{si}/{instance}"), r#"{"parameters": 1}"#.into(), 400, "CF-MessageParseError"),
        ("PUT", format!("{si}/{instance}"), r#"{"maintenance_info": {"version": 2}}"#.into(), 400, "CF-MessageParseError"),
        ("PUT", format!("{si}/{instance}"), format!(r#"{{"service_plan_guid": "{missing}"}}"#), 400, "CF-InvalidRelation"),
        ("PUT", format!("{si}/{instance}"), format!(r#"{{"service_plan_guid": "{inactive}"}}"#), 400, "CF-ServicePlanInvalid"),
        ("PUT", format!("{si}/{instance}?accepts_incomplete=yes"), "{}".into(), 400, "CF-BadQueryParameter"),
        ("DELETE", format!("{si}/{missing}"), String::new(), 404, "CF-ServiceInstanceNotFound"),
        ("DELETE", format!("{si}/{instance}"), String::new(), 400, "CF-AssociationNotEmpty"),
        ("DELETE", format!("{si}/{instance}?recursive=perhaps"), String::new(), 400, "CF-BadQueryParameter"),
        ("POST", sb.clone(), "{".into(), 400, "CF-MessageParseError"),
        ("POST", sb.clone(), "{}".into(), 400, "CF-MessageParseError"),
        ("POST", sb.clone(), r#"{"service_instance_guid": 1}"#.into(), 400, "CF-MessageParseError"),
        ("POST", sb.clone(), format!(r#"{{"service_instance_guid": "{instance}", "app_guid": 5}}"#), 400, "CF-MessageParseError"),
        ("POST", sb.clone(), format!(r#"{{"service_instance_guid": "{instance}", "app_guid": ""}}"#), 400, "CF-MessageParseError"),
        ("POST", sb.clone(), format!(r#"{{"service_instance_guid": "{instance}", "parameters": []}}"#), 400, "CF-MessageParseError"),
        ("POST", sb.clone(), format!(r#"{{"service_instance_guid": "{missing}", "app_guid": "a"}}"#), 400, "CF-InvalidRelation"),
        ("POST", sb.clone(), format!(r#"{{"service_instance_guid": "{instance}", "app_guid": "app-1"}}"#), 400, "CF-ServiceBindingAppServiceTaken"),
        ("POST", sb.clone(), format!(r#"{{"service_instance_guid": "{instance}", "app_guid": "app-2", "name": "bound"}}"#),
            400,
            "CF-ServiceBindingAppServiceTaken",
        ),
        ("POST", format!("{sb}?accepts_incomplete=2"), format!(r#"{{"service_instance_guid": "{instance}"}}"#), 400, "CF-BadQueryParameter"),
        ("POST", sb.clone(), big.clone(), 413, "CF-InvalidRequest"),
        ("GET", format!("{sb}/{missing}"), String::new(), 404, "CF-ServiceBindingNotFound"),
        ("GET", format!("{sb}/{missing}/parameters"), String::new(), 404, "CF-ServiceBindingNotFound"),
        ("GET", format!("{sb}?q=credentials:x"), String::new(), 400, "CF-BadQueryParameter"),
        ("DELETE", format!("{sb}/{missing}"), String::new(), 404, "CF-ServiceBindingNotFound"),
        ("PUT", format!("{sb}/{binding}"), "{}".into(), 404, "CF-NotFound"),
    ];
    assert!(cases.len() >= 40, "{}", cases.len());
    let before = m.snapshot().await;
    let calls_before = broker.script.lock().unwrap().seen.len();
    for (method, path, body, status, expected) in &cases {
        let response = m
            .http
            .request(method.parse().unwrap(), format!("{}{path}", m.url))
            .bearer_auth(common::token(&["cloud_controller.admin"]))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let got = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert_eq!(
            (got, code(&body)),
            (*status, *expected),
            "{method} {path}: {body}"
        );
    }
    assert_eq!(
        m.snapshot().await,
        before,
        "a refused request changed the database"
    );
    assert_eq!(
        broker.script.lock().unwrap().seen.len(),
        calls_before,
        "a refused request reached the broker"
    );
}

#[tokio::test]
async fn an_unbindable_service_is_refused_and_plan_changes_follow_plan_updateable() {
    let m = common::start_working().await;
    let mut catalog = common::catalog(("svc-u", "unbindable"), &[("p-a", "a"), ("p-b", "b")]);
    catalog["services"][0]["bindable"] = json!(false);
    let broker = common::fake_broker(catalog).await;
    m.register("fake", &broker.url(), "user", "pass").await;
    m.publish_all().await;
    let scripted = scripted_broker().await;
    m.register("scripted", &scripted.url(), "user", "pass")
        .await;
    m.publish_all().await;

    // The fake broker serves only its catalog, so instances of it are made in the database;
    // binding is refused before any broker call.
    let plan_a = m.plan("a").await;
    m.add_instance(&plan_a).await;
    let (_, listed) = m
        .get(&format!(
            "/v2/service_instances?q=service_plan_guid:{plan_a}"
        ))
        .await;
    let instance = common::guid(&listed["resources"][0]);
    let (status, body) = m
        .call(
            "POST",
            "/v2/service_bindings",
            &writer(),
            Some(json!({"service_instance_guid": instance, "app_guid": "a"})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "CF-UnbindableService"));
    let (status, body) = m
        .call(
            "PUT",
            &format!("/v2/service_instances/{instance}"),
            &writer(),
            Some(json!({"service_plan_guid": m.plan("b").await})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "CF-ServicePlanInvalid"),
        "plan_updateable is false: {body}"
    );
    let (status, body) = m
        .call(
            "PUT",
            &format!("/v2/service_instances/{instance}"),
            &writer(),
            Some(json!({"service_plan_guid": m.plan("fast").await})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "CF-ServicePlanInvalid"),
        "another service's plan: {body}"
    );

    // The scripted offering is plan_updateable: the plan changes once the broker says so, with
    // previous_values sent.
    let (_, created) = m.create_instance("upd", &m.plan("fast").await, true).await;
    let guid = common::guid(&created);
    sqlx::query("UPDATE service_plans SET active = 1")
        .execute(m.marketplace.pool())
        .await
        .unwrap();
    let bounded = m.plan("bounded").await;
    let (status, body) = m
        .call(
            "PUT",
            &format!("/v2/service_instances/{guid}"),
            &writer(),
            Some(json!({"service_plan_guid": bounded, "name": "renamed"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["entity"]["service_plan_guid"], bounded);
    assert_eq!(body["entity"]["name"], "renamed");
    assert_eq!(body["entity"]["last_operation"]["type"], "update");
    assert_eq!(
        scripted
            .seen("PATCH", &format!("/v2/service_instances/{guid}"))
            .len(),
        1
    );
}

#[tokio::test]
async fn binding_credentials_and_request_parameters_are_sealed_at_rest_with_a_key() {
    use osb_marketplace::secret::Secrets;
    let m = common::start_with(|c| {
        let mut c = common::fast(c);
        c.secrets = Secrets::with_keys([5; 32], &[]);
        c
    })
    .await;
    m.marketplace.spawn_worker();
    let broker = scripted_broker().await;
    m.register("scripted", &broker.url(), "user", "pass").await;
    m.publish_all().await;
    broker.push("provision", Reply::new(202, json!({})));
    for _ in 0..3 {
        broker.push(
            "last_operation",
            Reply::new(200, json!({"state": "in progress"})),
        );
    }
    let (status, body) = m
        .call(
            "POST",
            "/v2/service_instances?accepts_incomplete=true",
            &writer(),
            Some(json!({"name": "sealed", "service_plan_guid": m.plan("fast").await, "space_guid": "s",
                        "parameters": {"admin_password": "param-secret-value"}})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let guid = common::guid(&body);
    m.settle(&format!("/v2/service_instances/{guid}")).await;
    let (status, binding) = m
        .call(
            "POST",
            "/v2/service_bindings",
            &writer(),
            Some(json!({"service_instance_guid": guid, "app_guid": "a"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        binding["entity"]["credentials"]["password"],
        "scripted-secret"
    );
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(m.marketplace.pool())
        .await
        .unwrap();
    let bytes = std::fs::read(&m.db_path).unwrap();
    for secret in ["scripted-secret", "param-secret-value", "pass"] {
        let needle = format!("\"{secret}\"");
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{secret} is in the database file"
        );
    }
    // The broker received the parameters as sent.
    assert_eq!(
        broker
            .seen("PUT", &format!("/v2/service_instances/{guid}?"))
            .len(),
        1
    );
}

#[tokio::test]
async fn private_plans_need_an_admin_and_a_refused_update_renames_nothing() {
    let m = common::start_working().await;
    let broker = scripted_broker().await;
    m.register("scripted", &broker.url(), "user", "pass").await;
    let fast = m.plan("fast").await;
    let (status, body) = m.create_instance("private", &fast, true).await;
    assert_eq!(
        (status, code(&body)),
        (403, "CF-NotAuthorized"),
        "plans are private until made public"
    );
    let (status, created) = m
        .call(
            "POST",
            "/v2/service_instances",
            &common::admin(),
            Some(json!({"name": "by-admin", "service_plan_guid": fast, "space_guid": "s"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let guid = common::guid(&created);
    let path = format!("/v2/service_instances/{guid}");

    // The broker refuses the update: the new name and tags are not kept.
    broker.push("update", Reply::new(500, json!({"description": "no"})));
    let (status, _) = m
        .call(
            "PUT",
            &path,
            &common::admin(),
            Some(json!({"name": "renamed", "tags": ["t"], "parameters": {"a": 1}})),
        )
        .await;
    assert_eq!(status, 502);
    let (_, shown) = m.get(&path).await;
    assert_eq!(
        (
            shown["entity"]["name"].clone(),
            shown["entity"]["tags"].clone()
        ),
        (json!("by-admin"), json!([]))
    );
    assert_eq!(shown["entity"]["last_operation"]["state"], "failed");

    // Accepted, then done: the name, tags and context follow.
    broker.push("update", Reply::new(202, json!({"operation": "u-1"})));
    let (status, _) = m
        .call(
            "PUT",
            &format!("{path}?accepts_incomplete=true"),
            &common::admin(),
            Some(json!({"name": "renamed", "tags": ["t"], "parameters": {"a": 2}})),
        )
        .await;
    assert_eq!(status, 202);
    let (_, done) = m.settle(&path).await;
    assert_eq!(
        done["entity"]["last_operation"]["state"], "succeeded",
        "{done}"
    );
    assert_eq!(
        (
            done["entity"]["name"].clone(),
            done["entity"]["tags"].clone()
        ),
        (json!("renamed"), json!(["t"]))
    );
}

#[tokio::test]
async fn a_410_while_polling_a_create_is_not_an_answer_and_maintenance_must_match_the_plan() {
    let (m, broker) = common::with_scripted().await;
    broker.push("provision", Reply::new(202, json!({})));
    broker.push("last_operation", Reply::new(410, json!({})));
    let (status, body) = m
        .create_instance("gone-then-done", &m.plan("fast").await, true)
        .await;
    assert_eq!(status, 202);
    let guid = common::guid(&body);
    let path = format!("/v2/service_instances/{guid}");
    let (_, done) = m.settle(&path).await;
    assert_eq!(
        done["entity"]["last_operation"]["state"], "succeeded",
        "polling went on after the 410"
    );
    assert_eq!(
        broker
            .seen(
                "GET",
                &format!("/v2/service_instances/{guid}/last_operation")
            )
            .len(),
        2
    );

    // The scripted plans have no maintenance_info: no version can be asked for.
    let before = m.snapshot().await;
    let (status, body) = m
        .call(
            "PUT",
            &path,
            &writer(),
            Some(json!({"maintenance_info": {"version": "2.0.0"}})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (422, "CF-UnprocessableEntity"),
        "{body}"
    );
    assert_eq!(m.snapshot().await, before);
}
