//! Plans: one per scenario × builder, named `workflow::scenario::builder`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::errors::ScenarioParseError;
use runtime::profile::Profile;
use scenario::{self, Assertion, Capture, DaemonMode, Scenario, ScenarioFile};

#[derive(Debug, Clone)]
pub struct Plan {
    /// `workflow::scenario::builder`, e.g. `build_only::tar::buildx`.
    pub test_name: String,
    pub file: ScenarioFile,
    pub scenario: Scenario,
    pub builder: String,
    /// Why this combination is not run (the docs declare it unsupported), if so.
    pub skip: Option<String>,
}

impl Plan {
    /// Whether some step may use the shared DinD daemon: it shares it (`daemon: shared`, the
    /// default) and its role is not `daemonless` in the profile. The scenario's daemon
    /// assertions and captures ask for one too (they then read what nothing could reach); its
    /// `leftovers` only allow, and there is nothing to allow in a daemon nobody can reach.
    /// Without, the plan starts no DinD.
    pub fn uses_shared_daemon(&self, profile: &Profile) -> bool {
        let scenario = &self.scenario;
        scenario.steps.iter().any(|step| {
            step.daemon == DaemonMode::Shared
                && !profile
                    .roles
                    .get(&step.role_for(&self.builder))
                    .is_some_and(|spec| spec.daemonless)
        }) || scenario.assertions.iter().any(|a| {
            matches!(
                a,
                Assertion::ImageInDaemon(_) | Assertion::NoImageInDaemon(_)
            )
        }) || scenario
            .captures
            .values()
            .any(|c| matches!(c, Capture::DaemonImageId(_)))
    }

    /// Whether the plan runs (is not skipped) and some step runs in `role`: the plans a role's
    /// image takes part in (a mutant, a release under validation).
    pub fn runs_role(&self, role: &str) -> bool {
        self.skip.is_none()
            && self
                .scenario
                .steps
                .iter()
                .any(|step| step.role_for(&self.builder) == role)
    }
}

/// Reads every scenario under `scenarios_dir` and expands its builder matrix.
pub fn plans(scenarios_dir: &Path) -> Result<Vec<Plan>, ScenarioParseError> {
    let files = scenario::discover(scenarios_dir).map_err(|source| ScenarioParseError::Read {
        path: scenarios_dir.to_owned(),
        source,
    })?;
    // Plan names (`workflow::scenario`) must tell the files apart: they name the tests, the
    // result files and the workspaces.
    let mut names: BTreeMap<String, &Path> = BTreeMap::new();
    for file in &files {
        let name = format!("{}::{}", ident(&file.workflow), ident(&file.stem));
        if let Some(other) = names.insert(name.clone(), &file.path) {
            return Err(ScenarioParseError::Invalid {
                path: file.path.clone(),
                message: format!(
                    "its plans would be named like those of {} (`{name}::BUILDER`: characters \
                     other than letters and digits become `_`, letters lowercase); rename one \
                     of the two files",
                    other.display()
                ),
            });
        }
    }
    let mut plans = Vec::new();
    for file in files {
        let scenario = Scenario::load(&file.path)?;
        let skipped = scenario
            .skip
            .iter()
            .map(|(b, reason)| (b, Some(reason.clone())));
        let run = scenario.builders.iter().map(|b| (b, None));
        for (builder, skip) in run.chain(skipped) {
            plans.push(Plan {
                test_name: format!(
                    "{}::{}::{}",
                    ident(&file.workflow),
                    ident(&file.stem),
                    builder
                ),
                file: file.clone(),
                scenario: scenario.clone(),
                builder: builder.clone(),
                skip,
            });
        }
    }
    Ok(plans)
}

/// `build-only` → `build_only`, so names work as nextest filters.
fn ident(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_whose_plan_names_collide_are_refused_naming_both() {
        let root = tempfile::tempdir().unwrap();
        let scenario = std::fs::read_to_string(
            crate::session::repo_root().join("scenarios/build-only/tar.yaml"),
        )
        .unwrap();
        for dir in ["build-only", "build_only"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
            std::fs::write(root.path().join(dir).join("tar.yaml"), &scenario).unwrap();
        }
        let error = plans(root.path()).unwrap_err().to_string();
        assert!(error.contains("build-only/tar.yaml"), "{error}");
        assert!(error.contains("build_only/tar.yaml"), "{error}");
        assert!(error.contains("`build_only::tar::BUILDER`"), "{error}");

        std::fs::remove_dir_all(root.path().join("build_only")).unwrap();
        std::fs::write(root.path().join("build-only/Tar.yml"), &scenario).unwrap();
        let error = plans(root.path()).unwrap_err().to_string();
        assert!(
            error.contains("Tar.yml") && error.contains("tar.yaml"),
            "{error}"
        );

        std::fs::remove_file(root.path().join("build-only/Tar.yml")).unwrap();
        assert_eq!(plans(root.path()).unwrap().len(), 4);
    }
}
