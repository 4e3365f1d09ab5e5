//! Layers as streams: decompressed (plain, gzip, zstd) under the [`Limits`], hashed as the
//! bytes go by, and listed (names only) — never held in memory.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::sync::Arc;

use sha2::{Digest, Sha256, Sha512};

use super::tarstream::{TarError, TarStream};
use super::{normalize, Limits};
use crate::human::{human, shown};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// How a layer blob is stored; told by its first bytes (media types can lie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// The digest algorithms an archive may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// `sha256` / `sha512`; anything else is not accepted.
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// `algorithm:hex` of these bytes.
    pub fn digest(self, bytes: &[u8]) -> String {
        match self {
            Algorithm::Sha256 => format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
            Algorithm::Sha512 => format!("sha512:{}", hex::encode(Sha512::digest(bytes))),
        }
    }
}

/// Hashes a stream: sha256 always, sha512 when asked.
pub struct Hasher {
    sha256: Option<Sha256>,
    sha512: Option<Sha512>,
    bytes: u64,
}

/// What a stream hashed to.
#[derive(Debug, Clone, Default)]
pub struct Digests {
    pub sha256: Option<String>,
    pub sha512: Option<String>,
    pub bytes: u64,
}

impl Digests {
    pub fn get(&self, algorithm: Algorithm) -> Option<&str> {
        match algorithm {
            Algorithm::Sha256 => self.sha256.as_deref(),
            Algorithm::Sha512 => self.sha512.as_deref(),
        }
    }
}

impl Hasher {
    pub fn new(sha256: bool, sha512: bool) -> Hasher {
        Hasher {
            sha256: sha256.then(Sha256::new),
            sha512: sha512.then(Sha512::new),
            bytes: 0,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        if let Some(h) = &mut self.sha256 {
            h.update(bytes);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(bytes);
        }
        self.bytes += bytes.len() as u64;
    }

    pub fn finish(self) -> Digests {
        Digests {
            sha256: self
                .sha256
                .map(|h| format!("sha256:{}", hex::encode(h.finalize()))),
            sha512: self
                .sha512
                .map(|h| format!("sha512:{}", hex::encode(h.finalize()))),
            bytes: self.bytes,
        }
    }
}

/// Hashes what is read through it.
pub struct HashingReader<R> {
    pub inner: R,
    pub hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The decompressed stream: counted, hashed, and cut off past the limit.
pub(super) struct Capped<R> {
    inner: R,
    hasher: Option<Hasher>,
    compression: Compression,
    compressed: u64,
    limit: u64,
    /// The ratio that set the limit; `None` when the absolute cap did.
    ratio: Option<u64>,
    count: u64,
    exceeded: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.exceeded {
            return Err(io::Error::other("decompression limit reached"));
        }
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("decompression limit reached"));
        }
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

impl<R> Capped<R> {
    /// What an error reading through it means: a bomb when the limit stopped it, else a
    /// corrupt stream.
    pub(super) fn problem(&self, e: &io::Error) -> LayerProblem {
        if self.exceeded {
            LayerProblem::Bomb {
                limit: self.limit,
                compressed: self.compressed,
                ratio: self.ratio,
            }
        } else {
            LayerProblem::Corrupt {
                compression: self.compression,
                at: self.count,
                message: e.to_string(),
            }
        }
    }
}

/// `input` (compressed as `compression`, `compressed_size` bytes) decompressed under the
/// limits, and hashed as `want` says.
pub(super) fn decompressed<'a, R: Read + 'a>(
    input: R,
    compression: Compression,
    compressed_size: u64,
    limits: &Limits,
    want: Want,
) -> Result<Capped<Box<dyn Read + 'a>>, LayerProblem> {
    let (limit, ratio) = limits.decompressed_limit(compressed_size);
    let decoder: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::new(input).map_err(|e| LayerProblem::Corrupt {
                    compression,
                    at: 0,
                    message: e.to_string(),
                })?;
            decoder
                .window_log_max(limits.zstd_window_log_max)
                .map_err(|e| LayerProblem::Corrupt {
                    compression,
                    at: 0,
                    message: e.to_string(),
                })?;
            Box::new(decoder)
        }
    };
    Ok(Capped {
        inner: decoder,
        hasher: (want.sha256 || want.sha512).then(|| Hasher::new(want.sha256, want.sha512)),
        compression,
        compressed: compressed_size,
        limit,
        ratio,
        count: 0,
        exceeded: false,
    })
}

