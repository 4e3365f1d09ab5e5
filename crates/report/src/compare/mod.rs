//! Comparing two runs (`harness compare BASE NEW`): per plan, what changed in status, in what the
//! plugin did (observations, independent of volatile digests), and in timing judged against the
//! noise BASE's own repetitions show.
//!
//! [`compare`] is pure: runs in, a [`Comparison`] out; [`render`] turns it into a terminal table
//! or Markdown, and the JSON (`--json FILE`) is the [`Comparison`] serialised as is. Field names
//! are stable: other tools (the HTML report) read them.
//!
//! # The rules
//!
//! **Grouping.** Results are grouped by plan (`test`, e.g. `build_only::tar::buildx`). Every
//! result of a plan on one side is a repetition: `--repeat N` repetitions, and the same plan in
//! several runs of that side (shards, or runs repeated by hand) alike.
//!
//! **A side's status** (see [`PlanSide`]): the most telling status any repetition had — Fail if
//! any repetition failed, else Error, else Skip, else Pass. A promise broken once is broken; a
//! Fail says more about the plugin than an Error (which says nothing). The side is *as expected*
//! only when every repetition is ([`ScenarioResult::as_expected`]). It is **flaky** when its
//! repetitions disagree on status or on being as expected; the statuses of every repetition are
//! kept, so flakiness is always visible.
//!
//! **The change** ([`Change`]), in this order:
//! 1. plan on one side only: `added` / `removed` (never a regression: the plan set changed);
//! 2. NEW flaky: `flaky`, a regression when BASE was stable;
//! 3. BASE flaky, NEW stable: `improvement` when NEW is as expected, else `regression`;
//! 4. the known discrepancy's state differs (met in BASE and not in NEW, the reverse, or the
//!    scenario's `expect:` came or went): `known_discrepancy_change`, a regression when BASE was
//!    as expected and NEW is not;
//! 5. BASE as expected and NEW not (Pass→Fail, Pass→Error, Skip→Fail): `regression`; the
//!    reverse (Fail→Pass): `improvement`;
//! 6. both as expected but a different status (Pass↔Skip: the scenario's skip list changed):
//!    `changed`, never a regression;
//! 7. neither as expected: by severity Pass < Skip < Fail < Error — more severe in NEW
//!    (Fail→Error) is a `regression`, less severe an `improvement`;
//! 8. otherwise `unchanged`.
//!
//! **Observations** ([`ObservationKind`]) are read from results that ran (Pass or Fail; a Skip
//! did nothing and an Error knows nothing): the tags in each registry after the last step (the
//! last inventory reading taken, less what the environment held before the first step, unchanged),
//! each such tag's manifest media type and layer count, the shared daemon's references (likewise),
//! each tarball's format, and the texts of the assertions that did not pass. Digests never enter
//! them; drone-docker's random 16-letter temporary image names become `<random>`. An item seen
//! in any repetition of a side is on that side; a change is an item on one side only, with how
//! many repetitions saw it. What one side never recorded is not compared: registry and daemon
//! observations need an inventory on both sides, and a tag's manifest needs its media type or
//! layer count on both (older results lack them). Observation changes are reported, never fail
//! the comparison.
//!
//! **Timing** ([`TimingComparison`]) compares each step (by name, where both sides ran it) and
//! all steps together (`phases.steps_ms`) with one decision, [`decide`]: the estimated ratio
//! NEW / BASE with distribution-free confidence bounds (Mann–Whitney), at a level corrected for
//! the number of timing comparisons the whole comparison makes, so that an identical NEW shows
//! a timing regression with probability at most `false_alarm_rate`. A `regression` needs the
//! lower bound above the floor (`min_ratio`, the calibrated noise floor when a [`Calibration`]
//! is given, and `min_delta_ms`); an `improvement` the same the other way (reported, never
//! fails); a slowdown of at least `detect_ratio` that the samples cannot confirm is
//! `inconclusive`, with the repetitions that would decide it — never a regression.
//!
//! **Verdict.** The comparison fails (exit 1) on a status regression (unless
//! `fail_on_status` is off) or a timing regression (unless `fail_on_timing` is off).

pub mod calibration;
pub mod decide;
mod observe;
pub mod render;
mod samples;
mod status;
mod timing;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::errors::CompareWriteError;
use crate::runs::Run;
use model::result::{ScenarioResult, Status};

pub use calibration::Calibration;
pub use observe::ObservationKind;
pub use samples::ALL_STEPS;
pub use timing::{Spread, TimingComparison, TimingVerdict};

/// The version of the [`Comparison`] JSON shape; raised when a field changes meaning or goes.
pub const SCHEMA_VERSION: u32 = 2;

