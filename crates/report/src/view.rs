//! What the human-readable reports show, computed once from the runs: the builder × scenario
//! matrix, each plan with its repetitions (from one run or several), and the counts.

use std::collections::BTreeMap;

use crate::runs::Run;
use model::result::{ScenarioResult, Status, Tally};

/// The builders' columns, in this order; builders not listed here follow, sorted.
pub const BUILDERS: [&str; 4] = ["buildx", "kaniko", "docker", "buildah"];

/// How one result ended, as a reader sorts it: a Fail that is exactly the builder's known
/// discrepancy is told apart from other Fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Pass,
    Known,
    Fail,
    Error,
    Skip,
}

impl Verdict {
    pub fn of(result: &ScenarioResult) -> Verdict {
        match result.status {
            Status::Pass => Verdict::Pass,
            Status::Fail if result.known_discrepancy.as_ref().is_some_and(|k| k.met) => {
                Verdict::Known
            }
            Status::Fail => Verdict::Fail,
            Status::Error => Verdict::Error,
            Status::Skip => Verdict::Skip,
        }
    }

    /// The CSS class and the word in tables.
    pub fn class(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Known => "known",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Skip => "skip",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Verdict::Known => "known discrepancy",
            other => other.class(),
        }
    }

    pub fn emoji(self) -> &'static str {
        match self {
            Verdict::Pass => "✅",
            Verdict::Known => "🟧",
            Verdict::Fail => "❌",
            Verdict::Error => "🟣",
            Verdict::Skip => "⏭️",
        }
    }
}

/// One result of a plan: a repetition, from one of the runs.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Which of the runs (0-based, in the order given).
    pub run: usize,
    pub run_id: &'a str,
    pub result: &'a ScenarioResult,
    /// The same plan and repetition is also in another run: say which run this one is from.
    pub labelled: bool,
}

impl Entry<'_> {
    pub fn verdict(&self) -> Verdict {
        Verdict::of(self.result)
    }

    /// A known discrepancy that did not show as documented: the plugin now keeps the promise,
    /// or breaks it differently. (A plain Fail or Error already says it is not as expected.)
    pub fn surprise(&self) -> bool {
        self.result.known_discrepancy.is_some() && self.result.as_expected().is_err()
    }

    /// `plan-build_only-tar-buildx-r1`, with `-s2` when the same repetition is in several runs.
    pub fn anchor(&self) -> String {
        let mut anchor = format!(
            "{}-r{}",
            plan_anchor(&self.result.test),
            self.result.repetition
        );
        if self.labelled {
            anchor.push_str(&format!("-s{}", self.run + 1));
        }
        anchor
    }
}

/// Every result of one plan (scenario × builder).
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub test: &'a str,
    /// `workflow::scenario`.
    pub row: String,
    pub builder: &'a str,
    pub entries: Vec<Entry<'a>>,
}

/// What a matrix cell shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellVerdict {
    One(Verdict),
    /// The repetitions ended differently.
    Flaky,
}

impl CellVerdict {
    pub fn class(self) -> &'static str {
        match self {
            CellVerdict::One(v) => v.class(),
            CellVerdict::Flaky => "flaky",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            CellVerdict::One(v) => v.word(),
            CellVerdict::Flaky => "flaky",
        }
    }

    pub fn emoji(self) -> &'static str {
        match self {
            CellVerdict::One(v) => v.emoji(),
            CellVerdict::Flaky => "🔀",
        }
    }
}

