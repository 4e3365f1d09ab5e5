//! Files the harness makes for containers, given to the containers' root on a rootless daemon.

use std::path::Path;

use super::container_root;

/// Hands a file or directory the harness made for a container to the containers' root (a
/// no-op on the host's daemon): on a rootless daemon root in a container is an unprivileged
/// user on the host, who could not read a 0600 secret or write a 0755 directory of root's.
pub(crate) fn hand_over(path: &Path) -> std::io::Result<()> {
    match container_root() {
        Some((uid, gid)) => std::os::unix::fs::lchown(path, Some(uid), Some(gid)),
        None => Ok(()),
    }
}

/// [`hand_over`] for everything under `path` (itself included) that root owns: what the
/// harness made there. What containers made is left as it is (a step of another user keeps its
/// files); symbolic links are not followed.
pub(crate) fn hand_over_tree(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if container_root().is_none() {
        return Ok(());
    }
    let mut pending = vec![path.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
        if meta.uid() == 0 {
            hand_over(&path)?;
        }
    }
    Ok(())
}
