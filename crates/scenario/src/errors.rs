//! The scenario language's errors, named after the action that failed: reading and parsing a
//! scenario file (with the line and column to point at).

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
    pub src: NamedSource<crate::SourceText>,
    #[label("here")]
    pub span: Option<SourceSpan>,
}

/// A YAML file of the harness's own (an image profile, a mutant's description) could not be
/// read or parsed; the error names the file and where it is wrong.
#[derive(Debug, Error)]
pub enum YamlReadError {
    #[error("cannot read {what} {path}")]
    Read {
        what: &'static str,
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
}
