//! Fault injection, for real: the infrastructure breaks under a plan — the registry is killed in
//! the middle of a push, DinD never answers, the Docker daemon is unreachable, a role's image is
//! missing, the harness itself is killed as the OOM killer would — and each time the plan is an
//! **Error** (never a Fail, never a Pass) naming the cause with the relevant container's log
//! tail, within a bound tied to the timeout at stake, and nothing labelled with the run remains.
//! The other side: a plugin step hanging past its timeout stays a **Fail** and is never retried,
//! and an Error retried into a Pass keeps the earlier attempt.
//!
//! Fault plans live in `tests/fixtures/faults/` (scenarios, a profile whose DinD never answers),
//! outside the matrix. These need the Docker daemon and the offline images (the harness brings
//! both up when missing); nextest runs them in the `docker` test group.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::query_parameters::{KillContainerOptions, LogsOptions};
use bollard::Docker;
use futures_util::StreamExt;
use harness::matrix::{self, Job};
use harness::plan::{plans, Plan};
use harness::runner::{self, RunContext};
use model::result::{ScenarioResult, Status};
use runtime::stop;
use runtime::{self, Swept};

mod common;

use common::docker::{
    forget, harness, in_session, leftovers, root, run_containers, stderr_of, wait_within,
};

/// A real plan that brings a whole environment up (network, volumes, registry, DinD, a step).
const PLAN: &str = "build_only::no_push::buildx";

fn fixtures() -> PathBuf {
    root().join("harness/tests/fixtures/faults")
}

fn run_id(case: &str) -> String {
    common::docker::run_id("faults", case)
}

/// A plan of the fault scenarios (`tests/fixtures/faults/scenarios`), or of the matrix.
fn plan(name: &str) -> Plan {
    let dir = if name.starts_with("faults::") {
        fixtures().join("scenarios")
    } else {
        root().join("scenarios")
    };
    plans(&dir)
        .unwrap()
        .into_iter()
        .find(|p| p.test_name == name)
        .unwrap_or_else(|| panic!("no plan {name}"))
}

/// Runs one plan as nextest would (a stop request tears it down) and times it.
async fn run_timed(ctx: &RunContext, plan: &Plan) -> (ScenarioResult, Duration) {
    let began = Instant::now();
    let result = stop::guarded(&ctx.docker, &ctx.run_id, runner::run_plan(ctx, plan))
        .await
        .unwrap_or_else(|stopped| panic!("stopped: {stopped}"));
    (result, began.elapsed())
}

/// The Error every fault must end in: never Fail, never Pass, with a reason.
fn assert_error(result: &ScenarioResult) -> &str {
    assert_eq!(result.status, Status::Error, "{}", result.explain());
    result.reason.as_deref().expect("an Error says why")
}

/// The first container of the run whose name contains `part`: its id.
async fn container(docker: &Docker, run: &str, part: &str) -> Option<String> {
    run_containers(docker, run, Some(part))
        .await
        .ok()?
        .into_iter()
        .find_map(|c| c.id)
}

async fn logs(docker: &Docker, id: &str) -> String {
    let mut stream = docker.logs(
        id,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            tail: "all".into(),
            ..Default::default()
        }),
    );
    let mut out = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    out
}

/// The registry's access-log line for a blob upload of `conformance/app` starting (not a
/// cross-repository mount: its data follows).
const UPLOAD_STARTS: &str = "\"POST /v2/conformance/app/blobs/uploads/ HTTP";
/// An upload finished (its data all sent).
const UPLOAD_ENDS: &str = "\"PUT /v2/conformance/app/blobs/uploads/";
/// The manifest pushed (the push is over).
const MANIFEST_PUT: &str = "\"PUT /v2/conformance/app/manifests/";

/// What the saboteur did: when it killed the registry, and what it had seen by then.
#[derive(Debug, Default, Clone)]
struct Sabotage {
    killed_at: Option<Instant>,
    upload_started: bool,
    uploads_finished: usize,
    manifest_seen: bool,
}

