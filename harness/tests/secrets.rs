//! Secrets stay out of everything the harness stores or prints, for real: a variant of
//! `around/registry-auth` whose first step prints its password, a token, a variable the scenario
//! lists under `secrets:` and the base64 `user:password` pair, and writes two of them into the
//! workspace; an assertion that fails quotes the log line holding one (so the plan Fails and its
//! workspace is kept). Then every file under `reports/<run-id>/` and everything the harness
//! printed is scanned: no secret may appear, the htpasswd file is nowhere in the report folder
//! and its private directory is gone.
//!
//! The variant runs from a repository root of its own (CONFORMANCE_ROOT: the real fixtures and
//! scripts linked, the scenario and its context copied), so the real matrix does not change.
//! Needs the Docker daemon and the offline images; nextest runs it in the `docker` test group.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runtime::Swept;

mod common;

const PASSWORD: &str = "echoed-registry-password";
const LISTED: &str = "listed-api-key-value";
const BY_NAME: &str = "token-by-its-name";
/// A secret whose JSON-escaped and percent-encoded forms differ from it.
const SPECIAL: &str = r#"a "quoted"/secret value"#;
/// base64 of `conformance:echoed-registry-password`.
const BASIC: &str = "Y29uZm9ybWFuY2U6ZWNob2VkLXJlZ2lzdHJ5LXBhc3N3b3Jk";

const SCENARIO: &str = r#"version: 1
name: secrets stay out of the reports
description: >
  A step prints its credentials and writes them into the workspace; a failing assertion quotes
  the log line holding one. Nothing the harness stores or prints may contain them.
claim: [registry-passwords-and-marked-secrets-ar]
builders: [kaniko]
registries: [registry, secured]
registry_auth:
  secured: {username: conformance, password: echoed-registry-password}
secrets: [PLUGIN_API_KEY]
workspace: contexts/app
steps:
  - name: leak
    run: >-
      echo "password=$PLUGIN_PASSWORD key=$PLUGIN_API_KEY token=$PLUGIN_TOKEN";
      echo "auth=$(printf 'conformance:%s' "$PLUGIN_PASSWORD" | base64)";
      echo 'json={"s":"a \"quoted\"/secret value"}';
      echo 'url=a%20%22quoted%22%2Fsecret%20value';
      echo "b64=$(printf %s "$PLUGIN_SIGNING_SECRET" | base64)";
      printf 'clear\033[2J bell\007 end\n';
      echo "$PLUGIN_PASSWORD $PLUGIN_API_KEY" > leaked.txt
    env:
      PLUGIN_PASSWORD: echoed-registry-password
      PLUGIN_API_KEY: listed-api-key-value
      PLUGIN_TOKEN: token-by-its-name
      PLUGIN_SIGNING_SECRET: 'a "quoted"/secret value'
  - name: push
    timeout: 180s
    env:
      PLUGIN_REPO: ${secured}/conformance/app
      PLUGIN_REGISTRY: ${secured}
      PLUGIN_TAGS: "1.0"
      PLUGIN_USERNAME: conformance
      PLUGIN_PASSWORD: echoed-registry-password
      PLUGIN_DAEMON_OFF: "true"
      PLUGIN_BUILD_ARGS: BASE=${registry}/harness/busybox:1.37
assertions:
  - step_succeeded: leak
  - log_contains: {step: leak, text: "password=echoed-registry-password"}
  - log_lacks: {step: leak, text: "listed-api-key-value"}
  - step_succeeded: push
  - tag_in_registry: {registry: secured, repository: conformance/app, tag: "1.0"}
"#;

