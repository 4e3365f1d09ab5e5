//! A Build and Push step → the plugin's variables, as Harness's CI manager sets them
//! (harness-core `PluginSettingUtils`, summarised in plugin-contracts.md §1.2):
//!
//! - step fields: `PLUGIN_REPO`, `PLUGIN_TAGS` (`a,b`), `PLUGIN_DOCKERFILE`, `PLUGIN_CONTEXT`,
//!   `PLUGIN_TARGET`, `PLUGIN_BUILD_ARGS` and `PLUGIN_CUSTOM_LABELS` (`k=v,k=v`),
//!   `PLUGIN_REGISTRY` (Docker: the connector's URL; ECR `<account>.dkr.ecr.<region>.amazonaws.com`;
//!   GCR/GAR `<host>/<project>`; ACR the repository up to its first `/`), `PLUGIN_REGION` (ECR);
//! - Kubernetes: `PLUGIN_SNAPSHOT_MODE=redo` unless `optimize: false`, `PLUGIN_ARTIFACT_FILE`,
//!   `PLUGIN_ENABLE_CACHE` + `PLUGIN_CACHE_REPO` for a remote cache;
//! - other infrastructure: `PLUGIN_DAEMON_OFF=true`, always; with BuildX also `PLUGIN_CACHE_FROM`,
//!   `PLUGIN_CACHE_TO` and, with caching, `PLUGIN_BUILDER_DRIVER_OPTS=image=harness/buildkit:1.0.1`;
//! - the connector's credentials (Docker: `PLUGIN_USERNAME`, `PLUGIN_PASSWORD`), the base image
//!   connector (`PLUGIN_BASE_IMAGE_*`), build secrets (`PLUGIN_SECRETS_FROM_ENV`/`_FILE`);
//! - then `envVariables` as they are, over everything else; stage variables under everything.
//!
//! `<+…>` expressions and placeholders are filled from the stage's `inputs` wherever they
//! appear; a file secret given as an expression is the path its input names (where Harness
//! would mount the secret). The connectors stand for the scenario's registries: an ECR, GCR, GAR or ACR registry host is
//! replaced by the registry its connector names, and the translation says so (`stand_ins`).

use std::collections::BTreeMap;

use crate::errors::TranslateStepError;
use crate::select::{select, Builder};
use crate::stage::Stage;
use crate::step::{BuildAndPushStep, StepType};

/// `PLUGIN_ARTIFACT_FILE` on Kubernetes (asserted by harness-core's unit tests).
pub const KUBERNETES_ARTIFACT_FILE: &str = "/addon/tmp/.plugin/artifact";

/// The BuildKit image Harness names for Docker layer caching on VMs.
pub const DLC_BUILDKIT_IMAGE: &str = "harness/buildkit:1.0.1";

/// The registry a connector stands for, as steps address it, and its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorTarget {
    /// e.g. `${registry}`.
    pub address: String,
    /// The registry's name in the scenario, for messages.
    pub registry: String,
    pub credentials: Option<(String, String)>,
}

/// Whether the plugin uses a daemon it is given (the VM's, or a DinD background step's through
/// a shared `/var/run`) or starts its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonChoice {
    Shared,
    Own,
}

/// What Harness runs for a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    pub step_type: StepType,
    pub builder: Builder,
    /// The profile role: the builder, with the registry variant (`kaniko-ecr`).
    pub role: String,
    /// Why this builder (the row of the docs' table).
    pub why: String,
    /// Every variable the step's container gets.
    pub env: BTreeMap<String, String>,
    pub daemon: DaemonChoice,
    /// `runAsUser`.
    pub user: Option<String>,
    /// `resources.limits`, as written (Kubernetes quantities).
    pub memory: Option<String>,
    pub cpu: Option<String>,
    pub timeout: Option<String>,
    /// What the local registries stand in for, and so is not checked: e.g. the ECR host and
    /// the AWS token exchange.
    pub stand_ins: Vec<String>,
}

