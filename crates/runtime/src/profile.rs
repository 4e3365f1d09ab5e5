//! Image profiles: which image plays each role (registry, dind, base image, each builder
//! plugin), and how that role's container must be run to reach a local plain-HTTP registry.
//!
//! `offline` (the default) names images built on the machine from Debian packages and never
//! pulls; `upstream` names the public images a user with internet access runs instead. Any role
//! can be pointed at another image with an override (`--image buildx=plugins/buildx:1.3.24`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::errors::ProfileLoadError;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Whether images missing from the daemon may be pulled.
    #[serde(default)]
    pub pull: PullPolicy,
    /// A script (relative to the repository root, inside it) that builds the profile's images;
    /// run before scenarios, it must be idempotent and quick when the images are current. The
    /// last line it prints on stdout replaces [`RECIPE`] in the roles' images (the offline
    /// images' tags carry their recipe key).
    #[serde(default)]
    pub build: Option<String>,
    pub roles: BTreeMap<String, RoleSpec>,
    /// Bounds on every container of a plan (steps, registries, DinD, services) where a step's
    /// own `resources` set none: a plugin cannot take the host's memory, processes or a tmpfs
    /// without end. Defaults: [`Bounds::default`].
    #[serde(default)]
    pub bounds: Bounds,
    /// Where the plans run, and so whether privileged roles are privileged on the host
    /// ([`crate::isolation`]): `auto` (default), `rootless` or `none`.
    #[serde(default)]
    pub isolation: crate::isolation::IsolationSetting,
}

/// See [`Profile::bounds`]. Memory and tmpfs sizes are Kubernetes quantities (`8Gi`), CPU cores
/// (`2`, `400m`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Each container's memory (no swap beyond it); tmpfs pages count towards it.
    #[serde(default = "default_bound_memory")]
    pub memory: String,
    /// Each container's CPU; none by default (the plans share the machine's cores).
    #[serde(default)]
    pub cpu: Option<String>,
    /// Each container's processes and threads.
    #[serde(default = "default_bound_pids")]
    pub pids: u32,
    /// The size of each tmpfs a container gets (DinD's storage, a daemonless builder's).
    #[serde(default = "default_bound_tmpfs")]
    pub tmpfs: String,
    /// The size of each plan's workspace: a file system of its own ([`crate::quota`]).
    #[serde(default = "default_bound_workspace")]
    pub workspace: String,
}

fn default_bound_memory() -> String {
    "8Gi".to_owned()
}

fn default_bound_pids() -> u32 {
    4096
}

fn default_bound_tmpfs() -> String {
    "8Gi".to_owned()
}

fn default_bound_workspace() -> String {
    "16Gi".to_owned()
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            memory: default_bound_memory(),
            cpu: None,
            pids: default_bound_pids(),
            tmpfs: default_bound_tmpfs(),
            workspace: default_bound_workspace(),
        }
    }
}

impl Bounds {
    /// The workspace quota in bytes (at least 16 MiB), or what is wrong with it.
    pub fn workspace_bytes(&self) -> Result<u64, (&'static str, String)> {
        let bytes = scenario::memory_quantity(&self.workspace).map_err(|e| ("workspace", e))?;
        if bytes < 16 << 20 {
            return Err((
                "workspace",
                format!(
                    "{} is too small for a file system (at least 16Mi)",
                    self.workspace
                ),
            ));
        }
        Ok(bytes)
    }

