//! Staged Parquet writing: files are written under a temporary name, then published by rename.
//!
//! Guarantees this module relies on and provides:
//! - A file being written is named `.<name>.parquet.tmp`: hidden and without the `.parquet`
//!   extension, so no `*.parquet` glob (DuckDB, pyarrow, DataFusion listing) can match it.
//! - A file is fsynced before [`publish`] renames it to its final `part-….parquet` name.
//!   `rename(2)` within a directory is atomic, so a reader globbing the directory sees either
//!   no file or the complete file, never a prefix of one.
//! - Final names are derived from the input's hash (`input_hash`, BLAKE3 of its raw bytes; see
//!   [`name_after_input`]), so rerunning an interrupted
//!   ingest recreates the same names rather than adding new ones.
//!
//! Published but uncommitted files (a crash between [`publish`] and the manifest commit) are
//! complete but not yet part of the lake: tapeout's readers ignore them (they read only files a
//! manifest version names) and the next writer removes them (see [`crate::commit`], which
//! publishes and commits). [`write_pieces`] stages a file made of row ranges of existing lake
//! files (for `compact` and for releasing shared files).

use std::collections::BTreeMap;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, RecordBatchReader};
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::{Schema, TimestampNanosecondType};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use tapeout_schema::{SCHEMA_VERSION_KEY, TABLE_KEY, TableDef};

use crate::LakeError;
use crate::fsutil::{HashingFile, sync_dir};
use crate::manifest::OutputFile;

/// Rows buffered per partition before they are sorted and written.
pub const FLUSH_ROWS: usize = 256 * 1024;
/// Buffered bytes per partition before they are written, whatever the row count (quarantine
/// rows carry up to 4 KiB of raw text each).
pub const FLUSH_BYTES: usize = 32 << 20;
/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 1024 * 1024;
/// Memory an open file's row group may hold (the Parquet writer's own estimate) before the row
/// group is ended early: wide tables with long strings (`kernels`, `ops`) would otherwise hold
/// a million encoded rows per open file.
pub const ROW_GROUP_BYTES: usize = 32 << 20;
/// Rows after which a partition's file is closed and a new one started.
pub const MAX_FILE_ROWS: u64 = 16 * 1024 * 1024;
/// Rows buffered across all partitions before the fullest partition is written out, so many
/// small partitions cannot add up to unbounded memory.
pub const TOTAL_BUFFERED_ROWS: usize = 2 * FLUSH_ROWS;
/// Files kept open at once; the least recently written is closed beyond that (an open file
/// holds its current row group in memory).
pub const MAX_OPEN_FILES: usize = 2;

/// A file written under its temporary name, waiting for [`publish`].
#[derive(Debug, Clone)]
pub struct StagedFile {
    /// Temporary path.
    pub tmp: PathBuf,
    /// Final path.
    pub final_path: PathBuf,
    /// What the manifest will record.
    pub output: OutputFile,
}

struct OpenFile {
    writer: ArrowWriter<HashingFile>,
    tmp: PathBuf,
    rel: String,
    rows: u64,
    last_key: i64,
}

#[derive(Default)]
struct Partition {
    buffered: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
    open: Option<OpenFile>,
    /// Push counter at the last write to `open`, for closing the least recently written file.
    last_write: u64,
}

/// Writes one input's rows of one table into hive partitions, each file sorted by the table's
/// sort key (when it has one).
pub struct TableWriter {
    lake: PathBuf,
    table: &'static TableDef,
    tag: String,
    sort_idx: Option<usize>,
    props: WriterProperties,
    partitions: BTreeMap<String, Partition>,
    seq: u32,
    staged: Vec<StagedFile>,
    buffered_rows: usize,
    clock: u64,
    /// [`FLUSH_BYTES`] unless set by [`TableWriter::with_memory_caps`].
    flush_bytes: usize,
    /// [`ROW_GROUP_BYTES`] unless set by [`TableWriter::with_memory_caps`].
    row_group_bytes: usize,
}

