//! Reading image archives the way a user of the tarball would: `docker load`-style archives
//! (`manifest.json`, with or without the OCI layout Docker ≥ 25 adds), OCI image layouts, and the
//! legacy go-containerregistry tarballs kaniko writes (`sha256:<config>`, `<digest>.tar.gz`).
//!
//! Every blob whose name is a digest is hashed and compared with its name, and every layer's
//! uncompressed digest is compared with the config's `rootfs.diff_ids`. Mismatches are findings
//! (the plugin wrote a corrupt archive), not read errors.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::errors::ArchiveReadError;
use crate::scenario::ArchiveFormat;

const OCI_INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// What an image archive holds, read and verified.
#[derive(Debug)]
pub struct ImageArchive {
    pub format: ArchiveFormat,
    /// Docker ≥ 25 `docker save` writes an OCI layout next to manifest.json.
    pub has_oci_layout: bool,
    pub repo_tags: Vec<String>,
    pub config_digest: String,
    pub config: Value,
    /// Uncompressed layer tars, in order.
    layers: Vec<Vec<u8>>,
    /// Blobs (and layers) whose content does not hash to their name (or diff_id).
    pub digest_mismatches: Vec<String>,
    /// How many digests were checked.
    pub digests_checked: usize,
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl ImageArchive {
    pub fn read(path: &Path) -> Result<ImageArchive, ArchiveReadError> {
        let file = std::fs::File::open(path).map_err(|source| ArchiveReadError::Open {
            path: path.to_owned(),
            source,
        })?;
        let mut entries: HashMap<String, Vec<u8>> = HashMap::new();
        let tar_err = |e: std::io::Error| ArchiveReadError::Tar {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let mut archive = tar::Archive::new(file);
        for entry in archive.entries().map_err(tar_err)? {
            let mut entry = entry.map_err(tar_err)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = normalize(&entry.path().map_err(tar_err)?.to_string_lossy());
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(tar_err)?;
            entries.insert(name, bytes);
        }
        Reader {
            path: path.to_owned(),
            entries,
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
        layer_files(&self.layers)
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

/// Paths in the file system the uncompressed layer tars build, in order (whiteouts honoured),
/// without a leading `/`.
pub fn layer_files(layers: &[Vec<u8>]) -> Result<BTreeSet<String>, String> {
    let mut files = BTreeSet::new();
    for (i, layer) in layers.iter().enumerate() {
        let mut archive = tar::Archive::new(layer.as_slice());
        let entries = archive.entries().map_err(|e| format!("layer {i}: {e}"))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("layer {i}: {e}"))?;
            let path = normalize(
                &entry
                    .path()
                    .map_err(|e| format!("layer {i}: {e}"))?
                    .to_string_lossy(),
            );
            let (dir, base) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            if base == ".wh..wh..opq" {
                let prefix = format!("{dir}/");
                files.retain(|f: &String| !f.starts_with(&prefix));
            } else if let Some(hidden) = base.strip_prefix(".wh.") {
                let target = if dir.is_empty() {
                    hidden.to_owned()
                } else {
                    format!("{dir}/{hidden}")
                };
                let prefix = format!("{target}/");
                files.retain(|f: &String| f != &target && !f.starts_with(&prefix));
            } else if !path.is_empty() {
                files.insert(path);
            }
        }
    }
    Ok(files)
}

/// The image archives of one workspace, each read at most once (captures and assertions often
/// look at the same tarball).
pub struct Archives {
    workspace: PathBuf,
    read: HashMap<String, Result<ImageArchive, ArchiveReadError>>,
}

impl Archives {
    pub fn new(workspace: &Path) -> Archives {
        Archives {
            workspace: workspace.to_owned(),
            read: HashMap::new(),
        }
    }

    /// The archive at `path`, relative to the workspace.
    pub fn get(&mut self, path: &str) -> &Result<ImageArchive, ArchiveReadError> {
        let workspace = &self.workspace;
        self.read
            .entry(path.to_owned())
            .or_insert_with(|| ImageArchive::read(&workspace.join(path)))
    }
}

fn normalize(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_owned()
}

/// What a format-specific reader finds: format, tags, config bytes, layer blob names.
type Parts = (ArchiveFormat, Vec<String>, Vec<u8>, Vec<String>);

struct Reader {
    path: PathBuf,
    entries: HashMap<String, Vec<u8>>,
}

impl Reader {
    fn malformed(&self, message: impl Into<String>) -> ArchiveReadError {
        ArchiveReadError::Malformed {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn json(&self, name: &str) -> Result<Value, ArchiveReadError> {
        let bytes = self
            .entries
            .get(name)
            .ok_or_else(|| self.malformed(format!("{name} is missing")))?;
        serde_json::from_slice(bytes)
            .map_err(|e| self.malformed(format!("{name} is not valid json: {e}")))
    }

    fn blob_path(digest: &str) -> String {
        format!("blobs/{}", digest.replacen(':', "/", 1))
    }

    fn read(self) -> Result<ImageArchive, ArchiveReadError> {
        let has_oci_layout =
            self.entries.contains_key("oci-layout") && self.entries.contains_key("index.json");
        let (format, repo_tags, config_bytes, layer_blobs) =
            if self.entries.contains_key("manifest.json") {
                self.docker_archive()?
            } else if has_oci_layout {
                self.oci_layout()?
            } else {
                return Err(ArchiveReadError::NotAnImage {
                    path: self.path.clone(),
                });
            };
        let config: Value = serde_json::from_slice(&config_bytes)
            .map_err(|e| self.malformed(format!("image config is not valid json: {e}")))?;

        let mut mismatches = Vec::new();
        let mut checked = 0;
        // Every entry whose name is a digest must hash to it.
        let mut names: Vec<&String> = self.entries.keys().collect();
        names.sort();
        for name in names {
            let expected = if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                Some(hex)
            } else if let Some(hex) = name.strip_prefix("sha256:") {
                Some(hex)
            } else {
                // Legacy layouts name blobs by digest: `<hex>.tar.gz` (go-containerregistry),
                // `<hex>.tar` and `<hex>.json` (skopeo/buildah docker-archive).
                [".tar.gz", ".tar", ".json"]
                    .iter()
                    .find_map(|ext| name.strip_suffix(ext))
                    .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
            };
            if let Some(hex) = expected {
                checked += 1;
                let actual = sha256_digest(&self.entries[name]);
                if actual != format!("sha256:{hex}") {
                    mismatches.push(format!("{name}: content hashes to {actual}"));
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
        if diff_ids.len() != layer_blobs.len() {
            mismatches.push(format!(
                "the config lists {} diff_ids but the archive has {} layers",
                diff_ids.len(),
                layer_blobs.len()
            ));
        }
        let mut layers = Vec::with_capacity(layer_blobs.len());
        for (i, name) in layer_blobs.iter().enumerate() {
            let blob = self
                .entries
                .get(name)
                .ok_or_else(|| self.malformed(format!("layer {name} is missing")))?;
            let plain =
                decompress(blob).map_err(|e| self.malformed(format!("layer {name}: {e}")))?;
            if let Some(expected) = diff_ids.get(i) {
                checked += 1;
                let actual = sha256_digest(&plain);
                if &actual != expected {
                    mismatches.push(format!("layer {i} ({name}): uncompressed content hashes to {actual}, config diff_id is {expected}"));
                }
            }
            layers.push(plain);
        }
        Ok(ImageArchive {
            format,
            has_oci_layout,
            repo_tags,
            config_digest: sha256_digest(&config_bytes),
            config,
            layers,
            digest_mismatches: mismatches,
            digests_checked: checked,
        })
    }

    fn docker_archive(&self) -> Result<Parts, ArchiveReadError> {
        let manifest = self.json("manifest.json")?;
        let first = manifest
            .as_array()
            .and_then(|a| a.first())
            .ok_or_else(|| self.malformed("manifest.json holds no image"))?;
        let config_name = first["Config"]
            .as_str()
            .ok_or_else(|| self.malformed("manifest.json: Config is missing"))?;
        let config = self
            .entries
            .get(&normalize(config_name))
            .ok_or_else(|| {
                self.malformed(format!(
                    "config {config_name} named by manifest.json is missing"
                ))
            })?
            .clone();
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
        Ok((ArchiveFormat::DockerArchive, tags, config, layers))
    }

    fn oci_layout(&self) -> Result<Parts, ArchiveReadError> {
        let index = self.json("index.json")?;
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
            let nested = self.json(&Self::blob_path(
                descriptor["digest"].as_str().unwrap_or_default(),
            ))?;
            descriptor = nested["manifests"][0].clone();
        }
        let manifest =
            self.json(&Self::blob_path(descriptor["digest"].as_str().ok_or_else(
                || self.malformed("index.json: descriptor without digest"),
            )?))?;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| self.malformed("image manifest has no config digest"))?;
        let config = self
            .entries
            .get(&Self::blob_path(config_digest))
            .ok_or_else(|| self.malformed(format!("config blob {config_digest} is missing")))?
            .clone();
        let layers = manifest["layers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l["digest"].as_str().map(Self::blob_path))
                    .collect()
            })
            .unwrap_or_default();
        Ok((ArchiveFormat::OciLayout, tags, config, layers))
    }
}

/// Layers may be stored plain, gzip- or zstd-compressed.
pub fn decompress(blob: &[u8]) -> std::io::Result<Vec<u8>> {
    if blob.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(blob).read_to_end(&mut out)?;
        Ok(out)
    } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(std::io::Error::other(
            "zstd-compressed layers are not supported yet",
        ))
    } else {
        Ok(blob.to_vec())
    }
}
