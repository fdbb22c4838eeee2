//! Inputs: resolving paths, directories and globs to files; opening plain, gzip and zstd
//! content (sniffed from magic bytes, not names); and cutting a decompressed stream into chunks
//! of whole records for the parse workers: whole lines, or for CSV whole RFC 4180 records,
//! which may hold newlines inside quoted fields.

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use tapeout_formats::csv::RecordScanner;

/// Folder of the lake for decompressed inputs while they are parsed (Kineto traces are
/// decompressed there to be memory-mapped; leftovers are removed like any `*.tmp`).
pub const TMP_DIR: &str = "_tmp";

/// A file to ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Absolute path (symlinks in the final component are followed when reading).
    pub path: PathBuf,
}

/// An input argument that resolved to nothing readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    /// The path (or pattern) concerned.
    pub path: String,
    /// What is wrong, for people.
    pub message: String,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn is_hidden(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

/// Documentation and scripts kept beside traces (README.md, notes.txt, make.py): skipped when
/// walking a directory, still read (and rejected) when named explicitly.
pub const SKIPPED_IN_DIRECTORIES: &[&str] = &["md", "txt", "rst", "py", "sh", "html", "pdf", "png", "svg"];

fn is_documentation(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SKIPPED_IN_DIRECTORIES.contains(&e.to_ascii_lowercase().as_str()))
}

/// Resolves command-line inputs: files, directories (recursively, in name order; hidden entries
/// and documentation files ([`SKIPPED_IN_DIRECTORIES`]) skipped) and glob patterns. Problems (missing paths, FIFOs, dangling symlinks, symlink
/// loops) are returned beside the files so the good inputs still ingest.
pub fn resolve_inputs(args: &[String]) -> (Vec<InputFile>, Vec<InputProblem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for arg in args {
        let looks_glob = arg.contains(['*', '?', '[']) && !Path::new(arg).exists();
        if looks_glob {
            match glob::glob(arg) {
                Ok(paths) => {
                    let mut matched: Vec<PathBuf> = Vec::new();
                    for p in paths {
                        match p {
                            Ok(p) => matched.push(p),
                            Err(e) => problems.push(InputProblem {
                                path: e.path().display().to_string(),
                                message: e.error().to_string(),
                            }),
                        }
                    }
                    if matched.is_empty() {
                        problems.push(InputProblem { path: arg.clone(), message: "pattern matched no file".into() });
                    }
                    matched.sort();
                    for p in matched {
                        visit(&p, &mut files, &mut problems, &mut seen, &mut HashSet::new());
                    }
                }
                Err(e) => problems.push(InputProblem { path: arg.clone(), message: format!("bad glob pattern: {e}") }),
            }
        } else {
            visit(Path::new(arg), &mut files, &mut problems, &mut seen, &mut HashSet::new());
        }
    }
    (files, problems)
}

fn visit(
    p: &Path,
    files: &mut Vec<InputFile>,
    problems: &mut Vec<InputProblem>,
    seen: &mut HashSet<PathBuf>,
    dirs: &mut HashSet<PathBuf>,
) {
    let shown = p.display().to_string();
    let meta = match fs::metadata(p) {
        Ok(m) => m,
        Err(e) => {
            let message = if fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
                if e.raw_os_error() == Some(40) {
                    "symbolic link loop".to_string()
                } else {
                    "dangling symbolic link".to_string()
                }
            } else if e.kind() == io::ErrorKind::NotFound {
                "no such file or directory".to_string()
            } else {
                e.to_string()
            };
            problems.push(InputProblem { path: shown, message });
            return;
        }
    };
    if meta.is_dir() {
        let canon = fs::canonicalize(p).unwrap_or_else(|_| absolute(p));
        if !dirs.insert(canon) {
            problems
                .push(InputProblem { path: shown, message: "symbolic link loop (directory already visited)".into() });
            return;
        }
        let mut entries: Vec<PathBuf> = match fs::read_dir(p) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| !(is_hidden(e) || (is_documentation(e) && e.is_file())))
                .collect(),
            Err(e) => {
                problems.push(InputProblem { path: shown, message: e.to_string() });
                return;
            }
        };
        entries.sort();
        for e in entries {
            visit(&e, files, problems, seen, dirs);
        }
        return;
    }
    if !meta.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let ft = meta.file_type();
        let kind = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_block_device() || ft.is_char_device() {
            "a device"
        } else {
            "not a regular file"
        };
        problems.push(InputProblem { path: shown, message: format!("not a regular file ({kind})") });
        return;
    }
    let abs = absolute(p);
    let canon = fs::canonicalize(p).unwrap_or_else(|_| abs.clone());
    if seen.insert(canon) {
        files.push(InputFile { path: abs });
    }
}

