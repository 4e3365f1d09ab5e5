//! What the plugin did, as observations that do not depend on volatile digests.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use model::inventory::{Holdings, Snapshot};
use model::result::{ScenarioResult, Status};

use super::{ObservationChange, Presence};

/// What an observation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservationKind {
    /// A tag a registry served after the last step that it did not serve, the same, before the
    /// first: `REGISTRY/REPOSITORY:TAG` (registry by its alias in the scenario).
    PushedTag,
    /// Such a tag's manifest: `REGISTRY/REPOSITORY:TAG: MEDIA TYPE, N layers`.
    Manifest,
    /// A reference the shared daemon held after the last step and not, the same, before the
    /// first.
    DaemonReference,
    /// A tarball's format: `PATH: docker-archive` (or `oci-layout`, `… with an OCI layout`,
    /// `not an image archive`).
    TarballFormat,
    /// The text of an assertion that did not pass.
    FailedAssertion,
}

impl std::fmt::Display for ObservationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ObservationKind::PushedTag => "pushed tag",
            ObservationKind::Manifest => "manifest",
            ObservationKind::DaemonReference => "daemon reference",
            ObservationKind::TarballFormat => "tarball format",
            ObservationKind::FailedAssertion => "failed assertion",
        })
    }
}

type Observation = (ObservationKind, String);

/// The observations on one side only; `None` when a side has no result that ran.
pub(super) fn compare(
    base: &[&ScenarioResult],
    new: &[&ScenarioResult],
) -> Option<Vec<ObservationChange>> {
    let base = Tally::of(base)?;
    let new = Tally::of(new)?;
    let inventories = base.inventory && new.inventory;
    let mut changes = Vec::new();
    for (kind, item) in base
        .seen
        .keys()
        .chain(new.seen.keys())
        .collect::<BTreeSet<_>>()
    {
        let key = (*kind, item.clone());
        let (change, seen_in, of, other) = match (base.seen.get(&key), new.seen.get(&key)) {
            (Some(_), Some(_)) | (None, None) => continue,
            (None, Some(n)) => (Presence::Added, *n, new.ran, &base),
            (Some(b), None) => (Presence::Removed, *b, base.ran, &new),
        };
        let from_inventory = matches!(
            kind,
            ObservationKind::PushedTag
                | ObservationKind::Manifest
                | ObservationKind::DaemonReference
        );
        if (from_inventory && !inventories) || other.lacks_manifest(*kind, item) {
            continue;
        }
        changes.push(ObservationChange {
            kind: *kind,
            item: item.clone(),
            change,
            seen_in,
            of,
        });
    }
    Some(changes)
}

/// A side's observations.
struct Tally {
    /// Each observation, with how many repetitions made it.
    seen: BTreeMap<Observation, usize>,
    /// How many repetitions ran (Pass or Fail).
    ran: usize,
    /// Whether any of them has an inventory reading (older results may not).
    inventory: bool,
}

impl Tally {
    /// `None` when no repetition ran.
    fn of(results: &[&ScenarioResult]) -> Option<Tally> {
        let ran: Vec<_> = results
            .iter()
            .filter(|r| matches!(r.status, Status::Pass | Status::Fail))
            .collect();
        if ran.is_empty() {
            return None;
        }
        let mut seen = BTreeMap::new();
        for result in &ran {
            for observation in of(result) {
                *seen.entry(observation).or_insert(0) += 1;
            }
        }
        Some(Tally {
            seen,
            ran: ran.len(),
            inventory: ran
                .iter()
                .any(|r| r.inventory.iter().any(|s| s.holdings.is_some())),
        })
    }

    /// Whether this side has the manifest item's tag but recorded no manifest for it (results
    /// older than media types and layer counts): then the manifests cannot be compared.
    fn lacks_manifest(&self, kind: ObservationKind, item: &str) -> bool {
        let Some((tag, _)) = item
            .split_once(": ")
            .filter(|_| kind == ObservationKind::Manifest)
        else {
            return false;
        };
        let prefix = format!("{tag}: ");
        self.seen
            .contains_key(&(ObservationKind::PushedTag, tag.to_owned()))
            && !self
                .seen
                .keys()
                .any(|(k, i)| *k == ObservationKind::Manifest && i.starts_with(&prefix))
    }
}

/// One result's observations.
pub(super) fn of(result: &ScenarioResult) -> BTreeSet<Observation> {
    let mut out = BTreeSet::new();
    let last = result
        .inventory
        .iter()
        .rev()
        .find_map(|s| s.holdings.as_ref());
    let empty = Holdings::default();
    let before = result
        .inventory
        .first()
        .filter(|s| s.after == "environment up")
        .and_then(|s: &Snapshot| s.holdings.as_ref())
        .unwrap_or(&empty);
    if let Some(last) = last {
        for (registry, contents) in &last.registries {
            for (repository, tags) in contents {
                for (tag, served) in tags {
                    let held_before = before
                        .registries
                        .get(registry)
                        .and_then(|c| c.get(repository))
                        .and_then(|t| t.get(tag))
                        .is_some_and(|b| b.manifest_digest == served.manifest_digest);
                    if held_before {
                        continue;
                    }
                    let name = format!("{registry}/{repository}:{tag}");
                    if served.media_type.is_some() || served.layers.is_some() {
                        let media_type = served.media_type.as_deref().unwrap_or("unknown type");
                        let layers = served.layers.map_or("unknown layers".to_owned(), |n| {
                            format!("{n} layer{}", super::plural(n))
                        });
                        out.insert((
                            ObservationKind::Manifest,
                            format!("{name}: {media_type}, {layers}"),
                        ));
                    }
                    out.insert((ObservationKind::PushedTag, name));
                }
            }
        }
        for (reference, id) in &last.daemon {
            if before.daemon.get(reference) != Some(id) {
                out.insert((ObservationKind::DaemonReference, unrandom(reference)));
            }
        }
    }
    for a in &result.assertions {
        if let Some(path) = a
            .assertion
            .strip_prefix("tarball ")
            .and_then(|rest| rest.strip_suffix(" is an image archive"))
        {
            let format = match a.status {
                Status::Pass => a.found.as_str(),
                _ => "not an image archive",
            };
            out.insert((ObservationKind::TarballFormat, format!("{path}: {format}")));
        }
        if a.status != Status::Pass {
            out.insert((ObservationKind::FailedAssertion, unrandom(&a.assertion)));
        }
    }
    out
}

/// The text with drone-docker's random temporary image names (16 lowercase letters, tagged
/// `latest`) replaced by `<random>`: they differ in every run.
fn unrandom(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.strip_suffix(":latest") {
            Some(name) if name.len() == 16 && name.bytes().all(|b| b.is_ascii_lowercase()) => {
                "<random>:latest"
            }
            _ => word,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::unrandom;

    #[test]
    fn random_temporary_names_are_replaced() {
        assert_eq!(
            unrandom("unexpected image in the shared daemon: hgwufduziyhvpzgg:latest after step b"),
            "unexpected image in the shared daemon: <random>:latest after step b"
        );
        assert_eq!(unrandom("local/app:latest"), "local/app:latest");
        assert_eq!(unrandom("shortname:latest"), "shortname:latest");
    }
}
