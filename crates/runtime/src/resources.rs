//! Whether the host ran out of disk under a failed step: then the failure is the
//! infrastructure's (an Error), not the plugin's (a Fail).
//!
//! A step that fails while Docker's data root or the workspace's file system is (nearly) full
//! says nothing about the plugin: `no space left on device` from a build is the machine's
//! problem. The check looks at the real free space (statvfs), so a plugin cannot turn its own
//! Fail into an Error by printing the words; the words only make the threshold more generous,
//! since the space a failed build used is often freed again by the time it is measured.

use std::path::{Path, PathBuf};

use model::result::StepRecord;

use super::*;

/// Below this much free space a failed step is always blamed on the host.
const ALWAYS_LOW: u64 = 1 << 30;
/// When the step's log says the disk was full: below this much free space, or below
/// [`LOW_SHARE_PERCENT`] of the file system, the host ran out of disk.
const LOW_WITH_ENOSPC: u64 = 5 << 30;
const LOW_SHARE_PERCENT: u64 = 5;
/// What an out-of-disk failure looks like in a log (strerror(ENOSPC)).
const ENOSPC_TEXT: &str = "no space left on device";

/// Free space of one file system the steps wrote to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpace {
    pub path: PathBuf,
    pub free: u64,
    pub total: u64,
}

impl DiskSpace {
    /// Statvfs of `path`, or `None` when it cannot be asked (not on this host, gone).
    pub fn of(path: &Path) -> Option<DiskSpace> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: c_path is a valid NUL-terminated string and stat points to writable memory
        // of the right size; statvfs fills it on success (return value 0).
        let stat = unsafe {
            if libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) != 0 {
                return None;
            }
            stat.assume_init()
        };
        let block = stat.f_frsize as u64;
        Some(DiskSpace {
            path: path.to_owned(),
            free: stat.f_bavail as u64 * block,
            total: stat.f_blocks as u64 * block,
        })
    }
}

/// Why a failed step is the host's fault (out of disk), judged from the file systems' free
/// space and what the failed steps logged; `None` when nothing says so.
pub fn out_of_disk(disks: &[DiskSpace], failed: &[&StepRecord]) -> Option<String> {
    if failed.is_empty() {
        return None;
    }
    let says_enospc = failed
        .iter()
        .any(|step| step.log.to_ascii_lowercase().contains(ENOSPC_TEXT));
    let low = disks.iter().find(|disk| {
        disk.free < ALWAYS_LOW
            || (says_enospc
                && (disk.free < LOW_WITH_ENOSPC
                    || disk.free.saturating_mul(100)
                        < disk.total.saturating_mul(LOW_SHARE_PERCENT)))
    })?;
    let names: Vec<&str> = failed.iter().map(|s| s.name.as_str()).collect();
    Some(format!(
        "the host is out of disk: {} MiB free of {} MiB on {} when {} failed{}",
        low.free >> 20,
        low.total >> 20,
        low.path.display(),
        names.join(", "),
        if says_enospc {
            " (its log says \"no space left on device\")"
        } else {
            ""
        }
    ))
}

impl Environment {
    /// The file systems the steps of this environment write to, as far as this host can see
    /// them: Docker's data root (images, containers; only when the daemon is local) and the
    /// workspace's (unless it is a quota of its own: filling that is the plugin's doing).
    pub async fn disks(&self) -> Vec<DiskSpace> {
        let mut paths = Vec::new();
        if !self.workspace_quota {
            paths.push(self.workspace.clone());
        }
        if !docker_host_is_elsewhere() {
            if let Ok(info) = self.docker.info().await {
                if let Some(root) = info.docker_root_dir {
                    paths.push(PathBuf::from(root));
                }
            }
        }
        paths.iter().filter_map(|p| DiskSpace::of(p)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, log: &str) -> StepRecord {
        StepRecord {
            name: name.into(),
            role: "buildx".into(),
            exit_code: Some(1),
            timed_out: false,
            started_ms: 0,
            duration_ms: 1,
            group: None,
            log: log.into(),
            limits: None,
            oom_killed: false,
            security: None,
        }
    }

    fn disk(free_gib: f64, total_gib: u64) -> DiskSpace {
        DiskSpace {
            path: "/var/lib/docker".into(),
            free: (free_gib * (1u64 << 30) as f64) as u64,
            total: total_gib << 30,
        }
    }

    #[test]
    fn a_failed_step_on_a_full_disk_is_the_hosts_fault() {
        let failed = step("build", "writing blob: no space left on device");
        let why = out_of_disk(&[disk(2.7, 252)], &[&failed]).unwrap();
        assert!(why.starts_with("the host is out of disk: 2764 MiB free of 258048 MiB on /var/lib/docker when build failed"), "{why}");
        // Almost nothing free: whatever the log says.
        assert!(out_of_disk(&[disk(0.5, 252)], &[&step("build", "exit 1")]).is_some());
        // Small file system, mostly full, log says ENOSPC.
        assert!(out_of_disk(&[disk(6.0, 200)], &[&failed]).is_some());
    }

    #[test]
    fn a_plugin_cannot_claim_a_full_disk_when_there_is_room() {
        let lying = step("build", "no space left on device (not really)");
        assert_eq!(out_of_disk(&[disk(20.0, 252)], &[&lying]), None);
        assert_eq!(
            out_of_disk(&[disk(3.0, 252)], &[&step("build", "exit 1")]),
            None
        );
        // No failed step: nothing to blame.
        assert_eq!(out_of_disk(&[disk(0.1, 252)], &[]), None);
    }

    #[test]
    fn statvfs_reads_this_machines_root() {
        let root = DiskSpace::of(Path::new("/")).unwrap();
        assert!(root.total > 0 && root.free <= root.total);
        assert_eq!(DiskSpace::of(Path::new("/no/such/path")), None);
    }
}
