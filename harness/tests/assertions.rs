//! Assertion outcomes: a broken promise is a Fail with what was expected and found; a registry
//! that does not answer is an Error, never a Fail.

mod common;

use std::collections::BTreeMap;

use common::{layer, write_tar, Image};
use harness::assertions::{evaluate, Evidence};
use model::result::{AssertionOutcome, Status, StepRecord};
use oci::archive::Archives;
use oci::registry::Registry;
use scenario::{ArchiveFormat, Assertion, TarballAssertion};

fn step(name: &str, exit_code: Option<i64>) -> StepRecord {
    StepRecord {
        name: name.into(),
        role: "buildx".into(),
        exit_code,
        timed_out: exit_code.is_none(),
        started_ms: 0,
        duration_ms: 1500,
        group: None,
        log: String::new(),
        limits: None,
        oom_killed: false,
        security: None,
    }
}

async fn check(
    assertions: Vec<Assertion>,
    steps: &[StepRecord],
    workspace: &std::path::Path,
) -> Vec<AssertionOutcome> {
    // Nothing listens on port 9 here: any registry query is refused.
    let registries = [("registry".to_owned(), Registry::new("127.0.0.1:9"))];
    let vars = BTreeMap::from([("registry".to_owned(), "registry:5000".to_owned())]);
    let missing = BTreeMap::new();
    let daemon_images = BTreeMap::from([
        (
            "local/app:1.0".to_owned(),
            Ok(Some("sha256:abc".to_owned())),
        ),
        ("local/gone:1.0".to_owned(), Ok(None)),
        (
            "local/unknown:1.0".to_owned(),
            Err("dind did not answer".to_owned()),
        ),
    ]);
    let registry_logs = BTreeMap::from([(
        "registry".to_owned(),
        Some(
            [
                "level=error msg=\"error authenticating user \\\"conformance\\\": authentication failure\"",
                "level=info msg=\"response completed\" auth.user.name=puller http.request.method=GET http.request.uri=\"/v2/\"",
                "level=info msg=\"response completed\" auth.user.name=pusher http.request.method=PUT http.request.uri=\"/v2/conformance/app/manifests/1.0\"",
            ]
            .join("\n"),
        ),
    )]);
    let step_values = BTreeMap::from([(
        "BUILD_TOKEN".to_owned(),
        std::collections::BTreeSet::from([SECRET.to_owned()]),
    )]);
    let evidence = Evidence {
        daemon_images: &daemon_images,
        registry_logs: &registry_logs,
        step_values: &step_values,
        steps,
        registries: &registries,
        vars: &vars,
        missing_captures: &missing,
        environment: None,
    };
    evaluate(&assertions, &evidence, &mut Archives::new(workspace)).await
}

/// Each outcome's status and what was found, in order.
fn image_in_registry(repository: &str) -> scenario::ImageInRegistry {
    scenario::ImageInRegistry {
        repository: repository.into(),
        tag: "1.0".into(),
        registry: None,
    }
}

fn status_and_found(outcomes: &[AssertionOutcome]) -> Vec<(Status, &str)> {
    outcomes
        .iter()
        .map(|o| (o.status, o.found.as_str()))
        .collect()
}

fn tarball(path: &str) -> TarballAssertion {
    TarballAssertion {
        path: path.into(),
        format: Some(ArchiveFormat::DockerArchive),
        tags: vec!["${registry}/conformance/app:1.0".into()],
        labels: BTreeMap::from([("org.conformance.fixture".into(), "app".into())]),
        files: vec!["/hello".into()],
        config_digest: None,
    }
}

#[tokio::test]
async fn step_outcomes_are_fail_when_the_exit_status_breaks_the_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let steps = [step("build", Some(1)), step("push", None)];
    let outcomes = check(
        vec![
            Assertion::StepSucceeded("build".into()),
            Assertion::StepFailed("build".into()),
            Assertion::StepSucceeded("push".into()),
            Assertion::StepSucceeded("scan".into()),
        ],
        &steps,
        dir.path(),
    )
    .await;
    let summary = status_and_found(&outcomes);
    assert_eq!(
        summary,
        vec![
            (Status::Fail, "exit status 1"),
            (Status::Pass, "exit status 1"),
            (Status::Fail, "no exit: timed out after 1500 ms"),
            (
                Status::Fail,
                "the step did not run (an earlier step failed)"
            ),
        ]
    );
}

