//! The platform program against the notes broker: in process (osb-client's `in-process`
//! feature) on both plans, over loopback once, and against nothing at all.

use std::time::Duration;

use example_notes_broker::NotesBroker;
use example_notes_platform::lifecycle;
use osb_client::Client;
use osb_server::Broker;

async fn router() -> axum::Router {
    let mut broker = NotesBroker::default();
    broker.delay = Duration::from_millis(200);
    let builder = Broker::builder(broker).basic_auth("admin", "pw");
    builder.build().await.expect("the notes broker builds")
}

#[tokio::test]
async fn the_whole_lifecycle_in_process_on_both_plans() {
    for plan in ["free", "slow"] {
        let client = Client::builder("http://notes.test")
            .service(router().await)
            .basic_auth("admin", "pw")
            .build()
            .unwrap();
        let credentials = lifecycle(&client, plan).await.unwrap();
        assert_eq!(
            credentials["url"], "https://notes.example.com/notebook-1",
            "{plan}"
        );
        assert_eq!(credentials["user"], "app-1");
        assert_eq!(credentials["token"].as_str().map(str::len), Some(36));
    }
}

#[tokio::test]
async fn the_whole_lifecycle_over_loopback() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router().await).await });
    let client = Client::builder(url)
        .basic_auth("admin", "pw")
        .build()
        .unwrap();
    let credentials = lifecycle(&client, "slow").await.unwrap();
    assert!(credentials.contains_key("token"));
    server.abort();
}

#[tokio::test]
async fn an_unknown_plan_and_a_missing_broker_say_what_is_wrong() {
    let client = Client::builder("http://notes.test")
        .service(router().await)
        .basic_auth("admin", "pw")
        .build()
        .unwrap();
    let err = lifecycle(&client, "huge").await.unwrap_err();
    assert_eq!(err.to_string(), "no such plan");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = Client::builder(&url)
        .basic_auth("admin", "pw")
        .build()
        .unwrap();
    let err = lifecycle(&client, "slow").await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "could not talk to the broker: GET {url}/v2/catalog: "
        )),
        "{text}"
    );
    assert!(text.to_lowercase().contains("connect"), "{text}");
    let debug = format!("{err:?}");
    assert!(
        debug.contains("Transport") && debug.contains(&url),
        "{debug}"
    );
}
