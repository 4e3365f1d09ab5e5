//! The comparison page (`compare.html`): what changed between runs, plan by plan.

use std::fmt::Write;

use super::Redact;
use crate::compare_view::{Change, CompareView};

use super::*;

pub(super) fn status_badge(status: Option<&str>) -> String {
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
pub(super) fn change_list(changes: &[Change], timings: bool, redact: Redact) -> String {
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
            crate::view::count(quiet, "timing")
        );
    }
    out
}

pub(super) fn compare_rows(
    out: &mut String,
    plans: &[&crate::compare_view::PlanChange],
    redact: Redact,
) {
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
        crate::view::count(view.plans.len(), "plan"),
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
