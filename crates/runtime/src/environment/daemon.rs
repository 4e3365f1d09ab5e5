//! What the environment's shared daemon and registries hold and said: image ids, the image list, registry logs.

use std::collections::BTreeMap;

use crate::errors::RuntimeError;

use super::*;

impl Environment {
    /// Whether the environment has a shared DinD daemon (some step of the plan may use it).
    pub fn has_shared_daemon(&self) -> bool {
        self.dind.is_some()
    }

    /// The shared daemon's API, or the Error saying it does not answer.
    async fn dind_api_or_not_ready(&self) -> Result<bollard::Docker, RuntimeError> {
        self.dind_api()
            .await
            .map_err(|detail| RuntimeError::NotReady {
                service: "dind".into(),
                seconds: 0,
                detail,
            })
    }

    /// The id of an image in the shared DinD daemon, or `None` when it has no such image (or
    /// the plan has no shared daemon: none of its steps could reach one). Asked through the
    /// daemon's API.
    pub async fn daemon_image_id(&self, reference: &str) -> Result<Option<String>, RuntimeError> {
        if self.dind.is_none() {
            return Ok(None);
        }
        let api = self.dind_api_or_not_ready().await?;
        match api.inspect_image(reference).await {
            Ok(image) => Ok(image.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(source) => Err(RuntimeError::Docker {
                action: format!("inspecting {reference} in dind"),
                source,
            }),
        }
    }

    /// Every tagged image in the shared DinD daemon: `repository:tag` → image id. Untagged
    /// (dangling) images are build intermediates and left out. None without a shared daemon.
    /// Asked through the daemon's API.
    pub async fn daemon_images(&self) -> Result<BTreeMap<String, String>, RuntimeError> {
        if self.dind.is_none() {
            return Ok(BTreeMap::new());
        }
        let api = self.dind_api_or_not_ready().await?;
        let images = api
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await
            .map_err(|source| RuntimeError::Docker {
                action: "listing the images in dind".into(),
                source,
            })?;
        Ok(images
            .into_iter()
            .flat_map(|image| {
                let id = image.id;
                image
                    .repo_tags
                    .into_iter()
                    .filter(|reference| !reference.contains("<none>"))
                    .map(move |reference| (reference, id.clone()))
            })
            .collect())
    }

    /// The output of a registry container (what it logged about each request), by the
    /// registry's name: its end, at most [`REGISTRY_LOG_LIMIT`] bytes.
    pub async fn registry_log(&self, name: &str) -> Option<String> {
        let id = self.registry_containers.iter().find(|(n, _)| n == name)?;
        Some(self.logs_within(&id.1, REGISTRY_LOG_LIMIT).await)
    }
}
