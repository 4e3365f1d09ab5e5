//! A plugin cannot take the host's processes or memory through a tmpfs without end (issue 19,
//! item 1): every container of a plan gets the profile's bounds. Runs
//! `tests/fixtures/bounds/` on the offline images with the bounds made small, and reads what
//! the hostile steps got.

mod common;

use harness::plan::plans;
use harness::runner;
use model::result::Status;

fn number_after(log: &str, key: &str) -> u64 {
    log.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in the log:\n{log}"))
}

#[test]
fn processes_and_tmpfs_are_bounded_by_the_profile() {
    let plans = plans(&common::docker::root().join("harness/tests/fixtures/bounds"))
        .expect("the scenario loads");
    assert_eq!(plans.len(), 1, "{plans:?}");
    let run = common::docker::run_id("bounds", "hostile");
    let result = common::docker::in_session(&run, "offline", async |mut ctx| {
        ctx.profile.bounds.pids = 256;
        ctx.profile.bounds.tmpfs = "64Mi".to_owned();
        runner::run_plan(&ctx, &plans[0]).await
    });
    assert_eq!(result.status, Status::Pass, "{}", result.explain());
    let forks = &result.steps[0];
    let started = number_after(&forks.log, "started=");
    assert!(
        started < 256,
        "{started} processes started under a bound of 256"
    );
    assert!(
        started > 10,
        "only {started} processes: the step itself failed?"
    );
    assert!(
        forks
            .limits
            .as_deref()
            .is_some_and(|l| l.contains("256 processes")),
        "{:?}",
        forks.limits
    );
    let fill = &result.steps[1];
    assert!(fill.log.contains("No space left on device"), "{}", fill.log);
    let filled = number_after(&fill.log, "filled=");
    assert!(filled <= 64, "{filled} MiB written into a 64 MiB tmpfs");
    // A privileged step that lifts its own cgroup's limit first: on the rootless daemon the
    // cgroup the harness made above it (root-owned) still holds it.
    let raise = &result.steps[2];
    let raised = number_after(&raise.log, "started=");
    let isolation = result.isolation.as_deref().unwrap_or_default();
    if isolation.starts_with("rootless:") {
        assert!(
            raise.log.contains("raised "),
            "the step could not even try:\n{}",
            raise.log
        );
        assert!(
            raised < 256,
            "{raised} processes started under a bound of 256 by a step that raised its own limit"
        );
    } else {
        // On the host's daemon a privileged step is root there: nothing holds it, and the
        // results say so.
        assert!(
            isolation.starts_with("none: privileged roles were not isolated"),
            "{isolation}"
        );
    }
    assert_eq!(common::docker::leftovers(&run).total(), 0);
    common::docker::forget(&run);
    eprintln!(
        "bounded: {started} processes of 256, {filled} MiB of a 64 MiB tmpfs; a privileged step \
         raising its own limit: {raised} ({isolation})"
    );
}

/// A plugin filling its workspace fills its own file system (the profile's `bounds.workspace`):
/// a Fail naming the quota, not an Error blamed on the host's disk; the workspace is kept as a
/// plain directory, and the file system and its file are gone.
#[test]
fn a_plugin_filling_its_workspace_fails_on_its_quota() {
    let plans = plans(&common::docker::root().join("harness/tests/fixtures/quota"))
        .expect("the scenario loads");
    assert_eq!(plans.len(), 1, "{plans:?}");
    let run = common::docker::run_id("bounds", "quota");
    let (result, report_dir) = common::docker::in_session(&run, "offline", async |mut ctx| {
        ctx.profile.bounds.workspace = "64Mi".to_owned();
        let result = runner::run_plan(&ctx, &plans[0]).await;
        (result, ctx.report_dir.clone())
    });
    assert_eq!(result.status, Status::Fail, "{}", result.explain());
    let reason = result.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("the plugin filled its workspace quota (64 MiB, bounds.workspace)"),
        "{reason}"
    );
    let fill = &result.steps[0];
    assert!(fill.log.contains("No space left on device"), "{}", fill.log);
    let filled = number_after(&fill.log, "filled=");
    assert!(
        (32..=64).contains(&filled),
        "{filled} MiB written into a 64 MiB workspace"
    );
    let workspace = report_dir.join(result.file_stem()).join("workspace");
    let kept = std::fs::metadata(workspace.join("fill")).unwrap().len();
    assert!(kept <= 64 << 20, "{kept}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&workspace.display().to_string()),
        "{mounts}"
    );
    assert!(!workspace.with_extension("quota.img").exists());
    assert_eq!(common::docker::leftovers(&run).total(), 0);
    common::docker::forget(&run);
    eprintln!("workspace quota: {filled} MiB of 64 MiB, then a Fail naming the quota");
}
