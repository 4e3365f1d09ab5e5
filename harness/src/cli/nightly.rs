//! `harness nightly`: the matrix compared with a baseline, by the same decision as release
//! validation.

use std::path::PathBuf;
use std::process::ExitCode;

use harness::matrix;
use harness::runner::new_run_id;
use harness::{out, outln};
use runtime::stop::{self};

use super::args::{JudgeArgs, ProfileArgs, RunArgs};
use super::run::run_matrix;
use super::selected;
use super::Outcome;

pub async fn nightly(
    profile: ProfileArgs,
    baseline: PathBuf,
    update_baseline: bool,
    args: RunArgs,
    judge: JudgeArgs,
) -> Outcome {
    let settings = judge.settings()?;
    // Enough repetitions for the comparison with the baseline to decide timings: counted over
    // the whole matrix, so that every shard runs as many as the merged comparison needs.
    let selected = selected(args.filter.as_deref())?;
    let repeat = matrix::recommended_repeat(&selected.iter().collect::<Vec<_>>(), &settings);
    // Shards are balanced by the baseline's durations unless --shard-by says otherwise.
    let (selected, shard) = args.shard.select(selected, Some(&baseline))?;
    if shard.is_some() && update_baseline {
        return Err("--update-baseline keeps a whole run, not a shard: merge the shards (`harness report SHARD_DIR… --out MERGED`) and keep MERGED/merged.json as the baseline".into());
    }
    let _signals = stop::listen();
    let (code, report_dir) = run_matrix(
        profile,
        &selected,
        args.options_or(repeat),
        new_run_id(),
        shard.as_ref(),
    )
    .await?;
    if code == ExitCode::from(130) {
        return Ok(code);
    }
    if let Some(shard) = shard {
        outln!(
            "shard {} of the nightly: merge the {} shards' run directories (`harness report DIR… --out MERGED`), then `harness compare {} MERGED`",
            shard.shard,
            shard.count,
            baseline.display()
        );
        return Ok(code);
    }
    let this = report::runs::Run::load(&report_dir)?;
    let mut failed = code != ExitCode::SUCCESS;
    // The baseline's own repetitions, odd against even, are its calibration (kept beside it).
    let calibration_file = baseline.with_extension("calibration.json");
    if baseline.exists() {
        let base = report::runs::Run::load(&baseline)?;
        harness::shard::check_whole(&base)?;
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
