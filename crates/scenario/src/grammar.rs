//! The small grammars scenario values must follow: OCI repository names and tags, image
//! references, environment variable names and relative paths. Each check returns what is wrong
//! in a lowercase message, or nothing.

/// Longest repository name (the OCI distribution spec's and Docker's limit).
pub const NAME_MAX: usize = 255;

/// Longest tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub const TAG_MAX: usize = 128;

/// A repository name as a registry knows it (no registry host): lowercase path components
/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*` separated by `/`, at most 255 characters.
pub fn check_repository(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("repository name is empty".to_owned());
    }
    if name.len() > NAME_MAX {
        return Err(format!(
            "repository name is {} characters long (at most {NAME_MAX})",
            name.chars().count()
        ));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "repository `{}` has uppercase letters: repository names are lowercase",
            shown(name)
        ));
    }
    for component in name.split('/') {
        if !is_path_component(component) {
            return Err(format!(
                "repository `{}` is not a valid repository name: each `/`-separated part is \
                 lowercase letters and digits, separated inside by `.`, `_`, `__` or `-`",
                shown(name)
            ));
        }
    }
    Ok(())
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let valid = tag.len() <= TAG_MAX
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid tag: letters, digits, `_`, `.` and `-`, not starting with `.` or \
             `-`, at most {TAG_MAX} characters",
            shown(tag)
        ))
    }
}

/// An image reference: `[host[:port]/]repository[:tag][@digest]`, as `docker image ls` shows
/// and `docker pull` takes. The first part is a registry host when it has a `.` or a `:` or is
/// `localhost`.
pub fn check_reference(reference: &str) -> Result<(), String> {
    let not = |why: &str| {
        Err(format!(
            "`{}` is not a valid image reference ([host[:port]/]repository[:tag][@digest]): {why}",
            shown(reference)
        ))
    };
    if reference.is_empty() {
        return Err("image reference is empty".to_owned());
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        if let Err(why) = check_digest(digest) {
            return not(&why);
        }
    }
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        if let Err(why) = check_tag(tag) {
            return not(&why);
        }
    }
    if name.len() > NAME_MAX {
        return not(&format!("the name is longer than {NAME_MAX} characters"));
    }
    let (host, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), path)
        }
        _ => (None, name),
    };
    if let Some(host) = host {
        if !is_host(host) {
            return not(&format!("`{}` is not a registry host[:port]", shown(host)));
        }
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return not("repository names are lowercase");
    }
    if path.is_empty() || !path.split('/').all(is_path_component) {
        return not(
            "each `/`-separated part of the repository is lowercase letters and digits, \
             separated inside by `.`, `_`, `__` or `-`",
        );
    }
    Ok(())
}

/// A digest `algorithm:encoded`; sha256 and sha512 must have their exact lowercase hex length.
pub fn check_digest(digest: &str) -> Result<(), String> {
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let valid = match digest.split_once(':') {
        Some(("sha256", encoded)) => hex(encoded, 64),
        Some(("sha512", encoded)) => hex(encoded, 128),
        Some((algorithm, encoded)) => {
            !algorithm.is_empty()
                && algorithm.split(['+', '.', '_', '-']).all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
                && !encoded.is_empty()
                && encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a digest (`sha256:` and 64 lowercase hex digits)",
            shown(digest)
        ))
    }
}

/// An environment variable name the harness passes to a container: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check_env_name(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        "is empty"
    } else if name.contains('\0') {
        "contains a NUL byte"
    } else if name.contains('=') {
        "contains `=`, which ends a variable's name"
    } else {
        let b = name.as_bytes();
        let valid = (b[0].is_ascii_alphabetic() || b[0] == b'_')
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_');
        if valid {
            return Ok(());
        }
        "is not letters, digits and `_`, not starting with a digit ([A-Za-z_][A-Za-z0-9_]*)"
    };
    Err(format!("variable name `{}` {why}", shown(name)))
}

/// A path relative to a directory and inside it: not empty, not absolute, no `..` part
/// (whatever a symlink on the way points to, `..` never has to be followed), no NUL byte.
pub fn check_relative_path(path: &str) -> Result<(), String> {
    let why = if path.is_empty() {
        "is empty"
    } else if path.contains('\0') {
        "contains a NUL byte"
    } else if path.starts_with('/') || path.starts_with('\\') || has_drive(path) {
        "is absolute"
    } else if path.split(['/', '\\']).any(|part| part == "..") {
        "has a `..` part"
    } else if path
        .split(['/', '\\'])
        .all(|part| part.is_empty() || part == ".")
    {
        "names the directory itself, not something in it"
    } else {
        return Ok(());
    };
    Err(format!("path `{}` {why}", shown(path)))
}

fn has_drive(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = component.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let separator = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let separator = &component[separator..i];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid || i == b.len() {
            return false;
        }
    }
}

/// `host[:port]`: DNS-style labels of letters, digits and inner `-`, separated by `.`, or a
/// bracketed IPv6 address; the port is digits.
fn is_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return false;
        };
        if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') {
        return true;
    }
    !name.is_empty()
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// A value as shown in a message: characters that would act on a terminal escaped, long values
/// shortened.
pub fn shown(value: &str) -> String {
    const MAX: usize = 80;
    let count = value.chars().count();
    if count <= MAX {
        return printable(value);
    }
    let head: String = value.chars().take(MAX).collect();
    format!("{}… ({count} characters)", printable(&head))
}

/// Text with control characters and bidirectional overrides escaped (`\u{1b}`).
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        for ok in [
            "conformance/app",
            "a",
            "a/b/c",
            "a.b_c__d---e/f0",
            "harness/busybox",
        ] {
            assert_eq!(check_repository(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Conformance/app",
            "a//b",
            "/a",
            "a/",
            "a-",
            "-a",
            "a..b",
            "a___b",
            "a:b",
            "a b",
            "é",
        ] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
        assert!(check_repository(&"a".repeat(255)).is_ok());
        assert!(check_repository(&"a".repeat(256)).is_err());
    }

    #[test]
    fn tags() {
        for ok in ["1.0", "latest", "_x", "1.0-mirror", "A_b.c-d"] {
            assert_eq!(check_tag(ok), Ok(()), "{ok}");
        }
        assert!(check_tag(&"a".repeat(128)).is_ok());
        for bad in ["", ".a", "-a", "a:b", "a/b", "a b", "é"] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
        assert!(check_tag(&"a".repeat(129)).is_err());
    }

    #[test]
    fn references() {
        for ok in [
            "local/app:1.0",
            "app",
            "registry:5000/conformance/app:1.0",
            "localhost/app",
            "my.registry.example/a/b:tag",
            "[::1]:5000/app:1",
            "app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "Registry.Example:5000/app",
        ] {
            assert_eq!(check_reference(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Local/App:1.0",
            "a:b:c",
            "registry:5000/App",
            "app:",
            "app@sha256:1234",
            "-host.x/app",
            "host.x:port/app",
            "registry:5000/",
            "app:1.0 ",
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_names() {
        for ok in ["PLUGIN_REPO", "_a", "a1"] {
            assert_eq!(check_env_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "A=B", "A\0", "1A", "A-B", "A B", "É"] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_paths() {
        for ok in [
            "image.tar",
            "out/image.tar",
            "./a",
            "a/./b",
            "a..b",
            "fixtures/contexts/app",
        ] {
            assert_eq!(check_relative_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "./",
            "/etc/shadow",
            "../x",
            "a/../../x",
            "a/..",
            "..",
            "a\0b",
            "C:/x",
            "\\x",
            "a\\..\\b",
        ] {
            assert!(check_relative_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shown_values_are_short_and_printable() {
        assert_eq!(shown("a\0b\n\u{202e}"), "a\\u{0}b\\n\\u{202e}");
        assert!(shown(&"x".repeat(10_000)).ends_with("… (10000 characters)"));
    }
}

/// The smallest memory limit Docker accepts for a container (6 MiB).
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// A Kubernetes memory quantity in bytes: `500Mi`, `1G`, `1048576`.
pub fn memory_quantity(text: &str) -> Result<u64, String> {
    let units: [(&str, u64); 6] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("K", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    let (number, scale) = units
        .iter()
        .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((text, 1));
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v > 0.0)
        .ok_or_else(|| {
            format!(
                "memory `{}` is not a quantity such as 500Mi, 1G or 1048576",
                shown(text)
            )
        })?;
    let bytes = value * scale as f64;
    if bytes < MIN_MEMORY as f64 {
        return Err(format!(
            "memory `{}` is below 6Mi, the least Docker gives a container",
            shown(text)
        ));
    }
    if bytes > (1u64 << 50) as f64 {
        return Err(format!(
            "memory `{}` is larger than any machine",
            shown(text)
        ));
    }
    Ok(bytes as u64)
}

/// A Kubernetes CPU quantity in millicores: `400m`, `0.4`, `2`.
pub fn cpu_quantity(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "cpu `{}` is not a quantity such as 400m, 0.4 or 2",
            shown(text)
        )
    };
    let millicores = match text.strip_suffix('m') {
        Some(m) => m.parse::<u64>().map_err(|_| bad())?,
        None => {
            let cores: f64 = text.parse().map_err(|_| bad())?;
            if !cores.is_finite() || cores <= 0.0 || cores > 1024.0 {
                return Err(bad());
            }
            (cores * 1000.0).round() as u64
        }
    };
    if millicores == 0 || millicores > 1024 * 1000 {
        return Err(format!(
            "cpu `{}` must be more than 0 and at most 1024 cores",
            shown(text)
        ));
    }
    Ok(millicores)
}

#[cfg(test)]
mod quantity_tests {
    use super::*;

    #[test]
    fn kubernetes_quantities_read_as_the_docs_write_them() {
        assert_eq!(memory_quantity("500Mi"), Ok(500 << 20));
        assert_eq!(memory_quantity("1G"), Ok(1_000_000_000));
        assert_eq!(memory_quantity("0.5Gi"), Ok(512 << 20));
        assert_eq!(memory_quantity("10485760"), Ok(10 << 20));
        assert!(memory_quantity("1Mi").is_err());
        assert!(memory_quantity("lots").is_err());
        assert!(memory_quantity("-5Mi").is_err());
        assert_eq!(cpu_quantity("400m"), Ok(400));
        assert_eq!(cpu_quantity("0.1"), Ok(100));
        assert_eq!(cpu_quantity("2"), Ok(2000));
        assert!(cpu_quantity("0m").is_err());
        assert!(cpu_quantity("fast").is_err());
        assert!(cpu_quantity("NaN").is_err());
    }
}
