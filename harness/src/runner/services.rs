//! The scenario's own services, SSH keys and extra base images (`services:`, `ssh_keys:`,
//! `base_images:`), as the runtime starts them, and the placeholders that name them in steps:
//! `${ssh_key.NAME}` (the private key's path in every step) and `${service_ip.NAME}` (a
//! service's address on the plan's network).

use std::collections::BTreeMap;

use runtime::ssh::SshKeys;
use runtime::{BaseImage, Environment, ServiceRun};
use scenario::Scenario;

use super::RunContext;
use crate::errors::RuntimeError;

/// What the runtime starts for the scenario besides its registries and DinD.
pub(super) struct OwnServices<'a> {
    services: Vec<ServiceRun<'a>>,
    keys: &'a SshKeys,
    base_images: Vec<BaseImage<'a>>,
}

/// The scenario's services with their roles' specs (the runner resolved every role the plan
/// needs before this runs), its keys and its base images.
pub(super) fn own_services<'a>(
    ctx: &'a RunContext,
    scenario: &'a Scenario,
    keys: &'a SshKeys,
) -> OwnServices<'a> {
    let role = |name: &str| ctx.profile.roles.get(name).expect("roles resolved above");
    let services = scenario
        .services
        .iter()
        .map(|(alias, service)| ServiceRun {
            alias,
            role: &service.role,
            spec: role(&service.role),
            authorized_keys: &service.ssh_authorized_keys,
        })
        .collect();
    let base_images = scenario
        .base_images
        .iter()
        .filter_map(|name| {
            Some(BaseImage {
                image: &role(name).image,
                reference: scenario::base_image_reference(name)?,
            })
        })
        .collect();
    OwnServices {
        services,
        keys,
        base_images,
    }
}

impl OwnServices<'_> {
    pub(super) async fn start(&self, env: &mut Environment) -> Result<(), RuntimeError> {
        env.start_services(&self.services, self.keys, &self.base_images)
            .await
    }
}

/// `${ssh_key.NAME}` for each key (its path in steps), `${ssh_key_text.NAME}` (its private
/// text, which validation admits only in a `secret_absent` assertion's `text`) and
/// `${service_ip.NAME}` for each service that is up.
pub(super) fn vars(
    scenario: &Scenario,
    env: &Environment,
    keys: &SshKeys,
) -> BTreeMap<String, String> {
    let paths = scenario.ssh_keys.iter().map(|name| {
        (
            format!("{}{name}", scenario::SSH_KEY_PLACEHOLDER),
            scenario::ssh_key_path(name),
        )
    });
    let texts = keys.iter().map(|(name, pair)| {
        (
            format!("{}{name}", scenario::SSH_KEY_TEXT_PLACEHOLDER),
            pair.private_openssh.clone(),
        )
    });
    let keys = paths.chain(texts);
    let addresses = env.service_ips().iter().map(|(alias, ip)| {
        (
            format!("{}{alias}", scenario::SERVICE_IP_PLACEHOLDER),
            ip.clone(),
        )
    });
    keys.chain(addresses).collect()
}

#[cfg(test)]
mod tests {
    use report::redact::Secrets;
    use runtime::ssh::SshKeys;

    #[test]
    fn a_private_key_printed_line_by_line_is_redacted() {
        let keys = SshKeys::generate(&["deploy".to_owned()]);
        let private = keys.get("deploy").unwrap().private_openssh.clone();
        let secrets = Secrets::new(keys.secrets());
        // Whole, and as a build log shows a file: each line behind a prefix.
        let log: String = private
            .lines()
            .map(|line| format!("#5 0.131 {line}\n"))
            .collect();
        for text in [private.as_str(), log.as_str()] {
            let redacted = secrets.redact(text);
            for line in private.lines().filter(|l| !l.starts_with("-----")) {
                if line.len() >= 16 {
                    assert!(!redacted.contains(line), "{redacted}");
                }
            }
        }
        // The public key is not a secret.
        let public = &keys.get("deploy").unwrap().public_openssh;
        assert_eq!(secrets.redact(public), public.as_str());
    }
}
