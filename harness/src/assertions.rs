//! Turning a scenario's assertions into outcomes, against what really happened: the steps'
//! exit statuses, the registry's contents and the archives in the workspace.
//!
//! An outcome is `Fail` when the plugin broke the promise, and `Error` only when the harness
//! could not find out (the registry did not answer, say).

use std::collections::{BTreeMap, BTreeSet};

use model::result::{AssertionOutcome, Status, StepRecord};
use oci::archive::Archives;
use oci::registry::{self, Registry};
use scenario::{substitute, Assertion};

mod equivalence;
mod image;
mod secrets;
mod tarball;

use image::{tag_in_registry, Expected};
pub use secrets::step_values;
use tarball::tarball;

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
    /// The plan's environment, to search steps' whole output (`secret_absent`); without one
    /// (unit tests) the output the step records keep is searched.
    pub environment: Option<&'a runtime::Environment>,
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
        differences: None,
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
            Assertion::RegistryLogContains {
                text,
                registry,
                same_line,
            }
            | Assertion::RegistryLogLacks {
                text,
                registry,
                same_line,
            } => outcomes.push(registry_log(
                evidence,
                registry.as_deref(),
                text,
                same_line,
                matches!(assertion, Assertion::RegistryLogContains { .. }),
            )),
            Assertion::SecretAbsent(absent) => {
                outcomes.extend(secrets::secret_absent(evidence, absent, archives).await)
            }
            Assertion::ImagesEquivalent(eq) => {
                outcomes.push(equivalence::images_equivalent(evidence, eq).await)
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
            Assertion::RegistryLogContains { registry, .. }
            | Assertion::RegistryLogLacks { registry, .. } => {
                Some(registry.as_deref().unwrap_or(default))
            }
            _ => None,
        })
        .collect()
}

/// Whether a line of a registry's log holds `text` and every one of `same_line` (`contains`),
/// or none does (`!contains`). The line found is shown either way.
fn registry_log(
    evidence: &Evidence<'_>,
    registry: Option<&str>,
    text: &str,
    same_line: &[String],
    contains: bool,
) -> AssertionOutcome {
    let (name, _) = registry::named(evidence.registries, registry);
    let verb = if contains { "contains" } else { "lacks" };
    let what = if same_line.is_empty() {
        format!("log of registry {name} {verb} {text:?}")
    } else {
        format!("log of registry {name} {verb} a line with {text:?} and {same_line:?}")
    };
    let expected = match (contains, same_line.is_empty()) {
        (true, true) => "the text",
        (true, false) => "a line with every text",
        (false, true) => "no line with the text",
        (false, false) => "no line with every text",
    };
    match evidence.registry_logs.get(name) {
        Some(Some(log)) => {
            let matching = log
                .lines()
                .find(|l| l.contains(text) && same_line.iter().all(|t| l.contains(t.as_str())));
            let shown = match matching {
                Some(line) => format!("found in: {}", line.trim()),
                None => "not found".to_owned(),
            };
            outcome(
                what,
                Status::of(matching.is_some() == contains),
                expected,
                shown,
            )
        }
        _ => outcome(
            what,
            Status::Error,
            expected,
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
