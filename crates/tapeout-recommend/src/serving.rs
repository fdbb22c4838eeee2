//! The request-level serving model: LLM-Viewer's per-layer operator accounting (hahnyuan/
//! LLM-Viewer, `model_analyzer.py` at the repository root), extended with GQA, MoE, tensor parallelism (GenZ's
//! two all-reduces per layer) and an efficiency factor. Formulas are in docs/model.md.
//!
//! A request with `input` prompt tokens and `output` generated tokens costs
//! `prefill(batch 1, s = input)` plus `output` decode steps at batch `b` with the mean context
//! `input + output/2`, of which it owns `1/b`.
//!
//! A serving configuration is feasible on a machine when the weights plus the KV cache of one
//! request at the mean context fit the usable share of HBM per device ([`MemoryFit`]);
//! [`ServingWorkload::deploy`] checks a fixed tensor-parallel degree or picks the smallest power
//! of two that fits.

use serde::Serialize;
use tapeout_pipelines::models::ModelConfig;

use crate::RecommendError;
use crate::machine::{Machine, Unit, dtype_bytes};

/// Serving assumptions for one workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Serving {
    /// Weight / activation / KV-cache dtype (normalized, e.g. `fp16`).
    pub dtype: String,
    /// Decode batch the scheduler aims for (measured mean concurrency, or configured).
    pub batch: f64,
    /// Tensor-parallel degree: devices one model replica is split over (weights, heads, FFN
    /// width and vocabulary divided among them). [`ServingWorkload::deploy`] settles it.
    pub tensor_parallel: u32,
    /// Efficiency η of matrix and vector work (time = roofline / η).
    pub compute_efficiency: f64,
    pub memory_efficiency: f64,
    /// FlashAttention-style fused attention in prefill (no score matrix through HBM).
    pub flash_attention: bool,
    /// Operator accounting: tapeout's (default) or LLM-Viewer's exactly (for comparison).
    pub accounting: Accounting,
    /// Share of HBM usable for weights + KV cache.
    pub memory_utilization: f64,
    /// Latency of one all-reduce (seconds; assumption).
    pub allreduce_latency_s: f64,
}

impl Default for Serving {
    fn default() -> Self {
        Serving {
            dtype: "fp16".into(),
            batch: 1.0,
            tensor_parallel: 1,
            compute_efficiency: 1.0,
            memory_efficiency: 1.0,
            flash_attention: true,
            accounting: Accounting::Tapeout,
            memory_utilization: 0.9,
            allreduce_latency_s: 10e-6,
        }
    }
}

/// One operator's work in one layer (or the LM head) for a whole batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Op {
    pub name: &'static str,
    pub flops: f64,
    /// Weight bytes (read once per step).
    pub weight_bytes: f64,
    /// Activation bytes read + written.
    pub act_bytes: f64,
    /// KV-cache bytes read + written.
    pub kv_bytes: f64,
    pub unit: Unit,
}

impl Op {
    pub fn bytes(&self) -> f64 {
        self.weight_bytes + self.act_bytes + self.kv_bytes
    }

    /// LLM-Viewer's roofline time on `m`: max(F/P, B/W) with efficiencies.
    pub fn time(&self, m: &Machine, dtype: &str, s: &Serving) -> f64 {
        let p = m.peak(self.unit, dtype) * s.compute_efficiency;
        (self.flops / p).max(self.bytes() / (m.hbm_bandwidth * s.memory_efficiency))
    }
}

/// How operators are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Accounting {
    /// docs/model.md: the activation function runs over the FFN's intermediate width, a
    /// residual add reads two operands and writes one, the LM head costs 2 FLOPs per
    /// multiply-add.
    Tapeout,
    /// LLM-Viewer's `model_analyzer.py` as published: activation over the hidden width, adds
    /// read one operand, LM head 1 FLOP per multiply-add. Used to check the model against it.
    LlmViewer,
}

/// Stage of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Prefill,
    Decode,
}

