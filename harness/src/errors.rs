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
    pub src: NamedSource<crate::scenario::SourceText>,
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
    #[error("{path}: role `{role}`: {field}: {message}")]
    Role {
        path: PathBuf,
        role: String,
        field: &'static str,
        message: String,
    },
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
    #[error(transparent)]
    Calibration(#[from] CompareWriteError),
}

/// No Docker daemon answered.
#[derive(Debug, Error)]
#[error(
    "no docker daemon answers at {host} ({reason}); start one, e.g. with \
     `scripts/docker-bootstrap.sh` (root, Debian) or `just docker`{hint}"
)]
pub struct DockerConnectError {
    /// Where the daemon was looked for: DOCKER_HOST, or the default socket.
    pub host: String,
    pub reason: String,
    /// More advice, e.g. that DOCKER_HOST points elsewhere (empty or starting with `; `).
    pub hint: String,
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
    /// A service of the environment (a registry, DinD) is no longer running while or after a
    /// step ran: the infrastructure broke, whatever the step did. `log` is the tail of the
    /// service container's output.
    #[error("{service} stopped during {during} ({state}); its log ends:\n{log}")]
    ServiceStopped {
        service: String,
        during: String,
        state: String,
        log: String,
    },
    /// A step failed while the host had (almost) no disk left: the machine's failure.
    #[error("{during} failed for lack of disk, not because of the plugin: {detail}")]
    OutOfDisk { during: String, detail: String },
    #[error("docker request failed while {action}: {source}")]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "step {step} of role `{role}` shares the daemon, but its environment has none (the \
         plan decided no step could use one)"
    )]
    NoSharedDaemon { step: String, role: String },
    #[error("cannot prepare workspace {path}: {source}")]
    Workspace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The process was asked to stop (SIGINT, SIGTERM) before this finished.
    #[error("stopped by {signal} before the scenario finished")]
    Stopped { signal: &'static str },
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// Something labelled would not go away.
    #[error("resources labelled {labels} still remain after {seconds} s: {remaining}")]
    Leftover {
        labels: String,
        seconds: u64,
        remaining: String,
    },
}

/// The registries' certificates or trust files could not be made.
#[derive(Debug, Error)]
#[error("cannot set up tls: {what}: {reason}")]
pub struct TlsSetupError {
    pub what: String,
    pub reason: String,
}

/// A query to a registry failed for reasons other than "the tag or repository is not there".
#[derive(Debug, Error)]
#[error("registry query {what} failed: {message}")]
pub struct RegistryQueryError {
    pub what: String,
    pub message: String,
}

/// A file a plugin wrote could not be opened inside its workspace. Every variant but `Io` is
/// the plugin's doing (a Fail); `Io` is the harness's (an Error). Messages name paths and link
/// targets, never what a file holds.
#[derive(Debug, Error)]
pub enum WorkspaceReadError {
    #[error("{path}: no such file in the workspace")]
    NotFound { path: String },
    /// A path or symlink that leaves the workspace, e.g. "image.tar is a symlink to
    /// /etc/shadow, outside the workspace": never followed, never read.
    #[error("{path} {how}, outside the workspace")]
    Outside { path: String, how: String },
    #[error("{path} is {what}, not a regular file")]
    NotAFile { path: String, what: &'static str },
    #[error("{path} is larger than {limit}")]
    TooLarge { path: String, limit: String },
    #[error("cannot read {path} in the workspace: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl WorkspaceReadError {
    /// The harness could not read (an Error); every other variant is the plugin's (a Fail).
    pub fn is_harness_error(&self) -> bool {
        matches!(self, WorkspaceReadError::Io { .. })
    }
}

/// An image archive could not be read or is not a well-formed image archive.
///
/// `Open` (other than "not found") and `Read` are the harness's failures (an Error); the
/// others describe what the plugin wrote (a Fail). Messages name paths, member names, sizes,
/// offsets and digests, never content.
#[derive(Debug, Error)]
pub enum ArchiveReadError {
    #[error("cannot open archive {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Opening inside the workspace failed (see [`WorkspaceReadError`]).
    #[error(transparent)]
    Workspace(#[from] WorkspaceReadError),
    /// The file underneath failed while it was read.
    #[error("cannot read archive {path}: {source}")]
    Read {
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
    /// Over one of the archive reader's limits (a decompression bomb, a huge JSON document).
    #[error("archive {path}: {message}")]
    Limit { path: PathBuf, message: String },
}

impl ArchiveReadError {
    /// The harness could not read the file (an Error, nothing known about the plugin).
    pub fn is_harness_error(&self) -> bool {
        match self {
            ArchiveReadError::Open { source, .. } => source.kind() != std::io::ErrorKind::NotFound,
            ArchiveReadError::Read { .. } => true,
            ArchiveReadError::Workspace(e) => e.is_harness_error(),
            _ => false,
        }
    }

    /// There is no file at that path (the plugin did not write it).
    pub fn is_missing(&self) -> bool {
        match self {
            ArchiveReadError::Open { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            ArchiveReadError::Workspace(WorkspaceReadError::NotFound { .. }) => true,
            _ => false,
        }
    }
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
