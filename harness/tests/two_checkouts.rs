//! Two checkouts with different recipes at once on one daemon (issue 19, "Done when"): neither
//! touches the images the other runs.
//!
//! The first checkout is this repository (its fixtures linked into a directory holding only the
//! plan's scenario, so that others' scenarios being edited cannot stop it from loading); its
//! images are `conformance-offline/<name>:offline-<key1>` (the recipe key build-images.sh
//! prints). The second is a copy of its fixtures and scripts in a temporary directory with one
//! recipe changed: `fixtures/images/Dockerfile.busybox` gets one more label, so its recipe key
//! differs (the key hashes every recipe: every image gets a `:offline-<key2>` tag of its own, the
//! changed busybox a different image) while every image stays usable.
//!
//! 1. The second checkout's image build (`harness images` there: a cold build, or a load from
//!    the image cache of an earlier run of this test, then its mutants) runs while the first
//!    checkout runs the plan, again and again (at most three times) until the build ends.
//! 2. Then both checkouts run the plan at the same moment.
//!
//! Every run passes; the first checkout's keyed tags (reference images and mutants) name the
//! same image ids afterwards as before; the second's exist for every image the first has, the
//! busybox one a different image carrying the added label; each run's result records its own
//! key's images only, with the ids those tags name; no run leaves a labelled container, network
//! or volume. When the plans run on another daemon than the build's (the machine's rootless
//! daemon, which both checkouts share and copy their images to by name), each key's names there
//! name that key's images too. The test then puts back the shared `:offline` names the second
//! build moved (they name the last build on the daemon), removes the second checkout's tags and
//! images (and their copies on the plans' daemon) and its directory, and checks that none of its
//! images remains. Two runs of this test from one repository (same second key) take turns on a
//! lock file; runs from different repositories go on at once. The image cache file of the second
//! recipe stays, in a directory of its own inside the machine's image cache (build cache: the
//! next run of this test loads it instead of building; the machine's other caches are not
//! pushed out by it).
//!
//! Needs the Docker daemon (root: the build takes the machine's image lock); nextest runs it in
//! the `docker` test group.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::Digest;

mod common;

use common::docker::{harness, leftovers, root, run_id, wait_within};

/// The plan both checkouts run: the kaniko stand-in builds FROM the busybox image (pushed to
/// the plan's registry as its base), so the changed image really runs, and pushes; every
/// assertion reads the registry (none reads a RUN's output, which the stand-in now and then
/// loses under load such as a cold image build's).
const PLAN: &str = "build_features::push::kaniko";
const SCENARIO: &str = "scenarios/build-features/push.yaml";
const CONTEXT: &str = "fixtures/contexts/features";
/// The image whose recipe the second checkout changes, and the label it adds.
const CHANGED: &str = "conformance-offline/busybox";
const RECIPE: &str = "fixtures/images/Dockerfile.busybox";
const ADDED_LABEL: &str = "org.conformance.second-checkout";
/// First-checkout runs while the second checkout builds, at most.
const RUNS_DURING_BUILD: usize = 3;

/// The docker CLI on the build daemon (the harness's own: images are built there).
fn docker(args: &[&str]) -> std::process::Output {
    docker_on(None, args)
}

/// The docker CLI on a daemon (`-H`), or on the build daemon.
fn docker_on(host: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut command = Command::new("docker");
    if let Some(host) = host {
        command.args(["-H", host]);
    }
    command.args(args).output().expect("the docker CLI runs")
}

/// The daemon the plans run on when it is not the build daemon: the machine's rootless daemon
/// when it answers (one per machine: both checkouts' runs copy their images there by name,
/// [`runtime::isolation`]), else none.
fn plans_host() -> Option<&'static str> {
    static HOST: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        if std::env::var("CONFORMANCE_ISOLATION").is_ok_and(|v| v.trim() == "none") {
            return None;
        }
        let rootless = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(runtime::isolation::rootless_daemon());
        rootless.map(|_| format!("unix://{}", runtime::isolation::ROOTLESS_SOCKET))
    })
    .as_deref()
}