#[tokio::test]
async fn an_unreachable_registry_is_an_error_not_a_fail() {
    let dir = tempfile::tempdir().unwrap();
    let outcomes = check(
        vec![
            Assertion::NoTagsInRegistry {
                registry: None,
                repository: "conformance/app".into(),
            },
            Assertion::TagInRegistry {
                registry: None,
                repository: "conformance/app".into(),
                tag: "1.0".into(),
                config_digest: None,
                manifest_digest: None,
                media_type: None,
                layers: None,
                labels: Default::default(),
                files: vec![],
                file_contents: Default::default(),
            },
            Assertion::ImagesEquivalent(scenario::ImagesEquivalentAssertion {
                a: image_in_registry("conformance/a"),
                b: image_in_registry("conformance/b"),
                allow: vec![],
            }),
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes.iter().all(|o| o.status == Status::Error),
        "{outcomes:#?}"
    );
}

#[tokio::test]
async fn a_missing_tarball_is_a_fail_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let outcomes = check(
        vec![Assertion::Tarball(tarball("image.tar"))],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        (outcomes[0].status, outcomes[0].found.as_str()),
        (Status::Fail, "no such file")
    );
}

#[tokio::test]
async fn a_good_tarball_passes_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let image = Image::new(vec![layer(&[("hello", b"hi")])]);
    write_tar(dir.path(), "image.tar", &image.docker_save());
    let outcomes = check(
        vec![Assertion::Tarball(tarball("image.tar"))],
        &[],
        dir.path(),
    )
    .await;
    assert!(
        outcomes.iter().all(|o| o.status == Status::Pass),
        "{outcomes:#?}"
    );
    assert_eq!(outcomes.len(), 8);
    assert!(outcomes
        .iter()
        .any(|o| o.assertion == "tarball image.tar holds no other image" && o.found == "1 image"));
}

/// The assertions that did not pass: what, expected, found.
fn failures(outcomes: &[AssertionOutcome]) -> Vec<(&str, &str, &str)> {
    outcomes
        .iter()
        .filter(|o| o.status != Status::Pass)
        .map(|o| (o.assertion.as_str(), o.expected.as_str(), o.found.as_str()))
        .collect()
}

fn base_image() -> Image {
    let mut base = Image::new(vec![layer(&[("bin/busybox", b"base")])]);
    base.tags = vec!["registry:5000/harness/busybox:1.37".into()];
    base.labels = serde_json::json!({});
    base
}

#[tokio::test]
async fn a_tarball_holding_a_second_image_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (app, base) = (Image::new(vec![layer(&[("hello", b"hi")])]), base_image());
    // The base image after the built one: the labels and files checks see the named image.
    write_tar(
        dir.path(),
        "image.tar",
        &common::docker_archive_of(&[&base, &app]),
    );
    let outcomes = check(
        vec![Assertion::Tarball(tarball("image.tar"))],
        &[],
        dir.path(),
    )
    .await;
    let base_config = oci::archive::sha256_digest(&base.config());
    assert_eq!(
        failures(&outcomes),
        vec![
            (
                "tarball image.tar carries no other tags",
                "only [\"registry:5000/conformance/app:1.0\"]",
                "[\"registry:5000/harness/busybox:1.37\", \"registry:5000/conformance/app:1.0\"]"
            ),
            (
                "tarball image.tar holds no other image",
                "only the image tagged [\"registry:5000/conformance/app:1.0\"]",
                &*format!(
                    "2 images, also an image tagged registry:5000/harness/busybox:1.37 (config \
                     {base_config})"
                ),
            ),
        ]
    );
}

