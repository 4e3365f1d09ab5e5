//! The options several subcommands share: the image profile, how a matrix runs, how two runs
//! are judged.

use std::path::PathBuf;

use harness::matrix;
use harness::plan::Plan;
use harness::session::ProfileChoice;
use harness::shard::{self, Record, Shard, Weights};

#[derive(clap::Args)]
pub struct ProfileArgs {
    /// Image profile: `offline` (default: built locally, never pulls), `upstream`, or a file.
    #[arg(long, default_value = "offline")]
    pub profile: String,
    /// Point a role at another image, e.g. `--image buildx=plugins/buildx:1.3.24` (repeatable).
    #[arg(long = "image", value_name = "ROLE=IMAGE")]
    pub images: Vec<String>,
}

impl ProfileArgs {
    pub fn choice(&self) -> ProfileChoice {
        ProfileChoice {
            profile: self.profile.clone(),
            overrides: self.images.clone(),
        }
    }
}

/// How a matrix of plans is run.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Only plans whose name contains this text, e.g. `build_only` or `::buildx`.
    #[arg(long)]
    pub filter: Option<String>,
    /// Plans run at once (each a registry, a DinD daemon and plugin containers).
    #[arg(long, env = "CONFORMANCE_JOBS", default_value_t = 2)]
    pub jobs: usize,
    /// Run each plan N times; results keep every repetition [default: enough for the timing
    /// comparison to decide: the fewest repetitions at which the plans' timing comparisons can
    /// be decided at the false-alarm rate, plus 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: Option<u32>,
    /// Run a plan that ended in Error (infrastructure) again, at most N times; a Fail is never
    /// retried.
    #[arg(long, default_value_t = 1)]
    pub retry_errors: u32,
    #[command(flatten)]
    pub shard: ShardArgs,
}

/// Which part of the matrix this runner takes (CI runners, each with its own Docker daemon).
#[derive(clap::Args)]
pub struct ShardArgs {
    /// Run only shard K of N of the selected plans: a deterministic split (the same on every
    /// runner given the same plans, N and --shard-by), recorded in the run directory
    /// (shard.json); `harness report` merges the N run directories.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Balance the shards by the plans' durations in this finished run or baseline (longest
    /// first) instead of by plan name.
    #[arg(long, value_name = "RUN_OR_BASELINE", requires = "shard")]
    pub shard_by: Option<PathBuf>,
}

impl ShardArgs {
    /// What the shards are balanced by: --shard-by, else `fallback` when it exists (a
    /// nightly's baseline), else plan names.
    pub fn weights(
        &self,
        fallback: Option<&std::path::Path>,
    ) -> Result<Weights, Box<dyn std::error::Error>> {
        let by = self.shard_by.as_deref().or(fallback.filter(|f| f.exists()));
        Ok(match by {
            Some(path) => {
                let run = report::runs::Run::load(path)?;
                shard::check_whole(&run)?;
                Weights::of_run(&run)
            }
            None => Weights::by_name(),
        })
    }

    /// This runner's plans and the shard's record; every plan and no record without --shard.
    pub fn select(
        &self,
        plans: Vec<Plan>,
        fallback: Option<&std::path::Path>,
    ) -> Result<(Vec<Plan>, Option<Record>), Box<dyn std::error::Error>> {
        let Some(shard) = self.shard else {
            return Ok((plans, None));
        };
        let (mine, record) = shard::select_plans(plans, shard, &self.weights(fallback)?);
        Ok((mine, Some(record)))
    }
}

impl RunArgs {
    /// The options, with `repeat` when --repeat was not given.
    pub fn options_or(&self, repeat: u32) -> matrix::Options {
        matrix::Options {
            jobs: self.jobs.max(1),
            repeat: self.repeat.unwrap_or(repeat),
            retry_errors: self.retry_errors,
        }
    }
}

/// How two runs are judged against each other (the decision: `report::compare::decide`).
#[derive(clap::Args)]
pub struct JudgeArgs {
    /// The chance, over the whole comparison, that an unchanged NEW is called a timing
    /// regression (0.01: 1 %).
    #[arg(long, default_value_t = 0.01)]
    pub false_alarm_rate: f64,
    /// Slowdowns smaller than this ratio never count, however sure (1.05: 5 %).
    #[arg(long, default_value_t = 1.05)]
    pub min_ratio: f64,
    /// Changes of at most this many ms never count, however sure.
    #[arg(long, default_value_t = 50)]
    pub min_delta_ms: u64,
    /// A slowdown of at least this ratio, seen where the samples are too few to decide, is
    /// inconclusive; once they can decide, it is named as slower but not confirmed (1.2: 20 %).
    #[arg(long, default_value_t = 1.2)]
    pub detect_ratio: f64,
    /// Noise floors measured by a calibration (`validate-release --calibrate` writes
    /// `calibration.json`; a nightly's first run writes one next to its baseline).
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Report timing regressions without failing.
    #[arg(long)]
    pub no_fail_on_timing: bool,
    /// Report status regressions without failing.
    #[arg(long)]
    pub no_fail_on_status: bool,
}

impl JudgeArgs {
    pub fn settings(&self) -> Result<report::compare::Settings, String> {
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
    pub fn calibration(
        &self,
    ) -> Result<Option<report::compare::Calibration>, Box<dyn std::error::Error>> {
        Ok(match &self.calibration {
            Some(path) => Some(report::compare::Calibration::load(path)?),
            None => None,
        })
    }
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The reference: a run directory (reports/<run-id>/) or a baseline file.
    pub base: PathBuf,
    /// The run to judge, likewise.
    pub new: PathBuf,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Also write the comparison as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Also write the comparison as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// A run id is a directory name and a label value.
pub fn run_id(value: &str) -> Result<String, String> {
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !value.is_empty() && !value.starts_with('.') && value.chars().all(fine) {
        Ok(value.to_owned())
    } else {
        Err("use letters, digits, `.`, `_` and `-` (not first: `.`)".into())
    }
}
