//! Turning a scenario's assertions into outcomes, against what really happened: the steps'
//! exit statuses, the registry's contents and the archives in the workspace.
//!
//! An outcome is `Fail` when the plugin broke the promise, and `Error` only when the harness
//! could not find out (the registry did not answer, say).

use std::collections::{BTreeMap, BTreeSet};

use crate::errors::ArchiveReadError;
use model::result::{AssertionOutcome, Status, StepRecord};
use oci::archive::{ArchivedImage, Archives, ImageArchive};
use oci::archive::{FileContent, MAX_FILE_BYTES};
use oci::registry::{self, Registry};
use scenario::{substitute, Assertion, TarballAssertion};

mod secrets;
pub use secrets::step_values;

/// Why a capture has no value.
#[derive(Debug, Clone)]
pub struct MissingCapture {
    /// `Fail` (nothing there: the plugin's doing) or `Error` (the harness could not look).
    pub status: Status,
    pub reason: String,
}

/// What the assertions are checked against.
pub struct Evidence<'a> {
    pub steps: &'a [StepRecord],
    /// The scenario's registries, by name, the default (first) one first.
    pub registries: &'a [(String, Registry)],
    /// `registry` and `capture.NAME` placeholder values.
    pub vars: &'a BTreeMap<String, String>,
    /// Captures that could not be taken, with the reason: Fail when the plugin left nothing
    /// to take, Error when the harness could not look.
    pub missing_captures: &'a BTreeMap<String, MissingCapture>,
    /// What the shared DinD daemon answered for each image reference the assertions name
    /// (after placeholder substitution): the image id, `None` for no such image, or why it
    /// could not be asked.
    pub daemon_images: &'a BTreeMap<String, Result<Option<String>, String>>,
    /// Each registry's own log, by registry name, for the registries assertions ask about
    /// (`None`: the harness could not read it).
    pub registry_logs: &'a BTreeMap<String, Option<String>>,
    /// Every value each step variable had, placeholders substituted, by name: the secrets
    /// `secret_absent` looks for by `value_of`.
    pub step_values: &'a BTreeMap<String, BTreeSet<String>>,
}

/// Pass when `found` equals `expected`, else Fail; both are shown.
fn equality<T: PartialEq + std::fmt::Display>(
    what: impl Into<String>,
    expected: T,
    found: T,
) -> AssertionOutcome {
    let status = Status::of(expected == found);
    outcome(what, status, expected.to_string(), found.to_string())
}

/// An outcome: what was checked, how it ended, what was expected and what was found.
pub(crate) fn outcome(
    assertion: impl Into<String>,
    status: Status,
    expected: impl Into<String>,
    found: impl Into<String>,
) -> AssertionOutcome {
    AssertionOutcome {
        assertion: assertion.into(),
        status,
        expected: expected.into(),
        found: found.into(),
    }
}

impl Evidence<'_> {
    /// The record of a step that ran, or the Fail outcome saying it did not.
    fn ran(&self, name: &str, what: &str, expected: &str) -> Result<&StepRecord, AssertionOutcome> {
        self.steps.iter().find(|s| s.name == name).ok_or_else(|| {
            outcome(
                what,
                Status::Fail,
                expected,
                "the step did not run (an earlier step failed)",
            )
        })
    }
}

