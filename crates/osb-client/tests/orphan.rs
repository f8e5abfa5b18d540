//! Orphan mitigation: the decision table row by row, the same decisions from real replies, and
//! the cleanup helper.

mod common;

use std::time::Duration;

use common::{Reply, Server, closed_port_url, fast_policy, wait_on_instance};
use osb_client::{
    CallOptions, Cleanup, CleanupOutcome, CleanupPolicy, Client, Error, Observed, OperationKind,
    OrphanOperation, OrphanTarget, orphan_mitigation, orphan_mitigation_for,
};
use osb_types::{
    BindOutcome, BindQuery, BindingId, CloudFoundryIdentity, DeleteOutcome, DeprovisionQuery,
    ErrorCode, InstanceId, LastOperationState, OriginatingIdentity, ProvisionOutcome,
    ProvisionQuery, ServiceBindingRequest, ServiceInstanceProvisionRequest,
    ServiceInstanceUpdateRequest, UnbindQuery, UpdateQuery,
};
use serde_json::json;

const OPS: [OrphanOperation; 5] = [
    OrphanOperation::Provision,
    OrphanOperation::Update,
    OrphanOperation::Deprovision,
    OrphanOperation::Bind,
    OrphanOperation::Unbind,
];

fn reply(status: u16) -> Observed {
    Observed::Reply { status, code: None }
}

fn coded(status: u16, code: ErrorCode) -> Observed {
    Observed::Reply {
        status,
        code: Some(code),
    }
}

fn malformed(status: u16) -> Observed {
    Observed::MalformedReply { status }
}

/// One row: what each of provision, update, deprovision, bind, unbind must decide
/// (`I` instance, `B` binding, `-` nothing).
fn check(observed: Observed, expected: &str) {
    let got: String = OPS
        .iter()
        .map(|op| match orphan_mitigation(*op, &observed) {
            Cleanup::None => '-',
            Cleanup::Instance => 'I',
            Cleanup::Binding => 'B',
        })
        .collect();
    assert_eq!(
        got, expected,
        "{observed:?} (provision, update, deprovision, bind, unbind)"
    );
}

#[test]
fn decision_table_row_by_row() {
    // Successes, well-formed.
    check(reply(200), "-----");
    check(reply(201), "-----");
    check(reply(202), "-----");
    // 200 with a malformed body: never.
    check(malformed(200), "-----");
    // 201/202 with a malformed body: provision and bind (202 since 2.17).
    check(malformed(201), "I--B-");
    check(malformed(202), "I--B-");
    // Other 2xx: provision/deprovision and bind/unbind, well-formed or not.
    check(reply(203), "I-IBB");
    check(reply(204), "I-IBB");
    check(reply(206), "I-IBB");
    check(malformed(204), "I-IBB");
    // 410 on a delete is "already deleted"; elsewhere an ordinary 4xx.
    check(reply(410), "-----");
    // 408: the request never reached the broker (since 2.14).
    check(reply(408), "-----");
    // Other 4xx, including the 422 codes the spec defines.
    for status in [400, 401, 403, 404, 409, 412, 415, 429] {
        check(reply(status), "-----");
    }
    check(coded(422, ErrorCode::ConcurrencyError), "-----");
    check(coded(422, ErrorCode::AsyncRequired), "-----");
    check(coded(422, ErrorCode::MaintenanceInfoConflict), "-----");
    check(coded(422, ErrorCode::RequiresApp), "-----");
    check(coded(400, ErrorCode::Unknown("BadThing".into())), "-----");
    // Cloud Controller: 422 with an unknown or missing code on provision and bind.
    check(
        coded(422, ErrorCode::Unknown("QuotaExceeded".into())),
        "I--B-",
    );
    check(reply(422), "I--B-");
    // 5xx.
    for status in [500, 502, 503, 504] {
        check(reply(status), "I-IBB");
    }
    check(coded(500, ErrorCode::ConcurrencyError), "I-IBB");
    check(malformed(500), "I-IBB");
    // Timeouts and lost replies: provision and bind only.
    check(Observed::Timeout, "I--B-");
    check(Observed::ReplyLost, "I--B-");
    check(Observed::NotSent, "-----");
    // Polling.
    check(Observed::PollState(LastOperationState::Failed), "I-IBB");
    check(Observed::PollDeadline, "I-IBB");
    check(Observed::PollState(LastOperationState::Succeeded), "-----");
    check(Observed::PollState(LastOperationState::InProgress), "-----");
    check(Observed::PollGone, "-----");
    check(Observed::PollNotFound, "-----");
    check(Observed::PollError, "-----");
    // Informational and redirect statuses are not listed: nothing.
    check(reply(100), "-----");
    check(reply(302), "-----");
}

