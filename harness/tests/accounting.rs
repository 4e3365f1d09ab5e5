//! Full accounting: whatever the steps left in a registry or the shared daemon must be named by
//! the scenario; the rest is an unexpected push, named with the step after which it appeared.

use std::collections::BTreeMap;
use std::path::Path;

use harness::accounting::{account, MAX_LISTED};
use model::inventory::{Holdings, Snapshot};
use model::result::Status;
use oci::registry::{RegistryContents, ServedTag, MAX_READ_TAGS};
use scenario::Scenario;

/// A scenario with these assertions (and optional extra top-level keys).
fn scenario(extra: &str) -> Scenario {
    let text = format!(
        r#"
version: 1
name: accounting
description: d
claim: [t]
builders: [buildx]
registries: [registry, mirror]
steps:
  - name: build
  - name: push
assertions:
  - tag_in_registry: {{repository: conformance/app, tag: "1.0"}}
  - no_tags_in_registry: {{repository: conformance/rejected}}
  - image_in_daemon: local/app:1.0
{extra}
"#
    );
    Scenario::parse(Path::new("accounting.yaml"), &text).expect("a valid scenario")
}

fn vars() -> BTreeMap<String, String> {
    BTreeMap::from([("registry".to_owned(), "registry:5000".to_owned())])
}

/// A reading: `registry/repo:tag@digest` items and daemon references.
fn snapshot(after: &str, tags: &[(&str, &str, &str, &str)], daemon: &[&str]) -> Snapshot {
    let mut registries: BTreeMap<String, RegistryContents> = BTreeMap::new();
    registries.insert("registry".into(), RegistryContents::new());
    registries.insert("mirror".into(), RegistryContents::new());
    for (registry, repository, tag, digest) in tags {
        registries
            .entry(registry.to_string())
            .or_default()
            .entry(repository.to_string())
            .or_default()
            .insert(
                tag.to_string(),
                ServedTag {
                    manifest_digest: digest.to_string(),
                    config_digest: None,
                    media_type: None,
                    layers: None,
                },
            );
    }
    Snapshot {
        after: after.into(),
        holdings: Some(Holdings {
            registries,
            daemon: daemon
                .iter()
                .map(|r| (r.to_string(), "sha256:id".to_owned()))
                .collect(),
            ..Default::default()
        }),
        error: None,
    }
}

const BASE: (&str, &str, &str, &str) = ("registry", "harness/busybox", "1.37", "sha256:base");

fn failures(outcomes: &[model::result::AssertionOutcome]) -> Vec<&str> {
    outcomes
        .iter()
        .filter(|o| o.status != Status::Pass)
        .map(|o| o.assertion.as_str())
        .collect()
}

#[test]
fn what_the_scenario_names_is_accounted_for() {
    let snapshots = [
        snapshot("environment up", &[BASE], &[]),
        snapshot("step build", &[BASE], &["local/app:1.0"]),
        snapshot(
            "step push",
            &[BASE, ("registry", "conformance/app", "1.0", "sha256:a")],
            &["local/app:1.0"],
        ),
    ];
    let outcomes = account(&scenario(""), &vars(), &snapshots);
    assert!(failures(&outcomes).is_empty(), "{outcomes:#?}");
    assert_eq!(
        outcomes.len(),
        2,
        "one Pass for the registries, one for the daemon"
    );
}

#[test]
fn an_extra_tag_another_repository_or_registry_is_an_unexpected_push_after_its_step() {
    let snapshots = [
        snapshot("environment up", &[BASE], &[]),
        snapshot(
            "step build",
            &[BASE, ("registry", "shadow/app", "1.0", "sha256:a")],
            &["local/app:1.0"],
        ),
        snapshot(
            "parallel group push",
            &[
                BASE,
                ("registry", "shadow/app", "1.0", "sha256:a"),
                ("registry", "conformance/app", "1.0", "sha256:a"),
                ("registry", "conformance/app", "extra", "sha256:a"),
                ("mirror", "conformance/app", "1.0", "sha256:a"),
            ],
            &["local/app:1.0", "registry:5000/conformance/app:1.0"],
        ),
    ];
    let outcomes = account(&scenario(""), &vars(), &snapshots);
    assert_eq!(
        failures(&outcomes),
        vec![
            "unexpected push: mirror:5000/conformance/app:1.0 after parallel group push",
            "unexpected push: registry:5000/conformance/app:extra after parallel group push",
            "unexpected push: registry:5000/shadow/app:1.0 after step build",
            "unexpected image in the shared daemon: registry:5000/conformance/app:1.0 after parallel group push",
        ]
    );
    assert!(outcomes.iter().all(|o| o.status != Status::Error));
}

