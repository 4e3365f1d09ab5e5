//! Where the plans' containers run, and so what "privileged" means for them.
//!
//! A plugin in a privileged role (DinD, a builder that starts its own dockerd, buildah) is
//! root on the machine when the plan runs on the host's daemon: it can mount the host's disk
//! and write to it. On a rootless daemon (`scripts/rootless-daemon.sh`: Debian's rootlesskit
//! with docker.io's `dockerd-rootless.sh`, run by an unprivileged user) the same container is
//! privileged inside a user namespace only: its root is that user on the host.
//!
//! The profile's `isolation` (or `CONFORMANCE_ISOLATION`) chooses: `auto` (the default) runs
//! the plans on the rootless daemon wherever one can run, starting it when it does not answer,
//! and otherwise on the host's daemon with the reason recorded in every result; `rootless`
//! refuses to run without it; `none` uses the host's daemon and says so.
//!
//! On a rootless daemon the harness adapts what it creates ([`Isolation::rootless`]): files it
//! hands to containers belong to the daemon's user (the containers' root), every container
//! gets a cgroup namespace of its own (a DinD inside can then make cgroups), and the limits go
//! through [`LIMITS_VARIABLE`] to the daemon's runtime shim (`crates/limits-shim`), because a
//! rootless daemon on cgroup v1 applies none itself.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use bollard::query_parameters::ImportImageOptions;
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::errors::IsolationError;

/// Where `scripts/rootless-daemon.sh` starts the rootless daemon.
pub const ROOTLESS_SOCKET: &str = "/run/conformance-rootless/docker.sock";
/// The one line the script leaves when the rootless daemon cannot run here, saying why.
pub const ROOTLESS_UNAVAILABLE: &str = "/run/conformance-rootless.unavailable";
/// The variable that carries a container's limits to the rootless daemon's runtime shim:
/// `memory=BYTES,pids=N,cpu=MILLICORES` (any of them).
pub const LIMITS_VARIABLE: &str = "CONFORMANCE_LIMITS";
/// How long asking a daemon whether it is rootless may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request to the plans' daemon may take: bollard's own default, as for the
/// harness's daemon (creating and starting containers on a loaded machine takes its time).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// The profile's choice (see the module's documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IsolationSetting {
    #[default]
    Auto,
    Rootless,
    None,
}

impl std::str::FromStr for IsolationSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(IsolationSetting::Auto),
            "rootless" => Ok(IsolationSetting::Rootless),
            "none" => Ok(IsolationSetting::None),
            other => Err(format!(
                "`{other}` is not an isolation (auto, rootless or none)"
            )),
        }
    }
}

/// What the plans of this process run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    /// The host uid and gid that are root inside the containers, on a rootless daemon.
    pub container_root: Option<(u32, u32)>,
    /// What every result says about it, e.g. `rootless: …` or `none: …`.
    pub statement: String,
    /// The plans' daemon's socket when it is not the harness's own daemon.
    pub socket: Option<String>,
}

impl Isolation {
    /// Whether the plans run on a rootless daemon.
    pub fn rootless(&self) -> bool {
        self.container_root.is_some()
    }
}

static CURRENT: OnceLock<Isolation> = OnceLock::new();

/// The isolation this process chose ([`choose`]), if it chose one.
pub fn current() -> Option<&'static Isolation> {
    CURRENT.get()
}

