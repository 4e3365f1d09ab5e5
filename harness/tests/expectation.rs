//! Known discrepancies (`expect:` in a scenario): the test passes only while the builder fails
//! exactly on the assertions the scenario lists; the result's status stays Fail.

use harness::expectation::judge;
use model::result::{AssertionOutcome, Status};
use scenario::{Assertion, ExpectedFailure};

fn outcome(what: &str, status: Status) -> AssertionOutcome {
    AssertionOutcome {
        assertion: what.into(),
        status,
        expected: String::new(),
        found: String::new(),
        differences: None,
    }
}

fn scenario_assertions() -> Vec<Assertion> {
    vec![
        Assertion::StepSucceeded("second-build".into()),
        Assertion::LogContains {
            step: "second-build".into(),
            text: "skipping push".into(),
        },
    ]
}

fn expecting_the_log_to_fail() -> ExpectedFailure {
    ExpectedFailure {
        because: "the plugin does not read the setting".into(),
        fails: vec![scenario_assertions()[1].clone()],
    }
}

/// Judges a run whose two assertions ended with these statuses.
fn judge_run(step: Status, log: Status, run: Status) -> model::result::KnownDiscrepancy {
    let by_assertion = vec![
        vec![outcome("step second-build succeeded", step)],
        vec![outcome("output of step second-build contains", log)],
    ];
    judge(
        &expecting_the_log_to_fail(),
        &scenario_assertions(),
        &by_assertion,
        run,
    )
}

#[test]
fn failing_exactly_on_the_listed_assertions_meets_the_expectation() {
    let known = judge_run(Status::Pass, Status::Fail, Status::Fail);
    assert!(known.met, "{known:?}");
    assert_eq!(known.because, "the plugin does not read the setting");
}

#[test]
fn a_plugin_that_now_keeps_the_promise_is_noticed() {
    let known = judge_run(Status::Pass, Status::Pass, Status::Pass);
    assert!(!known.met);
    assert!(known.difference.unwrap().contains("now keeps the promise"));
}

#[test]
fn failing_somewhere_else_is_not_the_known_discrepancy() {
    let known = judge_run(Status::Fail, Status::Fail, Status::Fail);
    assert!(!known.met);
    assert_eq!(
        known.difference.as_deref(),
        Some("failed unexpectedly: step second-build succeeded")
    );
}

#[test]
fn an_error_never_counts_as_the_expected_failure() {
    let known = judge_run(Status::Pass, Status::Error, Status::Error);
    assert!(!known.met);
}
