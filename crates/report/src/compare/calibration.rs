//! Calibration: two sides known to be identical (A against A), measured on this machine, give
//! each step's noise floor — the ratio between identical sides that the machine alone produces.
//! The decision ([`super::decide`]) never counts a change below it.
//!
//! `validate-release --calibrate` runs A a second time beside A and B; a nightly's first run
//! (no baseline yet) splits its own repetitions, odd against even.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::errors::{CompareWriteError, RunReadError};
use crate::runs::Run;
use model::result::ScenarioResult;

use super::by_plan;
use super::decide;
use super::samples::paired;

/// Noise floors per plan and subject (`step NAME`, `all steps`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// What was measured, e.g. `A against A (plugins/buildx:1.3.24), 7 repetitions`.
    pub source: String,
    /// By plan (`test`), then subject: the noise floor (a ratio ≥ 1) and the samples.
    pub plans: BTreeMap<String, BTreeMap<String, StepNoise>>,
}

/// One subject's calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepNoise {
    /// The estimated ratio between the two identical sides, as a factor ≥ 1.
    pub noise: f64,
    pub first_ms: Vec<u64>,
    pub second_ms: Vec<u64>,
}

impl Calibration {
    /// From two runs of the same images.
    pub fn of_sides(source: String, first: &[ScenarioResult], second: &[ScenarioResult]) -> Self {
        let mut plans: BTreeMap<String, BTreeMap<String, StepNoise>> = BTreeMap::new();
        let second = by_plan([second]);
        for (test, first) in by_plan([first]) {
            let Some(second) = second.get(test) else {
                continue;
            };
            for p in paired(&first, second) {
                if let Some(noise) = decide::noise_ratio(&p.base, &p.new) {
                    plans.entry(test.to_owned()).or_default().insert(
                        p.subject,
                        StepNoise {
                            noise,
                            first_ms: p.base,
                            second_ms: p.new,
                        },
                    );
                }
            }
        }
        Calibration { source, plans }
    }

    /// From one run's repetitions: odd against even.
    pub fn of_repetitions(run: &Run) -> Self {
        let (odd, even): (Vec<ScenarioResult>, Vec<ScenarioResult>) = run
            .results
            .iter()
            .cloned()
            .partition(|r| r.repetition % 2 == 1);
        Calibration::of_sides(
            format!("run {}: odd against even repetitions", run.id),
            &odd,
            &even,
        )
    }

    /// The noise floor of a plan's subject, if calibrated.
    pub fn noise(&self, test: &str, subject: &str) -> Option<f64> {
        self.plans.get(test)?.get(subject).map(|s| s.noise)
    }

    /// The largest noise floor and where, for a one-line summary.
    pub fn widest(&self) -> Option<(String, f64)> {
        self.plans
            .iter()
            .flat_map(|(test, subjects)| {
                subjects
                    .iter()
                    .map(move |(subject, s)| (format!("{test} {subject}"), s.noise))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    pub fn load(path: &Path) -> Result<Calibration, RunReadError> {
        crate::runs::read_json(path)
    }

    pub fn save(&self, path: &Path) -> Result<(), CompareWriteError> {
        let json = serde_json::to_string_pretty(self).expect("a calibration serialises");
        super::write(path, &(json + "\n"))
    }
}