/// Translates `step` in `stage`; `connector` says which registry a connector stands for.
pub fn translate(
    step: &BuildAndPushStep,
    stage: &Stage,
    connector: &dyn Fn(&str) -> Option<ConnectorTarget>,
) -> Result<Translation, TranslateStepError> {
    let fill = Filler {
        inputs: &stage.inputs,
    };
    let spec = &step.spec;
    let step_type = step.step_type;
    let kind = step_type.connector_kind();
    let target_of = |name: &str, field: &'static str| {
        let name = fill.value(name, field)?;
        connector(&name).ok_or(TranslateStepError::UnknownConnector {
            connector: name,
            kind,
            field,
        })
    };
    let required = |value: &Option<String>, field: &'static str| match value {
        Some(v) if !v.trim().is_empty() => fill.value(v, field),
        _ => Err(TranslateStepError::MissingField {
            step_type: step_type.name(),
            field,
        }),
    };

    let caching = fill.boolean(spec.caching.as_ref().map(|c| c.as_str()), "caching", false)?;
    let optimize = fill.boolean(spec.optimize.as_ref().map(|c| c.as_str()), "optimize", true)?;
    let selection = select(stage.infrastructure, caching, &stage.feature_flags);
    let builder = selection.builder;
    let kubernetes = stage.infrastructure.is_kubernetes();
    let target = target_of(&spec.connector_ref, "connectorRef")?;

    let mut env = BTreeMap::new();
    let mut stand_ins = Vec::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };

    // The registry and repository, by step type.
    match step_type {
        StepType::BuildAndPushDockerRegistry => {
            set("PLUGIN_REPO", required(&spec.repo, "repo")?);
            set("PLUGIN_REGISTRY", target.address.clone());
            if let Some((user, password)) = &target.credentials {
                set("PLUGIN_USERNAME", user.clone());
                set("PLUGIN_PASSWORD", password.clone());
            }
        }
        StepType::BuildAndPushEcr => {
            let account = required(&spec.account, "account")?;
            let region = required(&spec.region, "region")?;
            set("PLUGIN_REPO", required(&spec.image_name, "imageName")?);
            set("PLUGIN_REGISTRY", target.address.clone());
            set("PLUGIN_REGION", region.clone());
            stand_ins.push(format!(
                "PLUGIN_REGISTRY would be {account}.dkr.ecr.{region}.amazonaws.com: the AWS \
                 connector `{}` stands for registry `{}`, and the AWS token exchange \
                 (PLUGIN_ACCESS_KEY, PLUGIN_SECRET_KEY, PLUGIN_ASSUME_ROLE) is not checked here",
                spec.connector_ref, target.registry
            ));
        }
        StepType::BuildAndPushGcr | StepType::BuildAndPushGar => {
            let host = required(&spec.host, "host")?;
            let project = required(&spec.project_id, "projectID")?;
            set("PLUGIN_REPO", required(&spec.image_name, "imageName")?);
            set("PLUGIN_REGISTRY", target.address.clone());
            stand_ins.push(format!(
                "PLUGIN_REGISTRY would be {}/{}: the GCP connector `{}` stands for registry \
                 `{}`, and its JSON key (PLUGIN_JSON_KEY) is not checked here",
                host.trim_end_matches('/'),
                project.trim_start_matches('/'),
                spec.connector_ref,
                target.registry
            ));
        }
        StepType::BuildAndPushAcr => {
            let repository = required(&spec.repository, "repository")?;
            let registry = repository.split('/').next().unwrap_or_default().to_owned();
            set("PLUGIN_REPO", repository);
            set("PLUGIN_REGISTRY", registry);
            if let Some(subscription) = &spec.subscription_id {
                set(
                    "SUBSCRIPTION_ID",
                    fill.value(subscription, "subscriptionId")?,
                );
            }
            stand_ins.push(format!(
                "the Azure connector `{}` stands for registry `{}`: its client credentials \
                 (CLIENT_ID, CLIENT_SECRET, TENANT_ID) are not checked here",
                spec.connector_ref, target.registry
            ));
        }
    }

    // The step's build fields.
    let tags = spec
        .tags
        .iter()
        .map(|t| fill.value(t.as_str(), "tags"))
        .collect::<Result<Vec<_>, _>>()?;
    if tags.is_empty() {
        return Err(TranslateStepError::MissingField {
            step_type: step_type.name(),
            field: "tags",
        });
    }
    set("PLUGIN_TAGS", tags.join(","));
    for (field, value, variable) in [
        ("dockerfile", &spec.dockerfile, "PLUGIN_DOCKERFILE"),
        ("context", &spec.context, "PLUGIN_CONTEXT"),
        ("target", &spec.target, "PLUGIN_TARGET"),
    ] {
        if let Some(value) = value {
            set(variable, fill.value(value, field)?);
        }
    }
    for (field, map, variable) in [
        ("buildArgs", &spec.build_args, "PLUGIN_BUILD_ARGS"),
        ("labels", &spec.labels, "PLUGIN_CUSTOM_LABELS"),
    ] {
        if !map.is_empty() {
            let pairs = map
                .iter()
                .map(|(k, v)| Ok(format!("{k}={}", fill.value(v.as_str(), field)?)))
                .collect::<Result<Vec<_>, TranslateStepError>>()?;
            set(variable, pairs.join(","));
        }
    }

    // The infrastructure's own variables.
    let remote_cache = match step_type {
        StepType::BuildAndPushDockerRegistry => &spec.remote_cache_repo,
        _ => &spec.remote_cache_image,
    };
    if kubernetes {
        if optimize {
            set("PLUGIN_SNAPSHOT_MODE", "redo".to_owned());
        }
        if let Some(cache) = remote_cache {
            set("PLUGIN_ENABLE_CACHE", "true".to_owned());
            set("PLUGIN_CACHE_REPO", fill.value(cache, "remoteCache")?);
        }
        set("PLUGIN_ARTIFACT_FILE", KUBERNETES_ARTIFACT_FILE.to_owned());
    } else {
        set("PLUGIN_DAEMON_OFF", "true".to_owned());
        if builder == Builder::Buildx {
            if !spec.cache_from.is_empty() {
                let from = spec
                    .cache_from
                    .iter()
                    .map(|c| fill.value(c, "cacheFrom"))
                    .collect::<Result<Vec<_>, _>>()?;
                set("PLUGIN_CACHE_FROM", from.join(";"));
            }
            if let Some(to) = &spec.cache_to {
                set("PLUGIN_CACHE_TO", fill.value(to, "cacheTo")?);
            }
            if caching {
                set(
                    "PLUGIN_BUILDER_DRIVER_OPTS",
                    format!("image={DLC_BUILDKIT_IMAGE}"),
                );
            }
        }
    }

    // The base image connector (only the first is used) and build secrets.
    if let Some(base) = spec.base_image_connector_refs.first() {
        let base = target_of(base, "baseImageConnectorRefs")?;
        set("PLUGIN_BASE_IMAGE_REGISTRY", base.address.clone());
        if let Some((user, password)) = &base.credentials {
            set("PLUGIN_BASE_IMAGE_USERNAME", user.clone());
            set("PLUGIN_BASE_IMAGE_PASSWORD", password.clone());
        }
    }
    let mut implicit = BTreeMap::new();
    if !spec.env_docker_secrets.is_empty() {
        let mut pairs = Vec::new();
        for (id, reference) in &spec.env_docker_secrets {
            if reference.contains("<+") {
                // Harness puts the secret into a variable of its own.
                let variable = format!("HARNESS_DOCKER_SECRET_{}", id.to_ascii_uppercase());
                implicit.insert(variable.clone(), fill.value(reference, "envDockerSecrets")?);
                pairs.push(format!("{id}={variable}"));
            } else {
                pairs.push(format!(
                    "{id}={}",
                    fill.value(reference, "envDockerSecrets")?
                ));
            }
        }
        set("PLUGIN_SECRETS_FROM_ENV", pairs.join(","));
    }
    if !spec.file_docker_secrets.is_empty() {
        let mut pairs = Vec::new();
        // A secret expression is mounted as a file by Harness: its input is that file's path.
        for (id, path) in &spec.file_docker_secrets {
            pairs.push(format!("{id}={}", fill.value(path, "fileDockerSecrets")?));
        }
        set("PLUGIN_SECRETS_FROM_FILE", pairs.join(","));
    }

    // Stage variables under everything, `envVariables` over everything.
    let mut all = BTreeMap::new();
    for (k, v) in &stage.variables {
        all.insert(k.clone(), fill.value(v.as_str(), "variables")?);
    }
    all.extend(implicit);
    all.extend(env);
    for (k, v) in &spec.env_variables {
        all.insert(k.clone(), fill.value(v.as_str(), "envVariables")?);
    }

    let daemon_off = all
        .get("PLUGIN_DAEMON_OFF")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let daemon = if builder == Builder::Kaniko || daemon_off {
        DaemonChoice::Shared
    } else {
        DaemonChoice::Own
    };
    let limits = spec.resources.as_ref().and_then(|r| r.limits.as_ref());
    let limit =
        |v: Option<&crate::Scalar>, field| v.map(|v| fill.value(v.as_str(), field)).transpose();
    Ok(Translation {
        step_type,
        builder,
        role: format!("{}{}", builder.name(), step_type.role_suffix()),
        why: selection.why,
        env: all,
        daemon,
        user: spec
            .run_as_user
            .as_ref()
            .map(|u| fill.value(u.as_str(), "runAsUser"))
            .transpose()?,
        memory: limit(limits.and_then(|l| l.memory.as_ref()), "resources")?,
        cpu: limit(limits.and_then(|l| l.cpu.as_ref()), "resources")?,
        timeout: step
            .timeout
            .as_ref()
            .map(|t| fill.value(t, "timeout"))
            .transpose()?,
        stand_ins,
    })
}

