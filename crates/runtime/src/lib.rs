//! The containers a scenario runs in: an isolated network, a registry, a Docker-in-Docker daemon
//! sharing its socket through a `/var/run` volume, and one container per plugin step with the
//! workspace mounted at `/harness`.
//!
//! Every container, network and volume carries labels naming the run, the scenario, this
//! instance and the owning process (host, pid and its start time). [`Environment::teardown`]
//! removes everything carrying the instance label, whatever happened before, and repeats until
//! nothing does; an environment dropped without a teardown (a panic, a dropped future) sweeps
//! itself in its `Drop`. Creates run to their end in tasks of their own and stop once the
//! process is asked to stop ([`crate::stop`]). [`sweep_gone`] removes the leftovers of processes
//! that are gone, [`sweep`] those of one run (or, explicitly, everything). A service (registry,
//! DinD) that does not become ready in time, or stops while a step runs, is an Error naming it
//! with its log tail ([`Environment::while_services_run`]).

pub mod errors;
pub mod isolation;
pub mod profile;
pub mod quota;
pub mod ssh;
pub mod stop;
pub mod tls;

mod environment;
mod health;
mod resources;
mod step;
mod sweep;

use std::time::Duration;

use bollard::Docker;

use crate::errors::DockerConnectError;

pub const LABEL_MANAGED: &str = "io.conformance.managed";
pub const LABEL_RUN: &str = "io.conformance.run";
pub const LABEL_SCENARIO: &str = "io.conformance.scenario";
pub const LABEL_INSTANCE: &str = "io.conformance.instance";
/// The pid of the harness process that created the resource.
pub const LABEL_PID: &str = "io.conformance.pid";
/// The host name of the machine that process runs on.
pub const LABEL_HOST: &str = "io.conformance.host";
/// When that process started (clock ticks since boot, `/proc/PID/stat`), so that a reused pid
/// is not taken for the owner.
pub const LABEL_PID_START: &str = "io.conformance.pid-start";
/// The PID namespace that pid lives in (`pid:[INODE]`, `/proc/self/ns/pid`): a pid means
/// nothing in another namespace (a harness run in a container of its own).
pub const LABEL_PID_NS: &str = "io.conformance.pid-ns";
/// The prefix of a run's private directory in the temporary directory (htpasswd, TLS key, SSH
/// keys): `conformance-auth-RUN-INSTANCE-XXXXXX`.
pub const PRIVATE_DIR_PREFIX: &str = "conformance-auth-";

/// The port every registry listens on inside the scenario's network.
pub const REGISTRY_PORT: u16 = 5000;
/// Where the base image for test Dockerfiles is pushed before the steps run.
pub const BASE_IMAGE_REPOSITORY: &str = "harness/busybox";
pub const BASE_IMAGE_TAG: &str = "1.37";

const REGISTRY_READY: Duration = Duration::from_secs(30);
const DIND_READY: Duration = Duration::from_secs(90);
/// The most of a container's log kept (its end).
const LOG_LIMIT: usize = 64 * 1024;
/// The most of a registry's log kept (its end): assertions read it, and a registry writes a
/// line of some 700 bytes per request, so [`LOG_LIMIT`] would hold only the last hundred or so.
const REGISTRY_LOG_LIMIT: usize = 1024 * 1024;
/// The lines of a container's log the daemon is asked for: its end only.
const LOG_TAIL_LINES: usize = 5000;
/// How long reading a container's log may take, whatever it holds.
const LOG_READ_BUDGET: Duration = Duration::from_secs(20);
/// How long a teardown may try before it reports what remains.
const TEARDOWN_DEADLINE: Duration = Duration::from_secs(30);
/// How long an environment dropped without a teardown tries to remove itself.
const DROP_SWEEP_DEADLINE: Duration = Duration::from_secs(20);

/// How long connecting to the Docker daemon (version negotiation and a ping) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the Docker daemon is looked for: `DOCKER_HOST` when set, else the default socket.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned())
}

