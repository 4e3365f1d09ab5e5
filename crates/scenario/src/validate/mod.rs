//! Checking that a parsed scenario makes sense, and pointing at the text when it does not.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::grammar::shown;
use crate::types::*;

mod checks;
mod harness_steps;
mod registries;
mod secrets;
mod services;
mod steps;

/// The longest a step may be given (`timeout`), and the largest duration budget
/// (`step_duration_under.max`).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// The longest step or parallel group name, in characters (a step's name ends its container's).
pub const MAX_NAME: usize = 100;

/// The longest registry name: it is a host name on the scenario's network (a DNS label).
pub const MAX_REGISTRY_NAME: usize = 63;

/// The port every registry listens on, as the plugins see it (`${registry}` = `registry:5000`).
const REGISTRY_PORT: u16 = 5000;

/// The placeholder for a value drawn at random for each run of a plan (`${nonce}`): 16
/// lowercase hex digits, valid in a tag, a repository name or a label, never the same twice,
/// so that evidence of this run (a line the build's RUN printed) cannot come from another.
pub const NONCE: &str = "nonce";

/// What `${nonce}` stands for while a scenario is checked (references with it must be valid).
const NONCE_SAMPLE: &str = "0123456789abcdef";

impl Scenario {
    pub(super) fn validate(&self) -> Result<(), Problem> {
        if self.version != SCHEMA_VERSION {
            let message = format!(
                "unsupported version {} (this harness reads version {SCHEMA_VERSION})",
                self.version
            );
            return Err(Problem::at(message, "version", None));
        }
        self.validate_claims()?;
        if self.builders.is_empty() && self.skip.is_empty() {
            return Err(Problem::at(
                "`builders` is empty: name at least one builder",
                "builders",
                None,
            ));
        }
        let known = KNOWN_BUILDERS.join(", ");
        for (i, builder) in self.builders.iter().enumerate() {
            if !KNOWN_BUILDERS.contains(&builder.as_str()) {
                return Err(Problem::at(
                    format!("unknown builder `{}` (known: {known})", shown(builder)),
                    builder,
                    Some("builders"),
                ));
            }
            if self.builders[..i].contains(builder) {
                let message = format!(
                    "builder `{builder}` is listed twice under `builders` (its plans would share \
                     one workspace and one result file)"
                );
                return Err(Problem::at(message, builder, Some("builders")).after(builder));
            }
        }
        for (builder, reason) in &self.skip {
            let problem = if !KNOWN_BUILDERS.contains(&builder.as_str()) {
                format!(
                    "unknown builder `{}` under `skip` (known: {known})",
                    shown(builder)
                )
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
                format!(
                    "`expect` names builder `{}`, which is not under `builders`",
                    shown(builder)
                )
            } else if expected.because.trim().is_empty() {
                format!("the expected failure on `{builder}` needs a reason (`because`)")
            } else if expected.fails.is_empty() {
                format!("the expected failure on `{builder}` lists no assertion under `fails`")
            } else if let Some(stray) = expected.fails.iter().find(|f| !self.assertions.contains(f))
            {
                format!(
                    "`expect.{builder}.fails` lists an assertion that is not under `assertions`: {}",
                    shown(&compact(stray))
                )
            } else {
                continue;
            };
            return Err(Problem::at(problem, builder, Some("expect:")));
        }
        self.validate_registries()?;
        self.validate_services()?;
        self.validate_workspace()?;
        let names = self.validate_steps()?;
        self.validate_captures(&names)?;
        self.validate_assertions(&names)?;
        self.validate_secrets_absent(&names)?;
        self.validate_accounting()
    }
}

/// The longest claim id, in characters.
pub const MAX_CLAIM_ID: usize = 80;

/// Whether `id` is a claim id: lowercase letters, digits and single `-` between them.
pub fn is_claim_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLAIM_ID
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

impl Scenario {
    fn validate_claims(&self) -> Result<(), Problem> {
        if self.claim.is_empty() {
            return Err(Problem::at(
                "`claim` is empty: name the ids of the ledger's claims the scenario checks",
                "claim",
                None,
            ));
        }
        for (i, id) in self.claim.iter().enumerate() {
            if !is_claim_id(id) {
                let message = format!(
                    "`{}` is not a claim id (lowercase letters, digits and `-`, at most \
                     {MAX_CLAIM_ID} characters, as in claims/ledger.yaml)",
                    shown(id)
                );
                return Err(Problem::at(message, id, Some("claim")));
            }
            if self.claim[..i].contains(id) {
                let message = format!("claim `{id}` is cited twice under `claim`");
                return Err(Problem::at(message, id, Some("claim")).after(id));
            }
        }
        Ok(())
    }
}

/// Why a path is refused, after what is wrong with it.
const IN_WORKSPACE: &str =
    "the harness reads it inside the workspace (a relative path, without `..`)";

