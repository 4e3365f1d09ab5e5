//! The kill matrix of a mutants run (mutant → plan → verdict) and its sensitivity score: what
//! `harness mutants` prints and [`crate::write_mutants`] writes.

use std::collections::BTreeMap;

use model::result::{ScenarioResult, Status};
use serde::{Deserialize, Serialize};

/// How one plan went with a mutant in its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// The plan failed where the scenario did not expect it to: these assertions caught it.
    Killed { by: Vec<String> },
    /// The plan went as the scenario expects: the mutant was not noticed here.
    Escaped,
    /// The harness could not find out.
    Error { reason: String },
}

impl Verdict {
    pub fn of(result: &ScenarioResult) -> Verdict {
        match result.status {
            Status::Error => Verdict::Error {
                reason: result.reason.clone().unwrap_or_default(),
            },
            _ if result.as_expected().is_ok() => Verdict::Escaped,
            _ => Verdict::Killed {
                by: result
                    .assertions
                    .iter()
                    .filter(|a| a.status == Status::Fail)
                    .map(|a| a.assertion.clone())
                    .collect(),
            },
        }
    }

    /// A short cell for the kill matrix.
    pub fn cell(&self) -> String {
        match self {
            Verdict::Killed { by } => format!("KILLED by {}", by.join("; ")),
            Verdict::Escaped => "escaped".to_owned(),
            Verdict::Error { reason } => format!("ERROR: {reason}"),
        }
    }
}

/// The kill matrix of a mutants run: mutant → plan → verdict.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KillMatrix {
    pub mutants: BTreeMap<String, BTreeMap<String, Verdict>>,
}

impl KillMatrix {
    /// Mutants killed by at least one plan, out of all.
    pub fn score(&self) -> (usize, usize) {
        let caught = self
            .mutants
            .values()
            .filter(|plans| plans.values().any(|v| matches!(v, Verdict::Killed { .. })))
            .count();
        (caught, self.mutants.len())
    }

    /// Human-readable matrix: one block per mutant, one line per plan.
    /// `breaks` names the promise each mutant breaks.
    pub fn render(&self, breaks: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for (name, plans) in &self.mutants {
            let breaks = breaks(name);
            let caught = plans.values().any(|v| matches!(v, Verdict::Killed { .. }));
            out.push_str(&format!(
                "{} {name}: breaks {breaks}\n",
                if caught { "CAUGHT " } else { "ESCAPED" }
            ));
            for (plan, verdict) in plans {
                out.push_str(&format!("    {plan:<48} {}\n", verdict.cell()));
            }
        }
        let (caught, all) = self.score();
        out.push_str(&format!("sensitivity: {caught}/{all} mutants caught\n"));
        out
    }
}
