//! What the environment's shared daemon and registries hold and said: image ids, the image list, registry logs.

use std::collections::BTreeMap;

use crate::errors::RuntimeError;

use crate::*;

use super::*;

impl Environment {
    /// Whether the environment has a shared DinD daemon (some step of the plan may use it).
    pub fn has_shared_daemon(&self) -> bool {
        self.dind.is_some()
    }

    /// The id of an image in the shared DinD daemon, or `None` when it has no such image (or
    /// the plan has no shared daemon: none of its steps could reach one).
    pub async fn daemon_image_id(&self, reference: &str) -> Result<Option<String>, RuntimeError> {
        let Some(dind) = self.dind.as_deref() else {
            return Ok(None);
        };
        let (code, output) = self
            .exec(
                dind,
                &[
                    "docker", "image", "inspect", "--format", "{{.Id}}", reference,
                ],
            )
            .await
            .map_err(|source| RuntimeError::Docker {
                action: format!("inspecting {reference} in dind"),
                source,
            })?;
        if code == 0 {
            Ok(Some(output.trim().to_owned()))
        } else if output.contains("No such image") {
            Ok(None)
        } else {
            Err(RuntimeError::NotReady {
                service: "dind".into(),
                seconds: 0,
                detail: output,
            })
        }
    }

    /// Every tagged image in the shared DinD daemon: `repository:tag` → image id. Untagged
    /// (dangling) images are build intermediates and left out. None without a shared daemon.
    pub async fn daemon_images(&self) -> Result<BTreeMap<String, String>, RuntimeError> {
        let Some(dind) = self.dind.as_deref() else {
            return Ok(BTreeMap::new());
        };
        let format = "{{.Repository}}:{{.Tag}} {{.ID}}";
        let (code, output) = self
            .exec(
                dind,
                &["docker", "image", "ls", "--no-trunc", "--format", format],
            )
            .await
            .map_err(|source| RuntimeError::Docker {
                action: "listing the images in dind".into(),
                source,
            })?;
        if code != 0 {
            return Err(RuntimeError::NotReady {
                service: "dind".into(),
                seconds: 0,
                detail: tail(&output, 2000),
            });
        }
        Ok(output
            .lines()
            .filter_map(|line| line.trim().split_once(' '))
            .filter(|(reference, _)| !reference.contains("<none>"))
            .map(|(reference, id)| (reference.to_owned(), id.trim().to_owned()))
            .collect())
    }

    /// The output of a registry container (what it logged about each request), by the
    /// registry's name.
    pub async fn registry_log(&self, name: &str) -> Option<String> {
        let id = self.registry_containers.iter().find(|(n, _)| n == name)?;
        Some(self.logs(&id.1).await)
    }
}
