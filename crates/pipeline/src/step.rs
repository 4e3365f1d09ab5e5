//! A Build and Push step as written in a Harness pipeline (`- step: {type: …, spec: …}`).
//! Every field Harness documents for these steps is known; any other is an error naming it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Scalar;

/// The step types this crate reads: the native Build and Push steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum StepType {
    BuildAndPushDockerRegistry,
    #[serde(rename = "BuildAndPushECR")]
    BuildAndPushEcr,
    #[serde(rename = "BuildAndPushGCR")]
    BuildAndPushGcr,
    #[serde(rename = "BuildAndPushGAR")]
    BuildAndPushGar,
    #[serde(rename = "BuildAndPushACR")]
    BuildAndPushAcr,
}

impl StepType {
    /// Every type, as written in YAML.
    pub const ALL: [&'static str; 5] = [
        "BuildAndPushDockerRegistry",
        "BuildAndPushECR",
        "BuildAndPushGCR",
        "BuildAndPushGAR",
        "BuildAndPushACR",
    ];

    pub fn name(self) -> &'static str {
        match self {
            StepType::BuildAndPushDockerRegistry => Self::ALL[0],
            StepType::BuildAndPushEcr => Self::ALL[1],
            StepType::BuildAndPushGcr => Self::ALL[2],
            StepType::BuildAndPushGar => Self::ALL[3],
            StepType::BuildAndPushAcr => Self::ALL[4],
        }
    }

    /// The plugin variant the step runs, appended to the builder's role: `""` (Docker
    /// registry), `-ecr`, `-gcr`, `-gar`, `-acr`.
    pub fn role_suffix(self) -> &'static str {
        match self {
            StepType::BuildAndPushDockerRegistry => "",
            StepType::BuildAndPushEcr => "-ecr",
            StepType::BuildAndPushGcr => "-gcr",
            StepType::BuildAndPushGar => "-gar",
            StepType::BuildAndPushAcr => "-acr",
        }
    }

    /// The kind of connector `connectorRef` names.
    pub fn connector_kind(self) -> &'static str {
        match self {
            StepType::BuildAndPushDockerRegistry => "Docker registry",
            StepType::BuildAndPushEcr => "AWS",
            StepType::BuildAndPushGcr | StepType::BuildAndPushGar => "GCP",
            StepType::BuildAndPushAcr => "Azure",
        }
    }
}

/// `- step:` of a pipeline, when its type is a Build and Push step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildAndPushStep {
    #[serde(rename = "type")]
    pub step_type: StepType,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// e.g. `10m`.
    #[serde(default)]
    pub timeout: Option<String>,
    /// When the step runs (`stageStatus: Success`, a `condition`).
    #[serde(default)]
    pub when: Option<When>,
    pub spec: Spec,
}

/// A step's `when:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct When {
    #[serde(default)]
    pub stage_status: Option<String>,
    #[serde(default)]
    pub condition: Option<String>,
}

/// The step's `spec:`: the union of the Build and Push steps' fields. Which are required
/// depends on the type (`repo` for Docker, `imageName` + `account` + `region` for ECR, …).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    pub connector_ref: String,
    /// Docker registry: the repository, e.g. `myorg/app` (pushed as written).
    #[serde(default)]
    pub repo: Option<String>,
    /// ECR, GCR, GAR: the image name within the registry.
    #[serde(default)]
    pub image_name: Option<String>,
    /// ECR: the AWS account id.
    #[serde(default)]
    pub account: Option<String>,
    /// ECR: the AWS region.
    #[serde(default)]
    pub region: Option<String>,
    /// GCR, GAR: the registry host, e.g. `us-docker.pkg.dev`.
    #[serde(default)]
    pub host: Option<String>,
    /// GCR, GAR: the project.
    #[serde(default, rename = "projectID")]
    pub project_id: Option<String>,
    /// ACR: `<registry>/<repository>`.
    #[serde(default)]
    pub repository: Option<String>,
    /// ACR: the Azure subscription.
    #[serde(default)]
    pub subscription_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<Scalar>,
    /// Docker layer caching (DLC).
    #[serde(default)]
    pub caching: Option<Scalar>,
    #[serde(default)]
    pub dockerfile: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub build_args: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub target: Option<String>,
    /// Docker registry step: the remote cache repository (Kubernetes).
    #[serde(default)]
    pub remote_cache_repo: Option<String>,
    /// ECR, GCR, GAR, ACR steps: the remote cache image (Kubernetes).
    #[serde(default)]
    pub remote_cache_image: Option<String>,
    #[serde(default)]
    pub cache_from: Vec<String>,
    #[serde(default)]
    pub cache_to: Option<String>,
    /// Plugin variables set as they are (runtime flags), e.g. `PLUGIN_NO_PUSH: "true"`.
    #[serde(default)]
    pub env_variables: BTreeMap<String, Scalar>,
    /// Kubernetes: kaniko's snapshot optimisation (default true).
    #[serde(default)]
    pub optimize: Option<Scalar>,
    #[serde(default)]
    pub run_as_user: Option<Scalar>,
    #[serde(default)]
    pub resources: Option<ContainerResources>,
    #[serde(default)]
    pub base_image_connector_refs: Vec<String>,
    /// Build secrets from environment variables: secret id → variable (or a secret expression).
    #[serde(default)]
    pub env_docker_secrets: BTreeMap<String, String>,
    /// Build secrets from files: secret id → path (or a secret expression).
    #[serde(default)]
    pub file_docker_secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub privileged: Option<Scalar>,
    #[serde(default)]
    pub image_pull_policy: Option<String>,
}

/// `resources:` of a step's container (Kubernetes).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerResources {
    #[serde(default)]
    pub limits: Option<Limits>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub memory: Option<Scalar>,
    #[serde(default)]
    pub cpu: Option<Scalar>,
}
