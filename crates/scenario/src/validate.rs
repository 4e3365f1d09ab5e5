//! Checking that a parsed scenario makes sense, and pointing at the text when it does not.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::grammar::{self, shown};
use super::types::*;

/// The longest a step may be given (`timeout`), and the largest duration budget
/// (`step_duration_under.max`).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// The longest step or parallel group name, in characters (a step's name ends its container's).
pub const MAX_NAME: usize = 100;

/// The longest registry name: it is a host name on the scenario's network (a DNS label).
pub const MAX_REGISTRY_NAME: usize = 63;

/// The port every registry listens on, as the plugins see it (`${registry}` = `registry:5000`).
const REGISTRY_PORT: u16 = 5000;

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
        self.validate_workspace()?;
        let names = self.validate_steps()?;
        self.validate_captures(&names)?;
        self.validate_assertions(&names)?;
        self.validate_accounting()
    }

    /// Registries: host names on the scenario's network, listed once; credentials fit htpasswd.
    fn validate_registries(&self) -> Result<(), Problem> {
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
                let message = format!(
                    "registry name `{}` must be lowercase letters, digits and `-`, and not `dind`",
                    shown(name)
                );
                return Err(Problem::at(message, name, Some("registries")));
            }
            if name.len() > MAX_REGISTRY_NAME || name.starts_with('-') || name.ends_with('-') {
                let message = format!(
                    "registry name `{}` is a host name: at most {MAX_REGISTRY_NAME} characters, \
                     not starting or ending with `-`",
                    shown(name)
                );
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
        for name in self.registry_tls.keys() {
            if !self.registries.contains(name) {
                let message = format!(
                    "registry_tls names registry `{}`, which is not under `registries`",
                    shown(name)
                );
                return Err(Problem::at(message, name, Some("registry_tls:")));
            }
        }
        for (name, credentials) in &self.registry_auth {
            if !self.registries.contains(name) {
                let message = format!(
                    "registry_auth names registry `{}`, which is not under `registries`",
                    shown(name)
                );
                return Err(Problem::at(message, name, Some("registry_auth:")));
            }
            if self.registries.first() == Some(name) {
                let message = format!(
                    "the first registry (`{name}`) holds the base image and cannot require auth"
                );
                return Err(Problem::at(message, name, Some("registry_auth:")));
            }
            let Credentials { username, password } = credentials;
            let problem = if username.is_empty() {
                "the username is empty"
            } else if username.contains(':') {
                "the username contains `:`, which ends a name in the htpasswd file"
            } else if username.chars().any(char::is_control) {
                "the username contains a control character (newline, NUL, …)"
            } else if password.is_empty() {
                "the password is empty"
            } else if password.chars().any(char::is_control) {
                "the password contains a control character (newline, NUL, …)"
            } else if password.len() > 72 {
                "the password is longer than 72 bytes, and bcrypt (htpasswd) reads only the \
                 first 72: a wrong password sharing them would be let in"
            } else {
                continue;
            };
            let message = format!("registry_auth for `{name}`: {problem}");
            return Err(Problem::at(message, "username", Some("registry_auth:"))
                .after(&format!("{name}:"))
                .or(name));
        }
        Ok(())
    }

    /// The workspace is a directory inside the repository: relative, no `..`.
    fn validate_workspace(&self) -> Result<(), Problem> {
        let Some(workspace) = &self.workspace else {
            return Ok(());
        };
        grammar::check_relative_path(workspace).map_err(|e| {
            let message = format!(
                "workspace: {e}; it names a directory inside the repository (relative, \
                 without `..`), copied into the plugins' working directory"
            );
            Problem::at(message, workspace, Some("workspace:")).or("workspace")
        })
    }

    /// Steps: unique names that stay unique as container names, parallel groups together,
    /// bounded timeouts, environment variables a container can be given. Returns the names.
    fn validate_steps(&self) -> Result<BTreeSet<&str>, Problem> {
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
                    let message = format!(
                        "the steps of parallel group `{}` must be consecutive",
                        shown(group)
                    );
                    return Err(Problem::last(message, &format!("parallel: {group}")));
                }
                groups_seen.push(group);
            }
        }
        let mut names = BTreeSet::new();
        // Container name suffix → the step (or group) that has it.
        let mut suffixes: BTreeMap<String, &str> = BTreeMap::new();
        for step in &self.steps {
            let name = step.name.as_str();
            if !names.insert(name) {
                return Err(Problem::last(
                    format!("two steps are named `{}`", shown(name)),
                    &format!("name: {name}"),
                ));
            }
            let here = format!("name: {name}");
            if name.trim().is_empty() || name.chars().count() > MAX_NAME {
                let message = format!(
                    "step name `{}` must be 1 to {MAX_NAME} characters, not blank (it names \
                     the step's container)",
                    shown(name)
                );
                let quoted = [format!("name: \"{name}\""), format!("name: '{name}'")];
                return Err(Problem::at(message, &quoted[0], Some("steps:"))
                    .or(&quoted[1])
                    .or(&here));
            }
            if let Some(other) = suffixes.insert(container_suffix(name), name) {
                let message = format!(
                    "steps `{}` and `{}` would share the container name `…-step-{}` (characters \
                     other than letters, digits and `-` become `-`): rename one",
                    shown(other),
                    shown(name),
                    shown(&container_suffix(name))
                );
                return Err(Problem::last(message, &here).or(name));
            }
        }
        for group in groups_seen.iter().copied() {
            let at = format!("parallel: {group}");
            if group.trim().is_empty() || group.chars().count() > MAX_NAME {
                let message = format!(
                    "parallel group name `{}` must be 1 to {MAX_NAME} characters, not blank",
                    shown(group)
                );
                return Err(Problem::at(message, &at, Some("steps:")).or("parallel:"));
            }
            if let Some(step) = suffixes.get(&container_suffix(group)) {
                let message = format!(
                    "parallel group `{}` and step `{}` have names too alike (assertions name \
                     steps and groups alike; the same after turning characters other than \
                     letters, digits and `-` into `-`): rename one",
                    shown(group),
                    shown(step)
                );
                return Err(Problem::at(message, &at, Some("steps:")).or("parallel:"));
            }
        }
        let mut group_suffixes: BTreeMap<String, &str> = BTreeMap::new();
        for group in groups_seen.iter().copied() {
            match group_suffixes.insert(container_suffix(group), group) {
                Some(other) if other != group => {
                    let message = format!(
                        "parallel groups `{}` and `{}` have names that differ only in characters \
                         other than letters, digits and `-`: rename one",
                        shown(other),
                        shown(group)
                    );
                    return Err(Problem::last(message, &format!("parallel: {group}")));
                }
                _ => {}
            }
        }
        for step in &self.steps {
            self.validate_step(step)?;
        }
        Ok(names)
    }

    fn validate_step(&self, step: &Step) -> Result<(), Problem> {
        let name = shown(&step.name);
        let here = format!("name: {}", step.name);
        if step.timeout.is_zero() || step.timeout > MAX_TIMEOUT {
            let message = format!(
                "step `{name}`: timeout {} must be more than 0 and at most {}",
                humantime::format_duration(step.timeout),
                humantime::format_duration(MAX_TIMEOUT)
            );
            return Err(Problem::at(message, "timeout", Some(&here)).or(&step.name));
        }
        for key in step.settings.keys() {
            if step.env.contains_key(&setting_variable(key)) {
                let message = format!(
                    "step `{name}` sets {} both as setting `{}` and in env",
                    shown(&setting_variable(key)),
                    shown(key)
                );
                return Err(Problem::at(message, key, Some("settings:")));
            }
        }
        for key in step.env.keys() {
            grammar::check_env_name(key).map_err(|e| {
                let message = format!("step `{name}`, env: {e}");
                Problem::at(message, key, Some(&here))
                    .after("env:")
                    .or(&yaml_escaped(key))
                    .or("env:")
            })?;
        }
        let mut variables: BTreeMap<String, &str> = BTreeMap::new();
        for key in step.settings.keys() {
            let valid =
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            let problem = if !valid {
                format!(
                    "setting name `{}` must be letters, digits and `_` (it becomes the variable \
                     PLUGIN_ and the name in capitals)",
                    shown(key)
                )
            } else if let Some(other) = variables.insert(setting_variable(key), key) {
                format!(
                    "settings `{}` and `{}` both become {}",
                    shown(other),
                    shown(key),
                    setting_variable(key)
                )
            } else {
                continue;
            };
            let message = format!("step `{name}`, {problem}");
            return Err(Problem::at(message, key, Some(&here))
                .after("settings:")
                .or(&yaml_escaped(key))
                .or("settings:"));
        }
        for (key, value) in step.env.iter().chain(step.settings.iter()) {
            if value.contains('\0') {
                let message = format!(
                    "step `{name}`, {}: the value contains a NUL byte, which no environment \
                     variable can hold",
                    shown(key)
                );
                return Err(Problem::at(message, &yaml_escaped(value), Some(&here)).or(key));
            }
        }
        if let Some(role) = &step.role {
            let located = |m: String| Problem::at(m, role, Some(&here));
            for placeholder in placeholders(role).map_err(located)? {
                if placeholder != "builder" {
                    return Err(located(format!(
                        "step `{name}`: unknown placeholder `${{{}}}` in role (known: ${{builder}})",
                        shown(placeholder)
                    )));
                }
            }
        }
        if let Some(command) = &step.run {
            if command.trim().is_empty() {
                let message = format!("step `{name}` has an empty `run` command");
                return Err(Problem::at(message, "run:", Some(&here)));
            }
            if command.contains('\0') {
                let message = format!("step `{name}`: the `run` command contains a NUL byte");
                return Err(Problem::at(message, "run:", Some(&here)));
            }
            check_placeholders(command, &self.registries, &BTreeMap::new()).map_err(|e| {
                Problem::at(format!("step `{name}`, run: {e}"), command, Some(&here)).or("run:")
            })?;
        }
        for (key, value) in step.env.iter().chain(step.settings.iter()) {
            check_placeholders(value, &self.registries, &BTreeMap::new()).map_err(|e| {
                Problem::at(format!("step `{name}`, {}: {e}", shown(key)), value, None).or(key)
            })?;
        }
        Ok(())
    }

    /// Captures: registries, steps and captures they name exist; files are read inside the
    /// workspace; repositories, tags and references follow their grammars.
    fn validate_captures(&self, names: &BTreeSet<&str>) -> Result<(), Problem> {
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

    fn validate_assertions(&self, names: &BTreeSet<&str>) -> Result<(), Problem> {
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
                    let message = format!(
                        "assertion names step `{}`, which does not exist",
                        shown(step)
                    );
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
    fn validate_accounting(&self) -> Result<(), Problem> {
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
}

/// Why a path is refused, after what is wrong with it.
const IN_WORKSPACE: &str =
    "the harness reads it inside the workspace (a relative path, without `..`)";

impl Scenario {
    /// A digest is a capture (`${capture.NAME}`) or written out: `algorithm:hex`, and for
    /// sha256 exactly 64 lowercase hex digits.
    fn check_digest(&self, what: &str, value: &str) -> Result<(), Problem> {
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
    /// addresses (`${registry}` → `registry:5000`); one that depends on a capture is checked when
    /// it is used.
    fn check_reference(&self, reference: &str) -> Result<(), String> {
        if reference.contains("${capture.") {
            return Ok(());
        }
        let vars: BTreeMap<String, String> = self
            .registries
            .iter()
            .map(|r| (r.clone(), format!("{r}:{REGISTRY_PORT}")))
            .collect();
        grammar::check_reference(&substitute(reference, &vars))
    }
}

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
        Assertion::NoTagsInRegistry { .. } => "no_tags_in_registry",
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
            None if registries.iter().any(|r| r == name) => {}
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
                    "unknown placeholder `${{{}}}` (known: {}, ${{capture.NAME}})",
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
