//! `harness compare`: status, observation and timing changes between two runs, judged per plan
//! over repetitions. Results are built in code; no docker.

use std::collections::BTreeMap;
use std::path::PathBuf;

use model::inventory::{Holdings, Snapshot};
use model::result::{
    AssertionOutcome, KnownDiscrepancy, Phases, ScenarioResult, Status, StepRecord,
};
use oci::registry::ServedTag;
use report::compare::{
    compare, compare_calibrated, render, Calibration, Change, Comparison, ObservationKind,
    Presence, Settings, TimingVerdict,
};
use report::runs::Run;

/// A result under construction: one plan's repetition.
struct Result(ScenarioResult);

fn result(test: &str, status: Status) -> Result {
    let builder = test.rsplit("::").next().unwrap_or("buildx").to_owned();
    let mut before = Holdings::default();
    before
        .registries
        .entry("registry".into())
        .or_default()
        .entry("harness/busybox".into())
        .or_default()
        .insert("1.37".into(), served("sha256:base"));
    Result(ScenarioResult {
        test: test.to_owned(),
        scenario: test.to_owned(),
        file: "scenarios/x.yaml".into(),
        claims: Vec::new(),
        builder,
        profile: "offline".into(),
        status,
        reason: None,
        images: BTreeMap::new(),
        steps: Vec::new(),
        captures: BTreeMap::new(),
        assertions: vec![outcome("step build succeeded", Status::Pass)],
        inventory: vec![
            Snapshot {
                after: "environment up".into(),
                holdings: Some(before.clone()),
                error: None,
            },
            Snapshot {
                after: "step build".into(),
                holdings: Some(before),
                error: None,
            },
        ],
        duration_ms: 0,
        phases: Phases::default(),
        repetition: 1,
        retried_errors: Vec::new(),
        known_discrepancy: None,
        harness_steps: Vec::new(),
        isolation: None,
    })
}

fn served(digest: &str) -> ServedTag {
    ServedTag {
        manifest_digest: digest.to_owned(),
        config_digest: Some(format!("{digest}-config")),
        media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
        layers: Some(2),
    }
}

fn outcome(assertion: &str, status: Status) -> AssertionOutcome {
    AssertionOutcome {
        assertion: assertion.to_owned(),
        status,
        expected: "e".into(),
        found: "f".into(),
        differences: None,
    }
}

impl Result {
    fn rep(mut self, n: u32) -> Result {
        self.0.repetition = n;
        self
    }

    /// A step that ran for `ms` (the steps' wall time grows with it).
    fn step(mut self, name: &str, ms: u64) -> Result {
        self.0.steps.push(StepRecord {
            name: name.to_owned(),
            role: "builder".into(),
            exit_code: Some(0),
            timed_out: false,
            started_ms: self.0.phases.steps_ms,
            duration_ms: ms,
            group: None,
            log: String::new(),
            limits: None,
            oom_killed: false,
            security: None,
        });
        self.0.phases.steps_ms += ms;
        self
    }

    /// A tag in the registry after the last step (digest `digest`).
    fn tag(mut self, repository: &str, tag: &str, digest: &str) -> Result {
        let last = self
            .0
            .inventory
            .last_mut()
            .unwrap()
            .holdings
            .as_mut()
            .unwrap();
        last.registries
            .entry("registry".into())
            .or_default()
            .entry(repository.to_owned())
            .or_default()
            .insert(tag.to_owned(), served(digest));
        self
    }

    fn failed(mut self, assertion: &str) -> Result {
        self.0.assertions.push(outcome(assertion, Status::Fail));
        self.0.reason = Some(format!("failed: {assertion}"));
        self
    }

    fn known(mut self, met: bool) -> Result {
        self.0.known_discrepancy = Some(KnownDiscrepancy {
            because: "the builder ignores the setting".into(),
            met,
            difference: (!met).then(|| "step build succeeded unexpectedly".to_owned()),
        });
        self
    }

    fn done(self) -> ScenarioResult {
        self.0
    }
}

