//! Upkeep that rewrites data files: [`compact`] merges the small files of a partition, and
//! [`release`] takes an input's rows out of files it shares with other inputs (for `forget` and
//! for an input that a grown file replaces).
//!
//! Shared files: a compacted file holds the rows of several inputs, each input's rows one
//! contiguous run (`OutputFile::row_offset` .. `+ rows`, manifest format 2). Ownership stays
//! per input, so `forget` and exactly-once ingest keep working: removing an input from a shared
//! file rewrites the file without its run and re-commits the other owners with their new
//! offsets, in the same commit that removes the input.
//!
//! Guarantees, and what they rely on (the same as ingest's; see `writer` and `manifest`):
//! - New files are written under a hidden temporary name, fsynced, then renamed (atomic
//!   within a directory) to a `part-c<hash>-0000.parquet` name derived from their sources, so
//!   no glob ever matches a partial file and a rerun after a crash recreates the same names.
//! - One manifest commit (atomic by `link(2)`) replaces every affected input's entry: before
//!   it, the newest version names only the old files; from it on, only the new ones. Every row
//!   is in exactly one committed file at every version.
//! - Replaced files are deleted only after that commit. A crash before the commit leaves the
//!   new files as orphans; after it, the old ones: the next writer (or `check --repair`)
//!   removes them, and no committed data is lost either way.
//! - Readers take no lock. A query that pinned the version before the commit and is still
//!   reading when the replaced files are deleted fails with a file-not-found error (never a
//!   mix of versions); running it again reads the new version.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatchReader;
use arrow::datatypes::Schema;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::LakeError;
use crate::fsutil::HashingFile;
use crate::manifest::{self, DataFile, InputEntry, OutputFile, Snapshot};
use crate::repair::{Leftovers, remove_leftovers};
use crate::writer::{StagedFile, discard, publish_then, writer_properties};

/// What [`compact`] merges.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Files smaller than this (bytes) are merged with the other small files of their
    /// partition.
    pub small_file_bytes: u64,
    /// A merged file takes sources until their sizes add up to this (bytes).
    pub target_file_bytes: u64,
    /// Only these tables (empty: every table, the quarantine included).
    pub tables: Vec<String>,
    /// Plan only: report what would be merged, write and remove nothing.
    pub dry_run: bool,
    /// Wait for another writer's lock instead of failing.
    pub wait: bool,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            small_file_bytes: 16 << 20,
            target_file_bytes: 128 << 20,
            tables: Vec::new(),
            dry_run: false,
            wait: true,
        }
    }
}

/// One file [`compact`] wrote (or, on a dry run, would write).
#[derive(Debug, Clone, Serialize)]
pub struct MergedFile {
    pub table: String,
    /// Path of the merged file, relative to the lake.
    pub path: String,
    /// The files it replaces, in the order their rows appear in it.
    pub sources: Vec<String>,
    /// Inputs owning rows of it.
    pub inputs: usize,
    pub rows: u64,
    pub bytes_before: u64,
    /// Size of the merged file (0 on a dry run).
    pub bytes_after: u64,
}

/// The result of [`compact`].
#[derive(Debug, Clone, Serialize)]
pub struct CompactReport {
    /// The manifest version after the run (unchanged when nothing was merged).
    pub manifest_version: u64,
    pub dry_run: bool,
    /// Data files before and after.
    pub files_before: usize,
    pub files_after: usize,
    /// Rows in the lake's data files (the same before and after, by construction and by check).
    pub rows: u64,
    pub merged: Vec<MergedFile>,
    /// What an interrupted earlier writer had left and this run removed first.
    pub leftovers: Leftovers,
}

