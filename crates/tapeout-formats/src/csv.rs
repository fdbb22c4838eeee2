//! The CSV of the request traces, read per RFC 4180 by [`csv_core`]: `,` separated fields,
//! optional `"` quoting with `""` escapes, and quoted fields that may hold separators, quotes and
//! line ends; records end at a `\n` outside quotes (a `\r` before it is dropped). Blank lines
//! (only white space) between records are skipped. Every record keeps the number of the line its
//! first byte is on, so a record holding a newline occupies two lines and the next record's
//! number counts both.
//!
//! - [`Records`] reads the records of a run of whole records (a chunk), allocation-free per
//!   record.
//! - [`RecordScanner`] finds record ends incrementally in a growing buffer, with the same
//!   state machine, so that a chunker never cuts a record inside a quoted field.
//! - [`lines`] is the plain line splitter of the line-based formats (Mooncake JSONL).

use crate::SourceFormat;
use crate::rows::Reject;

/// Whether files of `format` are CSV, whose records may span lines (quoted newlines).
pub fn is_csv(format: SourceFormat) -> bool {
    matches!(format, SourceFormat::AzureLlm | SourceFormat::BurstGpt | SourceFormat::MetricCsv)
}

/// The quarantine reason of a record whose quoted field is still open at the end of the file.
pub const UNTERMINATED: &str = "unterminated quoted field (no closing `\"` before the end of the file)";

/// csv-core's reader for records ending at `\n`. It has read a blank line already, so that a
/// byte-order mark at the start of a chunk is data: [`crate::SourceFormat::split_header`]
/// removes the file's.
fn reader() -> csv_core::Reader {
    let mut rdr = csv_core::ReaderBuilder::new().terminator(csv_core::Terminator::Any(b'\n')).build();
    let res = rdr.read_record(b"\n", &mut [0], &mut [0]);
    debug_assert_eq!(res.0, csv_core::ReadRecordResult::InputEmpty);
    rdr
}

/// Iterates the lines of `chunk` with their 1-based numbers, starting at `first_line`.
/// A trailing `\r` is removed; the last line need not end with `\n`.
pub fn lines(chunk: &[u8], first_line: u64) -> impl Iterator<Item = (u64, &[u8])> {
    let mut rest = chunk;
    let mut n = first_line;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let out = (n, line);
        n += 1;
        Some(out)
    })
}

/// One CSV record: its first line's number, its raw text and its (unquoted) fields.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// 1-based number of the line the record starts on.
    pub line: u64,
    /// The record as written, without its line end (for quarantine).
    pub raw: &'a [u8],
    data: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Record<'a> {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True for a record without fields (never yielded by [`Records`]).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i`, unquoted (`""` → `"`); panics when `i >= len()`.
    pub fn field(&self, i: usize) -> &'a [u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }
}

/// A record whose quoted field was still open where the chunk (the file) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unterminated<'a> {
    /// 1-based number of the line the record starts on.
    pub line: u64,
    /// Everything from the record's first byte to the end of the chunk.
    pub raw: &'a [u8],
}

