//! Builders for small image archives, written the way the tools write them, for unit tests.
#![allow(dead_code)]

use std::io::Write;

use harness::archive::sha256_digest;
use serde_json::json;

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

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

pub struct Image {
    pub layers: Vec<Vec<u8>>,
    pub labels: serde_json::Value,
    pub tags: Vec<String>,
    pub gzip_layers: bool,
}

impl Image {
    pub fn new(layers: Vec<Vec<u8>>) -> Image {
        Image {
            layers,
            labels: json!({"org.conformance.fixture": "app"}),
            tags: vec!["registry:5000/conformance/app:1.0".into()],
            gzip_layers: false,
        }
    }

    pub fn config(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self.layers.iter().map(|l| sha256_digest(l)).collect();
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
            .map(|l| if self.gzip_layers { gzip(l) } else { l.clone() })
            .collect()
    }

    /// `docker save` of Docker ≥ 25: an OCI layout plus manifest.json.
    pub fn docker_save(&self) -> Vec<(String, Vec<u8>)> {
        let config = self.config();
        let config_name = format!("blobs/sha256/{}", hex(&sha256_digest(&config)));
        let mut entries = vec![(config_name.clone(), config.clone())];
        let mut layer_names = Vec::new();
        for stored in self.stored_layers() {
            let name = format!("blobs/sha256/{}", hex(&sha256_digest(&stored)));
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
        let mut entries = vec![(
            format!("blobs/sha256/{}", hex(&sha256_digest(&config))),
            config.clone(),
        )];
        for stored in self.stored_layers() {
            entries.push((
                format!("blobs/sha256/{}", hex(&sha256_digest(&stored))),
                stored,
            ));
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
            .map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256_digest(l), "size": l.len()}))
            .collect();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_digest(config), "size": config.len()},
            "layers": layers,
        }))
        .unwrap();
        let manifest_digest = sha256_digest(&manifest);
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
            (format!("blobs/sha256/{}", hex(&manifest_digest)), manifest),
            ("index.json".into(), serde_json::to_vec(&index).unwrap()),
        ]
    }
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
