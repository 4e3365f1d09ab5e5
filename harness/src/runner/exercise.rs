//! A plan's run between its workspace and its result, in named phases: [`bring_up`] the
//! environment and take the accounting's baseline, [`run_steps`] batch by batch (each followed
//! by an inventory reading and the captures due after it), [`check`] (the last captures, the
//! assertions and the full accounting). The runner decides the status from what this returns
//! and tears the environment down whatever happened.

use std::collections::BTreeMap;
use std::time::Instant;

use model::result::{AssertionOutcome, ScenarioResult, Status, StepRecord};
use oci::archive::Archives;
use runtime::profile::RoleSpec;
use runtime::ssh::SshKeys;
use runtime::{Environment, Services, REGISTRY_PORT};
use scenario::{substitute, Scenario, Step, When};

use super::captures::take_captures;
use super::services;
use super::{ms, RunContext};
use crate::accounting;
use crate::assertions::{self, Evidence, MissingCapture};
use crate::errors::RuntimeError;
use crate::plan::Plan;

/// What the checks build up while the steps run: the values placeholders stand for (registries,
/// captures), the archives read so far, and the captures that could not be taken.
struct Observed {
    vars: BTreeMap<String, String>,
    archives: Archives,
    missing: BTreeMap<String, MissingCapture>,
}

/// Brings the environment up, runs the steps, takes the captures and checks the assertions;
/// returns one group of assertion outcomes per scenario assertion, then the accounting's.
pub(super) async fn exercise(
    ctx: &RunContext,
    plan: &Plan,
    env: &mut Environment,
    result: &mut ScenarioResult,
    (slots, started): (Option<&tokio::sync::Semaphore>, Instant),
    ssh_keys: &SshKeys,
) -> Result<Vec<Vec<AssertionOutcome>>, RuntimeError> {
    let services = Services {
        registry: role(ctx, "registry"),
        // Resolved exactly when some step may use it (`runner::roles`).
        dind: result
            .images
            .contains_key("dind")
            .then(|| role(ctx, "dind")),
        base_image: role(ctx, "busybox"),
    };
    let own = services::own_services(ctx, &plan.scenario, ssh_keys);
    bring_up(
        env,
        (&services, &own),
        &plan.scenario,
        result,
        (slots, started),
    )
    .await?;
    let mut vars = plan_vars(&plan.scenario);
    vars.extend(services::vars(&plan.scenario, env, ssh_keys));
    let mut observed = Observed {
        vars,
        archives: Archives::new(env.workspace()),
        missing: BTreeMap::new(),
    };
    run_steps(ctx, plan, env, result, &mut observed).await?;
    ctx.note(plan, result.repetition, "captures and assertions");
    let checking = Instant::now();
    let by_assertion = check(plan, env, result, &mut observed).await;
    result.phases.checks_ms = ms(checking);
    Ok(by_assertion)
}

/// The environment up, then what the harness itself put into the registries and the daemon:
/// the accounting's baseline (nothing else can change them before the steps run). With slots,
/// the steps wait for one meanwhile: what the plan did before it got its slot ran beside other
/// plans, and only the rest of the bring-up counts on its critical path.
async fn bring_up(
    env: &mut Environment,
    (services, own): (&Services<'_>, &services::OwnServices<'_>),
    scenario: &Scenario,
    result: &mut ScenarioResult,
    (slots, started): (Option<&tokio::sync::Semaphore>, Instant),
) -> Result<(), RuntimeError> {
    let coming_up = Instant::now();
    let up = async {
        let up = env
            .up(
                services,
                &scenario.registries,
                &scenario.registry_auth,
                &scenario.registry_tls,
                &scenario.base_image_in,
            )
            .await;
        // The scenario's own services, SSH keys and base images, once the registries answer.
        let up = match up {
            Ok(()) => own.start(env).await,
            failed => failed,
        };
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
    result.phases.ahead_ms = slot_at.saturating_duration_since(started).as_millis() as u64;
    result.phases.environment_ms = up_at
        .saturating_duration_since(coming_up.max(slot_at))
        .as_millis() as u64;
    result.phases.environment = env.phases();
    up?;
    result.inventory.extend(baseline);
    // The baseline reading counts where it was on the plan's critical path: all of it without
    // a slot, what was left of it once the slot came.
    result.phases.inventory_ms += match slots {
        None => reading_ms,
        Some(_) => (up_at + std::time::Duration::from_millis(reading_ms))
            .saturating_duration_since(up_at.max(slot_at))
            .as_millis() as u64,
    };
    Ok(())
}

/// `${NAME}` for each of the scenario's registries (its address as the steps see it), and
/// `${nonce}`: 16 hex digits drawn for this run of the plan alone, so that what a step shows
/// with it (a line the build's RUN printed) cannot have come from another run or a cache.
fn plan_vars(scenario: &Scenario) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = scenario
        .registries
        .iter()
        .map(|name| (name.clone(), format!("{name}:{REGISTRY_PORT}")))
        .collect();
    let nonce = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    vars.insert(scenario::NONCE.to_owned(), nonce);
    vars
}

