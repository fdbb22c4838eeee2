//! A streaming parser for PyTorch profiler (Kineto / Chrome trace JSON) traces: the bytes of one
//! decompressed trace in, Arrow `RecordBatch`es of GPU activities (`kernels`), CPU ops (`ops`) and
//! devices (`devices`) out, with malformed events returned as [`Reject`]s and a [`TraceSummary`].
//!
//! A tour:
//! - [`scan`] (pass 1) walks the document once with serde's `Visitor`s, never materializing the
//!   event list or a `serde_json::Value` of the document: the top-level object's keys may come in
//!   any order, `traceEvents` is visited element by element as borrowed `&RawValue`s. It keeps only
//!   linking state ([`KinetoScan`]): runtime launches by correlation id, CPU ops (for the innermost
//!   enclosing op and the `ops` table), `ProfilerStep#N` windows and the small header keys
//!   (`deviceProperties`, `distributedInfo`, `baseTimeNanoseconds`, `schemaVersion`).
//! - [`KinetoScan::emit`] (pass 2) walks the events again and hands [`KinetoBatch`]es of at most
//!   `batch_rows` rows (`kernels` and `ops`) to a callback, so memory does not grow with the
//!   number of kernels or ops.
//! - [`parse_kineto`] does both and also emits the `devices` batch.
//! - [`CategoryRules`] fills `category` from `pipelines/categories/kernels.toml` (ordered regexes,
//!   first match wins; [`CategoryRules::default`] embeds the shipped file).
//! - The columns are declared in the schema registry (schemas/kernels.toml, ops.toml,
//!   devices.toml); [`kernels_schema`] etc. are their file schemas, which the builders fill.
//!
//! Rows: one per event with `ph: "X"` and `cat` in `kernel`, `gpu_memcpy`, `gpu_memset` (or the
//! 2021 `Kernel`, `Memcpy`, `Memset`). Times: `ts`/`dur` are µs written as decimals
//! (`4458676522690.655`); they are converted to integer ns from their text, exactly
//! ([`micros_text_to_ns`]), since 16+ significant digits do not survive f64.
//!
//! Linking a GPU activity to the CPU side:
//! - `op`: the activity's `correlation` finds the runtime/driver call (`cuda_runtime`,
//!   `cuda_driver`, 2021 `Runtime`) with the same correlation; its op is the innermost `cpu_op`
//!   (2021 `Operator`; not `ProfilerStep#N`, not `user_annotation`) on the same pid/tid whose
//!   `[ts, ts + dur]` holds the call's `ts`. Failing that, the `cpu_op` whose `External id` equals
//!   the activity's (`op_link` says which way was used).
//! - `step`: `N` of the CPU-side `ProfilerStep#N` window holding the launching call's `ts`; for an
//!   activity with no launching call, the `gpu_user_annotation` `ProfilerStep#N` window holding
//!   the activity's own start.
//! - `hta_window`: HTA 0.5 (`Trace._filter_irrelevant_gpu_kernels`) keeps a GPU activity only if
//!   a CPU-side event with its correlation starts before the latest start of a non-GPU event
//!   named like `ProfilerStep`, and only filters when the trace has ≥ 2 distinct event names
//!   containing `ProfilerStep`; otherwise every row is `true`. As in HTA, an activity with no
//!   launching call is `false` when the filter applies.
//! - `hta_category`: HTA's `get_kernel_type` (see [`hta_kernel_type`]): `^nccl.*Kernel` →
//!   `COMMUNICATION`, `Memcpy`/`Memset`/`dma` prefixes → `MEMORY`, other `…Memcpy…`/`…Sync…` →
//!   `OTHER`, else `COMPUTATION`.
//!
//! Collectives: `collective`, `in/out_msg_nelems`, `dtype`, `group_size`, `pg_name`, `pg_desc` come
//! from the kernel's args (`Collective name`, `In msg nelems`, ...); ROCm kernels lack them, so
//! they fall back to the linked `record_param_comms` op's args. `in/out_msg_bytes` = nelems ×
//! dtype size. `nccl_algorithm`/`nccl_protocol` (and `collective` when args lack it) are parsed
//! from `ncclKernel_AllReduce_RING_LL_Sum_float(...)` / `ncclDevKernel_AllReduce_Sum_f32_RING_LL`.
//!
//! FLOPs and bytes come from the launching op's `Input Dims` / `Input type` (sizes from
//! [`dtype_info`]). They are set on the op's FIRST GPU activity in file order and null on its
//! others, so summing `flops` over rows gives op totals without double counting:
//! - `mm` A\[M,K\]·B\[K,N\]: flops 2·M·N·K; bytes (MK + KN + MN)·size. `addmm`/`baddbmm` (and
//!   `linear` with a bias) add M·N flops for the bias add and the bias read to bytes, as TraceLens. `bmm` \[B,M,K\]·\[B,K,N\]: 2·B·M·N·K. `matmul`: numpy broadcasting, 1-D operands
//!   are vectors. `linear` x\[…,K\]·W\[N,K\]ᵀ: M = product of x's leading dims, 2·M·N·K.
//! - convolutions (`convolution`, `_convolution`, `conv1d/2d/3d`, `cudnn_convolution`,
//!   `miopen_convolution`): 2·N·C_out·∏out_spatial·(C_in/groups)·∏kernel, where out_spatial =
//!   ⌊(in + 2·pad − dil·(k−1) − 1)/stride⌋ + 1 from `Concrete Inputs` (null without them, and
//!   for transposed convs); bytes (input + weight + output)·size. `convolution_backward`: twice
//!   the forward FLOPs (grad input + grad weight), output size from grad_output; bytes
//!   (grad_out + 2·input + 2·weight)·size.
//! - attention forward (`scaled_dot_product_attention`, `_scaled_dot_product_{flash,efficient,
//!   cudnn}_attention` with q\[B,H,L,D\]; `_flash_attention_forward`, `_efficient_attention_forward`
//!   with q\[B,L,H,D\]): 2·B·H·Lq·Lk·D + 2·B·H·Lq·Lk·Dv, ignoring causal masking (an upper bound);
//!   bytes (q + k + v + out)·size.
//! - elementwise (`add`, `mul`, `sub`, `div`, `pow`, `where`, `relu`, `gelu`, `silu`, `sigmoid`,
//!   `tanh`, `exp`, `rsqrt`, ..., their in-place forms and `*_backward`): one flop per element of
//!   the broadcast output; bytes = every tensor input read + the output written at the first
//!   input's size. `copy_`: 0 flops, bytes = source + destination.
//! - anything else: null.
//!
//! Memory: pass 1 holds the linking state — per CPU op 40 bytes (times, external id, thread
//! number, event index, byte offset of the event), per runtime call 32 bytes, per step 24, per
//! GPU activity with an external id 8 — and borrows no text. [`Links::finish`] then keeps only
//! the ops some GPU activity links to (16 bytes each). Pass 2 holds one batch per table, a
//! per-kernel-name category cache, and the launching ops' names and inputs for at most 65,536
//! ops (filled as the walk passes an op, read again from the document at its offset when a
//! kernel comes before its op); `ops` rows are written as pass 2 walks past them.

