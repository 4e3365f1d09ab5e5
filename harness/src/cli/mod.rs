//! The `harness` subcommands, one file each (`main.rs` parses and dispatches), and what they
//! share: the printed line of a result, the plan filter, the exit on a stop request.

pub mod args;
pub mod claims;
pub mod import;
pub mod mutants;
pub mod nightly;
pub mod release;
pub mod run;
pub mod runs;
pub mod scenarios;
pub mod sweep;

use std::process::ExitCode;

use harness::errln;
use harness::plan::Plan;
use harness::progress;
use model::result::ScenarioResult;
use runtime::stop::Interrupted;

/// What a subcommand returns: its exit code, or an error printed as `error: …` (exit 2).
pub type Outcome = Result<ExitCode, Box<dyn std::error::Error>>;

/// Ctrl-C or SIGTERM: the plans stopped and tore down, and this process's containers,
/// networks and volumes were swept (see [`stop::guarded`]); exit 130.
pub fn interrupted(stopped: Interrupted) -> ExitCode {
    errln!("{stopped}");
    ExitCode::from(130)
}

/// The plans of the repository's scenarios whose name contains `filter` (all without one);
/// none with a filter is an error.
pub fn selected(filter: Option<&str>) -> Result<Vec<Plan>, Box<dyn std::error::Error>> {
    let root = harness::session::repo_root();
    let selected: Vec<Plan> = harness::plan::plans(&root.join("scenarios"))?
        .into_iter()
        .filter(|p| filter.is_none_or(|f| p.test_name.contains(f)))
        .collect();
    match filter {
        Some(filter) if selected.is_empty() => Err(format!(
            "no plan's name contains `{filter}` (names look like `build_only::tar::buildx`; see `harness list`)"
        )
        .into()),
        _ => Ok(selected),
    }
}

/// One line per finished plan, and its known discrepancy if it has one.
pub fn result_line(result: &ScenarioResult) -> String {
    let mut line = format!(
        "{:<5} {} ({} ms){}",
        result.status.to_string(),
        progress::label(&result.test, result.repetition),
        result.duration_ms,
        result
            .reason
            .as_ref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    if let Some(known) = &result.known_discrepancy {
        let verdict = match &known.difference {
            None => "as expected".to_owned(),
            Some(d) => format!("NOT as expected: {d}"),
        };
        line.push_str(&format!(
            "\n      known discrepancy ({verdict}): {}",
            known.because
        ));
    }
    if !result.retried_errors.is_empty() {
        line.push_str(&format!(
            "\n      after {} errored attempt(s): {}",
            result.retried_errors.len(),
            result.retried_errors.join("; ")
        ));
    }
    line
}
