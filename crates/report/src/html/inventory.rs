//! The inventory readings of a plan in the HTML report: what each registry and the daemon held,
//! reading by reading.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Redact;
use crate::view::short_media_type;
use model::inventory::{Holdings, Snapshot};

use super::*;

pub(super) fn held(holdings: &Holdings) -> BTreeMap<(String, String, String), Held> {
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

pub(super) fn held_row(out: &mut String, class: &str, h: &Held, redact: Redact) {
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
pub(super) fn inventory(out: &mut String, snapshots: &[Snapshot], redact: Redact) {
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
