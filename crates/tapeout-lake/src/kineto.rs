//! Ingest of PyTorch profiler (Kineto) traces into the `kernels`, `collectives`, `ops`, `devices`
//! and `traces` tables.
//!
//! A Kineto trace is one JSON document, not a file of lines, so it takes its own path: the
//! decompressed document is read into memory and handed to the two-pass streaming parser of
//! `tapeout_formats::kineto`, whose batches go to one [`TableWriter`] per table, hive-partitioned
//! by `workload`. Malformed events go to the quarantine (`table_name=kernels`, `line` = the
//! event's 1-based index in `traceEvents`). Staging, publishing and the manifest commit are the
//! same as for request traces (see [`crate::ingest`]).
//!
//! Memory: the document is memory-mapped, never read onto the heap. A plain `.json` is mapped
//! as it is; a compressed one is first decompressed into `LAKE/_tmp/` (hashed on the way), mapped,
//! and unlinked at once (the mapping keeps the data; a crash mid-decompression leaves a `.tmp`
//! file that the next run or `tapeout check --repair` removes). The parser reports its byte
//! offset every few thousand events, and every [`RELEASE_EVERY`] bytes the mapping's pages are
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
use tapeout_formats::kineto::{CategoryRules, KinetoBatch, TraceSummary, parse_kineto_with_progress};

use crate::LakeError;
use crate::source::{Compression, open_decoded};
use crate::writer::{StagedFile, TableWriter, discard, quarantine_batch};

/// Bytes buffered per table before a write: Kineto rows arrive in event order (nearly sorted
/// by start), so a large sort buffer buys little, and `kernels` and `ops` rows are wide.
const WRITER_BUFFER_BYTES: usize = 16 << 20;
/// Parquet-writer memory per open Kineto table file before its row group ends.
const WRITER_ROW_GROUP_BYTES: usize = 16 << 20;

/// Format id of Kineto traces in the manifest and summaries.
pub const FORMAT_ID: &str = "kineto";

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

/// The default workload of a trace: the name of the folder holding it.
pub fn workload_of(path: &Path) -> String {
    path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or("default").to_string()
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

/// Folder for decompressed traces while they are parsed.
pub const TMP_DIR: &str = "_tmp";

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

/// Reads, parses and stages one trace. Blocking: call from a blocking task.
pub fn stage_trace(
    lake: &Path,
    path: &Path,
    workload: &str,
    input_hash: &str,
    rules: &CategoryRules,
    cap: Option<crate::memory::MemoryCap>,
) -> Result<KinetoLanded, LakeError> {
    let tag = &input_hash[..16];
    let doc = map_trace(lake, path, tag)?;
    let content_hash = doc.decompressed_hash.clone().unwrap_or_else(|| input_hash.to_string());
    let file = path.display().to_string();
    let partition = format!("workload={}", partition_value(workload));
    let mut writers: BTreeMap<&'static str, TableWriter> = BTreeMap::new();
    let mut tables: BTreeMap<String, u64> = BTreeMap::new();
    let mut failure: Option<LakeError> = None;
    let mut push = |table: &'static str, batch: RecordBatch| -> Result<(), LakeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        *tables.entry(table.to_string()).or_default() += batch.num_rows() as u64;
        let w = writers.entry(table).or_insert_with(|| {
            TableWriter::new(lake, tapeout_schema::table(table), tag)
                .with_memory_caps(WRITER_BUFFER_BYTES, WRITER_ROW_GROUP_BYTES)
        });
        w.push(&partition, batch)
    };
    let mut sink = |batch: KinetoBatch| -> Result<(), String> {
        let pushed = match batch {
            KinetoBatch::Kernels(b) => {
                collectives_of(&b).and_then(|c| push("collectives", c)).and_then(|()| push("kernels", b))
            }
            KinetoBatch::Ops(b) => push("ops", b),
            KinetoBatch::Devices(b) => push("devices", b),
        };
        pushed.map_err(|e| {
            let message = e.to_string();
            failure = Some(e);
            message
        })
    };
    let mut released_at = 0usize;
    let mut progress = |offset: usize| {
        // Offsets restart at 0 for the second pass.
        if offset < released_at || offset - released_at >= RELEASE_EVERY {
            doc.release();
            released_at = offset;
        }
        cap.map_or(Ok(()), |c| c.check(|| format!("at byte {offset} of the trace")))
    };
    let parsed = parse_kineto_with_progress(
        doc.bytes(),
        &file,
        rules,
        tapeout_formats::kineto::DEFAULT_BATCH_ROWS,
        &mut sink,
        &mut progress,
    );
    drop(doc);
    let finish_all = |writers: BTreeMap<&'static str, TableWriter>| -> Result<Vec<StagedFile>, LakeError> {
        let mut staged = Vec::new();
        for (_, w) in writers {
            staged.extend(w.finish()?);
        }
        Ok(staged)
    };
    // Small traces never reach a progress call: check once more at the end.
    let parsed = parsed.and_then(|r| {
        cap.map_or(Ok(()), |c| c.check(|| "after parsing the trace".into()))
            .map(|()| r)
            .map_err(tapeout_formats::kineto::KinetoError::Stopped)
    });
    let report = match parsed {
        Ok(r) => match trace_row(&r.summary, &file).and_then(|row| push("traces", row)) {
            Ok(()) => r,
            Err(e) => {
                if let Ok(staged) = finish_all(writers) {
                    discard(&staged);
                }
                return Err(e);
            }
        },
        Err(e) => {
            // Close what was written so its temporary files can be removed.
            if let Ok(staged) = finish_all(writers) {
                discard(&staged);
            }
            return Err(
                failure.unwrap_or_else(|| LakeError::Input { path: path.to_path_buf(), message: e.to_string() })
            );
        }
    };
    let mut staged = finish_all(writers)?;
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
    Ok(KinetoLanded { content_hash, tables, quarantined, staged, summary: report.summary })
}
