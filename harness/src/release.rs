//! Release validation: may image B replace image A in a role? The role's plans run with A and
//! with B on the same profile (only the role's image changes; its run options stay), then the
//! two runs are compared with the one timing decision ([`report::compare::decide`]).
//!
//! **Order.** The sides of one plan and repetition run as a sequence in one lane, one after the
//! other, each torn down before the next starts, so that no side overlaps the other's bring-up
//! or teardown. Which side goes first rotates with the repetition and the plan (A B, then B A,
//! …; with calibration A A′ B, A′ B A, B A A′): every side holds every position equally often,
//! so a bias of the position (the machine warming, the previous side's leftovers being
//! reclaimed) falls on both alike instead of always on B. With several lanes, neighbouring
//! sequences run in opposite orders.
//!
//! **Calibration** (`--calibrate`): A runs a second time (A′) in the same rotation; A against
//! A′ measures the noise floor of each step on this machine, which the decision then never
//! counts as a change, and which the comparison shows next to each timing.

use std::path::Path;

use crate::errors::{ProfileLoadError, ReleaseValidationError};
use crate::matrix::{self, Job, Options};
use crate::plan::Plan;
use crate::runner::RunContext;
use model::result::ScenarioResult;
use report::compare::{self, Calibration, Comparison, Settings, TimingComparison, TimingVerdict};
use report::runs::Run;

/// A role and the two images to weigh against each other.
#[derive(Debug, Clone)]
pub struct Candidates {
    pub role: String,
    pub image_a: String,
    pub image_b: String,
}

/// One side of a validation: a name (its report folder) and what it runs.
pub struct Side {
    /// `A`, `B`, or `A2` (A again, for calibration).
    pub name: &'static str,
    pub image: String,
    pub ctx: RunContext,
}

/// The sides: A and B, then A again when calibrating. Reports go under `A/`, `B/`, `A2/`.
pub fn sides(
    ctx: &RunContext,
    candidates: &Candidates,
    calibrate: bool,
) -> Result<Vec<Side>, ProfileLoadError> {
    let mut named = vec![("A", &candidates.image_a), ("B", &candidates.image_b)];
    if calibrate {
        named.push(("A2", &candidates.image_a));
    }
    named
        .into_iter()
        .map(|(name, image)| {
            Ok(Side {
                name,
                image: image.clone(),
                ctx: ctx.with_image(&candidates.role, image, Path::new(name))?,
            })
        })
        .collect()
}

/// The order the sides run in for a repetition (1-based) of the plan at `index`: the sides
/// rotated by `repetition − 1 + index`, so each side holds each position equally often.
pub fn order(sides: usize, repetition: u32, index: usize) -> Vec<usize> {
    let shift = (repetition as usize - 1 + index) % sides.max(1);
    (0..sides).map(|i| (i + shift) % sides).collect()
}

/// How [`run`] orders the sides, in words (written into the comparison).
pub fn order_description(sides: &[Side]) -> String {
    let names: Vec<&str> = sides.iter().map(|s| s.name).collect();
    let rotations: Vec<String> = (0..names.len())
        .map(|shift| {
            order(names.len(), 1 + shift as u32, 0)
                .iter()
                .map(|i| names[*i])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    format!(
        "counterbalanced: the sides of each plan and repetition run one after the other in one \
         lane, each torn down before the next starts, in rotating order ({}) by repetition and \
         plan",
        rotations.join(", ")
    )
}

/// Runs the role's plans on every side, in the counterbalanced order, and returns each side's
/// run (in the order of `sides`).
pub async fn run(
    sides: &[Side],
    plans: &[Plan],
    candidates: &Candidates,
    options: Options,
    finished: impl Fn(&ScenarioResult),
) -> Vec<Run> {
    let role_plans: Vec<&Plan> = plans
        .iter()
        .filter(|p| p.runs_role(&candidates.role))
        .collect();
    let mut sequences = Vec::new();
    let mut owners = Vec::new();
    for repetition in 1..=options.repeat.max(1) {
        for (index, plan) in role_plans.iter().enumerate() {
            let turn = order(sides.len(), repetition, index);
            owners.extend(turn.iter().copied());
            sequences.push(
                turn.iter()
                    .map(|i| Job {
                        ctx: &sides[*i].ctx,
                        plan,
                        repetition,
                    })
                    .collect(),
            );
        }
    }
    let results = matrix::run_lanes(sequences, options, finished).await;
    let mut by_side: Vec<Vec<ScenarioResult>> = sides.iter().map(|_| Vec::new()).collect();
    for (owner, result) in owners.into_iter().zip(results) {
        by_side[owner].push(result);
    }
    sides
        .iter()
        .zip(by_side)
        .map(|(side, results)| Run {
            id: format!("{}: {}", side.name, side.image),
            source: side.ctx.report_dir.clone(),
            results,
        })
        .collect()
}

/// What a validation found.
pub struct Validation {
    pub comparison: Comparison,
    pub calibration: Option<Calibration>,
    pub answer: Answer,
}

/// The answer to "may B replace A?".
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub kind: AnswerKind,
    /// One line saying it, with what a release manager needs to act on it.
    pub line: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    MayReplace,
    MayNotReplace,
    Inconclusive,
}

impl Answer {
    /// The process exit code: 0 may replace, 1 may not, 3 inconclusive.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            AnswerKind::MayReplace => 0,
            AnswerKind::MayNotReplace => 1,
            AnswerKind::Inconclusive => 3,
        }
    }
}