/// The records of a run of whole records whose first line is `first_line`. Not an
/// [`Iterator`]: each record borrows the reader's field buffer until the next call.
pub struct Records<'a> {
    rest: &'a [u8],
    line: u64,
    rdr: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl<'a> Records<'a> {
    /// The records of `chunk`, whose first line is line `first_line` (1-based).
    pub fn new(chunk: &'a [u8], first_line: u64) -> Self {
        Records { rest: chunk, line: first_line, rdr: reader(), out: vec![0; 256], ends: vec![0; 16] }
    }

    /// The next record, or the unterminated rest of the chunk; `None` at its end.
    #[allow(clippy::should_implement_trait)] // a lending iterator: the record borrows `self`
    pub fn next(&mut self) -> Option<Result<Record<'_>, Unterminated<'a>>> {
        // Blank lines between records are skipped, and counted.
        loop {
            let end = memchr::memchr(b'\n', self.rest);
            let line = &self.rest[..end.unwrap_or(self.rest.len())];
            if self.rest.is_empty() || !line.trim_ascii().is_empty() {
                break;
            }
            self.rest = &self.rest[end.map_or(self.rest.len(), |i| i + 1)..];
            self.line += 1;
        }
        if self.rest.is_empty() {
            return None;
        }
        let (input, line) = (self.rest, self.line);
        let (mut nin, mut nout, mut nend) = (0, 0, 0);
        // Once the chunk is read, a `\n` is fed: it ends the record unless a quote is open.
        let mut at_end = false;
        loop {
            let feed: &[u8] = if at_end { b"\n" } else { &input[nin..] };
            let (res, i, o, e) = self.rdr.read_record(feed, &mut self.out[nout..], &mut self.ends[nend..]);
            nin += if at_end { 0 } else { i };
            (nout, nend) = (nout + o, nend + e);
            match res {
                csv_core::ReadRecordResult::Record => break,
                csv_core::ReadRecordResult::InputEmpty if at_end => {
                    self.rdr = reader();
                    self.rest = &input[input.len()..];
                    return Some(Err(Unterminated { line, raw: input }));
                }
                csv_core::ReadRecordResult::InputEmpty => at_end = true,
                csv_core::ReadRecordResult::OutputFull => self.out.resize(self.out.len() * 2, 0),
                csv_core::ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                csv_core::ReadRecordResult::End => return None,
            }
        }
        let consumed = &input[..nin];
        self.rest = &input[nin..];
        self.line += memchr::memchr_iter(b'\n', consumed).count() as u64;
        let mut raw = consumed.strip_suffix(b"\n").unwrap_or(consumed);
        if let Some(r) = raw.strip_suffix(b"\r") {
            // The `\r` of a `\r\n` line end is outside quotes: the last byte of the last field.
            raw = r;
            self.ends[nend - 1] -= 1;
        }
        let ends = &self.ends[..nend];
        Some(Ok(Record { line, raw, data: &self.out[..ends[nend - 1]], ends }))
    }
}

/// Reads the records of `chunk` (whose first line is `first_line`) and calls `f` with each that
/// has `n_fields` fields; a record with another number of fields, or whose quote is still open
/// at the end of the chunk, becomes a [`Reject`] instead.
pub fn for_each_record(
    chunk: &[u8],
    first_line: u64,
    n_fields: usize,
    rejects: &mut Vec<Reject>,
    mut f: impl FnMut(Record<'_>, &mut Vec<Reject>),
) {
    let mut records = Records::new(chunk, first_line);
    while let Some(r) = records.next() {
        match r {
            Err(u) => rejects.push(Reject::new(u.line, None, UNTERMINATED, u.raw)),
            Ok(rec) if rec.len() != n_fields => rejects.push(Reject::new(
                rec.line,
                None,
                format!("expected {n_fields} fields, found {}", rec.len()),
                rec.raw,
            )),
            Ok(rec) => f(rec, rejects),
        }
    }
}

/// Splits one line (a header) into fields, unquoted, into `out`. Returns false for an
/// unterminated quote.
pub fn split_fields<'a>(line: &'a [u8], out: &mut Vec<std::borrow::Cow<'a, [u8]>>) -> bool {
    out.clear();
    match Records::new(line, 1).next() {
        None => out.push(std::borrow::Cow::Borrowed(line)),
        Some(Err(_)) => return false,
        Some(Ok(rec)) => out.extend((0..rec.len()).map(|i| std::borrow::Cow::Owned(rec.field(i).to_vec()))),
    }
    true
}

/// Finds where records end in a buffer that grows at its end and is consumed from its start
/// (a chunker's), incrementally and with the state machine of [`Records`]: a record ends at a
/// `\n` outside quotes, so a cut there never splits a quoted field (a `"` opens a quoted field
/// at a field's start; inside one, `""` is a quote and a lone `"` closes it).
pub struct RecordScanner {
    rdr: csv_core::Reader,
    /// Bytes of the buffer scanned so far.
    scanned: usize,
    /// End of the last whole record in the buffer (0: none).
    boundary: usize,
    /// Whether the last bytes scanned are inside a record (not at its end).
    open: bool,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl Default for RecordScanner {
    fn default() -> Self {
        RecordScanner {
            rdr: reader(),
            scanned: 0,
            boundary: 0,
            open: false,
            out: vec![0; 64 * 1024],
            ends: vec![0; 1024],
        }
    }
}

impl RecordScanner {
    /// Scans the bytes of `buf` beyond those seen already (`buf` must hold them unchanged);
    /// returns the end of the last whole record in `buf`: 0 when there is none yet.
    pub fn scan(&mut self, buf: &[u8]) -> usize {
        if self.scanned >= buf.len() {
            return self.boundary;
        }
        while self.scanned < buf.len() {
            let (res, nin, _, _) = self.rdr.read_record(&buf[self.scanned..], &mut self.out, &mut self.ends);
            self.scanned += nin;
            if res == csv_core::ReadRecordResult::Record {
                self.boundary = self.scanned;
            }
        }
        self.open = self.boundary < self.scanned;
        self.boundary
    }

