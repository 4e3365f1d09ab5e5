//! What a plugin pushed is read within bounds: a registry holding more tags than a reading
//! lists is read in part and says so (the accounting then fails the plan, `tests/accounting.rs`),
//! and an image config over the size the harness reads is refused by its declared size and by
//! what the registry sends, without reading it into memory. A real registry (no DinD: nothing
//! here uses a daemon) is filled from this test with oci-client.
//!
//! Needs the Docker daemon and the offline images; nextest runs it in the `docker` test group.

use oci::registry::MAX_CONFIG_BYTES;
use oci_client::client::ImageLayer;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol, Config};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

mod common;

/// Pushes a one-layer image whose config is `config` to `host/repository:tag`.
async fn push(client: &Client, host: &str, repository: &str, tag: &str, config: Vec<u8>) {
    let reference: Reference = format!("{host}/{repository}:{tag}").parse().unwrap();
    let layer = ImageLayer::oci_v1(b"not a tar, never read here".to_vec(), None);
    let config = Config::oci_v1(config, None);
    client
        .push(&reference, &[layer], config, &RegistryAuth::Anonymous, None)
        .await
        .unwrap_or_else(|e| panic!("pushing {reference}: {e}"));
}

/// The same, with a manifest whose config descriptor declares `declared` bytes.
async fn push_declaring(
    client: &Client,
    host: &str,
    repository: &str,
    tag: &str,
    config: Vec<u8>,
    declared: i64,
) {
    let reference: Reference = format!("{host}/{repository}:{tag}").parse().unwrap();
    let layers = [ImageLayer::oci_v1(b"not a tar".to_vec(), None)];
    let config = Config::oci_v1(config, None);
    let mut manifest = OciImageManifest::build(&layers, &config, None);
    manifest.config.size = declared;
    client
        .push(
            &reference,
            &layers,
            config,
            &RegistryAuth::Anonymous,
            Some(manifest),
        )
        .await
        .unwrap_or_else(|e| panic!("pushing {reference}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_registry_is_read_in_part_and_an_oversized_config_is_refused() {
    // No DinD: nothing here uses a daemon.
    common::docker::in_environment(
        "registry-limits",
        &["registry"],
        &[],
        false,
        async |env, _| {
            let registry = &env.registries()[0].1;
            let host = registry.host().to_owned();
            let ca = runtime::tls::run_ca().unwrap();
            let client = Client::new(ClientConfig {
                protocol: ClientProtocol::Https,
                tls_certs_only: vec![Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: ca.pem().as_bytes().to_vec(),
                }],
                ..Default::default()
            });

            // Four tags next to the harness's base image: five in all.
            for tag in ["1", "2", "3", "4"] {
                push(&client, &host, "flood/app", tag, b"{}".to_vec()).await;
            }
            let all = registry.contents(5).await.expect("the registry is read");
            assert!(!all.truncated, "five items fit a limit of five");
            assert_eq!(all.contents["flood/app"].len(), 4, "{:?}", all.contents);
            // Short by one, the limit ending inside a repository and at its end: exactly the
            // limit read, never a repository invented without its tags.
            for limit in [4, 3, 1] {
                let part = registry
                    .contents(limit)
                    .await
                    .expect("the registry is read");
                assert!(part.truncated, "a limit of {limit} is short of five");
                let read: usize = part.contents.values().map(|tags| tags.len().max(1)).sum();
                assert_eq!(read, limit, "{:?}", part.contents);
                assert!(
                    part.contents.values().all(|tags| !tags.is_empty()),
                    "no repository here is tagless: {:?}",
                    part.contents
                );
            }

            // A config one byte over the limit: refused by its declared size.
            let prefix = br#"{"config": {"Labels": {"a": ""#;
            let mut big = prefix.to_vec();
            big.resize(MAX_CONFIG_BYTES - 4, b'x');
            big.extend_from_slice(br#""}}}"#);
            big.push(b' ');
            assert_eq!(big.len(), MAX_CONFIG_BYTES + 1);
            push(&client, &host, "big/app", "1", big).await;
            let image = registry
                .image("big/app", "1")
                .await
                .expect("the registry answers")
                .expect("the tag exists");
            let refused = image.labels.expect_err("the config is not read");
            assert_eq!(
                refused,
                format!(
                    "the image config's descriptor declares {} bytes, not 0 to the \
                     {MAX_CONFIG_BYTES} the harness reads",
                    MAX_CONFIG_BYTES + 1
                )
            );

            // A descriptor that understates the size: stopped by what the registry sends.
            let mut lying = vec![b' '; MAX_CONFIG_BYTES + 1];
            lying[0] = b'{';
            let last = lying.len() - 1;
            lying[last] = b'}';
            push_declaring(&client, &host, "big/app", "lies", lying, 2).await;
            let image = registry
                .image("big/app", "lies")
                .await
                .expect("the registry answers")
                .expect("the tag exists");
            assert_eq!(
                image.labels.expect_err("the config is not read"),
                format!(
                    "the registry sent more than the {MAX_CONFIG_BYTES} bytes of image config \
                     the harness reads (its descriptor declares 2)"
                )
            );
            // Its manifest is still accounted for, by the tag's reading.
            let again = registry.contents(100).await.unwrap();
            assert!(again.contents["big/app"]["1"].config_digest.is_some());

            // One at the limit is read.
            let mut fits = prefix.to_vec();
            fits.resize(MAX_CONFIG_BYTES - 4, b'x');
            fits.extend_from_slice(br#""}}}"#);
            push(&client, &host, "big/app", "2", fits).await;
            let labels = registry
                .image("big/app", "2")
                .await
                .unwrap()
                .unwrap()
                .labels
                .expect("a config at the limit is read");
            assert_eq!(labels["a"].len(), MAX_CONFIG_BYTES - 4 - prefix.len());
        },
    )
    .await;
}
