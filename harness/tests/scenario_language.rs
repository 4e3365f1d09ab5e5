//! The scenario language: every committed scenario is valid, and every malformed file in
//! `tests/malformed/` (one per rule) is rejected with a message naming the file, line and column
//! (or the offending value) and pointing at the text. `tests/hostile-scenarios/` holds files
//! written to hurt the loader (alias bombs, deep nesting, huge or binary text, paths out of the
//! workspace, names a container cannot take…): each is refused with a located message, or
//! accepted where it is legal, and never panics. Messages are pinned with insta snapshots.

use std::path::Path;

use miette::{GraphicalReportHandler, GraphicalTheme, NarratableReportHandler};
use scenario::errors::ScenarioParseError;
use scenario::{Assertion, Scenario};

fn render(error: &ScenarioParseError) -> String {
    let mut out = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, error)
        .unwrap();
    out
}

/// Every way the harness prints a load error: the test renderer above, the narratable one, and
/// what `harness validate` prints (`{:?}` of a `miette::Report`, the default hook's handler).
/// Returns the first; none may panic, and each stays short whatever the file's size.
fn render_every_way(error: ScenarioParseError) -> String {
    let graphical = render(&error);
    let mut narrated = String::new();
    NarratableReportHandler::new()
        .render_report(&mut narrated, &error)
        .unwrap();
    let cli = format!("{:?}", miette::Report::new(error));
    for shown in [&graphical, &narrated, &cli] {
        assert!(
            shown.len() < 4_000,
            "a {} byte report:\n{shown}",
            shown.len()
        );
        assert!(
            !shown.contains(['\u{0}', '\u{1b}', '\u{7}', '\u{202e}']),
            "control characters reach the terminal:\n{shown:?}"
        );
    }
    graphical
}

/// The name a corpus file is shown under (stable, unlike the absolute path).
fn shown_name(path: &Path) -> String {
    let folder = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy();
    format!("{folder}/{}", path.file_name().unwrap().to_string_lossy())
}

#[test]
fn malformed_scenarios_are_rejected_with_located_messages() {
    let mut files = 0;
    insta::glob!("malformed/*.yaml", |path| {
        files += 1;
        let bytes = std::fs::read(path).unwrap();
        let name = shown_name(path);
        match Scenario::from_bytes(Path::new(&name), &bytes) {
            Ok(_) => panic!("{name} was accepted"),
            Err(error) => {
                assert!(
                    matches!(error, ScenarioParseError::Syntax(_)),
                    "{name}: the error is not located: {error}"
                );
                insta::assert_snapshot!(render_every_way(error))
            }
        }
    });
    assert!(files >= 100, "{files} malformed files");
}

#[test]
fn hostile_scenarios_are_refused_with_located_messages_or_accepted_never_panicking() {
    let mut refused = 0;
    let mut accepted = 0;
    insta::glob!("hostile-scenarios/*.yaml", |path| {
        let bytes = std::fs::read(path).unwrap();
        let name = shown_name(path);
        let loaded = std::panic::catch_unwind(|| Scenario::from_bytes(Path::new(&name), &bytes))
            .unwrap_or_else(|_| panic!("{name}: the loader panicked"));
        match loaded {
            Ok(scenario) => {
                accepted += 1;
                let summary = serde_json::to_string_pretty(&scenario).unwrap();
                insta::assert_snapshot!(format!("accepted\n{summary}"));
            }
            Err(error) => {
                refused += 1;
                assert!(
                    matches!(error, ScenarioParseError::Syntax(_)),
                    "{name}: the error is not located: {error}"
                );
                let shown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    render_every_way(error)
                }))
                .unwrap_or_else(|_| panic!("{name}: rendering the error panicked"));
                insta::assert_snapshot!(shown);
            }
        }
    });
    assert!(
        refused + accepted >= 30,
        "{refused} refused, {accepted} accepted"
    );
    assert!(refused >= 30, "{refused} refused");
    // Alias and merge-key bombs, deep nesting and huge files stay small in memory.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let peak_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        assert!(peak_kib < 256 * 1024, "peak memory {peak_kib} KiB");
    }
}

#[test]
fn an_error_on_a_huge_single_line_renders_located_without_panicking() {
    // `harness validate` used to panic in miette's renderer ("Formatting argument out of
    // range": it pads to the error's column with a format width, at most 65535).
    let complete = "claim: [a], builders: [buildx], steps: [{name: b}], \
                    assertions: [{step_succeeded: b}]";
    for (column, text) in [
        // A syntax error after a whole scenario on one line, and one inside it.
        (
            70_000,
            format!(
                "{{version: 1, name: x, description: {}, {complete}}}}}}} ]",
                "a".repeat(70_000)
            ),
        ),
        (
            200_000,
            format!("{{name: {}, version: [}}", "a".repeat(200_000)),
        ),
    ] {
        let error = Scenario::parse(Path::new("long.yaml"), &text).unwrap_err();
        let ScenarioParseError::Syntax(syntax) = &error else {
            panic!("not located: {error}");
        };
        assert_eq!(syntax.line, 1);
        assert!(syntax.column > column as u64, "{}", syntax.column);
        let at = format!("long.yaml:1:{}", syntax.column);
        let shown = render_every_way(error);
        // Named in the message and in the excerpt's header, which points at the text.
        assert_eq!(shown.matches(&at).count(), 2, "{shown}");
        assert!(shown.contains("here"), "{shown}");
    }
    // A validation error far along a long line, and one in multibyte text.
    let text = format!(
        "{{version: 1, name: x, description: {}, claim: [a], builders: [nope], steps: [{{name: b}}], assertions: [{{step_succeeded: b}}]}}",
        "é".repeat(40_000)
    );
    let shown = render_every_way(Scenario::parse(Path::new("long.yaml"), &text).unwrap_err());
    assert!(
        shown.contains("long.yaml:1:40061: unknown builder `nope`"),
        "{shown}"
    );
}

#[test]
fn a_file_too_large_is_refused_before_it_is_parsed() {
    let text = format!("description: {}\n", "x".repeat(1024 * 1024));
    let shown = render_every_way(Scenario::parse(Path::new("big.yaml"), &text).unwrap_err());
    assert!(shown.contains("longer than 256 KiB"), "{shown}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    std::fs::write(&path, text).unwrap();
    let error = Scenario::load(&path).unwrap_err();
    assert!(error.to_string().contains("longer than 256 KiB"), "{error}");
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
        committed == scenario::json_schema(),
        "{} is out of date with the scenario types: run `just schema`",
        path.display()
    );
}

#[test]
fn the_json_schema_describes_the_language() {
    let schema: serde_json::Value = serde_json::from_str(&scenario::json_schema()).unwrap();
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
    // YAML aliases (`*first_build_kept`, `*second_not_built`) name the assertions exactly as
    // written.
    assert_eq!(
        kaniko.fails,
        [
            scenario.assertions[3].clone(),
            scenario.assertions[4].clone()
        ]
    );
    assert!(matches!(
        &scenario.assertions[3],
        Assertion::TagInRegistry { tag, labels, .. } if tag == "1.0" && labels["org.conformance.marker"] == "first"
    ));
    assert_eq!(scenario.steps[0].role_for("kaniko"), "kaniko-ecr");
}
