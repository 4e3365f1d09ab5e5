//! One test per scenario × builder (`workflow::scenario::builder`), plus the mutant checks
//! (`mutants::...`): each really starts a registry, a DinD daemon and the plugin containers.
//!
//! Run with `cargo nextest run`. Choose images with `CONFORMANCE_PROFILE` (default `offline`)
//! and `CONFORMANCE_IMAGES=role=image,...`. Without a reachable Docker daemon every test fails
//! and names the bootstrap command: nothing here is ever skipped silently.

use std::collections::BTreeMap;

use harness::matrix;
use harness::mutants::{self, Mutant, Verdict};
use harness::plan::{plans, Plan};
use harness::release::{self, AnswerKind, Validation};
use harness::runner::{self, new_run_id};
use harness::session::{self, ProfileChoice};
use libtest_mimic::{Arguments, Failed, Trial};
use model::result::ScenarioResult;
use report::compare::{render, Settings};
use runtime::stop;

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

/// A release-validation case: the reference buildx against image B, in one plan, as many times
/// as `validate-release` runs it unless told (the fewest repetitions that decide, plus one).
struct ReleaseCase {
    name: &'static str,
    /// Image B, a patched plugin the offline image script builds (kind, name: `mutant`,
    /// `buildx-extra-tag`); `None`: the reference image itself under a second tag (A against A).
    image_b: Option<(&'static str, &'static str)>,
    /// Validations in a row, each checked.
    times: u32,
    /// Keep one core busy while validating (a machine that is not quiet).
    busy_core: bool,
    /// Run A a second time to calibrate the noise floors (`--calibrate`).
    calibrate: bool,
    check: fn(&Validation) -> Result<(), String>,
}

const RELEASE_PLAN: &str = "build_and_push::push::buildx";

/// The reference image under a tag of its own (the same image id, another name), carrying the
/// reference image's recipe key: another checkout's test never moves it.
fn same_image_tag(image_a: &str) -> String {
    let key = image_a.rsplit_once(":offline-").map_or("", |(_, key)| key);
    format!("conformance-offline/plugin-buildx:same-image-{key}")
}

const RELEASE_CASES: &[ReleaseCase] = &[
    ReleaseCase {
        name: "same_image_may_replace_three_times_on_a_busy_machine",
        image_b: None,
        times: 3,
        busy_core: true,
        calibrate: false,
        check: |v| {
            let c = &v.comparison.verdict;
            let quiet = v.answer.kind == AnswerKind::MayReplace
                && c.status_regressions == 0
                && c.timing_regressions == 0
                && c.observation_changes == 0
                && !c.fails;
            quiet.then_some(()).ok_or_else(|| {
                format!(
                    "A against itself must be \"may replace\": {}",
                    v.answer.line
                )
            })
        },
    },
    ReleaseCase {
        name: "broken_release_is_a_status_regression_with_calibrated_noise",
        image_b: Some(("mutant", "buildx-extra-tag")),
        times: 1,
        busy_core: false,
        calibrate: true,
        check: |v| {
            let c = &v.comparison;
            let extra_tag_seen = c.to_json().contains("conformance/app:extra");
            // A against A again: a noise floor for every timing, shown next to it.
            let calibrated = v.calibration.is_some()
                && c.method.calibration.is_some()
                && c.plans
                    .iter()
                    .flat_map(|p| &p.timings)
                    .all(|t| t.noise.is_some());
            (v.answer.kind == AnswerKind::MayNotReplace
                && calibrated
                && c.verdict.status_regressions == 1
                && c.verdict.fails
                && extra_tag_seen
                && v.answer.line.contains(RELEASE_PLAN))
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "the extra-tag release must be a status regression naming the tag, with noise floors: {}",
                    v.answer.line
                )
            })
        },
    },
    ReleaseCase {
        name: "slower_release_is_a_timing_regression_naming_the_step",
        image_b: Some(("release", "buildx-slower")),
        times: 1,
        busy_core: false,
        calibrate: false,
        check: |v| {
            let c = &v.comparison.verdict;
            let step_named = v
                .answer
                .line
                .contains(&format!("{RELEASE_PLAN} step build-and-push"));
            (v.answer.kind == AnswerKind::MayNotReplace
                && c.status_regressions == 0
                && c.timing_regressions == 1
                && c.fails
                && step_named)
                .then_some(())
                .ok_or_else(|| {
                    format!(
                        "the 4 s slower release must be a timing regression of step build-and-push only: {}",
                        v.answer.line
                    )
                })
        },
    },
];

/// Spins one thread until dropped: one of the machine's cores kept busy.
struct BusyCore(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl BusyCore {
    fn start() -> BusyCore {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut x = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        });
        BusyCore(stop)
    }
}

impl Drop for BusyCore {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

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
    let _busy = case.busy_core.then(BusyCore::start);
    let mut out = String::new();
    for time in 1..=case.times {
        let validation = rt.block_on(async {
            let _signals = stop::listen();
            let run_id = format!("{}-release-{}", new_run_id(), case.name);
            let ctx = session::open(&ProfileChoice::from_env(), run_id)
                .await
                .map_err(|e| Failed::from(format!("ERROR: {e}")))?;
            let image_a = ctx.profile.roles["buildx"].image.clone();
            // This checkout's images: keyed names another checkout's build never moves.
            let image_b = match case.image_b {
                Some((kind, name)) => harness::mutants::checkout_image(&ctx, kind, name),
                None => {
                    let same = same_image_tag(&image_a);
                    tag(&image_a, &same)?;
                    same
                }
            };
            let candidates = release::Candidates {
                role: "buildx".into(),
                image_a,
                image_b,
            };
            let settings = Settings::default();
            let plans: Vec<&Plan> = plan.iter().collect();
            let options = matrix::Options {
                jobs: 2,
                repeat: matrix::recommended_repeat(&plans, &settings),
                retry_errors: 0,
            };
            let work = release::validate(
                &ctx,
                &plan,
                &candidates,
                options,
                &settings,
                if case.calibrate {
                    release::Calibrate::Run
                } else {
                    release::Calibrate::No
                },
                |_| {},
            );
            stop::guarded(&ctx.docker, &ctx.run_id, work)
                .await
                .map_err(|stopped| Failed::from(format!("ERROR: {stopped}")))?
                .map_err(|e| Failed::from(format!("ERROR: {e}")))
        })?;
        let table = render::terminal(&validation.comparison);
        out.push_str(&format!(
            "validation {time} of {}:\n{table}{}\n",
            case.times, validation.answer.line
        ));
        (case.check)(&validation).map_err(|e| Failed::from(format!("{e}\n{out}")))?;
    }
    print!("{out}");
    Ok(())
}

/// `docker tag SOURCE TARGET`.
fn tag(source: &str, target: &str) -> Result<(), Failed> {
    let status = std::process::Command::new("docker")
        .args(["tag", source, target])
        .status()
        .map_err(|e| Failed::from(format!("ERROR: docker tag: {e}")))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| Failed::from(format!("ERROR: docker tag {source} {target}: {status}")))
}
