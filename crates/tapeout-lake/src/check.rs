//! `tapeout check`: verifies the lake against its manifest, and `check --repair` removes what
//! interrupted writers left (see [`crate::commit::remove_leftovers`]).

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::LakeError;
use crate::commit::{Leftovers, lake_files, remove_leftovers};

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