/// A new connection to the plans' daemon (a dropped environment cleans up with one of its own).
pub fn connect_plans_daemon() -> Result<Docker, bollard::errors::Error> {
    match current().and_then(|i| i.socket.as_deref()) {
        Some(socket) => {
            Docker::connect_with_unix(socket, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        }
        None => Docker::connect_with_defaults(),
    }
}

/// The host uid and gid that are root in the plans' containers, when that is not root.
pub(crate) fn container_root() -> Option<(u32, u32)> {
    current().and_then(|i| i.container_root)
}

/// Hands a file or directory the harness made for a container to the containers' root (a
/// no-op on the host's daemon): on a rootless daemon root in a container is an unprivileged
/// user on the host, who could not read a 0600 secret or write a 0755 directory of root's.
pub(crate) fn hand_over(path: &Path) -> std::io::Result<()> {
    match container_root() {
        Some((uid, gid)) => std::os::unix::fs::lchown(path, Some(uid), Some(gid)),
        None => Ok(()),
    }
}

/// [`hand_over`] for everything under `path` (itself included) that root owns: what the
/// harness made there. What containers made is left as it is (a step of another user keeps its
/// files); symbolic links are not followed.
pub(crate) fn hand_over_tree(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if container_root().is_none() {
        return Ok(());
    }
    let mut pending = vec![path.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
        if meta.uid() == 0 {
            hand_over(&path)?;
        }
    }
    Ok(())
}

/// Chooses once per process where the plans run, from `setting` (`CONFORMANCE_ISOLATION`
/// overrides it), and returns the daemon to run them on. `host` is the daemon the images are
/// built on; `root` the repository (for `scripts/rootless-daemon.sh`).
pub async fn choose(
    setting: IsolationSetting,
    root: &Path,
    host: &Docker,
) -> Result<Docker, IsolationError> {
    let setting = match std::env::var("CONFORMANCE_ISOLATION") {
        Ok(value) if !value.trim().is_empty() => value
            .parse()
            .map_err(|message| IsolationError::Setting { message })?,
        _ => setting,
    };
    let (docker, isolation) = decide(setting, root, host).await?;
    // One choice per process: a second session of the same process (tests) gets the first's.
    let chosen = CURRENT.get_or_init(|| isolation.clone());
    if *chosen != isolation {
        return Err(IsolationError::Changed {
            first: chosen.statement.clone(),
            now: isolation.statement,
        });
    }
    Ok(docker)
}

async fn decide(
    setting: IsolationSetting,
    root: &Path,
    host: &Docker,
) -> Result<(Docker, Isolation), IsolationError> {
    if setting == IsolationSetting::None {
        return Ok((host.clone(), not_isolated("isolation: none was chosen")));
    }
    // A host daemon that is itself rootless isolates already.
    if let Ok(Some(root_ids)) = rootless_ids(host, None).await {
        return Ok((
            host.clone(),
            isolated(root_ids, "the harness's own daemon", None),
        ));
    }
    if crate::docker_host_is_elsewhere() {
        let reason = "DOCKER_HOST names another daemon, and a rootless daemon started here \
                      would not run the plans there";
        return match setting {
            IsolationSetting::Rootless => Err(IsolationError::Unavailable {
                reason: reason.to_owned(),
            }),
            _ => Ok((host.clone(), not_isolated(reason))),
        };
    }
    let socket = PathBuf::from(ROOTLESS_SOCKET);
    let mut answer = ask_rootless(&socket).await;
    if answer.is_err() {
        start_rootless_daemon(root).await;
        answer = ask_rootless(&socket).await;
    }
    match answer {
        Ok((docker, ids)) => Ok((
            docker,
            isolated(ids, ROOTLESS_SOCKET, Some(ROOTLESS_SOCKET)),
        )),
        Err(asked) => {
            let reason = std::fs::read_to_string(ROOTLESS_UNAVAILABLE)
                .ok()
                .map(|line| line.trim().to_owned())
                .filter(|line| !line.is_empty())
                .unwrap_or(asked);
            match setting {
                IsolationSetting::Rootless => Err(IsolationError::Unavailable { reason }),
                _ => Ok((
                    host.clone(),
                    not_isolated(&format!("no rootless daemon could run here: {reason}")),
                )),
            }
        }
    }
}

fn isolated((uid, gid): (u32, u32), daemon: &str, socket: Option<&str>) -> Isolation {
    Isolation {
        container_root: Some((uid, gid)),
        socket: socket.map(str::to_owned),
        statement: format!(
            "rootless: privileged roles are privileged inside a user namespace only \
             (a rootless daemon, {daemon}; root in a container is uid {uid} on the host)"
        ),
    }
}

fn not_isolated(reason: &str) -> Isolation {
    Isolation {
        container_root: None,
        socket: None,
        statement: format!(
            "none: privileged roles were not isolated (they are root on the host): {reason}"
        ),
    }
}

/// The rootless daemon at `socket`, with its containers' root on the host.
async fn ask_rootless(socket: &Path) -> Result<(Docker, (u32, u32)), String> {
    if !socket.exists() {
        return Err(format!("{} does not exist", socket.display()));
    }
    let docker = Docker::connect_with_unix(
        &socket.to_string_lossy(),
        REQUEST_TIMEOUT_SECS,
        API_DEFAULT_VERSION,
    )
    .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    match rootless_ids(&docker, Some(socket)).await? {
        Some(ids) => Ok((docker, ids)),
        None => Err(format!(
            "the daemon at {} is not rootless",
            socket.display()
        )),
    }
}

/// The rootless daemon at [`ROOTLESS_SOCKET`] when it answers (never started here): where a
/// sweep also looks.
pub async fn rootless_daemon() -> Option<Docker> {
    ask_rootless(Path::new(ROOTLESS_SOCKET))
        .await
        .ok()
        .map(|(docker, _)| docker)
}

/// Whether `docker` is a rootless daemon, and if so who its containers' root is on the host:
/// the owner of its socket (`socket`, or the default socket's owner for the host's daemon).
async fn rootless_ids(
    docker: &Docker,
    socket: Option<&Path>,
) -> Result<Option<(u32, u32)>, String> {
    let info = tokio::time::timeout(ASK_TIMEOUT, docker.info())
        .await
        .map_err(|_| format!("no answer within {} s", ASK_TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    let rootless = info
        .security_options
        .unwrap_or_default()
        .iter()
        .any(|option| option.contains("rootless"));
    if !rootless {
        return Ok(None);
    }
    let socket = socket.map(Path::to_owned).unwrap_or_else(|| {
        PathBuf::from(
            crate::docker_host()
                .strip_prefix("unix://")
                .unwrap_or(crate::DEFAULT_DOCKER_HOST),
        )
    });
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&socket)
        .map_err(|e| format!("reading the owner of {}: {e}", socket.display()))?;
    Ok(Some((meta.uid(), meta.gid())))
}

/// Runs `scripts/rootless-daemon.sh` (idempotent, one at a time) when this is root; its
/// failure is read from [`ROOTLESS_UNAVAILABLE`].
async fn start_rootless_daemon(root: &Path) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let script = root.join("scripts/rootless-daemon.sh");
    if !script.is_file() {
        return;
    }
    let _ = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(&script)
            .stdout(std::process::Stdio::null())
            .status()
    })
    .await;
}

