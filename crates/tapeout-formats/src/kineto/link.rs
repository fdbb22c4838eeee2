//! Pass 1 state: what is needed to link each GPU activity to the CPU side — runtime launches by
//! correlation id, CPU ops per thread (for the innermost enclosing op), ops by external id, and
//! `ProfilerStep#N` windows. Its size follows the number of CPU events, never the GPU rows.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_json::value::RawValue;

use super::event::Id;

/// A CPU op (`cpu_op` / 2021 `Operator`) or `user_annotation`.
#[derive(Debug)]
pub(crate) struct CpuOp<'a> {
    pub thread: (Id<'a>, Id<'a>),
    pub start: i64,
    pub end: i64,
    pub name: Cow<'a, str>,
    pub cat: Cow<'a, str>,
    pub external_id: Option<i64>,
    pub dims: Option<&'a RawValue>,
    pub types: Option<&'a RawValue>,
    pub concrete: Option<&'a RawValue>,
    /// `record_param_comms` carries the collective's args; kept for kernels that lack them (ROCm).
    pub collective: Option<Box<CollectiveArgs<'a>>>,
    /// 1-based event index.
    pub index: u64,
    /// Whether a kernel can be attributed to it: real ops, not annotations or `ProfilerStep#N`.
    pub linkable: bool,
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

/// A runtime/driver call that launched GPU work, keyed by its correlation id.
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    pub thread: (Id<'a>, Id<'a>),
    pub ts: i64,
    pub dur: i64,
    /// Filled by [`Links::finish`].
    pub op: Option<u32>,
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
pub(crate) struct Links<'a> {
    pub ops: Vec<CpuOp<'a>>,
    pub launches: HashMap<i64, Launch<'a>>,
    pub by_external: HashMap<i64, u32>,
    /// CPU-side windows (`cpu_op`/`user_annotation`/`Operator`), sorted by start.
    pub steps: Vec<Step>,
    /// `gpu_user_annotation` windows, for activities with no launch.
    pub gpu_steps: Vec<Step>,
    /// Distinct event names containing `ProfilerStep` (HTA's symbol-table test).
    pub step_names: HashSet<Cow<'a, str>>,
    /// Latest start of a non-GPU-activity event named like a ProfilerStep (CPU ops, user and
    /// gpu_user annotations: HTA 0.5's CPU side is every event with stream < 0).
    pub last_cpu_step_start: Option<i64>,
    /// HTA's cut-off, set by [`Links::finish`] when there are ≥ 2 distinct ProfilerStep names.
    pub hta_cutoff: Option<i64>,
}

impl<'a> Links<'a> {
    /// Resolves every launch's innermost enclosing op, indexes ops by external id and sorts steps.
    pub fn finish(&mut self) {
        let mut by_thread: HashMap<&(Id<'a>, Id<'a>), Vec<u32>> = HashMap::new();
        for (i, op) in self.ops.iter().enumerate() {
            if op.linkable {
                by_thread.entry(&op.thread).or_default().push(i as u32);
                if let Some(x) = op.external_id {
                    self.by_external.entry(x).or_insert(i as u32);
                }
            }
        }
        let mut launches_by_thread: HashMap<&(Id<'a>, Id<'a>), Vec<(i64, i64)>> = HashMap::new();
        for (&corr, l) in &self.launches {
            launches_by_thread.entry(&l.thread).or_default().push((l.ts, corr));
        }
        let mut found: Vec<(i64, u32)> = Vec::new();
        for (thread, mut calls) in launches_by_thread {
            let Some(ops) = by_thread.get_mut(thread) else { continue };
            // Outer ops first when two start together, so the inner one ends up on top.
            ops.sort_by_key(|&i| (self.ops[i as usize].start, std::cmp::Reverse(self.ops[i as usize].end)));
            calls.sort_unstable();
            let mut stack: Vec<u32> = Vec::new();
            let mut next = 0;
            for (ts, corr) in calls {
                while next < ops.len() && self.ops[ops[next] as usize].start <= ts {
                    let start = self.ops[ops[next] as usize].start;
                    while stack.last().is_some_and(|&top| self.ops[top as usize].end < start) {
                        stack.pop();
                    }
                    stack.push(ops[next]);
                    next += 1;
                }
                while stack.last().is_some_and(|&top| self.ops[top as usize].end < ts) {
                    stack.pop();
                }
                if let Some(&top) = stack.last() {
                    found.push((corr, top));
                }
            }
        }
        for (corr, op) in found {
            if let Some(l) = self.launches.get_mut(&corr) {
                l.op = Some(op);
            }
        }
        self.steps.sort_unstable_by_key(|s| (s.start, s.end));
        self.gpu_steps.sort_unstable_by_key(|s| (s.start, s.end));
        if self.step_names.len() >= 2 {
            self.hta_cutoff = self.last_cpu_step_start;
        }
    }

    /// The op that launched an activity, and how it was found.
    pub fn op_for(&self, correlation: Option<i64>, external_id: Option<i64>) -> Option<(u32, OpLink)> {
        correlation
            .and_then(|c| self.launches.get(&c))
            .and_then(|l| l.op)
            .map(|op| (op, OpLink::Correlation))
            .or_else(|| external_id.and_then(|x| self.by_external.get(&x)).map(|&op| (op, OpLink::ExternalId)))
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

    fn op(tid: i64, start: i64, end: i64, name: &'static str) -> CpuOp<'static> {
        CpuOp {
            thread: (Id::Num(1), Id::Num(tid)),
            start,
            end,
            name: Cow::Borrowed(name),
            cat: Cow::Borrowed("cpu_op"),
            external_id: None,
            dims: None,
            types: None,
            concrete: None,
            collective: None,
            index: 0,
            linkable: true,
        }
    }

    #[test]
    fn innermost_enclosing_op() {
        let ops = vec![op(7, 0, 100, "outer"), op(7, 10, 40, "inner"), op(7, 50, 60, "later"), op(8, 0, 100, "other")];
        let mut l = Links { ops, ..Default::default() };
        for (corr, ts) in [(1, 5), (2, 20), (3, 45), (4, 55), (5, 200)] {
            l.launches.insert(corr, Launch { thread: (Id::Num(1), Id::Num(7)), ts, dur: 1, op: None });
        }
        l.finish();
        let got: Vec<Option<u32>> = (1..=5).map(|c| l.launches[&c].op).collect();
        assert_eq!(got, vec![Some(0), Some(1), Some(0), Some(2), None]);
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
