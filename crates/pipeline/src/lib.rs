//! Harness CI's Build and Push steps, as users write them in pipeline YAML, and what Harness
//! makes of them:
//!
//! - [`step`]: the step itself (`type: BuildAndPushDockerRegistry | …ECR | …GCR | …GAR | …ACR`
//!   and its `spec`), read strictly: an unknown field is an error naming it;
//! - [`stage`]: what the step runs in (the stage's infrastructure, feature flags, variables,
//!   the connectors it names, and the values of its `<+…>` expressions);
//! - [`select`]: the builder Harness picks, by the docs' table "How Harness Chooses Between
//!   BuildX and Kaniko";
//! - [`translate`]: the plugin's `PLUGIN_*` variables, as Harness's CI manager sets them
//!   (harness-core `PluginSettingUtils`, plugin-contracts.md §1.2).
//!
//! This crate knows nothing of scenarios, containers or registries: it turns YAML into a
//! builder, a role and variables. **Never** runs anything.

pub mod errors;
pub mod import;
pub mod scalar;
pub mod select;
pub mod skeleton;
pub mod stage;
pub mod step;
pub mod translate;
pub mod tree;

pub use errors::{ImportPipelineError, TranslateStepError};
pub use scalar::Scalar;
pub use select::{select, Builder, Selection};
pub use stage::{Connector, Infrastructure, Stage};
pub use step::{BuildAndPushStep, Spec, StepType};
pub use translate::{translate, ConnectorTarget, DaemonChoice, Translation};
