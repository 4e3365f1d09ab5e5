//! Running a plugin step: one container run to its exit (or its timeout), its logs kept.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bollard::query_parameters::KillContainerOptions;
use futures_util::StreamExt;

use crate::errors::RuntimeError;
use crate::profile::RoleSpec;
use crate::stop::{self};
use model::result::StepRecord;
use scenario::DaemonMode;

use super::environment::{ContainerSpec, Limits};
use super::*;

/// How a step runs besides its image and variables: with which daemon, for how long at most,
/// within which limits.
#[derive(Debug, Clone, Copy)]
pub struct StepBounds {
    pub daemon: DaemonMode,
    pub timeout: Duration,
    pub limits: Limits,
}

impl Environment {
    /// Runs a plugin step to completion (or until `timeout`); its container is removed at
    /// teardown. Ends early with [`RuntimeError::Stopped`] when the process is asked to stop.
    pub async fn run_step(
        &self,
        name: &str,
        role: &str,
        spec: &RoleSpec,
        env: &BTreeMap<String, String>,
        bounds: StepBounds,
    ) -> Result<StepRecord, RuntimeError> {
        let StepBounds {
            daemon,
            timeout,
            limits,
        } = bounds;
        let limits = limits.or(self.default_limits);
        stop::or_stopped(async move {
            let started = Instant::now();
            let suffix = Environment::step_suffix(name);
            // The run's CA where the role's image trusts CAs; the step's own variables win.
            let (mut binds, mut step_env) = self.trust_mounts(&spec.trust);
            step_env.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
            binds.push(format!("{}:{}", self.workspace.display(), spec.workdir()));
            if let Some(outputs) = &self.outputs {
                binds.push(format!("{}:{}", outputs.display(), crate::OUTPUTS_MOUNT));
            }
            // The plan's SSH private keys, read-only, outside the workspace (`${ssh_key.NAME}`).
            if let Some(keys) = &self.ssh_keys_dir {
                binds.push(format!(
                    "{}:{}:ro",
                    keys.display(),
                    scenario::SSH_KEYS_MOUNT
                ));
            }
            // The shared daemon's socket, for a role that may use it (the plan then has a DinD;
            // without one, Docker would create the volume unlabelled, out of the teardown's sight).
            if daemon == DaemonMode::Shared && !spec.daemonless {
                if self.dind.is_none() {
                    return Err(RuntimeError::NoSharedDaemon {
                        step: name.to_owned(),
                        role: role.to_owned(),
                    });
                }
                binds.push(format!("{}:/var/run", self.run_volume));
            }
            // A plugin starting its own dockerd gets a tmpfs for its storage (overlay2 works there).
            let tmpfs = match daemon {
                DaemonMode::Own => super::environment::with_docker_storage(&spec.tmpfs),
                _ => spec.tmpfs.clone(),
            };
            let id = self
                .create_and_start(ContainerSpec {
                    suffix: &suffix,
                    image: &spec.image,
                    entrypoint: spec.entrypoint.clone(),
                    args: spec.args.clone(),
                    env: &spec.env,
                    extra_env: &step_env,
                    privileged: spec.privileged,
                    user: spec.user.clone(),
                    binds,
                    tmpfs,
                    security_opt: spec.security_opt.clone(),
                    limits,
                    aliases: vec![],
                    workdir: Some(spec.workdir()),
                    publish: None,
                })
                .await?;
            let wait = async {
                let mut stream = self.docker.wait_container(&id, None);
                match stream.next().await {
                    Some(Ok(response)) => Ok(response.status_code),
                    Some(Err(bollard::errors::Error::DockerContainerWaitError {
                        code, ..
                    })) => Ok(code),
                    Some(Err(source)) => Err(RuntimeError::Docker {
                        action: format!("waiting for step {name}"),
                        source,
                    }),
                    None => Err(RuntimeError::NotReady {
                        service: format!("step {name}"),
                        seconds: 0,
                        detail: "the wait stream ended without an exit status".into(),
                    }),
                }
            };
            let (exit_code, timed_out) = match tokio::time::timeout(timeout, wait).await {
                Ok(code) => (Some(code?), false),
                Err(_) => {
                    let _ = self
                        .docker
                        .kill_container(&id, None::<KillContainerOptions>)
                        .await;
                    (None, true)
                }
            };
            let duration_ms = started.elapsed().as_millis() as u64;
            let log = self.logs(&id).await;
            let oom_killed = limits.memory_bytes.is_some()
                && if crate::isolation::container_root().is_some() {
                    // A rootless daemon without cgroups never hears of the kernel's OOM kill:
                    // a SIGKILL the harness did not send, under a memory limit, is taken for it.
                    exit_code == Some(137)
                } else {
                    self.oom_killed(&id).await
                };
            // The exited container stays until the teardown removes everything labelled with this
            // environment: that runs after the result, off the plan's critical path.
            Ok(StepRecord {
                name: name.to_owned(),
                role: role.to_owned(),
                exit_code,
                timed_out,
                started_ms: 0,
                duration_ms,
                group: None,
                log,
                limits: limits.shown(),
                oom_killed,
                security: Some(security_shown(spec)),
            })
        })
        .await
    }
}

/// Who a step's container runs as and with which privileges, as its record shows it.
fn security_shown(spec: &RoleSpec) -> String {
    let mut parts = vec![
        match &spec.user {
            Some(user) => format!("user {user}"),
            None => "the image's user".to_owned(),
        },
        if spec.privileged {
            "privileged"
        } else {
            "unprivileged"
        }
        .to_owned(),
    ];
    parts.extend(spec.security_opt.iter().map(|o| o.replacen('=', " ", 1)));
    parts.join(", ")
}

impl Environment {
    /// Whether the kernel killed the container for its memory (false when it cannot be asked).
    async fn oom_killed(&self, id: &str) -> bool {
        self.docker
            .inspect_container(id, None)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|state| state.oom_killed)
            .unwrap_or(false)
    }
}
