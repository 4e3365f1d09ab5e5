//! Running many plans: several at a time, each repeated N times interleaved (A B C A B C, so
//! drift on the machine hits every plan alike), with Errors — and only Errors — retried.
//! Every result is written as it comes, every repetition and every errored attempt kept.

use std::collections::BTreeMap;

use futures_util::StreamExt;

use crate::plan::Plan;
use crate::runner::{run_repetition, PendingTeardown, RunContext, Teardown};
use model::result::{ScenarioResult, Status};

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

/// The repetitions to run unless told, when the runs' timings are to be compared (release
/// validation, a nightly against its baseline): [`report::compare::decide::recommended_repeat`]
/// for the timing comparisons the plans make (each step of each plan that runs, and all steps).
pub fn recommended_repeat(plans: &[&Plan], settings: &report::compare::Settings) -> u32 {
    let comparisons = plans
        .iter()
        .filter(|p| p.skip.is_none())
        .map(|p| p.scenario.steps.len() + 1)
        .sum();
    report::compare::decide::recommended_repeat(report::compare::decide::Family {
        false_alarm_rate: settings.false_alarm_rate,
        comparisons,
    })
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
///
/// The harness's own work is kept off the critical path, every plan still in an environment of
/// its own: while `jobs` plans run their steps, up to `jobs` more prepare their workspace and
/// bring their environment up, and take a free slot in order; a plan's environment is torn
/// down after its result is written, beside the next plans. Every teardown has ended before
/// this returns, and one that failed turns its result into what an inline teardown would have
/// made it (written again, and printed).
pub async fn run_jobs(
    jobs: Vec<Job<'_>>,
    options: Options,
    finished: impl Fn(&ScenarioResult),
) -> Vec<ScenarioResult> {
    let slots = tokio::sync::Semaphore::new(options.jobs.max(1));
    let slots = &slots;
    let mut done: Vec<(usize, ScenarioResult, Vec<PendingTeardown>)> =
        futures_util::stream::iter(jobs.iter().enumerate())
            .map(|(i, job)| async move {
                let (result, teardowns) = attempt(job, options.retry_errors, Some(slots)).await;
                (i, result, teardowns)
            })
            .buffer_unordered(2 * options.jobs.max(1))
            .inspect(|(_, result, _)| finished(result))
            .collect()
            .await;
    for (i, result, teardowns) in &mut done {
        if teardowns.is_empty() {
            continue;
        }
        let before = result.status;
        for teardown in teardowns.drain(..) {
            teardown.settle(result, false).await;
        }
        if result.status != before {
            crate::errln!(
                "{} {}: {}",
                result.status,
                crate::progress::label(&result.test, result.repetition),
                result.reason.as_deref().unwrap_or_default()
            );
        }
        // Again, now with the teardown's time (and its failure, if it failed).
        if let Err(e) = report::write_result(&jobs[*i].ctx.report_dir, result) {
            crate::errln!("error: {e}");
        }
    }
    done.sort_by_key(|(i, _, _)| *i);
    done.into_iter().map(|(_, result, _)| result).collect()
}

/// Runs sequences of jobs, `options.jobs` sequences at a time. The jobs of one sequence run one
/// after another in one lane, each torn down before the next starts: no job of a sequence
/// shares a moment with another's bring-up or teardown, which is what a fair comparison of two
/// images in the same plan needs (release validation). Errors are retried as the options say.
/// `finished` hears of each result as it comes; the results are returned in the order of the
/// sequences, each in its own order.
pub async fn run_lanes(
    sequences: Vec<Vec<Job<'_>>>,
    options: Options,
    finished: impl Fn(&ScenarioResult),
) -> Vec<ScenarioResult> {
    let finished = &finished;
    let mut done: Vec<(usize, Vec<ScenarioResult>)> =
        futures_util::stream::iter(sequences.into_iter().enumerate())
            .map(|(i, sequence)| async move {
                let mut results = Vec::with_capacity(sequence.len());
                for job in &sequence {
                    let (result, _) = attempt(job, options.retry_errors, None).await;
                    finished(&result);
                    results.push(result);
                }
                (i, results)
            })
            .buffer_unordered(options.jobs.max(1))
            .collect()
            .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().flat_map(|(_, results)| results).collect()
}

/// One repetition, run again while it ends in Error (at most `retries` more times). The result
/// keeps why each earlier attempt errored: an Error is never retried into a Pass silently.
/// With `slots`, each attempt's teardown is deferred and returned, still going on (see
/// [`Teardown::Deferred`]); without, each attempt is torn down before the next starts.
/// Returns the result, written.
async fn attempt(
    job: &Job<'_>,
    retries: u32,
    slots: Option<&tokio::sync::Semaphore>,
) -> (ScenarioResult, Vec<PendingTeardown>) {
    let Job {
        ctx,
        plan,
        repetition,
    } = *job;
    let mut errors = Vec::new();
    let mut teardowns = Vec::new();
    loop {
        let policy = match slots {
            Some(slots) => Teardown::Deferred(Some(slots)),
            None => Teardown::Inline,
        };
        let (mut result, teardown) = run_repetition(ctx, plan, repetition, policy).await;
        teardowns.extend(teardown);
        result.retried_errors = errors.clone();
        let again = result.status == Status::Error && (errors.len() as u32) < retries;
        if !again {
            if let Err(e) = report::write_result(&ctx.report_dir, &result) {
                crate::errln!("error: {e}");
            }
            return (result, teardowns);
        }
        errors.push(result.reason.unwrap_or_else(|| "error".to_owned()));
    }
}

/// Flaky plans ([`model::result::flaky`]), each with its repetitions' statuses in order:
/// never hidden.
pub fn flaky(results: &[ScenarioResult]) -> BTreeMap<String, Vec<Status>> {
    let mut by_plan: BTreeMap<&str, Vec<&ScenarioResult>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.status != Status::Skip) {
        by_plan.entry(&r.test).or_default().push(r);
    }
    by_plan
        .into_iter()
        .filter(|(_, reps)| model::result::flaky(reps.iter().copied()))
        .map(|(test, mut reps)| {
            reps.sort_by_key(|r| r.repetition);
            (test.to_owned(), reps.iter().map(|r| r.status).collect())
        })
        .collect()
}