/// One step's shape: `batch` sequences of `tokens` new tokens each over `context` tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepShape {
    pub stage: Stage,
    pub batch: f64,
    pub tokens: f64,
    pub context: f64,
}

/// The operators of one transformer layer for a step (prefill: context = tokens), per device
/// under tensor parallelism `tp`.
pub fn layer_ops(
    m: &ModelConfig,
    step: StepShape,
    dtype: &str,
    tp: f64,
    flash: bool,
    accounting: Accounting,
) -> Vec<Op> {
    let llmv = accounting == Accounting::LlmViewer;
    let StepShape { stage, batch, tokens: s, context: ctx } = step;
    let w = dtype_bytes(dtype);
    let (a, kv) = (w, w);
    let h = m.hidden as f64;
    let heads = m.heads as f64 / tp;
    let kv_heads = (m.kv_heads as f64 / tp).max(1.0);
    let d = m.head_dim as f64;
    let inter = m.intermediate as f64 / tp;
    let tokens = batch * s;
    let linear = |name: &'static str, cin: f64, cout: f64, kv_store: bool| Op {
        name,
        flops: 2.0 * tokens * cin * cout,
        weight_bytes: cin * cout * w,
        act_bytes: tokens * cin * a + if kv_store { 0.0 } else { tokens * cout * a },
        kv_bytes: if kv_store { tokens * cout * kv } else { 0.0 },
        unit: Unit::Matrix,
    };
    let mut ops = vec![
        linear("q_proj", h, heads * d, false),
        linear("k_proj", h, kv_heads * d, true),
        linear("v_proj", h, kv_heads * d, true),
    ];
    // Attention over the context: QK^T and SV read the cached K and V.
    let kv_read = batch * ctx * kv_heads * d * kv;
    let scores = batch * heads * s * ctx;
    let fused = flash && stage == Stage::Prefill;
    ops.push(Op {
        name: "qk_matmul",
        flops: 2.0 * scores * d,
        weight_bytes: 0.0,
        act_bytes: tokens * heads * d * a + if fused { 0.0 } else { scores * a },
        kv_bytes: kv_read,
        unit: Unit::Matrix,
    });
    ops.push(Op {
        name: "sv_matmul",
        flops: 2.0 * scores * d,
        weight_bytes: 0.0,
        act_bytes: tokens * heads * d * a + if fused { 0.0 } else { scores * a },
        kv_bytes: kv_read,
        unit: Unit::Matrix,
    });
    ops.push(Op {
        name: "softmax",
        flops: 5.0 * scores,
        weight_bytes: 0.0,
        act_bytes: if fused { 0.0 } else { 2.0 * scores * a },
        kv_bytes: 0.0,
        unit: Unit::Vector,
    });
    ops.push(linear("out_proj", heads * d, h, false));
    // MoE: routed experts touched per step = min(experts, tokens · active); FLOPs per token use
    // the active experts.
    let (ffn_flop_mult, ffn_weight_mult) = match (m.experts, m.active_experts) {
        (Some(e), Some(k)) => {
            let shared = m.shared_experts.unwrap_or(0) as f64;
            (k as f64 + shared, (tokens * k as f64).min(e as f64) + shared)
        }
        _ => (1.0, 1.0),
    };
    let mut ffn = |name: &'static str, cin: f64, cout: f64| {
        let mut op = linear(name, cin, cout, false);
        op.flops *= ffn_flop_mult;
        op.act_bytes *= ffn_flop_mult;
        op.weight_bytes *= ffn_weight_mult;
        ops.push(op);
    };
    if m.gated_ffn {
        ffn("gate_proj", h, inter);
    }
    ffn("up_proj", h, inter);
    ffn("down_proj", inter, h);
    let vec_op = |name: &'static str, flops_per: f64, elems: f64, rw: f64| Op {
        name,
        flops: flops_per * elems,
        weight_bytes: 0.0,
        act_bytes: rw * elems * a,
        kv_bytes: 0.0,
        unit: Unit::Vector,
    };
    let act_elems = tokens * inter * ffn_flop_mult;
    if llmv {
        // LLM-Viewer applies the activation over the hidden width: 2 ops, two reads, one write.
        ops.push(vec_op("mlp_act", 2.0, tokens * h, 3.0));
    } else {
        ops.push(vec_op(
            "mlp_act",
            if m.gated_ffn { 5.0 } else { 4.0 },
            act_elems,
            if m.gated_ffn { 3.0 } else { 2.0 },
        ));
    }
    ops.push(vec_op("attn_norm", 7.0, tokens * h, 2.0));
    ops.push(vec_op("mlp_norm", 7.0, tokens * h, 2.0));
    let add_rw = if llmv { 2.0 } else { 3.0 };
    ops.push(vec_op("attn_add", 1.0, tokens * h, add_rw));
    ops.push(vec_op("mlp_add", 1.0, tokens * h, add_rw));
    ops
}

