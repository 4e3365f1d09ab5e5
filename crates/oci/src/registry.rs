//! Asking a registry what it really holds, over HTTPS (trusting the run's CA) or plain HTTP,
//! with oci-client.
//!
//! "Not there" (unknown repository, unknown tag) is an answer; anything else that goes wrong
//! (connection refused, a 500, a malformed manifest) is a [`RegistryQueryError`].

use std::collections::{BTreeMap, BTreeSet};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::archive::{
    apply_layer_files, apply_layers, config_labels, image_path, read_layer_entries,
    read_layer_files, scan_layer, search_json, search_layer, Compression, FileContent, Limits,
    Needles, Searched, Want,
};
use crate::errors::RegistryQueryError;
use crate::image_view::ImageDescription;
pub use model::inventory::{RegistryContents, ServedTag};

/// The largest image config the harness reads into memory. Real ones are a few KiB; a plugin
/// may push any size.
pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// The most tags (and repositories without tags) one reading of a registry lists: a scenario's
/// steps push a handful; a plugin pushing thousands makes the reading stop here (and the
/// accounting a Fail) instead of taking minutes.
pub const MAX_READ_TAGS: usize = 1000;

fn config_declared_too_big(size: i64) -> String {
    format!(
        "the image config's descriptor declares {size} bytes, not 0 to the {MAX_CONFIG_BYTES} \
         the harness reads"
    )
}

fn config_sent_too_big(size: i64) -> String {
    format!(
        "the registry sent more than the {MAX_CONFIG_BYTES} bytes of image config the harness \
         reads (its descriptor declares {size})"
    )
}

/// An in-memory sink that refuses to grow past its limit.
struct Capped {
    data: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl Capped {
    fn new(limit: usize) -> Capped {
        Capped {
            data: Vec::new(),
            limit,
            overflowed: false,
        }
    }
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.data.len() + buf.len() > this.limit {
            this.overflowed = true;
            return std::task::Poll::Ready(Err(std::io::Error::other("over the limit")));
        }
        this.data.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

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
    /// The platform manifest's digest (the tag's own when it names no index).
    platform_digest: String,
    config: OciDescriptor,
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
        self.list_tags(repository, None).await
    }

