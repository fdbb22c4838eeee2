#!/usr/bin/env python3
"""Independent expected values for the mining jobs' sqllogictest files.

Reads the RAW files under sample-traces/ (request CSV/JSONL, Kineto JSON) with the Python standard
library only (plus the `zstd` command for the one .zst file), recomputes what every job in
pipelines/sql/ should return with plain loops (no SQL, nothing read from a tapeout lake), and
writes `crates/tapeout-engine/tests/slt/<job>.slt`: each file holds queries over the job's result
table (as `tapeout mine` stores it, default parameters) and the rows computed here.

    python3 scripts/mine_expected.py            # print the .slt files
    python3 scripts/mine_expected.py --write    # (re)write crates/tapeout-engine/tests/slt/*.slt
    python3 scripts/mine_expected.py --check    # exit 1 if a written file differs from a fresh run

Conventions of the expected rows (sqllogictest): values separated by one space, NULL for null,
floats are rounded in the query with round(x, 3) (Rust f64::round half away from zero, emulated
here) and printed as Arrow prints them (ryu: shortest round-trip decimal, "1.0" for an integral
value); large floats are cast to bigint in the query instead. Kernel names contain spaces, so queries print
replace(substr(name, 1, 40), ' ', '_').

What is re-implemented here, from the definitions (see pipelines/sql/README.md and each job's
header), not from tapeout's code:
- request ingest: workload from the file name, arrival times (exact ns), failed = 0 response
  tokens (BurstGPT), Mooncake block hashes;
- HdrHistogram's value_at_quantile at 3 significant digits (nearest rank, then the highest value
  of that value's sub-bucket);
- Kineto: GPU activities, kernel categories (pipelines/categories/kernels.toml, first match),
  launching runtime call by correlation, innermost enclosing cpu_op, FLOPs/bytes of the ops the
  samples contain (mm, addmm, flash attention, elementwise, copy_), collective message sizes;
- hardware peaks from pipelines/hardware/*.toml.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import datetime as dt
import glob
import gzip
import hashlib
import io
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tomllib
from collections import OrderedDict, defaultdict
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "sample-traces")
SLT_DIR = os.path.join(ROOT, "crates", "tapeout-engine", "tests", "slt")

# Default job parameters (must equal the job headers; checked in main()).
PARAMS = {
    "prefill_tokens_per_s": 10000,
    "decode_tokens_per_s": 50,
    "kv_bytes_per_token": 524288,
    "lru_blocks": 4096,
    "top_n": 20,
    "kernel_wait_ns": 30000,
    "hta_window_only": 0,
}

# ----------------------------------------------------------------------------------------------
# formatting


def df_round(x: float, places: int = 3) -> float:
    """DataFusion's round(x, n): (x * 10^n).round() / 10^n with Rust's half-away-from-zero."""
    f = 10.0 ** places
    v = x * f
    r = math.floor(abs(v) + 0.5)
    return math.copysign(r, v) / f


def fmt(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        # Arrow prints Float64 with ryu (shortest round-trip, "1.0" for integral values), as
        # Python's repr does in the range the queries produce (rounded to 3 decimals, < 1e16).
        assert v == 0 or 1e-4 <= abs(v) < 1e16, v
        return repr(v)
    return str(v)


def iround(x):
    """DataFusion's round(x) (half away from zero) as an integer."""
    return None if x is None else int(math.copysign(math.floor(abs(x) + 0.5), x))


def r3(x):
    return None if x is None else df_round(float(x), 3)


def name40(name: str) -> str:
    return name[:40].replace(" ", "_")


class Slt:
    """Collects the queries of one .slt file."""

    def __init__(self, job: str, intro: str):
        self.job = job
        self.parts = [
            f"# {job}: expected rows computed by scripts/mine_expected.py from the raw files in sample-traces/",
            "# (independently of tapeout; do not edit by hand, rerun `python3 scripts/mine_expected.py --write`).",
        ]
        for line in intro.strip().splitlines():
            self.parts.append(f"# {line}".rstrip())
        self.parts.append("")

    def query(self, types: str, sql: str, rows: list[tuple], comment: str = "", sort: str = "rowsort"):
        if comment:
            for line in comment.strip().splitlines():
                self.parts.append(f"# {line}".rstrip())
        self.parts.append(f"query {types} {sort}".rstrip())
        self.parts.append(sql.strip())
        self.parts.append("----")
        lines = []
        for r in rows:
            assert len(r) == len(types), (self.job, sql, r)
            lines.append([fmt(v) for v in r])
        if sort == "rowsort":
            # sqllogictest's rowsort compares rows as lists of value strings.
            lines.sort()
        for cells in lines:
            self.parts.append(" ".join(cells))
        self.parts.append("")

    def text(self) -> str:
        return "\n".join(self.parts).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------
# HdrHistogram (3 significant digits, lowest discernible value 1), value_at_quantile