/// A repository root holding only the variant scenario.
fn root_with_variant() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for linked in ["fixtures", "scripts"] {
        std::os::unix::fs::symlink(
            common::docker::root().join(linked),
            root.path().join(linked),
        )
        .unwrap();
    }
    let context = root.path().join("contexts/app");
    std::fs::create_dir_all(&context).unwrap();
    for entry in std::fs::read_dir(common::docker::root().join("fixtures/contexts/app")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), context.join(entry.file_name())).unwrap();
    }
    let scenarios = root.path().join("scenarios/secrets");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::write(scenarios.join("echo.yaml"), SCENARIO).unwrap();
    root
}

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files_under(&entry.path(), found);
        } else {
            found.push(entry.path());
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn no_output_of_an_auth_run_holds_a_secret() {
    let root = root_with_variant();
    let run = common::docker::run_id("secrets", "auth");
    let began = Instant::now();
    let output = common::docker::harness()
        .args(["run", "--run-id", &run])
        .env("CONFORMANCE_ROOT", root.path())
        // bollard logs request bodies at debug level: container environments included.
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let took = began.elapsed();
    let printed = [output.stdout.as_slice(), output.stderr.as_slice()].concat();
    let printed_text = String::from_utf8_lossy(&printed);
    // Fail: the log_lacks assertion found the listed secret (quoting its line, redacted).
    assert_eq!(output.status.code(), Some(1), "{printed_text}");
    assert!(
        printed_text.contains("FAIL  secrets::echo::kaniko"),
        "{printed_text}"
    );

    let reports = root.path().join("reports").join(&run);
    let mut files = Vec::new();
    files_under(&reports, &mut files);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(&reports).unwrap().display().to_string())
        .collect();
    for expected in [
        "secrets.echo.kaniko.json",
        "summary.json",
        "junit.xml",
        "report.html",
        "summary.md",
        "secrets.echo.kaniko/workspace/leaked.txt",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert!(
        !names
            .iter()
            .any(|n| n.contains("htpasswd") || n.contains("auth")),
        "no htpasswd in the report folder: {names:?}"
    );
    for (what, bytes) in files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read(f).unwrap()))
        .chain([("the printed output".to_owned(), printed.clone())])
    {
        for secret in [PASSWORD, LISTED, BY_NAME, BASIC, SPECIAL] {
            // As it is, JSON-escaped, percent-encoded, in base64 alone or inside a longer one.
            for form in report::redact::forms(secret) {
                assert!(
                    !contains(&bytes, &form),
                    "{form} (a form of {secret}) in {what}"
                );
            }
        }
        // A clear-screen or bell the step printed reaches no terminal and no Markdown.
        if what.ends_with(".md") || what == "the printed output" {
            assert!(
                !bytes.iter().any(|b| *b == 0x1b || *b == 0x07),
                "raw control characters in {what}"
            );
        }
    }
    assert!(
        printed_text.contains("DEBUG"),
        "RUST_LOG=debug printed nothing: the check above would prove nothing"
    );
    // Not vacuous: the step did print them, and the redacted lines are kept.
    let result = std::fs::read_to_string(reports.join("secrets.echo.kaniko.json")).unwrap();
    for shown in [
        "password=[redacted] key=[redacted] token=[redacted]",
        "auth=[redacted]",
        "json={\\\"s\\\":\\\"[redacted]\\\"}",
        "url=[redacted]",
        "b64=[redacted]",
        "found in: password=[redacted]",
    ] {
        assert!(result.contains(shown), "{shown} in {result}");
    }
    // The registry behind auth worked (its htpasswd was readable where it lives now): only the
    // log_lacks assertion failed.
    let parsed: serde_json::Value = serde_json::from_str(&result).unwrap();
    let failed: Vec<&str> = parsed["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] != "pass")
        .map(|a| a["assertion"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        ["output of step leak lacks \"[redacted]\""],
        "{result}"
    );
    let leaked = std::fs::read_to_string(reports.join("secrets.echo.kaniko/workspace/leaked.txt"));
    assert_eq!(
        leaked.unwrap().trim(),
        format!(
            "{} {}",
            "*".repeat(PASSWORD.len()),
            "*".repeat(LISTED.len())
        )
    );
    // The private htpasswd directory went with the teardown.
    let prefix = format!("conformance-auth-{run}-");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(common::docker::leftovers(&run), Swept::default());
    eprintln!(
        "secrets: {} files and the printed output scanned, none holds a secret; {took:?}",
        files.len()
    );
    assert!(took < Duration::from_secs(180), "{took:?}");
}
