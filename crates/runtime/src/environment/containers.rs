//! Creating, starting and asking the environment's containers: detached creates, published ports, exec, logs.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::Ordering;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigCgroupnsModeEnum,
    NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions, LogsOptions};
use futures_util::StreamExt;

use crate::errors::RuntimeError;
use crate::stop::{self};

use crate::*;

use super::*;

impl Environment {
    /// A container's name in this environment, from its suffix (`step-<step>`, `dind`, …).
    pub(crate) fn container_name(&self, suffix: &str) -> String {
        format!("conformance-{}-{}", self.instance, suffix)
    }

    /// The suffix of a step's container.
    pub(crate) fn step_suffix(step: &str) -> String {
        format!("step-{}", scenario::container_suffix(step))
    }

    /// Runs a create to its end in a task of its own, counted in this environment's and the
    /// process's creates in flight; refused once the process is asked to stop. Dropping the
    /// caller does not abandon the create, so a sweep after "no create in flight" sees it.
    pub(crate) async fn detached<T: Send + 'static>(
        &self,
        create: impl Future<Output = Result<T, RuntimeError>> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        let ticket = stop::begin_create(Some(&self.in_flight))?;
        self.touched.store(true, Ordering::SeqCst);
        let task = tokio::spawn(async move {
            let created = create.await;
            drop(ticket);
            created
        });
        match task.await {
            Ok(created) => created,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(RuntimeError::NotReady {
                service: "docker (create)".into(),
                seconds: 0,
                detail: e.to_string(),
            }),
        }
    }

    /// Creates a labelled network or volume (`what` `name`) as a detached create: `create` is
    /// given the daemon and the environment's labels.
    pub(crate) async fn create<F, Fut>(
        &self,
        what: &'static str,
        name: &str,
        create: F,
    ) -> Result<(), RuntimeError>
    where
        F: FnOnce(Docker, HashMap<String, String>) -> Fut,
        Fut: Future<Output = Result<(), bollard::errors::Error>> + Send + 'static,
    {
        let name = name.to_owned();
        let create = create(self.docker.clone(), self.labels.clone());
        self.detached(async move {
            create
                .await
                .map_err(|source| RuntimeError::Create { what, name, source })
        })
        .await
    }

    pub(crate) async fn create_and_start(
        &self,
        spec: ContainerSpec<'_>,
    ) -> Result<String, RuntimeError> {
        let name = self.container_name(spec.suffix);
        self.hand_over_files()?;
        let limits = spec.limits.or(self.default_limits);
        let mut env: Vec<String> = spec
            .env
            .iter()
            .chain(spec.extra_env.iter())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        // A rootless daemon on cgroup v1 applies no limits itself: its runtime shim does, from
        // a variable (and the daemon would refuse a CPU limit it cannot apply).
        let rootless = crate::isolation::container_root().is_some();
        let daemon_limits = if rootless {
            let parent = crate::isolation::container_cgroup(&name, &limits).map_err(|source| {
                RuntimeError::Workspace {
                    path: PathBuf::from("/sys/fs/cgroup")
                        .join(crate::isolation::ROOTLESS_CGROUP)
                        .join(&name),
                    source,
                }
            })?;
            env.extend(crate::isolation::limits_variable(
                limits.memory_bytes,
                limits.pids,
                limits.millicores,
                parent.as_deref(),
            ));
            Limits::default()
        } else {
            limits
        };
        let port_bindings = spec.publish.map(|port| {
            HashMap::from([(
                format!("{port}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            )])
        });
        let body = ContainerCreateBody {
            image: Some(spec.image.to_owned()),
            entrypoint: spec.entrypoint.clone(),
            cmd: (!spec.args.is_empty()).then(|| spec.args.clone()),
            env: Some(env),
            labels: Some(self.labels.clone()),
            working_dir: spec.workdir.map(str::to_owned),
            user: spec.user.clone(),
            exposed_ports: spec.publish.map(|port| vec![format!("{port}/tcp")]),
            host_config: Some(HostConfig {
                privileged: Some(spec.privileged),
                binds: Some(spec.binds),
                network_mode: Some(self.network.clone()),
                port_bindings,
                security_opt: (!spec.security_opt.is_empty()).then(|| spec.security_opt.clone()),
                tmpfs: (!spec.tmpfs.is_empty()).then(|| {
                    spec.tmpfs
                        .into_iter()
                        .map(|path| (path, tmpfs_options(limits.tmpfs_bytes)))
                        .collect()
                }),
                memory: daemon_limits.memory_bytes.map(|b| b as i64),
                // Swap as large as the memory limit: no swap beyond it.
                memory_swap: daemon_limits.memory_bytes.map(|b| b as i64),
                nano_cpus: daemon_limits.millicores.map(|m| m as i64 * 1_000_000),
                pids_limit: daemon_limits.pids.map(i64::from),
                // Its own cgroup namespace, rooted in the cgroup the shim made for it: a DinD
                // inside a rootless daemon can make cgroups there.
                cgroupns_mode: rootless.then_some(HostConfigCgroupnsModeEnum::PRIVATE),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.network.clone(),
                    EndpointSettings {
                        aliases: Some(spec.aliases),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let docker = self.docker.clone();
        self.detached(async move {
            let created = docker
                .create_container(
                    Some(CreateContainerOptions {
                        name: Some(name.clone()),
                        ..Default::default()
                    }),
                    body,
                )
                .await
                .map_err(|source| RuntimeError::Create {
                    what: "container",
                    name: name.clone(),
                    source,
                })?;
            docker
                .start_container(&created.id, None)
                .await
                .map_err(|source| RuntimeError::Start { name, source })?;
            Ok(created.id)
        })
        .await
    }

    pub(crate) async fn published_port(&self, id: &str, port: u16) -> Result<u16, RuntimeError> {
        let inspect = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|source| RuntimeError::Docker {
                action: "inspecting the registry container".into(),
                source,
            })?;
        inspect
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|ports| ports.get(&format!("{port}/tcp")).cloned().flatten())
            .and_then(|bindings| bindings.into_iter().find_map(|b| b.host_port))
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| RuntimeError::NotReady {
                service: "registry".into(),
                seconds: 0,
                detail: format!("port {port} was not published"),
            })
    }

    pub(crate) async fn is_running(&self, id: &str) -> bool {
        self.docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|i| i.state)
            .and_then(|s| s.running)
            .unwrap_or(false)
    }

    /// A container's output (stdout and stderr interleaved), its end only and within bounds,
    /// whatever it printed: the daemon is asked for the last [`LOG_TAIL_LINES`] lines (it reads
    /// them from the end of the log), at most twice [`LOG_LIMIT`] bytes are held at once and
    /// the last `LOG_LIMIT` kept, and reading stops after [`LOG_READ_BUDGET`]. What was left
    /// out, or why reading stopped, is said at the front. An empty answer is asked again, whole,
    /// after a moment: the daemon may not have written a container's last output yet when it
    /// has just exited.
    pub(crate) async fn logs(&self, id: &str) -> String {
        self.logs_within(id, LOG_LIMIT).await
    }

    /// [`Self::logs`] keeping at most `limit` bytes (the end) instead of [`LOG_LIMIT`].
    pub(crate) async fn logs_within(&self, id: &str, limit: usize) -> String {
        let mut read = self.read_log(id, LOG_TAIL_LINES.to_string(), limit).await;
        if read.kept.is_empty() && read.note.is_none() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            read = self.read_log(id, "all".to_owned(), limit).await;
        }
        let text = String::from_utf8_lossy(&read.kept);
        let out = if read.dropped || read.lines >= LOG_TAIL_LINES {
            cut_front(&text, limit)
        } else {
            tail(&text, limit)
        };
        match read.note {
            Some(note) => format!("[… {note}]\n{out}"),
            None => out,
        }
    }

    /// One bounded reading of a container's log: its last `tail` lines (or `all`).
    async fn read_log(&self, id: &str, tail: String, limit: usize) -> LogRead {
        let mut stream = self.docker.logs(
            id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                follow: false,
                tail,
                ..Default::default()
            }),
        );
        let deadline = tokio::time::Instant::now() + LOG_READ_BUDGET;
        let mut read = LogRead::default();
        loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    let bytes = chunk.into_bytes();
                    read.lines += bytes.iter().filter(|b| **b == b'\n').count();
                    read.kept.extend_from_slice(&bytes);
                    if read.kept.len() > 2 * limit {
                        read.kept.drain(..read.kept.len() - limit);
                        read.dropped = true;
                    }
                }
                Ok(Some(Err(e))) => {
                    read.note = Some(format!("reading the log failed: {e}"));
                    break;
                }
                Ok(None) => break,
                Err(_) => {
                    read.note = Some(format!(
                        "reading the log stopped after {} s",
                        LOG_READ_BUDGET.as_secs()
                    ));
                    break;
                }
            }
        }
        read
    }
}