def hdr_highest_equivalent(v: int) -> int:
    # sub_bucket_count = 2^ceil(log2(2 * 10^3)) = 2048; values below 2048 are exact, above that
    # bucket k (k >= 1) holds [1024·2^k, 2048·2^k) in steps of 2^k.
    if v < 2048:
        return v
    k = v.bit_length() - 11  # 2048..4095 -> k = 1
    step = 1 << k
    return (v // step) * step + step - 1


def hdr_quantile(values, q: float):
    vals = sorted(v for v in values if v is not None and v >= 0)
    if not vals:
        return None
    n = len(vals)
    rank = max(1, math.ceil(q * n))
    rank = min(rank, n)
    v = vals[rank - 1]
    return float(hdr_highest_equivalent(v)) if q > 0 else float(v)


# ----------------------------------------------------------------------------------------------
# request traces


def workload_of(path: str) -> str:
    """Default workload: a `code` / `conv` token (after the first) of the file stem, else the stem
    (name without `.gz`/`.zst` and one extension)."""
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


def parse_azure_ts(s: str) -> int:
    s = s.strip()
    tz = None
    m = re.match(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(\.\d+)?([+-]\d{2}:\d{2}|Z)?$", s)
    assert m, s
    base = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
    frac = (m.group(2) or ".")[1:]
    ns = int((frac + "000000000")[:9]) if frac else 0
    if m.group(3) and m.group(3) not in ("Z", "+00:00"):
        tz = m.group(3)
        raise ValueError(f"non-UTC offset {tz} in sample")
    return int(base.timestamp()) * 1_000_000_000 + ns


def open_text(path: str) -> io.TextIOBase:
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8")
    if path.endswith(".zst"):
        data = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
        return io.StringIO(data.decode("utf-8"))
    return open(path, encoding="utf-8")


def read_requests(root: str) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(os.path.join(root, "requests", "*"))):
        abspath = os.path.abspath(path)
        wl = workload_of(path)
        with open_text(path) as fh:
            if ".jsonl" in path:
                for i, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    r = json.loads(line)
                    rows.append(dict(source="mooncake", workload=wl, file=abspath, line=i,
                                     arrival_ns=int(r["timestamp"]) * 1_000_000,
                                     input=int(r["input_length"]), output=int(r["output_length"]),
                                     failed=None, hashes=[int(h) for h in r["hash_ids"]]))
                continue
            reader = csv.reader(fh)
            header = next(reader)
            for i, rec in enumerate(reader, start=2):
                d = dict(zip(header, rec))
                if "TIMESTAMP" in d:
                    rows.append(dict(source="azure_llm", workload=wl, file=abspath, line=i,
                                     arrival_ns=parse_azure_ts(d["TIMESTAMP"]),
                                     input=int(d["ContextTokens"]), output=int(d["GeneratedTokens"]),
                                     failed=None, hashes=None))
                else:
                    ts_ns = int(Decimal(d["Timestamp"]) * 1_000_000_000)
                    out = int(d["Response tokens"])
                    rows.append(dict(source="burstgpt", workload=wl, file=abspath, line=i,
                                     arrival_ns=ts_ns, input=int(d["Request tokens"]), output=out,
                                     failed=(out == 0), hashes=None))
    return rows


def groups(rows, key):
    g = defaultdict(list)
    for r in rows:
        g[key(r)].append(r)
    return g


def epoch_s(ns: int) -> float:
    return ns / 1e9


def slt_request_token_stats(reqs) -> Slt:
    s = Slt("request_token_stats", """
Percentiles: HdrHistogram value_at_quantile at 3 significant digits (nearest rank, then the top of
its sub-bucket: exact below 2048 tokens, steps of 2 up to 4095, of 4 up to 8191, ...).""")
    rows_a, rows_b = [], []
    for (src, wl), rs in sorted(groups(reqs, lambda r: (r["source"], r["workload"])).items()):
        ins = [r["input"] for r in rs]
        outs = [r["output"] for r in rs]
        failed = sum(1 for r in rs if r["failed"])
        rows_a.append((src, wl, len(rs), failed, hdr_quantile(ins, 0.5), hdr_quantile(ins, 0.9),
                       hdr_quantile(ins, 0.99), max(ins), r3(sum(ins) / len(ins)), sum(ins)))
        rows_b.append((src, wl, hdr_quantile(outs, 0.5), hdr_quantile(outs, 0.9), hdr_quantile(outs, 0.99),
                       max(outs), r3(sum(outs) / len(outs)), sum(outs)))
    s.query("TTIIRRRIRI", """
select source, workload, requests, failed, input_p50, input_p90, input_p99, input_max, round(input_mean, 3), input_total
from request_token_stats""", rows_a)
    s.query("TTRRRIRI", """
select source, workload, output_p50, output_p90, output_p99, output_max, round(output_mean, 3), output_total
from request_token_stats""", rows_b)
    # The stored histograms merge back into the same percentiles.
    code = [r["input"] for r in reqs if r["workload"] == "code"]
    s.query("RI", """
select hdr_quantile_of(hdr_merge(input_hist), 0.5), count(*) from request_token_stats where workload = 'code'""",
            [(hdr_quantile(code, 0.5), 1)], comment="The stored histograms are mergeable (hdr_merge) and decode to the same quantiles.")
    allin = [r["input"] for r in reqs]
    s.query("RR", """
select hdr_quantile_of(hdr_merge(input_hist), 0.9), hdr_quantile_of(hdr_merge(output_hist), 0.99) from request_token_stats""",
            [(hdr_quantile(allin, 0.9), hdr_quantile([r["output"] for r in reqs], 0.99))])
    return s


def slt_request_arrivals(reqs) -> Slt:
    s = Slt("request_arrivals", """
Buckets are calendar seconds / minutes since the Unix epoch (floor of the arrival time), counted
from the first to the last arrival including empty ones; gaps are in arrival order, population
standard deviation.""")
    rows_a, rows_b = [], []
    for (src, wl), rs in sorted(groups(reqs, lambda r: (r["source"], r["workload"])).items()):
        ts = sorted(epoch_s(r["arrival_ns"]) for r in rs)
        n = len(ts)
        per_s = defaultdict(int)
        per_m = defaultdict(int)
        for t in ts:
            per_s[math.floor(t)] += 1
            per_m[math.floor(t / 60.0)] += 1
        seconds = math.floor(ts[-1]) - math.floor(ts[0]) + 1
        minutes = math.floor(ts[-1] / 60.0) - math.floor(ts[0] / 60.0) + 1
        mean_s = n / seconds
        mean_m = n / minutes
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        gmean = sum(gaps) / len(gaps) if gaps else None
        gsd = statistics.pstdev(gaps) if gaps else None
        cv = gsd / gmean if gaps and gmean > 0 else None
        rows_a.append((src, wl, n, seconds, minutes, max(per_s.values()), max(per_m.values()), r3(ts[-1] - ts[0])))
        rows_b.append((src, wl, r3(mean_s), r3(max(per_s.values()) / mean_s), r3(mean_m),
                       r3(max(per_m.values()) / mean_m), r3(gmean), r3(cv)))
    s.query("TTIIIIIR", """
select source, workload, requests, seconds, minutes, peak_per_s, peak_per_min, round(duration_s, 3)
from request_arrivals""", rows_a)
    s.query("TTRRRRRR", """
select source, workload, round(mean_per_s, 3), round(peak_to_mean_per_s, 3), round(mean_per_min, 3),
       round(peak_to_mean_per_min, 3), round(gap_mean_s, 3), round(gap_cv, 3)
from request_arrivals""", rows_b)
    return s


def slt_request_prefill_decode(reqs) -> Slt:
    s = Slt("request_prefill_decode", "Input tokens are prefill, output tokens decode.")
    rows = []
    for (src, wl), rs in sorted(groups(reqs, lambda r: (r["source"], r["workload"])).items()):
        i = sum(r["input"] for r in rs)
        o = sum(r["output"] for r in rs)
        heavy = sum(1 for r in rs if r["output"] > r["input"])
        rows.append((src, wl, len(rs), i, o, i + o, r3(i / (i + o)), r3(o / (i + o)), r3(o / i), heavy, r3(heavy / len(rs))))
    s.query("TTIIIIRRRIR", """
select source, workload, requests, input_tokens, output_tokens, total_tokens, round(prefill_share, 3),
       round(decode_share, 3), round(decode_per_prefill, 3), decode_heavy_requests, round(decode_heavy_share, 3)
from request_prefill_decode""", rows)
    return s


def block_accesses(rs):
    """(hash, tokens, request index) lookups in access order: requests by (arrival, line), blocks by position."""
    out = []
    for n, r in enumerate(sorted(rs, key=lambda r: (r["arrival_ns"], r["line"]))):
        for i, h in enumerate(r["hashes"]):
            out.append((h, max(0, min(512, r["input"] - 512 * i)), n))
    return out


def lru(accesses, capacity):
    cache: OrderedDict = OrderedDict()
    hits = hit_tokens = evictions = 0
    for h, tk, *_ in accesses:
        if h in cache:
            cache.move_to_end(h)
            hits += 1
            hit_tokens += tk
        else:
            cache[h] = True
            if len(cache) > capacity:
                cache.popitem(last=False)
                evictions += 1
    return dict(lookups=len(accesses), hit_blocks=hits, hit_tokens=hit_tokens, evictions=evictions)


def slt_request_prefix_reuse(reqs) -> Slt:
    s = Slt("request_prefix_reuse", """
Infinite prefix cache per trace file: a 512-token block is reused when its hash occurred in an
earlier request of the same file (requests by arrival time, then line). Only Mooncake records carry
block hashes.""")
    rows = []
    for (src, wl), rs in sorted(groups([r for r in reqs if r["hashes"] is not None],
                                       lambda r: (r["source"], r["workload"])).items()):
        blocks = reused = reused_tokens = 0
        reuse_requests = 0
        for f, frs in groups(rs, lambda r: r["file"]).items():
            seen_before = set()
            for r in sorted(frs, key=lambda r: (r["arrival_ns"], r["line"])):
                hit = 0
                for i, h in enumerate(r["hashes"]):
                    blocks += 1
                    if h in seen_before:
                        reused += 1
                        tk = max(0, min(512, r["input"] - 512 * i))
                        reused_tokens += tk
                        hit += tk
                seen_before.update(r["hashes"])
                reuse_requests += hit > 0
        inp = sum(r["input"] for r in rs)
        rows.append((src, wl, len(groups(rs, lambda r: r["file"])), len(rs), inp, blocks, reused, reused_tokens,
                     r3(reused_tokens / inp), r3(reused / blocks), reuse_requests))
    s.query("TTIIIIIIRRI", """
select source, workload, files, requests, input_tokens, blocks, reused_blocks, reused_tokens,
       round(reuse_ratio, 3), round(block_reuse_ratio, 3), reuse_requests
from request_prefix_reuse""", rows)
    return s


def slt_request_prefix_reuse_lru(reqs) -> Slt:
    s = Slt("request_prefix_reuse_lru", """
LRU prefix cache of lru_blocks (default 4096) blocks per trace file, and the functions that simulate it
(lru_hit, the window function the job streams through, and lru_cache_hits over lists): lookups
replayed in order; a hit moves the hash to most recent, a miss inserts it as most recent and
evicts the least recent when over capacity (capacity must be positive).""")
    moon = [r for r in reqs if r["hashes"] is not None]
    rows = []
    for (src, wl), rs in sorted(groups(moon, lambda r: (r["source"], r["workload"])).items()):
        files = groups(rs, lambda r: r["file"])
        tot = dict(lookups=0, hit_blocks=0, hit_tokens=0, evictions=0)
        tt = 0
        for f, frs in files.items():
            acc = block_accesses(frs)
            for k, v in lru(acc, PARAMS["lru_blocks"]).items():
                tot[k] += v
            tt += sum(a[1] for a in acc)
        rows.append((src, wl, len(files), PARAMS["lru_blocks"], tot["lookups"], tt, tot["hit_blocks"], tot["hit_tokens"],
                     tot["evictions"], r3(tot["hit_tokens"] / tt), r3(tot["hit_blocks"] / tot["lookups"])))
    s.query("TTIIIIIIIRR", """
select source, workload, files, capacity_blocks, blocks, block_tokens, hit_blocks, hit_tokens, evictions,
       round(hit_ratio, 3), round(block_hit_ratio, 3)
from request_prefix_reuse_lru""", rows,
            comment="Default capacity: larger than the sample's distinct blocks, so it equals the infinite cache.")
    # The UDF on literals: a b a c b a with capacity 2.
    hs = [1, 2, 1, 3, 2, 1]
    tk = [512, 512, 100, 512, 512, 7]
    for cap in (1, 2, 3):
        res = lru(list(zip(hs, tk)), cap)
        s.query("IIII", f"""
select r['lookups'], r['hit_blocks'], r['hit_tokens'], r['evictions']
from (select lru_cache_hits([1, 2, 1, 3, 2, 1], [512, 512, 100, 512, 512, 7], {cap}) as r)""",
                [(res["lookups"], res["hit_blocks"], res["hit_tokens"], res["evictions"])],
                comment=f"Hand-checkable: hashes 1 2 1 3 2 1, capacity {cap}.")
    # The window function on literals: the same sequence in two partitions (capacity 2), the
    # second with a null hash (not a lookup).
    res = lru(list(zip(hs, tk)), 2)
    s.query("TII", """
select g, count(hit), sum(case when hit then 1 else 0 end)
from (select g, lru_hit(h, 2) over (partition by g order by k) as hit
      from (values ('a', 1, 1), ('a', 2, 2), ('a', 3, 1), ('a', 4, 3), ('a', 5, 2), ('a', 6, 1),
                   ('b', 1, 1), ('b', 2, cast(null as bigint)), ('b', 3, 1)) as v(g, k, h))
group by g""", [("a", res["lookups"], res["hit_blocks"]), ("b", 2, 1)],
            comment="Hand-checkable: lru_hit per partition, capacity 2 (a: 1 2 1 3 2 1; b: 1 null 1).")
    # Small capacities over the sample's Mooncake requests (both functions directly, same access
    # order as the job; the sample has one Mooncake file).
    assert len(groups(moon, lambda r: r["file"])) == 1
    acc = block_accesses(moon)
    for cap in (1, 8, 32):
        res = lru(acc, cap)
        s.query("II", f"""
with b as (
  select arrival_time, file, line, input_tokens, block_hashes, unnest(range(0, array_length(block_hashes))) as blk
  from requests where block_hashes is not null
), t as (
  select arrival_time, file, line, blk, block_hashes[blk + 1] as h, greatest(0, least(512, input_tokens - 512 * blk)) as tokens from b
)
select r['hit_blocks'], r['hit_tokens'] from (
  select lru_cache_hits(array_agg(h order by arrival_time, line, blk), array_agg(tokens order by arrival_time, line, blk), {cap}) as r from t)""",
                [(res["hit_blocks"], res["hit_tokens"])], comment=f"Mooncake sample, capacity {cap} blocks (lru_cache_hits).")
        s.query("III", f"""
with t as (
  select arrival_time, line, unnest(block_hashes) as h, unnest(range(0, array_length(block_hashes))) as blk, input_tokens
  from requests where block_hashes is not null
), w as (
  select greatest(0, least(512, input_tokens - 512 * blk)) as tokens,
         lru_hit(h, {cap}) over (order by arrival_time, line, blk) as hit
  from t
)
select sum(case when hit then 1 else 0 end), sum(case when hit then tokens else 0 end), count(*) - sum(case when hit then 1 else 0 end) from w""",
                [(res["hit_blocks"], res["hit_tokens"], res["lookups"] - res["hit_blocks"])],
                comment=f"Mooncake sample, capacity {cap} blocks (lru_hit): hits, hit tokens, misses.")
    return s


def residency(r):
    return r["input"] / PARAMS["prefill_tokens_per_s"] + r["output"] / PARAMS["decode_tokens_per_s"]


def sweep_events(rs):
    ev = []
    for r in rs:
        t0 = epoch_s(r["arrival_ns"])
        kv = (r["input"] + r["output"]) * PARAMS["kv_bytes_per_token"]
        ev.append((t0, 1, kv))
        ev.append((t0 + residency(r), -1, -kv))
    ev.sort(key=lambda e: (e[0], e[1]))
    return ev


def slt_request_concurrency(reqs) -> Slt:
    s = Slt("request_concurrency", f"""
Residency = input/{PARAMS['prefill_tokens_per_s']} + output/{PARAMS['decode_tokens_per_s']} s from arrival, holding
(input + output) * {PARAMS['kv_bytes_per_token']} bytes; sweep with departures before arrivals at equal times.""")
    rows = []
    for (src, wl), rs in sorted(groups(reqs, lambda r: (r["source"], r["workload"])).items()):
        ev = sweep_events(rs)
        c = kv = 0
        pc = pkv = 0
        for t, d, db in ev:
            c += d
            kv += db
            pc = max(pc, c)
            pkv = max(pkv, kv)
        t0 = min(epoch_s(r["arrival_ns"]) for r in rs)
        t1 = max(epoch_s(r["arrival_ns"]) + residency(r) for r in rs)
        span = t1 - t0
        res = [residency(r) for r in rs]
        kvs = sum(residency(r) * (r["input"] + r["output"]) * PARAMS["kv_bytes_per_token"] for r in rs)
        rows.append((src, wl, len(rs), r3(span), r3(sum(res) / len(res)), r3(max(res)), pc,
                     r3(sum(res) / span), pkv, r3(kvs / span / 1e9)))
    s.query("TTIRRRIRIR", """
select source, workload, requests, round(span_s, 3), round(mean_residency_s, 3), round(max_residency_s, 3),
       peak_concurrency, round(mean_concurrency, 3), peak_kv_bytes, round(mean_kv_bytes / 1e9, 3)
from request_concurrency""", rows)
    return s


def slt_request_concurrency_series(reqs) -> Slt:
    s = Slt("request_concurrency_series", """
Per second with an arrival or a departure: counts, the highest level during the second (including
the level carried in), the level at its end.""")
    agg_rows, moon_rows = [], []
    for (src, wl), rs in sorted(groups(reqs, lambda r: (r["source"], r["workload"])).items()):
        ev = sweep_events(rs)
        per = OrderedDict()
        c = kv = 0
        for t, d, db in ev:
            before_c, before_kv = c, kv
            c += d
            kv += db
            sec = math.floor(t)
            p = per.setdefault(sec, dict(arr=0, dep=0, pc=0, pkv=0, ec=0, ekv=0))
            p["arr"] += d > 0
            p["dep"] += d < 0
            p["pc"] = max(p["pc"], c, before_c)
            p["pkv"] = max(p["pkv"], kv, before_kv)
            p["ec"] = c
            p["ekv"] = kv
        agg_rows.append((src, wl, len(per), sum(p["arr"] for p in per.values()), sum(p["dep"] for p in per.values()),
                         max(p["pc"] for p in per.values()), max(p["pkv"] for p in per.values()),
                         sum(p["ec"] for p in per.values()), min(p["ec"] for p in per.values())))
        if src == "mooncake":
            for sec, p in list(per.items())[:8]:
                moon_rows.append((sec, p["arr"], p["dep"], p["pc"], p["ec"], p["pkv"], p["ekv"]))
    s.query("TTIIIIIII", """
select source, workload, count(*), sum(arrivals), sum(departures), max(peak_concurrency), max(peak_kv_bytes),
       sum(end_concurrency), min(end_concurrency)
from request_concurrency_series group by source, workload""", agg_rows)
    s.query("IIIIIII", """
select epoch_s, arrivals, departures, peak_concurrency, end_concurrency, peak_kv_bytes, end_kv_bytes
from request_concurrency_series where source = 'mooncake' order by epoch_s limit 8""", moon_rows, sort="nosort")
    return s


# ----------------------------------------------------------------------------------------------
# Kineto traces


def load_rules():
    with open(os.path.join(ROOT, "pipelines", "categories", "kernels.toml"), "rb") as fh:
        rules = tomllib.load(fh)["rule"]
    return [(r["category"], re.compile(r["pattern"], re.IGNORECASE)) for r in rules]


RULES = None


def kernel_category(name: str) -> str:
    global RULES
    if RULES is None:
        RULES = load_rules()
    for cat, rx in RULES:
        if rx.search(name):
            return cat
    return "other"


def memcpy_category(name: str) -> str:
    for d in ("HtoD", "DtoH", "DtoD"):
        if d in name:
            return "memcpy_" + d.lower()
    return "memcpy_other"


DTYPES = {
    "float": ("float32", 4), "c10::float": ("float32", 4), "float32": ("float32", 4),
    "double": ("float64", 8), "c10::half": ("float16", 2), "half": ("float16", 2), "float16": ("float16", 2),
    "c10::bfloat16": ("bfloat16", 2), "bfloat16": ("bfloat16", 2),
    "long int": ("int64", 8), "long": ("int64", 8), "int": ("int32", 4), "bool": ("bool", 1),
    "unsigned char": ("uint8", 1), "signed char": ("int8", 1),
}


def dtype_of(t):
    return DTYPES.get(str(t).strip().lower()) if t else None


def prod(xs):
    p = 1
    for x in xs:
        p *= x
    return p


def op_cost(name, dims, types):
    """(flops, bytes) of the sample traces' ops, from their Input Dims / Input type; None if unknown."""
    ins = []
    for d, t in zip(dims or [], types or []):
        dti = dtype_of(t)
        ins.append((d if isinstance(d, list) else None, dti))
    if name == "aten::mm":
        (a, ta), (b, _) = ins[0], ins[1]
        m, k = a
        _, n = b
        sz = ta[1]
        return 2 * m * n * k, (m * k + k * n + m * n) * sz
    if name == "aten::addmm":
        (bias, tb), (a, ta), (b, _) = ins[0], ins[1], ins[2]
        m, k = a
        _, n = b
        sz = ta[1]
        return 2 * m * n * k + m * n, (m * k + k * n + m * n + prod(bias)) * sz
    if name == "aten::_flash_attention_forward":
        (q, tq), (k, _), (v, _) = ins[0], ins[1], ins[2]
        b, lq, h, d = q
        lk = k[1]
        dv = v[3]
        sz = tq[1]
        flops = 2 * b * h * lq * lk * d + 2 * b * h * lq * lk * dv
        return flops, (prod(q) + prod(k) + prod(v) + b * lq * h * dv) * sz
    if name in ("aten::gelu", "aten::silu", "aten::add", "aten::add_", "aten::mul"):
        tensors = [(d, t) for d, t in ins if d is not None and t is not None and len(d) > 0]
        shapes = [d for d, _ in tensors]
        nd = max(len(s) for s in shapes)
        out = []
        for i in range(nd):
            dims_i = [s[len(s) - nd + i] for s in shapes if len(s) - nd + i >= 0]
            out.append(max(dims_i))
        elems = prod(out)
        first_sz = tensors[0][1][1]
        read = sum(prod(d) * t[1] for d, t in tensors)
        return elems, read + elems * first_sz
    if name == "aten::copy_":
        (dst, tdst), (src, tsrc) = ins[0], ins[1]
        return 0, prod(dst) * tdst[1] + prod(src) * tsrc[1]
    return None


def ts_ns(x) -> int:
    return int(Decimal(str(x)) * 1000)


def read_kineto(root: str) -> tuple[list[dict], list[dict]]:
    acts = []
    devices = []
    for path in sorted(glob.glob(os.path.join(root, "kineto", "**", "*.json*"), recursive=True)):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as fh:
            trace = json.loads(fh.read(), parse_float=Decimal)
        abspath = os.path.abspath(path)
        workload = os.path.basename(os.path.dirname(path))
        rank = int((trace.get("distributedInfo") or {}).get("rank", 0))
        for d in trace.get("deviceProperties", []):
            devices.append(dict(workload=workload, file=abspath, rank=rank, id=int(d["id"]), name=d["name"]))
        events = trace["traceEvents"]
        runtime = {}
        cpu_ops = defaultdict(list)  # (pid, tid) -> [(start, end, idx, event)]
        for idx, e in enumerate(events, start=1):
            cat = e.get("cat")
            if e.get("ph") != "X":
                continue
            if cat in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {}):
                runtime[int(e["args"]["correlation"])] = (ts_ns(e["ts"]), ts_ns(e["dur"]), e["pid"], e["tid"])
            if cat == "cpu_op":
                cpu_ops[(e["pid"], e["tid"])].append((ts_ns(e["ts"]), ts_ns(e["ts"]) + ts_ns(e["dur"]), idx, e))
        op_first_seen = set()
        for idx, e in enumerate(events, start=1):
            cat = e.get("cat")
            if e.get("ph") != "X" or cat not in ("kernel", "gpu_memcpy", "gpu_memset"):
                continue
            a = e["args"]
            name = e["name"]
            if cat == "kernel":
                activity, category = "kernel", kernel_category(name)
            elif cat == "gpu_memcpy":
                activity, category = "memcpy", memcpy_category(name)
            else:
                activity, category = "memset", "memset"
            corr = int(a["correlation"]) if "correlation" in a else None
            rt = runtime.get(corr)
            op = None
            if rt:
                rs, rd, pid, tid = rt
                # innermost cpu_op on the same thread open when the runtime call starts
                best = None
                for s0, e0, oi, oe in cpu_ops.get((pid, tid), []):
                    if s0 <= rs <= e0:
                        if best is None or (s0, -e0) > (best[0], -best[1]):
                            best = (s0, e0, oi, oe)
                op = best
            flops = nbytes = None
            dtype = None
            op_name = None
            if op:
                oe = op[3]
                op_name = oe["name"]
                oa = oe.get("args", {})
                types = oa.get("Input type")
                for t in types or []:
                    if dtype_of(t):
                        dtype = dtype_of(t)[0]
                        break
                if op[2] not in op_first_seen:
                    op_first_seen.add(op[2])
                    cost = op_cost(op_name, oa.get("Input Dims"), types)
                    if cost:
                        flops, nbytes = cost
            if "dtype" in a:
                dtype = dtype_of(a["dtype"])[0]
            acts.append(dict(
                workload=workload, file=abspath, rank=rank, event_index=idx, activity=activity,
                category=category, name=name, device=int(a["device"]), stream=int(a["stream"]),
                start=ts_ns(e["ts"]), dur=ts_ns(e["dur"]), launch_start=rt[0] if rt else None,
                launch_dur=rt[1] if rt else None, op=op_name, flops=flops, bytes=nbytes, dtype=dtype,
                collective=a.get("Collective name"), in_nelems=a.get("In msg nelems"),
                out_nelems=a.get("Out msg nelems"), group_size=a.get("Group size"),
            ))
    return acts, devices