/// Evaluates every assertion; a tarball assertion gives one outcome per property checked.
pub async fn evaluate(
    assertions: &[Assertion],
    evidence: &Evidence<'_>,
    archives: &mut Archives,
) -> Vec<AssertionOutcome> {
    let mut outcomes = Vec::new();
    for assertion in assertions {
        match assertion {
            Assertion::StepSucceeded(name) => outcomes.push(step_exit(evidence, name, true)),
            Assertion::StepFailed(name) => outcomes.push(step_exit(evidence, name, false)),
            Assertion::StepTimedOut(name) => outcomes.push(step_timed_out(evidence, name)),
            Assertion::CapturedEquals { capture, value } => {
                let expected = substitute(value, evidence.vars);
                let what = format!("capture {capture} is {value}");
                outcomes.push(
                    match resolve(evidence, &format!("${{capture.{capture}}}")) {
                        Ok(found) if found == expected => {
                            outcome(what, Status::Pass, expected, found)
                        }
                        Ok(found) => outcome(what, Status::Fail, expected, found),
                        Err(m) => outcome(what, m.status, expected, m.reason),
                    },
                );
            }
            Assertion::NoTagsInRegistry {
                repository,
                registry,
            } => {
                let (name, registry) = registry::named(evidence.registries, registry.as_deref());
                let what = format!("no tags in {name} for {repository}");
                outcomes.push(match registry.tags(repository).await {
                    Ok(tags) if tags.is_empty() => {
                        outcome(what, Status::Pass, "no tags", "no tags")
                    }
                    Ok(tags) => outcome(what, Status::Fail, "no tags", format!("tags {tags:?}")),
                    Err(e) => outcome(what, Status::Error, "no tags", e.to_string()),
                });
            }
            Assertion::TagsInRegistry {
                repository,
                registry,
                min,
            } => {
                let (name, registry) = registry::named(evidence.registries, registry.as_deref());
                let what = format!("at least {min} tags in {name} for {repository}");
                let expected = format!("at least {min} tags");
                outcomes.push(match registry.tags(repository).await {
                    Ok(tags) => {
                        // Cache keys are long: name a few, count the rest.
                        let found = match tags.len() {
                            0 => "no tags".to_owned(),
                            n if n <= 5 => format!("{n} tags {tags:?}"),
                            n => format!("{n} tags {:?} and {} more", &tags[..5], n - 5),
                        };
                        outcome(what, Status::of(tags.len() >= *min), expected, found)
                    }
                    Err(e) => outcome(what, Status::Error, expected, e.to_string()),
                });
            }
            Assertion::TagInRegistry {
                repository,
                tag,
                registry,
                config_digest,
                manifest_digest,
                media_type,
                layers,
                labels,
                files,
                file_contents,
            } => {
                let expect = Expected {
                    config_digest: config_digest.as_deref(),
                    manifest_digest: manifest_digest.as_deref(),
                    media_type: media_type.as_deref(),
                    layers: *layers,
                    labels,
                    files,
                    file_contents,
                };
                outcomes.extend(
                    tag_in_registry(evidence, registry.as_deref(), repository, tag, expect).await,
                );
            }
            Assertion::ImageInDaemon(reference) => {
                outcomes.push(image_in_daemon(evidence, reference, true))
            }
            Assertion::NoImageInDaemon(reference) => {
                outcomes.push(image_in_daemon(evidence, reference, false))
            }
            Assertion::LogContains { step, text } => outcomes.push(log(evidence, step, text, true)),
            Assertion::LogLacks { step, text } => outcomes.push(log(evidence, step, text, false)),
            Assertion::ParallelFasterThanSerial(group) => outcomes.push(parallel(evidence, group)),
            Assertion::StepDurationUnder { step, max } => {
                outcomes.push(duration_under(evidence, step, *max))
            }
            Assertion::DurationRatioUnder { step, of, max } => {
                outcomes.push(ratio_under(evidence, step, of, *max))
            }
            Assertion::Tarball(t) => outcomes.extend(tarball(evidence, t, archives.get(&t.path))),
            Assertion::RegistryLogContains { text, registry } => {
                outcomes.push(registry_log(evidence, registry.as_deref(), text))
            }
            Assertion::SecretAbsent(absent) => {
                outcomes.extend(secrets::secret_absent(evidence, absent, archives).await)
            }
        }
    }
    outcomes
}

fn step_exit(evidence: &Evidence<'_>, name: &str, success: bool) -> AssertionOutcome {
    let (what, expected) = if success {
        (format!("step {name} succeeded"), "exit status 0")
    } else {
        (format!("step {name} failed"), "a non-zero exit status")
    };
    let step = match evidence.ran(name, &what, expected) {
        Ok(step) => step,
        Err(not_run) => return not_run,
    };
    match step.exit_code {
        Some(code) if (code == 0) == success => {
            outcome(what, Status::Pass, expected, format!("exit status {code}"))
        }
        Some(code) if step.oom_killed => outcome(
            what,
            Status::Fail,
            expected,
            format!(
                "exit status {code}: killed for using more memory than its limit ({})",
                step.limits.as_deref().unwrap_or("no limit recorded")
            ),
        ),
        Some(code) => outcome(what, Status::Fail, expected, format!("exit status {code}")),
        None => outcome(
            what,
            Status::Fail,
            expected,
            format!("no exit: timed out after {} ms", step.duration_ms),
        ),
    }
}

fn step_timed_out(evidence: &Evidence<'_>, name: &str) -> AssertionOutcome {
    let what = format!("step {name} stopped at its timeout");
    let expected = "still running at its timeout";
    let step = match evidence.ran(name, &what, expected) {
        Ok(step) => step,
        Err(not_run) => return not_run,
    };
    match (step.timed_out, step.exit_code) {
        (true, _) => outcome(
            what,
            Status::Pass,
            expected,
            format!("stopped after {} ms", step.duration_ms),
        ),
        (false, Some(code)) => outcome(
            what,
            Status::Fail,
            expected,
            format!("exited with status {code} before its timeout"),
        ),
        (false, None) => outcome(what, Status::Fail, expected, "did not run to an end"),
    }
}

