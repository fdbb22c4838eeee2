//! Ingest of PyTorch profiler (Kineto) traces into the `kernels`, `collectives`, `ops`, `devices`
//! and `traces` tables.
//!
//! A Kineto trace is one JSON document, not a file of lines, so it takes its own path: the
//! decompressed document is read into memory and handed to the two-pass streaming parser of
//! `tapeout_formats::kineto`, whose batches go to one [`TableWriter`] per table, hive-partitioned
//! by `workload`. Malformed events go to the quarantine (`table_name=kernels`, `line` = the
//! event's 1-based index in `traceEvents`). Staging, publishing and the manifest commit are the
//! same as for request traces (see [`super::land`]). The default workload is the trace's folder
//! ([`tapeout_formats::default_workload`]).
//!
//! The parser's batches and progress reports go to a [`KinetoSink`] whose error is the lake's
//! own [`LakeError`]: a failed write stops the parse and comes back unchanged.
//!
//! Memory: the document is memory-mapped, never read onto the heap. A plain `.json` is mapped
//! as it is; a compressed one is first decompressed into `LAKE/_tmp/` (hashed on the way), mapped,
//! and unlinked at once (the mapping keeps the data; a crash mid-decompression leaves a `.tmp`
//! file that the next run or `tapeout check --repair` removes). The parser reports its byte
//! offset every few thousand events, and every [`RELEASE_EVERY`] bytes (16 MiB) the mapping's pages are
//! released (`MADV_DONTNEED`: the process's resident pages drop; touching one again reads it back
//! from the page cache). Resident memory is therefore the parser's linking state (a 40-byte entry
//! per CPU op and 32 bytes per runtime call, offsets into the document rather than text; only
//! thread, category and step names are owned copies), one batch per table and at most a window of
//! the mapping, whatever the file's size.
//!
//! Relies on: the trace file not being truncated while it is ingested (a mapped file that
//! shrinks raises SIGBUS; profiler traces are written once, then read).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use tapeout_formats::SourceFormat;
use tapeout_formats::kineto::{CategoryRules, EmitError, KinetoBatch, KinetoSink, TraceSummary, parse_kineto};

use super::Shared;
use super::identity::Hashed;
use super::land::Landed;
use crate::LakeError;
use crate::memory::MemoryCap;
pub use crate::source::TMP_DIR;
use crate::source::{Compression, open_decoded};
use crate::writer::{StagedFile, TableWriter, discard, quarantine_batch};

/// Bytes buffered per table before a write: Kineto rows arrive in event order (nearly sorted
/// by start), so a large sort buffer buys little, and `kernels` and `ops` rows are wide.
const WRITER_BUFFER_BYTES: usize = 16 << 20;
/// Parquet-writer memory per open Kineto table file before its row group ends.
const WRITER_ROW_GROUP_BYTES: usize = 16 << 20;

/// Format id of Kineto traces in the manifest and summaries.
pub const FORMAT_ID: &str = SourceFormat::Kineto.id();

/// What one trace produced, staged but not yet published.
pub struct KinetoLanded {
    /// BLAKE3 of the decompressed document.
    pub content_hash: String,
    /// Rows per table.
    pub tables: BTreeMap<String, u64>,
    pub quarantined: u64,
    pub staged: Vec<StagedFile>,
    pub summary: TraceSummary,
}

/// Escapes a value for a hive partition directory name (`key=value`).
pub fn partition_value(v: &str) -> String {
    v.chars().map(|c| if c == '/' || c == '\\' || c == '=' || c.is_control() { '_' } else { c }).collect()
}

