//! The registries a scenario names (host names, credentials, TLS) and its workspace.

use crate::grammar::{self, shown};

use super::*;

impl Scenario {
    /// Registries: host names on the scenario's network, listed once; credentials fit htpasswd.
    pub(super) fn validate_registries(&self) -> Result<(), Problem> {
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
            if name == NONCE {
                let message =
                    "registry name `nonce` is taken: `${nonce}` is the run's random value";
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
        for (i, name) in self.base_image_in.iter().enumerate() {
            let problem = if !self.registries.contains(name) {
                "which is not under `registries`"
            } else if self.registries.first() == Some(name) {
                "which holds the base image anyway (it is the first)"
            } else if self.base_image_in[..i].contains(name) {
                "twice"
            } else {
                continue;
            };
            let message = format!("base_image_in names registry `{}`, {problem}", shown(name));
            return Err(Problem::at(message, name, Some("base_image_in")).after(name));
        }
        for (name, users) in &self.registry_auth {
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
            let users = users.users();
            if users.is_empty() {
                let message = format!(
                    "registry_auth for `{name}`: the list of users is empty (give at least one \
                     `{{username, password}}`)"
                );
                return Err(Problem::at(message, name, Some("registry_auth:")));
            }
            for (i, credentials) in users.iter().enumerate() {
                let Credentials { username, password } = credentials;
                // Each user's `username` key, the i-th after the registry's name.
                let locate = |problem: Problem| {
                    (0..i)
                        .fold(problem.after(&format!("{name}:")), |p, _| {
                            p.after("username")
                        })
                        .or(name)
                };
                if let Some(earlier) = users[..i].iter().position(|u| &u.username == username) {
                    let message = format!(
                        "registry_auth for `{name}`: user `{}` is listed twice (users {} and \
                         {}); each user is one line of the htpasswd file",
                        shown(username),
                        earlier + 1,
                        i + 1
                    );
                    return Err(locate(Problem::at(
                        message,
                        "username",
                        Some("registry_auth:"),
                    )));
                }
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
                let message = if users.len() > 1 {
                    format!("registry_auth for `{name}`, user {}: {problem}", i + 1)
                } else {
                    format!("registry_auth for `{name}`: {problem}")
                };
                return Err(locate(Problem::at(
                    message,
                    "username",
                    Some("registry_auth:"),
                )));
            }
        }
        Ok(())
    }

    /// The workspace is a directory inside the repository: relative, no `..`.
    pub(super) fn validate_workspace(&self) -> Result<(), Problem> {
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
}
