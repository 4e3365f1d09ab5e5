//! A side's durations, subject by subject: what timings compare and calibrations measure.

use model::result::{ScenarioResult, Status};

/// The `subject` of the comparison of all steps together.
pub const ALL_STEPS: &str = "all steps";

/// Every subject's samples on one side: each step (`step NAME`, by name in the order the steps
/// first appear) over the repetitions that ran it, then `all steps`.
pub(super) fn samples(results: &[&ScenarioResult]) -> Vec<(String, Vec<u64>)> {
    let mut out: Vec<(String, Vec<u64>)> = Vec::new();
    for result in results.iter().filter(|r| r.status != Status::Skip) {
        for step in &result.steps {
            if step.exit_code.is_none() && !step.timed_out {
                continue;
            }
            let subject = format!("step {}", step.name);
            match out.iter_mut().find(|(s, _)| *s == subject) {
                Some((_, samples)) => samples.push(step.duration_ms),
                None => out.push((subject, vec![step.duration_ms])),
            }
        }
    }
    let all = totals(results);
    if !all.is_empty() {
        out.push((ALL_STEPS.to_owned(), all));
    }
    out
}

/// The steps' wall time of each result that recorded one (older runs have no phases).
fn totals(results: &[&ScenarioResult]) -> Vec<u64> {
    results
        .iter()
        .filter(|r| r.status != Status::Skip)
        .map(|r| r.phases.steps_ms)
        .filter(|ms| *ms > 0)
        .collect()
}
