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
//!   `batch_rows` rows (`kernels` and `ops`) to the caller's [`KinetoSink`], so memory does not
//!   grow with the number of kernels or ops.
//! - [`parse_kineto`] does both and also emits the `devices` batch.
//! - A [`KinetoSink`] has its own error type (as ripgrep's `Sink::Error`): the parser stops at the
//!   sink's first error and returns it unchanged in [`EmitError::Sink`]; the parser's own errors
//!   are [`EmitError::Kineto`]. The sink also hears the byte offset reached every few thousand
//!   events of each pass (a memory-mapped caller lets go of pages behind it there).
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
//! Files: `check.rs` (event validation, shared by both passes), `walk.rs` (the streaming walk
//! over the top-level object), `pass1.rs`, `pass2.rs`; `event.rs` (borrowed event fields and
//! exact µs → ns), `link.rs` (linking state), `flops.rs`, `categories.rs`, `columns.rs` (row
//! builders).
//!
//! Memory: pass 1 holds the linking state — per CPU op 40 bytes (times, external id, thread
//! number, event index, byte offset of the event), per runtime call 32 bytes, per step 24, per
//! GPU activity with an external id 8 — and borrows no text. [`Links::finish`] then keeps only
//! the ops some GPU activity links to (16 bytes each). Pass 2 holds one batch per table, a
//! per-kernel-name category cache, and the launching ops' names and inputs for at most 65,536
//! ops (filled as the walk passes an op, read again from the document at its offset when a
//! kernel comes before its op); `ops` rows are written as pass 2 walks past them.

mod categories;
mod check;
mod columns;
mod event;
mod flops;
mod link;
mod pass1;
mod pass2;
mod walk;

#[cfg(test)]
mod tests;

use std::convert::Infallible;

use arrow::array::RecordBatch;

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

use link::Links;

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
}

/// Why parsing stopped: the document, or the caller's [`KinetoSink`] (its error, unchanged).
#[derive(Debug, Clone, PartialEq)]
pub enum EmitError<E> {
    Kineto(KinetoError),
    Sink(E),
}

impl<E> From<KinetoError> for EmitError<E> {
    fn from(e: KinetoError) -> Self {
        EmitError::Kineto(e)
    }
}

impl From<EmitError<Infallible>> for KinetoError {
    fn from(e: EmitError<Infallible>) -> Self {
        match e {
            EmitError::Kineto(e) => e,
            EmitError::Sink(never) => match never {},
        }
    }
}

impl<E: std::fmt::Display> std::fmt::Display for EmitError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmitError::Kineto(e) => e.fmt(f),
            EmitError::Sink(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for EmitError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EmitError::Kineto(e) => Some(e),
            EmitError::Sink(e) => Some(e),
        }
    }
}

/// Where the parser's batches (and progress reports) go; generic over the caller's error, which
/// stops the parse and comes back as [`EmitError::Sink`]. A closure
/// `FnMut(KinetoBatch) -> Result<(), E>` is a sink that ignores progress.
pub trait KinetoSink {
    /// The caller's error.
    type Error;
    /// One batch of `devices`, `kernels` or `ops` rows.
    fn batch(&mut self, batch: KinetoBatch) -> Result<(), Self::Error>;
    /// The byte offset reached in the document, every few thousand events of each pass (offsets
    /// restart at 0 for pass 2).
    fn progress(&mut self, _offset: usize) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl<E, F: FnMut(KinetoBatch) -> Result<(), E>> KinetoSink for F {
    type Error = E;
    fn batch(&mut self, batch: KinetoBatch) -> Result<(), E> {
        self(batch)
    }
}

/// A sink that drops batches: pass 1 alone, without progress reports.
struct NoSink;

impl KinetoSink for NoSink {
    type Error = Infallible;
    fn batch(&mut self, _batch: KinetoBatch) -> Result<(), Infallible> {
        Ok(())
    }
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

/// A batch handed to the caller's sink.
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
    Ok(pass1::scan(bytes, &mut NoSink)?)
}

/// [`scan`], calling `sink`'s [`KinetoSink::progress`] with the byte offset reached every few
/// thousand events (a memory-mapped caller uses it to let go of pages behind the cursor); no
/// batches are emitted.
pub fn scan_with_progress<'a, S: KinetoSink>(
    bytes: &'a [u8],
    sink: &mut S,
) -> Result<KinetoScan<'a>, EmitError<S::Error>> {
    pass1::scan(bytes, sink)
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
    /// interleaved), each of at most `batch_rows` rows, to `sink`, with progress reports as in
    /// [`scan_with_progress`]; returns the trace summary. `file` fills the `file` column.
    pub fn emit<S: KinetoSink>(
        &self,
        file: &str,
        rules: &CategoryRules,
        batch_rows: usize,
        sink: &mut S,
    ) -> Result<TraceSummary, EmitError<S::Error>> {
        pass2::emit(self, file, rules, batch_rows, sink)
    }
}

/// Scans, emits the `devices` batch, then the `kernels` and `ops` batches of one trace to
/// `sink`, which also hears the byte offset reached in each pass (see [`KinetoSink::progress`]).
pub fn parse_kineto<S: KinetoSink>(
    bytes: &[u8],
    file: &str,
    rules: &CategoryRules,
    batch_rows: usize,
    sink: &mut S,
) -> Result<KinetoReport, EmitError<S::Error>> {
    let s = scan_with_progress(bytes, sink)?;
    if !s.header.devices.is_empty() {
        sink.batch(KinetoBatch::Devices(s.devices_batch(file))).map_err(EmitError::Sink)?;
    }
    let summary = s.emit(file, rules, batch_rows, sink)?;
    Ok(KinetoReport { summary, rejects: s.rejects })
}
