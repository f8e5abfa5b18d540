//! A short pass of every fuzz target with a fixed seed: none may fail. The long runs are
//! `cargo xtask fuzz --time …`.

use osb_fuzz::{Stop, TARGETS, run};

#[test]
fn every_target_survives_a_short_run() {
    for target in TARGETS {
        let report = run(target, Stop::Inputs(2_000), 0x05b_f022).unwrap();
        assert_eq!(report.inputs, 2_000);
        assert_eq!(
            report.failures, 0,
            "{target}: {} failures, e.g. {:#?}",
            report.failures, report.examples
        );
    }
}

#[test]
fn an_unknown_target_is_refused() {
    assert!(run("nope", Stop::Inputs(1), 1).is_err());
}
