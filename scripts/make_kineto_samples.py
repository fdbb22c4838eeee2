#!/usr/bin/env python3
"""Writes the hand-checkable PyTorch profiler (Kineto) sample traces under sample-traces/kineto/
and their README with the figures tests pin.

    python3 scripts/make_kineto_samples.py          # (re)writes the traces and the README
    python3 scripts/make_kineto_samples.py --check  # fails if the checked-in files differ

Standard library only and deterministic: the same script writes byte-identical files.

The traces are synthetic but follow the real Kineto layout (header keys, event kinds and args as
PyTorch 2.x writes them). Every GPU activity is placed by a tiny simulator: a kernel starts at
    max(launch + launch latency, previous end on its stream + a tiny gap, its dependency)
(a dependency is a CUDA event wait: an NCCL kernel waits for the compute kernel that produced its
gradients, the optimizer waits for the last all-reduce), and an all-reduce ends on both ranks at
the same time: max(start over ranks) + transfer time. The figures in the README are computed here,
from the event list this script built, independently of tapeout and of HTA.

Idle-gap classification follows HTA 0.5 `BreakdownAnalysis._analyze_idle_time_for_stream`:
host_wait when the activity's runtime call starts after the previous activity on the stream
ended, else kernel_wait when the gap is below `consecutive_kernel_delay` (30, in the trace's time
unit, µs), else other. The simulator refuses gaps that would classify differently under a 30 ns
reading of that threshold or under HTA's whole-µs rounding, so the split is unambiguous.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import sys
import zlib
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "sample-traces", "kineto")

# HTA's consecutive_kernel_delay default (30) is compared with gaps in the trace's unit (µs).
KERNEL_WAIT_US = 30
# Gaps that are neither host waits nor below 30 ns must be at least this long (so the split is
# the same whether the threshold is read as 30 ns or 30 µs, rounded or not).
MARGIN_NS = 2_000


def us(x: float) -> int:
    """µs literal -> integer ns."""
    return round(x * 1000)


def jit(*key, span: int = 900) -> int:
    """Deterministic pseudo-random jitter in [0, span) ns."""
    return zlib.crc32(repr(key).encode()) % span


# ------------------------------------------------------------------------------------------------
# JSON writing: ts/dur as µs with exactly three decimals, like Kineto.


class T(int):
    """A time in ns, written as µs with three decimals."""


def fmt_us(ns: int) -> str:
    assert ns >= 0
    return f"{ns // 1000}.{ns % 1000:03d}"


def dump(v) -> str:
    if isinstance(v, T):
        return fmt_us(int(v))
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        assert math.isfinite(v)
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(dump(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dump(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def document(header: list[tuple[str, object]], events: list[dict], trailer: list[tuple[str, object]]) -> str:
    """The trace file: header keys one per line (lists one element per line), one event per line."""
    out = io.StringIO()
    out.write("{\n")
    for k, v in header:
        if isinstance(v, list) and v and isinstance(v[0], dict):
            out.write(f"  {json.dumps(k)}: [\n")
            out.write(",\n".join("    " + dump(x) for x in v))
            out.write("\n  ],\n")
        else:
            out.write(f"  {json.dumps(k)}: {dump(v)},\n")
    out.write('  "traceEvents": [\n')
    out.write(",\n".join("  " + dump(e) for e in events))
    out.write("\n  ]")
    for k, v in trailer:
        out.write(f",\n  {json.dumps(k)}: {dump(v)}")
    out.write("\n}\n")
    return out.getvalue()


# ------------------------------------------------------------------------------------------------
# Devices


def h100(i: int) -> dict:
    return {
        "id": i,
        "name": "NVIDIA H100 80GB HBM3",
        "totalGlobalMem": 85018279936,
        "computeMajor": 9,
        "computeMinor": 0,
        "maxThreadsPerBlock": 1024,
        "maxThreadsPerMultiprocessor": 2048,
        "regsPerBlock": 65536,
        "regsPerMultiprocessor": 65536,
        "warpSize": 32,
        "sharedMemPerBlock": 49152,
        "sharedMemPerMultiprocessor": 233472,
        "numSms": 132,
        "sharedMemPerBlockOptin": 232448,
    }


def a100(i: int) -> dict:
    return {
        "id": i,
        "name": "NVIDIA A100-SXM4-80GB",
        "totalGlobalMem": 85051572224,
        "computeMajor": 8,
        "computeMinor": 0,
        "maxThreadsPerBlock": 1024,
        "maxThreadsPerMultiprocessor": 2048,
        "regsPerBlock": 65536,
        "regsPerMultiprocessor": 65536,
        "warpSize": 32,
        "sharedMemPerBlock": 49152,
        "sharedMemPerMultiprocessor": 167936,
        "numSms": 108,
        "sharedMemPerBlockOptin": 166912,
    }


# ------------------------------------------------------------------------------------------------
# Kernels: name, the category pipelines/categories/kernels.toml gives it (worked out by hand from
# the rules, first match wins), launch geometry.


@dataclass(frozen=True)
class K:
    label: str  # short name for the README
    name: str
    category: str
    grid: tuple
    block: tuple
    regs: int
    smem: int
    occ: int  # est. achieved occupancy %


BF16_GEMM_TN = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas"
BF16_GEMM_TN_256 = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64_warpgroupsize2x1x1_execute_segment_k_off_kernel__5x_cublas"
BF16_GEMM_NN = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_nn_n_tilesize128x256x64_warpgroupsize2x1x1_execute_segment_k_off_kernel__5x_cublas"
BF16_GEMM_NT = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_nt_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas"

TRAIN_K = {
    "emb": K(
        "indexSelectLargeIndex",
        "void at::native::(anonymous namespace)::indexSelectLargeIndex<c10::BFloat16, long, unsigned int, 2, 2, -2, true>"
        "(at::cuda::detail::TensorInfo<c10::BFloat16, unsigned int>, at::cuda::detail::TensorInfo<c10::BFloat16 const, unsigned int>, "
        "at::cuda::detail::TensorInfo<long const, unsigned int>, int, int, unsigned int, unsigned int, long)",
        "embedding", (65536, 1, 1), (128, 1, 1), 30, 0, 94,
    ),
    "ln": K(
        "vectorized_layer_norm_kernel",
        "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::BFloat16, float, false>"
        "(int, float, c10::BFloat16 const*, c10::BFloat16 const*, c10::BFloat16 const*, float*, float*, c10::BFloat16*)",
        "reduction", (8192, 1, 1), (128, 1, 1), 38, 0, 88,
    ),
    "qkv": K("sm90 gemm tn 128x128 (qkv)", BF16_GEMM_TN, "gemm", (24, 64, 1), (384, 1, 1), 168, 213008, 11),
    "flash": K(
        "flash_fwd_kernel",
        "void pytorch_flash::flash_fwd_kernel<pytorch_flash::Flash_fwd_kernel_traits<64, 128, 128, 4, false, false, "
        "cutlass::bfloat16_t, pytorch_flash::Flash_kernel_traits<64, 128, 128, 4, cutlass::bfloat16_t> >, "
        "false, true, false, false, false, true, false>(pytorch_flash::Flash_fwd_params)",
        "attention", (8, 8, 16), (128, 1, 1), 255, 49152, 13,
    ),
    "up": K("sm90 gemm tn 128x256 (mlp up)", BF16_GEMM_TN_256, "gemm", (16, 64, 1), (384, 1, 1), 168, 229632, 10),
    "gelu": K(
        "GeluCUDAKernelImpl",
        "void at::native::vectorized_elementwise_kernel<4, at::native::GeluCUDAKernelImpl(at::TensorIteratorBase&, "
        "at::native::GeluType)::{lambda()#2}::operator()() const::{lambda()#4}::operator()() const::"
        "{lambda(c10::BFloat16)#1}, std::array<char*, 2ul> >(int, at::native::GeluCUDAKernelImpl("
        "at::TensorIteratorBase&, at::native::GeluType)::{lambda()#2}::operator()() const::{lambda()#4}::"
        "operator()() const::{lambda(c10::BFloat16)#1}, std::array<char*, 2ul>)",
        "elementwise", (65536, 1, 1), (128, 1, 1), 24, 0, 92,
    ),
    "down": K("sm90 gemm nn 128x256 (mlp down)", BF16_GEMM_NN, "gemm", (4, 64, 1), (384, 1, 1), 168, 229632, 10),
    "add": K(
        "CUDAFunctor_add (residual)",
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, "
        "std::array<char*, 3ul> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, std::array<char*, 3ul>)",
        "elementwise", (16384, 1, 1), (128, 1, 1), 24, 0, 91,
    ),
    "b1": K("sm90 gemm nn 128x256 (grad input)", BF16_GEMM_NN, "gemm", (16, 64, 1), (384, 1, 1), 168, 229632, 10),
    "b3": K("sm90 gemm nt 128x128 (grad weight)", BF16_GEMM_NT, "gemm", (8, 24, 1), (384, 1, 1), 168, 213008, 11),
    "opt": K(
        "CUDAFunctor_add (SGD add_)",
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, "
        "std::array<char*, 3ul> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, std::array<char*, 3ul>)",
        "elementwise", (8192, 1, 1), (128, 1, 1), 24, 0, 90,
    ),
    "ar": K(
        "ncclDevKernel_AllReduce_Sum_bf16_RING_LL",
        "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)",
        "communication", (2, 1, 1), (640, 1, 1), 96, 0, 1,
    ),
}

HALF_GEMM = "ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_stages_32x5_tn"
HALF_GEMV = (
    "void gemv2T_kernel_val<int, int, __half, __half, float, 128, 16, 4, 4, false, false, cublasGemvParamsEx<int, "
    "cublasGemvTensorStridedBatched<__half const>, cublasGemvTensorStridedBatched<__half const>, "
    "cublasGemvTensorStridedBatched<__half>, float> >(cublasGemvParamsEx<int, cublasGemvTensorStridedBatched<__half const>, "
    "cublasGemvTensorStridedBatched<__half const>, cublasGemvTensorStridedBatched<__half>, float>, float, float)"
)
HALF_CUTLASS = (
    "void cutlass::Kernel2<cutlass_80_wmma_tensorop_f16_s161616gemm_f16_16x16_128x2_tn_align8>"
    "(cutlass_80_wmma_tensorop_f16_s161616gemm_f16_16x16_128x2_tn_align8::Params)"
)

INFER_K = {
    "emb_p": K(
        "indexSelectLargeIndex",
        "void at::native::(anonymous namespace)::indexSelectLargeIndex<c10::Half, long, unsigned int, 2, 2, -2, true>"
        "(at::cuda::detail::TensorInfo<c10::Half, unsigned int>, at::cuda::detail::TensorInfo<c10::Half const, unsigned int>, "
        "at::cuda::detail::TensorInfo<long const, unsigned int>, int, int, unsigned int, unsigned int, long)",
        "embedding", (4096, 1, 1), (128, 1, 1), 30, 0, 86,
    ),
    "emb_d": K(
        "indexSelectSmallIndex",
        "void at::native::(anonymous namespace)::indexSelectSmallIndex<c10::Half, long, unsigned int, 2, 2, -2>"
        "(at::cuda::detail::TensorInfo<c10::Half, unsigned int>, at::cuda::detail::TensorInfo<c10::Half const, unsigned int>, "
        "at::cuda::detail::TensorInfo<long const, unsigned int>, int, int, unsigned int, long)",
        "embedding", (8, 1, 1), (128, 1, 1), 26, 0, 6,
    ),
    "gemm": K("ampere_fp16_s16816gemm 128x128", HALF_GEMM, "gemm", (24, 4, 1), (256, 1, 1), 238, 98304, 24),
    "cutlass": K("cutlass_80_wmma_tensorop 16x16", HALF_CUTLASS, "gemm", (192, 1, 1), (64, 1, 1), 96, 4608, 18),
    "gemv": K("gemv2T_kernel_val", HALF_GEMV, "gemm", (1, 256, 1), (128, 4, 1), 64, 1024, 42),
    "flash_p": K(
        "flash_fwd_kernel",
        "void pytorch_flash::flash_fwd_kernel<pytorch_flash::Flash_fwd_kernel_traits<64, 128, 128, 4, false, false, "
        "cutlass::half_t, pytorch_flash::Flash_kernel_traits<64, 128, 128, 4, cutlass::half_t> >, "
        "false, true, false, false, false, true, false>(pytorch_flash::Flash_fwd_params)",
        "attention", (4, 1, 16), (128, 1, 1), 255, 49152, 12,
    ),
    "flash_d": K(
        "flash_fwd_splitkv_kernel",
        "void pytorch_flash::flash_fwd_splitkv_kernel<pytorch_flash::Flash_fwd_kernel_traits<64, 64, 256, 4, false, false, "
        "cutlass::half_t, pytorch_flash::Flash_kernel_traits<64, 64, 256, 4, cutlass::half_t> >, "
        "false, false, false, false, true, false, false, false>(pytorch_flash::Flash_fwd_params)",
        "attention", (1, 1, 16), (128, 1, 1), 255, 49152, 3,
    ),
    "silu": K(
        "silu_kernel",
        "void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::silu_kernel("
        "at::TensorIteratorBase&)::{lambda()#1}::operator()() const::{lambda()#5}::operator()() const::"
        "{lambda(c10::Half)#1}, std::array<char*, 2ul> >(int, at::native::(anonymous namespace)::silu_kernel("
        "at::TensorIteratorBase&)::{lambda()#1}::operator()() const::{lambda()#5}::operator()() const::"
        "{lambda(c10::Half)#1}, std::array<char*, 2ul>)",
        "elementwise", (1408, 1, 1), (128, 1, 1), 22, 0, 80,
    ),
    "mul": K(
        "MulFunctor",
        "void at::native::vectorized_elementwise_kernel<4, at::native::BinaryFunctor<c10::Half, c10::Half, c10::Half, "
        "at::native::binary_internal::MulFunctor<float> >, std::array<char*, 3ul> >(int, at::native::BinaryFunctor<"
        "c10::Half, c10::Half, c10::Half, at::native::binary_internal::MulFunctor<float> >, std::array<char*, 3ul>)",
        "elementwise", (1408, 1, 1), (128, 1, 1), 26, 0, 78,
    ),
    "argmax": K(
        "reduce_kernel ArgMaxOps",
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<c10::Half, at::native::ArgMaxOps<c10::Half>, "
        "unsigned int, long, 4> >(at::native::ReduceOp<c10::Half, at::native::ArgMaxOps<c10::Half>, unsigned int, long, 4>)",
        "reduction", (1, 1, 1), (32, 16, 1), 40, 16, 2,
    ),
}

# memcpy/memset rows are categorized by activity, not by the rules.
MEMCPY_HTOD = "Memcpy HtoD (Pageable -> Device)"
MEMCPY_DTOH = "Memcpy DtoH (Device -> Pageable)"
MEMSET = "Memset (Device)"


# ------------------------------------------------------------------------------------------------
# The trace builder and GPU simulator.


class Ambiguous(Exception):
    pass


@dataclass
class Gpu:
    kind: str  # kernel | memcpy | memset
    name: str
    label: str
    category: str
    device: int
    stream: int
    start: int
    dur: int
    corr: int
    ext: int
    launch_ts: int
    step: int
    op: str
    args: dict
    flops: int | None = None
    flops_formula: str = ""
    coll: dict | None = None
    gap_ns: int | None = None  # to the previous activity on the stream (None: first)
    gap_class: str = ""  # host_wait | kernel_wait | other
    window: bool = True
    index: int = 0  # 1-based position in traceEvents

    @property
    def end(self) -> int:
        return self.start + self.dur

    def hta_category(self) -> str:
        if self.name.startswith("nccl") and "Kernel" in self.name:
            return "COMMUNICATION"
        if self.name.startswith(("Memcpy", "Memset", "dma")):
            return "MEMORY"
        return "COMPUTATION"


class Builder:
    def __init__(self, pid: int, device: int, ext0: int, corr0: int, tiny_gaps: list[int]):
        self.pid = pid
        self.device = device
        self.cpu: list[dict] = []  # cpu_op / user_annotation
        self.rt: list[dict] = []  # cuda_runtime
        self.gpu: list[Gpu] = []
        self.gpu_ann: list[dict] = []
        self.ext = ext0
        self.corr = corr0
        self.last: dict[int, Gpu] = {}  # stream -> last activity
        self.tiny = list(tiny_gaps)
        self.steps: list[tuple[int, int, int]] = []  # (n, start, end) CPU ProfilerStep windows

    def next_ext(self) -> int:
        self.ext += 1
        return self.ext

    def next_corr(self) -> int:
        self.corr += 1
        return self.corr

    def op(self, tid, name, ts, dur, cat="cpu_op", dims=None, types=None, conc=None, extra=None) -> dict:
        args: dict = {"External id": self.next_ext(), "Record function id": 0}
        if conc is not None:
            args["Concrete Inputs"] = conc
        if types is not None:
            args["Input type"] = types
        if dims is not None:
            args["Input Dims"] = dims
        if extra:
            args.update(extra)
        ev = {"ph": "X", "cat": cat, "name": name, "pid": self.pid, "tid": tid, "ts": T(ts), "dur": T(dur), "args": args}
        self.cpu.append(ev)
        return ev

    def runtime(self, tid, name, ts, dur, ext, cbid) -> int:
        corr = self.next_corr()
        args = {"External id": ext, "cbid": cbid, "correlation": corr} if ext else {"cbid": cbid, "correlation": corr}
        self.rt.append({"ph": "X", "cat": "cuda_runtime", "name": name, "pid": self.pid, "tid": tid, "ts": T(ts), "dur": T(dur), "args": args})
        return corr

    def launch(self, tid, ts, rt_dur, op: dict, kind: str, name: str, label: str, category: str, stream: int, dur: int,
               step: int, args: dict, *, api="cudaLaunchKernel", cbid=211, latency=us(6.2), dep: int | None = None,
               flops=None, formula="", coll=None) -> Gpu:
        ext = op["args"]["External id"]
        corr = self.runtime(tid, api, ts, rt_dur, ext, cbid)
        prev = self.last.get(stream)
        ready = ts + latency
        if prev is None or ts > prev.end + MARGIN_NS:  # host wait (or first on the stream)
            start = max(ready, dep or 0)
        elif ts <= prev.end - MARGIN_NS:  # queued behind the previous activity
            start = prev.end + self.tiny.pop(0)
            if ready > start:
                raise Ambiguous(f"{label} step {step}: launch latency ends {ready - prev.end} ns after the previous end")
            if dep is not None and dep > start:
                if dep - prev.end < 30 or dep - prev.end < KERNEL_WAIT_US * 1000 + MARGIN_NS:
                    raise Ambiguous(f"{label} step {step}: dependency gap {dep - prev.end} ns")
                start = dep
        else:
            raise Ambiguous(f"{label} step {step}: launch {ts - prev.end:+} ns from the previous end on stream {stream}")
        g = Gpu(kind, name, label, category, self.device, stream, start, dur, corr, ext, ts, step, op["name"], args,
                flops=flops, flops_formula=formula, coll=coll)
        self.gpu.append(g)
        self.last[stream] = g
        return g


def kernel_args(b: Builder, k: K, num_sms: int) -> dict:
    blocks = k.grid[0] * k.grid[1] * k.grid[2]
    warps_per_block = (k.block[0] * k.block[1] * k.block[2] + 31) // 32
    return {
        "queued": 0,
        "device": b.device,
        "context": 1,
        "stream": None,  # filled in by event()
        "correlation": None,
        "registers per thread": k.regs,
        "shared memory": k.smem,
        "blocks per SM": round(blocks / num_sms, 6),
        "warps per SM": round(blocks * warps_per_block / num_sms, 6),
        "grid": list(k.grid),
        "block": list(k.block),
        "est. achieved occupancy %": k.occ,
    }


def gpu_event(b: Builder, g: Gpu) -> dict:
    cat = {"kernel": "kernel", "memcpy": "gpu_memcpy", "memset": "gpu_memset"}[g.kind]
    args = {"External id": g.ext}
    if g.kind == "kernel":
        a = dict(g.args)
        a["stream"] = g.stream
        a["correlation"] = g.corr
        args.update(a)
        if g.coll:
            args.update(g.coll)
    else:
        args.update({"device": g.device, "context": 1, "stream": g.stream, "correlation": g.corr, "bytes": g.args["bytes"],
                     "memory bandwidth (GB/s)": round(g.args["bytes"] / g.dur, 6)})
    return {"ph": "X", "cat": cat, "name": g.name, "pid": g.device, "tid": g.stream, "ts": T(g.start), "dur": T(g.dur), "args": args}


def assemble(b: Builder, pid_name: str, main_tid: int, other_tids: list[tuple[int, str]], span: tuple[int, int],
             with_flows=True) -> list[dict]:
    """All events in Kineto's order: CPU ops, runtime calls, GPU activities, GPU annotations, flows,
    metadata, the profiler span. Fills Gpu.index."""
    events: list[dict] = []
    cpu = sorted(b.cpu, key=lambda e: (int(e["ts"]), -int(e["dur"])))
    for i, e in enumerate(cpu):
        e["args"]["Ev Idx"] = i
    events += cpu
    events += sorted(b.rt, key=lambda e: int(e["ts"]))
    gpu = sorted(b.gpu, key=lambda g: (g.start, g.stream))
    for g in gpu:
        events.append(gpu_event(b, g))
        g.index = len(events)
    events += b.gpu_ann
    if with_flows:
        rt_by_corr = {e["args"]["correlation"]: e for e in b.rt}
        for g in gpu:
            r = rt_by_corr[g.corr]
            events.append({"ph": "s", "id": g.corr, "pid": r["pid"], "tid": r["tid"], "ts": r["ts"], "cat": "ac2g", "name": "ac2g"})
            events.append({"ph": "f", "id": g.corr, "pid": g.device, "tid": g.stream, "ts": T(g.start), "cat": "ac2g", "name": "ac2g", "bp": "e"})
    t0 = T(span[0])
    meta = [
        {"name": "process_name", "ph": "M", "ts": t0, "pid": b.pid, "tid": 0, "args": {"name": pid_name}},
        {"name": "process_labels", "ph": "M", "ts": t0, "pid": b.pid, "tid": 0, "args": {"labels": "CPU"}},
        {"name": "process_name", "ph": "M", "ts": t0, "pid": b.device, "tid": 0, "args": {"name": pid_name}},
        {"name": "process_labels", "ph": "M", "ts": t0, "pid": b.device, "tid": 0, "args": {"labels": f"GPU {b.device}"}},
    ]
    for s in sorted({g.stream for g in b.gpu}):
        meta.append({"name": "thread_name", "ph": "M", "ts": t0, "pid": b.device, "tid": s, "args": {"name": f"stream {s} "}})
    meta.append({"name": "thread_name", "ph": "M", "ts": t0, "pid": b.pid, "tid": main_tid, "args": {"name": f"thread {main_tid} (python3)"}})
    for tid, tname in other_tids:
        meta.append({"name": "thread_name", "ph": "M", "ts": t0, "pid": b.pid, "tid": tid, "args": {"name": f"thread {tid} ({tname})"}})
    events += meta
    events.append({"ph": "X", "cat": "Trace", "ts": t0, "dur": T(span[1] - span[0]), "pid": "Spans", "tid": "PyTorch Profiler",
                   "name": "PyTorch Profiler (0)", "args": {"Op count": 0}})
    events.append({"name": "Iteration Start: PyTorch Profiler", "ph": "i", "s": "g", "pid": "Traces", "tid": "Trace PyTorch Profiler", "ts": t0})
    events.append({"name": "Record Window End", "ph": "i", "s": "g", "pid": "", "tid": "", "ts": T(span[1] + us(3.141))})
    return events


# ------------------------------------------------------------------------------------------------
# Train: 2-rank DDP, one transformer block (d_model 1024, 16 heads × 64, d_ff 4096, vocab 8192),
# batch 8 × seq 1024 tokens, bf16, SGD. Three ProfilerStep windows.

BF16 = "c10::BFloat16"
B, S, D, H, DH, FF, V = 8, 1024, 1024, 16, 64, 4096, 8192
TOK = B * S
BUCKETS = {
    1: FF * D + FF + D * FF,  # mlp up weight + bias, mlp down weight
    2: 3 * D * D + 3 * D + 2 * D + V * D,  # qkv weight + bias, layer norm, embedding
}
TRAIN_T0 = us(1700000000000.000)
TRAIN_BASE_NS = 1733011200000000000 - 1700000000000000  # 2024-12-01T00:00:00Z at TRAIN_T0
STEP_FIRST = 1

# GPU durations (ns), before per-rank/step jitter.
TRAIN_DUR = {
    "emb": us(14.8), "ln": us(19.6), "qkv": us(86.3), "flash": us(68.9), "up": us(114.7), "gelu": us(45.2),
    "down": us(111.9), "add": us(18.4), "b1": us(112.6), "b3": us(86.9), "opt": us(8.2),
}
AR_XFER = {1: us(95.4), 2: us(121.7)}


def gemm_flops(m, n, k, bias=False, batch=1):
    f = 2 * batch * m * n * k + (batch * m * n if bias else 0)
    formula = f"2·{m}·{n}·{k}" + (f" + {m}·{n}" if bias else "")
    if batch != 1:
        formula = f"2·{batch}·{m}·{n}·{k}"
    return f, formula


def build_train(rank: int, ar_end: dict) -> tuple[Builder, dict]:
    pid = 52190 + rank * 3
    main, bwd = pid, pid + 117
    b = Builder(pid, rank, ext0=10 + rank * 0, corr0=41000 + rank * 0, tiny_gaps=[])
    # tiny gaps between back-to-back activities: all < 30 ns (one is 20 ns exactly)
    tiny = [20, 17, 23, 14, 26, 19, 22, 15, 24, 18, 21, 16, 25, 13, 27, 12, 28, 11, 29, 20, 17, 23, 14, 26, 19, 22, 15, 24]
    b.tiny = tiny[rank * 5:] + tiny[: rank * 5]
    ar_start: dict = {}
    dur = lambda key, n, base=None: (TRAIN_DUR[key] if base is None else base) + jit("train", rank, n, key, span=1400) + rank * us(0.7)
    cpu = lambda key, n, x: us(x) + jit("cpu", rank, n, key, span=1600)
    nsm = 132

    def kern(key, tid, ts, op, n, *, dep=None, flops=None, formula="", api="cudaLaunchKernel", cbid=211, coll=None, rt_dur=None,
             stream=7, dur_ns=None):
        k = TRAIN_K[key]
        return b.launch(tid, ts, rt_dur or cpu(("rt", key), n, 5.1), op, "kernel", k.name, k.label, k.category, stream,
                        dur_ns if dur_ns is not None else dur(key, n), n, kernel_args(b, k, nsm), api=api, cbid=cbid,
                        dep=dep, flops=flops, formula=formula, coll=coll)

    t = TRAIN_T0 + us(85.213) + rank * us(37.428)
    span_start = TRAIN_T0 + rank * us(37.428)
    for n in (1, 2, 3):
        step_ev = b.op(main, f"ProfilerStep#{n}", t, 0, cat="user_annotation")
        s0 = t
        dl = cpu("dl", n, 688.0 + 11.0 * n)
        b.op(main, "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", t + us(4.1), dl, cat="user_annotation")
        t += us(4.1) + dl + cpu("dl_gap", n, 6.0)
        if n == 1:  # the token ids go to the GPU (pageable: the copy call blocks until it is done)
            d_to = cpu("to", n, 47.0)
            b.op(main, "aten::to", t, d_to, dims=[[B, S], [], [], [], [], []], types=["long int", "Scalar", "Scalar", "Scalar", "Scalar", ""],
                 conc=["", "4", "0", "", "False", ""])
            b.op(main, "aten::_to_copy", t + us(2.2), d_to - us(4.0), dims=[[B, S], [], [], [], [], [], []],
                 types=["long int", "Scalar", "", "Scalar", "", "Scalar", ""], conc=["", "4", "", "0", "", "False", ""])
            b.op(main, "aten::empty_strided", t + us(4.0), us(3.1), dims=[[], [], [], [], [], []], types=["", "", "Scalar", "", "Scalar", "Scalar"],
                 conc=[f"[{B}, {S}]", f"[{S}, 1]", "4", "", "0", "False"])
            cp = b.op(main, "aten::copy_", t + us(9.5), d_to - us(12.6), dims=[[B, S], [B, S], []], types=["long int", "long int", "Scalar"],
                      conc=["", "", "False"])
            g = b.launch(main, t + us(12.3), d_to - us(17.9), cp, "memcpy", MEMCPY_HTOD, "Memcpy HtoD", "memcpy_htod", 7,
                         us(6.1) + jit("memcpy", rank, span=500), n, {"bytes": B * S * 8}, api="cudaMemcpyAsync", cbid=41,
                         latency=us(3.9), flops=0, formula="copy_: 0")
            assert g.end < t + us(12.3) + d_to - us(17.9), "pageable copy returns after the copy"
            t += d_to + cpu("to_gap", n, 3.0)
        if n == 2:  # a gradient-accumulation buffer is zeroed with a memset
            d_z = cpu("zero", n, 12.0)
            z = b.op(main, "aten::zero_", t, d_z, dims=[[FF]], types=["float"], conc=[""])
            b.launch(main, t + us(4.4), us(5.1), z, "memset", MEMSET, "Memset", "memset", 7, us(1.9) + jit("memset", rank, span=300), n,
                     {"bytes": FF * 4}, api="cudaMemsetAsync", cbid=51, latency=us(3.2))
            t += d_z + cpu("zero_gap", n, 3.0)

        # ---- forward (main thread)
        d = cpu("emb", n, 26.0)
        b.op(main, "aten::embedding", t, d, dims=[[V, D], [B, S], [], [], []], types=[BF16, "long int", "Scalar", "Scalar", "Scalar"],
             conc=["", "", "-1", "False", "False"])
        b.op(main, "aten::reshape", t + us(2.0), us(4.2), dims=[[B, S], []], types=["long int", "ScalarList"], conc=["", "[-1]"])
        isel = b.op(main, "aten::index_select", t + us(8.1), d - us(10.2), dims=[[V, D], [], [TOK]], types=[BF16, "Scalar", "long int"],
                    conc=["", "0", ""])
        kern("emb", main, t + us(13.9), isel, n)
        t += d + cpu("g1", n, 4.0)

        d = cpu("ln", n, 30.0)
        b.op(main, "aten::layer_norm", t, d, dims=[[B, S, D], [], [D], [D], [], []], types=[BF16, "ScalarList", BF16, BF16, "Scalar", "Scalar"],
             conc=["", f"[{D}]", "", "", "1e-05", "True"])
        ln = b.op(main, "aten::native_layer_norm", t + us(3.1), d - us(5.0), dims=[[B, S, D], [], [D], [D], []],
                  types=[BF16, "ScalarList", BF16, BF16, "Scalar"], conc=["", f"[{D}]", "", "", "1e-05"])
        kern("ln", main, t + us(19.2), ln, n)
        t += d + cpu("g2", n, 4.0)

        d = cpu("qkv", n, 38.0)
        b.op(main, "aten::linear", t, d, dims=[[B, S, D], [3 * D, D], [3 * D]], types=[BF16, BF16, BF16], conc=["", "", ""])
        b.op(main, "aten::t", t + us(2.0), us(5.1), dims=[[3 * D, D]], types=[BF16], conc=[""])
        mm = b.op(main, "aten::addmm", t + us(9.0), d - us(11.0), dims=[[3 * D], [TOK, D], [D, 3 * D], [], []],
                  types=[BF16, BF16, BF16, "Scalar", "Scalar"], conc=["", "", "", "1", "1"])
        f, fo = gemm_flops(TOK, 3 * D, D, bias=True)
        kern("qkv", main, t + us(26.0), mm, n, flops=f, formula=fo)
        t += d + cpu("g3", n, 5.0)

        d = cpu("sdpa", n, 52.0)
        qd = [B, H, S, DH]
        b.op(main, "aten::scaled_dot_product_attention", t, d, dims=[qd, qd, qd, [], [], [], []],
             types=[BF16, BF16, BF16, "", "Scalar", "Scalar", ""], conc=["", "", "", "", "0.", "True", ""])
        b.op(main, "aten::_scaled_dot_product_flash_attention", t + us(3.0), d - us(5.0), dims=[qd, qd, qd, [], [], [], []],
             types=[BF16, BF16, BF16, "Scalar", "Scalar", "Scalar", ""], conc=["", "", "", "0.", "True", "False", ""])
        ql = [B, S, H, DH]
        fa = b.op(main, "aten::_flash_attention_forward", t + us(10.0), d - us(16.0),
                  dims=[ql, ql, ql, [], [], [], [], [], [], [], [], [], [], [], []],
                  types=[BF16, BF16, BF16, "", "", "Scalar", "Scalar", "Scalar", "Scalar", "Scalar", "Scalar", "", "", "", ""],
                  conc=["", "", "", "", "", str(S), str(S), "0.", "True", "False", "0.125", "", "", "", ""])
        f = 4 * B * H * S * S * DH
        kern("flash", main, t + us(36.0), fa, n, flops=f, formula=f"4·{B}·{H}·{S}·{S}·{DH}")
        t += d + cpu("g4", n, 5.0)

        d = cpu("up", n, 36.0)
        b.op(main, "aten::linear", t, d, dims=[[B, S, D], [FF, D], [FF]], types=[BF16, BF16, BF16], conc=["", "", ""])
        b.op(main, "aten::t", t + us(2.0), us(4.9), dims=[[FF, D]], types=[BF16], conc=[""])
        mm = b.op(main, "aten::addmm", t + us(8.7), d - us(10.6), dims=[[FF], [TOK, D], [D, FF], [], []],
                  types=[BF16, BF16, BF16, "Scalar", "Scalar"], conc=["", "", "", "1", "1"])
        f, fo = gemm_flops(TOK, FF, D, bias=True)
        kern("up", main, t + us(24.8), mm, n, flops=f, formula=fo)
        t += d + cpu("g5", n, 4.0)

        d = cpu("gelu", n, 14.0)
        ge = b.op(main, "aten::gelu", t, d, dims=[[B, S, FF], []], types=[BF16, ""], conc=["", "none"])
        kern("gelu", main, t + us(6.0), ge, n, flops=B * S * FF, formula=f"{B}·{S}·{FF} elements")
        t += d + cpu("g6", n, 4.0)

        d = cpu("down", n, 40.0)
        b.op(main, "aten::linear", t, d, dims=[[B, S, FF], [D, FF], []], types=[BF16, BF16, ""], conc=["", "", ""])
        b.op(main, "aten::t", t + us(2.0), us(5.0), dims=[[D, FF]], types=[BF16], conc=[""])
        b.op(main, "aten::matmul", t + us(9.0), d - us(11.0), dims=[[B, S, FF], [FF, D]], types=[BF16, BF16], conc=["", ""])
        mm = b.op(main, "aten::mm", t + us(14.0), d - us(21.0), dims=[[TOK, FF], [FF, D]], types=[BF16, BF16], conc=["", ""])
        f, fo = gemm_flops(TOK, D, FF)
        kern("down", main, t + us(27.9), mm, n, flops=f, formula=fo)
        t += d + cpu("g7", n, 4.0)

        d = cpu("add", n, 13.0)
        ad = b.op(main, "aten::add", t, d, dims=[[B, S, D], [B, S, D], []], types=[BF16, BF16, "Scalar"], conc=["", "", "1"])
        kern("add", main, t + us(5.0), ad, n, flops=B * S * D, formula=f"{B}·{S}·{D} elements")
        t += d

        # ---- backward (autograd thread) with DDP's two gradient buckets
        tb = t + cpu("bwd_start", n, 18.0)

        def mm_backward(tb, key, dims, f, fo):
            d = cpu(key, n, 44.0)
            seq = {"Sequence number": 40 * n + (7 if key == "b1" else 3), "Fwd thread id": 1}
            b.op(bwd, "autograd::engine::evaluate_function: MmBackward0", tb, d, extra=seq)
            b.op(bwd, "MmBackward0", tb + us(2.5), d - us(4.0), extra=seq)
            b.op(bwd, "aten::t", tb + us(4.6), us(3.8), dims=[dims[1][::-1]], types=[BF16], conc=[""])
            mm = b.op(bwd, "aten::mm", tb + us(10.0), d - us(16.0), dims=dims, types=[BF16, BF16], conc=["", ""])
            g = kern(key, bwd, tb + us(23.8), mm, n, flops=f, formula=fo)
            return tb + d, g

        def allreduce(tb, bucket, dep_kernel):
            d = cpu(("ar", bucket), n, 96.0)
            nel = BUCKETS[bucket]
            b.op(bwd, "autograd::engine::evaluate_function: torch::autograd::AccumulateGrad", tb, d)
            b.op(bwd, "torch::autograd::AccumulateGrad", tb + us(2.1), us(8.3))
            b.op(bwd, "c10d::allreduce_", tb + us(14.0), d - us(20.0))
            coll = {"Collective name": "allreduce", "In msg nelems": nel, "Out msg nelems": nel, "Group size": 2, "dtype": "BFloat16",
                    "In split size": "[]", "Out split size": "[]", "Process Group Name": "0", "Process Group Description": "default_pg",
                    "Process Group Ranks": "[0, 1]"}
            rpc = b.op(bwd, "record_param_comms", tb + us(20.2), d - us(33.0),
                       extra={**coll, "Global rank start": 0, "Global rank stride": 1})
            b.op(bwd, "nccl:all_reduce", tb + us(27.4), d - us(52.0), cat="user_annotation")
            ext = rpc["args"]["External id"]
            b.runtime(bwd, "cudaEventRecord", tb + us(30.3), us(1.9), ext, 135)
            b.runtime(bwd, "cudaStreamWaitEvent", tb + us(33.1), us(1.4), ext, 147)
            key = (n, bucket)
            k = TRAIN_K["ar"]
            ts = tb + us(37.0)
            # start: known once placed; duration: until the later rank's start + transfer time
            g = b.launch(bwd, ts, us(11.2) + jit("arl", rank, n, bucket, span=600), rpc, "kernel", k.name, k.label, k.category, 20,
                         us(1.0), n, kernel_args(b, k, nsm), api="cudaLaunchKernelExC", cbid=430, dep=dep_kernel.end + us(1.3),
                         coll=coll)
            ar_start[key] = g.start
            g.dur = (ar_end[key] - g.start) if key in ar_end else AR_XFER[bucket]
            b.runtime(bwd, "cudaEventRecord", ts + us(14.6), us(0.8), ext, 135)
            return tb + d, g

        f, fo = gemm_flops(TOK, FF, D)
        tb, g1 = mm_backward(tb, "b1", [[TOK, D], [D, FF]], f, fo)
        tb, ar1 = allreduce(tb + cpu("bg1", n, 6.0), 1, g1)
        f, fo = gemm_flops(3 * D, D, TOK)
        tb, g3 = mm_backward(tb + cpu("bg2", n, 5.0), "b3", [[3 * D, TOK], [TOK, D]], f, fo)
        tb, ar2 = allreduce(tb + cpu("bg3", n, 6.0), 2, g3)
        # DDP's finalize: the default stream waits for the last all-reduce
        tb += cpu("bg4", n, 7.0)
        b.runtime(bwd, "cudaStreamWaitEvent", tb, us(1.6), 0, 147)
        tb += us(1.6)

        # ---- optimizer (main thread)
        t = tb + cpu("opt_start", n, 12.0)
        d = cpu("opt", n, 30.0)
        b.op(main, "Optimizer.step#SGD.step", t, d, cat="user_annotation")
        w = [FF, D]
        ad = b.op(main, "aten::add_", t + us(8.0), d - us(13.0), dims=[w, w, []], types=[BF16, BF16, "Scalar"], conc=["", "", "-0.01"])
        kern("opt", main, t + us(15.0), ad, n, dep=ar2.end + us(1.6), flops=FF * D, formula=f"{FF}·{D} elements")
        t += d + cpu("step_end", n, 4.0)
        step_ev["dur"] = T(t - s0)
        b.steps.append((n, s0, t))
        t += cpu("between", n, 1.5)
    span_end = max(t, max(g.end for g in b.gpu)) + us(20.0)
    return b, {"ar_start": ar_start, "span": (span_start, span_end), "main": main, "bwd": bwd}


def simulate_train() -> list[tuple[Builder, dict]]:
    ar_end: dict = {}
    for _ in range(20):
        built = [build_train(r, ar_end) for r in (0, 1)]
        new = {}
        for key in built[0][1]["ar_start"]:
            new[key] = max(bt[1]["ar_start"][key] for bt in built) + AR_XFER[key[1]] + jit("xfer", key, span=800)
        if new == ar_end:
            return built
        ar_end = new
    raise RuntimeError("all-reduce schedule did not converge")


# ------------------------------------------------------------------------------------------------
# Inference: one rank, no distributedInfo, A100 fp16, a Qwen-0.5B-sized decoder slice (one layer of
# 24 shown: hidden 1024, 16 heads × 64, MLP 2816, vocab 151936), batch 1, prompt 512 tokens:
# ProfilerStep#0 = prefill, #1..#3 = decode. GPU-side ProfilerStep annotations are present.

HALF = "c10::Half"
ID, IH, IDH, IFF, IV, PROMPT = 1024, 16, 64, 2816, 151936, 512
INFER_T0 = us(2345678901234.567)
INFER_BASE_NS = 1735732800000000000 - 2345678901234567  # 2025-01-01T12:00:00Z at INFER_T0


def build_infer() -> tuple[Builder, dict]:
    pid = 8721
    tid = pid
    b = Builder(pid, 0, ext0=400, corr0=9000, tiny_gaps=[])
    b.tiny = [21, 18, 24, 16, 27, 13, 22, 19, 25, 11, 28, 17, 23, 14, 26, 12]
    cpu = lambda key, n, x: us(x) + jit("icpu", n, key, span=1500)
    dur = lambda n, key, base: base + jit("idur", n, key, span=700)
    nsm = 108
    t = INFER_T0 + us(140.551)
    span_start = INFER_T0

    def kern(k: K, ts, op, n, d, **kw):
        return b.launch(tid, ts, kw.pop("rt_dur", us(4.6) + jit("irt", n, k.label, ts, span=900)), op, "kernel", k.name, k.label,
                        k.category, 7, d, n, kernel_args(b, k, nsm), latency=us(5.4), **kw)

    def linear(t, n, key, m, nout, kin, bias, kernel: K, base_dur):
        x = [1, m, kin]
        d = cpu(("lin", key), n, 34.0)
        b.op(tid, "aten::linear", t, d, dims=[x, [nout, kin], [nout] if bias else []], types=[HALF, HALF, HALF if bias else ""],
             conc=["", "", ""])
        b.op(tid, "aten::t", t + us(1.9), us(4.4), dims=[[nout, kin]], types=[HALF], conc=[""])
        if bias:
            mm = b.op(tid, "aten::addmm", t + us(8.2), d - us(10.0), dims=[[nout], [m, kin], [kin, nout], [], []],
                      types=[HALF, HALF, HALF, "Scalar", "Scalar"], conc=["", "", "", "1", "1"])
            f, fo = gemm_flops(m, nout, kin, bias=True)
            launch_at = t + us(22.5)
        else:
            b.op(tid, "aten::matmul", t + us(8.2), d - us(10.0), dims=[x, [kin, nout]], types=[HALF, HALF], conc=["", ""])
            mm = b.op(tid, "aten::mm", t + us(12.6), d - us(17.5), dims=[[m, kin], [kin, nout]], types=[HALF, HALF], conc=["", ""])
            f, fo = gemm_flops(m, nout, kin)
            launch_at = t + us(24.1)
        g = kern(kernel, launch_at, mm, n, dur(n, key, base_dur), flops=f, formula=fo)
        g.label = f"{kernel.label} ({key})"
        return t + d

    for n in (0, 1, 2, 3):
        prefill = n == 0
        m = PROMPT if prefill else 1
        lk = PROMPT + n  # keys in the cache, including this step's token
        step_ev = b.op(tid, f"ProfilerStep#{n}", t, 0, cat="user_annotation")
        s0 = t
        first_gpu = len(b.gpu)
        t += cpu("s", n, 6.0)
        if prefill:
            d = cpu("to", n, 41.0)
            b.op(tid, "aten::to", t, d, dims=[[1, PROMPT], [], [], [], [], []], types=["long int", "Scalar", "Scalar", "Scalar", "Scalar", ""],
                 conc=["", "4", "0", "", "False", ""])
            b.op(tid, "aten::_to_copy", t + us(2.0), d - us(3.5), dims=[[1, PROMPT], [], [], [], [], [], []],
                 types=["long int", "Scalar", "", "Scalar", "", "Scalar", ""], conc=["", "4", "", "0", "", "False", ""])
            cp = b.op(tid, "aten::copy_", t + us(8.8), d - us(11.6), dims=[[1, PROMPT], [1, PROMPT], []], types=["long int", "long int", "Scalar"],
                      conc=["", "", "False"])
            g = b.launch(tid, t + us(11.5), d - us(16.9), cp, "memcpy", MEMCPY_HTOD, "Memcpy HtoD", "memcpy_htod", 7, us(2.1),
                         n, {"bytes": PROMPT * 8}, api="cudaMemcpyAsync", cbid=41, latency=us(3.6), flops=0, formula="copy_: 0")
            t += d + cpu("to_gap", n, 3.0)
        # embedding
        d = cpu("emb", n, 24.0)
        b.op(tid, "aten::embedding", t, d, dims=[[IV, ID], [1, m], [], [], []], types=[HALF, "long int", "Scalar", "Scalar", "Scalar"],
             conc=["", "", "-1", "False", "False"])
        isel = b.op(tid, "aten::index_select", t + us(7.4), d - us(9.6), dims=[[IV, ID], [], [m]], types=[HALF, "Scalar", "long int"],
                    conc=["", "0", ""])
        kern(INFER_K["emb_p" if prefill else "emb_d"], t + us(13.0), isel, n, dur(n, "emb", us(4.2) if prefill else us(2.3)))
        t += d + cpu("g0", n, 4.0)
        # fused qkv projection with bias
        t = linear(t, n, "qkv", m, 3 * ID, ID, True, INFER_K["gemm" if prefill else "cutlass"], us(14.1) if prefill else us(6.3))
        t += cpu("g1", n, 5.0)
        # attention over the KV cache
        d = cpu("sdpa", n, 50.0)
        qd, kd = [1, IH, m, IDH], [1, IH, lk, IDH]
        b.op(tid, "aten::scaled_dot_product_attention", t, d, dims=[qd, kd, kd, [], [], [], []],
             types=[HALF, HALF, HALF, "", "Scalar", "Scalar", ""], conc=["", "", "", "", "0.", "True" if prefill else "False", ""])
        b.op(tid, "aten::_scaled_dot_product_flash_attention", t + us(2.9), d - us(4.8), dims=[qd, kd, kd, [], [], [], []],
             types=[HALF, HALF, HALF, "Scalar", "Scalar", "Scalar", ""], conc=["", "", "", "0.", "True" if prefill else "False", "False", ""])
        ql, kl = [1, m, IH, IDH], [1, lk, IH, IDH]
        fa = b.op(tid, "aten::_flash_attention_forward", t + us(9.6), d - us(15.1),
                  dims=[ql, kl, kl, [], [], [], [], [], [], [], [], [], [], [], []],
                  types=[HALF, HALF, HALF, "", "", "Scalar", "Scalar", "Scalar", "Scalar", "Scalar", "Scalar", "", "", "", ""],
                  conc=["", "", "", "", "", str(m), str(lk), "0.", "True" if prefill else "False", "False", "0.125", "", "", "", ""])
        f = 4 * IH * m * lk * IDH
        kern(INFER_K["flash_p" if prefill else "flash_d"], t + us(34.0), fa, n, dur(n, "flash", us(12.4) if prefill else us(6.6)),
             flops=f, formula=f"4·1·{IH}·{m}·{lk}·{IDH}")
        t += d + cpu("g2", n, 5.0)
        gk = INFER_K["gemm" if prefill else "gemv"]
        t = linear(t, n, "o_proj", m, ID, ID, False, gk, us(6.2) if prefill else us(3.4)) + cpu("g3", n, 4.0)
        t = linear(t, n, "gate_proj", m, IFF, ID, False, gk, us(13.0) if prefill else us(5.1)) + cpu("g4", n, 4.0)
        t = linear(t, n, "up_proj", m, IFF, ID, False, gk, us(12.9) if prefill else us(5.0)) + cpu("g5", n, 4.0)
        d = cpu("silu", n, 13.0)
        si = b.op(tid, "aten::silu", t, d, dims=[[1, m, IFF]], types=[HALF], conc=[""])
        kern(INFER_K["silu"], t + us(5.6), si, n, dur(n, "silu", us(4.1) if prefill else us(2.0)), flops=m * IFF,
             formula=f"{m}·{IFF} elements")
        t += d + cpu("g6", n, 4.0)
        d = cpu("mul", n, 12.5)
        mu = b.op(tid, "aten::mul", t, d, dims=[[1, m, IFF], [1, m, IFF]], types=[HALF, HALF], conc=["", ""])
        kern(INFER_K["mul"], t + us(5.4), mu, n, dur(n, "mul", us(4.5) if prefill else us(2.1)), flops=m * IFF,
             formula=f"{m}·{IFF} elements")
        t += d + cpu("g7", n, 4.0)
        t = linear(t, n, "down_proj", m, ID, IFF, False, gk, us(13.5) if prefill else us(5.2)) + cpu("g8", n, 4.0)
        # logits of the last position only
        d = cpu("slice", n, 7.0)
        b.op(tid, "aten::slice", t, d, dims=[[1, m, ID], [], [], [], []], types=[HALF, "Scalar", "Scalar", "Scalar", "Scalar"],
             conc=["", "1", "-1", "9223372036854775807", "1"])
        t += d + cpu("g9", n, 3.0)
        t = linear(t, n, "lm_head", 1, IV, ID, False, INFER_K["gemv"], us(163.8)) + cpu("g10", n, 4.0)
        d = cpu("argmax", n, 16.0)
        am = b.op(tid, "aten::argmax", t, d, dims=[[1, IV], [], []], types=[HALF, "Scalar", "Scalar"], conc=["", "-1", "False"])
        kern(INFER_K["argmax"], t + us(7.8), am, n, dur(n, "argmax", us(6.3)))
        t += d + cpu("g11", n, 4.0)
        # next_token.item(): copy to the host and wait for it
        it = b.op(tid, "aten::item", t, 0, dims=[[1]], types=["long int"], conc=[""])
        lsd = b.op(tid, "aten::_local_scalar_dense", t + us(2.6), 0, dims=[[1]], types=["long int"], conc=[""])
        g = b.launch(tid, t + us(5.3), us(6.0), lsd, "memcpy", MEMCPY_DTOH, "Memcpy DtoH", "memcpy_dtoh", 7,
                     dur(n, "d2h", us(1.4)), n, {"bytes": 8}, api="cudaMemcpyAsync", cbid=41, latency=us(3.1))
        sync_ts = t + us(12.1)
        sync_end = max(sync_ts + us(2.3), g.end + us(1.9))
        b.runtime(tid, "cudaStreamSynchronize", sync_ts, sync_end - sync_ts, lsd["args"]["External id"], 131)
        lsd["dur"] = T(sync_end + us(1.2) - (t + us(2.6)))
        it["dur"] = T(sync_end + us(2.4) - t)
        t = sync_end + us(2.4) + cpu("s_end", n, 9.0)
        step_ev["dur"] = T(t - s0)
        b.steps.append((n, s0, t))
        gs = b.gpu[first_gpu:]
        ann_s, ann_e = min(x.start for x in gs), max(x.end for x in gs)
        b.gpu_ann.append({"ph": "X", "cat": "gpu_user_annotation", "name": f"ProfilerStep#{n}", "pid": 0, "tid": 7, "ts": T(ann_s),
                          "dur": T(ann_e - ann_s), "args": {"External id": step_ev["args"]["External id"]}})
        t += cpu("between", n, 2.0)
    span_end = t + us(25.0)
    return b, {"span": (span_start, span_end), "main": tid}


# ------------------------------------------------------------------------------------------------
# Figures (independent of tapeout and HTA).


def classify_gaps(acts: list[Gpu]) -> None:
    """HTA 0.5's per-stream idle classification on exact ns times."""
    by_stream: dict[int, list[Gpu]] = {}
    for g in acts:
        by_stream.setdefault(g.stream, []).append(g)
    for lst in by_stream.values():
        lst.sort(key=lambda g: g.start)
        prev = None
        for g in lst:
            if prev is None:
                g.gap_ns, g.gap_class = None, ""
            else:
                g.gap_ns = g.start - prev.end
                assert g.gap_ns >= 0, (g.label, g.gap_ns)
                if g.launch_ts > prev.end:
                    g.gap_class = "host_wait"
                elif g.gap_ns < KERNEL_WAIT_US * 1000:
                    g.gap_class = "kernel_wait"
                else:
                    g.gap_class = "other"
                # unambiguous under a 30 ns reading and under HTA's whole-µs rounding
                if g.gap_class != "host_wait":
                    assert g.gap_ns < 30 or g.gap_ns >= KERNEL_WAIT_US * 1000 + MARGIN_NS, (g.label, g.gap_ns)
                    assert prev.end - g.launch_ts >= MARGIN_NS, (g.label, prev.end - g.launch_ts)
                else:
                    assert g.launch_ts - prev.end >= MARGIN_NS, (g.label, g.launch_ts - prev.end)
            prev = g


