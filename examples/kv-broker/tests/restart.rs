//! What a restart keeps: an operation in progress finishes, and instances, bindings, tokens
//! and keys are still there.
mod common;

use common::*;
use example_kv_broker::{ASYNC_PLAN_ID, SERVICE_ID, SMALL_PLAN_ID};
use osb_client::prelude::*;
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_an_async_provision_finishes_it_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("kv.db");
    let opts = CallOptions::new();

    let broker = running(&database).await;
    let client = client(broker.addr);
    let small = InstanceId::from("keep");
    client
        .provision(
            &small,
            &provision_request(SMALL_PLAN_ID),
            &ProvisionQuery::new(),
            &opts,
        )
        .await
        .unwrap();
    let bound = client
        .bind(
            &small,
            &BindingId::from("b"),
            &ServiceBindingRequest::new(SERVICE_ID, SMALL_PLAN_ID),
            &BindQuery::new(),
            &opts,
        )
        .await
        .unwrap();
    let (uri, token) = credentials(&bound);
    assert_eq!(kv(Method::PUT, &uri, "k", &token, Some("v")).await.0, 204);
    let slow = InstanceId::from("slow");
    let accepted = client
        .provision(
            &slow,
            &provision_request(ASYNC_PLAN_ID),
            &ProvisionQuery::new().with_accepts_incomplete(true),
            &opts,
        )
        .await
        .unwrap()
        .as_accepted()
        .expect("202")
        .clone();
    // The process goes away mid-operation.
    broker.task.abort();
    drop(broker);

    let broker = running(&database).await;
    let client = self::client(broker.addr);
    let uri = uri.replace(&uri[7..uri.find("/kv").unwrap()], &broker.addr.to_string());
    assert_eq!(
        kv(Method::GET, &uri, "k", &token, None).await,
        (200, "v".into())
    );
    let catalog = client.catalog(&opts).await.unwrap();
    let (service, plan) = catalog.find_plan(ASYNC_PLAN_ID).unwrap();
    let done = client
        .wait(&slow, &accepted, &WaitOptions::create(service, plan))
        .await
        .unwrap();
    assert!(matches!(done, PollOutcome::Succeeded(_)), "{done:?}");
    let fetched = client
        .fetch_instance(&small, &FetchInstanceQuery::new(), &opts)
        .await
        .unwrap();
    assert!(matches!(fetched, FetchInstanceOutcome::Found(_)));
}