/// The communication kernels of a `kernels` batch, in the `collectives` schema (every column
/// is the kernels column of the same name).
fn collectives_of(kernels: &RecordBatch) -> Result<RecordBatch, LakeError> {
    let category = kernels.column_by_name("category").expect("kernels has category").as_string::<i32>();
    let keep: BooleanArray = category.iter().map(|c| Some(c == Some("communication"))).collect();
    let comm = filter_record_batch(kernels, &keep)?;
    let schema = tapeout_schema::table("collectives").file_schema();
    let columns = schema
        .fields()
        .iter()
        .map(|f| comm.column_by_name(f.name()).cloned().expect("collectives columns are kernels columns"))
        .collect();
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The one-row `traces` batch of a trace.
fn trace_row(s: &TraceSummary, file: &str) -> Result<RecordBatch, LakeError> {
    let h = &s.header;
    let by_cat: serde_json::Map<String, serde_json::Value> =
        s.events_by_cat.iter().map(|(c, n)| (c.clone(), serde_json::Value::from(*n))).collect();
    let gpu_ns: i64 = s.ns_by_category.iter().map(|(_, ns)| ns).sum();
    let other_ns: i64 = s.other_kernels.iter().map(|(_, ns, _)| ns).sum();
    let i64s = |v: i64| -> ArrayRef { Arc::new(Int64Array::from(vec![v])) };
    let opt = |v: Option<i64>| -> ArrayRef { Arc::new(Int64Array::from(vec![v])) };
    let text = |v: Option<&str>| -> ArrayRef { Arc::new(StringArray::from(vec![v])) };
    let columns: Vec<ArrayRef> = vec![
        text(Some(file)),
        Arc::new(Int32Array::from(vec![h.rank])),
        opt(h.world_size),
        text(h.backend.as_deref()),
        text(h.schema_version.as_deref()),
        opt(h.base_time_ns),
        opt(s.span_start_ns),
        opt(s.span_end_ns),
        i64s(s.events as i64),
        text(Some(&serde_json::Value::Object(by_cat).to_string())),
        i64s(s.unknown_ph as i64),
        i64s(s.kernels as i64),
        i64s(s.memcpys as i64),
        i64s(s.memsets as i64),
        i64s(s.syncs as i64),
        i64s(gpu_ns),
        i64s(other_ns),
        i64s(s.profiler_steps.len() as i64),
        i64s(h.devices.len() as i64),
        i64s(s.rejects as i64),
    ];
    Ok(RecordBatch::try_new(tapeout_schema::table("traces").file_schema(), columns)?)
}

/// Bytes parsed between two releases of the mapping's resident pages.
pub const RELEASE_EVERY: usize = 16 << 20;

/// A trace document mapped into memory.
struct MappedTrace {
    map: Option<memmap2::Mmap>,
    /// BLAKE3 of the decompressed bytes, when they were decompressed.
    decompressed_hash: Option<String>,
}

impl MappedTrace {
    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }

    /// Drops the mapping's resident pages (they are read back from the page cache on use).
    fn release(&self) {
        if let Some(m) = &self.map {
            // SAFETY: the mapping is read-only and file-backed; MADV_DONTNEED on it only drops
            // page-table entries, and later reads fault the same file contents back in.
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }
}

fn map_file(file: &std::fs::File, path: &Path) -> Result<Option<memmap2::Mmap>, LakeError> {
    let len = file.metadata().map_err(|e| LakeError::io(path, e))?.len();
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: the file is opened read-only and profiler traces are not modified while ingested
    // (see the module docs); the map is only read.
    let map = unsafe { memmap2::Mmap::map(file) }.map_err(|e| LakeError::io(path, e))?;
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(Some(map))
}

/// Maps `path`, decompressing it into `LAKE/_tmp/` first when it is compressed.
fn map_trace(lake: &Path, path: &Path, tag: &str) -> Result<MappedTrace, LakeError> {
    let (mut reader, compression) = open_decoded(path, |f| f).map_err(|e| LakeError::io(path, e))?;
    if compression == Compression::None {
        drop(reader);
        let file = std::fs::File::open(path).map_err(|e| LakeError::io(path, e))?;
        return Ok(MappedTrace { map: map_file(&file, path)?, decompressed_hash: None });
    }
    let dir = lake.join(TMP_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| LakeError::io(&dir, e))?;
    let tmp: PathBuf = dir.join(format!("kineto-{tag}-{}.json.tmp", std::process::id()));
    let result = (|| {
        let mut out = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| LakeError::io(&tmp, e))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(LakeError::Input {
                        path: path.to_path_buf(),
                        message: format!("unreadable after {total} decompressed bytes: {e}"),
                    });
                }
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| LakeError::io(&tmp, e))?;
            total += n as u64;
        }
        out.flush().map_err(|e| LakeError::io(&tmp, e))?;
        let map = map_file(&out, &tmp)?;
        Ok(MappedTrace { map, decompressed_hash: Some(hasher.finalize().to_hex().to_string()) })
    })();
    // Unlinked at once: the mapping keeps the bytes, and nothing is left behind on success or
    // error.
    let _ = std::fs::remove_file(&tmp);
    result
}

/// The staged tables of one trace: a writer per table, rows per table.
struct Tables<'l> {
    lake: &'l Path,
    tag: &'l str,
    partition: String,
    writers: BTreeMap<&'static str, TableWriter>,
    rows: BTreeMap<String, u64>,
}

impl Tables<'_> {
    fn push(&mut self, table: &'static str, batch: RecordBatch) -> Result<(), LakeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        *self.rows.entry(table.to_string()).or_default() += batch.num_rows() as u64;
        let (lake, tag) = (self.lake, self.tag);
        let w = self.writers.entry(table).or_insert_with(|| {
            TableWriter::new(lake, tapeout_schema::table(table), tag)
                .with_memory_caps(WRITER_BUFFER_BYTES, WRITER_ROW_GROUP_BYTES)
        });
        w.push(&self.partition, batch)
    }

    /// Closes every writer; returns their staged files.
    fn finish(self) -> Result<Vec<StagedFile>, LakeError> {
        let mut staged = Vec::new();
        for (_, w) in self.writers {
            staged.extend(w.finish()?);
        }
        Ok(staged)
    }

    /// Closes every writer and removes what they wrote (best effort).
    fn discard(self) {
        if let Ok(staged) = self.finish() {
            discard(&staged);
        }
    }
}