mod categories;
mod columns;
mod event;
mod flops;
mod link;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;

use arrow::array::RecordBatch;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::rows::Reject;

pub use categories::{
    Activity, CategoryRules, DEFAULT_RULES_TOML, NcclKernelName, OTHER, RulesError, hta_kernel_type, memcpy_direction,
    memory_category, parse_nccl_kernel_name,
};
pub use columns::{
    Device, KernelBatchBuilder, KernelRow, OpBatchBuilder, OpRow, devices_batch, devices_schema, kernels_schema,
    ops_schema,
};
pub use event::{TimeError, micros_text_to_ns};
pub use flops::{OpCost, dtype_info, op_cost};
pub use link::OpLink;

use event::{Event, Id, raw_f64, raw_i64, raw_int_list, raw_str, raw_time_ns};
use link::{CollectiveArgs, Launch, Links, OpSpan, Step, profiler_step_number};

/// Rows per emitted batch unless the caller says otherwise.
pub const DEFAULT_BATCH_ROWS: usize = 16_384;

/// Why a whole document cannot be parsed (one bad event is a [`Reject`], not this).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KinetoError {
    /// Valid or not, the input is not a Kineto trace object with `traceEvents`.
    #[error("not a PyTorch profiler trace: {reason}")]
    NotATrace { reason: String },
    /// The JSON itself is broken (truncated file, garbage, bad nesting).
    #[error("invalid trace JSON at line {line}, column {column}: {message}")]
    Json { line: usize, column: usize, message: String },
    /// The batch callback asked to stop.
    #[error("batch consumer failed: {0}")]
    Sink(String),
    /// The progress callback asked to stop (e.g. a memory limit was reached).
    #[error("stopped: {0}")]
    Stopped(String),
}

