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
//! that are gone, [`sweep`] those of one run (or, explicitly, everything).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
use crate::stop::{self, InFlight};

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

/// The port every registry listens on inside the scenario's network.
pub const REGISTRY_PORT: u16 = 5000;
/// Where the base image for test Dockerfiles is pushed before the steps run.
pub const BASE_IMAGE_REPOSITORY: &str = "harness/busybox";
pub const BASE_IMAGE_TAG: &str = "1.37";

const REGISTRY_READY: Duration = Duration::from_secs(30);
const DIND_READY: Duration = Duration::from_secs(90);
const LOG_LIMIT: usize = 64 * 1024;
/// How long a teardown may try before it reports what remains.
const TEARDOWN_DEADLINE: Duration = Duration::from_secs(30);
/// How long an environment dropped without a teardown tries to remove itself.
const DROP_SWEEP_DEADLINE: Duration = Duration::from_secs(20);

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
    /// This environment's creates in flight (each runs to its end in a task of its own).
    in_flight: Arc<InFlight>,
    /// Whether a create was ever attempted: only then can there be anything to remove.
    touched: AtomicBool,
    /// Whether [`Environment::teardown`] removed everything.
    torn_down: bool,
    /// The registries' htpasswd files: a private directory (0700, files 0600) outside the
    /// report folder, removed at teardown (distribution reads the file at every request, so it
    /// must stay while the registry runs).
    auth_dir: Option<tempfile::TempDir>,
}

