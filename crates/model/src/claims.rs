//! What the documentation promises and what a run showed about it: one row per entry of the
//! claims ledger, with the scenarios that check it and their results. Plain data; the `claims`
//! crate computes it and `report` renders it.

use serde::{Deserialize, Serialize};

use crate::result::Status;

/// Whether a ledger entry is one sentence of the docs or a disagreement between sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    Claim,
    /// Two or more claims of the docs that cannot all hold; the scenarios citing it settle which.
    Contradiction,
}

/// How the ledger accounts for a claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    /// Scenarios cite it (their files, relative to the repository).
    Checked(Vec<String>),
    /// Checkable here, but no scenario does yet: what one would have to do.
    Pending(String),
    /// Not checkable on this kind of machine, and why (e.g. the ECR token exchange needs AWS).
    NotCheckable(String),
}

/// What one result of a citing scenario says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimResult {
    /// The plan, e.g. `build_only::no_push::kaniko`.
    pub test: String,
    pub builder: String,
    pub status: Status,
    /// A Fail that is exactly the builder's documented discrepancy.
    #[serde(default)]
    pub known_discrepancy: bool,
}

/// What the results of a claim's scenarios come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every result that ran passed.
    Holds,
    /// At least one Fail beyond the documented discrepancies: the promise is broken.
    Broken,
    /// The only Fails are documented discrepancies between the docs and a plugin.
    KnownDiscrepancy,
    /// An Error kept a result from saying anything (and nothing failed).
    Undetermined,
    /// Checked by scenarios, but none of their plans ran (or all were skipped) in this run.
    NotRun,
    /// Pending or not checkable: no scenario checks it.
    Unchecked,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Broken => "BROKEN",
            Verdict::KnownDiscrepancy => "known discrepancy",
            Verdict::Undetermined => "undetermined (error)",
            Verdict::NotRun => "not run",
            Verdict::Unchecked => "unchecked",
        }
    }

    /// The verdict of a checked claim from its scenarios' results.
    pub fn of(results: &[ClaimResult]) -> Verdict {
        let ran: Vec<&ClaimResult> = results
            .iter()
            .filter(|r| r.status != Status::Skip)
            .collect();
        if ran.is_empty() {
            Verdict::NotRun
        } else if ran
            .iter()
            .any(|r| r.status == Status::Fail && !r.known_discrepancy)
        {
            Verdict::Broken
        } else if ran.iter().any(|r| r.status == Status::Error) {
            Verdict::Undetermined
        } else if ran.iter().any(|r| r.status == Status::Fail) {
            Verdict::KnownDiscrepancy
        } else {
            Verdict::Holds
        }
    }
}

/// One ledger entry and what the run showed about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRow {
    pub id: String,
    pub kind: ClaimKind,
    pub topic: String,
    /// The page's title (and version note), e.g. "Build-only and Push-only Options (newer)".
    pub page: String,
    pub section: String,
    /// The quoted sentence; for a contradiction, its summary.
    pub text: String,
    /// For a contradiction: the claims that disagree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub between: Vec<String>,
    /// The builders the sentence names (empty: the step in general).
    pub builders: Vec<String>,
    pub coverage: Coverage,
    pub results: Vec<ClaimResult>,
    pub verdict: Verdict,
}

/// Every claim of the ledger, in ledger order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsView {
    pub rows: Vec<ClaimRow>,
}

/// How many claims are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimCounts {
    /// Entries of the ledger, contradictions included.
    pub total: usize,
    pub contradictions: usize,
    /// Cited by at least one scenario.
    pub checked: usize,
    pub holds: usize,
    pub broken: usize,
    pub known_discrepancies: usize,
    pub undetermined: usize,
    pub not_run: usize,
    pub pending: usize,
    pub not_checkable: usize,
}

impl ClaimsView {
    pub fn counts(&self) -> ClaimCounts {
        let mut c = ClaimCounts {
            total: self.rows.len(),
            ..ClaimCounts::default()
        };
        for row in &self.rows {
            c.contradictions += usize::from(row.kind == ClaimKind::Contradiction);
            match &row.coverage {
                Coverage::Checked(_) => c.checked += 1,
                Coverage::Pending(_) => c.pending += 1,
                Coverage::NotCheckable(_) => c.not_checkable += 1,
            }
            match row.verdict {
                Verdict::Holds => c.holds += 1,
                Verdict::Broken => c.broken += 1,
                Verdict::KnownDiscrepancy => c.known_discrepancies += 1,
                Verdict::Undetermined => c.undetermined += 1,
                Verdict::NotRun => c.not_run += 1,
                Verdict::Unchecked => {}
            }
        }
        c
    }
}

impl ClaimCounts {
    /// One line, e.g. "47 of 63 claims checked: 41 hold, 3 known discrepancies, …".
    pub fn headline(&self) -> String {
        let mut parts = vec![format!("{} hold", self.holds)];
        for (n, what) in [
            (self.broken, "broken"),
            (self.known_discrepancies, "known discrepancies"),
            (self.undetermined, "undetermined (error)"),
            (self.not_run, "not run in this run"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        format!(
            "{} of {} claims checked: {}; {} not yet checked, {} not checkable here; {} contradictions between pages",
            self.checked,
            self.total,
            parts.join(", "),
            self.pending,
            self.not_checkable,
            self.contradictions
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: Status, known: bool) -> ClaimResult {
        ClaimResult {
            test: "t".into(),
            builder: "b".into(),
            status,
            known_discrepancy: known,
        }
    }

    #[test]
    fn a_verdict_is_the_worst_that_says_something_about_the_plugin() {
        use Status::*;
        assert_eq!(Verdict::of(&[]), Verdict::NotRun);
        assert_eq!(Verdict::of(&[result(Skip, false)]), Verdict::NotRun);
        assert_eq!(
            Verdict::of(&[result(Pass, false), result(Skip, false)]),
            Verdict::Holds
        );
        assert_eq!(
            Verdict::of(&[result(Pass, false), result(Fail, true)]),
            Verdict::KnownDiscrepancy
        );
        assert_eq!(
            Verdict::of(&[result(Error, false), result(Fail, true)]),
            Verdict::Undetermined
        );
        assert_eq!(
            Verdict::of(&[result(Error, false), result(Fail, false)]),
            Verdict::Broken
        );
    }
}
