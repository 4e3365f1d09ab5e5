//! The scenario language, version 1: what a scenario file says, and how it is read.
//!
//! A scenario names the documentation claim it checks, the builders it runs on, the plugin
//! steps to run (each a container of the builder's role, configured by `PLUGIN_*` variables),
//! values to capture from the steps' artifacts, and the assertions that decide Pass or Fail.
//!
//! Strings may use placeholders: `${registry}` is the registry's address as the plugin
//! containers see it; `${nonce}` is a random value drawn for each run of a plan (16 lowercase
//! hex digits: a build argument whose echo in the build's output proves the build ran);
//! `${capture.NAME}` is a captured value (assertions only); a step's `role` may use
//! `${builder}`, the builder under test (e.g. `${builder}-ecr`).

pub mod errors;
mod grammar;
mod load;
mod services;
mod types;
mod validate;

pub use grammar::{
    check_digest, check_env_name, check_reference, check_relative_path, check_repository,
    check_tag, cpu_quantity, memory_quantity,
};
pub use load::{discover, ScenarioFile, SourceText, MAX_SCENARIO_BYTES};
pub use services::*;
pub use types::*;
pub use validate::{
    container_suffix, is_claim_id, substitute, MAX_CLAIM_ID, MAX_NAME, MAX_TIMEOUT, NONCE,
};

/// Reads a YAML file of the harness's own (`what` names it in the error) into `T`.
pub fn read_yaml<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    what: &'static str,
) -> Result<T, errors::YamlReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| errors::YamlReadError::Read {
        what,
        path: path.to_owned(),
        source,
    })?;
    serde_saphyr::from_str(&text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        errors::YamlReadError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message: e.to_string().lines().next().unwrap_or("").to_owned(),
        }
    })
}