def idle_breakdown(acts: list[Gpu]) -> dict:
    """{stream: {class: ns}} for the given activities (gaps recomputed within the subset)."""
    sub = [Gpu(**{k: getattr(g, k) for k in Gpu.__dataclass_fields__}) for g in acts]
    classify_gaps(sub)
    out: dict = {}
    for g in sub:
        if g.gap_class:
            d = out.setdefault(g.stream, {"host_wait": 0, "kernel_wait": 0, "other": 0})
            d[g.gap_class] += g.gap_ns
    return out


def hta_rounded_idle(acts: list[Gpu], rt_ts: dict) -> dict:
    """The same, as HTA 0.5 computes it: ts ceiled and ts + dur floored to whole µs."""
    out: dict = {}
    by_stream: dict[int, list] = {}
    for g in acts:
        s = math.ceil(g.start / 1000)
        e = math.floor(g.end / 1000)
        by_stream.setdefault(g.stream, []).append((s, e, math.ceil(rt_ts[g.corr] / 1000)))
    for stream, lst in by_stream.items():
        lst.sort()
        d = {"host_wait": 0, "kernel_wait": 0, "other": 0}
        for (ps, pe, _), (s, e, rts) in zip(lst, lst[1:]):
            gap = s - pe
            cls = "host_wait" if rts > pe else ("kernel_wait" if gap < KERNEL_WAIT_US else "other")
            d[cls] += gap
        out[stream] = d
    return out