impl TableWriter {
    /// A writer for `table`; `tag` (the input hash prefix) names the files.
    pub fn new(lake: &Path, table: &'static TableDef, tag: &str) -> Self {
        let sort_idx = table.sort_key.as_deref().and_then(|k| table.file_column_index(k));
        TableWriter {
            lake: lake.to_path_buf(),
            table,
            tag: tag.to_string(),
            sort_idx,
            props: writer_properties(table, table.version, true),
            partitions: BTreeMap::new(),
            seq: 0,
            staged: Vec::new(),
            buffered_rows: 0,
            clock: 0,
            flush_bytes: FLUSH_BYTES,
            row_group_bytes: ROW_GROUP_BYTES,
        }
    }

    /// Lower memory caps than the defaults: at most `flush_bytes` buffered per partition and
    /// `row_group_bytes` of Parquet-writer memory per open file (smaller row groups). For
    /// inputs whose rows arrive in sort order, where a large buffer buys nothing.
    pub fn with_memory_caps(mut self, flush_bytes: usize, row_group_bytes: usize) -> Self {
        self.flush_bytes = flush_bytes;
        self.row_group_bytes = row_group_bytes;
        self
    }

    /// Adds rows (in the table's file schema) to the partition directory `partition`
    /// (relative to the table's location, e.g. `source=azure_llm/date=2023-11-16`).
    pub fn push(&mut self, partition: &str, batch: RecordBatch) -> Result<(), LakeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.buffered_rows += batch.num_rows();
        let p = self.partitions.entry(partition.to_string()).or_default();
        p.rows += batch.num_rows();
        p.bytes += batch.get_array_memory_size();
        p.buffered.push(batch);
        if p.rows >= FLUSH_ROWS || p.bytes >= self.flush_bytes {
            self.flush(partition)?;
        }
        while self.buffered_rows > TOTAL_BUFFERED_ROWS {
            let fullest = self.partitions.iter().max_by_key(|(_, p)| p.rows).map(|(k, _)| k.clone());
            match fullest {
                Some(k) => self.flush(&k)?,
                None => break,
            }
        }
        Ok(())
    }

    fn key_range(&self, batch: &RecordBatch) -> Option<(i64, i64)> {
        let col = batch.column(self.sort_idx?);
        let ts = col.as_primitive_opt::<TimestampNanosecondType>()?;
        Some((*ts.values().first()?, *ts.values().last()?))
    }

    fn is_sorted(&self, batch: &RecordBatch) -> bool {
        let Some(i) = self.sort_idx else { return true };
        batch
            .column(i)
            .as_primitive_opt::<TimestampNanosecondType>()
            .is_some_and(|ts| ts.values().windows(2).all(|w| w[0] <= w[1]))
    }

    fn flush(&mut self, partition: &str) -> Result<(), LakeError> {
        let schema = self.table.file_schema();
        let p = self.partitions.get_mut(partition).expect("partition exists");
        if p.buffered.is_empty() {
            return Ok(());
        }
        let mut batches = std::mem::take(&mut p.buffered);
        self.buffered_rows -= p.rows;
        p.rows = 0;
        p.bytes = 0;
        // Already in order (the common case: traces are written in time order)? Then write the
        // batches as they are; otherwise merge and sort them.
        let mut in_order = batches.iter().all(|b| self.is_sorted(b));
        if in_order {
            let ranges: Vec<(i64, i64)> = batches.iter().filter_map(|b| self.key_range(b)).collect();
            in_order = ranges.windows(2).all(|w| w[0].1 <= w[1].0);
        }
        if !in_order {
            let mut batch = concat_batches(&schema, &batches).map_err(LakeError::arrow)?;
            let col = batch.column(self.sort_idx.expect("unsorted implies a sort key"));
            let idx = sort_to_indices(col, None, None).map_err(LakeError::arrow)?;
            batch = take_record_batch(&batch, &idx).map_err(LakeError::arrow)?;
            batches = vec![batch];
        }
        let first = batches.first().and_then(|b| self.key_range(b)).map_or(i64::MIN, |r| r.0);
        let last = batches.last().and_then(|b| self.key_range(b)).map_or(i64::MIN, |r| r.1);
        let p = self.partitions.get_mut(partition).expect("partition exists");
        // Append to the open file only while the file stays sorted and not too large.
        let roll = p.open.as_ref().is_some_and(|o| first < o.last_key || o.rows >= MAX_FILE_ROWS);
        if roll {
            let open = p.open.take().expect("checked");
            let staged = close(open, self.table, &self.lake)?;
            self.staged.push(staged);
        }
        let p = self.partitions.get_mut(partition).expect("partition exists");
        if p.open.is_none() {
            self.close_least_recent(MAX_OPEN_FILES - 1)?;
            let dir = self.lake.join(&self.table.location).join(partition);
            crate::fault::create_dir_all(&dir).map_err(|e| LakeError::io(&dir, e))?;
            let name = format!("part-{}-{:04}.parquet", self.tag, self.seq);
            self.seq += 1;
            let tmp = dir.join(format!(".{name}.tmp"));
            let file = HashingFile::create(&tmp).map_err(|e| LakeError::io(&tmp, e))?;
            let writer = ArrowWriter::try_new(file, schema, Some(self.props.clone()))
                .map_err(|e| LakeError::parquet(&tmp, e))?;
            let rel = format!("{}/{}/{}", self.table.location, partition, name);
            let p = self.partitions.get_mut(partition).expect("partition exists");
            p.open = Some(OpenFile { writer, tmp, rel, rows: 0, last_key: i64::MIN });
        }
        self.clock += 1;
        let p = self.partitions.get_mut(partition).expect("partition exists");
        p.last_write = self.clock;
        let open = p.open.as_mut().expect("just opened");
        for b in &batches {
            open.writer.write(b).map_err(|e| LakeError::parquet(&open.tmp, e))?;
            open.rows += b.num_rows() as u64;
            if open.writer.memory_size() >= self.row_group_bytes {
                open.writer.flush().map_err(|e| LakeError::parquet(&open.tmp, e))?;
            }
        }
        open.last_key = last;
        Ok(())
    }

    /// Closes the least recently written open files until at most `keep` stay open.
    fn close_least_recent(&mut self, keep: usize) -> Result<(), LakeError> {
        loop {
            let open: Vec<(&String, u64)> =
                self.partitions.iter().filter(|(_, p)| p.open.is_some()).map(|(k, p)| (k, p.last_write)).collect();
            if open.len() <= keep {
                return Ok(());
            }
            let oldest = open.iter().min_by_key(|(_, t)| *t).map(|(k, _)| (*k).clone()).expect("non-empty");
            let file = self.partitions.get_mut(&oldest).and_then(|p| p.open.take()).expect("open");
            let staged = close(file, self.table, &self.lake)?;
            self.staged.push(staged);
        }
    }

    /// Flushes every partition and closes every file; returns the staged files.
    pub fn finish(mut self) -> Result<Vec<StagedFile>, LakeError> {
        let keys: Vec<String> = self.partitions.keys().cloned().collect();
        for k in &keys {
            self.flush(k)?;
        }
        for (_, p) in std::mem::take(&mut self.partitions) {
            if let Some(open) = p.open {
                let staged = close(open, self.table, &self.lake)?;
                self.staged.push(staged);
            }
        }
        Ok(self.staged)
    }
}

