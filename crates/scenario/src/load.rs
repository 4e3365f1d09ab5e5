//! Reading scenario files: parsing (with limits: scenario files are small, and a hostile one
//! must not exhaust memory), locating errors, finding the files.

use std::path::{Path, PathBuf};

use miette::{MietteError, MietteSpanContents, NamedSource, SourceCode, SourceSpan, SpanContents};

use super::types::Scenario;
use crate::errors::{ScenarioParseError, ScenarioSyntaxError};

/// The largest scenario file read. Scenario files are a few KiB; this leaves room for long
/// descriptions and refuses what no person wrote.
pub const MAX_SCENARIO_BYTES: usize = 256 * 1024;

/// YAML limits: aliases cannot expand into more than this many parser events, nesting, node
/// and anchor counts stay small, and one document only.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(MAX_SCENARIO_BYTES),
            max_events: 100_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_recorded_anchor_events: 100_000,
            max_recorded_anchor_bytes: MAX_SCENARIO_BYTES,
            max_depth: 32,
            max_documents: 1,
            max_nodes: 50_000,
            max_total_scalar_bytes: MAX_SCENARIO_BYTES,
            max_merge_keys: 100,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
        with_snippet: false,
        reject_unsupported_tags: true,
    }
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioParseError> {
        use std::io::Read;
        let read = |source| ScenarioParseError::Read {
            path: path.to_owned(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(read)?
            // One byte more than the limit is enough to say the file is too long.
            .take(MAX_SCENARIO_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        Scenario::from_bytes(path, &bytes)
    }

    /// Parses and validates a scenario file's bytes, which must be UTF-8; `path` is only used
    /// in messages.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Scenario, ScenarioParseError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Scenario::parse(path, text),
            Err(_) if bytes.len() > MAX_SCENARIO_BYTES => {
                Scenario::parse(path, &String::from_utf8_lossy(bytes))
            }
            Err(e) => {
                // The text up to the invalid byte is the same in the lossy reading.
                let valid = e.valid_up_to();
                let text = String::from_utf8_lossy(bytes);
                let message = format!(
                    "the file is not UTF-8 text: byte 0x{:02x} at offset {valid} cannot start \
                     or continue a character",
                    bytes[valid]
                );
                Err(located(path, &text, valid, 1, message))
            }
        }
    }

    /// Parses and validates scenario text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioParseError> {
        if text.len() > MAX_SCENARIO_BYTES {
            let mut offset = MAX_SCENARIO_BYTES;
            while !text.is_char_boundary(offset) {
                offset -= 1;
            }
            let message = format!(
                "the file is longer than {} KiB, the limit for scenario files (it goes on past \
                 the limit here)",
                MAX_SCENARIO_BYTES / 1024
            );
            return Err(located(path, text, offset, 1, message));
        }
        let content = text
            .lines()
            .map(|l| l.trim_start_matches('\u{feff}').trim())
            .any(|l| !l.is_empty() && !l.starts_with('#') && l != "---" && l != "...");
        if !content {
            let message = "the file holds no scenario: it is empty or only comments".to_owned();
            return Err(located(path, text, text.len(), 0, message));
        }
        let mut scenario: Scenario = serde_saphyr::from_str_with_options(text, yaml_options())
            .map_err(|e| syntax_error(path, text, &e))?;
        let checked = scenario
            .translate_harness_steps()
            .and_then(|()| scenario.validate());
        let Err(problem) = checked else {
            return Ok(scenario);
        };
        Err(match problem.locate(text) {
            Some((offset, len)) => located(path, text, offset, len, problem.message),
            None => ScenarioParseError::Invalid {
                path: path.to_owned(),
                message: problem.message,
            },
        })
    }
}

/// The longest text an error on a long line points at (bytes); a longer needle there is pointed
/// at by its start.
const MAX_LABEL: usize = 40;

/// An error at a byte offset of the text, pointing at up to `len` bytes of one line.
fn located(
    path: &Path,
    text: &str,
    offset: usize,
    len: usize,
    message: String,
) -> ScenarioParseError {
    let offset = floor_boundary(text, offset.min(text.len()));
    let rest = &text[offset..];
    let line_length = {
        let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        offset - start + rest.find('\n').unwrap_or(rest.len())
    };
    // On a long line, point at the start of a long needle only (see `SourceText`).
    let len = if line_length > LONG_LINE {
        len.min(MAX_LABEL)
    } else {
        len
    };
    let mut end = offset + len.min(rest.find('\n').unwrap_or(rest.len()));
    end = floor_boundary(text, end);
    if end == offset && offset < text.len() {
        // Point at one whole character.
        end = offset + rest.chars().next().map_or(0, char::len_utf8);
        if rest.starts_with('\n') {
            end = offset;
        }
    }
    let (line, column) = line_column(text, offset);
    ScenarioParseError::Syntax(Box::new(ScenarioSyntaxError {
        path: path.to_owned(),
        line,
        column,
        message,
        src: NamedSource::new(path.display().to_string(), SourceText::new(text)),
        span: Some(SourceSpan::from((offset, (end - offset).max(1)))),
    }))
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (u64, u64) {
    let before = &text[..offset];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
    (line, column)
}

fn floor_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn ceil_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset += 1;
    }
    offset
}

