//! Whether an environment's services (its registries, the DinD daemon, the scenario's own) answer and keep
//! running: waiting until each is ready (within the profile's `ready_timeout` or the default),
//! and noticing one that stopped while a step ran. Either is the infrastructure's failure, an
//! Error naming the service with the tail of its log, never a Fail of the plugin.

use std::future::Future;
use std::time::{Duration, Instant};

use bollard::query_parameters::InspectContainerOptions;
use oci::registry::Registry;

use crate::errors::RuntimeError;

use super::*;

/// How often the services are looked at while steps run.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// How much of a service's log an error quotes.
const ERROR_LOG_LIMIT: usize = 2000;

/// A service container found not running, and how it ended.
#[derive(Debug, Clone)]
pub struct StoppedService {
    /// `registry `NAME`` or `dind`.
    pub service: String,
    /// How it ended, e.g. `exited with 137` or `its container was removed`.
    pub state: String,
    /// The tail of its log.
    pub log: String,
}

impl StoppedService {
    /// The error a plan ends with: the service stopped during `during` (`step push`).
    pub fn error(self, during: &str) -> RuntimeError {
        RuntimeError::ServiceStopped {
            service: self.service,
            during: during.to_owned(),
            state: self.state,
            log: self.log,
        }
    }
}

impl Environment {
    /// The services of an environment that is up: each registry, then DinD, then the
    /// scenario's own services, with their container ids.
    fn services(&self) -> Vec<(String, &str)> {
        let registries = self
            .registry_containers
            .iter()
            .map(|(name, id)| (format!("registry `{name}`"), id.as_str()));
        let dind = self.dind.as_deref().map(|id| ("dind".to_owned(), id));
        let services = self
            .service_containers
            .iter()
            .map(|(alias, id)| (format!("service `{alias}`"), id.as_str()));
        registries.chain(dind).chain(services).collect()
    }

    /// The first service that is no longer running (exited, removed, paused), with its log
    /// tail; `None` when all run. A service that cannot be asked about (the daemon did not
    /// answer) is not taken for stopped.
    pub async fn stopped_service(&self) -> Option<StoppedService> {
        for (service, id) in self.services() {
            let inspect = self
                .docker
                .inspect_container(id, None::<InspectContainerOptions>)
                .await;
            let state = match inspect {
                Ok(inspect) => match inspect.state {
                    Some(state) if state.paused == Some(true) => "paused".to_owned(),
                    Some(state) if state.running == Some(true) => continue,
                    Some(state) => {
                        let mut how = format!("exited with {}", state.exit_code.unwrap_or(-1));
                        if state.oom_killed == Some(true) {
                            how.push_str(", killed for lack of memory");
                        }
                        if let Some(error) = state.error.filter(|e| !e.is_empty()) {
                            how.push_str(&format!(", {error}"));
                        }
                        how
                    }
                    None => continue,
                },
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => "its container was removed".to_owned(),
                Err(_) => continue,
            };
            let log = self.logs(id).await;
            let log = if log.trim().is_empty() {
                "(nothing logged)".to_owned()
            } else {
                tail(log.trim_end(), ERROR_LOG_LIMIT)
            };
            return Some(StoppedService {
                service,
                state,
                log,
            });
        }
        None
    }

    /// Resolves once a service is found stopped (looking every [`WATCH_INTERVAL`]).
    async fn watch_services(&self) -> StoppedService {
        loop {
            if let Some(stopped) = self.stopped_service().await {
                return stopped;
            }
            tokio::time::sleep(WATCH_INTERVAL).await;
        }
    }

    /// Runs `work` (a step, a parallel group) while watching the services. A service that
    /// stops meanwhile, or is found stopped when the work ends, makes it
    /// [`RuntimeError::ServiceStopped`] naming the service and `during` (e.g. `step push`),
    /// with the service's log tail, whatever the work returned: what a step does without its
    /// registry or daemon says nothing about the plugin. The work is dropped as soon as the
    /// stop is seen (its containers go at teardown).
    pub async fn while_services_run<T>(
        &self,
        during: &str,
        work: impl Future<Output = Result<T, RuntimeError>>,
    ) -> Result<T, RuntimeError> {
        let stopped = tokio::select! {
            done = work => match self.stopped_service().await {
                None => return done,
                Some(stopped) => stopped,
            },
            stopped = self.watch_services() => stopped,
        };
        Err(stopped.error(during))
    }

