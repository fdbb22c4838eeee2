//! `tapeout ingest`: inputs → parse workers → partitioned, sorted Parquet → one commit per input.
//!
//! Data path for one input (memory is bounded by the channel capacities, not the file size):
//!
//! ```text
//! reader thread ──Piece──▶ [bounded 4] ──▶ parse tasks (spawn_blocking, `parse_threads` at once,
//!   (decompress, cut       results kept in file order) ──Parsed──▶ [bounded 2] ──▶ writer thread
//!    whole lines)                                                 (cached_tokens in file order,
//!                                                                  partition, sort, Parquet)
//! ```
//!
//! Inputs are processed `jobs` at a time. An input lands all at once: its files are staged under
//! temporary names, published by rename and named by a manifest commit (see [`crate::writer`] and
//! [`crate::manifest`]). Every run takes the lake lock and first removes what an interrupted run
//! left (see [`crate::repair`]), so each input lands exactly once.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::{filter_record_batch, take_record_batch};
use arrow::datatypes::{Int64Type, TimestampNanosecondType};
use futures::StreamExt;
use serde::Serialize;
use tapeout_formats::time::{day_of, format_day};
use tapeout_formats::{
    FormatError, ParseOptions, PrefixTracker, Reject, RequestBatchBuilder, RequestParser, SourceFormat,
};

use crate::LakeError;
use crate::lock::LakeLock;
use crate::manifest::{self, InputEntry, Snapshot};
use crate::source::{Chunker, InputFile, Piece, open_decoded, resolve_inputs};
use crate::writer::{StagedFile, TableWriter, discard, publish_then, quarantine_batch};

/// Receives progress as an ingest runs (the CLI draws a progress bar from it).
pub trait ProgressSink: Send + Sync {
    /// Called once, before any input is read.
    fn start(&self, _inputs: usize, _total_bytes: u64) {}
    /// Raw (on-disk) bytes of inputs consumed since the last call.
    fn advance(&self, _bytes: u64) {}
    /// One input finished (landed, skipped or rejected).
    fn input_done(&self, _report: &InputReport) {}
    /// Another process holds the lake lock; this run waits for it.
    fn waiting_for_lock(&self, _holder: Option<u32>) {}
}

/// How `tapeout ingest` behaves.
#[derive(Clone)]
pub struct IngestOptions {
    /// Force a format instead of detecting it from content.
    pub format: Option<SourceFormat>,
    /// Workload name for every input (default: derived from each file name).
    pub workload: Option<String>,
    /// Origin of relative timestamps, ns since the Unix epoch.
    pub time_origin_ns: i64,
    /// Inputs processed at once.
    pub jobs: usize,
    /// Chunks of one input parsed at once.
    pub parse_threads: usize,
    /// Target size of a parse chunk (decompressed bytes).
    pub chunk_bytes: usize,
    /// Longest line accepted; longer ones are quarantined.
    pub max_line_bytes: usize,
    /// Wait for another writer's lock instead of failing.
    pub wait_for_lock: bool,
    /// Progress receiver.
    pub progress: Option<Arc<dyn ProgressSink>>,
    /// Kernel-name → category rules for Kineto traces.
    pub categories: Arc<tapeout_formats::kineto::CategoryRules>,
    /// Cap on resident memory (see [`crate::memory`]); an input that goes over is rejected.
    pub memory_cap: Option<crate::memory::MemoryCap>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        IngestOptions {
            format: None,
            workload: None,
            time_origin_ns: 0,
            jobs: 2,
            parse_threads: cores,
            chunk_bytes: 4 << 20,
            max_line_bytes: 16 << 20,
            wait_for_lock: true,
            progress: None,
            categories: Arc::new(tapeout_formats::kineto::CategoryRules::default()),
            memory_cap: None,
        }
    }
}

/// What happened to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputStatus {
    /// New content; its rows landed.
    Ingested,
    /// A file that grew since it was ingested; only the appended records landed.
    Appended,
    /// A file that grew since it was ingested mid-line: its earlier rows were replaced by the
    /// whole new content, in one commit.
    Replaced,
    /// Content already in the lake (same bytes, any name); nothing added.
    Skipped,
    /// Nothing landed (unreadable, unrecognized, ...): see `reason`.
    Rejected,
}

