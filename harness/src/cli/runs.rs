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
    harness::shard::check_whole(&base)?;
    harness::shard::check_whole(&new)?;
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
    // Shards of one matrix: each once, none missing, no plan twice (else an error naming it).
    harness::shard::check_merge(&runs)?;
    let compare = compare
        .map(|c| report::compare_view::read(&c))
        .transpose()?;
    let out = out.unwrap_or_else(|| report::default_out(&dirs[0]));
    let mut results: Vec<_> = runs
        .iter()
        .flat_map(|r| r.results.iter().cloned())
        .collect();
    if runs.len() > 1 {
        // The merged results as one baseline file, for `compare` and the next night's baseline.
        results.sort_by(|a, b| (&a.test, a.repetition).cmp(&(&b.test, b.repetition)));
        let merged = Run {
            id: out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "merged".to_owned()),
            source: out.join(report::runs::MERGED_FILE),
            results: results.clone(),
        };
        merged.save(&merged.source)?;
        outln!(
            "merged {} runs ({} results) into {}",
            runs.len(),
            merged.results.len(),
            merged.source.display()
        );
    }
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