/// Merges small files: per table, partition directory and schema version, the files below
/// `small_file_bytes` are concatenated (in path order, each file's rows kept in order) into
/// files of about `target_file_bytes`. Rows and their values are unchanged; one commit makes
/// the merge visible. Holds the lake lock.
pub fn compact(lake: &Path, opts: &CompactOptions) -> Result<CompactReport, LakeError> {
    let _lock = crate::lock::LakeLock::acquire(lake, opts.wait, |_| {})?;
    let snapshot = manifest::load(lake, None)?;
    for t in &opts.tables {
        tapeout_schema::registry()
            .table(t)
            .map_err(|e| LakeError::Input { path: lake.to_path_buf(), message: format!("--table {t}: {e}") })?;
    }
    let leftovers = if opts.dry_run { Leftovers::default() } else { remove_leftovers(lake, &snapshot)? };
    let files = snapshot.data_files();
    let rows = files.iter().map(|f| f.rows).sum();
    let bins = plan(&files, opts);
    let mut report = CompactReport {
        manifest_version: snapshot.version,
        dry_run: opts.dry_run,
        files_before: files.len(),
        files_after: files.len() - bins.iter().map(|b| b.len() - 1).sum::<usize>(),
        rows,
        merged: Vec::new(),
        leftovers,
    };
    let merged_name = |bin: &[&DataFile]| {
        let mut h = blake3::Hasher::new();
        for f in bin {
            h.update(f.path.as_bytes()).update(b"\n");
        }
        let dir = bin[0].path.rsplit_once('/').map_or("", |d| d.0);
        format!("{dir}/part-c{}-0000.parquet", &h.finalize().to_hex()[..16])
    };
    for bin in &bins {
        report.merged.push(MergedFile {
            table: bin[0].table.clone(),
            path: merged_name(bin),
            sources: bin.iter().map(|f| f.path.clone()).collect(),
            inputs: bin.iter().flat_map(|f| f.owners.iter().map(|o| &o.0)).collect::<BTreeSet<_>>().len(),
            rows: bin.iter().map(|f| f.rows).sum(),
            bytes_before: bin.iter().map(|f| f.bytes).sum(),
            bytes_after: 0,
        });
    }
    if opts.dry_run || bins.is_empty() {
        return Ok(report);
    }

    // Write every merged file; `moved` maps each source run to its place in the new file.
    let mut staged: Vec<StagedFile> = Vec::new();
    let mut moved: BTreeMap<(String, u64), (usize, u64)> = BTreeMap::new();
    for (bin, m) in bins.iter().zip(&mut report.merged) {
        let pieces: Vec<(&str, Vec<Range<u64>>)> =
            bin.iter().map(|f| (f.path.as_str(), std::iter::once(0..f.rows).collect())).collect();
        let written = write_pieces(lake, &m.path, &bin[0].table, bin[0].schema_version, &pieces);
        let s = match written {
            Ok(s) => s,
            Err(e) => {
                discard(&staged);
                return Err(e);
            }
        };
        let mut base = 0;
        for f in bin {
            for (_, offset, _) in &f.owners {
                moved.insert((f.path.clone(), *offset), (staged.len(), base + offset));
            }
            base += f.rows;
        }
        m.bytes_after = s.output.bytes;
        staged.push(s);
    }
    let affected: BTreeSet<&String> =
        bins.iter().flat_map(|b| b.iter().flat_map(|f| f.owners.iter().map(|o| &o.0))).collect();
    let adds: Vec<InputEntry> = affected.iter().map(|h| remap_entry(&snapshot.inputs[*h], &moved, &staged)).collect();
    let removes: Vec<String> = affected.iter().map(|h| (*h).clone()).collect();
    report.manifest_version =
        publish_then(&staged, || manifest::commit(lake, snapshot.version + 1, "compact", adds, removes))?;
    for f in bins.iter().flatten() {
        remove_if_present(&lake.join(&f.path))?;
    }
    tracing::info!(
        merged = report.merged.len(),
        files_before = report.files_before,
        files_after = report.files_after,
        "compacted"
    );
    Ok(report)
}

/// Groups the small files by (table, directory, schema version) and cuts each group, in path
/// order, into bins of about the target size; bins of one file are left alone.
fn plan<'a>(files: &'a [DataFile], opts: &CompactOptions) -> Vec<Vec<&'a DataFile>> {
    let mut groups: BTreeMap<(&str, &str, u32), Vec<&DataFile>> = BTreeMap::new();
    for f in files {
        if f.bytes >= opts.small_file_bytes || !(opts.tables.is_empty() || opts.tables.contains(&f.table)) {
            continue;
        }
        let dir = f.path.rsplit_once('/').map_or("", |d| d.0);
        groups.entry((f.table.as_str(), dir, f.schema_version)).or_default().push(f);
    }
    let mut bins = Vec::new();
    for (_, group) in groups {
        let mut bin: Vec<&DataFile> = Vec::new();
        let mut bytes = 0;
        for f in group {
            bin.push(f);
            bytes += f.bytes;
            if bytes >= opts.target_file_bytes {
                bins.push(std::mem::take(&mut bin));
                bytes = 0;
            }
        }
        bins.push(bin);
    }
    bins.retain(|b| b.len() >= 2);
    bins
}