def union_len(intervals) -> int:
    total = 0
    cur_s = cur_e = None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def slt_kernel_category_time(acts) -> Slt:
    s = Slt("kernel_category_time", """
Plain sums and interval unions (sorted merge) per (file, rank, category); busy = union of all
non-sync activities per device.""")
    rows = []
    by_rank = groups(acts, lambda a: (a["workload"], a["file"], a["rank"]))
    for (wl, f, rk), rs in sorted(by_rank.items()):
        total = sum(a["dur"] for a in rs)
        busy = sum(union_len([(a["start"], a["start"] + a["dur"]) for a in ds])
                   for ds in groups([a for a in rs if a["activity"] != "sync"], lambda a: a["device"]).values())
        span = max(a["start"] + a["dur"] for a in rs) - min(a["start"] for a in rs)
        for cat, cs in sorted(groups(rs, lambda a: a["category"]).items()):
            tn = sum(a["dur"] for a in cs)
            un = sum(union_len([(a["start"], a["start"] + a["dur"]) for a in ds])
                     for ds in groups(cs, lambda a: a["device"]).values())
            rows.append((wl, os.path.basename(f), rk, cat, len(cs), tn, r3(tn / total), un, busy, r3(un / busy), span))
    s.query("TTITIIRIIRI", """
select workload, regexp_replace(file, '^.*/', ''), rank, category, activities, total_ns, round(share, 3), union_ns, busy_ns,
       round(union_share, 3), span_ns
from kernel_category_time""", rows)
    return s


