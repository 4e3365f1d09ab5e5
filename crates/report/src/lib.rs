//! Writing results: one JSON file per plan, a summary and a JUnit file per run, and the reports
//! a person reads ([`write_reports`]): a self-contained HTML page ([`html`]) and a Markdown
//! summary for a CI job summary ([`markdown`]), from one or several finished runs.

use std::borrow::Cow;
use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::errors::ReportWriteError;
use crate::runs::Run;
use model::result::{ScenarioResult, Status, Tally};

pub mod compare;
pub mod compare_view;
pub mod errors;
pub mod html;
pub mod kill_matrix;
pub mod markdown;
pub mod redact;
pub mod runs;
pub mod timings;
pub mod view;
/// Whether the human-readable reports show volatile values (digests, durations, run ids) or
/// placeholders for them, so that snapshots of a report stay stable. Redaction covers every
/// value shown as text or in a tooltip; the bars' geometry is still drawn from the timings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Redact {
    /// Show everything as recorded.
    #[default]
    Nothing,
    /// `sha256:<digest>`, `<ms>`, `<run N>`, `<share>`.
    Volatile,
}

impl Redact {
    /// A duration: `847 ms`, `12.3 s`.
    pub fn ms(self, ms: u64) -> String {
        match self {
            Redact::Volatile => "<ms>".to_owned(),
            Redact::Nothing if ms >= 10_000 => format!("{:.1} s", ms as f64 / 1000.0),
            Redact::Nothing => format!("{ms} ms"),
        }
    }

    /// A digest, shortened to 12 hex digits.
    pub fn digest(self, digest: &str) -> String {
        match self {
            Redact::Volatile => match digest.split_once(':') {
                Some((algo, _)) => format!("{algo}:<digest>"),
                None => "<digest>".to_owned(),
            },
            Redact::Nothing => view::short_digest(digest),
        }
    }

    /// The id of the `index`-th run (0-based).
    pub fn run_id(self, index: usize, id: &str) -> String {
        match self {
            Redact::Volatile => format!("<run {}>", index + 1),
            Redact::Nothing => id.to_owned(),
        }
    }

    /// A share (0 to 1) as a percentage.
    pub fn share(self, share: f64) -> String {
        match self {
            Redact::Volatile => "<share>".to_owned(),
            Redact::Nothing => format!("{:.0} %", share * 100.0),
        }
    }

    /// Free text (reasons, expected and found values, logs): digests (`sha256:` and 12 or more
    /// hex digits) and durations (`123 ms`, `123ms`) replaced.
    pub fn text(self, text: &str) -> Cow<'_, str> {
        if self == Redact::Nothing {
            return Cow::Borrowed(text);
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        let mut copied = 0;
        while i < bytes.len() {
            if text[i..].starts_with("sha256:") {
                let hex = bytes[i + 7..]
                    .iter()
                    .take_while(|b| b.is_ascii_hexdigit())
                    .count();
                if hex >= 12 {
                    out.push_str(&text[copied..i]);
                    out.push_str("sha256:<digest>");
                    i += 7 + hex;
                    copied = i;
                    continue;
                }
            }
            let starts_number = bytes[i].is_ascii_digit()
                && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'));
            if starts_number {
                let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                let rest = &text[i + digits..];
                let unit = if rest.starts_with(" ms") {
                    3
                } else if rest.starts_with("ms") {
                    2
                } else {
                    0
                };
                let ends = rest[unit..]
                    .bytes()
                    .next()
                    .is_none_or(|b| !b.is_ascii_alphanumeric());
                if unit > 0 && ends {
                    out.push_str(&text[copied..i]);
                    out.push_str("<ms>");
                    i += digits + unit;
                    copied = i;
                    continue;
                }
                i += digits;
                continue;
            }
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }
}

/// The reports a person reads, for one run or several merged (shards of one matrix):
/// `report.html` (self-contained: no network, no external assets) and `summary.md` (for a CI
/// job summary), in `report_dir`.
///
/// With a claims view, both get a section on the documentation's claims, and `claims.json`
/// holds the view.
pub fn write_reports(
    report_dir: &Path,
    runs: &[Run],
    claims: Option<&model::claims::ClaimsView>,
) -> Result<(), ReportWriteError> {
    let runs: &[Run] = &crate::redact::runs(runs);
    write(
        &report_dir.join("report.html"),
        html::render_with_claims(runs, Redact::Nothing, claims).as_bytes(),
    )?;
    let mut summary = markdown::render(runs, Redact::Nothing);
    if let Some(claims) = claims {
        summary.push_str(&crate::redact::printable(&markdown::claims(
            claims,
            Redact::Nothing,
        )));
        write(
            &report_dir.join("claims.json"),
            serde_json::to_string_pretty(claims)
                .unwrap_or_default()
                .as_bytes(),
        )?;
    }
    write(&report_dir.join("summary.md"), summary.as_bytes())
}

/// Where `harness report` writes by default: the (first) run directory, or the folder of a
/// baseline file.
pub fn default_out(run: &Path) -> std::path::PathBuf {
    if run.is_dir() {
        return run.to_owned();
    }
    match run.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => std::path::PathBuf::from("."),
    }
}

/// `compare.html`: a comparison `harness compare` wrote (read as JSON), for a person.
pub fn write_compare(
    report_dir: &Path,
    compare: &serde_json::Value,
) -> Result<(), ReportWriteError> {
    let view = compare_view::CompareView::from_value(compare);
    write(
        &report_dir.join("compare.html"),
        html::render_compare(&view, Redact::Nothing).as_bytes(),
    )
}

/// A comparison of two runs as `compare.md`, `compare.json` and `compare.html` in `dir`, with a
/// line on top of the Markdown when one is given (release validation's answer).
pub fn write_comparison(
    dir: &Path,
    comparison: &crate::compare::Comparison,
    headline: Option<&str>,
) -> Result<(), ReportWriteError> {
    let markdown = crate::compare::render::markdown(comparison);
    let markdown = match headline {
        Some(line) => format!("**{line}**\n\n{markdown}"),
        None => markdown,
    };
    write(&dir.join("compare.md"), markdown.as_bytes())?;
    write(&dir.join("compare.json"), comparison.to_json().as_bytes())?;
    let value = serde_json::to_value(comparison).map_err(|e| ReportWriteError {
        path: dir.join("compare.html"),
        message: e.to_string(),
    })?;
    write_compare(dir, &value)
}

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
    let result: &ScenarioResult = &crate::redact::result(result);
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
    matrix: &crate::kill_matrix::KillMatrix,
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
    let results: &[ScenarioResult] = &crate::redact::results(results);
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
