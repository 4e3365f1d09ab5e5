//! One scenario's environment: bringing it up, asking its daemon and registries, tearing it down.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bollard::Docker;

use model::result::EnvironmentPhases;

use crate::errors::RuntimeError;
use crate::profile::RoleSpec;
use crate::stop::InFlight;
use crate::tls::TrustFiles;
use oci::registry::Registry;

use crate::*;

mod bring_up;
mod containers;
mod daemon;
mod dind_api;
mod log_search;
mod services;

pub(crate) use containers::ContainerSpec;
pub use containers::Limits;
pub use log_search::{LogSearch, SearchStopped};
pub use services::{BaseImage, ServiceRun};

/// The images that run the services of an environment.
pub struct Services<'a> {
    pub registry: &'a RoleSpec,
    /// The shared daemon, when some step of the plan may use it.
    pub dind: Option<&'a RoleSpec>,
    pub base_image: &'a RoleSpec,
}

/// One scenario's isolated set of containers, networks and volumes.
pub struct Environment {
    pub(crate) docker: Docker,
    pub(crate) instance: String,
    pub(crate) labels: HashMap<String, String>,
    pub(crate) network: String,
    pub(crate) run_volume: String,
    pub(crate) workspace: PathBuf,
    /// A host folder mounted in every step at [`OUTPUTS_MOUNT`], if the runner gives one.
    pub(crate) outputs: Option<PathBuf>,
    /// The limits every container of the environment gets where its own set none.
    pub(crate) default_limits: Limits,
    pub(crate) registries: Vec<(String, Registry)>,
    /// Registry container ids by registry name.
    pub(crate) registry_containers: Vec<(String, String)>,
    /// How long bringing the environment up took, part by part.
    pub(crate) phases: EnvironmentPhases,
    pub(crate) dind: Option<String>,
    /// This environment's creates in flight (each runs to its end in a task of its own).
    pub(crate) in_flight: Arc<InFlight>,
    /// Whether a create was ever attempted: only then can there be anything to remove.
    pub(crate) touched: AtomicBool,
    /// Whether [`Environment::teardown`] removed everything.
    pub(crate) torn_down: bool,
    /// The registries' htpasswd files and TLS files: a private directory (0700, secrets 0600)
    /// outside the report folder, removed at teardown (distribution reads the htpasswd file at
    /// every request, so it must stay while the registry runs).
    pub(crate) auth_dir: Option<tempfile::TempDir>,
    /// The run's CA and this environment's registry certificate, once `up` wrote them.
    pub(crate) trust: Option<TrustFiles>,
    /// The scenario's own service containers (`services:`): container ids by network alias.
    pub(crate) service_containers: Vec<(String, String)>,
    /// Their IPv4 addresses on the environment's network, by alias.
    pub(crate) service_ips: BTreeMap<String, String>,
    /// The plan's SSH keys (in the private directory), mounted read-only in every step at
    /// [`scenario::SSH_KEYS_MOUNT`], once `start_services` wrote them.
    pub(crate) ssh_keys_dir: Option<PathBuf>,
    /// Whether the workspace is on a file system of its own ([`crate::quota`]): then its
    /// filling up is the plugin's doing, not the host's.
    pub(crate) workspace_quota: bool,
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
            outputs: None,
            default_limits: Limits::default(),
            registries: Vec::new(),
            registry_containers: Vec::new(),
            phases: EnvironmentPhases::default(),
            dind: None,
            in_flight: Arc::new(InFlight::default()),
            touched: AtomicBool::new(false),
            torn_down: false,
            auth_dir: None,
            trust: None,
            service_containers: Vec::new(),
            service_ips: BTreeMap::new(),
            ssh_keys_dir: None,
            workspace_quota: false,
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

    /// Mounts `dir` (a host folder outside the workspace) in every step at [`OUTPUTS_MOUNT`]:
    /// where steps write what they hand to later steps, out of the build context.
    pub fn mount_outputs(&mut self, dir: PathBuf) {
        self.outputs = Some(dir);
    }

    /// Says that the workspace is on a file system of its own: it no longer counts among the
    /// host's disks ([`Environment::disks`]).
    pub fn workspace_has_quota(&mut self) {
        self.workspace_quota = true;
    }

    /// The limits every container gets where a step's own set none (the profile's `bounds`).
    pub fn bound_containers(&mut self, limits: Limits) {
        self.default_limits = limits;
    }

    /// The registries by name, as seen from the host. Empty before [`Environment::up`].
    pub fn registries(&self) -> &[(String, Registry)] {
        &self.registries
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
        // The cgroups made for the containers on a rootless daemon (none elsewhere).
        crate::isolation::remove_container_cgroups(&self.container_name(""));
        // Removed or not, the drop guard would only try the same again.
        self.torn_down = true;
        removed?;
        auth.transpose().map(|_| ())
    }
}

/// A role's tmpfs directories and Docker's storage directory, for a container running dockerd
/// (overlay2 works on a tmpfs, and the daemon's images go with the container).
pub(crate) fn with_docker_storage(tmpfs: &[String]) -> Vec<String> {
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
        let cgroups = self.container_name("");
        let in_flight = Arc::clone(&self.in_flight);
        let cleanup = std::thread::spawn(move || {
            // Creates in flight run on the plan's runtime: let them return first.
            in_flight.settled_blocking(DROP_SWEEP_DEADLINE);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let removed = runtime.block_on(async {
                let docker = crate::isolation::connect_plans_daemon().map_err(|e| e.to_string())?;
                remove_until_gone(&docker, vec![label], None, DROP_SWEEP_DEADLINE)
                    .await
                    .map_err(|e| e.to_string())
            });
            crate::isolation::remove_container_cgroups(&cgroups);
            removed
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
pub(crate) fn write_private(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    write_new_file(dir, name, contents, 0o600)
}