def union(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def overlap_ns(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    tot = 0
    for s1, e1 in a:
        for s2, e2 in b:
            tot += max(0, min(e1, e2) - max(s1, s2))
    return tot


def comm_figures(acts: list[Gpu], rounded=False) -> dict:
    def iv(g):
        if rounded:
            return (math.ceil(g.start / 1000), math.floor(g.end / 1000))
        return (g.start, g.end)

    comm = union([iv(g) for g in acts if g.hta_category() == "COMMUNICATION"])
    comp = union([iv(g) for g in acts if g.hta_category() == "COMPUTATION"])
    total = sum(e - s for s, e in comm)
    ov = overlap_ns(comm, comp)
    return {"total": total, "overlapped": ov, "exposed": total - ov}


def set_windows(b: Builder) -> int | None:
    """HTA 0.5's filter: ≥ 2 distinct ProfilerStep names -> keep activities whose runtime call
    starts before the latest start of a non-GPU ProfilerStep event (CPU or gpu_user_annotation)."""
    names = {e["name"] for e in b.cpu + b.gpu_ann if "ProfilerStep" in e["name"]}
    if len(names) < 2:
        for g in b.gpu:
            g.window = True
        return None
    cut = max(int(e["ts"]) for e in b.cpu + b.gpu_ann if "ProfilerStep" in e["name"])
    for g in b.gpu:
        g.window = g.launch_ts < cut
    return cut


# ------------------------------------------------------------------------------------------------
# README


def ms3(ns: int) -> str:
    return f"{ns / 1000:,.3f}"


def rel(ns: int, t0: int) -> str:
    return fmt_us(ns - t0)


class Doc:
    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, s: str = ""):
        self.lines.append(s)

    def table(self, head: list[str], rows: list[list], align: str | None = None):
        self("| " + " | ".join(head) + " |")
        al = align or ("l" * len(head))
        self("|" + "|".join("---:" if a == "r" else "---" for a in al) + "|")
        for r in rows:
            self("| " + " | ".join(str(x) for x in r) + " |")
        self()


def rank_section(doc: Doc, title: str, b: Builder, rel0: int, cut: int | None, events: list[dict], info: dict):
    rt_ts = {e["args"]["correlation"]: int(e["ts"]) for e in b.rt}
    acts = sorted(b.gpu, key=lambda g: g.index)
    win = [g for g in acts if g.window]
    doc(f"### {title}")
    doc()
    n_k = sum(g.kind == "kernel" for g in acts)
    n_c = sum(g.kind == "memcpy" for g in acts)
    n_s = sum(g.kind == "memset" for g in acts)
    cats: dict[str, int] = {}
    for e in events:
        c = e.get("cat", "")
        cats[c] = cats.get(c, 0) + 1
    xs = [e for e in events if e.get("ph") == "X"]
    span_s = min(int(e["ts"]) for e in xs)
    span_e = max(int(e["ts"]) + int(e["dur"]) for e in xs)
    doc(f"- traceEvents: {len(events)} (by cat: " + ", ".join(f"`{k or '(none)'}` {v}" for k, v in sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))) + ")")
    doc(f"- complete-event span: `start_ns` {span_s} … `end_ns` {span_e} (trace clock, ns)")
    doc(f"- GPU activities: **{len(acts)}** = {n_k} kernels + {n_c} memcpy + {n_s} memset; "
        f"in `hta_window`: **{len(win)}** ({sum(g.kind == 'kernel' for g in win)} kernels + "
        f"{sum(g.kind == 'memcpy' for g in win)} memcpy + {sum(g.kind == 'memset' for g in win)} memset)")
    if cut is None:
        doc("- HTA filter: not applied (fewer than 2 distinct `ProfilerStep` names), every row is in `hta_window`")
    else:
        doc(f"- HTA cut-off (latest start of a non-GPU `ProfilerStep` event): {cut} ns = +{rel(cut, rel0)} µs")
    n_ops = sum(e.get("cat") in ("cpu_op", "user_annotation") for e in events)
    doc(f"- `ops` rows (`cpu_op` + `user_annotation` events): {n_ops}; CPU-side `ProfilerStep`s: "
        + ", ".join(f"#{n} [{rel(s, rel0)}, {rel(e, rel0)}] µs" for n, s, e in b.steps))
    gpu_ns = sum(g.dur for g in acts)
    doc(f"- total GPU time (sum of `dur_ns`): {gpu_ns} ns; flops summed over rows: {sum(g.flops or 0 for g in acts)} "
        f"(in `hta_window`: {sum(g.flops or 0 for g in win)})")
    doc()
    cat_all: dict[str, list[int]] = {}
    for g in acts:
        c = cat_all.setdefault(g.category, [0, 0, 0, 0])
        c[0] += 1
        c[1] += g.dur
        if g.window:
            c[2] += 1
            c[3] += g.dur
    doc("GPU time by `category` (pipelines/categories/kernels.toml; memcpy/memset by activity):")
    doc()
    doc.table(["category", "rows", "ns", "rows in hta_window", "ns in hta_window"],
              [[f"`{k}`", v[0], v[1], v[2], v[3]] for k, v in sorted(cat_all.items(), key=lambda kv: -kv[1][1])]
              + [["**total**", len(acts), gpu_ns, len(win), sum(g.dur for g in win)]], "lrrrr")
    hta: dict[str, list[int]] = {}
    for g in win:
        c = hta.setdefault(g.hta_category(), [0, 0])
        c[0] += 1
        c[1] += g.dur
    doc("HTA 0.5 `get_kernel_type` over the `hta_window` rows (what `scripts/hta_compare.py` compares): "
        + "; ".join(f"`{k}` {v[0]} rows, {v[1]} ns" for k, v in sorted(hta.items())))
    doc()
    doc("Idle time per stream (ns), HTA's rule on exact times: a gap is `host_wait` when the next activity's runtime "
        "call started after the previous activity ended, else `kernel_wait` when < 30 µs, else `other`. "
        "`hta_window` rows only (what HTA's `get_idle_time_breakdown` sees) and all rows; "
        "the last column is what HTA 0.5 itself reports (whole µs, after its ceil/floor rounding):")
    doc()
    iw = idle_breakdown(win)
    ia = idle_breakdown(acts)
    ir = hta_rounded_idle(win, rt_ts)
    rows = []
    for s in sorted(set(iw) | set(ia)):
        for cls in ("host_wait", "kernel_wait", "other"):
            rows.append([s, f"`{cls}`", iw.get(s, {}).get(cls, 0), ia.get(s, {}).get(cls, 0), ir.get(s, {}).get(cls, 0)])
        rows.append([s, "**total**", sum(iw.get(s, {}).values()), sum(ia.get(s, {}).values()), sum(ir.get(s, {}).values())])
    doc.table(["stream", "class", "ns (hta_window)", "ns (all rows)", "HTA 0.5 µs (hta_window)"], rows, "llrrr")
    if any(g.hta_category() == "COMMUNICATION" for g in acts):
        cw, ca, cr = comm_figures(win), comm_figures(acts), comm_figures(win, rounded=True)
        doc("Communication (NCCL kernels) vs computation (HTA `COMPUTATION` kernels, i.e. every kernel but NCCL; "
            "memcpy/memset excluded) on this device: total = length of the union of communication intervals, "
            "overlapped = the part of it during which some computation kernel runs, exposed = total − overlapped:")
        doc()
        doc.table(["rows", "total ns", "overlapped ns", "exposed ns", "overlap %"],
                  [["hta_window", cw["total"], cw["overlapped"], cw["exposed"], f"{100 * cw['overlapped'] / cw['total']:.2f}"],
                   ["all", ca["total"], ca["overlapped"], ca["exposed"], f"{100 * ca['overlapped'] / ca['total']:.2f}"],
                   ["hta_window, HTA µs rounding", cr["total"], cr["overlapped"], cr["exposed"],
                    f"{100 * cr['overlapped'] / cr['total']:.2f}"]], "lrrrr")
    # activity list
    doc(f"Every GPU activity (times in µs relative to {fmt_us(rel0)}; `#` = 1-based index in traceEvents = `event_index`; "
        "gap = idle time since the previous activity on the same stream, over all rows):")
    doc()
    rows = []
    for g in acts:
        rows.append([g.index, g.step, g.stream, g.label, f"`{g.category}`", rel(g.launch_ts, rel0), rel(g.start, rel0), fmt_us(g.dur),
                     rel(g.end, rel0), "" if g.gap_ns is None else fmt_us(g.gap_ns), g.gap_class, "yes" if g.window else "no",
                     f"`{g.op}`", "" if g.flops is None else g.flops])
    doc.table(["#", "step", "stream", "activity", "category", "launch", "start", "dur", "end", "gap", "gap class", "hta_window",
               "op", "flops"], rows, "rrrlllrrrrllll")


