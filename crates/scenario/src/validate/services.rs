//! The services a scenario starts beside its registries, its SSH keys and extra base images, and
//! the placeholders steps may use to name them (`${ssh_key.NAME}`, `${service_ip.NAME}`).

use std::collections::BTreeMap;

use crate::grammar::shown;
use crate::services::*;

use super::*;

impl Scenario {
    /// SSH keys: file names, listed once; services: host names on the plan's network that no
    /// registry takes, from a known service role, accepting declared keys; base images: known,
    /// listed once.
    pub(super) fn validate_services(&self) -> Result<(), Problem> {
        if self.ssh_keys.len() > MAX_SSH_KEYS {
            let message = format!("at most {MAX_SSH_KEYS} `ssh_keys`");
            return Err(Problem::at(message, "ssh_keys", None));
        }
        for (i, key) in self.ssh_keys.iter().enumerate() {
            let valid = !key.is_empty()
                && key.len() <= MAX_REGISTRY_NAME
                && key.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            let problem = if !valid {
                format!(
                    "SSH key name `{}` must be 1 to {MAX_REGISTRY_NAME} lowercase letters, digits, \
                     `-` and `_`, starting with a letter or digit (it names the key's file)",
                    shown(key)
                )
            } else if self.ssh_keys[..i].contains(key) {
                format!("SSH key `{key}` is listed twice")
            } else {
                continue;
            };
            return Err(Problem::at(problem, key, Some("ssh_keys")).after(key));
        }
        if self.services.len() > MAX_SERVICES {
            let message = format!("at most {MAX_SERVICES} `services`");
            return Err(Problem::at(message, "services:", None));
        }
        for (alias, service) in &self.services {
            let here = format!("{alias}:");
            let host_name = !alias.is_empty()
                && alias.len() <= MAX_REGISTRY_NAME
                && !alias.starts_with('-')
                && !alias.ends_with('-')
                && alias
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            let problem = if !host_name {
                format!(
                    "service name `{}` is its host name on the plan's network: 1 to \
                     {MAX_REGISTRY_NAME} lowercase letters, digits and `-`, not starting or ending \
                     with `-`",
                    shown(alias)
                )
            } else if alias == "dind" || alias == NONCE || alias.starts_with("capture") {
                format!("service name `{alias}` is taken (`dind`, `nonce` and `capture…` are the harness's)")
            } else if self.registries.contains(alias) {
                format!(
                    "service name `{alias}` is also a registry's: both would answer to that host \
                     name on the plan's network"
                )
            } else {
                String::new()
            };
            if !problem.is_empty() {
                return Err(Problem::at(problem, &here, Some("services:")).or(alias));
            }
            if !KNOWN_SERVICE_ROLES.contains(&service.role.as_str()) {
                let message = format!(
                    "service `{alias}`: unknown service role `{}` (known: {})",
                    shown(&service.role),
                    KNOWN_SERVICE_ROLES.join(", ")
                );
                return Err(Problem::at(message, &service.role, Some("services:")).after(&here));
            }
            for (i, key) in service.ssh_authorized_keys.iter().enumerate() {
                let problem = if !self.ssh_keys.contains(key) {
                    format!(
                        "service `{alias}` accepts SSH key `{}`, which is not under `ssh_keys`",
                        shown(key)
                    )
                } else if service.ssh_authorized_keys[..i].contains(key) {
                    format!("service `{alias}` lists SSH key `{key}` twice")
                } else {
                    continue;
                };
                return Err(Problem::at(problem, key, Some("services:"))
                    .after(&here)
                    .after("ssh_authorized_keys"));
            }
        }
        // `${ssh_key_text.NAME}` (a key's private text) only where secret_absent looks for it.
        let texts = self.assertions.iter().filter_map(|a| match a {
            Assertion::SecretAbsent(absent) => Some(&absent.text),
            _ => None,
        });
        for text in texts.flatten() {
            for name in placeholders(text).map_err(|e| Problem::at(e, text, Some("assertions:")))? {
                let Some(key) = name.strip_prefix(SSH_KEY_TEXT_PLACEHOLDER) else {
                    continue;
                };
                if !self.ssh_keys.iter().any(|k| k == key) {
                    let message = format!(
                        "secret_absent: `${{{}}}` names SSH key `{}`, which is not under `ssh_keys`",
                        shown(name),
                        shown(key)
                    );
                    return Err(Problem::at(message, text, Some("secret_absent")));
                }
            }
        }
        for (i, name) in self.base_images.iter().enumerate() {
            let problem = if base_image_reference(name).is_none() {
                let known: Vec<String> = KNOWN_BASE_IMAGES
                    .iter()
                    .map(|(name, reference)| format!("{name} ({reference})"))
                    .collect();
                format!(
                    "unknown base image `{}` (known: {})",
                    shown(name),
                    known.join(", ")
                )
            } else if self.base_images[..i].contains(name) {
                format!("base image `{name}` is listed twice")
            } else {
                continue;
            };
            return Err(Problem::at(problem, name, Some("base_images")).after(name));
        }
        Ok(())
    }

    /// Checks the placeholders of a step's variable or command: those of the whole scenario
    /// (registries, `${nonce}`), and `${ssh_key.NAME}` / `${service_ip.NAME}` for declared keys
    /// and services.
    pub(super) fn check_step_placeholders(&self, value: &str) -> Result<(), String> {
        for name in placeholders(value)? {
            if let Some(key) = name.strip_prefix(SSH_KEY_PLACEHOLDER) {
                if !self.ssh_keys.iter().any(|k| k == key) {
                    return Err(format!(
                        "`${{{}}}` names SSH key `{}`, which is not under `ssh_keys`",
                        shown(name),
                        shown(key)
                    ));
                }
            } else if let Some(service) = name.strip_prefix(SERVICE_IP_PLACEHOLDER) {
                if !self.services.contains_key(service) {
                    return Err(format!(
                        "`${{{}}}` names service `{}`, which is not under `services`",
                        shown(name),
                        shown(service)
                    ));
                }
            } else {
                check_placeholders(&format!("${{{name}}}"), &self.registries, &BTreeMap::new())
                    .map_err(|e| {
                        if e.starts_with("unknown placeholder") {
                            format!("{e}; in steps also ${{ssh_key.NAME}}, ${{service_ip.NAME}}")
                        } else {
                            e
                        }
                    })?;
            }
        }
        Ok(())
    }
}
