//! `secret_absent` assertions: secrets that some step really has, long enough to mean something
//! when found, looked for in places the scenario has.

use std::collections::BTreeSet;

use crate::grammar::{self, shown};

use super::*;

impl Scenario {
    pub(super) fn validate_secrets_absent(&self, names: &BTreeSet<&str>) -> Result<(), Problem> {
        let absent = self.assertions.iter().filter_map(|a| match a {
            Assertion::SecretAbsent(s) => Some(s),
            _ => None,
        });
        for (nth, assertion) in absent.enumerate() {
            let located = |message: String, value: &str| {
                let mut problem = Problem::at(message, value, Some("assertions:"));
                for _ in 0..=nth {
                    problem = problem.after("secret_absent");
                }
                problem.or("secret_absent")
            };
            if assertion.value_of.is_empty() && assertion.text.is_empty() {
                let message = "secret_absent names no secret: give `value_of` (step variables) \
                               or `text`"
                    .to_owned();
                return Err(located(message, "secret_absent"));
            }
            let places = assertion.image.is_some()
                || assertion.tarball.is_some()
                || !assertion.step_logs.is_empty();
            if !places {
                let message = "secret_absent names no place to look: give `image`, `tarball` or \
                               `step_logs`"
                    .to_owned();
                return Err(located(message, "secret_absent"));
            }
            for name in &assertion.value_of {
                grammar::check_env_name(name)
                    .map_err(|e| located(format!("secret_absent value_of: {e}"), name))?;
                let set = self
                    .steps
                    .iter()
                    .any(|s| s.environment().contains_key(name));
                if !set {
                    let message = format!(
                        "secret_absent looks for the value of `{}`, which no step sets \
                         (under `env` or `settings`)",
                        shown(name)
                    );
                    return Err(located(message, name));
                }
            }
            for (what, value) in assertion.secrets(self) {
                if value.chars().count() < MIN_SECRET_LEN {
                    // The value itself is never shown: it is a secret.
                    let message = format!(
                        "secret_absent: {what} has fewer than {MIN_SECRET_LEN} characters: \
                         bytes that short are found anywhere by chance"
                    );
                    let needle = match what.starts_with("secret text") {
                        true => "text",
                        false => what.rsplit(' ').next().unwrap_or("value_of"),
                    };
                    return Err(located(message, needle));
                }
            }
            if let Some(image) = &assertion.image {
                if let Some(r) = image
                    .registry
                    .as_ref()
                    .filter(|r| !self.registries.contains(r))
                {
                    let message = format!(
                        "secret_absent names registry `{}`, which is not under `registries`",
                        shown(r)
                    );
                    return Err(located(message, r));
                }
                grammar::check_repository(&image.repository)
                    .map_err(|e| located(format!("secret_absent image: {e}"), &image.repository))?;
                grammar::check_tag(&image.tag)
                    .map_err(|e| located(format!("secret_absent image: {e}"), &image.tag))?;
            }
            if let Some(path) = &assertion.tarball {
                grammar::check_relative_path(path).map_err(|e| {
                    located(format!("secret_absent tarball: {e}; {IN_WORKSPACE}"), path)
                })?;
            }
            for step in &assertion.step_logs {
                if !names.contains(step.as_str()) {
                    let message = format!(
                        "secret_absent reads the output of step `{}`, which does not exist",
                        shown(step)
                    );
                    return Err(located(message, step));
                }
            }
        }
        Ok(())
    }
}