/// How an input's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Sniffs compression from the first bytes.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Opens a file and returns a reader of its decompressed bytes; `wrap` wraps the raw file
/// reader (to count bytes read for progress, say) before decompression.
pub fn open_decoded<W: Read + Send + 'static>(
    path: &Path,
    wrap: impl FnOnce(fs::File) -> W,
) -> io::Result<(Box<dyn Read + Send>, Compression)> {
    let mut f = fs::File::open(path)?;
    let mut head = [0u8; 4];
    let n = read_full(&mut f, &mut head)?;
    let kind = sniff(&head[..n]);
    let f = wrap(fs::File::open(path)?);
    let r: Box<dyn Read + Send> = match kind {
        Compression::None => Box::new(f),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, f))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(f)?),
    };
    Ok((r, kind))
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What the chunker yields.
#[derive(Debug)]
pub enum Piece {
    /// Whole records (lines); the first starts on line `first_line` (1-based).
    Lines { first_line: u64, data: Vec<u8> },
    /// A record longer than the limit, skipped up to the end of the line its limit fell in: its
    /// first line's number, its first bytes and the bytes skipped.
    Oversized { line: u64, head: Vec<u8>, len: u64 },
    /// The stream broke (truncated or corrupt compression); everything before was yielded.
    Broken { next_line: u64, decoded_bytes: u64, message: String },
}

/// Decides from the first bytes of a stream (at least its first line) whether it is CSV.
type CsvRule = Box<dyn FnOnce(&[u8]) -> bool + Send>;

/// Cuts a byte stream into [`Piece`]s of about `chunk_bytes`, each ending at a record end: a line
/// end, or for CSV ([`Chunker::csv_if`]) a line end outside quoted fields, so a record is never
/// cut in two. Line numbers count every `\n`, those inside quoted fields too.
pub struct Chunker<R> {
    reader: R,
    chunk_bytes: usize,
    max_line: usize,
    carry: Vec<u8>,
    next_line: u64,
    decoded: u64,
    done: bool,
    skipping: Option<(u64, Vec<u8>, u64)>,
    pending: Option<Piece>,
    last_byte: Option<u8>,
    csv_rule: Option<CsvRule>,
    /// Record ends of CSV, once `csv_rule` said the stream is CSV.
    csv: Option<RecordScanner>,
}

impl<R: Read> Chunker<R> {
    /// A chunker; lines longer than `max_line` bytes are reported as [`Piece::Oversized`].
    pub fn new(reader: R, chunk_bytes: usize, max_line: usize) -> Self {
        Chunker {
            reader,
            chunk_bytes: chunk_bytes.max(64),
            max_line,
            carry: Vec::new(),
            next_line: 1,
            decoded: 0,
            done: false,
            skipping: None,
            pending: None,
            last_byte: None,
            csv_rule: None,
            csv: None,
        }
    }

    /// Cuts CSV records rather than lines if `rule`, given the first bytes (at least the first
    /// line, or the whole stream), says the stream is CSV.
    pub fn csv_if(mut self, rule: impl FnOnce(&[u8]) -> bool + Send + 'static) -> Self {
        self.csv_rule = Some(Box::new(rule));
        self
    }