def flops_table(doc: Doc, acts: list[Gpu]):
    seen = {}
    for g in sorted(acts, key=lambda g: g.index):
        if g.flops is None:
            continue
        key = (g.op, g.label, g.flops_formula)
        if key not in seen:
            seen[key] = [g.op, g.label, g.flops_formula, g.flops, 0]
        seen[key][4] += 1
    doc.table(["op (innermost, launching)", "kernel", "formula", "flops per call", "calls"],
              [[f"`{v[0]}`", v[1], v[2], v[3], v[4]] for v in seen.values()], "lllrr")


def write_readme(train, infer) -> str:
    doc = Doc()
    doc("# Kineto (PyTorch profiler) sample traces")
    doc()
    doc("Small synthetic traces in the real Kineto Chrome-trace layout, written by "
        "[`scripts/make_kineto_samples.py`](../../scripts/make_kineto_samples.py) (stdlib only, deterministic: "
        "`python3 scripts/make_kineto_samples.py` rewrites these files byte for byte, `--check` verifies them). "
        "Every figure below is computed by that script from the event list it generated, not by tapeout or HTA, "
        "so tests can pin them. **Do not edit the traces or this README by hand; change the script and rerun it.**")
    doc()
    doc("Layout as PyTorch 2.x writes it: header keys (`schemaVersion`, `deviceProperties`, `distributedInfo`, "
        "`baseTimeNanoseconds`, ...), then `traceEvents` with `cpu_op` / `user_annotation` events (`External id`, "
        "`Input Dims`, `Input type`, `Concrete Inputs`), `cuda_runtime` calls (`cudaLaunchKernel`, `cudaLaunchKernelExC` "
        "for NCCL, `cudaMemcpyAsync`, `cudaMemsetAsync`, `cudaEventRecord`, `cudaStreamWaitEvent`, `cudaStreamSynchronize`; "
        "`correlation`), GPU activities (`kernel`, `gpu_memcpy`, `gpu_memset` with `pid` = device, `tid` = stream), "
        "`ac2g` flow events, `M` metadata, the `Trace` span and instant events. `ts`/`dur` are µs with exactly three "
        "decimals (ns resolution). One event per line.")
    doc()
    doc("How the timelines were made: a kernel starts at max(launch call + ~6 µs, end of the previous activity on its "
        "stream + a gap of 11–29 ns, its dependency); NCCL kernels depend on the compute kernel that produced their "
        "gradients (+1.3 µs), the optimizer kernel on the last all-reduce (+1.6 µs, DDP's stream wait), and an "
        "all-reduce ends on both ranks together (later rank's start + transfer time). The script refuses any idle gap "
        "that is neither a host wait nor < 30 ns nor ≥ 32 µs, and any launch within 2 µs of the previous end, so the "
        "idle classification below is the same whether HTA's `consecutive_kernel_delay=30` is read as 30 ns (its "
        "docstring) or 30 µs (what HTA 0.5 actually compares: µs timestamps), and with or without HTA's whole-µs rounding.")
    doc()

    # ---------------- train
    (b0, i0, ev0, cut0), (b1, i1, ev1, cut1) = train
    doc("## `train_2rank/` — 2-rank DDP training, H100, bf16")
    doc()
    doc(f"`rank0.json`, `rank1.json`: one transformer block (embedding {V}×{D}, layer norm, fused qkv projection, flash "
        f"attention with {H} heads × {DH}, MLP {D}→{FF}→{D} with GELU, residual add), batch {B} × seq {S} = {TOK} tokens, "
        "bf16, SGD. Three `ProfilerStep#1..3` windows (`user_annotation` on the main thread). Per step: a data-loader "
        "`user_annotation` (CPU only, ~0.7 ms: the GPU idles, host wait), the forward ops on the main thread, the "
        "backward on the autograd thread (`autograd::engine::evaluate_function: MmBackward0` → `MmBackward0` → `aten::mm`), "
        "DDP's two gradient buckets all-reduced from there (`c10d::allreduce_` → `record_param_comms` (collective args) → "
        "`nccl:all_reduce`, launched with `cudaLaunchKernelExC` on stream 20), then `Optimizer.step#SGD.step` → "
        "`aten::add_` on the main thread, which waits for the last all-reduce. Step 1 also copies the token ids to the "
        "GPU (`aten::to` → `aten::_to_copy` → `aten::copy_` → `cudaMemcpyAsync`: one `Memcpy HtoD (Pageable -> Device)`), "
        "step 2 zeroes a buffer (`aten::zero_` → `cudaMemsetAsync`: one `Memset (Device)`).")
    doc()
    doc("- `distributedInfo`: backend `nccl`, rank 0 / 1, `world_size` 2, `pg_count` 1, one `pg_config` entry "
        "(`pg_name` \"0\", `pg_desc` \"default_pg\"), `nccl_version` \"2.21.5\"")
    doc("- `deviceProperties`: both GPUs (ids 0 and 1, \"NVIDIA H100 80GB HBM3\", compute 9.0, 132 SMs) in each file, "
        "as Kineto lists every visible device; rank r's activities are on device r (`pid` r), streams 7 (compute) and 20 (NCCL)")
    doc(f"- `baseTimeNanoseconds` {TRAIN_BASE_NS}: trace time {fmt_us(TRAIN_T0)} µs is 2024-12-01T00:00:00Z, so "
        f"`start_time` = {TRAIN_BASE_NS} + `start_ns`")
    per_step = [sum(g.step == n for g in b0.gpu) for n in (1, 2, 3)]
    doc("- no GPU-side (`gpu_user_annotation`) `ProfilerStep`s: HTA counts those as CPU events, which would move the "
        "cut-off into step 3 (the inference sample has them). So here the cut-off is the start of `ProfilerStep#3`: "
        f"the {per_step[0]} + {per_step[1]} activities launched in steps 1 and 2 are in `hta_window`, the {per_step[2]} "
        "launched in step 3 are not (on each rank).")
    doc("- ops and linking: every kernel's launching op is the innermost `cpu_op` around its runtime call on the same "
        "thread (`op_link` = `correlation` for all rows); `External id` of the runtime call and the kernel equals that op's.")
    doc()
    doc("Collectives (one row per NCCL kernel; both buckets use `ncclDevKernel_AllReduce_Sum_bf16_RING_LL` → "
        "`nccl_algorithm` RING, `nccl_protocol` LL; args `Collective name` allreduce, `dtype` BFloat16 (2 bytes), "
        "`Group size` 2, `Process Group Name` \"0\", `Process Group Description` default_pg):")
    doc()
    rows = []
    for r, (b, info, ev, cut) in enumerate(train):
        for g in sorted(b.gpu, key=lambda g: g.index):
            if g.coll:
                nel = g.coll["In msg nelems"]
                bucket = 1 if nel == BUCKETS[1] else 2
                rows.append([r, g.index, g.step, bucket, nel, nel * 2, g.start, g.dur, "yes" if g.window else "no"])
    doc.table(["rank", "#", "step", "bucket", "in = out msg nelems", "msg bytes", "start_ns", "dur_ns", "hta_window"], rows,
              "rrrrrrrrl")
    doc(f"Bucket 1 = MLP up weight + bias + down weight = {FF}·{D} + {FF} + {D}·{FF} = {BUCKETS[1]} elements; bucket 2 = qkv "
        f"weight + bias, layer-norm weight + bias, embedding = 3·{D}·{D} + 3·{D} + 2·{D} + {V}·{D} = {BUCKETS[2]} elements. "
        "Matching all-reduces end at the same ns on both ranks; the rank that started earlier shows the longer kernel.")
    doc()
    doc("FLOPs (tapeout's formulas; on each op's first — here only — GPU activity; identical in every step and on both ranks):")
    doc()
    flops_table(doc, b0.gpu)
    doc(f"Per step and rank: {sum(g.flops or 0 for g in b0.gpu if g.step == 1)} flops (the memcpy row carries 0; embedding, "
        "layer norm, memset and NCCL rows have none).")
    doc()
    rank_section(doc, "rank 0 (`rank0.json`)", b0, TRAIN_T0, cut0, ev0, i0)
    rank_section(doc, "rank 1 (`rank1.json`)", b1, TRAIN_T0, cut1, ev1, i1)

    # ---------------- inference
    bi, ii, evi, cuti = infer
    doc("## `inference_1rank/` — single-GPU generation, A100, fp16 (gzip)")
    doc()
    doc(f"`trace.json.gz`: one decoder layer of a Qwen-0.5B-sized model (hidden {ID}, {IH} heads × {IDH}, MLP {IFF}, vocab "
        f"{IV}; the other 23 layers are left out to keep the trace small), batch 1, a {PROMPT}-token prompt. "
        "`ProfilerStep#0` is the prefill (copies the prompt to the GPU first), `ProfilerStep#1..3` decode one token each "
        "against a KV cache of 513..515 positions. Each step: `aten::embedding` → `aten::index_select`, the fused qkv "
        "projection (`aten::linear` → `aten::addmm`, with bias), `aten::scaled_dot_product_attention` → "
        "`aten::_scaled_dot_product_flash_attention` → `aten::_flash_attention_forward` (flash kernel; `flash_fwd_splitkv_kernel` "
        "when decoding), o/gate/up/down projections (`aten::linear` → `aten::matmul` → `aten::mm`; cuBLAS GEMM for the "
        "prefill, gemv when decoding), `aten::silu`, `aten::mul`, `aten::slice` to the last position, the LM head "
        "(`aten::mm`, gemv over the 151936×1024 weight: the longest kernel), `aten::argmax`, and `aten::item` → "
        "`aten::_local_scalar_dense` → `cudaMemcpyAsync` (one `Memcpy DtoH (Device -> Pageable)`, 8 bytes) + "
        "`cudaStreamSynchronize`, which makes the CPU wait for the GPU at the end of every step.")
    doc()
    doc("- no `distributedInfo`: tapeout stores rank 0 and warns (\"no distributedInfo; rank defaults to 0\")")
    doc(f"- `deviceProperties`: one \"NVIDIA A100-SXM4-80GB\" (id 0, compute 8.0, 108 SMs); everything runs on stream 7")
    doc(f"- `baseTimeNanoseconds` {INFER_BASE_NS}: trace time {fmt_us(INFER_T0)} µs is 2025-01-01T12:00:00Z")
    doc("- GPU-side `gpu_user_annotation` `ProfilerStep#0..3` (pid 0, tid 7) span each step's GPU activities. HTA 0.5 "
        "treats them as CPU events (they have no stream), so its cut-off is the start of the GPU-side `ProfilerStep#3` "
        "(= the start of step 3's first kernel), later than the CPU-side one: activities launched in step 3 before "
        "that instant are still in `hta_window` (here: the embedding kernel of step 3).")
    doc()
    doc("FLOPs (prefill M = 512, decode M = 1; attention counts 4·B·H·Lq·Lk·D, ignoring the causal mask):")
    doc()
    flops_table(doc, bi.gpu)
    rank_section(doc, "rank 0 (`trace.json.gz`)", bi, INFER_T0, cuti, evi, ii)

    doc("## Checking with tapeout and HTA")
    doc()
    doc("Ingest the two folders (not `sample-traces/kineto` itself: a directory is read recursively and this README "
        "would be rejected as an unrecognized input, exit code 3). Every field of every `kernels` row "
        "(event_index, activity, device, stream, name, category, hta_category, start_ns, dur_ns, correlation, "
        "external_id, op, op_link, flops, step, hta_window, collective args, copy_bytes) matched the tables above "
        "when these files were generated; `scripts/hta_compare.py` passes on both folders, and HTA 0.5.0's own "
        "`get_idle_time_breakdown` and `get_comm_comp_overlap` return exactly the \"HTA 0.5 µs\" figures above.")
    doc()
    doc("```sh")
    doc("tapeout ingest --lake /tmp/kineto-sample-lake sample-traces/kineto/train_2rank sample-traces/kineto/inference_1rank")
    doc("tapeout sql --lake /tmp/kineto-sample-lake --format csv \\")
    doc("  \"select workload, rank, category, count(*) n, sum(dur_ns) ns, sum(case when hta_window then 1 else 0 end) win \"\\")
    doc("  \"from kernels group by all order by 1, 2, 3\"")
    doc("python3 scripts/hta_compare.py --tapeout $(which tapeout) --extra sample-traces/kineto/train_2rank --only train_2rank")
    doc("python3 scripts/hta_compare.py --tapeout $(which tapeout) --extra sample-traces/kineto/inference_1rank --only inference_1rank")
    doc("```")
    doc()
    return "\n".join(doc.lines)


