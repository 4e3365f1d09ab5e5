//! The archive reader on arbitrary bytes: `ImageArchive::from_file` (the entry point every
//! `tarball:` assertion and tarball capture goes through: one streaming pass, digests verified,
//! layers decompressed and listed) with small [`Limits`], then what callers ask of the result
//! (`labels`, `files`) and the error's message. None may panic, abort, run out of memory or
//! hang: bounded memory and time is the point of the reader. The small limits let libFuzzer
//! reach every limit's branch with inputs of a few KiB; `scan_layer` is fed the same bytes
//! directly as each compression, so the decompressors are reached without a valid tar around
//! them.

#![no_main]

use std::ffi::CStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::Path;

use oci::archive::{scan_layer, Compression, ImageArchive, Limits, Want};
use libfuzzer_sys::fuzz_target;

const KIB: u64 = 1024;

fn limits() -> Limits {
    Limits {
        members: 64,
        json_bytes: 16 * KIB,
        json_total_bytes: 64 * KIB,
        layer_bytes: 4 * 1024 * KIB,
        layer_ratio: 100,
        layer_ratio_floor: 64 * KIB,
        name_bytes: 64 * KIB,
        zstd_window_log_max: 20,
    }
}

/// The bytes as a file (in memory: a memfd), as the reader only reads files.
fn memfile(data: &[u8]) -> File {
    let name = CStr::from_bytes_with_nul(b"archive_reader\0").unwrap();
    // SAFETY: a fresh descriptor, owned by the File from here on.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(data).unwrap();
    file
}

fuzz_target!(|data: &[u8]| {
    let limits = limits();
    match ImageArchive::from_file(memfile(data), Path::new("fuzz.tar"), &limits) {
        Ok(archive) => {
            for image in &archive.images {
                let _ = image.labels();
                let _ = image.files();
                let _ = image.describe();
            }
            let _ = format!("{archive:?}");
        }
        Err(error) => {
            let _ = error.to_string();
            let _ = error.is_harness_error();
        }
    }
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut names_left = limits.name_bytes;
        let want = Want {
            sha256: true,
            sha512: true,
        };
        if let Err(problem) = scan_layer(
            data,
            compression,
            data.len() as u64,
            &limits,
            want,
            &mut names_left,
        ) {
            let _ = problem.describe("layer");
        }
    }
});
