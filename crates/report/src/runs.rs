//! Reading finished runs back: a run directory (`reports/<run-id>/`, one `<plan>.json` per plan
//! and repetition) or a baseline file (one JSON document holding a run's results), for
//! comparing runs and rendering reports.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::errors::RunReadError;
use model::result::ScenarioResult;

/// The merged results `harness report` writes next to the report it made of several runs
/// (shards): a baseline file, which `compare` and `nightly --baseline` read.
pub const MERGED_FILE: &str = "merged.json";

/// A finished run's results, with where they came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// The run id (the directory's name, or the baseline's recorded id).
    pub id: String,
    #[serde(skip)]
    pub source: PathBuf,
    pub results: Vec<ScenarioResult>,
}

/// Reads a JSON file into `T`; the error names the file (and where the JSON is wrong).
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RunReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunReadError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| RunReadError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

impl Run {
    /// Reads a run directory or a baseline file.
    pub fn load(path: &Path) -> Result<Run, RunReadError> {
        if path.is_dir() {
            Run::load_dir(path)
        } else {
            let mut run: Run = read_json(path)?;
            run.source = path.to_owned();
            Ok(run)
        }
    }

    fn load_dir(dir: &Path) -> Result<Run, RunReadError> {
        let read_err = |path: &Path| {
            let path = path.to_owned();
            move |source| RunReadError::Read { path, source }
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && p.file_name().is_some_and(|n| {
                        !matches!(
                            n.to_str(),
                            Some(
                                "summary.json"
                                    | "compare.json"
                                    | "claims.json"
                                    | "shard.json"
                                    | MERGED_FILE
                            )
                        )
                    })
            })
            .collect();
        files.sort();
        let mut results = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(read_err(&file))?;
            let result: ScenarioResult =
                serde_json::from_str(&text).map_err(|e| RunReadError::Parse {
                    path: file.clone(),
                    message: e.to_string(),
                })?;
            results.push(result);
        }
        if results.is_empty() && dir.join(MERGED_FILE).is_file() {
            // A directory `harness report` wrote from several runs (shards): their merged results.
            let mut run: Run = read_json(&dir.join(MERGED_FILE))?;
            run.source = dir.to_owned();
            return Ok(run);
        }
        if results.is_empty() {
            return Err(RunReadError::Empty {
                path: dir.to_owned(),
            });
        }
        results.sort_by(|a, b| (&a.test, a.repetition).cmp(&(&b.test, b.repetition)));
        Ok(Run {
            id: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            source: dir.to_owned(),
            results,
        })
    }

    /// Writes the run as one baseline file (what `nightly --update-baseline` keeps).
    pub fn save(&self, path: &Path) -> Result<(), RunReadError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| RunReadError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| RunReadError::Read {
                path: parent.to_owned(),
                source,
            })?;
        }
        std::fs::write(path, json).map_err(|source| RunReadError::Read {
            path: path.to_owned(),
            source,
        })
    }
}
