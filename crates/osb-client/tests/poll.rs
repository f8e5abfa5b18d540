//! The poller: Retry-After (seconds, HTTP date, absent), backoff, deadlines, 410 on delete,
//! invalid replies, cancellation. Every delay is a few milliseconds.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::{Reply, Server, closed_port_url, fast_policy, wait_on_instance};
use osb_client::{Client, Error, OperationKind, PollOutcome, PollProgress};
use osb_types::{
    BindingId, BindingLastOperationQuery, InstanceId, InstanceLastOperationQuery,
    LastOperationState, Plan, PlanId, RetryAfter,
};
use serde_json::json;

fn in_progress() -> Reply {
    Reply::json(
        200,
        json!({"state": "in progress", "description": "working"}),
    )
}

fn succeeded() -> Reply {
    Reply::json(200, json!({"state": "succeeded", "description": "done"}))
}

/// What a progress callback saw.
#[derive(Clone, Debug)]
struct Seen {
    attempt: u32,
    state: Option<LastOperationState>,
    description: Option<String>,
    retry_after: Option<RetryAfter>,
    invalid_status: Option<u16>,
    invalid: bool,
    next_delay: Option<Duration>,
}

fn recorder() -> (
    Arc<Mutex<Vec<Seen>>>,
    impl FnMut(&PollProgress<'_>) + Send + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let callback = move |p: &PollProgress<'_>| {
        sink.lock().unwrap().push(Seen {
            attempt: p.attempt,
            state: p.state.cloned(),
            description: p.description.map(str::to_string),
            retry_after: p.retry_after.copied(),
            invalid_status: p.invalid_reply.and_then(Error::status).map(|s| s.as_u16()),
            invalid: p.invalid_reply.is_some(),
            next_delay: p.next_delay,
        });
    };
    (seen, callback)
}

async fn wait_instance(
    client: &Client,
    kind: OperationKind,
) -> (Result<PollOutcome, Error>, Vec<Seen>) {
    let (seen, callback) = recorder();
    let query = InstanceLastOperationQuery::new().with_operation("op-1");
    let result = client
        .wait_for_instance_operation(&InstanceId::new("i-1"), &query, kind)
        .policy(fast_policy())
        .on_progress(callback)
        .await;
    let seen = seen.lock().unwrap().clone();
    (result, seen)
}

#[tokio::test]
async fn without_retry_after_the_backoff_doubles_up_to_the_cap() {
    let server = Server::start(vec![
        in_progress(),
        in_progress(),
        in_progress(),
        succeeded(),
    ])
    .await;
    let (result, seen) = wait_instance(&server.client(), OperationKind::Create).await;
    let Ok(PollOutcome::Succeeded(resource)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(resource.description.as_deref(), Some("done"));
    let delays: Vec<Option<Duration>> = seen.iter().map(|s| s.next_delay).collect();
    let ms = Duration::from_millis;
    assert_eq!(delays, [Some(ms(2)), Some(ms(4)), Some(ms(4)), None]);
    assert_eq!(
        seen.iter().map(|s| s.attempt).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(seen[0].state, Some(LastOperationState::InProgress));
    assert_eq!(seen[0].description.as_deref(), Some("working"));
    assert_eq!(seen[3].state, Some(LastOperationState::Succeeded));
    assert!(seen.iter().all(|s| !s.invalid && s.retry_after.is_none()));

    let request = server.last_request();
    assert_eq!(request.path, "/v2/service_instances/i-1/last_operation");
    assert_eq!(request.query.as_deref(), Some("operation=op-1"));
    assert_eq!(server.count(), 4);
}

#[tokio::test]
async fn retry_after_seconds_replaces_the_backoff() {
    // `fast_policy` caps Retry-After at 30 ms so the test stays fast; without the header the
    // next wait would be 2 ms.
    let server = Server::start(vec![in_progress().header("retry-after", "1"), succeeded()]).await;
    let (result, seen) = wait_instance(&server.client(), OperationKind::Create).await;
    assert!(
        matches!(result, Ok(PollOutcome::Succeeded(_))),
        "{result:?}"
    );
    assert_eq!(seen[0].retry_after, Some(RetryAfter::seconds(1)));
    assert_eq!(seen[0].next_delay, Some(Duration::from_millis(30)));

    let server = Server::start(vec![in_progress().header("retry-after", "0"), succeeded()]).await;
    let (_, seen) = wait_instance(&server.client(), OperationKind::Create).await;
    assert_eq!(
        seen[0].next_delay,
        Some(Duration::from_millis(1)),
        "raised to the floor"
    );
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let later = RetryAfter::At(SystemTime::now() + Duration::from_secs(3600)).to_header_value();
    let earlier = RetryAfter::At(SystemTime::now() - Duration::from_secs(3600)).to_header_value();
    let server = Server::start(vec![
        in_progress().header("retry-after", &later),
        in_progress().header("retry-after", &earlier),
        in_progress().header("retry-after", "not a date"),
        succeeded(),
    ])
    .await;
    let (result, seen) = wait_instance(&server.client(), OperationKind::Create).await;
    assert!(
        matches!(result, Ok(PollOutcome::Succeeded(_))),
        "{result:?}"
    );
    assert!(matches!(seen[0].retry_after, Some(RetryAfter::At(_))));
    assert_eq!(
        seen[0].next_delay,
        Some(Duration::from_millis(30)),
        "an hour ahead, capped"
    );
    assert_eq!(
        seen[1].next_delay,
        Some(Duration::from_millis(1)),
        "a past date means now, raised to the floor"
    );
    assert_eq!(seen[2].retry_after, None, "an unparsable header is ignored");
    assert_eq!(
        seen[2].next_delay,
        Some(Duration::from_millis(4)),
        "back to the backoff"
    );
}

#[tokio::test]
async fn the_deadline_ends_polling_as_failed() {
    let server = Server::always(in_progress()).await;
    let (seen, callback) = recorder();
    let started = std::time::Instant::now();
    let result = wait_on_instance(&server.client(), OperationKind::Create)
        .max_duration(Duration::from_millis(60))
        .on_progress(callback)
        .await;
    assert!(started.elapsed() >= Duration::from_millis(60));
    let Ok(PollOutcome::DeadlineExceeded { last: Some(last) }) = &result else {
        panic!("{result:?}")
    };
    assert_eq!(last.state, LastOperationState::InProgress);
    assert!(!result.as_ref().unwrap().is_success());
    let seen = seen.lock().unwrap();
    assert!(seen.len() >= 2, "{}", seen.len());
    assert_eq!(seen.last().unwrap().next_delay, None);
    assert_eq!(server.count(), seen.len());
}

#[tokio::test]
async fn the_plans_maximum_polling_duration_is_a_deadline() {
    let server = Server::always(in_progress()).await;
    let plan = Plan::new(PlanId::new("p"), "small", "d").with_maximum_polling_duration(0);
    let result = wait_on_instance(&server.client(), OperationKind::Update)
        .plan(&plan)
        .await;
    assert!(
        matches!(result, Ok(PollOutcome::DeadlineExceeded { .. })),
        "{result:?}"
    );
    assert_eq!(server.count(), 1, "one poll at the deadline");

    // A longer plan limit does not extend the caller's.
    let plan = Plan::new(PlanId::new("p"), "small", "d").with_maximum_polling_duration(3600);
    let result = wait_on_instance(&server.client(), OperationKind::Update)
        .max_duration(Duration::from_millis(10))
        .plan(&plan)
        .await;
    assert!(
        matches!(result, Ok(PollOutcome::DeadlineExceeded { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn gone_ends_a_delete_but_not_a_create() {
    let server = Server::start(vec![in_progress(), Reply::json(410, json!({}))]).await;
    let (result, _) = wait_instance(&server.client(), OperationKind::Delete).await;
    assert_eq!(result.unwrap(), PollOutcome::Gone);
    assert!(PollOutcome::Gone.is_success());

    let server = Server::start(vec![
        Reply::json(410, json!({})),
        Reply::json(410, json!({})),
        succeeded(),
    ])
    .await;
    let (result, seen) = wait_instance(&server.client(), OperationKind::Create).await;
    assert!(
        matches!(result, Ok(PollOutcome::Succeeded(_))),
        "{result:?}"
    );
    assert_eq!(seen[0].invalid_status, Some(410));
    assert_eq!(seen[1].invalid_status, Some(410));
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn invalid_replies_keep_polling_until_a_valid_one() {
    let server = Server::start(vec![
        Reply::text(500, "internal error"),
        Reply::json(200, json!({"description": "no state"})),
        Reply::text(200, "not json"),
        Reply::json(503, json!({"description": "busy"})),
        Reply::json(401, json!({})),
        Reply::json(200, json!({"state": "paused"})),
        Reply::json(
            200,
            json!({"state": "failed", "description": "quota exceeded"}),
        ),
    ])
    .await;
    let (result, seen) = wait_instance(&server.client(), OperationKind::Create).await;
    let Ok(PollOutcome::Failed(resource)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(resource.description.as_deref(), Some("quota exceeded"));
    let invalid: Vec<Option<u16>> = seen.iter().map(|s| s.invalid_status).collect();
    assert_eq!(
        invalid,
        [
            Some(500),
            Some(200),
            Some(200),
            Some(503),
            Some(401),
            None,
            None
        ]
    );
    assert_eq!(
        seen[5].state,
        Some(LastOperationState::Unknown("paused".into())),
        "unknown states keep polling"
    );
}

#[tokio::test]
async fn bad_request_and_not_found_end_polling() {
    let server = Server::start(vec![
        in_progress(),
        Reply::json(400, json!({"description": "bad operation"})),
    ])
    .await;
    let (result, seen) = wait_instance(&server.client(), OperationKind::Create).await;
    let err = result.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    assert_eq!(seen.last().unwrap().invalid_status, Some(400));

    let server = Server::always(Reply::json(404, json!({}))).await;
    let (result, _) = wait_instance(&server.client(), OperationKind::Create).await;
    assert_eq!(result.unwrap(), PollOutcome::NotFound);
    assert_eq!(server.count(), 1);

    // While deleting, 404 means nothing is left: the delete succeeded.
    let (result, _) = wait_instance(&server.client(), OperationKind::Delete).await;
    let outcome = result.unwrap();
    assert_eq!(outcome, PollOutcome::Gone);
    assert!(outcome.is_success());
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn a_broker_that_does_not_answer_cannot_hold_the_wait_past_its_deadline() {
    let server = Server::always(in_progress().delay(Duration::from_secs(30))).await;
    let (seen, callback) = recorder();
    let started = std::time::Instant::now();
    let result = wait_on_instance(&server.client(), OperationKind::Create)
        .max_duration(Duration::from_millis(100))
        .on_progress(callback)
        .await;
    assert!(
        matches!(result, Ok(PollOutcome::DeadlineExceeded { last: None })),
        "{result:?}"
    );
    // The poll was cut off at the deadline (plus the 2 s grace of a last poll), not after the
    // broker's 30 s or the 60 s request timeout.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.count(), 1);
    assert_eq!(seen.lock().unwrap().last().unwrap().next_delay, None);
}

#[tokio::test]
async fn transport_errors_keep_polling_until_the_deadline() {
    let client = Client::builder(closed_port_url().await).build().unwrap();
    let (seen, callback) = recorder();
    let result = wait_on_instance(&client, OperationKind::Create)
        .max_duration(Duration::from_millis(50))
        .on_progress(callback)
        .await;
    assert!(
        matches!(result, Ok(PollOutcome::DeadlineExceeded { last: None })),
        "{result:?}"
    );
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 2);
    assert!(seen.iter().all(|s| s.invalid && s.invalid_status.is_none()));

    // Timeouts of single polls too.
    let server = Server::start(vec![
        in_progress().delay(Duration::from_millis(300)),
        succeeded(),
    ])
    .await;
    let client = server.client_with(|b| b.timeout(Duration::from_millis(30)));
    let (result, seen) = wait_instance(&client, OperationKind::Create).await;
    assert!(
        matches!(result, Ok(PollOutcome::Succeeded(_))),
        "{result:?}"
    );
    assert!(seen[0].invalid);
}

#[tokio::test]
async fn dropping_the_wait_cancels_it() {
    let server = Server::always(in_progress()).await;
    let wait = wait_on_instance(&server.client(), OperationKind::Create);
    let cut = tokio::time::timeout(Duration::from_millis(50), wait).await;
    assert!(cut.is_err(), "still polling when dropped");
    // Let a request that was already on the wire when the wait was dropped arrive.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let polls = server.count();
    assert!(polls >= 1, "{polls}");
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(server.count(), polls, "no poll after the wait was dropped");
}

#[tokio::test]
async fn binding_operations_are_polled_on_the_binding() {
    let server = Server::start(vec![in_progress(), Reply::json(410, json!({}))]).await;
    let query = BindingLastOperationQuery::new()
        .with_service_id("s")
        .with_plan_id("p")
        .with_operation("op 1");
    let result = server
        .client()
        .wait_for_binding_operation(
            &InstanceId::new("i"),
            &BindingId::new("b/1"),
            &query,
            OperationKind::Delete,
        )
        .policy(fast_policy())
        .await;
    assert_eq!(result.unwrap(), PollOutcome::Gone);
    let request = server.last_request();
    assert_eq!(
        request.path,
        "/v2/service_instances/i/service_bindings/b%2F1/last_operation"
    );
    assert_eq!(
        request.query.as_deref(),
        Some("service_id=s&plan_id=p&operation=op%201")
    );
}

#[tokio::test]
async fn waits_can_run_on_another_task() {
    let server = Server::start(vec![in_progress(), succeeded()]).await;
    let wait = wait_on_instance(&server.client(), OperationKind::Create).on_progress(|_| {});
    let outcome = tokio::spawn(async move { wait.await })
        .await
        .unwrap()
        .unwrap();
    assert!(outcome.is_success());
}

#[tokio::test]
async fn polling_survives_mistyped_optional_fields() {
    let server = Server::start(vec![
        Reply::json(
            200,
            json!({"state": "in progress", "description": 7, "update_repeatable": "yes"}),
        ),
        Reply::json(200, json!({"state": "failed", "instance_usable": "false"})),
    ])
    .await;
    let (seen, callback) = recorder();
    let result = wait_on_instance(&server.client(), OperationKind::Update)
        .max_duration(Duration::from_secs(2))
        .on_progress(callback)
        .await;
    let Ok(PollOutcome::Failed(resource)) = result else {
        panic!("the state must end the wait: {result:?}")
    };
    assert_eq!(resource.instance_usable, None);
    assert_eq!(resource.extra["instance_usable"], "false");
    assert_eq!(server.count(), 2);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].state, Some(LastOperationState::InProgress));
    assert!(seen.iter().all(|s| !s.invalid), "{seen:?}");

    // Without a valid state a reply is still invalid, and polling goes on.
    let server = Server::start(vec![
        Reply::json(200, json!({"state": 5, "instance_usable": false})),
        succeeded(),
    ])
    .await;
    let (seen, callback) = recorder();
    let result = wait_on_instance(&server.client(), OperationKind::Create)
        .on_progress(callback)
        .await;
    assert!(
        matches!(result, Ok(PollOutcome::Succeeded(_))),
        "{result:?}"
    );
    let invalid: Vec<Option<u16>> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.invalid_status)
        .collect();
    assert_eq!(invalid, [Some(200), None]);
}

#[tokio::test]
async fn an_empty_operation_token_is_polled_without_the_operation_parameter() {
    use osb_client::CallOptions;
    use osb_types::{ProvisionOutcome, ProvisionQuery, ServiceInstanceProvisionRequest};

    let server = Server::start(vec![
        Reply::json(202, json!({"operation": ""})),
        in_progress(),
        succeeded(),
    ])
    .await;
    let client = server.client();
    let instance = InstanceId::new("i-1");
    let body = ServiceInstanceProvisionRequest::new("s", "p", "o", "sp");
    let query = ProvisionQuery::new().with_accepts_incomplete(true);
    let outcome = client
        .provision(&instance, &body, &query, &CallOptions::new())
        .await
        .unwrap();
    let ProvisionOutcome::Accepted(accepted) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(accepted.operation(), None, "an empty token is no token");
    let mut poll = InstanceLastOperationQuery::new();
    if let Some(operation) = accepted.operation() {
        poll = poll.with_operation(operation);
    }
    let result = client
        .wait_for_instance_operation(&instance, &poll, OperationKind::Create)
        .policy(fast_policy())
        .await;
    assert!(
        matches!(result, Ok(PollOutcome::Succeeded(_))),
        "{result:?}"
    );
    let polls = &server.requests()[1..];
    assert_eq!(polls.len(), 2);
    assert!(polls.iter().all(|r| r.query.is_none()), "{polls:?}");

    // The token passed on as received: the same.
    server.script(vec![succeeded()]);
    let query = BindingLastOperationQuery::new().with_operation("");
    let result = client
        .wait_for_binding_operation(
            &instance,
            &BindingId::new("b"),
            &query,
            OperationKind::Create,
        )
        .policy(fast_policy())
        .await;
    assert!(
        matches!(result, Ok(PollOutcome::Succeeded(_))),
        "{result:?}"
    );
    assert_eq!(server.last_request().query, None);
}
