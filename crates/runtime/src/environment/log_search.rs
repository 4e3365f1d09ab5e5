//! Searching a step's whole output for byte strings (a build's secrets, in every form): every
//! byte the daemon kept, not only the end the step record holds, streamed through
//! [`oci::archive::ChunkSearch`] with bounded memory, within a byte and a time budget.

use std::time::Duration;

use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;
use oci::archive::{ChunkSearch, Needles};

use super::Environment;

/// The most of a step's output searched: past it the search says it stopped.
pub const LOG_SEARCH_BYTES: u64 = 1024 * 1024 * 1024;
/// How long searching one step's output may take.
pub const LOG_SEARCH_BUDGET: Duration = Duration::from_secs(60);

/// What searching a step's output found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSearch {
    /// What each needle found is, in needle order.
    pub found: Vec<String>,
    /// Bytes searched.
    pub bytes: u64,
    /// Why the search stopped before the end of the output, if it did: the output was larger
    /// than the budgets (the plugin's doing), or it could not be read (the harness's).
    pub stopped: Option<SearchStopped>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchStopped {
    /// The output is larger than the harness searches, in bytes or in time.
    TooLarge(String),
    /// The daemon could not be asked for it.
    Unreadable(String),
}

impl Environment {
    /// Searches the whole output of step `step` (its container is kept until the teardown).
    pub async fn search_step_log(&self, step: &str, needles: &Needles) -> LogSearch {
        let container = self.container_name(&Environment::step_suffix(step));
        let mut stream = self.docker.logs(
            &container,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                follow: false,
                tail: "all".to_owned(),
                ..Default::default()
            }),
        );
        let mut search = ChunkSearch::new(needles);
        let deadline = tokio::time::Instant::now() + LOG_SEARCH_BUDGET;
        let stopped = loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    search.feed(&chunk.into_bytes());
                    if search.bytes() > LOG_SEARCH_BYTES {
                        break Some(SearchStopped::TooLarge(format!(
                            "its output is larger than the {} MiB the harness searches",
                            LOG_SEARCH_BYTES / (1024 * 1024)
                        )));
                    }
                }
                Ok(Some(Err(e))) => {
                    break Some(SearchStopped::Unreadable(format!(
                        "reading its output failed: {e}"
                    )))
                }
                Ok(None) => break None,
                Err(_) => {
                    break Some(SearchStopped::TooLarge(format!(
                        "its output took longer than {} s to search",
                        LOG_SEARCH_BUDGET.as_secs()
                    )))
                }
            }
        };
        LogSearch {
            found: search.found(),
            bytes: search.bytes(),
            stopped,
        }
    }
}
