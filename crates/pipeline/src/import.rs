//! Reading the Build and Push steps out of a Harness pipeline file — a whole pipeline, a stage,
//! a list of stages or steps, a step group, a single step; nested `parallel` — with the stage
//! each runs in, and turning them into a scenario skeleton ([`skeleton`]).
//!
//! A Build and Push step with a field Harness does not document is an error naming the field
//! and where it is. Every other step is listed, never dropped silently: a known step type as
//! not imported, an unknown one as a located warning.

use std::collections::{BTreeMap, BTreeSet};

use serde_saphyr::Spanned;

use crate::errors::ImportPipelineError;
use crate::stage::Infrastructure;
use crate::step::{BuildAndPushStep, StepType};
use crate::tree::{Node, Tree};
use crate::Scalar;

/// Step types Harness has that are not Build and Push steps: listed, not imported.
pub const OTHER_STEP_TYPES: &[&str] = &[
    "Run",
    "Background",
    "Plugin",
    "RunTests",
    "Test",
    "GitClone",
    "Action",
    "Bitrise",
    "AquaTrivy",
    "Security",
    "Grype",
    "Snyk",
    "Sonarqube",
    "Owasp",
    "Checkmarx",
    "Wiz",
    "ArtifactoryUpload",
    "S3Upload",
    "GCSUpload",
    "SaveCacheS3",
    "RestoreCacheS3",
    "SaveCacheGCS",
    "RestoreCacheGCS",
    "ShellScript",
    "Http",
    "Wait",
    "Barrier",
    "HarnessApproval",
    "JiraCreate",
    "JiraUpdate",
    "Email",
    "IACMTerraformPlugin",
    "SscaOrchestration",
    "SscaEnforcement",
    "ProvenanceStep",
    "SlsaVerification",
];

/// What a pipeline file holds for the harness.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The pipeline's name (or identifier), when the file has one.
    pub name: Option<String>,
    pub steps: Vec<ImportedStep>,
    /// What was not imported, each with where it is: `12:9: step \`lint\` (Run) is not a Build and Push step`.
    pub not_imported: Vec<String>,
}

/// A Build and Push step and the stage it runs in.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedStep {
    pub step: BuildAndPushStep,
    /// The step as written (for the skeleton), and as JSON.
    pub tree: Tree,
    pub raw: serde_json::Value,
    pub line: u64,
    /// The stage's identifier, if the step is in one.
    pub stage: Option<String>,
    /// `None` when nothing in the file says (a bare step).
    pub infrastructure: Option<Infrastructure>,
    pub stage_variables: BTreeMap<String, Scalar>,
    /// The `parallel` group the step is in (`stage/parallel-N`), if any.
    pub parallel: Option<String>,
}

/// Reads `text` (a pipeline file or a fragment of one).
pub fn import(text: &str) -> Result<Imported, ImportPipelineError> {
    let root: Node = serde_saphyr::from_str(text).map_err(|e| ImportPipelineError::Syntax {
        message: e.to_string(),
    })?;
    let mut walk = Walk {
        imported: Imported {
            name: None,
            steps: Vec::new(),
            not_imported: Vec::new(),
        },
        parallel_groups: 0,
    };
    walk.root(&root)?;
    if walk.imported.steps.is_empty() {
        return Err(ImportPipelineError::NoBuildAndPushStep {
            types: StepType::ALL.join(", "),
        });
    }
    Ok(walk.imported)
}

struct Walk {
    imported: Imported,
    parallel_groups: usize,
}

/// The stage around the steps being walked.
#[derive(Clone, Default)]
struct StageContext {
    identifier: Option<String>,
    infrastructure: Option<Infrastructure>,
    variables: BTreeMap<String, Scalar>,
    parallel: Option<String>,
}