/// Kills the run's registry (SIGKILL, as a crash would) once the step container whose name
/// contains `step` runs and, with `on_upload`, once the registry logged the start of a blob
/// upload to `conformance/app` (the push is under way). Only the first environment of the run
/// is hit.
async fn kill_registry_during(
    docker: Docker,
    run: String,
    step: &'static str,
    on_upload: bool,
    record: Arc<Mutex<Sabotage>>,
) {
    let deadline = Instant::now() + Duration::from_secs(240);
    while Instant::now() < deadline {
        let (Some(_), Some(registry)) = (
            container(&docker, &run, step).await,
            container(&docker, &run, "-registry-registry").await,
        ) else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        // The push begun, or (should it never be seen) a minute after the step started.
        let began = Instant::now();
        let mut log = String::new();
        while on_upload && began.elapsed() < Duration::from_secs(60) {
            log = logs(&docker, &registry).await;
            if log.contains(UPLOAD_STARTS) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        docker
            .kill_container(&registry, None::<KillContainerOptions>)
            .await
            .expect("the registry is killed");
        let mut record = record.lock().unwrap();
        record.killed_at = Some(Instant::now());
        record.upload_started = log.contains(UPLOAD_STARTS);
        record.uploads_finished = log.matches(UPLOAD_ENDS).count();
        record.manifest_seen = log.contains(MANIFEST_PUT);
        return;
    }
}

/// Fault 1: the registry is killed in the middle of a push (once the registry logged the first
/// blob upload of the 64 MiB image). The step fails — but the harness sees the registry is no
/// longer running and ends the plan at once as an Error naming it, with its log tail, well
/// within the step's timeout (120 s).
#[test]
fn registry_stopped_mid_push_is_an_error_with_its_log() {
    let run = run_id("registry");
    let plan = plan("faults::registry_stops::kaniko");
    let record = Arc::new(Mutex::new(Sabotage::default()));
    let (result, took, after_kill) = in_session(&run, "offline", async |ctx| {
        let saboteur = tokio::spawn(kill_registry_during(
            ctx.docker.clone(),
            run.clone(),
            "-step-push",
            true,
            Arc::clone(&record),
        ));
        let (result, took) = run_timed(&ctx, &plan).await;
        saboteur.abort();
        let killed_at = record.lock().unwrap().killed_at;
        let Some(killed_at) = killed_at else {
            // The plan ended before the push began: say how, or the failure explains nothing.
            panic!(
                "the registry was never killed: the plan ended first\n{}",
                result.explain()
            );
        };
        (result, took, killed_at.elapsed())
    });
    let sabotage = record.lock().unwrap().clone();
    let reason = assert_error(&result);
    assert!(
        reason.contains("registry `registry` stopped during step push (exited with 137)"),
        "{reason}"
    );
    // The registry's own log tail: the upload it was serving when it was killed.
    assert!(reason.contains("its log ends:"), "{reason}");
    assert!(reason.contains("conformance/app/blobs/uploads"), "{reason}");
    assert!(
        sabotage.upload_started && !sabotage.manifest_seen,
        "killed in the middle of the push: {sabotage:?}"
    );
    assert_eq!(leftovers(&run), Swept::default());
    eprintln!(
        "registry stopped mid-push (an upload started, {} finished, no manifest): Error in \
         {took:?}, {after_kill:?} after the kill, 0 leftovers\n{reason}",
        sabotage.uploads_finished
    );
    // The step's timeout is 120 s: the harness noticed the registry, not the timeout.
    assert!(after_kill < Duration::from_secs(45), "{after_kill:?}");
    assert!(took < Duration::from_secs(240), "{took:?}");
    forget(&run);
}

/// Fault 2: DinD never becomes ready (busybox sleeping in its place, `ready_timeout: 8s` in the
/// test profile): an Error naming dind, the last answer and its log tail, within the readiness
/// timeout plus slack.
#[test]
fn dind_never_ready_is_an_error_within_its_ready_timeout() {
    let run = run_id("dind");
    let profile = fixtures().join("profiles/dind-never-ready.yaml");
    let plan = plan("faults::steady::kaniko");
    let (result, took) = in_session(&run, profile.to_str().unwrap(), async |ctx| {
        run_timed(&ctx, &plan).await
    });
    let reason = assert_error(&result);
    assert!(
        reason.starts_with("dind did not become ready within 8 s: the daemon's socket"),
        "{reason}"
    );
    assert!(
        reason.contains("its log ends:\nfake dind: sleeping instead of serving"),
        "{reason}"
    );
    assert!(result.steps.is_empty(), "no step ran: {}", result.explain());
    assert_eq!(leftovers(&run), Swept::default());
    eprintln!("dind never ready: Error in {took:?}, 0 leftovers\n{reason}");
    assert!(took >= Duration::from_secs(8), "it waited: {took:?}");
    assert!(took < Duration::from_secs(8 + 60), "{took:?}");
    forget(&run);
}

/// Fault 3: the Docker daemon is unreachable (DOCKER_HOST names a socket that does not exist).
/// `harness run` ends at once with one clear error naming where it looked, exit 2, no panic,
/// nothing planned; `harness sweep` likewise.
#[test]
fn unreachable_docker_daemon_is_one_clear_error() {
    let run = run_id("nodaemon");
    let host = "unix:///nonexistent/conformance-faults/docker.sock";
    for args in [vec!["run", PLAN, "--run-id", &run], vec!["sweep"]] {
        let began = Instant::now();
        let mut child = harness()
            .args(&args)
            .env("DOCKER_HOST", host)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_within(&mut child, Duration::from_secs(60), "no daemon");
        let took = began.elapsed();
        let stderr = stderr_of(&mut child);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.contains(&format!("error: no docker daemon answers at {host} (")),
            "{stderr}"
        );
        assert!(stderr.contains("point DOCKER_HOST at a daemon"), "{stderr}");
        eprintln!(
            "{} without a daemon: exit 2 in {took:?}: {}",
            args[0],
            stderr.trim()
        );
        // Quick: no bootstrap of a local daemon, which could not answer at DOCKER_HOST anyway.
        assert!(took < Duration::from_secs(20), "{took:?}");
    }
    assert!(!root()
        .join("reports")
        .join(&run)
        .join("summary.json")
        .exists());
    assert_eq!(leftovers(&run), Swept::default());
    forget(&run);
}

