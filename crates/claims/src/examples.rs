//! The docs' Build and Push step examples (`claims/examples.yaml`): every YAML example of a
//! Build and Push step in the ledger's pages is either run, as written, by a scenario's Harness
//! step, or listed with why it cannot run as written. A step "as written" is the page's YAML
//! read as data (comments, quoting and key order aside) and the scenario's `harness_step` read
//! the same way: any other difference is a problem naming where the two differ.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pipeline::tree::Tree;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::errors::{CheckExamplesError, LocatedProblem};
use crate::ledger::{Ledger, Position};

/// What marks an example: the line of its step type.
pub const MARK: &str = "type: BuildAndPush";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExamplesFile {
    version: Spanned<u32>,
    examples: Vec<EntryFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    page: Spanned<String>,
    /// The line of the example's `type: BuildAndPush…` in the page (1-based).
    line: Spanned<u64>,
    #[serde(default)]
    scenario: Option<Spanned<String>>,
    #[serde(default)]
    step: Option<Spanned<String>>,
    #[serde(default)]
    not_runnable: Option<Spanned<String>>,
}

/// One example and what runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub page: String,
    pub line: u64,
    pub run_by: Option<(String, String)>,
    pub not_runnable: Option<String>,
}

/// Reads `claims/examples.yaml` and checks it against the ledger's pages and the scenarios it
/// names (paths relative to `root`, the repository).
pub fn check(
    path: &Path,
    ledger: &Ledger,
    root: &Path,
) -> Result<Vec<Example>, CheckExamplesError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CheckExamplesError::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |problems| CheckExamplesError::Invalid {
        path: path.to_owned(),
        problems,
    };
    let file: ExamplesFile = serde_saphyr::from_str(&text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let message = e.to_string().lines().next().unwrap_or("").to_owned();
        invalid(vec![LocatedProblem::at(
            &shown, &text, line, column, 1, message,
        )])
    })?;
    let mut problems = Vec::new();
    let mut problem = |at: Position, len: usize, message: String| {
        problems.push(LocatedProblem::at(
            &shown, &text, at.line, at.column, len, message,
        ));
    };
    if file.version.value != 1 {
        problem(
            (&file.version).into(),
            1,
            format!(
                "unsupported version {} (this harness reads 1)",
                file.version.value
            ),
        );
    }
    // Every marked line of every page.
    let mut marked: BTreeMap<(String, u64), bool> = BTreeMap::new();
    let mut page_lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for page in &ledger.pages {
        let Ok(page_text) = std::fs::read_to_string(&page.file) else {
            continue;
        };
        let lines: Vec<String> = page_text.lines().map(str::to_owned).collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains(MARK) {
                marked.insert((page.id.clone(), i as u64 + 1), false);
            }
        }
        page_lines.insert(page.id.clone(), lines);
    }
    let mut examples = Vec::new();
    for entry in &file.examples {
        let key = (entry.page.value.clone(), entry.line.value);
        let at = Position::from(&entry.line);
        match marked.get_mut(&key) {
            None if !page_lines.contains_key(&entry.page.value) => {
                problem(
                    (&entry.page).into(),
                    entry.page.value.len(),
                    format!("no page `{}` in the ledger", entry.page.value),
                );
                continue;
            }
            None => {
                problem(
                    at,
                    1,
                    format!(
                        "line {} of page `{}` holds no `{MARK}…`",
                        entry.line.value, entry.page.value
                    ),
                );
                continue;
            }
            Some(true) => {
                problem(
                    at,
                    1,
                    format!(
                        "the example at line {} of page `{}` is listed twice",
                        entry.line.value, entry.page.value
                    ),
                );
                continue;
            }
            Some(seen) => *seen = true,
        }
        let run_by = match (&entry.scenario, &entry.step, &entry.not_runnable) {
            (Some(scenario), Some(step), None) => {
                let lines = &page_lines[&entry.page.value];
                match compare(
                    lines,
                    entry.line.value as usize,
                    root,
                    &scenario.value,
                    &step.value,
                ) {
                    Ok(()) => Some((scenario.value.clone(), step.value.clone())),
                    Err(message) => {
                        problem((scenario).into(), scenario.value.len(), message);
                        None
                    }
                }
            }
            (None, None, Some(reason)) if !reason.value.trim().is_empty() => None,
            _ => {
                problem(at, 1, "give either `scenario` and `step` (the Harness step that runs the example as written) or `not_runnable` (why it cannot run as written)".to_owned());
                continue;
            }
        };
        examples.push(Example {
            page: entry.page.value.clone(),
            line: entry.line.value,
            run_by,
            not_runnable: entry.not_runnable.as_ref().map(|r| r.value.clone()),
        });
    }
    let end = Position {
        line: text.lines().count() as u64,
        column: 1,
    };
    for ((page, line), seen) in &marked {
        if !seen {
            problem(end, 1, format!(
                "the Build and Push step example at line {line} of page `{page}` is not listed: add it with the scenario step that runs it, or why it cannot run"
            ));
        }
    }
    if problems.is_empty() {
        Ok(examples)
    } else {
        Err(invalid(problems))
    }
}

