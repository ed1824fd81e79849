//! Size limits that every reader enforces, so that a bad input (a file
//! without newlines, a JSON line of a gigabyte, a Parquet footer that claims
//! gigabytes) fails fast with an error naming the source and the limit,
//! instead of growing memory with the input.
//!
//! - Text formats (CSV, NDJSON, Azure Monitor JSON lines) are read through a
//!   [`RecordLimit`] reader: a record (a CSV record, quoted newlines
//!   included, or a JSON line) longer than [`MAX_RECORD_BYTES`] stops the
//!   read with [`IngestError::RecordTooLong`](super::IngestError::RecordTooLong).
//! - Raw logs keep at most [`MAX_LINE_BYTES`](super::MAX_LINE_BYTES) of a line
//!   and fail on a longer one the same way.
//! - Parquet: the footer may be at most [`MAX_PARQUET_FOOTER_BYTES`] and one
//!   column chunk at most [`MAX_PARQUET_CHUNK_BYTES`] (compressed or not), as
//!   the file's metadata declares them.

use std::io::{self, BufRead, Read};

/// The longest CSV record or JSON line accepted, in bytes (1 MiB). A metric
/// row is a few hundred bytes; an Azure Monitor record about 300.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The largest Parquet footer (file metadata) accepted, in bytes (16 MiB).
pub const MAX_PARQUET_FOOTER_BYTES: u64 = 16 << 20;

/// The largest Parquet column chunk accepted, compressed or uncompressed, in
/// bytes (64 MiB): about 8 million 8-byte values in one row group.
pub const MAX_PARQUET_CHUNK_BYTES: i64 = 64 << 20;

/// The error a [`RecordLimit`] reader returns (inside an `io::Error` of kind
/// `InvalidData`) when a record is too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line {line} is longer than {limit} bytes")]
pub(crate) struct TooLong {
    /// 1-based physical line on which the record started.
    pub line: u64,
    pub limit: usize,
}

impl TooLong {
    /// The `TooLong` inside an I/O error, if that is what it is.
    pub fn find(e: &io::Error) -> Option<TooLong> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<TooLong>())
            .copied()
    }
}

/// A reader that passes bytes through and fails with [`TooLong`] as soon as
/// one record grows beyond `limit` bytes. A record ends at a newline; in CSV
/// mode a newline between double quotes does not end it (RFC 4180 quoting:
/// `""` inside quotes toggles twice, so the state stays right).
///
/// Memory: none beyond the wrapped reader's; the check costs one `memchr`
/// pass over the bytes.
pub(crate) struct RecordLimit<R> {
    inner: R,
    limit: usize,
    csv: bool,
    in_quotes: bool,
    /// Bytes of the current record so far.
    current: usize,
    /// Physical line (1-based) where the current record started.
    record_line: u64,
    /// Physical lines seen so far (newlines + 1).
    line: u64,
    failed: Option<TooLong>,
}

impl<R> RecordLimit<R> {
    /// Records end at every newline (NDJSON, JSON lines).
    #[cfg(test)]
    pub fn lines(inner: R, limit: usize) -> Self {
        Self::new(inner, limit, false)
    }

    /// Records end at newlines outside double quotes (CSV).
    pub fn csv(inner: R, limit: usize) -> Self {
        Self::new(inner, limit, true)
    }

    fn new(inner: R, limit: usize, csv: bool) -> Self {
        RecordLimit {
            inner,
            limit,
            csv,
            in_quotes: false,
            current: 0,
            record_line: 1,
            line: 1,
            failed: None,
        }
    }

