//! The steps: names, roles, settings, parallel groups, timeouts.

use std::collections::{BTreeMap, BTreeSet};

use crate::grammar::{self, shown};
use crate::types::*;

use super::*;

impl Scenario {
    /// Steps: unique names that stay unique as container names, parallel groups together,
    /// bounded timeouts, environment variables a container can be given. Returns the names.
    pub(super) fn validate_steps(&self) -> Result<BTreeSet<&str>, Problem> {
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

    pub(super) fn validate_step(&self, step: &Step) -> Result<(), Problem> {
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
        if let Some(resources) = &step.resources {
            let checked = [
                (
                    resources.memory.as_deref(),
                    "memory",
                    crate::grammar::memory_quantity as fn(&str) -> Result<u64, String>,
                ),
                (
                    resources.cpu.as_deref(),
                    "cpu",
                    crate::grammar::cpu_quantity,
                ),
            ];
            for (value, key, parse) in checked {
                if let Some(value) = value {
                    if let Err(why) = parse(value) {
                        let message = format!("step `{name}`: {why}");
                        return Err(Problem::at(message, value, Some(&here)).or(key));
                    }
                }
            }
        }
        if let Some(user) = &step.user {
            if !valid_user(user) {
                let message = format!(
                    "step `{name}`: user `{}` must be a numeric uid, optionally with a gid \
                     (`1000` or `1000:1000`)",
                    shown(user)
                );
                return Err(Problem::at(message, user, Some(&here)).or("user:"));
            }
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
            self.check_step_placeholders(command).map_err(|e| {
                Problem::at(format!("step `{name}`, run: {e}"), command, Some(&here)).or("run:")
            })?;
        }
        for (key, value) in step.env.iter().chain(step.settings.iter()) {
            self.check_step_placeholders(value).map_err(|e| {
                Problem::at(format!("step `{name}`, {}: {e}", shown(key)), value, None).or(key)
            })?;
        }
        Ok(())
    }
}

/// A step's `user`: `UID` or `UID:GID`, each 1 to 10 digits and within 32 bits.
fn valid_user(user: &str) -> bool {
    let id = |part: &str| {
        !part.is_empty()
            && part.len() <= 10
            && part.bytes().all(|b| b.is_ascii_digit())
            && part.parse::<u32>().is_ok()
    };
    match user.split_once(':') {
        Some((uid, gid)) => id(uid) && id(gid),
        None => id(user),
    }
}

#[cfg(test)]
mod user_tests {
    use super::valid_user;

    #[test]
    fn step_user_is_a_numeric_uid_with_an_optional_gid() {
        for good in ["0", "1000", "1000:1000", "4294967295"] {
            assert!(valid_user(good), "{good}");
        }
        for bad in [
            "",
            "root",
            "1000:",
            ":1000",
            "-1",
            "4294967296",
            "1:2:3",
            "10 00",
        ] {
            assert!(!valid_user(bad), "{bad}");
        }
    }
}