/// The Parquet settings of every lake file of `table`: zstd, page statistics, delta encoding
/// for near-arithmetic columns, the table name and `schema_version` in the key-value metadata.
/// `sorted` declares the table's sort key as the file's sorting column (true for files an
/// ingest wrote; a compacted file is a concatenation of sorted runs, so it claims no order).
pub(crate) fn writer_properties(table: &TableDef, schema_version: u32, sorted: bool) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid level")))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("tapeout {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(TABLE_KEY.to_string(), table.name.clone()),
            KeyValue::new(SCHEMA_VERSION_KEY.to_string(), schema_version.to_string()),
        ]));
    // Sorted timestamps and line numbers are near-arithmetic sequences: delta encoding stores
    // them in a few bits per value, where a dictionary would only be built and thrown away.
    for name in table.sort_key.iter().map(String::as_str).chain(["line", "event_index", "start_ns"]) {
        if table.file_column_index(name).is_some() {
            let col = ColumnPath::from(name);
            props = props
                .set_column_dictionary_enabled(col.clone(), false)
                .set_column_encoding(col, Encoding::DELTA_BINARY_PACKED);
        }
    }
    if sorted && let Some(i) = table.sort_key.as_deref().and_then(|k| table.file_column_index(k)) {
        props = props.set_sorting_columns(Some(vec![SortingColumn {
            column_idx: i as i32,
            descending: false,
            nulls_first: false,
        }]));
    }
    props.build()
}

