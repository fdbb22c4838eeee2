//! Upkeep: removing what an interrupted writer left, and checking the lake against its manifest.
//!
//! Leftovers are (a) temporary files (`*.tmp`) and (b) published `*.parquet` files that no
//! manifest version names (a writer died between rename and commit). Both are removed only by
//! a process holding the lake lock, so an ingest in progress is never disturbed. The directories
//! of tapeout's tables are tapeout's own: foreign Parquet files placed there count as leftovers.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::LakeError;
use crate::manifest::{MANIFEST_DIR, Snapshot};

/// What [`remove_leftovers`] removed.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Leftovers {
    /// Temporary files removed.
    pub temp_files: Vec<String>,
    /// Published but uncommitted data files removed.
    pub orphans: Vec<String>,
}

/// Every file under the lake's table directories and manifest directory, relative paths.
pub fn lake_files(lake: &Path) -> Result<Vec<String>, LakeError> {
    let mut out = Vec::new();
    let mut roots: Vec<PathBuf> = tapeout_schema::registry().tables().iter().map(|t| lake.join(&t.location)).collect();
    roots.push(lake.join(MANIFEST_DIR));
    roots.push(lake.join(crate::kineto::TMP_DIR));
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

/// Removes temporary files and uncommitted data files. Call only while holding the lake lock.
pub fn remove_leftovers(lake: &Path, snapshot: &Snapshot) -> Result<Leftovers, LakeError> {
    let committed: HashSet<&str> = snapshot.files().map(|f| f.path.as_str()).collect();
    let mut report = Leftovers::default();
    for rel in lake_files(lake)? {
        let is_tmp = rel.ends_with(".tmp");
        let is_orphan = rel.ends_with(".parquet") && !committed.contains(rel.as_str());
        if is_tmp || is_orphan {
            let p = lake.join(&rel);
            fs::remove_file(&p).map_err(|e| LakeError::io(&p, e))?;
            tracing::info!(file = %rel, "removed leftover of an interrupted run");
            if is_tmp { report.temp_files.push(rel) } else { report.orphans.push(rel) }
        }
    }
    Ok(report)
}

/// What is wrong with one file of the lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A committed file is missing.
    Missing,
    /// A committed file's size differs from the manifest.
    SizeMismatch,
    /// A committed file's BLAKE3 differs from the manifest.
    ChecksumMismatch,
    /// A committed file's Parquet row count differs from the manifest.
    RowCountMismatch,
    /// A committed file's recorded schema version differs from the manifest (or is missing).
    SchemaVersion,
    /// A committed file is not readable Parquet.
    Unreadable,
    /// A `*.parquet` file no manifest version names (left by an interrupted writer).
    Orphan,
    /// A temporary file (left by an interrupted writer).
    TempFile,
}

/// One problem found by [`check`].
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Path relative to the lake.
    pub path: String,
    pub kind: ProblemKind,
    /// For people.
    pub detail: String,
}

/// The result of [`check`].
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Manifest version checked.
    pub manifest_version: u64,
    /// Inputs the manifest names.
    pub inputs: usize,
    /// Committed files verified.
    pub files: usize,
    /// Rows those files hold according to their Parquet footers.
    pub rows: u64,
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// True when every committed file is present and intact and nothing else is lying around.
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the lake against its newest manifest version: every committed file exists with
/// the recorded size, checksum, row count and schema version; no orphan or temporary file.
/// Reads every committed file in full (for the checksum). Takes no lock: run it while no
/// writer is active, or expect in-flight files to show as orphans or temporary files.
pub fn check(lake: &Path) -> Result<CheckReport, LakeError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let snapshot = crate::manifest::load(lake, None)?;
    let mut problems = Vec::new();
    let mut rows = 0u64;
    let mut files = 0usize;
    let problem = |path: &str, kind, detail: String| Problem { path: path.to_string(), kind, detail };
    for f in snapshot.data_files() {
        files += 1;
        // The owners' runs must not overlap; with the row count below they then tile the file.
        for w in f.owners.windows(2) {
            if w[0].1 + w[0].2 > w[1].1 {
                problems.push(problem(
                    &f.path,
                    ProblemKind::RowCountMismatch,
                    format!("inputs {:.16} and {:.16} claim overlapping rows", w[0].0, w[1].0),
                ));
            }
        }
        let p = lake.join(&f.path);
        let meta = match fs::metadata(&p) {
            Ok(m) => m,
            Err(e) => {
                problems.push(problem(&f.path, ProblemKind::Missing, e.to_string()));
                continue;
            }
        };
        if meta.len() != f.bytes {
            problems.push(problem(
                &f.path,
                ProblemKind::SizeMismatch,
                format!("{} bytes, manifest says {}", meta.len(), f.bytes),
            ));
            continue;
        }
        match crate::fsutil::hash_file(&p) {
            Ok(h) if h == f.blake3 => {}
            Ok(h) => problems.push(problem(
                &f.path,
                ProblemKind::ChecksumMismatch,
                format!("BLAKE3 {h}, manifest says {}", f.blake3),
            )),
            Err(e) => problems.push(problem(&f.path, ProblemKind::Unreadable, e.to_string())),
        }
        let reader = fs::File::open(&p)
            .map_err(|e| e.to_string())
            .and_then(|file| SerializedFileReader::new(file).map_err(|e| e.to_string()));
        match reader {
            Ok(r) => {
                let md = r.metadata().file_metadata();
                let n = md.num_rows() as u64;
                rows += n;
                if n != f.rows {
                    problems.push(problem(
                        &f.path,
                        ProblemKind::RowCountMismatch,
                        format!("{n} rows, manifest says {}", f.rows),
                    ));
                }
                let version = md
                    .key_value_metadata()
                    .and_then(|kv| kv.iter().find(|k| k.key == tapeout_schema::SCHEMA_VERSION_KEY))
                    .and_then(|k| k.value.clone());
                if version.as_deref() != Some(f.schema_version.to_string().as_str()) {
                    problems.push(problem(
                        &f.path,
                        ProblemKind::SchemaVersion,
                        format!("file records schema version {version:?}, manifest says {}", f.schema_version),
                    ));
                }
            }
            Err(e) => problems.push(problem(&f.path, ProblemKind::Unreadable, e)),
        }
    }
    let committed: HashSet<&str> = snapshot.files().map(|f| f.path.as_str()).collect();
    for rel in lake_files(lake)? {
        if rel.ends_with(".tmp") {
            problems.push(problem(&rel, ProblemKind::TempFile, "temporary file of an interrupted writer".into()));
        } else if rel.ends_with(".parquet") && !committed.contains(rel.as_str()) {
            problems.push(problem(&rel, ProblemKind::Orphan, "not named by any manifest version".into()));
        }
    }
    Ok(CheckReport { manifest_version: snapshot.version, inputs: snapshot.inputs.len(), files, rows, problems })
}

