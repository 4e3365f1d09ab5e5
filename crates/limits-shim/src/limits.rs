//! The value of `CONFORMANCE_LIMITS`: `memory=<bytes>,pids=<n>,cpu=<millicores>,parent=<name>`,
//! any subset in any order. Memory may carry a binary suffix (`64Mi`, `2Gi`). `parent` names a
//! cgroup the harness (root) made beside the shim's own, with root-owned limits: the container
//! goes below it, so that a privileged container cannot raise the limits that bind it.

/// The environment variable a container's limits come in.
pub const VAR: &str = "CONFORMANCE_LIMITS";

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The harness's cgroup for the container, below the shim's own (one path component).
    pub parent: Option<String>,
    /// Bytes.
    pub memory: Option<i64>,
    pub pids: Option<i64>,
    /// Thousandths of a CPU.
    pub cpu_millicores: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitsError {
    #[error("{VAR} is empty: give memory=<bytes>, pids=<n> and/or cpu=<millicores>")]
    Empty,
    #[error("{VAR}: {0:?} is not key=value (memory=<bytes>, pids=<n>, cpu=<millicores>)")]
    NotKeyValue(String),
    #[error("{VAR}: unknown limit {0:?} (known: memory, pids, cpu, parent)")]
    UnknownKey(String),
    #[error("{VAR}: {0} is given twice")]
    Twice(String),
    #[error("{VAR}: {key}={value:?} is not {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
}

/// The smallest CPU share the kernel takes: a quota of 1 ms per 100 ms period.
const MIN_MILLICORES: i64 = 10;

/// The multiplier of a memory suffix.
fn suffix(s: &str) -> (&str, i64) {
    const SUFFIXES: &[(&str, i64)] = &[
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
    ];
    for &(suffix, factor) in SUFFIXES {
        if let Some(number) = s.strip_suffix(suffix) {
            return (number, factor);
        }
    }
    (s, 1)
}

/// A positive number of bytes, with or without a suffix.
fn bytes(s: &str) -> Option<i64> {
    let (number, factor) = suffix(s);
    positive(number, factor)
}

/// A positive decimal integer (digits only: no sign, no spaces), times `factor`, that fits an i64.
fn positive(number: &str, factor: i64) -> Option<i64> {
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = number.parse().ok()?;
    let n = n.checked_mul(factor)?;
    (n > 0).then_some(n)
}

