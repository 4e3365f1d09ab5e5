//! A streaming tar reader that never trusts a declared size.
//!
//! It reads one 512-byte header at a time and hands out the member's data as a reader limited
//! to the declared size: nothing is allocated from a size a header declares, except the small
//! extended headers (PAX records, GNU long names), which are read under a fixed limit. Errors
//! name byte offsets and member names, never the bytes read.

use std::fmt;
use std::io::{self, Read};

/// A PAX extended header (`x`, `g`) may hold at most this many bytes.
pub const PAX_LIMIT: u64 = 1024 * 1024;
/// A GNU long name or long link target (`L`, `K`) may be at most this long.
pub const LONG_NAME_LIMIT: u64 = 64 * 1024;

const BLOCK: u64 = 512;

/// What kind of member a header describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    /// Devices, FIFOs, sparse files and the like: their names count, their data is skipped.
    Other(u8),
}

/// One member's header, extended headers applied.
#[derive(Debug, Clone)]
pub struct Header {
    /// As stored (not normalised); invalid UTF-8 replaced.
    pub name: String,
    /// The link target of a symlink or hard link.
    pub link: Option<String>,
    pub kind: Kind,
    /// Data bytes that follow the header (declared: not yet known to be there).
    pub size: u64,
    /// Where the member's (first) header starts.
    pub offset: u64,
    /// Permission bits (`0o7777` at most); `None` when the field is not a number.
    pub mode: Option<u32>,
    /// Owner and group ids (PAX `uid`/`gid` when given); `None` when not a number.
    pub uid: Option<u64>,
    pub gid: Option<u64>,
}

/// Why a tar stream cannot be read on. Messages name offsets and members, never content.
#[derive(Debug)]
pub enum TarError {
    /// The reader underneath failed (I/O, decompression, a limit): the caller knows which.
    Inner(io::Error),
    /// The stream ends inside a header or inside a member's data.
    Truncated {
        offset: u64,
        member: Option<String>,
        declared: Option<u64>,
    },
    /// A block that is not a tar header.
    BadHeader { offset: u64, what: &'static str },
    /// An extended header or long name over its limit.
    TooLarge {
        offset: u64,
        what: &'static str,
        size: u64,
        limit: u64,
    },
}

impl fmt::Display for TarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TarError::Inner(e) => write!(f, "{e}"),
            TarError::Truncated {
                offset,
                member: Some(member),
                declared: Some(declared),
            } => write!(
                f,
                "the stream ends at byte {offset}, inside member {} (it declares {declared} bytes)",
                crate::human::shown(member)
            ),
            TarError::Truncated { offset, .. } => {
                write!(f, "the stream ends at byte {offset}, inside a header")
            }
            TarError::BadHeader { offset, what } => {
                write!(f, "the block at byte {offset} is not a tar header: {what}")
            }
            TarError::TooLarge {
                offset,
                what,
                size,
                limit,
            } => write!(
                f,
                "the {what} at byte {offset} declares {size} bytes, more than the limit of {limit}"
            ),
        }
    }
}

impl std::error::Error for TarError {}

/// Reads a tar stream member by member.
pub struct TarStream<R> {
    inner: R,
    /// Bytes consumed from `inner`.
    offset: u64,
    /// Data bytes of the current member not read yet, then its padding.
    remaining: u64,
    padding: u64,
    current: Option<(String, u64)>,
    /// The data reader saw the stream end early.
    truncated: bool,
    done: bool,
}

