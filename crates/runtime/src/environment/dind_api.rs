//! The shared DinD daemon, asked through its API: bollard on the daemon's socket in the plan's
//! run volume, reached at the volume's mount point on the host. Never a binary inside a
//! container a plugin can reach: a step given the daemon can replace DinD's `docker` CLI, which
//! `docker exec dind docker …` would then run, but not the answers of the daemon itself.

use std::path::Path;

use bollard::{Docker, API_DEFAULT_VERSION};

use super::Environment;

/// How long one request to the DinD daemon may take (seconds).
const DIND_API_TIMEOUT: u64 = 30;

impl Environment {
    /// A client of the shared DinD daemon, or why there is none yet (the socket appears when
    /// the daemon has started).
    pub(crate) async fn dind_api(&self) -> Result<Docker, String> {
        let volume = self
            .docker
            .inspect_volume(&self.run_volume)
            .await
            .map_err(|e| {
                format!(
                    "the run volume {} cannot be inspected: {e}",
                    self.run_volume
                )
            })?;
        let socket = Path::new(&volume.mountpoint).join("docker.sock");
        let path = socket
            .to_str()
            .ok_or_else(|| format!("the daemon's socket path {} is not UTF-8", socket.display()))?;
        Docker::connect_with_unix(path, DIND_API_TIMEOUT, API_DEFAULT_VERSION)
            .map_err(|e| format!("the daemon's socket {path} cannot be reached: {e}"))
    }
}
