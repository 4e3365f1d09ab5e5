//! A privileged plugin and the host (issue 19, item 2): on the plans' default daemon a step in
//! a privileged role that makes a device node for the host's disk, mounts it, reads the host's
//! /etc/shadow and writes to the host's /tmp gets nowhere when the plans run rootless, and the
//! results say which isolation held. Run on the host's daemon (`CONFORMANCE_ISOLATION=none`),
//! the same fixture does escape — the test shows it can tell — and the results say plainly
//! that privileged roles were not isolated.
//!
//! Each test opens a session of its own in its own process (nextest): the isolation is chosen
//! once per process.

mod common;

use std::path::PathBuf;

use model::result::{ScenarioResult, Status};

fn run(case: &str) -> (ScenarioResult, String) {
    let plans = harness::plan::plans(&common::docker::root().join("harness/tests/fixtures/escape"))
        .expect("the scenario loads");
    let run = common::docker::run_id("escape", case);
    let result = common::docker::in_session(&run, "offline", async |ctx| {
        harness::runner::run_plan(&ctx, &plans[0]).await
    });
    assert_eq!(common::docker::leftovers(&run).total(), 0, "left behind");
    (result, run)
}

/// The file the step writes on the host when it escapes, named by the plan's nonce.
fn written_on_host(result: &ScenarioResult) -> Option<PathBuf> {
    result.steps.first().and_then(|step| {
        step.log
            .lines()
            .find_map(|line| line.strip_prefix("HOST-WRITTEN: "))
            .map(|path| PathBuf::from(path.trim()))
    })
}

#[test]
fn a_privileged_plugin_cannot_mount_read_or_write_the_host_under_the_default_isolation() {
    if std::env::var("CONFORMANCE_ISOLATION").is_ok_and(|v| v.trim() == "none") {
        panic!("CONFORMANCE_ISOLATION=none: this test is about the default isolation");
    }
    let (result, run) = run("default");
    let isolation = result.isolation.clone().unwrap_or_default();
    if !isolation.starts_with("rootless:") {
        // No user namespace here: then the results must say so plainly, with the reason.
        assert!(
            isolation.starts_with("none: privileged roles were not isolated"),
            "{isolation}"
        );
        panic!("the default isolation is not rootless on this machine: {isolation}");
    }
    let log = &result.steps[0].log;
    assert_eq!(result.status, Status::Pass, "{}\n{log}", result.explain());
    assert!(log.contains("done trying"), "{log}");
    assert!(
        !log.contains("HOST-READ") && !log.contains("HOST-WRITTEN"),
        "{log}"
    );
    // The attempt was made, and failed for the user namespace's reasons.
    assert!(log.contains("the disk behind /etc/hosts"), "{log}");
    assert!(log.contains("mount(2): "), "{log}");
    assert!(!log.contains("mounted the host's disk"), "{log}");
    eprintln!("{log}");
    common::docker::forget(&run);
}

#[test]
fn on_the_hosts_daemon_the_same_plugin_escapes_and_the_results_say_it_was_not_isolated() {
    // SAFETY: set before any thread of this test's process reads the environment (nextest runs
    // each test in a process of its own).
    unsafe { std::env::set_var("CONFORMANCE_ISOLATION", "none") };
    let (result, run) = run("none");
    let isolation = result.isolation.clone().unwrap_or_default();
    assert!(
        isolation.starts_with("none: privileged roles were not isolated")
            && isolation.contains("isolation: none was chosen"),
        "{isolation}"
    );
    let written = written_on_host(&result);
    if let Some(path) = &written {
        let _ = std::fs::remove_file(path);
    }
    let log = &result.steps[0].log;
    assert_eq!(result.status, Status::Fail, "{}\n{log}", result.explain());
    assert!(log.contains("HOST-READ"), "{log}");
    let written = written.expect("the step wrote on the host");
    assert!(
        written
            .to_string_lossy()
            .starts_with("/tmp/conformance-escape-"),
        "{}",
        written.display()
    );
    // The report states it too.
    let summary = report::markdown::render(
        &[report::runs::Run {
            id: run.clone(),
            source: PathBuf::new(),
            results: vec![result.clone()],
        }],
        report::Redact::Nothing,
    );
    assert!(
        summary.contains("privileged roles were not isolated"),
        "{summary}"
    );
    common::docker::forget(&run);
}
