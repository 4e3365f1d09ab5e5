//! Running many plans: several at a time, each repeated N times interleaved (A B C A B C, so
//! drift on the machine hits every plan alike), with Errors — and only Errors — retried.
//! Every result is written as it comes, every repetition and every errored attempt kept.

use std::collections::BTreeMap;

use futures_util::StreamExt;

use crate::plan::Plan;
use crate::report;
use crate::result::{ScenarioResult, Status};
use crate::runner::{run_repetition, RunContext};

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Plans run at once.
    pub jobs: usize,
    /// Runs of each plan (skipped plans are reported once).
    pub repeat: u32,
    /// How many times a plan that ended in Error (the harness or the infrastructure broke) is
    /// run again. A Fail is the plugin's and is never retried.
    pub retry_errors: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            jobs: 2,
            repeat: 1,
            retry_errors: 0,
        }
    }
}

/// One plan repetition to run, in a context (a profile, a report directory).
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub ctx: &'a RunContext,
    pub plan: &'a Plan,
    pub repetition: u32,
}

/// Every plan `repeat` times, interleaved (all plans once, then all again); skipped plans once.
pub fn interleaved<'a>(ctx: &'a RunContext, plans: &'a [Plan], repeat: u32) -> Vec<Job<'a>> {
    (1..=repeat.max(1))
        .flat_map(|repetition| {
            plans
                .iter()
                .filter(move |plan| repetition == 1 || plan.skip.is_none())
                .map(move |plan| Job {
                    ctx,
                    plan,
                    repetition,
                })
        })
        .collect()
}

/// Runs every plan `repeat` times, interleaved; `finished` hears of each result as it comes.
pub async fn run(
    ctx: &RunContext,
    plans: &[Plan],
    options: Options,
    finished: impl Fn(&ScenarioResult),
) -> Vec<ScenarioResult> {
    run_jobs(interleaved(ctx, plans, options.repeat), options, finished).await
}

/// Runs the jobs in order, `options.jobs` at a time, retrying Errors as the options say.
/// `finished` hears of each result as it comes; the results are returned in the jobs' order.
pub async fn run_jobs(
    jobs: Vec<Job<'_>>,
    options: Options,
    finished: impl Fn(&ScenarioResult),
) -> Vec<ScenarioResult> {
    let mut done: Vec<(usize, ScenarioResult)> =
        futures_util::stream::iter(jobs.into_iter().enumerate())
            .map(|(i, job)| async move {
                (
                    i,
                    attempt(job.ctx, job.plan, job.repetition, options.retry_errors).await,
                )
            })
            .buffer_unordered(options.jobs.max(1))
            .inspect(|(_, result)| finished(result))
            .collect()
            .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, result)| result).collect()
}

/// One repetition, run again while it ends in Error (at most `retries` more times). The result
/// keeps why each earlier attempt errored: an Error is never retried into a Pass silently.
async fn attempt(ctx: &RunContext, plan: &Plan, repetition: u32, retries: u32) -> ScenarioResult {
    let mut errors = Vec::new();
    loop {
        let mut result = run_repetition(ctx, plan, repetition).await;
        result.retried_errors = errors.clone();
        let again = result.status == Status::Error && (errors.len() as u32) < retries;
        if !again {
            if let Err(e) = report::write_result(&ctx.report_dir, &result) {
                crate::errln!("error: {e}");
            }
            return result;
        }
        errors.push(result.reason.unwrap_or_else(|| "error".to_owned()));
    }
}

/// Plans whose repetitions did not all end the same way (Skip aside): flaky, never hidden.
pub fn flaky(results: &[ScenarioResult]) -> BTreeMap<String, Vec<Status>> {
    let mut by_plan: BTreeMap<String, Vec<(u32, Status)>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.status != Status::Skip) {
        by_plan
            .entry(r.test.clone())
            .or_default()
            .push((r.repetition, r.status));
    }
    by_plan
        .into_iter()
        .filter_map(|(test, mut statuses)| {
            statuses.sort();
            let statuses: Vec<Status> = statuses.into_iter().map(|(_, s)| s).collect();
            statuses
                .iter()
                .any(|s| *s != statuses[0])
                .then_some((test, statuses))
        })
        .collect()
}
