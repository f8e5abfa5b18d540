//! The kv-broker through osb-client over loopback: credentials that really work, revocation,
//! rotation, plan limits, asynchronous provisioning and idempotent repeats.
mod common;

use common::*;
use example_kv_broker::{ASYNC_PLAN_ID, SERVICE_ID, SIZED_PLAN_ID, SMALL_PLAN_ID};
use osb_client::prelude::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_credentials_read_and_write_keys_until_unbound() {
    let dir = tempfile::tempdir().unwrap();
    let broker = running(&dir.path().join("kv.db")).await;
    let client = client(broker.addr);
    let opts = CallOptions::new();
    let catalog = client.catalog(&opts).await.unwrap();
    assert!(
        !catalog.lint().iter().any(|p| p.is_error()),
        "{:?}",
        catalog.lint()
    );

    let instance = InstanceId::from("db-1");
    let outcome = client
        .provision(
            &instance,
            &provision_request(SMALL_PLAN_ID),
            &ProvisionQuery::new(),
            &opts,
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, ProvisionOutcome::Created(_)),
        "{outcome:?}"
    );
    let bind = ServiceBindingRequest::new(SERVICE_ID, SMALL_PLAN_ID);
    let first = client
        .bind(
            &instance,
            &BindingId::from("b-1"),
            &bind,
            &BindQuery::new(),
            &opts,
        )
        .await
        .unwrap();
    let (uri, token) = credentials(&first);
    assert_eq!(uri, format!("http://{}/kv/db-1", broker.addr));

    assert_eq!(
        kv(Method::PUT, &uri, "greeting", &token, Some("hello"))
            .await
            .0,
        204
    );
    assert_eq!(
        kv(Method::GET, &uri, "greeting", &token, None).await,
        (200, "hello".into())
    );
    assert_eq!(kv(Method::GET, &uri, "missing", &token, None).await.0, 404);
    assert_eq!(
        kv(Method::GET, &uri, "greeting", "wrong-token", None)
            .await
            .0,
        401
    );

    // An identical repeat gives the same credentials; a different one conflicts.
    let again = client
        .bind(
            &instance,
            &BindingId::from("b-1"),
            &bind,
            &BindQuery::new(),
            &opts,
        )
        .await
        .unwrap();
    assert!(matches!(again, BindOutcome::AlreadyExists(_)));
    assert_eq!(credentials(&again), (uri.clone(), token.clone()));
    let other = bind
        .clone()
        .with_parameters(serde_json::Map::from_iter([("x".to_string(), json!(1))]));
    let conflict = client
        .bind(
            &instance,
            &BindingId::from("b-1"),
            &other,
            &BindQuery::new(),
            &opts,
        )
        .await
        .unwrap_err();
    assert!(matches!(conflict, osb_client::Error::Broker { status, .. } if status == 409));

    // Rotation: a new token, and the old one keeps working until its binding is unbound.
    let rotated = client
        .bind(
            &instance,
            &BindingId::from("b-2"),
            &ServiceBindingRequest::rotation(BindingId::from("b-1")),
            &BindQuery::new(),
            &opts,
        )
        .await
        .unwrap();
    let (_, new_token) = credentials(&rotated);
    assert_ne!(new_token, token);
    assert_eq!(
        kv(Method::GET, &uri, "greeting", &new_token, None).await.0,
        200
    );
    assert_eq!(kv(Method::GET, &uri, "greeting", &token, None).await.0, 200);
    let unbound = client
        .unbind(
            &instance,
            &BindingId::from("b-1"),
            &UnbindQuery::new(SERVICE_ID, SMALL_PLAN_ID),
            &opts,
        )
        .await
        .unwrap();
    assert!(matches!(unbound, DeleteOutcome::Deleted));
    assert_eq!(
        kv(Method::GET, &uri, "greeting", &token, None).await.0,
        401,
        "revoked"
    );
    assert_eq!(
        kv(Method::GET, &uri, "greeting", &new_token, None).await.0,
        200
    );

    // A token opens its own instance only.
    let other_instance = InstanceId::from("db-2");
    client
        .provision(
            &other_instance,
            &provision_request(SMALL_PLAN_ID),
            &ProvisionQuery::new(),
            &opts,
        )
        .await
        .unwrap();
    let other_uri = format!("http://{}/kv/db-2", broker.addr);
    assert_eq!(
        kv(Method::GET, &other_uri, "greeting", &new_token, None)
            .await
            .0,
        401
    );

    // Deprovision revokes everything; the fetch is 404 and a repeat 410.
    let deleted = client
        .deprovision(
            &instance,
            &DeprovisionQuery::new(SERVICE_ID, SMALL_PLAN_ID),
            &opts,
        )
        .await
        .unwrap();
    assert!(matches!(deleted, DeleteOutcome::Deleted));
    assert_eq!(
        kv(Method::GET, &uri, "greeting", &new_token, None).await.0,
        401
    );
    let gone = client
        .deprovision(
            &instance,
            &DeprovisionQuery::new(SERVICE_ID, SMALL_PLAN_ID),
            &opts,
        )
        .await
        .unwrap();
    assert!(matches!(gone, DeleteOutcome::Gone));
    let health = reqwest::get(format!("http://{}/healthz", broker.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sized_plan_checks_and_enforces_max_keys() {
    let dir = tempfile::tempdir().unwrap();
    let broker = running(&dir.path().join("kv.db")).await;
    let client = client(broker.addr);
    let opts = CallOptions::new();
    let too_big = provision_request(SIZED_PLAN_ID).with_parameters(serde_json::Map::from_iter([(
        "max_keys".to_string(),
        json!(5000),
    )]));
    let refused = client
        .provision(
            &InstanceId::from("s-0"),
            &too_big,
            &ProvisionQuery::new(),
            &opts,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, osb_client::Error::Broker { status, .. } if status == 400),
        "{refused}"
    );

    let two = provision_request(SIZED_PLAN_ID).with_parameters(serde_json::Map::from_iter([(
        "max_keys".to_string(),
        json!(2),
    )]));
    let instance = InstanceId::from("s-1");
    client
        .provision(&instance, &two, &ProvisionQuery::new(), &opts)
        .await
        .unwrap();
    let bound = client
        .bind(
            &instance,
            &BindingId::from("b"),
            &ServiceBindingRequest::new(SERVICE_ID, SIZED_PLAN_ID),
            &BindQuery::new(),
            &opts,
        )
        .await
        .unwrap();
    let (uri, token) = credentials(&bound);
    assert_eq!(kv(Method::PUT, &uri, "a", &token, Some("1")).await.0, 204);
    assert_eq!(kv(Method::PUT, &uri, "b", &token, Some("2")).await.0, 204);
    assert_full(&uri, "c", &token, 2).await;
    assert_eq!(
        kv(Method::PUT, &uri, "a", &token, Some("changed")).await.0,
        204,
        "overwrite"
    );
    assert_eq!(kv(Method::DELETE, &uri, "b", &token, None).await.0, 204);
    assert_eq!(kv(Method::PUT, &uri, "c", &token, Some("3")).await.0, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_sets_the_limit_of_an_instance_provisioned_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let broker = running(&dir.path().join("kv.db")).await;
    let client = client(broker.addr);
    let opts = CallOptions::new();
    let instance = InstanceId::from("u-1");
    let (uri, token) = small_instance_bound(&client, &instance).await;
    assert_eq!(kv(Method::PUT, &uri, "a", &token, Some("1")).await.0, 204);
    assert_eq!(kv(Method::PUT, &uri, "b", &token, Some("2")).await.0, 204);
    let two_keys = ServiceInstanceUpdateRequest::new(SERVICE_ID).with_parameters(
        serde_json::Map::from_iter([("max_keys".to_string(), json!(2))]),
    );
    client
        .update(&instance, &two_keys, &UpdateQuery::new(), &opts)
        .await
        .unwrap();
    assert_full(&uri, "c", &token, 2).await;
    assert_eq!(
        kv(Method::PUT, &uri, "a", &token, Some("again")).await.0,
        204
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_plan_answers_202_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = running(&dir.path().join("kv.db")).await;
    let client = client(broker.addr);
    let opts = CallOptions::new();
    let instance = InstanceId::from("a-1");
    let request = provision_request(ASYNC_PLAN_ID);
    let refused = client
        .provision(&instance, &request, &ProvisionQuery::new(), &opts)
        .await
        .unwrap_err();
    assert!(matches!(refused, osb_client::Error::Broker { status, .. } if status == 422));
    let query = ProvisionQuery::new().with_accepts_incomplete(true);
    let outcome = client
        .provision(&instance, &request, &query, &opts)
        .await
        .unwrap();
    let accepted = outcome.as_accepted().expect("202").clone();
    let repeat = client
        .provision(&instance, &request, &query, &opts)
        .await
        .unwrap();
    assert_eq!(
        repeat.as_accepted().and_then(|a| a.operation_id()),
        accepted.operation_id(),
        "the same operation on a repeat"
    );
    let catalog = client.catalog(&opts).await.unwrap();
    let (service, plan) = catalog.find_plan(ASYNC_PLAN_ID).unwrap();
    let done = client
        .wait(&instance, &accepted, &WaitOptions::create(service, plan))
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert!(done.is_some());
    let fetched = client
        .fetch_instance(&instance, &FetchInstanceQuery::new(), &opts)
        .await
        .unwrap();
    assert!(matches!(fetched, FetchInstanceOutcome::Found(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_goes_away_answers_503_with_an_osb_body() {
    let dir = tempfile::tempdir().unwrap();
    let broker = running(&dir.path().join("kv.db")).await;
    let client = client(broker.addr);
    let opts = CallOptions::new();
    let osb_store::AnyStore::Sqlite(store) = broker.broker.store() else {
        panic!("the tests run on SQLite")
    };
    store.pool().close().await;
    let refused = client
        .provision(
            &InstanceId::from("x"),
            &provision_request(SMALL_PLAN_ID),
            &ProvisionQuery::new(),
            &opts,
        )
        .await
        .unwrap_err();
    let osb_client::Error::Broker { status, body, .. } = &refused else {
        panic!("{refused:?}")
    };
    assert_eq!(*status, 503);
    assert!(
        body.description
            .as_deref()
            .unwrap_or("")
            .contains("unavailable"),
        "{body:?}"
    );
    let health = reqwest::get(format!("http://{}/healthz", broker.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    // The catalog is served from memory and still answers.
    assert!(client.catalog(&opts).await.is_ok());
}
