//! Every status code the spec lists for every endpoint decodes to the right outcome or error;
//! malformed bodies, non-JSON errors and unexpected statuses are classified.

mod common;

use common::{Reply, Server};
use osb_client::{CallOptions, Client, Error};
use osb_types::{
    BindOutcome, BindQuery, BindingId, BindingLastOperationQuery, DeleteOutcome, DeprovisionQuery,
    ErrorCode, FetchBindingOutcome, FetchBindingQuery, FetchInstanceOutcome, FetchInstanceQuery,
    InstanceId, InstanceLastOperationQuery, LastOperationOutcome, Operation, ProvisionOutcome,
    ProvisionQuery, ServiceBindingRequest, ServiceInstanceProvisionRequest,
    ServiceInstanceUpdateRequest, UnbindQuery, UpdateOutcome, UpdateQuery,
};
use serde_json::json;

/// Calls `op` with `accepts_incomplete=true` and names the outcome.
async fn call(client: &Client, op: Operation) -> Result<String, Error> {
    let opts = CallOptions::new();
    let instance = InstanceId::new("i-1");
    let binding = BindingId::new("b-1");
    let label = match op {
        Operation::Catalog => format!("Catalog({})", client.catalog(&opts).await?.services.len()),
        Operation::Provision => {
            let body = ServiceInstanceProvisionRequest::new("s", "p", "o", "sp");
            match client
                .provision(
                    &instance,
                    &body,
                    &ProvisionQuery::new().with_accepts_incomplete(true),
                    &opts,
                )
                .await?
            {
                ProvisionOutcome::Created(r) => format!("Created({:?})", r.dashboard_url),
                ProvisionOutcome::AlreadyExists(_) => "AlreadyExists".into(),
                ProvisionOutcome::Accepted(a) => {
                    format!("Accepted({:?})", a.operation().map(|o| o.as_str()))
                }
                other => format!("{other:?}"),
            }
        }
        Operation::Update => {
            let body = ServiceInstanceUpdateRequest::new("s");
            match client
                .update(
                    &instance,
                    &body,
                    &UpdateQuery::new().with_accepts_incomplete(true),
                    &opts,
                )
                .await?
            {
                UpdateOutcome::Updated(_) => "Updated".into(),
                UpdateOutcome::Accepted(a) => {
                    format!("Accepted({:?})", a.operation().map(|o| o.as_str()))
                }
                other => format!("{other:?}"),
            }
        }
        Operation::Deprovision => {
            let query = DeprovisionQuery::new("s", "p").with_accepts_incomplete(true);
            delete_label(client.deprovision(&instance, &query, &opts).await?)
        }
        Operation::Unbind => {
            let query = UnbindQuery::new("s", "p").with_accepts_incomplete(true);
            delete_label(client.unbind(&instance, &binding, &query, &opts).await?)
        }
        Operation::Bind => {
            let body = ServiceBindingRequest::new("s", "p");
            match client
                .bind(
                    &instance,
                    &binding,
                    &body,
                    &BindQuery::new().with_accepts_incomplete(true),
                    &opts,
                )
                .await?
            {
                BindOutcome::Created(r) => format!("Created({})", r.credentials.is_some()),
                BindOutcome::AlreadyExists(_) => "AlreadyExists".into(),
                BindOutcome::Accepted(a) => {
                    format!("Accepted({:?})", a.operation().map(|o| o.as_str()))
                }
                other => format!("{other:?}"),
            }
        }
        Operation::InstanceLastOperation => last_op_label(
            client
                .instance_last_operation(&instance, &InstanceLastOperationQuery::new(), &opts)
                .await?,
        ),
        Operation::BindingLastOperation => last_op_label(
            client
                .binding_last_operation(
                    &instance,
                    &binding,
                    &BindingLastOperationQuery::new(),
                    &opts,
                )
                .await?,
        ),
        Operation::FetchInstance => match client
            .fetch_instance(&instance, &FetchInstanceQuery::new(), &opts)
            .await?
        {
            FetchInstanceOutcome::Found(r) => format!("Found({:?})", r.plan_id.as_deref()),
            FetchInstanceOutcome::NotFound => "NotFound".into(),
            other => format!("{other:?}"),
        },
        Operation::FetchBinding => {
            match client
                .fetch_binding(&instance, &binding, &FetchBindingQuery::new(), &opts)
                .await?
            {
                FetchBindingOutcome::Found(r) => format!("Found({})", r.credentials.is_some()),
                FetchBindingOutcome::NotFound => "NotFound".into(),
                other => format!("{other:?}"),
            }
        }
    };
    Ok(label)
}

