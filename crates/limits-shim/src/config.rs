//! The bundle's config.json: take `CONFORMANCE_LIMITS` out of the process's environment and put
//! the limits, and a cgroup below the wrapper's own, into `linux`. Everything else is kept as it is
//! (a `serde_json::Value`, so fields this crate has never heard of survive).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::limits::{self, Limits, LimitsError};

/// The CFS period the CPU quota is a share of, in µs.
pub const CPU_PERIOD: i64 = 100_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("config.json: {0} is not {1}")]
    Shape(&'static str, &'static str),
    #[error("config.json: {var} is set {0} times in process.env", var = limits::VAR)]
    SetTwice(usize),
    #[error(transparent)]
    Limits(#[from] LimitsError),
}

/// The cgroup this process is in, as /proc/self/cgroup says it: the `pids` (or else `memory`)
/// hierarchy on cgroup v1, the unified one otherwise.
pub fn own_cgroup(proc_self_cgroup: &str) -> Option<&str> {
    let lines: Vec<(&str, &str)> = proc_self_cgroup
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once(':')?;
            rest.split_once(':')
        })
        .collect();
    let v1 = |controller: &str| {
        lines
            .iter()
            .find(|(controllers, _)| controllers.split(',').any(|c| c == controller))
            .map(|(_, path)| *path)
    };
    v1("pids").or_else(|| v1("memory")).or_else(|| {
        lines
            .iter()
            .find(|(controllers, _)| controllers.is_empty())
            .map(|(_, path)| *path)
    })
}

/// The object at `key` of `object`, made when missing.
fn object<'a>(
    object: &'a mut Map<String, Value>,
    key: &str,
    name: &'static str,
) -> Result<&'a mut Map<String, Value>, ConfigError> {
    object
        .entry(key)
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or(ConfigError::Shape(name, "an object"))
}

/// Takes `CONFORMANCE_LIMITS` out of `process.env` and returns the limits it gives; `None` (and
/// the config untouched) when it is not set.
pub fn take_limits(config: &mut Value) -> Result<Option<Limits>, ConfigError> {
    let prefix = format!("{}=", limits::VAR);
    let Some(env) = config.get_mut("process").and_then(|p| p.get_mut("env")) else {
        return Ok(None);
    };
    let env = env
        .as_array_mut()
        .ok_or(ConfigError::Shape("process.env", "an array"))?;
    let values: Vec<&str> = env
        .iter()
        .filter_map(|e| e.as_str()?.strip_prefix(&prefix))
        .collect();
    let parsed = match values.as_slice() {
        [] => return Ok(None),
        [value] => limits::parse(value)?,
        _ => return Err(ConfigError::SetTwice(values.len())),
    };
    env.retain(|e| !e.as_str().is_some_and(|e| e.starts_with(&prefix)));
    Ok(Some(parsed))
}

/// Sets `linux.cgroupsPath` to `<own_cgroup>/<id>` and `linux.resources` to `limits`.
pub fn set_limits(
    config: &mut Value,
    limits: &Limits,
    own_cgroup: &str,
    id: &str,
) -> Result<(), ConfigError> {
    let root = config
        .as_object_mut()
        .ok_or(ConfigError::Shape("the document", "an object"))?;
    let linux = object(root, "linux", "linux")?;
    let own = own_cgroup.trim_end_matches('/');
    let path = match &limits.parent {
        Some(parent) => format!("{own}/{parent}/{id}"),
        None => format!("{own}/{id}"),
    };
    linux.insert("cgroupsPath".into(), Value::String(path));
    let resources = object(linux, "resources", "linux.resources")?;
    if let Some(memory) = limits.memory {
        let m = object(resources, "memory", "linux.resources.memory")?;
        m.insert("limit".into(), json!(memory));
        // memory + swap: no swap beyond the memory limit.
        m.insert("swap".into(), json!(memory));
    }
    if let Some(pids) = limits.pids {
        object(resources, "pids", "linux.resources.pids")?.insert("limit".into(), json!(pids));
    }
    if let Some(millicores) = limits.cpu_millicores {
        let cpu = object(resources, "cpu", "linux.resources.cpu")?;
        cpu.insert("quota".into(), json!(millicores * (CPU_PERIOD / 1000)));
        cpu.insert("period".into(), json!(CPU_PERIOD));
    }
    Ok(())
}

