//! Results, following the OCI conformance suite's statuses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `Pass`: every promise kept. `Fail`: the plugin broke a promise. `Error`: the harness or the
/// infrastructure broke, so nothing is known about the plugin. `Skip`: not run, with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Skip,
    Fail,
    Error,
}

impl Status {
    /// Pass when the promise was kept, else Fail.
    pub fn of(kept: bool) -> Status {
        if kept {
            Status::Pass
        } else {
            Status::Fail
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Error => "ERROR",
            Status::Skip => "SKIP",
        })
    }
}

/// How many results of a run ended how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub pass: usize,
    pub fail: usize,
    /// Of the Fails, those that are exactly a builder's known discrepancy.
    pub known_discrepancies: usize,
    pub error: usize,
    pub skip: usize,
    /// Results that are not what the scenarios expect (see [`ScenarioResult::as_expected`]).
    pub not_as_expected: usize,
}

impl Tally {
    pub fn of(results: &[ScenarioResult]) -> Tally {
        let mut tally = Tally::default();
        for r in results {
            let expected = r.as_expected().is_ok();
            match r.status {
                Status::Pass => tally.pass += 1,
                Status::Fail => {
                    tally.fail += 1;
                    tally.known_discrepancies += usize::from(expected);
                }
                Status::Error => tally.error += 1,
                Status::Skip => tally.skip += 1,
            }
            tally.not_as_expected += usize::from(!expected);
        }
        tally
    }
}

/// Where a plan's time went, in ms: bringing the environment up (part by part), the plugin
/// steps (wall time), the inventory readings between steps, the captures and assertions at the
/// end, and the teardown. What is not `steps_ms` is the harness's overhead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    pub environment_ms: u64,
    #[serde(flatten)]
    pub environment: EnvironmentPhases,
    pub steps_ms: u64,
    pub inventory_ms: u64,
    pub checks_ms: u64,
    pub teardown_ms: u64,
    /// With environments brought up ahead (`harness run`): what the plan did before it got
    /// its slot (workspace, images, most of the bring-up), beside other plans' steps; not part
    /// of the plan's wall time. `environment_ms` is then only the bring-up left after that.
    #[serde(default)]
    pub ahead_ms: u64,
    /// The teardown when it ran after the result was taken, beside the next plans (`harness
    /// run`): not part of the plan's wall time.
    #[serde(default)]
    pub teardown_background_ms: u64,
}

/// Where the time of plans that ran went: the plugin steps' wall time and the plans' wall time,
/// in ms. The rest is the harness's overhead (environment, readings, checks, teardown).
pub fn step_time(results: &[ScenarioResult]) -> (u64, u64) {
    results
        .iter()
        .filter(|r| r.status != Status::Skip)
        .fold((0, 0), |(steps, wall), r| {
            (steps + r.phases.steps_ms, wall + r.duration_ms)
        })
}

/// The image that played a role, exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub image: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub name: String,
    pub role: String,
    /// `None` when the step did not run to an exit (not started, timed out).
    pub exit_code: Option<i64>,
    pub timed_out: bool,
    /// When the step started, in ms since the scenario's steps began.
    pub started_ms: u64,
    pub duration_ms: u64,
    /// The parallel group the step ran in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The container's output (stdout and stderr interleaved), possibly truncated at the front.
    pub log: String,
    /// The limits the container ran under, e.g. `memory 500Mi (524288000 bytes), cpu 400m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<String>,
    /// The kernel killed the container for using more memory than its limit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
    /// Who the container ran as and with which privileges, e.g. `user 1000, unprivileged,
    /// seccomp unconfined` (a step's own settings, or its role's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssertionOutcome {
    /// What was checked, e.g. `no tags in registry for conformance/app`.
    pub assertion: String,
    pub status: Status,
    pub expected: String,
    pub found: String,
    /// What differs between two images (`images_equivalent`), one row each, allowed ones
    /// marked: the table a report shows under the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differences: Option<Vec<Difference>>,
}

/// One difference between two images: where (a file's path, a config key such as `env.HOME`
/// or `labels.KEY`, `layer_count`, `history.3`), what each side has there (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub kind: DifferenceKind,
    pub key: String,
    pub left: Option<String>,
    pub right: Option<String>,
    /// The allow-list pattern that lets it differ, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<String>,
}

/// What part of an image a [`Difference`] is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    Config,
    LayerCount,
    History,
    File,
}

impl std::fmt::Display for DifferenceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DifferenceKind::Config => "config",
            DifferenceKind::LayerCount => "layer count",
            DifferenceKind::History => "history",
            DifferenceKind::File => "file",
        })
    }
}