fn syntax_error(path: &Path, text: &str, e: &serde_saphyr::Error) -> ScenarioParseError {
    let mut message = first_line(&e.to_string());
    if message.chars().count() > 300 {
        message = format!("{}…", message.chars().take(300).collect::<String>());
    }
    let offset = e.location().and_then(|loc| {
        loc.span()
            .byte_offset()
            .map(|o| o as usize)
            .filter(|&o| o <= text.len())
            .or_else(|| byte_offset(text, loc.line(), loc.column()))
    });
    match offset {
        Some(offset) => located(path, text, offset, 1, message),
        None => ScenarioParseError::Syntax(Box::new(ScenarioSyntaxError {
            path: path.to_owned(),
            line: 0,
            column: 0,
            message,
            src: NamedSource::new(path.display().to_string(), SourceText::new(text)),
            span: None,
        })),
    }
}

/// A scenario file's text as error reports show it. Around an error on ordinary lines it is the
/// file itself; a line longer than [`LONG_LINE`] (a whole scenario on one line, a huge value)
/// is shown as a window of [`WINDOW`] bytes either side of the error, so that reports stay
/// readable and columns stay small. miette's graphical renderer pads with the column as a
/// format width, which panics beyond 65535 ("Formatting argument out of range").
#[derive(Debug, Clone)]
pub struct SourceText {
    text: String,
}

/// Lines longer than this (bytes) are shown clipped.
const LONG_LINE: usize = 200;
/// Bytes shown either side of an error on a long line.
const WINDOW: usize = 60;

impl SourceText {
    /// The text, with characters that would act on a terminal rather than show (control
    /// characters but newlines and tabs, bidirectional overrides) replaced by characters of the
    /// same UTF-8 length, so that offsets stay valid: `?`, `¿`, `�`.
    pub fn new(text: &str) -> SourceText {
        let text = text
            .chars()
            .map(|c| match c {
                '\n' | '\r' | '\t' => c,
                c if c.is_control() && c.len_utf8() == 1 => '?',
                c if c.is_control() => '¿',
                '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => '\u{fffd}',
                c => c,
            })
            .collect();
        SourceText { text }
    }

    /// The text as shown.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Start and end of the line around byte `offset`, without its newline.
    fn line_at(&self, offset: usize) -> (usize, usize) {
        let text = self.text.as_str();
        let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
        (start, end)
    }

    fn contents(&self, start: usize, end: usize) -> MietteSpanContents<'_> {
        let text = self.text.as_str();
        let data = &text[start..end];
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        MietteSpanContents::new(
            data.as_bytes(),
            SourceSpan::from((start, end - start)),
            text[..start].matches('\n').count(),
            text[line_start..start].chars().count(),
            data.matches('\n').count(),
        )
    }
}

impl SourceCode for SourceText {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let text = self.text.as_str();
        if span.offset() > text.len() {
            return Err(MietteError::OutOfBounds);
        }
        let start = floor_boundary(text, span.offset());
        let end = ceil_boundary(text, (span.offset() + span.len()).min(text.len()));
        if before == 0 && after == 0 {
            // The span itself (miette names its line and column in the header).
            return Ok(Box::new(self.contents(start, end)));
        }
        let (line_start, line_end) = self.line_at(start);
        if line_end - line_start > LONG_LINE {
            if span.len() > MAX_LABEL {
                // A window this returned before, asked for again with its context.
                return Ok(Box::new(self.contents(start, end.min(line_end).max(start))));
            }
            let from = floor_boundary(text, start.saturating_sub(WINDOW).max(line_start));
            let to = ceil_boundary(text, (end + WINDOW).min(line_end)).max(end.min(line_end));
            return Ok(Box::new(self.contents(from, to)));
        }
        // Whole lines: the span's, and up to `before` / `after` short neighbours.
        let (_, last_end) = self.line_at(end.max(start));
        let mut from = line_start;
        for _ in 0..before {
            if from == 0 {
                break;
            }
            let (previous, _) = self.line_at(from - 1);
            if from - 1 - previous > LONG_LINE {
                break;
            }
            from = previous;
        }
        let mut to = last_end;
        for _ in 0..after {
            if to >= text.len() {
                break;
            }
            let (_, next) = self.line_at(to + 1);
            if next - (to + 1) > LONG_LINE {
                break;
            }
            to = next;
        }
        // Include the final newline, as miette's own reading does.
        if to < text.len() {
            to += 1;
        }
        Ok(Box::new(self.contents(from, to)))
    }
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
    let line = match line.find(" at line ") {
        Some(i) => &line[..i],
        None => line,
    };
    // serde-saphyr's advice is for programs using it, not for people writing scenarios.
    let line = line
        .strip_suffix(", set DuplicateKeyPolicy in Options if acceptable")
        .unwrap_or(line);
    if let Some(breach) = line.strip_prefix("budget breached: ") {
        return budget_message(breach);
    }
    super::grammar::printable(line)
}

/// A YAML limit (see [`yaml_options`]) in words, from the breach serde-saphyr names.
fn budget_message(breach: &str) -> String {
    let kind = breach.split([' ', '{', '(']).next().unwrap_or(breach);
    let what = match kind {
        "Documents" => "more than one YAML document (`---`)",
        "Depth" => "nesting deeper than 32 levels",
        "Aliases" => "more than 1000 aliases (`*name`)",
        "Anchors" => "more than 1000 anchors (`&name`)",
        "MergeKeys" => "more than 100 merge keys (`<<`)",
        "Nodes" | "Events" | "RecordedAnchorEvents" => "too many YAML nodes",
        "TotalScalarBytes" | "RecordedAnchorBytes" => "too much text",
        _ => "a YAML limit exceeded",
    };
    format!("{what}: scenario files stay within the harness's YAML limits")
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
