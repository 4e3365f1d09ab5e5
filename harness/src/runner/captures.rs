//! Captured values: what a scenario reads from the steps' artifacts (a JSON file in the
//! workspace, a tarball's or a registry's digest, a daemon image id) for its assertions.

use std::collections::BTreeMap;
use std::path::Path;

use model::result::{ScenarioResult, Status};
use oci::archive::Archives;
use oci::registry;
use runtime::Environment;
use scenario::{substitute, Capture};

use crate::assertions::MissingCapture;

/// Takes each capture; one that cannot be taken is recorded with the reason.
pub(super) async fn take_captures<'a>(
    env: &Environment,
    archives: &mut Archives,
    captures: impl Iterator<Item = (&'a String, &'a Capture)>,
    vars: &mut BTreeMap<String, String>,
    result: &mut ScenarioResult,
    missing: &mut BTreeMap<String, MissingCapture>,
) {
    for (name, capture) in captures {
        match take_capture(env, archives, capture, vars).await {
            Ok(value) => {
                result.captures.insert(name.clone(), value.clone());
                vars.insert(format!("capture.{name}"), value);
            }
            Err(why) => {
                missing.insert(name.clone(), why);
            }
        }
    }
}

/// The largest JSON file a capture reads (16 MiB).
const JSON_CAPTURE_LIMIT: u64 = 16 * 1024 * 1024;

/// A `json:` capture: the value at `pointer` in `file`, read inside the workspace only (a
/// path or symlink leading out is a Fail naming it; the file is never read) and small. The
/// reasons name the file and where it is malformed, never its content.
pub fn json_capture(workspace: &Path, file: &str, pointer: &str) -> Result<String, MissingCapture> {
    let fail = |reason: String| MissingCapture {
        status: Status::Fail,
        reason,
    };
    let bytes = oci::workspace::read_file(workspace, file, JSON_CAPTURE_LIMIT).map_err(|e| {
        MissingCapture {
            status: if e.is_harness_error() {
                Status::Error
            } else {
                Status::Fail
            },
            reason: e.to_string(),
        }
    })?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        fail(format!(
            "{file} is not valid json: {}",
            oci::archive::json_error(&e)
        ))
    })?;
    match json.pointer(pointer) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(fail(format!("{file} has nothing at {pointer}"))),
    }
}

/// Takes a captured value from what the steps left. Nothing to take is the plugin's doing (a
/// Fail for the assertions that need it); a registry or daemon that cannot be asked is an Error.
async fn take_capture(
    env: &Environment,
    archives: &mut Archives,
    capture: &Capture,
    vars: &BTreeMap<String, String>,
) -> Result<String, MissingCapture> {
    let fail = |reason: String| MissingCapture {
        status: Status::Fail,
        reason,
    };
    let error = |reason: String| MissingCapture {
        status: Status::Error,
        reason,
    };
    match capture {
        Capture::Json { file, pointer } => json_capture(env.workspace(), file, pointer),
        Capture::Output { step, key } => match super::ci_env::read_output(env.workspace(), step) {
            Ok(Some(output)) => output.get(key).cloned().ok_or_else(|| {
                let keys: Vec<&str> = output.keys().map(String::as_str).collect();
                fail(format!(
                    "step {step}'s DRONE_OUTPUT has no `{key}` (it has: {})",
                    if keys.is_empty() {
                        "nothing".to_owned()
                    } else {
                        keys.join(", ")
                    }
                ))
            }),
            Ok(None) => Err(fail(format!(
                "step {step} wrote no DRONE_OUTPUT file ({})",
                super::ci_env::output_file(step)
            ))),
            Err(e) if e.is_harness_error() => Err(error(e.to_string())),
            Err(e) => Err(fail(e.to_string())),
        },
        Capture::TarballConfigDigest(path) => match archives.get(path) {
            Ok(archive) => Ok(archive.first().config_digest.clone()),
            Err(e) if e.is_harness_error() => Err(error(e.to_string())),
            Err(e) => Err(fail(e.to_string())),
        },
        Capture::RegistryConfigDigest(t) | Capture::RegistryManifestDigest(t) => {
            let (name, registry) = registry::named(env.registries(), t.registry.as_deref());
            match registry.image(&t.repository, &t.tag).await {
                Ok(Some(image)) => Ok(match capture {
                    Capture::RegistryConfigDigest(_) => image.config_digest,
                    _ => image.manifest_digest,
                }),
                Ok(None) => Err(fail(format!("{name} serves no {}:{}", t.repository, t.tag))),
                Err(e) => Err(error(e.to_string())),
            }
        }
        Capture::DaemonImageId(reference) => {
            let reference = substitute(reference, vars);
            match env.daemon_image_id(&reference).await {
                Ok(Some(id)) => Ok(id),
                Ok(None) => Err(fail(format!("the shared daemon has no image {reference}"))),
                Err(e) => Err(error(e.to_string())),
            }
        }
    }
}
