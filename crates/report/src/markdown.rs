//! `summary.md`: a run (or several merged) in Markdown, for a CI job summary: the counts, the
//! builder × scenario matrix, the non-passing plans with their failed assertions, and the slowest
//! plans with the harness's share of their time.

use std::fmt::Write;

use super::view::{claim_statuses, count, overhead, steps_ms, CellVerdict, Entry, Matrix, Verdict};
use super::Redact;
use crate::runs::Run;
use model::claims::{ClaimRow, ClaimsView, Verdict as ClaimVerdict};
use model::result::{AssertionOutcome, Status};

/// How many of the slowest plans the summary lists.
const SLOWEST: usize = 5;

/// The Markdown summary of `runs`.
pub fn render(runs: &[Run], redact: Redact) -> String {
    let matrix = Matrix::of(runs);
    let mut out = String::new();
    header(&mut out, &matrix, redact);
    table(&mut out, &matrix);
    not_passing(&mut out, &matrix, redact);
    slowest(&mut out, &matrix, redact);
    out.push_str(
        "\nEvery step's timing, log and the registries' contents after each step: `report.html` \
         next to this file.\n",
    );
    // Whatever a plugin wrote (logs, labels, reasons) cannot drive the terminal of whoever
    // reads the file.
    crate::redact::printable(&out).into_owned()
}

fn header(out: &mut String, matrix: &Matrix<'_>, redact: Redact) {
    let runs: Vec<String> = matrix
        .run_ids
        .iter()
        .enumerate()
        .map(|(i, id)| format!("`{}`", redact.run_id(i, id)))
        .collect();
    let _ = writeln!(out, "# Conformance report\n");
    let _ = writeln!(out, "{}\n", matrix.heading(&runs));
    for (statement, results) in matrix.isolation() {
        let _ = writeln!(
            out,
            "Isolation ({}): {statement}\n",
            count(results, "result")
        );
    }
    let _ = writeln!(
        out,
        "| ✅ pass | ❌ fail | 🟧 of which known discrepancies | 🟣 error | ⏭️ skip | 🔀 flaky | not as expected |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| {} |\n",
        matrix.counts().map(|n| n.to_string()).join(" | ")
    );
    let _ = writeln!(
        out,
        "Results are counted one per repetition; a plan is flaky when its repetitions ended \
         differently. Not as expected: every Fail and Error except a known discrepancy that \
         showed exactly as documented; ⚠️ marks a known discrepancy that did not.\n"
    );
}

