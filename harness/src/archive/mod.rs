//! Reading image archives the way a user of the tarball would: `docker load`-style archives
//! (`manifest.json`, with or without the OCI layout Docker ≥ 25 adds), OCI image layouts, and the
//! legacy go-containerregistry tarballs kaniko writes (`sha256:<config>`, `<digest>.tar.gz`).
//!
//! Every blob whose name is a digest is hashed and compared with its name, and every layer's
//! uncompressed digest is compared with the config's `rootfs.diff_ids`. Mismatches are findings
//! (the plugin wrote a corrupt archive), not read errors. Only `sha256` and `sha512` digests are
//! accepted; an archive in which nothing could be verified is a finding too.
//!
//! The archive is hostile until proven otherwise, so it is **streamed**, once (twice only when a
//! diff_id uses sha512 and its layer's blob is not named by sha512): member data is hashed,
//! layers are decompressed and listed (names only) as the bytes go by, and nothing is allocated
//! from a size a header declares. Only small JSON documents are kept in memory. The bounds are
//! the [`Limits`]; going over one is a Fail naming the limit, never an abort.

mod layer;
mod tarstream;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use layer::{apply_layers, scan_layer, Algorithm, Compression, LayerProblem, LayerScan, Want};
use layer::{Digests, Hasher, HashingReader};
use tarstream::{Kind, TarError, TarStream};

use crate::errors::ArchiveReadError;
use crate::scenario::ArchiveFormat;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

const OCI_INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Members read as JSON by their name, whatever they start with.
const METADATA_NAMES: &[&str] = &["manifest.json", "index.json", "oci-layout", "repositories"];

/// What reading an archive may cost. Going over a limit is a Fail that names it.
#[derive(Debug, Clone)]
pub struct Limits {
    /// One JSON document (manifest.json, index.json, a manifest, a config): 16 MiB.
    pub json_bytes: u64,
    /// All the JSON documents an archive holds, together: 64 MiB.
    pub json_total_bytes: u64,
    /// What any layer may decompress to: 64 GiB …
    pub layer_bytes: u64,
    /// … and at most this many times its compressed size (1000: deflate cannot do much
    /// better, real layers do far less) …
    pub layer_ratio: u64,
    /// … except that any layer may decompress to 1 MiB.
    pub layer_ratio_floor: u64,
    /// The file names the layers list (kept for `files`), together: 64 MiB.
    pub name_bytes: u64,
    /// The largest zstd window a layer may ask for, as a power of two: 27 (128 MiB, zstd's own
    /// default for decoders).
    pub zstd_window_log_max: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            json_bytes: 16 * MIB,
            json_total_bytes: 64 * MIB,
            layer_bytes: 64 * GIB,
            layer_ratio: 1000,
            layer_ratio_floor: MIB,
            name_bytes: 64 * MIB,
            zstd_window_log_max: 27,
        }
    }
}

impl Limits {
    /// How far a layer of `compressed` bytes may decompress, and the ratio when that set it.
    fn decompressed_limit(&self, compressed: u64) -> (u64, Option<u64>) {
        let by_ratio = compressed
            .saturating_mul(self.layer_ratio)
            .max(self.layer_ratio_floor);
        if by_ratio < self.layer_bytes {
            (by_ratio, Some(self.layer_ratio))
        } else {
            (self.layer_bytes, None)
        }
    }
}

/// What an image archive holds, read and verified.
#[derive(Debug)]
pub struct ImageArchive {
    pub format: ArchiveFormat,
    /// Docker ≥ 25 `docker save` writes an OCI layout next to manifest.json.
    pub has_oci_layout: bool,
    pub repo_tags: Vec<String>,
    pub config_digest: String,
    pub config: Value,
    /// The paths each layer lists, in order, or why they cannot be listed.
    layers: Vec<Result<Vec<String>, String>>,
    /// Blobs (and layers) whose content does not hash to their name (or diff_id), digests in
    /// an algorithm that is not accepted, and "nothing verified".
    pub digest_mismatches: Vec<String>,
    /// How many digests were checked.
    pub digests_checked: usize,
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    Algorithm::Sha256.digest(bytes)
}

impl ImageArchive {
    /// Reads the archive at `path` (any path: for what a plugin wrote, use [`Archives`]).
    pub fn read(path: &Path) -> Result<ImageArchive, ArchiveReadError> {
        ImageArchive::read_with_limits(path, &Limits::default())
    }

