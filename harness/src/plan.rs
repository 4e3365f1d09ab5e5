//! Plans: one per scenario × builder, named `workflow::scenario::builder`.

use std::path::Path;

use crate::errors::ScenarioParseError;
use crate::scenario::{self, Scenario, ScenarioFile};

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
