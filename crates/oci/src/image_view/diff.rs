//! Two image descriptions compared: pure data in, the differences out, each at a key an
//! allow-list can name.
//!
//! Keys: a config key (`created`, `os`, `architecture`, `user`, `workdir`, `entrypoint`, `cmd`,
//! `stop_signal`, `env.NAME`, `labels.KEY`, `exposed_ports.PORT`, `volumes.PATH`),
//! `layer_count`, `history.N` (0-based), or a file's absolute path. Their sections (the part
//! before the first `.`) are [`scenario::IMAGE_DIFFERENCE_SECTIONS`].

use std::collections::{BTreeMap, BTreeSet};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use thiserror::Error;

use super::{ConfigView, HistoryEntry, ImageDescription};
use crate::archive::{Entry, EntryKind};
pub use model::result::{Difference, DifferenceKind};

/// Every difference between `left` and `right`: config first, then the layer count, the
/// history and the files, each part in key order. None is marked allowed.
pub fn diff(left: &ImageDescription, right: &ImageDescription) -> Vec<Difference> {
    let mut out = Vec::new();
    config(&left.config, &right.config, &mut out);
    if left.layer_count != right.layer_count {
        push(
            &mut out,
            DifferenceKind::LayerCount,
            "layer_count".to_owned(),
            Some(left.layer_count.to_string()),
            Some(right.layer_count.to_string()),
        );
    }
    history(&left.history, &right.history, &mut out);
    files(&left.files, &right.files, &mut out);
    out
}

fn push(
    out: &mut Vec<Difference>,
    kind: DifferenceKind,
    key: String,
    left: Option<String>,
    right: Option<String>,
) {
    out.push(Difference {
        kind,
        key,
        left,
        right,
        allowed_by: None,
    });
}

fn config(left: &ConfigView, right: &ConfigView, out: &mut Vec<Difference>) {
    let words = |v: &Option<Vec<String>>| v.as_ref().map(|v| json(v));
    let scalars = [
        ("created", left.created.clone(), right.created.clone()),
        ("os", left.os.clone(), right.os.clone()),
        (
            "architecture",
            left.architecture.clone(),
            right.architecture.clone(),
        ),
        ("user", left.user.clone(), right.user.clone()),
        ("workdir", left.workdir.clone(), right.workdir.clone()),
        (
            "entrypoint",
            words(&left.entrypoint),
            words(&right.entrypoint),
        ),
        ("cmd", words(&left.cmd), words(&right.cmd)),
        (
            "stop_signal",
            left.stop_signal.clone(),
            right.stop_signal.clone(),
        ),
    ];
    for (key, l, r) in scalars {
        if l != r {
            push(out, DifferenceKind::Config, key.to_owned(), l, r);
        }
    }
    maps("env", &left.env, &right.env, out);
    maps("labels", &left.labels, &right.labels, out);
    sets(
        "exposed_ports",
        "exposed",
        &left.exposed_ports,
        &right.exposed_ports,
        out,
    );
    sets("volumes", "a volume", &left.volumes, &right.volumes, out);
}

fn json(words: &[String]) -> String {
    serde_json::to_string(words).unwrap_or_default()
}

fn maps(
    section: &str,
    left: &BTreeMap<String, String>,
    right: &BTreeMap<String, String>,
    out: &mut Vec<Difference>,
) {
    let keys: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    for key in keys {
        let (l, r) = (left.get(key), right.get(key));
        if l != r {
            push(
                out,
                DifferenceKind::Config,
                format!("{section}.{key}"),
                l.cloned(),
                r.cloned(),
            );
        }
    }
}

fn sets(
    section: &str,
    present: &str,
    left: &BTreeSet<String>,
    right: &BTreeSet<String>,
    out: &mut Vec<Difference>,
) {
    for key in left.symmetric_difference(right) {
        let side = |s: &BTreeSet<String>| s.contains(key).then(|| present.to_owned());
        push(
            out,
            DifferenceKind::Config,
            format!("{section}.{key}"),
            side(left),
            side(right),
        );
    }
}

fn history(left: &[HistoryEntry], right: &[HistoryEntry], out: &mut Vec<Difference>) {
    let shown = |h: Option<&HistoryEntry>| {
        h.map(|h| match h.empty_layer {
            true => format!("{} (empty layer)", h.created_by),
            false => h.created_by.clone(),
        })
    };
    for i in 0..left.len().max(right.len()) {
        let (l, r) = (left.get(i), right.get(i));
        if l != r {
            push(
                out,
                DifferenceKind::History,
                format!("history.{i}"),
                shown(l),
                shown(r),
            );
        }
    }
}

fn files(
    left: &BTreeMap<String, Entry>,
    right: &BTreeMap<String, Entry>,
    out: &mut Vec<Difference>,
) {
    let paths: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    for path in paths {
        let (l, r) = match (left.get(path), right.get(path)) {
            (Some(l), Some(r)) if l == r => continue,
            (Some(l), Some(r)) if l.kind == r.kind => aspects(l, r),
            (l, r) => (l.map(entry), r.map(entry)),
        };
        push(out, DifferenceKind::File, path.clone(), l, r);
    }
}

