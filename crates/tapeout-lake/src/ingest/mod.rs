//! `tapeout ingest`: inputs → parse workers → partitioned, sorted Parquet → one commit per input.
//!
//! Inputs are processed `jobs` at a time. An input lands all at once: its files are staged under
//! temporary names, published by rename and named by a manifest commit (see [`crate::writer`] and
//! [`crate::commit`]). Every run takes the lake lock and first removes what an interrupted run
//! left ([`crate::commit::remove_leftovers`]), so each input lands exactly once.
//!
//! The parts:
//! - [`identity`]: an input's identity (raw-byte hash), duplicates and grown files.
//! - [`lines`]: the pipeline of the line formats, request traces and line-oriented telemetry
//!   (reader thread, parallel parse, writer thread).
//! - [`kineto`]: PyTorch profiler traces, parsed whole from a memory mapping.
//! - [`telemetry`]: device telemetry options, and Prometheus `query_range` JSON read whole.
//! - [`land`]: the commit of one input, replacing the input a grown file supersedes.
//!
//! This module holds the options, the run summary and [`ingest()`], which routes each input:
//! its content names its format ([`tapeout_formats::detect`]) unless `--format` forces one.
//! The choice is recorded (`InputEntry::format_forced`) and never sticky: the same content
//! under another choice replaces its earlier ingest ([`identity::same_format_choice`]).

mod identity;
pub mod kineto;
mod land;
mod lines;
pub mod telemetry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;
use tapeout_formats::SourceFormat;

use crate::LakeError;
use crate::commit::remove_leftovers;
use crate::lock::LakeLock;
use crate::manifest::{self, Snapshot};
use crate::source::{InputFile, resolve_inputs};
use identity::{CommitState, Hashed, LazyHash, could_repeat, hash_input, settled_extent};
pub use identity::{PendingTail, ReplaceCause};
pub use telemetry::TelemetrySettings;

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
    /// How long an uncompressed file that does not end with a newline must have been unchanged
    /// before its last line lands; until then that line is pending (reported, not landed) and
    /// the rest of the file lands. `None` (`--final`): the last line always lands.
    pub settle: Option<std::time::Duration>,
    /// What to do with a path whose bytes changed in place since they were ingested.
    pub on_change: OnChange,
    /// How device telemetry is read (sample times, time zone, metric map, CSV mapping).
    pub telemetry: TelemetrySettings,
}

/// The default settle time for a last line without a newline (see [`IngestOptions::settle`]).
pub const DEFAULT_SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

/// What `ingest` does with a path that holds other bytes than its last ingest, neither the
/// same bytes nor an extension of them (a log rewritten, truncated or rotated in place).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnChange {
    /// The new version lands and the path's earlier version (every part of it) leaves the
    /// lake, in one commit: the lake holds what the path holds now.
    #[default]
    Replace,
    /// The new version lands beside the earlier one (both stay; use for a path reused for
    /// new, different data, e.g. a log rotated by truncation).
    Keep,
    /// The input is rejected (exit 3) and the lake keeps the earlier version.
    Refuse,
}

