//! Errors, named after the action that failed.

use thiserror::Error;

/// A Build and Push step could not be turned into a plugin's variables.
#[derive(Debug, Error, PartialEq)]
pub enum TranslateStepError {
    #[error("{step_type} needs `spec.{field}`")]
    MissingField {
        step_type: &'static str,
        field: &'static str,
    },
    #[error(
        "`{expression}` in `{field}` has no value: give it one under `inputs` (e.g. \
         `\"{expression}\": \"1\"`)"
    )]
    UnfilledExpression { expression: String, field: String },
    #[error(
        "connector `{connector}` ({kind} connector, in `{field}`) stands for no registry: name \
         it under `connectors` (e.g. `{connector}: {{registry: registry}}`)"
    )]
    UnknownConnector {
        connector: String,
        kind: &'static str,
        field: &'static str,
    },
    #[error("`spec.{field}` must be true or false, not `{value}`")]
    NotABoolean { field: &'static str, value: String },
}

/// A pipeline file could not be imported.
#[derive(Debug, Error, PartialEq)]
pub enum ImportPipelineError {
    #[error("not YAML: {message}")]
    Syntax { message: String },
    #[error("the file is not a pipeline, stage or step (its top is neither a mapping nor a list)")]
    NotAPipeline,
    #[error("the file has no Build and Push step (types: {types})")]
    NoBuildAndPushStep { types: String },
    #[error("{line}:{column}: step `{step}`: {message}")]
    InvalidStep {
        line: u64,
        column: u64,
        step: String,
        message: String,
    },
}