/// Why a layer could not be read through.
#[derive(Debug, Clone)]
pub enum LayerProblem {
    /// It decompresses to more than the limits allow.
    Bomb {
        limit: u64,
        compressed: u64,
        /// The ratio that set the limit; `None` when the absolute cap did.
        ratio: Option<u64>,
    },
    /// The compressed stream is corrupt (the decompressor's words; they quote no content).
    Corrupt {
        compression: Compression,
        at: u64,
        message: String,
    },
}

impl LayerProblem {
    /// The message, for the layer called `name`.
    pub fn describe(&self, name: &str) -> String {
        match self {
            LayerProblem::Bomb {
                limit,
                compressed,
                ratio,
            } => {
                let why = match ratio {
                    Some(ratio) => format!("{ratio}× its compressed {}", human(*compressed)),
                    None => "the cap on any layer".to_owned(),
                };
                format!(
                    "layer {} decompresses to more than {} ({why}): a decompression bomb?",
                    shown(name),
                    human(*limit)
                )
            }
            LayerProblem::Corrupt {
                compression,
                at,
                message,
            } => format!(
                "layer {} cannot be decompressed ({}): {message}, after {at} decompressed bytes",
                shown(name),
                compression.name()
            ),
        }
    }
}

/// What streaming a layer through found.
#[derive(Debug, Clone)]
pub struct LayerScan {
    pub compression: Compression,
    /// The decompressed stream's digests (only those asked for).
    pub diff: Digests,
    /// The paths the layer's tar lists (normalised, whiteout entries kept), or why it is not a
    /// readable tar.
    pub paths: Result<Arc<Vec<String>>, String>,
}

/// What to compute for the decompressed stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want {
    pub sha256: bool,
    pub sha512: bool,
}

/// Decompresses `input` (compressed as `compression`, `compressed_size` bytes) under the
/// limits, hashing the decompressed stream as `want` says and listing its tar's paths.
/// `names_left` is the budget of path bytes still allowed. `Err` when decompression failed or
/// went over a limit; the caller checks first that its own reader (I/O, truncation) is not
/// the cause.
pub fn scan_layer<R: Read>(
    input: R,
    compression: Compression,
    compressed_size: u64,
    limits: &Limits,
    want: Want,
    names_left: &mut u64,
) -> Result<LayerScan, LayerProblem> {
    let mut capped = decompressed(input, compression, compressed_size, limits, want)?;
    let mut stream = TarStream::new(&mut capped);
    let paths = list(&mut stream, names_left, limits);
    drop(stream);
    let paths = match paths {
        Ok(paths) => Ok(Arc::new(paths)),
        Err(Listing::Inner(e)) => return Err(capped.problem(&e)),
        Err(Listing::Broken(why)) => Err(why),
    };
    // The digest covers the whole decompressed stream, past the tar's end blocks.
    if let Err(e) = io::copy(&mut capped, &mut io::sink()) {
        return Err(capped.problem(&e));
    }
    Ok(LayerScan {
        compression,
        diff: capped.hasher.take().map(Hasher::finish).unwrap_or_default(),
        paths,
    })
}

/// What keeping a name costs besides its bytes (the `String`, the vector's slot), counted
/// against [`Limits::name_bytes`].
pub const NAME_OVERHEAD: u64 = 32;

enum Listing {
    /// The decompressed stream failed: a limit or corruption.
    Inner(io::Error),
    /// The stream is fine but is not a readable tar (or lists too much).
    Broken(String),
}

