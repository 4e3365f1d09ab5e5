//! Secrets kept out of everything the harness stores or prints. A plan's secrets are every
//! `registry_auth` password (and the `user:password` pair in base64, as a Basic auth header or a
//! Docker config carries it), every step variable whose name contains `PASSWORD`, `TOKEN` or
//! `SECRET`, and every variable the scenario lists under `secrets:`. They are replaced with
//! `[redacted]` in the plan's result before it leaves the runner (step logs, assertions'
//! expected and found texts, reasons, captures, inventory: every string in it), and masked in
//! the workspace kept for inspection; the result, summary, JUnit and report writers and the
//! CLI's printing redact again with every secret the process has seen.
//!
//! Values shorter than [`MIN_LEN`] characters and `true`/`false` are not treated as secrets:
//! redacting them would blank out ordinary text everywhere.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{LazyLock, Mutex};

use model::result::ScenarioResult;
use scenario::Scenario;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";
/// Shorter values are never redacted.
pub const MIN_LEN: usize = 4;
/// A variable whose name contains one of these (any case) holds a secret.
pub const SECRET_NAME_PARTS: [&str; 3] = ["PASSWORD", "TOKEN", "SECRET"];
/// Workspace files larger than this are not scanned (plugins' image tarballs are not text).
const SCRUB_FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// A set of secret values, and every form each can take in what a plugin writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// The secrets as given.
    raw: BTreeSet<String>,
    /// Their [`forms`], longest first, so that a secret containing another is replaced whole.
    values: Vec<String>,
}

/// The shortest base64 text, cut out of a longer encoding, that is redacted: shorter runs would
/// match ordinary text.
const MIN_BASE64_CORE: usize = 8;

/// What `encodeURIComponent` leaves alone: letters, digits and `-._~`.
const URI_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The forms a secret takes where a plugin may write it: as it is; JSON-escaped (a JSON file, a
/// log line of JSON); percent-encoded (a URL); and base64, alone (a Basic auth header) or inside
/// a longer encoding at any of the three byte alignments (a Docker config's `auth` holds
/// `user:password` encoded together): the characters of each alignment that depend on the
/// secret's bytes only.
pub fn forms(secret: &str) -> Vec<String> {
    let mut out: Vec<String> = labelled_forms(secret).into_iter().map(|(_, f)| f).collect();
    out.sort();
    out.dedup();
    out
}

/// [`forms`], each with its name (`as is`, `JSON-escaped`, `percent-encoded`, `base64`,
/// `inside base64`), each text once (under the first name that gives it), in that order.
pub fn labelled_forms(secret: &str) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    let mut out = vec![("as is", secret.to_owned())];
    if let Ok(json) = serde_json::to_string(secret) {
        out.push(("JSON-escaped", json[1..json.len() - 1].to_owned()));
    }
    out.push((
        "percent-encoded",
        percent_encoding::utf8_percent_encode(secret, URI_COMPONENT).to_string(),
    ));
    let standard = base64::engine::general_purpose::STANDARD;
    out.push(("base64", standard.encode(secret)));
    let bytes = secret.as_bytes();
    for shift in 0..3usize {
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(bytes);
        let encoded = standard.encode(&shifted);
        // Character k holds bits 6k..6k+6 of the shifted bytes: those within the secret's.
        let first = (8 * shift).div_ceil(6);
        let end = (8 * (shift + bytes.len())) / 6;
        if end >= first + MIN_BASE64_CORE {
            out.push(("inside base64", encoded[first..end].to_owned()));
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|(_, form)| seen.insert(form.clone()));
    out
}

/// Whether a variable of this name holds a secret by its name alone.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
}

impl Secrets {
    pub fn new(values: impl IntoIterator<Item = String>) -> Secrets {
        let raw: BTreeSet<String> = values
            .into_iter()
            .filter(|v| v.chars().count() >= MIN_LEN && v != "true" && v != "false")
            .collect();
        let forms: BTreeSet<String> = raw
            .iter()
            .flat_map(|v| forms(v))
            .filter(|f| f.chars().count() >= MIN_LEN)
            .collect();
        let mut values: Vec<String> = forms.into_iter().collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        Secrets { raw, values }
    }