/// Copies `image` from the daemon it was built on to the plans' daemon (`docker save` into
/// `docker load`, streamed): a rootless daemon has images of its own.
pub async fn copy_image(from: &Docker, to: &Docker, image: &str) -> Result<(), String> {
    let export = from.clone().export_image(image);
    let mut load = to.import_image_stream(
        ImportImageOptions {
            quiet: true,
            ..Default::default()
        },
        export,
        None,
    );
    while let Some(progress) = load.next().await {
        let progress =
            progress.map_err(|e| format!("copying {image} to the plans' daemon: {e}"))?;
        if let Some(error) = progress.error_detail.and_then(|d| d.message) {
            return Err(format!("copying {image} to the plans' daemon: {error}"));
        }
    }
    Ok(())
}

/// The cgroup the rootless daemon runs in, in every cgroup v1 hierarchy
/// (`scripts/rootless-daemon.sh` makes it and sets its root-owned ceilings).
pub const ROOTLESS_CGROUP: &str = "conformance-rootless";

/// The v1 hierarchies' directories of the rootless daemon's cgroup that exist here.
fn rootless_cgroup_dirs() -> Vec<PathBuf> {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, dir, kind) = (fields.next()?, fields.next()?, fields.next()?);
            (kind == "cgroup").then(|| Path::new(dir).join(ROOTLESS_CGROUP))
        })
        .filter(|dir| dir.is_dir())
        .collect()
}