fn table(out: &mut String, matrix: &Matrix<'_>) {
    let _ = writeln!(out, "## Matrix\n");
    let _ = writeln!(out, "| scenario | {} |", matrix.builders.join(" | "));
    let _ = writeln!(out, "|---|{}", ":-:|".repeat(matrix.builders.len()));
    for row in &matrix.rows {
        let _ = write!(out, "| `{row}` |");
        for builder in &matrix.builders {
            let cell = match matrix.cell(row, builder) {
                None => "–".to_owned(),
                Some(plan) => {
                    let verdict = plan.verdict();
                    let mut cell = format!("{} {}", verdict.emoji(), verdict.word());
                    if verdict == CellVerdict::Flaky {
                        let parts: Vec<String> = plan
                            .breakdown()
                            .iter()
                            .map(|(v, n)| format!("{}{n}", v.emoji()))
                            .collect();
                        let _ = write!(cell, " ({})", parts.join(" "));
                    } else if plan.entries.len() > 1 {
                        let _ = write!(cell, " ×{}", plan.entries.len());
                    }
                    if plan.surprise() {
                        cell.push_str(" ⚠️");
                    }
                    cell
                }
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out.push('\n');
}

/// `test`, with the repetition and the run when they tell results apart.
fn entry_name(entry: &Entry<'_>, repeated: bool, redact: Redact) -> String {
    let mut name = format!("`{}`", entry.result.test);
    if repeated {
        let _ = write!(name, " repetition {}", entry.result.repetition);
    }
    if entry.labelled {
        let _ = write!(name, " (run `{}`)", redact.run_id(entry.run, entry.run_id));
    }
    name
}

fn not_passing(out: &mut String, matrix: &Matrix<'_>, redact: Redact) {
    let entries: Vec<(&Entry<'_>, bool)> = matrix
        .plans
        .iter()
        .flat_map(|p| p.entries.iter().map(move |e| (e, p.entries.len() > 1)))
        .filter(|(e, _)| !matches!(e.verdict(), Verdict::Pass | Verdict::Skip) || e.surprise())
        .collect();
    let _ = writeln!(out, "## Not passing\n");
    if entries.is_empty() {
        let _ = writeln!(out, "Every plan that ran passed.\n");
        return;
    }
    for (entry, repeated) in entries {
        let r = entry.result;
        let verdict = entry.verdict();
        let _ = writeln!(
            out,
            "### {} {} — {}{}\n",
            verdict.emoji(),
            entry_name(entry, repeated, redact),
            verdict.word(),
            if entry.surprise() {
                " ⚠️ not as documented"
            } else {
                ""
            }
        );
        if let Some(reason) = &r.reason {
            let _ = writeln!(out, "{}\n", inline(&redact.text(reason)));
        }
        for h in &r.harness_steps {
            let _ = writeln!(
                out,
                "Harness step `{}` ({}, {}) ran as `{}`: {}\n",
                inline(&redact.text(&h.step)),
                h.step_type,
                h.infrastructure,
                h.role,
                inline(&redact.text(&h.why))
            );
        }
        if let Some(known) = &r.known_discrepancy {
            let verdict = match (&known.difference, known.met) {
                (_, true) => "fails exactly as expected".to_owned(),
                (Some(d), false) => format!("not as expected: {}", inline(&redact.text(d))),
                (None, false) => "not as expected".to_owned(),
            };
            let _ = writeln!(
                out,
                "Known discrepancy ({verdict}): {}\n",
                inline(&redact.text(&known.because))
            );
        }
        let failed: Vec<_> = r
            .assertions
            .iter()
            .filter(|a| a.status != Status::Pass)
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(out, "| assertion | expected | found |");
            let _ = writeln!(out, "|---|---|---|");
            for a in failed {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    inline(&redact.text(&a.assertion)),
                    inline(&redact.text(&a.expected)),
                    inline(&redact.text(&a.found))
                );
            }
            out.push('\n');
            for a in r.assertions.iter().filter(|a| a.status != Status::Pass) {
                differences(out, a, redact);
            }
        }
    }
}

fn slowest(out: &mut String, matrix: &Matrix<'_>, redact: Redact) {
    let mut entries: Vec<(&Entry<'_>, bool)> = matrix
        .plans
        .iter()
        .flat_map(|p| p.entries.iter().map(move |e| (e, p.entries.len() > 1)))
        .filter(|(e, _)| e.result.status != Status::Skip)
        .collect();
    if entries.is_empty() {
        return;
    }
    entries.sort_by_key(|(e, _)| std::cmp::Reverse(e.result.duration_ms));
    let _ = writeln!(out, "## Slowest plans\n");
    let _ = writeln!(
        out,
        "Harness overhead: the share of a plan's time that is not its steps (environment up, \
         registry readings, checks, teardown): 1 − steps / duration.\n"
    );
    let _ = writeln!(
        out,
        "| plan | result | duration | steps | harness overhead |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|");
    for (entry, repeated) in entries.into_iter().take(SLOWEST) {
        let r = entry.result;
        let verdict = entry.verdict();
        let _ = writeln!(
            out,
            "| {} | {} {} | {} | {} | {} |",
            entry_name(entry, repeated, redact),
            verdict.emoji(),
            verdict.word(),
            inline(&redact.ms(r.duration_ms)),
            inline(&redact.ms(steps_ms(r))),
            overhead(r).map_or("–".to_owned(), |s| inline(&redact.share(s)))
        );
    }
}

/// Text for one Markdown line or table cell: pipes escaped, angle brackets as entities (so
/// `<ms>` is not read as an HTML tag), line breaks as `<br>`.
/// The differences an `images_equivalent` outcome found that its allow-list does not name, as
/// a table (the allowed ones are counted: report.html lists them).
fn differences(out: &mut String, a: &AssertionOutcome, redact: Redact) {
    let Some(differences) = &a.differences else {
        return;
    };
    let allowed = differences
        .iter()
        .filter(|d| d.allowed_by.is_some())
        .count();
    let _ = writeln!(
        out,
        "Differences for {} ({allowed} allowed, not listed):\n",
        inline(&redact.text(&a.assertion))
    );
    let _ = writeln!(out, "| what | where | left | right |");
    let _ = writeln!(out, "|---|---|---|---|");
    let side = |v: &Option<String>| match v {
        Some(v) => inline(&redact.text(v)),
        None => "*absent*".to_owned(),
    };
    for d in differences.iter().filter(|d| d.allowed_by.is_none()) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            d.kind,
            inline(&redact.text(&d.key)),
            side(&d.left),
            side(&d.right)
        );
    }
    out.push('\n');
}

fn inline(text: &str) -> String {
    text.trim_end()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace('\n', "<br>")
}

/// The Markdown section: the headline, then every claim that is not simply holding or
/// unchecked (broken, known discrepancies, undetermined, not run), then the unchecked count by
/// topic.
pub fn claims(view: &ClaimsView, redact: Redact) -> String {
    let mut out = String::new();
    let counts = view.counts();
    let _ = writeln!(out, "\n## Claims of the documentation\n");
    let _ = writeln!(out, "{}.\n", counts.headline());
    let notable: Vec<&ClaimRow> = view
        .rows
        .iter()
        .filter(|r| !matches!(r.verdict, ClaimVerdict::Holds | ClaimVerdict::Unchecked))
        .collect();
    if !notable.is_empty() {
        let _ = writeln!(out, "| claim | verdict | results | the docs say |");
        let _ = writeln!(out, "|---|---|---|---|");
        for row in notable {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                row.id,
                row.verdict.label(),
                claim_statuses(row),
                redact
                    .text(&row.text)
                    .replace('|', "\\|")
                    .replace('\n', " ")
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Every claim with its quote, scenarios and results: `harness claims`, or the Claims section of `report.html`.\n"
    );
    out
}
