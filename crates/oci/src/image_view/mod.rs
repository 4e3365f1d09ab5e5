//! An image as a user of it sees it, normalised so that two builds of one context can be
//! compared: its file system (every file's type, mode, owner, size, content digest and link
//! target, the layers applied in order, whiteouts honoured), what its config makes of a
//! container (env, entrypoint, cmd, workdir, user, ports, labels, volumes, stop signal), its
//! layer count and history. [`diff`] compares two descriptions; [`Allow`] says which of the
//! differences a comparison may ignore. The reading is bounded like every other
//! ([`crate::archive::Limits`]): the entries count against `name_bytes`.

mod diff;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::archive::{Entry, EntryKind, Hidden, LayerEntries};
pub use diff::{diff, Allow, AllowPatternError, Difference, DifferenceKind};

/// A normalised image: what [`diff`] compares.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImageDescription {
    /// The file system, by absolute path (`/srv/app/run.sh`); the root itself is not listed.
    pub files: BTreeMap<String, Entry>,
    pub config: ConfigView,
    pub layer_count: usize,
    pub history: Vec<HistoryEntry>,
}

/// What the image config makes of a container. Empty values and absent ones are the same
/// (a runtime treats them alike).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConfigView {
    pub created: Option<String>,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// `NAME=value` entries, by name (a later entry for a name wins, as in a container).
    pub env: BTreeMap<String, String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub exposed_ports: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
}

/// One step of the image's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub created_by: String,
    pub empty_layer: bool,
}

impl ImageDescription {
    /// The description of an image from its config (JSON) and its layers' entries in order.
    pub fn new(config: &Value, layers: impl IntoIterator<Item = LayerEntries>) -> Self {
        let mut count = 0;
        let mut files = BTreeMap::new();
        for layer in layers {
            count += 1;
            apply(&mut files, layer);
        }
        ImageDescription {
            files: files
                .into_iter()
                .map(|(path, entry)| (format!("/{path}"), entry))
                .collect(),
            config: ConfigView::of(config),
            layer_count: count,
            history: history(config),
        }
    }
}

/// One layer applied on top of `files`: its whiteouts hide lower layers' files, then its
/// entries are written in order. A hard link to a regular file becomes that file (what a
/// container sees); one whose target is not there stays a hard link.
fn apply(files: &mut BTreeMap<String, Entry>, layer: LayerEntries) {
    for hidden in layer.hidden {
        // A whiteout hides its path and what is below; an opaque marker what is below.
        let dir = match hidden {
            Hidden::Path(path) => {
                files.remove(&path);
                path
            }
            Hidden::Below(dir) => dir,
        };
        if dir.is_empty() {
            files.clear();
            continue;
        }
        let prefix = format!("{dir}/");
        let doomed: Vec<String> = files
            .range(prefix.clone()..)
            .take_while(|(f, _)| f.starts_with(&prefix))
            .map(|(f, _)| f.clone())
            .collect();
        for f in doomed {
            files.remove(&f);
        }
    }
    for (path, entry) in layer.written {
        let entry = match (&entry.kind, &entry.link) {
            (EntryKind::Hardlink, Some(target)) => match files.get(target) {
                Some(file) if file.kind == EntryKind::File => file.clone(),
                _ => entry,
            },
            _ => entry,
        };
        files.insert(path, entry);
    }
}

impl ConfigView {
    /// The parts of an image config (`config.*`, `created`, `os`, `architecture`) a container
    /// is made from; what is missing or not of the expected type is absent.
    pub fn of(config: &Value) -> Self {
        let inner = &config["config"];
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let list = |v: &Value| {
            v.as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|i| i.as_str().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                })
                .filter(|items| !items.is_empty())
        };
        let keys = |v: &Value| {
            v.as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        let env = inner["Env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|e| match e.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (e.to_owned(), String::new()),
            })
            .collect();
        ConfigView {
            created: text(&config["created"]),
            os: text(&config["os"]),
            architecture: text(&config["architecture"]),
            user: text(&inner["User"]),
            workdir: text(&inner["WorkingDir"]),
            env,
            entrypoint: list(&inner["Entrypoint"]),
            cmd: list(&inner["Cmd"]),
            exposed_ports: keys(&inner["ExposedPorts"]),
            volumes: keys(&inner["Volumes"]),
            labels: crate::archive::config_labels(config),
            stop_signal: text(&inner["StopSignal"]),
        }
    }
}

fn history(config: &Value) -> Vec<HistoryEntry> {
    config["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| HistoryEntry {
            created_by: h["created_by"].as_str().unwrap_or_default().to_owned(),
            empty_layer: h["empty_layer"].as_bool().unwrap_or(false),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Entry {
        Entry {
            kind: EntryKind::File,
            mode: Some(0o644),
            uid: Some(0),
            gid: Some(0),
            size: Some(text.len() as u64),
            sha256: Some(crate::archive::sha256_digest(text.as_bytes())),
            link: None,
        }
    }

    fn layer(hidden: Vec<Hidden>, written: &[(&str, Entry)]) -> LayerEntries {
        LayerEntries {
            hidden,
            written: written
                .iter()
                .map(|(p, e)| (p.to_string(), e.clone()))
                .collect(),
        }
    }

    #[test]
    fn layers_apply_in_order_with_whiteouts_and_hard_links() {
        let config = serde_json::json!({
            "created": "2026-12-06T00:00:00Z",
            "config": {"Env": ["A=1", "B=x=y"], "WorkingDir": "", "Entrypoint": ["/run"],
                       "ExposedPorts": {"8080/tcp": {}}, "Labels": {"k": "v"}},
            "history": [{"created_by": "COPY"}, {"created_by": "ENV", "empty_layer": true}],
        });
        let lower = layer(
            vec![],
            &[
                ("etc/a", file("a")),
                ("opt/x/y", file("y")),
                ("gone", file("g")),
            ],
        );
        let mut link = file("");
        link.kind = EntryKind::Hardlink;
        link.size = None;
        link.sha256 = None;
        link.link = Some("etc/a".into());
        let upper = layer(
            vec![Hidden::Below("opt/x".into()), Hidden::Path("gone".into())],
            &[("opt/x/new", file("n")), ("etc/hard", link)],
        );
        let image = ImageDescription::new(&config, [lower, upper]);
        let paths: Vec<&str> = image.files.keys().map(String::as_str).collect();
        assert_eq!(paths, ["/etc/a", "/etc/hard", "/opt/x/new"]);
        assert_eq!(image.files["/etc/hard"], file("a"));
        assert_eq!(image.layer_count, 2);
        assert_eq!(image.config.env["B"], "x=y");
        assert_eq!(image.config.workdir, None);
        assert_eq!(image.config.entrypoint, Some(vec!["/run".to_owned()]));
        assert!(image.config.exposed_ports.contains("8080/tcp"));
        assert!(image.history[1].empty_layer);
    }
}
