//! Every error the harness can raise, named after the action that failed.
//!
//! Messages are lowercase and name the offending file, value or object. Errors raised while a
//! scenario runs are harness or infrastructure failures: they become an `Error` status, never a
//! `Fail` (which is reserved for a plugin breaking a promise).

use std::path::PathBuf;

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

/// A scenario file could not be read or does not follow the scenario language.
#[derive(Debug, Error, Diagnostic)]
pub enum ScenarioParseError {
    #[error("cannot read scenario file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Syntax(Box<ScenarioSyntaxError>),
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Where and why a scenario file does not parse, with the text to point at.
#[derive(Debug, Error, Diagnostic)]
#[error("{path}:{line}:{column}: {message}")]
pub struct ScenarioSyntaxError {
    pub path: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
    #[source_code]
    pub src: NamedSource<String>,
    #[label("here")]
    pub span: Option<SourceSpan>,
}

/// An image profile could not be read, or a role override is malformed.
#[derive(Debug, Error)]
pub enum ProfileLoadError {
    #[error("cannot read profile file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("profile {profile} has no role `{role}` (roles: {known})")]
    UnknownRole {
        profile: String,
        role: String,
        known: String,
    },
    #[error("malformed role override `{value}`: expected ROLE=IMAGE")]
    MalformedOverride { value: String },
}

/// A mutant's description (`fixtures/mutants/<name>/mutant.yaml`) could not be read.
#[derive(Debug, Error)]
pub enum MutantLoadError {
    #[error("cannot read mutant description {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A finished run (a run directory or a baseline file) could not be read back.
#[derive(Debug, Error)]
pub enum RunReadError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a result the harness wrote: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path} holds no results (expected reports/<run-id>/ or a baseline file)")]
    Empty { path: PathBuf },
}

/// Release validation could not be carried out (the harness's problem, not the release's).
#[derive(Debug, Error)]
pub enum ReleaseValidationError {
    #[error(transparent)]
    Profile(#[from] ProfileLoadError),
    #[error(transparent)]
    Report(#[from] ReportWriteError),
}

/// No Docker daemon answered.
#[derive(Debug, Error)]
#[error(
    "no docker daemon answers ({reason}); start one, e.g. with `scripts/docker-bootstrap.sh` \
     (root, Debian) or `just docker`"
)]
pub struct DockerConnectError {
    pub reason: String,
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

/// Setting up or tearing down a scenario's containers, networks and volumes failed.
#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error("cannot create {what} `{name}`: {source}")]
    Create {
        what: &'static str,
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("cannot start container `{name}`: {source}")]
    Start {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("{service} did not become ready within {seconds} s: {detail}")]
    NotReady {
        service: String,
        seconds: u64,
        detail: String,
    },
    #[error("docker request failed while {action}: {source}")]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("cannot prepare workspace {path}: {source}")]
    Workspace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The process was asked to stop (SIGINT, SIGTERM) before this finished.
    #[error("stopped by {signal} before the scenario finished")]
    Stopped { signal: &'static str },
    /// Something labelled would not go away.
    #[error("resources labelled {labels} still remain after {seconds} s: {remaining}")]
    Leftover {
        labels: String,
        seconds: u64,
        remaining: String,
    },
}

/// A query to a registry failed for reasons other than "the tag or repository is not there".
#[derive(Debug, Error)]
#[error("registry query {what} failed: {message}")]
pub struct RegistryQueryError {
    pub what: String,
    pub message: String,
}

/// An image archive could not be read or is not a well-formed image archive.
#[derive(Debug, Error)]
pub enum ArchiveReadError {
    #[error("cannot open archive {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("archive {path} is not a readable tar file: {message}")]
    Tar { path: PathBuf, message: String },
    #[error("archive {path} has neither manifest.json nor index.json: not an image archive")]
    NotAnImage { path: PathBuf },
    #[error("archive {path}: {message}")]
    Malformed { path: PathBuf, message: String },
}

/// Writing a report failed.
#[derive(Debug, Error)]
#[error("cannot write report {path}: {message}")]
pub struct ReportWriteError {
    pub path: PathBuf,
    pub message: String,
}

/// Writing a comparison of runs (Markdown or JSON) failed.
#[derive(Debug, Error)]
#[error("cannot write comparison {path}: {source}")]
pub struct CompareWriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}
