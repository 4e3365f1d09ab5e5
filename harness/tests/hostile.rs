//! Hostile image archives: each file in `tests/hostile-tarballs/` gives a clear verdict (Pass
//! where the archive is legal, else Fail naming the problem), never an Error, a panic or an
//! abort, and no message quotes the archive's content. The outcomes are pinned (insta). The
//! bombs and the huge manifest are built on the fly: too big to commit.

mod common;

use std::path::Path;

use common::hostile::{self, SECRET};
use common::{check_tarballs, render_outcomes, tarball_assertion};
use model::result::Status;
use oci::archive::{ImageArchive, Limits};
use oci::errors::ArchiveReadError;

fn corpus_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile-tarballs")
}

/// `HOSTILE_TARBALLS_WRITE=1 cargo nextest run --test hostile` writes the corpus anew.
#[test]
fn the_committed_corpus_is_what_the_generator_builds() {
    let dir = corpus_dir();
    let write = std::env::var_os("HOSTILE_TARBALLS_WRITE").is_some();
    let corpus = hostile::corpus();
    assert!(corpus.len() >= 10);
    for (name, bytes) in &corpus {
        assert!(bytes.len() < 100 * 1024, "{name} is {} bytes", bytes.len());
        let path = dir.join(name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, bytes).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_default();
            assert!(
                &committed == bytes,
                "{name} is not what tests/common/hostile.rs builds: \
                 HOSTILE_TARBALLS_WRITE=1 cargo nextest run --test hostile"
            );
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let built: Vec<&str> = corpus.iter().map(|(n, _)| *n).collect();
    assert_eq!(on_disk, built);
}

#[test]
fn every_hostile_tarball_gives_a_clear_verdict() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    insta::glob!("hostile-tarballs/*.tar", |path| {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let outcomes = runtime.block_on(check_tarballs(
            path.parent().unwrap(),
            vec![tarball_assertion(&name)],
        ));
        let text = render_outcomes(&outcomes);
        assert!(
            !text.contains(SECRET) && !text.contains("TOP-SECRET"),
            "{name} quotes content:\n{text}"
        );
        let worst = outcomes.iter().map(|o| o.status).max().unwrap();
        let expected = if name.starts_with("pass-") {
            Status::Pass
        } else {
            Status::Fail
        };
        assert_eq!(worst, expected, "{name}:\n{text}");
        insta::assert_snapshot!(text);
    });
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The bomb of the issue: 2 MiB of gzip that inflate to 2 GiB once took 2.18 GB of memory.
#[test]
fn a_gzip_bomb_is_a_fail_naming_the_limit_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.tar");
    std::fs::write(&path, hostile::gzip_bomb(32)).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 3 << 20, "{size}");
    let err = ImageArchive::read(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ArchiveReadError::Limit { .. }), "{message}");
    assert!(!err.is_harness_error());
    assert!(
        message.contains("decompresses to more than")
            && message.contains("1000× its compressed")
            && message.contains("a decompression bomb?"),
        "{message}"
    );
    // Streamed, not held: far below the 2 GiB the layer inflates to.
    if let Some(kib) = peak_rss_kib() {
        assert!(kib < 512 * 1024, "peak RSS {kib} KiB");
    }
}

#[test]
fn a_bomb_under_the_ratio_still_stops_at_the_absolute_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.tar");
    std::fs::write(&path, hostile::gzip_bomb(1)).unwrap();
    let limits = Limits {
        layer_bytes: 16 << 20,
        ..Limits::default()
    };
    let message = ImageArchive::read_with_limits(&path, &limits)
        .unwrap_err()
        .to_string();
    assert!(
        message.ends_with(
            "decompresses to more than 16 MiB (the cap on any layer): a decompression bomb?"
        ),
        "{message}"
    );
}

#[test]
fn a_huge_manifest_is_a_fail_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    std::fs::write(&path, hostile::huge_manifest(17 << 20)).unwrap();
    let err = ImageArchive::read(&path).unwrap_err();
    assert!(!err.is_harness_error());
    assert_eq!(
        err.to_string(),
        format!(
            "archive {}: manifest manifest.json is 17825792 bytes, more than the 16 MiB allowed \
             for a JSON document",
            path.display()
        )
    );
}

#[test]
fn an_archive_of_too_many_members_is_a_fail_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    let entries: Vec<(String, Vec<u8>)> = (0..11).map(|i| (format!("f{i}"), vec![])).collect();
    std::fs::write(&path, common::tar_bytes(&entries)).unwrap();
    let limits = Limits {
        members: 10,
        ..Limits::default()
    };
    let err = ImageArchive::read_with_limits(&path, &limits).unwrap_err();
    assert!(matches!(err, ArchiveReadError::Limit { .. }));
    assert!(
        err.to_string()
            .ends_with("it holds more than 10 members (an image archive holds a few per layer)"),
        "{err}"
    );
}

/// `secret_absent`'s search of an archive goes through every hostile tarball without a panic or
/// an Error of the harness: it finds the secret where it is readable, refuses what it cannot
/// search through (a tar that is not one, a bomb) as the archive's fault, and never quotes it.
#[test]
fn searching_every_hostile_tarball_for_a_secret_gives_a_verdict_without_quoting_it() {
    use oci::archive::{search_archive, Needle, Needles};
    let needles = Needles::new(vec![Needle {
        what: "the secret".into(),
        bytes: b"TOP-SECRET-HASH".to_vec(),
    }])
    .unwrap();
    let dir = corpus_dir();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let file = std::fs::File::open(path).unwrap();
        let verdict = search_archive(file, Path::new(&name), &Limits::default(), &needles);
        let text = format!("{verdict:?}");
        assert!(!text.contains("TOP-SECRET"), "{name} quoted:\n{text}");
        match (name.as_str(), &verdict) {
            ("fail-manifest-not-json.tar", Ok(searched)) => {
                assert_eq!(searched.findings.len(), 1, "{searched:?}");
                assert_eq!(searched.findings[0].place, "archive member manifest.json");
            }
            ("fail-not-a-tar.tar", Err(e)) => assert!(!e.is_harness_error(), "{e}"),
            (_, Err(e)) => assert!(!e.is_harness_error(), "{name}: {e}"),
            (_, Ok(_)) => {}
        }
    }
    // A bomb (2 MiB that inflate to 2 GiB) is not searched through, within a bounded time.
    let bomb = tempfile::tempdir().unwrap();
    let path = bomb.path().join("bomb.tar");
    std::fs::write(&path, hostile::gzip_bomb(32)).unwrap();
    let e = search_archive(
        std::fs::File::open(&path).unwrap(),
        Path::new("bomb.tar"),
        &Limits::default(),
        &needles,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("a decompression bomb?") && !e.is_harness_error(),
        "{e}"
    );
}
