//! Reading scenario files: parsing, locating errors, finding the files.

use std::path::{Path, PathBuf};

use miette::{NamedSource, SourceSpan};

use super::types::Scenario;
use crate::errors::{ScenarioParseError, ScenarioSyntaxError};

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioParseError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioParseError::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::parse(path, &text)
    }

    /// Parses and validates scenario text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioParseError> {
        let scenario: Scenario =
            serde_saphyr::from_str(text).map_err(|e| syntax_error(path, text, &e))?;
        let Err(problem) = scenario.validate() else {
            return Ok(scenario);
        };
        Err(match problem.locate(text) {
            Some(offset) => {
                let (line, column) = line_column(text, offset);
                ScenarioParseError::Syntax(Box::new(ScenarioSyntaxError {
                    path: path.to_owned(),
                    line,
                    column,
                    message: problem.message,
                    src: NamedSource::new(path.display().to_string(), text.to_owned()),
                    span: Some(SourceSpan::from((offset, problem.needle.len().max(1)))),
                }))
            }
            None => ScenarioParseError::Invalid {
                path: path.to_owned(),
                message: problem.message,
            },
        })
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (u64, u64) {
    let before = &text[..offset];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
    (line, column)
}

fn syntax_error(path: &Path, text: &str, e: &serde_saphyr::Error) -> ScenarioParseError {
    let (line, column, span) = match e.location() {
        Some(loc) => {
            let offset = loc
                .span()
                .byte_offset()
                .map(|o| o as usize)
                .or_else(|| byte_offset(text, loc.line(), loc.column()));
            (
                loc.line(),
                loc.column(),
                offset.map(|o| SourceSpan::from((o, 1))),
            )
        }
        None => (0, 0, None),
    };
    let message = first_line(&e.to_string());
    ScenarioParseError::Syntax(Box::new(ScenarioSyntaxError {
        path: path.to_owned(),
        line,
        column,
        message,
        src: NamedSource::new(path.display().to_string(), text.to_owned()),
        span,
    }))
}

/// The error's own text, without the location suffix or source excerpt some errors carry.
fn first_line(message: &str) -> String {
    let mut line = message.lines().next().unwrap_or(message).trim();
    // serde-saphyr starts with `error: line N column M: `; the location is ours to print.
    if let Some(rest) = line.strip_prefix("error: line ") {
        if let Some((_, text)) = rest.split_once(": ") {
            line = text;
        }
    }
    match line.find(" at line ") {
        Some(i) => line[..i].to_owned(),
        None => line.to_owned(),
    }
}

fn byte_offset(text: &str, line: u64, column: u64) -> Option<usize> {
    let mut offset = 0usize;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == line {
            let col = l
                .char_indices()
                .nth(column.saturating_sub(1) as usize)
                .map(|(b, _)| b)
                .unwrap_or(0);
            return Some(offset + col);
        }
        offset += l.len();
    }
    None
}

/// A scenario file found under the scenarios directory.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    pub path: PathBuf,
    /// Folder under `scenarios/`, i.e. the workflow (`build-only`).
    pub workflow: String,
    /// File stem (`tar`).
    pub stem: String,
}

/// Lists `*.yaml` scenario files under `root`, sorted, one folder per workflow.
pub fn discover(root: &Path) -> std::io::Result<Vec<ScenarioFile>> {
    let mut files = Vec::new();
    for workflow in std::fs::read_dir(root)? {
        let workflow = workflow?;
        if !workflow.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(workflow.path())? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(ScenarioFile {
                    workflow: workflow.file_name().to_string_lossy().into_owned(),
                    stem: path
                        .file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                    path,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}