#[tokio::test]
async fn an_untagged_second_image_fails_though_every_tag_is_right() {
    let dir = tempfile::tempdir().unwrap();
    let (app, mut untagged) = (Image::new(vec![layer(&[("hello", b"hi")])]), base_image());
    untagged.tags = vec![];
    write_tar(
        dir.path(),
        "image.tar",
        &common::docker_archive_of(&[&app, &untagged]),
    );
    write_tar(
        dir.path(),
        "oci.tar",
        &common::oci_layout_of(&[&app, &untagged]),
    );
    let oci = TarballAssertion {
        format: Some(ArchiveFormat::OciLayout),
        ..tarball("oci.tar")
    };
    let outcomes = check(
        vec![
            Assertion::Tarball(tarball("image.tar")),
            Assertion::Tarball(oci),
        ],
        &[],
        dir.path(),
    )
    .await;
    let config = oci::archive::sha256_digest(&untagged.config());
    let failed = failures(&outcomes);
    assert_eq!(failed.len(), 2, "{failed:#?}");
    assert_eq!(
        failed[0],
        (
            "tarball image.tar holds no other image",
            "only the image tagged [\"registry:5000/conformance/app:1.0\"]",
            &*format!("2 images, also an image untagged, config {config}"),
        )
    );
    assert_eq!(failed[1].0, "tarball oci.tar holds no other image");
    assert!(
        failed[1]
            .2
            .starts_with("2 images, also an image untagged, manifest sha256:"),
        "{failed:#?}"
    );
}

#[tokio::test]
async fn images_carrying_the_named_tags_must_be_one_image() {
    let dir = tempfile::tempdir().unwrap();
    let app = Image::new(vec![layer(&[("hello", b"hi")])]);
    let mut same_tag = base_image();
    same_tag.tags = app.tags.clone();
    write_tar(
        dir.path(),
        "image.tar",
        &common::docker_archive_of(&[&app, &same_tag]),
    );
    let outcomes = check(
        vec![Assertion::Tarball(tarball("image.tar"))],
        &[],
        dir.path(),
    )
    .await;
    let failed = failures(&outcomes);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(
        failed[0].0,
        "tarball image.tar: the images carrying the named tags are one image"
    );
    assert_eq!(failed[0].1, "one config digest");
}

#[tokio::test]
async fn without_tags_a_tarball_must_hold_one_image() {
    let dir = tempfile::tempdir().unwrap();
    let (app, base) = (Image::new(vec![layer(&[("hello", b"hi")])]), base_image());
    write_tar(
        dir.path(),
        "image.tar",
        &common::docker_archive_of(&[&app, &base]),
    );
    let outcomes = check(
        vec![Assertion::Tarball(TarballAssertion {
            tags: vec![],
            ..tarball("image.tar")
        })],
        &[],
        dir.path(),
    )
    .await;
    let failed = failures(&outcomes);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(
        (failed[0].0, failed[0].1),
        ("tarball image.tar holds no other image", "one image")
    );
}

#[tokio::test]
async fn a_tarball_carrying_a_tag_nobody_asked_for_fails() {
    let dir = tempfile::tempdir().unwrap();
    let mut image = Image::new(vec![layer(&[("hello", b"hi")])]);
    image.tags.push("registry:5000/shadow/app:1.0".into());
    write_tar(dir.path(), "image.tar", &image.docker_save());
    let outcomes = check(
        vec![Assertion::Tarball(tarball("image.tar"))],
        &[],
        dir.path(),
    )
    .await;
    let failed: Vec<(&str, &str)> = outcomes
        .iter()
        .filter(|o| o.status != Status::Pass)
        .map(|o| (o.assertion.as_str(), o.found.as_str()))
        .collect();
    assert_eq!(
        failed,
        vec![(
            "tarball image.tar carries no other tags",
            "[\"registry:5000/conformance/app:1.0\", \"registry:5000/shadow/app:1.0\"]"
        )]
    );
}

