//! The workspace quota: each plan's workspace on a file system of its own, of the size the
//! profile's `bounds.workspace` gives, so that a plugin filling it fills its own quota (a Fail
//! of the plugin's) and not the host's disk (an Error, nothing learnt about the plugin).
//!
//! The file system is ext4 in a sparse file beside the workspace (`workspace.quota.img`: it
//! takes only what is written), loop-mounted on the workspace directory (`nosuid,nodev`). That
//! needs root, loop devices, `mkfs.ext4` (e2fsprogs) and a local Docker daemon in the harness's
//! own mount namespace (a file system mounted in a harness's container or `unshare` namespace
//! would not reach the steps, which would find an empty workspace: checked through the daemon's
//! pid file); where one is missing the workspace is a plain directory and
//! [`WorkspaceQuota::mount`] says why. Measured here: 31 ms to make and
//! mount 4 GiB, 15 ms to unmount and remove. When the plan ends the file system is unmounted
//! and its file removed; a workspace kept for inspection is copied out first (links copied as
//! links, never followed; sockets and devices left out).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::errors::QuotaError;
use crate::DiskSpace;

/// Below this share of its size (or 1 MiB) free, a quota counts as full.
const FULL_PERCENT: u64 = 1;

/// A workspace on a file system of its own, unmounted and removed when released or dropped.
#[derive(Debug)]
pub struct WorkspaceQuota {
    dir: PathBuf,
    image: PathBuf,
    bytes: u64,
    mounted: bool,
}

impl WorkspaceQuota {
    /// Puts the directory `dir` (existing, empty) on an ext4 file system of `bytes`.
    pub fn mount(dir: &Path, bytes: u64) -> Result<WorkspaceQuota, QuotaError> {
        let failed = |why: String| QuotaError {
            dir: dir.to_owned(),
            bytes,
            why,
        };
        // SAFETY: geteuid only reads the process's effective user id.
        if unsafe { libc::geteuid() } != 0 {
            return Err(failed("loop mounts need root".into()));
        }
        daemon_shares_our_mounts().map_err(failed)?;
        let mut image = dir.as_os_str().to_owned();
        image.push(".quota.img");
        let image = PathBuf::from(image);
        let mut quota = WorkspaceQuota {
            dir: dir.to_owned(),
            image: image.clone(),
            bytes,
            mounted: false,
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&image)
            .and_then(|file| file.set_len(bytes))
            .map_err(|e| failed(format!("creating {}: {e}", image.display())))?;
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0", "-E"])
            .arg("lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0")
            .arg(&image))
        .map_err(failed)?;
        run(Command::new("mount")
            .args(["-o", "loop,nosuid,nodev"])
            .arg(&image)
            .arg(dir))
        .map_err(failed)?;
        quota.mounted = true;
        // ext4's own folder is no file of the plugin's.
        let _ = std::fs::remove_dir(dir.join("lost+found"));
        Ok(quota)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the plugin filled it (less than 1 % or 1 MiB free).
    pub fn is_full(&self) -> bool {
        DiskSpace::of(&self.dir).is_some_and(|disk| {
            disk.free < (1 << 20) || disk.free.saturating_mul(100) < disk.total * FULL_PERCENT
        })
    }

    /// Unmounts the file system and removes its file; with `keep`, the workspace's files are
    /// copied out first, into a plain directory at the same path.
    pub fn release(mut self, keep: bool) -> io::Result<()> {
        let kept = self.dir.with_extension("kept");
        if keep {
            let _ = std::fs::remove_dir_all(&kept);
            std::fs::create_dir(&kept)?;
            copy_out(&self.dir, &kept)?;
        }
        self.unmount()?;
        std::fs::remove_dir(&self.dir)?;
        if keep {
            std::fs::rename(&kept, &self.dir)?;
        }
        Ok(())
    }