pub(crate) struct ContainerSpec<'a> {
    pub(crate) suffix: &'a str,
    pub(crate) image: &'a str,
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) args: Vec<String>,
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) extra_env: &'a BTreeMap<String, String>,
    pub(crate) privileged: bool,
    /// The user the container runs as (`UID` or `UID:GID`); `None`: the image's.
    pub(crate) user: Option<String>,
    pub(crate) binds: Vec<String>,
    pub(crate) aliases: Vec<String>,
    pub(crate) workdir: Option<&'a str>,
    pub(crate) publish: Option<u16>,
    /// Container directories mounted as a fresh tmpfs.
    pub(crate) tmpfs: Vec<String>,
    pub(crate) security_opt: Vec<String>,
    pub(crate) limits: Limits,
}

impl Environment {
    /// On a rootless daemon, gives what the harness wrote for the containers (workspace,
    /// outputs, private directory) to the containers' root, before a container mounts it.
    fn hand_over_files(&self) -> Result<(), RuntimeError> {
        let dirs = [Some(self.workspace.as_path()), self.outputs.as_deref()]
            .into_iter()
            .chain([self.auth_dir.as_ref().map(|d| d.path())])
            .flatten();
        for dir in dirs {
            crate::isolation::hand_over_tree(dir).map_err(|source| RuntimeError::Workspace {
                path: dir.to_owned(),
                source,
            })?;
        }
        Ok(())
    }
}

