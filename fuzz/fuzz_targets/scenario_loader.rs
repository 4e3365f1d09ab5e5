//! The scenario loader on arbitrary input: `Scenario::parse` on UTF-8 text (and
//! `Scenario::from_bytes` on the rest, as `Scenario::load` reads files), then the error rendered
//! as `harness validate` prints it. Neither may panic, and rendering may not fail (the CLI's
//! `eprintln!("{:?}", report)` would panic on a formatting error).

#![no_main]

use std::path::Path;

use scenario::Scenario;
use libfuzzer_sys::fuzz_target;
use miette::{GraphicalReportHandler, GraphicalTheme, NarratableReportHandler};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.yaml");
    let loaded = match std::str::from_utf8(data) {
        Ok(text) => Scenario::parse(path, text),
        Err(_) => Scenario::from_bytes(path, data),
    };
    match loaded {
        Ok(scenario) => {
            for step in &scenario.steps {
                let _ = step.environment();
            }
        }
        Err(error) => {
            let mut out = String::new();
            GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
                .render_report(&mut out, &error)
                .expect("the graphical report renders");
            NarratableReportHandler::new()
                .render_report(&mut out, &error)
                .expect("the narrated report renders");
            let _ = format!("{:?}", miette::Report::new(error));
        }
    }
});
