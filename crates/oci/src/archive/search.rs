//! Looking for given byte strings — a build's secrets, in every form they may take — in what a
//! plugin produced, with bounded memory: an image's layers (every byte of each decompressed
//! stream, so member names, extended headers and file contents alike), its config and manifest,
//! or every member of an image archive (its layers decompressed).
//!
//! The bytes are searched as they stream by (several needles at once, Aho-Corasick), keeping
//! only the last `longest needle − 1` bytes between reads, so that a needle split across two
//! reads is still found; nothing else is held. A layer's tar is walked at the same time only to
//! say *where* a needle is (which file, which member's header). Messages never quote what was
//! searched, nor a name that itself holds a needle.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use aho_corasick::AhoCorasick;
use serde_json::Value;

use super::layer::{decompressed, Compression, LayerProblem};
use super::scan::Source;
use super::tarstream::{Kind, TarError, TarStream};
use super::{shown, Limits, Want};
use crate::errors::ArchiveReadError;

/// A byte string to look for, and what it is for messages (e.g. "the value of BUILD_TOKEN,
/// base64"): the bytes themselves are never shown.
#[derive(Debug, Clone)]
pub struct Needle {
    pub what: String,
    pub bytes: Vec<u8>,
}

/// Needles searched for together.
#[derive(Debug, Clone)]
pub struct Needles {
    matcher: AhoCorasick,
    what: Vec<String>,
    longest: usize,
}

/// Where a needle was found: what it is ([`Needle::what`]) and the place, in words.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub what: String,
    pub place: String,
}

/// What a search went through, and what it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Searched {
    pub findings: Vec<Finding>,
    /// Tar members walked (a layer's files, an archive's members and their layers' files).
    pub members: u64,
    /// Bytes searched (decompressed).
    pub bytes: u64,
}

impl Searched {
    /// Adds what searching a part found, its places prefixed with the part's name (an empty
    /// place is the part as a whole; an empty name adds the places as they are).
    pub fn add_part(&mut self, other: Searched, part: &str) {
        self.members += other.members;
        self.bytes += other.bytes;
        self.findings
            .extend(other.findings.into_iter().map(|f| Finding {
                what: f.what,
                place: match (part.is_empty(), f.place.is_empty()) {
                    (true, _) => f.place,
                    (false, true) => part.to_owned(),
                    (false, false) => format!("{part}, {}", f.place),
                },
            }));
    }

    fn found(&mut self, needles: &Needles, hits: BTreeSet<usize>, place: &str) {
        self.findings.extend(hits.into_iter().map(|i| Finding {
            what: needles.what[i].clone(),
            place: place.to_owned(),
        }));
    }
}

impl Needles {
    /// The needles; an empty one is refused (it would be everywhere).
    pub fn new(needles: Vec<Needle>) -> Result<Needles, String> {
        if let Some(empty) = needles.iter().find(|n| n.bytes.is_empty()) {
            return Err(format!(
                "{} is empty: it cannot be searched for",
                empty.what
            ));
        }
        let matcher = AhoCorasick::new(needles.iter().map(|n| &n.bytes))
            .map_err(|e| format!("the needles cannot be searched for: {e}"))?;
        Ok(Needles {
            matcher,
            longest: needles.iter().map(|n| n.bytes.len()).max().unwrap_or(0),
            what: needles.into_iter().map(|n| n.what).collect(),
        })
    }

    /// Which needles (by index) are in `bytes`.
    fn hits(&self, bytes: &[u8]) -> BTreeSet<usize> {
        self.matcher
            .find_overlapping_iter(bytes)
            .map(|m| m.pattern().as_usize())
            .collect()
    }

    /// What each needle found in `bytes` is (e.g. a step's log), in order.
    pub fn found_in(&self, bytes: &[u8]) -> Vec<String> {
        self.hits(bytes)
            .into_iter()
            .map(|i| self.what[i].clone())
            .collect()
    }

    /// A name for a message: as it is (escaped, cut), unless it holds a needle itself.
    fn safe_name(&self, name: &str, otherwise: impl FnOnce() -> String) -> String {
        if self.matcher.is_match(name.as_bytes()) {
            otherwise()
        } else {
            shown(name)
        }
    }
}

