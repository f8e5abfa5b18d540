//! End to end against the example in-memory broker (osb-server), over loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use example_memory_broker::{ASYNC_PLAN_ID, Config, SCHEMA_PLAN_ID, SERVICE_ID, SYNC_PLAN_ID};
use osb_client::{
    CallOptions, Cleanup, CleanupOutcome, CleanupPolicy, Client, Error, OperationKind,
    OrphanOperation, OrphanTarget, PollOutcome, PollPolicy, check_provision, orphan_mitigation_for,
};
use osb_types::{
    BindOutcome, BindQuery, BindingId, BindingLastOperationQuery, CloudFoundryIdentity,
    DeleteOutcome, DeprovisionQuery, FetchBindingOutcome, FetchBindingQuery, FetchInstanceOutcome,
    FetchInstanceQuery, InstanceId, InstanceLastOperationQuery, OriginatingIdentity,
    ProvisionOutcome, ProvisionQuery, RetryAfter, ServiceBindingRequest,
    ServiceInstanceProvisionRequest, ServiceInstanceUpdateRequest, UnbindQuery, UpdateOutcome,
    UpdateQuery,
};
use serde_json::{Map, Value, json};

async fn broker() -> (example_memory_broker::Running, Client) {
    let mut config = Config::new("admin", "pa55word");
    config.async_delay = Duration::from_millis(40);
    config.retention = Duration::from_secs(60);
    let running = example_memory_broker::start(config)
        .await
        .expect("broker starts");
    let client = Client::builder(running.url())
        .basic_auth("admin", "pa55word")
        .originating_identity(OriginatingIdentity::from(CloudFoundryIdentity::new(
            "user-1",
        )))
        .build()
        .unwrap();
    (running, client)
}

/// Millisecond polling; the broker's `Retry-After` (whole seconds) is capped at 20 ms.
fn policy() -> PollPolicy {
    PollPolicy::new()
        .min_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(20))
        .max_retry_after(Duration::from_millis(20))
        .max_duration(Duration::from_secs(10))
}

fn params(value: Value) -> Map<String, Value> {
    let Value::Object(map) = value else {
        panic!("object expected")
    };
    map
}

#[tokio::test]
async fn synchronous_lifecycle() {
    let (broker, client) = broker().await;
    let opts = CallOptions::new();

    let catalog = client.catalog(&opts).await.unwrap();
    assert!(
        !osb_types::has_errors(&client.check_catalog(&catalog)),
        "{:?}",
        client.check_catalog(&catalog)
    );
    assert!(catalog.plan(SERVICE_ID, SYNC_PLAN_ID).is_some());

    let instance = InstanceId::new("sync instance/1");
    let body = ServiceInstanceProvisionRequest::new(SERVICE_ID, SYNC_PLAN_ID, "org", "space")
        .with_parameters(params(json!({"tier": "gold"})));
    let created = client
        .provision(&instance, &body, &ProvisionQuery::new(), &opts)
        .await
        .unwrap();
    assert!(
        matches!(created, ProvisionOutcome::Created(_)),
        "{created:?}"
    );
    let again = client
        .provision(&instance, &body, &ProvisionQuery::new(), &opts)
        .await
        .unwrap();
    assert!(
        matches!(again, ProvisionOutcome::AlreadyExists(_)),
        "{again:?}"
    );
    let different = body
        .clone()
        .with_parameters(params(json!({"tier": "silver"})));
    let err = client
        .provision(&instance, &different, &ProvisionQuery::new(), &opts)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");

    match client
        .fetch_instance(&instance, &FetchInstanceQuery::new(), &opts)
        .await
        .unwrap()
    {
        FetchInstanceOutcome::Found(found) => {
            assert_eq!(found.plan_id.as_deref(), Some(SYNC_PLAN_ID));
            assert_eq!(found.parameters, Some(params(json!({"tier": "gold"}))));
        }
        other => panic!("{other:?}"),
    }
    let update = ServiceInstanceUpdateRequest::new(SERVICE_ID)
        .with_parameters(params(json!({"tier": "platinum"})));
    let updated = client
        .update(&instance, &update, &UpdateQuery::new(), &opts)
        .await
        .unwrap();
    assert!(matches!(updated, UpdateOutcome::Updated(_)));

    let binding = BindingId::new("binding-1");
    let bind = ServiceBindingRequest::new(SERVICE_ID, SYNC_PLAN_ID);
    let credentials = match client
        .bind(&instance, &binding, &bind, &BindQuery::new(), &opts)
        .await
        .unwrap()
    {
        BindOutcome::Created(reply) => reply.credentials.expect("credentials"),
        other => panic!("{other:?}"),
    };
    match client
        .fetch_binding(&instance, &binding, &FetchBindingQuery::new(), &opts)
        .await
        .unwrap()
    {
        FetchBindingOutcome::Found(found) => assert_eq!(found.credentials, Some(credentials)),
        other => panic!("{other:?}"),
    }

    let unbind = UnbindQuery::new(SERVICE_ID, SYNC_PLAN_ID);
    assert_eq!(
        client
            .unbind(&instance, &binding, &unbind, &opts)
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        client
            .unbind(&instance, &binding, &unbind, &opts)
            .await
            .unwrap(),
        DeleteOutcome::Gone
    );
    let deprovision = DeprovisionQuery::new(SERVICE_ID, SYNC_PLAN_ID);
    assert_eq!(
        client
            .deprovision(&instance, &deprovision, &opts)
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        client
            .deprovision(&instance, &deprovision, &opts)
            .await
            .unwrap(),
        DeleteOutcome::Gone
    );
    let gone = client
        .fetch_instance(&instance, &FetchInstanceQuery::new(), &opts)
        .await
        .unwrap();
    assert_eq!(gone, FetchInstanceOutcome::NotFound);
    broker.task.abort();
}

