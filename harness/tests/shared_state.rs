//! Machine state shared with other harnesses (issue 19, item 4): a harness in a PID namespace of
//! its own (as in a container, with this host name) keeps its run while another harness sweeps
//! gone processes' leftovers; its pid means nothing here, so it is never taken for gone.
//! Needs the Docker daemon, the offline images and `unshare` (root); nextest runs it in the
//! `docker` test group.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::docker::{harness, leftovers, root, run_containers, run_id, wait_within, with_docker};

const PLAN: &str = "build_only::no_push::buildx";

/// The labels of the run's containers.
fn container_labels(run: &str) -> Vec<(String, HashMap<String, String>)> {
    with_docker(async |docker| {
        run_containers(&docker, run, None)
            .await
            .unwrap()
            .into_iter()
            .map(|c| {
                let name = c.names.unwrap_or_default().join(",");
                (name, c.labels.unwrap_or_default())
            })
            .collect()
    })
}

/// A repository root holding only the plan's scenario (others' scenarios being edited cannot
/// stop it from loading): the real fixtures and scripts linked, the scenario and its context
/// copied (a `workspace:` through a link is refused).
fn lone_root() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    for linked in ["fixtures", "scripts"] {
        std::os::unix::fs::symlink(root().join(linked), repo.path().join(linked)).unwrap();
    }
    let context = repo.path().join("contexts/app");
    std::fs::create_dir_all(&context).unwrap();
    for entry in std::fs::read_dir(root().join("fixtures/contexts/app")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), context.join(entry.file_name())).unwrap();
    }
    let scenario = std::fs::read_to_string(root().join("scenarios/build-only/no-push.yaml"))
        .unwrap()
        .replace(
            "workspace: fixtures/contexts/app",
            "workspace: contexts/app",
        );
    assert!(scenario.contains("workspace: contexts/app"));
    let dir = repo.path().join("scenarios/build-only");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("no-push.yaml"), scenario).unwrap();
    repo
}

/// The harness in its PID namespace, killed (with what it runs) should the test fail first.
struct Namespaced(std::process::Child, String);

impl Drop for Namespaced {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
        if std::thread::panicking() {
            let _ = harness().args(["sweep", "--run", &self.1]).output();
        }
    }
}

