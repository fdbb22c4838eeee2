//! The pipeline of the line formats — request traces (→ `requests`) and line-oriented device
//! telemetry: Prometheus text, nvidia-smi and metric CSVs (→ `device_samples`) — one input's
//! lines → parse workers → partitioned, sorted Parquet, staged (memory is bounded by the channel
//! capacities, not the file size):
//!
//! ```text
//! reader thread ──Piece──▶ [bounded 4] ──▶ parse tasks (spawn_blocking, `parse_threads` at once,
//!   (decompress, cut       results kept in file order) ──Parsed──▶ [bounded 2] ──▶ writer thread
//!   whole records)                                                (cached_tokens in file order,
//!                                                                  partition, sort, Parquet)
//! ```
//!
//! The first piece decides the format ([`tapeout_formats::detect`]) and, through the formats
//! crate's header rule ([`tapeout_formats::SourceFormat::split_header`]), the CSV header; the
//! format decides the parser ([`LineParser`]) and the table. Both tables are partitioned by
//! source format and UTC day of their time column.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::{filter_record_batch, take_record_batch};
use arrow::datatypes::{Int64Type, TimestampNanosecondType};
use futures::StreamExt;
use tapeout_formats::telemetry::{SampleBatchBuilder, TelemetryParser};
use tapeout_formats::time::{day_of, format_day};
use tapeout_formats::{
    FormatError, ParseOptions, PrefixTracker, Reject, RequestBatchBuilder, RequestParser, SourceFormat,
    default_workload,
};

use super::identity::{Hashed, LazyHash};
use super::land::Landed;
use super::{ProgressSink, Shared};
use crate::LakeError;
use crate::source::{Chunker, Compression, Piece, open_decoded};
use crate::writer::{StagedFile, TableWriter, discard, quarantine_batch};

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

/// Buffered rows per partition before they are encoded, for `device_samples`.
const TELEMETRY_BUFFER_BYTES: usize = 4 << 20;
/// Encoded bytes of a `device_samples` row group before it is written.
const TELEMETRY_ROW_GROUP_BYTES: usize = 8 << 20;

/// The parser of a line format: every chunk is parsed on its own.
enum LineParser {
    Requests(RequestParser),
    Telemetry(TelemetryParser),
}

impl LineParser {
    fn parse_chunk(&self, data: &[u8], first_line: u64) -> (Rows, Vec<Reject>) {
        match self {
            LineParser::Requests(p) => {
                let (b, r) = p.parse_chunk(data, first_line);
                (Rows::Requests(Box::new(b)), r)
            }
            LineParser::Telemetry(p) => {
                let (b, r) = p.parse_chunk(data, first_line);
                (Rows::Samples(Box::new(b)), r)
            }
        }
    }
}

/// Rows of one chunk, not yet a batch.
enum Rows {
    Requests(Box<RequestBatchBuilder>),
    Samples(Box<SampleBatchBuilder>),
}

/// The table a format's rows go to, and the time column that names their day.
pub(super) fn table_of(format: SourceFormat) -> (&'static str, &'static str) {
    if format.is_telemetry() { ("device_samples", "time") } else { ("requests", "arrival_time") }
}

