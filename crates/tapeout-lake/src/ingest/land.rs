//! Landing one input: naming its staged files after its hash, the last exactly-once check,
//! then one commit through [`crate::commit`] that adds it and removes the inputs it replaces
//! (releasing the files they shared; see [`crate::commit::release`]): the input a grown file
//! whose last line was cut extends, or an earlier ingest of the same content under another
//! format choice ([`super::identity::same_format_choice`]). The replaced inputs' files are
//! deleted after the commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::identity::{Hashed, LazyHash, ReplaceCause, format_choice, same_format_choice, with_parts};
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
    let forced = shared.opts.format;
    let mut replaced = hashed.replaces.clone();
    let mut cause = hashed.cause;
    // Files are named after the input's hash; when these same bytes replace their own earlier
    // ingest (another format choice), after the hash and the choice, so that the new files
    // never take the names of the old ones (deleted after the commit).
    let name = if replaced.iter().any(|e| e.input_hash == input_hash) {
        let choice = format!("{input_hash}\n{}\n{}", landed.format, forced.is_some());
        blake3::hash(choice.as_bytes()).to_hex()[..16].to_string()
    } else {
        input_hash[..16].to_string()
    };
    name_after_input(&mut staged, lazy.tag(), &name);
    if landed.content_hash.is_empty() {
        landed.content_hash = input_hash.clone(); // a plain file's content is its raw bytes
    }
    let format = landed.format.clone();
    let mut entry = InputEntry {
        input_hash: input_hash.clone(),
        content_hash: landed.content_hash.clone(),
        path: shown.clone(),
        size: hashed.size,
        format: format.clone(),
        format_forced: forced.is_some(),
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
    // The committed input (of other bytes) whose content this is, claimed here for replacing.
    let mut content_claim = None;
    let commit = {
        let mut st = shared.state.lock().expect("state lock");
        // A deferred hash is claimed only now: the same bytes may have landed meanwhile.
        let raw_duplicate = deferred && !st.known.insert(input_hash.clone());
        let mut content_first = st.known_content.get(&landed.content_hash).cloned();
        if replaced.iter().any(|e| e.content_hash == landed.content_hash) {
            content_first = None; // the earlier ingest of this content is what this one replaces
        } else if !raw_duplicate && content_first.is_some() && replaced.is_empty() && hashed.extends.is_none() {
            // The same content from other bytes (another compression), committed under another
            // format choice and not yet replaced in this run: this input replaces it.
            let earlier = shared.snapshot.inputs.values().find(|e| {
                e.content_hash == landed.content_hash && !same_format_choice(e, forced) && e.input_hash != input_hash
            });
            if let Some(e) = earlier
                && st.reformatted.insert(e.input_hash.clone())
            {
                content_claim = Some(e.input_hash.clone());
                replaced = with_parts(&shared.snapshot, e);
                cause = Some(ReplaceCause::FormatChoice);
                entry.extends = None;
                content_first = None;
            }
        }
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
        let reformat = cause == Some(ReplaceCause::FormatChoice);
        if reformat && landed.rows == 0 && landed.quarantined > 0 && replaced.iter().any(|e| e.rows > 0) {
            // Never trade rows for a quarantine: the earlier ingest stays.
            drop(st);
            discard(&staged);
            shared.unclaim(&input_hash);
            if let Some(h) = &content_claim {
                shared.unclaim(h);
            }
            let reason = format!(
                "every one of its {} records is quarantined under format {format}; kept the earlier ingest under {} ({} rows)",
                landed.quarantined,
                format_choice(&replaced[0]),
                replaced.iter().map(|e| e.rows).sum::<u64>()
            );
            return rejected(shown, Some(format), Some(input_hash), reason);
        }
        // A replaced input that shares files with others (after a compact) leaves them
        // rewritten without its rows, their other owners re-committed in this same commit.
        let released = if replaced.iter().any(|e| e.outputs.iter().any(|o| o.row_offset.is_some())) {
            manifest::load(&shared.lake, None).and_then(|snap| {
                replaced = replaced.iter().map(|e| snap.inputs.get(&e.input_hash).unwrap_or(e).clone()).collect();
                release(&shared.lake, &snap, &replaced.iter().map(|e| e.input_hash.clone()).collect())
            })
        } else {
            Ok(Release::default())
        };
        let r = released.and_then(|rel| {
            let mut removed: Vec<String> = replaced.iter().map(|e| e.input_hash.clone()).collect();
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
        if let Some(h) = &content_claim {
            shared.unclaim(h);
        }
        return rejected(shown, Some(format), Some(input_hash), format!("commit failed: {e}"));
    }
    // The replaced inputs' files (their own, and shared ones rewritten above) are no longer
    // named by the manifest: delete them now rather than leave them for the next writer.
    // (Never a file this commit names: the same bytes may replace their own earlier ingest.)
    let named: std::collections::HashSet<&str> = staged.iter().map(|s| s.output.path.as_str()).collect();
    for o in replaced.iter().flat_map(|e| &e.outputs).filter(|o| !named.contains(o.path.as_str())) {
        let _ = crate::fault::remove_file(&shared.lake.join(&o.path));
    }
    tracing::info!(input = %shown, rows = landed.rows, quarantined = landed.quarantined, files = staged.len(), "input committed");
    let mut notes = landed.notes;
    if let Some(old) = replaced.first() {
        let (rows, quarantined) = replaced.iter().fold((0, 0), |(r, q), e| (r + e.rows, q + e.quarantined));
        let from = if old.path == shown { String::new() } else { format!(" from {}", old.path) };
        let what = match cause {
            Some(ReplaceCause::GrownMidLine) => {
                "the file grew after an ingest that ended mid-line; it landed whole and replaced the earlier ingest"
                    .to_string()
            }
            Some(ReplaceCause::PathChanged) => {
                format!(
                    "the file changed in place ({} bytes before, {} now); replaced its earlier version",
                    old.size, hashed.size
                )
            }
            _ => format!("replaced the earlier ingest of this content{from} under {}", format_choice(old)),
        };
        notes.insert(0, format!("{what} ({rows} rows, {quarantined} quarantined)"));
    } else if let Some(old) = &hashed.changed {
        let rows: u64 = with_parts(&shared.snapshot, old).iter().map(|e| e.rows).sum();
        notes.insert(
            0,
            format!(
                "the file changed in place ({} bytes before, {} now); its earlier version ({} rows) stays beside it \
                 (--on-change keep)",
                old.size, hashed.size, rows
            ),
        );
    }
    let warning = (forced.is_some() && landed.rows == 0 && landed.quarantined > 0).then(|| {
        format!(
            "0 rows under forced format {format}: every record quarantined; re-ingest with the right --format, or \
             without --format, to replace this ingest"
        )
    });
    InputReport {
        path: shown,
        status: match (&hashed.extends, replaced.is_empty()) {
            (_, false) => InputStatus::Replaced,
            (Some(_), true) => InputStatus::Appended,
            (None, true) => InputStatus::Ingested,
        },
        format: Some(format),
        format_forced: forced.is_some(),
        replaced: replaced.first().map(|e| e.format.clone()),
        replaced_because: cause.filter(|_| !replaced.is_empty()),
        pending: None,
        warning,
        input_hash: Some(input_hash),
        rows: landed.rows,
        tables: landed.tables.clone(),
        quarantined: landed.quarantined,
        outputs: staged.len(),
        reason: None,
        truncated: landed.truncated,
        notes,
    }
}