/// Per-input line of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct InputReport {
    pub path: String,
    pub status: InputStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_hash: Option<String>,
    pub rows: u64,
    /// Rows per table, for inputs that fill several (Kineto traces).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tables: BTreeMap<String, u64>,
    pub quarantined: u64,
    pub outputs: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Remarks for people (e.g. kernels no category rule matched, by time).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Set when the input's stream broke: the rows before the break landed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
}

/// The run summary (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct IngestSummary {
    pub lake: String,
    /// Manifest version after the run.
    pub manifest_version: u64,
    /// Inputs considered (files found plus arguments that resolved to no readable file).
    pub inputs: usize,
    /// Inputs whose content was already in the lake.
    pub skipped: usize,
    /// Rows that landed.
    pub rows: u64,
    /// Records quarantined.
    pub quarantined: u64,
    /// Inputs rejected whole.
    pub rejected: usize,
    /// Parquet files committed (data and quarantine).
    pub outputs: usize,
    pub seconds: f64,
    pub details: Vec<InputReport>,
}

impl IngestSummary {
    /// Exit status: 0 clean; 2 done, with quarantined records; 3 some inputs rejected while
    /// the rest landed (or were already there); 1 every input failed, nothing committed.
    pub fn exit_code(&self) -> u8 {
        if self.rejected > 0 {
            if self.rejected == self.inputs { 1 } else { 3 }
        } else if self.quarantined > 0 {
            2
        } else {
            0
        }
    }
}

struct CommitState {
    version: u64,
    /// Raw-byte hashes of committed (or claimed, in this run) inputs.
    known: HashSet<String>,
    /// Decompressed-content hashes of committed inputs, with the path that brought them.
    known_content: std::collections::HashMap<String, String>,
}

struct Shared {
    lake: PathBuf,
    snapshot: Snapshot,
    opts: IngestOptions,
    state: Mutex<CommitState>,
}

/// Ingests `args` (files, directories, globs) into the lake at `lake`.
///
/// Returns `Err` only when nothing could be attempted (lake not writable, lock refused,
/// manifest unreadable); per-input failures are in the summary.
pub async fn ingest(lake: &Path, args: &[String], opts: IngestOptions) -> Result<IngestSummary, LakeError> {
    let started = Instant::now();
    let (files, problems) = resolve_inputs(args);
    std::fs::create_dir_all(lake).map_err(|e| LakeError::io(lake, e))?;
    let lake = std::path::absolute(lake).map_err(|e| LakeError::io(lake, e))?;
    let progress = opts.progress.clone();
    let lock = {
        let lake = lake.clone();
        let wait = opts.wait_for_lock;
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || {
            LakeLock::acquire(&lake, wait, |holder| {
                if let Some(p) = &progress {
                    p.waiting_for_lock(holder)
                }
            })
        })
        .await
        .map_err(LakeError::join)??
    };
    let snapshot = manifest::load(&lake, None)?;
    crate::repair::remove_leftovers(&lake, &snapshot)?;
    let total: u64 = files.iter().filter_map(|f| std::fs::metadata(&f.path).ok()).map(|m| m.len()).sum();
    if let Some(p) = &progress {
        p.start(files.len() + problems.len(), total);
    }
    let shared = Arc::new(Shared {
        lake: lake.clone(),
        state: Mutex::new(CommitState {
            version: snapshot.version,
            known: snapshot.inputs.keys().cloned().collect(),
            known_content: snapshot.inputs.values().map(|i| (i.content_hash.clone(), i.path.clone())).collect(),
        }),
        snapshot,
        opts: opts.clone(),
    });
    let mut details: Vec<InputReport> =
        problems.into_iter().map(|p| InputReport::nothing_landed(p.path, InputStatus::Rejected, p.message)).collect();
    if let Some(p) = &progress {
        details.iter().for_each(|r| p.input_done(r));
    }
    let mut reports: Vec<(usize, InputReport)> = futures::stream::iter(files.into_iter().enumerate())
        .map(|(i, f)| {
            let shared = shared.clone();
            async move {
                let report = ingest_one(&shared, f).await;
                if let Some(p) = &shared.opts.progress {
                    p.input_done(&report);
                }
                (i, report)
            }
        })
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await;
    reports.sort_by_key(|(i, _)| *i);
    details.extend(reports.into_iter().map(|(_, r)| r));
    let version = shared.state.lock().expect("state lock").version;
    drop(lock);
    let count = |s: InputStatus| details.iter().filter(|r| r.status == s).count();
    Ok(IngestSummary {
        lake: lake.display().to_string(),
        manifest_version: version,
        inputs: details.len(),
        skipped: count(InputStatus::Skipped),
        rows: details.iter().map(|r| r.rows).sum(),
        quarantined: details.iter().map(|r| r.quarantined).sum(),
        rejected: count(InputStatus::Rejected),
        outputs: details.iter().map(|r| r.outputs).sum(),
        seconds: started.elapsed().as_secs_f64(),
        details,
    })
}

