//! Sweeping: removing what the harness labelled — one run's, a gone process's, or everything.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, ListVolumesOptions, RemoveContainerOptions,
};
use bollard::Docker;

use crate::errors::RuntimeError;
use crate::stop::{self, InFlight};

use super::*;

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
/// labelled, including those of runs still going on (`None`: `harness sweep --all`), and their
/// private directories in this host's temporary directory ([`remove_private_dirs`]) and
/// workspace file systems ([`crate::quota::release_left`]).
pub async fn sweep(
    docker: &Docker,
    run: Option<&str>,
) -> Result<(Swept, Vec<PathBuf>), RuntimeError> {
    let filter = match run {
        Some(run) => format!("{LABEL_RUN}={run}"),
        None => format!("{LABEL_MANAGED}=true"),
    };
    let swept = remove_until_gone(docker, vec![filter], None, TEARDOWN_DEADLINE).await?;
    let mut dirs = remove_private_dirs(&std::env::temp_dir(), |name| match run {
        Some(run) => is_private_dir_of(name, run, None),
        None => true,
    });
    dirs.extend(crate::quota::release_left(run));
    if run.is_none() {
        // Every cgroup the harness made for a container: empty now, or the kernel keeps it.
        crate::isolation::remove_container_cgroups("conformance-");
    }
    Ok((swept, dirs))
}

/// Whether `name` (an entry of the temporary directory) is the private directory of `run`
/// (and of `instance`, when given): `conformance-auth-RUN-INSTANCE-XXXXXX`, where INSTANCE is
/// twelve hex digits, so that run `a` never takes run `a-b`'s directory.
pub fn is_private_dir_of(name: &str, run: &str, instance: Option<&str>) -> bool {
    let Some(rest) = name
        .strip_prefix(PRIVATE_DIR_PREFIX)
        .and_then(|r| r.strip_prefix(run))
        .and_then(|r| r.strip_prefix('-'))
    else {
        return false;
    };
    let Some((found, random)) = rest.split_once('-') else {
        return false;
    };
    found.len() == 12
        && found.bytes().all(|b| b.is_ascii_hexdigit())
        && instance.is_none_or(|i| i == found)
        && !random.is_empty()
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Removes the directories under `temp` whose name starts with [`PRIVATE_DIR_PREFIX`] and
/// passes `wanted` (never a symlink, nothing followed inside); returns those removed. A run
/// killed before its teardown leaves its htpasswd, TLS key and SSH keys there.
pub fn remove_private_dirs(temp: &Path, wanted: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(PRIVATE_DIR_PREFIX) || !wanted(&name) {
            continue;
        }
        // file_type() does not follow a symlink: a link named like one is left alone.
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            removed.push(entry.path());
        }
    }
    removed
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
            .filter(|(k, v)| k != LABEL_PID_START && !v.is_empty())
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
    /// The pid's namespace (`pid:[INODE]`); `None` for resources of older harnesses.
    pub pid_ns: Option<String>,
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
            pid_ns: get(LABEL_PID_NS),
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
        // A pid is looked up in this process's namespace only: in another one (a harness in a
        // container of its own, even with this host name) the same number is another process.
        if let Some(theirs) = &self.pid_ns {
            if pid_namespace().as_ref() != Some(theirs) {
                return OwnerState::Unknown(format!(
                    "owned by a process in another PID namespace ({theirs}), whose liveness \
                     cannot be told from here"
                ));
            }
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
        if let Some(ns) = &self.pid_ns {
            filters.push(format!("{LABEL_PID_NS}={ns}"));
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
    /// The private directories of the removed owners' environments (htpasswd, TLS key), and
    /// the workspace file systems they left mounted ([`crate::quota`]).
    pub private_dirs: Vec<PathBuf>,
}

/// Removes the leftovers of processes that are gone: every labelled resource whose owning
/// process (host, pid, start time) no longer runs on this host. Resources of live processes,
/// of other hosts and without an owner are left alone. `only` narrows the sweep to resources
/// also carrying these `key=value` labels.
pub async fn sweep_gone(docker: &Docker, only: &[String]) -> Result<SweepReport, RuntimeError> {
    let mut filters = vec![format!("{LABEL_MANAGED}=true")];
    filters.extend(only.iter().cloned());
    let listed = list_labelled(docker, &filters).await?;
    let mut owners: BTreeMap<Owner, BTreeSet<String>> = BTreeMap::new();
    for resource in &listed {
        let instances = owners.entry(Owner::of(&resource.labels)).or_default();
        if let Some(instance) = resource.labels.get(LABEL_INSTANCE) {
            instances.insert(instance.clone());
        }
    }
    let mut report = SweepReport::default();
    for (owner, instances) in owners {
        match owner.state() {
            OwnerState::Gone => {
                let mut filters = owner.filters();
                filters.extend(only.iter().cloned());
                let swept = remove_until_gone(docker, filters, None, TEARDOWN_DEADLINE).await?;
                report
                    .private_dirs
                    .extend(remove_private_dirs(&std::env::temp_dir(), |name| {
                        instances
                            .iter()
                            .any(|i| is_private_dir_of(name, &owner.run, Some(i)))
                    }));
                report
                    .private_dirs
                    .extend(crate::quota::release_left(Some(&owner.run)));
                // The cgroups the harness made for the instances' containers (rootless daemon).
                for instance in &instances {
                    crate::isolation::remove_container_cgroups(&format!("conformance-{instance}-"));
                }
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