#[tokio::test]
async fn a_registry_log_is_searched_for_what_the_registry_did() {
    let dir = tempfile::tempdir().unwrap();
    let outcomes = check(
        vec![
            Assertion::RegistryLogContains {
                text: "error authenticating user".into(),
                registry: None,
                same_line: vec![],
            },
            Assertion::RegistryLogContains {
                text: "someone-else".into(),
                registry: None,
                same_line: vec![],
            },
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(
        status_and_found(&outcomes),
        vec![
            (
                Status::Pass,
                "found in: level=error msg=\"error authenticating user \\\"conformance\\\": authentication failure\""
            ),
            (Status::Fail, "not found"),
        ]
    );
}

#[tokio::test]
async fn a_registry_log_tells_which_user_made_a_request_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let lacks = |text: &str, same_line: &[&str]| Assertion::RegistryLogLacks {
        text: text.into(),
        registry: None,
        same_line: same_line.iter().map(|t| t.to_string()).collect(),
    };
    let contains = |text: &str, same_line: &[&str]| Assertion::RegistryLogContains {
        text: text.into(),
        registry: None,
        same_line: same_line.iter().map(|t| t.to_string()).collect(),
    };
    let outcomes = check(
        vec![
            // The push was pusher's, on one line.
            contains(
                "auth.user.name=pusher",
                &["http.request.method=PUT", "/manifests/1.0"],
            ),
            // puller is in the log, and made a request, but never a PUT: the texts are on two lines.
            contains("auth.user.name=puller", &["http.request.method=PUT"]),
            lacks("auth.user.name=puller", &["http.request.method=PUT"]),
            // Without `same_line`, the text anywhere fails the negative form, and is shown.
            lacks("auth.user.name=puller", &[]),
            lacks("someone-else", &[]),
        ],
        &[],
        dir.path(),
    )
    .await;
    let pusher_line = "found in: level=info msg=\"response completed\" auth.user.name=pusher http.request.method=PUT http.request.uri=\"/v2/conformance/app/manifests/1.0\"";
    let puller_line = "found in: level=info msg=\"response completed\" auth.user.name=puller http.request.method=GET http.request.uri=\"/v2/\"";
    assert_eq!(
        status_and_found(&outcomes),
        vec![
            (Status::Pass, pusher_line),
            (Status::Fail, "not found"),
            (Status::Pass, "not found"),
            (Status::Fail, puller_line),
            (Status::Pass, "not found"),
        ]
    );
    assert_eq!(
        outcomes[2].assertion,
        "log of registry registry lacks a line with \"auth.user.name=puller\" and [\"http.request.method=PUT\"]"
    );
}

#[tokio::test]
async fn a_tarball_with_the_wrong_tag_label_and_files_fails_each_check_separately() {
    let dir = tempfile::tempdir().unwrap();
    let mut image = Image::new(vec![layer(&[("other", b"x")])]);
    image.tags = vec!["registry:5000/conformance/app:2.0".into()];
    image.labels = serde_json::json!({"org.conformance.fixture": "not-app"});
    write_tar(dir.path(), "image.tar", &image.oci_layout());
    let outcomes = check(
        vec![Assertion::Tarball(tarball("image.tar"))],
        &[],
        dir.path(),
    )
    .await;
    let failed: Vec<(&str, &str, &str)> = outcomes
        .iter()
        .filter(|o| o.status == Status::Fail)
        .map(|o| (o.assertion.as_str(), o.expected.as_str(), o.found.as_str()))
        .collect();
    assert_eq!(
        failed,
        vec![
            ("tarball image.tar format", "docker-archive", "oci-layout"),
            (
                "tarball image.tar carries ${registry}/conformance/app:1.0",
                "registry:5000/conformance/app:1.0",
                "[\"registry:5000/conformance/app:2.0\"]"
            ),
            (
                "tarball image.tar carries no other tags",
                "only [\"registry:5000/conformance/app:1.0\"]",
                "[\"registry:5000/conformance/app:2.0\"]"
            ),
            (
                "tarball image.tar: image label org.conformance.fixture",
                "app",
                "not-app"
            ),
            (
                "tarball image.tar: file /hello in the image",
                "present",
                "absent"
            ),
        ]
    );
}

#[tokio::test]
async fn daemon_images_and_step_logs_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut build = step("build", Some(0));
    build.log = "+ docker buildx build --load\nwriting image sha256:abc done\nnaming to registry:5000/conformance/app:1.0\n".into();
    let outcomes = check(
        vec![
            Assertion::ImageInDaemon("local/app:1.0".into()),
            Assertion::ImageInDaemon("local/gone:1.0".into()),
            Assertion::NoImageInDaemon("local/gone:1.0".into()),
            Assertion::NoImageInDaemon("local/app:1.0".into()),
            Assertion::ImageInDaemon("local/unknown:1.0".into()),
            Assertion::LogContains {
                step: "build".into(),
                text: "--load".into(),
            },
            Assertion::LogLacks {
                step: "build".into(),
                text: "--push".into(),
            },
            Assertion::LogLacks {
                step: "build".into(),
                text: "writing image".into(),
            },
        ],
        &[build],
        dir.path(),
    )
    .await;
    let statuses: Vec<Status> = outcomes.iter().map(|o| o.status).collect();
    assert_eq!(
        statuses,
        vec![
            Status::Pass,
            Status::Fail,
            Status::Pass,
            Status::Fail,
            Status::Error,
            Status::Pass,
            Status::Pass,
            Status::Fail
        ]
    );
    assert_eq!(outcomes[7].found, "found in: writing image sha256:abc done");
}