/// A digest the registry serves against one expected (a capture, or written out).
fn digest_outcome(
    evidence: &Evidence<'_>,
    what: String,
    expected: &str,
    served: &str,
) -> AssertionOutcome {
    match resolve(evidence, expected) {
        Ok(expected) if expected == served => outcome(what, Status::Pass, expected, served),
        Ok(expected) => outcome(what, Status::Fail, expected, served),
        Err(m) => outcome(what, m.status, "a captured digest", m.reason),
    }
}

/// Resolves placeholders, or says which capture is missing and whose doing that is.
fn resolve(evidence: &Evidence<'_>, value: &str) -> Result<String, MissingCapture> {
    for (name, missing) in evidence.missing_captures {
        if value.contains(&format!("${{capture.{name}}}")) {
            return Err(MissingCapture {
                status: missing.status,
                reason: format!("capture {name} could not be taken: {}", missing.reason),
            });
        }
    }
    Ok(substitute(value, evidence.vars))
}

/// The registries whose own logs an assertion list reads.
pub fn logged_registries<'a>(assertions: &'a [Assertion], default: &'a str) -> Vec<&'a str> {
    assertions
        .iter()
        .filter_map(|a| match a {
            Assertion::RegistryLogContains { registry, .. } => {
                Some(registry.as_deref().unwrap_or(default))
            }
            _ => None,
        })
        .collect()
}

fn registry_log(evidence: &Evidence<'_>, registry: Option<&str>, text: &str) -> AssertionOutcome {
    let (name, _) = registry::named(evidence.registries, registry);
    let what = format!("log of registry {name} contains {text:?}");
    match evidence.registry_logs.get(name) {
        Some(Some(log)) => {
            let shown = match log.lines().find(|l| l.contains(text)) {
                Some(line) => format!("found in: {}", line.trim()),
                None => "not found".to_owned(),
            };
            outcome(what, Status::of(log.contains(text)), "the text", shown)
        }
        _ => outcome(
            what,
            Status::Error,
            "the text",
            "the registry's log could not be read",
        ),
    }
}

/// The image references an assertion list asks the daemon about, placeholders substituted.
pub fn daemon_references(assertions: &[Assertion], vars: &BTreeMap<String, String>) -> Vec<String> {
    assertions
        .iter()
        .filter_map(|a| match a {
            Assertion::ImageInDaemon(r) | Assertion::NoImageInDaemon(r) => {
                Some(substitute(r, vars))
            }
            _ => None,
        })
        .collect()
}

fn parallel(evidence: &Evidence<'_>, group: &str) -> AssertionOutcome {
    let what = format!("parallel group {group} ran faster than its steps one after another");
    let members: Vec<&StepRecord> = evidence
        .steps
        .iter()
        .filter(|s| s.group.as_deref() == Some(group))
        .collect();
    if members.len() < 2 {
        return outcome(
            what,
            Status::Fail,
            "at least two steps ran",
            format!("{} step(s) ran", members.len()),
        );
    }
    let start = members.iter().map(|s| s.started_ms).min().unwrap_or(0);
    let end = members
        .iter()
        .map(|s| s.started_ms + s.duration_ms)
        .max()
        .unwrap_or(0);
    let wall = end - start;
    let serial: u64 = members.iter().map(|s| s.duration_ms).sum();
    let status = Status::of(wall < serial);
    outcome(
        what,
        status,
        format!("less than {serial} ms (the sum)"),
        format!("{wall} ms"),
    )
}

/// How long a step, or a parallel group (its wall time), took; `None` if nothing of it ran.
fn duration_of(evidence: &Evidence<'_>, name: &str) -> Option<u64> {
    if let Some(step) = evidence.steps.iter().find(|s| s.name == name) {
        return Some(step.duration_ms);
    }
    let members = evidence
        .steps
        .iter()
        .filter(|s| s.group.as_deref() == Some(name));
    let (start, end) = members.fold(None, |span: Option<(u64, u64)>, s| {
        let (a, b) = (s.started_ms, s.started_ms + s.duration_ms);
        Some(span.map_or((a, b), |(x, y)| (x.min(a), y.max(b))))
    })?;
    Some(end - start)
}