    /// The bounds as container limits, or what is wrong with one.
    pub fn limits(&self) -> Result<crate::Limits, (&'static str, String)> {
        let memory = scenario::memory_quantity(&self.memory).map_err(|e| ("memory", e))?;
        let tmpfs = scenario::memory_quantity(&self.tmpfs).map_err(|e| ("tmpfs", e))?;
        self.workspace_bytes()?;
        let cpu = self
            .cpu
            .as_deref()
            .map(scenario::cpu_quantity)
            .transpose()
            .map_err(|e| ("cpu", e))?;
        if self.pids < 64 {
            return Err((
                "pids",
                format!(
                    "{} processes are too few for any build (at least 64)",
                    self.pids
                ),
            ));
        }
        Ok(crate::Limits {
            memory_bytes: Some(memory),
            millicores: cpu,
            pids: Some(self.pids),
            tmpfs_bytes: Some(tmpfs),
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Never pull: every image must be present (the offline profile builds them first).
    #[default]
    Never,
    /// Pull an image only when the daemon does not have it.
    IfMissing,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub image: String,
    /// Run the container privileged (DinD, plugins that start their own dockerd).
    #[serde(default)]
    pub privileged: bool,
    /// The user the role's containers run as (`UID` or `UID:GID`), as a pod's "Run as User"
    /// sets it; default: the image's own. A step's `user` replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Extra environment the role needs in this profile (e.g. PLUGIN_INSECURE=true).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory, where the workspace is mounted (default `/harness`).
    #[serde(default)]
    pub workdir: Option<String>,
    /// Docker security options, e.g. `seccomp=unconfined` for an unprivileged daemonless builder.
    #[serde(default)]
    pub security_opt: Vec<String>,
    /// Replaces the image's entrypoint, e.g. `[sh, -c]` to wrap a tool in a script given as
    /// `args` (how the upstream profile adapts Trivy to the scan step's variables).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Extra arguments appended to the container's command (for dind: dockerd flags).
    #[serde(default)]
    pub args: Vec<String>,
    /// Said in every report that uses the role, e.g. that an image is a contract stand-in.
    #[serde(default)]
    pub note: Option<String>,
    /// Where the role's image looks for the certificate authorities it trusts: the harness
    /// mounts the run's CA there, so the role reaches the scenario's HTTPS registries.
    #[serde(default)]
    pub trust: Trust,
    /// For the service roles (`registry`, `dind`): how long the service may take to answer
    /// once started, e.g. `20s` (default: 30 s for a registry, 90 s for DinD).
    #[serde(
        default,
        deserialize_with = "de_ready_timeout",
        serialize_with = "ser_ready_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub ready_timeout: Option<Duration>,
    /// Container directories mounted as a fresh tmpfs in every container of the role, e.g.
    /// `[/var/lib/containers]` for a daemonless builder's storage: an overlay driver works
    /// there, and it goes with the container.
    #[serde(default)]
    pub tmpfs: Vec<String>,
    /// The role's image never talks to a Docker daemon (kaniko, buildah, a scanner reading a
    /// tarball): its steps get no daemon socket, and a plan none of whose steps shares the
    /// daemon with a role that may use it starts no DinD.
    #[serde(default)]
    pub daemonless: bool,
    /// For a role a scenario may start as a service (`services:`): the TCP port that answers
    /// once it is ready, and where the harness mounts the authorized SSH keys, e.g.
    /// `{port: 22, authorized_keys: /etc/conformance/authorized_keys}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,
}

/// How a service role's container is run and asked whether it is ready (see
/// [`RoleSpec::service`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The TCP port the service listens on in its container; it is ready once that port
    /// answers (connects and is not closed at once).
    pub port: u16,
    /// Where the file of the public keys it accepts (OpenSSH `authorized_keys`) is mounted,
    /// read-only: an absolute path in the container.
    #[serde(default)]
    pub authorized_keys: Option<String>,
}

/// Where an image trusts CAs. Each kind is how some tool reads them; a role names those its
/// image uses, e.g. `{certs_d: [/etc/docker/certs.d]}` for a Docker daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    /// Directories in the `<host:port>/ca.crt` layout: `/etc/docker/certs.d` (dockerd, and so
    /// plugins that start their own), `/etc/containers/certs.d` (buildah, skopeo, podman).
    #[serde(default)]
    pub certs_d: Vec<String>,
    /// A path where the CA is mounted as a PEM file, e.g. for a Go program's `SSL_CERT_FILE`.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Variables set to `ca_file` in the role's containers, e.g. `[SSL_CERT_FILE]` (Go's
    /// crypto/x509 then trusts only that file: the scenario's registries).
    #[serde(default)]
    pub ca_file_env: Vec<String>,
}

/// What is wrong with container paths a role declares, if anything: absolute, and free of
/// the characters Docker's mount syntax reserves.
fn path_problem<'a>(mut paths: impl Iterator<Item = &'a String> + Clone) -> Option<String> {
    if let Some(path) = paths.clone().find(|p| !p.starts_with('/')) {
        return Some(format!("`{path}` is not an absolute path in the container"));
    }
    paths
        .find(|p| p.contains(':') || p.contains(','))
        .map(|path| format!("`{path}` contains `:` or `,`, which Docker's mount syntax reserves"))
}