/// Where the parser's batches and progress reports go while one trace is parsed.
struct TraceSink<'l, 'd> {
    tables: Tables<'l>,
    doc: &'d MappedTrace,
    released_at: usize,
    cap: Option<MemoryCap>,
    path: &'l Path,
}

/// The error of an input stopped by the memory cap (`why` says where).
fn stopped(path: &Path, why: String) -> LakeError {
    LakeError::Input { path: path.to_path_buf(), message: format!("stopped: {why}") }
}

impl KinetoSink for TraceSink<'_, '_> {
    type Error = LakeError;

    fn batch(&mut self, batch: KinetoBatch) -> Result<(), LakeError> {
        match batch {
            KinetoBatch::Kernels(b) => {
                self.tables.push("collectives", collectives_of(&b)?)?;
                self.tables.push("kernels", b)
            }
            KinetoBatch::Ops(b) => self.tables.push("ops", b),
            KinetoBatch::Devices(b) => self.tables.push("devices", b),
        }
    }

    fn progress(&mut self, offset: usize) -> Result<(), LakeError> {
        // Offsets restart at 0 for the second pass.
        if offset < self.released_at || offset - self.released_at >= RELEASE_EVERY {
            self.doc.release();
            self.released_at = offset;
        }
        self.cap.map_or(Ok(()), |c| {
            c.check(|| format!("at byte {offset} of the trace")).map_err(|why| stopped(self.path, why))
        })
    }
}

/// Reads, parses and stages one trace. Blocking: call from a blocking task.
pub fn stage_trace(
    lake: &Path,
    path: &Path,
    workload: &str,
    input_hash: &str,
    rules: &CategoryRules,
    cap: Option<MemoryCap>,
) -> Result<KinetoLanded, LakeError> {
    let tag = &input_hash[..16];
    let doc = map_trace(lake, path, tag)?;
    let content_hash = doc.decompressed_hash.clone().unwrap_or_else(|| input_hash.to_string());
    let file = path.display().to_string();
    let tables = Tables {
        lake,
        tag,
        partition: format!("workload={}", partition_value(workload)),
        writers: BTreeMap::new(),
        rows: BTreeMap::new(),
    };
    let mut sink = TraceSink { tables, doc: &doc, released_at: 0, cap, path };
    let parsed = parse_kineto(doc.bytes(), &file, rules, tapeout_formats::kineto::DEFAULT_BATCH_ROWS, &mut sink);
    let mut tables = sink.tables;
    drop(doc);
    // Small traces never reach a progress call: check once more at the end.
    let parsed = parsed.and_then(|r| {
        cap.map_or(Ok(()), |c| c.check(|| "after parsing the trace".into()))
            .map(|()| r)
            .map_err(|why| EmitError::Sink(stopped(path, why)))
    });
    let report = match parsed {
        Ok(r) => match trace_row(&r.summary, &file).and_then(|row| tables.push("traces", row)) {
            Ok(()) => r,
            Err(e) => {
                tables.discard();
                return Err(e);
            }
        },
        Err(e) => {
            // Close what was written so its temporary files can be removed.
            tables.discard();
            return Err(match e {
                EmitError::Sink(e) => e,
                EmitError::Kineto(e) => LakeError::Input { path: path.to_path_buf(), message: e.to_string() },
            });
        }
    };
    let rows = std::mem::take(&mut tables.rows);
    let mut staged = tables.finish()?;
    let quarantined = report.rejects.len() as u64;
    if quarantined > 0 {
        let mut q = TableWriter::new(lake, tapeout_schema::table("quarantine"), tag);
        let staged_q = q
            .push("table_name=kernels", quarantine_batch(&report.rejects, Some(FORMAT_ID), &file, input_hash))
            .and_then(|()| q.finish());
        match staged_q {
            Ok(s) => staged.extend(s),
            Err(e) => {
                discard(&staged);
                return Err(e);
            }
        }
    }
    Ok(KinetoLanded { content_hash, tables: rows, quarantined, staged, summary: report.summary })
}

/// Stages one trace on a blocking task; what it produced, with notes for people.
pub(super) async fn stage_kineto(shared: &Arc<Shared>, path: &Path, hashed: &Hashed) -> Result<Landed, LakeError> {
    let workload =
        shared.opts.workload.clone().unwrap_or_else(|| tapeout_formats::default_workload(SourceFormat::Kineto, path));
    let (lake, p, w, hash, rules) = (
        shared.lake.clone(),
        path.to_path_buf(),
        workload.clone(),
        hashed.hash.clone(),
        shared.opts.categories.clone(),
    );
    let cap = shared.opts.memory_cap;
    let k = tokio::task::spawn_blocking(move || stage_trace(&lake, &p, &w, &hash, &rules, cap))
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
        format: FORMAT_ID.to_string(),
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
