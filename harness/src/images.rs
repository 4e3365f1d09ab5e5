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
/// packages; hot in ~0.1 s when the images are current), and returns the profile with the
/// recipe key it printed (its last line on stdout) in the roles' images
/// ([`runtime::profile::RECIPE`]).
pub async fn build_profile_images(
    root: &Path,
    profile: Profile,
) -> Result<Profile, ImageBuildError> {
    let Some(script) = &profile.build else {
        return Ok(profile);
    };
    let script = root.join(script);
    // In a process group of its own, stopped with the group (SIGTERM) when this future is
    // dropped: a harness asked to stop during an image build ends at once and leaves no
    // build behind.
    let mut child = tokio::process::Command::new("bash")
        .arg(&script)
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| ImageBuildError::Spawn {
            script: script.clone(),
            source,
        })?;
    let group = StopGroupOnDrop(child.id());
    // Read to its end (a full pipe would stop the script), keeping the last 4 KiB: the key is
    // the last line.
    let mut printed = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        use tokio::io::AsyncReadExt as _;
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = stdout.read(&mut chunk).await {
            printed.extend_from_slice(&chunk[..n]);
            let excess = printed.len().saturating_sub(4096);
            printed.drain(..excess);
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|source| ImageBuildError::Spawn {
            script: script.clone(),
            source,
        })?;
    std::mem::forget(group);
    if !status.success() {
        return Err(ImageBuildError::Failed { script, status });
    }
    let printed = String::from_utf8_lossy(&printed);
    // What may stand in a tag: letters, digits, `_`, `.`, `-`.
    let key = printed
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .filter(|k| {
            k.len() <= 100
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        });
    let profile = match key {
        Some(key) => profile.with_recipe(key),
        None => profile,
    };
    if let Some((role, image)) = profile.unresolved_recipe() {
        return Err(ImageBuildError::NoRecipe {
            script,
            role: role.to_owned(),
            image: image.to_owned(),
        });
    }
    Ok(profile)
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
/// An image missing from the plans' daemon but present on `images_from` (the daemon the
/// images were built on) is copied over first.
pub async fn resolve(
    docker: &Docker,
    images_from: Option<&Docker>,
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
        if let Some(from) = images_from {
            copy_if_missing(from, docker, role, &spec.image).await?;
        }
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

/// Copies `image` to the plans' daemon when the build daemon has it and the plans' daemon
/// lacks it or has another image under that name (an image's id is its config's digest, the
/// same on both daemons); one copy at a time per process (plans starting together want the
/// same images).
async fn copy_if_missing(
    from: &Docker,
    to: &Docker,
    role: &str,
    image: &str,
) -> Result<(), ImageBuildError> {
    static COPYING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let id = async |docker: &Docker| docker.inspect_image(image).await.ok().and_then(|i| i.id);
    let Some(wanted) = id(from).await else {
        return Ok(());
    };
    if id(to).await.as_ref() == Some(&wanted) {
        return Ok(());
    }
    let _one_at_a_time = COPYING.lock().await;
    if id(to).await.as_ref() == Some(&wanted) {
        return Ok(());
    }
    runtime::isolation::copy_image(from, to, image)
        .await
        .map_err(|message| ImageBuildError::Copy {
            role: role.to_owned(),
            image: image.to_owned(),
            message,
        })
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
