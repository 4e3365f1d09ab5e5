//! A [`Comparison`] as a terminal table or Markdown. Both list only the plans with something to
//! say (a status change, a flaky side, an observation change, a timing regression or
//! improvement); the JSON holds everything.

use std::fmt::Write as _;

use super::{
    plural, Change, Comparison, PlanComparison, PlanSide, Presence, RunInfo, Spread,
    TimingComparison, TimingVerdict,
};

/// The comparison as a plain-text table, for the terminal.
pub fn terminal(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "BASE  {}", runs(&c.base));
    let _ = writeln!(out, "NEW   {}", runs(&c.new));
    let _ = writeln!(out, "{}\n", rule(c));
    let shown: Vec<&PlanComparison> = c.plans.iter().filter(|p| noteworthy(p)).collect();
    if shown.is_empty() {
        out.push_str("no plan on both sides changed\n");
    } else {
        let rows: Vec<[String; 4]> = shown
            .iter()
            .map(|p| {
                [
                    p.test.clone(),
                    cell(p.base.as_ref()),
                    cell(p.new.as_ref()),
                    change(p),
                ]
            })
            .collect();
        let header = [
            "PLAN".to_owned(),
            "BASE".to_owned(),
            "NEW".to_owned(),
            "CHANGE".to_owned(),
        ];
        let widths: Vec<usize> = (0..4)
            .map(|i| {
                rows.iter()
                    .chain(std::iter::once(&header))
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |r: &[String; 4]| {
            format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
        };
        out.push_str(&line(&header));
        for (p, row) in shown.iter().zip(&rows) {
            out.push_str(&line(row));
            for detail in details(p) {
                let _ = writeln!(out, "    {detail}");
            }
        }
    }
    for (side, change) in [("BASE", Change::Removed), ("NEW", Change::Added)] {
        let names: Vec<&str> = one_side(c, change).map(|p| p.test.as_str()).collect();
        if names.is_empty() {
            continue;
        }
        let listed = if names.len() <= 10 {
            names.join(", ")
        } else {
            format!(
                "{}, … and {} more (--markdown and --json list them)",
                names[..10].join(", "),
                names.len() - 10
            )
        };
        let _ = writeln!(out, "\nonly in {side} ({}): {listed}", names.len());
    }
    let _ = writeln!(out, "\n{}", counts(c));
    let _ = writeln!(out, "verdict: {}", c.verdict.summary);
    out
}

/// The plans on one side only that need no closer look (see [`noteworthy`]).
fn one_side(c: &Comparison, change: Change) -> impl Iterator<Item = &PlanComparison> {
    c.plans
        .iter()
        .filter(move |p| p.change == change && !noteworthy(p))
}

/// The comparison as a Markdown document.
pub fn markdown(c: &Comparison) -> String {
    let mut out =
        String::from("# Comparison of runs\n\n| side | runs | results |\n|---|---|---|\n");
    for (side, runs) in [("BASE", &c.base), ("NEW", &c.new)] {
        let ids: Vec<String> = runs.iter().map(|r| format!("`{}`", r.id)).collect();
        let results: usize = runs.iter().map(|r| r.results).sum();
        let _ = writeln!(out, "| {side} | {} | {results} |", ids.join(", "));
    }
    let _ = writeln!(
        out,
        "\n**Verdict: {}.** {}\n\n{}\n",
        c.verdict.summary,
        counts(c),
        rule(c)
    );

    let status: Vec<&PlanComparison> = c
        .plans
        .iter()
        .filter(|p| match p.change {
            Change::Unchanged => flaky(p),
            Change::Added | Change::Removed => noteworthy(p),
            _ => true,
        })
        .collect();
    out.push_str("## Status\n\n");
    if status.is_empty() {
        out.push_str("No status changed.\n");
    } else {
        out.push_str("| plan | BASE | NEW | change | why |\n|---|---|---|---|---|\n");
        for p in status {
            let why = match p.new.as_ref().and_then(|n| n.reason.as_deref()) {
                Some(reason) if p.status_regression => format!("{}; NEW: {reason}", p.note),
                _ => p.note.clone(),
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                p.test,
                escape(&cell(p.base.as_ref())),
                escape(&cell(p.new.as_ref())),
                if p.status_regression {
                    format!("**{}**", change(p))
                } else {
                    change(p)
                },
                escape(&why)
            );
        }
    }

    for (side, change) in [("BASE", Change::Removed), ("NEW", Change::Added)] {
        let names: Vec<String> = one_side(c, change)
            .map(|p| {
                format!(
                    "`{}` ({})",
                    p.test,
                    cell(p.base.as_ref().or(p.new.as_ref()))
                )
            })
            .collect();
        if !names.is_empty() {
            let _ = writeln!(
                out,
                "\nOnly in {side} ({}): {}.",
                names.len(),
                escape(&names.join(", "))
            );
        }
    }

    out.push_str("\n## Observations\n\n");
    let observed: Vec<&PlanComparison> = c
        .plans
        .iter()
        .filter(|p| !p.observation_changes.is_empty())
        .collect();
    if observed.is_empty() {
        out.push_str("No observation changed.\n");
    } else {
        out.push_str("| plan | kind | | item | seen in |\n|---|---|---|---|---|\n");
        for p in observed {
            for o in &p.observation_changes {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | `{}` | {}/{} |",
                    p.test,
                    o.kind,
                    sign(o.change),
                    escape(&o.item),
                    o.seen_in,
                    o.of
                );
            }
        }
    }

    out.push_str("\n## Timings\n\n");
    let timed: Vec<(&PlanComparison, &TimingComparison)> = c
        .plans
        .iter()
        .flat_map(|p| p.timings.iter().map(move |t| (p, t)))
        .filter(|(_, t)| judged(t))
        .collect();
    if timed.is_empty() {
        out.push_str("No timing changed beyond the noise.\n");
    } else {
        out.push_str(
            "| plan | what | BASE median (spread) | NEW median (spread) | ratio (bounds), noise | verdict |\n\
             |---|---|---|---|---|---|\n",
        );
        for (p, t) in timed {
            let verdict = match t.verdict {
                TimingVerdict::Regression => "**regression**".to_owned(),
                v => v.to_string(),
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {}{} |",
                p.test,
                t.subject,
                spread(&t.base),
                spread(&t.new),
                ratio(t),
                verdict,
                t.note
                    .as_deref()
                    .map(|n| format!(", {n}"))
                    .unwrap_or_default()
            );
        }
    }
    // Whatever a plugin wrote (logs, labels, reasons) cannot drive the terminal of whoever
    // reads the file.
    crate::redact::printable(&out).into_owned()
}

