//! One test per scenario × builder (`workflow::scenario::builder`), plus the mutant checks
//! (`mutants::...`): each really starts a registry, a DinD daemon and the plugin containers.
//!
//! Run with `cargo nextest run`. Choose images with `CONFORMANCE_PROFILE` (default `offline`)
//! and `CONFORMANCE_IMAGES=role=image,...`. Without a reachable Docker daemon every test fails
//! and names the bootstrap command: nothing here is ever skipped silently.

use std::collections::BTreeMap;

use harness::compare::{render, Comparison, Settings};
use harness::matrix;
use harness::mutants::{self, Mutant, Verdict};
use harness::plan::{plans, Plan};
use harness::release;
use harness::report;
use harness::result::ScenarioResult;
use harness::runner::{self, new_run_id};
use harness::session::{self, ProfileChoice};
use harness::stop;
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
    for case in RELEASE_CASES {
        trials.push(
            Trial::test(format!("release_validation::{}", case.name), move || {
                validate_release(case)
            })
            .with_kind("release"),
        );
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
        let _signals = stop::listen();
        let run_id = std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| new_run_id());
        let mut ctx = session::open(&choice, run_id)
            .await
            .map_err(|e| Failed::from(format!("ERROR: {e}")))?;
        if let Some(mutant) = mutant {
            ctx = mutants::context_for(&ctx, mutant).map_err(|e| Failed::from(e.to_string()))?;
        }
        // nextest sends SIGTERM when a test overruns (SIGKILL after the grace period): the plan
        // stops creating and tears down, then everything this process labelled is swept.
        let result = stop::guarded(&ctx.docker, &ctx.run_id, runner::run_plan(&ctx, plan))
            .await
            .map_err(|stopped| Failed::from(format!("ERROR: {stopped}")))?;
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

/// A release-validation case: the reference buildx against image B, in one plan, three times.
struct ReleaseCase {
    name: &'static str,
    /// Image B; `None`: the reference image itself (A against A).
    image_b: Option<&'static str>,
    check: fn(&Comparison) -> Result<(), String>,
}

const RELEASE_PLAN: &str = "build_and_push::push::buildx";

const RELEASE_CASES: &[ReleaseCase] = &[
    ReleaseCase {
        name: "same_image_is_no_change",
        image_b: None,
        check: |c| {
            let v = &c.verdict;
            let quiet = v.status_regressions == 0
                && v.timing_regressions == 0
                && v.observation_changes == 0
                && !v.fails;
            quiet
                .then_some(())
                .ok_or_else(|| "A against itself must show no change".into())
        },
    },
    ReleaseCase {
        name: "broken_release_is_a_regression",
        image_b: Some("conformance-offline/mutant-buildx-extra-tag:offline"),
        check: |c| {
            let extra_tag_seen = c.to_json().contains("conformance/app:extra");
            (c.verdict.status_regressions == 1 && c.verdict.fails && extra_tag_seen)
                .then_some(())
                .ok_or_else(|| {
                    "the extra-tag release must be a status regression naming the tag".into()
                })
        },
    },
    ReleaseCase {
        name: "slower_release_is_a_timing_regression",
        image_b: Some("conformance-offline/release-buildx-slower:offline"),
        check: |c| {
            let v = &c.verdict;
            (v.status_regressions == 0 && v.timing_regressions == 1 && v.fails)
                .then_some(())
                .ok_or_else(|| "the 4 s slower release must be a timing regression only".into())
        },
    },
];

fn validate_release(case: &ReleaseCase) -> Result<(), Failed> {
    let root = session::repo_root();
    let all = plans(&root.join("scenarios")).map_err(|e| Failed::from(e.to_string()))?;
    let plan: Vec<Plan> = all
        .into_iter()
        .filter(|p| p.test_name == RELEASE_PLAN)
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let comparison = rt.block_on(async {
        let _signals = stop::listen();
        let run_id = format!("{}-release-{}", new_run_id(), case.name);
        let ctx = session::open(&ProfileChoice::from_env(), run_id)
            .await
            .map_err(|e| Failed::from(format!("ERROR: {e}")))?;
        let image_a = ctx.profile.roles["buildx"].image.clone();
        let candidates = release::Candidates {
            role: "buildx".into(),
            image_b: case.image_b.map_or_else(|| image_a.clone(), str::to_owned),
            image_a,
        };
        let options = matrix::Options {
            jobs: 1,
            repeat: 3,
            retry_errors: 0,
        };
        // The machine is noisy: only a difference of a second or more counts as timing.
        let settings = Settings {
            min_delta_ms: 1000,
            ..Settings::default()
        };
        let work = release::validate(&ctx, &plan, &candidates, options, &settings, |_| {});
        stop::guarded(&ctx.docker, &ctx.run_id, work)
            .await
            .map_err(|stopped| Failed::from(format!("ERROR: {stopped}")))?
            .map_err(|e| Failed::from(format!("ERROR: {e}")))
    })?;
    let table = render::terminal(&comparison);
    print!("{table}");
    (case.check)(&comparison).map_err(|e| Failed::from(format!("{e}\n{table}")))
}
