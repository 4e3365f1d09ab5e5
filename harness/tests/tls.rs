//! The registries serve HTTPS with the run's CA, and only the containers' trust paths see it:
//! an environment with one HTTPS and one plain-HTTP registry is brought up for real, asked
//! from the host with the right, a wrong and no CA, and a step container shows what a role
//! declaring `trust` gets mounted (the CA, never the registry's private key).
//!
//! Needs the Docker daemon and the offline images (brought up when missing); nextest runs it in
//! the `docker` test group.

use std::collections::BTreeMap;
use std::time::Duration;

use oci::registry::Registry;
use runtime::profile::{RoleSpec, Trust};
use scenario::DaemonMode;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_serve_https_with_the_run_ca_and_steps_trust_only_what_their_role_declares() {
    common::docker::in_environment(
        "tls",
        &["registry", "plain"],
        &["plain"],
        true,
        async |env, ctx| {
            let role = |name: &str| ctx.profile.role(name).expect("the profile has the role");
            let hosts: BTreeMap<String, String> = env
                .registries()
                .iter()
                .map(|(name, registry)| (name.clone(), registry.host().to_owned()))
                .collect();
            let ca = runtime::tls::run_ca().unwrap();

            // The harness's own clients (the run's CA, or plain HTTP where the scenario says so).
            for (name, registry) in env.registries() {
                registry
                    .answers()
                    .await
                    .unwrap_or_else(|e| panic!("{name} answers its client: {e}"));
            }
            // The HTTPS registry refuses plain HTTP and a client trusting another CA.
            let https = &hosts["registry"];
            assert!(
                Registry::new(https.clone()).answers().await.is_err(),
                "plain HTTP to the HTTPS registry must fail"
            );
            let stranger = rcgen::generate_simple_self_signed(vec!["registry".to_owned()])
                .unwrap()
                .cert
                .pem();
            let refused = Registry::connect(https.clone(), Some(&stranger), None)
                .answers()
                .await
                .expect_err("a CA other than the run's is not trusted");
            assert!(
                refused.to_string().to_lowercase().contains("certificate")
                    || refused
                        .to_string()
                        .to_lowercase()
                        .contains("error sending request"),
                "refused for its certificate: {refused}"
            );
            Registry::connect(https.clone(), Some(ca.pem()), None)
                .answers()
                .await
                .expect("the run's CA is trusted");
            // The plain registry speaks plain HTTP.
            Registry::new(hosts["plain"].clone())
                .answers()
                .await
                .expect("the plain-HTTP registry answers plain HTTP");

            // A step of a role declaring every kind of trust: the CA where it says, the variable
            // naming the file; no certs.d entry for the plain registry; no private key anywhere.
            let mut spec: RoleSpec = role("busybox").clone();
            spec.entrypoint = Some(vec!["sh".into(), "-c".into()]);
            spec.args = vec![[
                "cat /etc/docker/certs.d/registry:5000/ca.crt",
                "echo ca_file_env=$SSL_CERT_FILE",
                "cmp /etc/docker/certs.d/registry:5000/ca.crt \"$SSL_CERT_FILE\" && echo same-ca",
                "ls /etc/docker/certs.d",
                "grep -rl 'PRIVATE KEY' /etc /conformance /harness /run /tmp 2>/dev/null \
             || echo no-private-key",
            ]
            .join("; ")];
            spec.trust = Trust {
                certs_d: vec!["/etc/docker/certs.d".into()],
                ca_file: Some("/etc/conformance/ca.crt".into()),
                ca_file_env: vec!["SSL_CERT_FILE".into()],
            };
            let step = env
                .run_step(
                    "show-trust",
                    "busybox",
                    &spec,
                    &BTreeMap::new(),
                    runtime::StepBounds {
                        daemon: DaemonMode::Own,
                        timeout: Duration::from_secs(60),
                        limits: Default::default(),
                    },
                )
                .await
                .expect("the step runs");
            assert_eq!(step.exit_code, Some(0), "{}", step.log);
            assert!(step.log.contains(ca.pem().trim()), "{}", step.log);
            assert!(
                step.log
                    .contains("ca_file_env=/etc/conformance/ca.crt\nsame-ca"),
                "{}",
                step.log
            );
            assert!(step.log.contains("registry:5000"), "{}", step.log);
            assert!(!step.log.contains("plain:5000"), "{}", step.log);
            assert!(step.log.contains("no-private-key"), "{}", step.log);
        },
    )
    .await;
}