    pub fn read_with_limits(
        path: &Path,
        limits: &Limits,
    ) -> Result<ImageArchive, ArchiveReadError> {
        let file = File::open(path).map_err(|source| ArchiveReadError::Open {
            path: path.to_owned(),
            source,
        })?;
        ImageArchive::from_file(file, path, limits)
    }

    /// Reads an archive already opened; `path` names it in messages.
    pub fn from_file(
        file: File,
        path: &Path,
        limits: &Limits,
    ) -> Result<ImageArchive, ArchiveReadError> {
        let scan = scan(&file, path, limits, Pass::First)?;
        Resolver {
            path,
            file: &file,
            limits,
            scan,
        }
        .read()
    }

    /// Labels of the image config (`config.Labels`).
    pub fn labels(&self) -> BTreeMap<String, String> {
        config_labels(&self.config)
    }

    /// Paths in the image's file system after applying every layer (whiteouts honoured),
    /// without a leading `/`.
    pub fn files(&self) -> Result<BTreeSet<String>, String> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            match layer {
                Ok(paths) => layers.push(paths.as_slice()),
                Err(e) => return Err(format!("layer {i}: {e}")),
            }
        }
        Ok(apply_layers(layers))
    }
}

/// Labels of an image config (`config.Labels`).
pub fn config_labels(config: &Value) -> BTreeMap<String, String> {
    config
        .pointer("/config/Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Why a document is not JSON, without quoting it: the kind of error and where.
pub fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "read",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "data",
        serde_json::error::Category::Eof => "unexpected end",
    };
    format!("{kind} error at line {} column {}", e.line(), e.column())
}

/// The image archives of one workspace, each read at most once (captures and assertions often
/// look at the same tarball). Each is opened inside the workspace: a path or symlink that
/// leaves it is refused (see [`crate::workspace`]).
pub struct Archives {
    workspace: PathBuf,
    limits: Limits,
    read: HashMap<String, Result<ImageArchive, ArchiveReadError>>,
}

impl Archives {
    pub fn new(workspace: &Path) -> Archives {
        Archives::with_limits(workspace, Limits::default())
    }

    pub fn with_limits(workspace: &Path, limits: Limits) -> Archives {
        Archives {
            workspace: workspace.to_owned(),
            limits,
            read: HashMap::new(),
        }
    }

    /// The archive at `path`, relative to the workspace.
    pub fn get(&mut self, path: &str) -> &Result<ImageArchive, ArchiveReadError> {
        let (workspace, limits) = (&self.workspace, &self.limits);
        self.read.entry(path.to_owned()).or_insert_with(|| {
            let file = crate::workspace::open_file(workspace, path)?;
            ImageArchive::from_file(file, Path::new(path), limits)
        })
    }
}

/// A path as stored in a tar, without `./`, leading or trailing `/`.
fn normalize(path: &str) -> String {
    let mut path = path;
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    path.trim_start_matches('/')
        .trim_end_matches('/')
        .to_owned()
}

/// A name from an archive (or a link target), for a message: control characters escaped,
/// at most 200 characters.
pub(crate) fn shown(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(200)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// A byte count for a person: `16 MiB`, `1.5 GiB`, `612 bytes`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: &[(u64, &str)] = &[(1 << 40, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    for &(size, unit) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// `blobs/<alg>/<hex>`, `sha256:<hex>` and the legacy `<hex>.tar.gz`, `<hex>.tar`,
/// `<hex>.json`: the digest the name promises, or why it is not an acceptable one. `None`
/// for names that promise nothing.
fn blob_name(name: &str) -> Option<Result<(Algorithm, &str), String>> {
    if let Some(rest) = name.strip_prefix("blobs/") {
        let (algorithm, hex) = rest.split_once('/')?;
        return Some(
            parse_algorithm_hex(algorithm, hex).map_err(|e| format!("{}: {e}", shown(name))),
        );
    }
    if let Some(hex) = name.strip_prefix("sha256:") {
        return Some(
            parse_algorithm_hex("sha256", hex).map_err(|e| format!("{}: {e}", shown(name))),
        );
    }
    [".tar.gz", ".tar", ".json"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .filter(|h| is_hex(h, 64))
        .map(|h| Ok((Algorithm::Sha256, h)))
}

fn parse_algorithm_hex<'a>(algorithm: &str, hex: &'a str) -> Result<(Algorithm, &'a str), String> {
    let parsed = Algorithm::parse(algorithm).ok_or_else(|| {
        format!(
            "digest algorithm {} is not accepted (only sha256 and sha512)",
            shown(algorithm)
        )
    })?;
    if !is_hex(hex, parsed.hex_len()) {
        return Err(format!("not a valid {algorithm} digest"));
    }
    Ok((parsed, hex))
}

/// A digest written as `algorithm:hex`: the algorithm and hex, or why it is not accepted.
fn parse_digest(digest: &str) -> Result<(Algorithm, &str), String> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("{} is not a digest", shown(digest)))?;
    parse_algorithm_hex(algorithm, hex).map_err(|e| format!("{}: {e}", shown(digest)))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether a member's stored name leaves the archive's root (absolute, or `..` too far).
