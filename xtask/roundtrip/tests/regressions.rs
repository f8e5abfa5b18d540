//! Fixed cases that once failed a round-trip property, pasted from the failure output
//! (`regression(Mode::…, r#"…"#)`). They run with `cargo test -p osb-roundtrip`.

use osb_roundtrip::{Mode, regression, regression_in_both_modes};

/// A request identity of only whitespace reached the broker as `""` over HTTP (hyper trims
/// header values), while in process it arrived as sent. The client now refuses request
/// identities with spaces or tabs at either end.
#[test]
fn deprovision_loopback_whitespace_request_identity() {
    regression(
        Mode::Loopback,
        r#"{"deprovision":{"headers":{"version":"2.13","originating_identity":null,"request_identity":"\t"},"instance_id":"a0aa0aaa-aa00-aaaa-a0a0-aa000aaa0a0a","query":{"service_id":"svc-a/é ?&=+%#","plan_id":"plan a-basic"},"answer":{"reply":"deleted"}}}"#,
    );
}

/// A non-ASCII request identity was sent as raw UTF-8; the broker cannot read it as text, so it
/// saw no request identity at all. The client now refuses non-ASCII request identities.
#[test]
fn fetch_instance_non_ascii_request_identity() {
    regression_in_both_modes(
        r#"{"fetch_instance":{"headers":{"version":"2.14","originating_identity":null,"request_identity":"é"},"instance_id":"a0aa0aaa-0aa0-aaaa-0aa0-a0a00aaa0aa0","query":{},"answer":{"reply":{"found":{}}}}}"#,
    );
}

/// A context-only update (no `plan_id`, `parameters` or `maintenance_info`) is refused with
/// `422` by the `context_updates` guard when the offering lacks `allow_context_updates`; the
/// oracle did not know that guard. Offering A now allows context-only updates, B refuses them.
#[test]
fn update_context_only() {
    regression_in_both_modes(
        r#"{"update":{"headers":{"version":"2.15","originating_identity":null,"request_identity":null},"instance_id":"000a00a0-a00a-aa0a-a5bf-6fd2ceae919a","query":{},"request":{"service_id":"svc-a/é ?&=+%#","context":{"platform":"kubernetes","instance_name":"a"}},"answer":{"reply":{"updated":{}}}}}"#,
    );
    regression_in_both_modes(
        r#"{"update":{"headers":{"version":"2.15","originating_identity":null,"request_identity":null},"instance_id":"000a00a0-a00a-aa0a-a5bf-6fd2ceae919a","query":{},"request":{"service_id":"0b6c2f5e-93d1-4a7b-8e2f-5c1d3a9b7e60","context":{"platform":"kubernetes","instance_name":"a"}},"answer":{"reply":{"updated":{}}}}}"#,
    );
    regression_in_both_modes(
        r#"{"update":{"headers":{"version":"2.14","originating_identity":null,"request_identity":null},"instance_id":"000a00a0-a00a-aa0a-a5bf-6fd2ceae919a","query":{},"request":{"service_id":"0b6c2f5e-93d1-4a7b-8e2f-5c1d3a9b7e60","context":{"platform":"kubernetes","instance_name":"a"}},"answer":{"reply":{"updated":{}}}}}"#,
    );
}
