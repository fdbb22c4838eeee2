#!/usr/bin/env python3
"""Cross-check tapeout's GEMM FLOPs against TraceLens (AMD-AGI/TraceLens) reference output.

The TraceLens H100 Qwen1.5-0.5B trace is ingested with tapeout into a temporary lake, and each
GEMM op kind/shape in TraceLens's perf report `GEMM.csv` (h100_perf_report_csvs) is compared with
tapeout's op instances of the same op name, shape and dtype.

TraceLens side: one row per (name, param: B/M/N/K, bias, strides, dtype_A_B). `GFLOPS_first` is
the GFLOP count (1e9 FLOPs, NOT a rate) of the group's first op instance; `name_count` is the
number of instances. For a plain GEMM it is 2·B·M·N·K/1e9 (e.g. aten::mm 8944×2816×1024:
2·8944·2816·1024 = 51,581,550,592 = 51.581550592 GFLOP).

tapeout side: `kernels.flops` is set on the op's first GPU kernel only, so an op instance's FLOPs
is sum(flops) over its kernels grouped by (file, external_id). Its B/M/N/K/dtype are derived
here from `op_input_dims` / `op_input_types` with TraceLens's conventions:
  mm       A[M,K]·B[K,N]                      B=1
  addmm    (bias, A[M,K], B[K,N], ...)        B=1
  bmm      A[B,M,K]·B[B,K,N]
  baddbmm  (bias, A[B,M,K], B[B,K,N], ...)
  linear   x[...,K]·W[N,K]^T                  M = product of x's leading dims, B=1
  matmul   numpy broadcasting                 B = product of broadcast batch dims

A shape passes when every tapeout instance's FLOPs is within 1% of TraceLens's GFLOPS_first and
the instance count equals TraceLens's name_count. The `TL-2BMNK` column shows how TraceLens's
figure departs from 2·B·M·N·K (e.g. +M·N: TraceLens counts the bias add of addmm).

Usage:
    python3 scripts/tracelens_gemm_check.py [--tapeout BIN] [--traces DIR]

Prints a table and a final line `tracelens_gemm_check: N passed, M failed`; exit status 1 on any
failure or if nothing was compared.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

TRACE = "tracelens/h100/Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"
REFERENCE = "tracelens/reference_outputs/h100_perf_report_csvs/GEMM.csv"
TOLERANCE = 0.01
GEMM_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::linear", "aten::matmul")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INSTANCES_SQL = (
    "SELECT file, external_id, op, op_input_dims, op_input_types, "
    "sum(flops) AS flops, count(flops) AS flops_rows, count(*) AS kernels "
    "FROM kernels WHERE op IN ({ops}) "
    "GROUP BY file, external_id, op, op_input_dims, op_input_types"
)


def norm_dtype(s: str) -> str:
    s = s.strip()
    return s[len("c10::"):] if s.startswith("c10::") else s


def prod(xs) -> int:
    return math.prod(int(x) for x in xs)


def gemm_params(op: str, dims, types) -> tuple[int, int, int, int, tuple[str, str]] | None:
    """(B, M, N, K, (dtype_A, dtype_B)) of one op call, TraceLens-style; None if not a GEMM."""
    name = op.removeprefix("aten::")
    ia, ib = (1, 2) if name in ("addmm", "baddbmm") else (0, 1)
    if not isinstance(dims, list) or len(dims) <= ib:
        return None
    a, b = dims[ia], dims[ib]
    if not (isinstance(a, list) and isinstance(b, list)):
        return None
    dt = tuple(norm_dtype(types[i]) if isinstance(types, list) and i < len(types) else "?"
               for i in (ia, ib))
    if name in ("mm", "addmm") and len(a) == 2 and len(b) == 2:
        return 1, a[0], b[1], a[1], dt
    if name in ("bmm", "baddbmm") and len(a) == 3 and len(b) == 3:
        return a[0], a[1], b[2], a[2], dt
    if name == "linear" and len(a) >= 1 and len(b) == 2:
        return 1, prod(a[:-1]), b[0], b[1], dt
    if name == "matmul" and a and b:
        m, k = (1, a[0]) if len(a) == 1 else (a[-2], a[-1])
        n = 1 if len(b) == 1 else b[-1]
        ba, bb = a[:-2], b[:-2]
        rank = max(len(ba), len(bb))
        ba, bb = [1] * (rank - len(ba)) + list(ba), [1] * (rank - len(bb)) + list(bb)
        return prod(max(x, y) for x, y in zip(ba, bb)), m, n, k, dt
    return None


def run(cmd: list[str], what: str, ok_codes=(0,)) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in ok_codes:
        sys.exit(f"tracelens_gemm_check: {what}: `{' '.join(cmd)}` exited {proc.returncode}:\n"
                 f"{proc.stderr.strip()}")
    return proc.stdout


def resolve_binary(path: str) -> str:
    if os.path.isabs(path) or os.path.exists(path):
        return os.path.abspath(path)
    return os.path.join(REPO, path)


def tapeout_instances(binary: str, lake: str) -> list[dict]:
    ops = ", ".join("'" + o + "'" for o in GEMM_OPS)
    out = run([binary, "sql", "--lake", lake, "--format", "csv", "--quiet",
               INSTANCES_SQL.format(ops=ops)], "query")
    rows = []
    for r in csv.DictReader(io.StringIO(out)):
        try:
            dims = json.loads(r["op_input_dims"]) if r["op_input_dims"] else None
            types = json.loads(r["op_input_types"]) if r["op_input_types"] else None
        except json.JSONDecodeError:
            dims = types = None
        rows.append({
            "op": r["op"],
            "external_id": r["external_id"],
            "params": gemm_params(r["op"], dims, types),
            "flops": int(r["flops"]) if r["flops"] not in ("", None) else None,
            "flops_rows": int(r["flops_rows"]),
        })
    return rows


def reference_rows(path: str) -> list[dict]:
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            dt = ast.literal_eval(r["param: dtype_A_B"])
            rows.append({
                "op": r["name"],
                "params": (int(r["param: B"]), int(r["param: M"]), int(r["param: N"]),
                           int(r["param: K"]), tuple(norm_dtype(d) for d in dt)),
                "bias": r["param: bias"] == "True",
                "gflop": float(r["GFLOPS_first"]),
                "count": int(r["name_count"]),
            })
    return rows


def fmt_shape(p) -> str:
    b, m, n, k, dt = p
    dts = dt[0] if dt[0] == dt[1] else f"{dt[0]}/{dt[1]}"
    return f"B={b} M={m} N={n} K={k} {dts}"


def fmt_excess(tl_flops: float, p) -> str:
    """TraceLens FLOPs minus 2·B·M·N·K, in units of M·N when it is a whole multiple."""
    b, m, n, k, _ = p
    d = round(tl_flops - 2 * b * m * n * k)
    if d == 0:
        return "0"
    mn = b * m * n
    return f"{d:+d}" + (f" ({d // mn:+d}·B·M·N)" if mn and d % mn == 0 else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tapeout", default="target/debug/tapeout",
                    help="tapeout binary (default: target/debug/tapeout, relative to the "
                         "current directory or else to the repository)")
    ap.add_argument("--traces", default="/work/shared/traces",
                    help="shared traces folder (default: /work/shared/traces)")
    args = ap.parse_args()

    binary = resolve_binary(args.tapeout)
    trace = os.path.join(args.traces, TRACE)
    reference = os.path.join(args.traces, REFERENCE)
    for p in (binary, trace, reference):
        if not os.path.exists(p):
            sys.exit(f"tracelens_gemm_check: missing {p}")

    refs = reference_rows(reference)
    with tempfile.TemporaryDirectory(prefix="tracelens_gemm_") as tmp:
        lake = os.path.join(tmp, "lake")
        # 0 clean, 2 done with quarantined records.
        run([binary, "ingest", "--quiet", "--lake", lake, trace], "ingest", ok_codes=(0, 2))
        instances = tapeout_instances(binary, lake)

    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for inst in instances:
        if inst["params"] is not None:
            by_key[(inst["op"], inst["params"])].append(inst)

    header = (f"{'op':<13} {'shape':<40} {'TraceLens GFLOP':>16} {'tapeout GFLOP':>16} "
              f"{'rel diff':>10} {'count tap/TL':>12} {'TL-2BMNK':>22}  result")
    print(header)
    print("-" * len(header))
    passed, failures = 0, []
    seen: set[tuple] = set()
    for ref in refs:
        key = (ref["op"], ref["params"])
        seen.add(key)
        insts = by_key.get(key, [])
        tl = ref["gflop"] * 1e9
        problems = []
        tap_vals = sorted({i["flops"] for i in insts if i["flops"] is not None})
        if not insts:
            problems.append("no tapeout op with this name/shape/dtype")
        if any(i["flops"] is None for i in insts):
            problems.append(f"{sum(i['flops'] is None for i in insts)} instance(s) with null flops")
        if any(i["flops_rows"] > 1 for i in insts):
            problems.append("flops set on more than one kernel of an instance")
        worst = None
        for v in tap_vals:
            rel = (v - tl) / tl if tl else (0.0 if v == 0 else math.inf)
            if worst is None or abs(rel) > abs(worst):
                worst = rel
        if worst is not None and abs(worst) > TOLERANCE:
            problems.append(f"flops differ by {worst:+.4%} (> {TOLERANCE:.0%})")
        if insts and len(insts) != ref["count"]:
            problems.append(f"count {len(insts)} != TraceLens name_count {ref['count']}")
        if len(tap_vals) == 1:
            tap_s = f"{tap_vals[0] / 1e9:.9g}"
        elif tap_vals:
            tap_s = f"{tap_vals[0] / 1e9:.6g}..{tap_vals[-1] / 1e9:.6g}"
        else:
            tap_s = "-"
        rel_s = "-" if worst is None else f"{worst:+.4%}"
        count_s = f"{len(insts)}/{ref['count']}"
        ok = not problems
        print(f"{ref['op']:<13} {fmt_shape(ref['params']):<40} {ref['gflop']:>16.9g} {tap_s:>16} "
              f"{rel_s:>10} {count_s:>12} "
              f"{fmt_excess(tl, ref['params']):>22}  {'ok' if ok else 'FAIL'}")
        if ok:
            passed += 1
        else:
            failures.append(f"{ref['op']} {fmt_shape(ref['params'])}: " + "; ".join(problems))

    extra = sorted(k for k in by_key if k not in seen)
    for op, p in extra:
        print(f"  note: tapeout {op} {fmt_shape(p)} ({len(by_key[(op, p)])} instances) "
              "is not in TraceLens GEMM.csv")
    unparsed = sum(1 for i in instances if i["params"] is None)
    if unparsed:
        print(f"  note: {unparsed} tapeout GEMM op instance(s) with no derivable shape")

    if passed + len(failures) == 0:
        failures.append("nothing compared (GEMM.csv has no rows)")
    print(f"tracelens_gemm_check: {passed} passed, {len(failures)} failed")
    for f in failures:
        print(f"  failed: {f}", file=sys.stderr)
    return 1 if failures or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
