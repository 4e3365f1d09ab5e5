//! The claims section of `report.html`: what the documentation promises and what the run showed
//! about each promise (the view is computed by the `claims` crate; this renders it).

use std::fmt::Write;

use model::claims::{ClaimKind, ClaimsView, Coverage, Verdict};

use super::esc;
use crate::view::claim_statuses as statuses;

fn css(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Holds => "pass",
        Verdict::Broken => "fail",
        Verdict::KnownDiscrepancy => "known",
        Verdict::Undetermined => "error",
        Verdict::NotRun | Verdict::Unchecked => "skip",
    }
}

/// The HTML section: the headline and every claim, grouped by topic.
pub(super) fn section(view: &ClaimsView) -> String {
    let mut out = String::new();
    let counts = view.counts();
    let _ = writeln!(
        out,
        "<section id=\"claims\">\n<h2>Claims of the documentation</h2>\n<p>{}.</p>",
        esc(&counts.headline())
    );
    out.push_str(
        "<table class=\"claims\">\n<thead><tr><th>claim</th><th>verdict</th><th>the docs say</th><th>checked by</th><th>results</th></tr></thead>\n<tbody>\n",
    );
    let mut topic = "";
    for row in &view.rows {
        if row.topic != topic {
            topic = &row.topic;
            let _ = writeln!(out, "<tr><th colspan=\"5\">{}</th></tr>", esc(topic));
        }
        let source = match row.kind {
            ClaimKind::Claim => format!(
                "<q>{}</q><br><span class=\"muted\">{} — {}{}</span>",
                esc(&row.text),
                esc(&row.page),
                esc(&row.section),
                if row.builders.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", esc(&row.builders.join(", ")))
                }
            ),
            ClaimKind::Contradiction => format!(
                "{}<br><span class=\"muted\">contradiction between {}</span>",
                esc(&row.text),
                esc(&row.between.join(", "))
            ),
        };
        let checked = match &row.coverage {
            Coverage::Checked(files) => files
                .iter()
                .map(|f| format!("<code>{}</code>", esc(f)))
                .collect::<Vec<_>>()
                .join("<br>"),
            Coverage::Pending(why) => {
                format!("<span class=\"muted\">not yet checked: {}</span>", esc(why))
            }
            Coverage::NotCheckable(why) => {
                format!(
                    "<span class=\"muted\">not checkable here: {}</span>",
                    esc(why)
                )
            }
        };
        let _ = writeln!(
            out,
            "<tr id=\"claim-{id}\"><td><code>{id}</code></td><td><span class=\"badge {}\">{}</span></td><td>{source}</td><td>{checked}</td><td>{}</td></tr>",
            css(row.verdict),
            esc(row.verdict.label()),
            esc(&statuses(row)),
            id = esc(&row.id),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    out
}