/// The LM head: logits for the last token of each sequence.
pub fn lm_head(m: &ModelConfig, batch: f64, dtype: &str, tp: f64, accounting: Accounting) -> Op {
    let llmv = accounting == Accounting::LlmViewer;
    let w = dtype_bytes(dtype);
    let (h, v) = (m.hidden as f64, m.vocab as f64 / tp);
    Op {
        name: "lm_head",
        flops: if llmv { batch * h * v } else { 2.0 * batch * h * v },
        weight_bytes: h * v * w,
        act_bytes: if llmv { h * w + v * w } else { batch * h * w + batch * v * w },
        kv_bytes: 0.0,
        unit: Unit::Matrix,
    }
}

/// Bytes of weights per device.
pub fn weight_bytes(m: &ModelConfig, dtype: &str, tp: f64) -> f64 {
    m.params * dtype_bytes(dtype) / tp
}

/// KV-cache bytes per token per device.
pub fn kv_bytes_per_token(m: &ModelConfig, dtype: &str, tp: f64) -> f64 {
    m.kv_elements_per_token_per_layer() as f64 * m.layers as f64 * dtype_bytes(dtype)
        / tp.min(m.kv_heads as f64).max(1.0)
}

/// Decode batch whose requests all fit on `machine` at `tokens_per_request` tokens each:
/// floor((usable HBM − weights) / KV bytes of one request), 0 when not even one fits; `None`
/// when the profile has no capacity figure.
pub fn capacity_batch(
    m: &ModelConfig,
    machine: &Machine,
    s: &Serving,
    tokens_per_request: f64,
    dtype: &str,
) -> Option<f64> {
    let tp = s.tensor_parallel as f64;
    let cap = machine.hbm_capacity? * s.memory_utilization;
    let dtype_now = machine.effective_dtype(dtype);
    let free = cap - weight_bytes(m, dtype_now, tp);
    let per_request = kv_bytes_per_token(m, dtype_now, tp) * tokens_per_request;
    Some((free / per_request).floor().max(0.0))
}

/// Device memory one model replica needs per device on a machine: its weights plus the KV cache
/// of one request at the workload's mean context, at the tensor-parallel degree of the
/// [`Serving`], in the dtype the machine stores them in (after a precision change).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryFit {
    /// Tensor-parallel degree the bytes are per device of.
    pub tensor_parallel: u32,
    /// Dtype of the stored weights and KV cache on this machine.
    pub dtype: String,
    /// Weight bytes per device.
    pub weight_bytes: f64,
    /// Tokens of the one request's context (the workload's mean context, prompt + output/2).
    pub context_tokens: f64,
    /// KV-cache bytes of that request per device.
    pub kv_bytes: f64,
    /// `weight_bytes + kv_bytes`.
    pub needed_bytes: f64,
    /// The profile's HBM capacity per device (None: the profile has no figure).
    pub capacity_bytes: Option<f64>,
    /// Usable bytes per device: capacity × [`Serving::memory_utilization`].
    pub available_bytes: Option<f64>,
}

impl MemoryFit {
    /// Whether the bytes fit: None when the profile has no capacity figure (not checked).
    pub fn fits(&self) -> Option<bool> {
        self.available_bytes.map(|a| self.needed_bytes <= a)
    }
}

