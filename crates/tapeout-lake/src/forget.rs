//! `tapeout forget`: removes inputs from the lake in one commit, releasing the files they share
//! with inputs that stay (see [`crate::commit::release`]), then deleting their files.

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;

use crate::LakeError;
use crate::commit::{publish_then, release, remove_replaced};
use crate::lock::LakeLock;
use crate::manifest::{self, InputEntry};

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
    let _lock = LakeLock::acquire(lake, wait, |_| {})?;
    let snapshot = manifest::load(lake, None)?;
    let wanted: Vec<(String, Option<String>)> = targets
        .iter()
        .map(|t| {
            let abs = std::path::absolute(t).map(|p| p.display().to_string()).unwrap_or_else(|_| t.clone());
            let hash = (t.len() >= 8 && t.chars().all(|c| c.is_ascii_hexdigit())).then(|| t.to_ascii_lowercase());
            (abs, hash)
        })
        .collect();
    let matched: Vec<&InputEntry> = snapshot
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
    let released = release(lake, &snapshot, &leaving)?;
    let mut removes = hashes;
    removes.extend(released.updated.iter().map(|e| e.input_hash.clone()));
    let version = publish_then(&released.staged, || {
        manifest::commit(lake, snapshot.version + 1, "forget", released.updated, removes)
    })?;
    let mut report = Forgotten { manifest_version: version, ..Forgotten::default() };
    let mut deleted: HashSet<&str> = HashSet::new();
    for e in &matched {
        report.inputs.push(e.path.clone());
        report.rows += e.rows;
        report.quarantined += e.quarantined;
    }
    let replaced = matched.iter().flat_map(|e| &e.outputs).map(|f| f.path.as_str()).filter(|p| deleted.insert(p));
    report.files = remove_replaced(lake, replaced)?;
    Ok(report)
}