def slt_top_kernels(acts) -> Slt:
    s = Slt("top_kernels", "Grouped by (workload, name, category, activity); sync rows excluded; top 20 by total time, ties by name.")
    rows = []
    for wl, rs in sorted(groups([a for a in acts if a["activity"] != "sync"], lambda a: a["workload"]).items()):
        total = sum(a["dur"] for a in rs)
        g = groups(rs, lambda a: (a["name"], a["category"], a["activity"]))
        ranked = sorted(g.items(), key=lambda kv: (-sum(a["dur"] for a in kv[1]), kv[0]))
        for i, ((name, cat, act), ks) in enumerate(ranked[: PARAMS["top_n"]], start=1):
            tn = sum(a["dur"] for a in ks)
            rows.append((wl, i, name40(name), cat, len(ks), tn, r3(tn / len(ks)), max(a["dur"] for a in ks), r3(tn / total)))
    s.query("TITTIIRIR", """
select workload, rank_by_time, replace(substr(name, 1, 40), ' ', '_'), category, calls, total_ns, round(mean_ns, 3), max_ns, round(share, 3)
from top_kernels""", rows)
    return s


def slt_gpu_idle_time(acts) -> Slt:
    s = Slt("gpu_idle_time", f"""
Per (file, rank, device, stream), all rows (default hta_window_only = 0), sync rows excluded. Gap =
start − latest earlier end on the stream; host wait when the launching runtime call started after
that end; else kernel wait when < {PARAMS['kernel_wait_ns']} ns; else other.""")
    rows = []
    g = groups([a for a in acts if a["activity"] != "sync"],
               lambda a: (a["workload"], a["file"], a["rank"], a["device"], a["stream"]))
    for (wl, f, rk, dev, st), rs in sorted(g.items()):
        rs = sorted(rs, key=lambda a: (a["start"], a["event_index"]))
        host = kern = other = overlap = 0
        prev_end = None
        for a in rs:
            end = a["start"] + a["dur"]
            if prev_end is not None:
                gap = a["start"] - prev_end
                if a["launch_start"] is not None and a["launch_start"] > prev_end:
                    host += max(gap, 0)
                elif gap < PARAMS["kernel_wait_ns"]:
                    kern += max(gap, 0)
                else:
                    other += max(gap, 0)
                overlap += max(min(end, prev_end) - a["start"], 0)
                prev_end = max(prev_end, end)
            else:
                prev_end = end
        idle = host + kern + other
        active = sum(a["dur"] for a in rs)
        span = max(a["start"] + a["dur"] for a in rs) - min(a["start"] for a in rs)
        sh = (lambda x: r3(x / idle)) if idle > 0 else (lambda x: None)
        rows.append((wl, rk, dev, st, len(rs), active, span, idle, host, kern, other, sh(host), sh(kern), sh(other),
                     r3(idle / span) if span else None, overlap))
    s.query("TIIIIIIIIIIRRRRI", """
select workload, rank, device, stream, activities, active_ns, span_ns, idle_ns, host_wait_ns, kernel_wait_ns, other_idle_ns,
       round(host_wait_share, 3), round(kernel_wait_share, 3), round(other_idle_share, 3), round(idle_ratio, 3), overlap_ns
from gpu_idle_time""", rows)
    return s


