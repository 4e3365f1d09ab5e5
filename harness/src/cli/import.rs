//! `harness import PIPELINE.yaml`: a scenario skeleton from a Harness pipeline file's Build and
//! Push steps. What is not imported is listed on stderr and in the skeleton's header.

use std::path::Path;
use std::process::ExitCode;

use harness::errln;

use super::Outcome;

pub fn import(pipeline: &Path, out: Option<&Path>, workspace: &str) -> Outcome {
    let text = std::fs::read_to_string(pipeline)
        .map_err(|e| format!("cannot read {}: {e}", pipeline.display()))?;
    let imported =
        pipeline::import::import(&text).map_err(|e| format!("{}:{e}", pipeline.display()))?;
    for note in &imported.not_imported {
        errln!("{}:{note}", pipeline.display());
    }
    let source = pipeline.file_name().map_or_else(
        || pipeline.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let skeleton = pipeline::skeleton::skeleton(&imported, &source, workspace);
    // The skeleton must be a scenario this harness reads: check it as `validate` would.
    let check_path = out.unwrap_or(Path::new("imported.yaml"));
    if let Err(e) = scenario::Scenario::parse(check_path, &skeleton) {
        return Err(format!(
            "the skeleton does not validate (a harness bug; please report it): {e}"
        )
        .into());
    }
    match out {
        Some(path) => {
            std::fs::write(path, &skeleton)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            errln!(
                "wrote {} ({} Build and Push step(s)); run it with `harness run` once its inputs are filled",
                path.display(),
                imported.steps.len()
            );
        }
        None => harness::out!("{skeleton}"),
    }
    Ok(ExitCode::SUCCESS)
}
