//! Creating, starting and asking the environment's containers: detached creates, published ports, exec, logs.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::Ordering;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions, LogsOptions};
use futures_util::StreamExt;

use crate::errors::RuntimeError;
use crate::stop::{self};

use crate::*;

use super::*;

impl Environment {
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
        let name = format!("conformance-{}-{}", self.instance, spec.suffix);
        let env: Vec<String> = spec
            .env
            .iter()
            .chain(spec.extra_env.iter())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
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
                        .map(|path| (path, String::new()))
                        .collect()
                }),
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

    /// Runs a command in a container; returns its exit status and output.
    pub(crate) async fn exec(
        &self,
        id: &str,
        cmd: &[&str],
    ) -> Result<(i64, String), bollard::errors::Error> {
        let exec = self
            .docker
            .create_exec(
                id,
                bollard::models::ExecConfig {
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        let mut out = String::new();
        if let bollard::exec::StartExecResults::Attached { mut output, .. } =
            self.docker.start_exec(&exec.id, None).await?
        {
            while let Some(Ok(chunk)) = output.next().await {
                out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
        }
        Ok((
            self.docker
                .inspect_exec(&exec.id)
                .await?
                .exit_code
                .unwrap_or(-1),
            out,
        ))
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
    /// out is said at the front.
    pub(crate) async fn logs(&self, id: &str) -> String {
        let mut stream = self.docker.logs(
            id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                follow: false,
                tail: LOG_TAIL_LINES.to_string(),
                ..Default::default()
            }),
        );
        let deadline = tokio::time::Instant::now() + LOG_READ_BUDGET;
        let mut kept: Vec<u8> = Vec::new();
        let (mut lines, mut dropped, mut out_of_time) = (0usize, false, false);
        loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    let bytes = chunk.into_bytes();
                    lines += bytes.iter().filter(|b| **b == b'\n').count();
                    kept.extend_from_slice(&bytes);
                    if kept.len() > 2 * LOG_LIMIT {
                        kept.drain(..kept.len() - LOG_LIMIT);
                        dropped = true;
                    }
                }
                Ok(_) => break,
                Err(_) => {
                    out_of_time = true;
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&kept);
        let mut out = if dropped || lines >= LOG_TAIL_LINES {
            cut_front(&text, LOG_LIMIT)
        } else {
            tail(&text, LOG_LIMIT)
        };
        if out_of_time {
            out = format!(
                "[… reading the log stopped after {} s]\n{out}",
                LOG_READ_BUDGET.as_secs()
            );
        }
        out
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
    pub(crate) binds: Vec<String>,
    pub(crate) aliases: Vec<String>,
    pub(crate) workdir: Option<&'a str>,
    pub(crate) publish: Option<u16>,
    /// Container directories mounted as a fresh tmpfs.
    pub(crate) tmpfs: Vec<String>,
    pub(crate) security_opt: Vec<String>,
}