fn delete_label(outcome: DeleteOutcome) -> String {
    match outcome {
        DeleteOutcome::Deleted => "Deleted".into(),
        DeleteOutcome::Gone => "Gone".into(),
        DeleteOutcome::Accepted(a) => format!("Accepted({:?})", a.operation().map(|o| o.as_str())),
        other => format!("{other:?}"),
    }
}

fn last_op_label(outcome: LastOperationOutcome) -> String {
    match outcome {
        LastOperationOutcome::State(op) => {
            format!("State({}, {:?})", op.resource.state, op.retry_after)
        }
        LastOperationOutcome::Gone => "Gone".into(),
        LastOperationOutcome::NotFound => "NotFound".into(),
        other => format!("{other:?}"),
    }
}

/// A well-formed body for a success status of `op`.
fn success_body(op: Operation, status: u16) -> serde_json::Value {
    match (op, status) {
        (Operation::Catalog, _) => {
            json!({"services": [{"id": "s", "name": "db", "description": "d", "bindable": true, "plans": [{"id": "p", "name": "small", "description": "d"}]}]})
        }
        (Operation::Provision | Operation::Update, 202) => {
            json!({"operation": "op-1", "dashboard_url": "https://d"})
        }
        (Operation::Provision, _) => json!({"dashboard_url": "https://d"}),
        (Operation::Update, _) => json!({}),
        (Operation::Deprovision | Operation::Unbind | Operation::Bind, 202) => {
            json!({"operation": "op-1"})
        }
        (Operation::Deprovision | Operation::Unbind, _) => json!({}),
        (Operation::Bind | Operation::FetchBinding, _) => json!({"credentials": {"user": "u"}}),
        (Operation::FetchInstance, _) => json!({"service_id": "s", "plan_id": "p"}),
        (Operation::InstanceLastOperation | Operation::BindingLastOperation, _) => {
            json!({"state": "in progress"})
        }
    }
}

/// What each listed status must decode to.
fn expected(op: Operation, status: u16) -> String {
    use Operation::*;
    let label = match (op, status) {
        (Catalog, 200) => "Catalog(1)",
        (Provision, 200) | (Bind, 200) => "AlreadyExists",
        (Provision, 201) => "Created(Some(Some(\"https://d\")))",
        (Bind, 201) => "Created(true)",
        (Provision | Update | Deprovision | Bind | Unbind, 202) => "Accepted(Some(\"op-1\"))",
        (Update, 200) => "Updated",
        (Deprovision | Unbind, 200) => "Deleted",
        (Deprovision | Unbind | InstanceLastOperation | BindingLastOperation, 410) => "Gone",
        (InstanceLastOperation | BindingLastOperation, 200) => "State(in progress, None)",
        (FetchInstance, 200) => "Found(Some(\"p\"))",
        (FetchBinding, 200) => "Found(true)",
        (FetchInstance | FetchBinding | InstanceLastOperation | BindingLastOperation, 404) => {
            "NotFound"
        }
        // Every other listed code is an error reply: 400, 401, 409, 412, 422, and 410 on bind
        // (which the spec does not define as an outcome).
        _ => return format!("Broker({status})"),
    };
    label.to_string()
}

fn error_body(op: Operation, status: u16) -> serde_json::Value {
    match (op, status) {
        (Operation::FetchInstance, 422) => {
            json!({"error": "ConcurrencyError", "description": "update running"})
        }
        (_, 422) => json!({"error": "AsyncRequired", "description": "async only"}),
        _ => json!({"description": "refused"}),
    }
}

#[tokio::test]
async fn every_listed_status_of_every_endpoint_decodes() {
    let server = Server::always(Reply::text(500, "unset")).await;
    let mut covered = 0;
    for op in Operation::ALL {
        for &status in op.status_codes() {
            if op == Operation::Catalog && status == 304 {
                continue; // needs a cached catalog: `catalog_is_revalidated_with_etag`
            }
            let want = expected(op, status);
            let body = if want.starts_with("Broker") {
                error_body(op, status)
            } else {
                success_body(op, status)
            };
            server.script(vec![Reply::json(status, body)]);
            let client = server.client();
            let got = match call(&client, op).await {
                Ok(label) => label,
                Err(Error::Broker { status, code, body }) => {
                    assert_eq!(code, body.code(), "{op:?} {status}");
                    if status.as_u16() == 422 {
                        assert!(
                            code.as_ref().is_some_and(ErrorCode::is_known),
                            "{op:?}: {code:?}"
                        );
                    } else {
                        assert_eq!(body.description.as_deref(), Some("refused"));
                    }
                    format!("Broker({})", status.as_u16())
                }
                Err(other) => format!("error: {other:?}"),
            };
            assert_eq!(got, want, "{op:?} answered {status}");
            covered += 1;
        }
    }
    assert_eq!(covered, 64);
}

