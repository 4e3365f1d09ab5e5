//! The claims crate's errors, named after the action that failed: reading the ledger, and
//! checking the ledger against the scenarios that cite it. Each problem names the file, line and
//! column.

use std::path::PathBuf;

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

/// One thing wrong, where it is.
#[derive(Debug, Error, Diagnostic)]
#[error("{path}:{line}:{column}: {message}")]
pub struct LocatedProblem {
    pub path: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
    #[source_code]
    pub src: NamedSource<String>,
    #[label("here")]
    pub span: Option<SourceSpan>,
}

impl LocatedProblem {
    /// A problem at a 1-based line and column of `text` (column in characters), pointing at
    /// `len` bytes there.
    pub(crate) fn at(
        path: &str,
        text: &str,
        line: u64,
        column: u64,
        len: usize,
        message: String,
    ) -> Self {
        let span = byte_offset(text, line, column).map(|offset| {
            let rest = &text[offset..];
            let end = rest.find('\n').unwrap_or(rest.len()).min(len.max(1));
            SourceSpan::from((offset, end.max(usize::from(!rest.is_empty()))))
        });
        LocatedProblem {
            path: path.to_owned(),
            line,
            column,
            message,
            src: NamedSource::new(path, text.to_owned()),
            span,
        }
    }
}

/// The byte offset of a 1-based line and column (characters) in `text`.
fn byte_offset(text: &str, line: u64, column: u64) -> Option<usize> {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.checked_sub(1)? as usize)
        .map(str::len)
        .sum();
    let line_text = text.get(start..)?.split('\n').next()?;
    let within = line_text
        .char_indices()
        .nth(column.saturating_sub(1) as usize)
        .map_or(line_text.len(), |(i, _)| i);
    Some(start + within)
}

/// The ledger could not be read, or it does not hold together by itself.
#[derive(Debug, Error, Diagnostic)]
pub enum ReadLedgerError {
    #[error("cannot read the claims ledger {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the claims ledger {path} has {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        path: PathBuf,
        #[related]
        problems: Vec<LocatedProblem>,
    },
}

/// The scenarios and the ledger disagree: a citation of an id the ledger lacks, a claim neither
/// checked nor explained, a claim explained although a scenario checks it.
#[derive(Debug, Error, Diagnostic)]
#[error("the scenarios and the claims ledger disagree in {} place(s):\n{}", problems.len(), list(problems))]
pub struct CheckClaimsError {
    #[related]
    pub problems: Vec<LocatedProblem>,
}

fn list(problems: &[LocatedProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The docs' examples file could not be read, or an example is neither run nor explained.
#[derive(Debug, Error, Diagnostic)]
pub enum CheckExamplesError {
    #[error("cannot read the examples file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the examples file {path} has {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        path: PathBuf,
        #[related]
        problems: Vec<LocatedProblem>,
    },
}