impl OnChange {
    /// Parses `replace`, `keep` or `refuse`.
    pub fn from_id(s: &str) -> Option<Self> {
        match s {
            "replace" => Some(OnChange::Replace),
            "keep" => Some(OnChange::Keep),
            "refuse" => Some(OnChange::Refuse),
            _ => None,
        }
    }
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
            settle: Some(DEFAULT_SETTLE),
            on_change: OnChange::Replace,
            telemetry: TelemetrySettings::default(),
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
    /// Its earlier ingest was replaced by the whole new content, in one commit: a file that grew
    /// since it was ingested mid-line, or content ingested before under another format choice
    /// (see `replaced`).
    Replaced,
    /// Content already in the lake (same bytes, any name); nothing added.
    Skipped,
    /// Nothing new but a last line that is still pending (see `pending`); nothing added.
    Pending,
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
    /// Whether `format` was forced (`--format`) rather than detected.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub format_forced: bool,
    /// For status `replaced`: the format of the earlier ingest this input replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    /// For status `replaced`: why the earlier ingest was replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_because: Option<ReplaceCause>,
    /// A last line held back because the file may still be being written; it lands once the
    /// file has been unchanged for the settle time (or with `--final`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingTail>,
    /// A problem people must act on, e.g. every record quarantined under a forced format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
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
    /// Inputs with a last line pending (see [`InputReport::pending`]).
    pub pending: usize,
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

struct Shared {
    lake: PathBuf,
    snapshot: Snapshot,
    opts: IngestOptions,
    state: Mutex<CommitState>,
}

impl Shared {
    /// Forgets this run's claim on an input hash (its input did not land): a claim to replace
    /// the committed input of that hash, or else to land it.
    fn unclaim(&self, hash: &str) {
        let mut st = self.state.lock().expect("state lock");
        if !st.reformatted.remove(hash) {
            st.known.remove(hash);
        }
    }
}

/// Ingests `args` (files, directories, globs) into the lake at `lake`.
///
/// Returns `Err` only when nothing could be attempted (lake not writable, lock refused,
/// manifest unreadable); per-input failures are in the summary.
pub async fn ingest(lake: &Path, args: &[String], opts: IngestOptions) -> Result<IngestSummary, LakeError> {
    let started = Instant::now();
    let (files, problems) = resolve_inputs(args);
    crate::fault::create_dir_all(lake).map_err(|e| LakeError::io(lake, e))?;
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
    remove_leftovers(&lake, &snapshot)?;
    let total: u64 = files.iter().filter_map(|f| std::fs::metadata(&f.path).ok()).map(|m| m.len()).sum();
    if let Some(p) = &progress {
        p.start(files.len() + problems.len(), total);
    }
    let shared = Arc::new(Shared {
        lake: lake.clone(),
        state: Mutex::new(CommitState::new(&snapshot)),
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
        pending: details.iter().filter(|r| r.pending.is_some()).count(),
        rows: details.iter().map(|r| r.rows).sum(),
        quarantined: details.iter().map(|r| r.quarantined).sum(),
        rejected: count(InputStatus::Rejected),
        outputs: details.iter().map(|r| r.outputs).sum(),
        seconds: started.elapsed().as_secs_f64(),
        details,
    })
}

fn skipped(shared: &Shared, path: String, hash: String) -> InputReport {
    let entry = shared.snapshot.inputs.get(&hash);
    let reason = match entry {
        Some(e) if e.format_forced => format!(
            "same content already ingested from {} under forced format {} (another --format, or none, replaces it)",
            e.path, e.format
        ),
        Some(e) => format!("same content already ingested from {}", e.path),
        None => "same content as another input of this run".to_string(),
    };
    InputReport {
        format: entry.map(|e| e.format.clone()),
        format_forced: entry.is_some_and(|e| e.format_forced),
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
            format_forced: false,
            replaced: None,
            replaced_because: None,
            pending: None,
            warning: None,
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

/// The format the first 64 KiB of the file's (decompressed) content names, if any: one read
/// decides whether it is a whole JSON document (Kineto trace, query_range result).
fn sniff_format(path: &Path) -> Option<SourceFormat> {
    use std::io::Read;
    let (reader, _) = crate::source::open_decoded(path, |f| f).ok()?;
    let mut head = Vec::with_capacity(64 * 1024);
    if reader.take(64 * 1024).read_to_end(&mut head).is_err() && head.is_empty() {
        return None;
    }
    tapeout_formats::detect(&head).ok()
}

/// A report for an input whose only new bytes are a pending last line.
fn pending_only(shared: &Shared, path: String, hash: String, tail: PendingTail) -> InputReport {
    let reason = format!(
        "last line ({} bytes, from byte {}) pending: the file changed {:.0} s ago; it lands once the file is unchanged \
         for {:.0} s, or with --final",
        tail.bytes, tail.offset, tail.unchanged_for_seconds, tail.settle_seconds
    );
    let entry = shared.snapshot.inputs.get(&hash);
    InputReport {
        format: entry.map(|e| e.format.clone()),
        input_hash: (!hash.is_empty()).then_some(hash),
        pending: Some(tail),
        ..InputReport::nothing_landed(path, InputStatus::Pending, reason)
    }
}

async fn ingest_one(shared: &Arc<Shared>, input: InputFile) -> InputReport {
    let shown = input.path.display().to_string();
    let size = match std::fs::metadata(&input.path) {
        Ok(m) => m.len(),
        Err(e) => return rejected(shown, None, None, format!("cannot read: {e}")),
    };
    // Whole JSON documents (Kineto traces, Prometheus query_range results) or line formats.
    let (kineto, query_range) = match shared.opts.format {
        Some(forced) => (forced == SourceFormat::Kineto, forced == SourceFormat::PrometheusRange),
        None => {
            let sniffed = sniff_format(&input.path);
            (sniffed == Some(SourceFormat::Kineto), sniffed == Some(SourceFormat::PrometheusRange))
        }
    };
    let whole = kineto || query_range;
    // A last line without a newline waits for the file to settle (a JSON document is whole or
    // broken).
    let (size, pending) = match settled_extent(&input.path, size, shared.opts.settle.filter(|_| !whole)) {
        Ok(e) => e,
        Err(e) => return rejected(shown, None, None, format!("cannot read: {e}")),
    };
    if size == 0
        && let Some(tail) = pending
    {
        return pending_only(shared, shown, String::new(), tail);
    }
    // A new file (no input of its size or from its path in the lake) cannot be a duplicate or a
    // grown or changed file: hash it on a separate thread while it is parsed instead of before.
    let deferred = !kineto && !could_repeat(&input.path, size, &shared.snapshot);
    let (hashed, lazy) = if deferred {
        let (tx, rx) = std::sync::mpsc::channel();
        let (path, snap_shared) = (input.path.clone(), shared.clone());
        tokio::task::spawn_blocking(move || {
            let _ = tx.send(hash_input(&path, &snap_shared.snapshot, size).map(|h| h.hash));
        });
        (Hashed::deferred(size), Arc::new(LazyHash::pending(rx)))
    } else {
        let hashed = {
            let (path, shared) = (input.path.clone(), shared.clone());
            tokio::task::spawn_blocking(move || hash_input(&path, &shared.snapshot, size)).await
        };
        let mut hashed = match hashed {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return rejected(shown, None, None, format!("cannot read: {e}")),
            Err(e) => return rejected(shown, None, None, format!("internal error: {e}")),
        };
        if whole && let Some(e) = hashed.extends.take() {
            hashed.changed = Some(e); // a JSON document never grows by appending: it was rewritten
        }
        hashed.check_grown_mid_line(&shared.snapshot);
        hashed.check_format_choice(&shared.snapshot, shared.opts.format);
        if let Some(old) = hashed.changed.clone() {
            match shared.opts.on_change {
                OnChange::Replace => hashed.replace(&shared.snapshot, &old, ReplaceCause::PathChanged),
                OnChange::Keep => {}
                OnChange::Refuse => {
                    let rows: u64 = identity::with_parts(&shared.snapshot, &old).iter().map(|e| e.rows).sum();
                    let reason = format!(
                        "changed since it was ingested ({} bytes then, {} now, not an extension of them); the lake \
                         keeps the earlier version ({} rows); --on-change replace or keep to land it",
                        old.size, hashed.size, rows
                    );
                    return rejected(shown, Some(old.format), Some(hashed.hash), reason);
                }
            }
        }
        let claimed = {
            let mut st = shared.state.lock().expect("state lock");
            // Bytes committed under another format choice are claimed for replacing, once.
            // So are bytes a changed path held before, still in the lake as part of the
            // version they replace (a log truncated back to an earlier length).
            st.known.insert(hashed.hash.clone())
                || hashed.replaces.iter().any(|e| e.input_hash == hashed.hash)
                    && st.reformatted.insert(hashed.hash.clone())
        };
        if !claimed {
            if let Some(p) = &shared.opts.progress {
                p.advance(hashed.size);
            }
            if let Some(tail) = pending {
                return pending_only(shared, shown, hashed.hash, tail);
            }
            return skipped(shared, shown, hashed.hash);
        }
        let lazy = Arc::new(LazyHash::ready(hashed.hash.clone()));
        (hashed, lazy)
    };
    let result = if kineto {
        kineto::stage_kineto(shared, &input.path, &hashed).await
    } else if query_range {
        telemetry::stage_query_range(shared, &input.path, &hashed, lazy.clone()).await
    } else {
        lines::run_pipeline(shared, &input.path, &hashed, lazy.clone()).await
    };
    let landed = match result {
        Ok(l) => l,
        Err(e) => {
            if !deferred {
                shared.unclaim(&hashed.hash);
            }
            return rejected(shown, None, (!deferred).then(|| hashed.hash.clone()), e.reason());
        }
    };
    let mut report = land::commit_input(shared, shown, &hashed, &lazy, deferred, landed);
    release_freed_memory();
    if report.status == InputStatus::Skipped
        && let (Some(tail), Some(hash)) = (pending.clone(), report.input_hash.clone())
    {
        return pending_only(shared, report.path, hash, tail);
    }
    if matches!(report.status, InputStatus::Ingested | InputStatus::Appended | InputStatus::Replaced) {
        report.pending = pending;
    }
    report
}

/// Hands the memory an input's pipeline freed back to the system before the next input starts:
/// glibc keeps freed chunks in its arenas, and across many inputs (a fleet's telemetry files) the
/// resident set would grow with them (docs/performance.md, "Device telemetry").
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