# ------------------------------------------------------------------------------------------------


def train_header(rank: int) -> list[tuple[str, object]]:
    return [
        ("schemaVersion", 1),
        ("deviceProperties", [h100(0), h100(1)]),
        ("distributedInfo", {"backend": "nccl", "rank": rank, "world_size": 2, "pg_count": 1,
                             "pg_config": [{"pg_name": "0", "pg_desc": "default_pg", "backend_config": "cuda:nccl", "pg_size": 2,
                                            "ranks": [0, 1]}], "nccl_version": "2.21.5"}),
        ("record_shapes", 1),
        ("with_stack", 0),
        ("cuda_runtime_version", 12040),
        ("cupti_version", 22),
        ("cuda_driver_version", 12040),
        ("profile_memory", 0),
        ("trace_id", f"7A1E5C0FFEE{rank:01d}4D2B9A6E0C3F81D2B7E4"),
        ("displayTimeUnit", "ms"),
        ("baseTimeNanoseconds", TRAIN_BASE_NS),
    ]


def infer_header() -> list[tuple[str, object]]:
    return [
        ("schemaVersion", 1),
        ("deviceProperties", [a100(0)]),
        ("record_shapes", 1),
        ("with_stack", 0),
        ("cuda_runtime_version", 12010),
        ("cupti_version", 18),
        ("cuda_driver_version", 12020),
        ("profile_memory", 0),
        ("trace_id", "3B8D0E6A91F24C57A0D1E2F3C4B5A697"),
        ("displayTimeUnit", "ms"),
        ("baseTimeNanoseconds", INFER_BASE_NS),
    ]


