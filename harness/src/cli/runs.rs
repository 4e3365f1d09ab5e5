//! Finished runs: `harness compare`, `harness report`, `harness timings`.

use std::path::PathBuf;
use std::process::ExitCode;

use harness::{out, outln};
use report::runs::Run;

use super::args::CompareArgs;
use super::Outcome;

pub fn compare(args: CompareArgs) -> Outcome {
    use report::compare::{self, render};
    let settings = args.judge.settings()?;
    let base = report::runs::Run::load(&args.base)?;
    let new = report::runs::Run::load(&args.new)?;
    let calibration = args.judge.calibration()?;
    let comparison = compare::compare_calibrated(&[base], &[new], &settings, calibration.as_ref());
    out!("{}", render::terminal(&comparison));
    if let Some(path) = &args.markdown {
        compare::write(path, &render::markdown(&comparison))?;
    }
    if let Some(path) = &args.json {
        compare::write(path, &comparison.to_json())?;
    }
    Ok(ExitCode::from(comparison.exit_code()))
}

pub fn reports(dirs: Vec<PathBuf>, compare: Option<PathBuf>, out: Option<PathBuf>) -> Outcome {
    let runs = dirs
        .iter()
        .map(|d| Run::load(d))
        .collect::<Result<Vec<_>, _>>()?;
    let compare = compare
        .map(|c| report::compare_view::read(&c))
        .transpose()?;
    let out = out.unwrap_or_else(|| report::default_out(&dirs[0]));
    let results: Vec<_> = runs
        .iter()
        .flat_map(|r| r.results.iter().cloned())
        .collect();
    let claims = harness::ledger::view(&harness::session::repo_root(), &results);
    report::write_reports(&out, &runs, claims.as_ref())?;
    outln!("wrote {0}/report.html and {0}/summary.md", out.display());
    if let Some(compare) = compare {
        report::write_compare(&out, &compare)?;
        outln!("wrote {}/compare.html", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn timings(runs: Vec<PathBuf>, title: String) -> Outcome {
    let runs = runs
        .iter()
        .map(|path| Run::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let results = runs.iter().flat_map(|run| &run.results);
    out!("{}", report::timings::Timings::of(results).table(&title));
    Ok(ExitCode::SUCCESS)
}
