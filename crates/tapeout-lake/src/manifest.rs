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
//! are dense: [`load`] lists `_manifest/` once and fails when any of `1..=newest` is missing or
//! damaged ([`replay`] records the damage instead, for `check` and `--allow-partial`).
//!
//! Integrity: every commit ends with `"checksum": "blake3:<hex>"`, the BLAKE3 of the commit's
//! bytes without that last member (see [`seal`]); a commit without one (written before
//! checksums) is read as it is. [`open_for_read`] verifies what a reader pins: the lake marker
//! ([`LAKE_MARKER`]), every commit, and every data file's presence and size (one `stat` each,
//! no hashing).

use std::collections::{BTreeMap, BTreeSet};
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
    /// Whether `format` was forced (`--format`) rather than detected. The same content comes
    /// again as a duplicate only under the same choice; under another it replaces this input.
    /// Written only when true, so lakes without a forced ingest stay readable by older tapeouts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub format_forced: bool,
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
    /// `blake3:<hex>` of the commit file's bytes without this member (always the last one).
    /// Absent in commits written before checksums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
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

/// The last member of every checksummed commit, up to its hex digits.
const CHECKSUM_MEMBER: &[u8] = b",\n  \"checksum\": \"blake3:";

/// Appends the checksum member to a commit serialized by `serde_json::to_vec_pretty` (which
/// ends with `\n}`): the BLAKE3 covers every byte of the commit except that member.
pub fn seal(mut body: Vec<u8>) -> Vec<u8> {
    let hash = blake3::hash(&body).to_hex();
    debug_assert!(body.ends_with(b"\n}"));
    body.truncate(body.len() - 2);
    body.extend_from_slice(CHECKSUM_MEMBER);
    body.extend_from_slice(hash.as_bytes());
    body.extend_from_slice(b"\"\n}");
    body
}

/// Checks a commit file's checksum: `Ok(true)` when it has one and it matches, `Ok(false)`
/// when it has none (a commit written before checksums), `Err` (why) when it does not match.
fn verify_seal(text: &[u8]) -> Result<bool, String> {
    let Some(at) = text.windows(CHECKSUM_MEMBER.len()).rposition(|w| w == CHECKSUM_MEMBER) else {
        return Ok(false);
    };
    let rest = &text[at + CHECKSUM_MEMBER.len()..];
    let (recorded, tail) = rest.split_at(rest.len().min(64));
    if recorded.len() != 64 || tail.trim_ascii_end() != b"\"\n}" {
        return Err("its checksum member is cut or malformed".into());
    }
    let mut body = text[..at].to_vec();
    body.extend_from_slice(b"\n}");
    let actual = blake3::hash(&body).to_hex();
    if actual.as_bytes() != recorded {
        return Err(format!(
            "checksum mismatch: its bytes hash to blake3:{actual}, the commit records blake3:{}",
            String::from_utf8_lossy(recorded)
        ));
    }
    Ok(true)
}

/// Reads one commit file, verifying its checksum (when it has one). A file whose checksum does
/// not match, or that is not a commit, is [`LakeError::DamagedCommit`].
pub fn read_commit(path: &Path) -> Result<Commit, LakeError> {
    let text = fs::read(path).map_err(|e| LakeError::io(path, e))?;
    let version = path.file_name().and_then(|n| commit_version(&n.to_string_lossy())).unwrap_or_default();
    let damaged = |message: String| LakeError::DamagedCommit { path: path.to_path_buf(), version, message };
    let sealed = verify_seal(&text).map_err(damaged)?;
    let c: Commit = serde_json::from_slice(&text).map_err(|e| damaged(format!("not a readable commit: {e}")))?;
    if c.format > MANIFEST_FORMAT {
        return Err(LakeError::Manifest {
            path: path.to_path_buf(),
            message: format!("manifest format {} is newer than this tapeout understands ({MANIFEST_FORMAT})", c.format),
        });
    }
    if c.checksum.is_some() && !sealed {
        return Err(damaged("its checksum member is not where tapeout writes it (last)".into()));
    }
    Ok(c)
}