fn mode(m: Option<u32>) -> String {
    m.map_or("?".to_owned(), |m| format!("{m:04o}"))
}

fn owner(e: &Entry) -> String {
    let id = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
    format!("{}:{}", id(e.uid), id(e.gid))
}

fn content(e: &Entry) -> String {
    let size = e.size.map_or("?".to_owned(), |s| format!("{s} B"));
    let digest = e.sha256.as_deref().unwrap_or("?");
    // Enough of the digest to tell two contents apart in a table.
    let short = digest.get(..19).unwrap_or(digest);
    format!("{size}, {short}…")
}

/// An entry in full: `file 0644 0:0, 5 B, sha256:2cf24dba5fb0…`.
fn entry(e: &Entry) -> String {
    let link = || e.link.as_deref().unwrap_or("?");
    match e.kind {
        EntryKind::File => format!("file {} {}, {}", mode(e.mode), owner(e), content(e)),
        EntryKind::Dir => format!("directory {} {}", mode(e.mode), owner(e)),
        EntryKind::Symlink => format!("symlink to {} {}", link(), owner(e)),
        EntryKind::Hardlink => format!("hard link to /{} {}", link(), owner(e)),
        EntryKind::Other(flag) => {
            format!(
                "special file (tar type {flag}) {} {}",
                mode(e.mode),
                owner(e)
            )
        }
    }
}

/// What differs between two entries of the same kind, each side in the same words.
fn aspects(l: &Entry, r: &Entry) -> (Option<String>, Option<String>) {
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut aspect = |differs: bool, f: &dyn Fn(&Entry) -> String| {
        if differs {
            left.push(f(l));
            right.push(f(r));
        }
    };
    aspect(l.mode != r.mode, &|e| format!("mode {}", mode(e.mode)));
    aspect((l.uid, l.gid) != (r.uid, r.gid), &|e| {
        format!("owner {}", owner(e))
    });
    aspect((l.size, &l.sha256) != (r.size, &r.sha256), &content);
    aspect(l.link != r.link, &|e| {
        format!("to {}", e.link.as_deref().unwrap_or("?"))
    });
    (Some(left.join(", ")), Some(right.join(", ")))
}

/// Which differences may be ignored: glob patterns (`*` within a path component or label key,
/// `**` across components, `?`, `[…]`, `{a,b}`) matched against a difference's key or its
/// section, e.g. `history` (every history entry), `labels.io.buildah.version`,
/// `labels.org.opencontainers.*`, `/var/cache/**`.
#[derive(Debug, Clone)]
pub struct Allow {
    patterns: Vec<String>,
    set: GlobSet,
}

/// An allow-list pattern that is not a glob.
#[derive(Debug, Error)]
#[error("allow pattern `{pattern}` is not a glob: {message}")]
pub struct AllowPatternError {
    pub pattern: String,
    pub message: String,
}