fn close(open: OpenFile, table: &TableDef, lake: &Path) -> Result<StagedFile, LakeError> {
    let file = open.writer.into_inner().map_err(|e| LakeError::parquet(&open.tmp, e))?;
    let (bytes, blake3) = file.finish().map_err(|e| LakeError::io(&open.tmp, e))?;
    Ok(StagedFile {
        final_path: lake.join(&open.rel),
        tmp: open.tmp,
        output: OutputFile {
            path: open.rel,
            table: table.name.clone(),
            rows: open.rows,
            bytes,
            blake3,
            schema_version: table.version,
            row_offset: None,
        },
    })
}

/// Gives staged files their final names, `part-<input hash prefix>-<n>.parquet`, in place of
/// the staging tag the writer was created with (an input's hash may be known only once it has
/// been read in full). A no-op when the tag was the hash prefix already.
pub fn name_after_input(files: &mut [StagedFile], staging_tag: &str, input_tag: &str) {
    if staging_tag == input_tag {
        return;
    }
    let (from, to) = (format!("/part-{staging_tag}-"), format!("/part-{input_tag}-"));
    for f in files {
        f.output.path = f.output.path.replacen(&from, &to, 1);
        f.final_path = PathBuf::from(f.final_path.to_string_lossy().replacen(&from, &to, 1));
    }
}

/// Renames staged files to their final names and syncs their directories.
pub fn publish(files: &[StagedFile]) -> Result<(), LakeError> {
    for f in files {
        crate::fault::rename(&f.tmp, &f.final_path).map_err(|e| LakeError::io(&f.final_path, e))?;
    }
    let mut dirs: Vec<&Path> = files.iter().filter_map(|f| f.final_path.parent()).collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        sync_dir(d);
    }
    Ok(())
}

/// Removes staged files that will not be published (best effort).
pub fn discard(files: &[StagedFile]) {
    for f in files {
        let _ = crate::fault::remove_file(&f.tmp);
    }
}

