//! Asking a registry what it really holds, over HTTPS (trusting the run's CA) or plain HTTP,
//! with oci-client.
//!
//! "Not there" (unknown repository, unknown tag) is an answer; anything else that goes wrong
//! (connection refused, a 500, a malformed manifest) is a [`RegistryQueryError`].

use std::collections::{BTreeMap, BTreeSet};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::archive::{apply_layers, config_labels, scan_layer, Compression, Limits, Want};
use crate::errors::RegistryQueryError;

/// A registry reached from the host, e.g. `127.0.0.1:32768`.
pub struct Registry {
    client: Client,
    host: String,
    auth: RegistryAuth,
}

/// What the registry serves for a tag.
#[derive(Debug, Clone)]
pub struct RegistryImage {
    /// The digest the tag names (an index's, when the tag points to one).
    pub manifest_digest: String,
    /// Media type, config and layers are those of the platform manifest for this machine.
    pub media_type: Option<String>,
    pub config_digest: String,
    pub layer_count: usize,
    /// The image config's labels, or why the config could not be read.
    pub labels: Result<BTreeMap<String, String>, String>,
    reference: Reference,
    layers: Vec<OciDescriptor>,
}

impl Registry {
    /// A registry served over plain HTTP, asked anonymously.
    pub fn new(host: impl Into<String>) -> Registry {
        Registry::connect(host, None, None)
    }