fn list<R: Read>(
    stream: &mut TarStream<R>,
    names_left: &mut u64,
    limits: &Limits,
) -> Result<Vec<String>, Listing> {
    let mut paths = Vec::new();
    let mut broken = None;
    loop {
        let header = match stream.next_header() {
            Ok(Some(header)) => header,
            Ok(None) => break,
            Err(TarError::Inner(e)) => return Err(Listing::Inner(e)),
            Err(e) => {
                broken = Some(format!("not a readable tar: {e}"));
                break;
            }
        };
        let path = normalize(&header.name);
        if path.split('/').any(|c| c == "..") {
            broken.get_or_insert_with(|| {
                format!(
                    "member {} leaves the layer's root (path traversal)",
                    shown(&header.name)
                )
            });
        }
        if broken.is_some() || path.is_empty() {
            continue;
        }
        let cost = path.len() as u64 + NAME_OVERHEAD;
        if cost > *names_left {
            broken = Some(format!(
                "the layers list more than {} of file names",
                human(limits.name_bytes)
            ));
            continue;
        }
        *names_left -= cost;
        paths.push(path);
    }
    // Data the walker skipped may have ended the stream early.
    if let Some(truncated) = stream.truncation() {
        broken.get_or_insert_with(|| format!("not a readable tar: {truncated}"));
    }
    match broken {
        Some(why) => Err(Listing::Broken(why)),
        None => Ok(paths),
    }
}

/// The paths of the file system the layers build, in order, whiteouts honoured (`.wh.NAME`
/// hides NAME of lower layers, `.wh..wh..opq` empties its directory), without a leading `/`.
pub fn apply_layers<'a>(layers: impl IntoIterator<Item = &'a [String]>) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for layer in layers {
        let mut added = Vec::new();
        for path in layer {
            let (dir, base) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            if base == ".wh..wh..opq" {
                remove_under(&mut files, dir);
            } else if let Some(hidden) = base.strip_prefix(".wh.") {
                let target = if dir.is_empty() {
                    hidden.to_owned()
                } else {
                    format!("{dir}/{hidden}")
                };
                files.remove(&target);
                remove_under(&mut files, &target);
            } else {
                added.push(path.clone());
            }
        }
        // A whiteout hides lower layers only, wherever it stands in its own layer.
        files.extend(added);
    }
    files
}

/// Removes everything below `dir` (everything, for the root).
fn remove_under(files: &mut BTreeSet<String>, dir: &str) {
    if dir.is_empty() {
        files.clear();
        return;
    }
    let prefix = format!("{dir}/");
    let doomed: Vec<String> = files
        .range(prefix.clone()..)
        .take_while(|f| f.starts_with(&prefix))
        .cloned()
        .collect();
    for f in doomed {
        files.remove(&f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn whiteouts_hide_lower_layers_only() {
        let lower = paths(&["etc", "etc/a", "etc/b", "opt/x", "opt/x/y", "opt/x/y/z"]);
        // The opaque marker comes after a file of its own layer: that file stays.
        let upper = paths(&["opt/x/new", "opt/x/.wh..wh..opq", "etc/.wh.a"]);
        let files = apply_layers([lower.as_slice(), upper.as_slice()]);
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        assert_eq!(files, ["etc", "etc/b", "opt/x", "opt/x/new"]);
    }

    #[test]
    fn the_ratio_limit_has_a_floor_and_a_cap() {
        let limits = Limits::default();
        assert_eq!(limits.decompressed_limit(10), (1 << 20, Some(1000)));
        assert_eq!(limits.decompressed_limit(1 << 20), (1000 << 20, Some(1000)));
        assert_eq!(limits.decompressed_limit(1 << 30), (64 << 30, None));
    }

    #[test]
    fn a_zstd_frame_asking_for_a_larger_window_than_allowed_is_refused() {
        let data = vec![7u8; 1 << 16];
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        encoder.window_log(20).unwrap();
        std::io::Write::write_all(&mut encoder, &data).unwrap();
        let compressed = encoder.finish().unwrap();
        let limits = Limits {
            zstd_window_log_max: 12,
            ..Limits::default()
        };
        let mut names = u64::MAX;
        let problem = scan_layer(
            compressed.as_slice(),
            Compression::Zstd,
            compressed.len() as u64,
            &limits,
            Want::default(),
            &mut names,
        )
        .unwrap_err();
        assert!(
            matches!(problem, LayerProblem::Corrupt { .. }),
            "{problem:?}"
        );
        let ok = scan_layer(
            compressed.as_slice(),
            Compression::Zstd,
            compressed.len() as u64,
            &Limits::default(),
            Want {
                sha256: true,
                sha512: false,
            },
            &mut names,
        )
        .unwrap();
        assert_eq!(ok.diff.sha256, Some(Algorithm::Sha256.digest(&data)));
        // Not a tar: the digest still counts, the listing says why.
        assert!(ok.paths.unwrap_err().starts_with("not a readable tar"));
    }
}
