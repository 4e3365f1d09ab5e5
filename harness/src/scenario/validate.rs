//! Checking that a parsed scenario makes sense, and pointing at the text when it does not.

use std::collections::BTreeMap;

use super::types::*;

impl Scenario {
    pub(super) fn validate(&self) -> Result<(), Problem> {
        if self.version != SCHEMA_VERSION {
            let message = format!(
                "unsupported version {} (this harness reads version {SCHEMA_VERSION})",
                self.version
            );
            return Err(Problem::at(message, "version", None));
        }
        if self.builders.is_empty() && self.skip.is_empty() {
            return Err(Problem::at(
                "`builders` is empty: name at least one builder",
                "builders",
                None,
            ));
        }
        let known = KNOWN_BUILDERS.join(", ");
        for builder in &self.builders {
            if !KNOWN_BUILDERS.contains(&builder.as_str()) {
                return Err(Problem::at(
                    format!("unknown builder `{builder}` (known: {known})"),
                    builder,
                    Some("builders"),
                ));
            }
        }
        for (builder, reason) in &self.skip {
            let problem = if !KNOWN_BUILDERS.contains(&builder.as_str()) {
                format!("unknown builder `{builder}` under `skip` (known: {known})")
            } else if self.builders.contains(builder) {
                format!("builder `{builder}` is both run and skipped")
            } else if reason.trim().is_empty() {
                format!("skipping `{builder}` needs a reason")
            } else {
                continue;
            };
            return Err(Problem::at(problem, builder, Some("skip:")));
        }
        for (builder, expected) in &self.expect {
            let problem = if !self.builders.contains(builder) {
                format!("`expect` names builder `{builder}`, which is not under `builders`")
            } else if expected.because.trim().is_empty() {
                format!("the expected failure on `{builder}` needs a reason (`because`)")
            } else if expected.fails.is_empty() {
                format!("the expected failure on `{builder}` lists no assertion under `fails`")
            } else if let Some(stray) = expected.fails.iter().find(|f| !self.assertions.contains(f))
            {
                format!(
                    "`expect.{builder}.fails` lists an assertion that is not under `assertions`: {}",
                    compact(stray)
                )
            } else {
                continue;
            };
            return Err(Problem::at(problem, builder, Some("expect:")));
        }
        if self.registries.is_empty() {
            return Err(Problem::at(
                "`registries` is empty: a scenario needs at least one registry",
                "registries",
                None,
            ));
        }
        for (i, name) in self.registries.iter().enumerate() {
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid || name == "dind" || name.starts_with("capture") {
                let message = format!("registry name `{name}` must be lowercase letters, digits and `-`, and not `dind`");
                return Err(Problem::at(message, name, Some("registries")));
            }
            if self.registries[..i].contains(name) {
                return Err(Problem::at(
                    format!("registry `{name}` is listed twice"),
                    name,
                    Some("registries"),
                ));
            }
        }
        for name in self.registry_auth.keys() {
            if !self.registries.contains(name) {
                let message = format!(
                    "registry_auth names registry `{name}`, which is not under `registries`"
                );
                return Err(Problem::at(message, name, Some("registry_auth:")));
            }
            if self.registries.first() == Some(name) {
                let message = format!(
                    "the first registry (`{name}`) holds the base image and cannot require auth"
                );
                return Err(Problem::at(message, name, Some("registry_auth:")));
            }
        }
        if self.steps.is_empty() {
            return Err(Problem::at(
                "`steps` is empty: a scenario runs at least one step",
                "steps",
                None,
            ));
        }
        let mut groups_seen: Vec<&str> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            if let Some(group) = step.parallel.as_deref() {
                let continues = i > 0 && self.steps[i - 1].parallel.as_deref() == Some(group);
                if !continues && groups_seen.contains(&group) {
                    let message =
                        format!("the steps of parallel group `{group}` must be consecutive");
                    return Err(Problem::last(message, &format!("parallel: {group}")));
                }
                groups_seen.push(group);
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for step in &self.steps {
            if !names.insert(step.name.as_str()) {
                return Err(Problem::last(
                    format!("two steps are named `{}`", step.name),
                    &format!("name: {}", step.name),
                ));
            }
            for key in step.settings.keys() {
                if step.env.contains_key(&setting_variable(key)) {
                    let message = format!(
                        "step `{}` sets {} both as setting `{key}` and in env",
                        step.name,
                        setting_variable(key)
                    );
                    return Err(Problem::at(message, key, Some("settings:")));
                }
            }
            let here = format!("name: {}", step.name);
            if let Some(role) = &step.role {
                let located = |m: String| Problem::at(m, role, Some(&here));
                for name in placeholders(role).map_err(located)? {
                    if name != "builder" {
                        return Err(located(format!(
                            "step `{}`: unknown placeholder `${{{name}}}` in role (known: ${{builder}})",
                            step.name
                        )));
                    }
                }
            }
            if let Some(command) = &step.run {
                if command.trim().is_empty() {
                    let message = format!("step `{}` has an empty `run` command", step.name);
                    return Err(Problem::at(message, "run:", Some(&here)));
                }
                check_placeholders(command, &self.registries, &BTreeMap::new()).map_err(|e| {
                    Problem::at(
                        format!("step `{}`, run: {e}", step.name),
                        command,
                        Some(&here),
                    )
                })?;
            }
            for (key, value) in step.env.iter().chain(step.settings.iter()) {
                check_placeholders(value, &self.registries, &BTreeMap::new()).map_err(|e| {
                    Problem::at(format!("step `{}`, {key}: {e}", step.name), value, None)
                })?;
            }
        }
        for capture in self.captures.values() {
            let (Capture::RegistryConfigDigest(t) | Capture::RegistryManifestDigest(t)) = capture
            else {
                continue;
            };
            if let Some(r) = t.registry.as_ref().filter(|r| !self.registries.contains(r)) {
                let message =
                    format!("capture names registry `{r}`, which is not under `registries`");
                return Err(Problem::at(message, r, Some("captures:")));
            }
            for value in [&t.repository, &t.tag] {
                if value.contains("${") {
                    let message = format!(
                        "capture repository and tag are literal: `{value}` has a placeholder"
                    );
                    return Err(Problem::at(message, value, Some("captures:")));
                }
            }
            if let Some(step) = t.after.as_ref().filter(|s| !names.contains(s.as_str())) {
                let message = format!("capture is taken after step `{step}`, which does not exist");
                return Err(Problem::at(message, step, Some("captures:")));
            }
        }
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
                | Assertion::LogContains { step, .. }
                | Assertion::LogLacks { step, .. }
                    if !names.contains(step.as_str()) =>
                {
                    let message = format!("assertion names step `{step}`, which does not exist");
                    return Err(Problem::at(message, step, Some("assertions:")));
                }
                Assertion::NoTagsInRegistry {
                    registry: Some(r), ..
                }
                | Assertion::TagInRegistry {
                    registry: Some(r), ..
                }
                | Assertion::RegistryLogContains {
                    registry: Some(r), ..
                } if !self.registries.contains(r) => {
                    let message =
                        format!("assertion names registry `{r}`, which is not under `registries`");
                    return Err(Problem::at(message, r, Some("assertions:")));
                }
                Assertion::StepDurationUnder { step, .. } if !names.contains(step.as_str()) => {
                    let message = format!("assertion names step `{step}`, which does not exist");
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
                    let message = format!("parallel group `{group}` needs at least two steps");
                    return Err(Problem::at(message, group, Some("assertions:")));
                }
                Assertion::TagInRegistry {
                    config_digest: Some(value),
                    ..
                } => self.check_digest("tag_in_registry config_digest", value)?,
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
                                "assertion names `{name}`, which is neither a step nor a parallel group"
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
        self.validate_accounting()
    }

    /// Leftovers and loosened accounting name declared registries and give reasons.
    fn validate_accounting(&self) -> Result<(), Problem> {
        for leftover in &self.leftovers {
            let (because, registry, value) = match leftover {
                Leftover::RegistryTag {
                    repository,
                    registry,
                    because,
                    ..
                } => (because, registry.as_ref(), repository),
                Leftover::DaemonImage { reference, because } => {
                    check_placeholders(reference, &self.registries, &BTreeMap::new()).map_err(
                        |e| Problem::at(format!("leftover: {e}"), reference, Some("leftovers:")),
                    )?;
                    (because, None, reference)
                }
            };
            if let Some(r) = registry.filter(|r| !self.registries.contains(r)) {
                let message =
                    format!("leftover names registry `{r}`, which is not under `registries`");
                return Err(Problem::at(message, r, Some("leftovers:")));
            }
            if because.trim().is_empty() {
                let message = format!("leftover `{value}` needs a reason (`because`)");
                return Err(Problem::at(message, value, Some("leftovers:")));
            }
        }
        for (name, reason) in &self.loosen_accounting {
            let problem = if name != "daemon" && !self.registries.contains(name) {
                format!(
                    "loosen_accounting names `{name}`, which is neither `daemon` nor a registry under `registries`"
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
}

impl Scenario {
    /// A digest is a capture (`${capture.NAME}`) or written out: `algorithm:hex`, and for
    /// sha256 exactly 64 lowercase hex digits.
    fn check_digest(&self, what: &str, value: &str) -> Result<(), Problem> {
        let located = |e: String| Problem::at(format!("{what}: {e}"), value, Some("assertions:"));
        check_placeholders(value, &self.registries, &self.captures).map_err(located)?;
        if value.contains("${") {
            return Ok(());
        }
        let valid = match value.split_once(':') {
            Some(("sha256", hex)) => {
                hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            }
            Some((algorithm, encoded)) => {
                !algorithm.is_empty()
                    && algorithm.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)
                    })
                    && !encoded.is_empty()
                    && encoded
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
            }
            None => false,
        };
        if valid {
            Ok(())
        } else {
            Err(located(format!(
                "`{value}` is not a digest (`sha256:` and 64 lowercase hex digits, or `${{capture.NAME}}`)"
            )))
        }
    }
}

/// An assertion as short JSON, without the fields left at their defaults.
fn compact(assertion: &Assertion) -> String {
    fn prune(value: serde_json::Value) -> Option<serde_json::Value> {
        use serde_json::Value;
        match value {
            Value::Null => None,
            Value::Array(items) if items.is_empty() => None,
            Value::Object(map) => {
                let map: serde_json::Map<String, Value> = map
                    .into_iter()
                    .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                    .collect();
                (!map.is_empty()).then_some(Value::Object(map))
            }
            other => Some(other),
        }
    }
    serde_json::to_value(assertion)
        .ok()
        .and_then(prune)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// A scenario that parses but does not make sense, and the text to point at.
pub(super) struct Problem {
    pub(super) message: String,
    pub(super) needle: String,
    /// Look for the needle after this text (e.g. `skip:`), not from the start.
    after: Option<String>,
    /// Point at the last occurrence rather than the first.
    last: bool,
}

impl Problem {
    fn at(message: impl Into<String>, needle: &str, after: Option<&str>) -> Problem {
        Problem {
            message: message.into(),
            needle: needle.to_owned(),
            after: after.map(str::to_owned),
            last: false,
        }
    }

    fn last(message: impl Into<String>, needle: &str) -> Problem {
        Problem {
            message: message.into(),
            needle: needle.to_owned(),
            after: None,
            last: true,
        }
    }

    /// Byte offset of the offending text, when it can be found.
    pub(super) fn locate(&self, text: &str) -> Option<usize> {
        if self.needle.is_empty() {
            return None;
        }
        let start = match &self.after {
            Some(anchor) => text.find(anchor.as_str())? + anchor.len(),
            None => 0,
        };
        let rest = &text[start..];
        let found = if self.last {
            rest.rfind(&self.needle)
        } else {
            rest.find(&self.needle)
        };
        found.map(|i| start + i)
    }
}

/// Checks that every `${...}` in `value` names a known placeholder.
fn check_placeholders(
    value: &str,
    registries: &[String],
    captures: &BTreeMap<String, Capture>,
) -> Result<(), String> {
    for name in placeholders(value)? {
        match name.strip_prefix("capture.") {
            None if registries.iter().any(|r| r == name) => {}
            Some(capture) if captures.contains_key(capture) => {}
            Some(capture) => {
                return Err(format!("`${{{name}}}` names capture `{capture}`, which is not defined under `captures`"));
            }
            None => {
                let known: Vec<String> = registries.iter().map(|r| format!("${{{r}}}")).collect();
                return Err(format!(
                    "unknown placeholder `${{{name}}}` (known: {}, ${{capture.NAME}})",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(())
}

fn placeholders(value: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed placeholder in `{value}`"))?;
        found.push(&after[..end]);
        rest = &after[end + 1..];
    }
    Ok(found)
}

/// Replaces placeholders with their values. Unknown ones were rejected at load time.
pub fn substitute(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = value.to_owned();
    for (name, replacement) in vars {
        out = out.replace(&format!("${{{name}}}"), replacement);
    }
    out
}
