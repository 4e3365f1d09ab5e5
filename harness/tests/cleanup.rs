//! Teardown that cannot be skipped, checked for real: the `harness` binary runs a small plan and
//! is cut short — its stdout closed, SIGINT or SIGTERM at early moments (during creation), a
//! panic in the plan, a panic outside it — and afterwards no container, network or volume
//! labelled with that run may remain. `harness sweep` removes only the leftovers of processes
//! that are gone. Each test has run ids of its own and counts only those.
//!
//! These need the Docker daemon and the offline images (the harness brings both up when
//! missing); nextest runs them in the `docker` test group.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runtime::{self, Swept};

mod common;

use common::docker::{forget, harness, leftovers, root, stderr_of, wait_within, with_docker};

/// A plan that brings a whole environment up (network, two volumes, registry, DinD, a step) in
/// a few seconds.
const PLAN: &str = "build_only::no_push::kaniko";

fn run_id(case: &str) -> String {
    common::docker::run_id("cleanup", case)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {}", child.id());
}

/// `harness run PLAN | head -1`: the reader goes away after the first line. Writing to the
/// closed pipe (EPIPE) ends the printing, not the run: no panic, the run ends normally (reports
/// written, exit 0) and leaves nothing behind.
#[test]
fn closed_stdout_is_a_normal_end() {
    let run = run_id("pipe");
    let began = Instant::now();
    let mut child = harness()
        .args(["run", PLAN, "--run-id", &run])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader (and with it the pipe's only read end) is dropped here, like `head -1` exiting.
    assert!(first.starts_with(&format!("run {run}:")), "{first}");
    let status = wait_within(&mut child, Duration::from_secs(120), "closed stdout");
    let took = began.elapsed();
    let stderr = stderr_of(&mut child);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let summary = root().join("reports").join(&run).join("summary.json");
    assert!(summary.exists(), "the run went on to its end: {stderr}");
    assert_eq!(leftovers(&run), Swept::default());
    eprintln!("closed stdout: exit 0, 0 leftovers, {took:?}");
    assert!(took < Duration::from_secs(90), "{took:?}");
    forget(&run);
}

/// SIGINT or SIGTERM at early moments: twice before anything was created, then at 0–300 ms
/// after the session opened (the network, volumes and containers are being created then). Every
/// try ends with 130 within seconds and leaves nothing labelled with its run.
#[test]
fn early_signals_leave_nothing() {
    let mut report = Vec::new();
    let mut in_creation = 0;
    // (after the session opened, delay in ms)
    let tries: Vec<(bool, u64)> = [(false, 0), (false, 120)]
        .into_iter()
        .chain((0..10).map(|i| (true, i * 33)))
        .collect();
    for (i, (after_open, ms)) in tries.into_iter().enumerate() {
        let run = run_id(&format!("signal{i}"));
        let name = if i % 3 == 2 { "TERM" } else { "INT" };
        let mut child = harness()
            .args(["run", PLAN, "--run-id", &run])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        if after_open {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert!(line.starts_with(&format!("run {run}:")), "{line}");
        }
        std::thread::sleep(Duration::from_millis(ms));
        let sent = Instant::now();
        signal(&child, name);
        let status = wait_within(&mut child, Duration::from_secs(30), &run);
        let took = sent.elapsed();
        let stderr = stderr_of(&mut child);
        // Before the handlers are installed (the first milliseconds) the signal's default
        // action ends the process; nothing exists yet then.
        use std::os::unix::process::ExitStatusExt;
        assert!(
            status.code() == Some(130) || status.signal().is_some(),
            "try {i}: {status:?}\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "try {i}: {stderr}");
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
        // The plan had begun (its result says it was stopped) rather than never started.
        let mid_plan = rest.contains("stopped by SIG");
        in_creation += usize::from(mid_plan);
        let left = leftovers(&run);
        report.push(format!(
            "try {i}: SIG{name} {ms} ms after {}: {status}, {}, stopped in {took:?}, leftovers {left}",
            if after_open { "the session opened" } else { "start" },
            if mid_plan { "plan under way" } else { "before the plan" },
        ));
        assert_eq!(left, Swept::default(), "try {i}: {stderr}");
        assert!(took < Duration::from_secs(20), "try {i}: {took:?}");
        forget(&run);
    }
    eprintln!("{}", report.join("\n"));
    // Most tries after the session opened land while the environment is being created.
    assert!(in_creation >= 5, "{}", report.join("\n"));
}

/// A plan that panics (after its environment came up) is torn down and reported as Error
/// "the harness panicked"; the run goes on to its end.
#[test]
fn panic_in_a_plan_is_torn_down_and_an_error() {
    let run = run_id("panic-plan");
    let began = Instant::now();
    let output = harness()
        .args(["run", PLAN, "--run-id", &run])
        .env("CONFORMANCE_TEST_PANIC_AFTER", "environment")
        .output()
        .unwrap();
    let took = began.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("ERROR build_only::no_push::kaniko")
            && stdout.contains("the harness panicked: injected fault after environment"),
        "{stdout}"
    );
    let result = root()
        .join("reports")
        .join(&run)
        .join("build_only.no_push.kaniko.json");
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(result).unwrap()).unwrap();
    assert_eq!(result["status"], "error");
    assert_eq!(leftovers(&run), Swept::default());
    eprintln!("panic in a plan: Error, 0 leftovers, {took:?}");
    assert!(took < Duration::from_secs(90), "{took:?}");
    forget(&run);
}

