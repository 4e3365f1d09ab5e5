//! What the CLI and the scenario test binary share: finding the repository, choosing the
//! profile, connecting to Docker and making sure the profile's images exist.

use std::path::PathBuf;

use crate::errors::{DockerConnectError, ImageBuildError, ProfileLoadError};
use crate::images;
use crate::runner::RunContext;
use runtime::profile::Profile;

/// The repository root: `CONFORMANCE_ROOT`, else the workspace this crate was built in.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CONFORMANCE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("harness/ has a parent")
                .to_owned()
        })
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Profile(#[from] ProfileLoadError),
    #[error(transparent)]
    Docker(#[from] DockerConnectError),
    #[error(transparent)]
    Images(#[from] ImageBuildError),
    #[error(transparent)]
    Isolation(#[from] runtime::errors::IsolationError),
    /// The process was asked to stop (SIGINT, SIGTERM) while the session was being opened.
    #[error("stopped by {0} before anything ran")]
    Stopped(&'static str),
}

/// Profile choice: a name or path, plus `ROLE=IMAGE` overrides.
pub struct ProfileChoice {
    pub profile: String,
    pub overrides: Vec<String>,
}

impl ProfileChoice {
    /// From `CONFORMANCE_PROFILE` (default `offline`) and `CONFORMANCE_IMAGES`
    /// (`role=image,role=image`), for the test binary.
    pub fn from_env() -> ProfileChoice {
        ProfileChoice {
            profile: std::env::var("CONFORMANCE_PROFILE").unwrap_or_else(|_| "offline".into()),
            overrides: std::env::var("CONFORMANCE_IMAGES")
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| s.trim().to_owned())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn load(&self, root: &std::path::Path) -> Result<Profile, ProfileLoadError> {
        Profile::load(root, &self.profile)?.with_overrides(&self.overrides)
    }
}

/// Loads the profile, connects to Docker and builds the profile's images if needed; ends with
/// [`SessionError::Stopped`] as soon as the process is asked to stop (nothing labelled exists
/// yet then).
pub async fn open(choice: &ProfileChoice, run_id: String) -> Result<RunContext, SessionError> {
    let stop = runtime::stop::stop();
    if let Some(signal) = stop.requested() {
        return Err(SessionError::Stopped(signal));
    }
    tokio::select! {
        opened = open_now(choice, run_id) => opened,
        signal = stop.wait() => Err(SessionError::Stopped(signal)),
    }
}

async fn open_now(choice: &ProfileChoice, run_id: String) -> Result<RunContext, SessionError> {
    let root = repo_root();
    let profile = choice.load(&root)?;
    let docker = match runtime::connect().await {
        Ok(docker) => docker,
        // DOCKER_HOST names another daemon: starting the local one cannot make it answer.
        Err(first) if runtime::docker_host_is_elsewhere() => return Err(first.into()),
        // No daemon answers: the project's bootstrap installs and starts one (Debian, root),
        // so `cargo run` and `cargo nextest run` work on a fresh machine too.
        Err(first) => {
            let script = root.join("scripts/docker-bootstrap.sh");
            let bootstrapped = tokio::task::spawn_blocking(move || {
                std::process::Command::new("bash").arg(&script).status()
            })
            .await
            .ok()
            .and_then(Result::ok)
            .is_some_and(|status| status.success());
            if !bootstrapped {
                return Err(first.into());
            }
            runtime::connect().await?
        }
    };
    let profile = images::build_profile_images(&root, profile).await?;
    let plans = runtime::isolation::choose(profile.isolation, &root, &docker).await?;
    let images_from = runtime::isolation::current()
        .is_some_and(|i| i.socket.is_some())
        .then_some(docker);
    Ok(RunContext {
        report_dir: root.join("reports").join(&run_id),
        root,
        run_id,
        profile,
        docker: plans,
        images_from,
        notify: None,
    })
}
