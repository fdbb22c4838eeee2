//! Landing one input: naming its staged files after its hash, the last exactly-once check,
//! then one commit through [`crate::commit`] that adds it and, for a grown file whose last line
//! was cut, removes the input it replaces (releasing the files that one shared; see
//! [`crate::commit::release`]). The replaced input's files are deleted after the commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::identity::{Hashed, LazyHash};
use super::{InputReport, InputStatus, Shared, rejected, skipped};
use crate::commit::{Release, publish_then, release};
use crate::manifest::{self, InputEntry};
use crate::writer::{StagedFile, discard, name_after_input};

/// What one input produced, staged but not yet published.
pub(super) struct Landed {
    /// Format id (`azure_llm`, …, `kineto`).
    pub(super) format: String,
    /// The main table the rows went to.
    pub(super) table: &'static str,
    /// Rows per table.
    pub(super) tables: BTreeMap<String, u64>,
    pub(super) notes: Vec<String>,
    pub(super) content_hash: String,
    pub(super) ends_with_newline: bool,
    pub(super) workload: Option<String>,
    pub(super) rows: u64,
    pub(super) quarantined: u64,
    pub(super) lines: u64,
    pub(super) skipped_lines: u64,
    pub(super) truncated: Option<String>,
    pub(super) staged: Vec<StagedFile>,
}

/// Commits what `input` (shown as `shown`) produced; returns its line of the summary.
pub(super) fn commit_input(
    shared: &Arc<Shared>,
    shown: String,
    hashed: &Hashed,
    lazy: &LazyHash,
    deferred: bool,
    mut landed: Landed,
) -> InputReport {
    let mut staged = std::mem::take(&mut landed.staged);
    let input_hash = match lazy.get() {
        Ok(h) => h,
        Err(e) => {
            discard(&staged);
            return rejected(shown, None, None, format!("cannot read: {e}"));
        }
    };
    name_after_input(&mut staged, lazy.tag(), &input_hash[..16]);
    if landed.content_hash.is_empty() {
        landed.content_hash = input_hash.clone(); // a plain file's content is its raw bytes
    }
    let format = landed.format.clone();
    let entry = InputEntry {
        input_hash: input_hash.clone(),
        content_hash: landed.content_hash.clone(),
        path: shown.clone(),
        size: hashed.size,
        format: format.clone(),
        table: landed.table.to_string(),
        workload: landed.workload.clone(),
        rows: landed.rows,
        tables: landed.tables.clone(),
        quarantined: landed.quarantined,
        lines: landed.lines,
        extends: hashed.extends.as_ref().map(|e| e.input_hash.clone()),
        skipped_lines: landed.skipped_lines,
        ends_with_newline: landed.ends_with_newline,
        truncated: landed.truncated.clone(),
        outputs: staged.iter().map(|s| s.output.clone()).collect(),
        ingested_at: manifest::now_rfc3339(),
    };
    let removed: Vec<String> = hashed.replaces().map(|e| e.input_hash.clone()).into_iter().collect();
    let commit = {
        let mut st = shared.state.lock().expect("state lock");
        // A deferred hash is claimed only now: the same bytes may have landed meanwhile.
        let raw_duplicate = deferred && !st.known.insert(input_hash.clone());
        let content_first = st.known_content.get(&landed.content_hash).cloned();
        if raw_duplicate || content_first.is_some() {
            drop(st);
            discard(&staged);
            if deferred && !raw_duplicate {
                shared.unclaim(&input_hash); // claimed just above; the content is what repeats
            }
            let mut report = skipped(shared, shown, input_hash);
            if let (false, Some(first)) = (raw_duplicate, content_first) {
                report.reason = Some(format!("same decompressed content already ingested from {first}"));
                report.format = Some(format);
            }
            return report;
        }
        // A replaced input that shares files with others (after a compact) leaves them
        // rewritten without its rows, their other owners re-committed in this same commit.
        let released = match hashed.replaces().filter(|e| e.outputs.iter().any(|o| o.row_offset.is_some())) {
            Some(old) => manifest::load(&shared.lake, None)
                .and_then(|snap| release(&shared.lake, &snap, &std::iter::once(old.input_hash.clone()).collect())),
            None => Ok(Release::default()),
        };
        let r = released.and_then(|rel| {
            let mut removed = removed;
            removed.extend(rel.updated.iter().map(|e| e.input_hash.clone()));
            let mut add = vec![entry];
            add.extend(rel.updated);
            let files = [rel.staged, staged.clone()].concat();
            publish_then(&files, || manifest::commit(&shared.lake, st.version + 1, "ingest", add, removed))
        });
        if let Ok(v) = r {
            st.version = v;
            st.known_content.insert(landed.content_hash.clone(), shown.clone());
        }
        r
    };
    if let Err(e) = commit {
        // A failed publish or commit removed its files already; a failed release left the
        // staged files unpublished.
        discard(&staged);
        shared.unclaim(&input_hash);
        return rejected(shown, Some(format), Some(input_hash), format!("commit failed: {e}"));
    }
    // The replaced input's files (its own, and shared ones rewritten above) are no longer
    // named by the manifest: delete them now rather than leave them for the next writer.
    if let Some(old) = hashed.replaces() {
        for o in &old.outputs {
            let _ = std::fs::remove_file(shared.lake.join(&o.path));
        }
    }
    tracing::info!(input = %shown, rows = landed.rows, quarantined = landed.quarantined, files = staged.len(), "input committed");
    InputReport {
        path: shown,
        status: match (&hashed.extends, hashed.replaces()) {
            (_, Some(_)) => InputStatus::Replaced,
            (Some(_), None) => InputStatus::Appended,
            (None, None) => InputStatus::Ingested,
        },
        format: Some(format),
        input_hash: Some(input_hash),
        rows: landed.rows,
        tables: landed.tables.clone(),
        quarantined: landed.quarantined,
        outputs: staged.len(),
        reason: None,
        truncated: landed.truncated,
        notes: landed.notes,
    }
}
