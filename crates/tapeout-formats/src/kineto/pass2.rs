//! Pass 2: walks the events again and builds `kernels` and `ops` rows from the linking state
//! of pass 1, handing batches of at most `batch_rows` rows to the caller's sink.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::check::{Checked, check, collective_args, is_op_cat, owned_entry};
use super::event::{self, Event, Id, raw_f64, raw_i64, raw_int_list, raw_str};
use super::link::{CollectiveArgs, Links};
use super::walk::{Handler, walk};
use super::{
    Activity, CategoryRules, EmitError, KernelBatchBuilder, KernelRow, KinetoBatch, KinetoError, KinetoScan,
    KinetoSink, OTHER, OpBatchBuilder, OpCost, OpRow, TraceSummary, dtype_info, hta_kernel_type, json_error,
    memcpy_direction, memory_category, op_cost, parse_nccl_kernel_name,
};

/// Pass 2 over the document `scan` came from: emits `kernels` and `ops` batches to `sink` and
/// returns the trace summary (see [`KinetoScan::emit`]).
pub(super) fn emit<S: KinetoSink>(
    scan: &KinetoScan<'_>,
    file: &str,
    rules: &CategoryRules,
    batch_rows: usize,
    sink: &mut S,
) -> Result<TraceSummary, EmitError<S::Error>> {
    let mut e = Emitter {
        scan,
        rules,
        file,
        batch_rows: batch_rows.max(1),
        sink,
        builder: KernelBatchBuilder::new(),
        ops: OpBatchBuilder::default(),
        categories: HashMap::new(),
        linked_ops: HashMap::new(),
        charged: vec![false; scan.links.linked.len()],
        by_category: HashMap::new(),
        other: HashMap::new(),
        counts: [0; 4],
    };
    walk(scan.bytes, &mut e, false)?;
    e.flush()?;
    e.flush_ops()?;
    let mut ns_by_category: Vec<(String, i64)> = e.by_category.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    ns_by_category.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut other_kernels: Vec<(String, i64, u64)> = e.other.iter().map(|(k, v)| (k.to_string(), v.0, v.1)).collect();
    other_kernels.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(TraceSummary {
        header: scan.header.clone(),
        events: scan.events,
        events_by_cat: scan.by_cat.clone(),
        unknown_ph: scan.unknown_ph,
        span_start_ns: scan.span.map(|s| s.0),
        span_end_ns: scan.span.map(|s| s.1),
        kernels: e.counts[0],
        memcpys: e.counts[1],
        memsets: e.counts[2],
        syncs: e.counts[3],
        profiler_steps: scan.links.steps.iter().map(|s| s.n).collect(),
        ns_by_category,
        other_kernels,
        rejects: scan.rejects.len() as u64,
    })
}

struct Emitter<'s, 'a, 'r, S> {
    scan: &'s KinetoScan<'a>,
    rules: &'r CategoryRules,
    file: &'s str,
    batch_rows: usize,
    sink: &'s mut S,
    builder: KernelBatchBuilder,
    ops: OpBatchBuilder,
    /// Category by kernel name: a trace repeats a few hundred names thousands of times.
    categories: HashMap<Box<str>, &'r str>,
    /// What kernels need of their ops, by position in `Links::linked`: filled as the walk passes
    /// an op, or read again from the document when a kernel comes first. At most
    /// [`LINKED_OP_CACHE`] entries.
    linked_ops: HashMap<u32, LinkedOpInfo<'a>>,
    /// Ops whose FLOPs were already put on a row, by position in `Links::linked`.
    charged: Vec<bool>,
    by_category: HashMap<&'r str, i64>,
    other: HashMap<Box<str>, (i64, u64)>,
    counts: [u64; 4],
}

/// Entries of [`Emitter::linked_ops`] before it is emptied (about 200 bytes each, texts borrowed
/// from the document).
const LINKED_OP_CACHE: usize = 1 << 16;

/// The parts of a launching op a kernel row uses.
struct LinkedOpInfo<'a> {
    name: Cow<'a, str>,
    dims: Option<&'a RawValue>,
    types: Option<&'a RawValue>,
    collective: Option<CollectiveArgs<'a>>,
    index: u64,
    cost: OpCost,
}

