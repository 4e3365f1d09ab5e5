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

use bollard::{Docker, API_DEFAULT_VERSION};
use serde::{Deserialize, Serialize};

use crate::errors::IsolationError;

mod cgroups;
mod handover;
mod images;
mod rootless;

pub use cgroups::ROOTLESS_CGROUP;
pub(crate) use cgroups::{container_cgroup, limits_variable, remove_container_cgroups};
pub(crate) use handover::hand_over_tree;
pub use images::copy_image;
pub use rootless::rootless_daemon;
use rootless::{ask_rootless, rootless_ids, start_rootless_daemon};

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