/// Runs the steps batch by batch: consecutive steps of the same parallel group run together;
/// after a failed step, only steps marked `when: always` still run. After each batch: the
/// inventory reading and the captures due after its steps.
async fn run_steps(
    ctx: &RunContext,
    plan: &Plan,
    env: &Environment,
    result: &mut ScenarioResult,
    observed: &mut Observed,
) -> Result<(), RuntimeError> {
    let scenario = &plan.scenario;
    let began = Instant::now();
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
        let running: Vec<&Step> = batch
            .iter()
            .filter(|step| !failed || step.when == When::Always)
            .collect();
        let records = run_batch(ctx, plan, env, result, &running, &observed.vars, began).await?;
        failed |= records.iter().any(|r| r.exit_code != Some(0));
        read_inventory(env, result, &records).await;
        result.steps.extend(records);
        capture_after(env, scenario, batch, result, observed).await;
    }
    Ok(())
}

/// Runs one batch's steps at once while the registries and DinD are watched: a service that
/// stops meanwhile makes the plan an Error naming it, whatever the steps did without it; so
/// does a step that failed while the host had no disk left.
async fn run_batch(
    ctx: &RunContext,
    plan: &Plan,
    env: &Environment,
    result: &mut ScenarioResult,
    steps: &[&Step],
    vars: &BTreeMap<String, String>,
    began: Instant,
) -> Result<Vec<StepRecord>, RuntimeError> {
    let Some(first) = steps.first() else {
        return Ok(Vec::new());
    };
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    ctx.note(
        plan,
        result.repetition,
        &format!("step {}", names.join(", ")),
    );
    let role_vars = role_vars(&plan.scenario, vars);
    let runs = steps.iter().map(|step| {
        let role_name = step.role_for(&plan.builder);
        let mut spec = role_spec(ctx, &role_name, &role_vars);
        step_over_role(step, &mut spec);
        if let Some(command) = &step.run {
            spec.entrypoint = Some(vec!["sh".into(), "-c".into()]);
            spec.args = vec![substitute(command, vars)];
        }
        let mut step_env = super::ci_env::variables(spec.workdir(), &step.name);
        step_env.extend(
            step.environment()
                .iter()
                .map(|(k, v)| (k.clone(), substitute(v, vars))),
        );
        async move {
            let started_ms = began.elapsed().as_millis() as u64;
            let mut record = env
                .run_step(
                    &step.name,
                    &role_name,
                    &spec,
                    &step_env,
                    runtime::StepBounds {
                        daemon: step.daemon,
                        timeout: step.timeout,
                        limits: runtime::Limits {
                            memory_bytes: step.resources.as_ref().and_then(|r| r.memory_bytes()),
                            millicores: step.resources.as_ref().and_then(|r| r.millicores()),
                            ..Default::default()
                        },
                    },
                )
                .await?;
            record.started_ms = started_ms;
            record.group = step.parallel.clone();
            Ok::<StepRecord, RuntimeError>(record)
        }
    });
    let running = Instant::now();
    let during = match &first.parallel {
        Some(group) => format!("parallel group {group}"),
        None => format!("step {}", first.name),
    };
    let records = env
        .while_services_run(&during, futures_util::future::try_join_all(runs))
        .await?;
    result.phases.steps_ms += ms(running);
    let failures: Vec<&StepRecord> = records.iter().filter(|r| r.exit_code != Some(0)).collect();
    if !failures.is_empty() {
        if let Some(detail) = runtime::out_of_disk(&env.disks().await, &failures) {
            // The steps' logs stay in the result: they show what ran out.
            result.steps.extend(records.iter().cloned());
            return Err(RuntimeError::OutOfDisk { during, detail });
        }
    }
    Ok(records)
}

/// Role environments may name the scenario's registries: `${registries}` (a comma list), and
/// each one by name.
fn role_vars(scenario: &Scenario, vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut role_vars: BTreeMap<String, String> = scenario
        .registries
        .iter()
        .filter_map(|name| Some((name.clone(), vars.get(name)?.clone())))
        .collect();
    role_vars.insert(
        "registries".into(),
        scenario
            .registries
            .iter()
            .map(|r| format!("{r}:{REGISTRY_PORT}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    role_vars
}

/// A role of the plan; the runner resolved every role the plan needs before this runs.
fn role<'a>(ctx: &'a RunContext, name: &str) -> &'a RoleSpec {
    ctx.profile.roles.get(name).expect("roles resolved above")
}

/// A role's spec with the placeholders of its environment filled in.
fn role_spec(ctx: &RunContext, name: &str, role_vars: &BTreeMap<String, String>) -> RoleSpec {
    let mut spec = role(ctx, name).clone();
    spec.env = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), substitute(v, role_vars)))
        .collect();
    spec
}

