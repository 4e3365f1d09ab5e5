//! A scenario skeleton from an imported pipeline: its Build and Push steps as Harness steps in
//! their stages, every connector standing for the scenario's registry, every `<+…>` expression
//! and repository placeholder as an input with a sample value to replace, and the assertions
//! the steps' own settings imply (tags pushed; nothing pushed under PLUGIN_NO_PUSH; a tarball
//! at PLUGIN_TAR_PATH).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::import::{expressions_in, Imported, ImportedStep};
use crate::stage::{Connector, Infrastructure, Stage};
use crate::step::StepType;
use crate::translate::{translate, ConnectorTarget};
use crate::Scalar;

/// The scenario registry every connector stands for.
const REGISTRY: &str = "registry";

#[derive(Serialize)]
struct Skeleton {
    version: u32,
    name: String,
    description: String,
    claim: Vec<String>,
    builders: Vec<String>,
    workspace: String,
    harness_stage: Stage,
    steps: Vec<StepOut>,
    assertions: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    leftovers: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    loosen_accounting: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct StepOut {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel: Option<String>,
    harness_step: crate::tree::Tree,
    #[serde(skip_serializing_if = "Option::is_none")]
    harness_stage: Option<Stage>,
}

/// The skeleton's text. `source` names the pipeline file in the header; `workspace` is the
/// build context the scenario copies into the workspace.
pub fn skeleton(imported: &Imported, source: &str, workspace: &str) -> String {
    let mut notes: Vec<String> = imported.not_imported.clone();
    // Every connector any step names stands for the registry.
    let mut connectors = BTreeMap::new();
    for step in &imported.steps {
        for name in std::iter::once(&step.step.spec.connector_ref)
            .chain(&step.step.spec.base_image_connector_refs)
        {
            connectors.insert(
                name.clone(),
                Connector {
                    registry: REGISTRY.to_owned(),
                },
            );
        }
    }
    let stage_of = |step: &ImportedStep, inputs: &BTreeMap<String, String>| {
        let connectors = connectors.clone();
        Stage {
            infrastructure: step.infrastructure.unwrap_or(Infrastructure::Kubernetes),
            feature_flags: Vec::new(),
            variables: step.stage_variables.clone(),
            connectors,
            inputs: inputs.clone(),
        }
    };

    // Inputs: every expression, and where a repository is a placeholder, one in the registry.
    let mut expressions = BTreeSet::new();
    for step in &imported.steps {
        expressions_in(&step.raw, &mut expressions);
        for value in step.stage_variables.values() {
            expressions.extend(
                crate::translate::expressions(value.as_str())
                    .into_iter()
                    .map(str::to_owned),
            );
        }
    }
    let mut inputs = BTreeMap::new();
    for (i, expression) in expressions.iter().enumerate() {
        inputs.insert(expression.clone(), sample(expression, i + 1));
    }
    for step in &imported.steps {
        let spec = &step.step.spec;
        let placeholder = match step.step.step_type {
            StepType::BuildAndPushDockerRegistry => spec.repo.clone(),
            StepType::BuildAndPushAcr => spec.repository.clone(),
            _ => None,
        };
        if let Some(repo) = placeholder.filter(|r| !r.contains("${") && !r.contains("<+")) {
            let path = match step.step.step_type {
                StepType::BuildAndPushAcr => repo.split_once('/').map_or(repo.as_str(), |(_, p)| p),
                _ => repo.as_str(),
            };
            inputs.insert(
                repo.clone(),
                format!("${{{REGISTRY}}}/{}", repository_name(path)),
            );
        }
    }

    // The steps, their stages, and what their settings imply.
    let first = imported
        .steps
        .first()
        .expect("import returns at least one step");
    if first.infrastructure.is_none() {
        notes.push(
            "the file names no infrastructure for the steps: kubernetes is assumed (change \
             `harness_stage.infrastructure`)"
                .to_owned(),
        );
    }
    let scenario_stage = stage_of(first, &inputs);
    let mut names = BTreeSet::new();
    let mut steps = Vec::new();
    let mut assertions = Vec::new();
    let mut builders = Vec::new();
    let mut pushes: Vec<(usize, String)> = Vec::new();
    let mut leftovers = Vec::new();
    let mut loosen = BTreeMap::new();
    let mut no_push: Vec<(usize, String)> = Vec::new();
    for (index, step) in imported.steps.iter().enumerate() {
        let base = step_name(
            step.step
                .identifier
                .as_deref()
                .or(step.step.name.as_deref()),
            index,
        );
        let mut name = base.clone();
        let mut n = 2;
        while !names.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        let stage = stage_of(step, &inputs);
        let connector = |c: &str| {
            stage.connectors.get(c).map(|t| ConnectorTarget {
                address: format!("${{{}}}", t.registry),
                registry: t.registry.clone(),
                credentials: None,
            })
        };
        assertions.push(serde_json::json!({ "step_succeeded": name }));
        match translate(&step.step, &stage, &connector) {
            Ok(t) => {
                if builders.is_empty() {
                    builders.push(t.builder.name().to_owned());
                }
                let on = |k: &str| t.env.get(k).is_some_and(|v| Scalar(v.clone()).is_true());
                let repo = t.env.get("PLUGIN_REPO").cloned().unwrap_or_default();
                let repository = match t.step_type {
                    StepType::BuildAndPushDockerRegistry => repo
                        .strip_prefix(&format!("${{{REGISTRY}}}/"))
                        .map(str::to_owned),
                    StepType::BuildAndPushAcr => repo.split_once('/').map(|(_, p)| p.to_owned()),
                    _ => Some(repo.clone()),
                };
                let tags: Vec<String> = t
                    .env
                    .get("PLUGIN_TAGS")
                    .map(|t| t.split(',').map(|s| s.trim().to_owned()).collect())
                    .unwrap_or_default();
                let push_only = on("PLUGIN_PUSH_ONLY");
                // What a plugin leaves in a daemon it is given: BuildX its images, by name;
                // drone-docker a random temporary name for each build.
                if t.daemon == crate::translate::DaemonChoice::Shared {
                    match t.builder {
                        crate::select::Builder::Buildx => {
                            for tag in &tags {
                                let reference = format!("{repo}:{tag}");
                                if leftovers.iter().any(|l: &serde_json::Value| {
                                    l["daemon_image"]["reference"] == reference.as_str()
                                }) {
                                    continue;
                                }
                                leftovers.push(serde_json::json!({"daemon_image": {
                                    "reference": reference,
                                    "because": format!("step `{name}` builds or loads the image in the daemon it is given (PLUGIN_DAEMON_OFF)"),
                                }}));
                            }
                        }
                        crate::select::Builder::Docker => {
                            loosen.insert("daemon".to_owned(), "drone-docker tags each build with a random temporary name in the daemon it is given, so its images cannot be named in advance".to_owned());
                        }
                        crate::select::Builder::Kaniko => {}
                    }
                }
                let builds_only = !push_only && (on("PLUGIN_NO_PUSH") || on("PLUGIN_DRY_RUN"));
                match repository {
                    Some(repository) if builds_only => no_push.push((index, repository)),
                    Some(repository) => {
                        for tag in &tags {
                            assertions.push(serde_json::json!({
                                "tag_in_registry": {"repository": repository, "tag": tag}
                            }));
                        }
                        pushes.push((index, repository));
                    }
                    None => notes.push(format!(
                        "step `{name}` pushes to `{repo}`, outside the scenario's registry: no \
                         registry assertion"
                    )),
                }
                let tar = t
                    .env
                    .get("PLUGIN_TAR_PATH")
                    .or_else(|| t.env.get("PLUGIN_DESTINATION_TAR_PATH"));
                if let Some(path) = tar.filter(|_| !push_only) {
                    match workspace_path(path) {
                        Some(path) => {
                            assertions.push(serde_json::json!({ "tarball": {"path": path} }))
                        }
                        None => notes.push(format!(
                            "step `{name}` writes its tarball to `{path}`, outside the workspace: \
                             no tarball assertion"
                        )),
                    }
                }
            }
            Err(e) => notes.push(format!("step `{name}`: {e}")),
        }
        steps.push(StepOut {
            name,
            parallel: step.parallel.clone(),
            harness_step: step.tree.clone(),
            harness_stage: (stage != scenario_stage).then_some(stage),
        });
    }
    // Nothing pushed by a build-only step, unless a later step pushes the same repository.
    for (index, repository) in no_push {
        if !pushes.iter().any(|(i, r)| *i > index && *r == repository) {
            assertions
                .push(serde_json::json!({ "no_tags_in_registry": {"repository": repository} }));
        }
    }
    if builders.is_empty() {
        builders.push("kaniko".to_owned());
    }

    let name = imported
        .name
        .clone()
        .unwrap_or_else(|| format!("imported from {source}"));
    let skeleton = Skeleton {
        version: 1,
        name: name.clone(),
        description: format!(
            "The Build and Push steps of {source}, imported by `harness import`: each runs as the \
             Harness step it is, on the builder Harness picks for its stage."
        ),
        claim: vec!["harness-selects-builder".to_owned()],
        builders,
        workspace: workspace.to_owned(),
        harness_stage: scenario_stage,
        steps,
        assertions,
        leftovers,
        loosen_accounting: loosen,
    };
    let mut out = String::new();
    out.push_str(&format!(
        "# Imported by `harness import` from {source}.\n\
         # Before running it: give each input the value your pipeline gives it (the samples below \
         only make it runnable),\n\
         # point `workspace` at your build context, check the assertions and cite the ledger's \
         claims it checks.\n"
    ));
    if !notes.is_empty() {
        out.push_str("# Not imported or not checked:\n");
        for note in &notes {
            out.push_str(&format!("#   - {}\n", note.replace('\n', " ")));
        }
    }
    out.push_str("# yaml-language-server: $schema=../scenario.schema.json\n");
    out.push_str(&serde_saphyr::to_string(&skeleton).expect("a skeleton serializes"));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// A sample value for an expression: runnable, and obviously a sample.
fn sample(expression: &str, n: usize) -> String {
    if expression.contains("sequenceId") {
        "1".to_owned()
    } else if expression.contains("secrets.getValue") {
        format!("sample-secret-{n}")
    } else {
        format!("sample-{n}")
    }
}

/// A repository path as a registry accepts it (lowercase; other characters become `-`).
fn repository_name(path: &str) -> String {
    let name: String = path
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._/-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches(|c| "._/-".contains(c)).to_owned();
    if name.is_empty() {
        "imported".to_owned()
    } else {
        name
    }
}

/// A step's name from its identifier: lowercase letters, digits and `-`.
fn step_name(identifier: Option<&str>, index: usize) -> String {
    let name: String = identifier
        .unwrap_or_default()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-').chars().take(60).collect::<String>();
    if name.is_empty() {
        format!("step-{}", index + 1)
    } else {
        name
    }
}

/// A tarball path relative to the workspace (`/harness/x.tar` → `x.tar`), if it is in it.
fn workspace_path(path: &str) -> Option<String> {
    let relative = match path.strip_prefix("/harness/") {
        Some(rest) => rest,
        None if path.starts_with('/') => return None,
        None => path.trim_start_matches("./"),
    };
    (!relative.is_empty() && !relative.split('/').any(|c| c == "..")).then(|| relative.to_owned())
}
