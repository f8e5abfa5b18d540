//! The notes broker's answers and what the mistakes of a newcomer get told: a missing version
//! header, asking the slow plan without `accepts_incomplete`, binding too early, and a catalog
//! whose names and ids were swapped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use example_notes_broker::{NotesBroker, SLOW_PLAN};
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use osb_client::prelude::*;
use osb_server::Broker;
use tower::ServiceExt as _;

async fn router(delay: Duration) -> axum::Router {
    let mut broker = NotesBroker::default();
    broker.delay = delay;
    Broker::builder(broker)
        .basic_auth("admin", "pw")
        .build()
        .await
        .unwrap()
}

async fn client(delay: Duration) -> Client {
    Client::builder("http://notes.test")
        .service(router(delay).await)
        .basic_auth("admin", "pw")
        .build()
        .unwrap()
}

fn provision_request(catalog: &Catalog, plan: &str) -> ServiceInstanceProvisionRequest {
    let (service, plan) = catalog.find_plan(plan).unwrap();
    ServiceInstanceProvisionRequest::new(&service.id, &plan.id, "org", "space")
}

#[tokio::test]
async fn the_catalog_lints_clean() {
    let catalog = client(Duration::ZERO)
        .await
        .catalog(&CallOptions::new())
        .await
        .unwrap();
    assert_eq!(catalog.lint(), []);
    assert!(!catalog.find_plan(SLOW_PLAN).unwrap().1.effective_free());
}

#[tokio::test]
async fn a_missing_version_header_is_a_412_that_says_what_to_send() {
    let request = Request::get("/v2/catalog")
        .header("authorization", "Basic YWRtaW46cHc=")
        .body(axum::body::Body::empty())
        .unwrap();
    let reply = router(Duration::ZERO).await.oneshot(request).await.unwrap();
    assert_eq!(reply.status(), StatusCode::PRECONDITION_FAILED);
    let body = reply.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let description = body["description"].as_str().unwrap();
    assert!(
        description.contains("X-Broker-API-Version: 2.17"),
        "{description}"
    );
}

#[tokio::test]
async fn the_slow_plan_without_accepts_incomplete_is_a_422_async_required() {
    let client = client(Duration::from_secs(60)).await;
    let opts = CallOptions::new();
    let catalog = client.catalog(&opts).await.unwrap();
    let id = InstanceId::new("n-1");
    let request = provision_request(&catalog, SLOW_PLAN);
    let err = client
        .provision(&id, &request, &ProvisionQuery::new(), &opts)
        .await
        .unwrap_err();
    assert!(err.is_async_required(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the broker answered 422 Unprocessable Entity (AsyncRequired): This operation can only \
         be completed asynchronously; retry with accepts_incomplete=true."
    );

    // With the permit: 202, polls say "in progress", binding too early is refused.
    let query = ProvisionQuery::new().with_accepts_incomplete(true);
    let outcome = client
        .provision(&id, &request, &query, &opts)
        .await
        .unwrap();
    assert_eq!(
        outcome.as_accepted().unwrap().operation().unwrap(),
        "create"
    );
    let again = client
        .provision(&id, &request, &query, &opts)
        .await
        .unwrap();
    assert!(
        again.as_accepted().is_some(),
        "still in progress: {again:?}"
    );
    let poll = client
        .instance_last_operation(&id, &InstanceLastOperationQuery::new(), &opts)
        .await
        .unwrap();
    assert_eq!(poll.state(), Some(&LastOperationState::InProgress));
    let LastOperationOutcome::State(state) = poll else {
        panic!("a state")
    };
    assert_eq!(
        state.retry_after,
        Some(osb_client::types::RetryAfter::seconds(1))
    );
    let bind = ServiceBindingRequest::new(&request.service_id, &request.plan_id);
    let err = client
        .bind(&id, &BindingId::new("b"), &bind, &BindQuery::new(), &opts)
        .await
        .unwrap_err();
    assert!(err.is_concurrency_error(), "{err:?}");
}

#[tokio::test]
async fn the_free_plan_is_synchronous_and_idempotent() {
    let client = client(Duration::from_secs(60)).await;
    let opts = CallOptions::new();
    let catalog = client.catalog(&opts).await.unwrap();
    let free = &catalog
        .service_by_name("notes")
        .unwrap()
        .plan_by_name("free")
        .unwrap()
        .id;
    let id = InstanceId::new("n-2");
    let request = provision_request(&catalog, free);
    let query = ProvisionQuery::new().with_accepts_incomplete(true);
    let first = client
        .provision(&id, &request, &query, &opts)
        .await
        .unwrap();
    assert!(matches!(first, ProvisionOutcome::Created(_)), "{first:?}");
    let second = client
        .provision(&id, &request, &query, &opts)
        .await
        .unwrap();
    assert!(
        matches!(second, ProvisionOutcome::AlreadyExists(_)),
        "{second:?}"
    );
    let other = provision_request(&catalog, SLOW_PLAN);
    let err = client
        .provision(&id, &other, &query, &opts)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    let query = DeprovisionQuery::new(&request.service_id, &request.plan_id);
    let gone = client.deprovision(&id, &query, &opts).await.unwrap();
    assert_eq!(gone, DeleteOutcome::Deleted);
    let again = client.deprovision(&id, &query, &opts).await.unwrap();
    assert_eq!(again, DeleteOutcome::Gone);
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn swapped_names_and_ids_are_warned_about_at_start() {
    // The trial wrote `Plan::new(name, id, …)`, which no longer compiles; a catalog from JSON
    // can still swap them, and the linter says so when the broker starts.
    let swapped: Catalog = serde_json::from_value(serde_json::json!({"services": [{
        "id": "notes", "name": "6b1e7a52-3c0d-4f4e-9a57-2d8c1b0e9f31", "description": "Notes",
        "bindable": true,
        "plans": [{"id": "free", "name": "0c8f4d2e-5b7a-4e19-8d36-9a1f2b3c4d5e", "description": "Free"}]
    }]}))
    .unwrap();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let built = Broker::builder(NotesBroker::default())
        .catalog(swapped)
        .basic_auth("admin", "pw")
        .build::<()>()
        .await;
    assert!(built.is_ok(), "warnings do not stop the broker");
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("name-looks-like-guid"))
        .collect();
    assert_eq!(warnings.len(), 2, "{logs}");
    assert!(
        warnings[0].contains("were the name and the id swapped?"),
        "{}",
        warnings[0]
    );
}
