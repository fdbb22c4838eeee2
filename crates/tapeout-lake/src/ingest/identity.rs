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

/// An input's identity: its raw bytes' hash, and the earlier input it extends, if any.
pub(super) struct Hashed {
    pub(super) hash: String,
    pub(super) size: u64,
    /// An earlier input from the same path whose bytes are a prefix of these.
    pub(super) extends: Option<InputEntry>,
    /// An earlier ingest of these bytes (or of a prefix of them, from the same path) under
    /// another format choice, with its parts ([`with_parts`]): the input lands whole and
    /// replaces them. `extends` is then `None`.
    pub(super) reformats: Vec<InputEntry>,
}

impl Hashed {
    /// Lines already in the lake: the earlier input's, when it ended with a whole line.
    pub(super) fn skip_lines(&self) -> u64 {
        self.extends.as_ref().filter(|e| e.ends_with_newline).map_or(0, |e| e.lines)
    }

    /// The earlier inputs this one replaces whole, in one commit: an ingest under another
    /// format choice (`reformats`), or the input a grown file extends when its last line may
    /// have been cut mid-write (its rows are dropped and the grown file lands entire).
    pub(super) fn replaces(&self) -> Vec<InputEntry> {
        match self.extends.as_ref().filter(|e| !e.ends_with_newline) {
            Some(e) => vec![e.clone()],
            None => self.reformats.clone(),
        }
    }

    /// Moves an earlier ingest made under another format choice than `forced` into
    /// `reformats`: the input these bytes extend, or the committed input of these very bytes.
    pub(super) fn check_format_choice(&mut self, snapshot: &Snapshot, forced: Option<SourceFormat>) {
        let earlier = self.extends.as_ref().or_else(|| snapshot.inputs.get(&self.hash));
        if let Some(e) = earlier.filter(|e| !same_format_choice(e, forced)) {
            self.reformats = with_parts(snapshot, e);
            self.extends = None;
        }
    }
}

/// Fills `buf` as far as the file allows; returns the bytes read (0 at the end).
fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
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

pub(super) fn hash_input(path: &Path, snapshot: &Snapshot) -> std::io::Result<Hashed> {
    let shown = path.display().to_string();
    let prior = snapshot.latest_for_path(&shown).cloned();
    let mut f = std::fs::File::open(path)?;
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
        return Ok(Hashed {
            hash: h.finalize().to_hex().to_string(),
            size: h.count(),
            extends: None,
            reformats: Vec::new(),
        });
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
    Ok(Hashed { hash, size, extends, reformats: Vec::new() })
}

/// Whether an input could already be in the lake: an input of the same size is (a possible
/// duplicate), or a smaller one from the same path (a possible grown file). Only such inputs
/// are hashed before they are parsed.
pub(super) fn could_repeat(path: &Path, size: u64, snapshot: &Snapshot) -> bool {
    let shown = path.display().to_string();
    snapshot.inputs.values().any(|e| e.size == size) || snapshot.latest_for_path(&shown).is_some_and(|e| e.size < size)
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
