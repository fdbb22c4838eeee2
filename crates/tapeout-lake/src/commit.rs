//! The transaction layer every operation writes through (as delta-rs's `operations/` share one
//! transaction module): nothing an operation writes is part of the lake until a manifest commit
//! names it.
//!
//! - Recovery: a writer takes the lake lock ([`crate::lock`]) and first calls
//!   [`remove_leftovers`]: temporary files (`*.tmp`) and published `*.parquet` files that no
//!   manifest version names (a writer died between rename and commit). Both are removed only
//!   by a process holding the lock, so a writer in progress is never disturbed. Only files
//!   whose names are ones tapeout writes ([`tapeout_file`]) are removed: a foreign file placed
//!   in a table folder is reported and left alone. When a commit is missing or damaged, the
//!   uncommitted data files are kept too (that commit may name them).
//! - Publish, then commit: [`publish_then`] renames staged files ([`crate::writer`]) to their
//!   final names, then runs the manifest commit ([`crate::manifest::commit`], atomic by
//!   `link(2)`); when either fails, the files are removed again.
//! - Release of replaced files: [`release`] takes leaving inputs' rows out of files they share
//!   with inputs that stay (files a `compact` merged), staging the rewritten files and the
//!   staying owners' re-pointed entries for the same commit ([`remap_entry`]); after the commit
//!   the replaced files are deleted ([`remove_replaced`]).
//!
//! Shared files: a compacted file holds the rows of several inputs, each input's rows one
//! contiguous run (`OutputFile::row_offset` .. `+ rows`, manifest format 2). Ownership stays
//! per input, so `forget` and exactly-once ingest keep working: removing an input from a shared
//! file rewrites the file without its run and re-commits the other owners with their new
//! offsets, in the same commit that removes the input.
//!
//! Guarantees, and what they rely on (see `writer` and `manifest`):
//! - New files are written under a hidden temporary name, fsynced, then renamed (atomic
//!   within a directory) to a name derived from the input's hash or from the files they
//!   replace (`part-c<hash>-0000.parquet`), so no glob ever matches a partial file and a rerun
//!   after a crash recreates the same names.
//! - One manifest commit replaces every affected input's entry: before it, the newest version
//!   names only the old files; from it on, only the new ones. Every row is in exactly one
//!   committed file at every version.
//! - Replaced files are deleted only after that commit. A crash before the commit leaves the
//!   new files as orphans; after it, the old ones: the next writer (or `check --repair`)
//!   removes them, and no committed data is lost either way.
//! - Readers take no lock. A query that pinned the version before the commit and is still
//!   reading when the replaced files are deleted fails with a file-not-found error (never a
//!   mix of versions); running it again reads the new version.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::LakeError;
use crate::manifest::{InputEntry, MANIFEST_DIR, OutputFile, Snapshot};
use crate::writer::{StagedFile, discard, publish, write_pieces};

/// Publishes `files`, then runs `commit`; when either fails, the files are removed again (both
/// their temporary and final names), so a failed commit leaves nothing behind.
pub fn publish_then(files: &[StagedFile], commit: impl FnOnce() -> Result<u64, LakeError>) -> Result<u64, LakeError> {
    let r = publish(files).and_then(|()| commit());
    if r.is_err() {
        discard(files);
        for f in files {
            let _ = crate::fault::remove_file(&f.final_path);
        }
    }
    r
}

/// Deletes files a commit no longer names (`paths` relative to the lake, each once); a file
/// already gone is fine. Returns how many were deleted.
pub fn remove_replaced<'p>(lake: &Path, paths: impl IntoIterator<Item = &'p str>) -> Result<usize, LakeError> {
    let mut removed = 0;
    for rel in paths {
        let p = lake.join(rel);
        match crate::fault::remove_file(&p) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LakeError::io(&p, e)),
        }
    }
    Ok(removed)
}

/// What [`remove_leftovers`] removed, and what it left alone.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Leftovers {
    /// Temporary files removed.
    pub temp_files: Vec<String>,
    /// Published but uncommitted data files removed.
    pub orphans: Vec<String>,
    /// Uncommitted data files kept because a missing or damaged commit may name them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
    /// Files tapeout did not write (their names are not tapeout's): reported, never removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign: Vec<String>,
}

/// Kinds of file tapeout writes under a lake's table, manifest and `_tmp/` folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapeoutFile {
    /// A data file: `part-<16 hex>-<n>.parquet` or `part-c<16 hex>-<n>.parquet` (compacted).
    Data,
    /// A temporary file of a writer: `.part-….parquet.tmp`, `_manifest/.<version>.<pid>.json.tmp`,
    /// anything `*.tmp` under `_tmp/`.
    Temp,
    /// A commit or the lock file.
    Manifest,
}

