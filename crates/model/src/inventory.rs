//! What the registries and the shared daemon held: the inventory readings the accounting takes
//! before the first step and after every step, kept in each result.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What a registry serves for one tag, as the inventory records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedTag {
    pub manifest_digest: String,
    /// `None` when the manifest names no config the harness can read (an artifact, a foreign
    /// platform); the manifest digest still identifies what was pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    /// The (platform) manifest's media type and layer count, when the client could read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
}

/// Everything a registry serves: repository → tag → what the tag names. A repository with no
/// tags is listed with an empty map (the catalog names it, e.g. after a push by digest).
pub type RegistryContents = BTreeMap<String, BTreeMap<String, ServedTag>>;

/// What the registries and the shared daemon held at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Holdings {
    /// Each registry's contents, by registry name.
    pub registries: BTreeMap<String, RegistryContents>,
    /// The shared daemon's tagged images: reference → image id.
    pub daemon: BTreeMap<String, String>,
    /// The registries that held more than a reading lists (the registry client's limit): their contents
    /// above are the first ones only.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub truncated: BTreeSet<String>,
    /// The plan has no shared daemon (no step could use one): `daemon` is empty because there
    /// was nothing to read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_shared_daemon: bool,
}

/// A reading, taken when the environment came up or when a step (or parallel group) ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// `environment up` (the baseline), `step NAME` or `parallel group NAME`.
    pub after: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdings: Option<Holdings>,
    /// Why the reading could not be taken (the harness's problem: an Error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
