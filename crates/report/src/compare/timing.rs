//! Step timings compared: each step's samples on both sides, decided by [`super::decide`].

use serde::{Deserialize, Serialize};

use super::calibration::Calibration;
use super::decide::{self, Family, Floor, Outcome};
use super::samples::Paired;
use super::Settings;

/// One step (or all steps together) compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingComparison {
    /// `step NAME`, or `all steps` for the plan's steps' wall time (`phases.steps_ms`).
    pub subject: String,
    /// The step's name; `null` for all steps.
    pub step: Option<String>,
    pub base: Spread,
    pub new: Spread,
    /// NEW over BASE: the median of every pairwise ratio (Hodges–Lehmann estimate).
    pub ratio: Option<f64>,
    /// The ratio's lower confidence bound, at the comparison's `method.confidence` (`null`: too
    /// few samples).
    pub low: Option<f64>,
    /// The ratio's upper confidence bound, likewise.
    pub high: Option<f64>,
    /// The noise floor calibration measured for this step (A against A), as a ratio ≥ 1.
    pub noise: Option<f64>,
    /// NEW's median minus BASE's, in ms (negative: faster).
    pub delta_ms: i64,
    pub verdict: TimingVerdict,
    /// For a slowdown of at least `detect_ratio` seen and not confirmed: repetitions per side
    /// that would decide a change of that size.
    pub would_decide: Option<u32>,
    /// Why, in words, when the verdict needs it (inconclusive, a single sample).
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
    /// Slower beyond the floor, with confidence.
    Regression,
    /// Faster beyond the floor, with confidence (never fails).
    Improvement,
    /// A slowdown of at least the detection ratio seen, too few samples to confirm it.
    Inconclusive,
    /// No change the samples can show beyond the floor.
    WithinNoise,
    /// The medians differ by at most `min_delta_ms`.
    BelowFloor,
}

impl std::fmt::Display for TimingVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimingVerdict::Regression => "regression",
            TimingVerdict::Improvement => "improvement",
            TimingVerdict::Inconclusive => "inconclusive",
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

/// Judges one plan's pending comparisons, as part of a run making `family.comparisons`.
pub(super) fn judge(
    test: &str,
    pending: Vec<Paired>,
    settings: &Settings,
    family: Family,
    calibration: Option<&Calibration>,
) -> Vec<TimingComparison> {
    pending
        .into_iter()
        .filter_map(|p| {
            let noise = calibration.and_then(|c| c.noise(test, &p.subject));
            let floor = Floor {
                ratio: settings.min_ratio.max(noise.unwrap_or(1.0)),
                delta_ms: settings.min_delta_ms,
            };
            let decision = decide::decide(&p.base, &p.new, family, floor, settings.detect_ratio);
            let base = Spread::of(p.base)?;
            let new = Spread::of(p.new)?;
            let delta_ms = new.median_ms as i64 - base.median_ms as i64;
            let verdict = match decision.outcome {
                Outcome::Regression => TimingVerdict::Regression,
                Outcome::Improvement => TimingVerdict::Improvement,
                Outcome::Inconclusive => TimingVerdict::Inconclusive,
                Outcome::WithinNoise if delta_ms.unsigned_abs() <= settings.min_delta_ms => {
                    TimingVerdict::BelowFloor
                }
                Outcome::WithinNoise => TimingVerdict::WithinNoise,
            };
            let round = |r: f64| (r * 1000.0).round() / 1000.0;
            let samples = base.samples_ms.len().min(new.samples_ms.len());
            let note = match verdict {
                TimingVerdict::Inconclusive => Some(format!(
                    "inconclusive: {samples} sample{}; {}",
                    super::plural(samples),
                    match decision.would_decide {
                        Some(n) => format!(
                            "--repeat {n} would decide a {} change",
                            percent(decision.ratio)
                        ),
                        None => format!(
                            "more than {} repetitions would be needed for a {} change",
                            decide::MAX_REPEAT,
                            percent(decision.ratio)
                        ),
                    }
                )),
                _ if decision.bounds.is_none() => Some(format!(
                    "{samples} sample{} cannot decide at this confidence",
                    super::plural(samples)
                )),
                TimingVerdict::WithinNoise => decision.would_decide.map(|n| {
                    format!(
                        "not confirmed: {} seen; --repeat {n} would decide a change of that size",
                        percent(decision.ratio)
                    )
                }),
                _ => None,
            };
            Some(TimingComparison {
                subject: p.subject,
                step: p.step,
                base,
                new,
                ratio: Some(round(decision.ratio)),
                low: decision.bounds.map(|(low, _)| round(low)),
                high: decision.bounds.map(|(_, high)| round(high)),
                noise: noise.map(round),
                delta_ms,
                verdict,
                would_decide: decision.would_decide,
                note,
            })
        })
        .collect()
}

/// `+35 %` for a ratio of 1.35, `−20 %` for 0.8.
pub(crate) fn percent(ratio: f64) -> String {
    let p = (ratio - 1.0) * 100.0;
    if p >= 0.0 {
        format!("+{p:.0} %")
    } else {
        format!("−{:.0} %", -p)
    }
}
