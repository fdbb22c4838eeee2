#!/usr/bin/env python3
"""Check the mined results of a real-trace lake against an independent computation from the RAW
shared traces.

The lake must have been built from the shared traces and mined with default parameters:

    tapeout ingest --lake LAKE ../shared/traces/azure_llm_2023 ../shared/traces/mooncake \\
        ../shared/traces/param_dlrm_8rank ...
    tapeout mine --lake LAKE
    python3 scripts/mine_check.py --lake LAKE --traces /work/shared/traces [--tapeout target/debug/tapeout]

Recomputed here with the Python standard library only (csv, json; no tapeout code, no lake file),
then compared with the mined tables read through `tapeout sql --format json`:

- request_token_stats, per workload of azure_llm_2023 (code, conversation) and mooncake
  (conversation_trace): request count, max and mean of input and output tokens (exact), and the
  p50/p90/p99 of both (exact nearest-rank percentiles, i.e. the ceil(q·n)-th smallest value; the
  HDR results must be within 0.1% of them: 3 significant digits, reported as the top of the
  value's sub-bucket, so hdr >= exact and (hdr − exact) / exact < 2^-10);
- request_prefill_decode: input/output token sums (exact);
- request_prefix_reuse (Mooncake): 512-token blocks, reused blocks and tokens with an infinite
  cache (a block is reused when its hash occurred in an earlier request of the file; exact), requests
  with reuse, and the reuse ratio;
- request_prefix_reuse_lru (Mooncake): hit blocks/tokens of an LRU cache of the default 4096
  blocks (exact, a plain OrderedDict simulation);
- kernel_category_time for param_dlrm_8rank: per rank and category the number of GPU activities and
  the sum of their durations in ns (exact), categories by the regexes of
  pipelines/categories/kernels.toml in order, first match wins (memcpy/memset by event type).

Every comparison is printed; the exit status is 1 if any differs (or a table is missing).
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import re
import subprocess
import sys
import tomllib
from collections import OrderedDict, defaultdict
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HDR_REL = 2.0 ** -10  # HdrHistogram sub-bucket resolution at 3 significant digits
LRU_BLOCKS = 4096  # request_prefix_reuse_lru's default


class Checker:
    def __init__(self, tapeout: str, lake: str):
        self.tapeout = tapeout
        self.lake = lake
        self.passed = 0
        self.failed = 0

    def sql(self, query: str) -> list[dict]:
        r = subprocess.run([self.tapeout, "sql", "--lake", self.lake, "--format", "json", "-q", query],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.fail(f"query failed: {query}\n    {r.stderr.strip()}")
            return []
        out = r.stdout.strip()
        return json.loads(out) if out else []

    def ok(self, msg: str):
        self.passed += 1
        print(f"  ok    {msg}")

    def fail(self, msg: str):
        self.failed += 1
        print(f"  FAIL  {msg}")

    def exact(self, what: str, got, want):
        if got == want:
            self.ok(f"{what}: {got}")
        else:
            self.fail(f"{what}: tapeout {got}, expected {want}")

    def close(self, what: str, got, want, rel: float = 1e-9):
        if got is not None and want is not None and abs(got - want) <= rel * max(abs(want), 1e-300):
            self.ok(f"{what}: {got} (expected {want})")
        else:
            self.fail(f"{what}: tapeout {got}, expected {want} (rel. tolerance {rel})")

    def hdr(self, what: str, got, exact: int):
        # HDR reports the highest value equivalent to the nearest-rank value: never below it, and
        # at most 2^-10 (< 0.1%) above.
        if got is not None and exact <= got and (got - exact) <= HDR_REL * exact + 1e-9:
            self.ok(f"{what}: hdr {got}, exact {exact} (+{(got - exact) / exact * 100 if exact else 0:.3f}%)")
        else:
            self.fail(f"{what}: hdr {got}, exact {exact} (must be within +0.1%)")


def nearest_rank(sorted_vals: list[int], q: float) -> int:
    n = len(sorted_vals)
    return sorted_vals[min(n, max(1, math.ceil(q * n))) - 1]


def workload_of(path: str) -> str:
    """tapeout's default workload: a `code` / `conv` token (after the first) of the stem, else the stem."""
    name = os.path.basename(path)
    for suffix in (".gz", ".zst"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    stem = name.rsplit(".", 1)[0] if "." in name else name
    tokens = re.split(r"[_.-]", stem)
    if any(t.lower() == "code" for t in tokens[1:]):
        return "code"
    if any(t.lower() == "conv" for t in tokens[1:]):
        return "conversation"
    return stem


def read_requests(traces: str) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for path in sorted(glob.glob(os.path.join(traces, "azure_llm_2023", "*.csv"))):
        with open(path, newline="") as fh:
            for i, rec in enumerate(csv.DictReader(fh), start=2):
                out[("azure_llm", workload_of(path))].append(
                    dict(input=int(rec["ContextTokens"]), output=int(rec["GeneratedTokens"]), line=i, ts=rec["TIMESTAMP"]))
    for path in sorted(glob.glob(os.path.join(traces, "mooncake", "*.jsonl"))):
        with open(path) as fh:
            for i, line in enumerate(fh, start=1):
                if line.strip():
                    r = json.loads(line)
                    out[("mooncake", workload_of(path))].append(
                        dict(input=int(r["input_length"]), output=int(r["output_length"]), line=i,
                             ts=int(r["timestamp"]), hashes=r["hash_ids"]))
    return out


def check_requests(c: Checker, traces: str):
    reqs = read_requests(traces)
    print("request_token_stats")
    mined = {(r["source"], r["workload"]): r for r in c.sql(
        "select source, workload, requests, input_p50, input_p90, input_p99, input_max, input_mean, "
        "output_p50, output_p90, output_p99, output_max, output_mean from request_token_stats")}
    for key, rs in sorted(reqs.items()):
        m = mined.get(key)
        if m is None:
            c.fail(f"{key}: no row in request_token_stats")
            continue
        c.exact(f"{key} requests", m["requests"], len(rs))
        for col in ("input", "output"):
            vals = sorted(r[col] for r in rs)
            c.exact(f"{key} {col}_max", m[f"{col}_max"], vals[-1])
            c.close(f"{key} {col}_mean", m[f"{col}_mean"], sum(vals) / len(vals))
            for q, name in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
                c.hdr(f"{key} {col}_{name}", m[f"{col}_{name}"], nearest_rank(vals, q))

    print("request_prefill_decode")
    mined = {(r["source"], r["workload"]): r for r in c.sql(
        "select source, workload, input_tokens, output_tokens, prefill_share from request_prefill_decode")}
    for key, rs in sorted(reqs.items()):
        m = mined.get(key)
        if m is None:
            c.fail(f"{key}: no row in request_prefill_decode")
            continue
        i = sum(r["input"] for r in rs)
        o = sum(r["output"] for r in rs)
        c.exact(f"{key} input_tokens", m["input_tokens"], i)
        c.exact(f"{key} output_tokens", m["output_tokens"], o)
        c.close(f"{key} prefill_share", m["prefill_share"], i / (i + o))

    print("request_prefix_reuse (infinite cache) and request_prefix_reuse_lru")
    mined = {(r["source"], r["workload"]): r for r in c.sql(
        "select source, workload, files, requests, blocks, reused_blocks, reused_tokens, reuse_ratio, reuse_requests "
        "from request_prefix_reuse")}
    mined_lru = {(r["source"], r["workload"]): r for r in c.sql(
        "select source, workload, capacity_blocks, blocks, hit_blocks, hit_tokens, evictions from request_prefix_reuse_lru")}
    for key, rs in sorted(reqs.items()):
        if key[0] != "mooncake":
            continue
        # One cache per file (each file here is one trace); access order: arrival time, then file
        # line; blocks by position. Infinite cache: a block is reused when its hash occurred in an
        # EARLIER request.
        acc = []
        seen_before: set = set()
        reused = reused_tokens = reuse_requests = 0
        for r in sorted(rs, key=lambda r: (r["ts"], r["line"])):
            hit = 0
            for i, h in enumerate(r["hashes"]):
                tk = max(0, min(512, r["input"] - 512 * i))
                acc.append((h, tk))
                if h in seen_before:
                    reused += 1
                    reused_tokens += tk
                    hit += tk
            seen_before.update(r["hashes"])
            reuse_requests += hit > 0
        inp = sum(r["input"] for r in rs)
        m = mined.get(key)
        if m is None:
            c.fail(f"{key}: no row in request_prefix_reuse")
        else:
            c.exact(f"{key} requests", m["requests"], len(rs))
            c.exact(f"{key} blocks", m["blocks"], len(acc))
            c.exact(f"{key} reused_blocks", m["reused_blocks"], reused)
            c.exact(f"{key} reused_tokens", m["reused_tokens"], reused_tokens)
            c.exact(f"{key} reuse_requests", m["reuse_requests"], reuse_requests)
            c.close(f"{key} reuse_ratio", m["reuse_ratio"], reused_tokens / inp)
        cache: OrderedDict = OrderedDict()
        hits = hit_tokens = evictions = 0
        for h, tk in acc:
            if h in cache:
                cache.move_to_end(h)
                hits += 1
                hit_tokens += tk
            else:
                cache[h] = True
                if len(cache) > LRU_BLOCKS:
                    cache.popitem(last=False)
                    evictions += 1
        m = mined_lru.get(key)
        if m is None:
            c.fail(f"{key}: no row in request_prefix_reuse_lru")
        else:
            c.exact(f"{key} lru capacity_blocks", m["capacity_blocks"], LRU_BLOCKS)
            c.exact(f"{key} lru blocks", m["blocks"], len(acc))
            c.exact(f"{key} lru hit_blocks", m["hit_blocks"], hits)
            c.exact(f"{key} lru hit_tokens", m["hit_tokens"], hit_tokens)
            c.exact(f"{key} lru evictions", m["evictions"], evictions)


def load_rules():
    with open(os.path.join(ROOT, "pipelines", "categories", "kernels.toml"), "rb") as fh:
        return [(r["category"], re.compile(r["pattern"], re.IGNORECASE)) for r in tomllib.load(fh)["rule"]]


def us_to_ns(x) -> int:
    return int(Decimal(str(x)) * 1000)


def check_param_dlrm(c: Checker, traces: str):
    print("kernel_category_time, param_dlrm_8rank")
    rules = load_rules()
    expected: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for path in sorted(glob.glob(os.path.join(traces, "param_dlrm_8rank", "*.json"))):
        with open(path, "rb") as fh:
            trace = json.loads(fh.read(), parse_float=Decimal)
        rank = int((trace.get("distributedInfo") or {}).get("rank", 0))
        for e in trace["traceEvents"]:
            if e.get("ph") != "X":
                continue
            cat = e.get("cat")
            name = e.get("name", "")
            if cat in ("kernel", "Kernel"):
                category = next((c_ for c_, rx in rules if rx.search(name)), "other")
            elif cat in ("gpu_memcpy", "Memcpy"):
                category = next((f"memcpy_{d.lower()}" for d in ("HtoD", "DtoH", "DtoD") if d in name), "memcpy_other")
            elif cat in ("gpu_memset", "Memset"):
                category = "memset"
            elif cat == "cuda_sync":
                category = "sync"
            else:
                continue
            acc = expected[(rank, category)]
            acc[0] += 1
            acc[1] += us_to_ns(e["dur"])
    mined = {(r["rank"], r["category"]): r for r in c.sql(
        "select rank, category, sum(activities) as activities, sum(total_ns) as total_ns from kernel_category_time "
        "where workload = 'param_dlrm_8rank' group by rank, category")}
    if not expected:
        c.fail("no param_dlrm_8rank traces found")
    for key in sorted(set(expected) | set(mined)):
        want = expected.get(key)
        m = mined.get(key)
        if want is None or m is None:
            c.fail(f"rank {key[0]} {key[1]}: tapeout {m}, expected {want}")
            continue
        c.exact(f"rank {key[0]} {key[1]} activities", m["activities"], want[0])
        c.exact(f"rank {key[0]} {key[1]} total_ns", m["total_ns"], want[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lake", required=True)
    ap.add_argument("--traces", default="/work/shared/traces")
    ap.add_argument("--tapeout", default=os.path.join(ROOT, "target", "debug", "tapeout"))
    a = ap.parse_args()
    c = Checker(a.tapeout, a.lake)
    check_requests(c, a.traces)
    check_param_dlrm(c, a.traces)
    print(f"mine_check: {c.passed} passed, {c.failed} failed")
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