/// A client that gives up on a reply after 50 ms.
fn impatient(server: &Server) -> Client {
    server.client_with(|b| b.timeout(Duration::from_millis(50)))
}

async fn provision(
    client: &Client,
    instance_id: &str,
    query: &ProvisionQuery,
) -> Result<ProvisionOutcome, Error> {
    let body = ServiceInstanceProvisionRequest::new("s", "p", "o", "sp");
    client
        .provision(
            &InstanceId::new(instance_id),
            &body,
            query,
            &CallOptions::new(),
        )
        .await
}

async fn provision_cleanup(server: &Server, reply: Reply, accepts_incomplete: bool) -> Cleanup {
    server.script(vec![reply]);
    let query = ProvisionQuery::new().with_accepts_incomplete(accepts_incomplete);
    let result = provision(&impatient(server), "i", &query).await;
    orphan_mitigation_for(OrphanOperation::Provision, &result)
}

#[tokio::test]
async fn decisions_from_real_provision_replies() {
    let server = Server::always(Reply::text(500, "unset")).await;
    let cases = [
        (
            Reply::json(201, json!({"dashboard_url": "https://d"})),
            true,
            Cleanup::None,
        ),
        (Reply::json(200, json!({})), true, Cleanup::None),
        (
            Reply::json(202, json!({"operation": "op"})),
            true,
            Cleanup::None,
        ),
        // A mistyped optional field is set aside: the instance works, nothing to clean up.
        (
            Reply::json(201, json!({"dashboard_url": 5})),
            true,
            Cleanup::None,
        ),
        // A body that is not a JSON object cannot be used.
        (Reply::text(201, "created!"), true, Cleanup::Instance),
        (
            Reply::json(201, json!(["created"])),
            true,
            Cleanup::Instance,
        ),
        (
            Reply::json(200, json!({"dashboard_url": 5})),
            true,
            Cleanup::None,
        ),
        (
            Reply::json(202, json!({"operation": 5})),
            true,
            Cleanup::Instance,
        ),
        (
            Reply::json(202, json!({"operation": "op"})),
            false,
            Cleanup::Instance,
        ),
        (Reply::json(204, json!({})), true, Cleanup::Instance),
        (Reply::text(500, "boom"), true, Cleanup::Instance),
        (
            Reply::json(503, json!({"description": "down"})),
            true,
            Cleanup::Instance,
        ),
        (
            Reply::json(422, json!({"error": "QuotaExceeded"})),
            true,
            Cleanup::Instance,
        ),
        (
            Reply::json(422, json!({"error": "ConcurrencyError"})),
            true,
            Cleanup::None,
        ),
        (
            Reply::json(422, json!({"error": "AsyncRequired"})),
            false,
            Cleanup::None,
        ),
        (Reply::json(409, json!({})), true, Cleanup::None),
        (
            Reply::json(400, json!({"description": "bad"})),
            true,
            Cleanup::None,
        ),
        (
            Reply::json(201, json!({})).delay(Duration::from_millis(400)),
            true,
            Cleanup::Instance,
        ),
    ];
    for (reply, accepts_incomplete, expected) in cases {
        let label = format!("{} {}", reply.status, reply.body);
        assert_eq!(
            provision_cleanup(&server, reply, accepts_incomplete).await,
            expected,
            "{label}"
        );
    }

    // Never sent: connection refused, or refused by the client.
    let unreachable = Client::builder(closed_port_url().await).build().unwrap();
    for (client, instance_id) in [(&unreachable, "i"), (&server.client(), "")] {
        let result = provision(client, instance_id, &ProvisionQuery::new()).await;
        assert!(matches!(&result, Err(e) if e.is_connect() || e.is_refused_locally()));
        assert_eq!(
            orphan_mitigation_for(OrphanOperation::Provision, &result),
            Cleanup::None
        );
    }
}

