//! Input identity and exactly-once: an input is its raw bytes' BLAKE3 (`input_hash`); the same
//! bytes under any name, or the same decompressed content ([`CommitState::known_content`]),
//! land once. A file that grew since it was ingested is recognized by hashing the earlier
//! input's length of it ([`Hashed::extends`]). A new file (no input of its size or path in the
//! lake, [`could_repeat`]) is hashed on another thread while it is parsed ([`LazyHash`]).
//!
//! Format choices are not sticky ([`same_format_choice`]): the same bytes are a duplicate only
//! when they come again under the same choice (the same `--format`, or detection again after
//! detection). Under another choice they are parsed again and replace the earlier ingest whole,
//! with every earlier part of it ([`with_parts`]), in one commit ([`super::land`]).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tapeout_formats::SourceFormat;

use crate::manifest::{InputEntry, Snapshot};

/// What this run knows is in the lake (or claimed by one of its inputs), for exactly-once.
pub(super) struct CommitState {
    pub(super) version: u64,
    /// Raw-byte hashes of committed (or claimed, in this run) inputs.
    pub(super) known: HashSet<String>,
    /// Decompressed-content hashes of committed inputs, with the path that brought them.
    pub(super) known_content: HashMap<String, String>,
    /// Committed inputs that an input of this run re-ingests under another format choice
    /// (claimed once: a second copy of the same content in this run is a duplicate).
    pub(super) reformatted: HashSet<String>,
}

impl CommitState {
    /// The state of a lake at `snapshot`.
    pub(super) fn new(snapshot: &Snapshot) -> Self {
        CommitState {
            version: snapshot.version,
            known: snapshot.inputs.keys().cloned().collect(),
            known_content: snapshot.inputs.values().map(|i| (i.content_hash.clone(), i.path.clone())).collect(),
            reformatted: HashSet::new(),
        }
    }
}

/// Whether `earlier` was ingested under the same format choice as this run (`forced`: its
/// `--format`): a forced format matches an earlier ingest in that format, forced or detected
/// (it would parse the same); detection matches only an earlier detection. Only then are the
/// same bytes a duplicate; otherwise they replace the earlier ingest.
pub(super) fn same_format_choice(earlier: &InputEntry, forced: Option<SourceFormat>) -> bool {
    match forced {
        Some(f) => earlier.format == f.id(),
        None => !earlier.format_forced,
    }
}

/// An ingest's format and how it was chosen, for people: `forced format mooncake` or
/// `format azure_llm`.
pub(super) fn format_choice(e: &InputEntry) -> String {
    format!("{}format {}", if e.format_forced { "forced " } else { "" }, e.format)
}

/// `entry` and the earlier inputs it extends (the parts a grown file landed in): together they
/// hold the file's rows, so replacing the file replaces them all. Newest first.
pub(super) fn with_parts(snapshot: &Snapshot, entry: &InputEntry) -> Vec<InputEntry> {
    let mut parts = vec![entry.clone()];
    while let Some(prev) = parts.last().and_then(|e| e.extends.as_ref()).and_then(|h| snapshot.inputs.get(h)) {
        if parts.iter().any(|p| p.input_hash == prev.input_hash) {
            break; // a malformed chain; never loop
        }
        parts.push(prev.clone());
    }
    parts
}

/// Why an input replaces earlier inputs whole, in one commit (see [`Hashed::replaces`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplaceCause {
    /// The file grew after an ingest that landed its last line without a newline (settled or
    /// `--final`): that line may have been cut mid-write, so the whole file lands again.
    GrownMidLine,
    /// The same bytes were ingested under another format choice (`--format`, or detection).
    FormatChoice,
    /// The path holds other bytes than its last ingest, neither the same nor an extension
    /// (rewritten, truncated, shrunk), and `--on-change replace` is in force.
    PathChanged,
}

