//! `harness nightly` against its baseline, for real (offline images, nextest's `docker` group):
//! the first night keeps its run as the baseline and its repetitions' noise floors beside it;
//! the next night, with the same images, is compared with the same timing decision as
//! `compare` and `validate-release`, calibrated from that file, and passes.

mod common;

use std::path::Path;
use std::process::Output;

use report::compare::{Calibration, Comparison};

const PLAN: &str = "build_and_push::push::buildx";

fn nightly(baseline: &Path, update: bool) -> (Output, String) {
    let mut command = common::docker::harness();
    command
        .args(["nightly", "--filter", PLAN, "--baseline"])
        .arg(baseline);
    if update {
        command.arg("--update-baseline");
    }
    let out = command.output().expect("the harness runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split(':').next())
        .unwrap_or_default()
        .to_owned();
    (out, run)
}

#[test]
fn the_second_night_is_judged_against_the_first_with_the_same_decision() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.json");

    let (first, first_run) = nightly(&baseline, true);
    let said = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert!(said.contains("no baseline at"), "{said}");
    // One plan of one step: 2 comparisons, decidable from 5 repetitions; 5 + 3 run.
    assert!(
        said.contains(&format!("run {first_run}: 1 plan(s) × 8 ")),
        "{said}"
    );
    let calibration = Calibration::load(&dir.path().join("baseline.calibration.json"))
        .expect("the first night keeps its noise floors beside the baseline");
    assert!(calibration.noise(PLAN, "step build-and-push").is_some());

    let (second, second_run) = nightly(&baseline, false);
    let said = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{said}");
    assert!(said.contains("verdict: passes"), "{said}");
    let reports = common::docker::root().join("reports");
    let json = std::fs::read_to_string(reports.join(&second_run).join("compare.json"))
        .expect("the nightly writes its comparison");
    let comparison: Comparison = serde_json::from_str(&json).unwrap();
    assert_eq!(comparison.method.comparisons, 2);
    assert_eq!(comparison.method.minimum_repeat, Some(5));
    assert_eq!(
        comparison.method.calibration.as_deref(),
        Some(format!("run {first_run}: odd against even repetitions").as_str())
    );
    let timing = &comparison.plans[0].timings[0];
    assert_eq!(timing.base.samples_ms.len(), 8);
    assert_eq!(timing.new.samples_ms.len(), 8);
    assert!(timing.low.is_some() && timing.noise.is_some(), "{timing:?}");
    assert!(!comparison.verdict.fails);
    for run in [first_run, second_run] {
        assert_eq!(common::docker::leftovers(&run).total(), 0);
        common::docker::forget(&run);
    }
}