/// Writes the given row ranges of the given lake files, in order, into one new staged file
/// at `rel`. Every source must have the same Arrow schema.
pub(crate) fn write_pieces(
    lake: &Path,
    rel: &str,
    table_name: &str,
    schema_version: u32,
    pieces: &[(&str, Vec<Range<u64>>)],
) -> Result<StagedFile, LakeError> {
    let table = tapeout_schema::registry()
        .table(table_name)
        .map_err(|e| LakeError::Input { path: lake.join(rel), message: e.to_string() })?;
    let final_path = lake.join(rel);
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let tmp = lake.join(dir).join(format!(".{name}.tmp"));
    let props = writer_properties(table, schema_version, false);
    let mut writer: Option<(ArrowWriter<HashingFile>, Arc<Schema>)> = None;
    let mut rows = 0u64;
    let result = (|| {
        for (src, ranges) in pieces {
            let path = lake.join(src);
            let file = fs::File::open(&path).map_err(|e| LakeError::io(&path, e))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(64 * 1024).build())
                .map_err(|e| LakeError::parquet(&path, e))?;
            // File-level key-value metadata comes back as schema metadata: drop it, the
            // writer properties set the table and schema version afresh.
            let schema = Arc::new(Schema::new(reader.schema().fields().clone()));
            if writer.is_none() {
                let out = HashingFile::create(&tmp).map_err(|e| LakeError::io(&tmp, e))?;
                let w = ArrowWriter::try_new(out, schema.clone(), Some(props.clone()))
                    .map_err(|e| LakeError::parquet(&tmp, e))?;
                writer = Some((w, schema.clone()));
            }
            let (w, want) = writer.as_mut().expect("created above");
            if want.fields() != schema.fields() {
                return Err(LakeError::Input {
                    path,
                    message: format!("its columns differ from {}'s; files of one schema version only", pieces[0].0),
                });
            }
            let mut pos = 0u64;
            for batch in reader {
                let batch = batch.map_err(LakeError::arrow)?;
                let end = pos + batch.num_rows() as u64;
                for r in ranges {
                    let (from, to) = (r.start.max(pos), r.end.min(end));
                    if from < to {
                        let part = batch.slice((from - pos) as usize, (to - from) as usize);
                        let part = part.with_schema(want.clone()).map_err(LakeError::arrow)?;
                        w.write(&part).map_err(|e| LakeError::parquet(&tmp, e))?;
                        rows += to - from;
                    }
                }
                pos = end;
            }
            if let Some(r) = ranges.iter().find(|r| r.end > pos) {
                return Err(LakeError::Input {
                    path,
                    message: format!("has {pos} rows, the manifest gives an input rows up to {}", r.end),
                });
            }
        }
        let (w, _) = writer
            .take()
            .ok_or_else(|| LakeError::Input { path: final_path.clone(), message: "nothing to write".into() })?;
        let out = w.into_inner().map_err(|e| LakeError::parquet(&tmp, e))?;
        out.finish().map_err(|e| LakeError::io(&tmp, e))
    })();
    let (bytes, blake3) = match result {
        Ok(done) => done,
        Err(e) => {
            drop(writer);
            let _ = crate::fault::remove_file(&tmp);
            return Err(e);
        }
    };
    Ok(StagedFile {
        tmp,
        final_path,
        output: OutputFile {
            path: rel.to_string(),
            table: table_name.to_string(),
            rows,
            bytes,
            blake3,
            schema_version,
            row_offset: None,
        },
    })
}

/// Builds a one-row-per-reject `quarantine` batch.
pub fn quarantine_batch(
    rejects: &[tapeout_formats::Reject],
    source: Option<&str>,
    file: &str,
    input_hash: &str,
) -> RecordBatch {
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    let t = tapeout_schema::table("quarantine");
    let n = rejects.len();
    let rep = |v: &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v, n))) };
    let columns: Vec<ArrayRef> = vec![
        match source {
            Some(s) => rep(s),
            None => Arc::new(StringArray::new_null(n)),
        },
        rep(file),
        Arc::new(Int64Array::from_iter_values(rejects.iter().map(|r| r.line as i64))),
        Arc::new(StringArray::from_iter(rejects.iter().map(|r| r.field.as_deref()))),
        Arc::new(StringArray::from_iter_values(rejects.iter().map(|r| r.reason.as_str()))),
        Arc::new(StringArray::from_iter_values(rejects.iter().map(|r| r.raw.as_str()))),
        rep(input_hash),
    ];
    RecordBatch::try_new(t.file_schema(), columns).expect("quarantine columns match the schema")
}