/// How release validation learns this machine's noise floors.
pub enum Calibrate {
    /// Not at all: the floors are `Settings::min_ratio` and `min_delta_ms` only.
    No,
    /// From a calibration measured earlier (`compare --calibration`, a run's `calibration.json`).
    From(Calibration),
    /// By running A a second time beside A and B (`--calibrate`).
    Run,
}

/// Runs A and B (and A again with [`Calibrate::Run`]), writes each side's summary, the calibration
/// (`calibration.json`) and the comparison (`compare.md`, `compare.json`, `compare.html`) under
/// the run's report directory, and answers "may B replace A?".
pub async fn validate(
    ctx: &RunContext,
    plans: &[Plan],
    candidates: &Candidates,
    options: Options,
    settings: &Settings,
    calibrate: Calibrate,
    finished: impl Fn(&ScenarioResult),
) -> Result<Validation, ReleaseValidationError> {
    let sides = sides(ctx, candidates, matches!(calibrate, Calibrate::Run))?;
    let runs = run(&sides, plans, candidates, options, finished).await;
    for (side, run) in sides.iter().zip(&runs) {
        report::write_summary(&side.ctx.report_dir, &run.id, &run.results)?;
    }
    let measured = runs.get(2).map(|again| {
        Calibration::of_sides(
            format!(
                "A against A again ({}), {} repetition{}",
                candidates.image_a,
                options.repeat,
                compare::plural(options.repeat as usize)
            ),
            &runs[0].results,
            &again.results,
        )
    });
    let calibration = match calibrate {
        Calibrate::From(given) => Some(given),
        _ => measured,
    };
    if let Some(calibration) = &calibration {
        calibration.save(&ctx.report_dir.join("calibration.json"))?;
    }
    let mut comparison =
        compare::compare_calibrated(&runs[..1], &runs[1..2], settings, calibration.as_ref());
    comparison.method.order = Some(order_description(&sides));
    report::write_reports(&ctx.report_dir, &runs, None)?;
    let answer = answer(candidates, &comparison, options.repeat);
    report::write_comparison(&ctx.report_dir, &comparison, Some(&answer.line))?;
    Ok(Validation {
        comparison,
        calibration,
        answer,
    })
}