#[tokio::test]
async fn error_codes_are_classified() {
    let server = Server::always(Reply::text(500, "unset")).await;
    let client = server.client();
    let cases = [
        (
            "AsyncRequired",
            Error::is_async_required as fn(&Error) -> bool,
        ),
        ("ConcurrencyError", Error::is_concurrency_error),
        ("RequiresApp", Error::is_requires_app),
        (
            "MaintenanceInfoConflict",
            Error::is_maintenance_info_conflict,
        ),
    ];
    for (code, check) in cases {
        server.script(vec![Reply::json(
            422,
            json!({"error": code, "description": "x", "x-extra": 1}),
        )]);
        let err = call(&client, Operation::Bind).await.unwrap_err();
        assert!(check(&err), "{code}: {err:?}");
        assert_eq!(err.error_code().map(ErrorCode::as_str), Some(code));
        assert_eq!(err.error_response().unwrap().extra["x-extra"], 1);
    }
    server.script(vec![Reply::json(422, json!({"error": "QuotaExceeded"}))]);
    let err = call(&client, Operation::Provision).await.unwrap_err();
    assert_eq!(
        err.error_code(),
        Some(&ErrorCode::Unknown("QuotaExceeded".into()))
    );
    assert!(!err.is_async_required() && !err.is_concurrency_error());

    server.script(vec![Reply::json(409, json!({}))]);
    let err = call(&client, Operation::Provision).await.unwrap_err();
    assert!(err.is_conflict());
    assert!(matches!(err, Error::Broker { code: None, .. }));

    server.script(vec![Reply::json(410, json!({}))]);
    assert!(call(&client, Operation::Bind).await.unwrap_err().is_gone());

    server.script(vec![Reply::text(401, "")]);
    let err = call(&client, Operation::Catalog).await.unwrap_err();
    assert!(err.is_unauthorized());
    assert!(matches!(err, Error::UnexpectedStatus { .. }));
}

#[tokio::test]
async fn malformed_success_bodies_are_decode_errors_that_keep_the_body() {
    let server = Server::always(Reply::text(500, "unset")).await;
    let client = server.client();
    let cases = [
        (Operation::Catalog, 200, json!({"services": 5})),
        // Bodies that are not objects, and needed fields that do not match (a mistyped optional
        // field is set aside instead: see `tests/orphan.rs` and `tests/poll.rs`).
        (Operation::Provision, 201, json!(["created"])),
        (Operation::Provision, 200, json!("created")),
        (Operation::Provision, 202, json!({"operation": 5})),
        (Operation::Update, 200, json!(5)),
        (Operation::Update, 202, json!({"operation": false})),
        (Operation::Deprovision, 202, json!({"operation": 5})),
        (Operation::Unbind, 202, json!({"operation": []})),
        (Operation::Bind, 201, json!({"credentials": "secret-text"})),
        (Operation::Bind, 202, json!({"operation": 5})),
        (Operation::FetchInstance, 200, json!([])),
        (Operation::FetchBinding, 200, json!({"credentials": 5})),
        (
            Operation::InstanceLastOperation,
            200,
            json!({"description": "no state"}),
        ),
        (Operation::BindingLastOperation, 200, json!({"state": 5})),
    ];
    for (op, status, body) in cases {
        server.script(vec![Reply::json(status, body.clone())]);
        match call(&client, op).await {
            Err(err @ Error::Decode { .. }) => {
                assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{op:?}");
                assert_eq!(err.raw_body(), Some(body.to_string().as_str()), "{op:?}");
                assert!(
                    !format!("{err:?}").contains("secret-text"),
                    "bodies stay out of Debug"
                );
            }
            other => panic!("{op:?} {status}: expected a decode error, got {other:?}"),
        }
    }
    // The reason names the JSON path of what did not match, and no secret value.
    let cases = [
        (
            Operation::Catalog,
            200,
            json!({"services": [{"id": "s", "name": "db", "description": "d", "bindable": true,
                "plans": [{"id": "p", "name": "a", "description": "d"}, {"name": "b", "description": "d"}]}]}),
            "at `services[0].plans[1]`: missing field `id`",
        ),
        (
            Operation::Bind,
            201,
            json!({"credentials": ["secret-text"], "volume_mounts": [{"driver": "secret-text"}]}),
            "at `credentials`: invalid type: sequence, expected a map",
        ),
        (
            Operation::InstanceLastOperation,
            200,
            json!({"instance_usable": "secret-text"}),
            "missing field `state`",
        ),
    ];
    for (op, status, body, reason) in cases {
        server.script(vec![Reply::json(status, body)]);
        let err = call(&client, op).await.unwrap_err();
        let source = std::error::Error::source(&err).map(ToString::to_string);
        let source = source.unwrap_or_default();
        assert!(source.starts_with(reason), "{op:?}: {source}");
        assert!(!source.contains("secret-text"), "{source}");
    }
    // Not JSON at all.
    server.script(vec![Reply::text(201, "<html>created</html>")]);
    assert!(matches!(
        call(&client, Operation::Provision).await,
        Err(Error::Decode { .. })
    ));
}

