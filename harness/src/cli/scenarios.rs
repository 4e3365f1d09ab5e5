//! The scenario files: `harness list`, `harness validate`, `harness schema`.

use std::path::PathBuf;
use std::process::ExitCode;

use harness::plan::plans;
use harness::session;
use harness::{errln, out, outln};
use scenario::Scenario;

use super::Outcome;

/// `harness list`: every plan's name.
pub fn list() -> Outcome {
    for plan in plans(&session::repo_root().join("scenarios"))? {
        outln!("{}", plan.test_name);
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