impl<'a> LinkedOpInfo<'a> {
    fn new(ev: &Event<'a>, index: u64) -> LinkedOpInfo<'a> {
        let name = ev.name.and_then(raw_str).unwrap_or_default();
        let args = ev.args.as_ref();
        let dims = args.and_then(|a| a.input_dims);
        let types = args.and_then(|a| a.input_types);
        let cost = op_cost(&name, dims, types, args.and_then(|a| a.concrete_inputs));
        LinkedOpInfo { collective: args.and_then(collective_args), name, dims, types, index, cost }
    }
}

/// The op at position `p` of `Links::linked`, from the cache or read again from the document.
fn linked_op<'c, 'a>(
    cache: &'c mut HashMap<u32, LinkedOpInfo<'a>>,
    scan: &KinetoScan<'a>,
    p: u32,
) -> Result<&'c LinkedOpInfo<'a>, KinetoError> {
    if !cache.contains_key(&p) {
        let op = scan.links.linked[p as usize];
        let bytes: &'a [u8] = scan.bytes;
        let mut de = serde_json::Deserializer::from_slice(&bytes[op.at as usize..]);
        // Pass 1 parsed this very event, so this cannot fail on unchanged input.
        let ev = Event::deserialize(&mut de).map_err(json_error)?;
        remember_linked_op(cache, p, LinkedOpInfo::new(&ev, op.index));
    }
    Ok(&cache[&p])
}

/// Adds an entry to the linked-op cache, emptying it first when it is full.
fn remember_linked_op<'a>(cache: &mut HashMap<u32, LinkedOpInfo<'a>>, p: u32, info: LinkedOpInfo<'a>) {
    if cache.len() >= LINKED_OP_CACHE {
        cache.clear();
    }
    cache.insert(p, info);
}

impl<S: KinetoSink> Emitter<'_, '_, '_, S> {
    fn flush(&mut self) -> Result<(), EmitError<S::Error>> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let batch = self.builder.finish(self.file, self.scan.header.rank);
        self.sink.batch(KinetoBatch::Kernels(batch)).map_err(EmitError::Sink)
    }

    fn flush_ops(&mut self) -> Result<(), EmitError<S::Error>> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let batch = self.ops.finish(self.file, self.scan.header.rank);
        self.sink.batch(KinetoBatch::Ops(batch)).map_err(EmitError::Sink)
    }
}

impl<'a, S: KinetoSink> Emitter<'_, 'a, '_, S> {
    /// One `ops` row, and the op's cache entry when a GPU activity links to it.
    fn op_event(&mut self, index: u64, ev: &Event<'a>, ts: i64, dur: i64) -> Result<(), EmitError<S::Error>> {
        if let Some(p) = self.scan.links.linked_position(index)
            && !self.linked_ops.contains_key(&p)
        {
            remember_linked_op(&mut self.linked_ops, p, LinkedOpInfo::new(ev, index));
        }
        let name = ev.name.and_then(raw_str).unwrap_or_default();
        let args = ev.args.as_ref();
        let (pid, tid) = (Id::parse(ev.pid).to_text(), Id::parse(ev.tid).to_text());
        let row = OpRow {
            event_index: index as i64,
            cat: ev.cat.as_deref().unwrap_or(""),
            name: &name,
            pid: &pid,
            tid: &tid,
            start_ns: ts,
            dur_ns: dur,
            external_id: args.and_then(event::Args::external_id),
            input_dims: args.and_then(|a| a.input_dims).map(RawValue::get),
            input_types: args.and_then(|a| a.input_types).map(RawValue::get),
            step: Links::step_at(&self.scan.links.steps, ts),
        };
        self.ops.push(&row, self.scan.header.base_time_ns);
        if self.ops.len() >= self.batch_rows {
            self.flush_ops()?;
        }
        Ok(())
    }
}

impl<'a, 'r, S: KinetoSink> Handler<'a> for Emitter<'_, 'a, 'r, S> {
    type Error = S::Error;

    fn progress(&mut self, offset: usize) -> Result<(), S::Error> {
        self.sink.progress(offset)
    }