#[tokio::test]
async fn non_json_and_unexpected_replies_keep_status_and_raw_body() {
    let server = Server::always(Reply::text(500, "unset")).await;
    let client = server.client();
    for op in Operation::ALL {
        server.script(vec![Reply::text(502, "Bad Gateway from the proxy")]);
        match call(&client, op).await {
            Err(Error::UnexpectedStatus { status, body }) => {
                assert_eq!(status.as_u16(), 502);
                assert_eq!(body.as_str(), "Bad Gateway from the proxy");
            }
            other => panic!("{op:?}: {other:?}"),
        }
    }
    // A 5xx with an OSB body is still a broker error.
    server.script(vec![Reply::json(
        503,
        json!({"description": "maintenance"}),
    )]);
    let err = call(&client, Operation::Provision).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the broker answered 503 Service Unavailable: maintenance"
    );

    // Statuses the operation does not define, even 2xx ones.
    let cases = [
        (Operation::Provision, 204),
        (Operation::Deprovision, 201),
        (Operation::Update, 201),
        (Operation::Bind, 204),
        (Operation::FetchInstance, 202),
        (Operation::InstanceLastOperation, 202),
        (Operation::Catalog, 201),
    ];
    for (op, status) in cases {
        server.script(vec![Reply::json(status, json!({}))]);
        match call(&client, op).await {
            Err(Error::UnexpectedStatus { status: got, .. }) => {
                assert_eq!(got.as_u16(), status, "{op:?}")
            }
            other => panic!("{op:?} {status}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn accepted_without_accepts_incomplete_is_refused() {
    let server = Server::always(Reply::json(202, json!({"operation": "op-1"}))).await;
    let client = server.client();
    let opts = CallOptions::new();
    let instance = InstanceId::new("i-1");
    let body = ServiceInstanceProvisionRequest::new("s", "p", "o", "sp");
    for query in [
        ProvisionQuery::new(),
        ProvisionQuery::new().with_accepts_incomplete(false),
    ] {
        let err = client
            .provision(&instance, &body, &query, &opts)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::AsyncNotPermitted { .. }), "{err:?}");
        assert_eq!(err.raw_body(), Some(r#"{"operation":"op-1"}"#));
    }
    let err = client
        .deprovision(&instance, &DeprovisionQuery::new("s", "p"), &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AsyncNotPermitted { .. }));
    assert_eq!(
        server.last_request().query_param("accepts_incomplete"),
        None
    );
}

#[tokio::test]
async fn empty_bodies_on_deletes_and_retry_after_on_polls() {
    let server = Server::always(Reply::text(200, "")).await;
    let client = server.client();
    assert_eq!(
        call(&client, Operation::Deprovision).await.unwrap(),
        "Deleted"
    );
    assert_eq!(call(&client, Operation::Update).await.unwrap(), "Updated");

    server.script(vec![
        Reply::json(200, json!({"state": "succeeded"})).header("retry-after", "7"),
    ]);
    assert_eq!(
        call(&client, Operation::InstanceLastOperation)
            .await
            .unwrap(),
        "State(succeeded, Some(Delay(7s)))"
    );
    server.script(vec![
        Reply::json(200, json!({"state": "failed"})).header("retry-after", "whenever"),
    ]);
    assert_eq!(
        call(&client, Operation::BindingLastOperation)
            .await
            .unwrap(),
        "State(failed, None)"
    );
}
