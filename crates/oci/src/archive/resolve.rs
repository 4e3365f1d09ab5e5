//! From the streamed members to the images: the format's metadata followed to each image's
//! config and layers, every digest compared.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::scan::{scan, Member, Pass, Scan};
use super::{
    blob_name, human, json_error, normalize, parse_digest, shown, Algorithm, ArchivedImage,
    Compression, ImageArchive, LayerProblem, Limits,
};
use crate::errors::ArchiveReadError;
use scenario::ArchiveFormat;

const OCI_INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// How deep indexes may nest below index.json.
const MAX_INDEX_DEPTH: usize = 4;

/// What a format-specific reader finds about one image.
struct Parts {
    tags: Vec<String>,
    /// The image manifest's digest (OCI layouts).
    manifest_digest: Option<String>,
    /// The config member's name and the algorithm of its digest.
    config: String,
    config_algorithm: Algorithm,
    /// Layer members' names, in order.
    layers: Vec<String>,
}

/// A layer whose sha512 diff_id needs a second pass: who asks (for the message), its index,
/// member and expected digest.
struct Later {
    prefix: String,
    index: usize,
    member: String,
    expected: String,
}

/// What checking the images' digests builds up.
#[derive(Default)]
struct Verification {
    mismatches: Vec<String>,
    checked: usize,
    /// (layer member, diff_id) pairs already compared: a layer several images share counts
    /// once after the first image.
    compared: BTreeSet<(String, String)>,
    later: Vec<Later>,
    /// Configs parsed, by member name: images that share one share it.
    configs: HashMap<String, (Arc<Value>, String)>,
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
        let (format, parts) = if self.find("manifest.json").is_some() {
            (ArchiveFormat::DockerArchive, self.docker_archive()?)
        } else if has_oci_layout {
            (ArchiveFormat::OciLayout, self.oci_layout()?)
        } else {
            return Err(ArchiveReadError::NotAnImage {
                path: self.path.to_owned(),
            });
        };

