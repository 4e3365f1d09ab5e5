//! The content of chosen files of an image: each layer streamed through the bounded
//! decompressor (as for listing its files), at most [`MAX_FILE_BYTES`] kept of each file asked
//! for, then the layers applied in order with their whiteouts.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use super::tarstream::{Header, Kind};
use super::walk::{walk_members, Stop};
use super::{normalize, Compression, LayerProblem, Limits, KIB};
use crate::human::shown;

/// The most bytes of one file read to compare its content (64 KiB); a larger file is said to be
/// larger, never read further.
pub const MAX_FILE_BYTES: u64 = 64 * KIB;

/// One file of an image, as its layers leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// A regular file: its size (as its tar header declares it) and its first bytes, all of
    /// them when it holds at most [`MAX_FILE_BYTES`].
    Regular { size: u64, head: Vec<u8> },
    /// Anything else, said in words: `a directory`, `a symlink to …`, `a hard link to …`.
    NotRegular(String),
}

/// What one layer does to the files asked for.
#[derive(Debug, Default)]
pub struct LayerFiles {
    /// Files its whiteouts hide from the layers below.
    pub removed: BTreeSet<String>,
    /// Files it writes.
    pub written: BTreeMap<String, FileContent>,
}

/// A path as an image's layers name it: `/stage` → `stage`.
pub fn image_path(path: &str) -> String {
    normalize(path)
}

/// Streams one layer (compressed as `compression`, `compressed_size` bytes) under the limits
/// and keeps what it does to the `wanted` paths (as [`image_path`] writes them). `Err` when
/// decompression failed or went over a limit; the inner `Err` when the stream is not a
/// readable tar.
pub fn read_layer_files<R: Read>(
    input: R,
    compression: Compression,
    compressed_size: u64,
    limits: &Limits,
    wanted: &BTreeSet<String>,
) -> Result<Result<LayerFiles, String>, LayerProblem> {
    let mut files = LayerFiles::default();
    let visit = |header: Header, path: String, data: &mut dyn Read| -> Result<(), Stop> {
        let (dir, base) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        let hidden = if base == ".wh..wh..opq" {
            Some(dir.to_owned())
        } else {
            base.strip_prefix(".wh.").map(|name| {
                if dir.is_empty() {
                    name.to_owned()
                } else {
                    format!("{dir}/{name}")
                }
            })
        };
        if let Some(hidden) = hidden {
            // An opaque directory hides what is below it; a whiteout its target and below.
            let opaque = base == ".wh..wh..opq";
            files.removed.extend(
                wanted
                    .iter()
                    .filter(|w| {
                        (!opaque && **w == hidden)
                            || hidden.is_empty()
                            || w.starts_with(&format!("{hidden}/"))
                    })
                    .cloned(),
            );
            return Ok(());
        }
        if !wanted.contains(&path) {
            return Ok(());
        }
        let link = || shown(header.link.as_deref().unwrap_or_default());
        let content = match header.kind {
            Kind::File => {
                // Never more than the cap, whatever the header declares.
                let mut head = Vec::new();
                data.take(MAX_FILE_BYTES)
                    .read_to_end(&mut head)
                    .map_err(Stop::Read)?;
                FileContent::Regular {
                    size: header.size,
                    head,
                }
            }
            Kind::Dir => FileContent::NotRegular("a directory".to_owned()),
            Kind::Symlink => FileContent::NotRegular(format!("a symlink to {}", link())),
            Kind::Hardlink => FileContent::NotRegular(format!("a hard link to {}", link())),
            Kind::Other(flag) => FileContent::NotRegular(format!(
                "a special file (tar type {})",
                shown(&char::from(flag).to_string())
            )),
        };
        files.written.insert(path, content);
        Ok(())
    };
    Ok(walk_members(input, compression, compressed_size, limits, visit)?.map(|()| files))
}

/// The files asked for as the layers, in order, leave them: a whiteout hides lower layers only,
/// wherever it stands in its own layer. A file no layer leaves is not in the map.
pub fn apply_layer_files(
    layers: impl IntoIterator<Item = LayerFiles>,
) -> BTreeMap<String, FileContent> {
    let mut files = BTreeMap::new();
    for layer in layers {
        for path in &layer.removed {
            files.remove(path);
        }
        files.extend(layer.written);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::archive::test_tar::tar as layer;

    fn read(bytes: &[u8], wanted: &[&str]) -> LayerFiles {
        let wanted = wanted.iter().map(|w| image_path(w)).collect();
        read_layer_files(
            bytes,
            Compression::None,
            bytes.len() as u64,
            &Limits::default(),
            &wanted,
        )
        .unwrap()
        .unwrap()
    }

    fn regular(text: &str) -> FileContent {
        FileContent::Regular {
            size: text.len() as u64,
            head: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn keeps_only_the_files_asked_for_and_the_upper_layer_wins() {
        let lower = layer(&[("stage", b"build\n"), ("etc/other", b"x"), ("gone", b"1")]);
        let upper = layer(&[("./stage", b"final\n"), (".wh.gone", b"")]);
        let wanted = ["/stage", "/gone", "/absent"];
        let lower = read(&lower, &wanted);
        assert_eq!(lower.written.len(), 2);
        let files = apply_layer_files([lower, read(&upper, &wanted)]);
        assert_eq!(files.get("stage"), Some(&regular("final\n")));
        assert!(!files.contains_key("gone"));
        assert!(!files.contains_key("absent"));
    }

    #[test]
    fn an_opaque_directory_hides_lower_files_but_not_its_own() {
        let lower = layer(&[("d/a", b"old"), ("d/b", b"old")]);
        let upper = layer(&[("d/a", b"new"), ("d/.wh..wh..opq", b"")]);
        let wanted = ["/d/a", "/d/b"];
        let files = apply_layer_files([read(&lower, &wanted), read(&upper, &wanted)]);
        assert_eq!(files.get("d/a"), Some(&regular("new")));
        assert!(!files.contains_key("d/b"));
    }

    #[test]
    fn a_large_file_is_read_only_up_to_the_cap() {
        let big = vec![b'x'; (MAX_FILE_BYTES + 10) as usize];
        let files = read(&layer(&[("big", &big)]), &["/big"]);
        match &files.written["big"] {
            FileContent::Regular { size, head } => {
                assert_eq!(*size, MAX_FILE_BYTES + 10);
                assert_eq!(head.len() as u64, MAX_FILE_BYTES);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_truncated_layer_is_not_a_readable_tar() {
        let bytes = layer(&[("stage", &[b'x'; 2000])]);
        let cut = &bytes[..1000];
        let wanted = [image_path("/stage")].into_iter().collect();
        let result = read_layer_files(
            cut,
            Compression::None,
            cut.len() as u64,
            &Limits::default(),
            &wanted,
        )
        .unwrap();
        assert!(
            result
                .as_ref()
                .unwrap_err()
                .starts_with("not a readable tar"),
            "{result:?}"
        );
    }
}