/// Parses and stages one request trace or line-oriented telemetry file (see the module docs).
pub(super) async fn run_pipeline(
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
        let forced = opts.format;
        // Exactly the bytes that were hashed (or are being hashed): not a pending last line,
        // nor what a writer appends meanwhile.
        let limit = hashed.size;
        tokio::task::spawn_blocking(move || -> Result<(String, bool), LakeError> {
            let (decoded, compression) =
                open_decoded(&path, |f| CountingReader { inner: f.take(limit), progress, pending: 0 })
                    .map_err(|e| LakeError::io(&path, e))?;
            // A plain file's content hash is its raw hash, known already: don't hash it twice.
            let plain = compression == Compression::None;
            let hashing = HashingReader { inner: decoded, hasher: (!plain).then(blake3::Hasher::new) };
            // CSV records may hold newlines in quoted fields: the chunker cuts between records.
            let mut chunker = Chunker::new(hashing, chunk, max_line).csv_if(move |head| {
                forced.or_else(|| tapeout_formats::detect(head).ok()).is_some_and(tapeout_formats::csv::is_csv)
            });
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
            let format_error = |e| LakeError::Format { path: path.to_path_buf(), source: e };
            let format = match opts.format {
                Some(f) => f,
                None => tapeout_formats::detect(&data).map_err(format_error)?,
            };
            // The formats crate's one header rule: BOM, then the header line, then records.
            let start = format.split_header(&data, first_line).map_err(format_error)?;
            let parser = if format.is_telemetry() {
                let topts = super::telemetry::options(opts, path).map_err(format_error)?;
                LineParser::Telemetry(TelemetryParser::new(format, start.header, &topts).map_err(format_error)?)
            } else if format.is_request() {
                let opts_p = ParseOptions { time_origin_ns: opts.time_origin_ns };
                LineParser::Requests(RequestParser::new(format, start.header, &opts_p).map_err(format_error)?)
            } else {
                return Err(LakeError::Input {
                    path: path.to_path_buf(),
                    message: format!("format {} is not a line format", format.id()),
                });
            };
            (format, parser, Piece::Lines { first_line: start.body_first_line, data: start.body.to_vec() })
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
    let (table, time_column) = table_of(format);
    // Telemetry names its workloads per sample (labels); `--workload` fills the samples without.
    let workload = match format.is_telemetry() {
        true => opts.workload.clone(),
        false => opts.workload.clone().or_else(|| Some(default_workload(format, path))),
    };
    let writer = {
        let lake = shared.lake.clone();
        let file = path.display().to_string();
        let lazy = lazy.clone();
        let workload = workload.clone();
        let skip = hashed.skip_lines();
        let cap = opts.memory_cap;
        tokio::task::spawn_blocking(move || -> Result<(u64, u64, Option<String>, Vec<StagedFile>), LakeError> {
            let tag = lazy.tag();
            let mut data = TableWriter::new(&lake, tapeout_schema::table(table), tag);
            if table == "device_samples" {
                // Telemetry rows are wide (host, UUID, model, labels…): cap buffers by bytes, as
                // the Kineto tables do, not only by the row counts sized for request rows.
                data = data.with_memory_caps(TELEMETRY_BUFFER_BYTES, TELEMETRY_ROW_GROUP_BYTES);
            }
            let mut quarantine = TableWriter::new(&lake, tapeout_schema::table("quarantine"), tag);
            let q_part = format!("table_name={table}");
            let mut tracker = PrefixTracker::new();
            let (mut rows, mut rejected, mut truncated) = (0u64, 0u64, None);
            let push_rejects = |q: &mut TableWriter, rejects: Vec<Reject>| -> Result<u64, LakeError> {
                let rejects: Vec<Reject> = rejects.into_iter().filter(|r| r.line > skip).collect();
                let n = rejects.len() as u64;
                if n > 0 {
                    // Rejected records carry the input's hash: wait for it if it is being computed.
                    let hash = lazy.get().map_err(|message| LakeError::Input { path: file.clone().into(), message })?;
                    q.push(&q_part, quarantine_batch(&rejects, Some(format.id()), &file, &hash))?;
                }
                Ok(n)
            };
            while let Some(p) = parsed_rx.blocking_recv() {
                match p {
                    Parsed::Rows(builder, rejects) => {
                        let batch = match builder {
                            Rows::Requests(b) => tracker.apply(&b.finish(workload.as_deref(), &file)),
                            Rows::Samples(b) => super::telemetry::fill_workload(b.finish(&file), workload.as_deref())?,
                        };
                        let batch = if skip > 0 { drop_lines_upto(&batch, skip)? } else { batch };
                        rows += batch.num_rows() as u64;
                        for (day, part) in split_by_day(batch, time_column)? {
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
                            Ok::<Parsed, LakeError>(Parsed::Rows(b, r))
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
        table,
        tables: BTreeMap::from([(table.to_string(), rows)]),
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

enum Parsed {
    Rows(Rows, Vec<Reject>),
    Reject(Reject),
    /// The stream broke before line `.0`: (line, message).
    Broken(u64, String),
}

fn drop_lines_upto(batch: &RecordBatch, skip: u64) -> Result<RecordBatch, LakeError> {
    let line = batch.column_by_name("line").expect("requests has line").as_primitive::<Int64Type>();
    let keep: BooleanArray = line.iter().map(|l| Some(l.is_some_and(|l| l as u64 > skip))).collect();
    filter_record_batch(batch, &keep).map_err(LakeError::arrow)
}

/// Splits a batch by the UTC day of its `time_column` (a UTC nanosecond timestamp).
pub(super) fn split_by_day(batch: RecordBatch, time_column: &str) -> Result<Vec<(i32, RecordBatch)>, LakeError> {
    let ts = batch
        .column_by_name(time_column)
        .expect("the table has its time column")
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
