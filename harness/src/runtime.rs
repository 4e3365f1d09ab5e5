//! The containers a scenario runs in: an isolated network, a registry, a Docker-in-Docker daemon
//! sharing its socket through a `/var/run` volume, and one container per plugin step with the
//! workspace mounted at `/harness`.
//!
//! Every container, network and volume carries labels naming the run, the scenario and this
//! instance; [`Environment::teardown`] removes everything carrying the instance label, whatever
//! happened before, and [`sweep`] removes leftovers of killed runs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, KillContainerOptions, ListContainersOptions,
    ListNetworksOptions, ListVolumesOptions, LogsOptions, PushImageOptions, RemoveContainerOptions,
    RemoveImageOptions, TagImageOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::errors::{DockerConnectError, RuntimeError};
use crate::profile::RoleSpec;
use crate::registry::Registry;
use crate::result::StepRecord;
use crate::scenario::{Credentials, DaemonMode};

pub const LABEL_MANAGED: &str = "io.conformance.managed";
pub const LABEL_RUN: &str = "io.conformance.run";
pub const LABEL_SCENARIO: &str = "io.conformance.scenario";
pub const LABEL_INSTANCE: &str = "io.conformance.instance";

/// The port every registry listens on inside the scenario's network.
pub const REGISTRY_PORT: u16 = 5000;
/// Where the base image for test Dockerfiles is pushed before the steps run.
pub const BASE_IMAGE_REPOSITORY: &str = "harness/busybox";
pub const BASE_IMAGE_TAG: &str = "1.37";

const REGISTRY_READY: Duration = Duration::from_secs(30);
const DIND_READY: Duration = Duration::from_secs(90);
const LOG_LIMIT: usize = 64 * 1024;

/// Connects to the Docker daemon (DOCKER_HOST or the default socket).
pub async fn connect() -> Result<Docker, DockerConnectError> {
    let docker = Docker::connect_with_defaults().map_err(|e| DockerConnectError {
        reason: e.to_string(),
    })?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| DockerConnectError {
            reason: e.to_string(),
        })?;
    docker.ping().await.map_err(|e| DockerConnectError {
        reason: e.to_string(),
    })?;
    Ok(docker)
}

/// The images that run the services of an environment.
pub struct Services<'a> {
    pub registry: &'a RoleSpec,
    pub dind: &'a RoleSpec,
    pub base_image: &'a RoleSpec,
}

/// Where the time of bringing an environment up went, in ms. The registries and DinD start
/// together: their readiness times overlap, each counted from the start of both.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnvironmentPhases {
    /// Network and volumes created.
    pub network_ms: u64,
    /// Registries started and answering.
    pub registry_ready_ms: u64,
    /// DinD started and answering.
    pub dind_ready_ms: u64,
    /// The base image for test Dockerfiles pushed into the first registry.
    pub base_image_ms: u64,
}

/// One scenario's isolated set of containers, networks and volumes.
pub struct Environment {
    docker: Docker,
    instance: String,
    labels: HashMap<String, String>,
    network: String,
    run_volume: String,
    workspace: PathBuf,
    registries: Vec<(String, Registry)>,
    /// Registry container ids by registry name.
    registry_containers: Vec<(String, String)>,
    /// How long bringing the environment up took, part by part.
    phases: EnvironmentPhases,
    dind: Option<String>,
}

