//! Image profiles: both shipped profiles load, overrides retarget a role, bad overrides are named.

use runtime::profile::{Profile, PullPolicy};

fn root() -> std::path::PathBuf {
    harness::session::repo_root()
}

/// Loads a profile file written into `dir` whose one role, `dind`, has this extra line.
fn load_with_dind(
    dir: &tempfile::TempDir,
    line: &str,
) -> Result<Profile, runtime::errors::ProfileLoadError> {
    let path = dir.path().join("p.yaml");
    std::fs::write(
        &path,
        format!("name: p\ndescription: d\nroles:\n  dind:\n    image: x:1\n    {line}\n"),
    )
    .unwrap();
    Profile::load(&root(), path.to_str().unwrap())
}

#[test]
fn the_offline_profile_never_pulls_and_builds_its_images() {
    let profile = Profile::load(&root(), "offline").unwrap();
    assert_eq!(profile.pull, PullPolicy::Never);
    assert!(profile.build.is_some());
    for role in ["registry", "dind", "busybox", "buildx"] {
        assert!(
            profile.roles[role]
                .image
                .starts_with("conformance-offline/"),
            "{role}"
        );
    }
}

#[test]
fn the_upstream_profile_names_public_images_pinned_by_tag() {
    let profile = Profile::load(&root(), "upstream").unwrap();
    assert_eq!(profile.pull, PullPolicy::IfMissing);
    assert_eq!(profile.roles["buildx"].image, "plugins/buildx:1.3.24");
    assert!(profile.roles.values().all(|r| r.image.contains(':')));
}

#[test]
fn an_override_points_a_role_at_another_image_and_keeps_its_run_options() {
    let profile = Profile::load(&root(), "offline")
        .unwrap()
        .with_overrides(&["buildx=plugins/buildx:1.3.24".into()])
        .unwrap();
    assert_eq!(profile.roles["buildx"].image, "plugins/buildx:1.3.24");
    assert!(profile.roles["buildx"].privileged);
}

#[test]
fn bad_overrides_name_the_offending_value() {
    let profile = Profile::load(&root(), "offline").unwrap();
    let err = profile
        .clone()
        .with_overrides(&["buildx".into()])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed role override `buildx`: expected ROLE=IMAGE"
    );
    let err = profile.with_overrides(&["kanik=x:1".into()]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("profile offline has no role `kanik` (roles: "),
        "{err}"
    );
}

#[test]
fn both_profiles_cast_every_role_the_scenarios_need() {
    let plans = harness::plan::plans(&root().join("scenarios")).unwrap();
    for name in ["offline", "upstream"] {
        let profile = Profile::load(&root(), name).unwrap();
        for plan in plans.iter().filter(|p| p.skip.is_none()) {
            for step in &plan.scenario.steps {
                let role = step.role_for(&plan.builder);
                assert!(
                    profile.roles.contains_key(&role),
                    "profile {name} has no role `{role}` for step {} of {}",
                    step.name,
                    plan.test_name
                );
            }
        }
        // Every role a scenario may start as a service says how (its port), and every base
        // image a scenario may ask for has a role.
        for role in scenario::KNOWN_SERVICE_ROLES {
            let service = profile.roles[*role].service.as_ref();
            assert!(
                service.is_some_and(|s| s.port > 0 && s.authorized_keys.is_some()),
                "profile {name}: service role `{role}` has no `service: {{port, authorized_keys}}`"
            );
        }
        for (role, _) in scenario::KNOWN_BASE_IMAGES {
            assert!(profile.roles.contains_key(*role), "profile {name}: {role}");
        }
    }
}

#[test]
fn every_role_that_reaches_a_registry_declares_where_it_trusts_the_run_ca() {
    // Registries serve HTTPS with the run's CA: a role that pushes or pulls without a trust
    // declaration could only work through an insecure flag.
    for name in ["offline", "upstream"] {
        let profile = Profile::load(&root(), name).unwrap();
        for (role, spec) in &profile.roles {
            // The scenarios' own services and base images reach no registry either.
            let reaches_registries = !matches!(
                role.as_str(),
                "registry" | "busybox" | "scanner" | "sshd" | "git"
            );
            assert_eq!(
                !spec.trust.certs_d.is_empty() || spec.trust.ca_file.is_some(),
                reaches_registries,
                "profile {name}, role {role}: {:?}",
                spec.trust
            );
            assert!(
                !spec.env.contains_key("PLUGIN_INSECURE"),
                "profile {name}, role {role} needs no insecure flag"
            );
        }
    }
}

#[test]
fn a_trust_or_tmpfs_declaration_that_cannot_work_is_a_load_error_naming_the_role() {
    let dir = tempfile::tempdir().unwrap();
    for (field, value, message) in [
        (
            "trust",
            "{certs_d: [etc/docker/certs.d]}",
            "`etc/docker/certs.d` is not an absolute path",
        ),
        (
            "trust",
            "{ca_file_env: [SSL_CERT_FILE]}",
            "ca_file_env (SSL_CERT_FILE) needs a ca_file",
        ),
        ("trust", "{ca_file: \"/a:b\"}", "`/a:b` contains `:`"),
        (
            "tmpfs",
            "[var/lib/containers]",
            "`var/lib/containers` is not an absolute path",
        ),
        ("tmpfs", "[\"/a,b\"]", "`/a,b` contains `:` or `,`"),
        ("service", "{port: 0}", "port 0 is not a port"),
        (
            "service",
            "{port: 22, authorized_keys: etc/keys}",
            "`etc/keys` is not an absolute path",
        ),
        (
            "tmpfs",
            "[/harness/]",
            "`/harness` is where the workspace is mounted (workdir)",
        ),
        (
            "tmpfs",
            "[/var/run]",
            "`/var/run` is where a step shares the daemon's socket",
        ),
        ("tmpfs", "[/]", "`/` is the container's root"),
        // A read-only workspace would make every write of the step miss, silently.
        (
            "workdir",
            "\"/harness:ro\"",
            "`/harness:ro` contains `:` or `,`",
        ),
        ("workdir", "harness", "`harness` is not an absolute path"),
    ] {
        let err = load_with_dind(&dir, &format!("{field}: {value}")).unwrap_err();
        assert!(
            err.to_string().contains(&format!("role `dind`: {field}: "))
                && err.to_string().contains(message),
            "{err}"
        );
    }
}