/// Fault 4: a role's image is missing and the profile never pulls: an Error naming the image
/// and the role, found before anything is created.
#[test]
fn missing_role_image_is_an_error_naming_it() {
    let run = run_id("image");
    let plan = plan(PLAN);
    let image = "conformance-offline/no-such-image:faults";
    let results = in_session(&run, "offline", async |ctx| {
        let mut results = Vec::new();
        for role in ["buildx", "dind"] {
            let ctx = ctx
                .with_image(role, image, std::path::Path::new(role))
                .unwrap();
            results.push((role, run_timed(&ctx, &plan).await));
        }
        results
    });
    for (role, (result, took)) in &results {
        let reason = assert_error(result);
        assert_eq!(
            reason,
            format!(
                "image {image} for role `{role}` is not present in the docker daemon (the \
                 `offline` profile never pulls)"
            )
        );
        eprintln!("{role} image missing: Error in {took:?}: {reason}");
        assert!(*took < Duration::from_secs(30), "{took:?}");
    }
    assert_eq!(leftovers(&run), Swept::default());
    forget(&run);
}

/// Fault 5: the harness is killed with SIGKILL in the middle of a plan (as the OOM killer
/// does: no handler, no teardown). What it leaves carries its owner labels (host, pid, pid
/// start); `harness sweep` (default scope: processes that are gone) removes all of it, and the
/// next run is unaffected.
#[test]
fn killed_harness_leaves_owned_resources_that_sweep_removes() {
    let run = run_id("sigkill");
    let mut child = Harness(
        harness()
            .args(["run", PLAN, "--run-id", &run])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id().to_string();
    let _sweep = SweepOnFailure(run.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let docker = rt.block_on(common::docker::plans_daemon());
    // The session opened (the images may first have to be built, after other users' builds).
    let mut first = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with(&format!("run {run}:")), "{first}");
    // Mid-plan: the step container exists.
    let deadline = Instant::now() + Duration::from_secs(120);
    while rt.block_on(container(&docker, &run, "-step-")).is_none() {
        assert!(Instant::now() < deadline, "the step never started");
        assert!(child.0.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.0.kill().unwrap();
    // Reaped: a zombie would still look like a running owner.
    child.0.wait().unwrap();

    let left = leftovers(&run);
    // The registry, DinD and the step; the network; the shared /var/run volume (DinD's
    // storage is a tmpfs that goes with its container).
    assert!(
        left.containers >= 3 && left.networks == 1 && left.volumes == 1,
        "{left}"
    );
    let owners = rt.block_on(owner_labels(&docker, &run));
    assert_eq!(owners.len(), left.total());
    for labels in &owners {
        assert_eq!(labels.get(runtime::LABEL_PID), Some(&pid), "{labels:?}");
        assert_eq!(
            labels.get(runtime::LABEL_HOST),
            Some(&runtime::hostname()),
            "{labels:?}"
        );
        assert!(
            labels
                .get(runtime::LABEL_PID_START)
                .is_some_and(|s| !s.is_empty()),
            "{labels:?}"
        );
    }

    // Its private directory (TLS key) is left in the temporary directory too, and (where the
    // host allows a workspace quota) its workspace file system mounted.
    let private = || private_dirs(&run);
    assert_eq!(private().len(), 1, "{:?}", private());
    let quota_left = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&run);

    // Narrowed to this run: other engineers' gone runs are theirs to sweep.
    let began = Instant::now();
    let output = harness()
        .args(["sweep", "--label", &format!("{}={run}", runtime::LABEL_RUN)])
        .output()
        .unwrap();
    let swept_in = began.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("removed {left} of run {run} (pid {pid} on ")),
        "{stdout}"
    );
    assert!(stdout.contains("its process is gone"), "{stdout}");
    assert_eq!(leftovers(&run), Swept::default());
    assert!(stdout.contains("(private, of a gone process)"), "{stdout}");
    assert!(private().is_empty(), "{:?}", private());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&run),
        "its workspace file system left mounted: {mounts}"
    );
    assert!(swept_in < Duration::from_secs(40), "{swept_in:?}");
    eprintln!("SIGKILL mid-plan: workspace file system left mounted: {quota_left}");

    // The next run is unaffected.
    let next = run_id("after-sigkill");
    let began = Instant::now();
    let output = harness()
        .args(["run", PLAN, "--run-id", &next])
        .output()
        .unwrap();
    let next_took = began.elapsed();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(printed.contains(&format!("PASS  {PLAN}")), "{printed}");
    assert_eq!(leftovers(&next), Swept::default());
    eprintln!(
        "SIGKILL mid-plan: left {left} owned by pid {pid}; sweep removed it in {swept_in:?}; \
         the next run passed in {next_took:?}"
    );
    assert!(next_took < Duration::from_secs(120), "{next_took:?}");
    forget(&run);
    forget(&next);
}

