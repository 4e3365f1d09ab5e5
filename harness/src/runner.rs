//! Runs one plan: workspace → environment → steps → captures → assertions → result, and always
//! tears the environment down.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bollard::Docker;
use futures_util::FutureExt;

use crate::accounting;
use crate::assertions::{self, Evidence, MissingCapture};
use crate::errors::RuntimeError;
use crate::expectation;
use crate::images;
use crate::plan::Plan;
use crate::progress::{self, Notify};
use model::result::{AssertionOutcome, ScenarioResult, Status, StepRecord};
use oci::archive::Archives;
use oci::registry;
use report::redact;
use runtime::profile::Profile;
use runtime::{self, Environment, Services, REGISTRY_PORT};
use scenario::{substitute, Capture, Scenario, When};

/// Everything a plan runs with.
pub struct RunContext {
    /// Repository root (scenarios/, fixtures/).
    pub root: PathBuf,
    pub run_id: String,
    /// Where this run's reports go: `reports/<run-id>/`.
    pub report_dir: PathBuf,
    pub profile: Profile,
    pub docker: Docker,
    /// Told what each plan is doing as it goes (live progress lines), if anyone listens.
    pub notify: Option<Notify>,
}

impl RunContext {
    /// The same run with `image` playing `role` (its run options kept), reporting under
    /// `report_dir/<subdir>`: how a mutant or a release candidate takes a role's place.
    pub fn with_image(
        &self,
        role: &str,
        image: &str,
        subdir: &Path,
    ) -> Result<RunContext, crate::errors::ProfileLoadError> {
        Ok(RunContext {
            root: self.root.clone(),
            run_id: self.run_id.clone(),
            report_dir: self.report_dir.join(subdir),
            profile: self
                .profile
                .clone()
                .with_overrides(&[format!("{role}={image}")])?,
            docker: self.docker.clone(),
            notify: self.notify.clone(),
        })
    }

    fn note(&self, plan: &Plan, repetition: u32, what: &str) {
        if let Some(notify) = &self.notify {
            notify(&progress::label(&plan.test_name, repetition), what);
        }
    }
}

/// A fresh run id: UTC time plus a short random suffix.
pub fn new_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6])
}

