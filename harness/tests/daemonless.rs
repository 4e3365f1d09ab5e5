//! What a step can reach of the shared daemon (issue 10: fewer DinDs, nothing less hermetic).
//! A role the profile calls `daemonless` (kaniko, buildah, the scanner, busybox) gets no Docker
//! socket, and a plan whose steps are all daemonless starts no DinD at all: the same plan run
//! with the role *not* daemonless gets both, so the check can tell the two apart.
//!
//! Runs `tests/fixtures/daemonless/` through the library on the offline images; needs the
//! Docker daemon (nextest's `docker` test group).

mod common;

use harness::plan::plans;
use harness::runner;
use model::result::{ScenarioResult, Status};
use runtime::Swept;

/// Runs the fixture's one plan with the busybox role daemonless or not.
fn run(daemonless: bool) -> ScenarioResult {
    let plans = plans(&common::docker::root().join("harness/tests/fixtures/daemonless"))
        .expect("the scenario loads");
    assert_eq!(plans.len(), 1, "{plans:?}");
    let run_id = common::docker::run_id("daemonless", if daemonless { "yes" } else { "no" });
    let result = common::docker::in_session(&run_id, "offline", async |mut ctx| {
        ctx.profile
            .roles
            .get_mut("busybox")
            .expect("the profile has busybox")
            .daemonless = daemonless;
        runner::run_plan(&ctx, &plans[0]).await
    });
    assert_eq!(result.status, Status::Pass, "{}", result.explain());
    assert_eq!(common::docker::leftovers(&run_id), Swept::default());
    common::docker::forget(&run_id);
    result
}

fn look(result: &ScenarioResult) -> &str {
    &result.steps[0].log
}

#[test]
fn a_plan_of_daemonless_steps_starts_no_dind_and_its_steps_see_no_socket() {
    let result = run(true);
    assert!(look(&result).contains("socket=no"), "{}", look(&result));
    assert!(look(&result).contains("dind=no"), "{}", look(&result));
    assert!(!result.images.contains_key("dind"), "{:?}", result.images);
    assert_eq!(result.phases.environment.dind_ready_ms, 0);
    // The accounting read a daemon that does not exist as an empty one.
    for snapshot in &result.inventory {
        let holdings = snapshot.holdings.as_ref().expect("every reading taken");
        assert!(holdings.daemon.is_empty(), "{snapshot:?}");
    }
}

#[test]
fn the_same_plan_with_a_role_that_may_use_the_daemon_gets_one() {
    let result = run(false);
    assert!(look(&result).contains("socket=yes"), "{}", look(&result));
    assert!(look(&result).contains("dind=yes"), "{}", look(&result));
    assert!(result.images.contains_key("dind"), "{:?}", result.images);
    assert!(result.phases.environment.dind_ready_ms > 0);
}
