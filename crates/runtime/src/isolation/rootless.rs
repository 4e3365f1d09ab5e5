//! The rootless daemon: asking whether it answers and who its containers' root is, and starting
//! it (`scripts/rootless-daemon.sh`).

use std::path::{Path, PathBuf};

use bollard::{Docker, API_DEFAULT_VERSION};

use super::{ASK_TIMEOUT, REQUEST_TIMEOUT_SECS, ROOTLESS_SOCKET};

/// The rootless daemon at `socket`, with its containers' root on the host.
pub(super) async fn ask_rootless(socket: &Path) -> Result<(Docker, (u32, u32)), String> {
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
pub(super) async fn rootless_ids(
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
pub(super) async fn start_rootless_daemon(root: &Path) {
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