/// An input's entry with its moved runs pointing into the new files.
fn remap_entry(entry: &InputEntry, moved: &BTreeMap<(String, u64), (usize, u64)>, staged: &[StagedFile]) -> InputEntry {
    let mut e = entry.clone();
    let mut outputs: Vec<OutputFile> = Vec::with_capacity(e.outputs.len());
    for o in &entry.outputs {
        let Some(&(i, offset)) = moved.get(&(o.path.clone(), o.row_offset.unwrap_or(0))) else {
            outputs.push(o.clone());
            continue;
        };
        let new = &staged[i].output;
        // Runs of one input that ended up next to each other in one file become one run.
        if let Some(last) = outputs.last_mut()
            && last.path == new.path
            && last.row_offset.unwrap_or(0) + last.rows == offset
        {
            last.rows += o.rows;
            continue;
        }
        outputs.push(OutputFile { rows: o.rows, row_offset: Some(offset), ..new.clone() });
    }
    for o in &mut outputs {
        if let Some(s) = staged.iter().find(|s| s.output.path == o.path)
            && o.row_offset == Some(0)
            && o.rows == s.output.rows
        {
            o.row_offset = None; // sole owner of the whole file
        }
    }
    e.outputs = outputs;
    e
}

fn remove_if_present(path: &Path) -> Result<(), LakeError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LakeError::io(path, e)),
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
            let _ = fs::remove_file(&tmp);
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

/// What it takes to remove some inputs from files they share with inputs that stay.
#[derive(Debug, Default)]
pub(crate) struct Release {
    /// Rewritten shared files, staged (publish them before the commit).
    pub staged: Vec<StagedFile>,
    /// The staying co-owners' entries with their runs moved into the rewritten files: the
    /// commit removes and re-adds them.
    pub updated: Vec<InputEntry>,
}

/// Rewrites every file that an input in `leaving` shares with an input that stays, keeping
/// only the staying inputs' rows. Files owned by leaving inputs alone are not touched (the
/// caller deletes them after its commit, as it does the shared files replaced here).
pub(crate) fn release(lake: &Path, snapshot: &Snapshot, leaving: &HashSet<String>) -> Result<Release, LakeError> {
    let mut out = Release::default();
    let mut moved: BTreeMap<(String, u64), (usize, u64)> = BTreeMap::new();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    for f in snapshot.data_files() {
        let leaves = f.owners.iter().any(|o| leaving.contains(&o.0));
        let stays: Vec<&(String, u64, u64)> = f.owners.iter().filter(|o| !leaving.contains(&o.0)).collect();
        if !leaves || stays.is_empty() {
            continue;
        }
        let mut h = blake3::Hasher::new();
        h.update(f.path.as_bytes());
        for o in &f.owners {
            if leaving.contains(&o.0) {
                h.update(b"\n-").update(o.0.as_bytes());
            }
        }
        let dir = f.path.rsplit_once('/').map_or("", |d| d.0);
        let rel = format!("{dir}/part-c{}-0000.parquet", &h.finalize().to_hex()[..16]);
        let ranges: Vec<Range<u64>> = stays.iter().map(|o| o.1..o.1 + o.2).collect();
        let s = match write_pieces(lake, &rel, &f.table, f.schema_version, &[(f.path.as_str(), ranges)]) {
            Ok(s) => s,
            Err(e) => {
                discard(&out.staged);
                return Err(e);
            }
        };
        let mut base = 0;
        for o in stays {
            moved.insert((f.path.clone(), o.1), (out.staged.len(), base));
            base += o.2;
            touched.insert(o.0.clone());
        }
        out.staged.push(s);
    }
    out.updated = touched.iter().map(|h| remap_entry(&snapshot.inputs[h], &moved, &out.staged)).collect();
    Ok(out)
}
