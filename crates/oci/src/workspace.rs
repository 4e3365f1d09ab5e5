//! Containment: what a plugin wrote into its workspace is read without leaving the workspace.
//!
//! The plugin under test is untrusted, and its workspace is a host directory it can fill with
//! anything: `ln -s /etc/shadow image.tar` is one command. Every file the harness reads from a
//! workspace (tarballs for captures and assertions, JSON captures) is opened relative to the
//! workspace with `cap-std`, which resolves each component itself and refuses absolute paths,
//! `..` past the root and symlinks that lead out. A symlink that stays inside is followed. A
//! refused path is the plugin's doing (a Fail) and the message names it and where it leads,
//! e.g. `image.tar is a symlink to /etc/shadow, outside the workspace` — the link's target is
//! read, never the file. Only regular files are read (a FIFO would block the harness).
//!
//! The copy of a scenario's `workspace:` directory ([`copy_tree`]) does not follow symlinks
//! either: a symlink that stays inside the source is copied as a symlink, any other is refused.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

use crate::errors::WorkspaceReadError;
use crate::human::{human, shown};

/// Opens `rel`, a regular file inside `workspace`.
pub fn open_file(workspace: &Path, rel: &str) -> Result<File, WorkspaceReadError> {
    let io = |source| WorkspaceReadError::Io {
        path: rel.to_owned(),
        source,
    };
    if let Some(how) = lexical_escape(rel) {
        return Err(WorkspaceReadError::Outside {
            path: shown(rel),
            how,
        });
    }
    let dir = Dir::open_ambient_dir(workspace, ambient_authority()).map_err(io)?;
    let mut options = OpenOptions::new();
    // Non-blocking, so that opening a FIFO the plugin left does not hang the harness; it is
    // refused below as not a regular file.
    options
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    let file = match dir.open_with(rel, &options) {
        Ok(file) => file,
        Err(e) => {
            if let Some(how) = escape(&dir, rel) {
                return Err(WorkspaceReadError::Outside {
                    path: shown(rel),
                    how,
                });
            }
            if e.raw_os_error() == Some(libc::ELOOP) {
                return Err(WorkspaceReadError::NotAFile {
                    path: shown(rel),
                    what: "a symlink loop",
                });
            }
            return Err(match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
                    WorkspaceReadError::NotFound { path: shown(rel) }
                }
                _ => io(e),
            });
        }
    };
    let file_type = file.metadata().map_err(io)?.file_type();
    if !file_type.is_file() {
        use cap_std::fs::FileTypeExt;
        let what = if file_type.is_dir() {
            "a directory"
        } else if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_socket() {
            "a socket"
        } else if file_type.is_block_device() || file_type.is_char_device() {
            "a device"
        } else {
            "something else"
        };
        return Err(WorkspaceReadError::NotAFile {
            path: shown(rel),
            what,
        });
    }
    Ok(file.into_std())
}

/// Reads `rel`, a regular file inside `workspace`, of at most `limit` bytes.
pub fn read_file(workspace: &Path, rel: &str, limit: u64) -> Result<Vec<u8>, WorkspaceReadError> {
    let file = open_file(workspace, rel)?;
    let too_large = || WorkspaceReadError::TooLarge {
        path: shown(rel),
        limit: human(limit),
    };
    let declared = file
        .metadata()
        .map_err(|source| WorkspaceReadError::Io {
            path: rel.to_owned(),
            source,
        })?
        .len();
    if declared > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| WorkspaceReadError::Io {
            path: rel.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Why `rel` leaves any directory on its own (absolute, or `..` past the start), if it does.
fn lexical_escape(rel: &str) -> Option<String> {
    let path = Path::new(rel);
    if path.has_root() {
        return Some("is an absolute path".to_owned());
    }
    let mut depth = 0usize;
    for component in path.components() {
        match component {
            Component::ParentDir if depth == 0 => {
                return Some("leads through `..`".to_owned());
            }
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    None
}

/// Where `rel` leaves the workspace, walking it as the kernel would, one component at a time,
/// symlinks read (never followed) with `readlinkat` inside the sandbox. `None` when it does
/// not (the open failed for another reason).
fn escape(dir: &Dir, rel: &str) -> Option<String> {
    let mut queue: VecDeque<String> = components(Path::new(rel));
    let mut resolved: Vec<String> = Vec::new();
    // The last symlink followed, to name it when a `..` of its target leads out.
    let mut via: Option<(String, PathBuf)> = None;
    let mut hops = 0;
    let outside = |via: &Option<(String, PathBuf)>| match via {
        Some((link, target)) => symlink_to(rel, link, target),
        None => "leads through `..`".to_owned(),
    };
    while let Some(component) = queue.pop_front() {
        match component.as_str() {
            "" | "." => {}
            ".." => {
                if resolved.pop().is_none() {
                    return Some(outside(&via));
                }
            }
            name => {
                resolved.push(name.to_owned());
                let here = resolved.join("/");
                let is_link = dir
                    .symlink_metadata(&here)
                    .is_ok_and(|m| m.file_type().is_symlink());
                if !is_link {
                    continue;
                }
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = dir.read_link_contents(&here).ok()?;
                if target.has_root() {
                    return Some(symlink_to(rel, &here, &target));
                }
                resolved.pop();
                for c in components(&target).into_iter().rev() {
                    queue.push_front(c);
                }
                via = Some((here, target));
            }
        }
    }
    None
}

fn components(path: &Path) -> VecDeque<String> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_owned()),
            _ => None,
        })
        .collect()
}