/// A stream searched as it is read: the needles found since [`Searching::take_hits`] last ran.
struct Searching<'n, R> {
    inner: R,
    needles: &'n Needles,
    /// The last bytes read, at most `longest − 1`: a needle may start there.
    tail: Vec<u8>,
    window: Vec<u8>,
    hits: BTreeSet<usize>,
    bytes: u64,
}

impl<'n, R> Searching<'n, R> {
    fn new(inner: R, needles: &'n Needles) -> Self {
        Searching {
            inner,
            needles,
            tail: Vec::new(),
            window: Vec::new(),
            hits: BTreeSet::new(),
            bytes: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.bytes += bytes.len() as u64;
        self.window.clear();
        self.window.extend_from_slice(&self.tail);
        self.window.extend_from_slice(bytes);
        let before = self.tail.len();
        // Only needles ending in the new bytes: one within the tail was counted already.
        for m in self.needles.matcher.find_overlapping_iter(&self.window) {
            if m.end() > before {
                self.hits.insert(m.pattern().as_usize());
            }
        }
        let keep = self
            .needles
            .longest
            .saturating_sub(1)
            .min(self.window.len());
        self.tail.clear();
        self.tail
            .extend_from_slice(&self.window[self.window.len() - keep..]);
    }

    fn take_hits(&mut self) -> BTreeSet<usize> {
        std::mem::take(&mut self.hits)
    }
}

impl<R: Read> Read for Searching<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n]);
        Ok(n)
    }
}

/// A stream searched piece by piece as it arrives (e.g. a container's log as the daemon sends
/// it), with only a needle's length kept between pieces: which needles it held so far.
pub struct ChunkSearch<'n> {
    searching: Searching<'n, io::Empty>,
    found: BTreeSet<usize>,
}

impl<'n> ChunkSearch<'n> {
    pub fn new(needles: &'n Needles) -> Self {
        ChunkSearch {
            searching: Searching::new(io::empty(), needles),
            found: BTreeSet::new(),
        }
    }

    /// Searches the next piece, a needle spanning the previous one included.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.searching.feed(bytes);
        let hits = self.searching.take_hits();
        self.found.extend(hits);
    }

    /// Bytes searched so far.
    pub fn bytes(&self) -> u64 {
        self.searching.bytes
    }

    /// What each needle found is, in needle order.
    pub fn found(&self) -> Vec<String> {
        self.found
            .iter()
            .map(|i| self.searching.needles.what[*i].clone())
            .collect()
    }
}

/// Searches a layer (compressed as `compression`, `compressed_size` bytes), decompressed under
/// the limits: every byte of the decompressed stream, its tar walked to say where a needle is
/// (`file etc/x`, `the header of member 3`); a stream that is not a tar is searched all the
/// same. `Err` when decompression failed or went over a limit: then it was not searched
/// through (the caller checks first that its own reader is not the cause).
pub fn search_layer<R: Read>(
    input: R,
    compression: Compression,
    compressed_size: u64,
    limits: &Limits,
    needles: &Needles,
) -> Result<Searched, LayerProblem> {
    let capped = decompressed(input, compression, compressed_size, limits, Want::default())?;
    let mut stream = TarStream::new(Searching::new(capped, needles));
    let mut searched = Searched::default();
    let walked = walk(&mut stream, needles, &mut searched);
    let rest = match (&walked, searched.members) {
        // Not a tar at all: the stream as a whole.
        (Walked::NotATar, 0) => "",
        (Walked::NotATar, _) => "bytes after its last readable member",
        _ => "bytes after its last member",
    };
    // Whatever the walk left (end blocks, the rest of what is not a tar) is searched too.
    let failed = match walked {
        Walked::Failed(e) => Some(e),
        Walked::Ended | Walked::NotATar => io::copy(stream.get_mut(), &mut io::sink()).err(),
    };
    let searching = stream.get_mut();
    let hits = searching.take_hits();
    searched.found(needles, hits, rest);
    searched.bytes = searching.bytes;
    match failed {
        Some(e) => Err(stream.get_ref().inner.problem(&e)),
        None => Ok(searched),
    }
}

/// How walking a tar being searched ended.
enum Walked {
    Ended,
    /// What follows is not a readable tar (nothing of it was, or no longer).
    NotATar,
    /// The reader underneath failed (decompression, a limit, I/O).
    Failed(io::Error),
}

