//! Pass 1 state: what is needed to link each GPU activity to the CPU side — runtime launches by
//! correlation id, CPU ops per thread (for the innermost enclosing op), ops by external id, and
//! `ProfilerStep#N` windows. Its size follows the number of CPU events, never the GPU rows.
//!
//! The state is kept small because a multi-GB trace holds millions of CPU ops: an op is 40 bytes
//! (times, external id, thread number, event index and the byte offset of its event in the
//! document) and borrows no text; a launch is 32 bytes. [`Links::finish`] resolves every launch to
//! its op and then keeps only the ops a GPU activity can reach, as [`LinkedOp`]s (16 bytes), whose
//! names and inputs pass 2 reads again from the document at their offset.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::HashSet;

/// No external id / no op.
const NONE_I64: i64 = i64::MIN;
const NONE_U32: u32 = u32::MAX;

/// A linkable CPU op (`cpu_op` / 2021 `Operator`, not `ProfilerStep#N`) during pass 1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpSpan {
    pub start: i64,
    pub end: i64,
    /// `External id`, or `i64::MIN`.
    pub external_id: i64,
    /// Byte offset of the event in the document.
    pub at: u64,
    /// 1-based event index.
    pub index: u32,
    /// pid/tid, interned by the scanner.
    pub thread: u32,
}

/// An op a GPU activity links to, after [`Links::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkedOp {
    /// 1-based event index (the order of `Links::linked`).
    pub index: u64,
    /// Byte offset of the event in the document.
    pub at: u64,
}

/// The collective args Kineto writes on NCCL kernels and on `record_param_comms`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CollectiveArgs<'a> {
    pub name: Option<Cow<'a, str>>,
    pub in_nelems: Option<i64>,
    pub out_nelems: Option<i64>,
    pub dtype: Option<Cow<'a, str>>,
    pub group_size: Option<i64>,
    pub pg_name: Option<Cow<'a, str>>,
    pub pg_desc: Option<Cow<'a, str>>,
}

/// A runtime/driver call that launched GPU work.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Launch {
    pub correlation: i64,
    pub ts: i64,
    pub dur: i64,
    pub thread: u32,
    /// Position in `Links::linked` (`u32::MAX`: none), filled by [`Links::finish`].
    op: u32,
}

impl Launch {
    pub fn new(correlation: i64, ts: i64, dur: i64, thread: u32) -> Launch {
        Launch { correlation, ts, dur, thread, op: NONE_U32 }
    }
}

/// A `ProfilerStep#N` window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    pub start: i64,
    pub end: i64,
    pub n: i64,
}

/// How a row's op was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpLink {
    /// correlation → runtime call → innermost enclosing op on its thread.
    Correlation,
    /// The activity's external id equals the op's.
    ExternalId,
}

