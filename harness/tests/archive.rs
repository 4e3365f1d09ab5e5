//! Reading image archives: formats, tags, labels, the image's files, and digest verification.

mod common;

use common::{layer, write_tar, Image};
use oci::archive::ImageArchive;
use oci::errors::ArchiveReadError;
use scenario::ArchiveFormat;

fn app_image() -> Image {
    Image::new(vec![
        layer(&[
            ("bin/busybox", b"\x7fELF"),
            ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        ]),
        layer(&[("hello", b"built-by-run marker=unset\n")]),
        layer(&[("file", b"a file copied into the image\n")]),
    ])
}

#[test]
fn a_docker_save_archive_is_read_with_its_tags_labels_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let image = app_image();
    let archive =
        ImageArchive::read(&write_tar(dir.path(), "image.tar", &image.docker_save())).unwrap();

    assert_eq!(archive.format, ArchiveFormat::DockerArchive);
    assert!(archive.has_oci_layout);
    assert_eq!(archive.images.len(), 1);
    assert_eq!(
        archive.first().tags,
        vec!["registry:5000/conformance/app:1.0"]
    );
    assert_eq!(
        archive.first().config_digest,
        oci::archive::sha256_digest(&image.config())
    );
    assert_eq!(
        archive
            .first()
            .labels()
            .get("org.conformance.fixture")
            .map(String::as_str),
        Some("app")
    );
    let files = archive.first().files().unwrap();
    assert!(files.contains("hello") && files.contains("file") && files.contains("bin/busybox"));
    assert!(
        archive.digest_mismatches.is_empty(),
        "{:?}",
        archive.digest_mismatches
    );
    // 3 layer blobs + config + OCI manifest, and 3 diff_ids.
    assert_eq!(archive.digests_checked, 8);
}

#[test]
fn an_oci_layout_archive_with_gzip_layers_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut image = app_image();
    image.gzip_layers = true;
    let archive =
        ImageArchive::read(&write_tar(dir.path(), "oci.tar", &image.oci_layout())).unwrap();

    assert_eq!(archive.format, ArchiveFormat::OciLayout);
    assert_eq!(
        archive.first().tags,
        vec!["registry:5000/conformance/app:1.0"]
    );
    assert!(
        archive.first().manifest_digest.is_some(),
        "an OCI layout names the manifest"
    );
    assert!(
        archive.digest_mismatches.is_empty(),
        "{:?}",
        archive.digest_mismatches
    );
    assert!(archive.first().files().unwrap().contains("hello"));
}

#[test]
fn a_blob_whose_content_does_not_match_its_name_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = app_image().docker_save();
    // entries[1] is the first layer blob: change one byte of its first file's content (the
    // data block after the 512-byte tar header), keeping it a valid tar.
    let (name, contents) = &mut entries[1];
    let name = name.clone();
    contents[512] ^= 0xff;
    let archive = ImageArchive::read(&write_tar(dir.path(), "image.tar", &entries)).unwrap();

    assert!(
        archive
            .digest_mismatches
            .iter()
            .any(|m| m.starts_with(&format!("{name}: content hashes to sha256:"))),
        "{:?}",
        archive.digest_mismatches
    );
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let image = app_image();
    let mut entries = image.docker_save();
    // Swap the manifest's first layer for a different, self-consistent blob.
    let other = layer(&[("other", b"x")]);
    let other_name = format!("blobs/sha256/{}", &oci::archive::sha256_digest(&other)[7..]);
    let manifest = entries
        .iter_mut()
        .find(|(n, _)| n == "manifest.json")
        .unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&manifest.1).unwrap();
    json[0]["Layers"][0] = serde_json::Value::String(other_name.clone());
    manifest.1 = serde_json::to_vec(&json).unwrap();
    entries.push((other_name, other));
    let archive = ImageArchive::read(&write_tar(dir.path(), "image.tar", &entries)).unwrap();

    assert!(
        archive
            .digest_mismatches
            .iter()
            .any(|m| m.contains("config diff_id is")),
        "{:?}",
        archive.digest_mismatches
    );
}

#[test]
fn whiteouts_remove_files_of_lower_layers() {
    let dir = tempfile::tempdir().unwrap();
    let image = Image::new(vec![
        layer(&[("etc/a", b"a"), ("etc/b", b"b"), ("opt/x/y", b"y")]),
        layer(&[
            ("etc/.wh.a", b""),
            ("opt/x/.wh..wh..opq", b""),
            ("opt/x/z", b"z"),
        ]),
    ]);
    let archive =
        ImageArchive::read(&write_tar(dir.path(), "image.tar", &image.docker_save())).unwrap();
    let files = archive.first().files().unwrap();

    assert!(!files.contains("etc/a"));
    assert!(files.contains("etc/b"));
    assert!(!files.contains("opt/x/y"));
    assert!(files.contains("opt/x/z"));
}

#[test]
fn a_tar_without_manifest_or_index_is_not_an_image_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_tar(
        dir.path(),
        "plain.tar",
        &[("README".into(), b"hi".to_vec())],
    );
    assert!(matches!(
        ImageArchive::read(&path),
        Err(ArchiveReadError::NotAnImage { .. })
    ));
}