#[tokio::test]
async fn asynchronous_lifecycle_with_polling() {
    let (broker, client) = broker().await;
    let opts = CallOptions::new();
    let catalog = client.catalog(&opts).await.unwrap();
    let plan = catalog.plan(SERVICE_ID, ASYNC_PLAN_ID).unwrap().clone();
    let instance = InstanceId::new("async-1");
    let body = ServiceInstanceProvisionRequest::new(SERVICE_ID, ASYNC_PLAN_ID, "org", "space");

    // The plan is asynchronous only.
    let err = client
        .provision(&instance, &body, &ProvisionQuery::new(), &opts)
        .await
        .unwrap_err();
    assert!(err.is_async_required(), "{err:?}");

    let query = ProvisionQuery::new().with_accepts_incomplete(true);
    let ProvisionOutcome::Accepted(accepted) = client
        .provision(&instance, &body, &query, &opts)
        .await
        .unwrap()
    else {
        panic!("expected 202")
    };
    let operation = accepted.operation().expect("operation").clone();
    let poll = InstanceLastOperationQuery::new()
        .with_service_id(SERVICE_ID)
        .with_plan_id(ASYNC_PLAN_ID)
        .with_operation(&operation);
    let retry_afters = Arc::new(Mutex::new(Vec::new()));
    let sink = retry_afters.clone();
    let outcome = client
        .wait_for_instance_operation(&instance, &poll, OperationKind::Create)
        .policy(policy())
        .plan(&plan)
        .on_progress(move |p| sink.lock().unwrap().push(p.retry_after.copied()))
        .await
        .unwrap();
    assert!(matches!(outcome, PollOutcome::Succeeded(_)), "{outcome:?}");
    let seen = retry_afters.lock().unwrap().clone();
    assert!(
        seen.iter().any(|r| matches!(r, Some(RetryAfter::Delay(_)))),
        "{seen:?}"
    );

    let binding = BindingId::new("async-binding");
    let bind = ServiceBindingRequest::new(SERVICE_ID, ASYNC_PLAN_ID);
    let bind_query = BindQuery::new().with_accepts_incomplete(true);
    let BindOutcome::Accepted(accepted) = client
        .bind(&instance, &binding, &bind, &bind_query, &opts)
        .await
        .unwrap()
    else {
        panic!("expected 202")
    };
    let mut poll = BindingLastOperationQuery::new()
        .with_service_id(SERVICE_ID)
        .with_plan_id(ASYNC_PLAN_ID);
    if let Some(op) = accepted.operation() {
        poll = poll.with_operation(op);
    }
    let outcome = client
        .wait_for_binding_operation(&instance, &binding, &poll, OperationKind::Create)
        .policy(policy())
        .await
        .unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    match client
        .fetch_binding(&instance, &binding, &FetchBindingQuery::new(), &opts)
        .await
        .unwrap()
    {
        FetchBindingOutcome::Found(found) => {
            assert!(found.credentials.is_some_and(|c| c.contains_key("uri")))
        }
        other => panic!("{other:?}"),
    }
    let unbind = UnbindQuery::new(SERVICE_ID, ASYNC_PLAN_ID).with_accepts_incomplete(true);
    let unbound = client
        .unbind(&instance, &binding, &unbind, &opts)
        .await
        .unwrap();
    assert!(
        matches!(unbound, DeleteOutcome::Deleted | DeleteOutcome::Accepted(_)),
        "{unbound:?}"
    );

    let deprovision =
        DeprovisionQuery::new(SERVICE_ID, ASYNC_PLAN_ID).with_accepts_incomplete(true);
    let DeleteOutcome::Accepted(accepted) = client
        .deprovision(&instance, &deprovision, &opts)
        .await
        .unwrap()
    else {
        panic!("expected 202")
    };
    let mut poll = InstanceLastOperationQuery::new()
        .with_service_id(SERVICE_ID)
        .with_plan_id(ASYNC_PLAN_ID);
    if let Some(op) = accepted.operation() {
        poll = poll.with_operation(op);
    }
    let outcome = client
        .wait_for_instance_operation(&instance, &poll, OperationKind::Delete)
        .policy(policy())
        .plan(&plan)
        .await
        .unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    let gone = client
        .deprovision(&instance, &deprovision, &opts)
        .await
        .unwrap();
    assert_eq!(gone, DeleteOutcome::Gone);
    broker.task.abort();
}

