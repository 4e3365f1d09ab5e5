//! The docs' Build and Push step examples (crates/claims/src/examples.rs): each listed once, each
//! run as written by the scenario step named, or explained; every problem located.

use claims::examples::{check, step_block};
use claims::Ledger;

const PAGE: &str = "Intro text\n- step:\n    type: BuildAndPushECR\n    name: Build\n    spec:\n      connectorRef: AWS\n      imageName: app\n      tags:\n        - v1 # the tag\n      envVariables:\n        PLUGIN_NO_PUSH: \"true\"\nMore text: with a colon\n";

const SCENARIO: &str = "steps:\n  - name: build\n    harness_step:\n      type: BuildAndPushECR\n      name: Build\n      spec:\n        connectorRef: AWS\n        imageName: app\n        tags: [v1]\n        envVariables: {PLUGIN_NO_PUSH: true}\n";

/// A repository with the ledger, its one page, a scenario and `examples.yaml` holding `entries`.
fn repo(scenario: &str, entries: &str) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("claims/pages")).unwrap();
    std::fs::create_dir_all(root.join("scenarios/x")).unwrap();
    std::fs::write(root.join("claims/pages/p.txt"), PAGE).unwrap();
    std::fs::write(
        root.join("claims/ledger.yaml"),
        "version: 1\npages:\n  - id: page\n    file: pages/p.txt\n    title: T\nclaims: []\n",
    )
    .unwrap();
    std::fs::write(root.join("scenarios/x/s.yaml"), scenario).unwrap();
    let list = if entries.is_empty() {
        " []\n".to_owned()
    } else {
        format!("\n{entries}")
    };
    std::fs::write(
        root.join("claims/examples.yaml"),
        format!("version: 1\nexamples:{list}"),
    )
    .unwrap();
    let ledger = Ledger::load(&root.join("claims/ledger.yaml")).unwrap();
    (dir, ledger)
}

const RUN_BY: &str =
    "  - page: page\n    line: 3\n    scenario: scenarios/x/s.yaml\n    step: build\n";

fn problems(scenario: &str, entries: &str) -> String {
    let (dir, ledger) = repo(scenario, entries);
    let e = check(
        &dir.path().join("claims/examples.yaml"),
        &ledger,
        dir.path(),
    )
    .unwrap_err();
    e.to_string()
        .replace(&format!("{}/", dir.path().display()), "")
}

#[test]
fn the_example_is_the_mapping_around_its_type_line_dedented() {
    let lines: Vec<String> = PAGE.lines().map(str::to_owned).collect();
    let block = step_block(&lines, 3).unwrap();
    assert!(
        block.starts_with("type: BuildAndPushECR\nname: Build\nspec:\n"),
        "{block}"
    );
    assert!(
        block.ends_with("  envVariables:\n    PLUGIN_NO_PUSH: \"true\"\n"),
        "{block}"
    );
}

#[test]
fn a_step_as_written_passes_whatever_the_quoting_and_comments() {
    let (dir, ledger) = repo(SCENARIO, RUN_BY);
    let examples = check(
        &dir.path().join("claims/examples.yaml"),
        &ledger,
        dir.path(),
    )
    .unwrap();
    assert_eq!(examples.len(), 1);
    assert_eq!(
        examples[0].run_by,
        Some(("scenarios/x/s.yaml".into(), "build".into()))
    );
}

#[test]
fn a_step_that_drifts_from_its_example_is_named_with_where() {
    let drifted = SCENARIO.replace("tags: [v1]", "tags: [v2]");
    assert_eq!(
        problems(&drifted, RUN_BY),
        "the examples file claims/examples.yaml has 1 problem(s):\n  claims/examples.yaml:5:15: step `build` of scenarios/x/s.yaml is not the example at line 3 as written: they differ at `/spec/tags/0`"
    );
    let more = SCENARIO.replace("imageName: app\n", "imageName: app\n        target: t\n");
    assert!(problems(&more, RUN_BY).contains("they differ at `/spec/target`"));
}

#[test]
fn every_example_is_listed_once_and_run_or_explained() {
    // Not listed at all.
    assert!(problems(SCENARIO, "")
        .contains("the Build and Push step example at line 3 of page `page` is not listed"));
    // Listed twice.
    assert!(problems(SCENARIO, &format!("{RUN_BY}{RUN_BY}")).contains("is listed twice"));
    // A line without an example, a page the ledger lacks.
    assert!(problems(SCENARIO, &RUN_BY.replace("line: 3", "line: 4"))
        .contains("line 4 of page `page` holds no `type: BuildAndPush…`"));
    assert!(
        problems(SCENARIO, &RUN_BY.replace("page: page", "page: other"))
            .contains("no page `other` in the ledger")
    );
    // Neither run nor explained; a step that is not a Harness step; a missing step.
    assert!(problems(SCENARIO, "  - page: page\n    line: 3\n")
        .contains("give either `scenario` and `step`"));
    assert!(
        problems(SCENARIO, &RUN_BY.replace("step: build", "step: push"))
            .contains("has no step `push`")
    );
    let plain = "steps:\n  - name: build\n    env: {A: b}\n";
    assert!(problems(plain, RUN_BY).contains("is not a Harness step"));
    // Explained instead.
    let (dir, ledger) = repo(
        SCENARIO,
        "  - page: page\n    line: 3\n    not_runnable: the spec is elided\n",
    );
    let examples = check(
        &dir.path().join("claims/examples.yaml"),
        &ledger,
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        examples[0].not_runnable.as_deref(),
        Some("the spec is elided")
    );
}
