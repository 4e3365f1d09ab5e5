//! What the CLI and the scenario test binary share: finding the repository, choosing the
//! profile, connecting to Docker and making sure the profile's images exist.

use std::path::PathBuf;

use crate::errors::{DockerConnectError, ImageBuildError, ProfileLoadError};
use crate::images;
use crate::profile::Profile;
use crate::runner::RunContext;
use crate::runtime;

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
}

/// Resolves when the process is asked to stop (SIGTERM, e.g. from nextest on a timeout, or
/// Ctrl-C), naming the signal.
pub async fn stopped() -> &'static str {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
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

/// Loads the profile, connects to Docker and builds the profile's images if needed.
pub async fn open(choice: &ProfileChoice, run_id: String) -> Result<RunContext, SessionError> {
    let root = repo_root();
    let profile = choice.load(&root)?;
    let docker = match runtime::connect().await {
        Ok(docker) => docker,
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
    let build_root = root.clone();
    let build_profile = profile.clone();
    tokio::task::spawn_blocking(move || images::build_profile_images(&build_root, &build_profile))
        .await
        .expect("image build task panicked")?;
    Ok(RunContext {
        report_dir: root.join("reports").join(&run_id),
        root,
        run_id,
        profile,
        docker,
        notify: None,
    })
}