impl Environment {
    /// Names a new environment; nothing is created until [`Environment::up`].
    pub fn new(docker: Docker, run_id: &str, scenario: &str, workspace: PathBuf) -> Environment {
        let instance = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let labels = HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_RUN.to_owned(), run_id.to_owned()),
            (LABEL_SCENARIO.to_owned(), scenario.to_owned()),
            (LABEL_INSTANCE.to_owned(), instance.clone()),
        ]);
        Environment {
            docker,
            network: format!("conformance-{instance}"),
            run_volume: format!("conformance-{instance}-run"),
            instance,
            labels,
            workspace,
            registries: Vec::new(),
            registry_containers: Vec::new(),
            phases: EnvironmentPhases::default(),
            dind: None,
        }
    }

    /// How long [`Environment::up`] took, part by part (zeros for parts it did not reach).
    pub fn phases(&self) -> EnvironmentPhases {
        self.phases
    }

    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// The registries by name, as seen from the host. Empty before [`Environment::up`].
    pub fn registries(&self) -> &[(String, Registry)] {
        &self.registries
    }

    /// Creates the network and volumes, starts the registry and DinD, waits until both answer,
    /// and pushes the base image for test Dockerfiles into the registry.
    pub async fn up(
        &mut self,
        services: &Services<'_>,
        registry_names: &[String],
        registry_auth: &BTreeMap<String, Credentials>,
    ) -> Result<(), RuntimeError> {
        let began = Instant::now();
        let ms = |since: Instant| since.elapsed().as_millis() as u64;
        self.docker
            .create_network(NetworkCreateRequest {
                name: self.network.clone(),
                driver: Some("bridge".into()),
                labels: Some(self.labels.clone()),
                ..Default::default()
            })
            .await
            .map_err(|source| RuntimeError::Create {
                what: "network",
                name: self.network.clone(),
                source,
            })?;
        let dind_lib = format!("conformance-{}-dind-lib", self.instance);
        for volume in [&self.run_volume, &dind_lib] {
            self.docker
                .create_volume(VolumeCreateRequest {
                    name: Some(volume.clone()),
                    labels: Some(self.labels.clone()),
                    ..Default::default()
                })
                .await
                .map_err(|source| RuntimeError::Create {
                    what: "volume",
                    name: volume.clone(),
                    source,
                })?;
        }

        self.phases.network_ms = ms(began);
        let services_began = Instant::now();
        let no_env = BTreeMap::new();
        // A registry behind basic auth gets an htpasswd file (bcrypt, as distribution requires)
        // and distribution's REGISTRY_AUTH_* overrides, which work whatever its config file.
        let mut auth_env = Vec::new();
        let mut auth_binds = Vec::new();
        for name in registry_names {
            let Some(credentials) = registry_auth.get(name) else {
                auth_env.push(BTreeMap::new());
                auth_binds.push(vec![]);
                continue;
            };
            let dir = self
                .workspace
                .with_file_name(format!("registry-{name}-auth"));
            let htpasswd = bcrypt::hash(&credentials.password, 5)
                .map(|hash| format!("{}:{hash}\n", credentials.username))
                .map_err(|e| RuntimeError::Workspace {
                    path: dir.clone(),
                    source: std::io::Error::other(e),
                })?;
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join("htpasswd"), htpasswd))
                .map_err(|source| RuntimeError::Workspace {
                    path: dir.clone(),
                    source,
                })?;
            auth_env.push(BTreeMap::from([
                ("REGISTRY_AUTH".to_owned(), "htpasswd".to_owned()),
                (
                    "REGISTRY_AUTH_HTPASSWD_REALM".to_owned(),
                    "conformance".to_owned(),
                ),
                (
                    "REGISTRY_AUTH_HTPASSWD_PATH".to_owned(),
                    "/auth/htpasswd".to_owned(),
                ),
            ]));
            auth_binds.push(vec![format!("{}:/auth:ro", dir.display())]);
        }
        let suffixes: Vec<String> = registry_names
            .iter()
            .map(|name| format!("registry-{name}"))
            .collect();
        let registries = futures_util::future::try_join_all(
            registry_names
                .iter()
                .zip(&suffixes)
                .zip(auth_env.iter().zip(&auth_binds))
                .map(|((name, suffix), (extra_env, binds))| {
                    self.create_and_start(ContainerSpec {
                        suffix,
                        image: &services.registry.image,
                        entrypoint: services.registry.entrypoint.clone(),
                        args: services.registry.args.clone(),
                        env: &services.registry.env,
                        extra_env,
                        privileged: services.registry.privileged,
                        binds: binds.clone(),
                        aliases: vec![name.clone()],
                        workdir: None,
                        publish: Some(REGISTRY_PORT),
                        tmpfs: false,
                        security_opt: vec![],
                    })
                }),
        );
        let mut dind_args = services.dind.args.clone();
        dind_args.extend(
            registry_names
                .iter()
                .map(|name| format!("--insecure-registry={name}:{REGISTRY_PORT}")),
        );
        let dind = self.create_and_start(ContainerSpec {
            suffix: "dind",
            image: &services.dind.image,
            entrypoint: services.dind.entrypoint.clone(),
            args: dind_args,
            env: &services.dind.env,
            extra_env: &no_env,
            privileged: true,
            binds: vec![
                format!("{}:/var/run", self.run_volume),
                format!("{dind_lib}:/var/lib/docker"),
            ],
            aliases: vec!["dind".into()],
            workdir: None,
            publish: None,
            tmpfs: false,
            security_opt: vec![],
        });
        let (registries, dind) = tokio::join!(registries, dind);
        let (registries, dind) = (registries?, dind?);

        let mut hosts = Vec::new();
        for id in &registries {
            hosts.push(format!(
                "127.0.0.1:{}",
                self.published_port(id, REGISTRY_PORT).await?
            ));
        }
        let registries_ready = async {
            let ready = futures_util::future::try_join_all(
                hosts
                    .iter()
                    .zip(registry_names)
                    .map(|(h, name)| wait_for_registry(h, registry_auth.contains_key(name))),
            )
            .await;
            (ready, ms(services_began))
        };
        let dind_ready = async { (self.wait_for_dind(&dind).await, ms(services_began)) };
        let ((registries_ready, registry_ms), (dind_ready, dind_ms)) =
            tokio::join!(registries_ready, dind_ready);
        registries_ready?;
        dind_ready?;
        let seeding = Instant::now();
        self.push_base_image(&services.base_image.image, &hosts[0])
            .await?;
        self.phases.registry_ready_ms = registry_ms;
        self.phases.dind_ready_ms = dind_ms;
        self.phases.base_image_ms = ms(seeding);
        self.registries = registry_names
            .iter()
            .zip(hosts)
            .map(|(name, host)| {
                let registry = match registry_auth.get(name) {
                    Some(c) => Registry::with_basic_auth(host, &c.username, &c.password),
                    None => Registry::new(host),
                };
                (name.clone(), registry)
            })
            .collect();
        self.registry_containers = registry_names.iter().cloned().zip(registries).collect();
        self.dind = Some(dind);
        Ok(())
    }

    /// Runs a plugin step to completion (or until `timeout`), and removes its container.
    pub async fn run_step(
        &self,
        name: &str,
        role: &str,
        spec: &RoleSpec,
        env: &BTreeMap<String, String>,
        daemon: DaemonMode,
        timeout: Duration,
    ) -> Result<StepRecord, RuntimeError> {
        let started = Instant::now();
        let suffix = format!("step-{}", sanitize(name));
        let mut binds = vec![format!("{}:{}", self.workspace.display(), spec.workdir())];
        if daemon == DaemonMode::Shared {
            binds.push(format!("{}:/var/run", self.run_volume));
        }
        // A plugin starting its own dockerd gets a tmpfs for its storage (overlay2 works there).
        let own_daemon = daemon == DaemonMode::Own;
        let id = self
            .create_and_start(ContainerSpec {
                suffix: &suffix,
                image: &spec.image,
                entrypoint: spec.entrypoint.clone(),
                args: spec.args.clone(),
                env: &spec.env,
                extra_env: env,
                privileged: spec.privileged,
                binds,
                tmpfs: own_daemon,
                security_opt: spec.security_opt.clone(),
                aliases: vec![],
                workdir: Some(spec.workdir()),
                publish: None,
            })
            .await?;
        let wait = async {
            let mut stream = self.docker.wait_container(&id, None);
            match stream.next().await {
                Some(Ok(response)) => Ok(response.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    Ok(code)
                }
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
        let _ = self
            .docker
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await;
        Ok(StepRecord {
            name: name.to_owned(),
            role: role.to_owned(),
            exit_code,
            timed_out,
            started_ms: 0,
            duration_ms,
            group: None,
            log,
        })
    }

    /// Removes every container, network and volume of this environment. Safe to call whatever
    /// state `up` reached.
    pub async fn teardown(self) -> Result<(), RuntimeError> {
        remove_labelled(
            &self.docker,
            vec![format!("{LABEL_INSTANCE}={}", self.instance)],
        )
        .await
        .map(|_| ())
    }

    async fn create_and_start(&self, spec: ContainerSpec<'_>) -> Result<String, RuntimeError> {
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
                tmpfs: spec
                    .tmpfs
                    .then(|| HashMap::from([("/var/lib/docker".to_owned(), String::new())])),
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
        let created = self
            .docker
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
        self.docker
            .start_container(&created.id, None)
            .await
            .map_err(|source| RuntimeError::Start { name, source })?;
        Ok(created.id)
    }

    async fn published_port(&self, id: &str, port: u16) -> Result<u16, RuntimeError> {
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

    async fn wait_for_dind(&self, id: &str) -> Result<(), RuntimeError> {
        let deadline = Instant::now() + DIND_READY;
        loop {
            match self.exec_status(id, &["docker", "version"]).await {
                Ok(0) => return Ok(()),
                Ok(_) | Err(_) if Instant::now() < deadline => {}
                _ => {
                    return Err(RuntimeError::NotReady {
                        service: "dind".into(),
                        seconds: DIND_READY.as_secs(),
                        detail: tail(&self.logs(id).await, 2000),
                    })
                }
            }
            if !self.is_running(id).await {
                return Err(RuntimeError::NotReady {
                    service: "dind".into(),
                    seconds: 0,
                    detail: format!("the container exited: {}", tail(&self.logs(id).await, 2000)),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn exec_status(&self, id: &str, cmd: &[&str]) -> Result<i64, bollard::errors::Error> {
        Ok(self.exec(id, cmd).await?.0)
    }

    /// Runs a command in a container; returns its exit status and output.
    async fn exec(&self, id: &str, cmd: &[&str]) -> Result<(i64, String), bollard::errors::Error> {
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

    /// The id of an image in the shared DinD daemon, or `None` when it has no such image.
    pub async fn daemon_image_id(&self, reference: &str) -> Result<Option<String>, RuntimeError> {
        let dind = self.dind.as_deref().expect("environment is up");
        let (code, output) = self
            .exec(
                dind,
                &[
                    "docker", "image", "inspect", "--format", "{{.Id}}", reference,
                ],
            )
            .await
            .map_err(|source| RuntimeError::Docker {
                action: format!("inspecting {reference} in dind"),
                source,
            })?;
        if code == 0 {
            Ok(Some(output.trim().to_owned()))
        } else if output.contains("No such image") {
            Ok(None)
        } else {
            Err(RuntimeError::NotReady {
                service: "dind".into(),
                seconds: 0,
                detail: output,
            })
        }
    }

    /// Every tagged image in the shared DinD daemon: `repository:tag` → image id. Untagged
    /// (dangling) images are build intermediates and left out.
    pub async fn daemon_images(&self) -> Result<BTreeMap<String, String>, RuntimeError> {
        let dind = self.dind.as_deref().expect("environment is up");
        let format = "{{.Repository}}:{{.Tag}} {{.ID}}";
        let (code, output) = self
            .exec(
                dind,
                &["docker", "image", "ls", "--no-trunc", "--format", format],
            )
            .await
            .map_err(|source| RuntimeError::Docker {
                action: "listing the images in dind".into(),
                source,
            })?;
        if code != 0 {
            return Err(RuntimeError::NotReady {
                service: "dind".into(),
                seconds: 0,
                detail: tail(&output, 2000),
            });
        }
        Ok(output
            .lines()
            .filter_map(|line| line.trim().split_once(' '))
            .filter(|(reference, _)| !reference.contains("<none>"))
            .map(|(reference, id)| (reference.to_owned(), id.trim().to_owned()))
            .collect())
    }

    /// The output of a registry container (what it logged about each request), by the
    /// registry's name.
    pub async fn registry_log(&self, name: &str) -> Option<String> {
        let id = self.registry_containers.iter().find(|(n, _)| n == name)?;
        Some(self.logs(&id.1).await)
    }

    async fn is_running(&self, id: &str) -> bool {
        self.docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|i| i.state)
            .and_then(|s| s.running)
            .unwrap_or(false)
    }

    async fn logs(&self, id: &str) -> String {
        let mut stream = self.docker.logs(
            id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                follow: false,
                tail: "all".into(),
                ..Default::default()
            }),
        );
        let mut out = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        tail(&out, LOG_LIMIT)
    }

    /// Tags the base image for the registry's published port and pushes it from the host's
    /// daemon (which treats 127.0.0.0/8 as insecure), then drops the temporary tag.
    async fn push_base_image(&self, image: &str, host: &str) -> Result<(), RuntimeError> {
        let target = format!("{host}/{BASE_IMAGE_REPOSITORY}");
        let docker_err = |action: &str| {
            let action = action.to_owned();
            move |source| RuntimeError::Docker { action, source }
        };
        self.docker
            .tag_image(
                image,
                Some(TagImageOptions {
                    repo: Some(target.clone()),
                    tag: Some(BASE_IMAGE_TAG.into()),
                }),
            )
            .await
            .map_err(docker_err("tagging the base image"))?;
        let mut push = self.docker.push_image(
            &target,
            Some(PushImageOptions {
                tag: Some(BASE_IMAGE_TAG.into()),
                ..Default::default()
            }),
            None,
        );
        let mut failure = None;
        while let Some(item) = push.next().await {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail {
                        failure = Some(detail.message.unwrap_or_default());
                    }
                }
                Err(e) => failure = Some(e.to_string()),
            }
        }
        let _ = self
            .docker
            .remove_image(
                &format!("{target}:{BASE_IMAGE_TAG}"),
                None::<RemoveImageOptions>,
                None,
            )
            .await;
        match failure {
            None => Ok(()),
            Some(detail) => Err(RuntimeError::NotReady {
                service: "registry (base image push)".into(),
                seconds: 0,
                detail,
            }),
        }
    }
}

struct ContainerSpec<'a> {
    suffix: &'a str,
    image: &'a str,
    entrypoint: Option<Vec<String>>,
    args: Vec<String>,
    env: &'a BTreeMap<String, String>,
    extra_env: &'a BTreeMap<String, String>,
    privileged: bool,
    binds: Vec<String>,
    aliases: Vec<String>,
    workdir: Option<&'a str>,
    publish: Option<u16>,
    /// Mount a tmpfs at /var/lib/docker.
    tmpfs: bool,
    security_opt: Vec<String>,
}

/// Polls `GET /v2/` on the registry until it answers 200.
async fn wait_for_registry(host: &str, behind_auth: bool) -> Result<(), RuntimeError> {
    let deadline = Instant::now() + REGISTRY_READY;
    let mut last = String::new();
    while Instant::now() < deadline {
        match http_status(host, "/v2/").await {
            Ok(200) => return Ok(()),
            Ok(401) if behind_auth => return Ok(()),
            Ok(code) => last = format!("GET /v2/ answered {code}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(RuntimeError::NotReady {
        service: "registry".into(),
        seconds: REGISTRY_READY.as_secs(),
        detail: last,
    })
}

async fn http_status(host: &str, path: &str) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an http response"))
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Swept {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
}

/// Removes every container, network and volume the harness labelled (optionally of one run).
pub async fn sweep(docker: &Docker, run: Option<&str>) -> Result<Swept, RuntimeError> {
    let filter = match run {
        Some(run) => format!("{LABEL_RUN}={run}"),
        None => format!("{LABEL_MANAGED}=true"),
    };
    remove_labelled(docker, vec![filter]).await
}

/// Removes what one scenario of one run created (when its process is told to stop).
pub async fn sweep_scenario(
    docker: &Docker,
    run: &str,
    scenario: &str,
) -> Result<Swept, RuntimeError> {
    remove_labelled(
        docker,
        vec![
            format!("{LABEL_RUN}={run}"),
            format!("{LABEL_SCENARIO}={scenario}"),
        ],
    )
    .await
}

/// Removes containers, then networks, then volumes carrying every one of `labels`.
async fn remove_labelled(docker: &Docker, labels: Vec<String>) -> Result<Swept, RuntimeError> {
    let label = labels.join(",");
    let filters = HashMap::from([("label".to_owned(), labels)]);
    let err = |action: &str| {
        let action = format!("{action} labelled {label}");
        move |source| RuntimeError::Docker { action, source }
    };
    let mut swept = Swept::default();
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(err("listing containers"))?;
    for container in containers {
        if let Some(id) = container.id {
            docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await
                .map_err(err("removing a container"))?;
            swept.containers += 1;
        }
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(err("listing networks"))?;
    for network in networks {
        if let Some(id) = network.id {
            docker
                .remove_network(&id)
                .await
                .map_err(err("removing a network"))?;
            swept.networks += 1;
        }
    }
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(err("listing volumes"))?;
    for volume in volumes.volumes.unwrap_or_default() {
        docker
            .remove_volume(
                &volume.name,
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await
            .map_err(err("removing a volume"))?;
        swept.volumes += 1;
    }
    Ok(swept)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The last `limit` bytes of `text`, cut at a character boundary.
fn tail(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[… truncated]\n{}", &text[start..])
}
