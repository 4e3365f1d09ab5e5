//! Runs one plan: workspace → environment → steps → captures → assertions → result, and always
//! tears the environment down. The phases between bring-up and the result are in [`exercise`];
//! taking captured values in [`captures`].

mod captures;
pub mod ci_env;
mod exercise;
mod harness_steps;
mod services;

pub use captures::json_capture;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bollard::Docker;
use futures_util::FutureExt;

use crate::errors::RuntimeError;
use crate::expectation;
use crate::images;
use crate::plan::Plan;
use crate::progress::{self, Notify};
use model::result::{AssertionOutcome, ScenarioResult, Status};
use report::redact;
use runtime::profile::Profile;
use runtime::{self, Environment};

/// Everything a plan runs with.
pub struct RunContext {
    /// Repository root (scenarios/, fixtures/).
    pub root: PathBuf,
    pub run_id: String,
    /// Where this run's reports go: `reports/<run-id>/`.
    pub report_dir: PathBuf,
    pub profile: Profile,
    /// The daemon the plans run on ([`runtime::isolation`]).
    pub docker: Docker,
    /// The daemon the profile's images are built on, when the plans run on another: images
    /// missing from the plans' daemon are copied from it.
    pub images_from: Option<Docker>,
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
            images_from: self.images_from.clone(),
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
    // The scenario's own services and extra base images (`services:`, `base_images:`).
    let services = plan.scenario.services.values().map(|s| s.role.clone());
    for role in services.chain(plan.scenario.base_images.iter().cloned()) {
        if !roles.contains(&role) {
            roles.push(role);
        }
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
    // The plan's SSH keys are drawn for this repetition alone; their private halves are
    // secrets like the scenario's own.
    let ssh_keys = runtime::ssh::SshKeys::generate(&plan.scenario.ssh_keys);
    let secrets =
        redact::Secrets::of(&plan.scenario).merged(&redact::Secrets::new(ssh_keys.secrets()));
    redact::remember(&secrets);
    let (mut result, handle) = run_unredacted(ctx, plan, repetition, slots, &ssh_keys).await;
    secrets.scrub_result(&mut result);
    let workspace = ctx.report_dir.join(result.file_stem()).join("workspace");
    secrets.scrub_dir(&workspace);
    secrets.scrub_dir(&ci_env::outputs_dir(&workspace));
    // A kept workspace copied with its links followed (`tar -ch reports/`) copies no host file.
    oci::workspace::neutralise_links(&workspace);
    oci::workspace::neutralise_links(&ci_env::outputs_dir(&workspace));
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
    ssh_keys: &runtime::ssh::SshKeys,
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
        claims: plan.scenario.claim.clone(),
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
        harness_steps: harness_steps::records(&plan.scenario),
        isolation: runtime::isolation::current().map(|i| i.statement.clone()),
    };

    if let Some(reason) = &plan.skip {
        result.status = Status::Skip;
        result.reason = Some(reason.clone());
        return (result, None);
    }
    let workspace = ctx.report_dir.join(result.file_stem()).join("workspace");
    let quota = match prepare_workspace(ctx, plan, &workspace) {
        Ok(quota) => quota,
        Err(e) => {
            result.reason = Some(e.to_string());
            return (finish(result, started, &workspace, None), None);
        }
    };
    ctx.note(plan, repetition, "bringing the environment up");
    let roles = roles(plan, &ctx.profile);
    match images::resolve(&ctx.docker, ctx.images_from.as_ref(), &ctx.profile, &roles).await {
        Ok(records) => result.images = records,
        Err(e) => {
            result.reason = Some(e.to_string());
            return (finish(result, started, &workspace, quota), None);
        }
    }

    let mut env = Environment::new(
        ctx.docker.clone(),
        &ctx.run_id,
        &plan.test_name,
        workspace.clone(),
    );
    env.mount_outputs(ci_env::outputs_dir(&workspace));
    if quota.is_some() {
        env.workspace_has_quota();
    }
    // Checked when the profile was loaded.
    env.bound_containers(ctx.profile.bounds.limits().unwrap_or_default());
    // A panic in the plan is the harness's failure: the teardown still runs, and the plan is
    // an Error saying so.
    let outcome = AssertUnwindSafe(exercise::exercise(
        ctx,
        plan,
        &mut env,
        &mut result,
        (slots, started),
        ssh_keys,
    ))
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
    // The plugin filled its own file system: its Fail says so (a full host disk is an Error,
    // decided when the step failed).
    if let Some(quota) = quota.as_ref().filter(|q| q.is_full()) {
        if result.status == Status::Fail {
            let note = format!(
                "the plugin filled its workspace quota ({} MiB, bounds.workspace)",
                quota.bytes() >> 20
            );
            result.reason = Some(match result.reason.take() {
                Some(r) => format!("{r}; {note}"),
                None => note,
            });
        }
    }
    (finish(result, started, &workspace, quota), Some(teardown))
}