/// The version of a commit file name (`<20 digits>.json`).
pub fn commit_version(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// The versions whose commit files are in `_manifest/` (one directory listing).
pub fn commit_versions(lake: &Path) -> Result<BTreeSet<u64>, LakeError> {
    let dir = lake.join(MANIFEST_DIR);
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(LakeError::io(&dir, e)),
    };
    let mut versions = BTreeSet::new();
    for e in rd {
        let e = e.map_err(|e| LakeError::io(&dir, e))?;
        if let Some(v) = commit_version(&e.file_name().to_string_lossy()) {
            versions.insert(v);
        }
    }
    Ok(versions)
}

/// What is missing or damaged in a lake, as far as a reader can tell cheaply.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Damage {
    /// Versions in `1..=pinned` without a commit file.
    pub missing_commits: Vec<u64>,
    /// Commits that cannot be used: (version, why).
    pub damaged_commits: Vec<(u64, String)>,
    /// Committed data files that are absent (relative paths).
    pub missing_files: Vec<String>,
    /// Committed data files of another size than their commit records: (path, found, recorded).
    pub wrong_size: Vec<(String, u64, u64)>,
}

impl Damage {
    /// Nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.missing_commits.is_empty() && !self.commits_damaged() && self.files_damaged().is_empty()
    }

    /// Some commit is damaged (missing ones aside).
    fn commits_damaged(&self) -> bool {
        !self.damaged_commits.is_empty()
    }

    /// Every commit of the pinned version is present and intact, so the snapshot names every
    /// file the lake owns.
    pub fn commits_whole(&self) -> bool {
        self.missing_commits.is_empty() && self.damaged_commits.is_empty()
    }

    /// Committed data files a reader cannot read as committed (missing or of another size).
    pub fn files_damaged(&self) -> Vec<&str> {
        self.missing_files.iter().map(String::as_str).chain(self.wrong_size.iter().map(|w| w.0.as_str())).collect()
    }

    /// One line per problem, for people.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for v in &self.missing_commits {
            out.push(format!("commit {v} ({MANIFEST_DIR}/{v:020}.json) is missing"));
        }
        for (v, why) in &self.damaged_commits {
            out.push(format!("commit {v} ({MANIFEST_DIR}/{v:020}.json) is damaged: {why}"));
        }
        for f in &self.missing_files {
            out.push(format!("data file {f} is missing"));
        }
        for (f, found, recorded) in &self.wrong_size {
            out.push(format!("data file {f} has {found} bytes, its commit records {recorded}"));
        }
        out
    }

    /// The problems on one line (the first ten, then how many more).
    pub fn summary(&self) -> String {
        let lines = self.lines();
        let mut s = lines.iter().take(10).cloned().collect::<Vec<_>>().join("; ");
        if lines.len() > 10 {
            s.push_str(&format!("; and {} more", lines.len() - 10));
        }
        s
    }
}

/// A replay of the commit log that skips what is missing or damaged instead of failing.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// The intact commits `1..=version` replayed in order (`version` is the pinned one even
    /// when some of its commits are missing).
    pub snapshot: Snapshot,
    /// Missing and damaged commits (the data-file fields stay empty: see [`verify_files`]).
    pub damage: Damage,
}

/// Replays the intact commits up to `at` (or the newest present), recording missing and
/// damaged ones in [`Replay::damage`]. Fails only on I/O errors, a commit of a newer format,
/// or an `at` newer than the newest commit.
pub fn replay(lake: &Path, at: Option<u64>) -> Result<Replay, LakeError> {
    let present = commit_versions(lake)?;
    // A newest commit deleted or lost shows as missing thanks to the hint.
    let newest = present.last().copied().unwrap_or(0).max(latest_hint(lake).unwrap_or(0));
    let target = match at {
        Some(a) if a > newest => {
            return Err(LakeError::Manifest {
                path: commit_path(lake, a),
                message: format!("version {a} does not exist (newest is {newest})"),
            });
        }
        Some(a) => a,
        None => newest,
    };
    let mut out = Replay::default();
    for v in 1..=target {
        if !present.contains(&v) {
            out.damage.missing_commits.push(v);
            continue;
        }
        let c = match read_commit(&commit_path(lake, v)) {
            Ok(c) if c.version == v => c,
            Ok(c) => {
                out.damage.damaged_commits.push((v, format!("holds version {} instead of {v}", c.version)));
                continue;
            }
            Err(LakeError::DamagedCommit { message, .. }) => {
                out.damage.damaged_commits.push((v, message));
                continue;
            }
            Err(e) => return Err(e),
        };
        for h in &c.remove {
            out.snapshot.inputs.remove(h);
        }
        for i in c.add {
            out.snapshot.inputs.insert(i.input_hash.clone(), i);
        }
    }
    out.snapshot.version = target;
    Ok(out)
}