/// A tmpfs mount's options: its size when bounded (the kernel's default is half the memory).
fn tmpfs_options(size: Option<u64>) -> String {
    size.map(|bytes| format!("size={bytes}"))
        .unwrap_or_default()
}

/// Limits on a container: memory in bytes (no swap beyond it), CPU in millicores, processes,
/// and the size of each of its tmpfs mounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub millicores: Option<u64>,
    pub pids: Option<u32>,
    pub tmpfs_bytes: Option<u64>,
}

impl Limits {
    /// These limits, with `defaults` where they set none.
    pub fn or(self, defaults: Limits) -> Limits {
        Limits {
            memory_bytes: self.memory_bytes.or(defaults.memory_bytes),
            millicores: self.millicores.or(defaults.millicores),
            pids: self.pids.or(defaults.pids),
            tmpfs_bytes: self.tmpfs_bytes.or(defaults.tmpfs_bytes),
        }
    }

    /// How the step's record shows them, e.g. `memory 500Mi, cpu 400m`; `None` without limits.
    pub fn shown(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(bytes) = self.memory_bytes {
            parts.push(format!(
                "memory {} bytes ({})",
                bytes,
                oci::human::human(bytes)
            ));
        }
        if let Some(m) = self.millicores {
            parts.push(format!("cpu {m}m"));
        }
        if let Some(pids) = self.pids {
            parts.push(format!("{pids} processes"));
        }
        if let Some(bytes) = self.tmpfs_bytes {
            parts.push(format!("tmpfs {}", oci::human::human(bytes)));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// What one reading of a log brought: its end, and what was left out.
#[derive(Default)]
struct LogRead {
    /// The end of what was read, at most twice `LOG_LIMIT` bytes.
    kept: Vec<u8>,
    /// Lines read.
    lines: usize,
    /// Bytes were dropped from the front while reading.
    dropped: bool,
    /// Why reading stopped early, if it did.
    note: Option<String>,
}