/// How timings are judged and what fails the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The chance, over the whole comparison, that a NEW identical to BASE shows a timing
    /// regression (0.01).
    pub false_alarm_rate: f64,
    /// Slowdowns smaller than this ratio never count, however sure (1.05).
    pub min_ratio: f64,
    /// Changes of at most this many ms never count, however sure (50).
    pub min_delta_ms: u64,
    /// A slowdown of at least this ratio seen but not confirmed is inconclusive (1.20).
    pub detect_ratio: f64,
    /// Whether a status regression fails the comparison.
    pub fail_on_status: bool,
    /// Whether a timing regression fails the comparison.
    pub fail_on_timing: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            false_alarm_rate: 0.01,
            min_ratio: 1.05,
            min_delta_ms: 50,
            detect_ratio: 1.20,
            fail_on_status: true,
            fail_on_timing: true,
        }
    }
}

/// How the comparison was made: what a reader needs to trust its timing verdicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    /// Timing comparisons made (steps and all-steps, over every plan): the correction's `m`.
    pub comparisons: usize,
    /// The one-sided level of each confidence bound: `1 − false_alarm_rate / comparisons`.
    pub confidence: f64,
    /// The fewest repetitions per side at which any timing can be decided at that level.
    pub minimum_repeat: Option<u32>,
    /// The order the two sides ran in, when one run made both (release validation).
    pub order: Option<String>,
    /// Where the noise floors came from, when calibrated.
    pub calibration: Option<String>,
}

/// A comparison of BASE with NEW: the `--json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// [`SCHEMA_VERSION`] of this document.
    pub schema_version: u32,
    /// The runs on the BASE side (usually one; shards merge).
    pub base: Vec<RunInfo>,
    /// The runs on the NEW side.
    pub new: Vec<RunInfo>,
    pub settings: Settings,
    pub method: Method,
    pub verdict: Verdict,
    /// Every plan found on either side, by `test` name.
    pub plans: Vec<PlanComparison>,
}

/// One run that took part in the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run id (directory name or the baseline's recorded id).
    pub id: String,
    /// Where it was read from (run directory or baseline file).
    pub source: String,
    /// How many results (plans × repetitions) it holds.
    pub results: usize,
}

/// The outcome: whether the comparison fails, and how many plans changed how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// True when the comparison fails (exit code 1): a status regression while
    /// `settings.fail_on_status`, or a timing regression while `settings.fail_on_timing`.
    pub fails: bool,
    /// One line saying so, e.g. `fails: 1 status regression, 1 timing regression`.
    pub summary: String,
    /// Plans compared (on either side).
    pub plans: usize,
    /// Plans by their [`Change`]; each plan counts once.
    pub changes: ChangeCounts,
    /// Plans whose status change is a regression (`regression`, and the `flaky` and
    /// `known_discrepancy_change` plans that are regressions).
    pub status_regressions: usize,
    /// Plans with at least one timing regression.
    pub timing_regressions: usize,
    /// Plans with at least one inconclusive timing (a slowdown seen, too few samples).
    pub timing_inconclusive: usize,
    /// Plans with at least one timing improvement.
    pub timing_improvements: usize,
    /// Plans with at least one observation change.
    pub observation_changes: usize,
    /// Plans whose NEW repetitions disagree (whatever their change).
    pub flaky_in_new: usize,
    /// Plans whose BASE repetitions disagree.
    pub flaky_in_base: usize,
}

/// How many plans had each [`Change`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    pub unchanged: usize,
    pub regression: usize,
    pub improvement: usize,
    pub flaky: usize,
    pub known_discrepancy_change: usize,
    pub changed: usize,
    pub added: usize,
    pub removed: usize,
}

/// What happened to a plan's status between BASE and NEW (rules in the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Worse in NEW: was as expected, is not (or more severe, or became flaky).
    Regression,
    /// NEW's repetitions disagree.
    Flaky,
    /// The known discrepancy was met on one side and not the other (or came or went).
    KnownDiscrepancyChange,
    /// Better in NEW: was not as expected, is now.
    Improvement,
    /// Both as expected, different statuses (Pass↔Skip).
    Changed,
    /// Only in NEW.
    Added,
    /// Only in BASE.
    Removed,
    Unchanged,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Regression => "regression",
            Change::Flaky => "flaky",
            Change::KnownDiscrepancyChange => "known discrepancy change",
            Change::Improvement => "improvement",
            Change::Changed => "changed",
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Unchanged => "unchanged",
        })
    }
}