/// Replays the log up to the newest version (or `at`, when given). Fails with
/// [`LakeError::Incomplete`] when any commit of `1..=version` is missing or damaged.
pub fn load(lake: &Path, at: Option<u64>) -> Result<Snapshot, LakeError> {
    let r = replay(lake, at)?;
    if !r.damage.is_empty() {
        return Err(LakeError::Incomplete { lake: lake.to_path_buf(), summary: r.damage.summary() });
    }
    Ok(r.snapshot)
}

/// Checks that every data file `snapshot` names is present with its recorded size: one `stat`
/// per file, no reading. Fills the data-file fields of `damage`.
pub fn verify_files(lake: &Path, snapshot: &Snapshot, damage: &mut Damage) {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for o in snapshot.files() {
        if !seen.insert(o.path.as_str()) {
            continue;
        }
        match fs::metadata(lake.join(&o.path)) {
            Ok(m) if m.len() == o.bytes => {}
            Ok(m) => damage.wrong_size.push((o.path.clone(), m.len(), o.bytes)),
            Err(_) => damage.missing_files.push(o.path.clone()),
        }
    }
}

/// A snapshot a reader may use, and what was found missing (empty unless `allow_partial`).
#[derive(Debug, Clone)]
pub struct Verified {
    pub snapshot: Snapshot,
    /// With `allow_partial`, what the snapshot lacks: its readers must say the answer is partial
    /// and read only the files present with their recorded size.
    pub damage: Damage,
}

/// What a reader does before it reads: [`check_marker`] (refusing a folder that is not a lake),
/// [`replay`] at `at` (or the newest version), then [`verify_files`]. Any damage fails with
/// [`LakeError::Incomplete`] unless `allow_partial`. A directory that does not exist or is
/// empty reads as an empty lake (version 0).
pub fn open_for_read(lake: &Path, at: Option<u64>, allow_partial: bool) -> Result<Verified, LakeError> {
    check_marker(lake, false)?;
    let Replay { snapshot, mut damage } = replay(lake, at)?;
    verify_files(lake, &snapshot, &mut damage);
    if !damage.is_empty() && !allow_partial {
        return Err(LakeError::Incomplete { lake: lake.to_path_buf(), summary: damage.summary() });
    }
    Ok(Verified { snapshot, damage })
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
    crate::fault::create_dir_all(&dir).map_err(|e| LakeError::io(&dir, e))?;
    let shares_files = add.iter().flat_map(|i| &i.outputs).any(|o| o.row_offset.is_some());
    let c = Commit {
        format: if shares_files { 2 } else { 1 },
        version: expected_version,
        operation: operation.to_string(),
        tapeout_version: env!("CARGO_PKG_VERSION").to_string(),
        committed_at: now_rfc3339(),
        add,
        remove,
        checksum: None,
    };
    let tmp = dir.join(format!(".{expected_version:020}.{}.json.tmp", std::process::id()));
    let body = seal(serde_json::to_vec_pretty(&c).expect("commit serializes"));
    {
        let mut f = crate::fault::create(&tmp).map_err(|e| LakeError::io(&tmp, e))?;
        f.write_all(&body).map_err(|e| LakeError::io(&tmp, e))?;
        f.sync_all().map_err(|e| LakeError::io(&tmp, e))?;
    }
    let target = commit_path(lake, expected_version);
    let linked = crate::fault::hard_link(&tmp, &target);
    let _ = crate::fault::remove_file(&tmp);
    match linked {
        Ok(()) => {
            crate::fsutil::sync_dir(&dir);
            write_latest_hint(&dir, expected_version);
            Ok(expected_version)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(LakeError::CommitConflict { version: expected_version })
        }
        Err(e) => Err(LakeError::io(&target, e)),
    }
}

