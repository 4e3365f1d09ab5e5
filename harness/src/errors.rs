//! The harness's own errors, named after the action that failed (the lower crates have theirs).
//!
//! Messages are lowercase and name the offending file, value or object. Errors raised while a
//! scenario runs are harness or infrastructure failures: they become an `Error` status, never a
//! `Fail` (which is reserved for a plugin breaking a promise).

use std::path::PathBuf;

use thiserror::Error;

pub use oci::errors::*;
pub use report::errors::*;
pub use runtime::errors::*;
pub use scenario::errors::*;

/// A mutant's description (`fixtures/mutants/<name>/mutant.yaml`) could not be read.
#[derive(Debug, Error)]
pub enum MutantLoadError {
    #[error("cannot list the mutants in {path}")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] YamlReadError),
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Release validation could not be carried out (the harness's problem, not the release's).
#[derive(Debug, Error)]
pub enum ReleaseValidationError {
    #[error(transparent)]
    Profile(#[from] ProfileLoadError),
    #[error(transparent)]
    Report(#[from] ReportWriteError),
    #[error(transparent)]
    Calibration(#[from] CompareWriteError),
}

/// The offline images could not be built or loaded.
#[derive(Debug, Error)]
pub enum ImageBuildError {
    #[error("cannot run {script}")]
    Spawn {
        script: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{script} exited with {status}")]
    Failed {
        script: PathBuf,
        status: std::process::ExitStatus,
    },
    #[error("image {image} for role `{role}` is not present in the docker daemon (the `{profile}` profile never pulls)")]
    Missing {
        role: String,
        image: String,
        profile: String,
    },
    #[error("cannot pull image {image} for role `{role}`: {message}")]
    Pull {
        role: String,
        image: String,
        message: String,
    },
}
