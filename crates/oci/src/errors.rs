//! Errors of reading what a plugin produced, named after the action that failed: an image
//! archive, a file in the workspace, a registry query. Most variants are the plugin's doing (a
//! `Fail`); the harness's own I/O failures are marked as such (an `Error`).

use std::path::PathBuf;

use thiserror::Error;

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
