//! Isolation under load (issue 9, item 9): at the highest parallelism no plan sees another's
//! tags, images or files. Six instances of one plan (`tests/fixtures/isolation/`) run at once
//! through the library (`matrix::run_jobs`, six jobs at a time, one run id, like nextest's
//! processes sharing `NEXTEST_RUN_ID`). Every instance pushes the *same* repository and tags
//! (`registry:5000/isolation/app:1.0`, `:2.0`) and writes the *same* file names, each with a
//! random marker of its own (a label on the image, the content of the files).
//!
//! Each instance checks from inside, in its steps, that it sees only itself:
//! - before writing or pushing, its workspace is empty, its registry holds only the base image
//!   and its daemon no image of another instance;
//! - after pushing it waits at a barrier this test opens only once **every** instance has
//!   pushed (so all six registries, daemons and workspaces are full at the same moment), then
//!   its daemon holds exactly its two tags with its marker, its registry exactly its repository
//!   and tags whose config carries its marker, and its workspace exactly its files holding it.
//!
//! Why that cannot pass with a shared resource: say instances A and B shared a registry (or a
//! daemon, or a workspace). Whichever of the two wrote second either found the other's
//! repository (image, files) at its check before writing — a failed step — or both checked
//! before either wrote; then both wrote, and at the barrier, which opens after both wrote, the
//! shared resource holds the second writer's marker, which the first writer sees: a failed step.
//! No ordering lets both pass. Here the barrier makes the sharing concurrent by construction.
//!
//! Then this test checks the same from outside, on the result JSONs: the marker each instance
//! logged, captured and saw is its own and no two are alike; each final accounting reading lists
//! exactly the expected tags and daemon images, and no two instances' tags share a config digest
//! or image id (their labels differ). [`check`] is shown to fail on merged inventories and a
//! shared workspace, from this run's real results and from made-up ones.
//!
//! Needs the Docker daemon and the offline images; nextest runs it in the `docker` test group.
//! `ISOLATION_INSTANCES=N` changes the number of instances (default 6).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::matrix::{self, Job, Options};
use harness::plan::plans;
use harness::session::{self, ProfileChoice};
use model::inventory::Holdings;
use model::result::{ScenarioResult, Status};
use runtime::stop;
use runtime::{self, Swept};

mod common;

use common::docker::root;

const REGISTRY: &str = "registry";
const BASE: (&str, &str) = ("harness/busybox", "1.37");
const REPOSITORY: &str = "isolation/app";
const TAGS: [&str; 2] = ["1.0", "2.0"];