/// The step's own "Run as User", "Privileged", seccomp and CA settings win over its role's.
fn step_over_role(step: &Step, spec: &mut RoleSpec) {
    if let Some(user) = &step.user {
        spec.user = Some(user.clone());
    }
    if let Some(privileged) = step.privileged {
        spec.privileged = privileged;
    }
    if let Some(seccomp) = step.seccomp {
        spec.security_opt.retain(|o| !o.starts_with("seccomp"));
        if seccomp == scenario::Seccomp::Unconfined {
            spec.security_opt.push("seccomp=unconfined".into());
        }
    }
    if step.trust == scenario::TrustMode::None {
        spec.trust = Default::default();
    }
}

/// The registries and the daemon after a batch that ran: what the accounting checks.
async fn read_inventory(env: &Environment, result: &mut ScenarioResult, records: &[StepRecord]) {
    let Some(first) = records.first() else {
        return;
    };
    let after = match &first.group {
        Some(group) => format!("parallel group {group}"),
        None => format!("step {}", first.name),
    };
    let reading = Instant::now();
    result.inventory.push(accounting::read(env, after).await);
    result.phases.inventory_ms += ms(reading);
}

/// The captures due once one of the batch's steps has ended, before later steps change things;
/// one due after a step that did not run has nothing to look at (a Fail of what needs it).
async fn capture_after(
    env: &Environment,
    scenario: &Scenario,
    batch: &[Step],
    result: &mut ScenarioResult,
    observed: &mut Observed,
) {
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
        observed.missing.insert(
            name.clone(),
            MissingCapture {
                status: Status::Fail,
                reason: format!("step {after} did not run (an earlier step failed)"),
            },
        );
    }
    take_captures(
        env,
        &mut observed.archives,
        ran.into_iter(),
        &mut observed.vars,
        result,
        &mut observed.missing,
    )
    .await;
}

/// The captures taken at the end, then every assertion on the evidence (one group of outcomes
/// per scenario assertion, so a known discrepancy can name them), then the full accounting of
/// everything else the steps left behind, as a group of its own.
async fn check(
    plan: &Plan,
    env: &Environment,
    result: &mut ScenarioResult,
    observed: &mut Observed,
) -> Vec<Vec<AssertionOutcome>> {
    let scenario = &plan.scenario;
    let at_end = scenario
        .captures
        .iter()
        .filter(|(_, c)| c.after().is_none());
    take_captures(
        env,
        &mut observed.archives,
        at_end,
        &mut observed.vars,
        result,
        &mut observed.missing,
    )
    .await;
    let vars = &observed.vars;
    let mut daemon_images = BTreeMap::new();
    for reference in assertions::daemon_references(&scenario.assertions, vars) {
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
    let step_values = assertions::step_values(scenario, vars);
    let evidence = Evidence {
        step_values: &step_values,
        steps: &result.steps,
        registries: env.registries(),
        vars,
        missing_captures: &observed.missing,
        daemon_images: &daemon_images,
        registry_logs: &registry_logs,
        environment: Some(env),
    };
    let mut by_assertion = Vec::with_capacity(scenario.assertions.len() + 1);
    for assertion in &scenario.assertions {
        let outcomes = assertions::evaluate(
            std::slice::from_ref(assertion),
            &evidence,
            &mut observed.archives,
        )
        .await;
        by_assertion.push(outcomes);
    }
    by_assertion.push(accounting::account(scenario, vars, &result.inventory));
    result.assertions = by_assertion.iter().flatten().cloned().collect();
    by_assertion
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn step(settings: serde_json::Value) -> Step {
        let mut step = json!({"name": "build"});
        step.as_object_mut()
            .expect("an object")
            .extend(settings.as_object().expect("an object").clone());
        serde_json::from_value(step).expect("a step")
    }

    fn role() -> RoleSpec {
        serde_json::from_value(json!({
            "image": "builder",
            "privileged": true,
            "security_opt": ["seccomp=unconfined", "label=disable"],
            "trust": {"certs_d": ["/etc/containers/certs.d"]},
        }))
        .expect("a role")
    }

    #[test]
    fn a_step_without_settings_of_its_own_runs_as_its_role() {
        let mut spec = role();
        step_over_role(&step(json!({})), &mut spec);
        assert_eq!(spec.user, None);
        assert!(spec.privileged);
        assert_eq!(spec.security_opt, ["seccomp=unconfined", "label=disable"]);
        assert!(!spec.trust.certs_d.is_empty());
    }

    #[test]
    fn the_steps_user_privileges_seccomp_and_ca_win() {
        let mut spec = role();
        step_over_role(
            &step(
                json!({"user": "1000", "privileged": false, "seccomp": "default", "trust": "none"}),
            ),
            &mut spec,
        );
        assert_eq!(spec.user.as_deref(), Some("1000"));
        assert!(!spec.privileged);
        // The runtime's default profile: the role's seccomp option goes, the others stay.
        assert_eq!(spec.security_opt, ["label=disable"]);
        assert!(spec.trust.certs_d.is_empty());
    }

    #[test]
    fn seccomp_unconfined_replaces_the_roles_profile_once() {
        let mut spec = role();
        spec.security_opt = vec!["seccomp=/etc/profile.json".into()];
        step_over_role(&step(json!({"seccomp": "unconfined"})), &mut spec);
        assert_eq!(spec.security_opt, ["seccomp=unconfined"]);
    }
}