    /// The caller removed the first `n` bytes of the buffer (`n` at most the last end
    /// returned, or the whole buffer).
    pub fn consume(&mut self, n: usize) {
        self.scanned = self.scanned.saturating_sub(n);
        self.boundary = self.boundary.saturating_sub(n);
    }

    /// Whether the bytes scanned last end inside a record: a quoted field is still open, or the
    /// last line has no `\n`.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Starts over, as at the start of a record (after the caller dropped bytes unscanned).
    pub fn reset(&mut self) {
        self.rdr = reader();
        (self.scanned, self.boundary, self.open) = (0, 0, false);
    }
}

/// Why a numeric field did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumError {
    Empty,
    Negative,
    Overflow,
    NotANumber,
}

impl NumError {
    /// Human wording, used in quarantine reasons.
    pub fn describe(self) -> &'static str {
        match self {
            NumError::Empty => "empty value",
            NumError::Negative => "negative value",
            NumError::Overflow => "number out of range",
            NumError::NotANumber => "not a number",
        }
    }
}

/// Parses a non-negative decimal integer (surrounding spaces allowed).
pub fn parse_count(b: &[u8]) -> Result<i64, NumError> {
    let b = b.trim_ascii();
    if b.is_empty() {
        return Err(NumError::Empty);
    }
    if b[0] == b'-' {
        return if b[1..].iter().all(u8::is_ascii_digit) && b.len() > 1 {
            if b[1..].iter().all(|&c| c == b'0') { Ok(0) } else { Err(NumError::Negative) }
        } else {
            Err(NumError::NotANumber)
        };
    }
    let digits = b.strip_prefix(b"+").unwrap_or(b);
    if digits.is_empty() {
        return Err(NumError::NotANumber);
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(NumError::NotANumber);
        }
        v = v.checked_mul(10).and_then(|v| v.checked_add((c - b'0') as i64)).ok_or(NumError::Overflow)?;
    }
    Ok(v)
}