async fn bind(client: &Client) -> Result<BindOutcome, Error> {
    let body = ServiceBindingRequest::new("s", "p");
    let (instance, binding) = (InstanceId::new("i"), BindingId::new("b"));
    client
        .bind(
            &instance,
            &binding,
            &body,
            &BindQuery::new(),
            &CallOptions::new(),
        )
        .await
}

async fn deprovision(client: &Client) -> Result<DeleteOutcome, Error> {
    let query = DeprovisionQuery::new("s", "p");
    client
        .deprovision(&InstanceId::new("i"), &query, &CallOptions::new())
        .await
}

#[tokio::test]
async fn decisions_from_real_replies_of_the_other_operations() {
    let server = Server::always(Reply::text(502, "bad gateway")).await;
    let client = impatient(&server);
    let opts = CallOptions::new();
    let (i, b) = (InstanceId::new("i"), BindingId::new("b"));
    assert_eq!(
        orphan_mitigation_for(OrphanOperation::Bind, &bind(&client).await),
        Cleanup::Binding
    );
    assert_eq!(
        orphan_mitigation_for(OrphanOperation::Deprovision, &deprovision(&client).await),
        Cleanup::Instance
    );
    let body = ServiceInstanceUpdateRequest::new("s");
    let update = client.update(&i, &body, &UpdateQuery::new(), &opts).await;
    assert_eq!(
        orphan_mitigation_for(OrphanOperation::Update, &update),
        Cleanup::None
    );

    server.script(vec![Reply::json(410, json!({}))]);
    let unbind = client
        .unbind(&i, &b, &UnbindQuery::new("s", "p"), &opts)
        .await;
    assert_eq!(
        orphan_mitigation_for(OrphanOperation::Unbind, &unbind),
        Cleanup::None
    );

    server.script(vec![
        Reply::json(200, json!({})).delay(Duration::from_millis(400)),
    ]);
    let deprovision = deprovision(&client).await;
    assert!(deprovision.as_ref().unwrap_err().is_timeout());
    assert_eq!(
        orphan_mitigation_for(OrphanOperation::Deprovision, &deprovision),
        Cleanup::None
    );
    let bind = bind(&client).await;
    assert!(bind.as_ref().unwrap_err().is_timeout());
    assert_eq!(
        orphan_mitigation_for(OrphanOperation::Bind, &bind),
        Cleanup::Binding
    );

    // A provision whose asynchronous operation fails.
    server.script(vec![Reply::json(200, json!({"state": "failed"}))]);
    let poll = wait_on_instance(&client, OperationKind::Create).await;
    assert_eq!(
        orphan_mitigation(OrphanOperation::Provision, &Observed::from_poll(&poll)),
        Cleanup::Instance
    );
    assert_eq!(
        orphan_mitigation(OrphanOperation::Update, &Observed::from_poll(&poll)),
        Cleanup::None
    );
}

fn cleanup_policy(attempts: u32) -> CleanupPolicy {
    CleanupPolicy::new().attempts(attempts).poll(fast_policy())
}