fn symlink_to(rel: &str, link: &str, target: &Path) -> String {
    let target = shown(&target.to_string_lossy());
    if Path::new(link) == Path::new(rel) {
        format!("is a symlink to {target}")
    } else {
        format!("goes through {}, a symlink to {target}", shown(link))
    }
}

/// Replaces every symlink under `workspace` that leads out of it (absolute, `..` past the root,
/// or through another link that does) with a regular file naming where it led, so that a kept
/// workspace copied with its links followed (`tar -ch`, `cp -L`) copies no host file. Links that
/// stay inside are kept. Nothing is followed while walking. Returns the paths replaced.
pub fn neutralise_links(workspace: &Path) -> Vec<String> {
    let Ok(dir) = Dir::open_ambient_dir(workspace, ambient_authority()) else {
        return Vec::new();
    };
    let mut links = Vec::new();
    links_below(workspace, Path::new(""), &mut links);
    // Judged against the tree as the plugin left it, then replaced.
    let outward: Vec<(String, String)> = links
        .into_iter()
        .filter_map(|rel| escape(&dir, &rel).map(|how| (rel, how)))
        .collect();
    let mut replaced = Vec::new();
    for (rel, how) in outward {
        let note = format!(
            "{rel} {how}, outside the workspace: the harness replaced the link with this file\n"
        );
        let swapped = dir.remove_file(&rel).and_then(|()| {
            let mut options = OpenOptions::new();
            options
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW);
            let mut file = dir.open_with(&rel, &options)?;
            io::Write::write_all(&mut file, note.as_bytes())
        });
        if swapped.is_ok() {
            replaced.push(rel);
        }
    }
    replaced
}

fn links_below(root: &Path, rel: &Path, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
        return;
    };
    for entry in entries.flatten() {
        let rel = rel.join(entry.file_name());
        match entry.file_type() {
            Ok(kind) if kind.is_symlink() => found.push(rel.to_string_lossy().into_owned()),
            Ok(kind) if kind.is_dir() => links_below(root, &rel, found),
            _ => {}
        }
    }
}

/// Copies the directory `from` into `to` (which exists) without following symlinks: a
/// relative symlink that stays inside `from` is copied as a symlink; an absolute one, one that
/// leads out, and anything but files, directories and symlinks are refused.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    copy_below(from, to, Path::new(""))
}

fn copy_below(root: &Path, to: &Path, rel: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let rel = rel.join(entry.file_name());
        let target = to.join(&rel);
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_below(root, to, &rel)?;
        } else if file_type.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            let base = rel.parent().unwrap_or(Path::new(""));
            if link.has_root() || lexical_escape(&base.join(&link).to_string_lossy()).is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{} is a symlink to {}, outside the directory",
                        rel.display(),
                        link.display()
                    ),
                ));
            }
            std::os::unix::fs::symlink(&link, &target)?;
        } else if file_type.is_file() {
            std::fs::copy(entry.path(), &target)?;
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a file, a directory or a symlink", rel.display()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_leading_out_of_a_kept_workspace_become_files_naming_their_target() {
        use std::os::unix::fs::symlink;
        let root = tempfile::tempdir().unwrap();
        let ws = root.path().join("workspace");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::write(ws.join("inside.txt"), "mine").unwrap();
        symlink("/etc/shadow", ws.join("shadow")).unwrap();
        symlink("../../outside", ws.join("sub/up")).unwrap();
        symlink("/", ws.join("sub/root")).unwrap();
        // Inside by itself, out through the link it goes via.
        symlink("sub/root/etc", ws.join("via")).unwrap();
        symlink("inside.txt", ws.join("ok")).unwrap();
        symlink("../inside.txt", ws.join("sub/ok")).unwrap();
        let mut replaced = neutralise_links(&ws);
        replaced.sort();
        assert_eq!(replaced, ["shadow", "sub/root", "sub/up", "via"]);
        let note = std::fs::read_to_string(ws.join("shadow")).unwrap();
        assert!(
            note.contains("shadow is a symlink to /etc/shadow, outside the workspace"),
            "{note}"
        );
        assert!(std::fs::symlink_metadata(ws.join("shadow"))
            .unwrap()
            .is_file());
        assert!(std::fs::read_to_string(ws.join("via"))
            .unwrap()
            .contains("sub/root"));
        for kept in ["ok", "sub/ok"] {
            assert!(std::fs::symlink_metadata(ws.join(kept))
                .unwrap()
                .file_type()
                .is_symlink());
        }
        assert_eq!(std::fs::read_to_string(ws.join("ok")).unwrap(), "mine");
    }

    #[test]
    fn lexical_escapes() {
        assert_eq!(lexical_escape("a/b"), None);
        assert_eq!(lexical_escape("a/../b"), None);
        assert!(lexical_escape("/etc/passwd").is_some());
        assert!(lexical_escape("sub/../../x").is_some());
        assert!(lexical_escape("..").is_some());
    }
}
