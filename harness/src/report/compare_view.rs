//! What `compare.html` shows of a comparison of two runs, read from the JSON `harness compare`
//! writes without depending on its types: the file is read as a [`serde_json::Value`] and only
//! these shapes are looked for, so the page still renders (with less) when the file gains or
//! renames fields.
//!
//! - the runs: `baseline` / `current` (or `before` / `after`, `old` / `new`), each a run id or an
//!   object with an `id` (or `run`);
//! - the plans: `plans` (or `results`, `changes`, `tests`), a list of objects with `test` (or
//!   `plan`, `name`), or an object keyed by test name;
//! - per plan: `status` as `{before, after}` (or `baseline`/`current`, `old`/`new`,
//!   `from`/`to`), a `"before -> after"` string, or a single status, or `status_before` /
//!   `status_after` (`baseline_status` / `current_status`); `regression` (or `regressed`) when
//!   given, else derived from the statuses; `observations` and `timings` as lists of changes or
//!   objects keyed by what changed, each change `{before, after}` (any of the spellings above,
//!   also with an `_ms` suffix) or a plain value.

use std::path::Path;

use serde_json::{Map, Value};

use crate::errors::RunReadError;

/// Reads a comparison file as JSON (any JSON document: [`CompareView::from_value`] takes what it
/// understands).
pub fn read(path: &Path) -> Result<Value, RunReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunReadError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| RunReadError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// A comparison of two runs, as `compare.html` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompareView {
    pub baseline: Option<String>,
    pub current: Option<String>,
    pub plans: Vec<PlanChange>,
}

/// One plan in both runs (or in one of them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanChange {
    pub test: String,
    /// The status in the baseline run (`None`: not in it).
    pub before: Option<String>,
    /// The status in the current run (`None`: not in it).
    pub after: Option<String>,
    /// The plan got worse: the file says so, or the status went from pass or skip to fail or
    /// error (or from a known discrepancy to anything but).
    pub regression: bool,
    pub observations: Vec<Change>,
    pub timings: Vec<Change>,
}

impl PlanChange {
    /// Whether anything differs between the runs.
    pub fn changed(&self) -> bool {
        self.before != self.after || !self.observations.is_empty() || !self.timings.is_empty()
    }
}

/// One value that differs between the runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub what: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// The file marks this change as a regression.
    pub regression: bool,
}

const BEFORE: [&str; 5] = ["before", "baseline", "old", "from", "previous"];
const AFTER: [&str; 5] = ["after", "current", "new", "to", "now"];
const NAME: [&str; 7] = [
    "what",
    "name",
    "key",
    "observation",
    "phase",
    "path",
    "field",
];

impl CompareView {
    pub fn from_value(value: &Value) -> CompareView {
        let run = |keys: &[&str]| {
            keys.iter().find_map(|k| match value.get(*k)? {
                Value::Object(o) => ["id", "run", "run_id"]
                    .iter()
                    .find_map(|k| o.get(*k).map(display)),
                other => Some(display(other)),
            })
        };
        let plans = ["plans", "results", "changes", "tests"]
            .iter()
            .find_map(|k| value.get(*k))
            .map(plan_list)
            .unwrap_or_default();
        CompareView {
            baseline: run(&BEFORE),
            current: run(&AFTER),
            plans,
        }
    }

    pub fn regressions(&self) -> usize {
        self.plans.iter().filter(|p| p.regression).count()
    }

    pub fn changed(&self) -> usize {
        self.plans.iter().filter(|p| p.changed()).count()
    }
}

fn plan_list(value: &Value) -> Vec<PlanChange> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| {
                let object = item.as_object()?;
                let test = ["test", "plan", "name", "id"]
                    .iter()
                    .find_map(|k| object.get(*k).map(display))?;
                Some(plan(test, object))
            })
            .collect(),
        Value::Object(by_test) => by_test
            .iter()
            .filter_map(|(test, item)| Some(plan(test.clone(), item.as_object()?)))
            .collect(),
        _ => Vec::new(),
    }
}

