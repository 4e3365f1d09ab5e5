//! Limits on the rootless daemon's containers: the cgroup the harness makes (as root) for each,
//! and the variable that tells the runtime shim (`crates/limits-shim`) the limits and that
//! cgroup.

use std::path::{Path, PathBuf};

use super::{container_root, LIMITS_VARIABLE};

/// The cgroup the rootless daemon runs in, in every cgroup v1 hierarchy
/// (`scripts/rootless-daemon.sh` makes it and sets its root-owned ceilings).
pub const ROOTLESS_CGROUP: &str = "conformance-rootless";

/// The v1 hierarchies' directories of the rootless daemon's cgroup that exist here.
fn rootless_cgroup_dirs() -> Vec<PathBuf> {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, dir, kind) = (fields.next()?, fields.next()?, fields.next()?);
            (kind == "cgroup").then(|| Path::new(dir).join(ROOTLESS_CGROUP))
        })
        .filter(|dir| dir.is_dir())
        .collect()
}

/// Makes, as root, the cgroup a container of the rootless daemon goes below (`name`, beside
/// the daemon's, in every v1 hierarchy) with root-owned limits, and lets the containers' root
/// make children in it: the container's own cgroup, made by the runtime shim as that user,
/// has limits the container could raise, but not past these. Returns `name` when the limits
/// are in place, `None` where the daemon's cgroup is not there (cgroup v2, another set-up: the
/// shim's limits alone then).
pub(crate) fn container_cgroup(
    name: &str,
    limits: &crate::Limits,
) -> std::io::Result<Option<String>> {
    let Some((uid, gid)) = container_root() else {
        return Ok(None);
    };
    let dirs = rootless_cgroup_dirs();
    if dirs.is_empty() {
        return Ok(None);
    }
    for base in &dirs {
        let dir = base.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let write = |file: &str, value: String| -> std::io::Result<()> {
            let path = dir.join(file);
            if path.exists() {
                std::fs::write(&path, value)?;
            }
            Ok(())
        };
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = std::fs::read_to_string(base.join(file)) {
                write(file, value)?;
            }
        }
        if let Some(bytes) = limits.memory_bytes {
            write("memory.limit_in_bytes", bytes.to_string())?;
            write("memory.memsw.limit_in_bytes", bytes.to_string())?;
        }
        if let Some(pids) = limits.pids {
            write("pids.max", pids.to_string())?;
        }
        if let Some(millicores) = limits.millicores {
            write("cpu.cfs_period_us", "100000".to_owned())?;
            write("cpu.cfs_quota_us", (millicores * 100).to_string())?;
        }
        for owned in ["", "cgroup.procs", "tasks"] {
            let path = if owned.is_empty() {
                dir.clone()
            } else {
                dir.join(owned)
            };
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        }
    }
    Ok(Some(name.to_owned()))
}

/// Removes the cgroups [`container_cgroup`] made for names starting with `prefix` (an
/// environment's containers), with whatever the containers left below them; a cgroup that
/// still holds processes stays (the kernel refuses).
pub(crate) fn remove_container_cgroups(prefix: &str) {
    for base in rootless_cgroup_dirs() {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
}

/// Depth first: a cgroup directory goes with rmdir once its children are gone.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// A container's limits as the runtime shim reads them from [`LIMITS_VARIABLE`], with the
/// cgroup made for it ([`container_cgroup`]); `None` without any.
pub(crate) fn limits_variable(
    memory_bytes: Option<u64>,
    pids: Option<u32>,
    millicores: Option<u64>,
    parent: Option<&str>,
) -> Option<String> {
    let parts: Vec<String> = [
        memory_bytes.map(|b| format!("memory={b}")),
        pids.map(|n| format!("pids={n}")),
        millicores.map(|m| format!("cpu={m}")),
        parent.map(|p| format!("parent={p}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| format!("{LIMITS_VARIABLE}={}", parts.join(",")))
}