/// Walks a tar being searched, saying where each needle found is; stops at its end or where it
/// is not a readable tar (the bytes read then are the caller's to name).
fn walk<R: Read>(
    stream: &mut TarStream<Searching<'_, R>>,
    needles: &Needles,
    searched: &mut Searched,
) -> Walked {
    loop {
        let header = match stream.next_header() {
            Ok(Some(header)) => header,
            Ok(None) => return Walked::Ended,
            Err(TarError::Inner(e)) => return Walked::Failed(e),
            // Not (or no longer) a tar: the caller searches the rest as bytes.
            Err(_) => return Walked::NotATar,
        };
        searched.members += 1;
        let n = searched.members;
        let hits = stream.get_mut().take_hits();
        searched.found(
            needles,
            hits,
            &format!(
                "the name or header of member {n} (at byte {})",
                header.offset
            ),
        );
        let copied = io::copy(&mut stream.data(), &mut io::sink());
        let name = needles.safe_name(&header.name, || format!("member {n}"));
        let place = match header.kind {
            Kind::File => format!("file {name}"),
            Kind::Dir => format!("directory {name}"),
            Kind::Symlink | Kind::Hardlink => format!("link {name}"),
            Kind::Other(_) => format!("special file {name}"),
        };
        let hits = stream.get_mut().take_hits();
        searched.found(needles, hits, &place);
        match copied {
            Ok(_) => {}
            // Cut short: there is nothing more.
            Err(_) if stream.truncation().is_some() => return Walked::NotATar,
            Err(e) => return Walked::Failed(e),
        }
    }
}

/// Searches a JSON document held in memory (an image config, a manifest): where a needle is, as
/// a JSON pointer to the string holding it (`the image config at /history/1/created_by`) when
/// the document parses and the pointer holds no needle itself; else the document as a whole.
pub fn search_json(bytes: &[u8], needles: &Needles, document: &str) -> Searched {
    let mut searched = Searched {
        bytes: bytes.len() as u64,
        ..Searched::default()
    };
    let hits = needles.hits(bytes);
    if hits.is_empty() {
        return searched;
    }
    let mut located = BTreeSet::new();
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        let mut places = Vec::new();
        pointers(&value, String::new(), needles, &mut places);
        for (i, pointer) in places {
            let place = match pointer.is_empty() || needles.matcher.is_match(pointer.as_bytes()) {
                true => document.to_owned(),
                false => format!("{document} at {}", shown(&pointer)),
            };
            located.insert(i);
            searched.found(needles, BTreeSet::from([i]), &place);
        }
    }
    // Needles only the raw text holds (escaped forms, say) are in the document as a whole.
    let rest: BTreeSet<usize> = hits.difference(&located).copied().collect();
    searched.found(needles, rest, document);
    searched.findings.sort();
    searched.findings.dedup();
    searched
}

/// Every string (key or value) of a JSON document holding a needle: the needle and the
/// pointer to it.
fn pointers(value: &Value, at: String, needles: &Needles, out: &mut Vec<(usize, String)>) {
    match value {
        Value::String(s) => out.extend(
            needles
                .hits(s.as_bytes())
                .into_iter()
                .map(|i| (i, at.clone())),
        ),
        Value::Array(items) => {
            for (k, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{k}"), needles, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                let here = format!("{at}/{escaped}");
                out.extend(
                    needles
                        .hits(key.as_bytes())
                        .into_iter()
                        .map(|i| (i, here.clone())),
                );
                pointers(item, here, needles, out);
            }
        }
        _ => {}
    }
}