fn runs(runs: &[RunInfo]) -> String {
    runs.iter()
        .map(|r| format!("{} ({} result{})", r.id, r.results, plural(r.results)))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// How timings were decided, and how the sides ran: the paragraph that makes the timing
/// verdicts trustworthy (or says why they are not).
fn rule(c: &Comparison) -> String {
    let s = &c.settings;
    let m = &c.method;
    let mut out = format!(
        "Timing regression: NEW slower than BASE by more than ×{} and {} ms at the lower \
         confidence bound of the ratio (Mann–Whitney, distribution-free), each bound at {:.4} for \
         {} comparison{}: at most {} % chance of any false alarm in this comparison.",
        s.min_ratio,
        s.min_delta_ms,
        m.confidence,
        m.comparisons,
        plural(m.comparisons),
        s.false_alarm_rate * 100.0
    );
    match m.minimum_repeat {
        Some(n) => {
            let _ = write!(
                out,
                " Decidable from {n} repetitions per side; a slowdown of ×{} or more seen \
                 with fewer is inconclusive.",
                s.detect_ratio
            );
        }
        None => out.push_str(" No number of repetitions could decide at this level."),
    }
    if let Some(order) = &m.order {
        let _ = write!(out, " Order: {order}.");
    }
    if let Some(calibration) = &m.calibration {
        let _ = write!(out, " Noise floors calibrated from {calibration}.");
    }
    out
}

fn counts(c: &Comparison) -> String {
    let v = &c.verdict;
    let ch = &v.changes;
    let mut parts = vec![format!("{} plan{}:", v.plans, plural(v.plans))];
    let mut by_change: Vec<String> = [
        (ch.regression, "regression"),
        (ch.flaky, "flaky"),
        (ch.known_discrepancy_change, "known discrepancy change"),
        (ch.improvement, "improvement"),
        (ch.changed, "changed"),
        (ch.added, "added"),
        (ch.removed, "removed"),
        (ch.unchanged, "unchanged"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if by_change.is_empty() {
        by_change.push("none".to_owned());
    }
    parts.push(format!("{}.", by_change.join(", ")));
    parts.push(format!(
        "With observation changes: {}; with timing regressions: {}, inconclusive timings: {}, \
         improvements: {}.",
        v.observation_changes, v.timing_regressions, v.timing_inconclusive, v.timing_improvements
    ));
    parts.join(" ")
}

/// Worth a row of its own: a status change, a flaky side, an observation or timing change. A
/// plan on one side only is, when that side is flaky or not as expected; the others are listed
/// by name (runs of different plan sets, e.g. filtered, would drown the table).
fn noteworthy(p: &PlanComparison) -> bool {
    match p.change {
        Change::Unchanged => {
            flaky(p) || !p.observation_changes.is_empty() || p.timings.iter().any(judged)
        }
        Change::Added | Change::Removed => p
            .base
            .as_ref()
            .or(p.new.as_ref())
            .is_some_and(|s| s.flaky || !s.as_expected),
        _ => true,
    }
}

fn flaky(p: &PlanComparison) -> bool {
    [&p.base, &p.new]
        .into_iter()
        .any(|s| s.as_ref().is_some_and(|s| s.flaky))
}

/// A timing worth a line: a regression, an improvement or an inconclusive slowdown.
fn judged(t: &TimingComparison) -> bool {
    matches!(
        t.verdict,
        TimingVerdict::Regression | TimingVerdict::Improvement | TimingVerdict::Inconclusive
    )
}

/// A side's status: `FAIL (known)`, `PASS ×3`, `FAIL flaky: pass, fail, pass`, `–`.
fn cell(side: Option<&PlanSide>) -> String {
    let Some(s) = side else {
        return "–".to_owned();
    };
    let mut out = s.status.to_string();
    match s.known_discrepancy_met {
        Some(true) => out.push_str(" (known)"),
        Some(false) => out.push_str(" (known, not met)"),
        None => {}
    }
    if s.flaky {
        let reps: Vec<String> = s
            .repetitions
            .iter()
            .map(|r| r.to_string().to_lowercase())
            .collect();
        let _ = write!(out, " flaky: {}", reps.join(", "));
    } else if s.repetitions.len() > 1 {
        let _ = write!(out, " ×{}", s.repetitions.len());
    }
    out
}

fn change(p: &PlanComparison) -> String {
    let mut out = p.change.to_string();
    if p.status_regression && p.change != Change::Regression {
        out.push_str(" (regression)");
    }
    if p.timing_regression {
        out.push_str(", timing regression");
    }
    out
}

fn details(p: &PlanComparison) -> Vec<String> {
    let mut out = Vec::new();
    if p.change != Change::Unchanged {
        out.push(p.note.clone());
        if p.status_regression {
            if let Some(reason) = p.new.as_ref().and_then(|n| n.reason.as_deref()) {
                out.push(format!("NEW: {reason}"));
            }
        }
    }
    for o in &p.observation_changes {
        out.push(format!(
            "{} {}: {} ({}/{})",
            sign(o.change),
            o.kind,
            o.item,
            o.seen_in,
            o.of
        ));
    }
    for t in p.timings.iter().filter(|t| judged(t)) {
        out.push(format!(
            "{}: {} → {} ({}) {}{}",
            t.subject,
            spread(&t.base),
            spread(&t.new),
            ratio(t),
            t.verdict,
            t.note
                .as_deref()
                .map(|n| format!(", {n}"))
                .unwrap_or_default()
        ));
    }
    out
}

fn sign(p: Presence) -> &'static str {
    match p {
        Presence::Added => "+",
        Presence::Removed => "-",
    }
}

/// `1000 ms` for one sample, `1000 ms (900–1100, 3 runs)` for more.
fn spread(s: &Spread) -> String {
    match s.samples_ms.len() {
        1 => format!("{} ms", s.median_ms),
        n => format!("{} ms ({}–{}, {n} runs)", s.median_ms, s.min_ms, s.max_ms),
    }
}

/// `×1.35 (×1.21–×1.52), noise ×1.03`: the estimate, its bounds and the calibrated floor.
fn ratio(t: &TimingComparison) -> String {
    let mut out = t.ratio.map_or("–".to_owned(), |r| format!("×{r:.2}"));
    if let (Some(low), Some(high)) = (t.low, t.high) {
        let _ = write!(out, " (×{low:.2}–×{high:.2})");
    }
    if let Some(noise) = t.noise {
        let _ = write!(out, ", noise ×{noise:.2}");
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
