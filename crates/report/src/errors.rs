//! Errors of reading finished runs and writing reports, named after the action that failed.

use std::path::PathBuf;

use thiserror::Error;

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