/// Every tag of a `conformance-offline/*` image on the build daemon, with its image id.
fn tags() -> BTreeMap<String, String> {
    tags_on(None)
}

fn tags_on(host: Option<&str>) -> BTreeMap<String, String> {
    let out = docker_on(
        host,
        &[
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
            "conformance-offline/*",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let (tag, id) = line.split_once(' ')?;
            (!tag.contains("<none>")).then(|| (tag.to_owned(), id.to_owned()))
        })
        .collect()
}

/// The tags carrying one of these keys (`…:offline-<key>`).
fn keyed(all: &BTreeMap<String, String>, keys: &[&str]) -> BTreeMap<String, String> {
    all.iter()
        .filter(|(tag, _)| keys.iter().any(|k| tag.ends_with(&format!(":offline-{k}"))))
        .map(|(t, i)| (t.clone(), i.clone()))
        .collect()
}

/// A keyed tag's repository (`conformance-offline/busybox`).
fn repository(tag: &str) -> &str {
    tag.rsplit_once(":offline-").map_or(tag, |(repo, _)| repo)
}

/// The ids of every image (tagged or not) labelled `label=value` on the build daemon.
fn labelled(label: &str, value: &str) -> BTreeSet<String> {
    labelled_on(None, label, value)
}

fn labelled_on(host: Option<&str>, label: &str, value: &str) -> BTreeSet<String> {
    let out = docker_on(
        host,
        &[
            "images",
            "-a",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label={label}={value}"),
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// One label of an image, if it has it.
fn label_of(image: &str, label: &str) -> Option<String> {
    let out = docker(&[
        "image",
        "inspect",
        "-f",
        &format!("{{{{index .Config.Labels \"{label}\"}}}}"),
        image,
    ]);
    let value = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !value.is_empty() && value != "<no value>").then_some(value)
}

/// What build-images.sh of a checkout prints: its key (`--key`, `--mutants-key`) or, with no
/// argument, builds what is missing and prints the key.
fn build_script(checkout: &Path, arg: Option<&str>) -> String {
    let out = Command::new("bash")
        .arg(checkout.join("fixtures/images/build-images.sh"))
        .args(arg)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build-images.sh {arg:?} in {}",
        checkout.display()
    );
    let key = String::from_utf8(out.stdout).unwrap();
    let key = key.lines().last().unwrap_or_default().trim().to_owned();
    assert_eq!(key.len(), 16, "{key}");
    key
}

/// The first checkout: this repository's fixtures and scripts linked, the plan's scenario and
/// its build context copied (a `workspace:` through a link is refused).
fn first_checkout() -> Checkout {
    let repo = tempfile::tempdir().unwrap();
    for linked in ["fixtures", "scripts"] {
        std::os::unix::fs::symlink(root().join(linked), repo.path().join(linked)).unwrap();
    }
    let context = CONTEXT.trim_start_matches("fixtures/");
    copy_dir(&root().join(CONTEXT), &repo.path().join(context));
    let scenario = std::fs::read_to_string(root().join(SCENARIO))
        .unwrap()
        .replace(
            &format!("workspace: {CONTEXT}"),
            &format!("workspace: {context}"),
        );
    assert!(scenario.contains(&format!("workspace: {context}")));
    write_scenario(repo.path(), &scenario);
    Checkout(repo)
}

/// The second checkout: a copy of the fixtures (recipes, plugins, mutants, contexts, profiles)
/// and scripts, the plan's scenario, and one recipe changed.
fn second_checkout(key1: &str) -> Checkout {
    let repo = tempfile::tempdir().unwrap();
    for copied in ["fixtures", "scripts"] {
        copy_dir(&root().join(copied), &repo.path().join(copied));
    }
    write_scenario(
        repo.path(),
        &std::fs::read_to_string(root().join(SCENARIO)).unwrap(),
    );
    // A faithful copy: the same recipes, the same key.
    assert_eq!(build_script(repo.path(), Some("--key")), key1);
    // One label more on the busybox image: its value names this repository, so that another
    // checkout of the project running this test on the same daemon gets a key of its own, and
    // every run of it here the same key (loaded from the image cache after the first).
    let mut recipe = std::fs::read_to_string(repo.path().join(RECIPE)).unwrap();
    let origin = hex::encode(sha2::Sha256::digest(root().to_string_lossy().as_bytes()));
    recipe.push_str(&format!(
        "# harness/tests/two_checkouts.rs: a second checkout's recipe\nLABEL {ADDED_LABEL}=\"{}\"\n",
        &origin[..12]
    ));
    std::fs::write(repo.path().join(RECIPE), recipe).unwrap();
    Checkout(repo)
}

/// The second checkout's image cache: a directory of its own inside the machine's (as
/// build-images.sh picks it), so that its cache file never counts among the machine's recent
/// caches (a build keeps only the three newest) and pushes out another checkout's.
fn second_cache() -> PathBuf {
    let machine = match std::env::var_os("CONFORMANCE_IMAGE_CACHE") {
        Some(dir) => PathBuf::from(dir),
        // SAFETY: geteuid and access only read; the path is a NUL-terminated literal.
        None if unsafe {
            libc::geteuid() == 0 || libc::access(c"/var/cache".as_ptr(), libc::W_OK) == 0
        } =>
        {
            PathBuf::from("/var/cache/conformance-images")
        }
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"))
            .join("conformance-images"),
    };
    machine.join("second-checkout")
}

/// Waits for the lock of this second key (a file in the second checkout's cache directory),
/// held until dropped: runs of this test for different keys go on at once.
fn take_turn(key2: &str) -> std::fs::File {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(second_cache()).unwrap();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(second_cache().join(format!("{key2}.lock")))
        .unwrap();
    // SAFETY: flock on a descriptor this function owns; released when the file is closed.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "flock: {}", std::io::Error::last_os_error());
    file
}

/// A checkout in a temporary directory, removed when dropped; after a failure its reports are
/// copied to this repository's reports/ first (the evidence).
struct Checkout(tempfile::TempDir);

impl Checkout {
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let reports = self.path().join("reports");
        if std::thread::panicking() && reports.is_dir() {
            let _ = std::fs::create_dir_all(root().join("reports"));
            let _ = Command::new("cp")
                .arg("-a")
                .arg(reports.join("."))
                .arg(root().join("reports"))
                .status();
            eprintln!(
                "the runs' reports are kept in {}",
                root().join("reports").display()
            );
        }
    }
}

