//! Stopping cleanly at any moment. A signal (SIGINT, SIGTERM) sets a process-wide flag; from
//! then on nothing new is created ([`begin_create`] refuses), waits in progress end early, every
//! plan tears its environment down, and finally everything this process labelled is swept until
//! none of it remains ([`guarded`]).
//!
//! Creates are never abandoned half-way: each runs to its end in a task of its own holding a
//! [`CreateTicket`], so "wait for the creates in flight, then sweep" sees every resource that
//! will ever exist. The first signal stops gracefully, the second skips the wait for the plans
//! (the sweep still runs), the third exits at once.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::errors::RuntimeError;

/// How long plans get to stop and tear down after a signal before the sweep takes over.
pub const WIND_DOWN: Duration = Duration::from_secs(15);
/// How long the final sweep may take (nextest's grace period is 30 s in all).
pub const SWEEP_DEADLINE: Duration = Duration::from_secs(10);

/// Creates in flight, counted so that someone can wait until none is.
#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    fn enter(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    fn leave(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until no create is in flight, at most `limit`; whether none is.
    pub async fn settled(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let idle = self.idle.notified();
            if self.count() == 0 {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            // Polling as well: a ticket may be dropped on another runtime.
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), idle).await;
        }
    }

    /// The same, blocking the thread (for a guard's `Drop`, outside any runtime).
    pub fn settled_blocking(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.count() != 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

/// The process-wide stop request.
pub struct Stop {
    signals: AtomicUsize,
    signal: Mutex<Option<&'static str>>,
    changed: Notify,
    in_flight: Arc<InFlight>,
}

static STOP: LazyLock<Stop> = LazyLock::new(|| Stop {
    signals: AtomicUsize::new(0),
    signal: Mutex::new(None),
    changed: Notify::new(),
    in_flight: Arc::new(InFlight::default()),
});

/// The process's stop request.
pub fn stop() -> &'static Stop {
    &STOP
}

impl Stop {
    /// Asks everything to stop (what a signal does). Returns how many requests there were.
    pub fn request(&self, why: &'static str) -> usize {
        self.signal.lock().expect("stop lock").get_or_insert(why);
        let n = self.signals.fetch_add(1, Ordering::SeqCst) + 1;
        self.changed.notify_waiters();
        n
    }

    /// The first reason given, once a stop was requested.
    pub fn requested(&self) -> Option<&'static str> {
        if self.signals.load(Ordering::SeqCst) == 0 {
            return None;
        }
        *self.signal.lock().expect("stop lock")
    }

    /// Resolves when at least `n` stop requests have come.
    async fn count_reaches(&self, n: usize) -> &'static str {
        loop {
            let changed = self.changed.notified();
            if self.signals.load(Ordering::SeqCst) >= n {
                return self.requested().unwrap_or("stop");
            }
            changed.await;
        }
    }

    /// Resolves when a stop was requested, with the reason.
    pub async fn wait(&self) -> &'static str {
        self.count_reaches(1).await
    }

    /// Every create of this process, wherever it was started.
    pub fn in_flight(&self) -> &Arc<InFlight> {
        &self.in_flight
    }
}

/// Permission to create one resource, held until the create returned. Counted in the process's
/// creates in flight and in those of `scope` (an environment's own).
pub struct CreateTicket {
    scope: Option<Arc<InFlight>>,
}

impl Drop for CreateTicket {
    fn drop(&mut self) {
        if let Some(scope) = &self.scope {
            scope.leave();
        }
        STOP.in_flight.leave();
    }
}

/// A ticket for a create, or `Stopped` once a stop was requested. Counted before the flag is
/// read (both sequentially consistent), so a stopper that saw no create in flight after setting
/// the flag can be sure no create starts after it.
pub fn begin_create(scope: Option<&Arc<InFlight>>) -> Result<CreateTicket, RuntimeError> {
    STOP.in_flight.enter();
    if let Some(scope) = scope {
        scope.enter();
    }
    let ticket = CreateTicket {
        scope: scope.cloned(),
    };
    match STOP.requested() {
        Some(signal) => Err(RuntimeError::Stopped { signal }),
        None => Ok(ticket),
    }
}