/// An input's identity: its raw bytes' hash, and the earlier input it extends, if any.
pub(super) struct Hashed {
    pub(super) hash: String,
    /// Bytes of the file that are this input: the whole file, or up to a pending last line.
    pub(super) size: u64,
    /// An earlier input from the same path whose bytes are a prefix of these.
    pub(super) extends: Option<InputEntry>,
    /// The latest earlier input from the same path that these bytes neither equal nor extend:
    /// the file changed in place (see [`crate::ingest::OnChange`]).
    pub(super) changed: Option<InputEntry>,
    /// Earlier inputs this one replaces whole, in one commit, each with its parts
    /// ([`with_parts`]), and why. `extends` is then `None`: the input lands entire.
    pub(super) replaces: Vec<InputEntry>,
    pub(super) cause: Option<ReplaceCause>,
}

impl Hashed {
    /// An input not hashed yet (hashed on another thread while it is parsed).
    pub(super) fn deferred(size: u64) -> Self {
        Hashed { hash: String::new(), size, extends: None, changed: None, replaces: Vec::new(), cause: None }
    }

    /// Lines already in the lake: the earlier input's, when it ended with a whole line.
    pub(super) fn skip_lines(&self) -> u64 {
        self.extends.as_ref().filter(|e| e.ends_with_newline).map_or(0, |e| e.lines)
    }

    /// Replaces `earlier` and its parts whole, for `cause`; the input then lands entire.
    pub(super) fn replace(&mut self, snapshot: &Snapshot, earlier: &InputEntry, cause: ReplaceCause) {
        for e in with_parts(snapshot, earlier) {
            if !self.replaces.iter().any(|r| r.input_hash == e.input_hash) {
                self.replaces.push(e);
            }
        }
        self.cause = self.cause.or(Some(cause));
        self.extends = None;
    }

    /// A grown file whose earlier ingest ended without a newline lands entire, replacing
    /// every part of the earlier ingest (that last line may have been cut mid-write).
    pub(super) fn check_grown_mid_line(&mut self, snapshot: &Snapshot) {
        if let Some(e) = self.extends.clone().filter(|e| !e.ends_with_newline) {
            self.replace(snapshot, &e, ReplaceCause::GrownMidLine);
        }
    }

    /// Moves an earlier ingest made under another format choice than `forced` into
    /// `replaces`: the input these bytes extend, or the committed input of these very bytes.
    pub(super) fn check_format_choice(&mut self, snapshot: &Snapshot, forced: Option<SourceFormat>) {
        let earlier = self.extends.as_ref().or_else(|| snapshot.inputs.get(&self.hash)).cloned();
        if let Some(e) = earlier.filter(|e| !same_format_choice(e, forced)) {
            self.replace(snapshot, &e, ReplaceCause::FormatChoice);
        }
    }
}

/// Fills `buf` as far as the reader allows; returns the bytes read (0 at the end).
fn read_up_to(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A last line held back: the file does not end with a newline and changed less than the
/// settle time ago, so that line may still be being written.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PendingTail {
    /// Byte offset of the pending line (the input is the bytes before it).
    pub offset: u64,
    /// Its length so far.
    pub bytes: u64,
    /// How long ago the file last changed.
    pub unchanged_for_seconds: f64,
    /// The settle time it must stay unchanged for before the line lands (`--settle`).
    pub settle_seconds: f64,
}

/// How much of the file at `path` (`size` bytes) is an input now: all of it, unless it is an
/// uncompressed file that does not end with a newline and changed less than `settle` ago;
/// then everything before its last line, which is pending. `settle` `None` (`--final`):
/// always all of it. A compressed file is complete or broken, never pending.
pub(super) fn settled_extent(
    path: &Path,
    size: u64,
    settle: Option<std::time::Duration>,
) -> std::io::Result<(u64, Option<PendingTail>)> {
    use std::io::{Seek, SeekFrom};
    let Some(settle) = settle.filter(|s| !s.is_zero()) else { return Ok((size, None)) };
    if size == 0 {
        return Ok((0, None));
    }
    let mut f = std::fs::File::open(path)?;
    let mut head = [0u8; 4];
    let n = read_up_to(&mut f, &mut head)?;
    if crate::source::sniff(&head[..n]) != crate::source::Compression::None {
        return Ok((size, None));
    }
    let age = f.metadata()?.modified()?.elapsed().unwrap_or_default(); // a future mtime: just changed
    if age >= settle {
        return Ok((size, None));
    }
    let pending = |offset: u64| PendingTail {
        offset,
        bytes: size - offset,
        unchanged_for_seconds: age.as_secs_f64(),
        settle_seconds: settle.as_secs_f64(),
    };
    // The last newline, read backwards in blocks.
    let mut buf = vec![0u8; 64 << 10];
    let mut end = size;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let want = (end - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        let got = read_up_to(&mut f, &mut buf[..want])?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..got]) {
            let len = start + i as u64 + 1;
            return Ok(if len == size { (size, None) } else { (len, Some(pending(len))) });
        }
        end = start;
    }
    Ok((0, Some(pending(0))))
}