/// Parses a finite, non-negative decimal number (surrounding spaces allowed).
pub fn parse_nonneg_f64(b: &[u8]) -> Result<f64, NumError> {
    let b = b.trim_ascii();
    if b.is_empty() {
        return Err(NumError::Empty);
    }
    let s = std::str::from_utf8(b).map_err(|_| NumError::NotANumber)?;
    let v: f64 = s.parse().map_err(|_| NumError::NotANumber)?;
    if !v.is_finite() {
        return Err(NumError::Overflow);
    }
    if v < 0.0 {
        return Err(NumError::Negative);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (line, raw, fields) of every record, or (line, raw, ["<unterminated>"]).
    fn read(chunk: &[u8], first_line: u64) -> Vec<(u64, String, Vec<String>)> {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        let mut v = Vec::new();
        let mut records = Records::new(chunk, first_line);
        while let Some(r) = records.next() {
            v.push(match r {
                Ok(r) => (r.line, text(r.raw), (0..r.len()).map(|i| text(r.field(i))).collect()),
                Err(u) => (u.line, text(u.raw), vec!["<unterminated>".to_string()]),
            });
        }
        v
    }

    fn rec(line: u64, raw: &str, fields: &[&str]) -> (u64, String, Vec<String>) {
        (line, raw.to_string(), fields.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn records_per_rfc_4180() {
        let chunk = b"1,\"a,b\",\"say \"\"hi\"\"\",\r\n\n  \r\n2,\"two\nlines\",x\n3,\"crlf\r\ninside\",\"q\"\r\n4,\"\",\"\"\"\"\n5,ab\"c,6";
        assert_eq!(
            read(chunk, 10),
            vec![
                rec(10, "1,\"a,b\",\"say \"\"hi\"\"\",", &["1", "a,b", "say \"hi\"", ""]),
                rec(13, "2,\"two\nlines\",x", &["2", "two\nlines", "x"]),
                rec(15, "3,\"crlf\r\ninside\",\"q\"", &["3", "crlf\r\ninside", "q"]),
                rec(17, "4,\"\",\"\"\"\"", &["4", "", "\""]),
                rec(18, "5,ab\"c,6", &["5", "ab\"c", "6"]),
            ]
        );
        // A `\r` inside quotes before the closing quote is data; the line end's is not.
        assert_eq!(read(b"\"a\r\"\r\n\"b\r\"\n", 1), vec![rec(1, "\"a\r\"", &["a\r"]), rec(2, "\"b\r\"", &["b\r"])]);
        // The last record needs no line end; an open quote at the end is reported whole.
        assert_eq!(read(b"x,\"y\"", 1), vec![rec(1, "x,\"y\"", &["x", "y"])]);
        assert_eq!(
            read(b"1,2\n3,\"open\n4,5\n", 1),
            vec![rec(1, "1,2", &["1", "2"]), rec(2, "3,\"open\n4,5\n", &["<unterminated>"])]
        );
        // Fields longer than the reader's first buffers.
        let long = format!("{},\"{}\"\n", "a".repeat(1000), "b,".repeat(600));
        assert_eq!(read(long.as_bytes(), 1)[0].2, vec!["a".repeat(1000), "b,".repeat(600)]);
        let many = vec!["7"; 100].join(",");
        assert_eq!(read(many.as_bytes(), 1)[0].2.len(), 100);
    }

    #[test]
    fn scanner_cuts_only_outside_quotes() {
        let data = b"h\n1,\"a\nb\"\n2,\"\"\"\n\"\n3,x";
        // Fed a byte at a time, the last whole record ends after record 2.
        let mut s = RecordScanner::default();
        let ends: Vec<usize> = (1..=data.len()).map(|n| s.scan(&data[..n])).collect();
        assert_eq!(ends[data.len() - 1], 18);
        assert!(s.is_open());
        assert_eq!(&data[..18], b"h\n1,\"a\nb\"\n2,\"\"\"\n\"\n");
        // Every end it reported is a newline outside quotes: 2 (after `h`), 10, 18.
        let mut distinct: Vec<usize> = ends.clone();
        distinct.dedup();
        assert_eq!(distinct, vec![0, 2, 10, 18]);
        // Consuming the first record keeps the state: the rest ends at 16 of the rest.
        s.consume(2);
        assert_eq!(s.scan(&data[2..]), 16);
        let mut t = RecordScanner::default();
        assert_eq!(t.scan(b"1,\"open\n"), 0);
        assert!(t.is_open());
        t.reset();
        assert_eq!(t.scan(b"1,2\n"), 4);
        assert!(!t.is_open());
    }

    #[test]
    fn lines_number_and_strip_cr() {
        let v: Vec<_> = lines(b"a\r\nb\n\nc", 7).collect();
        assert_eq!(v, vec![(7, &b"a"[..]), (8, b"b"), (9, b""), (10, b"c")]);
    }

    #[test]
    fn quoted_fields() {
        let mut out = Vec::new();
        assert!(split_fields(b"1,\"a,b\",\"say \"\"hi\"\"\",", &mut out));
        let v: Vec<&[u8]> = out.iter().map(|c| c.as_ref()).collect();
        assert_eq!(v, vec![&b"1"[..], b"a,b", b"say \"hi\"", b""]);
        assert!(!split_fields(b"1,\"open", &mut out));
        assert!(split_fields(b"  ", &mut out));
        assert_eq!(out, vec![std::borrow::Cow::Borrowed(&b"  "[..])]);
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count(b" 42 "), Ok(42));
        assert_eq!(parse_count(b"-3"), Err(NumError::Negative));
        assert_eq!(parse_count(b"-0"), Ok(0));
        assert_eq!(parse_count(b"99999999999999999999"), Err(NumError::Overflow));
        assert_eq!(parse_count(b"4.5"), Err(NumError::NotANumber));
        assert_eq!(parse_count(b""), Err(NumError::Empty));
        assert_eq!(parse_nonneg_f64(b"1.5"), Ok(1.5));
        assert_eq!(parse_nonneg_f64(b"-1.5"), Err(NumError::Negative));
        assert_eq!(parse_nonneg_f64(b"inf"), Err(NumError::Overflow));
    }
}