/// Makes, as root, the cgroup a container of the rootless daemon goes below (`name`, beside
/// the daemon's, in every v1 hierarchy) with root-owned limits, and lets the containers' root
/// make children in it: the container's own cgroup, made by the runtime shim as that user,
/// has limits the container could raise, but not past these. Returns `name` when the limits
/// are in place, `None` where the daemon's cgroup is not there (cgroup v2, another set-up: the
/// shim's limits alone then).
pub(crate) fn container_cgroup(
    name: &str,
    limits: &crate::Limits,
) -> std::io::Result<Option<String>> {
    let Some((uid, gid)) = container_root() else {
        return Ok(None);
    };
    let dirs = rootless_cgroup_dirs();
    if dirs.is_empty() {
        return Ok(None);
    }
    for base in &dirs {
        let dir = base.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let write = |file: &str, value: String| -> std::io::Result<()> {
            let path = dir.join(file);
            if path.exists() {
                std::fs::write(&path, value)?;
            }
            Ok(())
        };
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = std::fs::read_to_string(base.join(file)) {
                write(file, value)?;
            }
        }
        if let Some(bytes) = limits.memory_bytes {
            write("memory.limit_in_bytes", bytes.to_string())?;
            write("memory.memsw.limit_in_bytes", bytes.to_string())?;
        }
        if let Some(pids) = limits.pids {
            write("pids.max", pids.to_string())?;
        }
        if let Some(millicores) = limits.millicores {
            write("cpu.cfs_period_us", "100000".to_owned())?;
            write("cpu.cfs_quota_us", (millicores * 100).to_string())?;
        }
        for owned in ["", "cgroup.procs", "tasks"] {
            let path = if owned.is_empty() {
                dir.clone()
            } else {
                dir.join(owned)
            };
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        }
    }
    Ok(Some(name.to_owned()))
}

/// Removes the cgroups [`container_cgroup`] made for names starting with `prefix` (an
/// environment's containers), with whatever the containers left below them; a cgroup that
/// still holds processes stays (the kernel refuses).
pub(crate) fn remove_container_cgroups(prefix: &str) {
    for base in rootless_cgroup_dirs() {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
}

/// Depth first: a cgroup directory goes with rmdir once its children are gone.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// A container's limits as the runtime shim reads them from [`LIMITS_VARIABLE`], with the
/// cgroup made for it ([`container_cgroup`]); `None` without any.
pub(crate) fn limits_variable(
    memory_bytes: Option<u64>,
    pids: Option<u32>,
    millicores: Option<u64>,
    parent: Option<&str>,
) -> Option<String> {
    let parts: Vec<String> = [
        memory_bytes.map(|b| format!("memory={b}")),
        pids.map(|n| format!("pids={n}")),
        millicores.map(|m| format!("cpu={m}")),
        parent.map(|p| format!("parent={p}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| format!("{LIMITS_VARIABLE}={}", parts.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_name_a_bad_value() {
        assert_eq!("auto".parse(), Ok(IsolationSetting::Auto));
        assert_eq!(" rootless".parse(), Ok(IsolationSetting::Rootless));
        assert_eq!("none".parse(), Ok(IsolationSetting::None));
        let err = "userns".parse::<IsolationSetting>().unwrap_err();
        assert!(err.contains("`userns`"), "{err}");
    }

    #[test]
    fn the_limits_variable_lists_what_is_set() {
        assert_eq!(limits_variable(None, None, None, None), None);
        assert_eq!(
            limits_variable(Some(1 << 20), Some(64), None, None).as_deref(),
            Some("CONFORMANCE_LIMITS=memory=1048576,pids=64")
        );
        assert_eq!(
            limits_variable(None, None, Some(400), Some("conformance-x-dind")).as_deref(),
            Some("CONFORMANCE_LIMITS=cpu=400,parent=conformance-x-dind")
        );
    }

    #[test]
    fn statements_say_plainly_whether_privileged_roles_were_isolated() {
        let no = not_isolated("the kernel has no user namespaces");
        assert!(!no.rootless());
        assert!(
            no.statement
                .starts_with("none: privileged roles were not isolated"),
            "{}",
            no.statement
        );
        let yes = isolated((999, 998), ROOTLESS_SOCKET, Some(ROOTLESS_SOCKET));
        assert!(yes.rootless());
        assert!(yes.statement.contains("uid 999"), "{}", yes.statement);
    }
}
