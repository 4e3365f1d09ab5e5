//! `harness import`: a Harness pipeline file's Build and Push steps become a scenario that
//! loads and runs (fixtures/pipelines/multi-stage.yaml: two stages on two infrastructures, a
//! parallel group, an ECR step, expressions, a Run step and an unknown step type); what is not
//! imported is listed with its place; an unknown field of a Build and Push step is an error
//! naming it and where it is. The run needs the Docker daemon (nextest's `docker` group).

mod common;

use std::path::Path;

use harness::plan::plans;
use harness::runner;
use model::result::Status;
use runtime::Swept;

fn fixture() -> String {
    std::fs::read_to_string(common::docker::root().join("fixtures/pipelines/multi-stage.yaml"))
        .unwrap()
}

fn skeleton() -> String {
    let imported = pipeline::import::import(&fixture()).expect("the pipeline imports");
    pipeline::skeleton::skeleton(
        &imported,
        "multi-stage.yaml",
        "fixtures/contexts/harness-examples",
    )
}

#[test]
fn every_build_and_push_step_is_imported_and_the_rest_listed_with_its_place() {
    let imported = pipeline::import::import(&fixture()).unwrap();
    let ids: Vec<_> = imported
        .steps
        .iter()
        .map(|s| {
            (
                s.step.identifier.clone().unwrap(),
                s.stage.clone().unwrap(),
                s.parallel.clone(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            (
                "image_tarball".into(),
                "build".into(),
                Some("parallel-1".into())
            ),
            ("api_ecr".into(), "build".into(), Some("parallel-1".into())),
            ("push_web".into(), "publish".into(), None),
        ]
    );
    assert_eq!(
        imported.not_imported,
        [
            "25:25: step `unit_tests` (Run) is not a Build and Push step: not imported",
            "57:25: step `notify` has type `SlackNotify`, which this harness does not know: not imported",
        ]
    );
    let text = skeleton();
    // The skeleton says what was left out, and fills each expression and placeholder.
    assert!(
        text.contains("#   - 57:25: step `notify` has type `SlackNotify`"),
        "{text}"
    );
    assert!(text.contains("<+pipeline.sequenceId>: \"1\""), "{text}");
    assert!(text.contains("myorg/web: ${registry}/myorg/web"), "{text}");
    // The second stage runs on Harness Cloud.
    assert!(text.contains("infrastructure: cloud"), "{text}");
    let scenario =
        scenario::Scenario::parse(Path::new("imported.yaml"), &text).expect("the skeleton loads");
    let roles: Vec<_> = scenario
        .steps
        .iter()
        .map(|s| s.role.clone().unwrap())
        .collect();
    // Kubernetes without DLC: kaniko (and its ECR variant); Cloud with caching: BuildX.
    assert_eq!(roles, ["kaniko", "kaniko-ecr", "buildx"]);
    assert_eq!(scenario.steps[2].env["PLUGIN_DAEMON_OFF"], "true");
    assert_eq!(scenario.steps[0].env["PLUGIN_SNAPSHOT_MODE"], "redo");
}

#[test]
fn an_unknown_field_of_a_build_and_push_step_is_refused_with_its_place() {
    let text = fixture().replace(
        "                        imageName: api\n",
        "                        imageName: api\n                        cachng: true\n",
    );
    let error = pipeline::import::import(&text).unwrap_err().to_string();
    assert!(
        error.starts_with("53:25: step `api_ecr`: unknown field `cachng`"),
        "{error}"
    );
    let error = pipeline::import::import("pipeline:\n  stages: []\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("no Build and Push step"), "{error}");
}

#[test]
fn the_imported_skeleton_runs_and_passes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("imported")).unwrap();
    std::fs::write(dir.path().join("imported/multi-stage.yaml"), skeleton()).unwrap();
    let plans = plans(dir.path()).expect("the skeleton loads");
    assert_eq!(plans.len(), 1);
    let run_id = common::docker::run_id("import", "multi-stage");
    let result = common::docker::in_session(&run_id, "offline", async |ctx| {
        runner::run_plan(&ctx, &plans[0]).await
    });
    assert_eq!(result.status, Status::Pass, "{}", result.explain());
    let builders: Vec<_> = result
        .harness_steps
        .iter()
        .map(|h| (h.role.as_str(), h.infrastructure.as_str()))
        .collect();
    assert_eq!(
        builders,
        [
            ("kaniko", "kubernetes"),
            ("kaniko-ecr", "kubernetes"),
            ("buildx", "cloud")
        ]
    );
    assert_eq!(common::docker::leftovers(&run_id), Swept::default());
    common::docker::forget(&run_id);
}