/// The roles a plan needs, services first (DinD when some step may use it).
fn roles(plan: &Plan, profile: &Profile) -> Vec<String> {
    let mut roles = vec!["registry".to_owned(), "busybox".to_owned()];
    if plan.uses_shared_daemon(profile) {
        roles.insert(1, "dind".to_owned());
    }
    for step in &plan.scenario.steps {
        let role = step.role_for(&plan.builder);
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    roles
}

pub async fn run_plan(ctx: &RunContext, plan: &Plan) -> ScenarioResult {
    run_repetition(ctx, plan, 1, Teardown::Inline).await.0
}

/// When a repetition's environment is torn down.
#[derive(Clone, Copy)]
pub enum Teardown<'a> {
    /// Before the result is returned: its time counts in the plan's wall time (nextest, one
    /// plan at a time, and the sides of a release validation, which must not overlap).
    Inline,
    /// After the result, in a task of its own, off the plan's critical path (`harness run`).
    /// With slots, the plan prepares its workspace and brings its environment up at once, but
    /// runs its steps only once it holds one of the slots (taken in the order asked for), so
    /// that environments come up while other plans run theirs; its wall time then counts from
    /// when it got its slot, and what it did before is `phases.ahead_ms`.
    Deferred(Option<&'a tokio::sync::Semaphore>),
}

/// Runs one repetition of a plan (1-based), in a workspace and with a result file of its own,
/// and tears its environment down as `teardown` says. A deferred teardown is returned still
/// going on: the caller must [`PendingTeardown::settle`] it before the run ends; if it never
/// does, the environment still goes (a teardown task dropped with the runtime drops the
/// environment, which removes itself). The plan's secrets are redacted in the result and
/// masked in the workspace kept for inspection before anyone else sees them.
pub async fn run_repetition(
    ctx: &RunContext,
    plan: &Plan,
    repetition: u32,
    teardown: Teardown<'_>,
) -> (ScenarioResult, Option<PendingTeardown>) {
    let slots = match teardown {
        Teardown::Inline => None,
        Teardown::Deferred(slots) => slots,
    };
    let secrets = redact::Secrets::of(&plan.scenario);
    redact::remember(&secrets);
    let (mut result, handle) = run_unredacted(ctx, plan, repetition, slots).await;
    secrets.scrub_result(&mut result);
    let workspace = ctx.report_dir.join(result.file_stem()).join("workspace");
    secrets.scrub_dir(&workspace);
    let pending = handle.map(|handle| PendingTeardown { secrets, handle });
    match (teardown, pending) {
        (Teardown::Inline, Some(pending)) => {
            pending.settle(&mut result, true).await;
            (result, None)
        }
        (_, pending) => (result, pending),
    }
}

/// An environment being torn down in a task of its own: how it ended, and how long it took (ms).
type TeardownTask = tokio::task::JoinHandle<(Result<(), RuntimeError>, u64)>;

/// A plan's environment being torn down after its result was taken.
pub struct PendingTeardown {
    secrets: redact::Secrets,
    handle: TeardownTask,
}

impl PendingTeardown {
    /// Waits until the environment is gone and records it in the result: its time, and a
    /// failure as before (the harness's failure: a Pass becomes an Error, a known discrepancy
    /// is no longer as expected). `waited`: whether the plan waited for it, so that its time
    /// counts in the plan's wall time (`teardown_ms`) rather than beside it
    /// (`teardown_background_ms`).
    pub async fn settle(self, result: &mut ScenarioResult, waited: bool) {
        let (outcome, took_ms) = match self.handle.await {
            Ok((outcome, took_ms)) => (outcome.map_err(|e| e.to_string()), took_ms),
            Err(e) => (Err(format!("the teardown task ended abnormally: {e}")), 0),
        };
        if waited {
            result.phases.teardown_ms = took_ms;
            result.duration_ms += took_ms;
        } else {
            result.phases.teardown_background_ms = took_ms;
        }
        if let Err(e) = outcome {
            note_teardown_failure(result, &e);
            self.secrets.scrub_result(result);
        }
    }
}

/// A leak is the harness's failure; it does not change what was learned about the plugin
/// unless the plugin passed.
fn note_teardown_failure(result: &mut ScenarioResult, e: &str) {
    let note = format!("teardown failed: {e}");
    result.reason = Some(match result.reason.take() {
        Some(r) => format!("{r}; {note}"),
        None => note,
    });
    if result.status == Status::Pass {
        result.status = Status::Error;
    }
    if let Some(known) = result.known_discrepancy.as_mut() {
        known.met = false;
        known.difference = Some(note_for_expectation(&known.difference));
    }
}

async fn run_unredacted(
    ctx: &RunContext,
    plan: &Plan,
    repetition: u32,
    slots: Option<&tokio::sync::Semaphore>,
) -> (ScenarioResult, Option<TeardownTask>) {
    let started = Instant::now();
    let mut result = ScenarioResult {
        test: plan.test_name.clone(),
        scenario: plan.scenario.name.clone(),
        file: plan
            .file
            .path
            .strip_prefix(&ctx.root)
            .unwrap_or(&plan.file.path)
            .display()
            .to_string(),
        builder: plan.builder.clone(),
        profile: ctx.profile.name.clone(),
        status: Status::Error,
        reason: None,
        images: BTreeMap::new(),
        steps: Vec::new(),
        captures: BTreeMap::new(),
        assertions: Vec::new(),
        inventory: Vec::new(),
        duration_ms: 0,
        phases: Default::default(),
        repetition,
        retried_errors: Vec::new(),
        known_discrepancy: None,
    };

    if let Some(reason) = &plan.skip {
        result.status = Status::Skip;
        result.reason = Some(reason.clone());
        return (result, None);
    }
    let workspace = ctx.report_dir.join(result.file_stem()).join("workspace");
    if let Err(e) = prepare_workspace(&ctx.root, &plan.scenario, &workspace) {
        result.reason = Some(e.to_string());
        return (finish(result, started, &workspace), None);
    }
    ctx.note(plan, repetition, "bringing the environment up");
    let roles = roles(plan, &ctx.profile);
    match images::resolve(&ctx.docker, &ctx.profile, &roles).await {
        Ok(records) => result.images = records,
        Err(e) => {
            result.reason = Some(e.to_string());
            return (finish(result, started, &workspace), None);
        }
    }

    let mut env = Environment::new(
        ctx.docker.clone(),
        &ctx.run_id,
        &plan.test_name,
        workspace.clone(),
    );
    // A panic in the plan is the harness's failure: the teardown still runs, and the plan is
    // an Error saying so.
    let outcome = AssertUnwindSafe(exercise(ctx, plan, &mut env, &mut result, slots, started))
        .catch_unwind()
        .await;
    ctx.note(plan, repetition, "tearing down");
    // The environment goes in a task of its own; dropped unfinished (the runtime ends), the
    // environment inside removes itself.
    let teardown = tokio::spawn(async move {
        let tearing_down = Instant::now();
        let outcome = env.teardown().await;
        (outcome, tearing_down.elapsed().as_millis() as u64)
    });
    match outcome {
        Ok(Ok(by_assertion)) => decide(&mut result, plan, by_assertion),
        Ok(Err(e)) => result.reason = Some(e.to_string()),
        Err(panic) => {
            result.status = Status::Error;
            result.reason = Some(format!("the harness panicked: {}", panic_message(&*panic)));
        }
    }
    (finish(result, started, &workspace), Some(teardown))
}

async fn exercise(
    ctx: &RunContext,
    plan: &Plan,
    env: &mut Environment,
    result: &mut ScenarioResult,
    slots: Option<&tokio::sync::Semaphore>,
    started: Instant,
) -> Result<Vec<Vec<AssertionOutcome>>, RuntimeError> {
    let profile = &ctx.profile;
    let role = |name: &str| profile.roles.get(name).expect("roles resolved above");
    let scenario = &plan.scenario;
    let coming_up = Instant::now();
    let services = Services {
        registry: role("registry"),
        // Resolved above exactly when some step may use it (`roles`).
        dind: result.images.contains_key("dind").then(|| role("dind")),
        base_image: role("busybox"),
    };
    // Up, then what the harness itself put into the registries and the daemon: the
    // accounting's baseline (nothing else can change them before the steps run).
    let up = async {
        let up = env
            .up(
                &services,
                &scenario.registries,
                &scenario.registry_auth,
                &scenario.registry_tls,
            )
            .await;
        let up_at = Instant::now();
        let baseline = match up {
            Ok(()) => Some(accounting::read(env, "environment up").await),
            Err(_) => None,
        };
        (up, up_at, baseline, ms(up_at))
    };
    // The slot is held until the checks are done (the teardown runs without one).
    let slot = async {
        match slots {
            Some(slots) => {
                let permit = slots.acquire().await.expect("the slots are never closed");
                (Some(permit), Instant::now())
            }
            None => (None, started),
        }
    };
    let ((up, up_at, baseline, reading_ms), (_slot, slot_at)) = tokio::join!(up, slot);
    // What the plan did before it got its slot ran beside other plans: only the rest of the
    // bring-up is on its critical path.
    result.phases.ahead_ms = slot_at.saturating_duration_since(started).as_millis() as u64;
    result.phases.environment_ms = up_at
        .saturating_duration_since(coming_up.max(slot_at))
        .as_millis() as u64;
    result.phases.environment = env.phases();
    up?;
    result.inventory.extend(baseline);
    // The baseline reading counts where it was on the plan's critical path: all of it without
    // a slot, what was left of it once the slot came.
    let read_from = up_at.max(slot_at);
    result.phases.inventory_ms += match slots {
        None => reading_ms,
        Some(_) => (up_at + std::time::Duration::from_millis(reading_ms))
            .saturating_duration_since(read_from)
            .as_millis() as u64,
    };

    let mut vars: BTreeMap<String, String> = scenario
        .registries
        .iter()
        .map(|name| (name.clone(), format!("{name}:{REGISTRY_PORT}")))
        .collect();
    // Role environments may name the scenario's registries: `${registries}` (comma list).
    let mut role_vars = vars.clone();
    role_vars.insert(
        "registries".into(),
        scenario
            .registries
            .iter()
            .map(|r| format!("{r}:{REGISTRY_PORT}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    let role_spec = |name: &str| {
        let mut spec = role(name).clone();
        spec.env = spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), substitute(v, &role_vars)))
            .collect();
        spec
    };
    let mut archives = Archives::new(env.workspace());
    let mut missing = BTreeMap::new();
    let began = Instant::now();
    // Consecutive steps of the same parallel group run together. After a failed step, only
    // steps marked `when: always` still run.
    let mut failed = false;
    let mut rest = scenario.steps.as_slice();
    while let Some(first) = rest.first() {
        let size = match &first.parallel {
            Some(group) => rest
                .iter()
                .take_while(|s| s.parallel.as_ref() == Some(group))
                .count(),
            None => 1,
        };
        let (batch, tail) = rest.split_at(size);
        rest = tail;
        let running_now: Vec<&str> = batch
            .iter()
            .filter(|step| !failed || step.when == When::Always)
            .map(|step| step.name.as_str())
            .collect();
        if !running_now.is_empty() {
            let what = format!("step {}", running_now.join(", "));
            ctx.note(plan, result.repetition, &what);
        }
        let runs = batch
            .iter()
            .filter(|step| !failed || step.when == When::Always)
            .map(|step| {
                let role_name = step.role_for(&plan.builder);
                let mut spec = role_spec(&role_name);
                if let Some(command) = &step.run {
                    spec.entrypoint = Some(vec!["sh".into(), "-c".into()]);
                    spec.args = vec![substitute(command, &vars)];
                }
                let step_env: BTreeMap<String, String> = step
                    .environment()
                    .iter()
                    .map(|(k, v)| (k.clone(), substitute(v, &vars)))
                    .collect();
                let env = &*env;
                async move {
                    let started_ms = began.elapsed().as_millis() as u64;
                    let mut record = env
                        .run_step(
                            &step.name,
                            &role_name,
                            &spec,
                            &step_env,
                            step.daemon,
                            step.timeout,
                        )
                        .await?;
                    record.started_ms = started_ms;
                    record.group = step.parallel.clone();
                    Ok::<StepRecord, RuntimeError>(record)
                }
            });
        let running = Instant::now();
        // A registry or DinD that stops meanwhile makes the plan an Error naming it, whatever
        // the steps did without it.
        let during = match &first.parallel {
            Some(group) => format!("parallel group {group}"),
            None => format!("step {}", first.name),
        };
        let records = env
            .while_services_run(&during, futures_util::future::try_join_all(runs))
            .await?;
        result.phases.steps_ms += ms(running);
        let failures: Vec<_> = records.iter().filter(|r| r.exit_code != Some(0)).collect();
        if !failures.is_empty() {
            if let Some(detail) = runtime::out_of_disk(&env.disks().await, &failures) {
                // The steps' logs stay in the result: they show what ran out.
                result.steps.extend(records.iter().cloned());
                return Err(RuntimeError::OutOfDisk { during, detail });
            }
        }
        failed |= !failures.is_empty();
        if let Some(first) = records.first() {
            let after = match &first.group {
                Some(group) => format!("parallel group {group}"),
                None => format!("step {}", first.name),
            };
            let reading = Instant::now();
            result.inventory.push(accounting::read(env, after).await);
            result.phases.inventory_ms += ms(reading);
        }
        result.steps.extend(records);
        // Captures taken when one of these steps has ended, before later steps change things;
        // one due after a step that did not run has nothing to look at.
        let due = scenario.captures.iter().filter(|(_, c)| {
            c.after()
                .is_some_and(|after| batch.iter().any(|s| s.name == after))
        });
        let (ran, not_run): (Vec<_>, Vec<_>) = due.partition(|(_, c)| {
            result
                .steps
                .iter()
                .any(|s| Some(s.name.as_str()) == c.after())
        });
        for (name, capture) in not_run {
            let after = capture.after().unwrap_or_default();
            missing.insert(
                name.clone(),
                MissingCapture {
                    status: Status::Fail,
                    reason: format!("step {after} did not run (an earlier step failed)"),
                },
            );
        }
        take_captures(
            env,
            &mut archives,
            ran.into_iter(),
            &mut vars,
            result,
            &mut missing,
        )
        .await;
    }

    ctx.note(plan, result.repetition, "captures and assertions");
    let checking = Instant::now();
    let at_end = scenario
        .captures
        .iter()
        .filter(|(_, c)| c.after().is_none());
    take_captures(env, &mut archives, at_end, &mut vars, result, &mut missing).await;
    let mut daemon_images = BTreeMap::new();
    for reference in assertions::daemon_references(&plan.scenario.assertions, &vars) {
        let answer = env
            .daemon_image_id(&reference)
            .await
            .map_err(|e| e.to_string());
        daemon_images.insert(reference, answer);
    }
    let mut registry_logs = BTreeMap::new();
    for name in assertions::logged_registries(&scenario.assertions, &scenario.registries[0]) {
        registry_logs.insert(name.to_owned(), env.registry_log(name).await);
    }
    let evidence = Evidence {
        steps: &result.steps,
        registries: env.registries(),
        vars: &vars,
        missing_captures: &missing,
        daemon_images: &daemon_images,
        registry_logs: &registry_logs,
    };
    // One group of outcomes per scenario assertion, so a known discrepancy can name them.
    let mut by_assertion = Vec::with_capacity(scenario.assertions.len());
    for assertion in &scenario.assertions {
        let outcomes =
            assertions::evaluate(std::slice::from_ref(assertion), &evidence, &mut archives).await;
        by_assertion.push(outcomes);
    }
    // Everything else the steps left behind: the full accounting, an outcome group of its own.
    by_assertion.push(accounting::account(scenario, &vars, &result.inventory));
    result.assertions = by_assertion.iter().flatten().cloned().collect();
    result.phases.checks_ms = ms(checking);
    Ok(by_assertion)
}