fn run(id: &str, results: Vec<ScenarioResult>) -> Run {
    Run {
        id: id.to_owned(),
        source: PathBuf::from(format!("reports/{id}")),
        results,
    }
}

fn compared(base: Vec<ScenarioResult>, new: Vec<ScenarioResult>) -> Comparison {
    compare(&[run("A", base)], &[run("B", new)], &Settings::default())
}

fn plan<'a>(c: &'a Comparison, test: &str) -> &'a report::compare::PlanComparison {
    c.plans
        .iter()
        .find(|p| p.test == test)
        .expect("the plan is compared")
}

const PUSH: &str = "build_and_push::push::buildx";
const TAR: &str = "build_only::tar::kaniko";

/// Release A: both plans pass; the push plan pushes two tags.
fn release_a() -> Vec<ScenarioResult> {
    vec![
        result(PUSH, Status::Pass)
            .step("build-and-push", 1000)
            .tag("conformance/app", "1.0", "sha256:a1")
            .tag("conformance/app", "latest", "sha256:a1")
            .done(),
        result(TAR, Status::Pass).step("build", 2000).done(),
    ]
}

/// Release B broke the push plan: it also pushed `conformance/app:extra`.
fn broken_release_b() -> Vec<ScenarioResult> {
    vec![
        result(PUSH, Status::Fail)
            .step("build-and-push", 1010)
            .tag("conformance/app", "1.0", "sha256:b1")
            .tag("conformance/app", "latest", "sha256:b1")
            .tag("conformance/app", "extra", "sha256:b1")
            .failed(
                "unexpected push: registry:5000/conformance/app:extra after step build-and-push",
            )
            .done(),
        result(TAR, Status::Pass).step("build", 2020).done(),
    ]
}

#[test]
fn a_broken_release_is_a_status_regression_naming_the_extra_tag() {
    let c = compared(release_a(), broken_release_b());
    let p = plan(&c, PUSH);
    assert_eq!(p.change, Change::Regression);
    assert!(p.status_regression);
    assert_eq!(
        (p.base_status, p.new_status),
        (Some(Status::Pass), Some(Status::Fail))
    );
    let added: Vec<(ObservationKind, &str)> = p
        .observation_changes
        .iter()
        .filter(|o| o.change == Presence::Added)
        .map(|o| (o.kind, o.item.as_str()))
        .collect();
    assert!(added.contains(&(ObservationKind::PushedTag, "registry/conformance/app:extra")));
    assert!(added.contains(&(
        ObservationKind::FailedAssertion,
        "unexpected push: registry:5000/conformance/app:extra after step build-and-push"
    )));
    // New digests for the same tags are not a change.
    assert!(!p
        .observation_changes
        .iter()
        .any(|o| o.item.starts_with("registry/conformance/app:1.0")));
    assert_eq!(plan(&c, TAR).change, Change::Unchanged);
    assert_eq!(c.verdict.status_regressions, 1);
    assert!(c.verdict.fails);
    assert_eq!(c.exit_code(), 1);
}

#[test]
fn a_status_regression_fails_only_while_failing_on_status() {
    let settings = Settings {
        fail_on_status: false,
        ..Settings::default()
    };
    let c = compare(
        &[run("A", release_a())],
        &[run("B", broken_release_b())],
        &settings,
    );
    assert_eq!(c.verdict.status_regressions, 1);
    assert_eq!(c.exit_code(), 0);
    assert_eq!(
        c.verdict.summary,
        "passes: 1 status regression (not failing)"
    );
}

/// Repetitions of a two-step plan with these durations (as many as `build` has).
fn timed(build: &[u64], push: &[u64]) -> Vec<ScenarioResult> {
    build
        .iter()
        .zip(push)
        .enumerate()
        .map(|(i, (build, push))| {
            result(PUSH, Status::Pass)
                .rep(i as u32 + 1)
                .step("build", *build)
                .step("push", *push)
                .done()
        })
        .collect()
}