/// The answer, from a comparison of A (base) and B (new) with `repeat` repetitions per side.
pub fn answer(candidates: &Candidates, comparison: &Comparison, repeat: u32) -> Answer {
    let v = &comparison.verdict;
    let who = |verb: &str| {
        format!(
            "{} {verb} {} as `{}`",
            candidates.image_b, candidates.image_a, candidates.role
        )
    };
    // The timings that `keep` picks, each with its size and what backs it: the lower bound for
    // a regression, the repetitions that would decide for a slowdown not confirmed.
    let confidence = comparison.method.confidence * 100.0;
    let timings = |keep: &dyn Fn(&TimingComparison) -> bool| -> Vec<String> {
        comparison
            .plans
            .iter()
            .flat_map(|p| p.timings.iter().map(move |t| (p, t)))
            .filter(|(_, t)| keep(t))
            .map(|(p, t)| {
                let backing = match (t.verdict, t.low, t.would_decide) {
                    (TimingVerdict::Regression, Some(low), _) => {
                        format!("; at least ×{low:.2} with {confidence:.1} % confidence")
                    }
                    (_, _, Some(n)) => format!("; --repeat {n} would decide it"),
                    _ => String::new(),
                };
                format!(
                    "{} {} ×{:.2} ({} → {} ms{backing})",
                    p.test,
                    t.subject,
                    t.ratio.unwrap_or(1.0),
                    t.base.median_ms,
                    t.new.median_ms
                )
            })
            .collect()
    };
    let status: Vec<&str> = comparison
        .plans
        .iter()
        .filter(|p| p.status_regression)
        .map(|p| p.test.as_str())
        .collect();
    let slower = timings(&|t| t.verdict == TimingVerdict::Regression);
    if !status.is_empty() || !slower.is_empty() {
        let mut parts = Vec::new();
        if !status.is_empty() {
            parts.push(format!(
                "{} status regression{} ({})",
                status.len(),
                compare::plural(status.len()),
                status.join(", ")
            ));
        }
        if !slower.is_empty() {
            let plans = comparison.verdict.timing_regressions;
            parts.push(format!(
                "timing regression{} in {plans} plan{}: {}",
                compare::plural(slower.len()),
                compare::plural(plans),
                slower.join("; ")
            ));
        }
        return Answer {
            kind: AnswerKind::MayNotReplace,
            line: format!("{}: {}", who("may NOT replace"), parts.join("; ")),
        };
    }
    let unsure = timings(&|t| t.verdict == TimingVerdict::Inconclusive);
    if !unsure.is_empty() {
        return Answer {
            kind: AnswerKind::Inconclusive,
            line: format!(
                "{}: inconclusive — no status regression, but {} slowdown{} seen that {} \
                 repetition{} cannot confirm: {}",
                who("may or may not replace"),
                unsure.len(),
                compare::plural(unsure.len()),
                repeat,
                compare::plural(repeat as usize),
                unsure.join("; ")
            ),
        };
    }
    let needed = comparison.method.minimum_repeat;
    if needed.is_none_or(|n| repeat < n) {
        return Answer {
            kind: AnswerKind::Inconclusive,
            line: format!(
                "{}: inconclusive — no status regression, but {} repetition{} cannot decide any of \
                 the {} timing comparisons at {} % false alarms{}",
                who("may or may not replace"),
                repeat,
                compare::plural(repeat as usize),
                comparison.method.comparisons,
                comparison.settings.false_alarm_rate * 100.0,
                needed
                    .map(|n| format!("; --repeat {n} would"))
                    .unwrap_or_default()
            ),
        };
    }
    // Slowdowns seen but within what the samples can tell from noise: worth a second look.
    let unconfirmed =
        timings(&|t| t.verdict == TimingVerdict::WithinNoise && t.would_decide.is_some());
    Answer {
        kind: AnswerKind::MayReplace,
        line: format!(
            "{}: no status regression and no timing regression in {} plan{} ({} timing \
             comparison{}, at most {} % chance of a false alarm){}",
            who("may replace"),
            v.plans,
            compare::plural(v.plans),
            comparison.method.comparisons,
            compare::plural(comparison.method.comparisons),
            comparison.settings.false_alarm_rate * 100.0,
            if unconfirmed.is_empty() {
                String::new()
            } else {
                format!("; slower but not confirmed: {}", unconfirmed.join("; "))
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::order;

    #[test]
    fn every_side_holds_every_position_equally_often() {
        for sides in [2, 3] {
            // Over `sides` repetitions of one plan, and over `sides` plans of one repetition.
            for (repetitions, plans) in [(sides as u32, 1), (1, sides)] {
                let mut seen = vec![vec![0; sides]; sides];
                for repetition in 1..=repetitions {
                    for index in 0..plans {
                        for (position, side) in order(sides, repetition, index).iter().enumerate() {
                            seen[*side][position] += 1;
                        }
                    }
                }
                assert!(seen.iter().flatten().all(|n| *n == 1), "{seen:?}");
            }
        }
        assert_eq!(order(2, 1, 0), vec![0, 1]);
        assert_eq!(order(2, 2, 0), vec![1, 0]);
        assert_eq!(order(2, 1, 1), vec![1, 0]);
    }
}
