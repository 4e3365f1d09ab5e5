//! An image archive in the workspace (`tarball`): readable, of the format asked, holding the
//! named image and no other, with its tags, labels, files and config digest.

use model::result::{AssertionOutcome, Status};
use oci::archive::{ArchivedImage, ImageArchive};
use scenario::TarballAssertion;

use super::image::{file_outcomes, label_outcomes};
use super::{equality, outcome, resolve, Evidence};
use crate::errors::ArchiveReadError;

pub(super) fn tarball(
    evidence: &Evidence<'_>,
    t: &TarballAssertion,
    archive: &Result<ImageArchive, ArchiveReadError>,
) -> Vec<AssertionOutcome> {
    let path = &t.path;
    let archive = match archive {
        Ok(archive) => archive,
        Err(e) if e.is_missing() => {
            return vec![outcome(
                format!("tarball {path} exists"),
                Status::Fail,
                "a file in the workspace",
                "no such file",
            )];
        }
        // The harness could not read it: nothing is known about the plugin.
        Err(e) if e.is_harness_error() => {
            return vec![outcome(
                format!("tarball {path} is readable"),
                Status::Error,
                "a readable file",
                e.to_string(),
            )];
        }
        // Outside the workspace, not a file, malformed, hostile, over a limit: the plugin's.
        Err(e) => {
            return vec![outcome(
                format!("tarball {path} is an image archive"),
                Status::Fail,
                "an image archive",
                e.to_string(),
            )];
        }
    };
    let mut outcomes = vec![outcome(
        format!("tarball {path} is an image archive"),
        Status::Pass,
        "an image archive",
        format!(
            "{}{}",
            archive.format,
            if archive.has_oci_layout {
                " with an OCI layout"
            } else {
                ""
            }
        ),
    )];
    if let Some(format) = t.format {
        outcomes.push(equality(
            format!("tarball {path} format"),
            format,
            archive.format,
        ));
    }
    // Zero digests verified proves nothing: the reader lists it as a finding too.
    outcomes.push(
        if archive.digest_mismatches.is_empty() && archive.digests_checked > 0 {
            outcome(
                format!("tarball {path}: every blob matches its digest"),
                Status::Pass,
                "all digests verified",
                format!("{} digests verified", archive.digests_checked),
            )
        } else {
            outcome(
                format!("tarball {path}: every blob matches its digest"),
                Status::Fail,
                "all digests verified",
                archive.digest_mismatches.join("; "),
            )
        },
    );
    let all_tags: Vec<&String> = archive.tags().collect();
    for tag in &t.tags {
        let what = format!("tarball {path} carries {tag}");
        outcomes.push(match resolve(evidence, tag) {
            Ok(tag) if all_tags.contains(&&tag) => {
                outcome(what, Status::Pass, tag, format!("{all_tags:?}"))
            }
            Ok(tag) => outcome(what, Status::Fail, tag, format!("{all_tags:?}")),
            Err(m) => outcome(what, m.status, "a tag", m.reason),
        });
    }
    // The tags asked for are the exact set: a tag nobody asked for is a Fail too.
    let wanted: Result<Vec<String>, _> = t.tags.iter().map(|tag| resolve(evidence, tag)).collect();
    if let (false, Ok(wanted)) = (t.tags.is_empty(), &wanted) {
        let extra = all_tags.iter().filter(|tag| !wanted.contains(tag)).count();
        outcomes.push(outcome(
            format!("tarball {path} carries no other tags"),
            Status::of(extra == 0),
            format!("only {wanted:?}"),
            format!("{all_tags:?}"),
        ));
    }
    // The image the assertion names: every image carrying one of its tags (they must be one
    // image), or the only one the archive should hold when it names no tag. When no image
    // carries a named tag, the first stands in (the tags' outcomes already fail).
    let named: Vec<&ArchivedImage> = match &wanted {
        Ok(wanted) => archive
            .images
            .iter()
            .filter(|image| image.tags.iter().any(|tag| wanted.contains(tag)))
            .collect(),
        Err(_) => Vec::new(),
    };
    let image = named.first().copied().unwrap_or(archive.first());
    if let Ok(wanted) = &wanted {
        outcomes.push(no_other_image(path, wanted, archive, image, &named));
    }
    if named.len() > 1 {
        let configs: Vec<String> = named
            .iter()
            .map(|i| format!("{}: {}", i.describe(), i.config_digest))
            .collect();
        let one = named.iter().all(|i| i.config_digest == image.config_digest);
        outcomes.push(outcome(
            format!("tarball {path}: the images carrying the named tags are one image"),
            Status::of(one),
            "one config digest",
            configs.join("; "),
        ));
    }
    if let Some(expected) = &t.config_digest {
        let what = format!("tarball {path}: config digest equals {expected}");
        outcomes.push(match resolve(evidence, expected) {
            Ok(expected) => {
                let status = Status::of(expected == image.config_digest);
                outcome(what, status, expected, image.config_digest.clone())
            }
            Err(m) => outcome(what, m.status, "a captured digest", m.reason),
        });
    }
    let image_name = format!("tarball {path}");
    outcomes.extend(label_outcomes(
        evidence,
        &image_name,
        &t.labels,
        &image.labels(),
    ));
    if !t.files.is_empty() {
        outcomes.extend(file_outcomes(&image_name, &t.files, image.files()));
    }
    outcomes
}

/// Every image of the archive is the one the assertion names: a second image (another
/// manifest.json entry, another manifest in index.json), tagged or not, is a Fail naming it.
fn no_other_image(
    path: &str,
    wanted: &[String],
    archive: &ImageArchive,
    image: &ArchivedImage,
    named: &[&ArchivedImage],
) -> AssertionOutcome {
    let others: Vec<String> = archive
        .images
        .iter()
        .filter(|i| !std::ptr::eq(*i, image) && !named.iter().any(|n| std::ptr::eq(*n, *i)))
        .map(|i| match i.tags.is_empty() {
            true => format!("an image {}", i.describe()),
            false => format!(
                "an image tagged {} (config {})",
                i.describe(),
                i.config_digest
            ),
        })
        .collect();
    let expected = if wanted.is_empty() {
        "one image".to_owned()
    } else {
        format!("only the image tagged {wanted:?}")
    };
    let count = archive.images.len();
    let found = if others.is_empty() {
        format!("{count} image{}", if count == 1 { "" } else { "s" })
    } else {
        format!("{count} images, also {}", others.join("; "))
    };
    outcome(
        format!("tarball {path} holds no other image"),
        Status::of(others.is_empty()),
        expected,
        found,
    )
}