impl Trust {
    /// What is wrong with the declaration, if anything: paths are absolute container paths,
    /// and variables name the CA file only when there is one.
    fn problem(&self) -> Option<String> {
        if let Some(message) = path_problem(self.certs_d.iter().chain(self.ca_file.as_ref())) {
            return Some(message);
        }
        if !self.ca_file_env.is_empty() && self.ca_file.is_none() {
            return Some(format!(
                "ca_file_env ({}) needs a ca_file for the variables to name",
                self.ca_file_env.join(", ")
            ));
        }
        None
    }
}

impl ServiceSpec {
    /// What is wrong with the declaration, if anything: a port that can be listened on, a
    /// container path for the keys.
    fn problem(&self) -> Option<String> {
        if self.port == 0 {
            return Some("port 0 is not a port a service can answer on".to_owned());
        }
        path_problem(self.authorized_keys.iter())
    }
}

/// The longest readiness timeout a profile may give.
const MAX_READY_TIMEOUT: Duration = Duration::from_secs(3600);

fn de_ready_timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    let value = humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration `{text}`: {e}")))?;
    if value.is_zero() || value > MAX_READY_TIMEOUT {
        return Err(serde::de::Error::custom(format!(
            "ready_timeout {text} must be more than 0 and at most 1h"
        )));
    }
    Ok(Some(value))
}

fn ser_ready_timeout<S: serde::Serializer>(
    value: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.serialize_str(&humantime::format_duration(*v).to_string()),
        None => s.serialize_none(),
    }
}

impl RoleSpec {
    pub fn workdir(&self) -> &str {
        self.workdir.as_deref().unwrap_or("/harness")
    }

    /// What is wrong with the role's tmpfs paths, if anything: container paths, and none where
    /// the harness mounts something itself (Docker would refuse the container at step time).
    fn tmpfs_problem(&self) -> Option<String> {
        if let Some(message) = path_problem(self.tmpfs.iter()) {
            return Some(message);
        }
        let trim = |p: &str| p.trim_end_matches('/').to_owned();
        let taken: Vec<(String, &str)> = [
            ("/".to_owned(), "the container's root"),
            (
                "/var/run".to_owned(),
                "where a step shares the daemon's socket",
            ),
            (
                trim(self.workdir()),
                "where the workspace is mounted (workdir)",
            ),
        ]
        .into_iter()
        .chain(
            self.trust
                .certs_d
                .iter()
                .chain(self.trust.ca_file.as_ref())
                .map(|p| (trim(p), "where the run's CA is mounted (trust)")),
        )
        .collect();
        self.tmpfs.iter().find_map(|path| {
            let path = trim(path);
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            taken
                .iter()
                .find(|(t, _)| (if t.is_empty() { "/" } else { t.as_str() }) == path)
                .map(|(_, what)| format!("`{path}` is {what}"))
        })
    }
}

/// In a role's image, replaced by what the profile's build script printed (its recipe key).
pub const RECIPE: &str = "${recipe}";

