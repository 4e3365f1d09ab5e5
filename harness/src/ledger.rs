//! The repository's claims ledger (`claims/ledger.yaml`) held against its scenarios, and what a
//! run's results showed about each claim (the `claims` crate does the work).

use std::path::Path;

use model::claims::ClaimsView;
use model::result::ScenarioResult;
use scenario::Scenario;

/// Where the ledger is, relative to the repository.
pub const LEDGER: &str = "claims/ledger.yaml";

/// The ledger and the scenarios' citations of it, checked against each other.
pub fn read(
    root: &Path,
) -> Result<(claims::Ledger, claims::Citations), Box<dyn std::error::Error>> {
    let ledger = claims::Ledger::load(&root.join(LEDGER))?;
    let mut files = Vec::new();
    for file in scenario::discover(&root.join("scenarios"))? {
        let text = std::fs::read_to_string(&file.path)?;
        let scenario = Scenario::parse(&file.path, &text)?;
        let shown = file
            .path
            .strip_prefix(root)
            .unwrap_or(&file.path)
            .display()
            .to_string();
        files.push((shown, text, scenario));
    }
    let citing: Vec<claims::Citing<'_>> = files
        .iter()
        .map(|(file, text, scenario)| claims::Citing {
            file: file.clone(),
            text,
            scenario,
        })
        .collect();
    let citations = claims::check(&ledger, &citing)?;
    Ok((ledger, citations))
}

/// What `results` showed about every claim, for the reports; `None` (said on stderr) when the
/// ledger or the citations do not hold together: the run's own reports are written anyway.
pub fn view(root: &Path, results: &[ScenarioResult]) -> Option<ClaimsView> {
    match read(root) {
        Ok((ledger, citations)) => Some(claims::view(&ledger, &citations, results)),
        Err(e) => {
            crate::errln!("no claims view in the reports: {e}");
            None
        }
    }
}
