//! What a scenario checks: captures, assertions, the accounting's leftovers, digests and references.

use std::collections::{BTreeMap, BTreeSet};

use crate::grammar::{self, shown};

use super::*;

impl Scenario {
    /// Captures: registries, steps and captures they name exist; files are read inside the
    /// workspace; repositories, tags and references follow their grammars.
    pub(super) fn validate_captures(&self, names: &BTreeSet<&str>) -> Result<(), Problem> {
        for (name, capture) in &self.captures {
            let located = |message: String, value: &str| {
                Problem::at(message, value, Some("captures:"))
                    .after(&format!("{name}:"))
                    .or(&format!("{name}:"))
            };
            let (Capture::RegistryConfigDigest(t) | Capture::RegistryManifestDigest(t)) = capture
            else {
                match capture {
                    Capture::Json { file, pointer } => {
                        grammar::check_relative_path(file).map_err(|e| {
                            located(
                                format!("capture `{}`: {e}; {IN_WORKSPACE}", shown(name)),
                                file,
                            )
                        })?;
                        if !pointer.is_empty() && !pointer.starts_with('/') {
                            let message = format!(
                                "capture `{}`: JSON pointer `{}` must be empty or start with `/`",
                                shown(name),
                                shown(pointer)
                            );
                            return Err(located(message, pointer));
                        }
                    }
                    Capture::TarballConfigDigest(path) => {
                        grammar::check_relative_path(path).map_err(|e| {
                            located(
                                format!("capture `{}`: {e}; {IN_WORKSPACE}", shown(name)),
                                path,
                            )
                        })?;
                    }
                    Capture::Output { step, key } => {
                        if !names.contains(step.as_str()) {
                            let message = format!(
                                "capture `{}` reads the output of step `{}`, which the scenario does not have",
                                shown(name),
                                shown(step)
                            );
                            return Err(located(message, step));
                        }
                        grammar::check_env_name(key).map_err(|e| {
                            located(format!("capture `{}`: output key {e}", shown(name)), key)
                        })?;
                    }
                    Capture::DaemonImageId(reference) => {
                        check_placeholders(reference, &self.registries, &BTreeMap::new())
                            .and_then(|()| self.check_reference(reference))
                            .map_err(|e| {
                                located(format!("capture `{}`: {e}", shown(name)), reference)
                            })?;
                    }
                    _ => {}
                }
                continue;
            };
            if let Some(r) = t.registry.as_ref().filter(|r| !self.registries.contains(r)) {
                let message = format!(
                    "capture names registry `{}`, which is not under `registries`",
                    shown(r)
                );
                return Err(Problem::at(message, r, Some("captures:")));
            }
            for value in [&t.repository, &t.tag] {
                if value.contains("${") {
                    let message = format!(
                        "capture repository and tag are literal: `{}` has a placeholder",
                        shown(value)
                    );
                    return Err(Problem::at(message, value, Some("captures:")));
                }
            }
            grammar::check_repository(&t.repository)
                .map_err(|e| located(format!("capture `{}`: {e}", shown(name)), &t.repository))?;
            grammar::check_tag(&t.tag)
                .map_err(|e| located(format!("capture `{}`: {e}", shown(name)), &t.tag))?;
            if let Some(step) = t.after.as_ref().filter(|s| !names.contains(s.as_str())) {
                let message = format!(
                    "capture is taken after step `{}`, which does not exist",
                    shown(step)
                );
                return Err(Problem::at(message, step, Some("captures:")));
            }
        }
        Ok(())
    }