/// Searches every member of an image archive (`path` names it in messages): each member's
/// bytes, decompressed when they are (gzip, zstd, told by their first bytes) under the layer
/// limits, and walked as a tar when they are one (`member blobs/sha256/…, file etc/x`); the
/// members' names too. At most `limits.members` members. A member that cannot be decompressed
/// within the limits, or an archive that is not a readable tar, could not be searched through:
/// an error saying so (the plugin's), as is the harness's own failure to read the file.
pub fn search_archive(
    file: File,
    path: &Path,
    limits: &Limits,
    needles: &Needles,
) -> Result<Searched, ArchiveReadError> {
    let mut stream = TarStream::new(Source {
        inner: BufReader::with_capacity(256 * 1024, file),
        failed: None,
    });
    let read_error = |stream: &mut TarStream<Source<BufReader<File>>>| {
        stream
            .get_mut()
            .failed
            .take()
            .map(|source| ArchiveReadError::Read {
                path: path.to_owned(),
                source,
            })
    };
    let mut searched = Searched::default();
    let mut members = 0u64;
    loop {
        let header = match stream.next_header() {
            Ok(Some(header)) => header,
            Ok(None) => break,
            Err(e) => {
                if let Some(e) = read_error(&mut stream) {
                    return Err(e);
                }
                return Err(ArchiveReadError::Tar {
                    path: path.to_owned(),
                    message: e.to_string(),
                });
            }
        };
        members += 1;
        if members > limits.members {
            return Err(ArchiveReadError::Limit {
                path: path.to_owned(),
                message: format!("more than {} members: not searched through", limits.members),
            });
        }
        let name = needles.safe_name(&header.name, || format!("member {members}"));
        for what in needles.found_in(header.name.as_bytes()) {
            searched.findings.push(Finding {
                what,
                place: format!("the name of archive member {members}"),
            });
        }
        if let Some(link) = &header.link {
            for what in needles.found_in(link.as_bytes()) {
                searched.findings.push(Finding {
                    what,
                    place: format!("the link target of archive member {name}"),
                });
            }
        }
        if header.kind != Kind::File || header.size == 0 {
            continue;
        }
        let size = header.size;
        let mut data = stream.data();
        let mut head = [0u8; 4];
        let mut got = 0;
        while got < head.len() {
            match data.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let compression = Compression::sniff(&head[..got]);
        let input = io::Cursor::new(head[..got].to_vec()).chain(data);
        let member = search_layer(input, compression, size, limits, needles);
        if let Some(e) = read_error(&mut stream) {
            return Err(e);
        }
        if let Some(truncated) = stream.truncation() {
            return Err(ArchiveReadError::Tar {
                path: path.to_owned(),
                message: truncated.to_string(),
            });
        }
        match member {
            Ok(member) => searched.add_part(member, &format!("archive member {name}")),
            Err(problem) => {
                return Err(ArchiveReadError::Limit {
                    path: path.to_owned(),
                    message: format!("{}: not searched through", problem.describe(&header.name)),
                })
            }
        }
    }
    searched.members += members;
    Ok(searched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needles(secrets: &[(&str, &str)]) -> Needles {
        Needles::new(
            secrets
                .iter()
                .map(|(what, bytes)| Needle {
                    what: what.to_string(),
                    bytes: bytes.as_bytes().to_vec(),
                })
                .collect(),
        )
        .unwrap()
    }

    use crate::archive::test_tar::tar;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut encoder, bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn places(searched: &Searched) -> Vec<(&str, &str)> {
        searched
            .findings
            .iter()
            .map(|f| (f.what.as_str(), f.place.as_str()))
            .collect()
    }

    #[test]
    fn a_stream_fed_in_pieces_finds_needles_across_them() {
        let needles = needles(&[("the token", "s3cret-token"), ("the key", "api-key-9")]);
        let mut search = ChunkSearch::new(&needles);
        let text = b"line one\nprinted s3cret-token here\nand the end";
        for piece in text.chunks(3) {
            search.feed(piece);
        }
        assert_eq!(search.found(), ["the token"]);
        assert_eq!(search.bytes(), text.len() as u64);
    }

    /// Reads in tiny pieces, so that needles straddle reads.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_needle_across_reads_is_found_once_and_named_by_its_file() {
        let layer = tar(&[
            ("etc/clean", b"nothing here"),
            ("app/leak", b"prefix s3cr3t-value suffix s3cr3t-value"),
        ]);
        let needles = needles(&[("the secret", "s3cr3t-value"), ("other", "absent-thing")]);
        for piece in [1, 3, 7, 512, 4096] {
            let searched = search_layer(
                Trickle(&layer, piece),
                Compression::None,
                layer.len() as u64,
                &Limits::default(),
                &needles,
            )
            .unwrap();
            assert_eq!(
                places(&searched),
                [("the secret", "file app/leak")],
                "{piece}"
            );
            assert_eq!(searched.members, 2);
            assert_eq!(searched.bytes, layer.len() as u64);
        }
    }

    #[test]
    fn a_name_holding_the_needle_is_reported_without_printing_it() {
        let layer = gzip(&tar(&[("tmp/s3cr3t-value.txt", b"data")]));
        let needles = needles(&[("the secret", "s3cr3t-value")]);
        let searched = search_layer(
            layer.as_slice(),
            Compression::Gzip,
            layer.len() as u64,
            &Limits::default(),
            &needles,
        )
        .unwrap();
        assert_eq!(
            places(&searched),
            [("the secret", "the name or header of member 1 (at byte 0)")]
        );
        assert!(!format!("{searched:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn what_is_not_a_tar_is_searched_all_the_same() {
        let bytes = b"{\"not\": \"a tar\", \"but\": \"s3cr3t-value\"}".repeat(40);
        let needles = needles(&[("the secret", "s3cr3t-value")]);
        let searched = search_layer(
            bytes.as_slice(),
            Compression::None,
            bytes.len() as u64,
            &Limits::default(),
            &needles,
        )
        .unwrap();
        assert_eq!(searched.findings.len(), 1, "{searched:?}");
        assert_eq!(searched.bytes, bytes.len() as u64);
    }

    #[test]
    fn a_bomb_is_not_searched_through() {
        let layer = gzip(&vec![0u8; 4 << 20]);
        let needles = needles(&[("the secret", "s3cr3t-value")]);
        let limits = Limits {
            layer_ratio: 2,
            layer_ratio_floor: 1024,
            ..Limits::default()
        };
        let problem = search_layer(
            layer.as_slice(),
            Compression::Gzip,
            layer.len() as u64,
            &limits,
            &needles,
        )
        .unwrap_err();
        assert!(matches!(problem, LayerProblem::Bomb { .. }), "{problem:?}");
    }

    #[test]
    fn json_findings_point_at_the_string_holding_them() {
        let config = serde_json::json!({
            "config": {"Env": ["PATH=/bin"], "Labels": {"a": "b"}},
            "history": [{"created_by": "FROM x"}, {"created_by": "RUN |1 TOKEN=s3cr3t-value sh -c x"}],
        });
        let bytes = serde_json::to_vec(&config).unwrap();
        let needles = needles(&[("the secret", "s3cr3t-value"), ("base64", "czNjcjN0")]);
        let searched = search_json(&bytes, &needles, "the image config");
        assert_eq!(
            places(&searched),
            [("the secret", "the image config at /history/1/created_by")]
        );
        let labelled =
            serde_json::to_vec(&serde_json::json!({"Labels": {"s3cr3t-value": "x"}})).unwrap();
        let searched = search_json(&labelled, &needles, "the image config");
        assert_eq!(places(&searched), [("the secret", "the image config")]);
        assert!(search_json(b"{}", &needles, "the manifest")
            .findings
            .is_empty());
    }

    #[test]
    fn an_archive_is_searched_member_by_member_layers_decompressed() {
        let dir = tempfile::tempdir().unwrap();
        let layer = gzip(&tar(&[
            ("proof/ok", b"fine"),
            ("proof/leak", b"x s3cr3t-value"),
        ]));
        let archive = tar(&[
            ("manifest.json", b"[{\"Config\": \"c.json\"}]"),
            ("c.json", b"{\"history\": [\"s3cr3t-value\"]}"),
            ("layer.tar.gz", &layer),
        ]);
        let path = dir.path().join("image.tar");
        std::fs::write(&path, &archive).unwrap();
        let needles = needles(&[("the secret", "s3cr3t-value")]);
        let searched = search_archive(
            File::open(&path).unwrap(),
            Path::new("image.tar"),
            &Limits::default(),
            &needles,
        )
        .unwrap();
        assert_eq!(
            places(&searched),
            [
                ("the secret", "archive member c.json"),
                ("the secret", "archive member layer.tar.gz, file proof/leak"),
            ]
        );
        // 3 archive members, 2 files in the layer.
        assert_eq!(searched.members, 5);
        // A truncated archive could not be searched through.
        // Cut inside the layer (third member: header at byte 2048, data at 2560).
        std::fs::write(&path, &archive[..2580]).unwrap();
        let e = search_archive(
            File::open(&path).unwrap(),
            Path::new("image.tar"),
            &Limits::default(),
            &needles,
        )
        .unwrap_err();
        assert!(!e.is_harness_error(), "{e}");
    }
}