/// The text a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

pub(crate) fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
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

fn finish(
    mut result: ScenarioResult,
    started: Instant,
    workspace: &Path,
    quota: Option<runtime::quota::WorkspaceQuota>,
) -> ScenarioResult {
    // Time spent before the plan got its slot (bringing its environment up beside other plans)
    // is not its wall time.
    result.duration_ms =
        (started.elapsed().as_millis() as u64).saturating_sub(result.phases.ahead_ms);
    if let Some(quota) = quota {
        // Its own file system goes; a workspace kept for inspection is copied out first.
        if let Err(e) = quota.release(result.status != Status::Pass) {
            let note = format!("the workspace quota could not be released: {e}");
            result.reason = Some(match result.reason.take() {
                Some(r) => format!("{r}; {note}"),
                None => note,
            });
            if result.status == Status::Pass {
                result.status = Status::Error;
            }
        }
    }
    if result.status == Status::Pass {
        // Keep the workspace (tarballs) and the steps' outputs only when there is something to
        // look into.
        let _ = std::fs::remove_dir_all(workspace);
        let _ = std::fs::remove_dir_all(ci_env::outputs_dir(workspace));
    }
    result
}

/// The workspace, on a file system of the profile's `bounds.workspace` where this host allows
/// it (the quota, returned), else a plain directory (said once on stderr).
fn prepare_workspace(
    ctx: &RunContext,
    plan: &Plan,
    workspace: &Path,
) -> Result<Option<runtime::quota::WorkspaceQuota>, RuntimeError> {
    let scenario = &plan.scenario;
    let root = &ctx.root;
    let err = |source| RuntimeError::Workspace {
        path: workspace.to_owned(),
        source,
    };
    if workspace.exists() {
        std::fs::remove_dir_all(workspace).map_err(err)?;
    }
    std::fs::create_dir_all(workspace).map_err(err)?;
    let quota = match ctx.profile.bounds.workspace_bytes() {
        Ok(bytes) => match runtime::quota::WorkspaceQuota::mount(workspace, bytes) {
            Ok(quota) => Some(quota),
            Err(e) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| crate::errln!("note: {e}; workspaces are not bounded"));
                None
            }
        },
        // Checked when the profile was loaded.
        Err(_) => None,
    };
    ci_env::prepare(workspace).map_err(err)?;
    if let Some(dir) = &scenario.workspace {
        let from = root.join(dir);
        let located = |source| RuntimeError::Workspace {
            path: from.clone(),
            source,
        };
        refuse_linked_source(root, dir).map_err(located)?;
        copy_dir(&from, workspace).map_err(located)?;
    }
    // A step run as another user (its own `user`, or its role's in the profile) writes to the
    // workspace and its DRONE_OUTPUT file as a pod's shared volume lets it (Kubernetes'
    // fsGroup): the two folders are writable by everyone.
    let other_user = scenario.steps.iter().any(|step| {
        step.user.is_some()
            || ctx
                .profile
                .roles
                .get(&step.role_for(&plan.builder))
                .is_some_and(|role| role.user.is_some())
    });
    if other_user {
        use std::os::unix::fs::PermissionsExt;
        for dir in [workspace.to_owned(), ci_env::outputs_dir(workspace)] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).map_err(
                |source| RuntimeError::Workspace {
                    path: dir.clone(),
                    source,
                },
            )?;
        }
    }
    Ok(quota)
}

/// A scenario's `workspace:` is a directory of the repository: neither it nor a directory on
/// the way to it may be a symlink (which could lead anywhere on the host).
fn refuse_linked_source(root: &Path, dir: &str) -> std::io::Result<()> {
    let mut here = root.to_owned();
    for component in Path::new(dir).components() {
        here.push(component);
        let meta = std::fs::symlink_metadata(&here)?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&here).unwrap_or_default();
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "workspace `{dir}`: {} is a symlink to {}; a scenario's workspace must be a \
                     directory of the repository",
                    here.strip_prefix(root).unwrap_or(&here).display(),
                    target.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Copies without following symlinks: one that leaves `from` is refused (see
/// [`oci::workspace::copy_tree`]).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    oci::workspace::copy_tree(from, to)
}
