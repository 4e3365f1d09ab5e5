//! The ledger against the scenarios that cite it (every claim checked or explained, every
//! citation a claim of the ledger, every builder a claim names run or skipped with a reason by a
//! scenario citing it), and against a run's results (what each claim came to).

use std::collections::{BTreeMap, BTreeSet};

use model::claims::{ClaimResult, ClaimRow, ClaimsView, Coverage, Verdict};
use model::result::ScenarioResult;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::errors::{CheckClaimsError, LocatedProblem};
use crate::ledger::{Explanation, Ledger};

/// A scenario file as the claims check needs it.
pub struct Citing<'a> {
    /// Relative to the repository, e.g. `scenarios/build-only/no-push.yaml`.
    pub file: String,
    /// The file's text (for the citations' positions).
    pub text: &'a str,
    pub scenario: &'a scenario::Scenario,
}

/// Which scenarios cite each claim, by id, in file order.
#[derive(Debug, Clone, Default)]
pub struct Citations {
    pub by_claim: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct CitationsOnly {
    claim: Vec<Spanned<String>>,
}

/// Checks the ledger and the scenarios against each other; every problem is reported at once.
pub fn check(ledger: &Ledger, scenarios: &[Citing<'_>]) -> Result<Citations, CheckClaimsError> {
    let mut problems = Vec::new();
    let mut citations = Citations::default();
    // Which builders each claim's scenarios run, or skip with a reason.
    let mut builders: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for citing in scenarios {
        let spans = serde_saphyr::from_str::<CitationsOnly>(citing.text)
            .map(|c| c.claim)
            .unwrap_or_default();
        for (i, id) in citing.scenario.claim.iter().enumerate() {
            let Some(claim) = ledger.claim(id) else {
                let (line, column) = spans
                    .iter()
                    .find(|s| s.value == *id)
                    .map_or((1, 1), |s| (s.referenced.line(), s.referenced.column()));
                let message = format!(
                    "`{id}` is not a claim of the ledger {}{}",
                    ledger.path.display(),
                    nearest(ledger, id)
                        .map(|n| format!(" (did you mean `{n}`?)"))
                        .unwrap_or_default()
                );
                problems.push(LocatedProblem::at(
                    &citing.file,
                    citing.text,
                    line,
                    column,
                    id.len(),
                    message,
                ));
                continue;
            };
            debug_assert!(!citing.scenario.claim[..i].contains(id));
            citations
                .by_claim
                .entry(claim.id.clone())
                .or_default()
                .push(citing.file.clone());
            let run = builders.entry(claim.id.as_str()).or_default();
            run.extend(citing.scenario.builders.iter().map(String::as_str));
            run.extend(citing.scenario.skip.keys().map(String::as_str));
        }
    }
    let ledger_path = ledger.path.display().to_string();
    for claim in &ledger.claims {
        let cited = citations.by_claim.get(&claim.id);
        let problem = match (cited, &claim.explanation) {
            (None, None) => Some((
                claim.at,
                claim.id.len(),
                format!(
                    "claim `{}` is neither checked nor explained: cite it from a scenario's `claim:`, \
                     or say under `pending` what would check it or under `not_checkable` why nothing can here",
                    claim.id
                ),
            )),
            (Some(files), Some(explanation)) => Some((
                claim.explanation_at.unwrap_or(claim.at),
                1,
                format!(
                    "claim `{}` is checked by {} but still says it is {}: remove that",
                    claim.id,
                    files.join(", "),
                    match explanation {
                        Explanation::Pending(_) => "`pending`",
                        Explanation::NotCheckable(_) => "`not_checkable`",
                    }
                ),
            )),
            (Some(files), None) => {
                let run = builders.get(claim.id.as_str()).cloned().unwrap_or_default();
                let missing: Vec<&str> = claim
                    .builders
                    .iter()
                    .map(String::as_str)
                    .filter(|b| !run.contains(b))
                    .collect();
                (!missing.is_empty()).then(|| {
                    (
                        claim.at,
                        claim.id.len(),
                        format!(
                            "claim `{}` names {}, which no scenario citing it ({}) runs or skips with a reason",
                            claim.id,
                            missing.join(", "),
                            files.join(", ")
                        ),
                    )
                })
            }
            (None, Some(_)) => None,
        };
        if let Some((at, len, message)) = problem {
            problems.push(LocatedProblem::at(
                &ledger_path,
                &ledger.text,
                at.line,
                at.column,
                len,
                message,
            ));
        }
    }
    if problems.is_empty() {
        Ok(citations)
    } else {
        Err(CheckClaimsError { problems })
    }
}

/// The ledger's id closest to a mistyped one, when it is close.
fn nearest<'a>(ledger: &'a Ledger, id: &str) -> Option<&'a str> {
    ledger
        .claims
        .iter()
        .map(|c| (edit_distance(&c.id, id), c.id.as_str()))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, id)| id)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            previous = here;
        }
    }
    row[b.len()]
}

