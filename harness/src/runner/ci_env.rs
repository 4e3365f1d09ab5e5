//! What Harness CI gives every step besides its settings: the `DRONE_*` variables the plugins
//! read, and a `DRONE_OUTPUT` file for the values a step hands to later steps (drone-kaniko
//! writes `digest` and `IMAGE_TAR_PATH` there; plugin-contracts.md §2.2), in a folder of the
//! plan's outside the workspace (as on Harness: not part of any build context). The scenario's
//! own variables win over these.

use std::collections::BTreeMap;
use std::path::Path;

/// The largest `DRONE_OUTPUT` file read (a few keys in practice).
const OUTPUT_LIMIT: u64 = 64 * 1024;

/// The commit every plan builds (a fixed value: builds stay comparable from run to run).
pub const COMMIT_SHA: &str = "c0ffee0000000000000000000000000000c0ffee";

/// A step's `DRONE_OUTPUT` file, relative to the outputs folder.
pub fn output_file(step: &str) -> String {
    format!("{}.env", scenario::container_suffix(step))
}

/// The plan's outputs folder: next to its workspace.
pub fn outputs_dir(workspace: &Path) -> std::path::PathBuf {
    workspace.with_file_name("outputs")
}

/// The variables Harness CI sets for a step whose working directory is `workdir`.
pub fn variables(workdir: &str, step: &str) -> BTreeMap<String, String> {
    [
        ("CI", "true".to_owned()),
        ("DRONE", "true".to_owned()),
        ("DRONE_WORKSPACE", workdir.to_owned()),
        (
            "DRONE_OUTPUT",
            format!("{}/{}", runtime::OUTPUTS_MOUNT, output_file(step)),
        ),
        ("DRONE_COMMIT_SHA", COMMIT_SHA.to_owned()),
        ("DRONE_BUILD_NUMBER", "1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The folder the steps write their outputs to, made (empty) before the first step.
pub fn prepare(workspace: &Path) -> std::io::Result<()> {
    let dir = outputs_dir(workspace);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(dir)
}

/// What a step's `DRONE_OUTPUT` file holds (dotenv, as godotenv writes it: `key="value"`).
/// `Ok(None)`: the step wrote none.
pub fn read_output(
    workspace: &Path,
    step: &str,
) -> Result<Option<BTreeMap<String, String>>, oci::errors::WorkspaceReadError> {
    let file = output_file(step);
    let bytes = match oci::workspace::read_file(&outputs_dir(workspace), &file, OUTPUT_LIMIT) {
        Ok(bytes) => bytes,
        Err(oci::errors::WorkspaceReadError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(
        dotenvy::from_read_iter(bytes.as_slice())
            .filter_map(Result::ok)
            .collect(),
    ))
}
