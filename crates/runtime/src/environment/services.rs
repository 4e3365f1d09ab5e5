//! The scenario's own services (`services:`), its SSH keys and its extra base images, brought up
//! once the registries answer: each service a container of its profile role on the plan's
//! network under its alias, labelled like everything else (the teardown and `harness sweep`
//! remove it), watched while steps run, and ready once its port answers; the SSH keys written
//! into the environment's private directory (mounted read-only in every step, and as
//! `authorized_keys` in the services that accept them); the base images pushed into the first
//! registry before the accounting's baseline is read.

use std::time::{Duration, Instant};

use bollard::query_parameters::InspectContainerOptions;
use tokio::io::AsyncReadExt;

use crate::errors::RuntimeError;
use crate::health::Readiness;
use crate::profile::RoleSpec;
use crate::ssh::SshKeys;
use crate::stop;

use super::*;

/// How long a service may take to answer once started, unless its role says.
const SERVICE_READY: Duration = Duration::from_secs(30);
/// How long a connection to a service's published port is watched for being closed at once
/// (Docker's proxy accepts for a container that does not listen yet, then closes).
const HELD_OPEN: Duration = Duration::from_millis(300);

/// A service a plan starts: its network alias, the role (and the role's spec) whose image
/// runs it, and the names of the SSH keys it accepts.
pub struct ServiceRun<'a> {
    pub alias: &'a str,
    pub role: &'a str,
    pub spec: &'a RoleSpec,
    pub authorized_keys: &'a [String],
}

/// A base image pushed into the first registry: the role's image, as `repository:tag`.
pub struct BaseImage<'a> {
    pub image: &'a str,
    pub reference: &'a str,
}

