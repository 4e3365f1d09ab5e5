//! One scenario's environment: bringing it up, asking its daemon and registries, tearing it down.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, LogsOptions, PushImageOptions,
    RemoveImageOptions, TagImageOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use model::result::EnvironmentPhases;

use crate::errors::RuntimeError;
use crate::profile::{RoleSpec, Trust};
use crate::stop::{self, InFlight};
use crate::tls::{TrustFiles, REGISTRY_CERT_DIR};
use oci::registry::Registry;
use scenario::Credentials;

use super::*;

/// The images that run the services of an environment.
pub struct Services<'a> {
    pub registry: &'a RoleSpec,
    /// The shared daemon, when some step of the plan may use it.
    pub dind: Option<&'a RoleSpec>,
    pub base_image: &'a RoleSpec,
}

/// One scenario's isolated set of containers, networks and volumes.
pub struct Environment {
    pub(super) docker: Docker,
    pub(super) instance: String,
    pub(super) labels: HashMap<String, String>,
    pub(super) network: String,
    pub(super) run_volume: String,
    pub(super) workspace: PathBuf,
    pub(super) registries: Vec<(String, Registry)>,
    /// Registry container ids by registry name.
    pub(super) registry_containers: Vec<(String, String)>,
    /// How long bringing the environment up took, part by part.
    pub(super) phases: EnvironmentPhases,
    pub(super) dind: Option<String>,
    /// This environment's creates in flight (each runs to its end in a task of its own).
    pub(super) in_flight: Arc<InFlight>,
    /// Whether a create was ever attempted: only then can there be anything to remove.
    pub(super) touched: AtomicBool,
    /// Whether [`Environment::teardown`] removed everything.
    pub(super) torn_down: bool,
    /// The registries' htpasswd files and TLS files: a private directory (0700, secrets 0600)
    /// outside the report folder, removed at teardown (distribution reads the htpasswd file at
    /// every request, so it must stay while the registry runs).
    pub(super) auth_dir: Option<tempfile::TempDir>,
    /// The run's CA and this environment's registry certificate, once `up` wrote them.
    pub(super) trust: Option<TrustFiles>,
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
            trust: None,
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

    /// Creates the network, starts the registries (HTTPS with a certificate from the run's CA,
    /// unless `registry_tls` says `false` for one) and, when `services` has one, DinD with the
    /// run volume it shares as /var/run; waits until all answer, and pushes the base image for test Dockerfiles into the first registry. Ends
    /// early with [`RuntimeError::Stopped`] when the process is asked to stop.
    pub async fn up(
        &mut self,
        services: &Services<'_>,
        registry_names: &[String],
        registry_auth: &BTreeMap<String, Credentials>,
        registry_tls: &BTreeMap<String, bool>,
    ) -> Result<(), RuntimeError> {
        stop::or_stopped(self.bring_up(services, registry_names, registry_auth, registry_tls))
            .await?;
        stop::fault_point("environment");
        Ok(())
    }

