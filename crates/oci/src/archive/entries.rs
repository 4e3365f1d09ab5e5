//! Every member of a layer with its metadata (type, mode, owner, size, link target) and, for
//! regular files, the sha256 of its content: each layer streamed once through the bounded
//! decompressor, content hashed as it goes by, nothing kept but the entries. What
//! [`crate::image_view`] builds an image's file system from.

use std::io::{self, Read};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::layer::NAME_OVERHEAD;
use super::tarstream::{Header, Kind};
use super::walk::{walk_members, Stop};
use super::{normalize, Compression, LayerProblem, Limits};
use crate::human::human;

/// What keeping one entry costs besides its path (the metadata, a digest, a link target's
/// `String`), counted with the path against [`Limits::name_bytes`].
pub const ENTRY_OVERHEAD: u64 = 160;

/// What kind of file an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A hard link (resolved to its target's file when the layers are applied, if it is there).
    Hardlink,
    /// A device, FIFO or the like, by its tar type flag.
    Other(char),
}

/// One file as a layer writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub kind: EntryKind,
    /// Permission bits; `None` for a symlink (Linux ignores them) or an unreadable field.
    pub mode: Option<u32>,
    pub uid: Option<u64>,
    pub gid: Option<u64>,
    /// A regular file's size.
    pub size: Option<u64>,
    /// A regular file's content, `sha256:<hex>`.
    pub sha256: Option<String>,
    /// A symlink's or hard link's target (a hard link's normalised, as a path of the image).
    pub link: Option<String>,
}

/// What a layer's whiteouts hide in the layers below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hidden {
    /// `.wh.NAME`: the path and everything below it.
    Path(String),
    /// `.wh..wh..opq`: everything below the directory (the root when empty), not itself.
    Below(String),
}

/// What one layer does to the file system: paths as [`crate::archive::image_path`] writes them
/// (no leading `/`).
#[derive(Debug, Default)]
pub struct LayerEntries {
    pub hidden: Vec<Hidden>,
    /// In the layer's order (a later entry for the same path wins).
    pub written: Vec<(String, Entry)>,
}

/// Streams one layer (compressed as `compression`, `compressed_size` bytes) under the limits,
/// hashing every regular file's content and keeping every entry. `budget` is what is left of
/// [`Limits::name_bytes`] for the whole image (each entry costs its path, [`NAME_OVERHEAD`]
/// and [`ENTRY_OVERHEAD`]). `Err` when decompression failed or went over a limit; the inner
/// `Err` when the stream is not a readable tar or lists more than the budget.
pub fn read_layer_entries<R: Read>(
    input: R,
    compression: Compression,
    compressed_size: u64,
    limits: &Limits,
    budget: &mut u64,
) -> Result<Result<LayerEntries, String>, LayerProblem> {
    let mut layer = LayerEntries::default();
    let visit = |header: Header, path: String, data: &mut dyn Read| -> Result<(), Stop> {
        if path.is_empty() {
            return Ok(());
        }
        let cost = path.len() as u64 + NAME_OVERHEAD + ENTRY_OVERHEAD;
        if cost > *budget {
            return Err(Stop::Refused(format!(
                "the layers list more than {} of files",
                human(limits.name_bytes)
            )));
        }
        *budget -= cost;
        let (dir, base) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        if base == ".wh..wh..opq" {
            layer.hidden.push(Hidden::Below(dir.to_owned()));
            return Ok(());
        }
        if let Some(name) = base.strip_prefix(".wh.") {
            let target = if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            };
            layer.hidden.push(Hidden::Path(target));
            return Ok(());
        }
        let (kind, mode) = match header.kind {
            Kind::File => (EntryKind::File, header.mode),
            Kind::Dir => (EntryKind::Dir, header.mode),
            Kind::Symlink => (EntryKind::Symlink, None),
            Kind::Hardlink => (EntryKind::Hardlink, header.mode),
            Kind::Other(flag) => (EntryKind::Other(char::from(flag)), header.mode),
        };
        let (size, sha256) = if kind == EntryKind::File {
            let mut hasher = HashWriter(Sha256::new());
            io::copy(data, &mut hasher).map_err(Stop::Read)?;
            let digest = format!("sha256:{}", hex::encode(hasher.0.finalize()));
            (Some(header.size), Some(digest))
        } else {
            (None, None)
        };
        let link = match kind {
            EntryKind::Hardlink => header.link.as_deref().map(normalize),
            EntryKind::Symlink => header.link,
            _ => None,
        };
        layer.written.push((
            path,
            Entry {
                kind,
                mode,
                uid: header.uid,
                gid: header.gid,
                size,
                sha256,
                link,
            },
        ));
        Ok(())
    };
    Ok(walk_members(input, compression, compressed_size, limits, visit)?.map(|()| layer))
}

/// Hashes what is written to it.
struct HashWriter(Sha256);

impl io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::test_tar::tar as layer;

    fn read(bytes: &[u8], budget: &mut u64) -> Result<LayerEntries, String> {
        read_layer_entries(
            bytes,
            Compression::None,
            bytes.len() as u64,
            &Limits::default(),
            budget,
        )
        .unwrap()
    }

    #[test]
    fn hashes_files_and_keeps_whiteouts_apart() {
        let bytes = layer(&[
            ("./app/run", b"hello"),
            ("app/.wh.old", b""),
            ("d/.wh..wh..opq", b""),
        ]);
        let mut budget = u64::MAX;
        let read = read(&bytes, &mut budget).unwrap();
        assert_eq!(
            read.hidden,
            [Hidden::Path("app/old".into()), Hidden::Below("d".into())]
        );
        let (path, entry) = &read.written[0];
        assert_eq!(path, "app/run");
        assert_eq!(entry.mode, Some(0o644));
        assert_eq!(entry.size, Some(5));
        assert_eq!(
            entry.sha256.as_deref(),
            Some("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
    }

    #[test]
    fn a_layer_listing_more_than_the_budget_is_refused() {
        let bytes = layer(&[("a", b"1"), ("b", b"2")]);
        let mut budget = 1 + NAME_OVERHEAD + ENTRY_OVERHEAD;
        let error = read(&bytes, &mut budget).unwrap_err();
        assert!(error.starts_with("the layers list more than"), "{error}");
    }
}