    fn event(&mut self, index: u64, raw: &'a RawValue) -> Result<(), EmitError<S::Error>> {
        let Ok(Checked::Event { ev, ts: Some(ts), dur: Some(dur) }) = check(index, raw) else { return Ok(()) };
        if ev.ph.as_deref() != Some("X") {
            return Ok(());
        }
        if ev.cat.as_deref().is_some_and(is_op_cat) {
            return self.op_event(index, &ev, ts, dur);
        }
        let Some(activity) = ev.cat.as_deref().and_then(Activity::from_cat) else { return Ok(()) };
        let links = &self.scan.links;
        let name: Cow<'a, str> = ev.name.and_then(raw_str).unwrap_or_default();
        let args = ev.args.unwrap_or_default();
        let correlation = args.correlation.and_then(raw_i64);
        let external_id = args.external_id();
        let kind = args.kind.and_then(raw_str);
        let direction = if activity == Activity::Memcpy { memcpy_direction(&name, kind.as_deref()) } else { None };
        let category: &'r str = match activity {
            Activity::Kernel => owned_entry(&mut self.categories, &name, || self.rules.categorize(&name)),
            Activity::Sync => "sync",
            _ => memory_category(activity, direction),
        };
        let linked = links.op_for(correlation, external_id);
        let first_for_op = linked.is_some_and(|(p, _)| !std::mem::replace(&mut self.charged[p as usize], true));
        let op = match linked {
            Some((p, _)) => Some(linked_op(&mut self.linked_ops, self.scan, p)?),
            None => None,
        };
        let cost = op.map(|o| o.cost);
        let launch = correlation.and_then(|c| links.launch(c));
        let step = match launch {
            Some(l) => Links::step_at(&links.steps, l.ts),
            None => Links::step_at(&links.gpu_steps, ts),
        };
        let hta_window = match links.hta_cutoff {
            None => true,
            Some(cut) => launch.is_some_and(|l| l.ts < cut),
        };
        let nccl = parse_nccl_kernel_name(&name);
        let own_coll = collective_args(&args);
        let coll: Option<&CollectiveArgs> = own_coll.as_ref().or_else(|| {
            (nccl.is_some() || category == "communication").then(|| op.and_then(|o| o.collective.as_ref())).flatten()
        });
        let coll_dtype = coll.and_then(|c| c.dtype.as_deref());
        let coll_size = coll_dtype.and_then(dtype_info);
        let dtype = match coll_dtype {
            Some(d) => Some(coll_size.map_or(d, |s| s.0)),
            None => cost.and_then(|c| c.dtype),
        };
        let msg_bytes = |n: Option<i64>| n.zip(coll_size).and_then(|(n, s)| n.checked_mul(s.1));
        let row = KernelRow {
            event_index: index as i64,
            activity: activity.id(),
            device: args.device.and_then(raw_i64).and_then(|d| i32::try_from(d).ok()),
            stream: args.stream.and_then(raw_i64),
            name: &name,
            category,
            hta_category: hta_kernel_type(&name),
            start_ns: ts,
            dur_ns: dur,
            correlation,
            external_id,
            grid: args.grid.and_then(raw_int_list),
            block: args.block.and_then(raw_int_list),
            registers_per_thread: args.registers.and_then(raw_i64).and_then(|r| i32::try_from(r).ok()),
            shared_memory: args.shared_memory.and_then(raw_i64),
            occupancy_pct: args.occupancy.and_then(raw_f64),
            memcpy_direction: direction,
            copy_bytes: if activity == Activity::Kernel { None } else { args.bytes.and_then(raw_i64) },
            op: op.map(|o| o.name.as_ref()),
            op_link: linked.map(|(_, how)| how.id()),
            op_input_dims: op.and_then(|o| o.dims).map(RawValue::get),
            op_input_types: op.and_then(|o| o.types).map(RawValue::get),
            flops: cost.filter(|_| first_for_op).and_then(|c| c.flops),
            bytes: cost.filter(|_| first_for_op).and_then(|c| c.bytes),
            dtype,
            step,
            hta_window,
            collective: coll.and_then(|c| c.name.as_deref()).or(nccl.as_ref().and_then(|n| n.collective)),
            in_msg_nelems: coll.and_then(|c| c.in_nelems),
            out_msg_nelems: coll.and_then(|c| c.out_nelems),
            in_msg_bytes: msg_bytes(coll.and_then(|c| c.in_nelems)),
            out_msg_bytes: msg_bytes(coll.and_then(|c| c.out_nelems)),
            group_size: coll.and_then(|c| c.group_size).and_then(|g| i32::try_from(g).ok()),
            pg_name: coll.and_then(|c| c.pg_name.as_deref()),
            pg_desc: coll.and_then(|c| c.pg_desc.as_deref()),
            nccl_algorithm: nccl.as_ref().and_then(|n| n.algorithm.as_deref()),
            nccl_protocol: nccl.as_ref().and_then(|n| n.protocol),
            launch_start_ns: launch.map(|l| l.ts),
            launch_dur_ns: launch.map(|l| l.dur),
            op_event_index: op.map(|o| o.index as i64),
        };
        self.builder.push(&row, self.scan.header.base_time_ns);
        self.counts[activity as usize] += 1;
        let slot = self.by_category.entry(category).or_default();
        *slot = slot.saturating_add(dur);
        if category == OTHER {
            let o = owned_entry(&mut self.other, &name, Default::default);
            o.0 = o.0.saturating_add(dur);
            o.1 += 1;
        }
        if self.builder.len() >= self.batch_rows {
            self.flush()?;
        }
        Ok(())
    }
}
