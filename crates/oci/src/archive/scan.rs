//! The one streaming pass over an archive (two when a sha512 diff_id needs it): every member
//! hashed, small JSON documents kept, everything else streamed as a layer.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::layer::{Digests, Hasher, HashingReader};
use super::tarstream::{Kind, TarError, TarStream};
use super::{
    blob_name, escapes_root, human, normalize, resolve_lexically, scan_layer, shown, Algorithm,
    Compression, LayerProblem, LayerScan, Limits, Want, KIB,
};
use crate::errors::ArchiveReadError;

/// Members read as JSON by their name, whatever they start with.
const METADATA_NAMES: &[&str] = &["manifest.json", "index.json", "oci-layout", "repositories"];

/// The file underneath: records the first I/O error (the harness's problem, not the
/// archive's), so that errors seen further up can be told apart.
pub(super) struct Source<R> {
    pub(super) inner: R,
    pub(super) failed: Option<io::Error>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                let kind = e.kind();
                self.failed.get_or_insert(e);
                Err(io::Error::new(kind, "the archive file cannot be read"))
            }
            other => other,
        }
    }
}

/// One member of the archive, as streamed.
pub(super) struct Member {
    pub(super) size: u64,
    pub(super) offset: u64,
    /// Its stored bytes' digests (sha256; sha512 too when its name is a sha512 digest).
    pub(super) digests: Digests,
    /// Kept when it is a small JSON document.
    pub(super) json: Option<Vec<u8>>,
    /// Streamed as a layer: everything else.
    pub(super) layer: Option<Result<LayerScan, LayerProblem>>,
}

pub(super) struct Scan {
    pub(super) members: BTreeMap<String, Member>,
    /// Symlinks and hard links between members: name → target (resolved, inside the archive)
    /// and the link's offset.
    pub(super) links: BTreeMap<String, (String, u64)>,
}

pub(super) enum Pass<'a> {
    /// Everything: hash, keep JSON, stream layers.
    First,
    /// Only these members, as layers, for the sha512 of their decompressed stream.
    DiffSha512(&'a BTreeSet<String>),
}

type Stream<'f> = TarStream<Source<BufReader<&'f File>>>;

/// Streams the archive once.
pub(super) fn scan(
    file: &File,
    path: &Path,
    limits: &Limits,
    pass: Pass<'_>,
) -> Result<Scan, ArchiveReadError> {
    let malformed = |message: String| ArchiveReadError::Malformed {
        path: path.to_owned(),
        message,
    };
    let twice = |name: &str, first: u64, second: u64| {
        malformed(format!(
            "member {} appears twice (at bytes {first} and {second}): which one a loader takes is \
             undefined",
            shown(name)
        ))
    };
    let read_error = |source| ArchiveReadError::Read {
        path: path.to_owned(),
        source,
    };
    let mut reader = file;
    reader.seek(SeekFrom::Start(0)).map_err(read_error)?;
    let file_len = file.metadata().map_err(read_error)?.len();
    let mut stream: Stream<'_> = TarStream::new(Source {
        inner: BufReader::with_capacity(256 * KIB as usize, file),
        failed: None,
    });
    let mut scan = Scan {
        members: BTreeMap::new(),
        links: BTreeMap::new(),
    };
    let mut names_left = limits.name_bytes;
    let mut json_total = 0u64;
    let mut count = 0u64;
    loop {
        let header = match stream.next_header() {
            Ok(Some(header)) => header,
            Ok(None) => break,
            Err(e) => return Err(stream_failure(&mut stream, path, Some(e))),
        };
        count += 1;
        if count > limits.members {
            return Err(ArchiveReadError::Limit {
                path: path.to_owned(),
                message: format!(
                    "it holds more than {} members (an image archive holds a few per layer)",
                    limits.members
                ),
            });
        }
        if escapes_root(&header.name) {
            return Err(malformed(format!(
                "member {} (at byte {}) has a path outside the archive (path traversal)",
                shown(&header.name),
                header.offset
            )));
        }
        let name = normalize(&header.name);
        if name.is_empty() {
            continue;
        }
        let first_seen = scan
            .members
            .get(&name)
            .map(|m| m.offset)
            .or_else(|| scan.links.get(&name).map(|(_, offset)| *offset));
        match header.kind {
            Kind::Dir | Kind::Other(_) => continue,
            Kind::Symlink | Kind::Hardlink => {
                let target = header.link.clone().unwrap_or_default();
                let base = match header.kind {
                    Kind::Symlink => name.rsplit_once('/').map_or("", |(dir, _)| dir),
                    _ => "",
                };
                let resolved = resolve_lexically(base, &target).ok_or_else(|| {
                    malformed(format!(
                        "member {} is a {} to {}, outside the archive",
                        shown(&name),
                        if header.kind == Kind::Symlink {
                            "symlink"
                        } else {
                            "hard link"
                        },
                        shown(&target)
                    ))
                })?;
                if matches!(pass, Pass::First) {
                    if let Some(first) = first_seen {
                        return Err(twice(&name, first, header.offset));
                    }
                    scan.links.insert(name, (resolved, header.offset));
                }
                continue;
            }
            Kind::File => {}
        }
        if let Pass::DiffSha512(wanted) = pass {
            if !wanted.contains(&name) {
                continue;
            }
        } else if let Some(first) = first_seen {
            return Err(twice(&name, first, header.offset));
        }
        let left = file_len.saturating_sub(stream.offset());
        if header.size > left {
            return Err(ArchiveReadError::Tar {
                path: path.to_owned(),
                message: format!(
                    "member {} (at byte {}) declares {} bytes ({}), but only {left} bytes follow \
                     its header: a truncated archive or a hostile header",
                    shown(&name),
                    header.offset,
                    header.size,
                    human(header.size)
                ),
            });
        }
        let named = blob_name(&name).and_then(Result::ok).map(|(a, _)| a);
        let sha512_named = named == Some(Algorithm::Sha512);
        let read = read_member(
            stream.data(),
            &name,
            header.size,
            &pass,
            sha512_named,
            limits,
            &mut names_left,
            &mut json_total,
        );
        // The file underneath or the archive's own end may be why the member failed.
        if stream.get_ref().failed.is_some() || stream.truncation().is_some() {
            return Err(stream_failure(&mut stream, path, None));
        }
        let Streamed {
            digests,
            json,
            layer,
        } = match read {
            Ok(read) => read,
            Err(MemberError::Io(e)) => {
                return Err(ArchiveReadError::Tar {
                    path: path.to_owned(),
                    message: format!("member {}: {}", shown(&name), e.kind()),
                })
            }
            Err(MemberError::Limit(message)) => {
                return Err(ArchiveReadError::Limit {
                    path: path.to_owned(),
                    message,
                })
            }
        };
        scan.members.insert(
            name,
            Member {
                size: header.size,
                offset: header.offset,
                digests,
                json,
                layer,
            },
        );
    }
    Ok(scan)
}