/// What one replica of `m` served as `s` needs on `machine` with one request of `context`
/// tokens.
pub fn memory_fit(m: &ModelConfig, machine: &Machine, s: &Serving, context: f64) -> MemoryFit {
    let tp = s.tensor_parallel as f64;
    let dtype = machine.effective_dtype(&s.dtype).to_string();
    let weights = weight_bytes(m, &dtype, tp);
    let kv = kv_bytes_per_token(m, &dtype, tp) * context;
    MemoryFit {
        tensor_parallel: s.tensor_parallel,
        dtype,
        weight_bytes: weights,
        context_tokens: context,
        kv_bytes: kv,
        needed_bytes: weights + kv,
        capacity_bytes: machine.hbm_capacity,
        available_bytes: machine.hbm_capacity.map(|c| c * s.memory_utilization),
    }
}

/// The largest tensor-parallel degree [`ServingWorkload::deploy`] tries: the largest power of
/// two not above the model's attention heads (a larger degree would split a head).
pub fn max_tensor_parallel(m: &ModelConfig) -> u32 {
    let heads = m.heads.max(1);
    1 << (31 - heads.leading_zeros())
}

/// How a workload's tensor-parallel degree was settled on the baseline machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    pub tensor_parallel: u32,
    /// Picked by [`ServingWorkload::deploy`] (true) or fixed by the caller (false).
    pub chosen: bool,
    /// The bytes at that degree on the baseline.
    pub memory: MemoryFit,
    /// The bytes at half that degree, when the degree was chosen above 1 (why it was not
    /// smaller).
    pub smaller: Option<MemoryFit>,
}

const GB: f64 = 1e9;

/// Bytes in GB (1e9, as the profiles publish them), or MB below 10 MB.
fn gb(bytes: f64) -> String {
    if bytes.abs() < 1e7 { format!("{:.2} MB", bytes / 1e6) } else { format!("{:.2} GB", bytes / GB) }
}

impl Deployment {
    /// The assumption a run states about this deployment on `machine` for `workloads` (e.g.
    /// "workload `code`"): a chosen degree and why, or that the fit was not checked. None for a
    /// fixed degree that fits (the workload's description states it).
    pub fn assumption(&self, machine: &Machine, model_id: &str, workloads: &str) -> Option<String> {
        let m = &self.memory;
        let tp = self.tensor_parallel;
        match (m.available_bytes, m.capacity_bytes) {
            (Some(avail), Some(cap)) if self.chosen => Some(format!(
                "{workloads}: tensor parallel {tp} chosen: the smallest power of two at which {model_id}'s {} weights ({} per device) plus one request's KV cache at the mean context ({:.0} tokens, {} per device) fit {}'s {} usable per device ({:.0}% of {}){}.",
                m.dtype,
                gb(m.weight_bytes),
                m.context_tokens,
                gb(m.kv_bytes),
                machine.id,
                gb(avail),
                100.0 * avail / cap,
                gb(cap),
                self.smaller
                    .as_ref()
                    .map(|s| format!(
                        "; at tensor parallel {} they would need {}",
                        s.tensor_parallel,
                        gb(s.needed_bytes)
                    ))
                    .unwrap_or_default()
            )),
            (Some(_), _) => None,
            (None, _) => Some(format!(
                "{workloads}: {} has no HBM capacity figure, so whether {model_id}'s {} weights ({} per device) plus one request's KV cache at the mean context ({:.0} tokens, {} per device) fit is not checked; tensor parallel {tp} {}.",
                machine.id,
                m.dtype,
                gb(m.weight_bytes),
                m.context_tokens,
                gb(m.kv_bytes),
                if self.chosen { "assumed" } else { "as fixed" }
            )),
        }
    }
}

/// A serving workload: mean request shape plus serving assumptions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServingWorkload {
    pub model: ModelConfig,
    pub serving: Serving,
    /// Mean prompt tokens per request.
    pub input: f64,
    /// Mean generated tokens per request.
    pub output: f64,
}