/// The run's private directories (`conformance-auth-RUN-…`) in the temporary directory.
fn private_dirs(run: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| runtime::is_private_dir_of(&e.file_name().to_string_lossy(), run, None))
        .map(|e| e.path())
        .collect()
}

/// Sweeps what the killed harness of run `.0` left, should the test fail before its own sweep
/// (otherwise the leftovers outlive the test and a later leftover count finds them).
struct SweepOnFailure(String);

impl Drop for SweepOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let label = format!("{}={}", runtime::LABEL_RUN, self.0);
            let _ = harness().args(["sweep", "--label", &label]).output();
        }
    }
}

/// A harness process that is stopped (SIGTERM: it tears down) should the test fail first.
struct Harness(std::process::Child);

impl Drop for Harness {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let _ = wait_within(&mut self.0, Duration::from_secs(30), "stopping the harness");
        }
    }
}

/// The labels of every container, network and volume of the run.
async fn owner_labels(docker: &Docker, run: &str) -> Vec<HashMap<String, String>> {
    let label = format!("{}={run}", runtime::LABEL_RUN);
    let filters = HashMap::from([("label".to_owned(), vec![label])]);
    let mut found: Vec<HashMap<String, String>> = run_containers(docker, run, None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.labels.unwrap_or_default())
        .collect();
    found.extend(
        docker
            .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
                filters: Some(filters.clone()),
            }))
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.labels.unwrap_or_default()),
    );
    found.extend(
        docker
            .list_volumes(Some(bollard::query_parameters::ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .unwrap()
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.labels),
    );
    found
}