    /// Waits until DinD answers a version request on its API, at most `limit`. A daemon that
    /// never answers or whose container exits is [`RuntimeError::NotReady`] with the last
    /// answer and the tail of its log.
    pub(super) async fn wait_for_dind(
        &self,
        id: &str,
        limit: Duration,
    ) -> Result<(), RuntimeError> {
        let readiness = Readiness {
            service: "dind".into(),
            id,
            limit,
            every: Duration::from_millis(200),
            exit_checked_after: Duration::ZERO,
            silence: "the daemon's API did not answer",
        };
        self.wait_ready(readiness, || async {
            let api = self.dind_api().await?;
            match api.version().await {
                Ok(_) => Ok(()),
                Err(e) => Err(format!("the daemon's API did not answer: {e}")),
            }
        })
        .await
    }

    /// Asks a registry (its client: TLS or plain, with its credentials) until it answers the
    /// distribution API, at most `limit`; else [`RuntimeError::NotReady`] naming it, with the
    /// last answer and the tail of its log. Asked over its own transport (HTTPS with the run's
    /// CA, or plain HTTP) and with its credentials: "ready" means the harness can read it.
    pub(super) async fn wait_for_registry(
        &self,
        name: &str,
        id: &str,
        registry: &Registry,
        limit: Duration,
    ) -> Result<(), RuntimeError> {
        let readiness = Readiness {
            service: format!("registry `{name}`"),
            id,
            limit,
            every: Duration::from_millis(100),
            // Most answers come within the first second: whether it still runs is asked later.
            exit_checked_after: Duration::from_secs(2),
            silence: "the distribution API did not answer",
        };
        self.wait_ready(readiness, || async {
            registry.answers().await.map_err(|e| e.to_string())
        })
        .await
    }

    /// Asks `probe` until it answers, every `readiness.every`, at most `readiness.limit` (a
    /// probe that hangs is cut at the deadline); else [`RuntimeError::NotReady`], at once when
    /// the service's container exited, with the last answer.
    pub(crate) async fn wait_ready<F, Fut>(
        &self,
        readiness: Readiness<'_>,
        mut probe: F,
    ) -> Result<(), RuntimeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let began = Instant::now();
        let deadline = began + readiness.limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let last = match tokio::time::timeout(left.max(Duration::from_secs(1)), probe()).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(answer)) => answer,
                Err(_) => readiness.silence.to_owned(),
            };
            let exited = began.elapsed() >= readiness.exit_checked_after
                && !self.is_running(readiness.id).await;
            if exited || Instant::now() >= deadline {
                return Err(self
                    .not_ready(
                        readiness.service,
                        readiness.id,
                        exited,
                        began,
                        readiness.limit,
                        &last,
                    )
                    .await);
            }
            tokio::time::sleep(readiness.every).await;
        }
    }

    /// A service that did not become ready: at the deadline, or earlier when its container
    /// exited; with its last answer and log tail.
    async fn not_ready(
        &self,
        service: String,
        id: &str,
        exited: bool,
        began: Instant,
        limit: Duration,
        last: &str,
    ) -> RuntimeError {
        let how = if exited { "its container exited; " } else { "" };
        RuntimeError::NotReady {
            service,
            seconds: if exited {
                began.elapsed().as_secs()
            } else {
                limit.as_secs()
            },
            detail: format!("{how}{last}; {}", self.log_tail(id).await),
        }
    }

    /// `its log ends: …` (the last part of a container's output), or that it logged nothing.
    async fn log_tail(&self, id: &str) -> String {
        let log = self.logs(id).await;
        if log.trim().is_empty() {
            "it logged nothing".to_owned()
        } else {
            format!("its log ends:\n{}", tail(log.trim_end(), ERROR_LOG_LIMIT))
        }
    }
}

/// How a service of the environment is asked whether it is ready.
pub(crate) struct Readiness<'a> {
    /// How errors name it: `dind`, ``registry `registry` ``.
    pub(crate) service: String,
    /// Its container.
    pub(crate) id: &'a str,
    pub(crate) limit: Duration,
    /// How long between two questions.
    pub(crate) every: Duration,
    /// Whether its container still runs is asked only after this long.
    pub(crate) exit_checked_after: Duration,
    /// The last answer when the probe itself hangs.
    pub(crate) silence: &'static str,
}