/// One line of a serving breakdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    /// e.g. "decode q_proj".
    pub name: String,
    pub category: &'static str,
    pub seconds: f64,
    pub flops: f64,
    pub bytes: f64,
    /// "compute" | "memory" | "communication".
    pub bound: &'static str,
}

/// A request's time on one machine, by operator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breakdown {
    pub seconds: f64,
    /// Decode batch used (target, capped by what fits in HBM; 1 when nothing fits).
    pub batch: f64,
    /// Batch that fits in HBM, at least 1 once one request at the mean context fits (None: the
    /// profile has no capacity figure, or the configuration does not fit: see `memory`).
    pub capacity_batch: Option<f64>,
    /// Weights plus one request's KV cache against the usable HBM on this machine.
    pub memory: MemoryFit,
    pub parts: Vec<Part>,
}

impl ServingWorkload {
    /// Tokens of context one request holds on average while decoding: prompt + output/2.
    pub fn mean_context(&self) -> f64 {
        self.input + self.output / 2.0
    }

    /// Weights plus the KV cache of one request at the mean context on `m`, per device.
    pub fn memory(&self, m: &Machine) -> MemoryFit {
        memory_fit(&self.model, m, &self.serving, self.mean_context())
    }

    /// Settles the tensor-parallel degree on the baseline `base`. A `fixed` degree is checked:
    /// [`RecommendError::Infeasible`] when weights plus one request's KV cache at the mean
    /// context exceed the usable HBM per device. Without one, the smallest power of two that
    /// fits (up to [`max_tensor_parallel`]; an error when none does), or 1 when the profile has
    /// no capacity figure (nothing to check).
    pub fn deploy(&mut self, base: &Machine, fixed: Option<u32>) -> Result<Deployment, RecommendError> {
        let at = |w: &ServingWorkload, tp: u32| {
            let s = Serving { tensor_parallel: tp, ..w.serving.clone() };
            memory_fit(&w.model, base, &s, w.mean_context())
        };
        let max = max_tensor_parallel(&self.model);
        let smallest = std::iter::successors(Some(1u32), |t| t.checked_mul(2))
            .take_while(|t| *t <= max)
            .find(|t| at(self, *t).fits() != Some(false));
        let infeasible = |memory: &MemoryFit, detail: String| RecommendError::Infeasible {
            model: self.model.id.clone(),
            dtype: memory.dtype.clone(),
            hardware: base.id.clone(),
            tensor_parallel: memory.tensor_parallel,
            needed_bytes: memory.needed_bytes.ceil() as u64,
            available_bytes: memory.available_bytes.unwrap_or(0.0).floor() as u64,
            detail: format!(
                " ({} of weights + {} of KV cache for one request at the mean context of {:.0} tokens = {}, against {:.0}% of {}); {detail}",
                gb(memory.weight_bytes),
                gb(memory.kv_bytes),
                memory.context_tokens,
                gb(memory.needed_bytes),
                100.0 * self.serving.memory_utilization,
                gb(memory.capacity_bytes.unwrap_or(0.0))
            ),
        };
        let (tp, chosen) = match fixed {
            Some(tp) => {
                let memory = at(self, tp.max(1));
                if memory.fits() == Some(false) {
                    return Err(infeasible(
                        &memory,
                        match smallest {
                            Some(t) if t > tp => format!(
                                "tensor parallel {t} is the smallest power of two that fits (leaving the degree unset chooses it)"
                            ),
                            _ => {
                                format!("no power of two up to {max} (the model's attention heads allow no more) fits")
                            }
                        },
                    ));
                }
                (tp.max(1), false)
            }
            None => match smallest {
                Some(t) => (t, true),
                None => {
                    return Err(infeasible(
                        &at(self, max),
                        format!(
                            "no power of two up to tensor parallel {max} (the model's attention heads allow no more) fits"
                        ),
                    ));
                }
            },
        };
        self.serving.tensor_parallel = tp;
        Ok(Deployment {
            tensor_parallel: tp,
            chosen,
            memory: at(self, tp),
            smaller: (chosen && tp > 1).then(|| at(self, tp / 2)),
        })
    }