impl Walk {
    fn root(&mut self, node: &Node) -> Result<(), ImportPipelineError> {
        match &node.value {
            Tree::Map(_) => {
                if let Some(pipeline) = node.value.get("pipeline") {
                    self.imported.name = pipeline
                        .value
                        .get("name")
                        .or_else(|| pipeline.value.get("identifier"))
                        .and_then(|n| n.value.text());
                    return self.stages(pipeline.value.get("stages"));
                }
                if node.value.get("stages").is_some() {
                    return self.stages(node.value.get("stages"));
                }
                if let Some(stage) = node.value.get("stage") {
                    return self.stage(stage);
                }
                // A stage's spec, or a fragment of one (`runtime:` + `execution:`).
                if node.value.get("execution").is_some()
                    || node.value.get("infrastructure").is_some()
                {
                    let context = StageContext {
                        infrastructure: infrastructure_of(&node.value),
                        ..StageContext::default()
                    };
                    return self.execution(node.value.get("execution"), &context);
                }
                self.step_item(node, &StageContext::default())
            }
            Tree::Seq(items) => {
                for item in items {
                    if item.value.get("stage").is_some() {
                        self.stage_item(item)?;
                    } else {
                        self.step_item(item, &StageContext::default())?;
                    }
                }
                Ok(())
            }
            _ => Err(ImportPipelineError::NotAPipeline),
        }
    }

    fn stages(&mut self, stages: Option<&Node>) -> Result<(), ImportPipelineError> {
        if let Some(Tree::Seq(items)) = stages.map(|s| &s.value) {
            for item in items {
                self.stage_item(item)?;
            }
        }
        Ok(())
    }

    /// `- stage: …` or `- parallel: [stages]`.
    fn stage_item(&mut self, item: &Node) -> Result<(), ImportPipelineError> {
        if let Some(stage) = item.value.get("stage") {
            return self.stage(stage);
        }
        if let Some(Tree::Seq(stages)) = item.value.get("parallel").map(|p| &p.value) {
            for s in stages {
                self.stage_item(s)?;
            }
        }
        Ok(())
    }

    fn stage(&mut self, stage: &Node) -> Result<(), ImportPipelineError> {
        let identifier = stage
            .value
            .get("identifier")
            .or_else(|| stage.value.get("name"))
            .and_then(|n| n.value.text());
        let spec = stage.value.get("spec");
        let mut variables = BTreeMap::new();
        if let Some(Tree::Seq(vars)) = stage.value.get("variables").map(|v| &v.value) {
            for var in vars {
                if let (Some(name), Some(value)) = (
                    var.value.get("name").and_then(|n| n.value.text()),
                    var.value.get("value").and_then(|v| v.value.text()),
                ) {
                    variables.insert(name, Scalar(value));
                }
            }
        }
        let context = StageContext {
            identifier,
            infrastructure: spec.and_then(|s| infrastructure_of(&s.value)),
            variables,
            parallel: None,
        };
        self.execution(spec.and_then(|s| s.value.get("execution")), &context)
    }

    /// `execution: {steps: […]}`, or (as in some docs' snippets) `execution: […]`.
    fn execution(
        &mut self,
        execution: Option<&Node>,
        context: &StageContext,
    ) -> Result<(), ImportPipelineError> {
        let Some(execution) = execution else {
            return Ok(());
        };
        let steps = match &execution.value {
            Tree::Seq(_) => execution,
            _ => match execution.value.get("steps") {
                Some(steps) => steps,
                None => return Ok(()),
            },
        };
        self.steps(steps, context)
    }

    fn steps(&mut self, steps: &Node, context: &StageContext) -> Result<(), ImportPipelineError> {
        if let Tree::Seq(items) = &steps.value {
            for item in items {
                self.step_item(item, context)?;
            }
        }
        Ok(())
    }

