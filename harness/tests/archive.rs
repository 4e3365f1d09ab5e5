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
    assert_eq!(archive.repo_tags, vec!["registry:5000/conformance/app:1.0"]);
    assert_eq!(
        archive.config_digest,
        oci::archive::sha256_digest(&image.config())
    );
    assert_eq!(
        archive
            .labels()
            .get("org.conformance.fixture")
            .map(String::as_str),
        Some("app")
    );
    let files = archive.files().unwrap();
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
    assert_eq!(archive.repo_tags, vec!["registry:5000/conformance/app:1.0"]);
    assert!(
        archive.digest_mismatches.is_empty(),
        "{:?}",
        archive.digest_mismatches
    );
    assert!(archive.files().unwrap().contains("hello"));
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
    let files = archive.files().unwrap();

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
