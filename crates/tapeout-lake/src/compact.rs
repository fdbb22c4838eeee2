//! `tapeout compact`: merges the small files of a partition into larger files shared by
//! several inputs (each input's rows one contiguous run of the merged file; see
//! [`crate::commit`] for shared files and the guarantees of the commit that swaps them in).
//! Replaced files are deleted only after that commit.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use serde::Serialize;

use crate::LakeError;
use crate::commit::{Leftovers, publish_then, remap_entry, remove_leftovers, remove_replaced};
use crate::manifest::{self, DataFile, InputEntry};
use crate::writer::{StagedFile, discard, write_pieces};

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
    remove_replaced(lake, bins.iter().flatten().map(|f| f.path.as_str()))?;
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