#[test]
fn only_plans_with_a_step_that_may_use_the_daemon_start_a_dind() {
    let plans = harness::plan::plans(&root().join("scenarios")).unwrap();
    let plan = |name: &str| {
        plans
            .iter()
            .find(|p| p.test_name == name)
            .unwrap_or_else(|| panic!("no plan {name}"))
    };
    for name in ["offline", "upstream"] {
        let profile = Profile::load(&root(), name).unwrap();
        // kaniko and buildah never talk to a daemon; the scanner and busybox read files.
        for daemonless in [
            "kaniko",
            "kaniko-ecr",
            "buildah",
            "buildah-ecr",
            "scanner",
            "busybox",
        ] {
            assert!(profile.roles[daemonless].daemonless, "{name}: {daemonless}");
        }
        for role in ["buildx", "docker", "docker-ecr", "buildx-ecr", "dind"] {
            assert!(!profile.roles[role].daemonless, "{name}: {role}");
        }
        for (test, uses) in [
            // kaniko's steps and the scanner's: no DinD, though the scenario lets buildx
            // leave an image in one.
            ("build_only::tar::kaniko", false),
            ("build_scan_push::clean::kaniko", false),
            ("build_only::tar::buildx", true),
            ("build_and_push::tags_from_daemon::docker", true),
            // Every step starts its own daemon.
            ("around::insecure_registry::docker", false),
            ("build_only::buildx_load::buildx", true),
        ] {
            assert_eq!(
                plan(test).uses_shared_daemon(&profile),
                uses,
                "{name}: {test}"
            );
        }
    }
}

#[test]
fn a_service_role_may_set_its_ready_timeout_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let write = |timeout: &str| load_with_dind(&dir, &format!("ready_timeout: {timeout}"));
    let profile = write("8s").unwrap();
    assert_eq!(
        profile.roles["dind"].ready_timeout,
        Some(std::time::Duration::from_secs(8))
    );
    assert!(Profile::load(&root(), "offline").unwrap().roles["dind"]
        .ready_timeout
        .is_none());
    for bad in ["0s", "2h", "soon"] {
        let err = write(bad).unwrap_err().to_string();
        assert!(err.contains("p.yaml:6:"), "{bad}: {err}");
        assert!(err.contains(bad), "{bad}: {err}");
    }
}

#[test]
fn a_build_script_outside_the_repository_or_a_recipe_without_one_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    for (build, image, message) in [
        (
            "build: ../../tmp/evil.sh\n",
            "x:1",
            "build: `../../tmp/evil.sh` leads out of the repository with `..`",
        ),
        (
            "build: fixtures/../../evil.sh\n",
            "x:1",
            "leads out of the repository",
        ),
        (
            "build: /tmp/evil.sh\n",
            "x:1",
            "build: `/tmp/evil.sh` is absolute",
        ),
        (
            "",
            "x:offline-${recipe}",
            "role `dind`: image: `x:offline-${recipe}` names ${recipe}, which only a profile with a build script gives",
        ),
    ] {
        std::fs::write(
            &path,
            format!("name: p\ndescription: d\n{build}roles:\n  dind:\n    image: \"{image}\"\n"),
        )
        .unwrap();
        let err = Profile::load(&root(), path.to_str().unwrap()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&path.display().to_string()) && text.contains(message),
            "{text}"
        );
    }
}

#[test]
fn the_offline_images_are_named_by_their_recipe_key() {
    let profile = Profile::load(&root(), "offline").unwrap();
    for (role, spec) in &profile.roles {
        assert!(
            spec.image.ends_with(":offline-${recipe}"),
            "{role}: {} does not carry the recipe key",
            spec.image
        );
    }
    let keyed = profile.with_recipe("0123456789abcdef");
    assert_eq!(
        keyed.roles["dind"].image,
        "conformance-offline/dind:offline-0123456789abcdef"
    );
    assert!(keyed.unresolved_recipe().is_none());
}

#[test]
fn a_workspace_bound_must_be_a_quantity_room_enough_for_a_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    for (value, message) in [
        (
            "8Mi",
            "bounds: workspace: 8Mi is too small for a file system (at least 16Mi)",
        ),
        ("lots", "bounds: workspace: "),
    ] {
        std::fs::write(
            &path,
            format!("name: p\ndescription: d\nbounds: {{workspace: {value}}}\nroles:\n  dind:\n    image: x:1\n"),
        )
        .unwrap();
        let err = Profile::load(&root(), path.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains(message), "{err}");
    }
    let default = Profile::load(&root(), "offline").unwrap().bounds;
    assert_eq!(default.workspace_bytes(), Ok(16 << 30));
}
