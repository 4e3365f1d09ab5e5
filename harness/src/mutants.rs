//! Mutant plugins: the reference plugins with exactly one documented promise broken, each a small
//! patch under `fixtures/mutants/<name>/` (test equipment, built by the offline image script as
//! `conformance-offline/mutant-<name>:offline`). A mutant plays its role in every plan that runs
//! that role; a plan that Fails where the scenario did not expect it kills the mutant, a plan
//! that goes as the scenario expects lets it escape. The kill matrix shows which assertion
//! caught which mutant, and the sensitivity score is the share of mutants caught.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

pub use report::kill_matrix::{KillMatrix, Verdict};

use crate::errors::{MutantLoadError, ProfileLoadError};
use crate::plan::Plan;
use crate::runner::{run_plan, RunContext};
use model::result::ScenarioResult;

/// `fixtures/mutants/<name>/mutant.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MutantSpec {
    /// The profile role the mutant stands in for; that role's run options are kept.
    pub role: String,
    /// The reference plugin (`fixtures/plugins/<plugin>`) the patch applies to.
    pub plugin: String,
    /// The documented promise the mutant breaks, with its source.
    pub breaks: String,
    /// Where the scenarios must catch it: each plan Fails on an assertion containing the text.
    pub caught_by: Vec<Catch>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Catch {
    /// A plan name, e.g. `build_only::no_push::buildx`.
    pub plan: String,
    /// Text of the failing assertion, e.g. `no tags in registry for conformance/app`.
    pub assertion: String,
}

#[derive(Debug, Clone)]
pub struct Mutant {
    pub name: String,
    pub spec: MutantSpec,
    pub path: PathBuf,
}

impl Mutant {
    /// The image the offline image script builds for this mutant: tagged with the mutants'
    /// recipe key (`mutants_key`) when known, so that another checkout's mutants never stand in;
    /// else the `:offline` name of the last build.
    pub fn image(&self, mutants_key: Option<&str>) -> String {
        patched_image("mutant", &self.name, mutants_key)
    }

    /// The plans the mutant takes part in: run (not skipped), with a step in the mutant's role.
    pub fn plans<'a>(&self, plans: &'a [Plan]) -> Vec<&'a Plan> {
        plans
            .iter()
            .filter(|p| p.runs_role(&self.spec.role))
            .collect()
    }
}

/// Reads every `fixtures/mutants/*/mutant.yaml`, sorted by name.
pub fn discover(root: &Path) -> Result<Vec<Mutant>, MutantLoadError> {
    let dir = root.join("fixtures/mutants");
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| MutantLoadError::List { path, source }
    };
    let mut mutants = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(read_err(&dir))? {
        let entry = entry.map_err(read_err(&dir))?;
        let path = entry.path().join("mutant.yaml");
        if !path.is_file() {
            continue;
        }
        let spec: MutantSpec = scenario::read_yaml(&path, "mutant description")?;
        if spec.caught_by.is_empty() || spec.breaks.trim().is_empty() {
            return Err(MutantLoadError::Invalid {
                path,
                message: "a mutant names the promise it breaks (`breaks`) and at least one plan that catches it (`caught_by`)".into(),
            });
        }
        mutants.push(Mutant {
            name: entry.file_name().to_string_lossy().into_owned(),
            spec,
            path,
        });
    }
    mutants.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(mutants)
}

/// Whether a mutant is caught where its description says: each `caught_by` plan was run and
/// killed it with an assertion containing the text. The error says what was found instead.
pub fn check_caught(mutant: &Mutant, verdicts: &BTreeMap<String, Verdict>) -> Result<(), String> {
    let mut problems = Vec::new();
    for catch in &mutant.spec.caught_by {
        match verdicts.get(&catch.plan) {
            Some(Verdict::Killed { by }) if by.iter().any(|a| a.contains(&catch.assertion)) => {}
            Some(verdict) => problems.push(format!(
                "{}: expected a Fail on an assertion containing {:?}, got {}",
                catch.plan,
                catch.assertion,
                verdict.cell()
            )),
            None => problems.push(format!(
                "{}: no such plan runs the role `{}`",
                catch.plan, mutant.spec.role
            )),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "mutant {} ({}) is not caught as described: {}",
            mutant.name,
            mutant.spec.breaks,
            problems.join("; ")
        ))
    }
}

