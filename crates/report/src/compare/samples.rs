//! A side's durations, subject by subject: what timings compare and calibrations measure.

use model::result::{ScenarioResult, Status};

/// The `subject` of the comparison of all steps together.
pub const ALL_STEPS: &str = "all steps";

/// Every subject's samples on one side: each step (`step NAME`, by name in the order the steps
/// first appear) over the repetitions that ran it, then `all steps`.
fn samples(results: &[&ScenarioResult]) -> Vec<(String, Vec<u64>)> {
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

/// A subject both sides ran, with its samples on each: a timing to judge, or (two identical
/// sides) a noise floor to measure.
pub(super) struct Paired {
    pub subject: String,
    /// The step's name; `None` for all steps.
    pub step: Option<String>,
    pub base: Vec<u64>,
    pub new: Vec<u64>,
}

/// Each subject both sides ran (in BASE's order, all steps last).
pub(super) fn paired(base: &[&ScenarioResult], new: &[&ScenarioResult]) -> Vec<Paired> {
    let new_steps = samples(new);
    samples(base)
        .into_iter()
        .filter_map(|(subject, base)| {
            let (_, new) = new_steps.iter().find(|(s, _)| *s == subject)?;
            Some(Paired {
                step: subject.strip_prefix("step ").map(str::to_owned),
                subject,
                base,
                new: new.clone(),
            })
        })
        .collect()
}