const BUILD_A: [u64; 7] = [1000, 1060, 980, 1020, 1040, 990, 1010];
const PUSH_A: [u64; 7] = [5000, 5200, 4900, 5100, 5300, 4950, 5050];

fn times(samples: &[u64], factor: f64) -> Vec<u64> {
    samples
        .iter()
        .map(|ms| (*ms as f64 * factor) as u64)
        .collect()
}

#[test]
fn a_slowed_release_is_a_timing_regression_and_ten_percent_is_not() {
    // Build twice as slow; push 10 % slower: every repetition above BASE's, but not by 5 %
    // at the lower bound.
    let a = timed(&BUILD_A, &PUSH_A);
    let b = timed(&times(&BUILD_A, 2.0), &times(&PUSH_A, 1.1));
    let c = compared(a.clone(), b.clone());
    let p = plan(&c, PUSH);
    assert_eq!(p.change, Change::Unchanged);
    let timing = |subject: &str| {
        p.timings
            .iter()
            .find(|t| t.subject == subject)
            .expect(subject)
    };
    let build = timing("step build");
    assert_eq!(build.verdict, TimingVerdict::Regression);
    assert_eq!((build.base.median_ms, build.new.median_ms), (1010, 2020));
    assert_eq!(build.ratio, Some(2.0));
    assert!(
        build.low.unwrap() > 1.8 && build.high.unwrap() < 2.2,
        "{build:?}"
    );
    assert_eq!(build.note, None);
    assert_eq!(timing("step push").verdict, TimingVerdict::WithinNoise);
    assert!(p.timing_regression);
    assert_eq!(c.verdict.timing_regressions, 1);
    assert_eq!(c.exit_code(), 1);
    // Two steps and all steps: three comparisons, each bound at 1 − 0.01/3.
    assert_eq!(c.method.comparisons, 3);
    assert!((c.method.confidence - (1.0 - 0.01 / 3.0)).abs() < 1e-12);
    assert_eq!(c.method.minimum_repeat, Some(6));

    let lenient = Settings {
        fail_on_timing: false,
        ..Settings::default()
    };
    assert_eq!(
        compare(&[run("A", a)], &[run("B", b)], &lenient).exit_code(),
        0
    );
}

#[test]
fn three_repetitions_are_inconclusive_never_a_regression() {
    let c = compared(
        timed(&BUILD_A[..3], &PUSH_A[..3]),
        timed(&times(&BUILD_A[..3], 2.0), &PUSH_A[..3]),
    );
    let t = &plan(&c, PUSH).timings[0];
    assert_eq!(t.verdict, TimingVerdict::Inconclusive);
    assert_eq!((t.low, t.high), (None, None));
    assert_eq!(t.would_decide, Some(6));
    assert_eq!(
        t.note.as_deref(),
        Some("inconclusive: 3 samples; --repeat 6 would decide a +100 % change")
    );
    assert_eq!(c.verdict.timing_regressions, 0);
    assert_eq!(c.verdict.timing_inconclusive, 1);
    assert!(!c.verdict.fails);
    assert_eq!(
        c.verdict.summary,
        "passes: no regression; 1 plan with an inconclusive timing"
    );
}