/// What is wrong with a profile's `build:` path, if anything: relative, inside the repository.
fn build_problem(build: &str) -> Option<String> {
    let path = Path::new(build);
    if path.is_absolute() {
        return Some(format!(
            "`{build}` is absolute; name a script inside the repository"
        ));
    }
    path.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
        .then(|| format!("`{build}` leads out of the repository with `..`"))
}

impl Profile {
    /// Loads a profile by name (`offline`, `upstream`: files in `fixtures/profiles/`) or by path.
    pub fn load(root: &Path, name_or_path: &str) -> Result<Profile, ProfileLoadError> {
        let path = if name_or_path.ends_with(".yaml") || name_or_path.contains('/') {
            PathBuf::from(name_or_path)
        } else {
            root.join("fixtures/profiles")
                .join(format!("{name_or_path}.yaml"))
        };
        let profile: Profile = scenario::read_yaml(&path, "profile file")?;
        if let Err((field, message)) = profile.bounds.limits() {
            return Err(ProfileLoadError::Bounds {
                path,
                field,
                message,
            });
        }
        if let Some(message) = profile.build.as_deref().and_then(build_problem) {
            return Err(ProfileLoadError::Build { path, message });
        }
        for (role, spec) in &profile.roles {
            let recipe_problem =
                (spec.image.contains(RECIPE) && profile.build.is_none()).then(|| {
                    format!(
                        "`{}` names {RECIPE}, which only a profile with a build script gives",
                        spec.image
                    )
                });
            let problems = [
                ("image", recipe_problem),
                ("workdir", path_problem(spec.workdir.iter())),
                ("trust", spec.trust.problem()),
                ("tmpfs", spec.tmpfs_problem()),
                (
                    "service",
                    spec.service.as_ref().and_then(ServiceSpec::problem),
                ),
            ];
            if let Some((field, Some(message))) = problems.into_iter().find(|(_, m)| m.is_some()) {
                return Err(ProfileLoadError::Role {
                    path,
                    role: role.clone(),
                    field,
                    message,
                });
            }
        }
        Ok(profile)
    }

    pub fn role(&self, role: &str) -> Result<&RoleSpec, ProfileLoadError> {
        self.roles
            .get(role)
            .ok_or_else(|| ProfileLoadError::UnknownRole {
                profile: self.name.clone(),
                role: role.to_owned(),
                known: self.roles.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// Every role's image with [`RECIPE`] replaced by `recipe` (what the build script printed).
    pub fn with_recipe(mut self, recipe: &str) -> Profile {
        for spec in self.roles.values_mut() {
            spec.image = spec.image.replace(RECIPE, recipe);
        }
        self
    }

    /// A role whose image still names [`RECIPE`] (the build script printed no key), if any.
    pub fn unresolved_recipe(&self) -> Option<(&str, &str)> {
        self.roles
            .iter()
            .find(|(_, spec)| spec.image.contains(RECIPE))
            .map(|(role, spec)| (role.as_str(), spec.image.as_str()))
    }

    /// Applies `ROLE=IMAGE` overrides; the role keeps its run options.
    pub fn with_overrides(mut self, overrides: &[String]) -> Result<Profile, ProfileLoadError> {
        for value in overrides {
            let (role, image) = value
                .split_once('=')
                .filter(|(r, i)| !r.is_empty() && !i.is_empty())
                .ok_or_else(|| ProfileLoadError::MalformedOverride {
                    value: value.clone(),
                })?;
            let known = self.roles.keys().cloned().collect::<Vec<_>>().join(", ");
            let spec = self
                .roles
                .get_mut(role)
                .ok_or_else(|| ProfileLoadError::UnknownRole {
                    profile: self.name.clone(),
                    role: role.to_owned(),
                    known,
                })?;
            spec.image = image.to_owned();
        }
        Ok(self)
    }
}
