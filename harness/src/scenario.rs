//! The scenario language, version 1: what a scenario file says, and how it is read.
//!
//! A scenario names the documentation claim it checks, the builders it runs on, the plugin
//! steps to run (each a container of the builder's role, configured by `PLUGIN_*` variables),
//! values to capture from the steps' artifacts, and the assertions that decide Pass or Fail.
//!
//! Strings may use placeholders: `${registry}` is the registry's address as the plugin
//! containers see it; `${capture.NAME}` is a captured value (assertions only); a step's `role`
//! may use `${builder}`, the builder under test (e.g. `${builder}-ecr`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use miette::{NamedSource, SourceSpan};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::errors::{ScenarioParseError, ScenarioSyntaxError};

/// The only version of the scenario language so far.
pub const SCHEMA_VERSION: u32 = 1;

/// Builders the harness knows. A scenario may only name these.
pub const KNOWN_BUILDERS: &[&str] = &["buildx", "kaniko", "docker", "buildah"];

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Scenario language version; must be 1.
    pub version: u32,
    pub name: String,
    pub description: String,
    /// The documentation claim the scenario checks.
    pub claim: Claim,
    /// The builders (matrix) the scenario runs on.
    pub builders: Vec<String>,
    /// Builders the scenario does not run on, each with the reason (reported as Skip), e.g.
    /// `kaniko: "PLUGIN_SOURCE_IMAGE is BuildX-only per the docs"`.
    #[serde(default)]
    pub skip: BTreeMap<String, String>,
    /// Builders known to break the promise, each with the reason (a documented discrepancy
    /// between the docs and the plugin's code) and exactly the assertions that fail on it.
    /// The result stays Fail; the test passes only while the plugin fails exactly there.
    #[serde(default)]
    pub expect: BTreeMap<String, ExpectedFailure>,
    /// The registries the scenario starts, by network alias (default: one, `registry`). Each is
    /// `${NAME}` (= `NAME:5000`) in strings; the first also holds the test base image
    /// `harness/busybox:1.37`.
    #[serde(default = "default_registries")]
    pub registries: Vec<String>,
    /// Registries that require basic auth (htpasswd), by name, e.g.
    /// `secured: {username: conformance, password: s3cret}`. The first registry cannot: it holds
    /// the base image the harness pushes.
    #[serde(default)]
    pub registry_auth: BTreeMap<String, Credentials>,
    /// A directory, relative to the repository root, copied into the workspace (`/harness`)
    /// before the first step: usually a Dockerfile context under `fixtures/contexts/`.
    #[serde(default)]
    pub workspace: Option<String>,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub captures: BTreeMap<String, Capture>,
    pub assertions: Vec<Assertion>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The claim, quoted or paraphrased.
    pub text: String,
    /// Where the documentation says it.
    pub source: String,
}

/// A builder's known discrepancy: these assertions fail on it, and only these.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailure {
    /// Why, with the source: e.g. "kaniko-ecr does not read PLUGIN_SKIP_PUSH_IF_TAG_EXISTS
    /// (plugin-contracts.md §2.3 f)".
    pub because: String,
    /// The assertions expected to fail, each written exactly as under `assertions`.
    pub fails: Vec<Assertion>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// One container, run to completion: a plugin (the builder under test by default, or another
/// role such as `scanner`), or with `run:` a shell command in the helper image.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    /// The role whose image runs this step; defaults to the builder under test (or to
    /// `busybox` for a `run` step). `${builder}` is the builder under test.
    #[serde(default)]
    pub role: Option<String>,
    /// A shell command (`sh -c`) run in the role's image instead of its entrypoint, with the
    /// workspace as the working directory, e.g. `run: ls -l image.tar`.
    #[serde(default)]
    pub run: Option<String>,
    /// Environment of the plugin container (`PLUGIN_*` variables).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Plugin settings, as in a Drone/Harness Plugin step: `dry_run: "true"` becomes
    /// `PLUGIN_DRY_RUN=true`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// `shared` (default): the scenario's DinD daemon is reachable through a shared `/var/run`.
    /// `own`: no shared `/var/run`; a plugin that needs a daemon starts its own (privileged).
    #[serde(default)]
    pub daemon: DaemonMode,
    /// `success` (default): run only if every earlier step succeeded. `always`: run anyway.
    #[serde(default)]
    pub when: When,
    /// Consecutive steps naming the same group run at the same time.
    #[serde(default)]
    pub parallel: Option<String>,
    /// How long the step may run, e.g. `120s` or `2m`.
    #[schemars(with = "String", extend("pattern" = "^[0-9]+\\s*(ms|s|m|h)"))]
    #[serde(
        default = "default_step_timeout",
        deserialize_with = "de_duration",
        serialize_with = "ser_duration"
    )]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DaemonMode {
    #[default]
    Shared,
    Own,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum When {
    #[default]
    Success,
    Always,
}

fn default_registries() -> Vec<String> {
    vec!["registry".to_owned()]
}

fn default_step_timeout() -> Duration {
    Duration::from_secs(300)
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration `{text}`: {e}")))
}

fn ser_duration<S: serde::Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*value).to_string())
}