impl Allow {
    pub fn new(patterns: &[String]) -> Result<Allow, AllowPatternError> {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| AllowPatternError {
                    pattern: pattern.clone(),
                    message: e.kind().to_string(),
                })?;
            set.add(glob);
        }
        let set = set.build().map_err(|e| AllowPatternError {
            pattern: patterns.join(", "),
            message: e.to_string(),
        })?;
        Ok(Allow {
            patterns: patterns.to_vec(),
            set,
        })
    }

    /// The first pattern that allows a difference at `key` (matching the key, or its section
    /// for a config key, `layer_count` or `history.N`).
    pub fn allowing(&self, key: &str) -> Option<&str> {
        let mut found = self.set.matches(key);
        if !key.starts_with('/') {
            let section = key.split('.').next().unwrap_or(key);
            found.extend(self.set.matches(section));
        }
        found.into_iter().min().map(|i| self.patterns[i].as_str())
    }

    /// The differences, each marked with the pattern that allows it.
    pub fn mark(&self, differences: &mut [Difference]) {
        for d in differences {
            d.allowed_by = self.allowing(&d.key).map(str::to_owned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str, mode: u32) -> Entry {
        Entry {
            kind: EntryKind::File,
            mode: Some(mode),
            uid: Some(0),
            gid: Some(0),
            size: Some(text.len() as u64),
            sha256: Some(crate::archive::sha256_digest(text.as_bytes())),
            link: None,
        }
    }

    fn dir(uid: u64) -> Entry {
        Entry {
            kind: EntryKind::Dir,
            mode: Some(0o755),
            uid: Some(uid),
            gid: Some(uid),
            size: None,
            sha256: None,
            link: None,
        }
    }

    fn symlink(to: &str) -> Entry {
        Entry {
            kind: EntryKind::Symlink,
            mode: None,
            uid: Some(0),
            gid: Some(0),
            size: None,
            sha256: None,
            link: Some(to.to_owned()),
        }
    }

    fn image(tweak: impl FnOnce(&mut ImageDescription)) -> ImageDescription {
        let mut image = ImageDescription {
            files: [
                ("/srv/app", dir(0)),
                ("/srv/app/run.sh", file("#!/bin/sh\n", 0o755)),
                ("/srv/app/config", file("mode=production\n", 0o640)),
                ("/srv/app/current", symlink("run.sh")),
                ("/var/cache/apk/index", file("1", 0o644)),
            ]
            .into_iter()
            .map(|(p, e)| (p.to_owned(), e))
            .collect(),
            config: ConfigView {
                created: Some("2026-12-06T10:00:00Z".into()),
                os: Some("linux".into()),
                architecture: Some("amd64".into()),
                user: Some("1000:1000".into()),
                workdir: Some("/srv/app".into()),
                env: [("PATH", "/bin"), ("APP_MODE", "production")]
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
                entrypoint: Some(vec!["/srv/app/run.sh".into()]),
                cmd: Some(vec!["--serve".into()]),
                exposed_ports: ["8080/tcp".to_owned()].into(),
                volumes: BTreeSet::new(),
                labels: [("org.conformance.fixture", "equivalence")]
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
                stop_signal: None,
            },
            layer_count: 3,
            history: vec![
                HistoryEntry {
                    created_by: "/bin/sh -c #(nop) ADD file:busybox in /".into(),
                    empty_layer: false,
                },
                HistoryEntry {
                    created_by: "WORKDIR /srv/app".into(),
                    empty_layer: false,
                },
            ],
        };
        tweak(&mut image);
        image
    }

    fn allow(patterns: &[&str]) -> Allow {
        Allow::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn identical_images_do_not_differ() {
        assert_eq!(diff(&image(|_| {}), &image(|_| {})), []);
    }

    #[test]
    fn every_kind_of_difference_with_its_key_and_both_sides() {
        let left = image(|_| {});
        let right = image(|i| {
            i.config.created = Some("2026-12-06T10:00:07Z".into());
            i.config.workdir = Some("/".into());
            i.config.user = None;
            i.config.env.insert("APP_MODE".into(), "debug".into());
            i.config.cmd = None;
            i.config.exposed_ports.insert("9090/udp".into());
            i.config.volumes.insert("/data".into());
            i.config
                .labels
                .insert("io.buildah.version".into(), "1.39.3".into());
            i.config.stop_signal = Some("SIGQUIT".into());
            i.layer_count = 4;
            i.history[1].created_by = "RUN mkdir -p /srv/app".into();
            i.history.push(HistoryEntry {
                created_by: "USER 1000:1000".into(),
                empty_layer: true,
            });
            i.files.get_mut("/srv/app/config").unwrap().mode = Some(0o644);
            *i.files.get_mut("/srv/app/run.sh").unwrap() = file("#!/bin/sh -e\n", 0o755);
            *i.files.get_mut("/srv/app").unwrap() = dir(1000);
            *i.files.get_mut("/srv/app/current").unwrap() = file("run.sh", 0o644);
            i.files.remove("/var/cache/apk/index");
            i.files
                .insert("/var/cache/apk/other".into(), file("2", 0o600));
        });
        insta::assert_yaml_snapshot!(diff(&left, &right));
    }

    #[test]
    fn the_allow_list_matches_keys_sections_and_path_globs() {
        let left = image(|_| {});
        let right = image(|i| {
            i.config.created = None;
            i.config
                .labels
                .insert("io.buildah.version".into(), "1.39.3".into());
            i.config
                .labels
                .insert("org.opencontainers.image.created".into(), "now".into());
            i.config
                .labels
                .insert("org.conformance.fixture".into(), "other".into());
            i.config.env.insert("APP_MODE".into(), "debug".into());
            i.history.pop();
            i.files.remove("/var/cache/apk/index");
            i.files.get_mut("/srv/app/config").unwrap().mode = Some(0o600);
        });
        let mut differences = diff(&left, &right);
        allow(&[
            "created",
            "history",
            "labels.io.buildah.version",
            "labels.org.opencontainers.*",
            "/var/cache/**",
            // `*` stays within a path component: it does not allow /srv/app/config.
            "/srv/*",
        ])
        .mark(&mut differences);
        insta::assert_yaml_snapshot!(differences);
    }

    #[test]
    fn a_pattern_that_is_not_a_glob_is_refused_naming_it() {
        let error = Allow::new(&["/var/[cache".to_owned()]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("allow pattern `/var/[cache` is not a glob"),
            "{error}"
        );
    }

    #[test]
    fn every_key_is_in_a_section_the_scenario_language_knows() {
        let left = image(|_| {});
        let right = image(|i| {
            i.config = ConfigView {
                volumes: ["/v".to_owned()].into(),
                ..ConfigView::default()
            };
            i.layer_count = 1;
            i.history.clear();
        });
        for d in diff(&left, &right) {
            let section = d.key.split('.').next().unwrap();
            assert!(
                scenario::IMAGE_DIFFERENCE_SECTIONS.contains(&section),
                "{}",
                d.key
            );
        }
    }
}