def slt_comm_compute_overlap(acts) -> Slt:
    s = Slt("comm_compute_overlap", """
Communication = category communication; compute = other kernels except copy/fill kernels; memcpy,
memset and sync activities are neither. exposed = union(comm) minus time covered by compute.""")
    rows = []
    g = groups([a for a in acts if a["activity"] == "kernel" and not a["category"].startswith("memcpy")
                and a["category"] != "memset"], lambda a: (a["workload"], a["file"], a["rank"], a["device"]))
    for (wl, f, rk, dev), rs in sorted(g.items()):
        comm = [(a["start"], a["start"] + a["dur"]) for a in rs if a["category"] == "communication"]
        comp = [(a["start"], a["start"] + a["dur"]) for a in rs if a["category"] != "communication"]
        if not comm:
            continue
        cu = union_len(comm)
        pu = union_len(comp)
        # exposed computed directly: walk the comm union and subtract compute coverage point by point
        exposed = 0
        events = sorted(set([x for iv in comm + comp for x in iv]))
        for lo, hi in zip(events, events[1:]):
            mid_in_comm = any(s0 <= lo and hi <= e0 for s0, e0 in comm)
            mid_in_comp = any(s0 <= lo and hi <= e0 for s0, e0 in comp)
            if mid_in_comm and not mid_in_comp:
                exposed += hi - lo
        span = max(e for _, e in comm + comp) - min(s0 for s0, _ in comm + comp)
        rows.append((wl, rk, dev, len(comm), sum(e - s0 for s0, e in comm), cu, pu, exposed, cu - exposed,
                     r3((cu - exposed) / cu), r3(exposed / cu), span, r3(exposed / span)))
    s.query("TIIIIIIIIRRIR", """
select workload, rank, device, comm_kernels, comm_ns, comm_union_ns, compute_union_ns, exposed_comm_ns, overlapped_comm_ns,
       round(overlap_ratio, 3), round(exposed_ratio, 3), span_ns, round(exposed_share_of_span, 3)
from comm_compute_overlap""", rows)
    return s