/// The labels naming the process that creates a resource: host, pid and the pid's start time.
pub fn owner_labels() -> [(String, String); 3] {
    let pid = std::process::id();
    [
        (LABEL_HOST.to_owned(), hostname()),
        (LABEL_PID.to_owned(), pid.to_string()),
        (
            LABEL_PID_START.to_owned(),
            process_start(pid).unwrap_or_default(),
        ),
    ]
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

impl Environment {
    /// Names a new environment; nothing is created until [`Environment::up`].
    pub fn new(docker: Docker, run_id: &str, scenario: &str, workspace: PathBuf) -> Environment {
        let instance = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let mut labels = HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_RUN.to_owned(), run_id.to_owned()),
            (LABEL_SCENARIO.to_owned(), scenario.to_owned()),
            (LABEL_INSTANCE.to_owned(), instance.clone()),
        ]);
        labels.extend(owner_labels());
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
            in_flight: Arc::new(InFlight::default()),
            touched: AtomicBool::new(false),
            torn_down: false,
            auth_dir: None,
        }
    }

    /// The label every resource of this environment carries (`key=value`).
    pub fn instance_label(&self) -> String {
        format!("{LABEL_INSTANCE}={}", self.instance)
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
    /// and pushes the base image for test Dockerfiles into the registry. Ends early with
    /// [`RuntimeError::Stopped`] when the process is asked to stop.
    pub async fn up(
        &mut self,
        services: &Services<'_>,
        registry_names: &[String],
        registry_auth: &BTreeMap<String, Credentials>,
    ) -> Result<(), RuntimeError> {
        stop::or_stopped(self.bring_up(services, registry_names, registry_auth)).await?;
        stop::fault_point("environment");
        Ok(())
    }

    async fn bring_up(
        &mut self,
        services: &Services<'_>,
        registry_names: &[String],
        registry_auth: &BTreeMap<String, Credentials>,
    ) -> Result<(), RuntimeError> {
        let began = Instant::now();
        let ms = |since: Instant| since.elapsed().as_millis() as u64;
        let request = NetworkCreateRequest {
            name: self.network.clone(),
            driver: Some("bridge".into()),
            labels: Some(self.labels.clone()),
            ..Default::default()
        };
        let docker = self.docker.clone();
        let name = self.network.clone();
        self.detached(async move {
            docker
                .create_network(request)
                .await
                .map(|_| ())
                .map_err(|source| RuntimeError::Create {
                    what: "network",
                    name,
                    source,
                })
        })
        .await?;
        let dind_lib = format!("conformance-{}-dind-lib", self.instance);
        for volume in [&self.run_volume, &dind_lib] {
            let request = VolumeCreateRequest {
                name: Some(volume.clone()),
                labels: Some(self.labels.clone()),
                ..Default::default()
            };
            let docker = self.docker.clone();
            let name = volume.clone();
            self.detached(async move {
                docker
                    .create_volume(request)
                    .await
                    .map(|_| ())
                    .map_err(|source| RuntimeError::Create {
                        what: "volume",
                        name,
                        source,
                    })
            })
            .await?;
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
            let dir = self.auth_dir()?.join(format!("registry-{name}"));
            let htpasswd = bcrypt::hash(&credentials.password, 5)
                .map(|hash| format!("{}:{hash}\n", credentials.username))
                .map_err(|e| RuntimeError::Workspace {
                    path: dir.clone(),
                    source: std::io::Error::other(e),
                })?;
            write_private(&dir, "htpasswd", htpasswd.as_bytes()).map_err(|source| {
                RuntimeError::Workspace {
                    path: dir.clone(),
                    source,
                }
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
        // Tags an image in the host's daemon (which no label can name): run to its end like a
        // create, so that the temporary tag is always dropped again.
        let push = push_base_image(
            self.docker.clone(),
            services.base_image.image.clone(),
            hosts[0].clone(),
        );
        self.detached(push).await?;
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

    /// Runs a plugin step to completion (or until `timeout`), and removes its container. Ends
    /// early with [`RuntimeError::Stopped`] when the process is asked to stop (the container is
    /// removed at teardown).
    pub async fn run_step(
        &self,
        name: &str,
        role: &str,
        spec: &RoleSpec,
        env: &BTreeMap<String, String>,
        daemon: DaemonMode,
        timeout: Duration,
    ) -> Result<StepRecord, RuntimeError> {
        stop::or_stopped(self.step(name, role, spec, env, daemon, timeout)).await
    }

    async fn step(
        &self,
        name: &str,
        role: &str,
        spec: &RoleSpec,
        env: &BTreeMap<String, String>,
        daemon: DaemonMode,
        timeout: Duration,
    ) -> Result<StepRecord, RuntimeError> {
        let started = Instant::now();
        let suffix = format!("step-{}", crate::scenario::container_suffix(name));
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

    /// Removes every container, network and volume of this environment, and its private auth
    /// directory. Safe to call whatever state `up` reached: waits for the creates in flight,
    /// then removes until nothing carrying the instance label remains.
    pub async fn teardown(mut self) -> Result<(), RuntimeError> {
        let removed = if self.touched.load(Ordering::SeqCst) {
            remove_until_gone(
                &self.docker,
                vec![self.instance_label()],
                Some(&self.in_flight),
                TEARDOWN_DEADLINE,
            )
            .await
            .map(|_| ())
        } else {
            Ok(())
        };
        let auth = self.auth_dir.take().map(|dir| {
            let path = dir.path().to_owned();
            dir.close()
                .map_err(|source| RuntimeError::Workspace { path, source })
        });
        // Removed or not, the drop guard would only try the same again.
        self.torn_down = true;
        removed?;
        auth.transpose().map(|_| ())
    }

    /// The private directory for the registries' htpasswd files, created on first use.
    fn auth_dir(&mut self) -> Result<PathBuf, RuntimeError> {
        if self.auth_dir.is_none() {
            // tempfile creates the directory with mode 0700.
            let dir = tempfile::Builder::new()
                .prefix(&format!(
                    "conformance-auth-{}-{}-",
                    self.labels[LABEL_RUN], self.instance
                ))
                .tempdir()
                .map_err(|source| RuntimeError::Workspace {
                    path: std::env::temp_dir(),
                    source,
                })?;
            // Private whatever the umask or tempfile's defaults.
            std::fs::set_permissions(
                dir.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )
            .map_err(|source| RuntimeError::Workspace {
                path: dir.path().to_owned(),
                source,
            })?;
            self.auth_dir = Some(dir);
        }
        Ok(self
            .auth_dir
            .as_ref()
            .expect("created above")
            .path()
            .to_owned())
    }

    /// Runs a create to its end in a task of its own, counted in this environment's and the
    /// process's creates in flight; refused once the process is asked to stop. Dropping the
    /// caller does not abandon the create, so a sweep after "no create in flight" sees it.
    async fn detached<T: Send + 'static>(
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
}

/// Tags the base image for the registry's published port and pushes it from the host's
/// daemon (which treats 127.0.0.0/8 as insecure), then drops the temporary tag.
async fn push_base_image(docker: Docker, image: String, host: String) -> Result<(), RuntimeError> {
    let target = format!("{host}/{BASE_IMAGE_REPOSITORY}");
    let docker_err = |action: &str| {
        let action = action.to_owned();
        move |source| RuntimeError::Docker { action, source }
    };
    docker
        .tag_image(
            &image,
            Some(TagImageOptions {
                repo: Some(target.clone()),
                tag: Some(BASE_IMAGE_TAG.into()),
            }),
        )
        .await
        .map_err(docker_err("tagging the base image"))?;
    let mut push = docker.push_image(
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
    let _ = docker
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

impl Drop for Environment {
    /// The teardown that cannot be skipped: an environment dropped before its teardown (a panic
    /// unwinding through the plan, a plan future dropped on a deadline) removes itself here,
    /// blocking, on a thread of its own with its own runtime (this may run inside the runtime
    /// or while unwinding).
    fn drop(&mut self) {
        if self.torn_down || !self.touched.load(Ordering::SeqCst) {
            return;
        }
        let label = self.instance_label();
        let in_flight = Arc::clone(&self.in_flight);
        let cleanup = std::thread::spawn(move || {
            // Creates in flight run on the plan's runtime: let them return first.
            in_flight.settled_blocking(DROP_SWEEP_DEADLINE);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let docker = Docker::connect_with_defaults().map_err(|e| e.to_string())?;
                remove_until_gone(&docker, vec![label], None, DROP_SWEEP_DEADLINE)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        let note = match cleanup.join() {
            Ok(Ok(swept)) => format!("removed {swept}"),
            Ok(Err(e)) => format!("error: could not remove everything: {e}"),
            Err(_) => "error: the cleanup thread panicked".to_owned(),
        };
        crate::progress::eprint(&format!(
            "environment {} was dropped before its teardown: {note}\n",
            self.instance
        ));
        // The private auth directory goes with the TempDir's own drop.
    }
}

/// Writes `name` into `dir` (created with mode 0700) with mode 0600.
fn write_private(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(name))?;
    file.write_all(contents)
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
}

impl Swept {
    pub fn total(&self) -> usize {
        self.containers + self.networks + self.volumes
    }

    fn add(&mut self, other: Swept) {
        self.containers += other.containers;
        self.networks += other.networks;
        self.volumes += other.volumes;
    }
}

impl std::fmt::Display for Swept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} container(s), {} network(s), {} volume(s)",
            self.containers, self.networks, self.volumes
        )
    }
}

/// Removes every container, network and volume of one run (`Some`), or every one the harness
/// labelled, including those of runs still going on (`None`: `harness sweep --all`).
pub async fn sweep(docker: &Docker, run: Option<&str>) -> Result<Swept, RuntimeError> {
    let filter = match run {
        Some(run) => format!("{LABEL_RUN}={run}"),
        None => format!("{LABEL_MANAGED}=true"),
    };
    remove_until_gone(docker, vec![filter], None, TEARDOWN_DEADLINE).await
}

/// Removes what this process created for a run (its run, host and pid labels), after waiting
/// for its creates in flight, until nothing of it remains or `deadline` passes. What a stopped
/// process (or nextest's SIGTERM) does last.
pub async fn sweep_own(
    docker: &Docker,
    run: &str,
    deadline: Duration,
) -> Result<Swept, RuntimeError> {
    let mut labels = vec![format!("{LABEL_RUN}={run}")];
    labels.extend(
        owner_labels()
            .into_iter()
            .filter(|(k, _)| k != LABEL_PID_START)
            .map(|(k, v)| format!("{k}={v}")),
    );
    remove_until_gone(docker, labels, Some(stop::stop().in_flight()), deadline).await
}

/// The process that created a labelled resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    pub run: String,
    pub host: Option<String>,
    pub pid: Option<String>,
    pub pid_start: Option<String>,
}

/// Whether the owner of some resources is still there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerState {
    /// Its process runs on this host: its resources are in use.
    Alive,
    /// Its process is gone (no such pid on this host, or the pid now names another process).
    Gone,
    /// Cannot tell (another host, or no owner recorded): left alone, with the reason.
    Unknown(String),
}

impl Owner {
    fn of(labels: &HashMap<String, String>) -> Owner {
        let get = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
        Owner {
            run: get(LABEL_RUN).unwrap_or_default(),
            host: get(LABEL_HOST),
            pid: get(LABEL_PID),
            pid_start: get(LABEL_PID_START),
        }
    }

    /// Whether the owning process still runs (judged on this host only).
    pub fn state(&self) -> OwnerState {
        let (Some(host), Some(pid)) = (&self.host, &self.pid) else {
            return OwnerState::Unknown(
                "no owning process recorded (an older harness made it)".into(),
            );
        };
        if *host != hostname() {
            return OwnerState::Unknown(format!("owned by a process on host {host}"));
        }
        let Ok(pid) = pid.parse::<u32>() else {
            return OwnerState::Unknown(format!("unreadable pid label `{pid}`"));
        };
        match (process_start(pid), &self.pid_start) {
            (None, _) => OwnerState::Gone,
            (Some(now), Some(then)) if now != *then => OwnerState::Gone,
            _ => OwnerState::Alive,
        }
    }

    /// The label filters naming exactly this owner's resources.
    fn filters(&self) -> Vec<String> {
        let mut filters = vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_RUN}={}", self.run),
        ];
        if let Some(host) = &self.host {
            filters.push(format!("{LABEL_HOST}={host}"));
        }
        if let Some(pid) = &self.pid {
            filters.push(format!("{LABEL_PID}={pid}"));
        }
        filters
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run {}", self.run)?;
        if let (Some(host), Some(pid)) = (&self.host, &self.pid) {
            write!(f, " (pid {pid} on {host})")?;
        }
        Ok(())
    }
}