/// A value taken from what the steps left behind, for later assertions.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Capture {
    /// A value in a JSON file in the workspace, by JSON pointer (RFC 6901), e.g.
    /// `{file: metadata.json, pointer: /containerimage.config.digest}`.
    Json { file: String, pointer: String },
    /// The config digest of an image archive in the workspace.
    TarballConfigDigest(String),
    /// The id of an image in the shared DinD daemon (the config digest on the classic store).
    DaemonImageId(String),
    /// The config digest of a tag a registry serves.
    RegistryConfigDigest(RegistryTag),
    /// The manifest digest of a tag a registry serves (what a pull by digest names).
    RegistryManifestDigest(RegistryTag),
}

impl Capture {
    /// The step after which the value is taken; `None`: after the last step.
    pub fn after(&self) -> Option<&str> {
        match self {
            Capture::RegistryConfigDigest(t) | Capture::RegistryManifestDigest(t) => {
                t.after.as_deref()
            }
            _ => None,
        }
    }
}

/// A tag in one of the scenario's registries, looked at when a step ends.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryTag {
    pub repository: String,
    pub tag: String,
    /// Which registry (default: the first).
    #[serde(default)]
    pub registry: Option<String>,
    /// Take the value when this step (or its parallel group) has ended, before later steps
    /// change the registry; default: after the last step.
    #[serde(default)]
    pub after: Option<String>,
}

/// What must hold after the steps ran.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Assertion {
    /// The named step exited with status 0.
    StepSucceeded(String),
    /// The named step exited with a non-zero status.
    StepFailed(String),
    /// The registry holds no tag at all for the repository.
    NoTagsInRegistry {
        repository: String,
        /// Which registry (default: the first).
        #[serde(default)]
        registry: Option<String>,
    },
    /// The registry serves the tag; optionally with this config digest, manifest media type
    /// and number of layers.
    TagInRegistry {
        repository: String,
        tag: String,
        /// Which registry (default: the first).
        #[serde(default)]
        registry: Option<String>,
        #[serde(default)]
        config_digest: Option<String>,
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        layers: Option<usize>,
        /// Labels the image config must carry, with these values.
        #[serde(default)]
        labels: BTreeMap<String, String>,
        /// Files that must exist in the image's file system.
        #[serde(default)]
        files: Vec<String>,
    },
    /// The shared DinD daemon holds an image by this reference.
    ImageInDaemon(String),
    /// The shared DinD daemon holds no image by this reference.
    NoImageInDaemon(String),
    /// A step's output contains the text.
    LogContains { step: String, text: String },
    /// A step's output does not contain the text.
    LogLacks { step: String, text: String },
    /// An image archive in the workspace.
    Tarball(TarballAssertion),
    /// The steps of a parallel group took less wall time together than the sum of their
    /// durations (they really ran at the same time).
    ParallelFasterThanSerial(String),
    /// A step's (or parallel group's) duration is at most `max` times another's, e.g.
    /// `{step: push-again, of: first-push, max: 0.5}`. A group's duration is its wall time.
    DurationRatioUnder { step: String, of: String, max: f64 },
    /// A step finished within a time budget, e.g. `{step: build, max: 60s}`.
    StepDurationUnder {
        step: String,
        #[schemars(with = "String")]
        #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
        max: Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TarballAssertion {
    /// Path relative to the workspace.
    pub path: String,
    /// `docker-archive` (has manifest.json) or `oci-layout` (index.json only).
    #[serde(default)]
    pub format: Option<ArchiveFormat>,
    /// `repo:tag` names the archive must carry.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Labels the image config must carry, with these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Files that must exist in the image's file system.
    #[serde(default)]
    pub files: Vec<String>,
    /// The image's config digest, e.g. `${capture.pushed}` or `sha256:<64 hex>`.
    #[serde(default)]
    pub config_digest: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveFormat {
    DockerArchive,
    OciLayout,
}

impl std::fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArchiveFormat::DockerArchive => "docker-archive",
            ArchiveFormat::OciLayout => "oci-layout",
        })
    }
}

