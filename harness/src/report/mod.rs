//! Writing results: one JSON file per plan, a summary and a JUnit file per run.

use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::errors::ReportWriteError;
use crate::result::{ScenarioResult, Status, Tally};

fn write(path: &Path, contents: &[u8]) -> Result<(), ReportWriteError> {
    let err = |e: std::io::Error| ReportWriteError {
        path: path.to_owned(),
        message: e.to_string(),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, contents).map_err(err)
}

/// `reports/<run>/<test>.json`.
pub fn write_result(report_dir: &Path, result: &ScenarioResult) -> Result<(), ReportWriteError> {
    let path = report_dir.join(format!("{}.json", result.file_stem()));
    let json = serde_json::to_vec_pretty(result).map_err(|e| ReportWriteError {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write(&path, &json)
}

/// `mutants/summary.json`: the kill matrix and the sensitivity score of a mutants run.
pub fn write_mutants(
    report_dir: &Path,
    run_id: &str,
    matrix: &crate::mutants::KillMatrix,
) -> Result<(), ReportWriteError> {
    let (caught, all) = matrix.score();
    let summary = serde_json::json!({
        "run": run_id,
        "sensitivity": {"caught": caught, "mutants": all},
        "kill_matrix": matrix.mutants,
    });
    let path = report_dir.join("mutants").join("summary.json");
    write(
        &path,
        serde_json::to_string_pretty(&summary)
            .unwrap_or_default()
            .as_bytes(),
    )
}

/// `summary.json` and `junit.xml` for a whole run.
pub fn write_summary(
    report_dir: &Path,
    run_id: &str,
    results: &[ScenarioResult],
) -> Result<(), ReportWriteError> {
    let summary = serde_json::json!({
        "run": run_id,
        "counts": Tally::of(results),
        "results": results.iter().map(|r| serde_json::json!({
            "test": r.test, "status": r.status, "reason": r.reason, "duration_ms": r.duration_ms,
            "known_discrepancy": r.known_discrepancy,
        })).collect::<Vec<_>>(),
    });
    let path = report_dir.join("summary.json");
    write(
        &path,
        serde_json::to_string_pretty(&summary)
            .unwrap_or_default()
            .as_bytes(),
    )?;

    let mut report = Report::new("conformance");
    let mut suite = TestSuite::new(run_id.to_owned());
    for r in results {
        // A Fail that is exactly the builder's known discrepancy is what the scenario expects:
        // the test case succeeds, and its message and output say what the plugin broke.
        // A Pass that was expected to fail (the plugin now keeps the promise) is a failure too.
        let mut status = match r.status {
            Status::Pass | Status::Fail if r.as_expected().is_ok() => TestCaseStatus::success(),
            Status::Pass | Status::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
            Status::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
            Status::Skip => TestCaseStatus::skipped(),
        };
        if let Some(reason) = &r.reason {
            status.set_message(reason.clone());
        }
        let mut case = TestCase::new(r.test.clone(), status);
        case.set_time(std::time::Duration::from_millis(r.duration_ms));
        case.set_system_out(r.explain());
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    let path = report_dir.join("junit.xml");
    let xml = report.to_string().map_err(|e| ReportWriteError {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write(&path, xml.as_bytes())
}