/// `_manifest/latest`: the newest version committed, rewritten after every commit. The commit
/// log alone cannot tell a deleted newest commit from one never written; with the hint, a
/// reader sees versions up to it as missing ([`replay`]). It is only a lower bound (a crash
/// between a commit and its hint leaves it one behind), so it never hides a commit. To roll a
/// lake back by deleting its newest commits on purpose, delete this file too.
pub const LATEST_HINT: &str = "latest";

/// Writes [`LATEST_HINT`] (best effort: without it, only the hint's protection is lost).
fn write_latest_hint(dir: &Path, version: u64) {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{LATEST_HINT}.{}-{seq}.json.tmp", std::process::id()));
    let written = crate::fault::write(&tmp, format!("{version}\n").as_bytes())
        .and_then(|()| crate::fault::rename(&tmp, &dir.join(LATEST_HINT)));
    if let Err(e) = written {
        let _ = crate::fault::remove_file(&tmp);
        tracing::warn!("{}: could not record the newest version ({version}): {e}", dir.display());
    }
}

/// Rewrites [`LATEST_HINT`] when it is behind `version` (the newest of a whole commit log),
/// as a writer does under the lock before it changes anything.
pub fn refresh_latest_hint(lake: &Path, version: u64) {
    if version > 0 && latest_hint(lake).is_none_or(|h| h < version) {
        write_latest_hint(&lake.join(MANIFEST_DIR), version);
    }
}

/// The version [`LATEST_HINT`] records, if it is there and readable.
fn latest_hint(lake: &Path) -> Option<u64> {
    fs::read_to_string(lake.join(MANIFEST_DIR).join(LATEST_HINT)).ok()?.trim().parse().ok()
}

/// The file that marks a directory as a tapeout lake, at the lake's root.
pub const LAKE_MARKER: &str = "_tapeout_lake.json";
/// Newest lake format this tapeout reads (the marker's `format`).
pub const LAKE_FORMAT: u32 = 1;

/// The lake marker's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LakeMarker {
    /// Lake format (see [`LAKE_FORMAT`]).
    pub format: u32,
    /// tapeout version that wrote the marker.
    pub created_by: String,
    /// RFC 3339 UTC time the marker was written.
    pub created_at: String,
    /// Set when the marker was added to a lake made before markers existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upgraded: bool,
}

/// What [`check_marker`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerState {
    /// The directory is a marked lake.
    Marked,
    /// A new lake: the marker was just written (writers only).
    Created,
    /// A lake made before markers (a `_manifest/` of tapeout's files only): the marker was just
    /// written, once.
    Upgraded,
    /// The directory does not exist or is empty, and a reader asked: nothing was written.
    Empty,
}

/// Names tapeout writes in `_manifest/`: commits, the lock and commit temporary files.
fn manifest_entry_is_ours(name: &str) -> bool {
    commit_version(name).is_some()
        || name == "lock"
        || name == LATEST_HINT
        || name.starts_with('.') && name.ends_with(".json.tmp")
}

/// Whether `lake/_manifest/` is a directory holding only files tapeout writes there.
fn has_valid_manifest(lake: &Path) -> bool {
    let Ok(rd) = fs::read_dir(lake.join(MANIFEST_DIR)) else { return false };
    rd.flatten()
        .all(|e| e.file_type().is_ok_and(|t| t.is_file()) && manifest_entry_is_ours(&e.file_name().to_string_lossy()))
}