/// The daemon's default address (no `DOCKER_HOST`).
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Whether `DOCKER_HOST` points somewhere other than the local default socket (then starting
/// a local daemon cannot help).
pub fn docker_host_is_elsewhere() -> bool {
    let host = docker_host();
    host != DEFAULT_DOCKER_HOST && host != "unix:///run/docker.sock"
}

/// Connects to the Docker daemon (DOCKER_HOST or the default socket), within
/// [`CONNECT_TIMEOUT`].
pub async fn connect() -> Result<Docker, DockerConnectError> {
    let failed = |reason: String| DockerConnectError {
        host: docker_host(),
        reason,
        hint: if docker_host_is_elsewhere() {
            "; or point DOCKER_HOST at a daemon that runs (unset: the default socket)".to_owned()
        } else {
            String::new()
        },
    };
    let docker = Docker::connect_with_defaults().map_err(|e| failed(e.to_string()))?;
    let answered = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let docker = docker.negotiate_version().await?;
        docker.ping().await?;
        Ok::<_, bollard::errors::Error>(docker)
    })
    .await;
    match answered {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed(format!(
            "no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

pub use environment::{
    BaseImage, Environment, Limits, LogSearch, SearchStopped, ServiceRun, Services,
};
pub use health::StoppedService;
pub use model::result::EnvironmentPhases;
pub use resources::{out_of_disk, DiskSpace};
pub use step::StepBounds;

/// Where every step sees the plan's outputs folder (see [`Environment::mount_outputs`]).
pub const OUTPUTS_MOUNT: &str = "/harness-outputs";
pub use sweep::*;

/// Writes a new file `name` (never an existing one, never through a symlink) into `dir`
/// (created with mode 0700 when missing) with the given mode.
pub(crate) fn write_new_file(
    dir: &std::path::Path,
    name: &str,
    contents: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dir.join(name))?;
    file.write_all(contents)
}

/// The labels naming the process that creates a resource: host, pid, the pid's start time and
/// its PID namespace.
pub fn owner_labels() -> [(String, String); 4] {
    let pid = std::process::id();
    [
        (LABEL_HOST.to_owned(), hostname()),
        (LABEL_PID.to_owned(), pid.to_string()),
        (
            LABEL_PID_START.to_owned(),
            process_start(pid).unwrap_or_default(),
        ),
        (LABEL_PID_NS.to_owned(), pid_namespace().unwrap_or_default()),
    ]
}

/// This process's PID namespace (`pid:[4026531836]`), `None` where `/proc` does not say.
pub fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|link| link.to_string_lossy().into_owned())
        .filter(|ns| !ns.is_empty())
}

/// This machine's host name (`/proc/sys/kernel/hostname`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// When a process started, in clock ticks since boot (field 22 of `/proc/PID/stat`); `None`
/// when there is no such process.
pub fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_owned)
}

/// The last `limit` bytes of `text`, cut at a character boundary.
fn tail(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    cut_front(text, limit)
}

/// The last `limit` bytes of `text` (at a character boundary), said to be cut.
fn cut_front(text: &str, limit: usize) -> String {
    let mut start = text.len().saturating_sub(limit);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[… truncated]\n{}", &text[start..])
}

/// Writes a line the harness itself has to say to stderr, never panicking (a closed stderr is
/// ignored): a dropped environment's cleanup, a signal heard. Such lines name instances, counts
/// and signals, never a value that could be a secret.
pub(crate) fn eprint(text: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::environment::write_private;
    use super::*;

    #[test]
    fn private_files_are_readable_by_their_owner_only() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("registry-secured");
        write_private(&dir, "htpasswd", b"u:hash\n").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("htpasswd")), 0o600);
    }

    #[test]
    fn process_start_reads_this_process() {
        assert!(process_start(std::process::id()).is_some());
        assert!(pid_namespace().is_some_and(|ns| ns.starts_with("pid:[")));
        assert!(!hostname().is_empty());
    }
}
