//! Bringing an environment up: network, volumes, registries (TLS, credentials), DinD, the base image.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{PushImageOptions, RemoveImageOptions, TagImageOptions};
use bollard::Docker;
use futures_util::StreamExt;

use crate::errors::RuntimeError;
use crate::profile::Trust;
use crate::stop::{self};
use crate::tls::{TrustFiles, REGISTRY_CERT_DIR};
use oci::registry::Registry;
use scenario::{Credentials, RegistryUsers};

use crate::*;

use super::*;

impl Environment {
    /// Creates the network, starts the registries (HTTPS with a certificate from the run's CA,
    /// unless `registry_tls` says `false` for one) and, when `services` has one, DinD with the
    /// run volume it shares as /var/run; waits until all answer, and pushes the base image for test Dockerfiles into the first registry. Ends
    /// early with [`RuntimeError::Stopped`] when the process is asked to stop.
    pub async fn up(
        &mut self,
        services: &Services<'_>,
        registry_names: &[String],
        registry_auth: &BTreeMap<String, RegistryUsers>,
        registry_tls: &BTreeMap<String, bool>,
        base_image_in: &[String],
    ) -> Result<(), RuntimeError> {
        stop::or_stopped(async move {
            let began = Instant::now();
            let ms = |since: Instant| since.elapsed().as_millis() as u64;
            let network = self.network.clone();
            self.create("network", &self.network, |docker, labels| async move {
                let request = NetworkCreateRequest {
                    name: network,
                    driver: Some("bridge".into()),
                    labels: Some(labels),
                    ..Default::default()
                };
                docker.create_network(request).await.map(drop)
            })
            .await?;
            // DinD's /var/lib/docker is a tmpfs (see the dind spec below): only the run volume, the
            // /var/run it shares with the steps, and only when there is a DinD.
            if services.dind.is_some() {
                let volume = Some(self.run_volume.clone());
                self.create("volume", &self.run_volume, |docker, labels| async move {
                    let request = VolumeCreateRequest {
                        name: volume,
                        labels: Some(labels),
                        ..Default::default()
                    };
                    docker.create_volume(request).await.map(drop)
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
                let Some(users) = registry_auth.get(name) else {
                    auth_env.push(BTreeMap::new());
                    auth_binds.push(vec![]);
                    continue;
                };
                let dir = self.auth_dir()?.join(format!("registry-{name}"));
                // One bcrypt line per user the registry accepts.
                let htpasswd = users
                    .users()
                    .iter()
                    .map(|c| {
                        bcrypt::hash(&c.password, 5).map(|hash| format!("{}:{hash}\n", c.username))
                    })
                    .collect::<Result<String, _>>()
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
                            user: services.registry.user.clone(),
                            binds: binds.clone(),
                            aliases: vec![name.clone()],
                            workdir: None,
                            publish: Some(REGISTRY_PORT),
                            tmpfs: services.registry.tmpfs.clone(),
                            security_opt: vec![],
                            limits: Default::default(),
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
                    user: spec.user.clone(),
                    binds: dind_binds,
                    aliases: vec!["dind".into()],
                    workdir: None,
                    publish: None,
                    // Daemon storage in memory: a fresh, empty daemon per plan that starts sooner
                    // and goes with its container (no volume to create, fill and remove).
                    tmpfs: with_docker_storage(&spec.tmpfs),
                    security_opt: vec![],
                    limits: Default::default(),
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
                    // The harness's own client is the first user.
                    let auth = registry_auth
                        .get(name)
                        .and_then(RegistryUsers::first)
                        .map(|c| (c.username.as_str(), c.password.as_str()));
                    Registry::connect(host.clone(), ca, auth)
                })
                .collect();
            let registry_limit = services.registry.ready_timeout.unwrap_or(REGISTRY_READY);
            let registries_ready = async {
                let ready = futures_util::future::try_join_all(
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
            // The first registry, then those the scenario names, each with its credentials.
            let seeded = registry_names.iter().zip(&hosts).filter(|(name, _)| {
                registry_names.first() == Some(*name) || base_image_in.contains(*name)
            });
            for (name, host) in seeded {
                let push = push_base_image(
                    self.docker.clone(),
                    services.base_image.image.clone(),
                    host.clone(),
                    (BASE_IMAGE_REPOSITORY.to_owned(), BASE_IMAGE_TAG.to_owned()),
                    registry_auth
                        .get(name)
                        .and_then(RegistryUsers::first)
                        .cloned(),
                );
                self.detached(push).await?;
            }
            self.phases.registry_ready_ms = registry_ms;
            self.phases.dind_ready_ms = dind_ms;
            self.phases.base_image_ms = ms(seeding);
            self.registries = registry_names.iter().cloned().zip(clients).collect();
            self.registry_containers = registry_names.iter().cloned().zip(registries).collect();
            self.dind = dind;
            Ok(())
        })
        .await?;
        stop::fault_point("environment");
        Ok(())
    }

    /// The binds and variables that tell a role's container about the run's CA, as its profile
    /// entry's `trust` says: certs.d trees, a CA file, variables naming that file. Nothing
    /// before `up` wrote the trust files.
    pub(crate) fn trust_mounts(&self, trust: &Trust) -> (Vec<String>, BTreeMap<String, String>) {
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
    pub(crate) fn auth_dir(&mut self) -> Result<PathBuf, RuntimeError> {
        if self.auth_dir.is_none() {
            // tempfile creates the directory with mode 0700.
            let dir = tempfile::Builder::new()
                .prefix(&format!(
                    "{PRIVATE_DIR_PREFIX}{}-{}-",
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
}

/// Tags a base image for the registry's published port as `repository:tag` and pushes it from
/// the host's daemon (which treats 127.0.0.0/8 as insecure), with the registry's credentials
/// when it requires some, then drops the temporary tag.
pub(crate) async fn push_base_image(
    docker: Docker,
    image: String,
    host: String,
    (repository, tag): (String, String),
    credentials: Option<Credentials>,
) -> Result<(), RuntimeError> {
    let target = format!("{host}/{repository}");
    let docker_err = |action: &str| {
        let action = action.to_owned();
        move |source| RuntimeError::Docker { action, source }
    };
    docker
        .tag_image(
            &image,
            Some(TagImageOptions {
                repo: Some(target.clone()),
                tag: Some(tag.clone()),
            }),
        )
        .await
        .map_err(docker_err("tagging the base image"))?;
    let mut push = docker.push_image(
        &target,
        Some(PushImageOptions {
            tag: Some(tag.clone()),
            ..Default::default()
        }),
        credentials.map(|c| bollard::auth::DockerCredentials {
            username: Some(c.username),
            password: Some(c.password),
            serveraddress: Some(host.clone()),
            ..Default::default()
        }),
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
        .remove_image(&format!("{target}:{tag}"), None::<RemoveImageOptions>, None)
        .await;
    match failure {
        None => Ok(()),
        Some(detail) => Err(RuntimeError::NotReady {
            service: format!("registry (base image push of {repository}:{tag})"),
            seconds: 0,
            detail,
        }),
    }
}