impl Plan<'_> {
    pub fn anchor(&self) -> String {
        plan_anchor(self.test)
    }

    /// One verdict for the plan's cell, or flaky ([`model::result::flaky`]).
    pub fn verdict(&self) -> CellVerdict {
        if model::result::flaky(self.entries.iter().map(|e| e.result)) {
            return CellVerdict::Flaky;
        }
        // Skipped repetitions aside, they all ended alike: the first that ran speaks for them.
        let ran = self
            .entries
            .iter()
            .find(|e| e.result.status != Status::Skip);
        CellVerdict::One(ran.unwrap_or(&self.entries[0]).verdict())
    }

    pub fn flaky(&self) -> bool {
        self.verdict() == CellVerdict::Flaky
    }

    /// How many results ended how, e.g. `[(Pass, 2), (Fail, 1)]`.
    pub fn breakdown(&self) -> Vec<(Verdict, usize)> {
        let mut counts = BTreeMap::new();
        for e in &self.entries {
            *counts.entry(e.verdict()).or_insert(0) += 1;
        }
        counts.into_iter().collect()
    }

    /// Whether some result is a known discrepancy that did not show as documented.
    pub fn surprise(&self) -> bool {
        self.entries.iter().any(Entry::surprise)
    }

    /// The longest of the repetitions.
    pub fn slowest(&self) -> &Entry<'_> {
        self.entries
            .iter()
            .max_by_key(|e| e.result.duration_ms)
            .expect("a plan has at least one result")
    }
}

fn plan_anchor(test: &str) -> String {
    let safe: String = test
        .replace("::", "-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("plan-{safe}")
}

/// `workflow::scenario` and the builder of a test name `workflow::scenario::builder`.
fn split_test(result: &ScenarioResult) -> (String, &str) {
    match result.test.rsplit_once("::") {
        Some((row, _)) => (row.to_owned(), result.builder.as_str()),
        None => (result.test.clone(), result.builder.as_str()),
    }
}

/// The runs merged: shards of one matrix add plans; a plan and repetition found in several runs
/// is kept once per run, labelled with its run.
#[derive(Debug, Clone)]
pub struct Matrix<'a> {
    pub run_ids: Vec<&'a str>,
    pub builders: Vec<String>,
    /// `workflow::scenario`, sorted.
    pub rows: Vec<String>,
    /// Sorted by row, then builder column.
    pub plans: Vec<Plan<'a>>,
    pub tally: Tally,
}

impl<'a> Matrix<'a> {
    /// The counts every report shows, in this order: pass, fail, of which known
    /// discrepancies, error, skip, flaky plans, not as expected.
    pub fn counts(&self) -> [usize; 7] {
        let t = &self.tally;
        [
            t.pass,
            t.fail,
            t.known_discrepancies,
            t.error,
            t.skip,
            self.flaky(),
            t.not_as_expected,
        ]
    }

    /// `Runs a, b · 3 plans · 5 results`, with the run labels as the report writes them.
    /// What the results say about where their plans ran ([`ScenarioResult::isolation`]):
    /// each distinct statement with how many results made it (Skips and results from before
    /// the harness recorded it left out).
    pub fn isolation(&self) -> Vec<(&'a str, usize)> {
        let mut statements: BTreeMap<&'a str, usize> = BTreeMap::new();
        for entry in self.plans.iter().flat_map(|p| &p.entries) {
            if entry.result.status == Status::Skip {
                continue;
            }
            if let Some(statement) = entry.result.isolation.as_deref() {
                *statements.entry(statement).or_insert(0) += 1;
            }
        }
        statements.into_iter().collect()
    }

    pub fn heading(&self, runs: &[String]) -> String {
        let results: usize = self.plans.iter().map(|p| p.entries.len()).sum();
        format!(
            "{} {} · {} · {}",
            if runs.len() == 1 { "Run" } else { "Runs" },
            runs.join(", "),
            count(self.plans.len(), "plan"),
            count(results, "result")
        )
    }

