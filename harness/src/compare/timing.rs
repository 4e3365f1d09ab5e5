//! Step timings compared by medians, judged against BASE's spread.

use serde::{Deserialize, Serialize};

use crate::result::{ScenarioResult, Status};

use super::Settings;

/// The `subject` of the comparison of all steps together.
pub const ALL_STEPS: &str = "all steps";

/// One step (or all steps together) compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingComparison {
    /// `step NAME`, or `all steps` for the plan's steps' wall time (`phases.steps_ms`).
    pub subject: String,
    /// The step's name; `null` for all steps.
    pub step: Option<String>,
    pub base: Spread,
    pub new: Spread,
    /// NEW's median over BASE's (`null` when BASE's median is 0).
    pub ratio: Option<f64>,
    /// NEW's median minus BASE's, in ms (negative: faster).
    pub delta_ms: i64,
    pub verdict: TimingVerdict,
    /// `no spread (1 run)` when BASE has a single repetition, so the ratio alone judged.
    pub note: Option<String>,
}

/// Durations over a side's repetitions, in ms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spread {
    /// The median (the mean of the middle two for an even count, rounded down).
    pub median_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
    /// Every repetition's duration, in the order read.
    pub samples_ms: Vec<u64>,
}

/// How a timing compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimingVerdict {
    /// Slower beyond the floor, the threshold ratio and BASE's slowest repetition.
    Regression,
    /// Faster by the same measures (never fails).
    Improvement,
    /// Differs by more than the floor, but within the threshold or BASE's spread.
    WithinNoise,
    /// Differs by at most `min_delta_ms`.
    BelowFloor,
}

impl std::fmt::Display for TimingVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimingVerdict::Regression => "regression",
            TimingVerdict::Improvement => "improvement",
            TimingVerdict::WithinNoise => "within noise",
            TimingVerdict::BelowFloor => "below floor",
        })
    }
}

impl Spread {
    fn of(samples: Vec<u64>) -> Option<Spread> {
        let mut sorted = samples.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
        };
        Some(Spread {
            median_ms: median,
            min_ms: sorted[0],
            max_ms: sorted[n - 1],
            samples_ms: samples,
        })
    }
}

/// Each step both sides ran (in BASE's order), then all steps together.
pub(super) fn compare(
    base: &[&ScenarioResult],
    new: &[&ScenarioResult],
    settings: &Settings,
) -> Vec<TimingComparison> {
    let base_steps = steps(base);
    let new_steps = steps(new);
    let mut out = Vec::new();
    for (name, base_samples) in base_steps {
        let Some((_, new_samples)) = new_steps.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        out.extend(judge(
            format!("step {name}"),
            Some(name.to_owned()),
            base_samples,
            new_samples.clone(),
            settings,
        ));
    }
    out.extend(judge(
        ALL_STEPS.to_owned(),
        None,
        totals(base),
        totals(new),
        settings,
    ));
    out
}

/// Each step's durations over the repetitions that ran it (exited or timed out), by name in
/// the order the steps first appear. Skipped results ran nothing.
fn steps<'a>(results: &[&'a ScenarioResult]) -> Vec<(&'a str, Vec<u64>)> {
    let mut out: Vec<(&str, Vec<u64>)> = Vec::new();
    for result in results.iter().filter(|r| r.status != Status::Skip) {
        for step in &result.steps {
            if step.exit_code.is_none() && !step.timed_out {
                continue;
            }
            match out.iter_mut().find(|(n, _)| *n == step.name) {
                Some((_, samples)) => samples.push(step.duration_ms),
                None => out.push((&step.name, vec![step.duration_ms])),
            }
        }
    }
    out
}

/// The steps' wall time of each result that recorded one (older runs have no phases).
fn totals(results: &[&ScenarioResult]) -> Vec<u64> {
    results
        .iter()
        .map(|r| r.phases.steps_ms)
        .filter(|ms| *ms > 0)
        .collect()
}

fn judge(
    subject: String,
    step: Option<String>,
    base: Vec<u64>,
    new: Vec<u64>,
    settings: &Settings,
) -> Option<TimingComparison> {
    let base = Spread::of(base)?;
    let new = Spread::of(new)?;
    let spread_known = base.samples_ms.len() > 1;
    let delta_ms = new.median_ms as i64 - base.median_ms as i64;
    let ratio = (base.median_ms > 0).then(|| new.median_ms as f64 / base.median_ms as f64);
    let slower = ratio.is_none_or(|r| r > settings.threshold_ratio)
        && (!spread_known || new.median_ms > base.max_ms);
    let faster = ratio.is_some_and(|r| r * settings.threshold_ratio < 1.0)
        && (!spread_known || new.median_ms < base.min_ms);
    let verdict = if delta_ms.unsigned_abs() <= settings.min_delta_ms {
        TimingVerdict::BelowFloor
    } else if delta_ms > 0 && slower {
        TimingVerdict::Regression
    } else if delta_ms < 0 && faster {
        TimingVerdict::Improvement
    } else {
        TimingVerdict::WithinNoise
    };
    Some(TimingComparison {
        subject,
        step,
        base,
        new,
        ratio: ratio.map(|r| (r * 1000.0).round() / 1000.0),
        delta_ms,
        verdict,
        note: (!spread_known).then(|| "no spread (1 run)".to_owned()),
    })
}
