//! `harness claims`: every claim of the ledger with the scenarios × builders that check it and
//! their latest status, or why nothing checks it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use harness::{outln, session};
use model::claims::{ClaimKind, ClaimsView, Coverage};
use report::runs::Run;

use super::Outcome;

pub fn claims(run: Option<PathBuf>, json: Option<PathBuf>, topics: bool) -> Outcome {
    let root = session::repo_root();
    let (ledger, citations) = harness::ledger::read(&root)?;
    if topics {
        harness::out!("{}", claims::topics_markdown(&ledger, &citations));
        return Ok(ExitCode::SUCCESS);
    }
    let run = match run {
        Some(dir) => Some(Run::load(&dir)?),
        None => newest_run(&root.join("reports")),
    };
    let results = run.as_ref().map_or(&[][..], |r| &r.results[..]);
    let view = claims::view(&ledger, &citations, results);
    match &run {
        Some(run) => outln!(
            "claims of {} against run {} ({})",
            harness::ledger::LEDGER,
            run.id,
            run.source.display()
        ),
        None => outln!(
            "claims of {} (no run under reports/ to take statuses from)",
            harness::ledger::LEDGER
        ),
    }
    print(&view);
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&view)?;
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print(view: &ClaimsView) {
    let mut topic = "";
    for row in &view.rows {
        if row.topic != topic {
            topic = &row.topic;
            outln!("\n[{topic}]");
        }
        let kind = match row.kind {
            ClaimKind::Claim => "",
            ClaimKind::Contradiction => " (contradiction)",
        };
        outln!("{:<20} {}{kind}", row.verdict.label(), row.id);
        match &row.coverage {
            Coverage::Checked(files) => {
                let mut statuses: Vec<String> = row
                    .results
                    .iter()
                    .map(|r| format!("{} {}", r.test, r.status))
                    .collect();
                statuses.dedup();
                outln!("{:<20}   checked by {}", "", files.join(", "));
                if !statuses.is_empty() {
                    outln!("{:<20}   {}", "", statuses.join(", "));
                }
            }
            Coverage::Pending(why) => outln!("{:<20}   not yet checked: {why}", ""),
            Coverage::NotCheckable(why) => outln!("{:<20}   not checkable here: {why}", ""),
        }
    }
    outln!("\n{}", view.counts().headline());
}

/// The most recently written run directory under `reports/` that reads as a run.
fn newest_run(reports: &Path) -> Option<Run> {
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(reports)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    dirs.sort();
    dirs.into_iter()
        .rev()
        .find_map(|(_, dir)| Run::load(&dir).ok())
}
