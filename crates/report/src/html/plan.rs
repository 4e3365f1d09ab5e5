//! One repetition of a plan in the HTML report: its step timeline, phases, assertions, logs and
//! images.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Redact;
use crate::view::{overhead, Entry};
use model::result::{Difference, Phases, ScenarioResult, Status, StepRecord};

use super::*;

pub(super) fn repetition(out: &mut String, entry: &Entry<'_>, redact: Redact) {
    let r = entry.result;
    let verdict = entry.verdict();
    let run = if entry.labelled {
        format!(
            " · run <code>{}</code>",
            esc(&redact.run_id(entry.run, entry.run_id))
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "<section class=\"rep {}\" id=\"{}\">\n<h3>repetition {} · <span class=\"badge {}\">{}</span>{}{run}</h3>",
        verdict.class(),
        entry.anchor(),
        r.repetition,
        verdict.class(),
        esc(verdict.word()),
        if r.status == Status::Skip {
            String::new()
        } else {
            format!(" · {}", esc(&redact.ms(r.duration_ms)))
        },
    );
    if let Some(reason) = &r.reason {
        let _ = writeln!(out, "<p class=\"reason\">{}</p>", esc(&redact.text(reason)));
    }
    if !r.retried_errors.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"reason\">Run again after {} errored attempt(s): {}</p>",
            r.retried_errors.len(),
            esc(&redact.text(&r.retried_errors.join("; ")))
        );
    }
    if let Some(known) = &r.known_discrepancy {
        let how = if known.met {
            "fails exactly as expected".to_owned()
        } else {
            format!(
                "NOT as expected: {}",
                known.difference.as_deref().unwrap_or("the run differs")
            )
        };
        let _ = writeln!(
            out,
            "<p class=\"known-note\"><b>Known discrepancy</b> ({}): {}</p>",
            esc(&redact.text(&how)),
            esc(&redact.text(&known.because))
        );
    }
    if r.status == Status::Skip {
        out.push_str("</section>\n");
        return;
    }
    // A plan that errored before its steps shows only what it recorded.
    let ran = !r.steps.is_empty();
    harness_steps::harness_steps(out, &r.harness_steps, redact);
    if ran {
        out.push_str("<h4>Steps</h4>\n");
        timeline(out, &r.steps, redact);
    }
    if ran || r.phases != Phases::default() {
        out.push_str("<h4>Phases</h4>\n");
        phases(out, r, redact);
    }
    assertions(out, r, redact);
    if ran || !r.inventory.is_empty() {
        out.push_str("<h4>Registry contents</h4>\n");
        inventory(out, &r.inventory, redact);
    }
    if ran {
        out.push_str("<h4>Logs</h4>\n");
        logs(out, &r.steps, redact);
    }
    images(out, r, redact);
    out.push_str("</section>\n");
}

pub(super) fn pct(part: u64, whole: u64) -> String {
    format!("{:.2}%", part as f64 * 100.0 / whole.max(1) as f64)
}

/// How a step ended, as a bar's class and words.
pub(super) fn step_end(step: &StepRecord) -> (&'static str, String) {
    let (class, mut words) = match (step.exit_code, step.timed_out) {
        (_, true) => ("timeout", "timed out".to_owned()),
        (Some(0), _) => ("ok", "exit 0".to_owned()),
        (Some(code), _) => ("failed", format!("exit {code}")),
        (None, false) => ("notrun", "did not run".to_owned()),
    };
    if step.oom_killed {
        words.push_str(", killed for its memory");
    }
    if let Some(limits) = &step.limits {
        words.push_str(&format!(" (limits: {limits})"));
    }
    if let Some(security) = &step.security {
        words.push_str(&format!(" (as {security})"));
    }
    (class, words)
}

