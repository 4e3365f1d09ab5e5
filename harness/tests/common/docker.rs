//! For the tests that run the harness against the Docker daemon (cleanup, faults,
//! shared_state): the `harness` binary, run ids of their own, the daemon, and what a run left
//! behind.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;
use harness::runner::RunContext;
use harness::session::{self, ProfileChoice};
use runtime::stop;
use runtime::{self, Swept};

/// The `harness` binary cargo built for this test, or `CONFORMANCE_HARNESS_BIN` (for a target
/// directory shared between checkouts, where another build may replace it meanwhile).
pub fn harness() -> Command {
    let binary = std::env::var_os("CONFORMANCE_HARNESS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_harness")));
    let mut command = Command::new(binary);
    command
        .env("CONFORMANCE_ROOT", root())
        .env_remove("CONFORMANCE_TEST_PANIC_AFTER");
    command
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A run id of its own for one test case: `test-<group>-<case>-<random>`.
pub fn run_id(group: &str, case: &str) -> String {
    format!(
        "test-{group}-{case}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Runs `body` with the Docker daemon, on a runtime of its own (one thread): for the
/// synchronous parts of a test and for `Drop`s.
pub fn with_docker<T>(body: impl AsyncFnOnce(Docker) -> T) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let docker = plans_daemon().await;
            body(docker).await
        })
}

/// The daemon the harness runs plans on: the rootless one when it answers (and
/// `CONFORMANCE_ISOLATION` is not `none`), else the harness's own ([`runtime::isolation`]).
pub async fn plans_daemon() -> Docker {
    let host = runtime::connect().await.expect("a docker daemon answers");
    if std::env::var("CONFORMANCE_ISOLATION").is_ok_and(|v| v.trim() == "none") {
        return host;
    }
    runtime::isolation::rootless_daemon().await.unwrap_or(host)
}

/// What remains labelled with this run: containers, networks, volumes.
pub fn leftovers(run: &str) -> Swept {
    with_docker(async |docker| {
        runtime::count_labelled(&docker, &[format!("{}={run}", runtime::LABEL_RUN)])
            .await
            .expect("docker lists resources")
    })
}

/// The containers labelled with this run, running or not; with `name`, only those whose name
/// contains it.
pub async fn run_containers(
    docker: &Docker,
    run: &str,
    name: Option<&str>,
) -> Result<Vec<ContainerSummary>, bollard::errors::Error> {
    let mut filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{}={run}", runtime::LABEL_RUN)],
    )]);
    if let Some(part) = name {
        filters.insert("name".to_owned(), vec![part.to_owned()]);
    }
    docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
}

/// Removes what a test left in reports/ (only after it passed: a failure keeps the evidence).
pub fn forget(run: &str) {
    let _ = std::fs::remove_dir_all(root().join("reports").join(run));
}

/// Waits for the child at most `limit`; its status, or a panic after killing it.
pub fn wait_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the harness did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

/// Runs `body` in a runtime like the scenario tests' (two workers, signals turned into a stop
/// request), with a session opened on `profile` for the run `run`.
pub fn in_session<T>(run: &str, profile: &str, body: impl AsyncFnOnce(RunContext) -> T) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let _signals = stop::listen();
            let choice = ProfileChoice {
                profile: profile.to_owned(),
                overrides: vec![],
            };
            let ctx = session::open(&choice, run.to_owned())
                .await
                .expect("the session opens (docker answers, images built)");
            body(ctx).await
        })
}

/// Brings an environment of a run of its own (`test-GROUP-…`) up on the profile the
/// environment variables choose: the registries `names` (those in `plain` over plain HTTP)
/// and, with `dind`, the shared daemon. Runs `body` with it and the session, tears it down
/// whatever `body` did, checks that nothing of the run remains, then re-raises `body`'s panic.
pub async fn in_environment(
    group: &str,
    names: &[&str],
    plain: &[&str],
    dind: bool,
    body: impl AsyncFnOnce(&runtime::Environment, &RunContext),
) {
    use runtime::{Environment, Services};
    let run = run_id(group, "env");
    let ctx = session::open(&ProfileChoice::from_env(), run.clone())
        .await
        .expect("docker and the profile's images are ready");
    let role = |name: &str| ctx.profile.role(name).expect("the profile has the role");
    let workspace = tempfile::tempdir().unwrap();
    let mut env = Environment::new(ctx.docker.clone(), &run, group, workspace.path().to_owned());
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let tls = plain.iter().map(|n| (n.to_string(), false)).collect();
    let services = Services {
        registry: role("registry"),
        dind: dind.then(|| role("dind")),
        base_image: role("busybox"),
    };
    let checked = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        env.up(&services, &names, &Default::default(), &tls, &[])
            .await
            .expect("the environment comes up");
        body(&env, &ctx).await
    }))
    .await;
    env.teardown().await.expect("the environment is removed");
    let left = runtime::count_labelled(&ctx.docker, &[format!("{}={run}", runtime::LABEL_RUN)])
        .await
        .unwrap();
    assert_eq!(left, Swept::default(), "nothing of the run remains");
    if let Err(panic) = checked {
        std::panic::resume_unwind(panic);
    }
}