fn json_error(e: serde_json::Error) -> KinetoError {
    KinetoError::Json { line: e.line(), column: e.column(), message: e.to_string() }
}

/// The top-level keys other than `traceEvents`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceHeader {
    /// `distributedInfo.rank`; 0 when absent (a warning says so).
    pub rank: i32,
    pub world_size: Option<i64>,
    pub backend: Option<String>,
    /// `baseTimeNanoseconds`: the Unix-epoch ns of trace time 0, when the trace has it.
    pub base_time_ns: Option<i64>,
    pub schema_version: Option<String>,
    pub devices: Vec<Device>,
    /// Things a person should know about this trace (missing rank, unreadable keys).
    pub warnings: Vec<String>,
}

/// Per-trace facts gathered over both passes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceSummary {
    pub header: TraceHeader,
    /// Elements of `traceEvents`.
    pub events: u64,
    /// Events by `cat` (`""` for none), most frequent first.
    pub events_by_cat: Vec<(String, u64)>,
    /// Events whose `ph` is missing or not a Chrome trace phase (ignored).
    pub unknown_ph: u64,
    /// Earliest `ts` and latest `ts + dur` over complete (`X`) events, trace-clock ns.
    pub span_start_ns: Option<i64>,
    pub span_end_ns: Option<i64>,
    /// Rows emitted, by activity.
    pub kernels: u64,
    pub memcpys: u64,
    pub memsets: u64,
    /// `cuda_sync` records (stream/context/event syncs, stream waits).
    pub syncs: u64,
    /// CPU-side `ProfilerStep#N` numbers, in time order.
    pub profiler_steps: Vec<i64>,
    /// Total GPU time by `category`, largest first.
    pub ns_by_category: Vec<(String, i64)>,
    /// Kernels categorized `other`: (name, total ns, count), largest total first.
    pub other_kernels: Vec<(String, i64, u64)>,
    pub rejects: u64,
}

impl TraceSummary {
    /// GPU rows of all kinds.
    pub fn gpu_rows(&self) -> u64 {
        self.kernels + self.memcpys + self.memsets + self.syncs
    }

    /// Share of GPU time in `other`, if there is any GPU time.
    pub fn other_share(&self) -> Option<f64> {
        let total: i64 = self.ns_by_category.iter().map(|c| c.1).sum();
        let other: i64 = self.ns_by_category.iter().filter(|c| c.0 == OTHER).map(|c| c.1).sum();
        (total > 0).then(|| other as f64 / total as f64)
    }
}

/// A batch handed to the caller's callback.
#[derive(Debug, Clone)]
pub enum KinetoBatch {
    Devices(RecordBatch),
    Kernels(RecordBatch),
    Ops(RecordBatch),
}

/// Everything [`parse_kineto`] returns besides the batches.
#[derive(Debug, Clone)]
pub struct KinetoReport {
    pub summary: TraceSummary,
    pub rejects: Vec<Reject>,
}

// ---------------------------------------------------------------------------------------------
// Event validation, shared by both passes so they agree on what is a row.

const KNOWN_PH: &[&str] = &[
    "B", "E", "X", "i", "I", "C", "b", "n", "e", "s", "t", "f", "S", "T", "p", "F", "P", "O", "N", "D", "M", "V", "v",
    "R", "c", "(", ")",
];

// Lives on the stack for one event at a time; boxing would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
enum Checked<'a> {
    /// `ph` missing or unknown.
    Ignored,
    /// A usable event; `ts`/`dur` present and valid for `X` events.
    Event { ev: Event<'a>, ts: Option<i64>, dur: Option<i64> },
}

fn check<'a>(index: u64, raw: &'a RawValue) -> Result<Checked<'a>, Reject> {
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
/// Map keys that outlive an event are owned: hashing or comparing a key borrowed from the
/// mapping would fault its page back in after the mapping was released (a large folio with it).
fn owned_entry<'m, V>(map: &'m mut HashMap<Box<str>, V>, key: &str, make: impl FnOnce() -> V) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.into(), make());
    }
    map.get_mut(key).expect("just inserted")
}

/// CPU-side events that are `ops` rows (and, unless annotations or steps, link targets).
fn is_op_cat(cat: &str) -> bool {
    matches!(cat, "cpu_op" | "Operator" | "user_annotation")
}

fn is_launch_cat(cat: &str) -> bool {
    matches!(cat, "cuda_runtime" | "cuda_driver" | "Runtime" | "mtia_runtime" | "privateuse1_runtime" | "xpu_runtime")
}

