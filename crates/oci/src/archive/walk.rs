//! The walk over one layer's tar members that listing its entries ([`super::read_layer_entries`])
//! and reading chosen files ([`super::read_layer_files`]) share: the layer streamed through the
//! bounded decompressor, each member's path normalised and refused when it leaves the layer's
//! root, the decompressor's failures told apart from a stream that is not a readable tar.

use std::io::{self, Read};

use super::layer::decompressed;
use super::tarstream::{Header, TarError, TarStream};
use super::{normalize, Compression, LayerProblem, Limits, Want};
use crate::human::shown;

/// Why a member's visit stops the walk.
pub(super) enum Stop {
    /// Reading the member's data failed: the decompressed stream's problem (a limit,
    /// corruption), unless the tar stream ended inside the member (then the layer is not a
    /// readable tar).
    Read(io::Error),
    /// The layer is refused, for this reason (e.g. it lists more than the budget).
    Refused(String),
}

/// Streams one layer (compressed as `compression`, `compressed_size` bytes) under the limits
/// and visits each member in order: its header, its path normalised (never with a `..`: such a
/// member stops the walk, a path traversal) and its data. `Err` when decompression failed or
/// went over a limit; the inner `Err` when the stream is not a readable tar or a visit refused
/// the layer.
pub(super) fn walk_members<R: Read>(
    input: R,
    compression: Compression,
    compressed_size: u64,
    limits: &Limits,
    mut visit: impl FnMut(Header, String, &mut dyn Read) -> Result<(), Stop>,
) -> Result<Result<(), String>, LayerProblem> {
    let mut capped = decompressed(input, compression, compressed_size, limits, Want::default())?;
    let mut stream = TarStream::new(&mut capped);
    let mut failed = None;
    let mut broken = None;
    loop {
        let header = match stream.next_header() {
            Ok(Some(header)) => header,
            Ok(None) => break,
            Err(TarError::Inner(e)) => {
                failed = Some(e);
                break;
            }
            Err(e) => {
                broken = Some(format!("not a readable tar: {e}"));
                break;
            }
        };
        let path = normalize(&header.name);
        if path.split('/').any(|c| c == "..") {
            broken = Some(format!(
                "member {} leaves the layer's root (path traversal)",
                shown(&header.name)
            ));
            break;
        }
        match visit(header, path, &mut stream.data()) {
            Ok(()) => {}
            Err(Stop::Read(e)) => {
                if stream.truncation().is_none() {
                    failed = Some(e);
                }
                break;
            }
            Err(Stop::Refused(why)) => {
                broken = Some(why);
                break;
            }
        }
    }
    // Data the walker skipped (or read) may have ended the stream early.
    if let Some(truncated) = stream.truncation() {
        broken.get_or_insert_with(|| format!("not a readable tar: {truncated}"));
    }
    drop(stream);
    if let Some(e) = failed {
        return Err(capped.problem(&e));
    }
    Ok(match broken {
        Some(why) => Err(why),
        None => Ok(()),
    })
}
