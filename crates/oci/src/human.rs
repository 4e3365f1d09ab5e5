//! Names and sizes written for a person, as every message about an archive, a workspace file or a
//! registry reading names them: control characters escaped, long names cut, bytes in units.

/// Binary units.
pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

/// A name from an archive (or a link target), for a message: control characters escaped,
/// at most 200 characters.
pub fn shown(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(200)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// A byte count for a person: `16 MiB`, `1.5 GiB`, `612 bytes`.
pub fn human(bytes: u64) -> String {
    const UNITS: &[(u64, &str)] = &[(1 << 40, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    for &(size, unit) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} bytes")
}