pub fn parse(value: &str) -> Result<Limits, LimitsError> {
    if value.trim().is_empty() {
        return Err(LimitsError::Empty);
    }
    let mut limits = Limits::default();
    for item in value.split(',') {
        let item = item.trim();
        let (key, raw) = item
            .split_once('=')
            .ok_or_else(|| LimitsError::NotKeyValue(item.to_owned()))?;
        let (key, raw) = (key.trim(), raw.trim());
        let bad = |expected| LimitsError::BadValue {
            key: key.to_owned(),
            value: raw.to_owned(),
            expected,
        };
        if key == "parent" {
            // One path component: letters, digits, `_`, `.`, `-` (never `.` or `..`).
            let valid = !raw.is_empty()
                && raw != "."
                && raw != ".."
                && raw
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !valid {
                return Err(bad("a cgroup name (letters, digits, `_`, `.`, `-`)"));
            }
            if limits.parent.replace(raw.to_owned()).is_some() {
                return Err(LimitsError::Twice(key.to_owned()));
            }
            continue;
        }
        let (slot, parsed) = match key {
            "memory" => (
                &mut limits.memory,
                bytes(raw)
                    .ok_or_else(|| bad("a positive number of bytes (optionally Ki, Mi, Gi, Ti)"))?,
            ),
            "pids" => (
                &mut limits.pids,
                positive(raw, 1).ok_or_else(|| bad("a positive number of processes"))?,
            ),
            "cpu" => (
                &mut limits.cpu_millicores,
                positive(raw, 1)
                    .filter(|&m| m >= MIN_MILLICORES)
                    // The quota is millicores × 100 µs.
                    .filter(|m| m.checked_mul(100).is_some())
                    .ok_or_else(|| bad("a number of millicores, at least 10"))?,
            ),
            _ => return Err(LimitsError::UnknownKey(key.to_owned())),
        };
        if slot.replace(parsed).is_some() {
            return Err(LimitsError::Twice(key.to_owned()));
        }
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_values() {
        assert_eq!(
            parse("memory=2147483648,pids=4096,cpu=1500"),
            Ok(Limits {
                memory: Some(2147483648),
                pids: Some(4096),
                cpu_millicores: Some(1500),
                parent: None
            })
        );
        assert_eq!(
            parse("pids=30"),
            Ok(Limits {
                pids: Some(30),
                ..Limits::default()
            })
        );
        assert_eq!(
            parse("cpu=10, memory=64Mi"),
            Ok(Limits {
                memory: Some(64 << 20),
                cpu_millicores: Some(10),
                ..Limits::default()
            })
        );
        assert_eq!(parse("memory=2Gi").unwrap().memory, Some(2 << 30));
        assert_eq!(
            parse("parent=conformance-abc-step-build,pids=8").unwrap(),
            Limits {
                parent: Some("conformance-abc-step-build".into()),
                pids: Some(8),
                ..Limits::default()
            }
        );
        assert_eq!(parse("memory=1Ki").unwrap().memory, Some(1024));
    }

    #[test]
    fn bad_values() {
        for (value, message) in [
            ("", "CONFORMANCE_LIMITS is empty: give memory=<bytes>, pids=<n> and/or cpu=<millicores>"),
            ("pids", "CONFORMANCE_LIMITS: \"pids\" is not key=value (memory=<bytes>, pids=<n>, cpu=<millicores>)"),
            ("pids=30,", "CONFORMANCE_LIMITS: \"\" is not key=value (memory=<bytes>, pids=<n>, cpu=<millicores>)"),
            ("swap=1", "CONFORMANCE_LIMITS: unknown limit \"swap\" (known: memory, pids, cpu, parent)"),
            ("parent=../x", "CONFORMANCE_LIMITS: parent=\"../x\" is not a cgroup name (letters, digits, `_`, `.`, `-`)"),
            ("parent=..", "CONFORMANCE_LIMITS: parent=\"..\" is not a cgroup name (letters, digits, `_`, `.`, `-`)"),
            ("parent=a,parent=b", "CONFORMANCE_LIMITS: parent is given twice"),
            ("pids=1,pids=2", "CONFORMANCE_LIMITS: pids is given twice"),
            ("pids=0", "CONFORMANCE_LIMITS: pids=\"0\" is not a positive number of processes"),
            ("pids=-1", "CONFORMANCE_LIMITS: pids=\"-1\" is not a positive number of processes"),
            ("pids=max", "CONFORMANCE_LIMITS: pids=\"max\" is not a positive number of processes"),
            ("memory=64M", "CONFORMANCE_LIMITS: memory=\"64M\" is not a positive number of bytes (optionally Ki, Mi, Gi, Ti)"),
            ("memory=1.5Gi", "CONFORMANCE_LIMITS: memory=\"1.5Gi\" is not a positive number of bytes (optionally Ki, Mi, Gi, Ti)"),
            ("memory=", "CONFORMANCE_LIMITS: memory=\"\" is not a positive number of bytes (optionally Ki, Mi, Gi, Ti)"),
            ("memory=99999999999Ti", "CONFORMANCE_LIMITS: memory=\"99999999999Ti\" is not a positive number of bytes (optionally Ki, Mi, Gi, Ti)"),
            ("cpu=5", "CONFORMANCE_LIMITS: cpu=\"5\" is not a number of millicores, at least 10"),
            ("cpu=+500", "CONFORMANCE_LIMITS: cpu=\"+500\" is not a number of millicores, at least 10"),
        ] {
            assert_eq!(parse(value).unwrap_err().to_string(), message, "{value:?}");
        }
    }
}