impl Environment {
    /// Writes the plan's SSH keys, starts its services and pushes its extra base images into
    /// the first registry; returns once every service answers on its port. Call after
    /// [`Environment::up`]. Ends early with [`RuntimeError::Stopped`] when the process is
    /// asked to stop.
    pub async fn start_services(
        &mut self,
        services: &[ServiceRun<'_>],
        keys: &SshKeys,
        base_images: &[BaseImage<'_>],
    ) -> Result<(), RuntimeError> {
        if services.is_empty() && keys.is_empty() && base_images.is_empty() {
            return Ok(());
        }
        stop::or_stopped(async move {
            let began = Instant::now();
            if !keys.is_empty() {
                self.write_ssh_keys(keys)?;
            }
            let mut started = Vec::new();
            for service in services {
                let binds = self.authorized_keys_binds(service, keys)?;
                let Some(run) = &service.spec.service else {
                    return Err(not_a_service(service));
                };
                let suffix = format!("service-{}", service.alias);
                let id = self
                    .create_and_start(ContainerSpec {
                        suffix: &suffix,
                        image: &service.spec.image,
                        entrypoint: service.spec.entrypoint.clone(),
                        args: service.spec.args.clone(),
                        env: &service.spec.env,
                        extra_env: &BTreeMap::new(),
                        privileged: service.spec.privileged,
                        user: service.spec.user.clone(),
                        binds,
                        aliases: vec![service.alias.to_owned()],
                        workdir: None,
                        publish: Some(run.port),
                        tmpfs: service.spec.tmpfs.clone(),
                        security_opt: service.spec.security_opt.clone(),
                        limits: Default::default(),
                    })
                    .await?;
                self.service_containers
                    .push((service.alias.to_owned(), id.clone()));
                started.push((service, run.port, id));
            }
            let this = &*self;
            let ready = futures_util::future::try_join_all(started.iter().map(
                |(service, port, id)| async move {
                    let host_port = this.published_port(id, *port).await?;
                    let limit = service.spec.ready_timeout.unwrap_or(SERVICE_READY);
                    this.wait_for_service(service.alias, id, host_port, limit)
                        .await?;
                    let ip = this.network_address(id).await?;
                    Ok::<_, RuntimeError>((service.alias.to_owned(), ip))
                },
            ));
            let pushes = this.push_base_images(base_images);
            let (ready, pushed) = tokio::join!(ready, pushes);
            pushed?;
            let ready = ready?;
            self.service_ips.extend(ready);
            self.phases.base_image_ms += began.elapsed().as_millis() as u64;
            Ok(())
        })
        .await
    }

    /// Each service's IPv4 address on the environment's network, by alias (empty before
    /// [`Environment::start_services`]).
    pub fn service_ips(&self) -> &BTreeMap<String, String> {
        &self.service_ips
    }

    /// Each key's private file (0600) and public file (`NAME.pub`) in the private directory's
    /// `ssh-keys/`, which every step mounts read-only.
    fn write_ssh_keys(&mut self, keys: &SshKeys) -> Result<(), RuntimeError> {
        let dir = self.auth_dir()?.join("ssh-keys");
        let failed = |source| RuntimeError::Workspace {
            path: dir.clone(),
            source,
        };
        for (name, pair) in keys.iter() {
            write_private(&dir, name, pair.private_openssh.as_bytes()).map_err(failed)?;
            let public = format!("{}\n", pair.public_openssh);
            crate::write_new_file(&dir, &format!("{name}.pub"), public.as_bytes(), 0o644)
                .map_err(failed)?;
        }
        self.ssh_keys_dir = Some(dir);
        Ok(())
    }

    /// The read-only bind of a service's `authorized_keys` file (the public keys it accepts),
    /// where its role says; none when it accepts no key.
    fn authorized_keys_binds(
        &mut self,
        service: &ServiceRun<'_>,
        keys: &SshKeys,
    ) -> Result<Vec<String>, RuntimeError> {
        if service.authorized_keys.is_empty() {
            return Ok(Vec::new());
        }
        let Some(target) = service
            .spec
            .service
            .as_ref()
            .and_then(|s| s.authorized_keys.clone())
        else {
            return Err(RuntimeError::NotReady {
                service: format!("service `{}`", service.alias),
                seconds: 0,
                detail: format!(
                    "it accepts SSH keys, but the profile's role `{}` says nowhere to mount \
                     them (`service: {{authorized_keys: PATH}}`)",
                    service.role
                ),
            });
        };
        let mut lines = String::new();
        for name in service.authorized_keys {
            let pair = keys.get(name).ok_or_else(|| RuntimeError::NotReady {
                service: format!("service `{}`", service.alias),
                seconds: 0,
                detail: format!("SSH key `{name}` was not generated for this plan"),
            })?;
            lines.push_str(&pair.public_openssh);
            lines.push('\n');
        }
        let dir = self.auth_dir()?.join(format!("service-{}", service.alias));
        // Public keys: readable by the service's own user, whatever its image runs as.
        crate::write_new_file(&dir, "authorized_keys", lines.as_bytes(), 0o644).map_err(
            |source| RuntimeError::Workspace {
                path: dir.clone(),
                source,
            },
        )?;
        Ok(vec![format!(
            "{}:{target}:ro",
            dir.join("authorized_keys").display()
        )])
    }

    /// Pushes each base image into the first registry (which never requires auth).
    async fn push_base_images(&self, base_images: &[BaseImage<'_>]) -> Result<(), RuntimeError> {
        let Some((_, first)) = self.registries.first() else {
            return Ok(());
        };
        for base in base_images {
            let (repository, tag) = base
                .reference
                .rsplit_once(':')
                .unwrap_or((base.reference, "latest"));
            let push = super::bring_up::push_base_image(
                self.docker.clone(),
                base.image.to_owned(),
                first.host().to_owned(),
                (repository.to_owned(), tag.to_owned()),
                None,
            );
            self.detached(push).await?;
        }
        Ok(())
    }

    /// Waits until the service answers on its published port, at most `limit`.
    async fn wait_for_service(
        &self,
        alias: &str,
        id: &str,
        host_port: u16,
        limit: Duration,
    ) -> Result<(), RuntimeError> {
        let readiness = Readiness {
            service: format!("service `{alias}`"),
            id,
            limit,
            every: Duration::from_millis(100),
            exit_checked_after: Duration::from_secs(1),
            silence: "its port did not answer",
        };
        self.wait_ready(readiness, || port_answers(host_port)).await
    }

    /// A container's IPv4 address on the environment's network.
    async fn network_address(&self, id: &str) -> Result<String, RuntimeError> {
        let inspect = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|source| RuntimeError::Docker {
                action: "inspecting a service container".into(),
                source,
            })?;
        inspect
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut networks| networks.remove(&self.network))
            .and_then(|endpoint| endpoint.ip_address)
            .filter(|ip| !ip.is_empty())
            .ok_or_else(|| RuntimeError::NotReady {
                service: "service".into(),
                seconds: 0,
                detail: format!("its container has no address on network {}", self.network),
            })
    }
}

/// Whether something listens behind a port published on 127.0.0.1: the connection is made
/// and either the service speaks first (an SSH banner) or the connection stays open for a
/// moment. Docker's proxy accepts for a container that does not listen yet, then closes at
/// once: that is not an answer.
async fn port_answers(port: u16) -> Result<(), String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connecting to 127.0.0.1:{port}: {e}"))?;
    let mut first = [0u8; 1];
    match tokio::time::timeout(HELD_OPEN, stream.read(&mut first)).await {
        Ok(Ok(0)) => Err(format!("127.0.0.1:{port} closed the connection at once")),
        Ok(Ok(_)) | Err(_) => Ok(()),
        Ok(Err(e)) => Err(format!("reading from 127.0.0.1:{port}: {e}")),
    }
}

fn not_a_service(service: &ServiceRun<'_>) -> RuntimeError {
    RuntimeError::NotReady {
        service: format!("service `{}`", service.alias),
        seconds: 0,
        detail: format!(
            "the profile's role `{}` is not a service role (it has no `service: {{port: …}}`)",
            service.role
        ),
    }
}
