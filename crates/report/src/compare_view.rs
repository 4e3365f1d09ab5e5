//! What `compare.html` shows of a comparison of two runs, read from the JSON `harness compare`
//! writes (`--json FILE`) without depending on its types: the file is read as a
//! [`serde_json::Value`] and only the shapes below are looked for, so the page still renders
//! (with less) when the document gains or renames fields.
//!
//! - the sides: `base` / `new` (also `baseline` / `current`, `before` / `after`), each a run id,
//!   an object with an `id`, or a list of those (shards);
//! - `verdict.summary`: one line saying whether the comparison fails;
//! - the plans: `plans` (or `results`, `changes`), a list of objects with `test` (or `plan`,
//!   `name`), or an object keyed by test name;
//! - per plan: the statuses as `base_status` / `new_status` (also `status: {before, after}`, a
//!   `"before -> after"` string, or one status for both); `change` (`regression`, `flaky`,
//!   `improvement`, …) and `note`; `status_regression` and `timing_regression` (else a regression
//!   is derived from the statuses); `observation_changes` (or `observations`): changes
//!   `{kind, item, change: added|removed, seen_in, of}` or `{what, before, after}`; `timings`:
//!   `{subject, base: {median_ms, min_ms, max_ms}, new: {…}, ratio, delta_ms, verdict, note}` or
//!   `{what, before, after}` — a timing whose `verdict` is `within_noise` or `below_floor` is
//!   shown but is not a change.

use std::path::Path;

use serde_json::{Map, Value};

use crate::errors::RunReadError;

/// Reads a comparison file as JSON (any JSON document: [`CompareView::from_value`] takes what it
/// understands).
pub fn read(path: &Path) -> Result<Value, RunReadError> {
    crate::runs::read_json(path)
}

/// A comparison of two runs, as `compare.html` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompareView {
    /// The run ids on the BASE side (several: shards).
    pub base: Vec<String>,
    pub new: Vec<String>,
    /// Whether the comparison fails, in one line.
    pub summary: Option<String>,
    /// How timings were decided and the sides ordered (`method` of the comparison), in words.
    pub method: Option<String>,
    pub plans: Vec<PlanChange>,
}

/// One plan in both runs (or in one of them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanChange {
    pub test: String,
    /// The status in BASE (`None`: not in it).
    pub before: Option<String>,
    /// The status in NEW (`None`: not in it).
    pub after: Option<String>,
    /// `regression`, `flaky`, `improvement`, … as the comparison names it.
    pub change: Option<String>,
    /// Why the change is what it is.
    pub note: Option<String>,
    /// The status got worse: the file says so, or (when it does not) the status went from pass,
    /// skip or a known discrepancy to fail or error.
    pub regression: bool,
    /// Some timing got worse beyond the noise.
    pub timing_regression: bool,
    pub observations: Vec<Change>,
    pub timings: Vec<Change>,
}

impl PlanChange {
    /// Whether anything differs between the runs.
    pub fn changed(&self) -> bool {
        let named = self.change.as_deref().map(|c| c != "unchanged");
        named.unwrap_or(self.before != self.after)
            || self.regression
            || self.timing_regression
            || !self.observations.is_empty()
            || self.timings.iter().any(|t| t.significant)
    }
}

/// One value that differs between the runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub what: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// The comparison's judgement (`regression`, `within noise`, …), when it gives one.
    pub verdict: Option<String>,
    /// NEW over BASE, for timings.
    pub ratio: Option<f64>,
    pub note: Option<String>,
    /// The change is a regression.
    pub regression: bool,
    /// The change counts (a timing within the noise does not).
    pub significant: bool,
}

const BEFORE: [&str; 4] = ["base", "baseline", "before", "old"];
const AFTER: [&str; 4] = ["new", "current", "after", "now"];
const NAME: [&str; 6] = ["what", "subject", "name", "key", "observation", "field"];