/// The steps as bars on one time axis: one lane per step, parallel steps (same group) overlap
/// and share a band.
pub(super) fn timeline(out: &mut String, steps: &[StepRecord], redact: Redact) {
    if steps.is_empty() {
        out.push_str("<p class=\"muted\">No steps ran.</p>\n");
        return;
    }
    let total = steps
        .iter()
        .map(|s| s.started_ms + s.duration_ms)
        .max()
        .unwrap_or(0)
        .max(1);
    let mut groups: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for s in steps {
        if let Some(g) = &s.group {
            let span = groups
                .entry(g.as_str())
                .or_insert((s.started_ms, s.started_ms + s.duration_ms));
            span.0 = span.0.min(s.started_ms);
            span.1 = span.1.max(s.started_ms + s.duration_ms);
        }
    }
    out.push_str(
        "<div class=\"timeline\">\n<div class=\"axis\"><span></span><div class=\"ticks\">",
    );
    for quarter in 0..=4u64 {
        let at = total * quarter / 4;
        // One unit on the whole axis.
        let label = match redact {
            Redact::Volatile => redact.ms(at),
            Redact::Nothing if total >= 10_000 => format!("{:.1} s", at as f64 / 1000.0),
            Redact::Nothing => format!("{at} ms"),
        };
        let _ = write!(
            out,
            "<span style=\"left:{}\">{}</span>",
            pct(quarter, 4),
            esc(&label)
        );
    }
    out.push_str("</div></div>\n");
    for s in steps {
        let (class, end) = step_end(s);
        let group = s.group.as_deref();
        let label = match group {
            Some(g) => format!(
                "{} <small>{} · ∥ {}</small>",
                esc(&s.name),
                esc(&s.role),
                esc(g)
            ),
            None => format!("{} <small>{}</small>", esc(&s.name), esc(&s.role)),
        };
        let _ = write!(
            out,
            "<div class=\"lane\"><div class=\"lane-label\" title=\"{}\">{label}</div><div class=\"track\">",
            esc(&s.name)
        );
        if let Some((from, to)) = group.and_then(|g| groups.get(g)) {
            let _ = write!(
                out,
                "<span class=\"groupspan\" style=\"left:{};width:{}\" title=\"parallel group {}\"></span>",
                pct(*from, total),
                pct(to - from, total),
                esc(group.unwrap_or_default())
            );
        }
        let title = format!(
            "{}: starts at {}, takes {}, {end}{}",
            s.name,
            redact.ms(s.started_ms),
            redact.ms(s.duration_ms),
            group
                .map(|g| format!(", parallel group {g}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "<div class=\"bar {class}{}\" style=\"left:{};width:{}\" title=\"{}\">{}</div></div></div>",
            if group.is_some() { " grouped" } else { "" },
            pct(s.started_ms, total),
            pct(s.duration_ms, total),
            esc(&title),
            esc(&redact.ms(s.duration_ms))
        );
    }
    out.push_str("</div>\n");
}

/// Where the plan's time went, as one stacked bar and its legend.
pub(super) fn phases(out: &mut String, r: &ScenarioResult, redact: Redact) {
    let p = &r.phases;
    let recorded = p.environment_ms + p.steps_ms + p.inventory_ms + p.checks_ms + p.teardown_ms;
    if recorded == 0 {
        out.push_str("<p class=\"muted\">No phase timings recorded (the run predates them).</p>\n");
        return;
    }
    let whole = r.duration_ms.max(recorded);
    let env = &p.environment;
    let environment = format!(
        "environment up {} (network {}, registry ready {}, DinD ready {}, base image {})",
        redact.ms(p.environment_ms),
        redact.ms(env.network_ms),
        redact.ms(env.registry_ready_ms),
        redact.ms(env.dind_ready_ms),
        redact.ms(env.base_image_ms)
    );
    let labelled = |class: &'static str, ms: u64, label: &str| {
        (class, ms, format!("{label} {}", redact.ms(ms)))
    };
    let segments = [
        ("environment", p.environment_ms, environment),
        labelled("steps", p.steps_ms, "steps"),
        labelled("inventory", p.inventory_ms, "registry readings"),
        labelled("checks", p.checks_ms, "captures and assertions"),
        labelled("teardown", p.teardown_ms, "teardown"),
        labelled("other", whole - recorded, "other"),
    ];
    out.push_str("<div class=\"stack\">");
    for (class, ms, words) in &segments {
        if *ms > 0 {
            let _ = write!(
                out,
                "<span class=\"seg {class}\" style=\"width:{}\" title=\"{}\"></span>",
                pct(*ms, whole),
                esc(words)
            );
        }
    }
    out.push_str("</div>\n<ul class=\"phase-legend\">");
    for (class, _, words) in &segments {
        let _ = write!(out, "<li><i class=\"sw {class}\"></i>{}</li>", esc(words));
    }
    if let Some(share) = overhead(r) {
        let _ = write!(
            out,
            "<li><b>harness overhead {}</b></li>",
            esc(&redact.share(share))
        );
    }
    out.push_str("</ul>\n");
}

pub(super) fn assertion_rows(
    out: &mut String,
    r: &ScenarioResult,
    only_failed: bool,
    redact: Redact,
) {
    out.push_str(
        "<table class=\"assertions\"><thead><tr><th>assertion</th><th>status</th><th>expected</th><th>found</th></tr></thead><tbody>\n",
    );
    for a in &r.assertions {
        if only_failed && a.status == Status::Pass {
            continue;
        }
        let class = match a.status {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Skip => "skip",
        };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td>{}</td><td><span class=\"badge {class}\">{class}</span></td><td class=\"expected\">{}</td><td class=\"found\">{}</td></tr>",
            esc(&redact.text(&a.assertion)),
            esc(&redact.text(&a.expected)),
            esc(&redact.text(&a.found))
        );
        if let Some(differences) = &a.differences {
            difference_rows(out, differences, redact);
        }
    }
    out.push_str("</tbody></table>\n");
}

