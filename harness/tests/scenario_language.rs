//! The scenario language: every committed scenario is valid, and every malformed file in
//! `tests/malformed/` is rejected with a message naming the file, line and column (or the
//! offending value) and pointing at the text. Messages are pinned with insta snapshots.

use harness::scenario::{Assertion, Scenario};
use miette::{GraphicalReportHandler, GraphicalTheme};

fn render(error: harness::errors::ScenarioParseError) -> String {
    let mut out = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, &error)
        .unwrap();
    out
}

#[test]
fn malformed_scenarios_are_rejected_with_located_messages() {
    insta::glob!("malformed/*.yaml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = format!("malformed/{}", path.file_name().unwrap().to_string_lossy());
        match Scenario::parse(std::path::Path::new(&name), &text) {
            Ok(_) => panic!("{name} was accepted"),
            Err(error) => insta::assert_snapshot!(render(error)),
        }
    });
}

#[test]
fn every_committed_scenario_is_valid() {
    let root = harness::session::repo_root();
    let plans = harness::plan::plans(&root.join("scenarios")).unwrap();
    assert!(plans
        .iter()
        .any(|p| p.test_name == "build_only::tar::buildx"));
    assert!(plans
        .iter()
        .any(|p| p.test_name == "build_and_push::push::buildx"));
}

#[test]
fn the_build_only_scenario_reads_as_written() {
    let root = harness::session::repo_root();
    let scenario = Scenario::load(&root.join("scenarios/build-only/tar.yaml")).unwrap();
    assert_eq!(scenario.builders, vec!["buildx", "kaniko"]);
    assert!(scenario.skip["buildah"].contains("dry_run and tar_path"));
    assert_eq!(scenario.steps[0].env["PLUGIN_NO_PUSH"], "true");
    assert_eq!(
        scenario.steps[0].timeout,
        std::time::Duration::from_secs(180)
    );
    assert!(
        matches!(&scenario.assertions[1], Assertion::NoTagsInRegistry { repository, registry: None } if repository == "conformance/app")
    );
}

#[test]
fn the_committed_json_schema_is_current() {
    let path = harness::session::repo_root().join("scenarios/scenario.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == harness::scenario::json_schema(),
        "{} is out of date with the scenario types: run `just schema`",
        path.display()
    );
}

#[test]
fn the_json_schema_describes_the_language() {
    let schema: serde_json::Value =
        serde_json::from_str(&harness::scenario::json_schema()).unwrap();
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are rejected"
    );
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for key in [
        "version",
        "name",
        "claim",
        "builders",
        "steps",
        "assertions",
    ] {
        assert!(required.contains(&key), "{key} is required");
    }
}

#[test]
fn a_known_discrepancy_names_the_builder_and_the_assertions_it_breaks() {
    let root = harness::session::repo_root();
    let scenario =
        Scenario::load(&root.join("scenarios/around/skip-push-if-tag-exists.yaml")).unwrap();
    assert_eq!(scenario.builders, ["docker", "kaniko", "buildx", "buildah"]);
    // plugins/ecr reads the setting: no expectation, it must pass.
    assert!(!scenario.expect.contains_key("docker"));
    let kaniko = &scenario.expect["kaniko"];
    assert!(kaniko
        .because
        .contains("does not read PLUGIN_SKIP_PUSH_IF_TAG_EXISTS"));
    // A YAML alias (`*first_build_kept`) names the assertion exactly as written.
    assert_eq!(kaniko.fails, [scenario.assertions[3].clone()]);
    assert!(matches!(
        &scenario.assertions[3],
        Assertion::TagInRegistry { tag, labels, .. } if tag == "1.0" && labels["org.conformance.marker"] == "first"
    ));
    assert_eq!(scenario.steps[0].role_for("kaniko"), "kaniko-ecr");
}