    /// Seconds of accelerator time per request on `m`, by operator. The batch is the target
    /// batch, capped by HBM capacity on `m`; dtypes follow a precision change of `m`. On a
    /// machine where the configuration does not fit ([`Breakdown::memory`]) the time is that of
    /// batch 1 and no capacity batch is stated: callers must not present it as a fit.
    pub fn breakdown(&self, m: &Machine) -> Breakdown {
        let s = &self.serving;
        let model = &self.model;
        let tp = s.tensor_parallel as f64;
        let dtype = m.effective_dtype(&s.dtype).to_string();
        let layers = model.layers as f64;
        let memory = self.memory(m);
        let fits = memory.fits();
        // At least the one request that fits at the mean context, though the batch cap counts
        // every request at its full length.
        let cap = match fits {
            Some(true) => capacity_batch(model, m, s, self.input + self.output, &s.dtype).map(|c| c.max(1.0)),
            _ => None,
        };
        let b = match (fits, cap) {
            (_, Some(c)) => s.batch.max(1.0).min(c),
            (Some(false), _) => 1.0,
            _ => s.batch.max(1.0),
        };
        let mut parts = Vec::new();
        let mut push = |stage: &str, op: &Op, scale: f64| {
            let p = m.peak(op.unit, &dtype) * s.compute_efficiency;
            let w = m.hbm_bandwidth * s.memory_efficiency;
            let (tc, tm) = (op.flops / p, op.bytes() / w);
            parts.push(Part {
                name: format!("{stage} {}", op.name),
                category: category_of(op.name),
                seconds: tc.max(tm) * scale,
                flops: op.flops * scale,
                bytes: op.bytes() * scale,
                bound: if tc >= tm { "compute" } else { "memory" },
            });
        };
        for op in layer_ops(
            model,
            StepShape { stage: Stage::Prefill, batch: 1.0, tokens: self.input, context: self.input },
            &dtype,
            tp,
            s.flash_attention,
            s.accounting,
        ) {
            push("prefill", &op, layers);
        }
        push("prefill", &lm_head(model, 1.0, &dtype, tp, s.accounting), 1.0);
        let ctx = self.input + self.output / 2.0;
        let steps = self.output;
        for op in layer_ops(
            model,
            StepShape { stage: Stage::Decode, batch: b, tokens: 1.0, context: ctx },
            &dtype,
            tp,
            s.flash_attention,
            s.accounting,
        ) {
            push("decode", &op, layers * steps / b);
        }
        push("decode", &lm_head(model, b, &dtype, tp, s.accounting), steps / b);
        if s.tensor_parallel > 1 {
            let n = tp;
            let link = m.link_bandwidth(s.tensor_parallel).unwrap_or(f64::INFINITY);
            let offload = if m.collective_offload { n / (2.0 * (n - 1.0)) } else { 1.0 };
            for (stage, tokens, per_request) in [("prefill", self.input, 1.0), ("decode", b, steps / b)] {
                let bytes = tokens * model.hidden as f64 * dtype_bytes(&dtype);
                let bus = 2.0 * (n - 1.0) / n * bytes * offload;
                let count = 2.0 * layers * per_request;
                parts.push(Part {
                    name: format!("{stage} tensor-parallel all-reduce"),
                    category: "communication",
                    seconds: count * (s.allreduce_latency_s + bus / link),
                    flops: 0.0,
                    bytes: count * bus,
                    bound: "communication",
                });
            }
        }
        Breakdown { seconds: parts.iter().map(|p| p.seconds).sum(), batch: b, capacity_batch: cap, memory, parts }
    }
}

fn category_of(op: &str) -> &'static str {
    match op {
        "qk_matmul" | "sv_matmul" | "softmax" => "attention",
        "mlp_act" | "attn_add" | "mlp_add" => "elementwise",
        "attn_norm" | "mlp_norm" => "reduction",
        _ => "gemm",
    }
}