#[test]
fn the_harness_base_image_is_excluded_by_construction_but_overwriting_it_is_caught() {
    let snapshots = [
        snapshot("environment up", &[BASE], &[]),
        snapshot(
            "step build",
            &[("registry", "harness/busybox", "1.37", "sha256:other")],
            &["local/app:1.0"],
        ),
    ];
    let outcomes = account(&scenario(""), &vars(), &snapshots);
    let overwritten: Vec<(&str, &str)> = outcomes
        .iter()
        .filter(|o| o.status == Status::Fail)
        .map(|o| (o.assertion.as_str(), o.found.as_str()))
        .collect();
    assert_eq!(
        overwritten,
        vec![(
            "unexpected push: registry:5000/harness/busybox:1.37 after step build",
            "sha256:other, overwriting what the harness put there"
        )]
    );
}

#[test]
fn a_push_to_a_repository_named_by_no_tags_in_registry_is_left_to_that_assertion() {
    let snapshots = [
        snapshot("environment up", &[BASE], &[]),
        snapshot(
            "step build",
            &[
                BASE,
                ("registry", "conformance/rejected", "1.0", "sha256:a"),
            ],
            &["local/app:1.0"],
        ),
    ];
    let outcomes = account(&scenario(""), &vars(), &snapshots);
    assert!(failures(&outcomes).is_empty(), "{outcomes:#?}");
}

#[test]
fn declared_leftovers_and_loosened_accounting_are_accepted_with_their_reasons() {
    let extra = r#"
leftovers:
  - registry_tag: {repository: conformance/app, tag: latest, because: "the plugin also tags latest"}
  - daemon_image: {reference: "${registry}/conformance/app:1.0", because: "built in the shared daemon"}
loosen_accounting:
  mirror: "the mirror is a scratch registry in this scenario"
"#;
    let snapshots = [
        snapshot("environment up", &[BASE], &[]),
        snapshot(
            "step build",
            &[
                BASE,
                ("registry", "conformance/app", "latest", "sha256:a"),
                ("mirror", "anything/at-all", "x", "sha256:a"),
            ],
            &["local/app:1.0", "registry:5000/conformance/app:1.0"],
        ),
    ];
    let outcomes = account(&scenario(extra), &vars(), &snapshots);
    assert!(failures(&outcomes).is_empty(), "{outcomes:#?}");
}

#[test]
fn a_reading_that_could_not_be_taken_is_an_error_not_a_fail() {
    let snapshots = [
        snapshot("environment up", &[BASE], &[]),
        Snapshot {
            after: "step build".into(),
            holdings: None,
            error: Some("catalog of 127.0.0.1:1: connection refused".into()),
        },
    ];
    let outcomes = account(&scenario(""), &vars(), &snapshots);
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].status, Status::Error);
    assert!(outcomes[0].found.contains("after step build"));
}

#[test]
fn a_flood_of_pushes_is_named_up_to_a_limit_then_counted() {
    let flood: Vec<(String, String)> = (0..MAX_LISTED + 5)
        .map(|i| (format!("flood/app{i:03}"), format!("sha256:{i}")))
        .collect();
    let mut tags: Vec<(&str, &str, &str, &str)> = vec![BASE];
    tags.extend(
        flood
            .iter()
            .map(|(repository, digest)| ("registry", repository.as_str(), "1.0", digest.as_str())),
    );
    let snapshots = [
        snapshot("environment up", &[BASE], &[]),
        snapshot("step build", &tags, &["local/app:1.0", "smuggled/app:1.0"]),
    ];
    let outcomes = account(&scenario(""), &vars(), &snapshots);
    let failed = failures(&outcomes);
    // Unexpected pushes named up to the limit of their kind, the daemon image named too (a
    // flood of tags does not hide it), then one outcome counting the rest. (The missing
    // conformance/app:1.0 is an assertion's business, not the accounting's.)
    assert_eq!(failed.len(), MAX_LISTED + 2, "{failed:#?}");
    assert_eq!(
        failed[0],
        "unexpected push: registry:5000/flood/app000:1.0 after step build"
    );
    assert_eq!(
        failed[MAX_LISTED],
        "unexpected image in the shared daemon: smuggled/app:1.0 after step build"
    );
    assert_eq!(failed[MAX_LISTED + 1], "5 more unexpected item(s)");
}