/// A plugin step hanging past its timeout (5 s) is the plugin's doing: a Fail, the step marked
/// timed out, and never retried (`--retry-errors 2`).
#[test]
fn hanging_step_is_a_fail_and_never_retried() {
    let run = run_id("hang");
    let plan = plan("faults::hang::kaniko");
    let (result, took) = in_session(&run, "offline", async |ctx| {
        let job = Job {
            ctx: &ctx,
            plan: &plan,
            repetition: 1,
        };
        let options = matrix::Options {
            jobs: 1,
            repeat: 1,
            retry_errors: 2,
        };
        let began = Instant::now();
        let mut results = matrix::run_jobs(vec![job], options, |_| {}).await;
        (results.remove(0), began.elapsed())
    });
    assert_eq!(result.status, Status::Fail, "{}", result.explain());
    assert!(
        result.retried_errors.is_empty(),
        "{:?}",
        result.retried_errors
    );
    let [step] = result.steps.as_slice() else {
        panic!("one step: {}", result.explain());
    };
    assert!(step.timed_out && step.exit_code.is_none(), "{step:?}");
    assert!(step.log.contains("hanging"), "{step:?}");
    assert!(step.duration_ms >= 5000, "{step:?}");
    assert_eq!(leftovers(&run), Swept::default());
    eprintln!(
        "hanging step: Fail ({}) in {took:?}, not retried, 0 leftovers",
        result.reason.as_deref().unwrap_or("")
    );
    // One attempt: the step's timeout plus an environment's bring-up and teardown.
    assert!(took < Duration::from_secs(5 + 60), "{took:?}");
    forget(&run);
}

/// An Error retried into a Pass is never silent: the first attempt's registry is killed while
/// its step runs (an Error), the retry passes, and the result — printed, and in the result file
/// — keeps why the first attempt errored.
#[test]
fn error_retried_into_a_pass_keeps_the_earlier_attempt() {
    let run = run_id("retry");
    let plan = plan("faults::steady::kaniko");
    let record = Arc::new(Mutex::new(Sabotage::default()));
    let (result, took, written) = in_session(&run, "offline", async |ctx| {
        let saboteur = tokio::spawn(kill_registry_during(
            ctx.docker.clone(),
            run.clone(),
            "-step-work",
            false,
            Arc::clone(&record),
        ));
        let job = Job {
            ctx: &ctx,
            plan: &plan,
            repetition: 1,
        };
        let options = matrix::Options {
            jobs: 1,
            repeat: 1,
            retry_errors: 1,
        };
        let began = Instant::now();
        let mut results = matrix::run_jobs(vec![job], options, |_| {}).await;
        let took = began.elapsed();
        saboteur.abort();
        let result = results.remove(0);
        let file = ctx.report_dir.join(format!("{}.json", result.file_stem()));
        (result, took, std::fs::read_to_string(file).unwrap())
    });
    assert!(record.lock().unwrap().killed_at.is_some());
    assert_eq!(result.status, Status::Pass, "{}", result.explain());
    let [earlier] = result.retried_errors.as_slice() else {
        panic!("one errored attempt kept: {:?}", result.retried_errors);
    };
    assert!(
        earlier.starts_with("registry `registry` stopped during step work (exited with 137)"),
        "{earlier}"
    );
    let written: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(written["status"], "pass");
    assert_eq!(
        written["retried_errors"][0].as_str(),
        Some(earlier.as_str())
    );
    assert_eq!(leftovers(&run), Swept::default());
    eprintln!("error then pass: Pass in {took:?} after 1 errored attempt kept: {earlier}");
    assert!(took < Duration::from_secs(180), "{took:?}");
    forget(&run);
}