/// Every claim of the ledger with what `results` (one run, or several merged) showed about it.
/// A result counts for the claims it names (`claims` in its JSON); results written before
/// results named their claims count by their scenario file.
pub fn view(ledger: &Ledger, citations: &Citations, results: &[ScenarioResult]) -> ClaimsView {
    let mut by_claim: BTreeMap<&str, Vec<ClaimResult>> = BTreeMap::new();
    for r in results {
        let named: Vec<&str> = if r.claims.is_empty() {
            citations
                .by_claim
                .iter()
                .filter(|(_, files)| files.contains(&r.file))
                .map(|(id, _)| id.as_str())
                .collect()
        } else {
            r.claims.iter().map(String::as_str).collect()
        };
        for id in named {
            by_claim.entry(id).or_default().push(ClaimResult {
                test: r.test.clone(),
                builder: r.builder.clone(),
                status: r.status,
                known_discrepancy: r.known_discrepancy.as_ref().is_some_and(|k| k.met),
            });
        }
    }
    let rows = ledger
        .claims
        .iter()
        .map(|claim| {
            let coverage = match (&claim.explanation, citations.by_claim.get(&claim.id)) {
                (_, Some(files)) => Coverage::Checked(files.clone()),
                (Some(Explanation::Pending(why)), None) => Coverage::Pending(why.clone()),
                (Some(Explanation::NotCheckable(why)), None) => Coverage::NotCheckable(why.clone()),
                (None, None) => Coverage::Pending("no scenario cites it".to_owned()),
            };
            let results = by_claim.remove(claim.id.as_str()).unwrap_or_default();
            let verdict = match coverage {
                Coverage::Checked(_) => Verdict::of(&results),
                _ => Verdict::Unchecked,
            };
            ClaimRow {
                id: claim.id.clone(),
                kind: claim.kind,
                topic: claim.topic.clone(),
                page: claim
                    .page
                    .as_deref()
                    .and_then(|p| ledger.page(p))
                    .map(|p| p.shown())
                    .unwrap_or_default(),
                section: claim.section.clone(),
                text: claim.text.clone(),
                between: claim.between.clone(),
                builders: claim.builders.clone(),
                coverage,
                results,
                verdict,
            }
        })
        .collect();
    ClaimsView { rows }
}

/// The features table of the README: per topic, how many claims the ledger holds, how many
/// scenarios check, and the scenarios (`workflow/name`).
pub fn topics_markdown(ledger: &Ledger, citations: &Citations) -> String {
    let mut out = String::from(
        "| topic | claims | checked | not yet checked | not checkable here | scenarios |\n|---|---:|---:|---:|---:|---|\n",
    );
    for topic in crate::ledger::TOPICS {
        let claims: Vec<&crate::ledger::Claim> =
            ledger.claims.iter().filter(|c| c.topic == *topic).collect();
        if claims.is_empty() {
            continue;
        }
        let mut scenarios = BTreeSet::new();
        let (mut checked, mut pending, mut not_checkable) = (0, 0, 0);
        for claim in &claims {
            match (citations.by_claim.get(&claim.id), &claim.explanation) {
                (Some(files), _) => {
                    checked += 1;
                    scenarios.extend(files.iter().map(|f| {
                        f.trim_start_matches("scenarios/")
                            .trim_end_matches(".yaml")
                            .to_owned()
                    }));
                }
                (None, Some(Explanation::NotCheckable(_))) => not_checkable += 1,
                (None, _) => pending += 1,
            }
        }
        let scenarios: Vec<String> = scenarios.into_iter().map(|s| format!("`{s}`")).collect();
        out.push_str(&format!(
            "| {topic} | {} | {checked} | {pending} | {not_checkable} | {} |\n",
            claims.len(),
            if scenarios.is_empty() {
                "–".to_owned()
            } else {
                scenarios.join(", ")
            }
        ));
    }
    out
}