def generate() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    train = []
    for r, (b, info) in enumerate(simulate_train()):
        cut = set_windows(b)
        events = assemble(b, "python3", info["main"], [(info["bwd"], "pt_autograd_0")], info["span"])
        classify_gaps(b.gpu)
        text = document(train_header(r), events, [("traceName", f"/tmp/prof/rank{r}.pt.trace.json")])
        files[f"train_2rank/rank{r}.json"] = text.encode()
        json.loads(text)  # well-formed
        train.append((b, info, events, cut))
    bi, ii = build_infer()
    cuti = set_windows(bi)
    evi = assemble(bi, "python3", ii["main"], [], ii["span"])
    classify_gaps(bi.gpu)
    text = document(infer_header(), evi, [("traceName", "/tmp/prof/generate.pt.trace.json")])
    json.loads(text)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode())
    files["inference_1rank/trace.json.gz"] = buf.getvalue()
    files["README.md"] = write_readme(train, (bi, ii, evi, cuti)).encode()
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the files on disk instead of writing them")
    ap.add_argument("--out", default=OUT, help=f"output folder (default: {OUT})")
    args = ap.parse_args()
    files = generate()
    bad = 0
    for rel_path, data in files.items():
        path = os.path.join(args.out, rel_path)
        if args.check:
            try:
                with open(path, "rb") as f:
                    same = f.read() == data
            except FileNotFoundError:
                same = False
            if not same:
                print(f"differs: {path}")
                bad += 1
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            print(f"wrote {path} ({len(data)} bytes)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
