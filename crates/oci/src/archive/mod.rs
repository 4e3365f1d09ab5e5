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

mod contents;
mod entries;
mod layer;
mod resolve;
mod scan;
mod search;
mod tarstream;
#[cfg(test)]
mod test_tar;
mod walk;

use crate::human::{human, shown};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

pub use contents::{
    apply_layer_files, image_path, read_layer_files, FileContent, LayerFiles, MAX_FILE_BYTES,
};
pub use entries::{read_layer_entries, Entry, EntryKind, Hidden, LayerEntries, ENTRY_OVERHEAD};
pub use layer::{apply_layers, scan_layer, Algorithm, Compression, LayerProblem, LayerScan, Want};
use resolve::Resolver;
use scan::{scan, Pass};
pub use search::{
    search_archive, search_json, search_layer, ChunkSearch, Finding, Needle, Needles, Searched,
};

use crate::errors::ArchiveReadError;
use scenario::ArchiveFormat;

pub(crate) use crate::human::{GIB, KIB, MIB};

/// What reading an archive may cost. Going over a limit is a Fail that names it.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Members of the archive (files, directories, links): 100,000.
    pub members: u64,
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
    /// The file names the layers list (kept for `files`), together, each counted with 32 bytes
    /// of bookkeeping: 128 MiB (a million names of 100 bytes).
    pub name_bytes: u64,
    /// The largest zstd window a layer may ask for, as a power of two: 27 (128 MiB, zstd's own
    /// default for decoders).
    pub zstd_window_log_max: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            members: 100_000,
            json_bytes: 16 * MIB,
            json_total_bytes: 64 * MIB,
            layer_bytes: 64 * GIB,
            layer_ratio: 1000,
            layer_ratio_floor: MIB,
            name_bytes: 128 * MIB,
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

/// What an image archive holds, read and verified: every image in it.
#[derive(Debug)]
pub struct ImageArchive {
    pub format: ArchiveFormat,
    /// Docker ≥ 25 `docker save` writes an OCI layout next to manifest.json.
    pub has_oci_layout: bool,
    /// Every image the archive holds, in its order, never none: each entry of manifest.json,
    /// or each image manifest index.json lists (through nested indexes; BuildKit's
    /// attestation manifests are not images), once each.
    pub images: Vec<ArchivedImage>,
    /// Blobs (and layers) whose content does not hash to their name (or diff_id), digests in
    /// an algorithm that is not accepted, and "nothing verified".
    pub digest_mismatches: Vec<String>,
    /// How many digests were checked.
    pub digests_checked: usize,
}

/// One image of an archive.
#[derive(Debug)]
pub struct ArchivedImage {
    /// The names the archive gives it (`RepoTags`; the index's image name annotations).
    pub tags: Vec<String>,
    /// Its image manifest's digest, in an OCI layout (a docker-archive keeps no manifest).
    pub manifest_digest: Option<String>,
    pub config_digest: String,
    /// Shared by the images whose entries name the same config.
    pub config: Arc<Value>,
    /// The paths each layer lists, in order, or why they cannot be listed.
    layers: Vec<Result<Arc<Vec<String>>, String>>,
}

impl ArchivedImage {
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

    /// The image as messages name it: its tags, else its manifest digest, else its config
    /// digest.
    pub fn describe(&self) -> String {
        resolve::describe(
            &self.tags,
            self.manifest_digest.as_deref(),
            &self.config_digest,
        )
    }
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

    /// The first image: the one a capture of the archive's config digest takes.
    pub fn first(&self) -> &ArchivedImage {
        &self.images[0]
    }

    /// Every tag of every image, in order.
    pub fn tags(&self) -> impl Iterator<Item = &String> {
        self.images.iter().flat_map(|image| &image.tags)
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

    /// Searches the file at `path`, relative to the workspace, for the needles: every member,
    /// layers decompressed under the same limits (see [`search_archive`]). Opened inside the
    /// workspace like [`Archives::get`]; not kept.
    pub fn search(&self, path: &str, needles: &Needles) -> Result<Searched, ArchiveReadError> {
        let file = crate::workspace::open_file(&self.workspace, path)?;
        search_archive(file, Path::new(path), &self.limits, needles)
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
