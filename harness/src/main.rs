//! `harness`: the command-line face of the conformance harness.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use harness::matrix;
use harness::plan::{plans, Plan};
use harness::progress::{self, Progress};
use harness::runner::new_run_id;
use harness::session::{self, ProfileChoice, SessionError};
use harness::{errln, out, outln};
use model::result::ScenarioResult;
use model::result::Tally;
use report::runs::Run;
use runtime::stop::{self, Interrupted};
use scenario::Scenario;

#[derive(Parser)]
#[command(
    name = "harness",
    about = "End-to-end conformance harness for container-image build plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ProfileArgs {
    /// Image profile: `offline` (default: built locally, never pulls), `upstream`, or a file.
    #[arg(long, default_value = "offline")]
    profile: String,
    /// Point a role at another image, e.g. `--image buildx=plugins/buildx:1.3.24` (repeatable).
    #[arg(long = "image", value_name = "ROLE=IMAGE")]
    images: Vec<String>,
}

impl ProfileArgs {
    fn choice(&self) -> ProfileChoice {
        ProfileChoice {
            profile: self.profile.clone(),
            overrides: self.images.clone(),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run every scenario × builder (or those whose name contains FILTER); reports go to
    /// reports/<run-id>/.
    Run {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Only plans whose name contains this text, e.g. `build_only` or `::buildx`.
        filter: Option<String>,
        /// Plans run at once (each a registry, a DinD daemon and plugin containers).
        #[arg(long, env = "CONFORMANCE_JOBS", default_value_t = 2)]
        jobs: usize,
        /// Run each plan N times, interleaved; results keep every repetition.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Run a plan that ended in Error (infrastructure) again, at most N times; a Fail is
        /// never retried.
        #[arg(long, default_value_t = 0)]
        retry_errors: u32,
        /// Name the run (letters, digits, `.`, `_`, `-`; default: the time and a random suffix):
        /// its labels and reports/<ID>/.
        #[arg(long, value_name = "ID", value_parser = run_id)]
        run_id: Option<String>,
    },
    /// Run each mutant plugin (fixtures/mutants) in the plans of its role and print the kill
    /// matrix: which assertion caught which mutant, and the sensitivity score.
    Mutants {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Only mutants whose name contains this text, e.g. `buildx`.
        filter: Option<String>,
        /// Plans run at once (each a registry, a DinD daemon and plugin containers).
        #[arg(long, env = "CONFORMANCE_JOBS", default_value_t = 2)]
        jobs: usize,
    },
    /// May IMAGE_B replace IMAGE_A in ROLE? Runs the role's plans with A and with B on the
    /// chosen profile, alternating A B A B, then compares the two runs.
    ValidateRelease {
        #[command(flatten)]
        profile: ProfileArgs,
        /// The role, e.g. `buildx`, `kaniko`, `docker-ecr`.
        role: String,
        image_a: String,
        image_b: String,
        /// Also run A a second time (A against A) to measure this machine's noise floor per
        /// step; the decision never counts a change below it (`calibration.json`).
        #[arg(long)]
        calibrate: bool,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        judge: JudgeArgs,
    },
    /// Nightly regression: the whole matrix with repeats (Errors retried, Fails never), compared
    /// with a stored baseline; JUnit and reports kept in reports/<run-id>/.
    Nightly {
        #[command(flatten)]
        profile: ProfileArgs,
        /// The baseline file to compare with (and, with --update-baseline, to replace).
        #[arg(long, default_value = "reports/baseline.json")]
        baseline: PathBuf,
        /// Keep this run as the new baseline.
        #[arg(long)]
        update_baseline: bool,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        judge: JudgeArgs,
    },
    /// List the plans (scenario × builder).
    List,
    /// Check scenario files (default: every file under scenarios/).
    Validate { files: Vec<PathBuf> },
    /// Print the JSON Schema of scenario files (committed as scenarios/scenario.schema.json).
    Schema,
    /// Remove the containers, networks and volumes left by harness processes that are gone
    /// (same host, pid no longer running); runs still going on are left alone.
    Sweep {
        /// Remove this run's resources, whether its process runs or not.
        #[arg(long, value_name = "ID", conflicts_with = "all")]
        run: Option<String>,
        /// Remove everything the harness labelled, including runs still going on.
        #[arg(long)]
        all: bool,
        /// Only resources also carrying this label (`KEY=VALUE`, repeatable).
        #[arg(long = "label", value_name = "KEY=VALUE", conflicts_with_all = ["run", "all"])]
        labels: Vec<String>,
    },
    /// Build (or load from cache) the profile's images.
    Images {
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Where the plan time of finished runs went: harness overhead share and each phase's
    /// median (runs given together are summed up together, e.g. a benchmark's repetitions).
    Timings {
        /// Run directories (reports/<run-id>/) or baseline files.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// The table's title.
        #[arg(long, default_value = "plans")]
        title: String,
    },
    /// Write report.html (self-contained) and summary.md from finished runs (several: merged),
    /// and compare.html from a `harness compare` JSON.
    Report {
        /// Run directories (reports/<run-id>/) or baseline files.
        #[arg(required = true, value_name = "RUN_DIR")]
        runs: Vec<PathBuf>,
        /// A comparison written by `harness compare`, rendered as compare.html.
        #[arg(long, value_name = "COMPARE_JSON")]
        compare: Option<PathBuf>,
        /// Where to write (default: the first RUN_DIR).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Compare two runs per plan: status changes, what the plugins did, timings against noise.
    /// Exits 1 on a status or timing regression, 2 when a run cannot be read.
    Compare(CompareArgs),
}

#[derive(clap::Args)]
struct CompareArgs {
    /// The reference: a run directory (reports/<run-id>/) or a baseline file.
    base: PathBuf,
    /// The run to judge, likewise.
    new: PathBuf,
    #[command(flatten)]
    judge: JudgeArgs,
    /// Also write the comparison as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Also write the comparison as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// How two runs are judged against each other (the decision: `report::compare::decide`).
#[derive(clap::Args)]
struct JudgeArgs {
    /// The chance, over the whole comparison, that an unchanged NEW is called a timing
    /// regression (0.01: 1 %).
    #[arg(long, default_value_t = 0.01)]
    false_alarm_rate: f64,
    /// Slowdowns smaller than this ratio never count, however sure (1.05: 5 %).
    #[arg(long, default_value_t = 1.05)]
    min_ratio: f64,
    /// Changes of at most this many ms never count, however sure.
    #[arg(long, default_value_t = 50)]
    min_delta_ms: u64,
    /// A slowdown of at least this ratio seen but not confirmed is inconclusive (1.2: 20 %).
    #[arg(long, default_value_t = 1.2)]
    detect_ratio: f64,
    /// Noise floors measured by a calibration (`validate-release --calibrate` writes
    /// `calibration.json`; a nightly's first run writes one next to its baseline).
    #[arg(long, value_name = "FILE")]
    calibration: Option<PathBuf>,
    /// Report timing regressions without failing.
    #[arg(long)]
    no_fail_on_timing: bool,
    /// Report status regressions without failing.
    #[arg(long)]
    no_fail_on_status: bool,
}

impl JudgeArgs {
    fn settings(&self) -> Result<report::compare::Settings, String> {
        let rate = self.false_alarm_rate;
        if !(rate > 0.0 && rate < 1.0) {
            return Err(format!(
                "--false-alarm-rate {rate} is not a probability between 0 and 1 (0.01: 1 %)"
            ));
        }
        for (flag, ratio) in [
            ("--min-ratio", self.min_ratio),
            ("--detect-ratio", self.detect_ratio),
        ] {
            if !(ratio >= 1.0 && ratio.is_finite()) {
                return Err(format!(
                    "{flag} {ratio} is not a ratio of at least 1 (1.2: 20 % slower)"
                ));
            }
        }
        Ok(report::compare::Settings {
            false_alarm_rate: rate,
            min_ratio: self.min_ratio,
            min_delta_ms: self.min_delta_ms,
            detect_ratio: self.detect_ratio,
            fail_on_status: !self.no_fail_on_status,
            fail_on_timing: !self.no_fail_on_timing,
        })
    }

    /// The calibration file given, read.
    fn calibration(
        &self,
    ) -> Result<Option<report::compare::Calibration>, Box<dyn std::error::Error>> {
        Ok(match &self.calibration {
            Some(path) => Some(report::compare::Calibration::load(path)?),
            None => None,
        })
    }
}

/// How a matrix of plans is run.
#[derive(clap::Args)]
struct RunArgs {
    /// Only plans whose name contains this text, e.g. `build_only` or `::buildx`.
    #[arg(long)]
    filter: Option<String>,
    /// Plans run at once (each a registry, a DinD daemon and plugin containers).
    #[arg(long, env = "CONFORMANCE_JOBS", default_value_t = 2)]
    jobs: usize,
    /// Run each plan N times; results keep every repetition [default: enough for the timing
    /// comparison to decide: the fewest repetitions at which the plans' timing comparisons can
    /// be decided at the false-alarm rate, plus 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: Option<u32>,
    /// Run a plan that ended in Error (infrastructure) again, at most N times; a Fail is never
    /// retried.
    #[arg(long, default_value_t = 1)]
    retry_errors: u32,
}

impl RunArgs {
    /// The options, with `repeat` when --repeat was not given.
    fn options_or(&self, repeat: u32) -> matrix::Options {
        matrix::Options {
            jobs: self.jobs.max(1),
            repeat: self.repeat.unwrap_or(repeat),
            retry_errors: self.retry_errors,
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {e}");
            match e.downcast_ref::<SessionError>() {
                Some(SessionError::Stopped(_)) => ExitCode::from(130),
                _ => ExitCode::from(2),
            }
        }
    }
}

/// A run id is a directory name and a label value.
fn run_id(value: &str) -> Result<String, String> {
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !value.is_empty() && !value.starts_with('.') && value.chars().all(fine) {
        Ok(value.to_owned())
    } else {
        Err("use letters, digits, `.`, `_` and `-` (not first: `.`)".into())
    }
}

async fn dispatch(command: Command) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let root = session::repo_root();
    match command {
        Command::List => {
            for plan in plans(&root.join("scenarios"))? {
                outln!("{}", plan.test_name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { files } => {
            let files = if files.is_empty() {
                scenario::discover(&root.join("scenarios"))?
                    .into_iter()
                    .map(|f| f.path)
                    .collect()
            } else {
                files
            };
            let mut bad = 0;
            for file in &files {
                match Scenario::load(file) {
                    Ok(_) => outln!("ok    {}", file.display()),
                    Err(e) => {
                        bad += 1;
                        errln!("{:?}", miette::Report::new(e));
                    }
                }
            }
            outln!("{} file(s), {bad} invalid", files.len());
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Schema => {
            out!("{}", scenario::json_schema());
            Ok(ExitCode::SUCCESS)
        }
        Command::Sweep { run, all, labels } => sweep(run, all, labels).await,
        Command::Images { profile } => {
            session::open(&profile.choice(), new_run_id()).await?;
            outln!("images for profile `{}` are present", profile.profile);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            profile,
            filter,
            jobs,
            repeat,
            retry_errors,
            run_id,
        } => {
            let options = matrix::Options {
                jobs: jobs.max(1),
                repeat,
                retry_errors,
            };
            let run_id = run_id.unwrap_or_else(new_run_id);
            let _signals = stop::listen();
            Ok(run_matrix(profile, filter, options, run_id).await?.0)
        }
        Command::Mutants {
            profile,
            filter,
            jobs,
        } => mutants(profile, filter, jobs).await,
        Command::ValidateRelease {
            profile,
            role,
            image_a,
            image_b,
            calibrate,
            run,
            judge,
        } => {
            let candidates = harness::release::Candidates {
                role,
                image_a,
                image_b,
            };
            validate_release(profile, candidates, calibrate, run, judge).await
        }
        Command::Nightly {
            profile,
            baseline,
            update_baseline,
            run,
            judge,
        } => nightly(profile, baseline, update_baseline, run, judge).await,
        Command::Compare(args) => compare(args),
        Command::Report { runs, compare, out } => reports(runs, compare, out),
        Command::Timings { runs, title } => timings(runs, title),
    }
}

fn timings(runs: Vec<PathBuf>, title: String) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let runs = runs
        .iter()
        .map(|path| Run::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let results = runs.iter().flat_map(|run| &run.results);
    out!("{}", report::timings::Timings::of(results).table(&title));
    Ok(ExitCode::SUCCESS)
}

fn compare(args: CompareArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    use report::compare::{self, render};
    let settings = args.judge.settings()?;
    let base = report::runs::Run::load(&args.base)?;
    let new = report::runs::Run::load(&args.new)?;
    let calibration = args.judge.calibration()?;
    let comparison = compare::compare_calibrated(&[base], &[new], &settings, calibration.as_ref());
    out!("{}", render::terminal(&comparison));
    if let Some(path) = &args.markdown {
        compare::write(path, &render::markdown(&comparison))?;
    }
    if let Some(path) = &args.json {
        compare::write(path, &comparison.to_json())?;
    }
    Ok(ExitCode::from(comparison.exit_code()))
}

async fn validate_release(
    profile: ProfileArgs,
    candidates: harness::release::Candidates,
    calibrate: bool,
    args: RunArgs,
    judge: JudgeArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let settings = judge.settings()?;
    let root = session::repo_root();
    let selected = select(plans(&root.join("scenarios"))?, args.filter.as_deref())?;
    let role_plans: Vec<&harness::plan::Plan> = selected
        .iter()
        .filter(|p| p.runs_role(&candidates.role))
        .collect();
    if role_plans.is_empty() {
        return Err(format!("no plan runs the role `{}`", candidates.role).into());
    }
    let options = args.options_or(matrix::recommended_repeat(&role_plans, &settings));
    let run_id = new_run_id();
    let _signals = stop::listen();
    let ctx = session::open(&profile.choice(), run_id.clone()).await?;
    outln!(
        "run {run_id}: {} plan(s) of role `{}` × {} with A = {} and B = {}{}",
        role_plans.len(),
        candidates.role,
        options.repeat,
        candidates.image_a,
        candidates.image_b,
        if calibrate {
            ", and A again (calibration)"
        } else {
            ""
        }
    );
    let work = harness::release::validate(
        &ctx,
        &selected,
        &candidates,
        options,
        &settings,
        calibrate,
        |r| outln!("{}", result_line(r)),
    );
    let validation = match stop::guarded(&ctx.docker, &ctx.run_id, work).await {
        Ok(validation) => validation?,
        Err(stopped) => return Ok(interrupted(stopped)),
    };
    out!(
        "{}",
        report::compare::render::terminal(&validation.comparison)
    );
    if let Some((where_, noise)) = validation.calibration.as_ref().and_then(|c| c.widest()) {
        outln!("calibration: widest noise floor ×{noise:.2} ({where_})");
    }
    outln!("{}", validation.answer.line);
    outln!(
        "reports in {} (report.html, compare.html, compare.md; results in A/ and B/)",
        ctx.report_dir.display()
    );
    Ok(ExitCode::from(validation.answer.exit_code()))
}

async fn nightly(
    profile: ProfileArgs,
    baseline: PathBuf,
    update_baseline: bool,
    args: RunArgs,
    judge: JudgeArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let settings = judge.settings()?;
    // Enough repetitions for the comparison with the baseline to decide timings.
    let root = session::repo_root();
    let selected = select(plans(&root.join("scenarios"))?, args.filter.as_deref())?;
    let repeat = matrix::recommended_repeat(&selected.iter().collect::<Vec<_>>(), &settings);
    let _signals = stop::listen();
    let (code, report_dir) = run_matrix(
        profile,
        args.filter.clone(),
        args.options_or(repeat),
        new_run_id(),
    )
    .await?;
    if code == ExitCode::from(130) {
        return Ok(code);
    }
    let this = report::runs::Run::load(&report_dir)?;
    let mut failed = code != ExitCode::SUCCESS;
    // The baseline's own repetitions, odd against even, are its calibration (kept beside it).
    let calibration_file = baseline.with_extension("calibration.json");
    if baseline.exists() {
        let base = report::runs::Run::load(&baseline)?;
        let calibration = match judge.calibration()? {
            Some(c) => Some(c),
            None if calibration_file.exists() => {
                Some(report::compare::Calibration::load(&calibration_file)?)
            }
            None => None,
        };
        let comparison = report::compare::compare_calibrated(
            &[base],
            std::slice::from_ref(&this),
            &settings,
            calibration.as_ref(),
        );
        out!("{}", report::compare::render::terminal(&comparison));
        report::write_comparison(&report_dir, &comparison, None)?;
        failed |= comparison.verdict.fails;
    } else {
        outln!(
            "no baseline at {} yet: nothing to compare with (--update-baseline keeps this run as one)",
            baseline.display()
        );
    }
    if update_baseline {
        this.save(&baseline)?;
        report::compare::Calibration::of_repetitions(&this).save(&calibration_file)?;
        outln!(
            "baseline {} now holds run {} (its repetitions' noise floors: {})",
            baseline.display(),
            this.id,
            calibration_file.display()
        );
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Ctrl-C or SIGTERM: the plans stopped and tore down, and this process's containers,
/// networks and volumes were swept (see [`stop::guarded`]); exit 130.
fn interrupted(stopped: Interrupted) -> ExitCode {
    errln!("{stopped}");
    ExitCode::from(130)
}

/// `harness sweep`: leftovers of processes that are gone, one run's, or (`--all`) everything.
async fn sweep(
    run: Option<String>,
    all: bool,
    labels: Vec<String>,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let docker = runtime::connect().await?;
    if run.is_some() || all {
        if all {
            errln!("warning: --all removes every labelled resource on this daemon, including those of runs still going on");
        }
        let swept = runtime::sweep(&docker, run.as_deref()).await?;
        outln!("removed {swept}");
        return Ok(ExitCode::SUCCESS);
    }
    let report = runtime::sweep_gone(&docker, &labels).await?;
    for (owner, swept) in &report.removed {
        outln!("removed {swept} of {owner}: its process is gone");
    }
    for (owner, why) in &report.kept {
        outln!(
            "left {owner} alone: {why} (`--run {}` removes it)",
            owner.run
        );
    }
    if report.removed.is_empty() {
        outln!("nothing to remove");
    }
    Ok(ExitCode::SUCCESS)
}

fn reports(
    dirs: Vec<PathBuf>,
    compare: Option<PathBuf>,
    out: Option<PathBuf>,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let runs = dirs
        .iter()
        .map(|d| Run::load(d))
        .collect::<Result<Vec<_>, _>>()?;
    let compare = compare
        .map(|c| report::compare_view::read(&c))
        .transpose()?;
    let out = out.unwrap_or_else(|| report::default_out(&dirs[0]));
    report::write_reports(&out, &runs)?;
    outln!("wrote {0}/report.html and {0}/summary.md", out.display());
    if let Some(compare) = compare {
        report::write_compare(&out, &compare)?;
        outln!("wrote {}/compare.html", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn mutants(
    profile: ProfileArgs,
    filter: Option<String>,
    jobs: usize,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let root = session::repo_root();
    let plans = plans(&root.join("scenarios"))?;
    let all = harness::mutants::discover(&root)?;
    let chosen: Vec<_> = all
        .into_iter()
        .filter(|m| filter.as_ref().is_none_or(|f| m.name.contains(f.as_str())))
        .collect();
    if chosen.is_empty() {
        return Err("no mutant's name matches (see fixtures/mutants/)".into());
    }
    let run_id = new_run_id();
    let _signals = stop::listen();
    let ctx = session::open(&profile.choice(), run_id.clone()).await?;
    let count: usize = chosen.iter().map(|m| m.plans(&plans).len()).sum();
    outln!(
        "run {run_id}: {} mutant(s) in {count} plan(s)",
        chosen.len()
    );
    let work = harness::mutants::run_matrix(&ctx, &chosen, &plans, jobs, |mutant, result| {
        let verdict = harness::mutants::Verdict::of(result);
        outln!("{:<40} {:<48} {}", mutant.name, result.test, verdict.cell());
    });
    let matrix = match stop::guarded(&ctx.docker, &ctx.run_id, work).await {
        Ok(matrix) => matrix?,
        Err(stopped) => return Ok(interrupted(stopped)),
    };
    outln!("\n{}", matrix.render(harness::mutants::breaks(&chosen)));
    let misplaced: Vec<String> = chosen
        .iter()
        .filter_map(|m| {
            let verdicts = matrix.mutants.get(&m.name).cloned().unwrap_or_default();
            harness::mutants::check_caught(m, &verdicts).err()
        })
        .collect();
    for problem in &misplaced {
        outln!("{problem}");
    }
    report::write_mutants(&ctx.report_dir, &run_id, &matrix)?;
    let (caught, all) = matrix.score();
    Ok(if caught == all && misplaced.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs the matrix; the exit code says whether every result was as expected (130: stopped by a
/// signal), and where the reports went. The caller listens for signals ([`stop::listen`]).
async fn run_matrix(
    profile: ProfileArgs,
    filter: Option<String>,
    options: matrix::Options,
    run_id: String,
) -> Result<(ExitCode, PathBuf), Box<dyn std::error::Error>> {
    let root = session::repo_root();
    let selected = select(plans(&root.join("scenarios"))?, filter.as_deref())?;
    let mut ctx = session::open(&profile.choice(), run_id.clone()).await?;
    outln!(
        "run {run_id}: {} plan(s) × {} on profile `{}`",
        selected.len(),
        options.repeat,
        ctx.profile.name
    );
    let skipped = selected.iter().filter(|p| p.skip.is_some()).count();
    let total = skipped + (selected.len() - skipped) * options.repeat as usize;
    let progress = Progress::new(total);
    ctx.notify = Some(progress.notifier());
    let work = matrix::run(&ctx, &selected, options, |result| {
        progress.finished(result, &result_line(result));
        if result.status != model::result::Status::Skip {
            stop::fault_point("result");
        }
    });
    let results = stop::guarded(&ctx.docker, &ctx.run_id, work).await;
    progress.clear();
    let results = match results {
        Ok(results) => results,
        Err(stopped) => return Ok((interrupted(stopped), ctx.report_dir.clone())),
    };
    report::write_summary(&ctx.report_dir, &run_id, &results)?;
    let tally = Tally::of(&results);
    let flaky = matrix::flaky(&results);
    for (test, statuses) in &flaky {
        outln!("FLAKY {test}: {statuses:?}");
    }
    let run = Run {
        id: run_id,
        source: ctx.report_dir.clone(),
        results,
    };
    report::write_reports(&ctx.report_dir, std::slice::from_ref(&run))?;
    outln!(
        "{} passed, {} failed ({} as known discrepancies), {} errored, {} skipped; {} not as expected, {} flaky; reports in {}",
        tally.pass,
        tally.fail,
        tally.known_discrepancies,
        tally.error,
        tally.skip,
        tally.not_as_expected,
        flaky.len(),
        ctx.report_dir.display()
    );
    let (steps_ms, wall_ms) = model::result::step_time(&run.results);
    if wall_ms > 0 {
        outln!(
            "time: plugin steps {:.1} s of {:.1} s plan wall time (harness overhead {:.0} %)",
            steps_ms as f64 / 1000.0,
            wall_ms as f64 / 1000.0,
            100.0 * (wall_ms - steps_ms.min(wall_ms)) as f64 / wall_ms as f64
        );
    }
    let code = if tally.not_as_expected == 0 && flaky.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    Ok((code, ctx.report_dir.clone()))
}

/// The plans whose name contains `filter` (all without one); none is an error.
fn select(all: Vec<Plan>, filter: Option<&str>) -> Result<Vec<Plan>, String> {
    let selected: Vec<Plan> = all
        .into_iter()
        .filter(|p| filter.is_none_or(|f| p.test_name.contains(f)))
        .collect();
    match filter {
        Some(filter) if selected.is_empty() => Err(format!(
            "no plan's name contains `{filter}` (names look like `build_only::tar::buildx`; see `harness list`)"
        )),
        _ => Ok(selected),
    }
}

/// One line per finished plan, and its known discrepancy if it has one.
fn result_line(result: &ScenarioResult) -> String {
    let mut line = format!(
        "{:<5} {} ({} ms){}",
        result.status.to_string(),
        progress::label(&result.test, result.repetition),
        result.duration_ms,
        result
            .reason
            .as_ref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    if let Some(known) = &result.known_discrepancy {
        let verdict = match &known.difference {
            None => "as expected".to_owned(),
            Some(d) => format!("NOT as expected: {d}"),
        };
        line.push_str(&format!(
            "\n      known discrepancy ({verdict}): {}",
            known.because
        ));
    }
    if !result.retried_errors.is_empty() {
        line.push_str(&format!(
            "\n      after {} errored attempt(s): {}",
            result.retried_errors.len(),
            result.retried_errors.join("; ")
        ));
    }
    line
}
