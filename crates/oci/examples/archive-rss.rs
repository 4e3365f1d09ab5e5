//! Memory benchmark of the archive reader (not a timed test): writes a docker-archive whose
//! layers hold SIZE_GIB (default 2) to a temporary directory — streamed, never held in memory
//! (with plain layers, as `docker save` writes them, the archive is that size) — reads and
//! verifies it with `ImageArchive::read`, and prints the peak RSS of the read (VmHWM, reset
//! before it) and its time. Exits 1 when the peak passes 100 MiB.
//!
//! ```sh
//! cargo run --release --example archive-rss -- 2            # plain layers, as docker save writes
//! cargo run --release --example archive-rss -- 2 gzip       # gzip (or zstd) layers
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::time::Instant;

use oci::archive::ImageArchive;
use sha2::{Digest, Sha256};

const MIB: u64 = 1 << 20;
/// Every layer holds this much (uncompressed), in files of FILE bytes.
const LAYER: u64 = 256 * MIB;
const FILE: u64 = 16 * MIB;
const LIMIT_KIB: u64 = 100 * 1024;

#[derive(Clone, Copy, PartialEq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Pseudo-random bytes, half of each 64 KiB chunk zeros (so that compression has work).
struct Noise {
    state: u64,
    left: u64,
    at: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for b in &mut buf[..n] {
            *b = if (self.at >> 15) & 1 == 0 {
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
                self.state as u8
            } else {
                0
            };
            self.at += 1;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Hashes and counts what is written through it.
struct Tee<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn tee<W: Write>(inner: W) -> Tee<W> {
    Tee {
        inner,
        hash: Sha256::new(),
        bytes: 0,
    }
}

fn digest(hash: Sha256) -> String {
    format!("sha256:{}", hex::encode(hash.finalize()))
}

/// Layer `index` as a tar, written to `out`; returns the uncompressed tar's digest.
fn write_layer<W: Write>(index: u64, out: W) -> io::Result<String> {
    let mut plain = tee(out);
    {
        let mut builder = tar::Builder::new(&mut plain);
        for f in 0..LAYER / FILE {
            let mut header = tar::Header::new_gnu();
            header.set_size(FILE);
            header.set_mode(0o644);
            header.set_cksum();
            let noise = Noise {
                state: 0x9e37_79b9_7f4a_7c15 ^ (index << 32 | f) | 1,
                left: FILE,
                at: 0,
            };
            builder.append_data(&mut header, format!("layer{index}/file{f}"), noise)?;
        }
        builder.finish()?;
    }
    plain.flush()?;
    Ok(digest(plain.hash))
}

/// Layer `index` as stored (compressed or not) into `out`: (diff_id, stored digest, size).
fn store_layer<W: Write>(
    index: u64,
    compression: Compression,
    out: W,
) -> io::Result<(String, String, u64)> {
    let mut stored = tee(out);
    let diff_id = match compression {
        Compression::None => write_layer(index, &mut stored)?,
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(&mut stored, flate2::Compression::fast());
            let diff_id = write_layer(index, &mut encoder)?;
            encoder.finish()?;
            diff_id
        }
        Compression::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(&mut stored, 1)?;
            let diff_id = write_layer(index, &mut encoder)?;
            encoder.finish()?;
            diff_id
        }
    };
    Ok((diff_id, digest(stored.hash), stored.bytes))
}

fn append(out: &mut impl Write, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_path(name)?;
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    out.write_all(header.as_bytes())?;
    out.write_all(bytes)?;
    pad(out, bytes.len() as u64)
}

fn pad(out: &mut impl Write, size: u64) -> io::Result<()> {
    let padding = (512 - size % 512) % 512;
    out.write_all(&vec![0u8; padding as usize])
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let gib: f64 = args
        .first()
        .map_or(Ok(2.0), |a| a.parse())
        .unwrap_or_else(|_| {
            eprintln!("usage: archive-rss [SIZE_GIB] [none|gzip|zstd]");
            std::process::exit(2)
        });
    let compression = match args.get(1).map(String::as_str) {
        None | Some("none") => Compression::None,
        Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        Some(other) => {
            eprintln!("unknown compression {other}: none, gzip or zstd");
            std::process::exit(2)
        }
    };
    let layers = ((gib * 1024.0 * MIB as f64) / LAYER as f64).ceil().max(1.0) as u64;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("image.tar");

    // First pass: the digests (the archive names blobs by them, before their data).
    let started = Instant::now();
    let mut described = Vec::new();
    for i in 0..layers {
        described.push(store_layer(i, compression, io::sink())?);
    }
    let diff_ids: Vec<&String> = described.iter().map(|(d, _, _)| d).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"org.conformance.fixture": "bench"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))?;
    let config_name = format!("blobs/sha256/{}", hex::encode(Sha256::digest(&config)));
    // Second pass: the archive itself, each layer generated again straight into the file.
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
    append(&mut out, &config_name, &config)?;
    let mut names = Vec::new();
    for (i, (_, stored, size)) in described.iter().enumerate() {
        let name = format!("blobs/sha256/{}", &stored[7..]);
        let mut header = tar::Header::new_gnu();
        header.set_path(&name)?;
        header.set_size(*size);
        header.set_mode(0o644);
        header.set_cksum();
        out.write_all(header.as_bytes())?;
        let (_, again, written) = store_layer(i as u64, compression, &mut out)?;
        assert_eq!(
            (&again, written),
            (stored, *size),
            "the generator is not deterministic"
        );
        pad(&mut out, *size)?;
        names.push(name);
    }
    let manifest = serde_json::json!([{"Config": config_name,
        "RepoTags": ["registry:5000/bench/app:1.0"], "Layers": names}]);
    append(&mut out, "manifest.json", &serde_json::to_vec(&manifest)?)?;
    out.write_all(&[0u8; 1024])?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let size = std::fs::metadata(&path)?.len();
    let written_in = started.elapsed();

    // Reset the peak, so that it is the read's alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss_kib();
    let started = Instant::now();
    let archive = ImageArchive::read(&path).map_err(io::Error::other)?;
    let files = archive.first().files().map_err(io::Error::other)?.len();
    let read_in = started.elapsed();
    let peak = peak_rss_kib();

    println!(
        "archive: {:.2} GiB, {layers} layers of {} MiB ({}), written in {:.1} s",
        size as f64 / (1024.0 * MIB as f64),
        LAYER / MIB,
        match compression {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        },
        written_in.as_secs_f64()
    );
    println!(
        "verified: {} digests, {} mismatches, {files} files",
        archive.digests_checked,
        archive.digest_mismatches.len()
    );
    println!(
        "read: {:.1} s ({:.0} MiB/s); peak RSS {:.1} MiB (before the read: {:.1} MiB)",
        read_in.as_secs_f64(),
        size as f64 / MIB as f64 / read_in.as_secs_f64(),
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    if !archive.digest_mismatches.is_empty() || archive.digests_checked == 0 {
        eprintln!(
            "the archive did not verify: {:?}",
            archive.digest_mismatches
        );
        std::process::exit(1);
    }
    if peak > LIMIT_KIB {
        eprintln!("peak RSS over {} MiB", LIMIT_KIB / 1024);
        std::process::exit(1);
    }
    Ok(())
}