    async fn bring_up(
        &mut self,
        services: &Services<'_>,
        registry_names: &[String],
        registry_auth: &BTreeMap<String, Credentials>,
        registry_tls: &BTreeMap<String, bool>,
    ) -> Result<(), RuntimeError> {
        let began = Instant::now();
        let ms = |since: Instant| since.elapsed().as_millis() as u64;
        let network = NetworkCreateRequest {
            name: self.network.clone(),
            driver: Some("bridge".into()),
            labels: Some(self.labels.clone()),
            ..Default::default()
        };
        let docker = self.docker.clone();
        self.create("network", &self.network, async move {
            docker.create_network(network).await.map(|_| ())
        })
        .await?;
        // DinD's /var/lib/docker is a tmpfs (see the dind spec below): only the run volume, the
        // /var/run it shares with the steps, and only when there is a DinD.
        if services.dind.is_some() {
            let volume = VolumeCreateRequest {
                name: Some(self.run_volume.clone()),
                labels: Some(self.labels.clone()),
                ..Default::default()
            };
            let docker = self.docker.clone();
            self.create("volume", &self.run_volume, async move {
                docker.create_volume(volume).await.map(|_| ())
            })
            .await?;
        }

        self.phases.network_ms = ms(began);
        let services_began = Instant::now();
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
        // TLS: a server certificate naming every HTTPS registry, and the CA in the layouts the
        // roles' images read (mounted by `trust_mounts`).
        let uses_tls = |name: &String| registry_tls.get(name).copied().unwrap_or(true);
        let tls_hosts: Vec<String> = registry_names
            .iter()
            .filter(|n| uses_tls(n))
            .cloned()
            .collect();
        let tls_dir = self.auth_dir()?.join("tls");
        let ca = crate::tls::run_ca()?;
        let trust = TrustFiles::write(&tls_dir, ca, &tls_hosts, REGISTRY_PORT)?;
        for ((name, extra_env), binds) in registry_names
            .iter()
            .zip(&mut auth_env)
            .zip(&mut auth_binds)
        {
            if uses_tls(name) {
                extra_env.insert(
                    "REGISTRY_HTTP_TLS_CERTIFICATE".into(),
                    format!("{REGISTRY_CERT_DIR}/tls.crt"),
                );
                extra_env.insert(
                    "REGISTRY_HTTP_TLS_KEY".into(),
                    format!("{REGISTRY_CERT_DIR}/tls.key"),
                );
                binds.push(format!(
                    "{}:{REGISTRY_CERT_DIR}:ro",
                    trust.server_dir.display()
                ));
            }
        }
        self.trust = Some(trust);
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
                        tmpfs: services.registry.tmpfs.clone(),
                        security_opt: vec![],
                    })
                }),
        );
        // The shared daemon trusts the run's CA; plain-HTTP registries are the environment's
        // to declare insecure (as a CI's DinD service would be configured).
        let dind = async {
            let Some(spec) = services.dind else {
                return Ok(None);
            };
            let mut dind_args = spec.args.clone();
            dind_args.extend(
                registry_names
                    .iter()
                    .filter(|name| !uses_tls(name))
                    .map(|name| format!("--insecure-registry={name}:{REGISTRY_PORT}")),
            );
            let (mut dind_binds, dind_env) = self.trust_mounts(&spec.trust);
            dind_binds.push(format!("{}:/var/run", self.run_volume));
            self.create_and_start(ContainerSpec {
                suffix: "dind",
                image: &spec.image,
                entrypoint: spec.entrypoint.clone(),
                args: dind_args,
                env: &spec.env,
                extra_env: &dind_env,
                privileged: true,
                binds: dind_binds,
                aliases: vec!["dind".into()],
                workdir: None,
                publish: None,
                // Daemon storage in memory: a fresh, empty daemon per plan that starts sooner
                // and goes with its container (no volume to create, fill and remove).
                tmpfs: with_docker_storage(&spec.tmpfs),
                security_opt: vec![],
            })
            .await
            .map(Some)
        };
        let (registries, dind) = tokio::join!(registries, dind);
        let (registries, dind) = (registries?, dind?);

        let mut hosts = Vec::new();
        for id in &registries {
            hosts.push(format!(
                "127.0.0.1:{}",
                self.published_port(id, REGISTRY_PORT).await?
            ));
        }
        let clients: Vec<Registry> = registry_names
            .iter()
            .zip(&hosts)
            .map(|(name, host)| {
                let ca = uses_tls(name).then(|| ca.pem());
                let auth = registry_auth
                    .get(name)
                    .map(|c| (c.username.as_str(), c.password.as_str()));
                Registry::connect(host.clone(), ca, auth)
            })
            .collect();
        let registry_limit = services.registry.ready_timeout.unwrap_or(REGISTRY_READY);
        let registries_ready = async {
            let ready =
                futures_util::future::try_join_all(
                    registries.iter().zip(&clients).zip(registry_names).map(
                        |((id, client), name)| {
                            self.wait_for_registry(name, id, client, registry_limit)
                        },
                    ),
                )
                .await;
            (ready, ms(services_began))
        };
        let dind_ready = async {
            let (Some(spec), Some(id)) = (services.dind, &dind) else {
                return (Ok(()), 0);
            };
            let ready = self
                .wait_for_dind(id, spec.ready_timeout.unwrap_or(DIND_READY))
                .await;
            (ready, ms(services_began))
        };
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
        self.registries = registry_names.iter().cloned().zip(clients).collect();
        self.registry_containers = registry_names.iter().cloned().zip(registries).collect();
        self.dind = dind;
        Ok(())
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

    /// The binds and variables that tell a role's container about the run's CA, as its profile
    /// entry's `trust` says: certs.d trees, a CA file, variables naming that file. Nothing
    /// before `up` wrote the trust files.
    pub(super) fn trust_mounts(&self, trust: &Trust) -> (Vec<String>, BTreeMap<String, String>) {
        let Some(files) = &self.trust else {
            return (Vec::new(), BTreeMap::new());
        };
        let mut binds: Vec<String> = trust
            .certs_d
            .iter()
            .map(|dir| format!("{}:{dir}:ro", files.certs_d.display()))
            .collect();
        let mut env = BTreeMap::new();
        if let Some(path) = &trust.ca_file {
            binds.push(format!("{}:{path}:ro", files.ca_file.display()));
            for name in &trust.ca_file_env {
                env.insert(name.clone(), path.clone());
            }
        }
        (binds, env)
    }

    /// The private directory for the registries' htpasswd and TLS files, created on first use.
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
    pub(super) async fn detached<T: Send + 'static>(
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

    /// Creates a labelled network or volume (`what` `name`) as a detached create.
    async fn create(
        &self,
        what: &'static str,
        name: &str,
        create: impl Future<Output = Result<(), bollard::errors::Error>> + Send + 'static,
    ) -> Result<(), RuntimeError> {
        let name = name.to_owned();
        self.detached(async move {
            create
                .await
                .map_err(|source| RuntimeError::Create { what, name, source })
        })
        .await
    }

    pub(super) async fn create_and_start(
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

    /// Runs a command in a container; returns its exit status and output.
    pub(super) async fn exec(
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

    /// Whether the environment has a shared DinD daemon (some step of the plan may use it).
    pub fn has_shared_daemon(&self) -> bool {
        self.dind.is_some()
    }

    /// The id of an image in the shared DinD daemon, or `None` when it has no such image (or
    /// the plan has no shared daemon: none of its steps could reach one).
    pub async fn daemon_image_id(&self, reference: &str) -> Result<Option<String>, RuntimeError> {
        let Some(dind) = self.dind.as_deref() else {
            return Ok(None);
        };
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
    /// (dangling) images are build intermediates and left out. None without a shared daemon.
    pub async fn daemon_images(&self) -> Result<BTreeMap<String, String>, RuntimeError> {
        let Some(dind) = self.dind.as_deref() else {
            return Ok(BTreeMap::new());
        };
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

    pub(super) async fn is_running(&self, id: &str) -> bool {
        self.docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|i| i.state)
            .and_then(|s| s.running)
            .unwrap_or(false)
    }

    pub(super) async fn logs(&self, id: &str) -> String {
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

pub(super) struct ContainerSpec<'a> {
    pub(super) suffix: &'a str,
    pub(super) image: &'a str,
    pub(super) entrypoint: Option<Vec<String>>,
    pub(super) args: Vec<String>,
    pub(super) env: &'a BTreeMap<String, String>,
    pub(super) extra_env: &'a BTreeMap<String, String>,
    pub(super) privileged: bool,
    pub(super) binds: Vec<String>,
    pub(super) aliases: Vec<String>,
    pub(super) workdir: Option<&'a str>,
    pub(super) publish: Option<u16>,
    /// Container directories mounted as a fresh tmpfs.
    pub(super) tmpfs: Vec<String>,
    pub(super) security_opt: Vec<String>,
}

/// A role's tmpfs directories and Docker's storage directory, for a container running dockerd
/// (overlay2 works on a tmpfs, and the daemon's images go with the container).
pub(super) fn with_docker_storage(tmpfs: &[String]) -> Vec<String> {
    let mut paths = tmpfs.to_vec();
    if !paths.iter().any(|p| p == "/var/lib/docker") {
        paths.push("/var/lib/docker".into());
    }
    paths
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
        crate::eprint(&format!(
            "environment {} was dropped before its teardown: {note}\n",
            self.instance
        ));
        // The private auth directory goes with the TempDir's own drop.
    }
}

/// Writes `name` into `dir` (created with mode 0700) with mode 0600.
pub(super) fn write_private(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    write_new_file(dir, name, contents, 0o600)
}