/// Races `work` against a stop request: `Err(Stopped)` as soon as one comes (the work is
/// dropped; creates inside it finish in their own tasks).
pub async fn or_stopped<T>(
    work: impl Future<Output = Result<T, RuntimeError>>,
) -> Result<T, RuntimeError> {
    if let Some(signal) = STOP.requested() {
        return Err(RuntimeError::Stopped { signal });
    }
    tokio::select! {
        result = work => result,
        signal = STOP.wait() => Err(RuntimeError::Stopped { signal }),
    }
}

/// Listens for SIGINT and SIGTERM while it lives, turning each into a stop request; the third
/// one exits the process at once (with 130).
pub struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts listening (inside a tokio runtime). Installing the handlers replaces the default
/// action of SIGINT and SIGTERM for the rest of the process's life.
pub fn listen() -> Listener {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    Listener(tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            let n = STOP.request(name);
            match n {
                1 => eprintln_quiet(&format!(
                    "{name}: stopping; removing this process's containers, networks and volumes \
                     (again: skip waiting for the plans; a third time: exit at once)"
                )),
                2 => eprintln_quiet(&format!("{name}: sweeping now")),
                _ => std::process::exit(130),
            }
        }
    }))
}

fn eprintln_quiet(line: &str) {
    crate::eprint(&format!("{line}\n"));
}

/// How a guarded piece of work ended when a stop request cut it short.
#[derive(Debug)]
pub struct Interrupted {
    pub signal: &'static str,
    /// What the final sweep removed, or why it could not remove everything.
    pub swept: Result<crate::Swept, RuntimeError>,
    /// Whether the work wound down by itself (every plan tore down) before the deadline.
    pub wound_down: bool,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stopped by {}; ", self.signal)?;
        match &self.swept {
            Ok(s) => write!(
                f,
                "final sweep removed {} container(s), {} network(s), {} volume(s)",
                s.containers, s.networks, s.volumes
            ),
            Err(e) => write!(f, "final sweep incomplete: {e}"),
        }
    }
}

/// Runs `work` to its end, unless a stop request comes: then the work gets [`WIND_DOWN`] to
/// stop (every plan stops creating and tears its environment down; a second signal cuts this
/// short), and everything this process labelled is swept until none of it remains.
pub async fn guarded<T>(
    docker: &bollard::Docker,
    run_id: &str,
    work: impl Future<Output = T>,
) -> Result<T, Interrupted> {
    // Boxed, so that dropping it below really drops it (and the environments inside).
    let mut work = Box::pin(work);
    // A stop asked for wins over work that ended at the same moment (the plans ending because
    // of it): the run was interrupted, not finished.
    let signal = tokio::select! {
        biased;
        signal = STOP.wait() => signal,
        done = &mut work => return Ok(done),
    };
    let wound_down = tokio::select! {
        done = tokio::time::timeout(WIND_DOWN, &mut work) => done.is_ok(),
        _ = STOP.count_reaches(2) => false,
    };
    // Whatever the work was doing is dropped here; environments left up sweep themselves on
    // drop, and the sweep below catches the rest.
    drop(work);
    let swept = crate::sweep_own(docker, run_id, SWEEP_DEADLINE).await;
    Err(Interrupted {
        signal,
        swept,
        wound_down,
    })
}

/// A fault the tests inject (debug builds only): panics when `CONFORMANCE_TEST_PANIC_AFTER`
/// names this point. Release builds compile it to nothing.
#[inline]
pub fn fault_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("CONFORMANCE_TEST_PANIC_AFTER").is_ok_and(|p| p == point) {
        panic!("injected fault after {point} (CONFORMANCE_TEST_PANIC_AFTER)");
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}