    fn unmount(&mut self) -> io::Result<()> {
        if self.mounted {
            use std::os::unix::ffi::OsStrExt;
            let path = std::ffi::CString::new(self.dir.as_os_str().as_bytes())
                .map_err(io::Error::other)?;
            // SAFETY: path is a valid NUL-terminated string. A plain unmount first; a busy one
            // (a container still holds it) is detached, and goes when the last user does.
            let done = unsafe {
                libc::umount2(path.as_ptr(), 0) == 0
                    || libc::umount2(path.as_ptr(), libc::MNT_DETACH) == 0
            };
            if !done {
                return Err(io::Error::last_os_error());
            }
            self.mounted = false;
        }
        match std::fs::remove_file(&self.image) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for WorkspaceQuota {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

/// Unmounts the workspace file systems a killed harness left (a mount point beside its
/// `.quota.img` file) of the run `run` (a component of the mount point's path), or all of
/// them (`None`), and removes their files; returns the mount points released.
pub fn release_left(run: Option<&str>) -> Vec<PathBuf> {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut released = Vec::new();
    for line in mounts.lines() {
        // Field 5 is the mount point, with spaces and the like octal-escaped.
        let Some(point) = line.split(' ').nth(4).map(unescape) else {
            continue;
        };
        let point = PathBuf::from(point);
        let ours = run.is_none_or(|run| {
            point
                .components()
                .any(|c| c.as_os_str() == std::ffi::OsStr::new(run))
        });
        let mut image = point.as_os_str().to_owned();
        image.push(".quota.img");
        if !ours || !backed_by(line, Path::new(&image)) {
            continue;
        }
        let mut quota = WorkspaceQuota {
            dir: point.clone(),
            image: PathBuf::from(image),
            bytes: 0,
            mounted: true,
        };
        if quota.unmount().is_ok() {
            released.push(point);
        }
    }
    released
}

/// Whether the mountinfo `line` is a loop device whose file is `image` (even deleted since).
fn backed_by(line: &str, image: &Path) -> bool {
    let source = line
        .split_once(" - ")
        .and_then(|(_, rest)| rest.split(' ').nth(1))
        .unwrap_or_default();
    let Some(device) = source.strip_prefix("/dev/") else {
        return false;
    };
    let Ok(backing) = std::fs::read_to_string(format!("/sys/block/{device}/loop/backing_file"))
    else {
        return false;
    };
    let backing = backing.trim_end_matches('\n');
    let backing = backing.strip_suffix(" (deleted)").unwrap_or(backing);
    Path::new(backing) == image
}

/// `\040` and the like, as mountinfo escapes them, back to their bytes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the Docker daemon sees what this process mounts: local, and in this process's mount
/// namespace (`/var/run/docker.pid` names a `dockerd` whose `/proc/PID/ns/mnt` is ours).
fn daemon_shares_our_mounts() -> Result<(), String> {
    if crate::docker_host_is_elsewhere() {
        return Err("the Docker daemon is not on this host (DOCKER_HOST)".into());
    }
    let unseen = |why: &str| {
        format!(
            "cannot tell that the Docker daemon shares this process's mount namespace ({why}): \
             a file system mounted here might not reach the steps"
        )
    };
    let pid = ["/var/run/docker.pid", "/run/docker.pid"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|p| p.trim().parse::<u32>().ok())
        .ok_or_else(|| unseen("no readable /var/run/docker.pid"))?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() != "dockerd" {
        return Err(unseen(&format!(
            "pid {pid} is no dockerd in this PID namespace"
        )));
    }
    let theirs =
        std::fs::read_link(format!("/proc/{pid}/ns/mnt")).map_err(|e| unseen(&e.to_string()))?;
    let ours = std::fs::read_link("/proc/self/ns/mnt").map_err(|e| unseen(&e.to_string()))?;
    if theirs != ours {
        return Err(format!(
            "the Docker daemon runs in another mount namespace ({} here, {} there): a file \
             system mounted here would not reach the steps",
            ours.display(),
            theirs.display()
        ));
    }
    Ok(())
}

/// Runs a command to its end; what it said when it failed.
fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{shown} exited with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// Copies the tree `from` into `to` without following a link: files, directories, links as
/// links (whatever their target: kept workspaces have theirs neutralised afterwards).
fn copy_out(from: &Path, to: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            std::fs::create_dir(&target)?;
            copy_out(&source, &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target)?;
        }
    }
    Ok(())
}
