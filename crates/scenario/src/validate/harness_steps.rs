//! Steps written as Harness Build and Push steps: Harness's choices made for them when the
//! scenario is read (the `pipeline` crate: builder, role, variables), so that everything after
//! sees ordinary plugin steps; and what cannot be translated, located.

use std::time::Duration;

use pipeline::{ConnectorTarget, DaemonChoice};

use super::Problem;
use crate::types::*;

impl Scenario {
    /// Fills the role, environment, daemon, user, resources and timeout of every step written
    /// as a Harness step, and checks the scenario's builders are the ones Harness picks.
    pub(crate) fn translate_harness_steps(&mut self) -> Result<(), Problem> {
        if self.harness_stage.is_some() && !self.steps.iter().any(|s| s.harness_step.is_some()) {
            return Err(Problem::at(
                "`harness_stage` is given but no step is a Harness step (`harness_step`)",
                "harness_stage",
                None,
            ));
        }
        let registries = self.registries.clone();
        let auth = self.registry_auth.clone();
        let connector_target = |stage: &pipeline::Stage, name: &str| {
            let registry = &stage.connectors.get(name)?.registry;
            registries.contains(registry).then(|| ConnectorTarget {
                address: format!("${{{registry}}}"),
                registry: registry.clone(),
                credentials: auth
                    .get(registry)
                    .and_then(RegistryUsers::first)
                    .map(|c| (c.username.clone(), c.password.clone())),
            })
        };
        let mut picked: Vec<&'static str> = Vec::new();
        for step in &mut self.steps {
            let Some(harness_step) = &step.harness_step else {
                if step.harness_stage.is_some() {
                    let message = format!(
                        "step `{}` has a `harness_stage` but is not a Harness step \
                         (`harness_step`)",
                        step.name
                    );
                    return Err(Problem::at(message, "harness_stage", Some(&step.name)));
                }
                continue;
            };
            let name = step.name.clone();
            let own = [
                ("role", step.role.is_some()),
                ("run", step.run.is_some()),
                ("env", !step.env.is_empty()),
                ("settings", !step.settings.is_empty()),
                ("user", step.user.is_some()),
                ("resources", step.resources.is_some()),
            ];
            if let Some((field, _)) = own.iter().find(|(_, set)| *set) {
                let message = format!(
                    "step `{name}` is a Harness step: Harness sets its {field} (remove `{field}`, \
                     or write the setting in the step's `spec`)"
                );
                return Err(Problem::at(message, &format!("{field}:"), Some(&name)));
            }
            let Some(stage) = step.harness_stage.as_ref().or(self.harness_stage.as_ref()) else {
                let message = format!(
                    "step `{name}` is a Harness step but the scenario has no `harness_stage` (its \
                     infrastructure, connectors and inputs)"
                );
                return Err(Problem::at(message, "harness_step", Some(&name)));
            };
            for (connector, target) in &stage.connectors {
                if !registries.contains(&target.registry) {
                    let message = format!(
                        "connector `{connector}` stands for registry `{}`, which the scenario \
                         does not start (registries: {})",
                        target.registry,
                        registries.join(", ")
                    );
                    return Err(Problem::at(message, &target.registry, Some(connector)));
                }
            }
            let translation =
                pipeline::translate(harness_step, stage, &|n| connector_target(stage, n)).map_err(
                    |e| {
                        let needle = match &e {
                            pipeline::TranslateStepError::UnfilledExpression {
                                expression, ..
                            } => expression.clone(),
                            pipeline::TranslateStepError::UnknownConnector {
                                connector, ..
                            } => connector.clone(),
                            pipeline::TranslateStepError::MissingField { .. } => "spec:".to_owned(),
                            pipeline::TranslateStepError::NotABoolean { field, .. } => {
                                format!("{field}:")
                            }
                        };
                        Problem::at(format!("step `{name}`: {e}"), &needle, Some(&name)).or("spec:")
                    },
                )?;
            if let Some(timeout) = &translation.timeout {
                step.timeout = humantime::parse_duration(timeout)
                    .ok()
                    .filter(|d| *d > Duration::ZERO)
                    .ok_or_else(|| {
                        let message = format!(
                            "step `{name}`: timeout `{timeout}` is not a duration (e.g. `10m`)"
                        );
                        Problem::at(message, timeout, Some(&name))
                    })?;
            }
            step.role = Some(translation.role.clone());
            step.env = translation.env.clone();
            step.daemon = match translation.daemon {
                DaemonChoice::Shared => DaemonMode::Shared,
                DaemonChoice::Own => DaemonMode::Own,
            };
            step.user = translation.user.clone();
            if translation.memory.is_some() || translation.cpu.is_some() {
                step.resources = Some(Resources {
                    memory: translation.memory.clone(),
                    cpu: translation.cpu.clone(),
                });
            }
            picked.push(translation.builder.name());
            step.translation = Some(HarnessTranslation {
                step_type: translation.step_type.name(),
                infrastructure: stage.infrastructure.name(),
                builder: translation.builder.name(),
                why: translation.why,
                stand_ins: translation.stand_ins,
            });
        }
        // The plans are named after the builders Harness picks, and only those run.
        if !picked.is_empty() {
            for builder in &self.builders {
                if !picked.contains(&builder.as_str()) {
                    let message = format!(
                        "builder `{builder}` is not one Harness picks for this scenario's Harness \
                         steps (it picks {}): list only those under `builders`",
                        picked.join(", ")
                    );
                    return Err(Problem::at(message, builder, Some("builders")));
                }
            }
        }
        Ok(())
    }
}