/// The JSON Schema of scenario files, generated from these types.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Scenario);
    serde_json::to_string_pretty(&schema).expect("a schema serializes") + "\n"
}

impl Step {
    /// The role that runs this step for `builder`: `role` with `${builder}` replaced, else
    /// `busybox` for a `run` step, else the builder itself.
    pub fn role_for(&self, builder: &str) -> String {
        match (&self.role, &self.run) {
            (Some(role), _) => role.replace("${builder}", builder),
            (None, Some(_)) => "busybox".to_owned(),
            (None, None) => builder.to_owned(),
        }
    }

    /// The step's environment: `settings` as `PLUGIN_*` variables, then `env`.
    pub fn environment(&self) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = self
            .settings
            .iter()
            .map(|(k, v)| (setting_variable(k), v.clone()))
            .collect();
        env.extend(self.env.clone());
        env
    }
}

/// `source_tar_path` → `PLUGIN_SOURCE_TAR_PATH`.
pub fn setting_variable(setting: &str) -> String {
    format!("PLUGIN_{}", setting.to_ascii_uppercase())
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioParseError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioParseError::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::parse(path, &text)
    }

    /// Parses and validates scenario text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioParseError> {
        let scenario: Scenario =
            serde_saphyr::from_str(text).map_err(|e| syntax_error(path, text, &e))?;
        let Err(problem) = scenario.validate() else {
            return Ok(scenario);
        };
        Err(match problem.locate(text) {
            Some(offset) => {
                let (line, column) = line_column(text, offset);
                ScenarioParseError::Syntax(Box::new(ScenarioSyntaxError {
                    path: path.to_owned(),
                    line,
                    column,
                    message: problem.message,
                    src: NamedSource::new(path.display().to_string(), text.to_owned()),
                    span: Some(SourceSpan::from((offset, problem.needle.len().max(1)))),
                }))
            }
            None => ScenarioParseError::Invalid {
                path: path.to_owned(),
                message: problem.message,
            },
        })
    }

    fn validate(&self) -> Result<(), Problem> {
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
struct Problem {
    message: String,
    needle: String,
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
    fn locate(&self, text: &str) -> Option<usize> {
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

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (u64, u64) {
    let before = &text[..offset];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
    (line, column)
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

fn syntax_error(path: &Path, text: &str, e: &serde_saphyr::Error) -> ScenarioParseError {
    let (line, column, span) = match e.location() {
        Some(loc) => {
            let offset = loc
                .span()
                .byte_offset()
                .map(|o| o as usize)
                .or_else(|| byte_offset(text, loc.line(), loc.column()));
            (
                loc.line(),
                loc.column(),
                offset.map(|o| SourceSpan::from((o, 1))),
            )
        }
        None => (0, 0, None),
    };
    let message = first_line(&e.to_string());
    ScenarioParseError::Syntax(Box::new(ScenarioSyntaxError {
        path: path.to_owned(),
        line,
        column,
        message,
        src: NamedSource::new(path.display().to_string(), text.to_owned()),
        span,
    }))
}

/// The error's own text, without the location suffix or source excerpt some errors carry.
fn first_line(message: &str) -> String {
    let mut line = message.lines().next().unwrap_or(message).trim();
    // serde-saphyr starts with `error: line N column M: `; the location is ours to print.
    if let Some(rest) = line.strip_prefix("error: line ") {
        if let Some((_, text)) = rest.split_once(": ") {
            line = text;
        }
    }
    match line.find(" at line ") {
        Some(i) => line[..i].to_owned(),
        None => line.to_owned(),
    }
}

fn byte_offset(text: &str, line: u64, column: u64) -> Option<usize> {
    let mut offset = 0usize;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == line {
            let col = l
                .char_indices()
                .nth(column.saturating_sub(1) as usize)
                .map(|(b, _)| b)
                .unwrap_or(0);
            return Some(offset + col);
        }
        offset += l.len();
    }
    None
}

/// A scenario file found under the scenarios directory.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    pub path: PathBuf,
    /// Folder under `scenarios/`, i.e. the workflow (`build-only`).
    pub workflow: String,
    /// File stem (`tar`).
    pub stem: String,
}

/// Lists `*.yaml` scenario files under `root`, sorted, one folder per workflow.
pub fn discover(root: &Path) -> std::io::Result<Vec<ScenarioFile>> {
    let mut files = Vec::new();
    for workflow in std::fs::read_dir(root)? {
        let workflow = workflow?;
        if !workflow.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(workflow.path())? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(ScenarioFile {
                    workflow: workflow.file_name().to_string_lossy().into_owned(),
                    stem: path
                        .file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                    path,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}
