//! The variables Harness sets for a Build and Push step, one test per infrastructure × builder,
//! held against plugin-contracts.md §1.2 (harness-core `PluginSettingUtils`).

use std::collections::BTreeMap;

use pipeline::{translate, Builder, ConnectorTarget, DaemonChoice, Stage, TranslateStepError};

fn step(yaml: &str) -> pipeline::BuildAndPushStep {
    serde_saphyr::from_str(yaml).unwrap()
}

fn stage(yaml: &str) -> Stage {
    serde_saphyr::from_str(yaml).unwrap()
}

/// `docker_hub` has credentials, `mirror` none.
fn connectors(name: &str) -> Option<ConnectorTarget> {
    match name {
        "docker_hub" => Some(ConnectorTarget {
            address: "${registry}".into(),
            registry: "registry".into(),
            credentials: Some(("ci".into(), "s3cret".into())),
        }),
        "aws" | "gcp" | "azure" | "mirror" => Some(ConnectorTarget {
            address: "${mirror}".into(),
            registry: "mirror".into(),
            credentials: None,
        }),
        _ => None,
    }
}

const DOCKER_STEP: &str = r#"
type: BuildAndPushDockerRegistry
name: build
identifier: build
spec:
  connectorRef: docker_hub
  repo: ${registry}/team/app
  tags: [v.<+pipeline.sequenceId>, latest]
  dockerfile: docker/Dockerfile
  context: src
  target: release
  buildArgs: {A: "1", B: two}
  labels: {team: ci}
"#;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What every infrastructure sets for DOCKER_STEP: the step's fields and the connector.
fn common() -> Vec<(&'static str, &'static str)> {
    vec![
        ("PLUGIN_REPO", "${registry}/team/app"),
        ("PLUGIN_TAGS", "v.42,latest"),
        ("PLUGIN_DOCKERFILE", "docker/Dockerfile"),
        ("PLUGIN_CONTEXT", "src"),
        ("PLUGIN_TARGET", "release"),
        ("PLUGIN_BUILD_ARGS", "A=1,B=two"),
        ("PLUGIN_CUSTOM_LABELS", "team=ci"),
        ("PLUGIN_REGISTRY", "${registry}"),
        ("PLUGIN_USERNAME", "ci"),
        ("PLUGIN_PASSWORD", "s3cret"),
    ]
}

const INPUTS: &str = "inputs: {\"<+pipeline.sequenceId>\": \"42\"}\n";

#[test]
fn kubernetes_kaniko_snapshot_mode_and_artifact_file() {
    let t = translate(
        &step(DOCKER_STEP),
        &stage(&format!("infrastructure: kubernetes\n{INPUTS}")),
        &connectors,
    )
    .unwrap();
    assert_eq!(t.builder, Builder::Kaniko);
    assert_eq!(t.role, "kaniko");
    let mut expected = common();
    expected.push(("PLUGIN_SNAPSHOT_MODE", "redo"));
    expected.push(("PLUGIN_ARTIFACT_FILE", "/addon/tmp/.plugin/artifact"));
    assert_eq!(t.env, env(&expected));
    assert!(t.why.contains("kaniko"), "{}", t.why);
}

#[test]
fn kubernetes_kaniko_without_optimize_and_with_a_remote_cache() {
    let yaml =
        format!("{DOCKER_STEP}  optimize: false\n  remoteCacheRepo: ${{registry}}/team/cache\n");
    let t = translate(
        &step(&yaml),
        &stage(&format!("infrastructure: kubernetes\n{INPUTS}")),
        &connectors,
    )
    .unwrap();
    assert_eq!(t.builder, Builder::Kaniko);
    let mut expected = common();
    expected.push(("PLUGIN_ENABLE_CACHE", "true"));
    expected.push(("PLUGIN_CACHE_REPO", "${registry}/team/cache"));
    expected.push(("PLUGIN_ARTIFACT_FILE", "/addon/tmp/.plugin/artifact"));
    assert_eq!(t.env, env(&expected));
}

#[test]
fn kubernetes_buildx_with_caching_starts_its_own_daemon() {
    let yaml = format!("{DOCKER_STEP}  caching: true\n");
    let t = translate(
        &step(&yaml),
        &stage(&format!("infrastructure: kubernetes\n{INPUTS}")),
        &connectors,
    )
    .unwrap();
    assert_eq!(t.builder, Builder::Buildx);
    assert_eq!(t.role, "buildx");
    let mut expected = common();
    expected.push(("PLUGIN_SNAPSHOT_MODE", "redo"));
    expected.push(("PLUGIN_ARTIFACT_FILE", "/addon/tmp/.plugin/artifact"));
    assert_eq!(t.env, env(&expected));
    // No PLUGIN_DAEMON_OFF on Kubernetes: drone-buildx starts dockerd.
    assert_eq!(t.daemon, DaemonChoice::Own);
}

