//! Where a run's plan time went, read back from its result files: the harness overhead share
//! (plan wall time outside the plugin steps, over every plan that ran) and each phase's median.
//! `harness timings` prints it; `just bench` prints it for its warm and cold runs.

use model::result::{ScenarioResult, Status};

/// A phase of a plan and how to read it off a result, in ms; `None` when the plan has no such
/// phase (no DinD), so that its median is over the plans that have it.
type Reader = fn(&ScenarioResult) -> Option<u64>;

/// The phases in the order a plan goes through them. `other` is what no phase counts
/// (workspace copy, image resolution, writing the result): the plan's wall time minus the rest.
/// `ahead` (the part of a plan before it got its slot: most of its bring-up, beside other plans)
/// and `teardown, after` (a teardown after the result was taken) are outside the wall time.
pub const PHASES: [(&str, Reader); 13] = [
    ("ahead of its slot", |r| Some(r.phases.ahead_ms)),
    ("network + volumes", |r| {
        Some(r.phases.environment.network_ms)
    }),
    ("registry ready", |r| {
        Some(r.phases.environment.registry_ready_ms)
    }),
    ("dind ready", |r| {
        r.images
            .contains_key("dind")
            .then_some(r.phases.environment.dind_ready_ms)
    }),
    ("base image", |r| Some(r.phases.environment.base_image_ms)),
    ("environment (all)", |r| Some(r.phases.environment_ms)),
    ("steps (plugin)", |r| Some(r.phases.steps_ms)),
    ("inventory", |r| Some(r.phases.inventory_ms)),
    ("checks", |r| Some(r.phases.checks_ms)),
    ("teardown", |r| Some(r.phases.teardown_ms)),
    ("other", |r| Some(other_ms(r))),
    ("teardown, after", |r| Some(r.phases.teardown_background_ms)),
    ("plan wall time", |r| Some(r.duration_ms)),
];

fn other_ms(r: &ScenarioResult) -> u64 {
    let p = &r.phases;
    let counted = p.environment_ms + p.steps_ms + p.inventory_ms + p.checks_ms + p.teardown_ms;
    r.duration_ms.saturating_sub(counted)
}

/// One phase over the plans that ran.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseStat {
    pub name: &'static str,
    pub median_ms: f64,
    pub total_ms: u64,
}

/// The timing summary of a set of results (one run, or several runs together).
#[derive(Debug, Clone, PartialEq)]
pub struct Timings {
    /// Plans that ran (not skipped).
    pub plans: usize,
    pub steps_ms: u64,
    pub wall_ms: u64,
    pub phases: Vec<PhaseStat>,
}

impl Timings {
    pub fn of<'a>(results: impl IntoIterator<Item = &'a ScenarioResult>) -> Timings {
        let ran: Vec<&ScenarioResult> = results
            .into_iter()
            .filter(|r| r.status != Status::Skip)
            .collect();
        let phases = PHASES
            .iter()
            .map(|(name, read)| {
                let values: Vec<u64> = ran.iter().filter_map(|r| read(r)).collect();
                PhaseStat {
                    name,
                    median_ms: median(&values),
                    total_ms: values.iter().sum(),
                }
            })
            .collect();
        Timings {
            plans: ran.len(),
            steps_ms: ran.iter().map(|r| r.phases.steps_ms).sum(),
            wall_ms: ran.iter().map(|r| r.duration_ms).sum(),
            phases,
        }
    }

    /// Plan wall time outside the plugin steps, over all plans, in percent.
    pub fn overhead_percent(&self) -> f64 {
        if self.wall_ms == 0 {
            return 0.0;
        }
        100.0 * self.wall_ms.saturating_sub(self.steps_ms) as f64 / self.wall_ms as f64
    }

    /// A plain-text table: one line per phase with its median and its share of all plan time.
    pub fn table(&self, title: &str) -> String {
        let mut out = format!(
            "{title}: {} plan(s); plugin steps {:.1} s of {:.1} s plan wall time, harness overhead {:.1} %\n",
            self.plans,
            self.steps_ms as f64 / 1000.0,
            self.wall_ms as f64 / 1000.0,
            self.overhead_percent()
        );
        out.push_str(&format!(
            "  {:<20} {:>10} {:>10} {:>8}\n",
            "phase", "median s", "total s", "share"
        ));
        for p in &self.phases {
            let share = if self.wall_ms == 0 {
                0.0
            } else {
                100.0 * p.total_ms as f64 / self.wall_ms as f64
            };
            out.push_str(&format!(
                "  {:<20} {:>10.2} {:>10.1} {:>7.1}%\n",
                p.name,
                p.median_ms / 1000.0,
                p.total_ms as f64 / 1000.0,
                share
            ));
        }
        out
    }
}

/// The median (the mean of the two middle values for an even count; 0 for none).
pub fn median(values: &[u64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2] as f64,
        n => (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::result::Phases;

    fn result(status: Status, duration_ms: u64, steps_ms: u64, env_ms: u64) -> ScenarioResult {
        let json = serde_json::json!({
            "test": "a::b::c", "scenario": "b", "file": "f", "builder": "c", "profile": "offline",
            "status": "pass", "reason": null, "images": {}, "steps": [], "captures": {},
            "assertions": [], "duration_ms": 0
        });
        let mut r: ScenarioResult = serde_json::from_value(json).unwrap();
        r.status = status;
        r.duration_ms = duration_ms;
        r.phases = Phases {
            environment_ms: env_ms,
            steps_ms,
            ..Default::default()
        };
        r
    }

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(&[3, 1, 2]), 2.0);
        assert_eq!(median(&[4, 1, 3, 2]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn overhead_is_wall_time_outside_steps_over_plans_that_ran() {
        let results = [
            result(Status::Pass, 10_000, 4_000, 3_000),
            result(Status::Fail, 6_000, 2_000, 3_000),
            result(Status::Skip, 0, 0, 0),
        ];
        let t = Timings::of(&results);
        assert_eq!(t.plans, 2);
        assert_eq!((t.steps_ms, t.wall_ms), (6_000, 16_000));
        assert!((t.overhead_percent() - 62.5).abs() < 1e-9);
        let other = t.phases.iter().find(|p| p.name == "other").unwrap();
        // 10 - 4 - 3 = 3 s and 6 - 2 - 3 = 1 s.
        assert_eq!((other.median_ms, other.total_ms), (2_000.0, 4_000));
        assert!(t.table("warm").contains("harness overhead 62.5 %"));
    }

    #[test]
    fn the_dind_median_is_over_the_plans_that_had_one() {
        let mut with = [
            result(Status::Pass, 5_000, 2_000, 0),
            result(Status::Pass, 5_000, 2_000, 0),
        ];
        for (r, ms) in with.iter_mut().zip([1_800, 2_200]) {
            r.phases.environment.dind_ready_ms = ms;
            let image = serde_json::json!({"image": "dind:x", "id": "sha256:x"});
            r.images
                .insert("dind".into(), serde_json::from_value(image).unwrap());
        }
        // Three plans without a DinD: 0 ms each, which a median over all would report.
        let without = [0, 1, 2].map(|_| result(Status::Pass, 3_000, 2_000, 0));
        let t = Timings::of(with.iter().chain(&without));
        let dind = t.phases.iter().find(|p| p.name == "dind ready").unwrap();
        assert_eq!((dind.median_ms, dind.total_ms), (2_000.0, 4_000));
    }
}
