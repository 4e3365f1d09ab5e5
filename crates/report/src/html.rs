//! `report.html` and `compare.html`: self-contained pages (inline CSS and a few lines of inline
//! script, no external assets, and a Content-Security-Policy that forbids any request), written
//! by hand with [`esc`] escaping every value taken from a result.
//!
//! `report.html`: the counts; the builder × scenario matrix, each cell coloured by how the plan
//! ended and linking to the plan's section; per plan and repetition, the steps as bars on one
//! time axis (parallel steps overlap), the phases as a stacked bar, the failed assertions with
//! what was expected and found, the registries' and the daemon's contents after each step, and
//! the steps' logs, folded.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::compare_view::{Change, CompareView};
use super::view::{overhead, short_media_type, Entry, Matrix, Plan, Verdict};
use super::Redact;
use crate::runs::Run;
use model::inventory::{Holdings, Snapshot};
use model::result::{Phases, ScenarioResult, Status, StepRecord};

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root{--pass:#1f883d;--pass-bg:#dafbe1;--fail:#cf222e;--fail-bg:#ffd8d3;--known:#9a6700;--known-bg:#fff1c2;--known-bg2:#ffe08a;--error:#8250df;--error-bg:#eddeff;--skip:#6e7781;--skip-bg:#eaeef2;--line:#d0d7de;--muted:#57606a;--ink:#1f2328}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:#f6f8fa}
header,main{max-width:1360px;margin:0 auto;padding:0 24px}
header{padding-top:20px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:14px 0 6px}
h4{font-size:13px;margin:14px 0 6px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.meta,.muted{color:var(--muted)}
.counts{display:flex;flex-wrap:wrap;gap:8px;list-style:none;padding:0;margin:12px 0}
.counts li{padding:6px 12px;border-radius:6px;border:1px solid var(--line);background:#fff}
.counts b{font-size:18px;margin-left:6px}
.counts .pass{border-color:var(--pass)}.counts .fail{border-color:var(--fail)}.counts .known{border-color:var(--known)}.counts .error{border-color:var(--error)}.counts .flaky{border-color:#bc4c00}.counts .unexpected{border-color:var(--fail);border-style:dashed}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#f6f8fa;font-weight:600}
table.matrix th[scope=row]{font-weight:normal;white-space:nowrap}
table.matrix td.cell{padding:0;text-align:center;min-width:120px}
table.matrix td.cell a{display:block;padding:6px 8px;color:inherit;text-decoration:none;font-weight:600}
table.matrix td.cell a:hover{outline:2px solid var(--ink);outline-offset:-2px}
.cell.pass,.badge.pass,.sw.pass{background:var(--pass-bg);color:var(--pass)}
.cell.fail,.badge.fail,.sw.fail{background:var(--fail-bg);color:var(--fail)}
.cell.known,.badge.known,.sw.known{background:repeating-linear-gradient(135deg,var(--known-bg) 0 8px,var(--known-bg2) 8px 16px);color:var(--known)}
.cell.error,.badge.error,.sw.error{background:var(--error-bg);color:var(--error)}
.cell.skip,.badge.skip,.sw.skip{background:var(--skip-bg);color:var(--skip);font-weight:normal}
.cell.flaky,.badge.flaky,.sw.flaky{background:linear-gradient(135deg,var(--pass-bg) 0 50%,var(--fail-bg) 50% 100%);color:#bc4c00}
.cell.none{color:#afb8c1;background:#fff}
.cell .reps{display:block;font-weight:normal;font-size:11px}
.cell .note{display:block;font-weight:normal;font-size:11px;font-style:italic}
.warn{color:var(--fail);font-weight:700;margin-left:4px}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:8px 0;color:var(--muted);font-size:12px}
.sw{display:inline-block;width:14px;height:14px;border-radius:3px;vertical-align:-2px;margin-right:4px;border:1px solid var(--line)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
details.plan{background:#fff;border:1px solid var(--line);border-radius:6px;margin:8px 0}
details.plan>summary{cursor:pointer;padding:8px 12px;list-style-position:outside;display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
details.plan>summary .title{color:var(--muted)}
details.plan>summary .dur{margin-left:auto;color:var(--muted);font-variant-numeric:tabular-nums}
details.plan[open]>summary{border-bottom:1px solid var(--line)}
details.plan:target,section.rep:target{box-shadow:0 0 0 3px #0969da55}
.plan-body{padding:4px 16px 16px}
section.rep{border-left:4px solid var(--line);padding-left:12px;margin:12px 0}
section.rep.pass{border-color:var(--pass)}section.rep.fail{border-color:var(--fail)}section.rep.known{border-color:#d4a72c}section.rep.error{border-color:var(--error)}
.reason{margin:6px 0;padding:6px 10px;background:#f6f8fa;border-radius:4px}
.known-note{margin:6px 0;padding:6px 10px;background:var(--known-bg);border-radius:4px}
.timeline{max-width:980px}
.axis,.lane{display:grid;grid-template-columns:200px 1fr;align-items:center}
.axis .ticks{position:relative;height:18px;font-size:11px;color:var(--muted);border-bottom:1px solid var(--line)}
.axis .ticks span{position:absolute;transform:translateX(-50%);white-space:nowrap}
.axis .ticks span:first-child{transform:none}.axis .ticks span:last-child{transform:translateX(-100%)}
.lane{min-height:26px}
.lane-label{font-size:12px;padding-right:8px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.lane-label small{color:var(--muted)}
.track{position:relative;height:26px;background:repeating-linear-gradient(90deg,transparent 0 calc(25% - 1px),#eaeef2 calc(25% - 1px) 25%)}
.groupspan{position:absolute;top:0;bottom:0;background:#ddf4ff;border-left:1px dashed #54aeff;border-right:1px dashed #54aeff}
.bar{position:absolute;top:4px;height:18px;min-width:3px;border-radius:3px;font-size:11px;color:#fff;padding:1px 4px;overflow:hidden;white-space:nowrap}
.bar.ok{background:var(--pass)}.bar.failed{background:var(--fail)}.bar.timeout{background:repeating-linear-gradient(135deg,var(--fail) 0 6px,#82071e 6px 12px)}.bar.notrun{background:#afb8c1}
.bar.grouped{box-shadow:inset 0 0 0 2px #0969da}
.stack{display:flex;height:22px;border-radius:4px;overflow:hidden;max-width:980px;border:1px solid var(--line)}
.seg{height:100%;min-width:1px}
.seg.environment,.sw.environment{background:#54aeff}.seg.steps,.sw.steps{background:var(--pass)}.seg.inventory,.sw.inventory{background:#d4a72c}.seg.checks,.sw.checks{background:#bf8700}.seg.teardown,.sw.teardown{background:#8c959f}.seg.other,.sw.other{background:#eaeef2}
.phase-legend{display:flex;flex-wrap:wrap;gap:4px 16px;list-style:none;padding:0;margin:6px 0;font-size:12px}
.snapshots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
table.inv{font-size:12px}
table.inv caption{text-align:left;font-weight:600;padding:2px 0;font-size:12px}
table.inv tr.new td{background:#dafbe1}
table.inv tr.changed td{background:#fff8c5}
table.inv tr.gone td{background:#ffebe9;text-decoration:line-through;color:var(--muted)}
table.assertions td.expected,table.assertions td.found{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;white-space:pre-wrap;word-break:break-word}
table.assertions tr.fail td:first-child{border-left:3px solid var(--fail)}
details.log,details.more{margin:4px 0}
details.log>summary,details.more>summary{cursor:pointer}
details.log pre{background:#1f2328;color:#e6edf3;padding:8px 10px;border-radius:4px;max-height:420px;overflow:auto;white-space:pre-wrap;word-break:break-all}
table.compare tr.regression td{background:#ffebe9}
table.compare tr.regression td:first-child{border-left:4px solid var(--fail)}
table.compare ul{margin:0;padding-left:16px}
li.regression{color:var(--fail);font-weight:600}
footer{max-width:1360px;margin:32px auto;padding:0 24px;color:var(--muted);font-size:12px}
"#;

/// Opens the `<details>` a link points at (a matrix cell, a plan's repetition).
const SCRIPT: &str = "function openTarget(){var e=document.getElementById(decodeURIComponent(location.hash.slice(1)));for(;e;e=e.parentElement){if(e.tagName==='DETAILS'){e.open=true}}}addEventListener('hashchange',openTarget);openTarget();";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\
         <footer>Written by the conformance harness (<code>harness report</code>). Self-contained: no external assets.</footer>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n",
        esc(title)
    )
}

/// `report.html` for `runs` (merged when several).
pub fn render(runs: &[Run], redact: Redact) -> String {
    let matrix = Matrix::of(runs);
    let mut body = String::new();
    header(&mut body, &matrix, redact);
    body.push_str("<main>\n");
    matrix_table(&mut body, &matrix, redact);
    body.push_str("<section id=\"plans\">\n<h2>Plans</h2>\n");
    for plan in &matrix.plans {
        plan_section(&mut body, plan, redact);
    }
    body.push_str("</section>\n</main>\n");
    page("Conformance report", &body)
}

fn header(out: &mut String, matrix: &Matrix<'_>, redact: Redact) {
    let runs: Vec<String> = matrix
        .run_ids
        .iter()
        .enumerate()
        .map(|(i, id)| format!("<code>{}</code>", esc(&redact.run_id(i, id))))
        .collect();
    let results: usize = matrix.plans.iter().map(|p| p.entries.len()).sum();
    let t = matrix.tally;
    let _ = writeln!(
        out,
        "<header>\n<h1>Conformance report</h1>\n<p class=\"meta\">{} {} · {} · {}</p>",
        if runs.len() == 1 { "Run" } else { "Runs" },
        runs.join(", "),
        super::view::count(matrix.plans.len(), "plan"),
        super::view::count(results, "result")
    );
    let _ = writeln!(
        out,
        "<ul class=\"counts\">\
         <li class=\"pass\">pass<b>{}</b></li>\
         <li class=\"fail\">fail<b>{}</b></li>\
         <li class=\"known\">of which known discrepancies<b>{}</b></li>\
         <li class=\"error\">error<b>{}</b></li>\
         <li class=\"skip\">skip<b>{}</b></li>\
         <li class=\"flaky\">flaky plans<b>{}</b></li>\
         <li class=\"unexpected\">not as expected<b>{}</b></li></ul>\n</header>",
        t.pass,
        t.fail,
        t.known_discrepancies,
        t.error,
        t.skip,
        matrix.flaky(),
        t.not_as_expected
    );
}

/// What a matrix cell's tooltip says: the reasons, the known discrepancy.
fn cell_title(plan: &Plan<'_>, redact: Redact) -> String {
    let mut lines: Vec<String> = Vec::new();
    for entry in &plan.entries {
        let r = entry.result;
        let mut line = entry.verdict().word().to_owned();
        if plan.entries.len() > 1 {
            line = format!("repetition {}: {line}", r.repetition);
        }
        if let Some(reason) = &r.reason {
            let _ = write!(line, ": {}", redact.text(reason));
        }
        if let Some(known) = &r.known_discrepancy {
            let _ = write!(
                line,
                " (known discrepancy: {})",
                redact.text(&known.because)
            );
        }
        if entry.surprise() {
            if let Err(why) = r.as_expected() {
                let _ = write!(line, " — not as documented: {}", redact.text(&why));
            }
        }
        lines.push(line);
    }
    lines.dedup();
    lines.join("\n")
}

fn matrix_table(out: &mut String, matrix: &Matrix<'_>, redact: Redact) {
    out.push_str("<section id=\"matrix\">\n<h2>Matrix</h2>\n<table class=\"matrix\">\n<thead><tr><th>scenario</th>");
    for b in &matrix.builders {
        let _ = write!(out, "<th>{}</th>", esc(b));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &matrix.rows {
        let _ = write!(out, "<tr><th scope=\"row\"><code>{}</code></th>", esc(row));
        for builder in &matrix.builders {
            let Some(plan) = matrix.cell(row, builder) else {
                out.push_str("<td class=\"cell none\">–</td>");
                continue;
            };
            let verdict = plan.verdict();
            let mut inner = esc(verdict.word());
            if plan.flaky() {
                let parts: Vec<String> = plan
                    .breakdown()
                    .iter()
                    .map(|(v, n)| format!("{} {n}", v.word()))
                    .collect();
                let _ = write!(
                    inner,
                    "<span class=\"reps\">{}</span>",
                    esc(&parts.join(" · "))
                );
            } else if plan.entries.len() > 1 {
                let _ = write!(inner, "<span class=\"reps\">×{}</span>", plan.entries.len());
            }
            if verdict == super::view::CellVerdict::One(Verdict::Known) {
                inner.push_str("<span class=\"note\">as documented</span>");
            }
            if plan.surprise() {
                inner.push_str("<span class=\"warn\" aria-label=\"not as documented\">⚠</span>");
            }
            let _ = write!(
                out,
                "<td class=\"cell {}\"><a href=\"#{}\" title=\"{}\">{inner}</a></td>",
                verdict.class(),
                plan.anchor(),
                esc(&cell_title(plan, redact))
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n<p class=\"legend\">");
    for (class, word) in [
        ("pass", "pass"),
        ("fail", "fail: the plugin broke a promise"),
        (
            "known",
            "known discrepancy: fails exactly as the scenario documents",
        ),
        ("error", "error: the harness or infrastructure broke"),
        ("skip", "skip: not run (hover for the reason)"),
        ("flaky", "flaky: repetitions ended differently"),
    ] {
        let _ = write!(
            out,
            "<span><i class=\"sw {class}\"></i>{}</span>",
            esc(word)
        );
    }
    out.push_str(
        "<span><span class=\"warn\">⚠</span> a known discrepancy that did not show as documented</span></p>\n</section>\n",
    );
}

fn plan_section(out: &mut String, plan: &Plan<'_>, redact: Redact) {
    let verdict = plan.verdict();
    let open = !matches!(
        verdict,
        super::view::CellVerdict::One(Verdict::Pass | Verdict::Skip)
    ) || plan.surprise();
    let first = plan.entries[0].result;
    let _ = writeln!(
        out,
        "<details class=\"plan {}\" id=\"{}\"{}>\n<summary><span class=\"badge {}\">{}</span> <code>{}</code> <span class=\"title\">{}</span>{}<span class=\"dur\">{}</span></summary>\n<div class=\"plan-body\">\n<p class=\"meta\"><code>{}</code> · profile {} · builder {}</p>",
        verdict.class(),
        plan.anchor(),
        if open { " open" } else { "" },
        verdict.class(),
        esc(verdict.word()),
        esc(plan.test),
        esc(&first.scenario),
        if plan.surprise() {
            "<span class=\"warn\">⚠ not as documented</span>"
        } else {
            ""
        },
        if first.status == Status::Skip {
            String::new()
        } else {
            esc(&redact.ms(plan.slowest().result.duration_ms))
        },
        esc(&first.file),
        esc(&first.profile),
        esc(&first.builder),
    );
    for entry in &plan.entries {
        repetition(out, entry, redact);
    }
    out.push_str("</div>\n</details>\n");
}

fn repetition(out: &mut String, entry: &Entry<'_>, redact: Redact) {
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

fn pct(part: u64, whole: u64) -> String {
    format!("{:.2}%", part as f64 * 100.0 / whole.max(1) as f64)
}

/// How a step ended, as a bar's class and words.
fn step_end(step: &StepRecord) -> (&'static str, String) {
    match (step.exit_code, step.timed_out) {
        (_, true) => ("timeout", "timed out".to_owned()),
        (Some(0), _) => ("ok", "exit 0".to_owned()),
        (Some(code), _) => ("failed", format!("exit {code}")),
        (None, false) => ("notrun", "did not run".to_owned()),
    }
}

/// The steps as bars on one time axis: one lane per step, parallel steps (same group) overlap
/// and share a band.
fn timeline(out: &mut String, steps: &[StepRecord], redact: Redact) {
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
fn phases(out: &mut String, r: &ScenarioResult, redact: Redact) {
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
    let segments = [
        ("environment", p.environment_ms, environment),
        (
            "steps",
            p.steps_ms,
            format!("steps {}", redact.ms(p.steps_ms)),
        ),
        (
            "inventory",
            p.inventory_ms,
            format!("registry readings {}", redact.ms(p.inventory_ms)),
        ),
        (
            "checks",
            p.checks_ms,
            format!("captures and assertions {}", redact.ms(p.checks_ms)),
        ),
        (
            "teardown",
            p.teardown_ms,
            format!("teardown {}", redact.ms(p.teardown_ms)),
        ),
        (
            "other",
            whole - recorded,
            format!("other {}", redact.ms(whole - recorded)),
        ),
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

fn assertion_rows(out: &mut String, r: &ScenarioResult, only_failed: bool, redact: Redact) {
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
    }
    out.push_str("</tbody></table>\n");
}

fn assertions(out: &mut String, r: &ScenarioResult, redact: Redact) {
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

/// One row of a registry reading: what it is (the key) and what it names.
struct Held {
    place: String,
    repository: String,
    tag: String,
    manifest: Option<String>,
    config: Option<String>,
    media_type: Option<String>,
    layers: Option<usize>,
}

fn held(holdings: &Holdings) -> BTreeMap<(String, String, String), Held> {
    let mut rows = BTreeMap::new();
    for (registry, repositories) in &holdings.registries {
        for (repository, tags) in repositories {
            if tags.is_empty() {
                let key = (registry.clone(), repository.clone(), String::new());
                rows.insert(
                    key,
                    Held {
                        place: registry.clone(),
                        repository: repository.clone(),
                        tag: String::new(),
                        manifest: None,
                        config: None,
                        media_type: None,
                        layers: None,
                    },
                );
            }
            for (tag, served) in tags {
                rows.insert(
                    (registry.clone(), repository.clone(), tag.clone()),
                    Held {
                        place: registry.clone(),
                        repository: repository.clone(),
                        tag: tag.clone(),
                        manifest: Some(served.manifest_digest.clone()),
                        config: served.config_digest.clone(),
                        media_type: served.media_type.clone(),
                        layers: served.layers,
                    },
                );
            }
        }
    }
    for (reference, id) in &holdings.daemon {
        // The daemon's rows sort after every registry's.
        rows.insert(
            ("~daemon".to_owned(), reference.clone(), String::new()),
            Held {
                place: "daemon".to_owned(),
                repository: reference.clone(),
                tag: String::new(),
                manifest: None,
                config: Some(id.clone()),
                media_type: None,
                layers: None,
            },
        );
    }
    rows
}

fn held_row(out: &mut String, class: &str, h: &Held, redact: Redact) {
    let digest = |d: &Option<String>| {
        d.as_deref().map_or(String::new(), |d| {
            format!("<code>{}</code>", esc(&redact.digest(d)))
        })
    };
    let tag = if h.place == "daemon" {
        String::new()
    } else if h.tag.is_empty() {
        "<i class=\"muted\">no tags</i>".to_owned()
    } else {
        esc(&h.tag)
    };
    let _ = writeln!(
        out,
        "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{tag}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&h.place),
        esc(&h.repository),
        digest(&h.manifest),
        digest(&h.config),
        esc(h.media_type.as_deref().map(short_media_type).unwrap_or_default()),
        h.layers.map(|l| l.to_string()).unwrap_or_default()
    );
}

/// A compact table per reading; rows new since the previous reading are green, changed ones
/// yellow, vanished ones struck through.
fn inventory(out: &mut String, snapshots: &[Snapshot], redact: Redact) {
    if snapshots.is_empty() {
        out.push_str("<p class=\"muted\">No readings recorded.</p>\n");
        return;
    }
    out.push_str("<div class=\"snapshots\">\n");
    let mut previous: Option<BTreeMap<(String, String, String), Held>> = None;
    for snapshot in snapshots {
        let _ = writeln!(
            out,
            "<table class=\"inv\"><caption>after {}</caption>",
            esc(snapshot
                .after
                .strip_prefix("after ")
                .unwrap_or(&snapshot.after))
        );
        out.push_str("<thead><tr><th>where</th><th>repository / reference</th><th>tag</th><th>manifest</th><th>config / image id</th><th>type</th><th>layers</th></tr></thead><tbody>\n");
        match (&snapshot.holdings, &snapshot.error) {
            (Some(holdings), _) => {
                let rows = held(holdings);
                if rows.is_empty() {
                    out.push_str("<tr><td colspan=\"7\" class=\"muted\">empty</td></tr>\n");
                }
                for (key, h) in &rows {
                    let class = match previous.as_ref().map(|p| p.get(key)) {
                        None => "",
                        Some(None) => "new",
                        Some(Some(before))
                            if before.manifest != h.manifest || before.config != h.config =>
                        {
                            "changed"
                        }
                        Some(Some(_)) => "same",
                    };
                    held_row(out, class, h, redact);
                }
                if let Some(before) = &previous {
                    for (key, h) in before {
                        if !rows.contains_key(key) {
                            held_row(out, "gone", h, redact);
                        }
                    }
                }
                previous = Some(rows);
            }
            (None, error) => {
                let _ = writeln!(
                    out,
                    "<tr><td colspan=\"7\" class=\"error\">reading failed: {}</td></tr>",
                    esc(&redact.text(error.as_deref().unwrap_or("no reading")))
                );
            }
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</div>\n");
}

fn logs(out: &mut String, steps: &[StepRecord], redact: Redact) {
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

fn images(out: &mut String, r: &ScenarioResult, redact: Redact) {
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

/// The CSS class of a status word from a comparison (`pass`, `Fail`, `known discrepancy`, …).
fn status_class(status: &str) -> &'static str {
    let s = status.to_ascii_lowercase();
    if s.contains("known") {
        "known"
    } else if s.contains("error") {
        "error"
    } else if s.contains("fail") {
        "fail"
    } else if s.contains("skip") {
        "skip"
    } else if s.contains("pass") {
        "pass"
    } else {
        "none"
    }
}

fn status_badge(status: Option<&str>) -> String {
    match status {
        Some(s) => format!(
            "<span class=\"badge {}\">{}</span>",
            status_class(s),
            esc(s)
        ),
        None => "<span class=\"muted\">absent</span>".to_owned(),
    }
}

/// A list of changes; `timings` are durations whatever their spelling, so redaction hides them
/// whole, and those within the noise are only counted.
fn change_list(changes: &[Change], timings: bool, redact: Redact) -> String {
    let shown: Vec<&Change> = changes.iter().filter(|c| c.significant).collect();
    let quiet = changes.len() - shown.len();
    let mut out = String::new();
    if shown.is_empty() && quiet == 0 {
        return "<span class=\"muted\">–</span>".to_owned();
    }
    if !shown.is_empty() {
        out.push_str("<ul>");
    }
    for c in &shown {
        let value = |v: &Option<String>| {
            v.as_deref()
                .map_or("<i class=\"muted\">absent</i>".to_owned(), |v| {
                    let v = if timings && redact == Redact::Volatile {
                        "<ms>".into()
                    } else {
                        redact.text(v)
                    };
                    format!("<code>{}</code>", esc(&v))
                })
        };
        let mut judged = Vec::new();
        if let Some(ratio) = c.ratio {
            judged.push(match redact {
                Redact::Volatile => "×<ratio>".to_owned(),
                Redact::Nothing => format!("×{ratio:.2}"),
            });
        }
        if let Some(verdict) = &c.verdict {
            judged.push(verdict.clone());
        }
        if let Some(note) = &c.note {
            judged.push(redact.text(note).into_owned());
        }
        let _ = write!(
            out,
            "<li{}>{}: {}{}{}</li>",
            if c.regression {
                " class=\"regression\""
            } else {
                ""
            },
            esc(&c.what),
            if c.before.is_some() {
                format!("{} → ", value(&c.before))
            } else {
                String::new()
            },
            value(&c.after),
            if judged.is_empty() {
                String::new()
            } else {
                format!(" <small>({})</small>", esc(&judged.join(", ")))
            }
        );
    }
    if !shown.is_empty() {
        out.push_str("</ul>");
    }
    if quiet > 0 {
        let _ = write!(
            out,
            "<span class=\"muted\">{} within the noise</span>",
            super::view::count(quiet, "timing")
        );
    }
    out
}

fn compare_rows(out: &mut String, plans: &[&super::compare_view::PlanChange], redact: Redact) {
    out.push_str("<table class=\"compare\"><thead><tr><th>plan</th><th>status</th><th>observations</th><th>timings</th></tr></thead><tbody>\n");
    for p in plans {
        let status = if p.before == p.after {
            status_badge(p.after.as_deref())
        } else {
            format!(
                "{} → {}",
                status_badge(p.before.as_deref()),
                status_badge(p.after.as_deref())
            )
        };
        let mut labels = String::new();
        if p.regression {
            labels.push_str(" <span class=\"badge fail\">status regression</span>");
        }
        if p.timing_regression {
            labels.push_str(" <span class=\"badge fail\">timing regression</span>");
        }
        let change = match (&p.change, &p.note) {
            (Some(change), Some(note)) => format!(
                "<br><small>{}: {}</small>",
                esc(change),
                esc(&redact.text(note))
            ),
            (Some(change), None) => format!("<br><small>{}</small>", esc(change)),
            (None, Some(note)) => format!("<br><small>{}</small>", esc(&redact.text(note))),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td><code>{}</code>{labels}</td><td>{status}{change}</td><td>{}</td><td>{}</td></tr>",
            if p.regression || p.timing_regression {
                "regression"
            } else if p.changed() {
                "changed"
            } else {
                "same"
            },
            esc(&p.test),
            change_list(&p.observations, false, redact),
            change_list(&p.timings, true, redact)
        );
    }
    out.push_str("</tbody></table>\n");
}

/// `compare.html`: the plans whose status, observations or timings changed between two runs,
/// regressions first and highlighted.
pub fn render_compare(view: &CompareView, redact: Redact) -> String {
    let runs = |ids: &[String], first: usize| {
        if ids.is_empty() {
            return "<i>unknown</i>".to_owned();
        }
        ids.iter()
            .enumerate()
            .map(|(i, id)| format!("<code>{}</code>", esc(&redact.run_id(first + i, id))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<header>\n<h1>Comparison</h1>\n<p class=\"meta\">base {} → new {} · {}</p>",
        runs(&view.base, 0),
        runs(&view.new, view.base.len()),
        super::view::count(view.plans.len(), "plan"),
    );
    if let Some(summary) = &view.summary {
        let _ = writeln!(
            body,
            "<p class=\"reason\">{}</p>",
            esc(&redact.text(summary))
        );
    }
    if let Some(method) = &view.method {
        let _ = writeln!(body, "<p class=\"meta\">{}</p>", esc(&redact.text(method)));
    }
    let _ = writeln!(
        body,
        "<ul class=\"counts\"><li class=\"fail\">regressions<b>{}</b></li><li class=\"known\">changed<b>{}</b></li><li class=\"pass\">unchanged<b>{}</b></li></ul>\n</header>\n<main>",
        view.regressions(),
        view.changed(),
        view.plans.len() - view.changed(),
    );
    let mut changed: Vec<_> = view.plans.iter().filter(|p| p.changed()).collect();
    changed.sort_by_key(|p| !(p.regression || p.timing_regression));
    let unchanged: Vec<_> = view.plans.iter().filter(|p| !p.changed()).collect();
    body.push_str("<section id=\"changes\">\n<h2>Changes</h2>\n");
    if view.plans.is_empty() {
        body.push_str("<p class=\"muted\">The comparison lists no plans this page can read.</p>\n");
    } else if changed.is_empty() {
        body.push_str("<p>Nothing changed between the runs.</p>\n");
    } else {
        compare_rows(&mut body, &changed, redact);
    }
    body.push_str("</section>\n");
    if !unchanged.is_empty() {
        let _ = writeln!(
            body,
            "<details class=\"more\"><summary>Unchanged plans ({})</summary>",
            unchanged.len()
        );
        compare_rows(&mut body, &unchanged, redact);
        body.push_str("</details>\n");
    }
    body.push_str("</main>\n");
    page("Comparison", &body)
}