/// `check --repair`: under the lake lock, removes what interrupted writers left (orphans and
/// temporary files), then checks again. Damaged committed files are reported, not removed.
pub fn repair(lake: &Path, wait: bool) -> Result<(Leftovers, CheckReport), LakeError> {
    let _lock = crate::lock::LakeLock::acquire(lake, wait, |_| {})?;
    let snapshot = crate::manifest::load(lake, None)?;
    let removed = remove_leftovers(lake, &snapshot)?;
    Ok((removed, check(lake)?))
}

/// What [`forget`] removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Forgotten {
    /// Manifest version that removed them.
    pub manifest_version: u64,
    /// Paths of the inputs removed.
    pub inputs: Vec<String>,
    /// Rows those inputs had landed (all tables).
    pub rows: u64,
    /// Records of theirs that were in the quarantine.
    pub quarantined: u64,
    /// Data and quarantine files deleted.
    pub files: usize,
}

/// Removes inputs from the lake: every input ingested from one of `targets` (paths, resolved to
/// absolute like `ingest` does) or whose `input_hash` starts with one of them (at least 8 hex
/// digits). One commit removes them all, then their files are deleted. Files they share with
/// other inputs (compacted files) are first rewritten without their rows, and the other
/// owners re-committed in that same commit. Holds the lake lock.
pub fn forget(lake: &Path, targets: &[String], wait: bool) -> Result<Forgotten, LakeError> {
    let _lock = crate::lock::LakeLock::acquire(lake, wait, |_| {})?;
    let snapshot = crate::manifest::load(lake, None)?;
    let wanted: Vec<(String, Option<String>)> = targets
        .iter()
        .map(|t| {
            let abs = std::path::absolute(t).map(|p| p.display().to_string()).unwrap_or_else(|_| t.clone());
            let hash = (t.len() >= 8 && t.chars().all(|c| c.is_ascii_hexdigit())).then(|| t.to_ascii_lowercase());
            (abs, hash)
        })
        .collect();
    let matched: Vec<&crate::manifest::InputEntry> = snapshot
        .inputs
        .values()
        .filter(|e| wanted.iter().any(|(p, h)| &e.path == p || h.as_ref().is_some_and(|h| e.input_hash.starts_with(h))))
        .collect();
    if matched.is_empty() {
        return Err(LakeError::Input {
            path: lake.to_path_buf(),
            message: format!("no ingested input matches {}", targets.join(", ")),
        });
    }
    let hashes: Vec<String> = matched.iter().map(|e| e.input_hash.clone()).collect();
    // Files they share with inputs that stay (after a compact) are rewritten without them.
    let leaving: HashSet<String> = hashes.iter().cloned().collect();
    let released = crate::compact::release(lake, &snapshot, &leaving)?;
    let mut removes = hashes;
    removes.extend(released.updated.iter().map(|e| e.input_hash.clone()));
    let version = crate::writer::publish_then(&released.staged, || {
        crate::manifest::commit(lake, snapshot.version + 1, "forget", released.updated, removes)
    })?;
    let mut report = Forgotten { manifest_version: version, ..Forgotten::default() };
    let mut deleted: HashSet<&str> = HashSet::new();
    for e in matched {
        report.inputs.push(e.path.clone());
        report.rows += e.rows;
        report.quarantined += e.quarantined;
        for f in &e.outputs {
            if !deleted.insert(f.path.as_str()) {
                continue;
            }
            let p = lake.join(&f.path);
            match fs::remove_file(&p) {
                Ok(()) => report.files += 1,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(LakeError::io(&p, err)),
            }
        }
    }
    Ok(report)
}
