#!/usr/bin/env python3
"""Reference numbers for tapeout's request-level roofline model, transcribed from LLM-Viewer.

    python3 scripts/llm_viewer_reference.py [--out PATH] [--check]

Writes crates/tapeout-recommend/tests/llm_viewer_reference.json (or PATH): a Llama-2-7B decode step
(batch 1 and 16, 1024 tokens of context, one new token) and a prefill (batch 1, 1024 tokens) on an
A100 SXM 80GB, op by op, computed with the formulas of LLM-Viewer (https://github.com/hahnyuan/LLM-Viewer).
`--check` only recomputes and compares with the existing JSON (exit 1 on any difference > 1e-9 rel).

Python 3.11+ standard library only. Every formula below cites the LLM-Viewer file and function it
transcribes. The transcription follows upstream commit df2cba903282463b2fd8a7231f744be74dd4020b:

  model_analyzer.py   ModelAnalyzer.analyze(), _analyze_to_results(), get_hardware_info()
  op_handlers.py      linear(), qk_matmul(), sv_matmul(), softmax(), norm(), add(), act()
                      (the per-op cost math, "a faithful extraction of the cost math that previously
                      lived inline in ModelAnalyzer.analyze()", guarded by tests/golden_analyzer.py)
  roofline_model.py   evaluate_op(), roofline_analyze()
  hardwares/hardware_params.py   "nvidia_A100_80G" (and "nvidia_A100", which holds 40 GB figures)
  configs/Llama.py    get_linear_layers(model_params, tp_size), get_norm_layers(), post_process()

configs/Llama.py at that commit is not in the index we read; its get_linear_layers(model_params,
tp_size) and post_process() (the lm_head) are taken from the tp-aware revision that forks of
LLM-Viewer carry unchanged (jsw-zorro/LLM-Viewer@e5f2e77, mmcclean-aws/LLM-Viewer@ba8323e), and the
lm_head formula is byte-identical to upstream configs/Mixtral.py@01b269d6 post_process(). For this
model (MHA, tp_size = 1) the older upstream configs/Llama.py@a626bee gives the same seven linears.

Numbers are per device, fp16 weights/activations/KV (w_bit = a_bit = kv_bit = 16), no FlashAttention
(use_flashattention=False, LLM-Viewer's default), tp_size = 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "crates" / "tapeout-recommend" / "tests" / "llm_viewer_reference.json"

UPSTREAM = "https://github.com/hahnyuan/LLM-Viewer"
COMMIT = "df2cba903282463b2fd8a7231f744be74dd4020b"


def blob(path: str, commit: str = COMMIT) -> str:
    return f"{UPSTREAM}/blob/{commit}/{path}"


SOURCE = {
    "tool": "LLM-Viewer (hahnyuan/LLM-Viewer)",
    "repository": UPSTREAM,
    "commit": COMMIT,
    "commit_note": (
        "newest upstream revision read (VLA refactor: per-op math moved from model_analyzer.py into "
        "op_handlers.py, proven bit-identical by tests/golden_analyzer.py). Upstream keeps "
        "model_analyzer.py at the repository root; there is no backend/ folder upstream (some forks, "
        "e.g. wayfeng/LLM-Viewer, moved it to backend/model_analyzer.py)."
    ),
    "files": {
        "model_analyzer": blob("model_analyzer.py"),
        "op_handlers": blob("op_handlers.py"),
        "roofline_model": blob("roofline_model.py"),
        "hardware_params": blob("hardwares/hardware_params.py"),
        "llama_config": f"{UPSTREAM}/blob/main/configs/Llama.py",
        "llama_config_older_upstream": blob("configs/Llama.py", "a626beedd238997aee3ad07e9bb6964ac713af24"),
        "lm_head_post_process_upstream": blob("configs/Mixtral.py", "01b269d600a36f674fd0e7952763f1560f39d368"),
        "llama_config_tp_fork": "https://github.com/jsw-zorro/LLM-Viewer/blob/e5f2e77bb9b6515ee8865ea533855771ba12aef2/configs/Llama.py",
        "paper": "https://arxiv.org/abs/2402.16363",
    },
    "generated_by": "scripts/llm_viewer_reference.py",
}

# Llama-2-7B, https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json
# (same values as pipelines/models/llama-2-7b.toml).
MODEL = {
    "id": "llama-2-7b",
    "num_hidden_layers": 32,
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "intermediate_size": 11008,
    "vocab_size": 32000,
    "w_bit": 16,
    "a_bit": 16,
    "kv_bit": 16,
    "source": "https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json",
}

# Our A100: NVIDIA's A100 page, A100 80GB SXM column (see /work/shared/reference/hardware-and-models.md
# and pipelines/hardware/a100-sxm-80gb.toml): dense BF16/FP16 Tensor Core 312 TFLOP/s, HBM2e 2,039 GB/s.
HARDWARE = {
    "id": "a100-sxm-80gb",
    "peak_flops": 312e12,
    "hbm_bandwidth": 2.039e12,
    "source": "https://www.nvidia.com/en-us/data-center/a100/",
    "llm_viewer_entries": {
        # hardwares/hardware_params.py @ df2cba90 (values copied as written there).
        "nvidia_A100_80G": {"bandwidth": 2039e9, "FP16": 312e12, "INT8": 624e12, "INT4": 1248e12,
                            "onchip_buffer": 27648e3},
        "nvidia_A100": {"bandwidth": 1555e9, "FP16": 312e12, "INT8": 624e12, "INT4": 1248e12,
                        "onchip_buffer": 27648e3, "comment": "'# use 40G data'"},
        "nvidia_A100_40G": {"bandwidth": 1555e9, "FP16": 312e12, "INT8": 624e12, "INT4": 1248e12,
                            "onchip_buffer": 27648e3},
    },
    "llm_viewer_note": (
        "LLM-Viewer's nvidia_A100_80G equals our figures (2039e9 B/s, FP16 312e12 OP/s); its plain "
        "nvidia_A100 entry holds the 40 GB card's 1555e9 B/s. get_hardware_info() picks FP16 peak "
        "because max(w_bit, a_bit, kv_bit) = 16 > 8. onchip_buffer (27.6 MB = 108 SMs x 256 KB "
        "register file) is only used by the FlashAttention path, which these cases do not take."
    ),
}


# ---------------------------------------------------------------------------------------------
# roofline_model.py: roofline_analyze() and evaluate_op()
# ---------------------------------------------------------------------------------------------
def evaluate_op(name, OPs, load_weight=0, load_act=0, store_act=0, load_kv_cache=0, store_kv_cache=0,
                bandwidth=HARDWARE["hbm_bandwidth"], max_OPS=HARDWARE["peak_flops"]):
    """roofline_model.py evaluate_op() + roofline_analyze().

    memory_access = load_weight + load_act + store_act + load_kv_cache + store_kv_cache
    arithmetic_intensity = OPs / memory_access
    turning_point = max_OPS / bandwidth
    AI <  turning_point -> bound "memory", performance = AI * bandwidth
    AI >= turning_point -> bound "compute", performance = max_OPS
    inference_time = OPs / performance   (== max(OPs / max_OPS, memory_access / bandwidth))
    """
    memory_access = load_weight + load_act + store_act + load_kv_cache + store_kv_cache
    turning_point = max_OPS / bandwidth
    arithmetic_intensity = OPs / memory_access
    if arithmetic_intensity < turning_point:
        bound = "memory"
        performance = arithmetic_intensity * bandwidth
    else:
        bound = "compute"
        performance = max_OPS
    inference_time = OPs / performance
    # The closed form we implement in Rust; must agree with LLM-Viewer's OPs / performance.
    closed_form = max(OPs / max_OPS, memory_access / bandwidth)
    assert math.isclose(inference_time, closed_form, rel_tol=1e-12), (name, inference_time, closed_form)
    return {
        "name": name,
        "flops": OPs,
        "bytes": memory_access,
        "load_weight": load_weight,
        "load_act": load_act,
        "store_act": store_act,
        "load_kv_cache": load_kv_cache,
        "store_kv_cache": store_kv_cache,
        "arithmetic_intensity": arithmetic_intensity,
        "bound": bound,
        "compute_time_s": OPs / max_OPS,
        "memory_time_s": memory_access / bandwidth,
        "time_s": inference_time,
    }


# ---------------------------------------------------------------------------------------------
# configs/Llama.py: get_linear_layers(model_params, tp_size) -> {name: [ic, oc]}
# ---------------------------------------------------------------------------------------------
def get_linear_layers(m, tp_size=1):
    h, i = m["hidden_size"], m["intermediate_size"]
    kvh, nh = m["num_key_value_heads"], m["num_attention_heads"]
    return {
        "q_proj": (h, h // tp_size),
        "k_proj": (h, h * kvh // nh // tp_size),   # GQA: K/V width = hidden * kv_heads / heads
        "v_proj": (h, h * kvh // nh // tp_size),
        "out_proj": (h // tp_size, h),
        "gate_proj": (h, i // tp_size),
        "up_proj": (h, i // tp_size),
        "down_proj": (i // tp_size, h),
    }


# ---------------------------------------------------------------------------------------------
# op_handlers.py (one function per op type). q_seqlen = query tokens this step, kv_seqlen = context.
# model_analyzer.py analyze(): stage_seqlens = {"decode": (1, seqlen), "prefill": (seqlen, seqlen)}
# ---------------------------------------------------------------------------------------------
def linear(name, b, q, ic, oc, is_kv_proj, w_byte, a_byte, kv_byte):
    """op_handlers.py linear(): a projection with an (ic, oc) weight.

    OPs = 2*ic*oc*b*q; load_weight = ic*oc*w_byte; load_act = ic*b*q*a_byte;
    k_proj/v_proj write their output to the KV cache (store_kv_cache = oc*b*q*kv_byte, store_act = 0),
    every other projection writes an activation (store_act = oc*b*q*a_byte).
    """
    return evaluate_op(
        name,
        OPs=ic * oc * b * q * 2,
        load_weight=ic * oc * w_byte,
        load_act=ic * b * q * a_byte,
        store_act=0 if is_kv_proj else oc * b * q * a_byte,
        load_kv_cache=0,
        store_kv_cache=oc * b * q * kv_byte if is_kv_proj else 0,
    )


def qk_matmul(b, q, kv, d, nh, nkvh, query_act_heads, a_byte, kv_byte):
    """op_handlers.py qk_matmul(): scores = Q @ K^T, shape [b, heads, q, kv].

    OPs = 2*q*kv*d*heads*b; load_act (Q) = q*d*b*query_act_heads*a_byte;
    store_act (scores) = q*kv*b*heads*a_byte; load_kv_cache (K) = kv*d*b*kv_heads*kv_byte.
    model_analyzer.analyze() passes query_act_heads = heads in decode but kv_heads in prefill
    ("legacy" behaviour kept bit-identical; only differs under GQA). Before the refactor the
    prefill Q read was booked as KV-cache traffic instead: load_act = 0,
    load_kv_cache = 2*kv*d*b*kv_heads*kv_byte (model_analyzer.py @ 01b269d6) - same total bytes here.
    """
    return evaluate_op(
        "qk_matmul",
        OPs=q * kv * d * nh * b * 2,
        load_act=q * d * b * query_act_heads * a_byte,
        store_act=q * kv * b * nh * a_byte,
        load_kv_cache=kv * d * b * nkvh * kv_byte,
    )


def sv_matmul(b, q, kv, d, nh, nkvh, a_byte, kv_byte):
    """op_handlers.py sv_matmul(): softmax(scores) @ V -> [b, heads, q, d].

    OPs = 2*q*d*kv*heads*b; load_act (probabilities) = q*kv*b*heads*a_byte;
    store_act = q*d*b*heads*a_byte; load_kv_cache (V) = kv*d*b*kv_heads*kv_byte.
    """
    return evaluate_op(
        "sv_matmul",
        OPs=q * d * kv * nh * b * 2,
        load_act=q * kv * b * nh * a_byte,
        store_act=q * d * b * nh * a_byte,
        load_kv_cache=kv * d * b * nkvh * kv_byte,
    )


def softmax(b, q, kv, nh, a_byte):
    """op_handlers.py softmax(): 5 ops per score element ("max sub exp sum div"); reads and writes
    the [b, heads, q, kv] score tensor once each."""
    n = b * nh * kv * q
    return evaluate_op("softmax", OPs=n * 5, load_act=n * a_byte, store_act=n * a_byte)


def norm(name, b, q, h, a_byte):
    """op_handlers.py norm(): 7 ops per element ("sum sub pow sum div mul add"); read + write
    b*q*hidden. Names from configs/Llama.py get_norm_layers(): attn_norm, mlp_norm."""
    n = b * h * q
    return evaluate_op(name, OPs=n * 7, load_act=n * a_byte, store_act=n * a_byte)


def add(name, b, q, h, a_byte):
    """op_handlers.py add(): residual add, 1 op per element, read b*q*hidden, write b*q*hidden
    (only one input is counted as read)."""
    n = b * h * q
    return evaluate_op(name, OPs=n * 1, load_act=n * a_byte, store_act=n * a_byte)


def act(b, q, h, a_byte):
    """op_handlers.py act(): MLP activation/gating, 2 ops per element, reads two inputs, writes one.
    NB: sized with hidden_size, not intermediate_size (LLM-Viewer's choice)."""
    n = b * h * q
    return evaluate_op("mlp_act", OPs=n * 2, load_act=n * a_byte * 2, store_act=n * a_byte)


def lm_head(b, h, vocab, w_byte, a_byte):
    """configs/Llama.py post_process(): the lm_head, added ONCE (not per layer), same for both stages:
    OPs = b*hidden*vocab*1 (one op per MAC, not 2); load_weight = hidden*vocab*w_byte;
    load_act = hidden*a_byte and store_act = vocab*a_byte (neither scaled by batch nor by seq)."""
    return evaluate_op(
        "lm_head",
        OPs=b * h * vocab * 1,
        load_weight=h * vocab * w_byte,
        load_act=h * a_byte,
        store_act=vocab * a_byte,
    )


# ---------------------------------------------------------------------------------------------
# model_analyzer.py analyze(): per-layer op list, then totals
# ---------------------------------------------------------------------------------------------
FIELDS = ["flops", "bytes", "load_weight", "load_act", "store_act", "load_kv_cache", "store_kv_cache",
          "compute_time_s", "memory_time_s", "time_s"]


def per_layer_ops(m, stage, seqlen, batchsize, tp_size=1):
    w_byte, a_byte, kv_byte = m["w_bit"] / 8, m["a_bit"] / 8, m["kv_bit"] / 8
    h, nh, nkvh = m["hidden_size"], m["num_attention_heads"], m["num_key_value_heads"]
    d = h // nh  # head_size = hidden_size // num_attention_heads
    q, kv = {"decode": (1, seqlen), "prefill": (seqlen, seqlen)}[stage]
    b = batchsize
    ops = []
    # 1. linears, in get_linear_layers() order
    for name, (ic, oc) in get_linear_layers(m, tp_size).items():
        ops.append(linear(name, b, q, ic, oc, name in ("k_proj", "v_proj"), w_byte, a_byte, kv_byte))
    # 2. attention (use_flashattention=False): qk_matmul, sv_matmul, softmax
    legacy_q_heads = nh if stage == "decode" else nkvh
    ops.append(qk_matmul(b, q, kv, d, nh, nkvh, legacy_q_heads, a_byte, kv_byte))
    ops.append(sv_matmul(b, q, kv, d, nh, nkvh, a_byte, kv_byte))
    ops.append(softmax(b, q, kv, nh, a_byte))
    # 3. norms, residual adds, activation
    for name in ("attn_norm", "mlp_norm"):
        ops.append(norm(name, b, q, h, a_byte))
    for name in ("attn_add", "mlp_add"):
        ops.append(add(name, b, q, h, a_byte))
    ops.append(act(b, q, h, a_byte))
    return ops


def sum_ops(ops, scale=1):
    return {f: sum(o[f] for o in ops) * scale for f in FIELDS}


def analyze(m, stage, seqlen, batchsize, tp_size=1):
    ops = per_layer_ops(m, stage, seqlen, batchsize, tp_size)
    layer_total = sum_ops(ops)
    L = m["num_hidden_layers"]
    # model_analyzer.py: total_results[stage][x] += result[x] * num_hidden_layers for every op,
    # then post_process() layers (lm_head) are added once: total += lm_head[x].
    head = lm_head(batchsize, m["hidden_size"], m["vocab_size"], m["w_bit"] / 8, m["a_bit"] / 8)
    layers_total = sum_ops(ops, L)
    model_total = {f: layers_total[f] + head[f] for f in FIELDS}
    model_total["layers_time_s"] = layers_total["time_s"]
    model_total["lm_head_time_s"] = head["time_s"]
    # Not LLM-Viewer: one roofline over the summed FLOPs and bytes (a lower bound on the sum of
    # per-op roofline times). Given for comparison only.
    model_total["lumped_roofline_time_s"] = max(model_total["flops"] / HARDWARE["peak_flops"],
                                                model_total["bytes"] / HARDWARE["hbm_bandwidth"])
    return ops, layer_total, head, model_total


CASES = [
    ("decode_b1_ctx1024", "decode", 1, 1024),
    ("decode_b16_ctx1024", "decode", 16, 1024),
    ("prefill_b1_s1024", "prefill", 1, 1024),
]


# ---------------------------------------------------------------------------------------------
# Sizes of a few deviations from LLM-Viewer that docs/model.md discusses (informational only; the
# cases above are pure LLM-Viewer). Each is the relative change of model_total.time_s.
# ---------------------------------------------------------------------------------------------
def deviations(results):
    out = []
    m = MODEL
    bw, peak = HARDWARE["hbm_bandwidth"], HARDWARE["peak_flops"]
    h, i, V = m["hidden_size"], m["intermediate_size"], m["vocab_size"]
    for name, stage, b, s in CASES:
        base = results[name]["model_total"]["time_s"]
        q = 1 if stage == "decode" else s
        # (1) mlp_act sized on intermediate_size instead of hidden_size
        n_h, n_i = b * q * h, b * q * i
        t_h = max(2 * n_h / peak, 3 * n_h * 2 / bw)
        t_i = max(2 * n_i / peak, 3 * n_i * 2 / bw)
        d_act = (t_i - t_h) * m["num_hidden_layers"]
        # (2) lm_head with 2 FLOPs per MAC and batch-scaled activations (logits for b tokens)
        t_head = results[name]["lm_head"]["time_s"]
        t_head2 = max(2 * b * h * V / peak, (h * V * 2 + b * h * 2 + b * V * 2) / bw)
        # (3) attention as one fused kernel that never writes the [b, heads, q, kv] scores to HBM
        #     (FlashAttention-style: read Q, K, V once, write O once; same FLOPs as qk+sv+softmax).
        #     Not LLM-Viewer's own fused_attention() formula (which also counts on-chip tiling).
        ops = {o["name"]: o for o in results[name]["ops"]}
        unfused = sum(ops[n]["time_s"] for n in ("qk_matmul", "sv_matmul", "softmax"))
        d, nh, nkvh = h // m["num_attention_heads"], m["num_attention_heads"], m["num_key_value_heads"]
        f_flops = sum(ops[n]["flops"] for n in ("qk_matmul", "sv_matmul", "softmax"))
        f_bytes = (2 * b * q * d * nh + 2 * b * s * d * nkvh) * 2  # Q + O (a_byte 2) + K + V (kv_byte 2)
        fused = max(f_flops / peak, f_bytes / bw)
        out.append({
            "case": name,
            "mlp_act_on_intermediate_size": (d_act) / base,
            "lm_head_2flops_per_mac_batch_scaled": (t_head2 - t_head) / base,
            "attention_fused_no_score_materialization": (fused - unfused) * m["num_hidden_layers"] / base,
        })
    return out


# ---------------------------------------------------------------------------------------------
# GenZ all-reduce (https://github.com/abhibambhaniya/GenZ-LLM-Analyzer GenZ/collective_times.py
# get_AR_time): t = 5e-6 + 2(n-1)*link_latency + 2(n-1)/n * bytes / link_bw, with 2 all-reduces per
# layer (GenZ/Models/attention.py "MHA AR" after out-proj, GenZ/Models/ffn.py after down-proj),
# each of b*s*hidden activations. LLM-Viewer models no collective. Informational, not a reference.
# ---------------------------------------------------------------------------------------------
GENZ_START_LATENCY_S = 5e-6      # hard-coded in GenZ get_AR_time
GENZ_LINK_LATENCY_S = 1.9e-6     # GenZ System() default interchip_link_latency (1.9 us)
A100_NVLINK_PER_DIRECTION = 300e9  # pipelines/hardware/a100-sxm-80gb.toml links.scale_up


def genz_allreduce_s(nbytes, n, link_bw=A100_NVLINK_PER_DIRECTION, link_latency=GENZ_LINK_LATENCY_S):
    if nbytes == 0 or n == 1:
        return 0.0
    return GENZ_START_LATENCY_S + 2 * (n - 1) * link_latency + 2 * (n - 1) / n * nbytes / link_bw


def allreduce_examples():
    out = []
    h, L = MODEL["hidden_size"], MODEL["num_hidden_layers"]
    for name, stage, b, s in CASES:
        tokens = b * (1 if stage == "decode" else s)
        nbytes = tokens * h * MODEL["a_bit"] // 8
        for tp in (2, 4, 8):
            t = genz_allreduce_s(nbytes, tp)
            out.append({"case": name, "tp_size": tp, "bytes_per_allreduce": nbytes,
                        "allreduce_time_s": t, "per_layer_time_s": 2 * t, "model_time_s": 2 * t * L})
    return out


def build():
    results = {}
    cases = []
    for name, stage, b, s in CASES:
        ops, layer_total, head, model_total = analyze(MODEL, stage, s, b)
        results[name] = {"model_total": model_total, "lm_head": head, "ops": ops}
        cases.append({
            "name": name,
            "stage": stage,
            "batch": b,
            "seq_len": s,
            "seq_len_meaning": ("tokens already in the KV cache; one new token per sequence"
                                if stage == "decode" else "prompt tokens processed in one step"),
            "tp_size": 1,
            "use_flashattention": False,
            "ops": ops,
            "layer_total": layer_total,
            "lm_head": head,
            "model_total": model_total,
        })
    return {
        "schema": "tapeout llm_viewer_reference v1",
        "source": SOURCE,
        "hardware": HARDWARE,
        "model": MODEL,
        "conventions": {
            "units": "flops in FLOP (LLM-Viewer 'OPs'), bytes in B, time in s",
            "op_time": "time_s = max(flops / peak_flops, bytes / hbm_bandwidth) (LLM-Viewer: OPs / performance)",
            "bound": "'memory' if flops/bytes < peak_flops/hbm_bandwidth else 'compute' (ties are compute)",
            "ops": "the 15 per-layer ops of one transformer layer, in LLM-Viewer's order; every op is costed on its own (no overlap, no fusion)",
            "layer_total": "sum over the 15 per-layer ops (one layer)",
            "model_total": "num_hidden_layers * layer_total + lm_head (lm_head added once, from configs/Llama.py post_process); time_s is the sum of per-op roofline times",
            "compute_time_s_and_memory_time_s": "per op: flops/peak and bytes/bandwidth; in layer_total/model_total: the sums of those per-op values (time_s is the sum of per-op maxima, not the max of these sums)",
            "lumped_roofline_time_s": "NOT LLM-Viewer: max(total flops / peak, total bytes / bandwidth), for comparison",
            "not_counted": "embedding lookup, final norm, rotary embedding, sampling, all-reduce (tp_size = 1), kernel launch gaps",
            "tolerance_for_tests": "reproduce flops, bytes and time_s within 1% (the numbers here are exact to float64)",
        },
        "cases": cases,
        "deviation_sizes": {
            "note": "relative change of model_total.time_s if tapeout departs from LLM-Viewer on these points (see docs/model.md); informational, not part of the reference",
            "cases": deviations(results),
        },
        "genz_allreduce_examples": {
            "note": ("NOT part of the LLM-Viewer reference (LLM-Viewer has no collectives). GenZ ring all-reduce "
                     "t = 5e-6 + 2(n-1)*1.9e-6 + 2(n-1)/n * bytes / 300e9 (A100 NVLink per direction), "
                     "2 all-reduces per layer of b*s*hidden*2 bytes"),
            "start_latency_s": GENZ_START_LATENCY_S,
            "link_latency_s": GENZ_LINK_LATENCY_S,
            "link_bandwidth": A100_NVLINK_PER_DIRECTION,
            "cases": allreduce_examples(),
        },
    }


def summary(doc):
    lines = []
    for c in doc["cases"]:
        t = c["model_total"]
        lt = c["layer_total"]
        lines.append(f"{c['name']}: per layer {lt['flops']:.6e} FLOP, {lt['bytes']:.6e} B, {lt['time_s']*1e6:.3f} us; "
                     f"model {t['flops']:.6e} FLOP, {t['bytes']:.6e} B, {t['time_s']*1e3:.4f} ms "
                     f"(lm_head {t['lm_head_time_s']*1e6:.2f} us; lumped roofline {t['lumped_roofline_time_s']*1e3:.4f} ms)")
        for o in c["ops"] + [c["lm_head"]]:
            lines.append(f"    {o['name']:<10} {o['flops']:>16.6e} FLOP {o['bytes']:>14.6e} B  AI {o['arithmetic_intensity']:>9.3f}  "
                         f"{o['bound']:<7} {o['time_s']*1e6:>10.3f} us")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="compare with the existing JSON instead of writing")
    args = ap.parse_args()
    doc = build()
    if args.check:
        old = json.loads(args.out.read_text())
        bad = 0
        for c_new, c_old in zip(doc["cases"], old["cases"]):
            for key in ("layer_total", "model_total"):
                for f in FIELDS:
                    a, b = c_new[key][f], c_old[key][f]
                    if not math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0):
                        print(f"{c_new['name']}.{key}.{f}: {b} != {a}")
                        bad += 1
        print("OK" if not bad else f"{bad} differences")
        return 1 if bad else 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(summary(doc))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
