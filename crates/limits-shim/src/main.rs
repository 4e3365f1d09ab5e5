//! `conformance-runc`: the OCI runtime of the rootless conformance daemon
//! (scripts/rootless-daemon.sh). A rootless dockerd on cgroup v1 runs with the cgroup driver
//! "none" and applies no limits; this wrapper does it instead. On `create` and `run` it reads the
//! bundle's config.json and, when the container's environment has
//! `CONFORMANCE_LIMITS=memory=<bytes>,pids=<n>,cpu=<millicores>`, takes that variable out and puts
//! the container in a cgroup below the daemon's own (which the daemon's user owns) with those
//! limits. Then, and for every other command at once, it execs the real runc with the same
//! arguments: `$CONFORMANCE_RUNC`, or the `runc` on PATH.
//!
//! Infrastructure beside the data path: it depends on no harness crate.

mod args;
mod config;
mod limits;

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use args::Invocation;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let invocation = match args::parse(&args) {
        Ok(invocation) => invocation,
        Err(err) => return fail(None, &err.to_string()),
    };
    if let args::Command::Create { bundle, id } = &invocation.command {
        if let Err(message) = edit_bundle(bundle, id) {
            return fail(Some(&invocation), &message);
        }
    }
    let runc = match real_runc() {
        Ok(runc) => runc,
        Err(message) => return fail(Some(&invocation), &message),
    };
    let err = Command::new(&runc).args(&args).exec();
    fail(
        Some(&invocation),
        &format!("cannot run {}: {err}", runc.display()),
    )
}

/// Applies the container's `CONFORMANCE_LIMITS`, if it has any, to `<bundle>/config.json`.
fn edit_bundle(bundle: &Path, id: &str) -> Result<(), String> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut config: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
    let Some(limits) =
        config::take_limits(&mut config).map_err(|e| format!("container {id}: {e}"))?
    else {
        return Ok(());
    };
    let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let own = config::own_cgroup(&proc_cgroup)
        .ok_or("cannot find this process's cgroup in /proc/self/cgroup")?;
    config::set_limits(&mut config, &limits, own, id)
        .map_err(|e| format!("container {id}: {e}"))?;
    let bytes = serde_json::to_vec(&config)
        .map_err(|e| format!("cannot serialize {}: {e}", path.display()))?;
    config::write_atomically(&path, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `$CONFORMANCE_RUNC`, or the first `runc` on PATH that is not this program.
fn real_runc() -> Result<PathBuf, String> {
    if let Some(runc) = std::env::var_os("CONFORMANCE_RUNC").filter(|r| !r.is_empty()) {
        return Ok(PathBuf::from(runc));
    }
    let me = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("runc"))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            let executable = candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            executable && candidate.canonicalize().ok() != me
        })
        .ok_or_else(|| "no runc on PATH (set CONFORMANCE_RUNC to the real runc)".to_owned())
}

/// Says what went wrong on stderr and, like runc, in its `--log` (containerd reports the last
/// error there as the reason `create` failed).
fn fail(invocation: Option<&Invocation>, message: &str) -> ExitCode {
    let message = format!("conformance-runc: {message}");
    eprintln!("{message}");
    if let Some(Invocation {
        log: Some(log),
        log_format,
        ..
    }) = invocation
    {
        let line = if log_format.as_deref() == Some("json") {
            serde_json::json!({"level": "error", "msg": message}).to_string()
        } else {
            format!("level=error msg={}", serde_json::Value::String(message))
        };
        if let Ok(mut file) = OpenOptions::new().append(true).create(true).open(log) {
            let _ = writeln!(file, "{line}");
        }
    }
    ExitCode::FAILURE
}