/// What `harness sweep` did, owner by owner.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Owners whose process is gone, and what was removed of theirs.
    pub removed: Vec<(Owner, Swept)>,
    /// Owners left alone, with why.
    pub kept: Vec<(Owner, String)>,
}

/// Removes the leftovers of processes that are gone: every labelled resource whose owning
/// process (host, pid, start time) no longer runs on this host. Resources of live processes,
/// of other hosts and without an owner are left alone. `only` narrows the sweep to resources
/// also carrying these `key=value` labels.
pub async fn sweep_gone(docker: &Docker, only: &[String]) -> Result<SweepReport, RuntimeError> {
    let mut filters = vec![format!("{LABEL_MANAGED}=true")];
    filters.extend(only.iter().cloned());
    let listed = list_labelled(docker, &filters).await?;
    let owners: BTreeSet<Owner> = listed.iter().map(|r| Owner::of(&r.labels)).collect();
    let mut report = SweepReport::default();
    for owner in owners {
        match owner.state() {
            OwnerState::Gone => {
                let mut filters = owner.filters();
                filters.extend(only.iter().cloned());
                let swept = remove_until_gone(docker, filters, None, TEARDOWN_DEADLINE).await?;
                report.removed.push((owner, swept));
            }
            OwnerState::Alive => report.kept.push((owner, "its process is running".into())),
            OwnerState::Unknown(why) => report.kept.push((owner, why)),
        }
    }
    Ok(report)
}