#[test]
fn kubernetes_buildx_by_feature_flag_with_a_dind_background_step() {
    let yaml = format!(
        "{DOCKER_STEP}  envVariables:\n    PLUGIN_DAEMON_OFF: true\n    PLUGIN_NO_PUSH: \"true\"\n"
    );
    let s = stage(&format!(
        "infrastructure: kubernetes\nfeature_flags: [CI_USE_BUILDX_ON_K8]\n{INPUTS}"
    ));
    let t = translate(&step(&yaml), &s, &connectors).unwrap();
    assert_eq!(t.builder, Builder::Buildx);
    assert!(t.why.contains("CI_USE_BUILDX_ON_K8"), "{}", t.why);
    let mut expected = common();
    expected.push(("PLUGIN_SNAPSHOT_MODE", "redo"));
    expected.push(("PLUGIN_ARTIFACT_FILE", "/addon/tmp/.plugin/artifact"));
    expected.push(("PLUGIN_DAEMON_OFF", "true"));
    expected.push(("PLUGIN_NO_PUSH", "true"));
    assert_eq!(t.env, env(&expected));
    assert_eq!(t.daemon, DaemonChoice::Shared);
}

#[test]
fn vm_cloud_and_local_docker_daemon_off_always() {
    for infra in ["cloud", "vm", "local"] {
        let t = translate(
            &step(DOCKER_STEP),
            &stage(&format!("infrastructure: {infra}\n{INPUTS}")),
            &connectors,
        )
        .unwrap();
        assert_eq!(t.builder, Builder::Docker, "{infra}");
        assert_eq!(t.role, "docker");
        let mut expected = common();
        expected.push(("PLUGIN_DAEMON_OFF", "true"));
        assert_eq!(t.env, env(&expected), "{infra}");
        assert_eq!(t.daemon, DaemonChoice::Shared);
    }
}

#[test]
fn vm_cloud_and_local_buildx_caching_cache_from_and_to() {
    let yaml = format!(
        "{DOCKER_STEP}  caching: true\n  cacheFrom: [\"type=registry,ref=a\", \"type=registry,ref=b\"]\n  cacheTo: type=inline\n"
    );
    for infra in ["cloud", "vm", "local"] {
        let t = translate(
            &step(&yaml),
            &stage(&format!("infrastructure: {infra}\n{INPUTS}")),
            &connectors,
        )
        .unwrap();
        assert_eq!(t.builder, Builder::Buildx, "{infra}");
        let mut expected = common();
        expected.push(("PLUGIN_DAEMON_OFF", "true"));
        expected.push((
            "PLUGIN_CACHE_FROM",
            "type=registry,ref=a;type=registry,ref=b",
        ));
        expected.push(("PLUGIN_CACHE_TO", "type=inline"));
        expected.push(("PLUGIN_BUILDER_DRIVER_OPTS", "image=harness/buildkit:1.0.1"));
        assert_eq!(t.env, env(&expected), "{infra}");
    }
}

#[test]
fn ecr_registry_region_and_the_stand_in_said() {
    let yaml = r#"
type: BuildAndPushECR
spec:
  connectorRef: aws
  region: us-east-1
  account: "12345"
  imageName: test-image
  tags: [latest]
"#;
    let t = translate(
        &step(yaml),
        &stage("infrastructure: kubernetes\n"),
        &connectors,
    )
    .unwrap();
    assert_eq!(t.role, "kaniko-ecr");
    assert_eq!(t.env["PLUGIN_REPO"], "test-image");
    assert_eq!(t.env["PLUGIN_REGISTRY"], "${mirror}");
    assert_eq!(t.env["PLUGIN_REGION"], "us-east-1");
    assert!(
        t.stand_ins[0].contains("12345.dkr.ecr.us-east-1.amazonaws.com"),
        "{:?}",
        t.stand_ins
    );
    let t = translate(&step(yaml), &stage("infrastructure: cloud\n"), &connectors).unwrap();
    assert_eq!(t.role, "docker-ecr");
    assert_eq!(t.env["PLUGIN_DAEMON_OFF"], "true");
}

#[test]
fn acr_registry_is_the_repository_up_to_its_first_slash() {
    let yaml = r#"
type: BuildAndPushACR
spec:
  connectorRef: azure
  repository: myreg.azurecr.io/team/app
  tags: ["1"]
"#;
    let t = translate(&step(yaml), &stage("infrastructure: vm\n"), &connectors).unwrap();
    assert_eq!(t.role, "docker-acr");
    assert_eq!(t.env["PLUGIN_REGISTRY"], "myreg.azurecr.io");
    assert_eq!(t.env["PLUGIN_REPO"], "myreg.azurecr.io/team/app");
}