def norm_collective(c):
    n = (c or "").replace("_", "").lower()
    for key in ("allreduce", "allgather", "reducescatter", "alltoall", "broadcast"):
        if key in n:
            return key
    if "sendrecv" in n or n.startswith("send") or n.startswith("recv"):
        return "sendrecv"
    if n.startswith("reduce"):
        return "reduce"
    return (c or "").lower()


DTYPE_SIZE = {"bfloat16": 2, "float16": 2, "float32": 4, "float64": 8, "int64": 8, "int32": 4, "int8": 1, "uint8": 1}


def slt_collective_bandwidth(acts) -> Slt:
    s = Slt("collective_bandwidth", """
nccl-tests definitions: allreduce S = buffer bytes, busbw = algbw * 2(n-1)/n; bucket = largest power of
two <= S.""")
    rows = []
    g = defaultdict(list)
    for a in acts:
        if a["category"] != "communication":
            continue
        c = norm_collective(a["collective"])
        size = DTYPE_SIZE[a["dtype"]]
        inb = a["in_nelems"] * size if a["in_nelems"] is not None else None
        outb = a["out_nelems"] * size if a["out_nelems"] is not None else None
        n = a["group_size"]
        if c in ("allreduce", "broadcast", "reduce", "alltoall"):
            S = inb if inb is not None else outb
        elif c == "allgather":
            S = outb
        elif c == "reducescatter":
            S = inb
        else:
            S = max(inb or 0, outb or 0)
        factor = {"allreduce": 2 * (n - 1) / n, "allgather": (n - 1) / n, "reducescatter": (n - 1) / n,
                  "alltoall": (n - 1) / n}.get(c, 1.0)
        bucket = 1 << (S.bit_length() - 1)
        g[(a["workload"], c, n, bucket)].append((S, a["dur"], factor))
    for (wl, c, n, b), cs in sorted(g.items()):
        by = sum(x[0] for x in cs)
        tn = sum(x[1] for x in cs)
        alg = by * 1e9 / tn
        f = cs[0][2]
        rows.append((wl, c, n, b, len(cs), by, tn, iround(alg), r3(f), iround(alg * f),
                     iround(max(x[0] * 1e9 / x[1] * x[2] for x in cs))))
    s.query("TTIIIIIIRII", """
select workload, collective, group_size, size_bucket_bytes, calls, bytes, time_ns, cast(round(algbw) as bigint),
       round(bus_factor, 3), cast(round(busbw) as bigint), cast(round(max_busbw) as bigint)
from collective_bandwidth""", rows)
    return s