/// Counts the containers, networks and volumes carrying every one of `labels` (`key=value`).
pub async fn count_labelled(docker: &Docker, labels: &[String]) -> Result<Swept, RuntimeError> {
    let mut count = Swept::default();
    for resource in list_labelled(docker, labels).await? {
        match resource.kind {
            Kind::Container => count.containers += 1,
            Kind::Network => count.networks += 1,
            Kind::Volume => count.volumes += 1,
        }
    }
    Ok(count)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Container,
    Network,
    Volume,
}

/// A labelled resource, as listed.
struct Labelled {
    kind: Kind,
    id: String,
    labels: HashMap<String, String>,
}

/// Every container, network and volume carrying every one of `labels`, containers first.
async fn list_labelled(docker: &Docker, labels: &[String]) -> Result<Vec<Labelled>, RuntimeError> {
    let filters = HashMap::from([("label".to_owned(), labels.to_vec())]);
    let err = |what: &str| {
        let action = format!("listing {what} labelled {}", labels.join(","));
        move |source| RuntimeError::Docker { action, source }
    };
    let mut found = Vec::new();
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(err("containers"))?;
    found.extend(containers.into_iter().filter_map(|c| {
        Some(Labelled {
            kind: Kind::Container,
            id: c.id?,
            labels: c.labels.unwrap_or_default(),
        })
    }));
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(err("networks"))?;
    found.extend(networks.into_iter().filter_map(|n| {
        Some(Labelled {
            kind: Kind::Network,
            id: n.id?,
            labels: n.labels.unwrap_or_default(),
        })
    }));
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(err("volumes"))?;
    found.extend(
        volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| Labelled {
                kind: Kind::Volume,
                id: v.name,
                labels: v.labels,
            }),
    );
    Ok(found)
}