#[tokio::test]
async fn cleanup_retries_and_follows_an_async_delete() {
    let server = Server::start(vec![
        Reply::text(500, "try later"),
        Reply::json(202, json!({"operation": "del-1"})),
        Reply::json(200, json!({"state": "in progress"})),
        Reply::json(200, json!({"state": "succeeded"})),
    ])
    .await;
    let user = OriginatingIdentity::from(CloudFoundryIdentity::new("user-1"));
    let client = server.builder().originating_identity(user).build().unwrap();
    let target = OrphanTarget::instance("i 1", "s", "p");
    let outcome = client
        .cleanup_orphan(&target, &cleanup_policy(5))
        .await
        .unwrap();
    assert_eq!(outcome, CleanupOutcome::Deleted { attempts: 2 });

    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    for request in &requests[..2] {
        assert_eq!(request.method, "DELETE");
        assert_eq!(request.path, "/v2/service_instances/i%201");
        assert_eq!(
            request.query.as_deref(),
            Some("accepts_incomplete=true&service_id=s&plan_id=p")
        );
    }
    assert_eq!(
        requests[3].path,
        "/v2/service_instances/i%201/last_operation"
    );
    assert_eq!(
        requests[3].query.as_deref(),
        Some("service_id=s&plan_id=p&operation=del-1")
    );
    assert!(
        requests
            .iter()
            .all(|r| r.header("x-broker-api-originating-identity").is_none()),
        "nobody asked for a cleanup"
    );
}

#[tokio::test]
async fn cleanup_of_a_binding_that_is_gone() {
    let server = Server::always(Reply::json(410, json!({}))).await;
    let target = OrphanTarget::binding("i", "b", "s", "p");
    let outcome = server
        .client()
        .cleanup_orphan(&target, &cleanup_policy(3))
        .await
        .unwrap();
    assert_eq!(outcome, CleanupOutcome::Gone { attempts: 1 });
    let request = server.last_request();
    assert_eq!(request.path, "/v2/service_instances/i/service_bindings/b");
    assert_eq!(
        request.query.as_deref(),
        Some("accepts_incomplete=true&service_id=s&plan_id=p")
    );

    // A 2.13 broker has no asynchronous unbind: the flag is left out.
    let old = server.client_with(|b| b.api_version(osb_types::ApiVersion::V2_13));
    old.cleanup_orphan(&target, &cleanup_policy(1))
        .await
        .unwrap();
    assert_eq!(
        server.last_request().query.as_deref(),
        Some("service_id=s&plan_id=p")
    );
}

#[tokio::test]
async fn cleanup_waits_out_concurrency_errors() {
    let server = Server::start(vec![
        Reply::json(422, json!({"error": "ConcurrencyError"})),
        Reply::json(200, json!({})),
    ])
    .await;
    let target = OrphanTarget::binding("i", "b", "s", "p");
    let outcome = server
        .client()
        .cleanup_orphan(&target, &cleanup_policy(3))
        .await
        .unwrap();
    assert_eq!(outcome, CleanupOutcome::Deleted { attempts: 2 });
}