impl CompareView {
    pub fn from_value(value: &Value) -> CompareView {
        let side = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| value.get(*k))
                .map(run_ids)
                .unwrap_or_default()
        };
        let plans = ["plans", "results", "changes"]
            .iter()
            .find_map(|k| value.get(*k))
            .map(plan_list)
            .unwrap_or_default();
        CompareView {
            base: side(&BEFORE),
            new: side(&AFTER),
            summary: value
                .pointer("/verdict/summary")
                .or_else(|| value.get("summary"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            method: method(value),
            plans,
        }
    }

    /// Plans whose status or timing got worse.
    pub fn regressions(&self) -> usize {
        self.plans
            .iter()
            .filter(|p| p.regression || p.timing_regression)
            .count()
    }

    pub fn changed(&self) -> usize {
        self.plans.iter().filter(|p| p.changed()).count()
    }
}

/// `comparisons: 3 at 0.9967 each · order: … · calibration: …`, from the comparison's `method`.
fn method(value: &Value) -> Option<String> {
    let m = value.get("method")?.as_object()?;
    let mut parts = Vec::new();
    if let (Some(n), Some(level)) = (
        m.get("comparisons").and_then(Value::as_u64),
        m.get("confidence").and_then(Value::as_f64),
    ) {
        parts.push(format!(
            "{n} timing comparison{}, each bound at {level:.4}",
            if n == 1 { "" } else { "s" }
        ));
    }
    for key in ["order", "calibration"] {
        if let Some(text) = m.get(key).and_then(Value::as_str) {
            parts.push(format!("{key}: {text}"));
        }
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

fn run_ids(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().flat_map(run_ids).collect(),
        Value::Object(o) => ["id", "run", "run_id"]
            .iter()
            .find_map(|k| o.get(*k).map(display))
            .into_iter()
            .collect(),
        Value::Null => Vec::new(),
        other => vec![display(other)],
    }
}

fn plan_list(value: &Value) -> Vec<PlanChange> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| {
                let object = item.as_object()?;
                let test = ["test", "plan", "name"]
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

fn text(object: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        object
            .get(*k)
            .filter(|v| !v.is_null())
            .map(display)
            .filter(|s| !s.is_empty())
    })
}

fn flag(object: &Map<String, Value>, keys: &[&str]) -> Option<bool> {
    keys.iter().find_map(|k| object.get(*k)?.as_bool())
}

fn plan(test: String, object: &Map<String, Value>) -> PlanChange {
    let (mut before, mut after) = match object.get("status") {
        Some(Value::Object(o)) => (side_value(o, &BEFORE), side_value(o, &AFTER)),
        Some(Value::String(s)) => match s.split_once("->").or_else(|| s.split_once('→')) {
            Some((b, a)) => (Some(b.trim().to_owned()), Some(a.trim().to_owned())),
            None => (Some(s.clone()), Some(s.clone())),
        },
        _ => (None, None),
    };
    if before.is_none() {
        before = text(object, &["base_status", "status_before", "baseline_status"]);
    }
    if after.is_none() {
        after = text(object, &["new_status", "status_after", "current_status"]);
    }
    let change = text(object, &["change", "kind"]).map(|c| c.replace('_', " "));
    let regression = flag(object, &["status_regression", "regression", "regressed"])
        .or_else(|| change.as_deref().map(|c| c == "regression"))
        .unwrap_or_else(|| worse(before.as_deref(), after.as_deref()));
    let observations: Vec<Change> = ["observation_changes", "observations"]
        .iter()
        .find_map(|k| object.get(*k))
        .map(|v| changes(v, observation))
        .unwrap_or_default();
    let timings: Vec<Change> = ["timings", "timing_changes"]
        .iter()
        .find_map(|k| object.get(*k))
        .map(|v| changes(v, timing))
        .unwrap_or_default();
    let timing_regression = flag(object, &["timing_regression"])
        .unwrap_or_else(|| timings.iter().any(|t| t.regression));
    PlanChange {
        test,
        before,
        after,
        change,
        note: text(object, &["note", "reason"]),
        regression,
        timing_regression,
        observations,
        timings,
    }
}

/// pass/skip/known discrepancy → fail/error.
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

