//! `harness`: the command-line face of the conformance harness.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

use cli::args::{CompareArgs, JudgeArgs, ProfileArgs, RunArgs, ShardArgs};
use cli::mutants::mutants;
use cli::nightly::nightly;
use cli::release::validate_release;
use cli::runs::{compare, reports, timings};
use cli::sweep::sweep;
use cli::Outcome;
use harness::errln;
use harness::session::SessionError;

#[derive(Parser)]
#[command(
    name = "harness",
    about = "End-to-end conformance harness for container-image build plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
        #[arg(long, value_name = "ID", value_parser = cli::args::run_id)]
        run_id: Option<String>,
        #[command(flatten)]
        shard: ShardArgs,
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
        // Shards split the mutants (each with all its plans), balanced by --shard-by's plan
        // durations summed, else by the number of plans.
        #[command(flatten)]
        shard: ShardArgs,
    },
    /// May IMAGE_B replace IMAGE_A in ROLE? Runs the role's plans with A and with B on the
    /// chosen profile, in counterbalanced order (A B, B A, …, each pair in one lane), then
    /// compares the two runs with the one timing decision.
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
    /// List the plans (scenario × builder), or those of one shard (its expected load on stderr).
    List {
        #[command(flatten)]
        shard: ShardArgs,
    },
    /// Every claim of the docs (claims/ledger.yaml) with the scenarios × builders that check it
    /// and their status in a run (default: the newest under reports/), or why nothing checks it.
    Claims {
        /// A run directory (reports/<run-id>/) or baseline file to take the statuses from.
        #[arg(long, value_name = "RUN")]
        run: Option<PathBuf>,
        /// Also write the claims view as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Print only the features table (claims per topic, as in the README) and exit.
        #[arg(long)]
        topics: bool,
    },
    /// Turn the Build and Push steps of a Harness pipeline file (a pipeline, stage, step group
    /// or steps; nested `parallel`) into a scenario skeleton, printed or written to `--out`.
    Import {
        pipeline: PathBuf,
        /// Write the skeleton here (e.g. scenarios/imported/my-pipeline.yaml) instead of printing it.
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The build context the scenario copies into the workspace (relative to the repository).
        #[arg(
            long,
            value_name = "DIR",
            default_value = "fixtures/contexts/harness-examples"
        )]
        workspace: String,
    },
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_ansi(false)
        .with_writer(harness::progress::TraceLine::default)
        .init();
    let cli = Cli::parse();
    // Before any thread starts: a host without CA certificates gets the run's CA to load.
    match runtime::tls::trust_run_ca_where_the_host_has_none() {
        Ok(true) => {
            errln!("note: this host has no CA certificates; the harness trusts its run's CA only")
        }
        Ok(false) => {}
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(2);
        }
    }
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

async fn dispatch(command: Command) -> Outcome {
    match command {
        Command::List { shard } => cli::scenarios::list(shard),
        Command::Claims { run, json, topics } => cli::claims::claims(run, json, topics),
        Command::Import {
            pipeline,
            out,
            workspace,
        } => cli::import::import(&pipeline, out.as_deref(), &workspace),
        Command::Validate { files } => cli::scenarios::validate(files),
        Command::Schema => cli::scenarios::schema(),
        Command::Sweep { run, all, labels } => sweep(run, all, labels).await,
        Command::Images { profile } => cli::sweep::images(profile).await,
        Command::Run {
            profile,
            filter,
            jobs,
            repeat,
            retry_errors,
            run_id,
            shard,
        } => cli::run::run(profile, filter, jobs, repeat, retry_errors, run_id, shard).await,
        Command::Mutants {
            profile,
            filter,
            jobs,
            shard,
        } => mutants(profile, filter, jobs, shard).await,
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