    /// Scan `bytes` (just read); `Err` once the current record is too long.
    /// A record may be `limit` bytes plus its line ending (`\r\n`).
    fn check(&mut self, bytes: &[u8]) -> Result<(), TooLong> {
        let max = self.limit + 2;
        let mut rest = bytes;
        loop {
            let hit = if self.csv {
                memchr::memchr2(b'\n', b'"', rest)
            } else {
                memchr::memchr(b'\n', rest)
            };
            let Some(i) = hit else {
                self.current += rest.len();
                break;
            };
            self.current += i + 1;
            if rest[i] == b'"' {
                self.in_quotes = !self.in_quotes;
            } else {
                self.line += 1;
                if !self.in_quotes {
                    if self.current > max {
                        break;
                    }
                    self.current = 0;
                    self.record_line = self.line;
                }
            }
            rest = &rest[i + 1..];
        }
        if self.current > max {
            let e = TooLong {
                line: self.record_line,
                limit: self.limit,
            };
            self.failed = Some(e);
            return Err(e);
        }
        Ok(())
    }
}

fn too_long(e: TooLong) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<R: Read> Read for RecordLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.failed {
            return Err(too_long(e));
        }
        let n = self.inner.read(buf)?;
        self.check(&buf[..n]).map_err(too_long)?;
        Ok(n)
    }
}

/// Read one line (through `\n`) into `buf` (cleared first). `Ok(None)` at
/// the end of the input; `Err(TooLong)` (inside the `io::Error`) as soon as
/// the line exceeds `limit` bytes, without reading the rest of it.
pub(crate) fn read_line_limited<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
    line_no: u64,
) -> io::Result<Option<usize>> {
    buf.clear();
    let mut read = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok((read > 0).then_some(read));
        }
        let (used, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if buf.len() + used > limit + 2 {
            return Err(too_long(TooLong {
                line: line_no,
                limit,
            }));
        }
        buf.extend_from_slice(&available[..used]);
        reader.consume(used);
        read += used;
        if done {
            return Ok(Some(read));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<R: Read>(mut r: R) -> Result<Vec<u8>, Option<TooLong>> {
        let mut out = Vec::new();
        r.read_to_end(&mut out)
            .map(|_| out)
            .map_err(|e| TooLong::find(&e))
    }

    #[test]
    fn short_records_pass_through_unchanged() {
        let text = b"a,b\n1,2\n3,4\n";
        assert_eq!(drain(RecordLimit::csv(&text[..], 8)).unwrap(), text);
        assert_eq!(drain(RecordLimit::lines(&text[..], 4)).unwrap(), text);
    }

    #[test]
    fn a_long_line_fails_with_its_line_and_the_limit() {
        let mut text = b"ok\nok\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 100));
        let e = drain(RecordLimit::lines(&text[..], 10))
            .unwrap_err()
            .unwrap();
        assert_eq!(e, TooLong { line: 3, limit: 10 });
        assert_eq!(e.to_string(), "line 3 is longer than 10 bytes");
    }

    #[test]
    fn quoted_newlines_belong_to_one_csv_record() {
        let text = b"h\n\"a\nb\nc\nd\ne\nf\"\n1\n";
        // 15 bytes of one record across six lines.
        let e = drain(RecordLimit::csv(&text[..], 8)).unwrap_err().unwrap();
        assert_eq!(e.line, 2);
        assert!(drain(RecordLimit::csv(&text[..], 16)).is_ok());
        // As plain lines every line is short.
        assert!(drain(RecordLimit::lines(&text[..], 8)).is_ok());
    }

    #[test]
    fn a_limited_line_read_stops_early() {
        let text = vec![b'y'; 10_000];
        let mut r = std::io::BufReader::with_capacity(64, &text[..]);
        let mut buf = Vec::new();
        let e = read_line_limited(&mut r, &mut buf, 100, 7).unwrap_err();
        assert_eq!(
            TooLong::find(&e),
            Some(TooLong {
                line: 7,
                limit: 100
            })
        );
        assert!(buf.len() <= 102);
        let mut r = &b"ab\ncd"[..];
        assert_eq!(read_line_limited(&mut r, &mut buf, 4, 1).unwrap(), Some(3));
        assert_eq!(buf, b"ab\n");
        assert_eq!(read_line_limited(&mut r, &mut buf, 4, 2).unwrap(), Some(2));
        assert_eq!(read_line_limited(&mut r, &mut buf, 4, 3).unwrap(), None);
    }
}
