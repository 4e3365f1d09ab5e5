//! Release validation: may image B replace image A in a role? The role's plans run with A and
//! with B on the same profile (only the role's image changes; its run options stay), alternating
//! A B A B plan by plan and repetition by repetition so that drift on the machine hits both
//! alike; the two runs are then compared.

use std::path::{Path, PathBuf};

use crate::compare::{self, Comparison, Settings};
use crate::errors::{ProfileLoadError, ReleaseValidationError};
use crate::matrix::{self, Job, Options};
use crate::plan::Plan;
use crate::report;
use crate::result::ScenarioResult;
use crate::runner::RunContext;
use crate::runs::Run;

/// A role and the two images to weigh against each other.
#[derive(Debug, Clone)]
pub struct Candidates {
    pub role: String,
    pub image_a: String,
    pub image_b: String,
}

/// The run contexts for A and for B: the role played by each image, reports under `A/`, `B/`.
pub fn contexts(
    ctx: &RunContext,
    candidates: &Candidates,
) -> Result<[RunContext; 2], ProfileLoadError> {
    let with = |side: &str, image: &str| ctx.with_image(&candidates.role, image, Path::new(side));
    Ok([
        with("A", &candidates.image_a)?,
        with("B", &candidates.image_b)?,
    ])
}

/// Runs the role's plans with A and with B, alternating, and returns the two runs.
pub async fn run(
    sides: &[RunContext; 2],
    plans: &[Plan],
    candidates: &Candidates,
    options: Options,
    finished: impl Fn(&ScenarioResult),
) -> (Run, Run) {
    let role_plans: Vec<&Plan> = plans
        .iter()
        .filter(|p| p.runs_role(&candidates.role))
        .collect();
    let mut jobs = Vec::new();
    for repetition in 1..=options.repeat.max(1) {
        for plan in &role_plans {
            for ctx in sides {
                jobs.push(Job {
                    ctx,
                    plan,
                    repetition,
                });
            }
        }
    }
    let results = matrix::run_jobs(jobs, options, |result| finished(result)).await;
    // Results come back in the jobs' order: A, B, A, B, …
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (i, result) in results.into_iter().enumerate() {
        if i % 2 == 0 {
            a.push(result);
        } else {
            b.push(result);
        }
    }
    let run = |side: &str, image: &str, dir: &PathBuf, results: Vec<ScenarioResult>| Run {
        id: format!("{side}: {image}"),
        source: dir.clone(),
        results,
    };
    (
        run("A", &candidates.image_a, &sides[0].report_dir, a),
        run("B", &candidates.image_b, &sides[1].report_dir, b),
    )
}

/// Runs A and B, writes each side's summary and the comparison (`compare.md`, `compare.json`)
/// under the run's report directory, and returns the comparison: it answers "may B replace A?"
/// (no status regression, no timing regression).
pub async fn validate(
    ctx: &RunContext,
    plans: &[Plan],
    candidates: &Candidates,
    options: Options,
    settings: &Settings,
    finished: impl Fn(&ScenarioResult),
) -> Result<Comparison, ReleaseValidationError> {
    let sides = contexts(ctx, candidates)?;
    let (a, b) = run(&sides, plans, candidates, options, finished).await;
    for (side, run) in sides.iter().zip([&a, &b]) {
        report::write_summary(&side.report_dir, &run.id, &run.results)?;
    }
    let runs = [a, b];
    let comparison = compare::compare(&runs[..1], &runs[1..], settings);
    report::write_reports(&ctx.report_dir, &runs)?;
    let answer = answer(candidates, &comparison);
    report::write_comparison(&ctx.report_dir, &comparison, Some(&answer))?;
    Ok(comparison)
}

/// One line answering the question, from a comparison of A (base) and B (new).
pub fn answer(candidates: &Candidates, comparison: &Comparison) -> String {
    let v = &comparison.verdict;
    if v.status_regressions == 0 && v.timing_regressions == 0 {
        format!(
            "{} may replace {} as `{}`: no status or timing regression in {} plan(s)",
            candidates.image_b, candidates.image_a, candidates.role, v.plans
        )
    } else {
        format!(
            "{} may NOT replace {} as `{}`: {} status regression(s), {} timing regression(s)",
            candidates.image_b,
            candidates.image_a,
            candidates.role,
            v.status_regressions,
            v.timing_regressions
        )
    }
}
