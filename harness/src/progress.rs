//! Progress while a run goes on. In a terminal: a live line per running plan (its current phase
//! or step, and how long it has been running) under a bar of plans done / total. Elsewhere (a
//! pipe, a CI log, under nextest): one plain line per finished plan.
//!
//! Everything the CLI prints goes through [`print`] and [`eprint`] (the [`outln!`] and
//! [`errln!`] macros), secrets redacted and control characters escaped: a closed stdout (`harness run | head -1`: EPIPE) ends the printing, never
//! the run — the run goes on to its normal end, teardown and reports included.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use model::result::ScenarioResult;

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout. Once a write fails (the reader went away: EPIPE), nothing more is
/// printed there, and nothing panics.
pub fn print(text: &str) {
    write_to(&mut std::io::stdout().lock(), &STDOUT_CLOSED, text);
}

/// Writes `text` to stderr, likewise.
pub fn eprint(text: &str) {
    write_to(&mut std::io::stderr().lock(), &STDERR_CLOSED, text);
}

fn write_to(out: &mut impl Write, closed: &AtomicBool, text: &str) {
    if closed.load(Ordering::Relaxed) {
        return;
    }
    let text = report::redact::text(text);
    // What a plugin wrote may reach here (logs, reasons): no raw control characters.
    let text = report::redact::printable(&text);
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        closed.store(true, Ordering::Relaxed);
    }
}

/// Where tracing writes (`RUST_LOG`): one event at a time, printed through [`eprint`] when it
/// is complete, so that secrets are redacted and control characters escaped there too
/// (bollard logs request bodies at debug level, and a container's environment holds the
/// registry password).
#[derive(Default)]
pub struct TraceLine(Vec<u8>);

impl Write for TraceLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for TraceLine {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            eprint(&String::from_utf8_lossy(&self.0));
        }
    }
}

/// Whether stdout was found closed.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// `println!` that never panics: see [`print`].
#[macro_export]
macro_rules! outln {
    () => { $crate::progress::print("\n") };
    ($($arg:tt)*) => { $crate::progress::print(&format!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that never panics: see [`print`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::progress::print(&format!($($arg)*)) };
}

/// `eprintln!` that never panics: see [`eprint`].
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::progress::eprint(&format!("{}\n", format_args!($($arg)*))) };
}

/// What the runner tells about a plan as it goes: `(plan, what it is doing now)`.
pub type Notify = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// How a plan is named in progress lines: its test name, and the repetition after the first.
pub fn label(test: &str, repetition: u32) -> String {
    match repetition {
        0 | 1 => test.to_owned(),
        n => format!("{test} (repetition {n})"),
    }
}

pub struct Progress {
    live: Option<Live>,
}

struct Live {
    multi: MultiProgress,
    total: ProgressBar,
    running: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress {
    /// Live lines only when stdout is a terminal and nextest is not running us.
    pub fn new(total: usize) -> Arc<Progress> {
        let interactive =
            std::io::stdout().is_terminal() && std::env::var_os("NEXTEST_RUN_ID").is_none();
        let live = interactive.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let bar = multi.add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} plans done, {elapsed} elapsed")
                    .expect("a valid template"),
            );
            Live {
                multi,
                total: bar,
                running: Mutex::new(HashMap::new()),
            }
        });
        Arc::new(Progress { live })
    }

    /// The callback the runner calls at each phase of a plan.
    pub fn notifier(self: &Arc<Progress>) -> Notify {
        let progress = Arc::clone(self);
        Arc::new(move |plan: &str, what: &str| progress.note(plan, what))
    }

    fn note(&self, plan: &str, what: &str) {
        let Some(live) = &self.live else { return };
        let mut running = live.running.lock().expect("progress lock");
        let line = running.entry(plan.to_owned()).or_insert_with(|| {
            let line = live.multi.add(ProgressBar::new_spinner());
            line.set_style(
                ProgressStyle::with_template("  {spinner} {prefix} [{elapsed}] {msg}")
                    .expect("a valid template"),
            );
            line.set_prefix(plan.to_owned());
            line.enable_steady_tick(Duration::from_millis(250));
            line
        });
        line.set_message(what.to_owned());
    }

    /// A plan has finished: print its line (above the live lines, or plainly).
    pub fn finished(&self, result: &ScenarioResult, line: &str) {
        match &self.live {
            Some(live) => {
                if let Some(bar) = live
                    .running
                    .lock()
                    .expect("progress lock")
                    .remove(&label(&result.test, result.repetition))
                {
                    bar.finish_and_clear();
                    live.multi.remove(&bar);
                }
                live.total.inc(1);
                let _ = live.multi.println(line);
            }
            None => print(&format!("{line}\n")),
        }
    }

    /// The run is over: remove the live lines.
    pub fn clear(&self) {
        if let Some(live) = &self.live {
            live.total.finish_and_clear();
            let _ = live.multi.clear();
        }
    }
}