    /// A registry over HTTPS trusting only `ca_pem` (the run's CA), or over plain HTTP without
    /// one; with basic auth when credentials are given.
    pub fn connect(
        host: impl Into<String>,
        ca_pem: Option<&str>,
        basic_auth: Option<(&str, &str)>,
    ) -> Registry {
        let config = match ca_pem {
            Some(pem) => ClientConfig {
                protocol: ClientProtocol::Https,
                tls_certs_only: vec![Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.as_bytes().to_vec(),
                }],
                ..Default::default()
            },
            None => ClientConfig {
                protocol: ClientProtocol::Http,
                ..Default::default()
            },
        };
        Registry {
            client: Client::new(config),
            host: host.into(),
            auth: match basic_auth {
                Some((user, password)) => RegistryAuth::Basic(user.to_owned(), password.to_owned()),
                None => RegistryAuth::Anonymous,
            },
        }
    }

    /// Whether the registry answers the distribution API (a tag listing of a repository that
    /// does not exist: "unknown" is an answer); the error says why not.
    pub async fn answers(&self) -> Result<(), RegistryQueryError> {
        self.tags("conformance/readiness-probe").await.map(|_| ())
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn reference(&self, repository: &str, tag: &str) -> Reference {
        Reference::with_tag(self.host.clone(), repository.to_owned(), tag.to_owned())
    }

    /// Tags of a repository; empty when the registry does not know the repository.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryQueryError> {
        match self
            .client
            .list_tags(
                &self.reference(repository, "latest"),
                &self.auth,
                None,
                None,
            )
            .await
        {
            Ok(response) => Ok(response.tags),
            Err(e) if is_not_found(&e) => Ok(Vec::new()),
            Err(e) => Err(RegistryQueryError {
                what: format!("tags of {}/{repository}", self.host),
                message: e.to_string(),
            }),
        }
    }

    /// The image a tag points to (the platform manifest for this machine when it is an index);
    /// `None` when the tag or repository is unknown.
    pub async fn image(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<RegistryImage>, RegistryQueryError> {
        let reference = self.reference(repository, tag);
        match self
            .client
            .pull_manifest_and_config_and_list_digest(&reference, &self.auth)
            .await
        {
            Ok((manifest, digest, config, list_digest)) => Ok(Some(RegistryImage {
                // The digest the tag names: the index's when it is one.
                manifest_digest: list_digest.unwrap_or(digest),
                media_type: manifest.media_type.clone(),
                config_digest: manifest.config.digest.clone(),
                layer_count: manifest.layers.len(),
                // A config that is not JSON was pushed by the plugin: a Fail of the label checks.
                labels: serde_json::from_str::<serde_json::Value>(&config)
                    .map(|config| config_labels(&config))
                    .map_err(|e| format!("the image config is not json: {e}")),
                reference: reference.clone(),
                layers: manifest.layers,
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(RegistryQueryError {
                what: format!("manifest of {reference}"),
                message: e.to_string(),
            }),
        }
    }
}

/// What a registry serves for one tag, as the inventory records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServedTag {
    pub manifest_digest: String,
    /// `None` when the manifest names no config the harness can read (an artifact, a foreign
    /// platform); the manifest digest still identifies what was pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    /// The (platform) manifest's media type and layer count, when the client could read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
}

/// Everything a registry serves: repository → tag → what the tag names. A repository with no
/// tags is listed with an empty map (the catalog names it, e.g. after a push by digest).
pub type RegistryContents = BTreeMap<String, BTreeMap<String, ServedTag>>;

impl Registry {
    /// Reads the whole registry: the catalog (every page), every tag of every repository, and
    /// each tag's manifest and config digests.
    pub async fn contents(&self) -> Result<RegistryContents, RegistryQueryError> {
        let err = |what: String| {
            move |e: OciDistributionError| RegistryQueryError {
                what,
                message: e.to_string(),
            }
        };
        let anchor = self.reference("catalog", "latest");
        let mut repositories = Vec::new();
        loop {
            let page = self
                .client
                .catalog(
                    &anchor,
                    &self.auth,
                    Some(1000),
                    repositories.last().map(String::as_str),
                )
                .await
                .map_err(err(format!("catalog of {}", self.host)))?;
            let done = page.repositories.len() < 1000;
            repositories.extend(page.repositories);
            if done {
                break;
            }
        }
        let mut contents = RegistryContents::new();
        for repository in repositories {
            let mut tags = BTreeMap::new();
            for tag in self.tags(&repository).await? {
                let served = match self.image(&repository, &tag).await {
                    Ok(Some(image)) => ServedTag {
                        manifest_digest: image.manifest_digest,
                        config_digest: Some(image.config_digest),
                        media_type: image.media_type,
                        layers: Some(image.layer_count),
                    },
                    // Gone between the listing and now, or not an image this client reads:
                    // the manifest digest alone still says what the tag names.
                    Ok(None) | Err(_) => ServedTag {
                        manifest_digest: self
                            .client
                            .fetch_manifest_digest(&self.reference(&repository, &tag), &self.auth)
                            .await
                            .map_err(err(format!(
                                "manifest of {}/{repository}:{tag}",
                                self.host
                            )))?,
                        config_digest: None,
                        media_type: None,
                        layers: None,
                    },
                };
                tags.insert(tag, served);
            }
            contents.insert(repository, tags);
        }
        Ok(contents)
    }

    /// The files of a served image: every layer pulled (its digest verified by the client)
    /// into a temporary file, then streamed through the bounded decompressor and listed (names
    /// only), applied in order; nothing is held in memory but the names. The inner error says
    /// the layers are not readable tars or break the archive limits (what was pushed is
    /// broken); the outer one that the registry could not be asked or the harness could not
    /// keep the blob.
    pub async fn files(
        &self,
        image: &RegistryImage,
    ) -> Result<Result<BTreeSet<String>, String>, RegistryQueryError> {
        let limits = Limits::default();
        let mut names_left = limits.name_bytes;
        let mut layers = Vec::with_capacity(image.layers.len());
        for layer in &image.layers {
            let what = || format!("layer {} of {}", layer.digest, image.reference);
            let local = |e: std::io::Error| RegistryQueryError {
                what: what(),
                message: format!("cannot keep the blob in a temporary file: {e}"),
            };
            let file = tempfile::tempfile().map_err(local)?;
            let mut blob = tokio::fs::File::from_std(file.try_clone().map_err(local)?);
            self.client
                .pull_blob(&image.reference, layer, &mut blob)
                .await
                .map_err(|e| RegistryQueryError {
                    what: what(),
                    message: e.to_string(),
                })?;
            tokio::io::AsyncWriteExt::flush(&mut blob)
                .await
                .map_err(local)?;
            drop(blob);
            let digest = layer.digest.clone();
            let limits = limits.clone();
            let scanned = tokio::task::spawn_blocking(move || {
                let mut file = file;
                std::io::Seek::rewind(&mut file)?;
                let size = file.metadata()?.len();
                let mut head = [0u8; 4];
                let got = std::io::Read::read(&mut file, &mut head)?;
                std::io::Seek::rewind(&mut file)?;
                let compression = Compression::sniff(&head[..got]);
                let reader = std::io::BufReader::with_capacity(256 * 1024, file);
                let scan = scan_layer(
                    reader,
                    compression,
                    size,
                    &limits,
                    Want::default(),
                    &mut names_left,
                )
                .map_err(|problem| problem.describe(&digest));
                Ok::<_, std::io::Error>((scan, names_left))
            })
            .await
            .map_err(|e| RegistryQueryError {
                what: what(),
                message: format!("the layer reader stopped: {e}"),
            })?
            .map_err(local)?;
            let (scan, left) = scanned;
            names_left = left;
            match scan.and_then(|s| s.paths.map_err(|e| format!("layer {}: {e}", layer.digest))) {
                Ok(paths) => layers.push(paths),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(apply_layers(
            layers.iter().map(|paths| paths.as_slice()),
        )))
    }
}

/// The registry called `name` among a scenario's registries, or the first (the default) when
/// no name is given; validation made sure a given name exists.
pub fn named<'a>(
    registries: &'a [(String, Registry)],
    name: Option<&str>,
) -> (&'a str, &'a Registry) {
    let found = name.and_then(|n| registries.iter().find(|(r, _)| r == n));
    let (name, registry) = found.unwrap_or(&registries[0]);
    (name, registry)
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::NameUnknown | OciErrorCode::ManifestUnknown
            )
        }),
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}
