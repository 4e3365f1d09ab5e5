//! What an image must hold, wherever it is: the registry's tag (`tag_in_registry`: digests,
//! media type, layer count) and, shared with tarballs, its labels, files and file contents.

use std::collections::{BTreeMap, BTreeSet};

use model::result::{AssertionOutcome, Status};
use oci::archive::{FileContent, MAX_FILE_BYTES};
use oci::registry;

use super::{digest_outcome, equality, outcome, resolve, Evidence};

/// Optional properties a served tag must have.
pub(super) struct Expected<'a> {
    pub(super) config_digest: Option<&'a str>,
    pub(super) manifest_digest: Option<&'a str>,
    pub(super) media_type: Option<&'a str>,
    pub(super) layers: Option<usize>,
    pub(super) labels: &'a BTreeMap<String, String>,
    pub(super) files: &'a [String],
    pub(super) file_contents: &'a BTreeMap<String, String>,
}

pub(super) async fn tag_in_registry(
    evidence: &Evidence<'_>,
    registry: Option<&str>,
    repository: &str,
    tag: &str,
    expect: Expected<'_>,
) -> Vec<AssertionOutcome> {
    let (name, registry) = registry::named(evidence.registries, registry);
    let what = format!("tag {repository}:{tag} in {name}");
    let image = match registry.image(repository, tag).await {
        Ok(Some(image)) => image,
        Ok(None) => {
            return vec![outcome(
                what,
                Status::Fail,
                "the tag is served",
                "no such tag",
            )]
        }
        Err(e) => {
            return vec![outcome(
                what,
                Status::Error,
                "the tag is served",
                e.to_string(),
            )]
        }
    };
    let mut outcomes = vec![outcome(
        what,
        Status::Pass,
        "the tag is served",
        format!(
            "manifest {} ({})",
            image.manifest_digest,
            image.media_type.as_deref().unwrap_or("no media type")
        ),
    )];
    if let Some(expected) = expect.media_type {
        let found = image
            .media_type
            .clone()
            .unwrap_or_else(|| "no media type".into());
        outcomes.push(equality(
            format!("manifest media type of {repository}:{tag}"),
            expected.to_owned(),
            found,
        ));
    }
    if let Some(expected) = expect.layers {
        outcomes.push(equality(
            format!("layer count of {repository}:{tag}"),
            expected,
            image.layer_count,
        ));
    }
    for (kind, expected, served) in [
        ("config", expect.config_digest, &image.config_digest),
        ("manifest", expect.manifest_digest, &image.manifest_digest),
    ] {
        if let Some(expected) = expected {
            let what = format!("{kind} digest of {repository}:{tag} in registry equals {expected}");
            outcomes.push(digest_outcome(evidence, what, expected, served));
        }
    }
    let image_name = format!("{repository}:{tag} in {name}");
    if !expect.labels.is_empty() {
        match &image.labels {
            Ok(labels) => {
                outcomes.extend(label_outcomes(evidence, &image_name, expect.labels, labels))
            }
            Err(e) => outcomes.push(outcome(
                format!("{image_name}: image config readable"),
                Status::Fail,
                "a json image config",
                e.clone(),
            )),
        }
    }
    if !expect.files.is_empty() {
        match registry.files(&image).await {
            Ok(found) => outcomes.extend(file_outcomes(&image_name, expect.files, found)),
            Err(e) => outcomes.push(outcome(
                format!("{image_name}: layers pulled"),
                Status::Error,
                "the layers",
                e.to_string(),
            )),
        }
    }
    if !expect.file_contents.is_empty() {
        let paths: Vec<String> = expect.file_contents.keys().cloned().collect();
        match registry.file_contents(&image, &paths).await {
            Ok(found) => outcomes.extend(content_outcomes(
                evidence,
                &image_name,
                expect.file_contents,
                found,
            )),
            Err(e) => outcomes.push(outcome(
                format!("{image_name}: layers pulled"),
                Status::Error,
                "the layers",
                e.to_string(),
            )),
        }
    }
    outcomes
}

/// One outcome per expected file content: a regular file whose bytes are the text, one
/// trailing line break on either side ignored; at most [`MAX_FILE_BYTES`] of it read. What was
/// found is shown escaped and cut short.
fn content_outcomes(
    evidence: &Evidence<'_>,
    image: &str,
    expected: &BTreeMap<String, String>,
    found: Result<BTreeMap<String, FileContent>, String>,
) -> Vec<AssertionOutcome> {
    let files = match found {
        Ok(files) => files,
        Err(e) => return vec![layers_unreadable(image, e)],
    };
    let chomp = |text: &[u8]| -> Vec<u8> {
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        text.strip_suffix(b"\r").unwrap_or(text).to_vec()
    };
    expected
        .iter()
        .map(|(path, text)| {
            let what = format!("{image}: content of file {path}");
            let text = match resolve(evidence, text) {
                Ok(text) => text,
                Err(m) => return outcome(what, m.status, "a captured value", m.reason),
            };
            let shown_text = format!("{text:?}");
            match files.get(path) {
                None => outcome(what, Status::Fail, shown_text, "no such file"),
                Some(FileContent::NotRegular(kind)) => {
                    outcome(what, Status::Fail, shown_text, format!("not a file: {kind}"))
                }
                Some(FileContent::Regular { size, .. }) if *size > MAX_FILE_BYTES => outcome(
                    what,
                    Status::Fail,
                    shown_text,
                    format!(
                        "{size} bytes, more than the {} KiB the harness reads of a file: not compared",
                        MAX_FILE_BYTES / 1024
                    ),
                ),
                Some(FileContent::Regular { head, .. }) => {
                    let status = Status::of(chomp(head) == chomp(text.as_bytes()));
                    outcome(what, status, shown_text, shown_content(head))
                }
            }
        })
        .collect()
}

