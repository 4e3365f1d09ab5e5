//! `harness`: the command-line face of the conformance harness.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use harness::matrix;
use harness::plan::{plans, Plan};
use harness::progress::{self, Progress};
use harness::result::ScenarioResult;
use harness::result::Tally;
use harness::runner::new_run_id;
use harness::runs::Run;
use harness::scenario::Scenario;
use harness::session::{self, ProfileChoice};
use harness::{report, runtime};

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
        /// Plans run at once.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Run each plan N times, interleaved; results keep every repetition.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Run a plan that ended in Error (infrastructure) again, at most N times; a Fail is
        /// never retried.
        #[arg(long, default_value_t = 0)]
        retry_errors: u32,
    },
    /// Run each mutant plugin (fixtures/mutants) in the plans of its role and print the kill
    /// matrix: which assertion caught which mutant, and the sensitivity score.
    Mutants {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Only mutants whose name contains this text, e.g. `buildx`.
        filter: Option<String>,
        /// Plans run at once.
        #[arg(long, default_value_t = 2)]
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
    /// Remove every container, network and volume the harness labelled (optionally of one run).
    Sweep {
        #[arg(long)]
        run: Option<String>,
    },
    /// Build (or load from cache) the profile's images.
    Images {
        #[command(flatten)]
        profile: ProfileArgs,
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

/// How two runs are judged against each other.
#[derive(clap::Args)]
struct JudgeArgs {
    /// A timing regression needs NEW's median above BASE's times this ratio.
    #[arg(long, default_value_t = 1.25)]
    threshold: f64,
    /// Differences between medians of at most this many ms are never a timing change.
    #[arg(long, default_value_t = 200)]
    min_delta_ms: u64,
    /// Report timing regressions without failing.
    #[arg(long)]
    no_fail_on_timing: bool,
    /// Report status regressions without failing.
    #[arg(long)]
    no_fail_on_status: bool,
}

impl JudgeArgs {
    fn settings(&self) -> Result<harness::compare::Settings, String> {
        if !(self.threshold >= 1.0 && self.threshold.is_finite()) {
            return Err(format!(
                "--threshold {} is not a ratio of at least 1 (1.25: 25 % slower)",
                self.threshold
            ));
        }
        Ok(harness::compare::Settings {
            threshold_ratio: self.threshold,
            min_delta_ms: self.min_delta_ms,
            fail_on_status: !self.no_fail_on_status,
            fail_on_timing: !self.no_fail_on_timing,
        })
    }
}

/// How a matrix of plans is run.
#[derive(clap::Args)]
struct RunArgs {
    /// Only plans whose name contains this text, e.g. `build_only` or `::buildx`.
    #[arg(long)]
    filter: Option<String>,
    /// Plans run at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Run each plan N times, interleaved; results keep every repetition.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Run a plan that ended in Error (infrastructure) again, at most N times; a Fail is never
    /// retried.
    #[arg(long, default_value_t = 1)]
    retry_errors: u32,
}

impl RunArgs {
    fn options(&self) -> matrix::Options {
        matrix::Options {
            jobs: self.jobs.max(1),
            repeat: self.repeat,
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
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(command: Command) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let root = session::repo_root();
    match command {
        Command::List => {
            for plan in plans(&root.join("scenarios"))? {
                println!("{}", plan.test_name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { files } => {
            let files = if files.is_empty() {
                harness::scenario::discover(&root.join("scenarios"))?
                    .into_iter()
                    .map(|f| f.path)
                    .collect()
            } else {
                files
            };
            let mut bad = 0;
            for file in &files {
                match Scenario::load(file) {
                    Ok(_) => println!("ok    {}", file.display()),
                    Err(e) => {
                        bad += 1;
                        eprintln!("{:?}", miette::Report::new(e));
                    }
                }
            }
            println!("{} file(s), {bad} invalid", files.len());
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Schema => {
            print!("{}", harness::scenario::json_schema());
            Ok(ExitCode::SUCCESS)
        }
        Command::Sweep { run } => {
            let docker = runtime::connect().await?;
            let swept = runtime::sweep(&docker, run.as_deref()).await?;
            println!(
                "removed {} container(s), {} network(s), {} volume(s)",
                swept.containers, swept.networks, swept.volumes
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Images { profile } => {
            session::open(&profile.choice(), new_run_id()).await?;
            println!("images for profile `{}` are present", profile.profile);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            profile,
            filter,
            jobs,
            repeat,
            retry_errors,
        } => {
            let options = matrix::Options {
                jobs: jobs.max(1),
                repeat,
                retry_errors,
            };
            run(profile, filter, options).await
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
            run,
            judge,
        } => {
            let candidates = harness::release::Candidates {
                role,
                image_a,
                image_b,
            };
            validate_release(profile, candidates, run, judge).await
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
    }
}

fn compare(args: CompareArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    use harness::compare::{self, render};
    let settings = args.judge.settings()?;
    let base = harness::runs::Run::load(&args.base)?;
    let new = harness::runs::Run::load(&args.new)?;
    let comparison = compare::compare(&[base], &[new], &settings);
    print!("{}", render::terminal(&comparison));
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
    args: RunArgs,
    judge: JudgeArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let settings = judge.settings()?;
    let root = session::repo_root();
    let selected = select(plans(&root.join("scenarios"))?, args.filter.as_deref())?;
    let run_id = new_run_id();
    let ctx = session::open(&profile.choice(), run_id.clone()).await?;
    let count = selected
        .iter()
        .filter(|p| p.runs_role(&candidates.role))
        .count();
    if count == 0 {
        return Err(format!("no plan runs the role `{}`", candidates.role).into());
    }
    println!(
        "run {run_id}: {count} plan(s) of role `{}` × {} with A = {} and B = {}",
        candidates.role, args.repeat, candidates.image_a, candidates.image_b
    );
    let work = harness::release::validate(
        &ctx,
        &selected,
        &candidates,
        args.options(),
        &settings,
        |r| println!("{}", result_line(r)),
    );
    let comparison = tokio::select! {
        comparison = work => comparison?,
        signal = session::stopped() => return interrupted(&ctx, signal).await,
    };
    print!("{}", harness::compare::render::terminal(&comparison));
    println!("{}", harness::release::answer(&candidates, &comparison));
    println!(
        "reports in {} (report.html, compare.html, compare.md; results in A/ and B/)",
        ctx.report_dir.display()
    );
    Ok(ExitCode::from(comparison.exit_code()))
}

async fn nightly(
    profile: ProfileArgs,
    baseline: PathBuf,
    update_baseline: bool,
    args: RunArgs,
    judge: JudgeArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let settings = judge.settings()?;
    let (code, report_dir) = run_matrix(profile, args.filter.clone(), args.options()).await?;
    let this = harness::runs::Run::load(&report_dir)?;
    let mut failed = code != ExitCode::SUCCESS;
    if baseline.exists() {
        let base = harness::runs::Run::load(&baseline)?;
        let comparison = harness::compare::compare(&[base], std::slice::from_ref(&this), &settings);
        print!("{}", harness::compare::render::terminal(&comparison));
        report::write_comparison(&report_dir, &comparison, None)?;
        failed |= comparison.verdict.fails;
    } else {
        println!(
            "no baseline at {} yet: nothing to compare with (--update-baseline keeps this run as one)",
            baseline.display()
        );
    }
    if update_baseline {
        this.save(&baseline)?;
        println!("baseline {} now holds run {}", baseline.display(), this.id);
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Ctrl-C or SIGTERM: remove this run's containers, networks and volumes, then stop.
async fn interrupted(
    ctx: &harness::runner::RunContext,
    signal: &str,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    eprintln!("{signal}: removing this run's containers, networks and volumes");
    let swept = runtime::sweep(&ctx.docker, Some(&ctx.run_id)).await?;
    eprintln!(
        "removed {} container(s), {} network(s), {} volume(s)",
        swept.containers, swept.networks, swept.volumes
    );
    Ok(ExitCode::from(130))
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
    println!("wrote {0}/report.html and {0}/summary.md", out.display());
    if let Some(compare) = compare {
        report::write_compare(&out, &compare)?;
        println!("wrote {}/compare.html", out.display());
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
    let ctx = session::open(&profile.choice(), run_id.clone()).await?;
    let count: usize = chosen.iter().map(|m| m.plans(&plans).len()).sum();
    println!(
        "run {run_id}: {} mutant(s) in {count} plan(s)",
        chosen.len()
    );
    let work = harness::mutants::run_matrix(&ctx, &chosen, &plans, jobs, |mutant, result| {
        let verdict = harness::mutants::Verdict::of(result);
        println!("{:<40} {:<48} {}", mutant.name, result.test, verdict.cell());
    });
    let matrix = tokio::select! {
        matrix = work => matrix?,
        signal = session::stopped() => return interrupted(&ctx, signal).await,
    };
    println!("\n{}", matrix.render(&chosen));
    let misplaced: Vec<String> = chosen
        .iter()
        .filter_map(|m| {
            let verdicts = matrix.mutants.get(&m.name).cloned().unwrap_or_default();
            harness::mutants::check_caught(m, &verdicts).err()
        })
        .collect();
    for problem in &misplaced {
        println!("{problem}");
    }
    report::write_mutants(&ctx.report_dir, &run_id, &matrix)?;
    let (caught, all) = matrix.score();
    Ok(if caught == all && misplaced.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn run(
    profile: ProfileArgs,
    filter: Option<String>,
    options: matrix::Options,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    Ok(run_matrix(profile, filter, options).await?.0)
}

/// Runs the matrix; the exit code says whether every result was as expected, and where the
/// reports went.
async fn run_matrix(
    profile: ProfileArgs,
    filter: Option<String>,
    options: matrix::Options,
) -> Result<(ExitCode, PathBuf), Box<dyn std::error::Error>> {
    let root = session::repo_root();
    let selected = select(plans(&root.join("scenarios"))?, filter.as_deref())?;
    let run_id = new_run_id();
    let mut ctx = session::open(&profile.choice(), run_id.clone()).await?;
    println!(
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
        progress.finished(result, &result_line(result))
    });
    let results = tokio::select! {
        results = work => results,
        signal = session::stopped() => {
            progress.clear();
            return Ok((interrupted(&ctx, signal).await?, ctx.report_dir.clone()));
        }
    };
    progress.clear();
    report::write_summary(&ctx.report_dir, &run_id, &results)?;
    let tally = Tally::of(&results);
    let flaky = matrix::flaky(&results);
    for (test, statuses) in &flaky {
        println!("FLAKY {test}: {statuses:?}");
    }
    let run = Run {
        id: run_id,
        source: ctx.report_dir.clone(),
        results,
    };
    report::write_reports(&ctx.report_dir, std::slice::from_ref(&run))?;
    println!(
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