struct Hashed {
    hash: String,
    size: u64,
    /// An earlier input from the same path whose bytes are a prefix of these.
    extends: Option<InputEntry>,
}

impl Hashed {
    /// Lines already in the lake: the earlier input's, when it ended with a whole line.
    fn skip_lines(&self) -> u64 {
        self.extends.as_ref().filter(|e| e.ends_with_newline).map_or(0, |e| e.lines)
    }

    /// The earlier input this one replaces whole: its last line may have been cut mid-write,
    /// so its rows are dropped and the grown file lands entire, in one commit.
    fn replaces(&self) -> Option<&InputEntry> {
        self.extends.as_ref().filter(|e| !e.ends_with_newline)
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

fn hash_input(path: &Path, snapshot: &Snapshot) -> std::io::Result<Hashed> {
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
        return Ok(Hashed { hash: h.finalize().to_hex().to_string(), size: h.count(), extends: None });
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
    Ok(Hashed { hash, size, extends })
}

/// Whether an input could already be in the lake: an input of the same size is (a possible
/// duplicate), or a smaller one from the same path (a possible grown file). Only such inputs
/// are hashed before they are parsed.
fn could_repeat(path: &Path, size: u64, snapshot: &Snapshot) -> bool {
    let shown = path.display().to_string();
    snapshot.inputs.values().any(|e| e.size == size) || snapshot.latest_for_path(&shown).is_some_and(|e| e.size < size)
}

fn skipped(shared: &Shared, path: String, hash: String) -> InputReport {
    let entry = shared.snapshot.inputs.get(&hash);
    let reason = match entry {
        Some(e) => format!("same content already ingested from {}", e.path),
        None => "same content as another input of this run".to_string(),
    };
    InputReport {
        format: entry.map(|e| e.format.clone()),
        input_hash: Some(hash),
        ..InputReport::nothing_landed(path, InputStatus::Skipped, reason)
    }
}

fn rejected(path: String, format: Option<String>, hash: Option<String>, reason: String) -> InputReport {
    InputReport { format, input_hash: hash, ..InputReport::nothing_landed(path, InputStatus::Rejected, reason) }
}

impl InputReport {
    /// A report for an input of which nothing landed (skipped or rejected), saying why.
    fn nothing_landed(path: String, status: InputStatus, reason: String) -> Self {
        InputReport {
            path,
            status,
            format: None,
            input_hash: None,
            rows: 0,
            tables: BTreeMap::new(),
            quarantined: 0,
            outputs: 0,
            reason: Some(reason),
            truncated: None,
            notes: Vec::new(),
        }
    }
}

async fn ingest_one(shared: &Arc<Shared>, input: InputFile) -> InputReport {
    let shown = input.path.display().to_string();
    let size = match std::fs::metadata(&input.path) {
        Ok(m) => m.len(),
        Err(e) => return rejected(shown, None, None, format!("cannot read: {e}")),
    };
    let kineto = shared.opts.format.is_none() && is_kineto(&input.path);
    // A new file (no input of its size or from its path in the lake) cannot be a duplicate or a
    // grown file: hash it on a separate thread while it is parsed instead of before.
    let deferred = !kineto && !could_repeat(&input.path, size, &shared.snapshot);
    let (hashed, lazy) = if deferred {
        let (tx, rx) = std::sync::mpsc::channel();
        let (path, snap_shared) = (input.path.clone(), shared.clone());
        tokio::task::spawn_blocking(move || {
            let _ = tx.send(hash_input(&path, &snap_shared.snapshot).map(|h| h.hash));
        });
        (Hashed { hash: String::new(), size, extends: None }, Arc::new(LazyHash::pending(rx)))
    } else {
        let hashed = {
            let (path, shared) = (input.path.clone(), shared.clone());
            tokio::task::spawn_blocking(move || hash_input(&path, &shared.snapshot)).await
        };
        let hashed = match hashed {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return rejected(shown, None, None, format!("cannot read: {e}")),
            Err(e) => return rejected(shown, None, None, format!("internal error: {e}")),
        };
        if !shared.state.lock().expect("state lock").known.insert(hashed.hash.clone()) {
            if let Some(p) = &shared.opts.progress {
                p.advance(hashed.size);
            }
            return skipped(shared, shown, hashed.hash);
        }
        let lazy = Arc::new(LazyHash::ready(hashed.hash.clone()));
        (hashed, lazy)
    };
    let unclaim = |hash: &str| {
        shared.state.lock().expect("state lock").known.remove(hash);
    };
    let result = if kineto {
        stage_kineto(shared, &input.path, &hashed).await
    } else {
        run_pipeline(shared, &input.path, &hashed, lazy.clone()).await
    };
    let mut landed = match result {
        Ok(l) => l,
        Err(e) => {
            if !deferred {
                unclaim(&hashed.hash);
            }
            return rejected(shown, None, (!deferred).then(|| hashed.hash.clone()), e.reason());
        }
    };
    let mut staged = std::mem::take(&mut landed.staged);
    let input_hash = match lazy.get() {
        Ok(h) => h,
        Err(e) => {
            discard(&staged);
            return rejected(shown, None, None, format!("cannot read: {e}"));
        }
    };
    crate::writer::name_after_input(&mut staged, lazy.tag(), &input_hash[..16]);
    if landed.content_hash.is_empty() {
        landed.content_hash = input_hash.clone(); // a plain file's content is its raw bytes
    }
    let format = landed.format.clone();
    let entry = InputEntry {
        input_hash: input_hash.clone(),
        content_hash: landed.content_hash.clone(),
        path: shown.clone(),
        size: hashed.size,
        format: format.clone(),
        table: landed.table.to_string(),
        workload: landed.workload.clone(),
        rows: landed.rows,
        tables: landed.tables.clone(),
        quarantined: landed.quarantined,
        lines: landed.lines,
        extends: hashed.extends.as_ref().map(|e| e.input_hash.clone()),
        skipped_lines: landed.skipped_lines,
        ends_with_newline: landed.ends_with_newline,
        truncated: landed.truncated.clone(),
        outputs: staged.iter().map(|s| s.output.clone()).collect(),
        ingested_at: manifest::now_rfc3339(),
    };
    let removed: Vec<String> = hashed.replaces().map(|e| e.input_hash.clone()).into_iter().collect();
    let commit = {
        let mut st = shared.state.lock().expect("state lock");
        // A deferred hash is claimed only now: the same bytes may have landed meanwhile.
        let raw_duplicate = deferred && !st.known.insert(input_hash.clone());
        let content_first = st.known_content.get(&landed.content_hash).cloned();
        if raw_duplicate || content_first.is_some() {
            drop(st);
            discard(&staged);
            if deferred && !raw_duplicate {
                unclaim(&input_hash); // claimed just above; the content is what repeats
            }
            let mut report = skipped(shared, shown, input_hash);
            if let (false, Some(first)) = (raw_duplicate, content_first) {
                report.reason = Some(format!("same decompressed content already ingested from {first}"));
                report.format = Some(format);
            }
            return report;
        }
        // A replaced input that shares files with others (after a compact) leaves them
        // rewritten without its rows, their other owners re-committed in this same commit.
        let released = match hashed.replaces().filter(|e| e.outputs.iter().any(|o| o.row_offset.is_some())) {
            Some(old) => manifest::load(&shared.lake, None).and_then(|snap| {
                crate::compact::release(&shared.lake, &snap, &std::iter::once(old.input_hash.clone()).collect())
            }),
            None => Ok(crate::compact::Release::default()),
        };
        let r = released.and_then(|rel| {
            let mut removed = removed;
            removed.extend(rel.updated.iter().map(|e| e.input_hash.clone()));
            let mut add = vec![entry];
            add.extend(rel.updated);
            let files = [rel.staged, staged.clone()].concat();
            publish_then(&files, || manifest::commit(&shared.lake, st.version + 1, "ingest", add, removed))
        });
        if let Ok(v) = r {
            st.version = v;
            st.known_content.insert(landed.content_hash.clone(), shown.clone());
        }
        r
    };
    if let Err(e) = commit {
        // A failed publish or commit removed its files already; a failed release left the
        // staged files unpublished.
        discard(&staged);
        unclaim(&input_hash);
        return rejected(shown, Some(format), Some(input_hash), format!("commit failed: {e}"));
    }
    // The replaced input's files (its own, and shared ones rewritten above) are no longer
    // named by the manifest: delete them now rather than leave them for the next writer.
    if let Some(old) = hashed.replaces() {
        for o in &old.outputs {
            let _ = std::fs::remove_file(shared.lake.join(&o.path));
        }
    }
    tracing::info!(input = %shown, rows = landed.rows, quarantined = landed.quarantined, files = staged.len(), "input committed");
    InputReport {
        path: shown,
        status: match (&hashed.extends, hashed.replaces()) {
            (_, Some(_)) => InputStatus::Replaced,
            (Some(_), None) => InputStatus::Appended,
            (None, None) => InputStatus::Ingested,
        },
        format: Some(format),
        input_hash: Some(input_hash),
        rows: landed.rows,
        tables: landed.tables.clone(),
        quarantined: landed.quarantined,
        outputs: staged.len(),
        reason: None,
        truncated: landed.truncated,
        notes: landed.notes,
    }
}

/// An input's raw-bytes hash, known already or being computed on another thread.
struct LazyHash {
    /// Names staged files until the hash is known (the hash prefix itself when it is).
    tag: String,
    value: std::sync::OnceLock<Result<String, String>>,
    pending: Mutex<Option<std::sync::mpsc::Receiver<std::io::Result<String>>>>,
}

impl LazyHash {
    fn ready(hash: String) -> Self {
        let tag = hash[..16].to_string();
        LazyHash { tag, value: std::sync::OnceLock::from(Ok(hash)), pending: Mutex::new(None) }
    }

    fn pending(rx: std::sync::mpsc::Receiver<std::io::Result<String>>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tag =
            format!("staging{:05}x{:04}", std::process::id() % 100_000, NEXT.fetch_add(1, Ordering::Relaxed) % 10_000);
        LazyHash { tag, value: std::sync::OnceLock::new(), pending: Mutex::new(Some(rx)) }
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    /// The hash, waiting for the hashing thread if need be. Blocking.
    fn get(&self) -> Result<String, String> {
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

/// What one input produced, staged but not yet published.
struct Landed {
    /// Format id (`azure_llm`, …, `kineto`).
    format: String,
    /// The main table the rows went to.
    table: &'static str,
    /// Rows per table.
    tables: BTreeMap<String, u64>,
    notes: Vec<String>,
    content_hash: String,
    ends_with_newline: bool,
    workload: Option<String>,
    rows: u64,
    quarantined: u64,
    lines: u64,
    skipped_lines: u64,
    truncated: Option<String>,
    staged: Vec<StagedFile>,
}

enum Parsed {
    Rows(Box<RequestBatchBuilder>, Vec<Reject>),
    Reject(Reject),
    /// The stream broke before line `.0`: (line, message).
    Broken(u64, String),
}

/// Whether the file's content is a PyTorch profiler trace (sniffed from its first 64 KiB).
fn is_kineto(path: &Path) -> bool {
    let Ok((reader, _)) = open_decoded(path, |f| f) else { return false };
    let mut head = Vec::with_capacity(64 * 1024);
    if reader.take(64 * 1024).read_to_end(&mut head).is_err() && head.is_empty() {
        return false;
    }
    matches!(tapeout_formats::detect(&head), Err(FormatError::KinetoTrace))
}

async fn stage_kineto(shared: &Arc<Shared>, path: &Path, hashed: &Hashed) -> Result<Landed, LakeError> {
    let workload = shared.opts.workload.clone().unwrap_or_else(|| crate::kineto::workload_of(path));
    let (lake, p, w, hash, rules) = (
        shared.lake.clone(),
        path.to_path_buf(),
        workload.clone(),
        hashed.hash.clone(),
        shared.opts.categories.clone(),
    );
    let cap = shared.opts.memory_cap;
    let k = tokio::task::spawn_blocking(move || crate::kineto::stage_trace(&lake, &p, &w, &hash, &rules, cap))
        .await
        .map_err(LakeError::join)??;
    if let Some(progress) = &shared.opts.progress {
        progress.advance(hashed.size);
    }
    let mut notes: Vec<String> = k.summary.header.warnings.clone();
    let kernel_ns: i64 = k.summary.ns_by_category.iter().map(|(_, ns)| ns).sum();
    let other_ns: i64 = k.summary.other_kernels.iter().map(|(_, ns, _)| ns).sum();
    if other_ns > 0 {
        let top: Vec<String> = k
            .summary
            .other_kernels
            .iter()
            .take(5)
            .map(|(n, ns, c)| format!("{n} ({c}×, {:.3} ms)", *ns as f64 / 1e6))
            .collect();
        notes.push(format!(
            "{:.2}% of GPU time matched no category rule (`other`); largest: {}",
            100.0 * other_ns as f64 / kernel_ns.max(1) as f64,
            top.join("; ")
        ));
    }
    if k.summary.kernels + k.summary.memcpys + k.summary.memsets == 0 {
        notes.push("no GPU activity in this trace: 0 kernels".to_string());
    }
    Ok(Landed {
        format: crate::kineto::FORMAT_ID.to_string(),
        table: "kernels",
        rows: k.tables.values().sum(),
        tables: k.tables,
        notes,
        content_hash: k.content_hash,
        // A trace is one JSON document: if its file grows, the new document replaces it whole.
        ends_with_newline: false,
        workload: Some(workload),
        quarantined: k.quarantined,
        lines: k.summary.events,
        skipped_lines: 0,
        truncated: None,
        staged: k.staged,
    })
}

/// Hashes the decompressed bytes as they are read.
struct HashingReader<R> {
    inner: R,
    hasher: Option<blake3::Hasher>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Counts raw bytes read (before decompression) for the progress bar.
struct CountingReader<R> {
    inner: R,
    progress: Option<Arc<dyn ProgressSink>>,
    pending: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if self.pending >= 1 << 20 || n == 0 {
            if let Some(p) = &self.progress {
                p.advance(self.pending);
            }
            self.pending = 0;
        }
        Ok(n)
    }
}

async fn run_pipeline(
    shared: &Arc<Shared>,
    path: &Path,
    hashed: &Hashed,
    lazy: Arc<LazyHash>,
) -> Result<Landed, LakeError> {
    let opts = &shared.opts;
    let (piece_tx, mut piece_rx) = tokio::sync::mpsc::channel::<Piece>(4);
    let lines_read = Arc::new(AtomicU64::new(0));
    let reader = {
        let (path, lines_read) = (path.to_path_buf(), lines_read.clone());
        let (chunk, max_line, progress) = (opts.chunk_bytes, opts.max_line_bytes, opts.progress.clone());
        tokio::task::spawn_blocking(move || -> Result<(String, bool), LakeError> {
            let (decoded, compression) = open_decoded(&path, |f| CountingReader { inner: f, progress, pending: 0 })
                .map_err(|e| LakeError::io(&path, e))?;
            // A plain file's content hash is its raw hash, known already: don't hash it twice.
            let plain = compression == crate::source::Compression::None;
            let hashing = HashingReader { inner: decoded, hasher: (!plain).then(blake3::Hasher::new) };
            let mut chunker = Chunker::new(hashing, chunk, max_line);
            for piece in chunker.by_ref() {
                let next = match &piece {
                    Piece::Lines { first_line, data } => {
                        first_line + memchr::memchr_iter(b'\n', data).count() as u64 - u64::from(data.ends_with(b"\n"))
                    }
                    Piece::Oversized { line, .. } => *line,
                    Piece::Broken { next_line, .. } => next_line.saturating_sub(1),
                };
                lines_read.fetch_max(next, Ordering::Relaxed);
                if piece_tx.blocking_send(piece).is_err() {
                    break; // the consumer gave up (bad format); stop reading
                }
            }
            let ends_with_newline = chunker.ends_with_newline();
            let hash = match chunker.into_inner().hasher {
                Some(h) => h.finalize().to_hex().to_string(),
                None => String::new(), // plain: the raw hash, filled in by the caller
            };
            Ok((hash, ends_with_newline))
        })
    };

    // The first piece decides the format and, for CSV formats, holds the header.
    let first = piece_rx.recv().await;
    let (format, parser, first_piece) = match first {
        None => {
            let err = reader.await.map_err(LakeError::join)?;
            err?;
            return Err(LakeError::Format { path: path.to_path_buf(), source: FormatError::Empty });
        }
        Some(Piece::Lines { first_line, data }) => {
            let data = tapeout_formats::strip_bom(&data).to_vec();
            let format = match opts.format {
                Some(f) => f,
                None => tapeout_formats::detect(&data)
                    .map_err(|e| LakeError::Format { path: path.to_path_buf(), source: e })?,
            };
            let opts_p = ParseOptions { time_origin_ns: opts.time_origin_ns };
            if format.has_header() {
                // The header is the first non-blank line.
                let (mut start, mut header_line) = (0, first_line);
                let end = loop {
                    let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
                    if end >= data.len() || !data[start..end].trim_ascii().is_empty() {
                        break end;
                    }
                    start = end + 1;
                    header_line += 1;
                };
                let header = data[start..end].strip_suffix(b"\r").unwrap_or(&data[start..end]);
                let parser = RequestParser::new(format, Some(header), &opts_p)
                    .map_err(|e| LakeError::Format { path: path.to_path_buf(), source: e })?;
                let rest = data.get(end + 1..).unwrap_or(&[]).to_vec();
                (format, parser, Piece::Lines { first_line: header_line + 1, data: rest })
            } else {
                (
                    format,
                    RequestParser::new(format, None, &opts_p)
                        .map_err(|e| LakeError::Format { path: path.to_path_buf(), source: e })?,
                    Piece::Lines { first_line, data },
                )
            }
        }
        Some(Piece::Broken { message, .. }) => {
            return Err(LakeError::Input { path: path.to_path_buf(), message: format!("unreadable: {message}") });
        }
        Some(Piece::Oversized { len, .. }) => {
            return Err(LakeError::Input {
                path: path.to_path_buf(),
                message: format!("line 1 is {len} bytes long; not a trace this version reads"),
            });
        }
    };
    let parser = Arc::new(parser);

    // Writer thread: sequential, in file order.
    let (parsed_tx, mut parsed_rx) = tokio::sync::mpsc::channel::<Parsed>(2);
    let workload =
        opts.workload.clone().or_else(|| Some(tapeout_formats::workload_from_path(&path.display().to_string())));
    let writer = {
        let lake = shared.lake.clone();
        let file = path.display().to_string();
        let lazy = lazy.clone();
        let workload = workload.clone();
        let skip = hashed.skip_lines();
        let cap = opts.memory_cap;
        tokio::task::spawn_blocking(move || -> Result<(u64, u64, Option<String>, Vec<StagedFile>), LakeError> {
            let tag = lazy.tag();
            let mut data = TableWriter::new(&lake, tapeout_schema::table("requests"), tag);
            let mut quarantine = TableWriter::new(&lake, tapeout_schema::table("quarantine"), tag);
            let q_part = "table_name=requests";
            let mut tracker = PrefixTracker::new();
            let (mut rows, mut rejected, mut truncated) = (0u64, 0u64, None);
            let push_rejects = |q: &mut TableWriter, rejects: Vec<Reject>| -> Result<u64, LakeError> {
                let rejects: Vec<Reject> = rejects.into_iter().filter(|r| r.line > skip).collect();
                let n = rejects.len() as u64;
                if n > 0 {
                    // Rejected records carry the input's hash: wait for it if it is being computed.
                    let hash = lazy.get().map_err(|message| LakeError::Input { path: file.clone().into(), message })?;
                    q.push(q_part, quarantine_batch(&rejects, Some(format.id()), &file, &hash))?;
                }
                Ok(n)
            };
            while let Some(p) = parsed_rx.blocking_recv() {
                match p {
                    Parsed::Rows(builder, rejects) => {
                        let batch = tracker.apply(&builder.finish(workload.as_deref(), &file));
                        let batch = if skip > 0 { drop_lines_upto(&batch, skip)? } else { batch };
                        rows += batch.num_rows() as u64;
                        for (day, part) in split_by_day(batch)? {
                            data.push(&format!("source={}/date={}", format.id(), format_day(day)), part)?;
                        }
                        rejected += push_rejects(&mut quarantine, rejects)?;
                        if let Some(cap) = &cap {
                            cap.check(|| format!("after line {}", skip + rows + rejected))
                                .map_err(|message| LakeError::Input { path: file.clone().into(), message })?;
                        }
                    }
                    Parsed::Reject(r) => rejected += push_rejects(&mut quarantine, vec![r])?,
                    Parsed::Broken(line, message) => {
                        // One quarantine record marks the break, so counts show something is missing.
                        rejected += push_rejects(&mut quarantine, vec![Reject::new(line, None, message.clone(), b"")])?;
                        truncated = Some(message);
                    }
                }
            }
            let mut staged = data.finish()?;
            staged.extend(quarantine.finish()?);
            Ok((rows, rejected, truncated, staged))
        })
    };

    // Parse stage: chunks parsed in parallel, delivered in order.
    let pieces = futures::stream::once(async { first_piece })
        .chain(futures::stream::unfold(piece_rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) }));
    let max_line = opts.max_line_bytes;
    let mut parsed = std::pin::pin!(
        pieces
            .map(|piece| {
                let parser = parser.clone();
                async move {
                    match piece {
                        Piece::Lines { first_line, data } => {
                            let (b, r) = tokio::task::spawn_blocking(move || parser.parse_chunk(&data, first_line))
                                .await
                                .map_err(LakeError::join)?;
                            Ok::<Parsed, LakeError>(Parsed::Rows(Box::new(b), r))
                        }
                        Piece::Oversized { line, head, len } => Ok(Parsed::Reject(Reject::new(
                            line,
                            None,
                            format!("line is {len} bytes, longer than the {max_line}-byte limit"),
                            &head,
                        ))),
                        Piece::Broken { next_line, message, .. } => Ok(Parsed::Broken(
                            next_line,
                            format!("{message}; rows after line {} were not read", next_line.saturating_sub(1)),
                        )),
                    }
                }
            })
            .buffered(opts.parse_threads.max(1))
    );
    let mut pipeline_err = None;
    while let Some(p) = parsed.next().await {
        match p {
            Ok(p) => {
                if parsed_tx.send(p).await.is_err() {
                    break; // writer failed; its error is reported below
                }
            }
            Err(e) => {
                pipeline_err = Some(e);
                break;
            }
        }
    }
    drop(parsed_tx);
    let written = writer.await.map_err(LakeError::join)?;
    let read = reader.await.map_err(LakeError::join)?;
    let ((rows, quarantined, truncated, staged), (content_hash, ends_with_newline)) =
        match (written, pipeline_err, read) {
            (Ok(w), None, Ok(h)) => (w, h),
            (Ok((_, _, _, staged)), err, read) => {
                discard(&staged);
                return Err(err.or(read.err()).expect("one failed"));
            }
            (Err(e), _, _) => return Err(e),
        };
    if let Some(m) = &truncated {
        tracing::warn!(input = %path.display(), "{m}");
    }
    Ok(Landed {
        format: format.id().to_string(),
        table: "requests",
        tables: BTreeMap::from([("requests".to_string(), rows)]),
        notes: Vec::new(),
        content_hash,
        ends_with_newline,
        workload,
        rows,
        quarantined,
        lines: lines_read.load(Ordering::Relaxed),
        skipped_lines: hashed.skip_lines(),
        truncated,
        staged,
    })
}

fn drop_lines_upto(batch: &RecordBatch, skip: u64) -> Result<RecordBatch, LakeError> {
    let line = batch.column_by_name("line").expect("requests has line").as_primitive::<Int64Type>();
    let keep: BooleanArray = line.iter().map(|l| Some(l.is_some_and(|l| l as u64 > skip))).collect();
    filter_record_batch(batch, &keep).map_err(LakeError::arrow)
}

/// Splits a `requests` batch by the UTC day of `arrival_time`.
fn split_by_day(batch: RecordBatch) -> Result<Vec<(i32, RecordBatch)>, LakeError> {
    let ts = batch
        .column_by_name("arrival_time")
        .expect("requests has arrival_time")
        .as_primitive::<TimestampNanosecondType>();
    let values = ts.values();
    let Some(&first) = values.first() else {
        return Ok(vec![]);
    };
    let d0 = day_of(first);
    if values.iter().all(|&v| day_of(v) == d0) {
        return Ok(vec![(d0, batch)]);
    }
    let mut groups: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
    for (i, &v) in values.iter().enumerate() {
        groups.entry(day_of(v)).or_default().push(i as u32);
    }
    groups
        .into_iter()
        .map(|(d, idx)| {
            let idx = arrow::array::UInt32Array::from(idx);
            take_record_batch(&batch, &idx).map(|b| (d, b)).map_err(LakeError::arrow)
        })
        .collect()
}