/// One plan compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanComparison {
    /// `workflow::scenario::builder`.
    pub test: String,
    /// BASE's status (`null`: the plan is not in BASE); see [`PlanSide::status`].
    pub base_status: Option<Status>,
    /// NEW's status (`null`: the plan is not in NEW).
    pub new_status: Option<Status>,
    pub change: Change,
    /// Whether the change counts as a status regression (fails the comparison).
    pub status_regression: bool,
    /// Why the change is what it is, in words.
    pub note: String,
    /// BASE in detail (`null` when absent).
    pub base: Option<PlanSide>,
    /// NEW in detail (`null` when absent).
    pub new: Option<PlanSide>,
    /// False when either side has no result that ran (Pass or Fail): observations were not
    /// compared.
    pub observations_compared: bool,
    /// What the plugin did differently (empty when nothing did).
    pub observation_changes: Vec<ObservationChange>,
    /// Whether any of `timings` is a regression.
    pub timing_regression: bool,
    /// Every step both sides ran, then all steps together; each judged.
    pub timings: Vec<TimingComparison>,
}

/// One side of a plan: its repetitions summed up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSide {
    /// The most telling status of any repetition: Fail, else Error, else Skip, else Pass.
    pub status: Status,
    /// Each repetition's status, in the order read (run, then repetition number).
    pub repetitions: Vec<Status>,
    /// The repetitions disagree on status or on being as expected.
    pub flaky: bool,
    /// Every repetition is as the scenario expects (Pass, Skip, or exactly its known
    /// discrepancy).
    pub as_expected: bool,
    /// `null` without a known discrepancy; else whether every repetition met it exactly.
    pub known_discrepancy_met: Option<bool>,
    /// The `reason` of the first repetition with `status` (which assertions failed, why it
    /// errored or was skipped), or how it differed from its known discrepancy.
    pub reason: Option<String>,
}

/// An observation on one side only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservationChange {
    pub kind: ObservationKind,
    /// The observation, e.g. `registry/conformance/app:1.0` for a pushed tag.
    pub item: String,
    /// `added`: in NEW only; `removed`: in BASE only.
    pub change: Presence,
    /// In how many repetitions of the side that has it the item was seen…
    pub seen_in: usize,
    /// …of how many repetitions that ran.
    pub of: usize,
}

/// Which side an observation is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Added,
    Removed,
}

/// Compares BASE with NEW. Several runs per side merge: each plan's results across them are its
/// repetitions.
pub fn compare(base: &[Run], new: &[Run], settings: &Settings) -> Comparison {
    compare_calibrated(base, new, settings, None)
}

/// [`compare`], with the noise floors a calibration measured.
pub fn compare_calibrated(
    base: &[Run],
    new: &[Run],
    settings: &Settings,
    calibration: Option<&Calibration>,
) -> Comparison {
    let base_plans = by_plan(base.iter().map(|r| r.results.as_slice()));
    let new_plans = by_plan(new.iter().map(|r| r.results.as_slice()));
    let mut tests: Vec<&str> = base_plans.keys().chain(new_plans.keys()).copied().collect();
    tests.sort_unstable();
    tests.dedup();
    let empty = Vec::new();
    let sides: Vec<(&str, &[&ScenarioResult], &[&ScenarioResult])> = tests
        .into_iter()
        .map(|test| {
            (
                test,
                base_plans.get(test).unwrap_or(&empty).as_slice(),
                new_plans.get(test).unwrap_or(&empty).as_slice(),
            )
        })
        .collect();
    // Every timing comparison of the run first: the decision's level depends on how many.
    let pending: Vec<_> = sides
        .iter()
        .map(|(_, base, new)| samples::paired(base, new))
        .collect();
    let family = decide::Family {
        false_alarm_rate: settings.false_alarm_rate,
        comparisons: pending.iter().map(Vec::len).sum::<usize>().max(1),
    };
    let plans: Vec<PlanComparison> = sides
        .into_iter()
        .zip(pending)
        .map(|((test, base, new), pending)| {
            let timings = timing::judge(test, pending, settings, family, calibration);
            plan(test, base, new, timings)
        })
        .collect();
    Comparison {
        schema_version: SCHEMA_VERSION,
        base: base.iter().map(RunInfo::of).collect(),
        new: new.iter().map(RunInfo::of).collect(),
        settings: *settings,
        method: Method {
            comparisons: family.comparisons,
            confidence: 1.0 - family.per_comparison(),
            minimum_repeat: decide::minimum_repeat(family),
            order: None,
            calibration: calibration.map(|c| c.source.clone()),
        },
        verdict: Verdict::of(&plans, settings),
        plans,
    }
}

impl Comparison {
    /// The process exit code: 1 when the comparison fails, else 0.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.verdict.fails)
    }

    /// The `--json` document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a comparison serialises") + "\n"
    }
}

