//! Device telemetry into `device_samples`.
//!
//! The line formats (Prometheus text exposition, nvidia-smi CSV, mapped metric CSV) go through
//! the line pipeline ([`super::lines`]) like request traces, with the parser options made here
//! ([`options`]); a Prometheus `query_range` JSON result is one document, read whole
//! ([`stage_query_range`]).
//!
//! Time of samples without one (Prometheus text without timestamps): `--time`, else the file's
//! modification time — one file is then one scrape.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use tapeout_formats::telemetry::{CsvMapping, MetricMap, TelemetryOptions, parse_query_range};
use tapeout_formats::{FormatError, SourceFormat};

use super::Shared;
use super::identity::{Hashed, LazyHash};
use super::land::Landed;
use super::lines::split_by_day;
use crate::LakeError;
use crate::source::open_decoded;
use crate::writer::{TableWriter, quarantine_batch};

/// How `ingest` reads device telemetry.
#[derive(Clone, Debug)]
pub struct TelemetrySettings {
    /// Time of samples that carry none (Prometheus text without timestamps), ns since the Unix
    /// epoch (`--time`); `None`: the file's modification time.
    pub time_ns: Option<i64>,
    /// Offset east of UTC, seconds, of timestamps without a zone (nvidia-smi; `--timezone`).
    pub utc_offset_s: i32,
    /// Source metric → canonical metric, unit and kind (default: pipelines/telemetry/metrics.toml).
    pub metrics: Arc<MetricMap>,
    /// How to read a metric CSV (`--mapping`); required for `--format metric_csv`.
    pub mapping: Option<CsvMapping>,
    /// The label that names a sample's workload.
    pub workload_label: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            time_ns: None,
            utc_offset_s: 0,
            metrics: MetricMap::builtin(),
            mapping: None,
            workload_label: "workload".into(),
        }
    }
}

/// Parser options for one input: the settings, with the file's modification time as the time
/// of samples that carry none unless `--time` gave one.
pub(super) fn options(opts: &super::IngestOptions, path: &Path) -> Result<TelemetryOptions, FormatError> {
    let t = &opts.telemetry;
    let default_time_ns = match t.time_ns {
        Some(ns) => ns,
        None => std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64),
    };
    Ok(TelemetryOptions {
        default_time_ns,
        utc_offset_s: t.utc_offset_s,
        metrics: t.metrics.clone(),
        mapping: t.mapping.clone(),
        workload_label: t.workload_label.clone(),
    })
}

/// Fills the `workload` of samples without one with `workload` (`--workload`), if given.
pub(super) fn fill_workload(batch: RecordBatch, workload: Option<&str>) -> Result<RecordBatch, LakeError> {
    let Some(w) = workload else { return Ok(batch) };
    let Some(i) = batch.schema().index_of("workload").ok() else { return Ok(batch) };
    let col = batch.column(i).as_string::<i32>();
    if col.null_count() == 0 {
        return Ok(batch);
    }
    let filled: StringArray = col.iter().map(|v| Some(v.unwrap_or(w))).collect();
    let mut columns = batch.columns().to_vec();
    columns[i] = Arc::new(filled);
    RecordBatch::try_new(batch.schema(), columns).map_err(LakeError::arrow)
}

/// The largest `query_range` document read (decompressed): a Prometheus server caps a result
/// far below this (11,000 points per series by default).
const MAX_QUERY_RANGE_BYTES: u64 = 2 << 30;

/// Reads, parses and stages one `query_range` JSON document.
pub(super) async fn stage_query_range(
    shared: &Arc<Shared>,
    path: &Path,
    hashed: &Hashed,
    lazy: Arc<LazyHash>,
) -> Result<Landed, LakeError> {
    let (lake, p, opts) = (shared.lake.clone(), path.to_path_buf(), shared.opts.clone());
    let size = hashed.size;
    let landed = tokio::task::spawn_blocking(move || -> Result<Landed, LakeError> {
        let (r, _) = open_decoded(&p, |f| f.take(size)).map_err(|e| LakeError::io(&p, e))?;
        let mut doc = Vec::new();
        r.take(MAX_QUERY_RANGE_BYTES + 1).read_to_end(&mut doc).map_err(|e| LakeError::Input {
            path: p.clone(),
            message: format!("unreadable after {} decompressed bytes: {e}", doc.len()),
        })?;
        if doc.len() as u64 > MAX_QUERY_RANGE_BYTES {
            return Err(LakeError::Input {
                path: p.clone(),
                message: format!("a query_range result over {MAX_QUERY_RANGE_BYTES} bytes; split the query"),
            });
        }
        let content_hash = blake3::hash(&doc).to_hex().to_string();
        let topts = options(&opts, &p).map_err(|e| LakeError::Format { path: p.clone(), source: e })?;
        let (builder, rejects) =
            parse_query_range(&doc, &topts).map_err(|e| LakeError::Format { path: p.clone(), source: e })?;
        let lines = memchr::memchr_iter(b'\n', &doc).count() as u64 + u64::from(!doc.ends_with(b"\n"));
        drop(doc);
        let file = p.display().to_string();
        let batch = fill_workload(builder.finish(&file), opts.workload.as_deref())?;
        let format = SourceFormat::PrometheusRange.id();
        let tag = lazy.tag();
        let mut data = TableWriter::new(&lake, tapeout_schema::table("device_samples"), tag);
        let rows = batch.num_rows() as u64;
        for (day, part) in split_by_day(batch, "time")? {
            data.push(&format!("source={format}/date={}", tapeout_formats::time::format_day(day)), part)?;
        }
        let mut quarantine = TableWriter::new(&lake, tapeout_schema::table("quarantine"), tag);
        let quarantined = rejects.len() as u64;
        if !rejects.is_empty() {
            let hash = lazy.get().map_err(|message| LakeError::Input { path: p.clone(), message })?;
            quarantine.push("table_name=device_samples", quarantine_batch(&rejects, Some(format), &file, &hash))?;
        }
        let mut staged = data.finish()?;
        staged.extend(quarantine.finish()?);
        Ok(Landed {
            format: format.to_string(),
            table: "device_samples",
            tables: BTreeMap::from([("device_samples".to_string(), rows)]),
            notes: Vec::new(),
            content_hash,
            // One JSON document: if the file grows, the new document replaces it whole.
            ends_with_newline: false,
            workload: opts.workload.clone(),
            rows,
            quarantined,
            lines,
            skipped_lines: 0,
            truncated: None,
            staged,
        })
    })
    .await
    .map_err(LakeError::join)??;
    if let Some(progress) = &shared.opts.progress {
        progress.advance(hashed.size);
    }
    Ok(landed)
}