/// Hashes the first `limit` bytes of the file at `path` and relates them to the latest earlier
/// input from the same path: the same bytes, an extension of them, or a change.
pub(super) fn hash_input(path: &Path, snapshot: &Snapshot, limit: u64) -> std::io::Result<Hashed> {
    let shown = path.display().to_string();
    let prior = snapshot.latest_for_path(&shown).cloned();
    let mut f = std::fs::File::open(path)?.take(limit);
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    let mut extends = None;
    let boundary = prior.as_ref().map(|p| p.size);
    if boundary.is_none() {
        // The common case: no earlier version of this path to compare a prefix with. Hash large
        // reads on every core (read, not mmap: a mapped file would count in the process's RSS).
        let mut big = vec![0u8; 16 << 20];
        loop {
            let n = read_up_to(&mut f, &mut big)?;
            if n == 0 {
                break;
            }
            h.update_rayon(&big[..n]);
        }
        return Ok(Hashed { hash: h.finalize().to_hex().to_string(), ..Hashed::deferred(h.count()) });
    }
    loop {
        let want = match boundary {
            Some(b) if size < b => buf.len().min((b - size) as usize),
            _ => buf.len(),
        };
        let n = f.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
        if Some(size) == boundary
            && let Some(p) = &prior
            && h.finalize().to_hex().as_str() == p.input_hash
        {
            extends = Some(p.clone());
        }
    }
    let hash = h.finalize().to_hex().to_string();
    if extends.as_ref().is_some_and(|e| e.size == size) {
        extends = None; // identical content: a plain duplicate
    }
    let changed = prior.filter(|p| extends.is_none() && p.input_hash != hash);
    Ok(Hashed { hash, extends, changed, ..Hashed::deferred(size) })
}

/// Whether an input could already be in the lake: an input of the same size is (a possible
/// duplicate), or one from the same path (a possible grown or changed file). Only such inputs
/// are hashed before they are parsed.
pub(super) fn could_repeat(path: &Path, size: u64, snapshot: &Snapshot) -> bool {
    let shown = path.display().to_string();
    snapshot.inputs.values().any(|e| e.size == size) || snapshot.latest_for_path(&shown).is_some()
}

/// An input's raw-bytes hash, known already or being computed on another thread.
pub(super) struct LazyHash {
    /// Names staged files until the hash is known (the hash prefix itself when it is).
    tag: String,
    value: std::sync::OnceLock<Result<String, String>>,
    pending: Mutex<Option<std::sync::mpsc::Receiver<std::io::Result<String>>>>,
}

impl LazyHash {
    pub(super) fn ready(hash: String) -> Self {
        let tag = hash[..16].to_string();
        LazyHash { tag, value: std::sync::OnceLock::from(Ok(hash)), pending: Mutex::new(None) }
    }

    pub(super) fn pending(rx: std::sync::mpsc::Receiver<std::io::Result<String>>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tag =
            format!("staging{:05}x{:04}", std::process::id() % 100_000, NEXT.fetch_add(1, Ordering::Relaxed) % 10_000);
        LazyHash { tag, value: std::sync::OnceLock::new(), pending: Mutex::new(Some(rx)) }
    }

    pub(super) fn tag(&self) -> &str {
        &self.tag
    }

    /// The hash, waiting for the hashing thread if need be. Blocking.
    pub(super) fn get(&self) -> Result<String, String> {
        self.value
            .get_or_init(|| {
                let rx = self.pending.lock().expect("hash lock").take();
                match rx.map(|rx| rx.recv()) {
                    Some(Ok(Ok(h))) => Ok(h),
                    Some(Ok(Err(e))) => Err(e.to_string()),
                    _ => Err("the hashing thread stopped".to_string()),
                }
            })
            .clone()
    }
}