#[test]
fn a_spike_in_new_is_noise() {
    let mut build = BUILD_A;
    build[3] = 3000;
    let c = compared(timed(&BUILD_A, &PUSH_A), timed(&build, &PUSH_A));
    let t = &plan(&c, PUSH).timings[0];
    assert_eq!(t.verdict, TimingVerdict::BelowFloor);
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn small_differences_stay_below_the_floor_and_one_run_decides_nothing() {
    let single = |build: u64| vec![result(PUSH, Status::Pass).step("build", build).done()];
    let c = compared(single(30), single(40));
    let t = &plan(&c, PUSH).timings[0];
    assert_eq!(t.verdict, TimingVerdict::BelowFloor);
    assert_eq!(c.exit_code(), 0);

    let c = compared(single(30), single(300));
    let t = &plan(&c, PUSH).timings[0];
    assert_eq!(t.verdict, TimingVerdict::Inconclusive);
    assert!(t
        .note
        .as_deref()
        .is_some_and(|n| n.starts_with("inconclusive: 1 sample; --repeat ")));
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn faster_is_an_improvement_and_never_fails() {
    let c = compared(
        timed(&times(&BUILD_A, 2.0), &PUSH_A),
        timed(&BUILD_A, &PUSH_A),
    );
    let p = plan(&c, PUSH);
    assert_eq!(p.timings[0].verdict, TimingVerdict::Improvement);
    assert!(!p.timing_regression);
    assert_eq!(c.verdict.timing_improvements, 1);
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn a_calibrated_noise_floor_is_never_a_change() {
    // 30 % slower in every repetition: a regression, unless A against A on this machine
    // already differed by 40 %.
    let a = timed(&BUILD_A, &PUSH_A);
    let b = timed(&times(&BUILD_A, 1.3), &PUSH_A);
    let regression = compared(a.clone(), b.clone());
    assert_eq!(
        plan(&regression, PUSH).timings[0].verdict,
        TimingVerdict::Regression
    );
    let calibration = Calibration::of_sides(
        "A against A".into(),
        &a,
        &timed(&times(&BUILD_A, 1.4), &PUSH_A),
    );
    assert!((calibration.noise(PUSH, "step build").unwrap() - 1.4).abs() < 0.01);
    let c = compare_calibrated(
        &[run("A", a)],
        &[run("B", b)],
        &Settings::default(),
        Some(&calibration),
    );
    let t = &plan(&c, PUSH).timings[0];
    assert_eq!(t.verdict, TimingVerdict::WithinNoise);
    assert_eq!(t.noise, Some(1.4));
    assert_eq!(c.method.calibration.as_deref(), Some("A against A"));
    assert!(render::markdown(&c).contains("Noise floors calibrated from A against A."));
}

#[test]
fn a_run_compared_with_itself_has_no_change() {
    let a = [release_a(), timed(&BUILD_A, &PUSH_A)].concat();
    let c = compared(a.clone(), a);
    assert!(c.plans.iter().all(|p| p.change == Change::Unchanged
        && p.observations_compared
        && p.observation_changes.is_empty()
        && p.timings
            .iter()
            .all(|t| t.verdict == TimingVerdict::BelowFloor)));
    assert_eq!(c.verdict.changes.unchanged, 2);
    assert!(!c.verdict.fails);
    assert_eq!(c.exit_code(), 0);
    assert!(render::terminal(&c).contains("no plan on both sides changed"));
}

fn repetitions(statuses: &[Status]) -> Vec<ScenarioResult> {
    statuses
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let r = result(PUSH, *s).rep(i as u32 + 1).step("build", 1000);
            match s {
                Status::Fail => r.failed("tag conformance/app:1.0 in registry"),
                _ => r,
            }
            .done()
        })
        .collect()
}

#[test]
fn repetitions_that_disagree_are_flaky_and_a_regression_when_base_was_stable() {
    use Status::{Fail, Pass};
    let c = compared(
        repetitions(&[Pass, Pass, Pass]),
        repetitions(&[Pass, Fail, Pass]),
    );
    let p = plan(&c, PUSH);
    assert_eq!(p.change, Change::Flaky);
    assert!(p.status_regression);
    let new = p.new.as_ref().unwrap();
    assert!(new.flaky);
    assert_eq!(
        new.status, Fail,
        "the side's status is its most telling repetition's"
    );
    assert_eq!(new.repetitions, vec![Pass, Fail, Pass]);
    assert_eq!(c.verdict.flaky_in_new, 1);
    assert_eq!(c.exit_code(), 1);
    assert!(render::terminal(&c).contains("FAIL flaky: pass, fail, pass"));

    // Flaky on both sides: reported, not a regression.
    let c = compared(
        repetitions(&[Fail, Pass, Pass]),
        repetitions(&[Pass, Fail, Pass]),
    );
    let p = plan(&c, PUSH);
    assert_eq!((p.change, p.status_regression), (Change::Flaky, false));

    // Flaky in BASE, failing every time in NEW: worse.
    let c = compared(
        repetitions(&[Fail, Pass, Pass]),
        repetitions(&[Fail, Fail, Fail]),
    );
    assert_eq!(plan(&c, PUSH).change, Change::Regression);
}

#[test]
fn fail_to_pass_is_an_improvement() {
    let c = compared(broken_release_b(), release_a());
    let p = plan(&c, PUSH);
    assert_eq!(p.change, Change::Improvement);
    assert!(!p.status_regression);
    assert!(p
        .observation_changes
        .iter()
        .any(|o| o.kind == ObservationKind::PushedTag
            && o.item == "registry/conformance/app:extra"
            && o.change == Presence::Removed));
    assert_eq!(c.verdict.changes.improvement, 1);
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn a_known_discrepancy_no_longer_met_is_a_regression_and_the_reverse_is_not() {
    let met = || {
        vec![result(PUSH, Status::Fail)
            .failed("no tags in registry")
            .known(true)
            .done()]
    };
    let unmet = || {
        vec![result(PUSH, Status::Fail)
            .failed("step build succeeded")
            .known(false)
            .done()]
    };
    let c = compared(met(), unmet());
    let p = plan(&c, PUSH);
    assert_eq!(p.change, Change::KnownDiscrepancyChange);
    assert!(p.status_regression);
    assert_eq!(c.exit_code(), 1);
    assert_eq!(
        p.new.as_ref().unwrap().reason.as_deref(),
        Some("step build succeeded unexpectedly")
    );

    let c = compared(unmet(), met());
    let p = plan(&c, PUSH);
    assert_eq!(
        (p.change, p.status_regression),
        (Change::KnownDiscrepancyChange, false)
    );
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn fail_to_error_is_more_severe_and_pass_to_skip_only_changed() {
    let c = compared(
        repetitions(&[Status::Fail]),
        vec![result(PUSH, Status::Error).done()],
    );
    let p = plan(&c, PUSH);
    assert_eq!((p.change, p.status_regression), (Change::Regression, true));
    assert!(!p.observations_compared, "an Error observed nothing");

    let c = compared(
        repetitions(&[Status::Pass]),
        vec![result(PUSH, Status::Skip).done()],
    );
    assert_eq!(plan(&c, PUSH).change, Change::Changed);
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn plans_on_one_side_are_added_or_removed() {
    let c = compared(release_a()[..1].to_vec(), release_a()[1..].to_vec());
    assert_eq!(plan(&c, PUSH).change, Change::Removed);
    assert_eq!(plan(&c, TAR).change, Change::Added);
    assert_eq!(plan(&c, TAR).base_status, None);
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn plans_on_one_side_are_listed_by_name_unless_they_need_a_closer_look() {
    let mut new = vec![result("build_only::dry_run::docker", Status::Error).done()];
    new.push(release_a().remove(1));
    let c = compared(release_a(), new);
    let text = render::terminal(&c);
    assert!(text.contains(&format!("only in BASE (1): {PUSH}")));
    assert!(
        text.lines()
            .any(|l| l.starts_with("build_only::dry_run::docker") && l.contains("added")),
        "an added plan that errored gets a row:\n{text}"
    );
}

#[test]
fn what_one_side_never_recorded_is_not_compared() {
    // BASE predates media types and layer counts, and has no inventory for the tar plan.
    let mut old = release_a();
    for snapshot in &mut old[0].inventory {
        for tags in snapshot
            .holdings
            .as_mut()
            .unwrap()
            .registries
            .values_mut()
            .flat_map(|c| c.values_mut())
        {
            for served in tags.values_mut() {
                (served.media_type, served.layers) = (None, None);
            }
        }
    }
    old[1].inventory.clear();
    let new = [
        release_a()[0].clone(),
        result(TAR, Status::Pass)
            .tag("conformance/app", "1.0", "sha256:t")
            .done(),
    ];
    let c = compared(old, new.to_vec());
    assert_eq!(plan(&c, PUSH).observation_changes, vec![]);
    assert_eq!(plan(&c, TAR).observation_changes, vec![]);
}

#[test]
fn several_runs_per_side_merge_into_repetitions() {
    let shard = |id: &str, ms: u64| {
        run(
            id,
            vec![result(PUSH, Status::Pass).step("build", ms).done()],
        )
    };
    let c = compare(
        &[shard("A1", 1000), shard("A2", 1100), shard("A3", 1050)],
        &[shard("B1", 2000), shard("B2", 2100), shard("B3", 2050)],
        &Settings::default(),
    );
    let t = &plan(&c, PUSH).timings[0];
    assert_eq!(t.base.samples_ms, vec![1000, 1100, 1050]);
    assert_eq!(t.new.samples_ms, vec![2000, 2100, 2050]);
    assert_eq!(t.verdict, TimingVerdict::Inconclusive);
    assert_eq!(c.base.len(), 3);
}

#[test]
fn the_json_names_what_the_html_report_reads() {
    let c = compared(release_a(), broken_release_b());
    let json: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
    let p = &json["plans"][0];
    assert_eq!(p["test"], PUSH);
    assert_eq!(p["base_status"], "pass");
    assert_eq!(p["new_status"], "fail");
    assert_eq!(p["change"], "regression");
    assert_eq!(p["observation_changes"][0]["kind"], "pushed_tag");
    assert_eq!(p["observation_changes"][0]["change"], "added");
    assert_eq!(p["timings"][0]["verdict"], "below_floor");
    assert_eq!(json["verdict"]["fails"], true);
    assert_eq!(json["schema_version"], 2);
    let back: Comparison = serde_json::from_value(json).unwrap();
    assert_eq!(back, c);
}

#[test]
fn markdown_of_a_broken_and_slowed_release() {
    let mut a = release_a();
    a.extend(BUILD_A.iter().enumerate().map(|(i, ms)| {
        result("build_only::no_push::buildx", Status::Pass)
            .rep(i as u32 + 1)
            .step("build", *ms)
            .done()
    }));
    let mut b = broken_release_b();
    b.extend(times(&BUILD_A, 2.0).iter().enumerate().map(|(i, ms)| {
        result("build_only::no_push::buildx", Status::Pass)
            .rep(i as u32 + 1)
            .step("build", *ms)
            .done()
    }));
    insta::assert_snapshot!(render::markdown(&compared(a, b)));
}

/// `harness compare` itself: a baseline file against a run directory.
#[test]
fn the_command_exits_1_on_a_regression_and_2_on_an_unreadable_run() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.json");
    run("A", release_a()).save(&baseline).unwrap();
    let run_dir = dir.path().join("B");
    std::fs::create_dir(&run_dir).unwrap();
    for r in broken_release_b() {
        let file = run_dir.join(format!("{}.json", r.file_stem()));
        std::fs::write(file, serde_json::to_vec(&r).unwrap()).unwrap();
    }
    let harness = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("compare")
            .args(args)
            .output()
            .unwrap()
    };
    let json = dir.path().join("out/compare.json");
    let markdown = dir.path().join("out/compare.md");
    let out = harness(&[
        baseline.as_os_str(),
        run_dir.as_os_str(),
        "--json".as_ref(),
        json.as_os_str(),
        "--markdown".as_ref(),
        markdown.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("verdict: fails: 1 status regression"));
    let written: Comparison =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(written.new[0].id, "B");
    assert!(std::fs::read_to_string(&markdown)
        .unwrap()
        .starts_with("# Comparison of runs"));

    let out = harness(&[
        baseline.as_os_str(),
        run_dir.as_os_str(),
        "--no-fail-on-status".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let out = harness(&[baseline.as_os_str(), baseline.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let missing = dir.path().join("missing");
    let out = harness(&[baseline.as_os_str(), missing.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: cannot read"));
}
