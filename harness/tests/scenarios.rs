//! One test per scenario × builder (`workflow::scenario::builder`), plus the mutant checks
//! (`mutants::...`): each really starts a registry, a DinD daemon and the plugin containers.
//!
//! Run with `cargo nextest run`. Choose images with `CONFORMANCE_PROFILE` (default `offline`)
//! and `CONFORMANCE_IMAGES=role=image,...`. Without a reachable Docker daemon every test fails
//! and names the bootstrap command: nothing here is ever skipped silently.

use std::collections::BTreeMap;

use harness::mutants::{self, Mutant, Verdict};
use harness::plan::{plans, Plan};
use harness::report;
use harness::result::ScenarioResult;
use harness::runner::{self, new_run_id};
use harness::runtime;
use harness::session::{self, ProfileChoice};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let root = session::repo_root();
    let mut trials = Vec::new();
    match plans(&root.join("scenarios")) {
        Ok(plans) => {
            match mutants::discover(&root) {
                Ok(found) => {
                    for mutant in found {
                        let name = format!("mutants::{}", mutant.name);
                        let plans = plans.clone();
                        trials.push(
                            Trial::test(name, move || run_mutant(&plans, &mutant))
                                .with_kind("mutant"),
                        );
                    }
                }
                Err(e) => trials.push(Trial::test("mutants::load", move || {
                    Err(e.to_string().into())
                })),
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
    mutant: Option<&Mutant>,
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
        if let Some(mutant) = mutant {
            ctx = mutants::context_for(&ctx, mutant).map_err(|e| Failed::from(e.to_string()))?;
        }
        // nextest sends SIGTERM when a test overruns; remove this scenario's containers then.
        let result = tokio::select! {
            result = runner::run_plan(&ctx, plan) => result,
            signal = session::stopped() => {
                let swept = runtime::sweep_scenario(&ctx.docker, &ctx.run_id, &plan.test_name).await;
                return Err(Failed::from(format!("ERROR: stopped by {signal} before the scenario finished; cleanup: {swept:?}")));
            }
        };
        report::write_result(&ctx.report_dir, &result).map_err(|e| Failed::from(e.to_string()))?;
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

/// The mutant must be caught where its description says: each `caught_by` plan, run with the
/// mutant in its role, Fails (not Errors) on an assertion containing the given text.
fn run_mutant(plans: &[Plan], mutant: &Mutant) -> Result<(), Failed> {
    let mut verdicts = BTreeMap::new();
    let mut explained = String::new();
    for catch in &mutant.spec.caught_by {
        let Some(plan) = mutant
            .plans(plans)
            .into_iter()
            .find(|p| p.test_name == catch.plan)
        else {
            continue;
        };
        let result = run(plan, ProfileChoice::from_env(), Some(mutant))?;
        explained.push_str(&result.explain());
        verdicts.insert(plan.test_name.clone(), Verdict::of(&result));
    }
    print!("{explained}");
    mutants::check_caught(mutant, &verdicts).map_err(|e| Failed::from(format!("{e}\n{explained}")))
}