    /// The secrets of a scenario (see the module's documentation).
    pub fn of(scenario: &Scenario) -> Secrets {
        let mut values = Vec::new();
        for credentials in scenario.registry_auth.values().flat_map(|u| u.users()) {
            values.push(credentials.password.clone());
            // As a Basic auth header or a Docker config carries it (base64 among its forms).
            values.push(format!("{}:{}", credentials.username, credentials.password));
        }
        for step in &scenario.steps {
            for (name, value) in step.environment() {
                if is_secret_name(&name) || scenario.secrets.contains(&name) {
                    values.push(value);
                }
            }
        }
        // What a `secret_absent` assertion looks for is a secret by definition.
        for assertion in &scenario.assertions {
            if let scenario::Assertion::SecretAbsent(absent) = assertion {
                values.extend(
                    absent
                        .secrets(scenario)
                        .into_iter()
                        .map(|(_, v)| v.to_owned()),
                );
            }
        }
        Secrets::new(values)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Every secret in `self` and in `other`.
    pub fn merged(&self, other: &Secrets) -> Secrets {
        Secrets::new(self.raw.iter().chain(&other.raw).cloned())
    }

    /// `text` with every secret replaced by `[redacted]` (one pass: a replacement is never
    /// searched again).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.values.is_empty() || !self.values.iter().any(|v| text.contains(v.as_str())) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'scan: while !rest.is_empty() {
            for secret in &self.values {
                if rest.starts_with(secret.as_str()) {
                    out.push_str(REDACTED);
                    rest = &rest[secret.len()..];
                    continue 'scan;
                }
            }
            let step = rest.chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..step]);
            rest = &rest[step..];
        }
        Cow::Owned(out)
    }

    /// Every string in a JSON value (object keys included), redacted in place.
    pub fn scrub_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                if let Cow::Owned(clean) = self.redact(s) {
                    *s = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_json(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    self.scrub_json(&mut v);
                    map.insert(self.redact(&key).into_owned(), v);
                }
            }
            _ => {}
        }
    }

    /// Every string in a result redacted in place: step logs, reasons, assertions' texts,
    /// captures, inventory and the rest.
    pub fn scrub_result(&self, result: &mut ScenarioResult) {
        if self.values.is_empty() {
            return;
        }
        let scrubbed = serde_json::to_value(&*result).ok().and_then(|mut value| {
            self.scrub_json(&mut value);
            serde_json::from_value::<ScenarioResult>(value).ok()
        });
        match scrubbed {
            Some(clean) => *result = clean,
            // Cannot happen for a result the harness made; still, never keep a secret.
            None => self.scrub_fields(result),
        }
    }

    fn scrub_fields(&self, result: &mut ScenarioResult) {
        let clean = |s: &mut String| *s = self.redact(s).into_owned();
        if let Some(reason) = result.reason.as_mut() {
            clean(reason);
        }
        for step in &mut result.steps {
            clean(&mut step.log);
        }
        for a in &mut result.assertions {
            clean(&mut a.assertion);
            clean(&mut a.expected);
            clean(&mut a.found);
            for d in a.differences.iter_mut().flatten() {
                clean(&mut d.key);
                d.left.iter_mut().for_each(clean);
                d.right.iter_mut().for_each(clean);
            }
        }
        for value in result.captures.values_mut() {
            clean(value);
        }
        result.retried_errors.iter_mut().for_each(clean);
        result.inventory.clear();
    }

    /// Masks every secret in the regular files under `dir` (a workspace kept for inspection),
    /// byte for byte with `*` so that archives keep their layout. Symbolic links are neither
    /// followed nor touched. Returns the files changed.
    pub fn scrub_dir(&self, dir: &Path) -> Vec<std::path::PathBuf> {
        let mut changed = Vec::new();
        if !self.values.is_empty() {
            self.scrub_dir_into(dir, &mut changed);
        }
        changed
    }

    fn scrub_dir_into(&self, dir: &Path, changed: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                self.scrub_dir_into(&path, changed);
            } else if kind.is_file()
                && entry.metadata().is_ok_and(|m| m.len() <= SCRUB_FILE_LIMIT)
                && self.mask_file(&path).unwrap_or(false)
            {
                changed.push(path);
            }
        }
    }

    /// Masks the secrets in one regular file, in place. The file is opened without following
    /// a symlink (a plugin may have swapped one in: never read or write outside the workspace).
    fn mask_file(&self, path: &Path) -> std::io::Result<bool> {
        use std::io::{Read, Seek, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        if !file.metadata()?.is_file() {
            return Ok(false);
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut hit = false;
        for secret in &self.values {
            let needle = secret.as_bytes();
            let mut at = 0;
            while let Some(found) = find(&bytes[at..], needle) {
                let start = at + found;
                bytes[start..start + needle.len()].fill(b'*');
                at = start + needle.len();
                hit = true;
            }
        }
        if hit {
            // Same length: overwrite in place.
            file.rewind()?;
            file.write_all(&bytes)?;
        }
        Ok(hit)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

static KNOWN: LazyLock<Mutex<Secrets>> = LazyLock::new(|| Mutex::new(Secrets::default()));

/// Adds a plan's secrets to those of the process, which every writer and printer redacts.
pub fn remember(secrets: &Secrets) {
    if secrets.is_empty() {
        return;
    }
    let mut known = KNOWN.lock().expect("secrets lock");
    *known = known.merged(secrets);
}

/// Every secret the process has seen so far.
pub fn known() -> Secrets {
    KNOWN.lock().expect("secrets lock").clone()
}

/// `text` with every secret the process has seen redacted.
/// `text` with every control character but newline and tab escaped (`\u{1b}`): what a
/// plugin wrote cannot move the cursor, clear a terminal, ring it or hide a link in it, as
/// HTML escaping keeps it out of the page.
pub fn printable(text: &str) -> Cow<'_, str> {
    let control = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if control(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

pub fn text(text: &str) -> Cow<'_, str> {
    let known = KNOWN.lock().expect("secrets lock");
    if known.is_empty() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(known.redact(text).into_owned())
}

/// A result with every secret the process has seen redacted (what the writers store).
pub fn result(result: &ScenarioResult) -> Cow<'_, ScenarioResult> {
    let known = known();
    if known.is_empty() {
        return Cow::Borrowed(result);
    }
    let mut clean = result.clone();
    known.scrub_result(&mut clean);
    Cow::Owned(clean)
}

/// The same for several results.
pub fn results(results: &[ScenarioResult]) -> Cow<'_, [ScenarioResult]> {
    let known = known();
    if known.is_empty() {
        return Cow::Borrowed(results);
    }
    let mut clean = results.to_vec();
    clean.iter_mut().for_each(|r| known.scrub_result(r));
    Cow::Owned(clean)
}

/// The same for runs read back or about to be reported.
pub fn runs(runs: &[crate::runs::Run]) -> Cow<'_, [crate::runs::Run]> {
    let known = known();
    if known.is_empty() {
        return Cow::Borrowed(runs);
    }
    let mut clean = runs.to_vec();
    for run in &mut clean {
        run.results.iter_mut().for_each(|r| known.scrub_result(r));
    }
    Cow::Owned(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_redacted() {
        use base64::Engine as _;
        let secret = "p@ss w/\"quoted\"&more";
        let secrets = Secrets::new([secret.to_owned()]);
        let b64 = base64::engine::general_purpose::STANDARD;
        let docker_auth = b64.encode(format!("conformance:{secret}"));
        for (what, text) in [
            ("plain", format!("password={secret}")),
            (
                "json",
                serde_json::json!({ "password": secret }).to_string(),
            ),
            (
                "url",
                "https://u:p%40ss%20w%2F%22quoted%22%26more@registry/v2/".to_owned(),
            ),
            (
                "base64",
                format!("Authorization: Basic {}", b64.encode(secret)),
            ),
            (
                "inside base64",
                format!("{{\"auths\":{{\"r\":{{\"auth\":\"{docker_auth}\"}}}}}}"),
            ),
        ] {
            let clean = secrets.redact(&text);
            assert!(clean.contains(REDACTED), "{what}: {clean}");
            for form in forms(secret) {
                assert!(!clean.contains(&form), "{what}: {form} left in {clean}");
            }
        }
        // Every alignment inside a longer encoding.
        for prefix in ["", "a", "ab", "abc"] {
            let encoded = b64.encode(format!("{prefix}{secret}"));
            assert!(
                secrets.redact(&encoded).contains(REDACTED),
                "{prefix:?}: {encoded}"
            );
        }
    }

    #[test]
    fn merging_keeps_the_forms_from_growing() {
        let a = Secrets::new(["first-secret".to_owned()]);
        let b = Secrets::new(["second-secret".to_owned()]);
        let merged = a.merged(&b).merged(&a);
        assert_eq!(merged.values.len(), a.values.len() + b.values.len());
    }

    #[test]
    fn control_characters_are_escaped_for_terminals_and_markdown() {
        let hostile = "clear\u{1b}[2J bell\u{7} link\u{1b}]8;;http://x\u{7}text\r\u{9b}31m";
        let shown = printable(hostile);
        assert!(
            !shown
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{shown}"
        );
        assert!(shown.contains("\\u{1b}[2J"), "{shown}");
        assert_eq!(printable("line\n\tindented"), "line\n\tindented");
    }
}