#[tokio::test]
async fn cleanup_gives_up_with_the_last_error() {
    let server = Server::always(Reply::text(503, "down")).await;
    let target = OrphanTarget::instance("i", "s", "p");
    let err = server
        .client()
        .cleanup_orphan(&target, &cleanup_policy(3))
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(server.count(), 3);

    // An asynchronous delete that keeps failing.
    let server = Server::start(vec![
        Reply::json(202, json!({})),
        Reply::json(200, json!({"state": "failed", "description": "stuck"})),
        Reply::json(202, json!({})),
        Reply::json(
            200,
            json!({"state": "failed", "description": "still stuck"}),
        ),
    ])
    .await;
    let err = server
        .client()
        .cleanup_orphan(&target, &cleanup_policy(2))
        .await
        .unwrap_err();
    match &err {
        Error::OperationFailed { resource } => {
            assert_eq!(resource.description.as_deref(), Some("still stuck"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "the broker reports the operation as failed: still stuck"
    );
    assert_eq!(server.count(), 4);

    // A request the client refuses is not retried.
    let empty = OrphanTarget::instance("i", "", "p");
    let err = server
        .client()
        .cleanup_orphan(&empty, &cleanup_policy(3))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation(_)), "{err:?}");
    assert_eq!(server.count(), 4);
}

#[tokio::test]
async fn cleanup_does_not_repeat_requests_the_broker_refuses() {
    for status in [400, 401, 403, 412] {
        let server = Server::always(Reply::json(status, json!({"description": "no"}))).await;
        let target = OrphanTarget::instance("i", "s", "p");
        let err = server
            .client()
            .cleanup_orphan(&target, &cleanup_policy(3))
            .await
            .unwrap_err();
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(server.count(), 1, "{status} is not retried");
    }
}

/// Binds the way a platform does: on a result that calls for orphan mitigation, deletes the
/// binding.
async fn bind_with_mitigation(client: &Client) -> Result<BindOutcome, Error> {
    let result = bind(client).await;
    if orphan_mitigation_for(OrphanOperation::Bind, &result) == Cleanup::Binding {
        let target = OrphanTarget::binding("i", "b", "s", "p");
        let _ = client.cleanup_orphan(&target, &cleanup_policy(1)).await;
    }
    result
}

#[tokio::test]
async fn a_slip_in_an_optional_field_does_not_delete_a_working_binding() {
    // Ports as numbers instead of strings: the binding works, its credentials are there.
    let body = json!({
        "credentials": {"uri": "postgres://u:pw@db.internal:5432/app"},
        "endpoints": [{"host": "db.internal", "ports": [5432], "protocol": "tcp"}],
        "syslog_drain_url": 514,
    });
    let server = Server::start(vec![Reply::json(201, body), Reply::json(200, json!({}))]).await;
    let outcome = bind_with_mitigation(&server.client()).await.unwrap();
    let BindOutcome::Created(binding) = outcome else {
        panic!("expected Created, got {outcome:?}")
    };
    assert_eq!(
        binding.credentials.as_ref().unwrap()["uri"],
        "postgres://u:pw@db.internal:5432/app"
    );
    let endpoints = binding.endpoints.as_ref().unwrap();
    assert_eq!(endpoints[0].host, "db.internal");
    assert_eq!(endpoints[0].extra["ports"], json!([5432]));
    assert_eq!(binding.extra["syslog_drain_url"], json!(514));
    let methods: Vec<String> = server.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["PUT"], "no DELETE may follow a working binding");

    // Credentials that are not an object cannot be used: that binding is cleaned up.
    let body = json!({"credentials": "postgres://u:pw@db.internal:5432/app"});
    let server = Server::start(vec![Reply::json(201, body), Reply::json(200, json!({}))]).await;
    let err = bind_with_mitigation(&server.client()).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    let methods: Vec<String> = server.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["PUT", "DELETE"]);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let script = |status: u16| {
        vec![
            Reply::json(status, json!({"error": "Moved"})).header("location", "/elsewhere"),
            // What a followed redirect would get: for a 303, a GET whose 200 reads as success.
            Reply::json(200, json!({})),
        ]
    };
    for status in [301, 302, 303, 307, 308] {
        let server = Server::start(script(status)).await;
        let result = provision(&server.client(), "i", &ProvisionQuery::new()).await;
        match &result {
            Err(Error::UnexpectedStatus { status: got, .. }) => assert_eq!(got.as_u16(), status),
            other => panic!("{status}: expected UnexpectedStatus, got {other:?}"),
        }
        assert_eq!(server.count(), 1, "{status} was followed");
        assert_eq!(
            orphan_mitigation_for(OrphanOperation::Provision, &result),
            Cleanup::None,
            "{status}"
        );

        let server = Server::start(script(status)).await;
        let result = bind(&server.client()).await;
        assert!(
            matches!(&result, Err(Error::UnexpectedStatus { status: got, .. }) if got.as_u16() == status),
            "{status}: {result:?}"
        );
        assert_eq!(server.count(), 1, "{status} was followed");
        assert_eq!(
            orphan_mitigation_for(OrphanOperation::Bind, &result),
            Cleanup::None,
            "{status}"
        );
    }
}
