//! The nightly pipeline of `ci/` on this machine, with N = 2 and real runs (offline images,
//! nextest's `docker` group): one run of a few fast plans, then the pipeline's sequence —
//! `harness nightly --shard K/2` balanced by that run as the baseline, `harness report` merging
//! the two shard directories, `harness compare` of the baseline with the merge — and the
//! merged verdicts must equal the single run's, every plan exactly once. The merge refuses a
//! missing shard, a shard given twice, and a lone shard where a whole matrix is compared.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use report::runs::Run;

const FILTER: &str = "build_only::no_push::";

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn harness(args: &[&str]) -> Output {
    common::docker::harness()
        .args(args)
        .output()
        .expect("the harness runs")
}

/// A shard of the nightly, balanced by `baseline`; its run directory.
fn shard(k: u32, baseline: &Path) -> PathBuf {
    let shard = format!("{k}/2");
    let out = harness(&[
        "nightly",
        "--filter",
        FILTER,
        "--repeat",
        "1",
        "--baseline",
        baseline.to_str().unwrap(),
        "--shard",
        &shard,
    ]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(0), "shard {shard}:\n{text}");
    assert!(
        text.contains(&format!("shard {shard}: ")) && text.contains("balanced by durations of"),
        "{text}"
    );
    let run = text
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split(':').next())
        .expect("the nightly names its run");
    common::docker::root().join("reports").join(run)
}

/// Each plan's verdict: its status and whether it was what the scenario expects.
fn verdicts(run: &Run) -> BTreeMap<String, (model::result::Status, bool)> {
    let mut verdicts = BTreeMap::new();
    for r in &run.results {
        let again = verdicts.insert(r.test.clone(), (r.status, r.as_expected().is_ok()));
        assert!(
            again.is_none(),
            "{} twice in {}",
            r.test,
            run.source.display()
        );
    }
    verdicts
}

#[test]
fn two_shards_merged_give_the_verdicts_of_one_run() {
    let single_id = common::docker::run_id("ci-nightly", "single");
    let out = harness(&["run", FILTER, "--retry-errors", "1", "--run-id", &single_id]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let single_dir = common::docker::root().join("reports").join(&single_id);
    let single = Run::load(&single_dir).unwrap();
    assert!(single.results.len() >= 3, "{FILTER} selects a few plans");

    let shards = [shard(1, &single_dir), shard(2, &single_dir)];
    let dir = tempfile::tempdir().unwrap();
    let merged_dir = dir.path().join("merged");
    let paths: Vec<&str> = shards.iter().map(|p| p.to_str().unwrap()).collect();
    let out = harness(&[
        "report",
        paths[0],
        paths[1],
        "--out",
        merged_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(merged_dir.join("report.html").is_file() && merged_dir.join("merged.json").is_file());

    let merged = Run::load(&merged_dir).unwrap();
    assert_eq!(
        verdicts(&merged),
        verdicts(&single),
        "merged against single"
    );
    for (k, path) in shards.iter().enumerate() {
        let part = Run::load(path).unwrap();
        assert!(!part.results.is_empty(), "shard {} ran nothing", k + 1);
    }

    let compare_json = dir.path().join("compare.json");
    let out = harness(&[
        "compare",
        single_dir.to_str().unwrap(),
        merged_dir.to_str().unwrap(),
        "--json",
        compare_json.to_str().unwrap(),
    ]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let comparison: report::compare::Comparison =
        serde_json::from_str(&std::fs::read_to_string(&compare_json).unwrap()).unwrap();
    assert!(!comparison.verdict.fails, "{text}");
    assert_eq!(comparison.plans.len(), single.results.len(), "{text}");

    // What the merge refuses, by name.
    let out = harness(&[
        "report",
        paths[1],
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        said(&out).contains("shard 1/2 is missing"),
        "{}",
        said(&out)
    );
    let out = harness(&["report", paths[0], paths[0], paths[1]]);
    assert!(said(&out).contains("shard 1/2 is"), "{}", said(&out));
    assert_eq!(out.status.code(), Some(2));
    let out = harness(&["compare", single_dir.to_str().unwrap(), paths[0]]);
    assert_eq!(out.status.code(), Some(2));
    assert!(said(&out).contains("is only shard 1/2"), "{}", said(&out));

    for run in [&single_dir, &shards[0], &shards[1]] {
        let id = run.file_name().unwrap().to_str().unwrap();
        assert_eq!(common::docker::leftovers(id).total(), 0);
        common::docker::forget(id);
    }
}