/// The text a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Takes each capture; one that cannot be taken is recorded with the reason.
async fn take_captures<'a>(
    env: &Environment,
    archives: &mut Archives,
    captures: impl Iterator<Item = (&'a String, &'a Capture)>,
    vars: &mut BTreeMap<String, String>,
    result: &mut ScenarioResult,
    missing: &mut BTreeMap<String, MissingCapture>,
) {
    for (name, capture) in captures {
        match take_capture(env, archives, capture, vars).await {
            Ok(value) => {
                result.captures.insert(name.clone(), value.clone());
                vars.insert(format!("capture.{name}"), value);
            }
            Err(why) => {
                missing.insert(name.clone(), why);
            }
        }
    }
}

/// Error if anything could not be found out, else Fail if any promise was broken, else Pass;
/// then, if the builder has a known discrepancy, whether exactly the expected assertions failed.
fn decide(result: &mut ScenarioResult, plan: &Plan, by_assertion: Vec<Vec<AssertionOutcome>>) {
    let worst = result
        .assertions
        .iter()
        .map(|a| a.status)
        .max()
        .unwrap_or(Status::Error);
    result.status = worst;
    let failed: Vec<&AssertionOutcome> = result
        .assertions
        .iter()
        .filter(|a| a.status == worst && worst != Status::Pass)
        .collect();
    if !failed.is_empty() {
        result.reason = Some(
            failed
                .iter()
                .map(|a| a.assertion.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    if let Some(expected) = plan.scenario.expect.get(&plan.builder) {
        result.known_discrepancy = Some(expectation::judge(
            expected,
            &plan.scenario.assertions,
            &by_assertion,
            worst,
        ));
    }
}

/// A failed teardown never leaves a known discrepancy "as expected": the leak must show.
fn note_for_expectation(previous: &Option<String>) -> String {
    let leak = "the environment was not torn down cleanly";
    match previous {
        Some(p) => format!("{p}; {leak}"),
        None => leak.to_owned(),
    }
}

fn finish(mut result: ScenarioResult, started: Instant, workspace: &Path) -> ScenarioResult {
    // Time spent before the plan got its slot (bringing its environment up beside other plans)
    // is not its wall time.
    result.duration_ms =
        (started.elapsed().as_millis() as u64).saturating_sub(result.phases.ahead_ms);
    if result.status == Status::Pass {
        // Keep the workspace (tarballs, outputs) only when there is something to look into.
        let _ = std::fs::remove_dir_all(workspace);
    }
    result
}

fn prepare_workspace(
    root: &Path,
    scenario: &Scenario,
    workspace: &Path,
) -> Result<(), RuntimeError> {
    let err = |source| RuntimeError::Workspace {
        path: workspace.to_owned(),
        source,
    };
    if workspace.exists() {
        std::fs::remove_dir_all(workspace).map_err(err)?;
    }
    std::fs::create_dir_all(workspace).map_err(err)?;
    if let Some(dir) = &scenario.workspace {
        copy_dir(&root.join(dir), workspace).map_err(|source| RuntimeError::Workspace {
            path: root.join(dir),
            source,
        })?;
    }
    Ok(())
}

/// Copies without following symlinks: one that leaves `from` is refused (see
/// [`oci::workspace::copy_tree`]).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    oci::workspace::copy_tree(from, to)
}

/// The largest JSON file a capture reads (16 MiB).
const JSON_CAPTURE_LIMIT: u64 = 16 * 1024 * 1024;

/// A `json:` capture: the value at `pointer` in `file`, read inside the workspace only (a
/// path or symlink leading out is a Fail naming it; the file is never read) and small. The
/// reasons name the file and where it is malformed, never its content.
pub fn json_capture(workspace: &Path, file: &str, pointer: &str) -> Result<String, MissingCapture> {
    let fail = |reason: String| MissingCapture {
        status: Status::Fail,
        reason,
    };
    let bytes = oci::workspace::read_file(workspace, file, JSON_CAPTURE_LIMIT).map_err(|e| {
        MissingCapture {
            status: if e.is_harness_error() {
                Status::Error
            } else {
                Status::Fail
            },
            reason: e.to_string(),
        }
    })?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        fail(format!(
            "{file} is not valid json: {}",
            oci::archive::json_error(&e)
        ))
    })?;
    match json.pointer(pointer) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(fail(format!("{file} has nothing at {pointer}"))),
    }
}

