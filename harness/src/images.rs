//! Making sure every image a plan needs is in the daemon, and recording exactly which ran.

use std::collections::BTreeMap;
use std::path::Path;

use bollard::query_parameters::CreateImageOptions;
use bollard::Docker;
use futures_util::StreamExt;

use crate::errors::ImageBuildError;
use model::result::ImageRecord;
use runtime::profile::{Profile, PullPolicy};

/// Runs the profile's build script, if it has one (the offline profile builds from Debian
/// packages; hot in ~0.1 s when the images are current).
pub async fn build_profile_images(root: &Path, profile: &Profile) -> Result<(), ImageBuildError> {
    let Some(script) = &profile.build else {
        return Ok(());
    };
    let script = root.join(script);
    // In a process group of its own, stopped with the group (SIGTERM) when this future is
    // dropped: a harness asked to stop during an image build ends at once and leaves no
    // build behind.
    let mut child = tokio::process::Command::new("bash")
        .arg(&script)
        .process_group(0)
        .spawn()
        .map_err(|source| ImageBuildError::Spawn {
            script: script.clone(),
            source,
        })?;
    let group = StopGroupOnDrop(child.id());
    let status = child
        .wait()
        .await
        .map_err(|source| ImageBuildError::Spawn {
            script: script.clone(),
            source,
        })?;
    std::mem::forget(group);
    if status.success() {
        Ok(())
    } else {
        Err(ImageBuildError::Failed { script, status })
    }
}

/// Sends SIGTERM to a process group when dropped (the build was abandoned).
struct StopGroupOnDrop(Option<u32>);

impl Drop for StopGroupOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|pid| libc::pid_t::try_from(pid).ok()) {
            // SAFETY: killpg only sends a signal; the group is the one the child leads.
            unsafe {
                libc::killpg(pid, libc::SIGTERM);
            }
        }
    }
}

/// Inspects (and, if the profile allows, pulls) the image of each role; returns what ran.
pub async fn resolve(
    docker: &Docker,
    profile: &Profile,
    roles: &[String],
) -> Result<BTreeMap<String, ImageRecord>, ImageBuildError> {
    let mut records = BTreeMap::new();
    for role in roles {
        let spec = profile
            .roles
            .get(role)
            .ok_or_else(|| ImageBuildError::Missing {
                role: role.clone(),
                image: "(no such role)".into(),
                profile: profile.name.clone(),
            })?;
        let id = match docker.inspect_image(&spec.image).await {
            Ok(inspect) => inspect.id.unwrap_or_default(),
            Err(_) if profile.pull == PullPolicy::IfMissing => {
                pull(docker, role, &spec.image).await?;
                docker
                    .inspect_image(&spec.image)
                    .await
                    .map_err(|e| ImageBuildError::Pull {
                        role: role.clone(),
                        image: spec.image.clone(),
                        message: e.to_string(),
                    })?
                    .id
                    .unwrap_or_default()
            }
            Err(_) => {
                return Err(ImageBuildError::Missing {
                    role: role.clone(),
                    image: spec.image.clone(),
                    profile: profile.name.clone(),
                })
            }
        };
        records.insert(
            role.clone(),
            ImageRecord {
                image: spec.image.clone(),
                id,
                note: spec.note.clone(),
            },
        );
    }
    Ok(records)
}

async fn pull(docker: &Docker, role: &str, image: &str) -> Result<(), ImageBuildError> {
    let mut stream = docker.create_image(
        Some(CreateImageOptions {
            from_image: Some(image.to_owned()),
            ..Default::default()
        }),
        None,
        None,
    );
    while let Some(item) = stream.next().await {
        item.map_err(|e| ImageBuildError::Pull {
            role: role.to_owned(),
            image: image.to_owned(),
            message: e.to_string(),
        })?;
    }
    Ok(())
}
