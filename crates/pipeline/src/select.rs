//! The builder Harness picks for a Build and Push step: the docs' table "How Harness Chooses
//! Between BuildX and Kaniko" (claims/pages/001, section "Build Tools Used by Harness").
//!
//! | Environment | Default | BuildX when |
//! |---|---|---|
//! | Non-Kubernetes (Cloud, VMs, …) | Docker CLI (drone-docker) | DLC (`caching: true`) |
//! | Kubernetes | kaniko | DLC, or the `CI_USE_BUILDX_ON_K8` feature flag |

use crate::stage::{Infrastructure, BUILDX_ON_KUBERNETES};

/// A builder Harness may pick (buildah is never picked: it runs as a Plugin step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Builder {
    Kaniko,
    Buildx,
    Docker,
}

impl Builder {
    /// The builder's name in scenarios and profiles.
    pub fn name(self) -> &'static str {
        match self {
            Builder::Kaniko => "kaniko",
            Builder::Buildx => "buildx",
            Builder::Docker => "docker",
        }
    }
}

/// The builder picked, and the row of the table that picked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub builder: Builder,
    pub why: String,
}

/// Picks the builder for a step with `caching` (DLC) on `infrastructure` with `feature_flags`.
pub fn select(
    infrastructure: Infrastructure,
    caching: bool,
    feature_flags: &[String],
) -> Selection {
    let flag = feature_flags.iter().any(|f| f == BUILDX_ON_KUBERNETES);
    let (builder, why) = match (infrastructure.is_kubernetes(), caching, flag) {
        (true, true, _) => (
            Builder::Buildx,
            "Kubernetes with Docker layer caching (caching: true): BuildX".to_owned(),
        ),
        (true, false, true) => (
            Builder::Buildx,
            format!("Kubernetes with the {BUILDX_ON_KUBERNETES} feature flag: BuildX"),
        ),
        (true, false, false) => (
            Builder::Kaniko,
            "Kubernetes without Docker layer caching: kaniko".to_owned(),
        ),
        (false, true, _) => (
            Builder::Buildx,
            format!(
                "{} (not Kubernetes) with Docker layer caching (caching: true): BuildX",
                infrastructure.name()
            ),
        ),
        (false, false, _) => (
            Builder::Docker,
            format!(
                "{} (not Kubernetes) without Docker layer caching: the Docker CLI (drone-docker)",
                infrastructure.name()
            ),
        ),
    };
    Selection { builder, why }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_table_row_by_row() {
        let flag = vec![BUILDX_ON_KUBERNETES.to_owned()];
        let none: Vec<String> = Vec::new();
        let k8s = Infrastructure::Kubernetes;
        assert_eq!(select(k8s, false, &none).builder, Builder::Kaniko);
        assert_eq!(select(k8s, true, &none).builder, Builder::Buildx);
        assert_eq!(select(k8s, false, &flag).builder, Builder::Buildx);
        for infra in [
            Infrastructure::Cloud,
            Infrastructure::Vm,
            Infrastructure::Local,
        ] {
            assert_eq!(select(infra, false, &none).builder, Builder::Docker);
            assert_eq!(select(infra, true, &none).builder, Builder::Buildx);
            // The flag is about Kubernetes only.
            assert_eq!(select(infra, false, &flag).builder, Builder::Docker);
        }
    }
}