/// The second checkout's build, stopped (SIGTERM: the harness stops its build script's process
/// group) should the test fail before it ends.
struct Building(std::process::Child);

impl Drop for Building {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            if let Ok(pid) = libc::pid_t::try_from(self.0.id()) {
                // SAFETY: kill only sends a signal to the child this test started.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn write_scenario(repo: &Path, text: &str) {
    let file = repo.join(SCENARIO);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

/// `cp -a`: modes kept (the recipe key hashes them), links copied as links.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// One `harness run PLAN` in a checkout.
struct Ran {
    run: String,
    checkout: PathBuf,
    started: Instant,
    ended: Instant,
    code: Option<i32>,
    printed: String,
}

fn run_plan(checkout: &Path, case: &str) -> Ran {
    let run = run_id("checkouts", case);
    let started = Instant::now();
    let mut child = harness()
        .args(["run", PLAN, "--run-id", &run])
        .env("CONFORMANCE_ROOT", checkout)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let err = std::thread::spawn(move || read_all(stderr));
    let out = read_all(stdout);
    let status = wait_within(&mut child, Duration::from_secs(300), &run);
    Ran {
        run,
        checkout: checkout.to_owned(),
        started,
        ended: Instant::now(),
        code: status.code(),
        printed: out + &err.join().unwrap(),
    }
}

fn read_all(mut from: impl Read) -> String {
    let mut text = String::new();
    let _ = from.read_to_string(&mut text);
    text
}

impl Ran {
    fn assert_passed(&self) {
        assert_eq!(self.code, Some(0), "{}:\n{}", self.run, self.printed);
        assert!(
            self.printed.contains(&format!("PASS  {PLAN}")),
            "{}",
            self.printed
        );
        assert_eq!(
            leftovers(&self.run).total(),
            0,
            "{} left resources",
            self.run
        );
    }