#[test]
fn a_plan_without_a_shared_daemon_says_so_instead_of_accounting_for_it() {
    let mut snapshots = [
        snapshot("environment up", &[BASE], &[]),
        snapshot(
            "step push",
            &[BASE, ("registry", "conformance/app", "1.0", "sha256:a")],
            &[],
        ),
    ];
    for s in &mut snapshots {
        s.holdings.as_mut().unwrap().no_shared_daemon = true;
    }
    let outcomes = account(&scenario(""), &vars(), &snapshots);
    let names: Vec<&str> = outcomes.iter().map(|o| o.assertion.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "everything in the registries is accounted for",
            "no shared daemon to account for"
        ]
    );
    assert!(failures(&outcomes).is_empty());
}

#[test]
fn a_registry_read_only_in_part_is_a_fail_naming_the_limit_and_the_step() {
    let mut after = snapshot(
        "step push",
        &[BASE, ("registry", "conformance/app", "1.0", "sha256:a")],
        &["local/app:1.0"],
    );
    after
        .holdings
        .as_mut()
        .unwrap()
        .truncated
        .insert("mirror".to_owned());
    let snapshots = [
        snapshot("environment up", &[BASE], &[]),
        snapshot("step build", &[BASE], &["local/app:1.0"]),
        after.clone(),
    ];
    let outcomes = account(&scenario(""), &vars(), &snapshots);
    assert_eq!(
        failures(&outcomes),
        vec![format!(
            "registry mirror holds more than {MAX_READ_TAGS} tags after step push"
        )]
    );
    assert!(outcomes.iter().all(|o| o.status != Status::Error));
    // Loosened for that registry, it is not judged.
    let loosened = scenario("loosen_accounting: {mirror: \"a mirror others push to\"}");
    assert!(failures(&account(&loosened, &vars(), &snapshots)).is_empty());
}

#[test]
fn tags_in_registry_accounts_for_any_tag_of_its_repository_and_only_there() {
    let text = r#"
version: 1
name: accounting
description: d
claim: [t]
builders: [kaniko]
registries: [registry, mirror]
steps:
  - name: build
assertions:
  - tag_in_registry: {repository: conformance/app, tag: "1.0"}
  - tags_in_registry: {repository: conformance/cache, registry: mirror}
"#;
    let scenario = Scenario::parse(Path::new("accounting.yaml"), text).expect("a valid scenario");
    let key = "0f3c1e5a9b7d2c4e6f8a0b1c3d5e7f9a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e";
    let cached = snapshot(
        "step build",
        &[
            BASE,
            ("registry", "conformance/app", "1.0", "sha256:a"),
            ("mirror", "conformance/cache", key, "sha256:c"),
        ],
        &[],
    );
    let up = snapshot("environment up", &[BASE], &[]);
    let outcomes = account(&scenario, &vars(), &[up.clone(), cached]);
    assert!(failures(&outcomes).is_empty(), "{outcomes:#?}");

    // The same cache image in the other registry was not asked for.
    let elsewhere = snapshot(
        "step build",
        &[
            BASE,
            ("registry", "conformance/app", "1.0", "sha256:a"),
            ("mirror", "conformance/cache", key, "sha256:c"),
            ("registry", "conformance/cache", key, "sha256:c"),
        ],
        &[],
    );
    let outcomes = account(&scenario, &vars(), &[up, elsewhere]);
    let failed = failures(&outcomes);
    assert_eq!(failed.len(), 1, "{outcomes:#?}");
    assert!(
        outcomes.iter().any(|o| o.status == Status::Fail
            && o.assertion.contains("registry:5000/conformance/cache:")),
        "{outcomes:#?}"
    );
}
