//! What Harness made of the steps written as Harness steps, for the result.

use model::result::HarnessStepRecord;
use scenario::Scenario;

/// One record per step written as a Harness Build and Push step, in step order.
pub fn records(scenario: &Scenario) -> Vec<HarnessStepRecord> {
    scenario
        .steps
        .iter()
        .filter_map(|step| {
            let t = step.translation.as_ref()?;
            Some(HarnessStepRecord {
                step: step.name.clone(),
                step_type: t.step_type.to_owned(),
                infrastructure: t.infrastructure.to_owned(),
                builder: t.builder.to_owned(),
                role: step.role.clone().unwrap_or_default(),
                why: t.why.clone(),
                // The translation's variables are the step's environment.
                variables: step.env.clone(),
                stand_ins: t.stand_ins.clone(),
            })
        })
        .collect()
}