/// A list (or an object keyed by what changed) of changes, each read by `read`.
fn changes(value: &Value, read: fn(String, &Map<String, Value>) -> Change) -> Vec<Change> {
    let named = |what: String, item: &Value| match item {
        Value::Object(o) => read(what, o),
        other => Change {
            what,
            after: Some(display(other)),
            significant: true,
            ..Change::default()
        },
    };
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let what = item
                    .as_object()
                    .and_then(|o| text(o, &NAME))
                    .unwrap_or_else(|| format!("#{}", i + 1));
                named(what, item)
            })
            .collect(),
        Value::Object(by_name) => by_name
            .iter()
            .map(|(what, item)| named(what.clone(), item))
            .collect(),
        _ => Vec::new(),
    }
}

/// `{kind, item, change: added|removed, seen_in, of}`, or a generic change.
fn observation(what: String, o: &Map<String, Value>) -> Change {
    let presence = o.get("change").and_then(Value::as_str);
    if let (Some(item), Some(presence)) = (o.get("item"), presence) {
        let kind = text(o, &["kind"]).map(|k| k.replace('_', " "));
        let seen = match (o.get("seen_in"), o.get("of")) {
            (Some(n), Some(of)) => format!("seen in {} of {}", display(n), display(of)),
            _ => "seen".to_owned(),
        };
        let (before, after) = match presence {
            "added" => (Some("absent".to_owned()), Some(seen)),
            "removed" => (Some(seen), Some("absent".to_owned())),
            other => (None, Some(other.to_owned())),
        };
        return Change {
            what: match kind {
                Some(kind) => format!("{kind} {}", display(item)),
                None => display(item),
            },
            before,
            after,
            significant: true,
            ..Change::default()
        };
    }
    generic(what, o)
}

/// `{subject, base: {median_ms, …}, new: {…}, ratio, verdict, note}`, or a generic change.
fn timing(what: String, o: &Map<String, Value>) -> Change {
    let mut change = generic(what, o);
    let verdict = text(o, &["verdict"]);
    change.significant = !matches!(
        verdict.as_deref(),
        Some("within_noise" | "below_floor" | "within noise" | "below floor" | "unchanged")
    );
    change.regression = change.regression || verdict.as_deref() == Some("regression");
    change.verdict = verdict.map(|v| v.replace('_', " "));
    change.ratio = o.get("ratio").and_then(Value::as_f64);
    // The confidence bounds and the calibrated noise floor, when the comparison has them.
    let number = |key: &str| o.get(key).and_then(Value::as_f64);
    let mut extra = Vec::new();
    if let (Some(low), Some(high)) = (number("low"), number("high")) {
        extra.push(format!("bounds ×{low:.2}–×{high:.2}"));
    }
    if let Some(noise) = number("noise") {
        extra.push(format!("noise ×{noise:.2}"));
    }
    if !extra.is_empty() {
        extra.extend(change.note.take());
        change.note = Some(extra.join("; "));
    }
    change
}

fn generic(what: String, o: &Map<String, Value>) -> Change {
    let before = side_value(o, &BEFORE);
    let after = side_value(o, &AFTER);
    let regression = flag(o, &["regression", "regressed", "worse"]).unwrap_or(false);
    let note = text(o, &["note"]);
    if before.is_none() && after.is_none() {
        // Neither side named: show the rest as it is.
        let rest: Map<String, Value> = o
            .iter()
            .filter(|(k, _)| !NAME.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        return Change {
            what,
            after: Some(display(&Value::Object(rest))),
            regression,
            significant: true,
            ..Change::default()
        };
    }
    Change {
        what,
        before,
        after,
        regression,
        note,
        significant: true,
        ..Change::default()
    }
}

/// One side's value: the first of `keys` present (also with an `_ms` suffix); a spread
/// (`{median_ms, min_ms, max_ms}`) as its median and range; `null` is absent.
fn side_value(object: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        if let Some(v) = object.get(*k).filter(|v| !v.is_null()) {
            if let Some(median) = v.get("median_ms").and_then(Value::as_u64) {
                return Some(
                    match (
                        v.get("min_ms").and_then(Value::as_u64),
                        v.get("max_ms").and_then(Value::as_u64),
                    ) {
                        (Some(min), Some(max)) if min != max => {
                            format!("{median} ms ({min}–{max} ms)")
                        }
                        _ => format!("{median} ms"),
                    },
                );
            }
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
