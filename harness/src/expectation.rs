//! Known discrepancies: a scenario may expect a builder to break its promise (the docs and the
//! plugin's code disagree) on exactly some assertions. The result keeps its status (Fail: the
//! plugin did break the promise); this decides whether it broke it exactly as expected, so that
//! a fix in the plugin, or a new way of failing, is noticed.

use model::result::{AssertionOutcome, KnownDiscrepancy, Status};
use scenario::{Assertion, ExpectedFailure};

/// Compares a run with the expected failure. `by_assertion` holds the outcomes of each of the
/// scenario's `assertions`, in order, then any checks of the harness's own (the full
/// accounting), which no expectation names; `status` is the run's status.
pub fn judge(
    expected: &ExpectedFailure,
    assertions: &[Assertion],
    by_assertion: &[Vec<AssertionOutcome>],
    status: Status,
) -> KnownDiscrepancy {
    let broken = |i: usize| by_assertion[i].iter().any(|o| o.status == Status::Fail);
    let expected_to_fail = |i: usize| expected.fails.contains(&assertions[i]);
    let describe = |i: usize| {
        by_assertion[i]
            .first()
            .map_or_else(|| format!("assertion {}", i + 1), |o| o.assertion.clone())
    };
    let which = |keep: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..assertions.len().min(by_assertion.len()))
            .filter(|&i| keep(i))
            .map(describe)
            .collect()
    };
    let mut unexpected = which(&|i| broken(i) && !expected_to_fail(i));
    unexpected.extend(
        by_assertion
            .iter()
            .skip(assertions.len())
            .flatten()
            .filter(|o| o.status == Status::Fail)
            .map(|o| o.assertion.clone()),
    );
    let kept = which(&|i| !broken(i) && expected_to_fail(i));
    let difference = match status {
        Status::Error => Some("the harness could not find out (Error)".to_owned()),
        Status::Skip => Some("the combination was skipped".to_owned()),
        Status::Pass => Some(
            "every assertion passed: the plugin now keeps the promise; remove the builder from \
             `expect` in the scenario"
                .to_owned(),
        ),
        Status::Fail if unexpected.is_empty() && kept.is_empty() => None,
        Status::Fail => {
            let mut parts = Vec::new();
            if !unexpected.is_empty() {
                parts.push(format!("failed unexpectedly: {}", unexpected.join("; ")));
            }
            if !kept.is_empty() {
                parts.push(format!("expected to fail but passed: {}", kept.join("; ")));
            }
            Some(parts.join("; "))
        }
    };
    KnownDiscrepancy {
        because: expected.because.clone(),
        met: difference.is_none(),
        difference,
    }
}