    pub(super) fn validate_assertions(&self, names: &BTreeSet<&str>) -> Result<(), Problem> {
        if self.assertions.is_empty() {
            return Err(Problem::at(
                "`assertions` is empty: a scenario that asserts nothing cannot fail",
                "assertions",
                None,
            ));
        }
        for assertion in &self.assertions {
            match assertion {
                Assertion::StepSucceeded(step)
                | Assertion::StepFailed(step)
                | Assertion::StepTimedOut(step)
                | Assertion::LogContains { step, .. }
                | Assertion::LogLacks { step, .. }
                    if !names.contains(step.as_str()) =>
                {
                    let message = format!(
                        "assertion names step `{}`, which does not exist",
                        shown(step)
                    );
                    return Err(Problem::at(message, step, Some("assertions:")));
                }
                Assertion::NoTagsInRegistry {
                    registry: Some(r), ..
                }
                | Assertion::TagsInRegistry {
                    registry: Some(r), ..
                }
                | Assertion::TagInRegistry {
                    registry: Some(r), ..
                }
                | Assertion::RegistryLogContains {
                    registry: Some(r), ..
                }
                | Assertion::RegistryLogLacks {
                    registry: Some(r), ..
                } if !self.registries.contains(r) => {
                    let message = format!(
                        "assertion names registry `{}`, which is not under `registries`",
                        shown(r)
                    );
                    return Err(Problem::at(message, r, Some("assertions:")));
                }
                Assertion::StepDurationUnder { step, .. } if !names.contains(step.as_str()) => {
                    let message = format!(
                        "assertion names step `{}`, which does not exist",
                        shown(step)
                    );
                    return Err(Problem::at(message, step, Some("assertions:")));
                }
                Assertion::ParallelFasterThanSerial(group)
                    if self
                        .steps
                        .iter()
                        .filter(|s| s.parallel.as_deref() == Some(group.as_str()))
                        .count()
                        < 2 =>
                {
                    let message =
                        format!("parallel group `{}` needs at least two steps", shown(group));
                    return Err(Problem::at(message, group, Some("assertions:")));
                }
                Assertion::CapturedEquals { capture, value } => {
                    if !self.captures.contains_key(capture) {
                        let message = format!(
                            "captured_equals names capture `{}`, which is not under `captures`",
                            shown(capture)
                        );
                        return Err(Problem::at(message, capture, Some("assertions:")));
                    }
                    check_placeholders(value, &self.registries, &self.captures).map_err(|e| {
                        Problem::at(format!("captured_equals: {e}"), value, Some("assertions:"))
                    })?;
                }
                Assertion::TagInRegistry {
                    config_digest,
                    manifest_digest,
                    ..
                } => {
                    if let Some(value) = config_digest {
                        self.check_digest("tag_in_registry config_digest", value)?;
                    }
                    if let Some(value) = manifest_digest {
                        self.check_digest("tag_in_registry manifest_digest", value)?;
                    }
                }
                Assertion::Tarball(t) => {
                    for tag in &t.tags {
                        check_placeholders(tag, &self.registries, &self.captures).map_err(|e| {
                            Problem::at(format!("tarball tags: {e}"), tag, Some("assertions:"))
                        })?;
                    }
                    if let Some(value) = &t.config_digest {
                        self.check_digest("tarball config_digest", value)?;
                    }
                }
                Assertion::DurationRatioUnder { step, of, max } => {
                    for name in [step, of] {
                        let known = names.contains(name.as_str())
                            || self.steps.iter().any(|s| s.parallel.as_ref() == Some(name));
                        if !known {
                            let message = format!(
                                "assertion names `{}`, which is neither a step nor a parallel group",
                                shown(name)
                            );
                            return Err(Problem::at(message, name, Some("assertions:")));
                        }
                    }
                    if !(max.is_finite() && *max > 0.0) {
                        let message =
                            format!("duration ratio `max` must be a positive number, not {max}");
                        let anchor = format!("of: {of}");
                        return Err(Problem::at(message, "max", Some(&anchor)));
                    }
                }
                _ => {}
            }
        }
        // What registries, the daemon and the workspace are asked about follows their grammars.
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for assertion in &self.assertions {
            let kind = kind(assertion);
            let nth = *seen.entry(kind).and_modify(|n| *n += 1).or_insert(1);
            let located = |message: String, value: &str| {
                let mut problem = Problem::at(message, value, Some("assertions:"));
                for _ in 0..nth {
                    problem = problem.after(kind);
                }
                problem.or(kind)
            };
            match assertion {
                Assertion::NoTagsInRegistry { repository, .. } => {
                    grammar::check_repository(repository)
                        .map_err(|e| located(format!("{kind}: {e}"), repository))?;
                }
                Assertion::TagsInRegistry {
                    repository, min, ..
                } => {
                    grammar::check_repository(repository)
                        .map_err(|e| located(format!("{kind}: {e}"), repository))?;
                    if *min == 0 {
                        let message = format!(
                            "{kind} `{}`: min must be at least 1 (no_tags_in_registry says there are none)",
                            shown(repository)
                        );
                        return Err(located(message, "min"));
                    }
                }
                Assertion::TagInRegistry {
                    repository, tag, ..
                } => {
                    grammar::check_repository(repository)
                        .map_err(|e| located(format!("{kind}: {e}"), repository))?;
                    grammar::check_tag(tag).map_err(|e| located(format!("{kind}: {e}"), tag))?;
                }
                Assertion::ImageInDaemon(reference) | Assertion::NoImageInDaemon(reference) => {
                    check_placeholders(reference, &self.registries, &self.captures)
                        .and_then(|()| self.check_reference(reference))
                        .map_err(|e| located(format!("{kind}: {e}"), reference))?;
                }
                Assertion::Tarball(t) => {
                    grammar::check_relative_path(&t.path).map_err(|e| {
                        located(format!("tarball: {e}; {IN_WORKSPACE}"), &t.path).or("path")
                    })?;
                    for tag in &t.tags {
                        self.check_reference(tag)
                            .map_err(|e| located(format!("tarball tags: {e}"), tag))?;
                    }
                }
                Assertion::ImagesEquivalent(eq) => {
                    for image in [&eq.a, &eq.b] {
                        if let Some(r) = image
                            .registry
                            .as_ref()
                            .filter(|r| !self.registries.contains(r))
                        {
                            let message = format!(
                                "{kind} names registry `{}`, which is not under `registries`",
                                shown(r)
                            );
                            return Err(located(message, r));
                        }
                        grammar::check_repository(&image.repository)
                            .map_err(|e| located(format!("{kind}: {e}"), &image.repository))?;
                        grammar::check_tag(&image.tag)
                            .map_err(|e| located(format!("{kind}: {e}"), &image.tag))?;
                    }
                    if eq.a == eq.b {
                        let message = format!(
                            "{kind}: `a` and `b` name the same image ({}:{}); compare two",
                            shown(&eq.a.repository),
                            shown(&eq.a.tag)
                        );
                        return Err(located(message, "b:"));
                    }
                    for allowed in &eq.allow {
                        check_allowed(allowed)
                            .map_err(|e| located(format!("{kind} allow: {e}"), &allowed.key))?;
                    }
                }
                Assertion::StepDurationUnder { step, max }
                    if max.is_zero() || *max > MAX_TIMEOUT =>
                {
                    let message = format!(
                        "step_duration_under `{}`: max {} must be more than 0 and at most {}",
                        shown(step),
                        humantime::format_duration(*max),
                        humantime::format_duration(MAX_TIMEOUT)
                    );
                    return Err(located(message, "max"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Leftovers and loosened accounting name declared registries and give reasons; what they
    /// name follows the repository, tag and reference grammars.
    pub(super) fn validate_accounting(&self) -> Result<(), Problem> {
        for leftover in &self.leftovers {
            let (because, registry, value) = match leftover {
                Leftover::RegistryTag {
                    repository,
                    registry,
                    because,
                    tag,
                } => {
                    let located = |e: String, value: &str| {
                        Problem::at(format!("leftover: {e}"), value, Some("leftovers:"))
                    };
                    grammar::check_repository(repository).map_err(|e| located(e, repository))?;
                    grammar::check_tag(tag).map_err(|e| located(e, tag))?;
                    (because, registry.as_ref(), repository)
                }
                Leftover::DaemonImage { reference, because } => {
                    check_placeholders(reference, &self.registries, &BTreeMap::new())
                        .and_then(|()| self.check_reference(reference))
                        .map_err(|e| {
                            Problem::at(format!("leftover: {e}"), reference, Some("leftovers:"))
                        })?;
                    (because, None, reference)
                }
            };
            if let Some(r) = registry.filter(|r| !self.registries.contains(r)) {
                let message = format!(
                    "leftover names registry `{}`, which is not under `registries`",
                    shown(r)
                );
                return Err(Problem::at(message, r, Some("leftovers:")));
            }
            if because.trim().is_empty() {
                let message = format!("leftover `{}` needs a reason (`because`)", shown(value));
                return Err(Problem::at(message, value, Some("leftovers:")));
            }
        }
        for (name, reason) in &self.loosen_accounting {
            let problem = if name != "daemon" && !self.registries.contains(name) {
                format!(
                    "loosen_accounting names `{}`, which is neither `daemon` nor a registry under `registries`",
                    shown(name)
                )
            } else if reason.trim().is_empty() {
                format!("loosening the accounting of `{name}` needs a reason")
            } else {
                continue;
            };
            return Err(Problem::at(problem, name, Some("loosen_accounting:")));
        }
        Ok(())
    }

    /// A digest is a capture (`${capture.NAME}`) or written out: `algorithm:hex`, and for
    /// sha256 exactly 64 lowercase hex digits.
    pub(super) fn check_digest(&self, what: &str, value: &str) -> Result<(), Problem> {
        let located = |e: String| Problem::at(format!("{what}: {e}"), value, Some("assertions:"));
        check_placeholders(value, &self.registries, &self.captures).map_err(located)?;
        if value.contains("${") {
            return Ok(());
        }
        grammar::check_digest(value).map_err(|_| {
            located(format!(
                "`{}` is not a digest (`sha256:` and 64 lowercase hex digits, or `${{capture.NAME}}`)",
                shown(value)
            ))
        })
    }

    /// An image reference as the harness will use it: registry placeholders replaced by their
    /// addresses (`${registry}` → `registry:5000`), `${nonce}` by 16 hex digits; one that
    /// depends on a capture is checked when it is used.
    pub(super) fn check_reference(&self, reference: &str) -> Result<(), String> {
        if reference.contains("${capture.") {
            return Ok(());
        }
        let mut vars: BTreeMap<String, String> = self
            .registries
            .iter()
            .map(|r| (r.clone(), format!("{r}:{REGISTRY_PORT}")))
            .collect();
        vars.insert(NONCE.to_owned(), NONCE_SAMPLE.to_owned());
        grammar::check_reference(&substitute(reference, &vars))
    }
}

/// An allowed difference: a glob over a key of a known section or over an absolute path, with
/// a reason.
fn check_allowed(allowed: &AllowedDifference) -> Result<(), String> {
    let key = allowed.key.as_str();
    if !key.starts_with('/') {
        let section = key.split('.').next().unwrap_or(key);
        if !IMAGE_DIFFERENCE_SECTIONS.contains(&section) {
            return Err(format!(
                "`{}` is neither a file's absolute path nor a key of {}",
                shown(key),
                IMAGE_DIFFERENCE_SECTIONS.join(", ")
            ));
        }
    }
    globset::GlobBuilder::new(key)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("`{}` is not a glob: {}", shown(key), e.kind()))?;
    if allowed.because.trim().is_empty() {
        return Err(format!("`{}` needs a reason (`because`)", shown(key)));
    }
    Ok(())
}
