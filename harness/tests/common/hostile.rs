//! Hostile image archives: the corpus committed under `tests/hostile-tarballs/` (each small,
//! built deterministically here) and the big ones tests build on the fly (bombs, a huge
//! manifest). A file's name says what the reader must make of it: `pass-…` or `fail-…`.

use std::io::Write;

use oci::archive::sha256_digest;
use serde_json::json;

use super::{blob_path, gzip, layer, sha512_digest, tar_bytes, Image};

/// Text that looks like a password hash: it must never show in a message.
pub const SECRET: &str = "root:$6$c2VjcmV0$TOP-SECRET-HASH:19000:0:99999:7:::";

/// A raw ustar header: any name (even `../../x`), any declared size (base-256 past 8 GiB),
/// any type.
pub fn header(name: &[u8], size: u64, kind: u8, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if size < 8u64.pow(11) {
        octal(&mut h[124..136], size);
    } else {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], 0);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    checksum(&mut h);
    h
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

pub fn checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// A member: header, data, padding.
pub fn member(name: &[u8], kind: u8, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = header(name, data.len() as u64, kind, link).to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// The end-of-archive blocks.
pub fn end() -> Vec<u8> {
    vec![0; 1024]
}

/// A tar of these entries without its end blocks, so that raw members can follow.
fn open_tar(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = tar_bytes(entries);
    bytes.truncate(bytes.len() - 1024);
    bytes
}

fn app() -> Image {
    Image::new(vec![layer(&[("hello", b"built-by-run marker=unset\n")])])
}

/// A docker-archive of layers stored as given, whose uncompressed digests are `diff_ids`.
pub fn docker_archive(stored: &[Vec<u8>], diff_ids: &[String]) -> Vec<(String, Vec<u8>)> {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"org.conformance.fixture": "app"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_name = blob_path(&sha256_digest(&config));
    let mut entries = vec![(config_name.clone(), config)];
    let mut names = Vec::new();
    for blob in stored {
        let name = blob_path(&sha256_digest(blob));
        names.push(name.clone());
        entries.push((name, blob.clone()));
    }
    let manifest = json!([{"Config": config_name, "RepoTags": ["registry:5000/conformance/app:1.0"], "Layers": names}]);
    entries.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    entries
}

/// An OCI layout whose layers are stored under the digests given (any algorithm).
fn oci_archive(layers: &[(String, Vec<u8>)], diff_ids: &[String]) -> Vec<(String, Vec<u8>)> {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"org.conformance.fixture": "app"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = sha256_digest(&config);
    let descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|(digest, blob)| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": blob.len()}))
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descriptors,
    }))
    .unwrap();
    let manifest_digest = sha256_digest(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                       "size": manifest.len(), "annotations": {"io.containerd.image.name": "registry:5000/conformance/app:1.0"}}],
    });
    let mut entries = vec![(blob_path(&config_digest), config)];
    for (digest, blob) in layers {
        entries.push((blob_path(digest), blob.clone()));
    }
    entries.push((blob_path(&manifest_digest), manifest));
    entries.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
    entries.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    entries
}

/// `n` zero bytes compressed as one stream.
fn gzip_zeros(n: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..n / chunk.len() {
        encoder.write_all(&chunk).unwrap();
    }
    encoder.finish().unwrap()
}