    pub fn of(runs: &'a [Run]) -> Matrix<'a> {
        let mut seen: BTreeMap<(&str, u32), usize> = BTreeMap::new();
        for run in runs {
            for r in &run.results {
                *seen.entry((r.test.as_str(), r.repetition)).or_insert(0) += 1;
            }
        }
        let mut by_test: BTreeMap<&str, Plan<'a>> = BTreeMap::new();
        for (index, run) in runs.iter().enumerate() {
            for r in &run.results {
                let (row, builder) = split_test(r);
                let plan = by_test.entry(r.test.as_str()).or_insert_with(|| Plan {
                    test: &r.test,
                    row,
                    builder,
                    entries: Vec::new(),
                });
                plan.entries.push(Entry {
                    run: index,
                    run_id: &run.id,
                    result: r,
                    labelled: seen[&(r.test.as_str(), r.repetition)] > 1,
                });
            }
        }
        let mut builders: Vec<String> = BUILDERS.iter().map(|b| (*b).to_owned()).collect();
        let mut extra: Vec<String> = by_test
            .values()
            .map(|p| p.builder.to_owned())
            .filter(|b| !BUILDERS.contains(&b.as_str()))
            .collect();
        extra.sort();
        extra.dedup();
        builders.extend(extra);
        let column = |b: &str| builders.iter().position(|x| x == b).unwrap_or(usize::MAX);
        let mut plans: Vec<Plan<'a>> = by_test.into_values().collect();
        for plan in &mut plans {
            plan.entries.sort_by_key(|e| (e.result.repetition, e.run));
        }
        plans.sort_by(|a, b| (&a.row, column(a.builder)).cmp(&(&b.row, column(b.builder))));
        let mut rows: Vec<String> = plans.iter().map(|p| p.row.clone()).collect();
        rows.dedup();
        let all: Vec<ScenarioResult> = runs.iter().flat_map(|r| r.results.clone()).collect();
        Matrix {
            run_ids: runs.iter().map(|r| r.id.as_str()).collect(),
            builders,
            rows,
            plans,
            tally: Tally::of(&all),
        }
    }

    /// The plan in a row and builder column, if it ran (or was skipped).
    pub fn cell(&self, row: &str, builder: &str) -> Option<&Plan<'a>> {
        self.plans
            .iter()
            .find(|p| p.row == row && p.builder == builder)
    }

    /// Plans whose repetitions ended differently.
    pub fn flaky(&self) -> usize {
        self.plans.iter().filter(|p| p.flaky()).count()
    }

    /// Whether any plan ran more than once.
    pub fn repeated(&self) -> bool {
        self.plans.iter().any(|p| p.entries.len() > 1)
    }
}

/// The wall time of a result's steps: the recorded phase, or (results written before phases
/// were recorded) the span of its step records.
pub fn steps_ms(result: &ScenarioResult) -> u64 {
    if result.phases.steps_ms > 0 {
        return result.phases.steps_ms;
    }
    result
        .steps
        .iter()
        .map(|s| s.started_ms + s.duration_ms)
        .max()
        .unwrap_or(0)
}

/// The share of a result's time that is not its steps: the harness's overhead (0 to 1).
pub fn overhead(result: &ScenarioResult) -> Option<f64> {
    if result.duration_ms == 0 || result.status == Status::Skip {
        return None;
    }
    let steps = steps_ms(result).min(result.duration_ms);
    Some(1.0 - steps as f64 / result.duration_ms as f64)
}

/// Shortens `sha256:<64 hex>` to `sha256:` and 12 hex digits; other text is kept.
pub fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algo, hex)) if hex.len() > 12 => format!("{algo}:{}", &hex[..12]),
        _ => digest.to_owned(),
    }
}

/// A manifest media type in a few letters.
pub fn short_media_type(media_type: &str) -> &str {
    match media_type {
        "application/vnd.docker.distribution.manifest.v2+json" => "docker v2",
        "application/vnd.docker.distribution.manifest.list.v2+json" => "docker list",
        "application/vnd.oci.image.manifest.v1+json" => "oci manifest",
        "application/vnd.oci.image.index.v1+json" => "oci index",
        other => other,
    }
}

/// `1 plan`, `3 plans`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The results of a claim's scenarios, one `builder STATUS` each, sorted, without repeats.
pub(crate) fn claim_statuses(row: &model::claims::ClaimRow) -> String {
    let mut shown: Vec<String> = row
        .results
        .iter()
        .map(|r| format!("{} {}", r.builder, r.status))
        .collect();
    shown.sort();
    shown.dedup();
    shown.join(", ")
}
