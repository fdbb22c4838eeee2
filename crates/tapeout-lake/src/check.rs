//! `tapeout check`: verifies the lake against its manifest, and `check --repair` removes what
//! interrupted writers left (see [`crate::commit::remove_leftovers`]).
//!
//! `check` reports a missing or damaged commit (by version) and goes on with the intact ones;
//! `repair` then removes only temporary files: an uncommitted data file may be named by the
//! missing or damaged commit, so it is kept (and reported) until that commit is recovered.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::LakeError;
use crate::commit::{Leftovers, TapeoutFile, lake_files, remove_leftovers_with, tapeout_file};

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
    /// A manifest version without its commit file.
    MissingCommit,
    /// A commit file whose checksum does not match, or that is not a commit.
    DamagedCommit,
    /// A file whose name is not one tapeout writes (never removed).
    Foreign,
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
    crate::manifest::check_marker(lake, false)?;
    let crate::manifest::Replay { snapshot, damage } = crate::manifest::replay(lake, None)?;
    let mut problems = Vec::new();
    let mut rows = 0u64;
    let mut files = 0usize;
    let problem = |path: &str, kind, detail: String| Problem { path: path.to_string(), kind, detail };
    let commit_rel = |v: u64| format!("{}/{v:020}.json", crate::manifest::MANIFEST_DIR);
    for &v in &damage.missing_commits {
        problems.push(problem(
            &commit_rel(v),
            ProblemKind::MissingCommit,
            format!("commit {v} is missing; versions after it are read without it"),
        ));
    }
    for (v, why) in &damage.damaged_commits {
        problems.push(problem(&commit_rel(*v), ProblemKind::DamagedCommit, format!("commit {v} is damaged: {why}")));
    }
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
    let orphan_detail = if damage.commits_whole() {
        "not named by any manifest version"
    } else {
        "not named by the intact commits; a missing or damaged commit may name it (repair keeps it)"
    };
    for rel in lake_files(lake)? {
        match tapeout_file(&rel) {
            Some(TapeoutFile::Temp) => {
                problems.push(problem(&rel, ProblemKind::TempFile, "temporary file of an interrupted writer".into()))
            }
            Some(TapeoutFile::Data) if !committed.contains(rel.as_str()) => {
                problems.push(problem(&rel, ProblemKind::Orphan, orphan_detail.into()))
            }
            Some(_) => {}
            None => problems.push(problem(&rel, ProblemKind::Foreign, "not a file tapeout writes; left alone".into())),
        }
    }
    Ok(CheckReport { manifest_version: snapshot.version, inputs: snapshot.inputs.len(), files, rows, problems })
}

/// `check --repair`: under the lake lock, removes what interrupted writers left (orphans and
/// temporary files), then checks again. Damaged committed files are reported, not removed;
/// when a commit is missing or damaged, uncommitted data files are kept
/// ([`Leftovers::kept`]): that commit may name them. Foreign files are never removed.
pub fn repair(lake: &Path, wait: bool) -> Result<(Leftovers, CheckReport), LakeError> {
    let _lock = crate::lock::LakeLock::acquire(lake, wait, |_| {})?;
    let replay = crate::manifest::replay(lake, None)?;
    let removed = remove_leftovers_with(lake, &replay.snapshot, replay.damage.commits_whole())?;
    Ok((removed, check(lake)?))
}