/// Replaces `path` with `bytes` at once: a temporary file beside it, with its mode, renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.conformance-runc.{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have taken bits off.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_V1: &str =
        "9:name=systemd:/\n8:pids:/conformance-rootless\n7:blkio:/\n4:memory:/mem\n1:cpu:/\n0::/\n";

    #[test]
    fn own_cgroup_per_hierarchy() {
        assert_eq!(own_cgroup(PROC_V1), Some("/conformance-rootless"));
        assert_eq!(
            own_cgroup("4:memory:/mem\n3:cpu,cpuacct:/\n0::/\n"),
            Some("/mem")
        );
        assert_eq!(
            own_cgroup("0::/user.slice/conformance\n"),
            Some("/user.slice/conformance")
        );
        assert_eq!(own_cgroup(""), None);
    }

    fn sample() -> Value {
        json!({
            "ociVersion": "1.0.2",
            "x-unknown": {"kept": [1, 2, 3]},
            "process": {
                "args": ["sh"],
                "env": ["PATH=/bin", "CONFORMANCE_LIMITS=memory=64Mi,pids=30,cpu=500", "HOME=/root"],
                "futureField": true
            },
            "linux": {
                "namespaces": [{"type": "pid"}],
                "resources": {"devices": [{"allow": false, "access": "rwm"}], "memory": {"reservation": 1}}
            }
        })
    }

    /// What the wrapper does with a config.json: the limits, if any, taken out and applied.
    fn apply(
        config: &mut Value,
        own_cgroup: &str,
        id: &str,
    ) -> Result<Option<Limits>, ConfigError> {
        let limits = take_limits(config)?;
        if let Some(limits) = &limits {
            set_limits(config, limits, own_cgroup, id)?;
        }
        Ok(limits)
    }

    #[test]
    fn a_parent_made_by_the_harness_goes_between_the_shims_cgroup_and_the_container() {
        let mut config =
            json!({"process": {"env": ["CONFORMANCE_LIMITS=pids=8,parent=conformance-x-dind"]}});
        let limits = take_limits(&mut config).unwrap().unwrap();
        set_limits(&mut config, &limits, "/conformance-rootless/", "abc").unwrap();
        assert_eq!(
            config["linux"]["cgroupsPath"],
            json!("/conformance-rootless/conformance-x-dind/abc")
        );
        assert_eq!(config["process"]["env"], json!([]));
    }

    #[test]
    fn limits_applied_and_unknown_fields_kept() {
        let mut config = sample();
        let applied = apply(&mut config, "/conformance-rootless", "abc").unwrap();
        assert_eq!(
            applied,
            Some(Limits {
                memory: Some(64 << 20),
                pids: Some(30),
                cpu_millicores: Some(500),
                parent: None
            })
        );
        assert_eq!(
            config,
            json!({
                "ociVersion": "1.0.2",
                "x-unknown": {"kept": [1, 2, 3]},
                "process": {"args": ["sh"], "env": ["PATH=/bin", "HOME=/root"], "futureField": true},
                "linux": {
                    "namespaces": [{"type": "pid"}],
                    "cgroupsPath": "/conformance-rootless/abc",
                    "resources": {
                        "devices": [{"allow": false, "access": "rwm"}],
                        "memory": {"reservation": 1, "limit": 67108864, "swap": 67108864},
                        "pids": {"limit": 30},
                        "cpu": {"quota": 50000, "period": 100000}
                    }
                }
            })
        );
    }

    #[test]
    fn subset_and_missing_linux() {
        let mut config = json!({"process": {"env": ["CONFORMANCE_LIMITS=pids=7"]}});
        apply(&mut config, "/", "c").unwrap();
        assert_eq!(
            config,
            json!({"process": {"env": []}, "linux": {"cgroupsPath": "/c", "resources": {"pids": {"limit": 7}}}})
        );
    }

    #[test]
    fn without_the_variable_nothing_changes() {
        for config in [
            json!({"process": {"env": ["A=1"]}, "linux": {}}),
            json!({"process": {}}),
            json!({}),
        ] {
            let mut edited = config.clone();
            assert_eq!(apply(&mut edited, "/x", "c"), Ok(None));
            assert_eq!(edited, config);
        }
    }

    #[test]
    fn bad_value_is_an_error_and_config_untouched() {
        let mut config = json!({"process": {"env": ["CONFORMANCE_LIMITS=pids=lots"]}});
        let err = apply(&mut config, "/x", "c").unwrap_err();
        assert_eq!(
            err.to_string(),
            "CONFORMANCE_LIMITS: pids=\"lots\" is not a positive number of processes"
        );
        assert_eq!(
            config,
            json!({"process": {"env": ["CONFORMANCE_LIMITS=pids=lots"]}})
        );
        let mut twice =
            json!({"process": {"env": ["CONFORMANCE_LIMITS=pids=1", "CONFORMANCE_LIMITS=pids=2"]}});
        assert_eq!(apply(&mut twice, "/x", "c"), Err(ConfigError::SetTwice(2)));
    }

    #[test]
    fn atomic_write_keeps_the_mode() {
        let dir = std::env::temp_dir().join(format!("limits-shim-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        fs::write(&path, b"{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, b"{\"a\":1}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"a\":1}");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
