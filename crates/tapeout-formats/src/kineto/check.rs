//! Event validation, shared by both passes so they agree on what is a row, and the small
//! classification helpers both passes use.

use std::collections::HashMap;

use serde_json::value::RawValue;

use super::event::{self, Event, TimeError, raw_i64, raw_str, raw_time_ns};
use super::link::CollectiveArgs;
use crate::rows::Reject;

const KNOWN_PH: &[&str] = &[
    "B", "E", "X", "i", "I", "C", "b", "n", "e", "s", "t", "f", "S", "T", "p", "F", "P", "O", "N", "D", "M", "V", "v",
    "R", "c", "(", ")",
];

// Lives on the stack for one event at a time; boxing would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
pub(super) enum Checked<'a> {
    /// `ph` missing or unknown.
    Ignored,
    /// A usable event; `ts`/`dur` present and valid for `X` events.
    Event { ev: Event<'a>, ts: Option<i64>, dur: Option<i64> },
}

pub(super) fn check<'a>(index: u64, raw: &'a RawValue) -> Result<Checked<'a>, Reject> {
    let text = raw.get();
    let reject = |field: Option<&str>, reason: String| Reject::new(index, field, reason, text.as_bytes());
    let ev: Event<'a> = serde_json::from_str(text).map_err(|e| reject(None, format!("not a trace event: {e}")))?;
    if !ev.ph.as_deref().is_some_and(|p| KNOWN_PH.contains(&p)) {
        return Ok(Checked::Ignored);
    }
    let time = |raw: Option<&RawValue>, field: &str| -> Result<Option<i64>, Reject> {
        raw.map(|r| {
            raw_time_ns(r).map_err(|e| {
                let why = match e {
                    TimeError::NotANumber => format!("`{field}` is not a number: {}", r.get()),
                    TimeError::Overflow => format!("`{field}` is out of range: {}", r.get()),
                };
                reject(Some(field), why)
            })
        })
        .transpose()
    };
    let ts = time(ev.ts, "ts")?;
    let dur = time(ev.dur, "dur")?;
    if ev.ph.as_deref() == Some("X") {
        if ts.is_none() {
            return Err(reject(Some("ts"), "complete (X) event has no `ts`".into()));
        }
        match dur {
            None => return Err(reject(Some("dur"), "complete (X) event has no `dur`".into())),
            Some(d) if d < 0 => return Err(reject(Some("dur"), format!("negative duration: {d} ns"))),
            _ => {}
        }
    }
    Ok(Checked::Event { ev, ts, dur })
}

/// The value for `key`, inserted with `make` (and an owned copy of the key) when missing.
/// Map keys that outlive an event are owned copies, never borrowed from the document: hashing
/// or comparing a key that points into a memory-mapped document would fault its page back in
/// after the caller released the mapping (a large folio with it).
pub(super) fn owned_entry<'m, V>(map: &'m mut HashMap<Box<str>, V>, key: &str, make: impl FnOnce() -> V) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.into(), make());
    }
    map.get_mut(key).expect("just inserted")
}

/// CPU-side events that are `ops` rows (and, unless annotations or steps, link targets).
pub(super) fn is_op_cat(cat: &str) -> bool {
    matches!(cat, "cpu_op" | "Operator" | "user_annotation")
}

pub(super) fn is_launch_cat(cat: &str) -> bool {
    matches!(cat, "cuda_runtime" | "cuda_driver" | "Runtime" | "mtia_runtime" | "privateuse1_runtime" | "xpu_runtime")
}

pub(super) fn collective_args<'a>(args: &event::Args<'a>) -> Option<CollectiveArgs<'a>> {
    let name = args.collective.and_then(raw_str);
    let in_nelems = args.in_nelems.and_then(raw_i64);
    let out_nelems = args.out_nelems.and_then(raw_i64);
    if name.is_none() && in_nelems.is_none() && out_nelems.is_none() {
        return None;
    }
    Some(CollectiveArgs {
        name,
        in_nelems,
        out_nelems,
        dtype: args.dtype.and_then(raw_str),
        group_size: args.group_size.and_then(raw_i64),
        pg_name: args.pg_name.and_then(raw_str),
        pg_desc: args.pg_desc.and_then(raw_str),
    })
}
