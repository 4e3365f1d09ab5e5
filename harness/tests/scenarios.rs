//! One test per scenario × builder (`workflow::scenario::builder`), plus the mutant checks
//! (`mutants::...`): each really starts a registry, a DinD daemon and the plugin containers.
//!
//! Run with `cargo nextest run`. Choose images with `CONFORMANCE_PROFILE` (default `offline`)
//! and `CONFORMANCE_IMAGES=role=image,...`. Without a reachable Docker daemon every test fails
//! and names the bootstrap command: nothing here is ever skipped silently.

use harness::plan::{plans, Plan};
use harness::report;
use harness::result::{ScenarioResult, Status};
use harness::runner::{self, new_run_id};
use harness::runtime;
use harness::session::{self, ProfileChoice};
use libtest_mimic::{Arguments, Failed, Trial};

/// A mutant plugin and the assertions it must break — and only those.
struct Mutant {
    workflow: &'static str,
    scenario: &'static str,
    builder: &'static str,
    /// The role whose image plays the builder.
    played_by: &'static str,
    must_fail: &'static [&'static str],
}

const MUTANTS: &[Mutant] = &[Mutant {
    workflow: "build_only",
    scenario: "tar",
    builder: "buildx",
    played_by: "buildx-mutant-push",
    must_fail: &["no tags in registry for conformance/app"],
}];

fn main() {
    let args = Arguments::from_args();
    let root = session::repo_root();
    let mut trials = Vec::new();
    match plans(&root.join("scenarios")) {
        Ok(plans) => {
            for mutant in MUTANTS {
                let name = format!(
                    "{}::{}::{}",
                    mutant.workflow, mutant.scenario, mutant.builder
                );
                match plans.iter().find(|p| p.test_name == name) {
                    Some(plan) => {
                        let plan = plan.clone();
                        trials.push(Trial::test(
                            format!("mutants::{name}::{}", mutant.played_by),
                            move || run_mutant(plan, mutant),
                        ));
                    }
                    None => trials.push(Trial::test(
                        format!("mutants::{name}::{}", mutant.played_by),
                        move || Err(format!("no scenario plan named {name}").into()),
                    )),
                }
            }
            for plan in plans {
                // A combination the docs declare unsupported is not run: nextest counts it as
                // skipped, and `harness run` reports it as Skip with the scenario's reason.
                let skipped = plan.skip.is_some();
                trials.push(
                    Trial::test(plan.test_name.clone(), move || run_conformance(plan))
                        .with_kind("scenario")
                        .with_ignored_flag(skipped),
                );
            }
        }
        Err(e) => trials.push(Trial::test("scenarios::load", move || {
            Err(e.to_string().into())
        })),
    }
    libtest_mimic::run(&args, trials).exit();
}

fn run(
    plan: &Plan,
    choice: ProfileChoice,
    played_by: Option<(&str, &str)>,
) -> Result<ScenarioResult, Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let run_id = std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| new_run_id());
        let mut ctx = session::open(&choice, run_id)
            .await
            .map_err(|e| Failed::from(format!("ERROR: {e}")))?;
        if let Some((role, by)) = played_by {
            ctx.profile = ctx
                .profile
                .clone()
                .with_role_played_by(role, by)
                .map_err(|e| Failed::from(e.to_string()))?;
        }
        // nextest sends SIGTERM when a test overruns; remove this scenario's containers then.
        let result = tokio::select! {
            result = runner::run_plan(&ctx, plan) => result,
            signal = session::stopped() => {
                let swept = runtime::sweep_scenario(&ctx.docker, &ctx.run_id, &plan.test_name).await;
                return Err(Failed::from(format!("ERROR: stopped by {signal} before the scenario finished; cleanup: {swept:?}")));
            }
        };
        let report_dir = match played_by {
            Some(_) => ctx.report_dir.join("mutants"),
            None => ctx.report_dir.clone(),
        };
        report::write_result(&report_dir, &result).map_err(|e| Failed::from(e.to_string()))?;
        Ok(result)
    })
}

fn run_conformance(plan: Plan) -> Result<(), Failed> {
    let result = run(&plan, ProfileChoice::from_env(), None)?;
    print!("{}", result.explain());
    // Pass, or a Fail that is exactly the builder's known discrepancy (the result keeps Fail).
    result
        .as_expected()
        .map_err(|_| Failed::from(result.explain()))
}

/// The scenario must Fail — not Error — on exactly the assertions the mutation breaks.
fn run_mutant(plan: Plan, mutant: &Mutant) -> Result<(), Failed> {
    let result = run(
        &plan,
        ProfileChoice::from_env(),
        Some((mutant.builder, mutant.played_by)),
    )?;
    print!("{}", result.explain());
    let failed: Vec<&str> = result
        .assertions
        .iter()
        .filter(|a| a.status != Status::Pass)
        .map(|a| a.assertion.as_str())
        .collect();
    if result.status == Status::Fail && failed == mutant.must_fail {
        Ok(())
    } else {
        Err(format!(
            "mutant {} should make {} fail exactly on {:?}; got status {} with non-passing assertions {:?}\n{}",
            mutant.played_by,
            plan.test_name,
            mutant.must_fail,
            result.status,
            failed,
            result.explain()
        )
        .into())
    }
}
