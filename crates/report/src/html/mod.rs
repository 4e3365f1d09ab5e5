//! `report.html` and `compare.html`: self-contained pages (inline CSS and a few lines of inline
//! script, no external assets, and a Content-Security-Policy that forbids any request), written
//! by hand with [`esc`] escaping every value taken from a result.
//!
//! `report.html`: the counts; the builder × scenario matrix, each cell coloured by how the plan
//! ended and linking to the plan's section; per plan and repetition, the steps as bars on one
//! time axis (parallel steps overlap), the phases as a stacked bar, the failed assertions with
//! what was expected and found, the registries' and the daemon's contents after each step, and
//! the steps' logs, folded.

use std::fmt::Write;

use super::Redact;
use crate::runs::Run;
use crate::view::{Matrix, Plan, Verdict};
use model::result::Status;

mod claims;
mod compare;
mod harness_steps;
mod inventory;
mod plan;
pub use compare::render_compare;
use inventory::*;
use plan::*;

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
table.differences{margin:4px 0 8px}table.differences td{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;white-space:pre-wrap;word-break:break-word}table.differences tr.allowed td{color:#888}
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
    render_with_claims(runs, redact, None)
}

/// `report.html` for `runs`, with the claims view after the matrix when there is one.
pub fn render_with_claims(
    runs: &[Run],
    redact: Redact,
    claims: Option<&model::claims::ClaimsView>,
) -> String {
    let matrix = Matrix::of(runs);
    let mut body = String::new();
    header(&mut body, &matrix, redact);
    body.push_str("<main>\n");
    matrix_table(&mut body, &matrix, redact);
    if let Some(claims) = claims {
        body.push_str(&claims::section(claims));
    }
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
    let _ = writeln!(
        out,
        "<header>\n<h1>Conformance report</h1>\n<p class=\"meta\">{}</p>",
        matrix.heading(&runs)
    );
    for (statement, results) in matrix.isolation() {
        let _ = writeln!(
            out,
            "<p class=\"meta isolation\">Isolation ({}): {}</p>",
            crate::view::count(results, "result"),
            esc(statement)
        );
    }
    let [pass, fail, known, error, skip, flaky, unexpected] = matrix.counts();
    let _ = writeln!(
        out,
        "<ul class=\"counts\">\
         <li class=\"pass\">pass<b>{pass}</b></li>\
         <li class=\"fail\">fail<b>{fail}</b></li>\
         <li class=\"known\">of which known discrepancies<b>{known}</b></li>\
         <li class=\"error\">error<b>{error}</b></li>\
         <li class=\"skip\">skip<b>{skip}</b></li>\
         <li class=\"flaky\">flaky plans<b>{flaky}</b></li>\
         <li class=\"unexpected\">not as expected<b>{unexpected}</b></li></ul>\n</header>",
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
            if verdict == crate::view::CellVerdict::One(Verdict::Known) {
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
        crate::view::CellVerdict::One(Verdict::Pass | Verdict::Skip)
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
