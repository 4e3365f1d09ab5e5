//! What a Build and Push step runs in: the stage's infrastructure and feature flags, its
//! variables, the connectors the step names, and the values of the `<+…>` expressions (and
//! placeholders such as `YOUR_DOCKER_REPO_NAME`) it uses.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Scalar;

/// The stage's build infrastructure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Infrastructure {
    /// Kubernetes cluster build infrastructure (`KubernetesDirect`).
    Kubernetes,
    /// Harness Cloud (`runtime: {type: Cloud}`).
    Cloud,
    /// Self-managed VM build infrastructure (`VM`).
    Vm,
    /// Local runner (`type: Docker`): a VM-type infrastructure to Harness.
    Local,
}

impl Infrastructure {
    pub fn name(self) -> &'static str {
        match self {
            Infrastructure::Kubernetes => "kubernetes",
            Infrastructure::Cloud => "cloud",
            Infrastructure::Vm => "vm",
            Infrastructure::Local => "local",
        }
    }

    /// Harness's CI manager treats everything but Kubernetes as a VM (`Type.VM`).
    pub fn is_kubernetes(self) -> bool {
        self == Infrastructure::Kubernetes
    }
}

/// The stage around Harness steps (a scenario's `harness_stage`, or a step's override).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub infrastructure: Infrastructure,
    /// Feature flags enabled for the account, e.g. `[CI_USE_BUILDX_ON_K8]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_flags: Vec<String>,
    /// Stage variables: every step's environment, e.g. `PLUGIN_SKIP_PUSH_IF_TAG_EXISTS: true`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, Scalar>,
    /// The connectors the steps name (`connectorRef`, `baseImageConnectorRefs`), each standing
    /// for one of the scenario's registries: `{YOUR_DOCKER_CONNECTOR: {registry: registry}}`.
    /// The registry's credentials (`registry_auth`) are the connector's.
    #[serde(default)]
    pub connectors: BTreeMap<String, Connector>,
    /// Values of what the steps leave to be filled, each replaced wherever it appears in the
    /// steps' values (longest first): a `<+…>` expression (`"<+pipeline.sequenceId>": "7"`) or
    /// a placeholder written in place of the user's own (`YOUR_DOCKER_REPO_NAME:
    /// ${registry}/conformance/app`). A file secret's expression stands for the path of the
    /// file Harness mounts (e.g. a file of the workspace).
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
}

/// A connector a step names, standing for a registry of the scenario.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connector {
    /// The scenario registry the connector reaches, by name (e.g. `registry`).
    pub registry: String,
}

/// The feature flag that makes Kubernetes stages use BuildX.
pub const BUILDX_ON_KUBERNETES: &str = "CI_USE_BUILDX_ON_K8";