/// Removes containers, then networks, then volumes carrying every one of `labels`, pass after
/// pass, until a listing finds none (after the creates in `in_flight` returned) or `deadline`
/// passes. A resource already gone counts as removed; any other failure is retried, and
/// reported with what remains when the deadline passes.
pub async fn remove_until_gone(
    docker: &Docker,
    labels: Vec<String>,
    in_flight: Option<&InFlight>,
    deadline: Duration,
) -> Result<Swept, RuntimeError> {
    let began = Instant::now();
    let mut removed = Swept::default();
    loop {
        let left = deadline.saturating_sub(began.elapsed());
        let settled = match in_flight {
            Some(in_flight) => in_flight.settled(left).await,
            None => true,
        };
        let (pass, problem) = match list_labelled(docker, &labels).await {
            Ok(found) if found.is_empty() && settled => return Ok(removed),
            Ok(found) => {
                let (swept, problem) = remove_all(docker, found).await;
                (swept, problem)
            }
            Err(e) => (Swept::default(), Some(e.to_string())),
        };
        removed.add(pass);
        if began.elapsed() >= deadline {
            let remaining = count_labelled(docker, &labels)
                .await
                .map(|c| c.to_string())
                .unwrap_or_else(|e| e.to_string());
            return Err(RuntimeError::Leftover {
                labels: labels.join(","),
                seconds: deadline.as_secs(),
                remaining: match problem {
                    Some(p) => format!("{remaining} (last problem: {p})"),
                    None => remaining,
                },
            });
        }
        if problem.is_some() || !settled {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One removal pass; what it removed, and the last problem it met (if any).
async fn remove_all(docker: &Docker, found: Vec<Labelled>) -> (Swept, Option<String>) {
    let mut swept = Swept::default();
    let mut problem = None;
    for resource in found {
        let removed = match resource.kind {
            Kind::Container => {
                docker
                    .remove_container(
                        &resource.id,
                        Some(RemoveContainerOptions {
                            force: true,
                            v: true,
                            ..Default::default()
                        }),
                    )
                    .await
            }
            Kind::Network => docker.remove_network(&resource.id).await,
            Kind::Volume => {
                docker
                    .remove_volume(
                        &resource.id,
                        None::<bollard::query_parameters::RemoveVolumeOptions>,
                    )
                    .await
            }
        };
        match removed {
            Ok(()) => match resource.kind {
                Kind::Container => swept.containers += 1,
                Kind::Network => swept.networks += 1,
                Kind::Volume => swept.volumes += 1,
            },
            // Gone already (removed concurrently): nothing to do.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => problem = Some(format!("removing {:?} {}: {e}", resource.kind, resource.id)),
        }
    }
    (swept, problem)
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

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
        assert!(!hostname().is_empty());
    }
}