/// Writes a rendering of a comparison (Markdown, JSON) to a file, creating its folder.
pub fn write(path: &Path, text: &str) -> Result<(), CompareWriteError> {
    let err = |source| CompareWriteError {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)
}

impl RunInfo {
    fn of(run: &Run) -> RunInfo {
        RunInfo {
            id: run.id.clone(),
            source: run.source.display().to_string(),
            results: run.results.len(),
        }
    }
}

/// Each plan's results, group by group (a run, a side), repetition order within each.
fn by_plan<'a>(
    groups: impl IntoIterator<Item = &'a [ScenarioResult]>,
) -> BTreeMap<&'a str, Vec<&'a ScenarioResult>> {
    let mut plans: BTreeMap<&str, Vec<&ScenarioResult>> = BTreeMap::new();
    for group in groups {
        let mut results: Vec<&ScenarioResult> = group.iter().collect();
        results.sort_by_key(|r| r.repetition);
        for result in results {
            plans.entry(result.test.as_str()).or_default().push(result);
        }
    }
    plans
}

fn plan(
    test: &str,
    base: &[&ScenarioResult],
    new: &[&ScenarioResult],
    timings: Vec<TimingComparison>,
) -> PlanComparison {
    let base_side = status::side(base);
    let new_side = status::side(new);
    let (change, status_regression, note) = status::change(base_side.as_ref(), new_side.as_ref());
    let observations = observe::compare(base, new);
    PlanComparison {
        test: test.to_owned(),
        base_status: base_side.as_ref().map(|s| s.status),
        new_status: new_side.as_ref().map(|s| s.status),
        change,
        status_regression,
        note,
        base: base_side,
        new: new_side,
        observations_compared: observations.is_some(),
        observation_changes: observations.unwrap_or_default(),
        timing_regression: timings
            .iter()
            .any(|t| t.verdict == TimingVerdict::Regression),
        timings,
    }
}

impl Verdict {
    fn of(plans: &[PlanComparison], settings: &Settings) -> Verdict {
        let mut changes = ChangeCounts::default();
        for p in plans {
            *match p.change {
                Change::Unchanged => &mut changes.unchanged,
                Change::Regression => &mut changes.regression,
                Change::Improvement => &mut changes.improvement,
                Change::Flaky => &mut changes.flaky,
                Change::KnownDiscrepancyChange => &mut changes.known_discrepancy_change,
                Change::Changed => &mut changes.changed,
                Change::Added => &mut changes.added,
                Change::Removed => &mut changes.removed,
            } += 1;
        }
        let count = |f: &dyn Fn(&PlanComparison) -> bool| plans.iter().filter(|p| f(p)).count();
        let status_regressions = count(&|p| p.status_regression);
        let timing_regressions = count(&|p| p.timing_regression);
        let timing_inconclusive = count(&|p| {
            p.timings
                .iter()
                .any(|t| t.verdict == TimingVerdict::Inconclusive)
        });
        let fails = (settings.fail_on_status && status_regressions > 0)
            || (settings.fail_on_timing && timing_regressions > 0);
        let mut summary = summary(fails, status_regressions, timing_regressions, settings);
        if timing_inconclusive > 0 {
            summary.push_str(&format!(
                "; {timing_inconclusive} plan{} with an inconclusive timing",
                plural(timing_inconclusive)
            ));
        }
        Verdict {
            fails,
            summary,
            plans: plans.len(),
            changes,
            status_regressions,
            timing_regressions,
            timing_inconclusive,
            timing_improvements: count(&|p| {
                p.timings
                    .iter()
                    .any(|t| t.verdict == TimingVerdict::Improvement)
            }),
            observation_changes: count(&|p| !p.observation_changes.is_empty()),
            flaky_in_new: count(&|p| p.new.as_ref().is_some_and(|s| s.flaky)),
            flaky_in_base: count(&|p| p.base.as_ref().is_some_and(|s| s.flaky)),
        }
    }
}

fn summary(fails: bool, status: usize, timing: usize, settings: &Settings) -> String {
    let mut parts = Vec::new();
    let ignored = |on: bool| if on { "" } else { " (not failing)" };
    if status > 0 {
        parts.push(format!(
            "{status} status regression{}{}",
            plural(status),
            ignored(settings.fail_on_status)
        ));
    }
    if timing > 0 {
        parts.push(format!(
            "{timing} timing regression{}{}",
            plural(timing),
            ignored(settings.fail_on_timing)
        ));
    }
    match (fails, parts.is_empty()) {
        (_, true) => "passes: no regression".to_owned(),
        (true, false) => format!("fails: {}", parts.join(", ")),
        (false, false) => format!("passes: {}", parts.join(", ")),
    }
}

/// `""` for one, `"s"` otherwise.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