/// The example whose `type:` is at `line` (1-based) of `lines`: the mapping around it (lines at
/// its indentation or deeper, up to a line less indented), dedented.
pub fn step_block(lines: &[String], line: usize) -> Option<String> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let index = line.checked_sub(1)?;
    let mark = lines.get(index)?;
    let depth = indent(mark);
    let within = |l: &String| l.trim().is_empty() || indent(l) >= depth;
    let mut start = index;
    while start > 0 && within(&lines[start - 1]) && !lines[start - 1].trim().is_empty() {
        start -= 1;
    }
    let mut end = index + 1;
    while end < lines.len() && within(&lines[end]) && !lines[end].trim().is_empty() {
        end += 1;
    }
    Some(
        lines[start..end]
            .iter()
            .map(|l| l.get(depth..).unwrap_or("").to_owned() + "\n")
            .collect(),
    )
}

/// Whether step `step` of `scenario` is the example at `line`, as written.
fn compare(
    lines: &[String],
    line: usize,
    root: &Path,
    scenario: &str,
    step: &str,
) -> Result<(), String> {
    let block = step_block(lines, line).ok_or("the example's lines cannot be read")?;
    let example: Spanned<Tree> = serde_saphyr::from_str(&block).map_err(|e| {
        format!("the example at line {line} is not YAML ({e}); list it as `not_runnable`")
    })?;
    let path: PathBuf = root.join(scenario);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {scenario}: {e}"))?;
    let doc: Spanned<Tree> =
        serde_saphyr::from_str(&text).map_err(|e| format!("{scenario} is not YAML: {e}"))?;
    let steps = match doc.value.get("steps").map(|s| &s.value) {
        Some(Tree::Seq(steps)) => steps,
        _ => return Err(format!("{scenario} has no steps")),
    };
    let found = steps
        .iter()
        .find(|s| s.value.get("name").and_then(|n| n.value.text()).as_deref() == Some(step))
        .ok_or_else(|| format!("{scenario} has no step `{step}`"))?;
    let written = found.value.get("harness_step").ok_or_else(|| {
        format!("step `{step}` of {scenario} is not a Harness step (`harness_step`)")
    })?;
    match difference(&example.value.to_json(), &written.value.to_json(), String::new()) {
        None => Ok(()),
        Some(at) => Err(format!(
            "step `{step}` of {scenario} is not the example at line {line} as written: they differ at `{}`",
            if at.is_empty() { "/" } else { &at }
        )),
    }
}

/// The first JSON pointer at which `a` and `b` differ, if any.
fn difference(a: &serde_json::Value, b: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.keys()
                .chain(y.keys())
                .find_map(|k| match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => difference(p, q, format!("{at}/{k}")),
                    _ => Some(format!("{at}/{k}")),
                })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| difference(p, q, format!("{at}/{i}"))),
        // Harness reads scalars as text: `true` and "true" are one value.
        (p, q) if scalar(p).is_some() && scalar(p) == scalar(q) => None,
        _ => Some(at),
    }
}

fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
