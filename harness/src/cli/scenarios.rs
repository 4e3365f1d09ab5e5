//! The scenario files: `harness list`, `harness validate`, `harness schema`.

use std::path::PathBuf;
use std::process::ExitCode;

use harness::plan::plans;
use harness::session;
use harness::{errln, out, outln};
use scenario::Scenario;

use super::Outcome;

/// `harness list`: every plan's name.
pub fn list(shard: super::args::ShardArgs) -> Outcome {
    let (plans, record) = shard.select(plans(&session::repo_root().join("scenarios"))?, None)?;
    for plan in &plans {
        outln!("{}", plan.test_name);
    }
    if let Some(r) = record {
        let load = match r.balanced_by.as_str() {
            "plan name" => format!("{} plans that run", r.expected_load),
            _ => format!("{:.1} s of plan time", r.expected_load as f64 / 1000.0),
        };
        errln!(
            "shard {}: {} of {} plans, expected {load} (balanced by {})",
            r.shard,
            r.names.len(),
            r.total,
            r.balanced_by
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `harness validate`: the files given, or every scenario file; each error located.
pub fn validate(files: Vec<PathBuf>) -> Outcome {
    let files = if files.is_empty() {
        scenario::discover(&session::repo_root().join("scenarios"))?
            .into_iter()
            .map(|f| f.path)
            .collect()
    } else {
        files
    };
    let mut bad = 0;
    for file in &files {
        match Scenario::load(file) {
            Ok(_) => outln!("ok    {}", file.display()),
            Err(e) => {
                bad += 1;
                // Without colours: printing escapes control characters, the file's included.
                let mut shown = String::new();
                let handler = miette::GraphicalReportHandler::new_themed(
                    miette::GraphicalTheme::unicode_nocolor(),
                );
                match handler.render_report(&mut shown, &e) {
                    Ok(()) => errln!("{shown}"),
                    Err(_) => errln!("{e}"),
                }
            }
        }
    }
    outln!("{} file(s), {bad} invalid", files.len());
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `harness schema`: the JSON Schema of scenario files.
pub fn schema() -> Outcome {
    out!("{}", scenario::json_schema());
    Ok(ExitCode::SUCCESS)
}