#[tokio::test]
async fn schemas_credentials_and_cleanup() {
    let (broker, client) = broker().await;
    let opts = CallOptions::new();
    let catalog = client.catalog(&opts).await.unwrap();

    // Parameters against the plan's schema: caught before sending, and by the broker too.
    let instance = InstanceId::new("schema-1");
    let bad = ServiceInstanceProvisionRequest::new(SERVICE_ID, SCHEMA_PLAN_ID, "org", "space")
        .with_parameters(params(json!({"size": 99})));
    let Err(Error::InvalidParameters { violations }) = check_provision(&catalog, &bad) else {
        panic!("expected a schema violation")
    };
    assert_eq!(violations[0].pointer, "/size");
    let err = client
        .provision(&instance, &bad, &ProvisionQuery::new(), &opts)
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400), "{err:?}");
    let good = bad.clone().with_parameters(params(json!({"size": 3})));
    check_provision(&catalog, &good).unwrap();
    client
        .provision(&instance, &good, &ProvisionQuery::new(), &opts)
        .await
        .unwrap();

    // Wrong credentials.
    let intruder = Client::builder(broker.url())
        .basic_auth("admin", "guess")
        .build()
        .unwrap();
    let err = intruder.catalog(&opts).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");

    // A provision that timed out leaves an instance to clean up; the cleanup deletes it.
    let result: Result<ProvisionOutcome, Error> = Err(Error::Timeout { source: None });
    assert_eq!(
        orphan_mitigation_for(OrphanOperation::Provision, &result),
        Cleanup::Instance
    );
    let target = OrphanTarget::instance(instance.clone(), SERVICE_ID, SCHEMA_PLAN_ID);
    let policy = CleanupPolicy::new().attempts(3).poll(policy());
    assert_eq!(
        client.cleanup_orphan(&target, &policy).await.unwrap(),
        CleanupOutcome::Deleted { attempts: 1 }
    );
    assert_eq!(
        client.cleanup_orphan(&target, &policy).await.unwrap(),
        CleanupOutcome::Gone { attempts: 1 }
    );
    broker.task.abort();
}