fn plan(test: String, object: &Map<String, Value>) -> PlanChange {
    let (mut before, mut after) = match object.get("status") {
        Some(Value::Object(o)) => (pick(o, &BEFORE), pick(o, &AFTER)),
        Some(Value::String(s)) => match s.split_once("->").or_else(|| s.split_once('→')) {
            Some((b, a)) => (Some(b.trim().to_owned()), Some(a.trim().to_owned())),
            None => (Some(s.clone()), Some(s.clone())),
        },
        _ => (None, None),
    };
    if before.is_none() {
        before = [
            "status_before",
            "baseline_status",
            "before_status",
            "old_status",
        ]
        .iter()
        .find_map(|k| object.get(*k).map(display));
    }
    if after.is_none() {
        after = [
            "status_after",
            "current_status",
            "after_status",
            "new_status",
        ]
        .iter()
        .find_map(|k| object.get(*k).map(display));
    }
    let explicit = ["regression", "regressed", "is_regression"]
        .iter()
        .find_map(|k| object.get(*k)?.as_bool())
        .or_else(|| {
            let kind = ["kind", "verdict", "change"]
                .iter()
                .find_map(|k| object.get(*k)?.as_str())?;
            Some(kind.eq_ignore_ascii_case("regression") || kind.eq_ignore_ascii_case("regressed"))
        });
    let observations = ["observations", "observation_changes", "observed"]
        .iter()
        .find_map(|k| object.get(*k))
        .map(changes)
        .unwrap_or_default();
    let timings = ["timings", "timing_changes", "timing", "durations", "phases"]
        .iter()
        .find_map(|k| object.get(*k))
        .map(changes)
        .unwrap_or_default();
    let regression = explicit.unwrap_or_else(|| worse(before.as_deref(), after.as_deref()));
    PlanChange {
        test,
        before,
        after,
        regression,
        observations,
        timings,
    }
}

/// pass/skip/known discrepancy → fail/error, or a plan that disappeared from the current run.
fn worse(before: Option<&str>, after: Option<&str>) -> bool {
    let rank = |s: &str| {
        let s = s.to_ascii_lowercase();
        if s.contains("error") {
            3
        } else if s.contains("known") {
            1
        } else if s.contains("fail") {
            2
        } else {
            0
        }
    };
    match (before, after) {
        (Some(b), Some(a)) => rank(a) > rank(b) && rank(a) >= 2,
        _ => false,
    }
}

fn changes(value: &Value) -> Vec<Change> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(o) => {
                    let what = NAME
                        .iter()
                        .find_map(|k| o.get(*k).map(display))
                        .unwrap_or_else(|| format!("#{}", i + 1));
                    change(what, item)
                }
                other => Change {
                    what: display(other),
                    ..Change::default()
                },
            })
            .collect(),
        Value::Object(by_name) => by_name
            .iter()
            .map(|(what, item)| change(what.clone(), item))
            .collect(),
        Value::Null => Vec::new(),
        other => vec![Change {
            what: display(other),
            ..Change::default()
        }],
    }
}

fn change(what: String, value: &Value) -> Change {
    match value {
        Value::Object(o) => {
            let before = pick(o, &BEFORE);
            let after = pick(o, &AFTER);
            let regression = ["regression", "regressed", "worse"]
                .iter()
                .any(|k| o.get(*k).and_then(Value::as_bool) == Some(true));
            if before.is_none() && after.is_none() {
                // Neither side named: show the rest as it is.
                let rest: Map<String, Value> = o
                    .iter()
                    .filter(|(k, _)| !NAME.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Change {
                    what,
                    before: None,
                    after: Some(display(&Value::Object(rest))),
                    regression,
                }
            } else {
                Change {
                    what,
                    before,
                    after,
                    regression,
                }
            }
        }
        other => Change {
            what,
            before: None,
            after: Some(display(other)),
            regression: false,
        },
    }
}

/// The first of `keys` present (also with an `_ms` suffix), shown as text; `null` is absent.
fn pick(object: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        if let Some(v) = object.get(*k).filter(|v| !v.is_null()) {
            return Some(display(v));
        }
        let v = object.get(&format!("{k}_ms")).filter(|v| !v.is_null())?;
        Some(if v.is_number() {
            format!("{} ms", display(v))
        } else {
            display(v)
        })
    })
}

/// Strings as they are; anything else as compact JSON.
fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