fn sha256_of_zeros(n: usize) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..n / chunk.len() {
        hasher.update(&chunk);
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// A gzip bomb: `members` gzip members of 64 MiB of zeros each (about 1030× each, as far as
/// deflate goes), as one layer of a docker-archive. 32 members: 2 MiB that inflate to 2 GiB.
pub fn gzip_bomb(members: usize) -> Vec<u8> {
    let one = gzip_zeros(64 << 20);
    let bomb = one.repeat(members);
    tar_bytes(&docker_archive(
        &[bomb],
        &[sha256_of_zeros(members * (64 << 20))],
    ))
}

/// A docker-archive whose manifest.json is `size` bytes of valid JSON.
pub fn huge_manifest(size: usize) -> Vec<u8> {
    let mut manifest = vec![b' '; size];
    manifest[0] = b'[';
    manifest[size - 1] = b']';
    tar_bytes(&[("manifest.json".into(), manifest)])
}

/// The committed corpus: name → bytes. `tests/hostile.rs` checks the files match.
pub fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut corpus: Vec<(&'static str, Vec<u8>)> = Vec::new();

    // A header declaring a 1 TiB member, then four bytes: the reader once allocated 1 TiB.
    let mut bytes = header(b"manifest.json", 1 << 40, b'0', b"").to_vec();
    bytes.extend_from_slice(b"tiny");
    corpus.push(("fail-member-declares-1tib.tar", bytes));

    // The same inside a layer (the archive itself is consistent).
    let mut big = header(b"big", 1 << 40, b'0', b"").to_vec();
    big.extend_from_slice(b"tiny");
    corpus.push((
        "fail-layer-member-declares-1tib.tar",
        tar_bytes(&Image::new(vec![big]).docker_save()),
    ));

    // 8 MiB of zeros in gzip: just over 1000×.
    let bomb = gzip_zeros(8 << 20);
    corpus.push((
        "fail-gzip-bomb.tar",
        tar_bytes(&docker_archive(&[bomb], &[sha256_of_zeros(8 << 20)])),
    ));

    // 256 MiB of zeros in zstd: a few KiB.
    let zeros = vec![0u8; 256 << 20];
    let bomb = zstd::encode_all(zeros.as_slice(), 19).unwrap();
    corpus.push((
        "fail-zstd-bomb.tar",
        tar_bytes(&docker_archive(&[bomb], &[sha256_digest(&zeros)])),
    ));
    drop(zeros);

    let mut image = app();
    image.sha512 = true;
    image.gzip_layers = true;
    corpus.push(("pass-sha512-oci-layout.tar", tar_bytes(&image.oci_layout())));

    let mut image = app();
    image.sha512 = true;
    corpus.push((
        "pass-sha512-docker-save.tar",
        tar_bytes(&image.docker_save()),
    ));

    // Blobs named by sha256, diff_ids in sha512: the reader reads the layers a second time.
    let plain = layer(&[("hello", b"hi\n")]);
    let stored = gzip(&plain);
    corpus.push((
        "pass-sha512-diff-ids.tar",
        tar_bytes(&oci_archive(
            &[(sha256_digest(&stored), stored.clone())],
            &[sha512_digest(&plain)],
        )),
    ));

    let mut image = app();
    image.zstd_layers = true;
    corpus.push(("pass-zstd-layers.tar", tar_bytes(&image.oci_layout())));

    // A layer under md5.
    let fake_md5 = format!("md5:{}", &sha256_digest(&stored)[7..39]);
    corpus.push((
        "fail-unknown-digest-algorithm.tar",
        tar_bytes(&oci_archive(
            &[(fake_md5, stored.clone())],
            &[sha256_digest(&plain)],
        )),
    ));

    // A blob that does not hash to its name.
    let mut entries = app().docker_save();
    entries[1].1[512] ^= 0xff;
    corpus.push((
        "fail-blob-does-not-match-its-digest.tar",
        tar_bytes(&entries),
    ));

    // manifest.json that is not JSON (and looks like a secret: it must not be quoted).
    corpus.push((
        "fail-manifest-not-json.tar",
        tar_bytes(&[("manifest.json".into(), SECRET.as_bytes().to_vec())]),
    ));

    // A member named ../../etc/x next to a good image.
    let mut bytes = open_tar(&app().docker_save());
    bytes.extend(member(b"../../etc/x", b'0', b"", b"x"));
    bytes.extend(end());
    corpus.push(("fail-member-path-traversal.tar", bytes));

    // A layer whose tar holds ../../etc/x.
    let mut evil = member(b"hello", b'0', b"", b"hi\n");
    evil.extend(member(b"../../etc/x", b'0', b"", b"x"));
    evil.extend(end());
    corpus.push((
        "fail-layer-path-traversal.tar",
        tar_bytes(&Image::new(vec![evil]).docker_save()),
    ));

    // The layer manifest.json names is a symlink to /etc/shadow.
    let image = app();
    let entries = image.docker_save();
    let layer_name = entries[1].0.clone();
    let mut bytes = open_tar(
        &entries
            .into_iter()
            .filter(|(n, _)| *n != layer_name)
            .collect::<Vec<_>>(),
    );
    bytes.extend(member(layer_name.as_bytes(), b'2', b"/etc/shadow", b""));
    bytes.extend(end());
    corpus.push(("fail-symlink-member-out-of-the-archive.tar", bytes));

    // docker save < 25 stores a layer twice as a symlink to the first: legal.
    let plain = layer(&[("hello", b"hi\n")]);
    let diff = sha256_digest(&plain);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"org.conformance.fixture": "app"}},
        "rootfs": {"type": "layers", "diff_ids": [diff, diff]},
    }))
    .unwrap();
    let config_name = format!("{}.json", &sha256_digest(&config)[7..]);
    let manifest = json!([{"Config": config_name, "RepoTags": ["registry:5000/conformance/app:1.0"],
                           "Layers": ["aaa/layer.tar", "bbb/layer.tar"]}]);
    let mut bytes = open_tar(&[
        (config_name, config),
        ("aaa/layer.tar".into(), plain),
        (
            "manifest.json".into(),
            serde_json::to_vec(&manifest).unwrap(),
        ),
    ]);
    bytes.extend(member(b"bbb/layer.tar", b'2', b"../aaa/layer.tar", b""));
    bytes.extend(end());
    corpus.push(("pass-legacy-symlinked-layer.tar", bytes));

    // manifest.json twice, the second naming another config.
    let mut entries = app().docker_save();
    entries.push((
        "manifest.json".into(),
        br#"[{"Config":"blobs/sha256/0000","RepoTags":["evil:1"],"Layers":[]}]"#.to_vec(),
    ));
    corpus.push(("fail-duplicate-member.tar", tar_bytes(&entries)));

    // The config manifest.json names is not there.
    let mut entries = app().docker_save();
    entries.remove(0);
    corpus.push(("fail-missing-config.tar", tar_bytes(&entries)));

    // Nothing named by a digest, no layers: "0 digests verified" proves nothing.
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Labels":{"org.conformance.fixture":"app"}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    corpus.push((
        "fail-zero-blobs.tar",
        tar_bytes(&[
            ("config.json".into(), config.to_vec()),
            (
                "manifest.json".into(),
                br#"[{"Config":"config.json","RepoTags":["registry:5000/conformance/app:1.0"],"Layers":[]}]"#
                    .to_vec(),
            ),
        ]),
    ));

    // Cut in the middle of a blob.
    let mut bytes = tar_bytes(&app().docker_save());
    bytes.truncate(1536 + 100);
    corpus.push(("fail-truncated.tar", bytes));

    // A header whose checksum is wrong.
    let mut bytes = tar_bytes(&app().docker_save());
    bytes[148] = b'7';
    corpus.push(("fail-bad-header-checksum.tar", bytes));

    // A PAX header declaring 2 MiB of records, a GNU long name declaring 1 MiB.
    let mut bytes = header(b"././@PaxHeader", 2 << 20, b'x', b"").to_vec();
    bytes.extend(end());
    corpus.push(("fail-pax-header-too-large.tar", bytes));
    let mut bytes = header(b"././@LongLink", 1 << 20, b'L', b"").to_vec();
    bytes.extend(end());
    corpus.push(("fail-gnu-long-name-too-large.tar", bytes));

    // Not a tar at all: a password file's bytes (what a symlink to /etc/shadow would show).
    corpus.push((
        "fail-not-a-tar.tar",
        format!("{SECRET}\n").repeat(24).into_bytes(),
    ));

    corpus.sort_by_key(|(name, _)| *name);
    corpus
}
