//! Builders for small image archives, written the way the tools write them, for unit tests;
//! `hostile` builds the hostile ones; `docker` serves the tests that run the harness against
//! the Docker daemon.
#![allow(dead_code)]

pub mod docker;
pub mod hostile;

use std::io::Write;

use oci::archive::sha256_digest;
use serde_json::json;
use sha2::Digest;

/// A layer tar holding these files.
pub fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, *contents).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

pub fn sha512_digest(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(sha2::Sha512::digest(bytes)))
}

/// `blobs/<algorithm>/<hex>` for a digest.
pub fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

pub struct Image {
    pub layers: Vec<Vec<u8>>,
    pub labels: serde_json::Value,
    pub tags: Vec<String>,
    pub gzip_layers: bool,
    pub zstd_layers: bool,
    /// Every digest (blobs, diff_ids, descriptors) in sha512.
    pub sha512: bool,
}

impl Image {
    pub fn new(layers: Vec<Vec<u8>>) -> Image {
        Image {
            layers,
            labels: json!({"org.conformance.fixture": "app"}),
            tags: vec!["registry:5000/conformance/app:1.0".into()],
            gzip_layers: false,
            zstd_layers: false,
            sha512: false,
        }
    }

    pub fn digest(&self, bytes: &[u8]) -> String {
        if self.sha512 {
            sha512_digest(bytes)
        } else {
            sha256_digest(bytes)
        }
    }

    fn layer_media_type(&self) -> &'static str {
        if self.zstd_layers {
            "application/vnd.oci.image.layer.v1.tar+zstd"
        } else if self.gzip_layers {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        }
    }

    pub fn config(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self.layers.iter().map(|l| self.digest(l)).collect();
        serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": self.labels},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap()
    }

    fn stored_layers(&self) -> Vec<Vec<u8>> {
        self.layers
            .iter()
            .map(|l| {
                if self.zstd_layers {
                    zstd(l)
                } else if self.gzip_layers {
                    gzip(l)
                } else {
                    l.clone()
                }
            })
            .collect()
    }

    /// `docker save` of Docker ≥ 25: an OCI layout plus manifest.json.
    pub fn docker_save(&self) -> Vec<(String, Vec<u8>)> {
        let config = self.config();
        let config_name = blob_path(&self.digest(&config));
        let mut entries = vec![(config_name.clone(), config.clone())];
        let mut layer_names = Vec::new();
        for stored in self.stored_layers() {
            let name = blob_path(&self.digest(&stored));
            layer_names.push(name.clone());
            entries.push((name, stored));
        }
        let manifest =
            json!([{"Config": config_name, "RepoTags": self.tags, "Layers": layer_names}]);
        entries.push((
            "manifest.json".into(),
            serde_json::to_vec(&manifest).unwrap(),
        ));
        entries.extend(self.oci_index_entries(&config));
        entries.push((
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ));
        entries
    }

    /// An OCI image layout (no manifest.json).
    pub fn oci_layout(&self) -> Vec<(String, Vec<u8>)> {
        let config = self.config();
        let mut entries = vec![(blob_path(&self.digest(&config)), config.clone())];
        for stored in self.stored_layers() {
            entries.push((blob_path(&self.digest(&stored)), stored));
        }
        entries.extend(self.oci_index_entries(&config));
        entries.push((
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ));
        entries
    }

    fn oci_index_entries(&self, config: &[u8]) -> Vec<(String, Vec<u8>)> {
        let layers: Vec<serde_json::Value> = self
            .stored_layers()
            .iter()
            .map(|l| json!({"mediaType": self.layer_media_type(), "digest": self.digest(l), "size": l.len()}))
            .collect();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.digest(config), "size": config.len()},
            "layers": layers,
        }))
        .unwrap();
        let manifest_digest = self.digest(&manifest);
        let annotations: serde_json::Value = match self.tags.first() {
            Some(tag) => json!({"io.containerd.image.name": tag}),
            None => json!({}),
        };
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                           "size": manifest.len(), "annotations": annotations}],
        });
        vec![
            (blob_path(&manifest_digest), manifest),
            ("index.json".into(), serde_json::to_vec(&index).unwrap()),
        ]
    }
}