/// A panic outside any plan (here: in the callback printing a result, as `println!` on a closed
/// pipe used to) unwinds through the plans still running: each environment removes itself as it
/// is dropped.
#[test]
fn panic_outside_the_plans_sweeps_the_environments_in_flight() {
    let run = run_id("panic-run");
    let began = Instant::now();
    let output = harness()
        .args([
            "run", PLAN, "--run-id", &run, "--repeat", "2", "--jobs", "2",
        ])
        .env("CONFORMANCE_TEST_PANIC_AFTER", "result")
        .output()
        .unwrap();
    let took = began.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(101), "{stderr}");
    assert!(stderr.contains("injected fault after result"), "{stderr}");
    assert!(
        stderr.contains("was dropped before its teardown: removed"),
        "the other repetition was in flight: {stderr}"
    );
    assert_eq!(leftovers(&run), Swept::default());
    eprintln!("panic outside the plans: exit 101, 0 leftovers, {took:?}");
    assert!(took < Duration::from_secs(90), "{took:?}");
    forget(&run);
}

/// `harness sweep` removes only what processes that are gone left: resources of a live process,
/// of another host and without an owner stay; those of a dead pid, or of a pid now naming
/// another process, go. `--run ID` removes a run whatever its owner. Fakes (a network and a
/// volume each) carry a label of this test, and the sweep is narrowed to it.
#[test]
fn sweep_removes_only_runs_whose_process_is_gone() {
    let test = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let host = runtime::hostname();
    let host = host.as_str();
    let me = std::process::id().to_string();
    let me = me.as_str();
    let my_start = runtime::process_start(std::process::id()).unwrap();
    let my_start = my_start.as_str();
    let dead = {
        let mut child = Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        child.id().to_string()
    };
    let dead = dead.as_str();
    // (case, owner labels, kept by the sweep)
    type Fake<'a> = (&'a str, Vec<(&'a str, &'a str)>, bool);
    let owners: Vec<Fake> = vec![
        (
            "live",
            vec![("host", host), ("pid", me), ("pid-start", my_start)],
            true,
        ),
        ("dead", vec![("host", host), ("pid", dead)], false),
        (
            "reused",
            vec![("host", host), ("pid", me), ("pid-start", "1")],
            false,
        ),
        (
            "remote",
            vec![("host", "another-host.invalid"), ("pid", dead)],
            true,
        ),
        ("legacy", vec![], true),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let docker = rt.block_on(runtime::connect()).unwrap();
    let _fakes = RemoveOnDrop(format!("io.conformance.test={test}"));
    let run_of = |case: &str| format!("test-sweep-{test}-{case}");
    for (case, labels, _) in &owners {
        let mut all = std::collections::HashMap::from([
            (runtime::LABEL_MANAGED.to_owned(), "true".to_owned()),
            (runtime::LABEL_RUN.to_owned(), run_of(case)),
            ("io.conformance.test".to_owned(), test.clone()),
        ]);
        for (k, v) in labels {
            all.insert(format!("io.conformance.{k}"), v.to_string());
        }
        let name = format!("conformance-test-sweep-{test}-{case}");
        rt.block_on(async {
            docker
                .create_network(bollard::models::NetworkCreateRequest {
                    name: name.clone(),
                    labels: Some(all.clone()),
                    ..Default::default()
                })
                .await
                .unwrap();
            docker
                .create_volume(bollard::models::VolumeCreateRequest {
                    name: Some(name.clone()),
                    labels: Some(all.clone()),
                    ..Default::default()
                })
                .await
                .unwrap();
        });
    }
    let count = |case: &str| {
        rt.block_on(runtime::count_labelled(
            &docker,
            &[format!("{}={}", runtime::LABEL_RUN, run_of(case))],
        ))
        .unwrap()
        .total()
    };
    let began = Instant::now();
    let output = harness()
        .args(["sweep", "--label", &format!("io.conformance.test={test}")])
        .output()
        .unwrap();
    let took = began.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for (case, _, kept) in &owners {
        let expected = if *kept { 2 } else { 0 };
        assert_eq!(count(case), expected, "{case}: {stdout}");
    }
    assert!(stdout.contains("its process is running"), "{stdout}");
    assert!(stdout.contains("another-host.invalid"), "{stdout}");
    assert!(stdout.contains("no owning process recorded"), "{stdout}");
    // An explicit run goes whatever its owner.
    for (case, _, kept) in &owners {
        if *kept {
            let status = harness()
                .args(["sweep", "--run", &run_of(case)])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            assert_eq!(count(case), 0, "{case}");
        }
    }
    eprintln!("sweep scope: {took:?}\n{stdout}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

/// Removes what carries this label when dropped, whether the test passed or not.
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let label = self.0.clone();
        let _ = std::thread::spawn(move || {
            with_docker(async |docker| {
                runtime::remove_until_gone(&docker, vec![label], None, Duration::from_secs(10))
                    .await
            })
        })
        .join();
    }
}

