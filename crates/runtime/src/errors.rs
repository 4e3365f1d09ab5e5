//! The runtime's errors, named after the action that failed: connecting to Docker, loading a
//! profile, setting up TLS, creating, running and tearing down containers. Raised while a
//! scenario runs, they are harness or infrastructure failures: an `Error` status, never a `Fail`.

use std::path::PathBuf;

use thiserror::Error;

/// An image profile could not be read, or a role override is malformed.
#[derive(Debug, Error)]
pub enum ProfileLoadError {
    #[error(transparent)]
    File(#[from] scenario::errors::YamlReadError),
    #[error("profile {profile} has no role `{role}` (roles: {known})")]
    UnknownRole {
        profile: String,
        role: String,
        known: String,
    },
    #[error("malformed role override `{value}`: expected ROLE=IMAGE")]
    MalformedOverride { value: String },
    #[error("{path}: bounds: {field}: {message}")]
    Bounds {
        path: PathBuf,
        field: &'static str,
        message: String,
    },
    #[error("{path}: build: {message}")]
    Build { path: PathBuf, message: String },
    #[error("{path}: role `{role}`: {field}: {message}")]
    Role {
        path: PathBuf,
        role: String,
        field: &'static str,
        message: String,
    },
}

/// A plan's workspace could not be put on a file system of its own (see [`crate::quota`]).
#[derive(Debug, Error)]
#[error("no workspace quota for {dir} ({} MiB): {why}", bytes >> 20)]
pub struct QuotaError {
    pub dir: std::path::PathBuf,
    pub bytes: u64,
    pub why: String,
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

/// Choosing where the plans run ([`crate::isolation`]) failed.
#[derive(Debug, Error)]
pub enum IsolationError {
    #[error("CONFORMANCE_ISOLATION: {message}")]
    Setting { message: String },
    #[error(
        "isolation: rootless was asked for, but no rootless daemon runs here: {reason} \
         (see scripts/rootless-daemon.sh and /var/log/conformance-rootless.log)"
    )]
    Unavailable { reason: String },
    #[error("this process already runs its plans as `{first}`, and was now asked for `{now}`")]
    Changed { first: String, now: String },
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
