//! What Harness made of a plan's steps written as Harness steps: the builder it picked and why,
//! the role, the variables it set and what the local registries stood in for.

use std::fmt::Write;

use model::result::HarnessStepRecord;

use super::{esc, Redact};

pub(super) fn harness_steps(out: &mut String, steps: &[HarnessStepRecord], redact: Redact) {
    if steps.is_empty() {
        return;
    }
    out.push_str("<h4>Harness steps</h4>\n");
    for s in steps {
        let _ = writeln!(
            out,
            "<p><code>{}</code> ({}) on <b>{}</b> → role <code>{}</code>: {}</p>",
            esc(&redact.text(&s.step)),
            esc(&s.step_type),
            esc(&s.infrastructure),
            esc(&s.role),
            esc(&redact.text(&s.why))
        );
        out.push_str(
            "<table class=\"harness-vars\"><tr><th>variable Harness sets</th><th>value</th></tr>\n",
        );
        for (name, value) in &s.variables {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
                esc(&redact.text(name)),
                esc(&redact.text(value))
            );
        }
        out.push_str("</table>\n");
        for note in &s.stand_ins {
            let _ = writeln!(
                out,
                "<p class=\"muted\">Not checked here: {}</p>",
                esc(&redact.text(note))
            );
        }
    }
}