    /// The result's status and what played each role: role → (image, id).
    fn images(&self) -> BTreeMap<String, (String, String)> {
        let file = self
            .checkout
            .join("reports")
            .join(&self.run)
            .join(format!("{}.json", PLAN.replace("::", ".")));
        let result: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(result["status"], "pass", "{result}");
        let images = result["images"].as_object().unwrap();
        images
            .iter()
            .map(|(role, record)| {
                let field = |name: &str| record[name].as_str().unwrap_or_default().to_owned();
                (role.clone(), (field("image"), field("id")))
            })
            .collect()
    }

    /// Its result records only images of this key, with the ids those tags name.
    fn assert_ran_key(&self, key: &str, ids: &BTreeMap<String, String>) {
        let images = self.images();
        for role in ["busybox", "kaniko", "registry"] {
            assert!(
                images.contains_key(role),
                "{}: no {role} in {images:?}",
                self.run
            );
        }
        for (role, (image, id)) in &images {
            assert!(
                image.ends_with(&format!(":offline-{key}")),
                "{}: role {role} ran {image}, not an image of recipe {key}",
                self.run
            );
            assert_eq!(
                ids.get(image),
                Some(id),
                "{}: role {role} ran {image}",
                self.run
            );
        }
    }
}

/// Puts the daemon back: the names the second checkout's build moved onto its images (`:offline`,
/// `base:trixie`) name what they named `before` (without `before`, after an interrupted run:
/// the first checkout's image of the same name, if any), its keyed tags go, then its images
/// left untagged. Returns what could not be done.
fn remove_second(before: Option<&BTreeMap<String, String>>, keys: [&str; 4]) -> Vec<String> {
    let [key1, mkey1, key2, mkey2] = keys;
    let mut problems = Vec::new();
    let theirs = || {
        let mut ids = labelled("conformance.recipe", key2);
        ids.extend(labelled("conformance.mutants", mkey2));
        ids
    };
    let ids = theirs();
    let now = tags();
    let second_keyed = keyed(&now, &[key2, mkey2]);
    for (tag, id) in &now {
        if !ids.contains(id) || second_keyed.contains_key(tag) {
            continue;
        }
        let back = match before {
            Some(before) => before.get(tag).cloned(),
            None => tag.rsplit_once(':').and_then(|(repo, _)| {
                [key1, mkey1]
                    .iter()
                    .find_map(|k| now.get(&format!("{repo}:offline-{k}")).cloned())
            }),
        };
        let out = match &back {
            Some(old) => docker(&["tag", old, tag]),
            None => docker(&["rmi", tag]),
        };
        if !out.status.success() {
            problems.push(format!(
                "{tag} → {back:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let theirs_tagged: Vec<String> = keyed(&tags(), &[key2, mkey2]).into_keys().collect();
    for chunk in theirs_tagged.chunks(50) {
        let mut args = vec!["rmi"];
        args.extend(chunk.iter().map(String::as_str));
        let out = docker(&args);
        problems.extend(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|line| !gone(line))
                .map(str::to_owned),
        );
    }
    // Untagged now (a base image the cold build replaced, an image of an older build of this
    // recipe).
    for id in theirs() {
        let out = docker(&["rmi", &id]);
        if !out.status.success() && !gone(&String::from_utf8_lossy(&out.stderr)) {
            problems.push(format!(
                "{id}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    // The plans' daemon holds copies of the images its runs used, by their keyed names only.
    if let Some(host) = plans_host() {
        let copies = keyed(&tags_on(Some(host)), &[key2, mkey2]);
        let mut ids: BTreeSet<String> = labelled_on(Some(host), "conformance.recipe", key2);
        ids.extend(labelled_on(Some(host), "conformance.mutants", mkey2));
        let targets = copies.keys().cloned().chain(ids);
        for target in targets {
            let out = docker_on(Some(host), &["rmi", &target]);
            if !out.status.success() && !gone(&String::from_utf8_lossy(&out.stderr)) {
                problems.push(format!(
                    "{host} {target}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    problems
}

/// What `docker rmi` says of an image removed meanwhile.
fn gone(stderr: &str) -> bool {
    stderr.contains("No such image") || stderr.contains("reference does not exist")
}

/// Cleans up after a failure too (a panic leaves the second checkout's images otherwise).
struct Cleanup {
    before: BTreeMap<String, String>,
    keys: [String; 4],
    done: bool,
}

impl Cleanup {
    fn run(&mut self) -> Vec<String> {
        self.done = true;
        let [a, b, c, d] = &self.keys;
        remove_second(Some(&self.before), [a, b, c, d])
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.done {
            let problems = self.run();
            if !problems.is_empty() {
                eprintln!("cleanup after the failure: {problems:#?}");
            }
        }
    }
}

#[test]
fn two_checkouts_with_different_recipes_run_at_once_without_touching_each_others_images() {
    let began = Instant::now();
    // The first checkout's images, built if missing (labelled with this checkout).
    let key1 = build_script(&root(), None);
    let mkey1 = build_script(&root(), Some("--mutants-key"));
    let first = first_checkout();
    let second = second_checkout(&key1);
    let second_path = second.path().to_owned();
    let key2 = build_script(second.path(), Some("--key"));
    let mkey2 = build_script(second.path(), Some("--mutants-key"));
    assert_ne!(key1, key2, "the changed recipe changes the key");
    assert_ne!(mkey1, mkey2);
    let keys = [key1.as_str(), mkey1.as_str(), key2.as_str(), mkey2.as_str()];
    // Another run of this test from this repository (another `cargo nextest run` beside this
    // one) has the same second key: they take turns.
    let _turn = take_turn(&key2);
    // What an interrupted earlier run left: the second build must really run.
    let problems = remove_second(None, keys);
    assert!(problems.is_empty(), "{problems:#?}");

    let before = tags();
    let ours = keyed(&before, &[&key1, &mkey1]);
    let changed1 = format!("{CHANGED}:offline-{key1}");
    assert!(ours.contains_key(&changed1), "{ours:#?}");
    assert!(keyed(&before, &[&key2, &mkey2]).is_empty());
    let mut cleanup = Cleanup {
        before: before.clone(),
        keys: keys.map(str::to_owned),
        done: false,
    };
    let prepared = began.elapsed();

    // 1. The second checkout builds its images while the first runs the plan.
    let build_started = Instant::now();
    let mut build = Building(
        harness()
            .args(["images"])
            .env("CONFORMANCE_ROOT", second.path())
            .env("CONFORMANCE_IMAGE_CACHE", second_cache())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let readers: Vec<_> = [
        Box::new(build.0.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(build.0.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|pipe| {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let at = build_started.elapsed().as_secs_f64();
                log.lock().unwrap().push(format!("{at:6.1} s  {line}"));
            }
        })
    })
    .collect();
    let mut during = Vec::new();
    let (mut started_inside, mut ended_inside) = (0, 0);
    loop {
        let building = build.0.try_wait().unwrap().is_none();
        if during.len() == RUNS_DURING_BUILD || !building && !during.is_empty() {
            break;
        }
        started_inside += usize::from(building);
        let ran = run_plan(first.path(), &format!("first{}", during.len() + 1));
        ended_inside += usize::from(build.0.try_wait().unwrap().is_none());
        during.push(ran);
    }
    let built = wait_within(
        &mut build.0,
        Duration::from_secs(1200),
        "the second checkout's build",
    );
    let build_time = build_started.elapsed();
    readers.into_iter().for_each(|r| r.join().unwrap());
    let log = log.lock().unwrap().join("\n");
    assert!(built.success(), "the second checkout's build:\n{log}");
    assert!(
        log.contains(&format!("recipe {key2}")),
        "the second checkout built or loaded its images:\n{log}"
    );
    for ran in &during {
        ran.assert_passed();
    }
    assert!(
        started_inside >= 1,
        "no run of the first checkout started while the second built ({build_time:?}):\n{log}"
    );

    // 2. Both checkouts run the plan at the same moment.
    let (one, two) = std::thread::scope(|s| {
        let one = s.spawn(|| run_plan(first.path(), "first-together"));
        let two = s.spawn(|| run_plan(second.path(), "second-together"));
        (one.join().unwrap(), two.join().unwrap())
    });
    one.assert_passed();
    two.assert_passed();
    assert!(
        one.started < two.ended && two.started < one.ended,
        "the runs overlapped"
    );

    // The first checkout's images are where they were; the second's are its own.
    let after = tags();
    for (tag, id) in &ours {
        assert_eq!(after.get(tag), Some(id), "{tag} moved");
    }
    let theirs = keyed(&after, &[&key2, &mkey2]);
    let repositories = |tags: &BTreeMap<String, String>| -> BTreeSet<String> {
        tags.keys().map(|t| repository(t).to_owned()).collect()
    };
    assert_eq!(repositories(&theirs), repositories(&ours), "{theirs:#?}");
    let changed2 = format!("{CHANGED}:offline-{key2}");
    assert_ne!(
        after[&changed2], after[&changed1],
        "the changed recipe's image differs"
    );
    assert!(
        label_of(&changed2, ADDED_LABEL).is_some(),
        "{changed2} lacks {ADDED_LABEL}"
    );
    assert_eq!(label_of(&changed1, ADDED_LABEL), None);
    // Each run ran its own key's images.
    for ran in during.iter().chain([&one]) {
        ran.assert_ran_key(&key1, &ours);
    }
    two.assert_ran_key(&key2, &theirs);
    assert_ne!(one.images()["busybox"].1, two.images()["busybox"].1);
    // On the plans' daemon (when it is another), the names the runs ran name those images
    // still (copies of older builds of a key, of roles not run here, are not this test's).
    if let Some(host) = plans_host() {
        let copies = tags_on(Some(host));
        for ran in during.iter().chain([&one, &two]) {
            for (role, (image, id)) in ran.images() {
                assert_eq!(copies.get(&image), Some(&id), "{host}: {role} {image}");
            }
        }
        assert!(copies.contains_key(&changed2), "{host} ran no {changed2}?");
    }
    // The shared names the second build moved onto its images (put back below): `:offline`
    // names the last build on the daemon, by design; `base:trixie` what the builds start from.
    let second_ids: BTreeSet<String> = labelled("conformance.recipe", &key2)
        .union(&labelled("conformance.mutants", &mkey2))
        .cloned()
        .collect();
    let moved: Vec<&String> = after
        .iter()
        .filter(|(tag, id)| !theirs.contains_key(*tag) && second_ids.contains(*id))
        .map(|(tag, _)| tag)
        .collect();
    eprintln!("shared names the second build moved: {moved:?}");

    // The daemon as it was: the second checkout's images gone, the moved names back.
    let problems = cleanup.run();
    assert!(problems.is_empty(), "{problems:#?}");
    let restored = tags();
    assert!(keyed(&restored, &[&key2, &mkey2]).is_empty());
    assert!(labelled("conformance.recipe", &key2).is_empty());
    assert!(labelled("conformance.mutants", &mkey2).is_empty());
    if let Some(host) = plans_host() {
        assert!(keyed(&tags_on(Some(host)), &[&key2, &mkey2]).is_empty());
        assert!(labelled_on(Some(host), "conformance.recipe", &key2).is_empty());
    }
    for tag in &moved {
        assert_eq!(restored.get(*tag), before.get(*tag), "{tag} not put back");
    }
    for (tag, id) in &ours {
        assert_eq!(restored.get(tag), Some(id), "{tag} moved");
    }
    drop(second);
    assert!(!second_path.exists(), "{} remains", second_path.display());

    eprintln!(
        "keys {key1} (first) and {key2} (second); prepared in {:.1} s; second build {:.1} s with \
         {} first-checkout run(s) ({started_inside} started and {ended_inside} ended during it; \
         {:.1} s each); both plans at once {:.1} s; {} shared names moved and put back; total {:.1} s\n{log}",
        prepared.as_secs_f64(),
        build_time.as_secs_f64(),
        during.len(),
        during
            .iter()
            .map(|r| (r.ended - r.started).as_secs_f64())
            .sum::<f64>()
            / during.len() as f64,
        (one.ended.max(two.ended) - one.started.min(two.started)).as_secs_f64(),
        moved.len(),
        began.elapsed().as_secs_f64(),
    );
}
