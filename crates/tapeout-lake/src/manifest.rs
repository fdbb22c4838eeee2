//! The manifest: an append-only log of commits under `LAKE/_manifest/`.
//!
//! Format (documented in docs/architecture.md): one JSON file per commit,
//! `_manifest/<version, 20 digits>.json`, holding a [`Commit`]: the inputs it adds (with every
//! output file, its row count, size and BLAKE3 checksum) and the input hashes it removes. The
//! lake's state at version N is the replay of commits 1..=N ([`Snapshot`]); version 0 is empty.
//!
//! Atomicity: a commit is written to a temporary file, flushed and synced, then *hard-linked*
//! to its final name. `link(2)` fails if the name exists, so two writers can never both create
//! version N (the loser sees [`LakeError::CommitConflict`]), and a reader never sees a
//! half-written commit: the name appears only once its bytes are complete. Version numbers
//! are dense; a reader replays `1, 2, …` and stops at the first missing one.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::LakeError;

/// Directory of the commit log, relative to the lake root.
pub const MANIFEST_DIR: &str = "_manifest";
/// Newest format of commit files this tapeout reads; bumped only for incompatible changes.
/// Format 2 adds [`OutputFile::row_offset`] (files shared by several inputs, written by
/// `compact`); a commit is written as format 1 unless it needs that, so older readers keep
/// reading lakes that were never compacted.
pub const MANIFEST_FORMAT: u32 = 2;

/// One Parquet file a commit made visible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputFile {
    /// Path relative to the lake root, `/`-separated.
    pub path: String,
    /// Table the file belongs to.
    pub table: String,
    /// Rows of the file that belong to this input: all of them, unless `row_offset` is set.
    pub rows: u64,
    /// Set when the file is shared by several inputs (a `compact` merged their small files):
    /// this input's rows are `row_offset .. row_offset + rows` of the file, in file order.
    /// Absent: the input owns the whole file. (Manifest format 2.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_offset: Option<u64>,
    /// Size in bytes (of the whole file).
    pub bytes: u64,
    /// BLAKE3 of the file's bytes, hex.
    pub blake3: String,
    /// Schema version the file was written with.
    pub schema_version: u32,
}

/// One ingested input (a file's exact content).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputEntry {
    /// BLAKE3 of the input's raw bytes (as stored, before decompression), hex. The input's identity.
    pub input_hash: String,
    /// BLAKE3 of the decompressed bytes, hex: the same trace stored plain, gzip or zstd has one
    /// content hash, so it lands once whatever its compression.
    pub content_hash: String,
    /// Absolute path it was read from.
    pub path: String,
    /// Size of the raw bytes.
    pub size: u64,
    /// Detected or forced format id.
    pub format: String,
    /// Table the rows went to.
    pub table: String,
    /// Workload written to the rows.
    pub workload: Option<String>,
    /// Rows that landed (all tables).
    pub rows: u64,
    /// Rows that landed, per table (a Kineto trace fills several).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tables: BTreeMap<String, u64>,
    /// Records sent to the quarantine (including one for a truncated stream).
    pub quarantined: u64,
    /// Lines (records, for formats without lines) read, header included.
    pub lines: u64,
    /// When this content extends an earlier input (a grown file), that input's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    /// Lines of the file that the earlier input already covered and were not ingested again.
    #[serde(default)]
    pub skipped_lines: u64,
    /// Whether the content ended with a line end. When it did not, the last line may have been
    /// cut by a writer still appending: if the file grows, it replaces this input whole.
    #[serde(default = "default_true")]
    pub ends_with_newline: bool,
    /// Set when the stream broke (truncated or corrupt compression): the rows before it landed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
    /// Data files.
    pub outputs: Vec<OutputFile>,
    /// When the commit that added it was made (RFC 3339, UTC).
    pub ingested_at: String,
}

fn default_true() -> bool {
    true
}

/// One manifest version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// Commit file format.
    pub format: u32,
    /// The version this commit creates.
    pub version: u64,
    /// What made it: `ingest`, `forget`, `compact`...
    pub operation: String,
    /// tapeout version that wrote it.
    pub tapeout_version: String,
    /// RFC 3339 UTC time of the commit.
    pub committed_at: String,
    /// Inputs added.
    #[serde(default)]
    pub add: Vec<InputEntry>,
    /// Input hashes removed (their files are no longer part of the lake).
    #[serde(default)]
    pub remove: Vec<String>,
}

/// The lake's state at one version.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Manifest version (0: nothing committed yet).
    pub version: u64,
    /// Inputs by hash.
    pub inputs: BTreeMap<String, InputEntry>,
}

/// One committed data file with every input that owns rows of it (most files have one owner;
/// a compacted file has several).
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// Path relative to the lake root.
    pub path: String,
    pub table: String,
    /// Rows of the file: the sum over its owners.
    pub rows: u64,
    pub bytes: u64,
    pub blake3: String,
    pub schema_version: u32,
    /// (input hash, first row, rows) per owned range, by first row.
    pub owners: Vec<(String, u64, u64)>,
}