/// A file's bytes for a message: as text, escaped (no control character reaches a terminal),
/// at most 200 characters of it.
fn shown_content(bytes: &[u8]) -> String {
    const SHOWN: usize = 200;
    let text = String::from_utf8_lossy(bytes);
    let cut: String = text.chars().take(SHOWN).collect();
    let more = text.chars().count() > SHOWN;
    format!("{cut:?}{}", if more { " …" } else { "" })
}

/// One outcome per expected label: present with this value.
pub(super) fn label_outcomes(
    evidence: &Evidence<'_>,
    image: &str,
    expected: &BTreeMap<String, String>,
    found: &BTreeMap<String, String>,
) -> Vec<AssertionOutcome> {
    expected
        .iter()
        .map(|(key, value)| {
            let what = format!("{image}: image label {key}");
            // Label values may name captures and variables, like every other expected value.
            let value = match resolve(evidence, value) {
                Ok(value) => value,
                Err(m) => return outcome(what, m.status, "a captured value", m.reason),
            };
            let shown = found
                .get(key)
                .map_or_else(|| "no such label".to_owned(), Clone::clone);
            let status = Status::of(found.get(key) == Some(&value));
            outcome(what, status, value, shown)
        })
        .collect()
}

/// One outcome per expected file, or a Fail when the layers are not readable tars.
pub(super) fn file_outcomes(
    image: &str,
    expected: &[String],
    found: Result<BTreeSet<String>, String>,
) -> Vec<AssertionOutcome> {
    let files = match found {
        Ok(files) => files,
        Err(e) => return vec![layers_unreadable(image, e)],
    };
    expected
        .iter()
        .map(|file| {
            let present = files.contains(file.trim_start_matches('/'));
            let shown = if present { "present" } else { "absent" };
            outcome(
                format!("{image}: file {file} in the image"),
                Status::of(present),
                "present",
                shown,
            )
        })
        .collect()
}

/// The Fail of an image whose layers are not readable tars.
fn layers_unreadable(image: &str, why: String) -> AssertionOutcome {
    outcome(
        format!("{image}: layers readable"),
        Status::Fail,
        "readable layer tars",
        why,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(expected: &[(&str, &str)], found: &[(&str, FileContent)]) -> Vec<(Status, String)> {
        let vars = BTreeMap::from([("nonce".to_owned(), "abc".to_owned())]);
        let (missing, daemon, logs) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        let evidence = Evidence {
            steps: &[],
            registries: &[],
            vars: &vars,
            missing_captures: &missing,
            daemon_images: &daemon,
            registry_logs: &logs,
            step_values: &BTreeMap::new(),
            environment: None,
        };
        let expected = expected
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        let found = found
            .iter()
            .map(|(p, c)| (p.to_string(), c.clone()))
            .collect();
        content_outcomes(&evidence, "app:1.0", &expected, Ok(found))
            .into_iter()
            .map(|o| (o.status, o.found))
            .collect()
    }

    fn file(text: &str) -> FileContent {
        FileContent::Regular {
            size: text.len() as u64,
            head: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn file_contents_compare_the_text_ignoring_one_trailing_line_break() {
        let found = [
            ("/a", file("hello\n")),
            ("/b", file("hello\n\n")),
            ("/c", file("marker=abc\r\n")),
        ];
        let outcomes = contents(
            &[("/a", "hello"), ("/b", "hello"), ("/c", "marker=${nonce}")],
            &found,
        );
        let statuses: Vec<Status> = outcomes.iter().map(|o| o.0).collect();
        assert_eq!(statuses, [Status::Pass, Status::Fail, Status::Pass]);
        assert_eq!(outcomes[1].1, r#""hello\n\n""#);
    }

    #[test]
    fn a_missing_a_special_or_a_too_large_file_is_a_fail_saying_which() {
        let big = FileContent::Regular {
            size: MAX_FILE_BYTES + 1,
            head: vec![b'x'; MAX_FILE_BYTES as usize],
        };
        let found = [
            ("/dir", FileContent::NotRegular("a directory".into())),
            ("/big", big),
        ];
        let outcomes = contents(&[("/absent", "x"), ("/dir", "x"), ("/big", "x")], &found);
        assert!(outcomes.iter().all(|o| o.0 == Status::Fail), "{outcomes:?}");
        let said: Vec<&str> = outcomes.iter().map(|o| o.1.as_str()).collect();
        assert_eq!(
            said,
            [
                "no such file",
                "65537 bytes, more than the 64 KiB the harness reads of a file: not compared",
                "not a file: a directory",
            ]
        );
    }
}