fn collective_args<'a>(args: &event::Args<'a>) -> Option<CollectiveArgs<'a>> {
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

// ---------------------------------------------------------------------------------------------
// The streaming walk over the top-level object.

trait Handler<'a> {
    fn event(&mut self, index: u64, raw: &'a RawValue) -> Result<(), KinetoError>;
}

#[derive(Default)]
struct RawHeader {
    saw_events: bool,
    events: u64,
    device_properties: Option<serde_json::Value>,
    distributed_info: Option<serde_json::Value>,
    base_time: Option<serde_json::Value>,
    schema_version: Option<serde_json::Value>,
}

/// Events between two progress calls.
const PROGRESS_EVERY: u64 = 8192;

struct TopVisitor<'h, 'a> {
    handler: &'h mut dyn Handler<'a>,
    want_header: bool,
    failure: &'h mut Option<KinetoError>,
    progress: &'h mut dyn FnMut(usize) -> Result<(), String>,
    base: usize,
}

impl<'a> Visitor<'a> for TopVisitor<'_, 'a> {
    type Value = RawHeader;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a trace object with `traceEvents`")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<RawHeader, A::Error> {
        let mut h = RawHeader::default();
        while let Some(key) = map.next_key::<Cow<'a, str>>()? {
            let slot = match key.as_ref() {
                "traceEvents" => {
                    h.saw_events = true;
                    let seed = EventsSeed {
                        handler: &mut *self.handler,
                        failure: &mut *self.failure,
                        first: h.events,
                        progress: &mut *self.progress,
                        base: self.base,
                    };
                    h.events = map.next_value_seed(seed)?;
                    continue;
                }
                _ if !self.want_header => None,
                "deviceProperties" => Some(&mut h.device_properties),
                "distributedInfo" => Some(&mut h.distributed_info),
                "baseTimeNanoseconds" => Some(&mut h.base_time),
                "schemaVersion" => Some(&mut h.schema_version),
                _ => None,
            };
            match slot {
                // Small values: a few devices, a process-group table, two scalars.
                Some(slot) => *slot = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(h)
    }
}

struct EventsSeed<'h, 'a> {
    handler: &'h mut dyn Handler<'a>,
    failure: &'h mut Option<KinetoError>,
    /// Events already seen (a second `traceEvents` key continues the numbering).
    first: u64,
    progress: &'h mut dyn FnMut(usize) -> Result<(), String>,
    /// Address of the document's first byte, to turn an event's address into an offset.
    base: usize,
}

impl<'a> DeserializeSeed<'a> for EventsSeed<'_, 'a> {
    type Value = u64;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'a> Visitor<'a> for EventsSeed<'_, 'a> {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of trace events")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = self.first;
        while let Some(raw) = seq.next_element::<&'a RawValue>()? {
            n += 1;
            if n.is_multiple_of(PROGRESS_EVERY)
                && let Err(why) = (self.progress)((raw.get().as_ptr() as usize).saturating_sub(self.base))
            {
                *self.failure = Some(KinetoError::Stopped(why));
                return Err(A::Error::custom("stopped by the progress callback"));
            }
            if let Err(e) = self.handler.event(n, raw) {
                *self.failure = Some(e);
                return Err(A::Error::custom("stopped by the batch consumer"));
            }
        }
        Ok(n)
    }
}

fn walk<'a>(
    bytes: &'a [u8],
    handler: &mut dyn Handler<'a>,
    want_header: bool,
    progress: &mut dyn FnMut(usize) -> Result<(), String>,
) -> Result<RawHeader, KinetoError> {
    let body = crate::strip_bom(bytes);
    match body.iter().find(|c| !c.is_ascii_whitespace()) {
        None => return Err(KinetoError::NotATrace { reason: "the input is empty".into() }),
        Some(b'{') => {}
        Some(_) => return Err(KinetoError::NotATrace { reason: "the document is not a JSON object".into() }),
    }
    let mut failure = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = (&mut de)
        .deserialize_map(TopVisitor {
            handler,
            want_header,
            failure: &mut failure,
            progress,
            base: bytes.as_ptr() as usize,
        })
        .and_then(|h| de.end().map(|()| h));
    if let Some(f) = failure {
        return Err(f);
    }
    let header = result.map_err(json_error)?;
    if !header.saw_events {
        return Err(KinetoError::NotATrace { reason: "the top-level object has no `traceEvents`".into() });
    }
    Ok(header)
}