/// The error that stopped the stream: the file underneath first, then the archive's end,
/// then what the tar reader said.
fn stream_failure(
    stream: &mut Stream<'_>,
    path: &Path,
    error: Option<TarError>,
) -> ArchiveReadError {
    // Only the first failure is kept; reading it again is impossible anyway.
    if let Some(source) = stream_take_failure(stream) {
        return ArchiveReadError::Read {
            path: path.to_owned(),
            source,
        };
    }
    let message = match (stream.truncation(), error) {
        (Some(truncated), _) => truncated.to_string(),
        (None, Some(TarError::Inner(e))) => format!("read failed: {}", e.kind()),
        (None, Some(e)) => e.to_string(),
        (None, None) => "read failed".to_owned(),
    };
    ArchiveReadError::Tar {
        path: path.to_owned(),
        message,
    }
}

fn stream_take_failure(stream: &mut Stream<'_>) -> Option<io::Error> {
    stream.get_mut().failed.take()
}

/// What streaming a member found.
struct Streamed {
    digests: Digests,
    json: Option<Vec<u8>>,
    layer: Option<Result<LayerScan, LayerProblem>>,
}

enum MemberError {
    Io(io::Error),
    Limit(String),
}

/// Streams one member: hashed; kept if it is a small JSON document; else streamed as a layer.
#[allow(clippy::too_many_arguments)]
fn read_member<R: Read>(
    data: R,
    name: &str,
    size: u64,
    pass: &Pass<'_>,
    sha512_named: bool,
    limits: &Limits,
    names_left: &mut u64,
    json_total: &mut u64,
) -> Result<Streamed, MemberError> {
    let first = matches!(pass, Pass::First);
    let mut hashing = HashingReader {
        inner: data,
        hasher: Hasher::new(first, first && sha512_named),
    };
    let mut head = [0u8; 512];
    let mut got = 0;
    while got < head.len() {
        match hashing.read(&mut head[got..]).map_err(MemberError::Io)? {
            0 => break,
            n => got += n,
        }
    }
    let head = &head[..got];
    let is_metadata = METADATA_NAMES.contains(&name);
    // A tar header (its magic at 257) is a layer even when its first name starts with `{`.
    let is_tar = head.get(257..262) == Some(b"ustar".as_slice());
    let looks_json = !is_tar
        && head
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'{' || b == b'[');
    let mut json = None;
    let mut layer = None;
    if first && (is_metadata || looks_json) && size <= limits.json_bytes {
        *json_total += size;
        if *json_total > limits.json_total_bytes {
            return Err(MemberError::Limit(format!(
                "its JSON documents take more than {} together (at {})",
                human(limits.json_total_bytes),
                shown(name)
            )));
        }
        // Grows as data arrives: nothing allocated from the declared size.
        let mut bytes = head.to_vec();
        hashing.read_to_end(&mut bytes).map_err(MemberError::Io)?;
        json = Some(bytes);
    } else if !(first && is_metadata) {
        let compression = Compression::sniff(head);
        let plain = compression == Compression::None;
        let want = match pass {
            // A plain layer's diff is the member's own digest.
            Pass::First => Want {
                sha256: !plain,
                sha512: !plain && sha512_named,
            },
            Pass::DiffSha512(_) => Want {
                sha256: false,
                sha512: true,
            },
        };
        let input = io::Cursor::new(head).chain(&mut hashing);
        layer = Some(scan_layer(
            input,
            compression,
            size,
            limits,
            want,
            names_left,
        ));
    }
    io::copy(&mut hashing, &mut io::sink()).map_err(MemberError::Io)?;
    Ok(Streamed {
        digests: hashing.hasher.finish(),
        json,
        layer,
    })
}
