//! Extra services a scenario asks for beside its registries: service containers on the plan's
//! network (e.g. an SSH server holding a private Git repository), SSH key pairs the harness
//! generates for each run of a plan, and more base images pushed into the first registry.
//!
//! ```yaml
//! ssh_keys: [deploy]                                   # ${ssh_key.deploy}: the private key's path in every step
//! services:
//!   git: {role: sshd, ssh_authorized_keys: [deploy]}   # network alias git; ${service_ip.git}: its address
//! base_images: [git]                                   # ${registry}/harness/git:1 (role git)
//! ```
//!
//! `${ssh_key_text.deploy}` is the private key's text, only in `secret_absent: {text: […]}`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The profile roles a service may be started from (each profile casts them with a `service`
/// section: the port that answers once it is ready, where the authorized keys go).
pub const KNOWN_SERVICE_ROLES: &[&str] = &["sshd"];

/// The base images a scenario may ask for besides `harness/busybox:1.37` (always in the first
/// registry): the role whose image is pushed, and the `repository:tag` it is pushed as.
pub const KNOWN_BASE_IMAGES: &[(&str, &str)] = &[("git", "harness/git:1")];

/// Where every step sees the plan's SSH private keys, one file per key named after it
/// (`${ssh_key.NAME}` = `/harness-ssh/NAME`; the public key is `NAME.pub` beside it). Read-only,
/// outside the workspace (so never part of a build context).
pub const SSH_KEYS_MOUNT: &str = "/harness-ssh";

/// The placeholder prefix naming a key's private file in a step: `${ssh_key.deploy}`.
pub const SSH_KEY_PLACEHOLDER: &str = "ssh_key.";

/// The placeholder prefix standing for a key's private file, its text: only in a
/// `secret_absent` assertion's `text` (`${ssh_key_text.deploy}`), which looks for it in every
/// form in an image, a tarball or steps' output.
pub const SSH_KEY_TEXT_PLACEHOLDER: &str = "ssh_key_text.";

/// The placeholder prefix naming a service's IPv4 address on the plan's network:
/// `${service_ip.git}` (e.g. for `--add-host=git:${service_ip.git}`: a build's RUN, in a
/// daemon's own bridge network, cannot resolve the plan's network aliases).
pub const SERVICE_IP_PLACEHOLDER: &str = "service_ip.";

/// The most services a scenario may start.
pub const MAX_SERVICES: usize = 8;

/// The most SSH keys a scenario may ask for.
pub const MAX_SSH_KEYS: usize = 8;

/// A service container on the plan's network, started with the registries' environment and
/// torn down with it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The profile role whose image runs the service, e.g. `sshd` (known: `sshd`).
    pub role: String,
    /// Names of `ssh_keys` whose public keys the service accepts (its authorized_keys, mounted
    /// read-only where the role's profile entry says).
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
}

/// The `repository:tag` a base image is pushed as, if `name` is a known base image.
pub fn base_image_reference(name: &str) -> Option<&'static str> {
    KNOWN_BASE_IMAGES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, reference)| *reference)
}

/// The path of a key's private file in a step (`${ssh_key.NAME}`).
pub fn ssh_key_path(name: &str) -> String {
    format!("{SSH_KEYS_MOUNT}/{name}")
}
