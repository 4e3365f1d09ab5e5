//! Secrets redaction without Docker: which values are secret, how text, results, kept
//! workspaces and the written files are cleaned. `tests/secrets.rs` runs it for real.

use std::path::Path;

use model::result::{AssertionOutcome, ScenarioResult, Status, StepRecord};
use report::redact::{self, Secrets, REDACTED};
use scenario::Scenario;

fn scenario() -> Scenario {
    let text = r#"
version: 1
name: secrets
description: d
claim: [t]
builders: [buildx]
registries: [registry, secured]
registry_auth:
  secured: {username: conformance, password: hunter2-right}
secrets: [PLUGIN_API_KEY]
steps:
  - name: push
    env:
      PLUGIN_PASSWORD: hunter2-wrong
      PLUGIN_ACCESS_TOKEN: tok-123456
      AWS_SECRET_ACCESS_KEY: aws-secret-value
      PLUGIN_API_KEY: listed-key-value
      PLUGIN_REPO: registry:5000/conformance/app
      PLUGIN_TOKEN_ENABLED: "true"
      PLUGIN_SECRET_SHORT: abc
    settings:
      api_token: from-a-setting
assertions:
  - step_succeeded: push
"#;
    Scenario::parse(Path::new("secrets.yaml"), text).expect("a valid scenario")
}

#[test]
fn a_scenarios_secrets_are_its_passwords_tokens_and_listed_variables() {
    let secrets = Secrets::of(&scenario());
    let text = "hunter2-right hunter2-wrong tok-123456 aws-secret-value listed-key-value \
                from-a-setting Y29uZm9ybWFuY2U6aHVudGVyMi1yaWdodA==";
    let clean = secrets.redact(text);
    assert_eq!(clean, [REDACTED; 7].join(" "));
    // Not secrets: ordinary values, booleans, values too short to redact.
    let plain = "registry:5000/conformance/app true abc conformance";
    assert_eq!(secrets.redact(plain), plain);
}

#[test]
fn every_user_of_a_registry_with_several_is_a_secret() {
    let text = r#"
version: 1
name: users
description: d
claim: [t]
builders: [buildx]
registries: [registry, secured]
registry_auth:
  secured:
    - {username: conformance, password: first-user-password}
    - {username: puller, password: puller-password}
    - {username: pusher, password: pusher-password}
steps:
  - name: push
    env:
      PLUGIN_REPO: registry:5000/conformance/app
assertions:
  - step_succeeded: push
"#;
    let scenario = Scenario::parse(Path::new("users.yaml"), text).expect("a valid scenario");
    let secrets = Secrets::of(&scenario);
    // Each password, and each `user:password` pair in base64 (a Basic auth header).
    let text = "first-user-password puller-password pusher-password \
                cHVsbGVyOnB1bGxlci1wYXNzd29yZA== cHVzaGVyOnB1c2hlci1wYXNzd29yZA==";
    assert_eq!(secrets.redact(text), [REDACTED; 5].join(" "));
    assert_eq!(
        secrets.redact("puller pusher conformance"),
        "puller pusher conformance"
    );
}

#[test]
fn redaction_is_one_pass_longest_first_and_utf8_safe() {
    let secrets = Secrets::new([
        "secret".to_owned(),
        "secret-longer".to_owned(),
        "dact".to_owned(),
    ]);
    // `dact` is inside the replacement text: never searched again.
    assert_eq!(
        secrets.redact("é secret-longer, secret; dact"),
        "é [redacted], [redacted]; [redacted]"
    );
    assert_eq!(secrets.redact("ünïcode only"), "ünïcode only");
}

fn leaky_result() -> ScenarioResult {
    let json = serde_json::json!({
        "test": "around::secrets::buildx", "scenario": "secrets", "file": "s.yaml",
        "builder": "buildx", "profile": "offline", "status": "fail",
        "reason": "output of step push lacks \"hunter2-right\"",
        "images": {}, "steps": [], "captures": {"token": "tok-123456"},
        "assertions": [], "inventory": [], "duration_ms": 1,
    });
    let mut result: ScenarioResult = serde_json::from_value(json).unwrap();
    result.steps.push(StepRecord {
        name: "push".into(),
        role: "buildx".into(),
        exit_code: Some(0),
        timed_out: false,
        started_ms: 0,
        duration_ms: 1,
        group: None,
        log: "login with hunter2-right\nauth: Y29uZm9ybWFuY2U6aHVudGVyMi1yaWdodA==\n".into(),
        limits: None,
        oom_killed: false,
        security: None,
    });
    result.assertions.push(AssertionOutcome {
        assertion: "output of step push lacks \"hunter2-right\"".into(),
        status: Status::Fail,
        expected: "no hunter2-wrong".into(),
        found: "found in: login with hunter2-right".into(),
        differences: None,
    });
    result
}

#[test]
fn every_string_of_a_result_is_redacted() {
    let secrets = Secrets::of(&scenario());
    let mut result = leaky_result();
    secrets.scrub_result(&mut result);
    let json = serde_json::to_string(&result).unwrap();
    for secret in [
        "hunter2",
        "tok-123456",
        "Y29uZm9ybWFuY2U6aHVudGVyMi1yaWdodA==",
    ] {
        assert!(!json.contains(secret), "{secret} in {json}");
    }
    assert!(result.steps[0].log.contains("login with [redacted]"));
    assert_eq!(result.captures["token"], REDACTED);
    assert!(result.explain().contains("[redacted]"));
}

#[test]
fn writers_redact_every_secret_the_process_has_seen() {
    redact::remember(&Secrets::of(&scenario()));
    let dir = tempfile::tempdir().unwrap();
    let results = vec![leaky_result()];
    report::write_result(dir.path(), &results[0]).unwrap();
    report::write_summary(dir.path(), "run", &results).unwrap();
    let run = report::runs::Run {
        id: "run".into(),
        source: dir.path().to_owned(),
        results,
    };
    report::write_reports(dir.path(), &[run], None).unwrap();
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        files += 1;
    }
    assert_eq!(
        files, 5,
        "result, summary.json, junit.xml, report.html, summary.md"
    );
    assert_eq!(redact::text("a hunter2-right b"), "a [redacted] b");
}

#[test]
fn kept_workspaces_are_masked_in_place_without_following_links() {
    let secrets = Secrets::of(&scenario());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("sub/config.json"),
        "{\"pw\":\"hunter2-right\"}",
    )
    .unwrap();
    std::fs::write(dir.path().join("clean.txt"), "nothing here").unwrap();
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "hunter2-right").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
    let changed = secrets.scrub_dir(dir.path());
    assert_eq!(changed, vec![dir.path().join("sub/config.json")]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("sub/config.json")).unwrap(),
        "{\"pw\":\"*************\"}"
    );
    assert_eq!(
        std::fs::read_to_string(outside.path()).unwrap(),
        "hunter2-right"
    );
}