/// What differs between two images (`images_equivalent`), under its outcome: one row each,
/// allowed ones greyed with the pattern that allows them.
fn difference_rows(out: &mut String, differences: &[Difference], redact: Redact) {
    let absent = |v: &Option<String>| match v {
        Some(v) => esc(&redact.text(v)),
        None => "<i>absent</i>".to_owned(),
    };
    out.push_str(
        "<tr class=\"differences\"><td colspan=\"4\"><table class=\"differences\"><thead><tr><th>what</th><th>where</th><th>left</th><th>right</th><th>allowed by</th></tr></thead><tbody>\n",
    );
    for d in differences {
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if d.allowed_by.is_some() {
                " class=\"allowed\""
            } else {
                ""
            },
            esc(&d.kind.to_string()),
            esc(&redact.text(&d.key)),
            absent(&d.left),
            absent(&d.right),
            d.allowed_by
                .as_deref()
                .map(|p| esc(&redact.text(p)))
                .unwrap_or_default()
        );
    }
    out.push_str("</tbody></table></td></tr>\n");
}

pub(super) fn assertions(out: &mut String, r: &ScenarioResult, redact: Redact) {
    let failed = r
        .assertions
        .iter()
        .filter(|a| a.status != Status::Pass)
        .count();
    if failed > 0 {
        out.push_str("<h4>Failed assertions</h4>\n");
        assertion_rows(out, r, true, redact);
    }
    if !r.assertions.is_empty() {
        let _ = writeln!(
            out,
            "<details class=\"more\"><summary>All assertions ({}, {failed} failed)</summary>",
            r.assertions.len()
        );
        assertion_rows(out, r, false, redact);
        out.push_str("</details>\n");
    }
}

pub(super) fn logs(out: &mut String, steps: &[StepRecord], redact: Redact) {
    for s in steps {
        let (_, end) = step_end(s);
        let log = if s.log.is_empty() {
            "(no output)".to_owned()
        } else {
            esc(&redact.text(&s.log))
        };
        let _ = writeln!(
            out,
            "<details class=\"log\"><summary>{} <small class=\"muted\">{} · {end} · {}</small></summary><pre>{log}</pre></details>",
            esc(&s.name),
            esc(&s.role),
            esc(&redact.ms(s.duration_ms)),
        );
    }
}

pub(super) fn images(out: &mut String, r: &ScenarioResult, redact: Redact) {
    if r.images.is_empty() {
        return;
    }
    out.push_str("<details class=\"more\"><summary>Images</summary><table><thead><tr><th>role</th><th>image</th><th>id</th><th>note</th></tr></thead><tbody>\n");
    for (role, image) in &r.images {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            esc(role),
            esc(&image.image),
            esc(&redact.digest(&image.id)),
            esc(image.note.as_deref().unwrap_or_default())
        );
    }
    out.push_str("</tbody></table></details>\n");
}
