//! Pass 1: one walk gathering the linking state ([`Links`]), the header keys, per-category
//! counts and the rejects; it keeps offsets into the document and owned copies of thread, step
//! and category names, never text borrowed from the document.

use std::collections::HashMap;

use serde_json::value::RawValue;

use super::check::{Checked, check, is_launch_cat, is_op_cat, owned_entry};
use super::event::{self, Event, Id, raw_i64, raw_str};
use super::link::{Launch, Links, OpSpan, Step, profiler_step_number};
use super::walk::{Handler, interpret_header, walk};
use super::{Activity, EmitError, KinetoScan, KinetoSink};
use crate::rows::Reject;

#[derive(Default)]
struct Scanner {
    links: Links,
    /// pid/tid → number, for the compact op and launch entries. Keys are owned (see
    /// [`owned_entry`]).
    threads: HashMap<(Id<'static>, Id<'static>), u32>,
    /// Address of the document's first byte.
    base: usize,
    by_cat: HashMap<Box<str>, u64>,
    unknown_ph: u64,
    span: Option<(i64, i64)>,
    rejects: Vec<Reject>,
}

impl Scanner {
    fn thread<'a>(&mut self, ev: &Event<'a>) -> u32 {
        let key = (Id::parse(ev.pid), Id::parse(ev.tid));
        // The map is covariant in its key: look up with the borrowed key, insert an owned one.
        let threads: &HashMap<(Id<'a>, Id<'a>), u32> = &self.threads;
        if let Some(&n) = threads.get(&key) {
            return n;
        }
        let next = self.threads.len() as u32;
        self.threads.insert((key.0.into_owned(), key.1.into_owned()), next);
        next
    }

    fn event(&mut self, index: u64, raw: &RawValue) {
        let (ev, ts, dur) = match check(index, raw) {
            Err(r) => {
                self.rejects.push(r);
                return;
            }
            Ok(Checked::Ignored) => {
                self.unknown_ph += 1;
                return;
            }
            Ok(Checked::Event { ev, ts, dur }) => (ev, ts, dur),
        };
        *owned_entry(&mut self.by_cat, ev.cat.as_deref().unwrap_or(""), || 0) += 1;
        if ev.ph.as_deref() != Some("X") {
            return;
        }
        let (ts, dur) = (ts.unwrap_or_default(), dur.unwrap_or_default());
        let end = ts.saturating_add(dur);
        self.span = Some(self.span.map_or((ts, end), |(s, e)| (s.min(ts), e.max(end))));
        let cat = ev.cat.as_deref().unwrap_or("");
        let name = ev.name.and_then(raw_str).unwrap_or_default();
        let activity = Activity::from_cat(cat);
        if name.contains("ProfilerStep") {
            // HTA's "CPU side" is everything that is not a GPU activity (stream < 0), so the
            // GPU-timeline `gpu_user_annotation` ProfilerStep events count towards its cut-off.
            if activity.is_none() {
                let last = &mut self.links.last_cpu_step_start;
                *last = Some(last.map_or(ts, |l: i64| l.max(ts)));
            }
            if !self.links.step_names.contains(name.as_ref()) {
                self.links.step_names.insert(name.as_ref().into());
            }
        }
        let args = ev.args.as_ref();
        if activity.is_some() {
            if let Some(x) = args.and_then(event::Args::external_id) {
                self.links.gpu_external_ids.push(x);
            }
        } else if cat == "gpu_user_annotation" {
            if let Some(n) = profiler_step_number(&name) {
                self.links.gpu_steps.push(Step { start: ts, end, n });
            }
        } else if is_launch_cat(cat) {
            if let Some(corr) = args.and_then(|a| a.correlation).and_then(raw_i64) {
                let thread = self.thread(&ev);
                self.links.launches.push(Launch::new(corr, ts, dur, thread));
            }
        } else if is_op_cat(cat) {
            if let Some(n) = profiler_step_number(&name) {
                self.links.steps.push(Step { start: ts, end, n });
            } else if cat != "user_annotation"
                && let Ok(index) = u32::try_from(index)
            {
                // Events past the 4-billionth are not linked (a trace of >200 GB).
                let thread = self.thread(&ev);
                self.links.ops.push(OpSpan {
                    start: ts,
                    end,
                    external_id: args.and_then(event::Args::external_id).unwrap_or(i64::MIN),
                    at: (raw.get().as_ptr() as usize - self.base) as u64,
                    index,
                    thread,
                });
            }
        }
    }
}

/// Pass 1 as a walk handler: the scanner, and the caller's sink for progress reports.
struct Pass1<'p, S> {
    scanner: Scanner,
    sink: &'p mut S,
}

impl<'a, S: KinetoSink> Handler<'a> for Pass1<'_, S> {
    type Error = S::Error;

    fn event(&mut self, index: u64, raw: &'a RawValue) -> Result<(), EmitError<S::Error>> {
        self.scanner.event(index, raw);
        Ok(())
    }

    fn progress(&mut self, offset: usize) -> Result<(), S::Error> {
        self.sink.progress(offset)
    }
}

/// Pass 1 over `bytes` (one whole decompressed trace), reporting progress to `sink`.
pub(super) fn scan<'a, S: KinetoSink>(bytes: &'a [u8], sink: &mut S) -> Result<KinetoScan<'a>, EmitError<S::Error>> {
    let mut pass = Pass1 { scanner: Scanner { base: bytes.as_ptr() as usize, ..Default::default() }, sink };
    let raw = walk(bytes, &mut pass, true)?;
    let mut s = pass.scanner;
    let events = raw.events;
    let header = interpret_header(raw);
    s.links.finish();
    let mut by_cat: Vec<(String, u64)> = s.by_cat.into_iter().map(|(k, v)| (k.into_string(), v)).collect();
    by_cat.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(KinetoScan {
        bytes,
        header,
        links: s.links,
        events,
        by_cat,
        unknown_ph: s.unknown_ph,
        span: s.span,
        rejects: s.rejects,
    })
}