fn ratio_under(evidence: &Evidence<'_>, name: &str, of: &str, max: f64) -> AssertionOutcome {
    let what = format!("{name} took at most {max} times as long as {of}");
    let expected = format!("a ratio of at most {max}");
    // A step that did not run to an exit (timed out) has no meaningful duration.
    let unfinished = [name, of].into_iter().find(|n| {
        evidence
            .steps
            .iter()
            .any(|s| (s.name == *n || s.group.as_deref() == Some(*n)) && s.exit_code.is_none())
    });
    if let Some(n) = unfinished {
        return outcome(
            what,
            Status::Fail,
            expected,
            format!("{n} did not run to an exit"),
        );
    }
    match (duration_of(evidence, name), duration_of(evidence, of)) {
        (Some(a), Some(b)) if b > 0 => {
            let ratio = a as f64 / b as f64;
            outcome(
                what,
                Status::of(ratio <= max),
                expected,
                format!("{ratio:.2} ({a} ms / {b} ms)"),
            )
        }
        (Some(_), Some(_)) => outcome(what, Status::Error, expected, format!("{of} took 0 ms")),
        (a, _) => {
            let missing = if a.is_none() { name } else { of };
            outcome(
                what,
                Status::Fail,
                expected,
                format!("{missing} did not run"),
            )
        }
    }
}

fn duration_under(
    evidence: &Evidence<'_>,
    name: &str,
    max: std::time::Duration,
) -> AssertionOutcome {
    let budget = max.as_millis() as u64;
    let what = format!("step {name} finished within {budget} ms");
    match evidence.steps.iter().find(|s| s.name == name) {
        None => outcome(
            what,
            Status::Fail,
            format!("at most {budget} ms"),
            "the step did not run",
        ),
        Some(step) => {
            let status = Status::of(step.exit_code.is_some() && step.duration_ms <= budget);
            outcome(
                what,
                status,
                format!("at most {budget} ms"),
                format!("{} ms", step.duration_ms),
            )
        }
    }
}

fn image_in_daemon(evidence: &Evidence<'_>, reference: &str, present: bool) -> AssertionOutcome {
    let reference = substitute(reference, evidence.vars);
    let (what, expected) = if present {
        (format!("image {reference} in the shared daemon"), "present")
    } else {
        (
            format!("no image {reference} in the shared daemon"),
            "absent",
        )
    };
    match evidence.daemon_images.get(&reference) {
        Some(Ok(Some(id))) if present => {
            outcome(what, Status::Pass, expected, format!("present ({id})"))
        }
        Some(Ok(Some(id))) => outcome(what, Status::Fail, expected, format!("present ({id})")),
        Some(Ok(None)) if present => outcome(what, Status::Fail, expected, "absent"),
        Some(Ok(None)) => outcome(what, Status::Pass, expected, "absent"),
        Some(Err(e)) => outcome(what, Status::Error, expected, e.clone()),
        None => outcome(
            what,
            Status::Error,
            expected,
            "the daemon was not asked (harness bug)",
        ),
    }
}

fn log(evidence: &Evidence<'_>, name: &str, text: &str, contains: bool) -> AssertionOutcome {
    // The assertion is named with `${nonce}` as written, so that its name is the same in every
    // run (comparisons, the mutants' catches); what it expected shows the value.
    let mut stable = evidence.vars.clone();
    stable.remove(scenario::NONCE);
    let what = format!(
        "output of step {name} {} {:?}",
        if contains { "contains" } else { "lacks" },
        substitute(text, &stable)
    );
    let with_nonce = text.contains(&format!("${{{}}}", scenario::NONCE));
    let text = &substitute(text, evidence.vars);
    let expected = match (contains, with_nonce) {
        (true, false) => "the text".to_owned(),
        (false, false) => "no such text".to_owned(),
        (true, true) => format!("the text {text:?}"),
        (false, true) => format!("no text {text:?}"),
    };
    let step = match evidence.ran(name, &what, &expected) {
        Ok(step) => step,
        Err(not_run) => return not_run,
    };
    let found = step.log.contains(text);
    let status = Status::of(found == contains);
    let shown = match step.log.lines().find(|l| l.contains(text)) {
        Some(line) => format!("found in: {}", line.trim()),
        None => "not found".to_owned(),
    };
    outcome(what, status, expected, shown)
}

/// Optional properties a served tag must have.
struct Expected<'a> {
    config_digest: Option<&'a str>,
    manifest_digest: Option<&'a str>,
    media_type: Option<&'a str>,
    layers: Option<usize>,
    labels: &'a BTreeMap<String, String>,
    files: &'a [String],
    file_contents: &'a BTreeMap<String, String>,
}

async fn tag_in_registry(
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
        Err(e) => {
            return vec![outcome(
                format!("{image}: layers readable"),
                Status::Fail,
                "readable layer tars",
                e,
            )]
        }
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
fn label_outcomes(
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
fn file_outcomes(
    image: &str,
    expected: &[String],
    found: Result<BTreeSet<String>, String>,
) -> Vec<AssertionOutcome> {
    let files = match found {
        Ok(files) => files,
        Err(e) => {
            return vec![outcome(
                format!("{image}: layers readable"),
                Status::Fail,
                "readable layer tars",
                e,
            )]
        }
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

fn tarball(
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