        let mut verification = Verification::default();
        // Every member whose name is a digest must hash to it.
        for (name, member) in &self.scan.members {
            match blob_name(name) {
                None => {}
                Some(Err(finding)) => verification.mismatches.push(finding),
                Some(Ok((algorithm, hex))) => {
                    verification.checked += 1;
                    let expected = format!("{}:{hex}", algorithm.name());
                    let actual = member.digests.get(algorithm).unwrap_or_default();
                    if actual != expected {
                        verification
                            .mismatches
                            .push(format!("{}: content hashes to {actual}", shown(name)));
                    }
                }
            }
        }
        let several = parts.len() > 1;
        let mut images = Vec::with_capacity(parts.len());
        for (n, parts) in parts.into_iter().enumerate() {
            // With several images, each finding says whose it is.
            let prefix = if several {
                let name = describe(&parts.tags, parts.manifest_digest.as_deref(), &parts.config);
                format!("image {} ({name}): ", n + 1)
            } else {
                String::new()
            };
            images.push(self.image(parts, &prefix, n == 0, &mut verification)?);
        }
        let Verification {
            mut mismatches,
            mut checked,
            later,
            ..
        } = verification;
        if !later.is_empty() {
            let wanted: BTreeSet<String> = later.iter().map(|l| l.member.clone()).collect();
            let second = scan(self.file, self.path, self.limits, Pass::DiffSha512(&wanted))?;
            for Later {
                prefix,
                index: i,
                member,
                expected,
            } in later
            {
                let actual = second
                    .members
                    .get(&member)
                    .and_then(|m| m.layer.as_ref())
                    .and_then(|l| l.as_ref().ok())
                    .and_then(|l| l.diff.sha512.clone());
                let Some(actual) = actual else {
                    mismatches.push(format!(
                        "{prefix}layer {i} ({}): cannot be read again",
                        shown(&member)
                    ));
                    continue;
                };
                checked += 1;
                if actual != expected {
                    mismatches.push(format!(
                        "{prefix}layer {i} ({}): uncompressed content hashes to {actual}, config \
                         diff_id is {}",
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
            format,
            has_oci_layout,
            images,
            digest_mismatches: mismatches,
            digests_checked: checked,
        })
    }

    /// One image: its config read (once per config member), its layers' listings taken from
    /// the scan, each layer compared with its diff_id.
    fn image(
        &self,
        parts: Parts,
        prefix: &str,
        first: bool,
        v: &mut Verification,
    ) -> Result<ArchivedImage, ArchiveReadError> {
        let (config, config_digest) = match v.configs.get(&parts.config) {
            Some((config, digest)) => (config.clone(), digest.clone()),
            None => {
                let config_bytes = self.bytes(&parts.config, "config")?;
                let config: Value = serde_json::from_slice(config_bytes).map_err(|e| {
                    self.malformed(format!(
                        "image config is not valid json: {}",
                        json_error(&e)
                    ))
                })?;
                let entry = (
                    Arc::new(config),
                    parts.config_algorithm.digest(config_bytes),
                );
                v.configs.insert(parts.config.clone(), entry.clone());
                entry
            }
        };
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
            v.mismatches.push(format!(
                "{prefix}the config lists {} diff_ids but the archive has {} layers",
                diff_ids.len(),
                parts.layers.len()
            ));
        }
        let mut layers = Vec::with_capacity(parts.layers.len());
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
                    v.mismatches.push(format!("{prefix}layer {i}: {why}"));
                    layers.push(Err(why));
                    continue;
                }
                None => {
                    let why = format!("layer {} is a JSON document, not a layer", shown(name));
                    v.mismatches.push(format!("{prefix}layer {i}: {why}"));
                    layers.push(Err(why));
                    continue;
                }
            };
            layers.push(scan.paths.clone());
            let Some(expected) = diff_ids.get(i) else {
                continue;
            };
            // A layer another image already compared with this diff_id is not counted again
            // (the first image counts each of its layers, as a single-image archive does).
            let new = v
                .compared
                .insert((member_name.to_owned(), expected.clone()));
            if !new && !first {
                continue;
            }
            let algorithm = match parse_digest(expected) {
                Ok((algorithm, _)) => algorithm,
                Err(e) => {
                    v.mismatches
                        .push(format!("{prefix}config diff_id {i}: {e}"));
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
                    v.checked += 1;
                    if actual != expected {
                        v.mismatches.push(format!(
                            "{prefix}layer {i} ({}): uncompressed content hashes to {actual}, \
                             config diff_id is {}",
                            shown(name),
                            shown(expected)
                        ));
                    }
                }
                None => v.later.push(Later {
                    prefix: prefix.to_owned(),
                    index: i,
                    member: member_name.to_owned(),
                    expected: expected.clone(),
                }),
            }
        }
        Ok(ArchivedImage {
            tags: parts.tags,
            manifest_digest: parts.manifest_digest,
            config_digest,
            config,
            layers,
        })
    }

    /// Every entry of manifest.json, in order.
    fn docker_archive(&self) -> Result<Vec<Parts>, ArchiveReadError> {
        let manifest = self.json("manifest.json", "manifest")?;
        let entries = manifest
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| self.malformed("manifest.json holds no image"))?;
        let mut images = Vec::with_capacity(entries.len());
        for entry in entries {
            let config = entry["Config"]
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
            let tags = entry["RepoTags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let layers = entry["Layers"]
                .as_array()
                .map(|a| a.iter().filter_map(|l| l.as_str().map(normalize)).collect())
                .unwrap_or_default();
            images.push(Parts {
                tags,
                manifest_digest: None,
                config,
                config_algorithm,
                layers,
            });
        }
        Ok(images)
    }

    /// Every image manifest index.json lists, directly or through nested indexes (attestation
    /// manifests aside), once each, with the names of the index.json entries it is reached
    /// from.
    fn oci_layout(&self) -> Result<Vec<Parts>, ArchiveReadError> {
        let index = self.json("index.json", "index")?;
        let descriptors = index["manifests"].as_array().cloned().unwrap_or_default();
        if descriptors.is_empty() {
            return Err(self.malformed("index.json lists no manifest"));
        }
        // Image manifest digests in the order first reached, with their names.
        let mut found: Vec<(String, Vec<String>)> = Vec::new();
        let mut position: BTreeMap<String, usize> = BTreeMap::new();
        // Descriptors followed, nested ones included: bounded like the archive's members.
        let mut visited = 0u64;
        for descriptor in &descriptors {
            let annotations = &descriptor["annotations"];
            let name = annotations["io.containerd.image.name"]
                .as_str()
                .or_else(|| annotations["org.opencontainers.image.ref.name"].as_str());
            let mut manifests = Vec::new();
            self.image_manifests(descriptor, 0, &mut visited, &mut manifests)?;
            for digest in manifests {
                let at = *position.entry(digest.clone()).or_insert_with(|| {
                    found.push((digest, Vec::new()));
                    found.len() - 1
                });
                if let Some(name) = name {
                    if !found[at].1.iter().any(|n| n == name) {
                        found[at].1.push(name.to_owned());
                    }
                }
            }
        }
        if found.is_empty() {
            return Err(self.malformed("index.json lists no image manifest"));
        }
        found
            .into_iter()
            .map(|(digest, tags)| self.oci_image(&digest, tags))
            .collect()
    }

    /// The image manifests a descriptor stands for: itself, or those of the index it names.
    fn image_manifests(
        &self,
        descriptor: &Value,
        depth: usize,
        visited: &mut u64,
        out: &mut Vec<String>,
    ) -> Result<(), ArchiveReadError> {
        *visited += 1;
        if *visited > self.limits.members {
            return Err(ArchiveReadError::Limit {
                path: self.path.to_owned(),
                message: format!(
                    "index.json and its nested indexes list more than {} manifests",
                    self.limits.members
                ),
            });
        }
        let digest = descriptor["digest"]
            .as_str()
            .ok_or_else(|| self.malformed("index.json: descriptor without digest"))?;
        let media_type = descriptor["mediaType"].as_str().unwrap_or_default();
        if !OCI_INDEX_TYPES.contains(&media_type) {
            if !out.iter().any(|d| d == digest) {
                out.push(digest.to_owned());
            }
            return Ok(());
        }
        if depth >= MAX_INDEX_DEPTH {
            return Err(self.malformed(format!(
                "indexes nest more than {MAX_INDEX_DEPTH} deep below index.json"
            )));
        }
        let nested = self.json(&self.blob_path(digest, "nested index")?, "nested index")?;
        let children = nested["manifests"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if children.is_empty() {
            return Err(self.malformed(format!("nested index {} lists no manifest", shown(digest))));
        }
        for child in children {
            // BuildKit's provenance and SBOM attestations describe an image; they are not one.
            if child["annotations"]["vnd.docker.reference.type"].as_str()
                == Some("attestation-manifest")
            {
                continue;
            }
            self.image_manifests(child, depth + 1, visited, out)?;
        }
        Ok(())
    }

    fn oci_image(
        &self,
        manifest_digest: &str,
        tags: Vec<String>,
    ) -> Result<Parts, ArchiveReadError> {
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
            tags,
            manifest_digest: Some(manifest_digest.to_owned()),
            config,
            config_algorithm,
            layers,
        })
    }
}

/// An image as messages name it: its tags, else its manifest digest (OCI layouts), else its
/// config.
pub(super) fn describe(tags: &[String], manifest_digest: Option<&str>, config: &str) -> String {
    match (tags, manifest_digest) {
        ([], Some(digest)) => format!("untagged, manifest {}", shown(digest)),
        ([], None) => format!("untagged, config {}", shown(config)),
        (tags, _) => tags.iter().map(|t| shown(t)).collect::<Vec<_>>().join(", "),
    }
}
