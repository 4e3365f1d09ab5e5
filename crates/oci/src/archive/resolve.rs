//! From the streamed members to the image: the format's metadata followed to the config and
//! the layers, every digest compared.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use serde_json::Value;

use super::scan::{scan, Member, Pass, Scan};
use super::{
    blob_name, human, json_error, normalize, parse_digest, shown, Algorithm, Compression,
    ImageArchive, LayerProblem, Limits,
};
use crate::errors::ArchiveReadError;
use scenario::ArchiveFormat;

const OCI_INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

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

pub(super) struct Resolver<'a> {
    pub(super) path: &'a Path,
    pub(super) file: &'a File,
    pub(super) limits: &'a Limits,
    pub(super) scan: Scan,
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

    pub(super) fn read(self) -> Result<ImageArchive, ArchiveReadError> {
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
