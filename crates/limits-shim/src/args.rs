//! runc's command line, read only as far as the wrapper needs: which command, the bundle and the
//! container id of `create` and `run`, and where runc writes its log.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// runc's global flags that take a value (`--root DIR`); the others (`--debug`,
/// `--systemd-cgroup`) stand alone.
const GLOBAL_VALUE_FLAGS: &[&str] = &["root", "log", "log-format", "criu", "rootless"];
/// The flags of `runc create` and `runc run` that take a value.
const CREATE_VALUE_FLAGS: &[&str] = &[
    "bundle",
    "b",
    "console-socket",
    "pid-file",
    "preserve-fds",
    "pidfd-socket",
];

/// What runc was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub struct Invocation {
    /// `--log` and `--log-format`, so errors reach the caller the way runc's own do.
    pub log: Option<PathBuf>,
    pub log_format: Option<String>,
    pub command: Command,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `create` or `run`: the container's bundle (the working directory when not given) and id.
    Create { bundle: PathBuf, id: String },
    /// Anything else, passed through untouched.
    Other,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("flag {0} needs a value")]
    MissingValue(String),
    #[error("{0} without a container id")]
    MissingId(String),
    #[error("argument {0:?} is not valid UTF-8")]
    NotUtf8(OsString),
}

/// A flag's name without its dashes (runc takes `-root` as well as `--root`) and its inline
/// value (`--bundle=DIR`), or `None` when `arg` is not a flag.
fn flag(arg: &str) -> Option<(&str, Option<&str>)> {
    let name = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    if name.is_empty() {
        return None;
    }
    Some(match name.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (name, None),
    })
}

fn utf8(arg: &OsStr) -> Result<&str, ArgsError> {
    arg.to_str()
        .ok_or_else(|| ArgsError::NotUtf8(arg.to_owned()))
}

/// Reads runc's arguments (without the program name).
pub fn parse(args: &[OsString]) -> Result<Invocation, ArgsError> {
    let mut log = None;
    let mut log_format = None;
    let mut rest = args.iter();
    // Global flags, up to the command.
    let command = loop {
        let Some(arg) = rest.next() else {
            return Ok(Invocation {
                log,
                log_format,
                command: Command::Other,
            });
        };
        // A non-UTF-8 argument before the command is runc's business, not ours.
        let Some(arg) = arg.to_str() else {
            return Ok(Invocation {
                log,
                log_format,
                command: Command::Other,
            });
        };
        let Some((name, inline)) = flag(arg) else {
            break arg;
        };
        if !GLOBAL_VALUE_FLAGS.contains(&name) {
            continue;
        }
        let value = match inline {
            Some(value) => value.to_owned(),
            None => match rest.next() {
                Some(value) => utf8(value)?.to_owned(),
                None => return Err(ArgsError::MissingValue(arg.to_owned())),
            },
        };
        match name {
            "log" => log = Some(PathBuf::from(value)),
            "log-format" => log_format = Some(value),
            _ => {}
        }
    };
    if command != "create" && command != "run" {
        return Ok(Invocation {
            log,
            log_format,
            command: Command::Other,
        });
    }
    let mut bundle = None;
    let mut id = None;
    let mut flags_done = false;
    while let Some(arg) = rest.next() {
        let arg = utf8(arg)?;
        if flags_done {
            id = Some(arg);
            continue;
        }
        if arg == "--" {
            flags_done = true;
            continue;
        }
        let Some((name, inline)) = flag(arg) else {
            id = Some(arg);
            continue;
        };
        if !CREATE_VALUE_FLAGS.contains(&name) {
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => match rest.next() {
                Some(value) => utf8(value)?,
                None => return Err(ArgsError::MissingValue(arg.to_owned())),
            },
        };
        if name == "bundle" || name == "b" {
            bundle = Some(PathBuf::from(value));
        }
    }
    let id = id.ok_or_else(|| ArgsError::MissingId(command.to_owned()))?;
    Ok(Invocation {
        log,
        log_format,
        command: Command::Create {
            bundle: bundle.unwrap_or_else(|| PathBuf::from(".")),
            id: id.to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &str) -> Result<Invocation, ArgsError> {
        let args: Vec<OsString> = args.split_whitespace().map(OsString::from).collect();
        parse(&args)
    }

    fn create(bundle: &str, id: &str) -> Command {
        Command::Create {
            bundle: PathBuf::from(bundle),
            id: id.to_owned(),
        }
    }

    #[test]
    fn bundle_flag_forms() {
        for args in [
            "create --bundle /b/x c1",
            "create --bundle=/b/x c1",
            "create -b /b/x c1",
            "create -b=/b/x c1",
            "create -bundle /b/x c1",
            "run --bundle /b/x c1",
        ] {
            assert_eq!(
                parse_str(args).unwrap().command,
                create("/b/x", "c1"),
                "{args}"
            );
        }
    }

    #[test]
    fn containerd_command_line() {
        let inv = parse_str(
            "--root /run/docker/runtime-runc/moby --log /run/x/log.json --log-format json --systemd-cgroup \
             create --bundle /run/x/abc --pid-file /run/x/init.pid --console-socket /tmp/s --no-pivot abc",
        )
        .unwrap();
        assert_eq!(inv.command, create("/run/x/abc", "abc"));
        assert_eq!(inv.log, Some(PathBuf::from("/run/x/log.json")));
        assert_eq!(inv.log_format.as_deref(), Some("json"));
    }

    #[test]
    fn id_is_the_last_positional_and_bundle_defaults_to_cwd() {
        assert_eq!(
            parse_str("create --pid-file p --no-new-keyring c2")
                .unwrap()
                .command,
            create(".", "c2")
        );
        assert_eq!(
            parse_str("run -d --keep -- c3").unwrap().command,
            create(".", "c3")
        );
        assert_eq!(
            parse_str("--debug --log=/l create --preserve-fds 2 c4")
                .unwrap()
                .command,
            create(".", "c4")
        );
    }

    #[test]
    fn other_commands_pass_through() {
        for args in [
            "",
            "--version",
            "--root /r state c1",
            "--root /r delete --force c1",
            "start c1",
            "--root create",
        ] {
            assert_eq!(parse_str(args).unwrap().command, Command::Other, "{args:?}");
        }
    }

    #[test]
    fn malformed_create() {
        assert_eq!(
            parse_str("create --bundle"),
            Err(ArgsError::MissingValue("--bundle".into()))
        );
        assert_eq!(
            parse_str("create --bundle /b"),
            Err(ArgsError::MissingId("create".into()))
        );
        assert_eq!(
            parse_str("--root"),
            Err(ArgsError::MissingValue("--root".into()))
        );
    }
}