impl<R: Read> TarStream<R> {
    pub fn new(inner: R) -> TarStream<R> {
        TarStream {
            inner,
            offset: 0,
            remaining: 0,
            padding: 0,
            current: None,
            truncated: false,
            done: false,
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Whether a read of a member's data ran into the end of the stream; the error to report.
    pub fn truncation(&self) -> Option<TarError> {
        self.truncated.then(|| self.truncated_error())
    }

    fn truncated_error(&self) -> TarError {
        TarError::Truncated {
            offset: self.offset,
            member: self.current.as_ref().map(|(n, _)| n.clone()),
            declared: self.current.as_ref().map(|(_, s)| *s),
        }
    }

    /// The current member's data (what the last header declared, as far as it is there).
    pub fn data(&mut self) -> Data<'_, R> {
        Data { stream: self }
    }

    /// The next member's header; `None` at the end of the archive (two zero blocks, one zero
    /// block, or a clean end of the stream between members). Skips what is left of the
    /// current member's data.
    pub fn next_header(&mut self) -> Result<Option<Header>, TarError> {
        if self.done {
            return Ok(None);
        }
        let mut pax_path = None;
        let mut pax_link = None;
        let mut pax_size = None;
        let mut pax_uid = None;
        let mut pax_gid = None;
        let mut long_name = None;
        let mut long_link = None;
        loop {
            self.skip_rest()?;
            let offset = self.offset;
            let mut block = [0u8; BLOCK as usize];
            let got = self.read_full(&mut block)?;
            if got == 0 {
                self.done = true;
                return Ok(None);
            }
            if got < block.len() {
                return Err(TarError::Truncated {
                    offset: self.offset,
                    member: None,
                    declared: None,
                });
            }
            if block.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            verify_checksum(&block, offset)?;
            let size = parse_size(&block[124..136], offset)?;
            let typeflag = block[156];
            match typeflag {
                b'x' | b'g' => {
                    let data = self.read_small(size, PAX_LIMIT, "PAX extended header", offset)?;
                    if typeflag == b'x' {
                        for (key, value) in parse_pax(&data, offset)? {
                            match key {
                                b"path" => pax_path = Some(lossy(value)),
                                b"linkpath" => pax_link = Some(lossy(value)),
                                b"size" => {
                                    pax_size = Some(
                                        std::str::from_utf8(value)
                                            .ok()
                                            .and_then(|v| v.parse::<u64>().ok())
                                            .ok_or(TarError::BadHeader {
                                                offset,
                                                what: "the PAX size is not a number",
                                            })?,
                                    )
                                }
                                b"uid" => pax_uid = pax_number(value),
                                b"gid" => pax_gid = pax_number(value),
                                _ => {}
                            }
                        }
                    }
                }
                b'L' | b'K' => {
                    let data = self.read_small(size, LONG_NAME_LIMIT, "GNU long name", offset)?;
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    let value = lossy(&data[..end]);
                    if typeflag == b'L' {
                        long_name = Some(value);
                    } else {
                        long_link = Some(value);
                    }
                }
                _ => {
                    let size = pax_size.unwrap_or(size);
                    let name = pax_path
                        .or(long_name)
                        .unwrap_or_else(|| header_name(&block));
                    let kind = match typeflag {
                        b'0' | 0 | b'7' => Kind::File,
                        b'5' => Kind::Dir,
                        b'2' => Kind::Symlink,
                        b'1' => Kind::Hardlink,
                        other => Kind::Other(other),
                    };
                    let link = matches!(kind, Kind::Symlink | Kind::Hardlink).then(|| {
                        pax_link
                            .or(long_link)
                            .unwrap_or_else(|| field(&block[157..257]))
                    });
                    self.remaining = size;
                    self.padding = padding(size);
                    self.current = Some((name.clone(), size));
                    return Ok(Some(Header {
                        name,
                        link,
                        kind,
                        size,
                        offset,
                        mode: parse_number(&block[100..108]).map(|m| (m & 0o7777) as u32),
                        uid: pax_uid.or_else(|| parse_number(&block[108..116])),
                        gid: pax_gid.or_else(|| parse_number(&block[116..124])),
                    }));
                }
            }
        }
    }

    /// Reads an extended header's data (at most `limit` bytes) and its padding.
    fn read_small(
        &mut self,
        size: u64,
        limit: u64,
        what: &'static str,
        offset: u64,
    ) -> Result<Vec<u8>, TarError> {
        if size > limit {
            return Err(TarError::TooLarge {
                offset,
                what,
                size,
                limit,
            });
        }
        self.remaining = size;
        self.padding = padding(size);
        self.current = Some((what.to_owned(), size));
        let mut data = Vec::new();
        let read = self.data().read_to_end(&mut data);
        if self.truncated {
            return Err(self.truncated_error());
        }
        read.map_err(TarError::Inner)?;
        self.skip_rest()?;
        Ok(data)
    }

    /// Skips the rest of the current member's data and its padding.
    fn skip_rest(&mut self) -> Result<(), TarError> {
        if self.remaining > 0 {
            let copied = io::copy(&mut self.data(), &mut io::sink());
            if self.truncated {
                return Err(self.truncated_error());
            }
            copied.map_err(TarError::Inner)?;
        }
        if self.padding > 0 {
            let mut pad = [0u8; BLOCK as usize];
            let want = self.padding as usize;
            let got = self.read_full(&mut pad[..want])?;
            if got < want {
                // A stream cut right after a member's data: treat as the end (tar does).
                self.done = got == 0;
                if !self.done {
                    return Err(self.truncated_error());
                }
            }
            self.padding = 0;
        }
        Ok(())
    }

    /// Reads until `buf` is full or the stream ends; returns how much was read.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TarError::Inner(e)),
            }
        }
        Ok(got)
    }
}

/// The current member's data.
pub struct Data<'a, R> {
    stream: &'a mut TarStream<R>,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = &mut *self.stream;
        if s.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(s.remaining.min(usize::MAX as u64) as usize);
        let n = s.inner.read(&mut buf[..want])?;
        if n == 0 {
            s.truncated = true;
            s.done = true;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the tar stream ends inside a member",
            ));
        }
        s.remaining -= n as u64;
        s.offset += n as u64;
        Ok(n)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A NUL-terminated header field.
fn field(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    lossy(&bytes[..end])
}