#[test]
fn sweep_leaves_a_live_run_of_another_pid_namespace_alone() {
    let run = run_id("shared", "pidns");
    let repo = lone_root();
    let binary = harness().get_program().to_owned();
    // pid 1 of a namespace of its own, this host name, this daemon.
    let mut inner = Namespaced(
        Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL"])
            .arg(binary)
            .args(["run", PLAN, "--run-id", &run])
            .env("CONFORMANCE_ROOT", repo.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unshare starts (root needed)"),
        run.clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    let step = loop {
        if let Some(found) = container_labels(&run)
            .into_iter()
            .find(|(name, _)| name.contains("-step-"))
        {
            break found.1;
        }
        assert!(Instant::now() < deadline, "the step never started");
        if let Some(status) = inner.0.try_wait().unwrap() {
            let mut printed = String::new();
            let _ =
                std::io::Read::read_to_string(&mut inner.0.stdout.take().unwrap(), &mut printed);
            panic!("the run ended early ({status}):\n{printed}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The pid it recorded is its own namespace's (pid 1 here is another process).
    let theirs = step.get(runtime::LABEL_PID_NS).cloned().unwrap_or_default();
    assert!(theirs.starts_with("pid:["), "{step:?}");
    assert_ne!(Some(theirs.clone()), runtime::pid_namespace(), "{step:?}");
    assert_eq!(step.get(runtime::LABEL_PID).map(String::as_str), Some("1"));
    let before = leftovers(&run);
    assert!(before.containers >= 2 && before.networks == 1, "{before}");

    let output = harness()
        .args(["sweep", "--label", &format!("{}={run}", runtime::LABEL_RUN)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("left run {run} (pid 1 on "))
            && stdout.contains("another PID namespace"),
        "{stdout}"
    );
    assert!(stdout.contains("nothing to remove"), "{stdout}");

    // Untouched, the run ends as it would have: a Pass, nothing left behind.
    let status = wait_within(&mut inner.0, Duration::from_secs(300), "the namespaced run");
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut inner.0.stdout.take().unwrap(), &mut printed).unwrap();
    assert_eq!(status.code(), Some(0), "{printed}");
    assert!(printed.contains(&format!("PASS  {PLAN}")), "{printed}");
    assert_eq!(leftovers(&run).total(), 0);
    // What ran carries the recipe key in its tag, not the `:offline` a checkout with other
    // recipes would move.
    let key = Command::new("bash")
        .arg(root().join("fixtures/images/build-images.sh"))
        .arg("--key")
        .output()
        .unwrap();
    let key = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    assert_eq!(key.len(), 16, "{key}");
    let result = repo
        .path()
        .join("reports")
        .join(&run)
        .join(format!("{}.json", PLAN.replace("::", ".")));
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    let images = result["images"].as_object().unwrap();
    assert!(!images.is_empty(), "{result}");
    for (role, record) in images {
        let image = record["image"].as_str().unwrap();
        assert!(
            image.ends_with(&format!(":offline-{key}")),
            "{role}: {image}"
        );
    }
    eprintln!("a live run in {theirs} kept {before} through a sweep, then passed");
}

const LINKS: &str = r#"version: 1
name: a plugin leaves links to the host in its workspace
description: >
  Run by harness/tests/shared_state.rs: the step links host paths into its workspace and fails,
  so that the workspace is kept for inspection.
claim: [a-plugin-is-bounded]
builders: [kaniko]
steps:
  - name: links
    run: |
      ln -s /etc/shadow shadow
      mkdir sub && ln -s ../../.. sub/up
      echo mine > inside.txt && ln -s inside.txt ok
      exit 1
assertions:
  - step_succeeded: links
"#;

const LINKED_WORKSPACE: &str = r#"version: 1
name: a scenario whose workspace is a symlink to a host directory
description: Run by harness/tests/shared_state.rs.
claim: [a-plugin-is-bounded]
builders: [kaniko]
workspace: contexts/app
steps:
  - name: look
    run: ls
assertions:
  - step_succeeded: look
"#;

/// A kept workspace holds no link out of it (`tar -ch reports/` copies no host file), and a
/// scenario's `workspace:` that is a symlink is refused, naming it, instead of copied through.
#[test]
fn kept_workspaces_hold_no_link_out_and_a_linked_workspace_is_refused() {
    use harness::plan::plans;
    use model::result::Status;
    let repo = tempfile::tempdir().unwrap();
    let scenarios = repo.path().join("scenarios/hostile");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::write(scenarios.join("links.yaml"), LINKS).unwrap();
    std::fs::write(scenarios.join("linked.yaml"), LINKED_WORKSPACE).unwrap();
    std::fs::create_dir_all(repo.path().join("contexts")).unwrap();
    std::os::unix::fs::symlink("/etc", repo.path().join("contexts/app")).unwrap();
    let mut plans = plans(&repo.path().join("scenarios")).expect("the scenarios load");
    plans.sort_by(|a, b| a.test_name.cmp(&b.test_name));
    assert_eq!(plans.len(), 2, "{plans:?}");
    let run = run_id("shared", "links");
    let root_dir = repo.path().to_owned();
    let results = common::docker::in_session(&run, "offline", async |mut ctx| {
        ctx.root = root_dir;
        ctx.report_dir = ctx.root.join("reports").join(&run);
        let mut results = Vec::new();
        for plan in &plans {
            results.push(harness::runner::run_plan(&ctx, plan).await);
        }
        results
    });
    let (linked, links) = (&results[0], &results[1]);
    assert!(linked.test.contains("linked"), "{}", linked.test);

    // Not the plugin's doing: an Error naming the link, nothing of /etc copied.
    assert_eq!(linked.status, Status::Error, "{}", linked.explain());
    let reason = linked.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("workspace `contexts/app`: contexts/app is a symlink to /etc"),
        "{reason}"
    );
    assert!(linked.steps.is_empty(), "{:?}", linked.steps);

    // The plugin's Fail, its workspace kept with the outward links replaced by notes.
    assert_eq!(links.status, Status::Fail, "{}", links.explain());
    let kept = repo
        .path()
        .join("reports")
        .join(&run)
        .join(links.file_stem())
        .join("workspace");
    for (name, target) in [("shadow", "/etc/shadow"), ("sub/up", "../../..")] {
        let meta = std::fs::symlink_metadata(kept.join(name)).unwrap();
        assert!(meta.is_file(), "{name} is still a {:?}", meta.file_type());
        let note = std::fs::read_to_string(kept.join(name)).unwrap();
        assert!(
            note.contains(&format!("a symlink to {target}")) || note.contains("leads through"),
            "{name}: {note}"
        );
    }
    assert!(std::fs::symlink_metadata(kept.join("ok"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(leftovers(&run).total(), 0);
}

/// A host without CA certificates (a minimal container): the registry client used to panic
/// loading them; the harness trusts its run's CA only, so the plan passes.
#[test]
fn a_host_without_ca_certificates_runs_plans() {
    let run = run_id("shared", "nocerts");
    let repo = lone_root();
    let empty = tempfile::tempdir().unwrap();
    let output = harness()
        .args(["run", PLAN, "--run-id", &run])
        .env("CONFORMANCE_ROOT", repo.path())
        .env("SSL_CERT_FILE", empty.path().join("none.pem"))
        .env("SSL_CERT_DIR", empty.path())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(printed.contains(&format!("PASS  {PLAN}")), "{printed}");
    assert!(
        printed.contains("this host has no CA certificates"),
        "{printed}"
    );
    assert!(!printed.contains("panicked"), "{printed}");
    assert_eq!(leftovers(&run).total(), 0);
}