    /// At most `n` tags of a repository (the registry's first page of that size), or all.
    async fn list_tags(
        &self,
        repository: &str,
        n: Option<usize>,
    ) -> Result<Vec<String>, RegistryQueryError> {
        match self
            .client
            .list_tags(&self.reference(repository, "latest"), &self.auth, n, None)
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

    /// The manifest a reference names (the platform manifest for this machine when it is an
    /// index), its digest and the index's; `None` when the tag or repository is unknown.
    async fn platform_manifest(
        &self,
        reference: &Reference,
    ) -> Result<Option<(OciImageManifest, String, Option<String>)>, OciDistributionError> {
        match self
            .client
            .pull_image_manifest_and_list_digest(reference, &self.auth)
            .await
        {
            Ok(found) => Ok(Some(found)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
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
        let query_error = |what: &str| {
            let what = format!("{what} of {reference}");
            move |e: OciDistributionError| RegistryQueryError {
                what,
                message: e.to_string(),
            }
        };
        let Some((manifest, digest, list_digest)) = self
            .platform_manifest(&reference)
            .await
            .map_err(query_error("manifest"))?
        else {
            return Ok(None);
        };
        // The config as the plugin pushed it, read into memory only up to the limit (the
        // descriptor's size first, then what the registry actually sends). Whatever it is, the
        // plugin put it there: a Fail of the label checks, never more memory.
        let labels = self
            .pull_config(&reference, &manifest.config)
            .await
            .map_err(query_error("image config"))?
            .and_then(|config| {
                serde_json::from_slice::<serde_json::Value>(&config)
                    .map(|config| config_labels(&config))
                    .map_err(|e| format!("the image config is not json: {e}"))
            });
        Ok(Some(RegistryImage {
            // The digest the tag names: the index's when it is one.
            manifest_digest: list_digest.unwrap_or_else(|| digest.clone()),
            media_type: manifest.media_type.clone(),
            config_digest: manifest.config.digest.clone(),
            layer_count: manifest.layers.len(),
            labels,
            reference: reference.clone(),
            platform_digest: digest,
            config: manifest.config.clone(),
            layers: manifest.layers,
        }))
    }
}

/// A registry as one reading found it.
#[derive(Debug, Clone, Default)]
pub struct RegistryReading {
    pub contents: RegistryContents,
    /// The registry held more than the reading's limit: `contents` has the first ones only.
    pub truncated: bool,
}

impl Registry {
    /// Reads the registry: the catalog, every tag of every repository, and what each tag
    /// names (manifest digest; the platform manifest's media type, config digest and layer
    /// count), up to `max_items` tags and tagless repositories in all (see [`MAX_READ_TAGS`]).
    pub async fn contents(&self, max_items: usize) -> Result<RegistryReading, RegistryQueryError> {
        let err = |what: String| {
            move |e: OciDistributionError| RegistryQueryError {
                what,
                message: e.to_string(),
            }
        };
        let anchor = self.reference("catalog", "latest");
        let page_size = max_items.saturating_add(1).min(1000);
        let mut repositories = Vec::new();
        // One repository more than the limit shows that there is more.
        while repositories.len() <= max_items {
            let page = self
                .client
                .catalog(
                    &anchor,
                    &self.auth,
                    Some(page_size),
                    repositories.last().map(String::as_str),
                )
                .await
                .map_err(err(format!("catalog of {}", self.host)))?;
            let done = page.repositories.len() < page_size;
            repositories.extend(page.repositories);
            if done {
                break;
            }
        }
        let mut reading = RegistryReading::default();
        let mut left = max_items;
        for repository in repositories {
            if left == 0 {
                // Another repository is more than the reading lists.
                reading.truncated = true;
                break;
            }
            // One tag more than is left shows that there is more.
            let mut listed = self
                .list_tags(&repository, Some(left.saturating_add(1)))
                .await?;
            if listed.len() > left {
                listed.truncate(left);
                reading.truncated = true;
            }
            // A repository without tags counts as one item.
            left -= listed.len().max(1);
            let mut tags = BTreeMap::new();
            for tag in listed {
                let reference = self.reference(&repository, &tag);
                let served = match self.platform_manifest(&reference).await {
                    Ok(Some((manifest, digest, list_digest))) => ServedTag {
                        manifest_digest: list_digest.unwrap_or(digest),
                        config_digest: Some(manifest.config.digest),
                        media_type: manifest.media_type,
                        layers: Some(manifest.layers.len()),
                    },
                    // Gone between the listing and now, or not an image this client reads:
                    // the manifest digest alone still says what the tag names.
                    Ok(None) | Err(_) => ServedTag {
                        manifest_digest: self
                            .client
                            .fetch_manifest_digest(&reference, &self.auth)
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
            reading.contents.insert(repository, tags);
            if reading.truncated {
                break;
            }
        }
        Ok(reading)
    }

    /// The image config `descriptor` names, read into memory only up to [`MAX_CONFIG_BYTES`]
    /// (the descriptor's size first, then what the registry actually sends): its bytes, or why
    /// it is over the limit (the plugin's doing). The outer error: the registry could not be
    /// asked.
    async fn pull_config(
        &self,
        reference: &Reference,
        descriptor: &OciDescriptor,
    ) -> Result<Result<Vec<u8>, String>, OciDistributionError> {
        if !(0..=MAX_CONFIG_BYTES as i64).contains(&descriptor.size) {
            return Ok(Err(config_declared_too_big(descriptor.size)));
        }
        let mut config = Capped::new(MAX_CONFIG_BYTES);
        match self
            .client
            .pull_blob(reference, descriptor, &mut config)
            .await
        {
            Ok(()) => Ok(Ok(config.data)),
            Err(_) if config.overflowed => Ok(Err(config_sent_too_big(descriptor.size))),
            Err(e) => Err(e),
        }
    }

    /// A layer of a served image pulled (its digest verified by the client) into a temporary
    /// file: the file, rewound, with its size and how it is compressed. The error says the
    /// registry could not be asked or the harness could not keep the blob.
    async fn pull_layer(
        &self,
        image: &RegistryImage,
        layer: &OciDescriptor,
    ) -> Result<(std::fs::File, u64, Compression), RegistryQueryError> {
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
        let mut file = file;
        let opened = (|| {
            std::io::Seek::rewind(&mut file)?;
            let size = file.metadata()?.len();
            let mut head = [0u8; 4];
            let got = std::io::Read::read(&mut file, &mut head)?;
            std::io::Seek::rewind(&mut file)?;
            Ok((size, Compression::sniff(&head[..got])))
        })();
        let (size, compression) = opened.map_err(local)?;
        Ok((file, size, compression))
    }

    /// A layer of a served image pulled as by [`Registry::pull_layer`], then read off the async
    /// runtime: `read` gets the file (buffered, 256 KiB), its size and how it is compressed.
    async fn read_pulled_layer<T: Send + 'static>(
        &self,
        image: &RegistryImage,
        layer: &OciDescriptor,
        read: impl FnOnce(std::io::BufReader<std::fs::File>, u64, Compression) -> T + Send + 'static,
    ) -> Result<T, RegistryQueryError> {
        let (file, size, compression) = self.pull_layer(image, layer).await?;
        tokio::task::spawn_blocking(move || {
            let reader = std::io::BufReader::with_capacity(256 * 1024, file);
            read(reader, size, compression)
        })
        .await
        .map_err(|e| layer_reader_stopped(image, layer, e))
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
            let digest = layer.digest.clone();
            let limits = limits.clone();
            let (scan, left) = self
                .read_pulled_layer(image, layer, move |reader, size, compression| {
                    let scan = scan_layer(
                        reader,
                        compression,
                        size,
                        &limits,
                        Want::default(),
                        &mut names_left,
                    )
                    .map_err(|problem| problem.describe(&digest));
                    (scan, names_left)
                })
                .await?;
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

    /// The content of some files of a served image, by the paths given (e.g. `/stage`): every
    /// layer pulled as for [`Registry::files`] and streamed through the bounded decompressor,
    /// keeping at most [`MAX_FILE_BYTES`](crate::archive::MAX_FILE_BYTES) of each file asked for; then the layers applied in
    /// order, whiteouts honoured. A path no layer leaves is not in the map. Errors as for
    /// [`Registry::files`].
    pub async fn file_contents(
        &self,
        image: &RegistryImage,
        paths: &[String],
    ) -> Result<Result<BTreeMap<String, FileContent>, String>, RegistryQueryError> {
        let wanted: BTreeSet<String> = paths.iter().map(|p| image_path(p)).collect();
        let mut layers = Vec::with_capacity(image.layers.len());
        for layer in &image.layers {
            let digest = layer.digest.clone();
            let wanted = wanted.clone();
            let read = self
                .read_pulled_layer(image, layer, move |reader, size, compression| {
                    read_layer_files(reader, compression, size, &Limits::default(), &wanted)
                        .map_err(|problem| problem.describe(&digest))
                })
                .await?;
            match read.and_then(|r| r.map_err(|e| format!("layer {}: {e}", layer.digest))) {
                Ok(files) => layers.push(files),
                Err(e) => return Ok(Err(e)),
            }
        }
        let found = apply_layer_files(layers);
        Ok(Ok(paths
            .iter()
            .filter_map(|p| Some((p.clone(), found.get(&image_path(p))?.clone())))
            .collect()))
    }
}

impl Registry {
    /// A served image as [`crate::image_view`] describes it: the config (at most
    /// [`MAX_CONFIG_BYTES`]) and every layer, pulled once each (digest verified) into a
    /// temporary file and streamed through the bounded decompressor, every regular file's
    /// content hashed on the way; only the entries are kept, within
    /// [`Limits::name_bytes`](crate::archive::Limits). Errors as for [`Registry::files`].
    pub async fn describe(
        &self,
        image: &RegistryImage,
    ) -> Result<Result<ImageDescription, String>, RegistryQueryError> {
        let config = match self
            .pull_config(&image.reference, &image.config)
            .await
            .map_err(|e| RegistryQueryError {
                what: format!("image config of {}", image.reference),
                message: e.to_string(),
            })? {
            Ok(config) => config,
            Err(e) => return Ok(Err(e)),
        };
        let config = match serde_json::from_slice::<serde_json::Value>(&config) {
            Ok(config) => config,
            Err(e) => return Ok(Err(format!("the image config is not json: {e}"))),
        };
        let limits = Limits::default();
        let mut budget = limits.name_bytes;
        let mut layers = Vec::with_capacity(image.layers.len());
        for layer in &image.layers {
            let digest = layer.digest.clone();
            let limits = limits.clone();
            let (read, left) = self
                .read_pulled_layer(image, layer, move |reader, size, compression| {
                    let read = read_layer_entries(reader, compression, size, &limits, &mut budget)
                        .map_err(|problem| problem.describe(&digest));
                    (read, budget)
                })
                .await?;
            budget = left;
            match read.and_then(|r| r.map_err(|e| format!("layer {}: {e}", layer.digest))) {
                Ok(entries) => layers.push(entries),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(ImageDescription::new(&config, layers)))
    }
}

/// The manifest media types a search asks a registry for (what a tag may name).
const MANIFEST_MEDIA_TYPES: &[&str] = &[
    oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
    oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

impl Registry {
    /// Searches a served image for the needles (see [`crate::archive::search_layer`]): the
    /// manifest the tag names (and the platform manifest, when that is an index), the image
    /// config (at most [`MAX_CONFIG_BYTES`] of it), and every layer, pulled (digest verified) into
    /// a temporary file and streamed through the bounded decompressor, every byte of it searched.
    /// An index's other manifests (attestations, other platforms) are not followed. The inner
    /// error says the image could not be searched through (a layer that breaks the archive
    /// limits, a config over its limit: what was pushed); the outer one that the registry could
    /// not be asked or the harness could not keep a blob.
    pub async fn search(
        &self,
        image: &RegistryImage,
        needles: &std::sync::Arc<Needles>,
    ) -> Result<Result<Searched, String>, RegistryQueryError> {
        let query_error = |what: String| {
            move |e: OciDistributionError| RegistryQueryError {
                what,
                message: e.to_string(),
            }
        };
        let mut searched = Searched::default();
        let tagged = image.reference.clone();
        let platform = Reference::with_digest(
            self.host.clone(),
            tagged.repository().to_owned(),
            image.platform_digest.clone(),
        );
        let mut manifests = vec![(tagged, "the manifest")];
        if image.platform_digest != image.manifest_digest {
            manifests[0].1 = "the index";
            manifests.push((platform, "the platform manifest"));
        }
        for (reference, name) in manifests {
            let (bytes, _) = self
                .client
                .pull_manifest_raw(&reference, &self.auth, MANIFEST_MEDIA_TYPES)
                .await
                .map_err(query_error(format!("manifest of {reference}")))?;
            let found = search_json(&bytes, needles, name);
            searched.add_part(found, "");
        }
        match self
            .pull_config(&image.reference, &image.config)
            .await
            .map_err(query_error(format!("image config of {}", image.reference)))?
        {
            Ok(config) => searched.add_part(search_json(&config, needles, "the image config"), ""),
            Err(e) => return Ok(Err(e)),
        }
        let count = image.layers.len();
        for (i, layer) in image.layers.iter().enumerate() {
            let digest = layer.digest.clone();
            let needles = needles.clone();
            let found = self
                .read_pulled_layer(image, layer, move |reader, size, compression| {
                    search_layer(reader, compression, size, &Limits::default(), &needles).map_err(
                        |problem| format!("{}: not searched through", problem.describe(&digest)),
                    )
                })
                .await?;
            match found {
                Ok(found) => searched.add_part(
                    found,
                    &format!("layer {} ({} of {count})", layer.digest, i + 1),
                ),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(searched))
    }
}

fn layer_reader_stopped(
    image: &RegistryImage,
    layer: &OciDescriptor,
    e: tokio::task::JoinError,
) -> RegistryQueryError {
    RegistryQueryError {
        what: format!("layer {} of {}", layer.digest, image.reference),
        message: format!("the layer reader stopped: {e}"),
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