#[test]
fn a_missing_file_is_an_open_error_naming_the_path() {
    let err = ImageArchive::read(std::path::Path::new("/nonexistent/image.tar")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/image.tar"), "{err}");
}

fn base_image() -> Image {
    let mut base = Image::new(vec![layer(&[("bin/busybox", b"\x7fELF base")])]);
    base.tags = vec!["registry:5000/harness/busybox:1.37".into()];
    base.labels = serde_json::json!({});
    base
}

#[test]
fn every_entry_of_a_docker_archive_is_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let (app, base) = (app_image(), base_image());
    let mut untagged = Image::new(vec![layer(&[("other", b"x")])]);
    untagged.tags = vec![];
    let entries = common::docker_archive_of(&[&app, &base, &untagged]);
    let archive = ImageArchive::read(&write_tar(dir.path(), "image.tar", &entries)).unwrap();

    assert_eq!(archive.format, ArchiveFormat::DockerArchive);
    assert!(!archive.has_oci_layout);
    let tags: Vec<&Vec<String>> = archive.images.iter().map(|i| &i.tags).collect();
    assert_eq!(
        tags,
        [
            &vec!["registry:5000/conformance/app:1.0".to_owned()],
            &vec!["registry:5000/harness/busybox:1.37".to_owned()],
            &vec![],
        ]
    );
    let configs: Vec<String> = [&app, &base, &untagged]
        .iter()
        .map(|i| oci::archive::sha256_digest(&i.config()))
        .collect();
    let read: Vec<&String> = archive.images.iter().map(|i| &i.config_digest).collect();
    assert_eq!(read, configs.iter().collect::<Vec<_>>());
    assert!(archive.images[1].files().unwrap().contains("bin/busybox"));
    assert!(!archive.images[1].files().unwrap().contains("hello"));
    assert_eq!(
        archive.images[2].describe(),
        format!("untagged, config {}", configs[2])
    );
    assert!(
        archive.digest_mismatches.is_empty(),
        "{:?}",
        archive.digest_mismatches
    );
}

#[test]
fn every_manifest_of_an_oci_layout_is_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let (app, mut untagged) = (app_image(), base_image());
    untagged.tags = vec![];
    let entries = common::oci_layout_of(&[&app, &untagged]);
    let archive = ImageArchive::read(&write_tar(dir.path(), "oci.tar", &entries)).unwrap();

    assert_eq!(archive.format, ArchiveFormat::OciLayout);
    assert_eq!(archive.images.len(), 2);
    assert_eq!(
        archive.first().tags,
        vec!["registry:5000/conformance/app:1.0"]
    );
    let second = &archive.images[1];
    assert!(second.tags.is_empty());
    assert_eq!(
        second.config_digest,
        oci::archive::sha256_digest(&untagged.config())
    );
    let manifest = second.manifest_digest.clone().unwrap();
    assert_eq!(second.describe(), format!("untagged, manifest {manifest}"));
}

#[test]
fn a_manifest_named_by_several_index_entries_is_one_image_with_every_name() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_image();
    let mut entries = app.oci_layout();
    let index = entries.iter_mut().find(|(n, _)| n == "index.json").unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&index.1).unwrap();
    let mut second = json["manifests"][0].clone();
    second["annotations"]["io.containerd.image.name"] = "registry:5000/conformance/app:2.0".into();
    json["manifests"].as_array_mut().unwrap().push(second);
    index.1 = serde_json::to_vec(&json).unwrap();
    let archive = ImageArchive::read(&write_tar(dir.path(), "oci.tar", &entries)).unwrap();

    assert_eq!(archive.images.len(), 1);
    assert_eq!(
        archive.first().tags,
        vec![
            "registry:5000/conformance/app:1.0",
            "registry:5000/conformance/app:2.0"
        ]
    );
}

#[test]
fn nested_indexes_are_followed_to_every_image_but_attestations() {
    let dir = tempfile::tempdir().unwrap();
    let (app, other) = (app_image(), base_image());
    // Both images' blobs and manifests, under one nested index named app:1.0, with a BuildKit
    // attestation manifest between them (not an image: its blob need not even be there).
    let mut entries: Vec<(String, Vec<u8>)> = common::oci_layout_of(&[&app, &other])
        .into_iter()
        .filter(|(n, _)| n != "index.json")
        .collect();
    let flat: serde_json::Value = serde_json::from_slice(
        &common::oci_layout_of(&[&app, &other])
            .into_iter()
            .find(|(n, _)| n == "index.json")
            .unwrap()
            .1,
    )
    .unwrap();
    let mut manifests: Vec<serde_json::Value> = flat["manifests"].as_array().unwrap().clone();
    for m in &mut manifests {
        m.as_object_mut().unwrap().remove("annotations");
    }
    manifests.insert(
        1,
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", "a".repeat(64)), "size": 1,
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
        }),
    );
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .unwrap();
    let nested_digest = oci::archive::sha256_digest(&nested);
    entries.push((common::blob_path(&nested_digest), nested.clone()));
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": nested_digest,
        "size": nested.len(),
        "annotations": {"io.containerd.image.name": "registry:5000/conformance/app:1.0"},
    }]});
    entries.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
    let archive = ImageArchive::read(&write_tar(dir.path(), "oci.tar", &entries)).unwrap();

    let read: Vec<(&Vec<String>, &String)> = archive
        .images
        .iter()
        .map(|i| (&i.tags, &i.config_digest))
        .collect();
    let name = vec!["registry:5000/conformance/app:1.0".to_owned()];
    assert_eq!(
        read,
        [
            (&name, &oci::archive::sha256_digest(&app.config())),
            (&name, &oci::archive::sha256_digest(&other.config())),
        ]
    );
}