/// Fills `inputs` into a step's values.
struct Filler<'a> {
    inputs: &'a BTreeMap<String, String>,
}

impl Filler<'_> {
    /// `value` with its inputs filled: every input's name, wherever it appears, is replaced by
    /// its value (longest names first, in one pass: a value put in is not searched again); an
    /// expression left is an error.
    fn value(&self, value: &str, field: &str) -> Result<String, TranslateStepError> {
        let mut names: Vec<&String> = self.inputs.keys().filter(|k| !k.is_empty()).collect();
        names.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        'scan: while !rest.is_empty() {
            for name in &names {
                if let Some(after) = rest.strip_prefix(name.as_str()) {
                    out.push_str(&self.inputs[*name]);
                    rest = after;
                    continue 'scan;
                }
            }
            let step = rest.chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..step]);
            rest = &rest[step..];
        }
        match expressions(&out).into_iter().next() {
            Some(expression) => Err(TranslateStepError::UnfilledExpression {
                expression: expression.to_owned(),
                field: field.to_owned(),
            }),
            None => Ok(out),
        }
    }

    fn boolean(
        &self,
        value: Option<&str>,
        field: &'static str,
        default: bool,
    ) -> Result<bool, TranslateStepError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let value = self.value(value, field)?;
        match value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(TranslateStepError::NotABoolean { field, value }),
        }
    }
}

/// The `<+…>` expressions in `text`, in order.
pub fn expressions(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<+") {
        let after = &rest[start..];
        let end = after.find('>').map_or(after.len(), |i| i + 1);
        found.push(&after[..end]);
        rest = &after[end..];
    }
    found
}