fn write_marker(lake: &Path, upgraded: bool) -> Result<(), LakeError> {
    let marker = LakeMarker {
        format: LAKE_FORMAT,
        created_by: format!("tapeout {}", env!("CARGO_PKG_VERSION")),
        created_at: now_rfc3339(),
        upgraded,
    };
    let path = lake.join(LAKE_MARKER);
    // Unique per call: writers in one process (threads, tasks) must not share a temporary file.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = lake.join(format!(".{LAKE_MARKER}.{}-{seq}.tmp", std::process::id()));
    let mut body = serde_json::to_vec_pretty(&marker).expect("marker serializes");
    body.push(b'\n');
    crate::fault::write(&tmp, &body).map_err(|e| LakeError::io(&tmp, e))?;
    crate::fault::rename(&tmp, &path).map_err(|e| {
        let _ = crate::fault::remove_file(&tmp);
        LakeError::io(&path, e)
    })?;
    crate::fsutil::sync_dir(lake);
    Ok(())
}

/// Makes sure `lake` is a tapeout lake before anything reads or writes it.
///
/// - With a marker: its format must be one this tapeout reads.
/// - Without one, but with a `_manifest/` holding only tapeout's files (a lake made before
///   markers): the marker is written once and a warning says so.
/// - Otherwise, a directory with any content is refused ([`LakeError::NotALake`]); an empty or
///   absent one is a new lake, whose marker a writer (`create`) writes.
pub fn check_marker(lake: &Path, create: bool) -> Result<MarkerState, LakeError> {
    let path = lake.join(LAKE_MARKER);
    match fs::read(&path) {
        Ok(bytes) => {
            let m: LakeMarker = serde_json::from_slice(&bytes).map_err(|e| LakeError::NotALake {
                lake: lake.to_path_buf(),
                why: format!("its {LAKE_MARKER} is unreadable ({e})"),
            })?;
            if m.format > LAKE_FORMAT {
                return Err(LakeError::NotALake {
                    lake: lake.to_path_buf(),
                    why: format!("lake format {} is newer than this tapeout reads ({LAKE_FORMAT})", m.format),
                });
            }
            return Ok(MarkerState::Marked);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(LakeError::io(&path, e)),
    }
    if has_valid_manifest(lake) {
        match write_marker(lake, true) {
            Ok(()) => tracing::warn!(
                "{}: a lake made before lake markers; upgraded: wrote {LAKE_MARKER} (format {LAKE_FORMAT})",
                lake.display()
            ),
            Err(e) if !create => {
                tracing::warn!("{}: a lake made before lake markers; could not upgrade it: {e}", lake.display())
            }
            Err(e) => return Err(e),
        }
        return Ok(MarkerState::Upgraded);
    }
    let content: Vec<String> = match fs::read_dir(lake) {
        Ok(rd) => rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(LakeError::io(lake, e)),
    };
    if content.iter().any(|n| n == LAKE_MARKER) && fs::metadata(&path).is_ok() {
        // Another writer created the lake between our read of the marker and the listing.
        return check_marker(lake, create);
    }
    let being_created = |n: &String| n.starts_with(&format!(".{LAKE_MARKER}."));
    if !content.is_empty() && content.iter().all(being_created) {
        if create {
            // Another writer is creating it, or one crashed while it did (leaving its temporary
            // file): either way the same marker, written atomically, makes it a lake.
            write_marker(lake, false)?;
            return Ok(MarkerState::Created);
        }
        // A reader: whether a writer is creating the lake right now or died doing so, the lake
        // holds nothing yet (its marker comes before any data).
        return Ok(MarkerState::Empty);
    }
    if !content.is_empty() {
        let mut names = content;
        names.sort();
        let more = if names.len() > 5 { format!(" and {} more", names.len() - 5) } else { String::new() };
        names.truncate(5);
        return Err(LakeError::NotALake {
            lake: lake.to_path_buf(),
            why: format!(
                "it holds {}{more} but neither {LAKE_MARKER} nor a tapeout {MANIFEST_DIR}/; tapeout reads and writes only lakes it made (use an empty or new directory)",
                names.join(", ")
            ),
        });
    }
    if !create {
        return Ok(MarkerState::Empty);
    }
    crate::fault::create_dir_all(lake).map_err(|e| LakeError::io(lake, e))?;
    write_marker(lake, false)?;
    Ok(MarkerState::Created)
}