/// Whether `name` is a data file name tapeout writes (`part-<tag>-<n>.parquet`).
fn is_data_name(name: &str) -> bool {
    let Some(stem) = name.strip_prefix("part-").and_then(|n| n.strip_suffix(".parquet")) else { return false };
    let Some((tag, seq)) = stem.rsplit_once('-') else { return false };
    let tag = tag.strip_prefix('c').filter(|t| t.len() == 16).unwrap_or(tag);
    let hex = tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit());
    let staging = tag
        .strip_prefix("staging")
        .and_then(|t| t.split_once('x'))
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()));
    (hex || staging) && !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit())
}

/// What tapeout file `rel` (relative to the lake, as [`lake_files`] gives it) is; `None` for a
/// file tapeout never writes there (a foreign file).
pub fn tapeout_file(rel: &str) -> Option<TapeoutFile> {
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    if dir == MANIFEST_DIR {
        return if crate::manifest::commit_version(name).is_some()
            || name == "lock"
            || name == crate::manifest::LATEST_HINT
        {
            Some(TapeoutFile::Manifest)
        } else if name.starts_with('.') && name.ends_with(".json.tmp") {
            Some(TapeoutFile::Temp)
        } else {
            None
        };
    }
    if dir == crate::source::TMP_DIR {
        return name.ends_with(".tmp").then_some(TapeoutFile::Temp);
    }
    if is_data_name(name) {
        return Some(TapeoutFile::Data);
    }
    let temp = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")).is_some_and(is_data_name);
    temp.then_some(TapeoutFile::Temp)
}

/// Every file under the lake's table directories and manifest directory, relative paths.
pub fn lake_files(lake: &Path) -> Result<Vec<String>, LakeError> {
    let mut out = Vec::new();
    let mut roots: Vec<PathBuf> = tapeout_schema::registry().tables().iter().map(|t| lake.join(&t.location)).collect();
    roots.push(lake.join(MANIFEST_DIR));
    roots.push(lake.join(crate::source::TMP_DIR));
    for root in roots {
        walk(&root, lake, &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, lake: &Path, out: &mut Vec<String>) -> Result<(), LakeError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LakeError::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| LakeError::io(dir, e))?;
        let p = e.path();
        let ft = e.file_type().map_err(|e| LakeError::io(&p, e))?;
        if ft.is_dir() {
            walk(&p, lake, out)?;
        } else if let Ok(rel) = p.strip_prefix(lake) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Removes temporary files and uncommitted data files. Call only while holding the lake lock,
/// with a snapshot whose commits are all intact ([`crate::manifest::load`]).
pub fn remove_leftovers(lake: &Path, snapshot: &Snapshot) -> Result<Leftovers, LakeError> {
    remove_leftovers_with(lake, snapshot, true)
}

/// [`remove_leftovers`]; with `orphans` false (some commit is missing or damaged, so the
/// snapshot may not name every committed file), uncommitted data files are kept and listed in
/// [`Leftovers::kept`]. Files whose names tapeout does not write are never removed: they are
/// listed in [`Leftovers::foreign`] and logged.
pub fn remove_leftovers_with(lake: &Path, snapshot: &Snapshot, orphans: bool) -> Result<Leftovers, LakeError> {
    if orphans {
        // A crash between a commit and its hint left the hint behind: bring it up to date.
        crate::manifest::refresh_latest_hint(lake, snapshot.version);
    }
    let committed: HashSet<&str> = snapshot.files().map(|f| f.path.as_str()).collect();
    let mut report = Leftovers::default();
    for rel in lake_files(lake)? {
        let kind = tapeout_file(&rel);
        let is_tmp = kind == Some(TapeoutFile::Temp);
        let is_orphan = kind == Some(TapeoutFile::Data) && !committed.contains(rel.as_str());
        if kind.is_none() {
            tracing::warn!(file = %rel, "not a file tapeout writes: left alone");
            report.foreign.push(rel);
        } else if is_orphan && !orphans {
            tracing::warn!(file = %rel, "uncommitted data file kept: a missing or damaged commit may name it");
            report.kept.push(rel);
        } else if is_tmp || is_orphan {
            let p = lake.join(&rel);
            crate::fault::remove_file(&p).map_err(|e| LakeError::io(&p, e))?;
            tracing::info!(file = %rel, "removed leftover of an interrupted run");
            if is_tmp { report.temp_files.push(rel) } else { report.orphans.push(rel) }
        }
    }
    Ok(report)
}

/// An input's entry with its moved runs pointing into the new files.
pub(crate) fn remap_entry(
    entry: &InputEntry,
    moved: &BTreeMap<(String, u64), (usize, u64)>,
    staged: &[StagedFile],
) -> InputEntry {
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
