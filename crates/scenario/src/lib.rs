//! The scenario language, version 1: what a scenario file says, and how it is read.
//!
//! A scenario names the documentation claim it checks, the builders it runs on, the plugin
//! steps to run (each a container of the builder's role, configured by `PLUGIN_*` variables),
//! values to capture from the steps' artifacts, and the assertions that decide Pass or Fail.
//!
//! Strings may use placeholders: `${registry}` is the registry's address as the plugin
//! containers see it; `${capture.NAME}` is a captured value (assertions only); a step's `role`
//! may use `${builder}`, the builder under test (e.g. `${builder}-ecr`).

pub mod errors;
mod grammar;
mod load;
mod types;
mod validate;

pub use grammar::{
    check_digest, check_env_name, check_reference, check_relative_path, check_repository, check_tag,
};
pub use load::{discover, ScenarioFile, SourceText, MAX_SCENARIO_BYTES};
pub use types::*;
pub use validate::{container_suffix, substitute, MAX_NAME, MAX_TIMEOUT};