/// Several images in one archive, as `docker save IMAGE…` writes them: one manifest.json entry
/// per image (an untagged image's `RepoTags` is null), blobs shared by name; no OCI layout.
pub fn docker_archive_of(images: &[&Image]) -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut manifest = Vec::new();
    for image in images {
        for (name, bytes) in image.docker_save() {
            match name.as_str() {
                "manifest.json" => {
                    let mut list: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
                    if image.tags.is_empty() {
                        list[0]["RepoTags"] = serde_json::Value::Null;
                    }
                    manifest.extend(list);
                }
                "index.json" | "oci-layout" => {}
                _ if entries.iter().any(|(n, _)| *n == name) => {}
                _ => entries.push((name, bytes)),
            }
        }
    }
    entries.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    entries
}

/// Several images in one OCI layout: index.json lists each image's manifest (named by its
/// first tag, if any), blobs shared by name.
pub fn oci_layout_of(images: &[&Image]) -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut descriptors = Vec::new();
    for image in images {
        for (name, bytes) in image.oci_layout() {
            match name.as_str() {
                "index.json" => {
                    let index: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    descriptors.extend(index["manifests"].as_array().unwrap().iter().cloned());
                }
                "oci-layout" => {}
                _ if entries.iter().any(|(n, _)| *n == name) => {}
                _ => entries.push((name, bytes)),
            }
        }
    }
    let index = json!({"schemaVersion": 2, "manifests": descriptors});
    entries.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
    entries.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    entries
}

/// Entries as a tar, in memory.
pub fn tar_bytes(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (entry, contents) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, entry, contents.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

/// Writes entries as a tar file in `dir`, returns its path.
pub fn write_tar(
    dir: &std::path::Path,
    name: &str,
    entries: &[(String, Vec<u8>)],
) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut builder = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (entry, contents) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, entry, contents.as_slice())
            .unwrap();
    }
    builder.finish().unwrap();
    path
}

/// A `tarball:` assertion on `path` checking only that the image holds `/hello`.
pub fn tarball_assertion(path: &str) -> scenario::TarballAssertion {
    scenario::TarballAssertion {
        path: path.into(),
        format: None,
        tags: vec![],
        labels: Default::default(),
        files: vec!["/hello".into()],
        config_digest: None,
    }
}

/// Evaluates `tarball:` assertions on files in `workspace`, as the runner would after the
/// steps (no registry, no daemon).
pub async fn check_tarballs(
    workspace: &std::path::Path,
    assertions: Vec<scenario::TarballAssertion>,
) -> Vec<model::result::AssertionOutcome> {
    use std::collections::BTreeMap;
    let registries = [(
        "registry".to_owned(),
        oci::registry::Registry::new("127.0.0.1:9"),
    )];
    let vars = BTreeMap::from([("registry".to_owned(), "registry:5000".to_owned())]);
    let (missing, daemon_images, registry_logs) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let evidence = harness::assertions::Evidence {
        daemon_images: &daemon_images,
        registry_logs: &registry_logs,
        step_values: &BTreeMap::new(),
        steps: &[],
        registries: &registries,
        vars: &vars,
        missing_captures: &missing,
        environment: None,
    };
    let assertions: Vec<scenario::Assertion> = assertions
        .into_iter()
        .map(scenario::Assertion::Tarball)
        .collect();
    harness::assertions::evaluate(
        &assertions,
        &evidence,
        &mut oci::archive::Archives::new(workspace),
    )
    .await
}

/// Outcomes as pinned text: one line per check, with what was expected and found.
pub fn render_outcomes(outcomes: &[model::result::AssertionOutcome]) -> String {
    outcomes
        .iter()
        .map(|o| {
            format!(
                "{:?}: {}\n  expected: {}\n  found: {}\n",
                o.status, o.assertion, o.expected, o.found
            )
        })
        .collect()
}