fn timed(name: &str, group: Option<&str>, started_ms: u64, duration_ms: u64) -> StepRecord {
    StepRecord {
        started_ms,
        duration_ms,
        group: group.map(str::to_owned),
        ..step(name, Some(0))
    }
}

#[tokio::test]
async fn a_parallel_group_passes_only_when_its_steps_overlapped() {
    let dir = tempfile::tempdir().unwrap();
    let overlapping = [
        timed("a", Some("push"), 1000, 2000),
        timed("b", Some("push"), 1100, 2000),
    ];
    let one_after_another = [
        timed("a", Some("push"), 1000, 2000),
        timed("b", Some("push"), 3000, 2000),
    ];
    let assertions = vec![
        Assertion::ParallelFasterThanSerial("push".into()),
        Assertion::StepDurationUnder {
            step: "a".into(),
            max: std::time::Duration::from_secs(2),
        },
        Assertion::StepDurationUnder {
            step: "b".into(),
            max: std::time::Duration::from_millis(1999),
        },
    ];
    let outcomes = check(assertions.clone(), &overlapping, dir.path()).await;
    let found = status_and_found(&outcomes);
    assert_eq!(
        found,
        vec![
            (Status::Pass, "2100 ms"),
            (Status::Pass, "2000 ms"),
            (Status::Fail, "2000 ms")
        ]
    );
    let outcomes = check(assertions, &one_after_another, dir.path()).await;
    assert_eq!(
        (outcomes[0].status, outcomes[0].expected.as_str()),
        (Status::Fail, "less than 4000 ms (the sum)")
    );
}

#[tokio::test]
async fn a_duration_ratio_compares_steps_or_a_group_wall_time() {
    let dir = tempfile::tempdir().unwrap();
    let steps = [
        timed("build", None, 0, 4000),
        timed("skipped-push", None, 4000, 500),
        timed("a", Some("push"), 5000, 1000),
        timed("b", Some("push"), 5500, 1000),
    ];
    let ratio = |step: &str, of: &str, max: f64| Assertion::DurationRatioUnder {
        step: step.into(),
        of: of.into(),
        max,
    };
    let outcomes = check(
        vec![
            ratio("skipped-push", "build", 0.5),
            ratio("push", "build", 0.3),
            ratio("never-ran", "build", 1.0),
        ],
        &steps,
        dir.path(),
    )
    .await;
    let found = status_and_found(&outcomes);
    assert_eq!(
        found,
        vec![
            (Status::Pass, "0.12 (500 ms / 4000 ms)"),
            (Status::Fail, "0.38 (1500 ms / 4000 ms)"),
            (Status::Fail, "never-ran did not run"),
        ]
    );
}

#[tokio::test]
async fn a_tarball_config_digest_is_compared_with_the_expected_one() {
    let dir = tempfile::tempdir().unwrap();
    let image = Image::new(vec![layer(&[("hello", b"hi")])]);
    write_tar(dir.path(), "image.tar", &image.docker_save());
    let expecting = |digest: &str| {
        Assertion::Tarball(TarballAssertion {
            config_digest: Some(digest.into()),
            ..tarball("image.tar")
        })
    };
    let wrong = format!("sha256:{}", "0".repeat(64));
    let outcomes = check(
        vec![
            expecting(&oci::archive::sha256_digest(&image.config())),
            expecting(&wrong),
        ],
        &[],
        dir.path(),
    )
    .await;
    let digest_checks: Vec<Status> = outcomes
        .iter()
        .filter(|o| o.assertion.contains("config digest equals"))
        .map(|o| o.status)
        .collect();
    assert_eq!(digest_checks, vec![Status::Pass, Status::Fail]);
}

#[tokio::test]
async fn expected_label_values_are_resolved_like_every_expected_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut image = Image::new(vec![layer(&[("hello", b"hi")])]);
    image.labels = serde_json::json!({"org.conformance.fixture": "registry:5000"});
    write_tar(dir.path(), "image.tar", &image.docker_save());
    let label_outcome = |outcomes: Vec<AssertionOutcome>| {
        outcomes
            .into_iter()
            .find(|o| o.assertion.contains("image label"))
            .expect("a label outcome")
    };
    let mut with_variable = tarball("image.tar");
    with_variable.labels =
        BTreeMap::from([("org.conformance.fixture".into(), "${registry}".into())]);
    let passed =
        label_outcome(check(vec![Assertion::Tarball(with_variable)], &[], dir.path()).await);
    assert_eq!(
        (
            passed.status,
            passed.expected.as_str(),
            passed.found.as_str()
        ),
        (Status::Pass, "registry:5000", "registry:5000")
    );
}

