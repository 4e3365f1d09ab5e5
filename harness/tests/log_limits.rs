//! A plugin that prints far more log than anyone reads (issue 19, item 1): the harness keeps
//! the end of the log (the last line the step printed is there), holds at most a few hundred
//! KiB of it at once, and reads it in seconds. Runs `tests/fixtures/log_limits/` in-process on
//! the offline images (nextest's `docker` group), so that this process's own peak memory
//! (VmHWM) is the harness's.

mod common;

use std::time::{Duration, Instant};

use harness::plan::plans;
use harness::runner;
use model::result::Status;

/// This process's peak resident memory, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[test]
fn a_flooded_log_is_read_within_bounds() {
    let plans = plans(&common::docker::root().join("harness/tests/fixtures/log_limits"))
        .expect("the scenario loads");
    assert_eq!(plans.len(), 1, "{plans:?}");
    let run = common::docker::run_id("logs", "flood");
    let began = Instant::now();
    let result = common::docker::in_session(&run, "offline", async |ctx| {
        runner::run_plan(&ctx, &plans[0]).await
    });
    let took = began.elapsed();
    let peak_mib = peak_rss_kib() / 1024;
    assert_eq!(result.status, Status::Pass, "{}", result.explain());
    let step = &result.steps[0];
    assert!(
        step.log.starts_with("[… truncated]"),
        "{}",
        &step.log[..200]
    );
    assert!(step.log.trim_end().ends_with("last-line-marker"));
    assert!(
        step.log.len() <= 64 * 1024 + 64,
        "{} bytes kept",
        step.log.len()
    );
    // 256 MiB went by: reading it whole would have held it whole.
    assert!(peak_mib < 100, "peak RSS {peak_mib} MiB");
    // The log is read from its end: the plan takes the step's time, not the log's.
    let reading = Duration::from_millis(result.duration_ms.saturating_sub(step.duration_ms));
    assert!(
        reading < Duration::from_secs(30),
        "{reading:?} beside the step"
    );
    assert_eq!(common::docker::leftovers(&run).total(), 0);
    common::docker::forget(&run);
    eprintln!(
        "256 MiB of log: step {} ms, plan {} ms, {took:?} in all; peak RSS {peak_mib} MiB; {} bytes kept",
        step.duration_ms,
        result.duration_ms,
        step.log.len()
    );
}

/// `secret_absent` searches a step's whole output, not the end its record keeps: a token
/// printed before 4 MiB of filler is found (Fail, naming the form), and a step that printed
/// none passes, its whole output searched.
#[test]
fn a_secret_printed_before_the_kept_end_of_a_log_is_found() {
    let plans = plans(&common::docker::root().join("harness/tests/fixtures/log_secrets"))
        .expect("the scenario loads");
    let run = common::docker::run_id("logs", "secret");
    let result = common::docker::in_session(&run, "offline", async |ctx| {
        runner::run_plan(&ctx, &plans[0]).await
    });
    assert_eq!(result.status, Status::Fail, "{}", result.explain());
    // The record no longer holds the line.
    assert!(
        !result.steps[0].log.contains("auth="),
        "the kept end holds the line"
    );
    let secret: Vec<_> = result
        .assertions
        .iter()
        .filter(|a| a.assertion.starts_with("no trace of BUILD_TOKEN"))
        .collect();
    assert_eq!(secret.len(), 2, "{}", result.explain());
    assert_eq!(secret[0].status, Status::Fail, "{}", result.explain());
    assert!(secret[0].found.contains("base64"), "{}", secret[0].found);
    assert!(
        !secret[0].found.contains("early-secret-token"),
        "{}",
        secret[0].found
    );
    assert_eq!(secret[1].status, Status::Pass, "{}", result.explain());
    assert!(
        secret[1].found.contains("its whole output (4.0 MiB"),
        "{}",
        secret[1].found
    );
    assert_eq!(common::docker::leftovers(&run).total(), 0);
    common::docker::forget(&run);
}
