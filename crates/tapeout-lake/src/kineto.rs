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
//! Memory: the decompressed document plus the parser's linking state and one batch per table.
//! Not yet bounded for multi-GB traces (a memory map for plain files is the planned fix).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use tapeout_formats::kineto::{CategoryRules, KinetoBatch, TraceSummary, parse_kineto};

use crate::LakeError;
use crate::source::{Compression, open_decoded};
use crate::writer::{StagedFile, TableWriter, discard, quarantine_batch};

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

/// Reads, parses and stages one trace. Blocking: call from a blocking task.
pub fn stage_trace(
    lake: &Path,
    path: &Path,
    workload: &str,
    input_hash: &str,
    rules: &CategoryRules,
) -> Result<KinetoLanded, LakeError> {
    let (mut reader, compression) = open_decoded(path, |f| f).map_err(|e| LakeError::io(path, e))?;
    let mut doc = Vec::new();
    if let Err(e) = reader.read_to_end(&mut doc) {
        return Err(LakeError::Input {
            path: path.to_path_buf(),
            message: format!("unreadable after {} decompressed bytes: {e}", doc.len()),
        });
    }
    let content_hash =
        if compression == Compression::None { input_hash.to_string() } else { blake3::hash(&doc).to_hex().to_string() };
    let file = path.display().to_string();
    let tag = &input_hash[..16];
    let partition = format!("workload={}", partition_value(workload));
    let mut writers: BTreeMap<&'static str, TableWriter> = BTreeMap::new();
    let mut tables: BTreeMap<String, u64> = BTreeMap::new();
    let mut failure: Option<LakeError> = None;
    let mut push = |table: &'static str, batch: RecordBatch| -> Result<(), LakeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        *tables.entry(table.to_string()).or_default() += batch.num_rows() as u64;
        let w = writers.entry(table).or_insert_with(|| TableWriter::new(lake, tapeout_schema::table(table), tag));
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
    let parsed = parse_kineto(&doc, &file, rules, tapeout_formats::kineto::DEFAULT_BATCH_ROWS, &mut sink);
    drop(doc);
    let finish_all = |writers: BTreeMap<&'static str, TableWriter>| -> Result<Vec<StagedFile>, LakeError> {
        let mut staged = Vec::new();
        for (_, w) in writers {
            staged.extend(w.finish()?);
        }
        Ok(staged)
    };
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
