//! Full accounting of what a plugin did. Before the first step and after every step, the
//! harness reads each of the scenario's registries in full (catalog, every tag, manifest and
//! config digests) and the shared daemon's image list. Everything the steps left there must be
//! accounted for by the scenario — named by an assertion, or declared as a leftover with a
//! reason — or it is an unexpected push: a Fail naming it and the step after which it appeared.
//!
//! What the harness put there itself (the base image for test Dockerfiles) is in the reading
//! taken before the first step, so it is excluded by construction, not by a name a plugin could
//! also use: a plugin that overwrites it shows up as a change.
//!
//! A reading lists at most [`MAX_READ_TAGS`] tags per registry, and the accounting names at most
//! [`MAX_LISTED`] unexpected items (then how many more): a plugin that pushes thousands of tags
//! gets its Fail in seconds, not a reading that takes minutes and a report nobody can read.

use std::collections::{BTreeMap, BTreeSet};

use model::inventory::{Holdings, Snapshot};

use crate::assertions::outcome;
use model::result::{AssertionOutcome, Status};
use oci::registry::MAX_READ_TAGS;
use runtime::{Environment, REGISTRY_PORT};
use scenario::{substitute, Assertion, Leftover, Scenario};

/// The most unexpected items of each kind (registry, daemon) the accounting names one by one;
/// the rest are counted.
pub const MAX_LISTED: usize = 20;

/// Reads every registry of the environment and the shared daemon.
pub async fn read(env: &Environment, after: impl Into<String>) -> Snapshot {
    let after = after.into();
    let mut holdings = Holdings {
        no_shared_daemon: !env.has_shared_daemon(),
        ..Default::default()
    };
    // Every registry and the daemon at once (each answers on its own); read as if in order.
    let registries = futures_util::future::join_all(
        env.registries()
            .iter()
            .map(|(name, registry)| async move { (name, registry.contents(MAX_READ_TAGS).await) }),
    );
    let (registries, daemon) = tokio::join!(registries, env.daemon_images());
    for (name, contents) in registries {
        match contents {
            Ok(reading) => {
                if reading.truncated {
                    holdings.truncated.insert(name.clone());
                }
                holdings.registries.insert(name.clone(), reading.contents);
            }
            Err(e) => return failed(after, e.to_string()),
        }
    }
    match daemon {
        Ok(images) => holdings.daemon = images,
        Err(e) => return failed(after, e.to_string()),
    }
    Snapshot {
        after,
        holdings: Some(holdings),
        error: None,
    }
}

fn failed(after: String, error: String) -> Snapshot {
    Snapshot {
        after,
        holdings: None,
        error: Some(error),
    }
}

/// Something found in a registry or the daemon, as the plugins name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    /// registry name, repository, tag (`None`: the repository has no tags).
    Registry(String, String, Option<String>),
    Daemon(String),
}

impl Item {
    fn describe(&self) -> String {
        match self {
            Item::Registry(registry, repository, Some(tag)) => {
                format!("{registry}:{REGISTRY_PORT}/{repository}:{tag}")
            }
            Item::Registry(registry, repository, None) => {
                format!("{registry}:{REGISTRY_PORT}/{repository} (a repository without tags)")
            }
            Item::Daemon(reference) => reference.clone(),
        }
    }
}

/// Every item of a reading with what identifies its content (digest or image id).
fn items(holdings: &Holdings) -> BTreeMap<Item, String> {
    let mut all = BTreeMap::new();
    for (registry, contents) in &holdings.registries {
        for (repository, tags) in contents {
            if tags.is_empty() {
                let item = Item::Registry(registry.clone(), repository.clone(), None);
                all.insert(item, String::new());
            }
            for (tag, served) in tags {
                let item = Item::Registry(registry.clone(), repository.clone(), Some(tag.clone()));
                all.insert(item, served.manifest_digest.clone());
            }
        }
    }
    for (reference, id) in &holdings.daemon {
        all.insert(Item::Daemon(reference.clone()), id.clone());
    }
    all
}

/// `name` → `name:latest`, as the daemon lists references.
fn with_tag(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    }
}

/// What the scenario names: by its assertions and its declared leftovers.
struct Named<'a> {
    scenario: &'a Scenario,
    tags: BTreeSet<(String, String, String)>,
    repositories: BTreeSet<(String, String)>,
    daemon: BTreeSet<String>,
}