/// A builder's known discrepancy (the scenario's `expect:`) and whether it showed exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KnownDiscrepancy {
    /// Why the builder is expected to break the promise.
    pub because: String,
    /// True when the status is Fail and exactly the listed assertions failed.
    pub met: bool,
    /// How the run differed from the expectation, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// `workflow::scenario::builder`.
    pub test: String,
    pub scenario: String,
    pub file: String,
    /// The ledger's claims the scenario checks (its `claim:` ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
    pub builder: String,
    pub profile: String,
    pub status: Status,
    /// Why the status is Error or Skip, or which assertions failed.
    pub reason: Option<String>,
    pub images: BTreeMap<String, ImageRecord>,
    pub steps: Vec<StepRecord>,
    pub captures: BTreeMap<String, String>,
    pub assertions: Vec<AssertionOutcome>,
    /// What every registry and the shared daemon held when the environment came up and after
    /// each step: the evidence for the full accounting, and what a reviewer reads first.
    #[serde(default)]
    pub inventory: Vec<crate::inventory::Snapshot>,
    pub duration_ms: u64,
    /// Where the time went.
    #[serde(default)]
    pub phases: Phases,
    /// Which repetition of the plan this is (1-based; `harness run --repeat N`).
    #[serde(default = "first_repetition")]
    pub repetition: u32,
    /// Why earlier attempts of this repetition ended in Error, when it was run again
    /// (`--retry-errors`); empty when it was not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retried_errors: Vec<String>,
    /// Set when the scenario expects this builder to fail (a documented discrepancy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_discrepancy: Option<KnownDiscrepancy>,
    /// The steps written as Harness Build and Push steps: what Harness made of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub harness_steps: Vec<HarnessStepRecord>,
    /// Where the plan's containers ran, and so whether its privileged roles were privileged
    /// on the host: `rootless: …` or `none: …` with the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
}

/// What Harness runs for a step written as a Harness Build and Push step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarnessStepRecord {
    /// The step's name in the scenario.
    pub step: String,
    /// e.g. `BuildAndPushECR`.
    pub step_type: String,
    /// `kubernetes`, `cloud`, `vm` or `local`.
    pub infrastructure: String,
    /// The builder Harness picks, and the role that ran the step (e.g. `kaniko-ecr`).
    pub builder: String,
    pub role: String,
    /// The row of the docs' table that picked the builder.
    pub why: String,
    /// The variables the translation set (secrets redacted like everything stored).
    pub variables: BTreeMap<String, String>,
    /// What the local registries stand in for, and so was not checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stand_ins: Vec<String>,
}

fn first_repetition() -> u32 {
    1
}

impl ScenarioResult {
    /// The name of the plan's result file and folder in a run directory:
    /// `build_only.tar.buildx`, with `.rep2` and so on for later repetitions.
    pub fn file_stem(&self) -> String {
        let name = self.test.replace("::", ".");
        match self.repetition {
            0 | 1 => name,
            n => format!("{name}.rep{n}"),
        }
    }

    /// Whether the run went as the scenario says it should: Pass, Skip, or a Fail that is
    /// exactly the builder's known discrepancy. The error says what differed.
    pub fn as_expected(&self) -> Result<(), String> {
        match (&self.known_discrepancy, self.status) {
            (_, Status::Skip) | (None, Status::Pass) => Ok(()),
            (Some(known), Status::Fail) if known.met => Ok(()),
            (Some(known), _) => Err(format!(
                "{} (known discrepancy: {})",
                known
                    .difference
                    .as_deref()
                    .unwrap_or("the run differs from the expected failure"),
                known.because
            )),
            (None, status) => Err(format!("{status}")),
        }
    }

    /// A multi-line account of what went wrong, for test output.
    pub fn explain(&self) -> String {
        let mut out = format!("{} {} [{}]", self.status, self.test, self.profile);
        if let Some(reason) = &self.reason {
            out.push_str(&format!(": {reason}"));
        }
        out.push('\n');
        if let Some(known) = &self.known_discrepancy {
            let verdict = if known.met {
                "fails exactly as expected".to_owned()
            } else {
                format!(
                    "NOT as expected: {}",
                    known.difference.as_deref().unwrap_or("")
                )
            };
            out.push_str(&format!(
                "  known discrepancy: {}; {verdict}\n",
                known.because
            ));
        }
        for a in &self.assertions {
            out.push_str(&format!("  {:<5} {}\n", a.status.to_string(), a.assertion));
            if a.status != Status::Pass {
                out.push_str(&format!(
                    "        expected: {}\n        found:    {}\n",
                    a.expected, a.found
                ));
            }
        }
        for s in &self.steps {
            let exit = s.exit_code.map_or_else(
                || {
                    if s.timed_out {
                        "timed out".to_owned()
                    } else {
                        "did not run".to_owned()
                    }
                },
                |c| format!("exit {c}"),
            );
            out.push_str(&format!(
                "  step {} ({}): {exit} in {} ms\n",
                s.name, s.role, s.duration_ms
            ));
            if self.status != Status::Pass {
                for line in s
                    .log
                    .lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    out.push_str(&format!("    | {line}\n"));
                }
            }
        }
        out
    }
}

/// Where the time of bringing an environment up went, in ms. The registries and DinD start
/// together: their readiness times overlap, each counted from the start of both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentPhases {
    /// Network and volumes created.
    pub network_ms: u64,
    /// Registries started and answering.
    pub registry_ready_ms: u64,
    /// DinD started and answering.
    pub dind_ready_ms: u64,
    /// The base image for test Dockerfiles pushed into the first registry.
    pub base_image_ms: u64,
}

/// Whether a plan's repetitions are flaky: they did not all end the same way — in status, or
/// in being as the scenario expects — skipped ones aside (they ran nothing). The one definition
/// of flaky: the run's summary, the reports and the comparison of runs all ask it.
pub fn flaky<'a>(repetitions: impl IntoIterator<Item = &'a ScenarioResult>) -> bool {
    let mut ends = repetitions
        .into_iter()
        .filter(|r| r.status != Status::Skip)
        .map(|r| (r.status, r.as_expected().is_ok()));
    match ends.next() {
        Some(first) => ends.any(|end| end != first),
        None => false,
    }
}