fn interpret_header(raw: RawHeader) -> TraceHeader {
    let mut h = TraceHeader::default();
    match &raw.distributed_info {
        Some(d) => {
            match d.get("rank").and_then(|r| r.as_i64()).and_then(|r| i32::try_from(r).ok()) {
                Some(r) => h.rank = r,
                None => h.warnings.push("distributedInfo has no integer `rank`; rank defaults to 0".into()),
            }
            h.world_size = d.get("world_size").and_then(|w| w.as_i64());
            h.backend = d.get("backend").and_then(|b| b.as_str()).map(str::to_string);
        }
        None => h.warnings.push("no distributedInfo; rank defaults to 0".into()),
    }
    h.base_time_ns = raw.base_time.as_ref().and_then(|b| {
        b.as_i64().or_else(|| b.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18).map(|f| f as i64))
    });
    if raw.base_time.is_some() && h.base_time_ns.is_none() {
        h.warnings.push("baseTimeNanoseconds is not an integer; start_time left null".into());
    }
    h.schema_version = raw.schema_version.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    match raw.device_properties {
        Some(serde_json::Value::Array(list)) => h.devices = list.iter().map(Device::from_json).collect(),
        Some(_) => h.warnings.push("deviceProperties is not an array; no device rows".into()),
        None => {}
    }
    h
}

// ---------------------------------------------------------------------------------------------
// Pass 1.

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
}

impl<'a> Handler<'a> for Scanner {
    fn event(&mut self, index: u64, raw: &'a RawValue) -> Result<(), KinetoError> {
        let (ev, ts, dur) = match check(index, raw) {
            Err(r) => {
                self.rejects.push(r);
                return Ok(());
            }
            Ok(Checked::Ignored) => {
                self.unknown_ph += 1;
                return Ok(());
            }
            Ok(Checked::Event { ev, ts, dur }) => (ev, ts, dur),
        };
        *owned_entry(&mut self.by_cat, ev.cat.as_deref().unwrap_or(""), || 0) += 1;
        if ev.ph.as_deref() != Some("X") {
            return Ok(());
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
        Ok(())
    }
}

/// Pass 1 over one trace: its header, linking state and rejects. Borrows the input bytes.
pub struct KinetoScan<'a> {
    bytes: &'a [u8],
    header: TraceHeader,
    links: Links,
    events: u64,
    by_cat: Vec<(String, u64)>,
    unknown_ph: u64,
    span: Option<(i64, i64)>,
    rejects: Vec<Reject>,
}

/// Pass 1: walks `bytes` (one whole decompressed trace) and gathers the linking state.
pub fn scan(bytes: &[u8]) -> Result<KinetoScan<'_>, KinetoError> {
    scan_with_progress(bytes, &mut |_| Ok(()))
}

/// [`scan`], calling `progress` with the byte offset reached every few thousand events (a
/// memory-mapped caller uses it to let go of pages behind the cursor).
pub fn scan_with_progress<'a>(
    bytes: &'a [u8],
    progress: &mut dyn FnMut(usize) -> Result<(), String>,
) -> Result<KinetoScan<'a>, KinetoError> {
    let mut s = Scanner { base: bytes.as_ptr() as usize, ..Default::default() };
    let raw = walk(bytes, &mut s, true, progress)?;
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

impl<'a> KinetoScan<'a> {
    /// The top-level keys: rank, world size, base time, schema version, devices, warnings.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// Events that could not be used, with their 1-based index in `traceEvents` as `line`.
    pub fn rejects(&self) -> &[Reject] {
        &self.rejects
    }

    /// The `devices` batch from `deviceProperties`.
    pub fn devices_batch(&self, file: &str) -> RecordBatch {
        devices_batch(&self.header.devices, file, self.header.rank)
    }

    /// Pass 2: emits `kernels` and `ops` batches (each table's rows in event order, the two
    /// interleaved), each of at most `batch_rows` rows, to `sink`; returns the trace summary. `file` fills the `file` column.
    pub fn emit(
        &self,
        file: &str,
        rules: &CategoryRules,
        batch_rows: usize,
        sink: &mut dyn FnMut(KinetoBatch) -> Result<(), String>,
    ) -> Result<TraceSummary, KinetoError> {
        self.emit_with_progress(file, rules, batch_rows, sink, &mut |_| Ok(()))
    }