/// The name field, with the ustar prefix when the header is POSIX ustar.
fn header_name(block: &[u8]) -> String {
    let name = field(&block[0..100]);
    if &block[257..263] == b"ustar\0" {
        let prefix = field(&block[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

fn verify_checksum(block: &[u8], offset: u64) -> Result<(), TarError> {
    let stored = parse_octal(&block[148..156]).ok_or(TarError::BadHeader {
        offset,
        what: "the checksum field is not a number",
    })?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        Err(TarError::BadHeader {
            offset,
            what: "the header checksum does not match",
        })
    }
}

fn parse_size(bytes: &[u8], offset: u64) -> Result<u64, TarError> {
    if bytes[0] & 0x80 != 0 {
        // GNU base-256: a big-endian number; 0xff first means negative.
        if bytes[0] == 0xff {
            return Err(TarError::BadHeader {
                offset,
                what: "the size is negative",
            });
        }
        let mut value: u128 = u128::from(bytes[0] & 0x7f);
        for &b in &bytes[1..] {
            value = (value << 8) | u128::from(b);
        }
        return u64::try_from(value).map_err(|_| TarError::BadHeader {
            offset,
            what: "the size does not fit in 64 bits",
        });
    }
    parse_octal(bytes).ok_or(TarError::BadHeader {
        offset,
        what: "the size field is not a number",
    })
}

/// A numeric field (mode, uid, gid): octal, or GNU base-256 when positive and within 64 bits.
fn parse_number(bytes: &[u8]) -> Option<u64> {
    if bytes[0] & 0x80 == 0 {
        return parse_octal(bytes);
    }
    if bytes[0] == 0xff {
        return None;
    }
    let mut value: u128 = u128::from(bytes[0] & 0x7f);
    for &b in &bytes[1..] {
        value = (value << 8) | u128::from(b);
    }
    u64::try_from(value).ok()
}

/// A PAX record's decimal number.
fn pax_number(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// An octal field: optional leading spaces, digits, then NUL or spaces. Empty is 0.
fn parse_octal(bytes: &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    let mut seen_digit = false;
    let mut ended = false;
    for &b in bytes {
        match b {
            b'0'..=b'7' if !ended => {
                seen_digit = true;
                value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
            }
            b' ' if !seen_digit => {}
            b' ' | 0 => ended = true,
            _ if ended => {}
            _ => return None,
        }
    }
    Some(value)
}

/// PAX records: `LEN KEY=VALUE\n`.
/// A PAX record's key and value.
type PaxRecord<'a> = (&'a [u8], &'a [u8]);

fn parse_pax(data: &[u8], offset: u64) -> Result<Vec<PaxRecord<'_>>, TarError> {
    let bad = || TarError::BadHeader {
        offset,
        what: "a PAX record is malformed",
    };
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && !rest.iter().all(|&b| b == 0) {
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|l| l.parse().ok())
            .filter(|&l| l > space + 1 && l <= rest.len())
            .ok_or_else(bad)?;
        let record = rest[space + 1..len].strip_suffix(b"\n").ok_or_else(bad)?;
        let eq = record.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        records.push((&record[..eq], &record[eq + 1..]));
        rest = &rest[len..];
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::archive::test_tar::tar as build;

    #[test]
    fn reads_names_and_data_and_long_names() {
        let long = "d/".repeat(80) + "file";
        let bytes = build(&[("a", b"hello"), (&long, b"x"), ("b", b"")]);
        let mut stream = TarStream::new(bytes.as_slice());
        let first = stream.next_header().unwrap().unwrap();
        assert_eq!((first.name.as_str(), first.size), ("a", 5));
        assert_eq!(
            (first.mode, first.uid, first.gid),
            (Some(0o644), Some(0), Some(0))
        );
        let mut data = Vec::new();
        stream.data().read_to_end(&mut data).unwrap();
        assert_eq!(data, b"hello");
        let second = stream.next_header().unwrap().unwrap();
        assert_eq!(second.name, long);
        // Data not read is skipped.
        assert_eq!(stream.next_header().unwrap().unwrap().name, "b");
        assert!(stream.next_header().unwrap().is_none());
    }

    #[test]
    fn a_huge_declared_size_is_not_allocated_and_ends_as_truncated() {
        let mut header = tar::Header::new_gnu();
        header.set_path("big").unwrap();
        header.set_size(1 << 40);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(b"tiny");
        let mut stream = TarStream::new(bytes.as_slice());
        let h = stream.next_header().unwrap().unwrap();
        assert_eq!(h.size, 1 << 40);
        let copied = io::copy(&mut stream.data(), &mut io::sink());
        assert!(copied.is_err());
        let err = stream.truncation().unwrap().to_string();
        assert_eq!(
            err,
            "the stream ends at byte 516, inside member big (it declares 1099511627776 bytes)"
        );
    }

    #[test]
    fn a_bad_checksum_names_the_offset() {
        let mut bytes = build(&[("a", b"hello")]);
        bytes[0] = b'z';
        let err = TarStream::new(bytes.as_slice()).next_header().unwrap_err();
        assert_eq!(
            err.to_string(),
            "the block at byte 0 is not a tar header: the header checksum does not match"
        );
    }

    #[test]
    fn octal_fields() {
        assert_eq!(parse_octal(b"0000644\0"), Some(0o644));
        assert_eq!(parse_octal(b"   644 \0"), Some(0o644));
        assert_eq!(parse_octal(b"\0\0\0\0"), Some(0));
        assert_eq!(parse_octal(b"12x4"), None);
    }
}