/// Runs every mutant in every plan of its role, `jobs` plans at a time, and collects the kill
/// matrix; `progress` hears of each result as it comes. Results are written under
/// `<report dir>/mutants/<mutant>/`.
pub async fn run_matrix(
    ctx: &RunContext,
    mutants: &[Mutant],
    plans: &[Plan],
    jobs: usize,
    progress: impl Fn(&Mutant, &ScenarioResult),
) -> Result<KillMatrix, ProfileLoadError> {
    let mut contexts = Vec::new();
    for mutant in mutants {
        contexts.push((mutant, context_for(ctx, mutant)?));
    }
    let pairs = contexts.iter().flat_map(|(mutant, ctx)| {
        mutant
            .plans(plans)
            .into_iter()
            .map(move |p| (*mutant, ctx, p))
    });
    let results: Vec<(&Mutant, ScenarioResult)> = futures_util::stream::iter(pairs)
        .map(|(mutant, ctx, plan)| async move {
            let result = run_plan(ctx, plan).await;
            let _ = report::write_result(&ctx.report_dir, &result);
            (mutant, result)
        })
        .buffer_unordered(jobs.max(1))
        .inspect(|(mutant, result)| progress(mutant, result))
        .collect()
        .await;
    let mut matrix = KillMatrix::default();
    for mutant in mutants {
        matrix.mutants.entry(mutant.name.clone()).or_default();
    }
    for (mutant, result) in results {
        matrix
            .mutants
            .entry(mutant.name.clone())
            .or_default()
            .insert(result.test.clone(), Verdict::of(&result));
    }
    Ok(matrix)
}

/// The image the offline image script builds for a patched plugin of `kind` (`mutant`,
/// `release`): `conformance-offline/KIND-NAME:offline-KEY` with the mutants' recipe key when
/// known (another checkout's build never moves it), else the `:offline` name of the last build.
pub fn patched_image(kind: &str, name: &str, mutants_key: Option<&str>) -> String {
    match mutants_key {
        Some(key) => format!("conformance-offline/{kind}-{name}:offline-{key}"),
        None => format!("conformance-offline/{kind}-{name}:offline"),
    }
}

/// [`patched_image`] with this checkout's mutants key: what release validation's tests run.
pub fn checkout_image(ctx: &RunContext, kind: &str, name: &str) -> String {
    patched_image(kind, name, mutants_key(ctx).as_deref())
}

/// The run context with the mutant in its role's place, reporting under `mutants/<name>/`.
pub fn context_for(ctx: &RunContext, mutant: &Mutant) -> Result<RunContext, ProfileLoadError> {
    let subdir = Path::new("mutants").join(&mutant.name);
    let image = mutant.image(mutants_key(ctx).as_deref());
    ctx.with_image(&mutant.spec.role, &image, &subdir)
}

/// The mutants' recipe key, as the profile's build script computes it (`--mutants-key`), once
/// per process; `None` when the profile has no build script or it says nothing usable.
fn mutants_key(ctx: &RunContext) -> Option<String> {
    static KEY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let script = ctx.root.join(ctx.profile.build.as_ref()?);
        let output = std::process::Command::new("bash")
            .arg(script)
            .arg("--mutants-key")
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let key = String::from_utf8(output.stdout).ok()?.trim().to_owned();
        (!key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit())).then_some(key)
    })
    .clone()
}

/// What each mutant breaks, by name: the kill matrix's rendering names it.
pub fn breaks(mutants: &[Mutant]) -> impl Fn(&str) -> String + '_ {
    |name| {
        mutants
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.spec.breaks.clone())
            .unwrap_or_default()
    }
}
