//! A plan's side summed up over its repetitions, and the status change between sides.

use model::result::{ScenarioResult, Status};

use super::{Change, PlanSide};

/// The side's summary; `None` when the plan has no result on this side.
pub(super) fn side(results: &[&ScenarioResult]) -> Option<PlanSide> {
    let status = *results
        .iter()
        .map(|r| &r.status)
        .max_by_key(|s| telling(**s))?;
    let expected: Vec<bool> = results.iter().map(|r| r.as_expected().is_ok()).collect();
    let flaky = model::result::flaky(results.iter().copied());
    let known: Vec<bool> = results
        .iter()
        .filter_map(|r| r.known_discrepancy.as_ref().map(|k| k.met))
        .collect();
    let representative = results.iter().find(|r| r.status == status)?;
    let reason = match &representative.known_discrepancy {
        Some(k) if !k.met => k.difference.clone().or(representative.reason.clone()),
        _ => representative.reason.clone(),
    };
    Some(PlanSide {
        status,
        repetitions: results.iter().map(|r| r.status).collect(),
        flaky,
        as_expected: expected.iter().all(|e| *e),
        known_discrepancy_met: (!known.is_empty()).then(|| known.iter().all(|m| *m)),
        reason,
    })
}

/// How much a status tells about the plugin: a Fail is evidence, an Error is none.
fn telling(status: Status) -> u8 {
    match status {
        Status::Pass => 0,
        Status::Skip => 1,
        Status::Error => 2,
        Status::Fail => 3,
    }
}

/// The change, whether it is a status regression, and why, by the rules in the module docs.
pub(super) fn change(base: Option<&PlanSide>, new: Option<&PlanSide>) -> (Change, bool, String) {
    let (b, n) = match (base, new) {
        (None, None) => return (Change::Unchanged, false, String::new()),
        (None, Some(n)) => return (Change::Added, false, format!("only in NEW ({})", n.status)),
        (Some(b), None) => {
            return (
                Change::Removed,
                false,
                format!("only in BASE ({})", b.status),
            )
        }
        (Some(b), Some(n)) => (b, n),
    };
    let arrow = format!("{} → {}", b.status, n.status);
    if n.flaky {
        let statuses = listed(&n.repetitions);
        return if b.flaky {
            (
                Change::Flaky,
                false,
                format!("flaky on both sides; NEW's repetitions: {statuses}"),
            )
        } else {
            (
                Change::Flaky,
                true,
                format!("NEW's repetitions disagree ({statuses}); BASE's did not"),
            )
        };
    }
    if b.flaky {
        return if n.as_expected {
            (
                Change::Improvement,
                false,
                format!(
                    "BASE was flaky ({}); NEW is as expected in every repetition",
                    listed(&b.repetitions)
                ),
            )
        } else {
            (
                Change::Regression,
                true,
                format!(
                    "BASE was flaky ({}); NEW is not as expected in any repetition",
                    listed(&b.repetitions)
                ),
            )
        };
    }
    if b.known_discrepancy_met != n.known_discrepancy_met {
        let state = |m: Option<bool>| match m {
            None => "no known discrepancy",
            Some(true) => "known discrepancy met",
            Some(false) => "known discrepancy not met",
        };
        let regression = b.as_expected && !n.as_expected;
        return (
            Change::KnownDiscrepancyChange,
            regression,
            format!(
                "{} in BASE, {} in NEW ({arrow}{})",
                state(b.known_discrepancy_met),
                state(n.known_discrepancy_met),
                if n.as_expected {
                    ", as expected"
                } else {
                    ", not as expected"
                }
            ),
        );
    }
    match (b.as_expected, n.as_expected) {
        (true, false) => (
            Change::Regression,
            true,
            format!("{arrow}: was as expected, is not"),
        ),
        (false, true) => (
            Change::Improvement,
            false,
            format!("{arrow}: was not as expected, is now"),
        ),
        (true, true) if b.status != n.status => {
            (Change::Changed, false, format!("{arrow}: both as expected"))
        }
        (false, false) if n.status > b.status => (
            Change::Regression,
            true,
            format!("{arrow}: not as expected on either side, more severe in NEW"),
        ),
        (false, false) if n.status < b.status => (
            Change::Improvement,
            false,
            format!("{arrow}: not as expected on either side, less severe in NEW"),
        ),
        _ => (Change::Unchanged, false, arrow),
    }
}

fn listed(statuses: &[Status]) -> String {
    statuses
        .iter()
        .map(|s| s.to_string().to_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}