/// SIGINT while the session is building images: the harness ends within seconds, and the build
/// (a process group of its own) goes with it instead of running on unowned.
#[test]
fn a_signal_during_the_image_build_stops_the_build_too() {
    let run = run_id("build");
    let pidfile = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    std::fs::remove_file(&pidfile).unwrap();
    let profile = root().join("harness/tests/fixtures/cleanup/slow-build.yaml");
    let mut child = harness()
        .args(["run", PLAN, "--run-id", &run, "--profile"])
        .arg(&profile)
        .env("CONFORMANCE_TEST_BUILD_PIDFILE", &pidfile)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    let build_pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pidfile) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                break pid;
            }
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the build never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let sent = Instant::now();
    signal(&child, "INT");
    let status = wait_within(&mut child, Duration::from_secs(15), "signal during build");
    let took = sent.elapsed();
    let stderr = stderr_of(&mut child);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(status.code(), Some(0), "{stderr}");
    // The build's shell (and its sleeping child) are gone within a moment.
    let gone = (0..100).any(|_| {
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(build_pid, 0) } == 0;
        if alive {
            std::thread::sleep(Duration::from_millis(50));
        }
        !alive
    });
    assert!(gone, "the image build (pid {build_pid}) still runs");
    assert_eq!(leftovers(&run), Swept::default());
    eprintln!("signal during the image build: {status:?} after {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    forget(&run);
}