#[test]
fn base_image_connector_secrets_stage_variables_and_env_variables() {
    let yaml = format!(
        "{DOCKER_STEP}  baseImageConnectorRefs: [docker_hub]\n  envDockerSecrets: {{TOKEN: BUILD_TOKEN, PASS: \"<+secrets.getValue(\\\"pass\\\")>\"}}\n  fileDockerSecrets: {{cfg: /harness/cfg.txt}}\n  envVariables: {{PLUGIN_TAGS: override}}\n  runAsUser: 0\n  resources: {{limits: {{memory: 500Mi, cpu: 400m}}}}\n"
    );
    let s = stage(
        "infrastructure: kubernetes\nvariables: {PLUGIN_SKIP_PUSH_IF_TAG_EXISTS: true, PLUGIN_REPO: under}\ninputs: {\"<+pipeline.sequenceId>\": \"42\", \"<+secrets.getValue(\\\"pass\\\")>\": hunter22}\n",
    );
    let t = translate(&step(&yaml), &s, &connectors).unwrap();
    assert_eq!(t.env["PLUGIN_BASE_IMAGE_REGISTRY"], "${registry}");
    assert_eq!(t.env["PLUGIN_BASE_IMAGE_USERNAME"], "ci");
    assert_eq!(
        t.env["PLUGIN_SECRETS_FROM_ENV"],
        "PASS=HARNESS_DOCKER_SECRET_PASS,TOKEN=BUILD_TOKEN"
    );
    assert_eq!(t.env["HARNESS_DOCKER_SECRET_PASS"], "hunter22");
    assert_eq!(t.env["PLUGIN_SECRETS_FROM_FILE"], "cfg=/harness/cfg.txt");
    // envVariables over the step's fields; the step's fields over stage variables.
    assert_eq!(t.env["PLUGIN_TAGS"], "override");
    assert_eq!(t.env["PLUGIN_REPO"], "${registry}/team/app");
    assert_eq!(t.env["PLUGIN_SKIP_PUSH_IF_TAG_EXISTS"], "true");
    assert_eq!(t.user.as_deref(), Some("0"));
    assert_eq!(
        (t.memory.as_deref(), t.cpu.as_deref()),
        (Some("500Mi"), Some("400m"))
    );
}

#[test]
fn what_cannot_be_translated_is_named() {
    let s = stage("infrastructure: kubernetes\n");
    let e = translate(&step(DOCKER_STEP), &s, &connectors).unwrap_err();
    assert_eq!(
        e,
        TranslateStepError::UnfilledExpression {
            expression: "<+pipeline.sequenceId>".into(),
            field: "tags".into()
        }
    );
    assert!(e.to_string().contains("under `inputs`"), "{e}");
    let e = translate(
        &step(&DOCKER_STEP.replace("docker_hub", "nowhere")),
        &s,
        &connectors,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("connector `nowhere` (Docker registry connector"),
        "{e}"
    );
    let e = translate(&step("type: BuildAndPushECR\nspec: {connectorRef: aws, imageName: x, tags: [a], region: r}\n"), &s, &connectors).unwrap_err();
    assert_eq!(e.to_string(), "BuildAndPushECR needs `spec.account`");
    let e = translate(
        &step(&format!("{DOCKER_STEP}  caching: sometimes\n")),
        &stage(&format!("infrastructure: vm\n{INPUTS}")),
        &connectors,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "`spec.caching` must be true or false, not `sometimes`"
    );
}

#[test]
fn an_unknown_field_is_refused_naming_it() {
    let e = serde_saphyr::from_str::<pipeline::BuildAndPushStep>(
        "type: BuildAndPushDockerRegistry\nspec: {connectorRef: a, repo: r, tags: [a], cachng: true}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cachng"), "{e}");
    let e = serde_saphyr::from_str::<pipeline::BuildAndPushStep>(
        "type: BuildAndPushNexus\nspec: {connectorRef: a}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("BuildAndPushNexus"), "{e}");
}

#[test]
fn inputs_are_filled_wherever_they_appear_longest_first() {
    let yaml = r#"
type: BuildAndPushDockerRegistry
spec:
  connectorRef: docker_hub
  repo: YOUR_DOCKER_REPO_NAME
  tags: [v.<+pipeline.sequenceId>]
  fileDockerSecrets: {cfg: "<+secrets.getValue(\"cfg\")>"}
  envVariables:
    PLUGIN_SOURCE_IMAGE: REPO_NAME:v.<+pipeline.sequenceId>
"#;
    let s = stage(
        "infrastructure: vm\ninputs:\n  REPO_NAME: ${registry}/short\n  YOUR_DOCKER_REPO_NAME: ${registry}/long\n  \"<+pipeline.sequenceId>\": \"3\"\n  \"<+secrets.getValue(\\\"cfg\\\")>\": secrets/cfg.txt\n",
    );
    let t = translate(&step(yaml), &s, &connectors).unwrap();
    assert_eq!(t.env["PLUGIN_REPO"], "${registry}/long");
    assert_eq!(t.env["PLUGIN_SOURCE_IMAGE"], "${registry}/short:v.3");
    // The file secret's expression is the path of the file Harness would mount.
    assert_eq!(t.env["PLUGIN_SECRETS_FROM_FILE"], "cfg=secrets/cfg.txt");
}