    /// [`KinetoScan::emit`] with a progress callback as in [`scan_with_progress`].
    pub fn emit_with_progress(
        &self,
        file: &str,
        rules: &CategoryRules,
        batch_rows: usize,
        sink: &mut dyn FnMut(KinetoBatch) -> Result<(), String>,
        progress: &mut dyn FnMut(usize) -> Result<(), String>,
    ) -> Result<TraceSummary, KinetoError> {
        let batch_rows = batch_rows.max(1);
        let mut e = Emitter {
            scan: self,
            rules,
            file,
            batch_rows,
            sink,
            builder: KernelBatchBuilder::new(),
            ops: OpBatchBuilder::default(),
            categories: HashMap::new(),
            linked_ops: HashMap::new(),
            charged: vec![false; self.links.linked.len()],
            by_category: HashMap::new(),
            other: HashMap::new(),
            counts: [0; 4],
        };
        walk(self.bytes, &mut e, false, progress)?;
        e.flush()?;
        e.flush_ops()?;
        let mut ns_by_category: Vec<(String, i64)> = e.by_category.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        ns_by_category.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut other_kernels: Vec<(String, i64, u64)> =
            e.other.iter().map(|(k, v)| (k.to_string(), v.0, v.1)).collect();
        other_kernels.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(TraceSummary {
            header: self.header.clone(),
            events: self.events,
            events_by_cat: self.by_cat.clone(),
            unknown_ph: self.unknown_ph,
            span_start_ns: self.span.map(|s| s.0),
            span_end_ns: self.span.map(|s| s.1),
            kernels: e.counts[0],
            memcpys: e.counts[1],
            memsets: e.counts[2],
            syncs: e.counts[3],
            profiler_steps: self.links.steps.iter().map(|s| s.n).collect(),
            ns_by_category,
            other_kernels,
            rejects: self.rejects.len() as u64,
        })
    }
}

/// Scans, emits the `devices` batch, then the `kernels` and `ops` batches of one trace.
pub fn parse_kineto(
    bytes: &[u8],
    file: &str,
    rules: &CategoryRules,
    batch_rows: usize,
    sink: &mut dyn FnMut(KinetoBatch) -> Result<(), String>,
) -> Result<KinetoReport, KinetoError> {
    parse_kineto_with_progress(bytes, file, rules, batch_rows, sink, &mut |_| Ok(()))
}

/// [`parse_kineto`] calling `progress` with the byte offset reached in each pass (see
/// [`scan_with_progress`]).
pub fn parse_kineto_with_progress(
    bytes: &[u8],
    file: &str,
    rules: &CategoryRules,
    batch_rows: usize,
    sink: &mut dyn FnMut(KinetoBatch) -> Result<(), String>,
    progress: &mut dyn FnMut(usize) -> Result<(), String>,
) -> Result<KinetoReport, KinetoError> {
    let s = scan_with_progress(bytes, progress)?;
    if !s.header.devices.is_empty() {
        sink(KinetoBatch::Devices(s.devices_batch(file))).map_err(KinetoError::Sink)?;
    }
    let summary = s.emit_with_progress(file, rules, batch_rows, sink, progress)?;
    Ok(KinetoReport { summary, rejects: s.rejects })
}

// ---------------------------------------------------------------------------------------------
// Pass 2.

struct Emitter<'s, 'a, 'r> {
    scan: &'s KinetoScan<'a>,
    rules: &'r CategoryRules,
    file: &'s str,
    batch_rows: usize,
    sink: &'s mut dyn FnMut(KinetoBatch) -> Result<(), String>,
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

/// Entries of [`Emitter::linked_ops`] before it is emptied (about 200 bytes each, texts borrowed).
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

impl Emitter<'_, '_, '_> {
    fn flush(&mut self) -> Result<(), KinetoError> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let batch = self.builder.finish(self.file, self.scan.header.rank);
        (self.sink)(KinetoBatch::Kernels(batch)).map_err(KinetoError::Sink)
    }

    fn flush_ops(&mut self) -> Result<(), KinetoError> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let batch = self.ops.finish(self.file, self.scan.header.rank);
        (self.sink)(KinetoBatch::Ops(batch)).map_err(KinetoError::Sink)
    }
}

impl<'a> Emitter<'_, 'a, '_> {
    /// One `ops` row, and the op's cache entry when a GPU activity links to it.
    fn op_event(&mut self, index: u64, ev: &Event<'a>, ts: i64, dur: i64) -> Result<(), KinetoError> {
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

impl<'a, 'r> Handler<'a> for Emitter<'_, 'a, 'r> {
    fn event(&mut self, index: u64, raw: &'a RawValue) -> Result<(), KinetoError> {
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