fn instances() -> usize {
    std::env::var("ISOLATION_INSTANCES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(6)
}

/// What one instance left in its result.
#[derive(Debug, Clone)]
struct Observed {
    /// The result file's stem (`isolation.same_names.buildx.rep3`).
    name: String,
    /// The marker its first step drew and printed.
    logged: Option<String>,
    /// The marker its workspace's marker.json held after the last step (a capture).
    captured: Option<String>,
    /// The markers its look steps reported seeing: daemon, registry, workspace.
    seen: BTreeMap<&'static str, Option<String>>,
    /// The accounting's last reading: its registries and its daemon after the last step.
    last: Holdings,
}

/// The value of the first `key=value` word in a log.
fn logged_value(log: &str, key: &str) -> Option<String> {
    log.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
}

fn observe(result: &ScenarioResult) -> Observed {
    let log = |step: &str| {
        result
            .steps
            .iter()
            .find(|s| s.name == step)
            .map(|s| s.log.as_str())
            .unwrap_or_default()
    };
    let seen = [
        ("daemon-marker", "look-daemon"),
        ("registry-marker", "look-registry"),
        ("workspace-marker", "look-registry"),
    ]
    .into_iter()
    .map(|(key, step)| (key, logged_value(log(step), key)))
    .collect();
    Observed {
        name: result.file_stem(),
        logged: logged_value(log("mark"), "marker"),
        captured: result.captures.get("marker").cloned(),
        seen,
        last: result
            .inventory
            .last()
            .and_then(|s| s.holdings.clone())
            .unwrap_or_default(),
    }
}

/// Everything that shows one instance seeing another; empty when each saw only itself.
fn check(observed: &[Observed]) -> Vec<String> {
    let mut problems = Vec::new();
    let expected_tags: BTreeSet<(String, String)> = TAGS
        .iter()
        .map(|t| (REPOSITORY.to_owned(), t.to_string()))
        .chain([(BASE.0.to_owned(), BASE.1.to_owned())])
        .collect();
    let expected_daemon: BTreeSet<String> = TAGS
        .iter()
        .map(|t| format!("{REGISTRY}:5000/{REPOSITORY}:{t}"))
        .collect();
    // Which instances each marker, config digest, manifest digest and image id belongs to.
    let mut owners: BTreeMap<(&str, String), Vec<&str>> = BTreeMap::new();
    for o in observed {
        let name = o.name.as_str();
        let Some(marker) = &o.logged else {
            problems.push(format!("{name}: its first step printed no marker"));
            continue;
        };
        owners
            .entry(("marker", marker.clone()))
            .or_default()
            .push(name);
        if o.captured.as_ref() != Some(marker) {
            problems.push(format!(
                "{name}: its workspace's marker.json held {:?} at the end, not its own {marker}",
                o.captured
            ));
        }
        for (what, value) in &o.seen {
            if value.as_ref() != Some(marker) {
                problems.push(format!("{name}: {what} is {value:?}, not its own {marker}"));
            }
        }
        let registries: Vec<&String> = o.last.registries.keys().collect();
        if registries != [REGISTRY] {
            problems.push(format!(
                "{name}: the last reading has registries {registries:?}"
            ));
        }
        let contents = o.last.registries.get(REGISTRY).cloned().unwrap_or_default();
        let tags: BTreeSet<(String, String)> = contents
            .iter()
            .flat_map(|(repository, tags)| tags.keys().map(|t| (repository.clone(), t.clone())))
            .collect();
        if tags != expected_tags {
            problems.push(format!(
                "{name}: its registry holds {tags:?}, expected exactly {expected_tags:?}"
            ));
        }
        let served: Vec<_> = TAGS
            .iter()
            .filter_map(|t| contents.get(REPOSITORY)?.get(*t))
            .collect();
        let configs: BTreeSet<Option<String>> =
            served.iter().map(|s| s.config_digest.clone()).collect();
        match configs.iter().next() {
            Some(Some(config)) if configs.len() == 1 => {
                owners
                    .entry(("config digest", config.clone()))
                    .or_default()
                    .push(name);
            }
            _ => problems.push(format!(
                "{name}: its tags {TAGS:?} do not serve one config: {configs:?}"
            )),
        }
        for s in &served {
            owners
                .entry(("manifest digest", s.manifest_digest.clone()))
                .or_default()
                .push(name);
        }
        let daemon: BTreeSet<String> = o
            .last
            .daemon
            .keys()
            .filter(|r| !r.starts_with(&format!("{REGISTRY}:5000/{}:", BASE.0)))
            .cloned()
            .collect();
        if daemon != expected_daemon {
            problems.push(format!(
                "{name}: its daemon holds {daemon:?}, expected exactly {expected_daemon:?}"
            ));
        }
        let ids: BTreeSet<&String> = expected_daemon
            .iter()
            .filter_map(|r| o.last.daemon.get(r))
            .collect();
        for id in ids {
            owners
                .entry(("daemon image id", id.clone()))
                .or_default()
                .push(name);
        }
    }
    for ((what, value), names) in owners {
        let mut distinct = names.clone();
        distinct.dedup();
        if distinct.len() > 1 {
            problems.push(format!("{} share the {what} {value}", distinct.join(", ")));
        }
    }
    problems
}

/// The workspace of an instance (as the runner names it: `reports/<run>/<stem>/workspace`).
fn workspace(report_dir: &Path, test: &str, repetition: u32) -> PathBuf {
    let name = test.replace("::", ".");
    let stem = match repetition {
        1 => name,
        n => format!("{name}.rep{n}"),
    };
    report_dir.join(stem).join("workspace")
}

/// Opens the barrier once every instance has pushed (written `pushed`): writes `go` into each
/// workspace. Returns when it opened; never returns if some instance never pushes (the step
/// waiting at the barrier then gives up after 90 s and the plan Fails on `barrier=open`).
async fn barrier(workspaces: &[PathBuf]) -> Instant {
    loop {
        if workspaces.iter().all(|w| w.join("pushed").exists()) {
            for w in workspaces {
                std::fs::write(w.join("go"), b"").expect("the barrier opens");
            }
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn concurrent_plans_see_only_their_own_tags_images_and_files() {
    let n = instances();
    let run_id = common::docker::run_id("isolation", "load");
    let plans =
        plans(&root().join("harness/tests/fixtures/isolation")).expect("the scenario loads");
    assert_eq!(plans.len(), 1, "{plans:?}");
    let plan = &plans[0];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let opening = Instant::now();
    let (results, opened, report_dir, began) = runtime.block_on(async {
        let _signals = stop::listen();
        // Builds the offline images when they are missing or stale (not counted below).
        let ctx = session::open(&ProfileChoice::from_env(), run_id.clone())
            .await
            .expect("docker and the offline images are there");
        let began = Instant::now();
        let jobs: Vec<Job> = (1..=n as u32)
            .map(|repetition| Job {
                ctx: &ctx,
                plan,
                repetition,
            })
            .collect();
        let workspaces: Vec<PathBuf> = (1..=n as u32)
            .map(|r| workspace(&ctx.report_dir, &plan.test_name, r))
            .collect();
        let options = Options {
            jobs: n,
            repeat: 1,
            retry_errors: 0,
        };
        let run = stop::guarded(
            &ctx.docker,
            &ctx.run_id,
            matrix::run_jobs(jobs, options, |r| {
                eprintln!(
                    "{} {:?} after {:.1} s",
                    r.file_stem(),
                    r.status,
                    began.elapsed().as_secs_f64()
                )
            }),
        );
        tokio::pin!(run);
        let open = barrier(&workspaces);
        tokio::pin!(open);
        let mut opened = None;
        let results = loop {
            tokio::select! {
                results = &mut run => break results.expect("not interrupted"),
                at = &mut open, if opened.is_none() => opened = Some(at),
            }
        };
        (results, opened, ctx.report_dir.clone(), began)
    });
    let took = began.elapsed();
    let session = began.duration_since(opening);

    let explained: String = results.iter().map(|r| r.explain()).collect();
    for r in &results {
        assert_eq!(r.status, Status::Pass, "{}:\n{explained}", r.file_stem());
    }
    let opened = opened.expect("every instance pushed");
    let observed: Vec<Observed> = results.iter().map(observe).collect();
    let problems = check(&observed);
    assert!(problems.is_empty(), "{problems:#?}\n{explained}");

    // Not vacuous: the same check on this run's real results, merged as a shared resource
    // would merge them, fails.
    let (a, b) = (&observed[0], &observed[1]);
    // A registry and a daemon shared by A and B: B pushed last, so A's last reading is B's.
    let mut shared = vec![a.clone(), b.clone()];
    shared[0].last = b.last.clone();
    let found = check(&shared);
    assert!(
        found.iter().any(|p| p.contains("share the config digest")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("share the daemon image id")),
        "{found:#?}"
    );
    // One inventory holding both instances' repositories (a registry shared with an instance
    // pushing elsewhere): more than exactly the expected tags.
    let mut merged = vec![a.clone()];
    let other = b.last.registries[REGISTRY][REPOSITORY].clone();
    merged[0]
        .last
        .registries
        .get_mut(REGISTRY)
        .unwrap()
        .insert("isolation/other".into(), other);
    let found = check(&merged);
    assert!(
        found.iter().any(|p| p.contains("its registry holds")),
        "{found:#?}"
    );
    // A workspace shared with B: A's marker.json ended up holding B's marker.
    let mut workspace_shared = vec![a.clone(), b.clone()];
    workspace_shared[0].captured = b.captured.clone();
    let found = check(&workspace_shared);
    assert!(
        found.iter().any(|p| p.contains("marker.json held")),
        "{found:#?}"
    );

    let remaining = runtime.block_on(async {
        let docker = common::docker::plans_daemon().await;
        runtime::count_labelled(&docker, &[format!("{}={run_id}", runtime::LABEL_RUN)])
            .await
            .unwrap()
    });
    assert_eq!(remaining, Swept::default(), "left behind");
    let _ = std::fs::remove_dir_all(&report_dir);
    let slowest = results.iter().map(|r| r.duration_ms).max().unwrap_or(0);
    eprintln!(
        "isolation: {n} instances at once, all Pass, each saw only itself; {:.1} s from the \
         first start to the last teardown (barrier opened after {:.1} s, slowest instance \
         {:.1} s; opening the session before: {:.1} s)",
        took.as_secs_f64(),
        opened.duration_since(began).as_secs_f64(),
        slowest as f64 / 1000.0,
        session.as_secs_f64()
    );
    assert!(took < Duration::from_secs(180), "{took:?}");
}

/// The check without Docker: made-up results of two instances that each saw only themselves
/// pass, and every way of sharing a registry, daemon or workspace is caught.
#[test]
fn the_check_catches_shared_registries_daemons_and_workspaces() {
    use oci::registry::{RegistryContents, ServedTag};

    fn instance(name: &str, marker: &str, config: &str, id: &str) -> Observed {
        let served = |manifest: &str| ServedTag {
            manifest_digest: format!("sha256:{manifest}"),
            config_digest: Some(format!("sha256:{config}")),
            media_type: None,
            layers: None,
        };
        let mut contents = RegistryContents::new();
        contents.insert(
            BASE.0.into(),
            BTreeMap::from([(
                BASE.1.into(),
                ServedTag {
                    manifest_digest: "sha256:base".into(),
                    config_digest: Some("sha256:baseconfig".into()),
                    media_type: None,
                    layers: None,
                },
            )]),
        );
        contents.insert(
            REPOSITORY.into(),
            TAGS.iter()
                .map(|t| (t.to_string(), served(&format!("{config}-manifest"))))
                .collect(),
        );
        Observed {
            name: name.into(),
            logged: Some(marker.into()),
            captured: Some(marker.into()),
            seen: ["daemon-marker", "registry-marker", "workspace-marker"]
                .into_iter()
                .map(|k| (k, Some(marker.to_owned())))
                .collect(),
            last: Holdings {
                registries: BTreeMap::from([(REGISTRY.to_owned(), contents)]),
                daemon: TAGS
                    .iter()
                    .map(|t| (format!("{REGISTRY}:5000/{REPOSITORY}:{t}"), id.to_owned()))
                    .collect(),
                ..Default::default()
            },
        }
    }
    let a = instance("a", "marker-a", "config-a", "sha256:id-a");
    let b = instance("b", "marker-b", "config-b", "sha256:id-b");
    assert_eq!(check(&[a.clone(), b.clone()]), Vec::<String>::new());

    // What `check` finds when A is changed by `change`, next to B.
    let found_when = |change: &dyn Fn(&mut Observed)| {
        let mut changed = a.clone();
        change(&mut changed);
        check(&[changed, b.clone()])
    };
    // A registry shared: A's last reading is what B pushed.
    let found = found_when(&|a| a.last.registries = b.last.registries.clone());
    assert!(
        found
            .iter()
            .any(|p| p == "a, b share the config digest sha256:config-b"),
        "{found:#?}"
    );
    // A daemon shared.
    let found = found_when(&|a| a.last.daemon = b.last.daemon.clone());
    assert!(
        found
            .iter()
            .any(|p| p == "a, b share the daemon image id sha256:id-b"),
        "{found:#?}"
    );
    // A daemon holding another instance's image under another name.
    let found = found_when(&|a| {
        a.last
            .daemon
            .insert("registry:5000/isolation/b:1.0".into(), "sha256:id-b".into());
    });
    assert!(
        found.iter().any(|p| p.starts_with("a: its daemon holds")),
        "{found:#?}"
    );
    // A workspace shared: A's marker.json holds B's marker, or a look step saw B's.
    let found = found_when(&|a| {
        a.captured = Some("marker-b".into());
        a.seen.insert("workspace-marker", Some("marker-b".into()));
    });
    assert_eq!(found.len(), 2, "{found:#?}");
    // Two instances that drew (or were handed) the same marker.
    let mut twin = b.clone();
    twin.logged = a.logged.clone();
    let found = check(&[a, twin]);
    assert!(
        found.iter().any(|p| p == "a, b share the marker marker-a"),
        "{found:#?}"
    );
}

/// The harness asks the shared DinD through the daemon's API, never through a binary inside
/// a container a plugin can reach: a step that plants an image and then replaces DinD's own
/// `docker` CLI with a script that answers nothing cannot hide the image from the harness.
#[test]
fn a_step_replacing_the_docker_cli_in_dind_cannot_hide_an_image() {
    let plans =
        harness::plan::plans(&common::docker::root().join("harness/tests/fixtures/dind_api"))
            .expect("the scenario loads");
    let run = common::docker::run_id("isolation", "dind-api");
    let result = common::docker::in_session(&run, "offline", async |ctx| {
        harness::runner::run_plan(&ctx, &plans[0]).await
    });
    assert_eq!(
        result.status,
        model::result::Status::Fail,
        "{}",
        result.explain()
    );
    let status = |prefix: &str| {
        result
            .assertions
            .iter()
            .find(|a| a.assertion.contains(prefix))
            .map(|a| a.status)
    };
    // The step did tamper (the fake CLI it wrote is in its output), and the daemon check
    // still saw through it: the fake would have said "No such image".
    assert!(
        result.steps[0].log.contains("No such image"),
        "{}",
        result.steps[0].log
    );
    assert_eq!(
        status("output of step tamper contains"),
        Some(model::result::Status::Pass),
        "{}",
        result.explain()
    );
    assert_eq!(
        status("planted/unexpected:1"),
        Some(model::result::Status::Fail),
        "{}",
        result.explain()
    );
    assert_eq!(common::docker::leftovers(&run).total(), 0);
    common::docker::forget(&run);
}