fn escapes_root(name: &str) -> bool {
    name.starts_with('/') || resolve_lexically("", name).is_none()
}

/// `target` taken from directory `base` (both inside the archive), `..` and `.` resolved;
/// `None` when it leaves the root or is absolute.
fn resolve_lexically(base: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|c| !c.is_empty()).collect();
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// The file underneath: records the first I/O error (the harness's problem, not the
/// archive's), so that errors seen further up can be told apart.
struct Source<R> {
    inner: R,
    failed: Option<io::Error>,
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
struct Member {
    size: u64,
    offset: u64,
    /// Its stored bytes' digests (sha256; sha512 too when its name is a sha512 digest).
    digests: Digests,
    /// Kept when it is a small JSON document.
    json: Option<Vec<u8>>,
    /// Streamed as a layer: everything else.
    layer: Option<Result<LayerScan, LayerProblem>>,
}

struct Scan {
    members: BTreeMap<String, Member>,
    /// Symlinks and hard links between members: name → target (resolved, inside the archive)
    /// and the link's offset.
    links: BTreeMap<String, (String, u64)>,
}

enum Pass<'a> {
    /// Everything: hash, keep JSON, stream layers.
    First,
    /// Only these members, as layers, for the sha512 of their decompressed stream.
    DiffSha512(&'a BTreeSet<String>),
}

type Stream<'f> = TarStream<Source<BufReader<&'f File>>>;

/// Streams the archive once.
fn scan(
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
    loop {
        let header = match stream.next_header() {
            Ok(Some(header)) => header,
            Ok(None) => break,
            Err(e) => return Err(stream_failure(&mut stream, path, Some(e))),
        };
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
    let looks_json = head
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

/// What a format-specific reader finds.
struct Parts {
    format: ArchiveFormat,
    tags: Vec<String>,
    /// The config member's name and the algorithm of its digest.
    config: String,
    config_algorithm: Algorithm,
    /// Layer members' names, in order.
    layers: Vec<String>,
}

struct Resolver<'a> {
    path: &'a Path,
    file: &'a File,
    limits: &'a Limits,
    scan: Scan,
}

impl Resolver<'_> {
    fn malformed(&self, message: impl Into<String>) -> ArchiveReadError {
        ArchiveReadError::Malformed {
            path: self.path.to_owned(),
            message: message.into(),
        }
    }

    /// The member a name stands for, links followed.
    fn find(&self, name: &str) -> Option<(&str, &Member)> {
        let mut name = normalize(name);
        for _ in 0..16 {
            if let Some((key, member)) = self.scan.members.get_key_value(&name) {
                return Some((key.as_str(), member));
            }
            name = self.scan.links.get(&name)?.0.clone();
        }
        None
    }

    fn bytes(&self, name: &str, what: &str) -> Result<&[u8], ArchiveReadError> {
        let (_, member) = self
            .find(name)
            .ok_or_else(|| self.malformed(format!("{what} {} is missing", shown(name))))?;
        match &member.json {
            Some(bytes) => Ok(bytes),
            None if member.size > self.limits.json_bytes => Err(ArchiveReadError::Limit {
                path: self.path.to_owned(),
                message: format!(
                    "{what} {} is {} bytes, more than the {} allowed for a JSON document",
                    shown(name),
                    member.size,
                    human(self.limits.json_bytes)
                ),
            }),
            None => Err(self.malformed(format!(
                "{what} {} is not valid json (it does not start with {{ or [)",
                shown(name)
            ))),
        }
    }

    fn json(&self, name: &str, what: &str) -> Result<Value, ArchiveReadError> {
        serde_json::from_slice(self.bytes(name, what)?).map_err(|e| {
            self.malformed(format!(
                "{what} {} is not valid json: {}",
                shown(name),
                json_error(&e)
            ))
        })
    }

    fn blob_path(&self, digest: &str, what: &str) -> Result<String, ArchiveReadError> {
        let (algorithm, hex) =
            parse_digest(digest).map_err(|e| self.malformed(format!("{what} {e}")))?;
        Ok(format!("blobs/{}/{hex}", algorithm.name()))
    }

    fn read(self) -> Result<ImageArchive, ArchiveReadError> {
        let has_oci_layout = self.find("oci-layout").is_some() && self.find("index.json").is_some();
        let parts = if self.find("manifest.json").is_some() {
            self.docker_archive()?
        } else if has_oci_layout {
            self.oci_layout()?
        } else {
            return Err(ArchiveReadError::NotAnImage {
                path: self.path.to_owned(),
            });
        };
        let config_bytes = self.bytes(&parts.config, "config")?;
        let config: Value = serde_json::from_slice(config_bytes).map_err(|e| {
            self.malformed(format!(
                "image config is not valid json: {}",
                json_error(&e)
            ))
        })?;
        let config_digest = parts.config_algorithm.digest(config_bytes);

        let mut mismatches = Vec::new();
        let mut checked = 0;
        // Every member whose name is a digest must hash to it.
        for (name, member) in &self.scan.members {
            match blob_name(name) {
                None => {}
                Some(Err(finding)) => mismatches.push(finding),
                Some(Ok((algorithm, hex))) => {
                    checked += 1;
                    let expected = format!("{}:{hex}", algorithm.name());
                    let actual = member.digests.get(algorithm).unwrap_or_default();
                    if actual != expected {
                        mismatches.push(format!("{}: content hashes to {actual}", shown(name)));
                    }
                }
            }
        }
        // Every layer, uncompressed, must hash to its diff_id.
        let diff_ids: Vec<String> = config
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if diff_ids.len() != parts.layers.len() {
            mismatches.push(format!(
                "the config lists {} diff_ids but the archive has {} layers",
                diff_ids.len(),
                parts.layers.len()
            ));
        }
        let mut layers = Vec::with_capacity(parts.layers.len());
        // Layers whose sha512 diff_id needs a second pass: (index, member, expected).
        let mut later: Vec<(usize, String, String)> = Vec::new();
        for (i, name) in parts.layers.iter().enumerate() {
            let (member_name, member) = self
                .find(name)
                .ok_or_else(|| self.malformed(format!("layer {} is missing", shown(name))))?;
            let scan = match &member.layer {
                Some(Ok(scan)) => scan,
                Some(Err(problem @ LayerProblem::Bomb { .. })) => {
                    return Err(ArchiveReadError::Limit {
                        path: self.path.to_owned(),
                        message: problem.describe(name),
                    })
                }
                Some(Err(problem)) => {
                    let why = problem.describe(name);
                    mismatches.push(format!("layer {i}: {why}"));
                    layers.push(Err(why));
                    continue;
                }
                None => {
                    let why = format!("layer {} is a JSON document, not a layer", shown(name));
                    mismatches.push(format!("layer {i}: {why}"));
                    layers.push(Err(why));
                    continue;
                }
            };
            layers.push(scan.paths.clone());
            let Some(expected) = diff_ids.get(i) else {
                continue;
            };
            let algorithm = match parse_digest(expected) {
                Ok((algorithm, _)) => algorithm,
                Err(e) => {
                    mismatches.push(format!("config diff_id {i}: {e}"));
                    continue;
                }
            };
            let actual = if scan.compression == Compression::None {
                member.digests.get(algorithm)
            } else {
                scan.diff.get(algorithm)
            };
            match actual {
                Some(actual) => {
                    checked += 1;
                    if actual != expected {
                        mismatches.push(format!(
                            "layer {i} ({}): uncompressed content hashes to {actual}, config \
                             diff_id is {}",
                            shown(name),
                            shown(expected)
                        ));
                    }
                }
                None => later.push((i, member_name.to_owned(), expected.clone())),
            }
        }
        if !later.is_empty() {
            let wanted: BTreeSet<String> = later.iter().map(|(_, m, _)| m.clone()).collect();
            let second = scan(self.file, self.path, self.limits, Pass::DiffSha512(&wanted))?;
            for (i, member, expected) in later {
                let actual = second
                    .members
                    .get(&member)
                    .and_then(|m| m.layer.as_ref())
                    .and_then(|l| l.as_ref().ok())
                    .and_then(|l| l.diff.sha512.clone());
                let Some(actual) = actual else {
                    mismatches.push(format!(
                        "layer {i} ({}): cannot be read again",
                        shown(&member)
                    ));
                    continue;
                };
                checked += 1;
                if actual != expected {
                    mismatches.push(format!(
                        "layer {i} ({}): uncompressed content hashes to {actual}, config diff_id \
                         is {}",
                        shown(&member),
                        shown(&expected)
                    ));
                }
            }
        }
        if checked == 0 {
            mismatches.push(
                "0 digests verified: no member is named by a digest and no layer has a diff_id"
                    .to_owned(),
            );
        }
        Ok(ImageArchive {
            format: parts.format,
            has_oci_layout,
            repo_tags: parts.tags,
            config_digest,
            config,
            layers,
            digest_mismatches: mismatches,
            digests_checked: checked,
        })
    }

    fn docker_archive(&self) -> Result<Parts, ArchiveReadError> {
        let manifest = self.json("manifest.json", "manifest")?;
        let first = manifest
            .as_array()
            .and_then(|a| a.first())
            .ok_or_else(|| self.malformed("manifest.json holds no image"))?;
        let config = first["Config"]
            .as_str()
            .ok_or_else(|| self.malformed("manifest.json: Config is missing"))?;
        let config = normalize(config);
        if self.find(&config).is_none() {
            return Err(self.malformed(format!(
                "config {} named by manifest.json is missing",
                shown(&config)
            )));
        }
        let config_algorithm = match blob_name(&config) {
            Some(Ok((algorithm, _))) => algorithm,
            _ => Algorithm::Sha256,
        };
        let tags = first["RepoTags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let layers = first["Layers"]
            .as_array()
            .map(|a| a.iter().filter_map(|l| l.as_str().map(normalize)).collect())
            .unwrap_or_default();
        Ok(Parts {
            format: ArchiveFormat::DockerArchive,
            tags,
            config,
            config_algorithm,
            layers,
        })
    }

    fn oci_layout(&self) -> Result<Parts, ArchiveReadError> {
        let index = self.json("index.json", "index")?;
        let descriptors = index["manifests"].as_array().cloned().unwrap_or_default();
        let tags = descriptors
            .iter()
            .filter_map(|d| {
                let annotations = &d["annotations"];
                annotations["io.containerd.image.name"]
                    .as_str()
                    .or_else(|| annotations["org.opencontainers.image.ref.name"].as_str())
                    .map(str::to_owned)
            })
            .collect();
        let mut descriptor = descriptors
            .first()
            .cloned()
            .ok_or_else(|| self.malformed("index.json lists no manifest"))?;
        // Follow nested indexes to the first image manifest.
        for _ in 0..4 {
            let media_type = descriptor["mediaType"].as_str().unwrap_or_default();
            if !OCI_INDEX_TYPES.contains(&media_type) {
                break;
            }
            let digest = descriptor["digest"].as_str().unwrap_or_default();
            let nested = self.json(&self.blob_path(digest, "nested index")?, "nested index")?;
            descriptor = nested["manifests"][0].clone();
        }
        let manifest_digest = descriptor["digest"]
            .as_str()
            .ok_or_else(|| self.malformed("index.json: descriptor without digest"))?;
        let manifest = self.json(
            &self.blob_path(manifest_digest, "image manifest")?,
            "image manifest",
        )?;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| self.malformed("image manifest has no config digest"))?;
        let config = self.blob_path(config_digest, "config")?;
        if self.find(&config).is_none() {
            return Err(self.malformed(format!("config blob {} is missing", shown(config_digest))));
        }
        let config_algorithm = parse_digest(config_digest)
            .map(|(a, _)| a)
            .unwrap_or(Algorithm::Sha256);
        let mut layers = Vec::new();
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            let digest = layer["digest"].as_str().unwrap_or_default();
            layers.push(self.blob_path(digest, "layer")?);
        }
        Ok(Parts {
            format: ArchiveFormat::OciLayout,
            tags,
            config,
            config_algorithm,
            layers,
        })
    }
}
