//! `Client::wait` / `wait_binding`: the poll query is built from the `202` answer and the
//! plan, the plan's deadline applies, and the final state comes back; against a scripted server
//! and against the memory broker over loopback.

mod common;

use std::time::{Duration, Instant};

use common::{Reply, Server, fast_policy};
use example_memory_broker::{ASYNC_PLAN_ID, Config, SERVICE_ID};
use osb_client::Error;
use osb_client::prelude::*;
use osb_types::{AsyncOperation, AsyncPermit, ServiceInstanceAsyncOperation};
use serde_json::json;

fn permit() -> AsyncPermit {
    AsyncPermit::from_accepts_incomplete(Some(true)).unwrap()
}

fn offering(max_polling: Option<i64>) -> (Service, Plan) {
    let mut plan = Plan::new(PlanId::new("plan-9"), "slow", "Slow");
    plan.maximum_polling_duration = max_polling;
    let service = Service::new("db", ServiceId::new("svc-9"), "A db", true, [plan.clone()]);
    (service, plan)
}

#[tokio::test]
async fn wait_builds_the_query_from_the_answer_and_the_plan() {
    let server = Server::start(vec![
        Reply::json(200, json!({"state": "in progress"})),
        Reply::json(200, json!({"state": "succeeded", "description": "done"})),
    ])
    .await;
    let (service, plan) = offering(None);
    let accepted = Accepted::<ServiceInstanceAsyncOperation>::with_operation(permit(), "op-1");
    let options = WaitOptions::create(&service, &plan).policy(fast_policy());
    let outcome = server
        .client()
        .wait(&InstanceId::new("i-9"), &accepted, &options)
        .await
        .unwrap();
    let resource = outcome.into_result().unwrap().unwrap();
    assert_eq!(resource.description.as_deref(), Some("done"));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for request in requests {
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/v2/service_instances/i-9/last_operation");
        assert_eq!(request.query_param("service_id").as_deref(), Some("svc-9"));
        assert_eq!(request.query_param("plan_id").as_deref(), Some("plan-9"));
        assert_eq!(request.query_param("operation").as_deref(), Some("op-1"));
    }
}

#[tokio::test]
async fn wait_binding_polls_the_binding_and_reads_gone_as_deleted() {
    let server = Server::start(vec![Reply::json(410, json!({}))]).await;
    let (service, plan) = offering(None);
    let accepted = Accepted::<AsyncOperation>::empty(permit());
    let options = WaitOptions::delete(&service, &plan).policy(fast_policy());
    let outcome = server
        .client()
        .wait_binding(
            &InstanceId::new("i-9"),
            &BindingId::new("b-9"),
            &accepted,
            &options,
        )
        .await
        .unwrap();
    assert_eq!(outcome, PollOutcome::Gone);
    assert!(matches!(outcome.into_result(), Ok(None)));
    let request = server.last_request();
    assert_eq!(
        request.path,
        "/v2/service_instances/i-9/service_bindings/b-9/last_operation"
    );
    assert_eq!(
        request.query_param("operation"),
        None,
        "no token, none sent"
    );
    assert_eq!(request.query_param("plan_id").as_deref(), Some("plan-9"));
}

#[tokio::test]
async fn the_plans_deadline_ends_the_wait() {
    let server = Server::always(Reply::json(200, json!({"state": "in progress"}))).await;
    let (service, plan) = offering(Some(0));
    let accepted = Accepted::<ServiceInstanceAsyncOperation>::empty(permit());
    let options = WaitOptions::update(&service, &plan).policy(fast_policy());
    let started = Instant::now();
    let outcome = server
        .client()
        .wait(&InstanceId::new("i-9"), &accepted, &options)
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(outcome, PollOutcome::DeadlineExceeded { .. }),
        "{outcome:?}"
    );
    let err = outcome.into_result().unwrap_err();
    assert!(matches!(err, Error::PollDeadline { .. }), "{err:?}");
}

#[tokio::test]
async fn a_failed_operation_becomes_an_error_with_its_description() {
    let server = Server::always(Reply::json(
        200,
        json!({"state": "failed", "description": "out of disk"}),
    ))
    .await;
    let (service, plan) = offering(None);
    let accepted = Accepted::<ServiceInstanceAsyncOperation>::empty(permit());
    let options = WaitOptions::create(&service, &plan).policy(fast_policy());
    let err = server
        .client()
        .wait(&InstanceId::new("i-9"), &accepted, &options)
        .await
        .unwrap()
        .into_result()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the broker reports the operation as failed: out of disk"
    );
}

#[tokio::test]
async fn the_whole_asynchronous_lifecycle_against_the_memory_broker() {
    let mut config = Config::new("admin", "pw");
    config.async_delay = Duration::from_millis(100);
    let broker = example_memory_broker::start(config).await.unwrap();
    let client = Client::builder(broker.url())
        .basic_auth("admin", "pw")
        .build()
        .unwrap();
    let opts = CallOptions::new();
    let catalog = client.catalog(&opts).await.unwrap();
    let (service, plan) = catalog.find_plan(ASYNC_PLAN_ID).unwrap();
    assert_eq!(service.id, SERVICE_ID);
    let policy = fast_policy().min_delay(Duration::from_millis(20));

    let id = InstanceId::new("wait-1");
    let request = ServiceInstanceProvisionRequest::new(&service.id, &plan.id, "org", "space");
    let query = ProvisionQuery::new().with_accepts_incomplete(true);
    let outcome = client
        .provision(&id, &request, &query, &opts)
        .await
        .unwrap();
    let accepted = outcome.as_accepted().expect("the async plan answers 202");
    let create = WaitOptions::create(service, plan).policy(policy.clone());
    let done = client.wait(&id, accepted, &create).await.unwrap();
    assert!(matches!(done, PollOutcome::Succeeded(_)), "{done:?}");

    let binding = BindingId::new("wait-b");
    let request = ServiceBindingRequest::new(&service.id, &plan.id);
    let query = BindQuery::new().with_accepts_incomplete(true);
    let outcome = client
        .bind(&id, &binding, &request, &query, &opts)
        .await
        .unwrap();
    let accepted = outcome.as_accepted().expect("202");
    client
        .wait_binding(&id, &binding, accepted, &create)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    let fetched = client
        .fetch_binding(&id, &binding, &FetchBindingQuery::new(), &opts)
        .await
        .unwrap();
    let FetchBindingOutcome::Found(resource) = fetched else {
        panic!("the binding exists: {fetched:?}")
    };
    assert!(resource.credentials.unwrap().contains_key("uri"));

    let delete = WaitOptions::delete(service, plan).policy(policy);
    let query = UnbindQuery::new(&service.id, &plan.id).with_accepts_incomplete(true);
    let outcome = client.unbind(&id, &binding, &query, &opts).await.unwrap();
    let accepted = outcome.as_accepted().expect("202");
    let done = client
        .wait_binding(&id, &binding, accepted, &delete)
        .await
        .unwrap();
    assert!(done.is_success(), "{done:?}");

    let query = DeprovisionQuery::new(&service.id, &plan.id).with_accepts_incomplete(true);
    let outcome = client.deprovision(&id, &query, &opts).await.unwrap();
    let accepted = outcome.as_accepted().expect("202");
    let done = client.wait(&id, accepted, &delete).await.unwrap();
    assert!(done.is_success(), "{done:?}");
    broker.task.abort();
}