/// The secret `secret_absent` looks for in these tests (the value of BUILD_TOKEN).
const SECRET: &str = "tok-5f0c1e9a7b3d";

fn secret_absent(tarball: Option<&str>, step_logs: &[&str]) -> Assertion {
    Assertion::SecretAbsent(scenario::SecretAbsentAssertion {
        value_of: vec!["BUILD_TOKEN".into()],
        text: vec!["file-secret-a81c".into()],
        image: None,
        tarball: tarball.map(str::to_owned),
        step_logs: step_logs.iter().map(|s| s.to_string()).collect(),
    })
}

#[tokio::test]
async fn a_secret_is_found_in_any_form_anywhere_in_a_tarball_or_a_log_and_never_shown() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let clean = Image::new(vec![layer(&[("proof/build_token", b"5e1a...")])]);
    write_tar(dir.path(), "clean.tar", &clean.docker_save());
    // The secret in a file of the second layer (gzip), and base64-encoded inside a longer
    // encoding (as a Docker config's `auth` holds it) in the config's labels.
    let mut leaky = Image::new(vec![
        layer(&[("hello", b"hi")]),
        layer(&[("etc/app.conf", format!("token = {SECRET}\n").as_bytes())]),
    ]);
    leaky.gzip_layers = true;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("user:{SECRET}"));
    leaky.labels = serde_json::json!({"org.conformance.auth": auth});
    write_tar(dir.path(), "leaky.tar", &leaky.docker_save());
    let mut said = step("build", Some(0));
    said.log = format!("+ docker buildx build --build-arg token={SECRET} .\nfile-secret-a81c\n");
    let quiet = step("quiet", Some(0));
    let outcomes = check(
        vec![
            secret_absent(Some("clean.tar"), &["quiet"]),
            secret_absent(Some("leaky.tar"), &["build"]),
            secret_absent(Some("absent.tar"), &["never-ran"]),
        ],
        &[said, quiet],
        dir.path(),
    )
    .await;
    let summary: Vec<(Status, &str, &str)> = outcomes
        .iter()
        .map(|o| (o.status, o.assertion.as_str(), o.found.as_str()))
        .collect();
    let name = "no trace of BUILD_TOKEN, 1 secret text in";
    assert_eq!(summary[0].0, Status::Pass, "{summary:#?}");
    assert_eq!(summary[0].1, format!("{name} tarball clean.tar"));
    assert!(
        summary[0].2.starts_with("none: searched every member ("),
        "{summary:#?}"
    );
    assert_eq!(summary[1].0, Status::Pass, "{summary:#?}");
    assert_eq!(summary[1].1, format!("{name} the output of step quiet"));
    assert_eq!(summary[2].0, Status::Fail);
    let config = common::blob_path(&oci::archive::sha256_digest(&leaky.config()));
    let layer = common::blob_path(&oci::archive::sha256_digest(&common::gzip(
        &leaky.layers[1],
    )));
    assert_eq!(
        summary[2].2,
        format!(
            "the value of BUILD_TOKEN (inside base64) in archive member {config}; the value of \
             BUILD_TOKEN (as is) in archive member {layer}, file etc/app.conf"
        ),
        "{summary:#?}"
    );
    assert_eq!(summary[3].0, Status::Fail);
    assert_eq!(
        summary[3].2,
        "the value of BUILD_TOKEN (as is) in its output; secret text 1 (as is) in its output"
    );
    assert_eq!(
        (summary[4].0, summary[4].2),
        (Status::Fail, "no such file: nothing to search")
    );
    assert_eq!(
        (summary[5].0, summary[5].2),
        (
            Status::Fail,
            "the step did not run (an earlier step failed)"
        )
    );
    // Not one message shows a secret, in any form.
    for secret in [SECRET, "file-secret-a81c"] {
        for form in report::redact::forms(secret) {
            assert!(!format!("{outcomes:?}").contains(&form), "{form} shown");
        }
    }
}