    /// Decompressed bytes read so far.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded
    }

    /// Whether the bytes read so far end with a line end that ends a record (or there were
    /// none): a file being appended to may have been read in the middle of its last line, or,
    /// for CSV, inside a quoted field that holds a newline.
    pub fn ends_with_newline(&self) -> bool {
        self.last_byte.is_none_or(|b| b == b'\n') && !self.csv.as_ref().is_some_and(RecordScanner::is_open)
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// The end of the last whole record held (None: none yet). The CSV rule is asked once the
    /// first line is held whole.
    fn record_end(&mut self) -> Option<usize> {
        if self.csv_rule.is_some() && (self.done || memchr::memchr(b'\n', &self.carry).is_some()) {
            let rule = self.csv_rule.take().expect("checked");
            self.csv = rule(&self.carry).then(RecordScanner::default);
        }
        let end = match &mut self.csv {
            Some(scanner) => scanner.scan(&self.carry),
            None => memchr::memrchr(b'\n', &self.carry).map_or(0, |i| i + 1),
        };
        (end > 0).then_some(end)
    }

    fn take_lines(&mut self, upto: usize) -> Piece {
        if let Some(scanner) = &mut self.csv {
            scanner.consume(upto);
        }
        let rest = self.carry.split_off(upto);
        let data = std::mem::replace(&mut self.carry, rest);
        let first_line = self.next_line;
        self.next_line += memchr::memchr_iter(b'\n', &data).count() as u64;
        if !data.ends_with(b"\n") {
            self.next_line += 1;
        }
        Piece::Lines { first_line, data }
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        loop {
            // Finish skipping an oversized line: drop bytes up to its newline.
            if let Some((line, head, len)) = &mut self.skipping {
                match memchr::memchr(b'\n', &self.carry) {
                    Some(i) => {
                        *len += i as u64;
                        let piece = Piece::Oversized { line: *line, head: std::mem::take(head), len: *len };
                        self.carry.drain(..=i);
                        self.skipping = None;
                        self.next_line += 1;
                        if let Some(scanner) = &mut self.csv {
                            scanner.reset();
                        }
                        return Some(piece);
                    }
                    None => {
                        *len += self.carry.len() as u64;
                        self.carry.clear();
                        if self.done {
                            let (line, head, len) = self.skipping.take().unwrap();
                            self.next_line += 1;
                            return Some(Piece::Oversized { line, head, len });
                        }
                    }
                }
            }
            if self.carry.len() >= self.chunk_bytes || self.done {
                if let Some(end) = self.record_end() {
                    return Some(self.take_lines(end));
                }
                if self.done {
                    return if self.carry.is_empty() { None } else { Some(self.take_lines(self.carry.len())) };
                }
                if self.carry.len() > self.max_line {
                    // Every byte held is the oversized record's (newlines in CSV quotes too): it
                    // is skipped up to the next line end.
                    let head = self.carry[..4096.min(self.carry.len())].to_vec();
                    let len = self.carry.len() as u64;
                    self.skipping = Some((self.next_line, head, len));
                    self.next_line += memchr::memchr_iter(b'\n', &self.carry).count() as u64;
                    self.carry.clear();
                    continue;
                }
            }
            let start = self.carry.len();
            let want = self.chunk_bytes.max(start + 64 * 1024);
            self.carry.resize(want, 0);
            match self.reader.read(&mut self.carry[start..]) {
                Ok(0) => {
                    self.carry.truncate(start);
                    self.done = true;
                }
                Ok(k) => {
                    self.carry.truncate(start + k);
                    self.decoded += k as u64;
                    self.last_byte = Some(self.carry[start + k - 1]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.carry.truncate(start),
                Err(e) => {
                    self.carry.truncate(start);
                    self.done = true;
                    // Keep the whole records before the break; the partial last one is dropped.
                    let whole = self.record_end().unwrap_or(0);
                    let dropped = self.carry.len() - whole;
                    let message = format!(
                        "stream broke after {} decompressed bytes ({e}); {} partial bytes at the break were dropped",
                        self.decoded, dropped
                    );
                    let decoded_bytes = self.decoded;
                    if whole > 0 {
                        let piece = self.take_lines(whole);
                        self.carry.clear();
                        self.pending = Some(Piece::Broken { next_line: self.next_line, decoded_bytes, message });
                        return Some(piece);
                    }
                    self.carry.clear();
                    return Some(Piece::Broken { next_line: self.next_line, decoded_bytes, message });
                }
            }
        }
    }
}