impl Snapshot {
    /// Every committed (input, file) pair: a file shared by several inputs appears once per
    /// owner, with that owner's rows. See [`Snapshot::data_files`] for each file once.
    pub fn files(&self) -> impl Iterator<Item = &OutputFile> {
        self.inputs.values().flat_map(|i| i.outputs.iter())
    }

    /// Each committed data file once, by path, with its owners.
    pub fn data_files(&self) -> Vec<DataFile> {
        let mut by_path: BTreeMap<&str, DataFile> = BTreeMap::new();
        for (hash, input) in &self.inputs {
            for o in &input.outputs {
                let f = by_path.entry(o.path.as_str()).or_insert_with(|| DataFile {
                    path: o.path.clone(),
                    table: o.table.clone(),
                    rows: 0,
                    bytes: o.bytes,
                    blake3: o.blake3.clone(),
                    schema_version: o.schema_version,
                    owners: Vec::new(),
                });
                f.rows += o.rows;
                f.owners.push((hash.clone(), o.row_offset.unwrap_or(0), o.rows));
            }
        }
        let mut files: Vec<DataFile> = by_path.into_values().collect();
        for f in &mut files {
            f.owners.sort_by_key(|o| o.1);
        }
        files
    }

    /// Committed (input, file) pairs of one table.
    pub fn table_files<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a OutputFile> + 'a {
        self.files().filter(move |f| f.table == table)
    }

    /// Most recent input ingested from `path` (by commit order of its entry).
    pub fn latest_for_path(&self, path: &str) -> Option<&InputEntry> {
        self.inputs
            .values()
            .filter(|i| i.path == path)
            .max_by(|a, b| a.ingested_at.cmp(&b.ingested_at).then(a.size.cmp(&b.size)))
    }
}

/// Path of the commit file for `version`.
pub fn commit_path(lake: &Path, version: u64) -> PathBuf {
    lake.join(MANIFEST_DIR).join(format!("{version:020}.json"))
}

/// Reads one commit file.
pub fn read_commit(path: &Path) -> Result<Commit, LakeError> {
    let text = fs::read(path).map_err(|e| LakeError::io(path, e))?;
    let c: Commit = serde_json::from_slice(&text)
        .map_err(|e| LakeError::Manifest { path: path.to_path_buf(), message: e.to_string() })?;
    if c.format > MANIFEST_FORMAT {
        return Err(LakeError::Manifest {
            path: path.to_path_buf(),
            message: format!("manifest format {} is newer than this tapeout understands ({MANIFEST_FORMAT})", c.format),
        });
    }
    Ok(c)
}

/// Replays the log up to the newest complete version (or `at`, when given).
pub fn load(lake: &Path, at: Option<u64>) -> Result<Snapshot, LakeError> {
    let mut snap = Snapshot::default();
    loop {
        let next = snap.version + 1;
        if at.is_some_and(|a| next > a) {
            break;
        }
        let path = commit_path(lake, next);
        if !path.exists() {
            break;
        }
        let c = read_commit(&path)?;
        if c.version != next {
            return Err(LakeError::Manifest {
                path,
                message: format!("holds version {} instead of {next}", c.version),
            });
        }
        for h in &c.remove {
            snap.inputs.remove(h);
        }
        for i in c.add {
            snap.inputs.insert(i.input_hash.clone(), i);
        }
        snap.version = next;
    }
    if let Some(a) = at
        && snap.version < a
    {
        return Err(LakeError::Manifest {
            path: commit_path(lake, a),
            message: format!("version {a} does not exist (newest is {})", snap.version),
        });
    }
    Ok(snap)
}

/// Current UTC time, RFC 3339 with microseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Appends a commit creating `expected_version` (which must be the next version).
pub fn commit(
    lake: &Path,
    expected_version: u64,
    operation: &str,
    add: Vec<InputEntry>,
    remove: Vec<String>,
) -> Result<u64, LakeError> {
    let dir = lake.join(MANIFEST_DIR);
    fs::create_dir_all(&dir).map_err(|e| LakeError::io(&dir, e))?;
    let shares_files = add.iter().flat_map(|i| &i.outputs).any(|o| o.row_offset.is_some());
    let c = Commit {
        format: if shares_files { 2 } else { 1 },
        version: expected_version,
        operation: operation.to_string(),
        tapeout_version: env!("CARGO_PKG_VERSION").to_string(),
        committed_at: now_rfc3339(),
        add,
        remove,
    };
    let tmp = dir.join(format!(".{expected_version:020}.{}.json.tmp", std::process::id()));
    let body = serde_json::to_vec_pretty(&c).expect("commit serializes");
    {
        let mut f = fs::File::create(&tmp).map_err(|e| LakeError::io(&tmp, e))?;
        f.write_all(&body).map_err(|e| LakeError::io(&tmp, e))?;
        f.sync_all().map_err(|e| LakeError::io(&tmp, e))?;
    }
    let target = commit_path(lake, expected_version);
    let linked = fs::hard_link(&tmp, &target);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            crate::fsutil::sync_dir(&dir);
            Ok(expected_version)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(LakeError::CommitConflict { version: expected_version })
        }
        Err(e) => Err(LakeError::io(&target, e)),
    }
}