impl OpLink {
    pub fn id(self) -> &'static str {
        match self {
            OpLink::Correlation => "correlation",
            OpLink::ExternalId => "external_id",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Links {
    /// Pass 1: every linkable op, in file order. Emptied by [`Links::finish`].
    pub ops: Vec<OpSpan>,
    /// Pass 1: every launch in file order; after [`Links::finish`], one per correlation id (the
    /// first in the file), sorted by it.
    pub launches: Vec<Launch>,
    /// Pass 1: external ids of GPU activities (only ops with one of them need an entry in
    /// `by_external`). Emptied by [`Links::finish`].
    pub gpu_external_ids: Vec<i64>,
    /// After [`Links::finish`]: the ops a launch or a GPU activity's external id reaches.
    pub linked: Vec<LinkedOp>,
    /// After [`Links::finish`]: external id → position in `linked` (the first such op in the
    /// file), sorted by external id.
    pub by_external: Vec<(i64, u32)>,
    /// CPU-side windows (`cpu_op`/`user_annotation`/`Operator`), sorted by start.
    pub steps: Vec<Step>,
    /// `gpu_user_annotation` windows, for activities with no launch.
    pub gpu_steps: Vec<Step>,
    /// Distinct event names containing `ProfilerStep` (HTA's symbol-table test).
    pub step_names: HashSet<Box<str>>,
    /// Latest start of a non-GPU-activity event named like a ProfilerStep (CPU ops, user and
    /// gpu_user annotations: HTA 0.5's CPU side is every event with stream < 0).
    pub last_cpu_step_start: Option<i64>,
    /// HTA's cut-off, set by [`Links::finish`] when there are ≥ 2 distinct ProfilerStep names.
    pub hta_cutoff: Option<i64>,
}

impl Links {
    /// Resolves every launch's innermost enclosing op, indexes ops by external id, keeps only
    /// the ops something links to, and sorts steps.
    pub fn finish(&mut self) {
        // One launch per correlation id, the first in the file (a stable sort keeps file order).
        self.launches.sort_by_key(|l| l.correlation);
        self.launches.dedup_by_key(|l| l.correlation);
        // Per thread, by start; outer ops first when two start together, so the inner one ends
        // up on top of the stack; file order breaks the remaining ties.
        let mut ops = std::mem::take(&mut self.ops);
        ops.sort_unstable_by_key(|o| (o.thread, o.start, Reverse(o.end), o.index));
        let mut calls: Vec<u32> = (0..self.launches.len() as u32).collect();
        calls.sort_unstable_by_key(|&i| {
            let l = &self.launches[i as usize];
            (l.thread, l.ts, l.correlation)
        });
        // Launch → position in `ops` (the sorted order), for now.
        let mut stack: Vec<u32> = Vec::new();
        let (mut next, mut group) = (0usize, None);
        for &c in &calls {
            let (thread, ts) = (self.launches[c as usize].thread, self.launches[c as usize].ts);
            if group != Some(thread) {
                group = Some(thread);
                stack.clear();
                while next < ops.len() && ops[next].thread < thread {
                    next += 1;
                }
            }
            while next < ops.len() && ops[next].thread == thread && ops[next].start <= ts {
                let start = ops[next].start;
                while stack.last().is_some_and(|&top| ops[top as usize].end < start) {
                    stack.pop();
                }
                stack.push(next as u32);
                next += 1;
            }
            while stack.last().is_some_and(|&top| ops[top as usize].end < ts) {
                stack.pop();
            }
            self.launches[c as usize].op = stack.last().copied().unwrap_or(NONE_U32);
        }
        drop(calls);
        // External ids GPU activities carry → the first linkable op (in file order) with one.
        let mut wanted = std::mem::take(&mut self.gpu_external_ids);
        wanted.sort_unstable();
        wanted.dedup();
        let mut by_external: Vec<(i64, u32)> = ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.external_id != NONE_I64 && wanted.binary_search(&o.external_id).is_ok())
            .map(|(i, o)| (o.external_id, i as u32))
            .collect();
        drop(wanted);
        by_external.sort_unstable_by_key(|&(x, i)| (x, ops[i as usize].index));
        by_external.dedup_by_key(|e| e.0);
        // Keep only the reached ops, in file order; renumber the references.
        let mut reached: Vec<u32> = self.launches.iter().map(|l| l.op).filter(|&p| p != NONE_U32).collect();
        reached.extend(by_external.iter().map(|e| e.1));
        reached.sort_unstable_by_key(|&p| ops[p as usize].index);
        reached.dedup();
        let mut renumber = vec![NONE_U32; ops.len()];
        self.linked = reached
            .iter()
            .enumerate()
            .map(|(k, &p)| {
                renumber[p as usize] = k as u32;
                LinkedOp { index: u64::from(ops[p as usize].index), at: ops[p as usize].at }
            })
            .collect();
        drop(reached);
        drop(ops);
        for l in &mut self.launches {
            if l.op != NONE_U32 {
                l.op = renumber[l.op as usize];
            }
        }
        for e in &mut by_external {
            e.1 = renumber[e.1 as usize];
        }
        self.by_external = by_external;
        self.launches.shrink_to_fit();
        self.steps.sort_unstable_by_key(|s| (s.start, s.end));
        self.gpu_steps.sort_unstable_by_key(|s| (s.start, s.end));
        if self.step_names.len() >= 2 {
            self.hta_cutoff = self.last_cpu_step_start;
        }
    }

    /// The launch with this correlation id, after [`Links::finish`].
    pub fn launch(&self, correlation: i64) -> Option<&Launch> {
        let i = self.launches.binary_search_by_key(&correlation, |l| l.correlation).ok()?;
        Some(&self.launches[i])
    }

    /// The op (position in `linked`) that launched an activity, and how it was found.
    pub fn op_for(&self, correlation: Option<i64>, external_id: Option<i64>) -> Option<(u32, OpLink)> {
        correlation
            .and_then(|c| self.launch(c))
            .filter(|l| l.op != NONE_U32)
            .map(|l| (l.op, OpLink::Correlation))
            .or_else(|| {
                let x = external_id?;
                let i = self.by_external.binary_search_by_key(&x, |e| e.0).ok()?;
                Some((self.by_external[i].1, OpLink::ExternalId))
            })
    }

    /// Position in `linked` of the op event with this index, if a GPU activity links to it.
    pub fn linked_position(&self, index: u64) -> Option<u32> {
        self.linked.binary_search_by_key(&index, |o| o.index).ok().map(|i| i as u32)
    }

    /// `N` of the window holding `t`, if any.
    pub fn step_at(steps: &[Step], t: i64) -> Option<i64> {
        let i = steps.partition_point(|s| s.start <= t);
        // Steps do not nest, but a few ns of overlap between neighbours happen: look back a little.
        steps[..i].iter().rev().take(4).find(|s| t <= s.end).map(|s| s.n)
    }
}

/// `ProfilerStep#12` → 12.
pub(crate) fn profiler_step_number(name: &str) -> Option<i64> {
    name.strip_prefix("ProfilerStep#")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(thread: u32, start: i64, end: i64, index: u32) -> OpSpan {
        OpSpan { start, end, external_id: NONE_I64, at: u64::from(index) * 100, index, thread }
    }

    #[test]
    fn innermost_enclosing_op() {
        // Event indices 1..=4: outer, inner, later (thread 7), other (thread 8).
        let ops = vec![op(7, 0, 100, 1), op(7, 10, 40, 2), op(8, 0, 100, 3), op(7, 50, 60, 4)];
        let mut l = Links { ops, ..Default::default() };
        for (corr, ts) in [(5, 200), (1, 5), (2, 20), (3, 45), (4, 55), (1, 55)] {
            l.launches.push(Launch::new(corr, ts, 1, 7));
        }
        l.launches.push(Launch::new(6, 50, 1, 9));
        l.finish();
        // Thread 8's op and the op-less launches are not kept.
        let kept: Vec<u64> = l.linked.iter().map(|o| o.index).collect();
        assert_eq!(kept, vec![1, 2, 4]);
        assert_eq!(l.linked[2].at, 400);
        let got: Vec<Option<u64>> =
            (1..=6).map(|c| l.op_for(Some(c), None).map(|(p, _)| l.linked[p as usize].index)).collect();
        // Correlation 1 appears twice: the first (ts 5) wins.
        assert_eq!(got, vec![Some(1), Some(2), Some(1), Some(4), None, None]);
        assert_eq!(l.launches.len(), 6);
        assert_eq!(l.linked_position(4), Some(2));
        assert_eq!(l.linked_position(3), None);
    }

    #[test]
    fn external_ids_first_op_in_file_order() {
        let mut a = op(1, 0, 10, 9);
        a.external_id = 77;
        let mut b = op(2, 0, 10, 4);
        b.external_id = 77;
        let mut c = op(1, 20, 30, 12);
        c.external_id = 78;
        let mut l = Links { ops: vec![a, b, c], gpu_external_ids: vec![77, 77], ..Default::default() };
        l.finish();
        // Only ext id 77 is carried by a GPU activity; of its two ops the earlier event wins.
        assert_eq!(l.linked, vec![LinkedOp { index: 4, at: 400 }]);
        assert_eq!(l.op_for(None, Some(77)), Some((0, OpLink::ExternalId)));
        assert_eq!(l.op_for(Some(3), Some(78)), None);
    }

    #[test]
    fn steps() {
        let steps = [Step { start: 0, end: 10, n: 4 }, Step { start: 10, end: 20, n: 5 }];
        assert_eq!(Links::step_at(&steps, 5), Some(4));
        assert_eq!(Links::step_at(&steps, 10), Some(5));
        assert_eq!(Links::step_at(&steps, 21), None);
        assert_eq!(profiler_step_number("ProfilerStep#552"), Some(552));
    }
}