impl<'a> Named<'a> {
    fn of(scenario: &'a Scenario, vars: &BTreeMap<String, String>) -> Named<'a> {
        let default_registry = scenario.registries[0].as_str();
        let registry = |r: &Option<String>| r.clone().unwrap_or_else(|| default_registry.into());
        let mut named = Named {
            scenario,
            tags: BTreeSet::new(),
            repositories: BTreeSet::new(),
            daemon: BTreeSet::new(),
        };
        // What names a tag (and, for an assertion, its repository), a repository, an image.
        enum Names<'s> {
            Tag(&'s Option<String>, &'s String, &'s String, bool),
            Repository(&'s Option<String>, &'s String),
            Image(&'s String),
        }
        let by_assertions = scenario.assertions.iter().flat_map(|a| match a {
            Assertion::TagInRegistry {
                repository,
                tag,
                registry,
                ..
            } => vec![Names::Tag(registry, repository, tag, true)],
            // Both images compared, as a tag_in_registry names each.
            Assertion::ImagesEquivalent(eq) => [&eq.a, &eq.b]
                .map(|i| Names::Tag(&i.registry, &i.repository, &i.tag, true))
                .into(),
            // The assertion itself judges whatever is there.
            Assertion::NoTagsInRegistry {
                repository,
                registry,
            }
            | Assertion::TagsInRegistry {
                repository,
                registry,
                ..
            } => vec![Names::Repository(registry, repository)],
            Assertion::ImageInDaemon(reference) | Assertion::NoImageInDaemon(reference) => {
                vec![Names::Image(reference)]
            }
            _ => vec![],
        });
        let by_leftovers = scenario.leftovers.iter().map(|l| match l {
            Leftover::RegistryTag {
                repository,
                tag,
                registry,
                ..
            } => Names::Tag(registry, repository, tag, false),
            Leftover::DaemonImage { reference, .. } => Names::Image(reference),
        });
        for names in by_assertions.chain(by_leftovers) {
            match names {
                Names::Tag(r, repository, tag, with_repository) => {
                    named
                        .tags
                        .insert((registry(r), repository.clone(), tag.clone()));
                    if with_repository {
                        named.repositories.insert((registry(r), repository.clone()));
                    }
                }
                Names::Repository(r, repository) => {
                    named.repositories.insert((registry(r), repository.clone()));
                }
                Names::Image(reference) => {
                    named.daemon.insert(with_tag(&substitute(reference, vars)));
                }
            }
        }
        named
    }

    fn accounts_for(&self, item: &Item) -> bool {
        match item {
            Item::Registry(registry, repository, tag) => {
                let key = (registry.clone(), repository.clone());
                self.loosened(registry)
                    || match tag {
                        // A repository `no_tags_in_registry` names is judged by that assertion.
                        Some(tag) => {
                            self.tags
                                .contains(&(registry.clone(), repository.clone(), tag.clone()))
                                || (self.repositories.contains(&key) && !self.tag_named_in(&key))
                        }
                        None => self.repositories.contains(&key),
                    }
            }
            Item::Daemon(reference) => self.loosened("daemon") || self.daemon.contains(reference),
        }
    }

    /// Whether some assertion or leftover names a tag of this repository (then the repository
    /// is not wholly covered by a `no_tags_in_registry`).
    fn tag_named_in(&self, key: &(String, String)) -> bool {
        self.tags
            .iter()
            .any(|(r, repo, _)| (r.as_str(), repo.as_str()) == (key.0.as_str(), key.1.as_str()))
    }

    fn loosened(&self, what: &str) -> bool {
        self.scenario.loosen_accounting.contains_key(what)
    }

    fn strict_registries(&self) -> bool {
        self.scenario.registries.iter().any(|r| !self.loosened(r))
    }
}

/// The accounting's outcomes: one Fail per unexpected item (what, and after which step it
/// appeared), else one Pass for the registries and one for the daemon (unless loosened). An
/// unreadable snapshot is an Error: nothing is known then.
pub fn account(
    scenario: &Scenario,
    vars: &BTreeMap<String, String>,
    snapshots: &[Snapshot],
) -> Vec<AssertionOutcome> {
    let what = "the registries and the shared daemon hold only what the scenario names";
    let expected = "only what the scenario's assertions and leftovers name";
    if let Some(broken) = snapshots.iter().find(|s| s.error.is_some()) {
        return vec![outcome(
            what,
            Status::Error,
            expected,
            format!(
                "cannot read the registries and the daemon after {}: {}",
                broken.after,
                broken.error.as_deref().unwrap_or_default()
            ),
        )];
    }
    let Some((baseline, later)) = snapshots.split_first() else {
        return vec![outcome(what, Status::Error, expected, "nothing was read")];
    };
    let baseline = baseline.holdings.as_ref().map(items).unwrap_or_default();
    // Each item that differs from the baseline, with the first reading it showed up in.
    let mut appeared: BTreeMap<Item, (&str, String)> = BTreeMap::new();
    for snapshot in later {
        let Some(holdings) = &snapshot.holdings else {
            continue;
        };
        for (item, content) in items(holdings) {
            if baseline.get(&item) != Some(&content) {
                appeared
                    .entry(item)
                    .or_insert((snapshot.after.as_str(), content));
            }
        }
    }
    let named = Named::of(scenario, vars);
    // Registries that held more than a reading lists: only the steps can have filled them (the
    // baseline holds what the harness pushed), and what is beyond the limit goes unnamed.
    let mut outcomes: Vec<AssertionOutcome> = Vec::new();
    let mut overfull = BTreeSet::new();
    for snapshot in later {
        let Some(holdings) = &snapshot.holdings else {
            continue;
        };
        for registry in &holdings.truncated {
            if overfull.insert(registry) && !named.loosened(registry) {
                outcomes.push(outcome(
                    format!(
                        "registry {registry} holds more than {MAX_READ_TAGS} tags after {}",
                        snapshot.after
                    ),
                    Status::Fail,
                    expected,
                    format!(
                        "more than {MAX_READ_TAGS} tags and tagless repositories: the reading \
                         listed the first {MAX_READ_TAGS} and stopped"
                    ),
                ));
            }
        }
    }
    // Up to MAX_LISTED of each kind named (a flood of pushes must not hide a daemon image),
    // the rest counted.
    let mut listed = [0usize; 2];
    let mut unlisted = 0;
    let unexpected: Vec<_> = appeared
        .iter()
        .filter(|(item, _)| !named.accounts_for(item))
        .filter(|(item, _)| {
            let kind = &mut listed[usize::from(matches!(item, Item::Daemon(_)))];
            *kind += 1;
            if *kind > MAX_LISTED {
                unlisted += 1;
            }
            *kind <= MAX_LISTED
        })
        .collect();
    outcomes.extend(unexpected.into_iter().map(|(item, (after, content))| {
        let (kind, found) = match item {
            Item::Daemon(_) => ("unexpected image in the shared daemon", content.clone()),
            Item::Registry(..) if baseline.contains_key(item) => (
                "unexpected push",
                format!("{content}, overwriting what the harness put there"),
            ),
            Item::Registry(_, _, Some(_)) => ("unexpected push", content.clone()),
            Item::Registry(_, _, None) => ("unexpected push", "no tags".to_owned()),
        };
        outcome(
            format!("{kind}: {} after {after}", item.describe()),
            Status::Fail,
            expected,
            found,
        )
    }));
    if unlisted > 0 {
        outcomes.push(outcome(
            format!("{unlisted} more unexpected item(s)"),
            Status::Fail,
            expected,
            format!(
                "the first {MAX_LISTED} of each kind are named above; the inventory in the \
                 result lists every one read"
            ),
        ));
    }
    if outcomes.is_empty() {
        let count = |daemon: bool| {
            appeared
                .keys()
                .filter(|i| matches!(i, Item::Daemon(_)) == daemon)
                .count()
        };
        if named.strict_registries() {
            outcomes.push(outcome(
                "everything in the registries is accounted for",
                Status::Pass,
                expected,
                format!("{} new tag(s), each named", count(false)),
            ));
        }
        let no_daemon = snapshots
            .iter()
            .any(|s| s.holdings.as_ref().is_some_and(|h| h.no_shared_daemon));
        if no_daemon {
            outcomes.push(outcome(
                "no shared daemon to account for",
                Status::Pass,
                expected,
                "the plan has none: no step could use one (daemonless roles, or their own daemon)",
            ));
        } else if !named.loosened("daemon") {
            outcomes.push(outcome(
                "everything in the shared daemon is accounted for",
                Status::Pass,
                expected,
                format!("{} new image(s), each named", count(true)),
            ));
        }
    }
    outcomes
}