/// A step's name as the end of its container's name: characters other than letters, digits and
/// `-` become `-` (as `runtime` names step containers `conformance-<instance>-step-<this>`).
pub fn container_suffix(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// How a value with control characters is written in a double-quoted YAML string, to find it.
fn yaml_escaped(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The key an assertion is written with, e.g. `tag_in_registry`.
fn kind(assertion: &Assertion) -> &'static str {
    match assertion {
        Assertion::StepSucceeded(_) => "step_succeeded",
        Assertion::StepFailed(_) => "step_failed",
        Assertion::StepTimedOut(_) => "step_timed_out",
        Assertion::CapturedEquals { .. } => "captured_equals",
        Assertion::NoTagsInRegistry { .. } => "no_tags_in_registry",
        Assertion::TagsInRegistry { .. } => "tags_in_registry",
        Assertion::TagInRegistry { .. } => "tag_in_registry",
        Assertion::ImageInDaemon(_) => "image_in_daemon",
        Assertion::NoImageInDaemon(_) => "no_image_in_daemon",
        Assertion::LogContains { .. } => "log_contains",
        Assertion::LogLacks { .. } => "log_lacks",
        Assertion::Tarball(_) => "tarball",
        Assertion::ParallelFasterThanSerial(_) => "parallel_faster_than_serial",
        Assertion::DurationRatioUnder { .. } => "duration_ratio_under",
        Assertion::StepDurationUnder { .. } => "step_duration_under",
        Assertion::RegistryLogContains { .. } => "registry_log_contains",
        Assertion::RegistryLogLacks { .. } => "registry_log_lacks",
        Assertion::SecretAbsent(_) => "secret_absent",
        Assertion::ImagesEquivalent(_) => "images_equivalent",
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
    /// Texts looked for one after another before the needle, each after the previous one
    /// (e.g. `assertions:`, then the second `tag_in_registry`): they narrow the search. One
    /// that is not found is passed over.
    anchors: Vec<String>,
    /// The offending text; when it is not found (e.g. a value written with escapes), the
    /// next one (e.g. its key).
    needles: Vec<String>,
    /// Point at the last occurrence rather than the first.
    last: bool,
}

impl Problem {
    fn at(message: impl Into<String>, needle: &str, after: Option<&str>) -> Problem {
        Problem {
            message: message.into(),
            anchors: after.into_iter().map(str::to_owned).collect(),
            needles: vec![needle.to_owned()],
            last: false,
        }
    }

    fn last(message: impl Into<String>, needle: &str) -> Problem {
        Problem {
            message: message.into(),
            anchors: Vec::new(),
            needles: vec![needle.to_owned()],
            last: true,
        }
    }

    /// Looks for the needle only after `anchor` too (after the anchors given so far).
    fn after(mut self, anchor: &str) -> Problem {
        self.anchors.push(anchor.to_owned());
        self
    }

    /// Points at `needle` when the needle given so far is not found.
    fn or(mut self, needle: &str) -> Problem {
        self.needles.push(needle.to_owned());
        self
    }

    /// Byte offset and length of the offending text, when it can be found; else of the last
    /// anchor found (what encloses it).
    pub(super) fn locate(&self, text: &str) -> Option<(usize, usize)> {
        let mut start = 0;
        let mut enclosing = None;
        for anchor in self.anchors.iter().filter(|a| !a.is_empty()) {
            if let Some(i) = text[start..].find(anchor.as_str()) {
                enclosing = Some((start + i, anchor.len()));
                start += i + anchor.len();
            }
        }
        let rest = &text[start..];
        self.needles
            .iter()
            .filter(|n| !n.is_empty())
            .find_map(|needle| {
                let found = if self.last {
                    rest.rfind(needle.as_str())
                } else {
                    rest.find(needle.as_str())
                };
                found.map(|i| (start + i, needle.len()))
            })
            .or(enclosing)
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
            None if name == NONCE || registries.iter().any(|r| r == name) => {}
            Some(capture) if captures.contains_key(capture) => {}
            Some(capture) => {
                return Err(format!(
                    "`${{{}}}` names capture `{}`, which is not defined under `captures`",
                    shown(name),
                    shown(capture)
                ));
            }
            None => {
                let known: Vec<String> = registries.iter().map(|r| format!("${{{r}}}")).collect();
                return Err(format!(
                    "unknown placeholder `${{{}}}` (known: {}, ${{nonce}}, ${{capture.NAME}})",
                    shown(name),
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
            .ok_or_else(|| format!("unclosed placeholder in `{}`", shown(value)))?;
        found.push(&after[..end]);
        rest = &after[end + 1..];
    }
    Ok(found)
}

/// Replaces placeholders with their values, in one pass: a value put in is never read again
/// (a captured value that reads `${registry}` stays as it is). Unknown placeholders, rejected
/// at load time, are left as written.
pub fn substitute(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        match vars.get(&after[..end]) {
            Some(replacement) => out.push_str(replacement),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_is_one_pass() {
        let vars = BTreeMap::from([
            ("registry".to_owned(), "registry:5000".to_owned()),
            ("capture.x".to_owned(), "${registry}".to_owned()),
        ]);
        assert_eq!(
            substitute("${registry}/a ${capture.x} ${other} ${", &vars),
            "registry:5000/a ${registry} ${other} ${"
        );
    }

    #[test]
    fn problems_are_located_after_their_anchors() {
        let text = "a: x\nb: x\nc: y\n";
        let p = Problem::at("m", "x", Some("b:"));
        assert_eq!(p.locate(text), Some((8, 1)));
        let p = Problem::at("m", "nowhere", Some("b:")).or("y");
        assert_eq!(p.locate(text), Some((13, 1)));
        let p = Problem::at("m", "x", Some("missing")).after("a:");
        assert_eq!(p.locate(text), Some((3, 1)));
        let p = Problem::at("m", "nowhere", Some("b:"));
        assert_eq!(p.locate(text), Some((5, 2)));
        assert_eq!(Problem::at("m", "nowhere", None).locate(text), None);
    }
}