/// Takes a captured value from what the steps left. Nothing to take is the plugin's doing (a
/// Fail for the assertions that need it); a registry or daemon that cannot be asked is an Error.
async fn take_capture(
    env: &Environment,
    archives: &mut Archives,
    capture: &Capture,
    vars: &BTreeMap<String, String>,
) -> Result<String, MissingCapture> {
    let fail = |reason: String| MissingCapture {
        status: Status::Fail,
        reason,
    };
    let error = |reason: String| MissingCapture {
        status: Status::Error,
        reason,
    };
    match capture {
        Capture::Json { file, pointer } => json_capture(env.workspace(), file, pointer),
        Capture::TarballConfigDigest(path) => match archives.get(path) {
            Ok(archive) => Ok(archive.config_digest.clone()),
            Err(e) if e.is_harness_error() => Err(error(e.to_string())),
            Err(e) => Err(fail(e.to_string())),
        },
        Capture::RegistryConfigDigest(t) | Capture::RegistryManifestDigest(t) => {
            let (name, registry) = registry::named(env.registries(), t.registry.as_deref());
            match registry.image(&t.repository, &t.tag).await {
                Ok(Some(image)) => Ok(match capture {
                    Capture::RegistryConfigDigest(_) => image.config_digest,
                    _ => image.manifest_digest,
                }),
                Ok(None) => Err(fail(format!("{name} serves no {}:{}", t.repository, t.tag))),
                Err(e) => Err(error(e.to_string())),
            }
        }
        Capture::DaemonImageId(reference) => {
            let reference = substitute(reference, vars);
            match env.daemon_image_id(&reference).await {
                Ok(Some(id)) => Ok(id),
                Ok(None) => Err(fail(format!("the shared daemon has no image {reference}"))),
                Err(e) => Err(error(e.to_string())),
            }
        }
    }
}
