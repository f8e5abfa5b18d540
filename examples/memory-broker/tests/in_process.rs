//! A platform's test of a broker without a socket: osb-client sends every request straight to
//! the broker's axum `Router` (the `in-process` feature of osb-client). The README shows this
//! file as the way to test a broker built on osb-server.

use std::time::Duration;

use example_memory_broker::{ASYNC_PLAN_ID, Config, SERVICE_ID, SYNC_PLAN_ID, app};
use osb_client::Error;
use osb_client::prelude::*;

async fn client() -> Client {
    let mut config = Config::new("admin", "secret");
    config.async_delay = Duration::from_millis(30);
    let router = app(config).await.expect("the broker builds");
    Client::builder("http://memory-broker.test")
        .service(router)
        .basic_auth("admin", "secret")
        .build()
        .expect("the client builds")
}

#[tokio::test]
async fn lifecycle_in_process() {
    let client = client().await;
    let opts = CallOptions::new();
    let catalog = client.catalog(&opts).await.unwrap();
    assert_eq!(catalog.services[0].id.as_str(), SERVICE_ID);

    let instance = InstanceId::new("db 1");
    let request = ServiceInstanceProvisionRequest::new(SERVICE_ID, SYNC_PLAN_ID, "org", "space");
    let outcome = client
        .provision(&instance, &request, &ProvisionQuery::new(), &opts)
        .await
        .unwrap();
    assert!(
        matches!(outcome, ProvisionOutcome::Created(_)),
        "{outcome:?}"
    );

    let binding = BindingId::new("creds/1");
    let outcome = client
        .bind(
            &instance,
            &binding,
            &ServiceBindingRequest::new(SERVICE_ID, SYNC_PLAN_ID),
            &BindQuery::new(),
            &opts,
        )
        .await
        .unwrap();
    let BindOutcome::Created(created) = outcome else {
        panic!("{outcome:?}")
    };
    let credentials = created.credentials.expect("credentials");
    let fetched = client
        .fetch_binding(&instance, &binding, &FetchBindingQuery::new(), &opts)
        .await
        .unwrap();
    let FetchBindingOutcome::Found(found) = fetched else {
        panic!("{fetched:?}")
    };
    assert_eq!(found.credentials, Some(credentials));

    let unbind = UnbindQuery::new(SERVICE_ID, SYNC_PLAN_ID);
    let outcome = client.unbind(&instance, &binding, &unbind, &opts).await;
    assert_eq!(outcome.unwrap(), DeleteOutcome::Deleted);
    let outcome = client.unbind(&instance, &binding, &unbind, &opts).await;
    assert_eq!(outcome.unwrap(), DeleteOutcome::Gone);
    let deprovision = DeprovisionQuery::new(SERVICE_ID, SYNC_PLAN_ID);
    let outcome = client.deprovision(&instance, &deprovision, &opts).await;
    assert_eq!(outcome.unwrap(), DeleteOutcome::Deleted);
}

#[tokio::test]
async fn asynchronous_provision_in_process() {
    let client = client().await;
    let opts = CallOptions::new();
    let instance = InstanceId::new("slow-db");
    let request = ServiceInstanceProvisionRequest::new(SERVICE_ID, ASYNC_PLAN_ID, "org", "space");

    // Without accepts_incomplete the broker must refuse: 422 AsyncRequired.
    let err = client
        .provision(&instance, &request, &ProvisionQuery::new(), &opts)
        .await
        .unwrap_err();
    assert!(err.is_async_required(), "{err:?}");
    assert!(matches!(err, Error::Broker { .. }));

    let query = ProvisionQuery::new().with_accepts_incomplete(true);
    let outcome = client
        .provision(&instance, &request, &query, &opts)
        .await
        .unwrap();
    let ProvisionOutcome::Accepted(accepted) = outcome else {
        panic!("{outcome:?}")
    };
    let mut poll = InstanceLastOperationQuery::new()
        .with_service_id(SERVICE_ID)
        .with_plan_id(ASYNC_PLAN_ID);
    if let Some(operation) = accepted.operation() {
        poll = poll.with_operation(operation);
    }
    // The broker asks for `Retry-After: 1`; a short floor and cap keep the test quick.
    let policy = PollPolicy::new()
        .min_delay(Duration::from_millis(10))
        .max_retry_after(Duration::from_millis(20));
    let outcome = client
        .wait_for_instance_operation(&instance, &poll, OperationKind::Create)
        .policy(policy)
        .await
        .unwrap();
    assert!(matches!(outcome, PollOutcome::Succeeded(_)), "{outcome:?}");
}
