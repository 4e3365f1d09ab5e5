//! `harness run`: the matrix of plans, reports under reports/<run-id>/.

use std::path::PathBuf;
use std::process::ExitCode;

use harness::matrix;
use harness::outln;
use harness::plan::Plan;
use harness::progress::Progress;
use harness::runner::new_run_id;
use harness::session;
use model::result::Tally;
use report::runs::Run;
use runtime::stop;

use super::args::{ProfileArgs, ShardArgs};
use super::{interrupted, result_line, selected, Outcome};

/// `harness run`: the matrix, `jobs` plans at once, each `repeat` times.
pub async fn run(
    profile: ProfileArgs,
    filter: Option<String>,
    jobs: usize,
    repeat: u32,
    retry_errors: u32,
    run_id: Option<String>,
    shard: ShardArgs,
) -> Outcome {
    let options = matrix::Options {
        jobs: jobs.max(1),
        repeat,
        retry_errors,
    };
    let run_id = run_id.unwrap_or_else(new_run_id);
    let _signals = stop::listen();
    let (selected, record) = shard.select(selected(filter.as_deref())?, None)?;
    Ok(
        run_matrix(profile, &selected, options, run_id, record.as_ref())
            .await?
            .0,
    )
}

/// Runs the plans as a matrix; the exit code says whether every result was as expected (130: stopped by a
/// signal), and where the reports went. The caller listens for signals ([`stop::listen`]). A
/// shard's record goes into the run directory first.
pub async fn run_matrix(
    profile: ProfileArgs,
    selected: &[Plan],
    options: matrix::Options,
    run_id: String,
    shard: Option<&harness::shard::Record>,
) -> Result<(ExitCode, PathBuf), Box<dyn std::error::Error>> {
    let mut ctx = session::open(&profile.choice(), run_id.clone()).await?;
    if let Some(record) = shard {
        record.write(&ctx.report_dir)?;
        outln!(
            "shard {}: {} of {} plans, balanced by {}",
            record.shard,
            record.names.len(),
            record.total,
            record.balanced_by
        );
    }
    outln!(
        "run {run_id}: {} plan(s) × {} on profile `{}`",
        selected.len(),
        options.repeat,
        ctx.profile.name
    );
    if let Some(isolation) = runtime::isolation::current() {
        outln!("isolation: {}", isolation.statement);
    }
    let skipped = selected.iter().filter(|p| p.skip.is_some()).count();
    let total = skipped + (selected.len() - skipped) * options.repeat as usize;
    let progress = Progress::new(total);
    ctx.notify = Some(progress.notifier());
    let work = matrix::run(&ctx, selected, options, |result| {
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
    let claims = harness::ledger::view(&ctx.root, &run.results);
    report::write_reports(&ctx.report_dir, std::slice::from_ref(&run), claims.as_ref())?;
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