def op_groups(acts):
    """Ops: per (file, rank, stream) in start order, a run starting at an activity with flops/bytes (or
    a new op name) and continuing over activities of the same op without their own."""
    out = []
    g = groups([a for a in acts if a["activity"] != "sync"], lambda a: (a["workload"], a["file"], a["rank"], a["stream"]))
    for key, rs in sorted(g.items()):
        rs = sorted(rs, key=lambda a: (a["start"], a["event_index"]))
        cur = None
        for a in rs:
            new = (a["flops"] is not None or a["bytes"] is not None or a["op"] is None or cur is None
                   or cur[-1]["op"] != a["op"])
            if new:
                cur = [a]
                out.append(cur)
            else:
                cur.append(a)
    return out


def slt_gemm_flops_by_dtype(acts) -> Slt:
    s = Slt("gemm_flops_by_dtype", "GEMM ops = ops with a gemm-category kernel; FLOPs and time summed over the op's activities.")
    agg = defaultdict(lambda: dict(k=0, ns=0, fops=0, flops=0, fns=0, fgemm=0, any_flops=False))
    for op in op_groups(acts):
        gk = [a for a in op if a["category"] == "gemm"]
        if not gk:
            continue
        dts = [a["dtype"] for a in op if a["dtype"] is not None]
        key = (op[0]["workload"], max(dts) if dts else None)
        d = agg[key]
        d["k"] += len(gk)
        d["ns"] += sum(a["dur"] for a in gk)
        fl = [a["flops"] for a in op if a["flops"] is not None]
        if fl:
            d["any_flops"] = True
            d["fops"] += 1
            d["flops"] += sum(fl)
            d["fns"] += sum(a["dur"] for a in op)
            d["fgemm"] += sum(a["dur"] for a in gk)
    rows = []
    for (wl, dtype), d in sorted(agg.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        rows.append((wl, dtype, d["k"], d["ns"], d["fops"], d["flops"] if d["any_flops"] else None,
                     d["fns"] if d["any_flops"] else None,
                     iround(d["flops"] * 1e9 / d["fns"]) if d["fns"] else None, r3(d["fgemm"] / d["ns"])))
    s.query("TTIIIIIIR", """
select workload, dtype, gemm_kernels, gemm_ns, flop_ops, flops, flop_ns, cast(round(achieved_flops_per_s) as bigint),
       round(flop_coverage, 3)
from gemm_flops_by_dtype""", rows)
    return s


def load_hardware():
    hw = []
    for path in sorted(glob.glob(os.path.join(ROOT, "pipelines", "hardware", "*.toml"))):
        with open(path, "rb") as fh:
            hw.append(tomllib.load(fh))
    return hw


def slt_kernel_roofline(acts, devices) -> Slt:
    s = Slt("kernel_roofline", """
Ops with known FLOPs or bytes; device name from deviceProperties (file, rank, id), matched to the first
hardware profile (by id) whose device_pattern matches; peaks from pipelines/hardware/*.toml.""")
    hw = sorted(load_hardware(), key=lambda h: h["id"])
    dev_name = {(d["file"], d["rank"], d["id"]): d["name"] for d in devices}

    def profile(name):
        for h in hw:
            pat = h.get("device_pattern")
            if pat and re.search(pat, name, re.IGNORECASE):
                return h
        return None

    agg = defaultdict(lambda: dict(n=0, ns=0, flops=0, bytes=0, ideal=0.0, has_f=False, has_b=False, peak=None, bw=None, cls_ok=True))
    for op in op_groups(acts):
        fl = [a["flops"] for a in op if a["flops"] is not None]
        by = [a["bytes"] for a in op if a["bytes"] is not None]
        if not fl and not by:
            continue
        flops = sum(fl) if fl else None
        nbytes = sum(by) if by else None
        if (flops or 0) > 0 and not any(a["activity"] == "kernel" for a in op):
            continue
        order = ["memset", "memcpy_other", "memcpy_dtod", "memcpy_dtoh", "memcpy_htod", "other", "elementwise",
                 "reduction", "embedding", "communication", "gemm", "conv", "attention"]
        cat = max((a["category"] for a in op), key=lambda c: order.index(c) if c in order else order.index("other"))
        if cat not in order:
            cat = "other"
        dts = [a["dtype"] for a in op if a["dtype"] is not None]
        dtype = max(dts) if dts else None
        dn = dev_name.get((op[0]["file"], op[0]["rank"], op[0]["device"]))
        h = profile(dn) if dn else None
        mf = (h or {}).get("matrix_flops", {})
        vf = (h or {}).get("vector_flops", {})
        if cat.startswith("memcpy") or cat == "memset":
            peak = None
        elif cat in ("gemm", "attention", "conv"):
            peak = {"bfloat16": "matrix_bf16", "float16": "matrix_fp16"}.get(dtype)
            assert dtype in ("bfloat16", "float16"), dtype  # the samples only have these
        elif dtype == "float64":
            peak = "vector_fp64"
        else:
            peak = "vector_fp32"
        peak_v = None
        if peak and h:
            kind, dt_ = peak.split("_")
            peak_v = (mf if kind == "matrix" else vf).get(dt_)
            peak_v = float(peak_v) if peak_v is not None else None
        mem = (h or {}).get("memory", {})
        links = (h or {}).get("links", {})
        bw = links.get("host") if cat in ("memcpy_htod", "memcpy_dtoh") else mem.get("hbm_bandwidth")
        bw = float(bw) if bw is not None else None
        comp = 0.0 if not flops else (flops / peak_v if peak_v else None)
        memt = 0.0 if not nbytes else (nbytes / bw if bw else None)
        if comp is None or memt is None or (comp == 0 and memt == 0):
            cls = None
            ideal = None
        else:
            cls = "compute-bound" if comp >= memt else "memory-bound"
            ideal = max(comp, memt) * 1e9
        key = (op[0]["workload"], dn, h["id"] if h else None, cat, dtype, peak, cls)
        d = agg[key]
        d["n"] += 1
        d["ns"] += sum(a["dur"] for a in op)
        if flops is not None:
            d["flops"] += flops
            d["has_f"] = True
        if nbytes is not None:
            d["bytes"] += nbytes
            d["has_b"] = True
        if ideal is None:
            d["cls_ok"] = False
        else:
            d["ideal"] += ideal
        d["peak"] = peak_v
        d["bw"] = bw
    rows = []
    for (wl, dn, hid, cat, dtype, peak, cls), d in sorted(agg.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        fl = d["flops"] if d["has_f"] else None
        by = d["bytes"] if d["has_b"] else None
        rows.append((wl, dn.replace(" ", "_") if dn else None, hid, cat, dtype, peak, cls, d["n"], d["ns"], fl, by,
                     iround(fl * 1e9 / d["ns"]) if fl is not None else None,
                     iround(by * 1e9 / d["ns"]) if by is not None else None,
                     r3(fl / by) if fl is not None and by else None,
                     iround(d["peak"]) if d["peak"] is not None else None,
                     iround(d["bw"]) if d["bw"] is not None else None,
                     r3(d["peak"] / d["bw"]) if d["peak"] is not None and d["bw"] else None,
                     r3(d["ideal"] / d["ns"]) if d["cls_ok"] else None))
    s.query("TTTTTTTIIIIIIRIIRR", """
select workload, replace(device_name, ' ', '_'), hardware, category, dtype, peak, roofline_class, ops, time_ns, flops, bytes,
       cast(round(achieved_flops_per_s) as bigint), cast(round(achieved_bytes_per_s) as bigint), round(arithmetic_intensity, 3),
       cast(round(peak_flops_per_s) as bigint), cast(round(peak_bytes_per_s) as bigint), round(ridge_intensity, 3),
       round(roofline_efficiency, 3)
from kernel_roofline""", rows)
    return s


def slt_launch_delay(acts) -> Slt:
    s = Slt("launch_delay", "delay = kernel start − start of its launching runtime call (by correlation); HDR quantiles.")
    rows = []
    for (wl, f, rk), rs in sorted(groups([a for a in acts if a["activity"] != "sync"],
                                         lambda a: (a["workload"], a["file"], a["rank"])).items()):
        delays = [a["start"] - a["launch_start"] for a in rs if a["launch_start"] is not None]
        ldur = [a["launch_dur"] for a in rs if a["launch_dur"] is not None]
        rows.append((wl, os.path.basename(f), rk, len(rs), len(delays), hdr_quantile(delays, 0.5), hdr_quantile(delays, 0.9),
                     hdr_quantile(delays, 0.99), max(delays), r3(sum(delays) / len(delays)), sum(1 for d in delays if d < 0),
                     hdr_quantile(ldur, 0.5), hdr_quantile(ldur, 0.99), r3(sum(ldur) / len(ldur))))
    s.query("TTIIIRRRIRIRRR", """
select workload, regexp_replace(file, '^.*/', ''), rank, activities, launched, delay_p50, delay_p90, delay_p99, delay_max,
       round(delay_mean, 3), negative_delays, launch_dur_p50, launch_dur_p99, round(launch_dur_mean, 3)
from launch_delay""", rows)
    return s


# ----------------------------------------------------------------------------------------------


def check_params():
    """The defaults above must be the job headers' defaults."""
    for path in glob.glob(os.path.join(ROOT, "pipelines", "sql", "*.sql")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.startswith("--"):
                    break
                m = re.match(r"--\s*param:\s*(\w+)\s*=\s*([^\s]+)", line)
                if m and m.group(1) in PARAMS and float(m.group(2)) != PARAMS[m.group(1)]:
                    sys.exit(f"{path}: default {m.group(1)} = {m.group(2)}, scripts/mine_expected.py assumes {PARAMS[m.group(1)]}")


def build(samples: str) -> dict[str, str]:
    check_params()
    reqs = read_requests(samples)
    acts, devices = read_kineto(samples)
    files = [
        slt_request_token_stats(reqs), slt_request_arrivals(reqs), slt_request_prefill_decode(reqs),
        slt_request_prefix_reuse(reqs), slt_request_prefix_reuse_lru(reqs), slt_request_concurrency(reqs),
        slt_request_concurrency_series(reqs), slt_kernel_category_time(acts), slt_top_kernels(acts),
        slt_gpu_idle_time(acts), slt_comm_compute_overlap(acts), slt_collective_bandwidth(acts),
        slt_gemm_flops_by_dtype(acts), slt_kernel_roofline(acts, devices), slt_launch_delay(acts),
    ]
    return {f"{s.job}.slt": s.text() for s in files}


# ----------------------------------------------------------------------------------------------
# device_* jobs: their .slt files run the job's query on hand-written rows (expected values computed
# by hand in the files' comments), so those files are not generated here. What is kept current is
# the job text they embed: between `-- job <name> on <view>` and `-- end job <name>` a .slt holds
# pipelines/sql/<name>.sql at its default parameters, comment and blank lines dropped, with the lake
# table `device_samples` shadowed by a CTE over <view>.

JOB_BLOCK = re.compile(r"^-- job (\w+) on (\w+)$")


def embedded_job_sql(job: str, view: str) -> list[str]:
    """The lines a .slt embeds for `job` run on `view` (see above)."""
    with open(os.path.join(ROOT, "pipelines", "sql", f"{job}.sql"), encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    params, i = {}, 0
    while i < len(lines) and (lines[i].strip() == "" or lines[i].lstrip().startswith("--")):
        m = re.match(r"--\s*param:\s*(\w+)\s*=\s*('(?:[^']|'')*'|\S+)", lines[i].strip())
        if m:
            params[m.group(1)] = m.group(2)
        i += 1
    body = [l for l in lines[i:] if l.strip() and not l.lstrip().startswith("--")]
    for k, v in params.items():
        body = [l.replace("${%s}" % k, v) for l in body]
    first = body[0].split(None, 1) if body else []
    if not first or first[0].lower() != "with":
        sys.exit(f"pipelines/sql/{job}.sql: a device job must start with `with` to be embedded in its .slt")
    body = ([first[1]] if len(first) > 1 else []) + body[1:]
    return [f"with device_samples as (select * from {view}),"] + body


def refresh_job_blocks(text: str) -> str:
    """`text` with every embedded job block replaced by the job's current text."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        out.append(lines[i])
        m = JOB_BLOCK.match(lines[i])
        i += 1
        if not m:
            continue
        end = f"-- end job {m.group(1)}"
        j = i
        while j < len(lines) and lines[j] != end:
            j += 1
        if j == len(lines):
            sys.exit(f"`{lines[i - 1]}` has no `{end}` line")
        out.extend(embedded_job_sql(m.group(1), m.group(2)))
        i = j
    return "\n".join(out)


def device_slt_files(out_dir: str) -> dict[str, str]:
    """The .slt files with embedded job blocks, name → current text."""
    files = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*.slt"))):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if any(JOB_BLOCK.match(l) for l in text.split("\n")):
            files[os.path.basename(path)] = text
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", default=SAMPLES)
    ap.add_argument("--write", action="store_true", help=f"write the files into {SLT_DIR}")
    ap.add_argument("--check", action="store_true", help="compare with the written files")
    ap.add_argument("--out", default=SLT_DIR)
    a = ap.parse_args()
    out = build(a.samples)
    for name, text in device_slt_files(a.out).items():
        out[name] = refresh_job_blocks(text)
    if a.check:
        bad = 0
        for name, text in out.items():
            path = os.path.join(a.out, name)
            old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            if old != text:
                print(f"differs: {path}")
                bad += 1
        print(f"mine_expected: {len(out) - bad} of {len(out)} files up to date")
        sys.exit(1 if bad else 0)
    if a.write:
        os.makedirs(a.out, exist_ok=True)
        for name, text in out.items():
            with open(os.path.join(a.out, name), "w", encoding="utf-8") as fh:
                fh.write(text)
            print(f"wrote {os.path.join(a.out, name)}")
        return
    for name, text in out.items():
        print(f"==> {name}")
        print(text)


if __name__ == "__main__":
    main()