    /// `- step: …`, `- parallel: […]`, `- stepGroup: {steps: […]}`.
    fn step_item(
        &mut self,
        item: &Node,
        context: &StageContext,
    ) -> Result<(), ImportPipelineError> {
        if let Some(step) = item.value.get("step") {
            return self.step(step, context);
        }
        if let Some(parallel) = item.value.get("parallel") {
            self.parallel_groups += 1;
            let mut inner = context.clone();
            inner.parallel = Some(format!("parallel-{}", self.parallel_groups));
            return self.steps(parallel, &inner);
        }
        if let Some(group) = item.value.get("stepGroup") {
            if let Some(steps) = group.value.get("steps") {
                return self.steps(steps, context);
            }
            return Ok(());
        }
        // A bare step (`type:` + `spec:`) at the top of a fragment.
        if item.value.get("type").is_some() && item.value.get("spec").is_some() {
            return self.step(item, context);
        }
        self.imported.not_imported.push(format!(
            "{}:{}: not a step, stage, parallel group or step group: not imported",
            item.referenced.line(),
            item.referenced.column()
        ));
        Ok(())
    }

    fn step(&mut self, step: &Node, context: &StageContext) -> Result<(), ImportPipelineError> {
        let name = step
            .value
            .get("identifier")
            .or_else(|| step.value.get("name"))
            .and_then(|n| n.value.text())
            .unwrap_or_else(|| "(unnamed)".to_owned());
        let step_type = step.value.get("type");
        let type_name = step_type.and_then(|t| t.value.text()).unwrap_or_default();
        let at = step_type.map_or(&step.referenced, |t| &t.referenced);
        if !StepType::ALL.contains(&type_name.as_str()) {
            let what = if OTHER_STEP_TYPES.contains(&type_name.as_str()) {
                format!("step `{name}` ({type_name}) is not a Build and Push step: not imported")
            } else {
                format!(
                    "step `{name}` has type `{type_name}`, which this harness does not know: \
                     not imported"
                )
            };
            self.imported
                .not_imported
                .push(format!("{}:{}: {what}", at.line(), at.column()));
            return Ok(());
        }
        let raw = step.value.to_json();
        let parsed: BuildAndPushStep = serde_json::from_value(raw.clone()).map_err(|e| {
            let message = e.to_string();
            // serde names the field: "unknown field `cachng`, expected one of …".
            let field = message
                .split('`')
                .nth(1)
                .filter(|_| message.contains("field"))
                .map(str::to_owned);
            let place = field
                .as_deref()
                .and_then(|f| step.value.find_key(f))
                .map_or(&step.referenced, |k: &Spanned<String>| &k.referenced);
            ImportPipelineError::InvalidStep {
                line: place.line(),
                column: place.column(),
                step: name.clone(),
                message,
            }
        })?;
        self.imported.steps.push(ImportedStep {
            step: parsed,
            tree: step.value.clone(),
            raw,
            line: step.referenced.line(),
            stage: context.identifier.clone(),
            infrastructure: context.infrastructure,
            stage_variables: context.variables.clone(),
            parallel: context.parallel.clone(),
        });
        Ok(())
    }
}

/// A stage spec's infrastructure: `infrastructure: {type: KubernetesDirect | VM}`,
/// `runtime: {type: Cloud | Docker}`.
fn infrastructure_of(spec: &Tree) -> Option<Infrastructure> {
    let kind = |key: &str| {
        spec.get(key)
            .and_then(|n| n.value.get("type"))
            .and_then(|t| t.value.text())
    };
    if let Some(kind) = kind("infrastructure") {
        return match kind.as_str() {
            "KubernetesDirect" | "KubernetesHosted" => Some(Infrastructure::Kubernetes),
            "VM" => Some(Infrastructure::Vm),
            "Docker" => Some(Infrastructure::Local),
            _ => None,
        };
    }
    match kind("runtime").as_deref() {
        Some("Cloud") => Some(Infrastructure::Cloud),
        Some("Docker") => Some(Infrastructure::Local),
        _ => None,
    }
}

/// Every `<+…>` expression in a JSON value's strings.
pub fn expressions_in(value: &serde_json::Value, found: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::String(s) => found.extend(
            crate::translate::expressions(s)
                .into_iter()
                .map(str::to_owned),
        ),
        serde_json::Value::Array(items) => items.iter().for_each(|i| expressions_in(i, found)),
        serde_json::Value::Object(map) => map.values().for_each(|v| expressions_in(v, found)),
        _ => {}
    }
}
