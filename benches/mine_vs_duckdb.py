#!/usr/bin/env python3
"""Benchmark `tapeout mine` against DuckDB running the same job SQL (for docs/performance.md).

The job: the mining suite (pipelines/sql/*.sql) over a lake of >= 10M requests and >= 5M
kernels; DuckDB runs the portable subset of the same SQL files on the same Parquet files.

Steps
  1. Build the lake in WORK/lake (reused when present: every step is recorded in
     WORK/build-state.json, and ingest is exactly-once by content anyway):
     - requests: 4 generated files of --request-rows each (default 2.5M), written by
       `tapeout gen requests` (seeded; token lengths and Poisson arrivals fitted to the Azure
       2023 traces): Azure CSVs for conversation (2, different seeds) and code, and one
       Mooncake JSONL (conversation, with `hash_ids`), plus the real Azure 2023 CSVs and the
       real Mooncake trace; `tapeout ingest --lake` (Mooncake with --time-origin 2023-11-16).
     - kernels: every real Kineto trace of ../shared/traces (kineto_hta, param_dlrm_8rank,
       kineto_tb_plugin, tracelens; `.json`/`.json.gz`, not the reference CSVs), then
       replays of real traces at the trace level: `tapeout gen kineto --template T --ranks R
       --copies C --out WORK/kineto/<workload>` writes R real-format rank traces, each with C
       time-shifted copies of T's events (ids renumbered), which `tapeout ingest` commits (the
       generated JSON is deleted after ingest). KINETO_PLAN lists the templates; --kernel-scale
       multiplies the copies. The script stops if the lake ends up below the row minimums.
  2. Per repeat (alternating which tool goes first), each under `/usr/bin/time -v`:
     - `tapeout mine --lake LAKE --pipelines REPO/pipelines --force --json --jobs J ...` for the
       compared jobs only (the same work DuckDB does);
     - a fresh Python process running DuckDB (`SET threads=2`): views `requests`, `kernels`,
       `ops`, `devices`, `collectives`, `traces` over read_parquet([the lake manifest's committed
       files of the table], hive_partitioning=true, union_by_name=true), a `hardware` table
       loaded from `tapeout sql --format csv "select * from hardware"`, then for each compared
       job `COPY (<job SQL>) TO 'WORK/duckdb_results/<job>.parquet' (FORMAT parquet)`, timed
       one by one (tapeout's per-job `elapsed_ms` likewise covers planning, execution and
       writing the result Parquet);
     - `tapeout mine --lake LAKE --pipelines REPO/pipelines --force --json` (the full suite,
       including the jobs DuckDB cannot run).
     Job SQL for DuckDB: each `${param}` replaced by its default from the file's `-- param:`
     header (as tapeout renders numbers verbatim, strings as literals), and the mechanical
     rewrites in REWRITES. Jobs calling tapeout-only functions (TAPEOUT_ONLY) are excluded.
  3. Results agree? Both engines' result Parquet files are read back; row counts, column names
     and every cell are compared after sorting rows by their non-float columns: text, integers
     and timestamps exactly (timestamps at µs, DuckDB's precision), floats within --rtol
     relative (binary HDR columns are skipped).
  4. EXPLAIN ANALYZE (tapeout sql) of the compared job with the largest excess of tapeout over
     DuckDB; its most expensive operators by elapsed_compute are listed.
  Report: median (over repeats) per-job times, totals over the compared subset, process wall and
  max RSS, the tapeout/DuckDB ratio against the target (<= 1.2x), as Markdown (stdout and
  --out); raw figures in WORK/mine_vs_duckdb.json.

Usage:
    pip install duckdb pyarrow
    python3 benches/mine_vs_duckdb.py [--tapeout BIN] [--work DIR] [--repeat R] [--out FILE]

Dependencies beyond the standard library: duckdb (2.x), pyarrow.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

from benchlib import host_facts, timed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_RATIO = 1.2

# Generated request files: (file name, gen --format, gen --profile, seed). The workload comes from
# the file name (`_conv` -> conversation, `_code` -> code).
REQUEST_GEN = (
    ("synth_conv_1.csv", "azure", "conversation", 1),
    ("synth_conv_2.csv", "azure", "conversation", 2),
    ("synth_code_3.csv", "azure", "code", 3),
    ("synth_conv_4.jsonl", "mooncake", "conversation", 4),
)
REAL_AZURE = ("azure_llm_2023/AzureLLMInferenceTrace_code.csv",
              "azure_llm_2023/AzureLLMInferenceTrace_conv.csv")
REAL_MOONCAKE = ("mooncake/conversation_trace.jsonl",)
MOONCAKE_ORIGIN = "2023-11-16 18:00:00"
KINETO_DIRS = ("kineto_hta", "param_dlrm_8rank", "kineto_tb_plugin", "tracelens")

# Trace-level replays: (workload = output folder, template under the traces dir, ranks, copies).
# GPU activities per copy: control 9,450 (A100), nccl_data 3,774 (A100, NCCL collectives),
# resnet_act_checkpoint 3,653 (MI300X), Qwen1.5-0.5B 1,707 (H100), param_dlrm worker0 261 (V100).
KINETO_PLAN = (
    ("synth_control", "kineto_hta/trace_diff/control/control.json.gz", 32, 13),
    ("synth_nccl", "kineto_hta/nccl_parser_config/nccl_data.json.gz", 16, 12),
    ("synth_resnet_mi300", "tracelens/mi300/resnet_act_checkpoint.json.gz", 8, 16),
    ("synth_qwen_h100", "tracelens/h100/Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz", 8, 24),
    ("synth_dlrm_v100", "param_dlrm_8rank/worker0_step_12.1694128201545.pt.trace.json", 8, 32),
)

LAKE_TABLES = ("requests", "kernels", "ops", "devices", "collectives", "traces")
HIVE_TYPES = {"requests": "{'source': VARCHAR, 'date': DATE}"}
DEFAULT_HIVE_TYPES = "{'workload': VARCHAR}"

# Functions only tapeout has: jobs calling them are not run by DuckDB.
TAPEOUT_ONLY = ("hdr_histogram", "hdr_merge", "hdr_quantile", "hdr_quantile_of", "hdr_summary",
                "lru_cache_hits", "lru_hit")
# Mechanical rewrites for DuckDB: (regex, replacement, description).
REWRITES = (
    (r"\bregexp_like\s*\(", "regexp_matches(",
     "`regexp_like(s, p, 'i')` -> `regexp_matches(s, p, 'i')` (same arguments and semantics: "
     "unanchored search, `i` = case-insensitive)"),
    # DuckDB reads the lake's UTC-adjusted nanosecond timestamps as TIMESTAMPTZ_NS but its
    # `extract(epoch …)` keeps whole microseconds; DataFusion divides the nanoseconds by 1e9.
    # The Azure traces carry 100-ns arrival times, so the truncation reorders arrivals and
    # departures within a microsecond (peak concurrency differs) and moves gaps. epoch_ns / 1e9
    # is DataFusion's computation to the bit.
    (r"\bextract\s*\(\s*epoch\s+from\s+([a-z_][a-z0-9_.]*)\s*\)", r"(cast(epoch_ns(\1) as double) / 1e9)",
     "`extract(epoch from ts)` -> `cast(epoch_ns(ts) as double) / 1e9` (DuckDB's epoch truncates nanosecond "
     "timestamps to microseconds; this is DataFusion's ns / 1e9)"),
)


def lit(s: str) -> str:
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Running commands
# --------------------------------------------------------------------------------------

def run(cmd: list[str], ok_codes=(0,)) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in ok_codes:
        sys.exit(f"`{shlex.join(cmd)}` exited {proc.returncode}\n{proc.stderr[-4000:]}")
    return proc


# --------------------------------------------------------------------------------------
# 1. The lake
# --------------------------------------------------------------------------------------

class BuildState:
    """Steps already done, in WORK/build-state.json (the lake itself is tapeout's)."""

    def __init__(self, path: str):
        self.path = path
        self.done: dict = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.done = json.load(f)

    def has(self, step: str) -> bool:
        return step in self.done

    def mark(self, step: str, info) -> None:
        self.done[step] = info
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.done, f, indent=1)
        os.replace(tmp, self.path)


def ingest(binary: str, lake: str, inputs: list[str], extra: tuple[str, ...] = ()) -> dict:
    """`tapeout ingest --lake LAKE --json [extra] inputs`; the JSON summary (rejects tolerated)."""
    cmd = [binary, "ingest", "--lake", lake, "--json", *extra, *inputs]
    log(f"$ {shlex.join(cmd)}")
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    try:
        summary = json.loads(proc.stdout)
    except json.JSONDecodeError:
        sys.exit(f"`{shlex.join(cmd)}` exited {proc.returncode} without a JSON summary\n"
                 f"{proc.stderr[-4000:]}")
    keep = {k: summary.get(k) for k in ("inputs", "rows", "quarantined", "skipped", "rejected",
                                         "outputs", "manifest_version", "seconds")}
    log(f"  {keep} ({time.perf_counter() - started:.1f} s, exit {proc.returncode})")
    if summary.get("rejected"):
        for d in summary.get("details", []):
            if d.get("status") == "rejected":
                log(f"  rejected {d.get('path')}: {d.get('reason')}")
    return keep


def real_kineto_traces(traces: str) -> list[str]:
    out = []
    for d in KINETO_DIRS:
        for root, dirs, files in os.walk(os.path.join(traces, d)):
            dirs[:] = sorted(x for x in dirs if x != "reference_outputs")
            out += [os.path.join(root, f) for f in sorted(files)
                    if f.endswith(".json") or f.endswith(".json.gz")]
    return out


def plain_template(src: str, work: str) -> str:
    """`tapeout gen kineto` reads plain JSON: decompress a .json.gz template once."""
    if not src.endswith(".gz"):
        return src
    dst = os.path.join(work, "templates", os.path.basename(src)[:-3])
    if not os.path.exists(dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with gzip.open(src, "rb") as fin, open(dst + ".tmp", "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 22)
        os.replace(dst + ".tmp", dst)
    return dst


def build_lake(args, lake: str) -> dict:
    st = BuildState(os.path.join(args.work, "build-state.json"))
    b, traces = args.tapeout, args.traces

    # Requests.
    req_dir = os.path.join(args.work, "requests")
    os.makedirs(req_dir, exist_ok=True)
    azure, mooncake = [os.path.join(traces, p) for p in REAL_AZURE], \
        [os.path.join(traces, p) for p in REAL_MOONCAKE]
    for name, fmt, profile, seed in REQUEST_GEN:
        path = os.path.join(req_dir, name)
        if not os.path.exists(path):  # written atomically: present = complete
            run([b, "gen", "requests", "--format", fmt, "--profile", profile,
                 "--rows", str(args.request_rows), "--seed", str(seed), "--out", path])
        (mooncake if fmt == "mooncake" else azure).append(path)
    step = f"requests:{args.request_rows}"
    if not st.has(step):
        info = {"azure": ingest(b, lake, azure),
                "mooncake": ingest(b, lake, mooncake, ("--time-origin", MOONCAKE_ORIGIN))}
        st.mark(step, info)

    # Real Kineto traces.
    if not st.has("kineto:real"):
        st.mark("kineto:real", ingest(b, lake, real_kineto_traces(traces)))

    # Trace-level replays.
    for workload, template, ranks, copies in KINETO_PLAN:
        copies = max(1, math.ceil(copies * args.kernel_scale))
        step = f"kineto:{workload}:{ranks}x{copies}"
        if st.has(step):
            continue
        out = os.path.join(args.work, "kineto", workload)
        shutil.rmtree(out, ignore_errors=True)
        cmd = [b, "gen", "kineto", "--template", plain_template(os.path.join(traces, template),
                                                                 args.work),
               "--ranks", str(ranks), "--copies", str(copies), "--out", out]
        log(f"$ {shlex.join(cmd)}")
        run(cmd)
        info = ingest(b, lake, [out])
        shutil.rmtree(out)  # the lake holds the rows; the JSON is large
        st.mark(step, {"template": template, "ranks": ranks, "copies": copies, **info})
    return st.done


def snapshot(lake: str) -> dict:
    """Replay LAKE/_manifest (as tapeout does): committed inputs by hash."""
    inputs: dict = {}
    version = 0
    while True:
        path = os.path.join(lake, "_manifest", f"{version + 1:020d}.json")
        if not os.path.exists(path):
            break
        with open(path, encoding="utf-8") as f:
            c = json.load(f)
        for h in c.get("remove", []):
            inputs.pop(h, None)
        for i in c.get("add", []):
            inputs[i["input_hash"]] = i
        version += 1
    return {"version": version, "inputs": inputs}


def table_files(snap: dict) -> dict[str, list[dict]]:
    """Each committed file once (a compacted file is listed by every input owning rows of it)."""
    by_path: dict[str, dict] = {}
    for i in snap["inputs"].values():
        for o in i["outputs"]:
            f = by_path.setdefault(o["path"], dict(o, rows=0))
            f.pop("row_offset", None)
            f["rows"] += o["rows"]
    out: dict[str, list[dict]] = {}
    for f in by_path.values():
        out.setdefault(f["table"], []).append(f)
    for files in out.values():
        files.sort(key=lambda o: o["path"])
    return out


def lake_facts(binary: str, lake: str, snap: dict, files: dict) -> dict:
    def count(table: str) -> int:
        out = run([binary, "sql", "--lake", lake, "--format", "csv", "--quiet",
                   f"select count(*) as n from {table}"]).stdout.splitlines()
        return int(out[1])

    facts = {"version": snap["version"], "inputs": len(snap["inputs"]), "tables": {}}
    for t, fs in sorted(files.items()):
        facts["tables"][t] = {"files": len(fs), "rows": sum(o["rows"] for o in fs),
                              "bytes": sum(o["bytes"] for o in fs)}
    for t in ("requests", "kernels"):  # what tapeout itself sees
        facts["tables"].setdefault(t, {"files": 0, "rows": 0, "bytes": 0})["sql_count"] = count(t)
    return facts


# --------------------------------------------------------------------------------------
# 2. Jobs
# --------------------------------------------------------------------------------------

def load_jobs(pipelines: str) -> list[dict]:
    """Every job file: name, raw SQL, DuckDB SQL (params substituted, rewrites applied)."""
    sql_dir = os.path.join(pipelines, "sql")
    jobs = []
    for fname in sorted(os.listdir(sql_dir)):
        if not fname.endswith(".sql"):
            continue
        with open(os.path.join(sql_dir, fname), encoding="utf-8") as f:
            text = f.read()
        params = {}
        for line in text.splitlines():
            if not line.startswith("--"):
                break  # the header is the leading block of `--` lines
            m = re.match(r"--\s*param:\s*(\w+)\s*=\s*('(?:[^']|'')*'|\S+)", line)
            if m:
                params[m.group(1)] = m.group(2)  # numbers verbatim; strings are SQL literals
        sql = text
        for k, v in params.items():
            sql = sql.replace("${" + k + "}", v)
        if "${" in sql:
            sys.exit(f"{fname}: unresolved parameter in {sql[sql.index('${'):][:40]}")
        body = "\n".join(ln for ln in sql.splitlines() if not ln.lstrip().startswith("--"))
        used = sorted({fn for fn in TAPEOUT_ONLY if re.search(rf"\b{fn}\s*\(", body, re.I)})
        rewrites = []
        for pattern, repl, desc in REWRITES:
            body2 = re.sub(pattern, repl, body, flags=re.I)
            if body2 != body:
                rewrites.append(desc)
                body = body2
        jobs.append({"name": fname[:-4], "params": params, "duckdb_sql": body.strip().rstrip(";"),
                     "tapeout_sql": "\n".join(ln for ln in sql.splitlines()
                                              if not ln.lstrip().startswith("--")).strip(),
                     "excluded": (f"uses tapeout-only {', '.join(used)}" if used else None),
                     "rewrites": rewrites})
    return jobs


def tapeout_mine(args, lake: str, jobs: list[str] | None) -> dict:
    cmd = [args.tapeout, "mine", "--lake", lake, "--pipelines", args.pipelines, "--force", "--json"]
    for j in jobs or ():
        cmd += ["--jobs", j]
    wall, rss, out = timed(cmd, args.work)
    summary = json.loads(out)
    per_job, failed = {}, {}
    for r in summary["jobs"]:
        if r["status"] == "computed":
            per_job[r["job"]] = {"s": r["elapsed_ms"] / 1000, "rows": r["rows"]}
        else:
            failed[r["job"]] = r.get("error", r["status"])
    if failed:
        sys.exit(f"tapeout mine: jobs failed: {failed}")
    return {"wall": wall, "rss_kib": rss, "jobs": per_job, "internal": summary["elapsed_ms"] / 1000,
            "cmd": cmd}


def duckdb_spec(args, files: dict, jobs: list[dict], hw_csv: str, out_dir: str) -> str:
    spec = {
        "threads": args.duckdb_threads,
        "tables": {t: [os.path.join(args.lake, o["path"]) for o in files.get(t, [])]
                   for t in LAKE_TABLES},
        "hardware_csv": hw_csv,
        "out_dir": out_dir,
        "jobs": [{"name": j["name"], "sql": j["duckdb_sql"]} for j in jobs],
    }
    path = os.path.join(args.work, "duckdb_spec.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=1)
    return path


def duckdb_setup(con, spec: dict) -> None:
    """Views over the committed Parquet files, and the hardware table."""
    con.execute(f"SET threads={int(spec['threads'])}")
    con.execute("SET enable_progress_bar=false")
    for t, paths in spec["tables"].items():
        if not paths:
            continue
        hive = HIVE_TYPES.get(t, DEFAULT_HIVE_TYPES)
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet([{', '.join(map(lit, paths))}], "
                    f"hive_partitioning=true, union_by_name=true, hive_types={hive})")
    with open(spec["hardware_csv"], encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    text_cols = {"id", "name", "vendor", "device_pattern"}
    cols = ", ".join(f"{lit(c)}: {lit('VARCHAR' if c in text_cols else 'DOUBLE')}" for c in header)
    con.execute(f"CREATE TABLE hardware AS SELECT * FROM read_csv({lit(spec['hardware_csv'])}, "
                f"header=true, columns={{{cols}}})")


def duckdb_child(spec_path: str) -> None:
    """The measured DuckDB process: setup, then each job COPY'd to Parquet; JSON on stdout."""
    started = time.perf_counter()
    import duckdb

    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    con = duckdb.connect()
    duckdb_setup(con, spec)
    setup = time.perf_counter() - started
    os.makedirs(spec["out_dir"], exist_ok=True)
    jobs = {}
    for j in spec["jobs"]:
        out = os.path.join(spec["out_dir"], j["name"] + ".parquet")
        if os.path.exists(out):
            os.remove(out)
        t0 = time.perf_counter()
        try:
            con.execute(f"COPY (\n{j['sql']}\n) TO {lit(out)} (FORMAT parquet)")
            jobs[j["name"]] = {"s": time.perf_counter() - t0}
        except duckdb.Error as e:  # reported, not fatal: the job leaves the compared subset
            jobs[j["name"]] = {"error": str(e).splitlines()[0][:300]}
    print(json.dumps({"setup_s": setup, "total_s": time.perf_counter() - started, "jobs": jobs}))


def run_duckdb(args, spec_path: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--duckdb-child", spec_path]
    wall, rss, out = timed(cmd, args.work)
    res = json.loads(out.strip().splitlines()[-1])
    return {"wall": wall, "rss_kib": rss, "internal": res["total_s"], "setup": res["setup_s"],
            "jobs": res["jobs"], "cmd": cmd}


# --------------------------------------------------------------------------------------
# 3. Do the results agree?
# --------------------------------------------------------------------------------------

def read_result(path: str):
    """Rows as lists of normalized Python values, column names, and which columns are floats."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    cols, names, is_float = [], [], []
    for name, col in zip(t.column_names, t.columns):
        ty = col.type
        if pa.types.is_binary(ty) or pa.types.is_large_binary(ty):
            continue  # serialized HDR histograms: tapeout-only
        if pa.types.is_timestamp(ty):
            col = col.cast(pa.timestamp("us", tz=ty.tz), safe=False).cast(pa.int64())
        elif pa.types.is_date(ty):
            col = col.cast(pa.int32())
        names.append(name)
        is_float.append(pa.types.is_floating(ty))
        cols.append(col.to_pylist())
    rows = [list(r) for r in zip(*cols)] if cols else [[] for _ in range(t.num_rows)]
    return names, is_float, rows


def _num(v):
    if v is None or isinstance(v, (str, bool)):
        return v
    return float(v)  # ints, Decimals (DuckDB's HUGEINT sums), floats


def compare(t_path: str, d_path: str, rtol: float) -> dict:
    tn, tf, trows = read_result(t_path)
    dn, _df, drows = read_result(d_path)
    res = {"rows_tapeout": len(trows), "rows_duckdb": len(drows), "max_rel_err": 0.0,
           "bad_cells": 0, "example": None, "worst_column": None}
    if tn != dn:
        res["example"] = f"columns differ: tapeout {tn} vs duckdb {dn}"
        res["ok"] = False
        return res
    if len(trows) != len(drows):
        res["ok"] = False
        res["example"] = "row counts differ"
        return res
    keys = [i for i, f in enumerate(tf) if not f]

    def sort_key(r):
        return tuple((0, "") if r[i] is None else (1, str(r[i])) if isinstance(r[i], str)
                     else (1, _num(r[i])) for i in keys)

    trows.sort(key=sort_key)
    drows.sort(key=sort_key)
    worst = {}
    for tr, dr in zip(trows, drows):
        for i, (a, b) in enumerate(zip(tr, dr)):
            a, b = _num(a), _num(b)
            if a == b:
                continue
            if a is None or b is None or isinstance(a, str) or isinstance(b, str) \
                    or isinstance(a, bool) or isinstance(b, bool):
                err = math.inf
            elif math.isnan(a) and math.isnan(b):
                continue
            else:
                err = abs(a - b) / max(abs(a), abs(b))
            if err > worst.get(tn[i], 0.0):
                worst[tn[i]] = err
            if err > rtol:
                res["bad_cells"] += 1
                if res["example"] is None:
                    res["example"] = f"{tn[i]}: tapeout {tr[i]!r} vs duckdb {dr[i]!r}"
    if worst:
        col = max(worst, key=worst.get)
        res["max_rel_err"], res["worst_column"] = worst[col], col
    res["ok"] = res["bad_cells"] == 0
    return res


# --------------------------------------------------------------------------------------
# 4. EXPLAIN ANALYZE of the slowest job
# --------------------------------------------------------------------------------------

_DUR = re.compile(r"elapsed_compute=([0-9.]+)(ns|µs|us|ms|s)\b")
_UNIT = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def explain(args, lake: str, job: dict) -> dict:
    out = run([args.tapeout, "sql", "--lake", lake, "--pipelines", args.pipelines, "--quiet",
               "explain analyze " + job["tapeout_sql"]]).stdout
    path = os.path.join(args.work, f"explain_{job['name']}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(out)
    ops = []
    for line in out.splitlines():
        m = _DUR.search(line)
        op = re.search(r"([A-Za-z]+Exec)\b", line)
        if m and op:
            rows = re.search(r"output_rows=(\d+)", line)
            ops.append({"op": op.group(1), "s": float(m.group(1)) * _UNIT[m.group(2)],
                        "rows": int(rows.group(1)) if rows else None,
                        "line": line.strip().strip("|").strip()[:200]})
    ops.sort(key=lambda o: -o["s"])
    # DuckDB's profile of the same job, for the write-up.
    import duckdb

    with open(os.path.join(args.work, "duckdb_spec.json"), encoding="utf-8") as f:
        spec = json.load(f)
    con = duckdb.connect()
    duckdb_setup(con, spec)
    d_plan = "\n".join(r[-1] for r in con.execute("EXPLAIN ANALYZE " + job["duckdb_sql"]).fetchall())
    d_path = os.path.join(args.work, f"explain_{job['name']}_duckdb.txt")
    with open(d_path, "w", encoding="utf-8") as f:
        f.write(d_plan)
    return {"job": job["name"], "path": path, "duckdb_path": d_path, "top": ops[:6]}


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------

def machine_facts(binary: str) -> dict:
    import duckdb
    import pyarrow

    return {**host_facts(binary), "duckdb": duckdb.__version__, "pyarrow": pyarrow.__version__}


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def markdown(args, facts, machine, jobs, compared, t_runs, d_runs, f_runs, checks, expl) -> str:
    mib = lambda kib: kib / 1024  # noqa: E731
    walls = lambda runs: ", ".join(f"{r['wall']:.2f}" for r in runs)  # noqa: E731
    tab = facts["tables"]
    t_job = {j: med([r["jobs"][j]["s"] for r in t_runs]) for j in compared}
    d_job = {j: med([r["jobs"][j]["s"] for r in d_runs]) for j in compared}
    f_job = {j["name"]: med([r["jobs"][j["name"]]["s"] for r in f_runs]) for j in jobs} if f_runs else {}
    t_sum, d_sum = sum(t_job.values()), sum(d_job.values())
    t_wall, d_wall = med([r["wall"] for r in t_runs]), med([r["wall"] for r in d_runs])
    ratio = t_sum / d_sum
    lines = [
        f"Lake (`{args.lake}`, manifest version {facts['version']}, {facts['inputs']} inputs): "
        f"**{tab['requests']['rows']:,} requests** ({tab['requests']['files']} files, "
        f"{tab['requests']['bytes'] / 1e6:.0f} MB), **{tab['kernels']['rows']:,} kernels** "
        f"({tab['kernels']['files']} files, {tab['kernels']['bytes'] / 1e6:.0f} MB), "
        + ", ".join(f"{tab[t]['rows']:,} {t}" for t in ("ops", "devices", "collectives", "traces")
                    if t in tab) + ".",
        "",
        f"Machine: {machine['cpu']}, {machine['nproc']} CPUs, {machine['mem_gib']:.1f} GiB RAM, "
        f"Linux {machine['kernel']}. {machine['tapeout']} (`{args.tapeout}`); DuckDB "
        f"{machine['duckdb']} (Python {machine['python']}, `SET threads={args.duckdb_threads}`, "
        f"otherwise defaults), pyarrow {machine['pyarrow']}. {args.repeat} run(s) each, alternating, "
        f"warm page cache; wall and max RSS from `/usr/bin/time -v` (median wall, highest RSS); "
        f"per-job times are medians over the runs.",
        "",
        f"Compared: {len(compared)} of {len(jobs)} jobs (the portable subset).",
        "",
        "| | tapeout mine | DuckDB | tapeout / DuckDB |",
        "|---|---:|---:|---:|",
        f"| **sum of per-job times, compared jobs (s)** | {t_sum:.2f} | {d_sum:.2f} | **{ratio:.2f}x** |",
        f"| process wall, compared jobs, median (s) | {t_wall:.2f} | {d_wall:.2f} "
        f"| {t_wall / d_wall:.2f}x |",
        f"| process wall, each run (s) | {walls(t_runs)} | {walls(d_runs)} | |",
        f"| max RSS, compared jobs (MiB) | {mib(max(r['rss_kib'] for r in t_runs)):.0f} "
        f"| {mib(max(r['rss_kib'] for r in d_runs)):.0f} "
        f"| {max(r['rss_kib'] for r in t_runs) / max(r['rss_kib'] for r in d_runs):.2f}x |",
    ]
    if f_runs:
        lines += [
            f"| full suite ({len(jobs)} jobs): process wall, median (s) | "
            f"{med([r['wall'] for r in f_runs]):.2f} | | |",
            f"| full suite: max RSS (MiB) | {mib(max(r['rss_kib'] for r in f_runs)):.0f} | | |",
        ]
    lines += [
        "",
        "| job | result rows | tapeout (s) | DuckDB (s) | tapeout / DuckDB | results agree |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for j in jobs:
        name = j["name"]
        last = (f_runs or t_runs)[-1]["jobs"]
        rows_n = last[name]["rows"] if name in last else None
        rows = "—" if rows_n is None else f"{rows_n:,}"
        if name in compared:
            c = checks[name]
            agree = ("yes" if c["ok"] else f"**no**: {c['bad_cells']} cells, {c['example']}")
            if c["ok"] and c["max_rel_err"] > 0:
                agree += f" (max rel. err {c['max_rel_err']:.1e}, {c['worst_column']})"
            if j["rewrites"]:
                agree += "; rewritten: " + ", ".join(d.split(" (")[0] for d in j["rewrites"])
            lines.append(f"| `{name}` | {rows} | {t_job[name]:.3f} | {d_job[name]:.3f} "
                         f"| {t_job[name] / d_job[name]:.2f}x | {agree} |")
        else:
            why = j["excluded"] or "DuckDB error"
            t = f"{f_job[name]:.3f} (full-suite run)" if name in f_job else "not timed"
            lines.append(f"| `{name}` | {rows} | {t} | — | — | not compared: {why} |")
    lines.append(f"| **total, compared jobs** | | **{t_sum:.2f}** | **{d_sum:.2f}** "
                 f"| **{ratio:.2f}x** | |")
    lines += [
        "",
        f"Target: tapeout total ≤ {TARGET_RATIO}× DuckDB's (aim ≤ 1.0×). "
        + (f"**Met: {ratio:.2f}×.**" if ratio <= TARGET_RATIO else f"**Not met: {ratio:.2f}×.**"),
    ]
    lines += ["", "Commands (each under `/usr/bin/time -v`):", "",
              f"    {shlex.join(t_runs[-1]['cmd'])}",
              f"    {shlex.join(d_runs[-1]['cmd'])}   # DuckDB: views + COPY (job SQL) TO parquet, per job",
              *([f"    {shlex.join(f_runs[-1]['cmd'])}"] if f_runs else [])]
    if expl:
        lines += ["", f"Largest excess over DuckDB: `{expl['job']}`. Most expensive operators in "
                  f"`tapeout sql \"explain analyze …\"` (elapsed_compute; full plan in "
                  f"`{expl['path']}`, DuckDB's profile in `{expl['duckdb_path']}`):", ""]
        for o in expl["top"]:
            rows = f", {o['rows']:,} rows" if o["rows"] is not None else ""
            lines.append(f"- {o['op']}: {o['s']:.3f} s{rows}")
    return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--duckdb-child":
        duckdb_child(sys.argv[2])
        return 0

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tapeout", default="/work/target-bench/bench-fast/tapeout",
                    help="tapeout binary (default: %(default)s)")
    ap.add_argument("--work", default="/work/bench-mine", help="work dir (default: %(default)s)")
    ap.add_argument("--traces", default="/work/shared/traces",
                    help="the shared traces (default: %(default)s)")
    ap.add_argument("--pipelines", default=os.path.join(REPO, "pipelines"),
                    help="pipelines folder for both tools (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool (default: %(default)s)")
    ap.add_argument("--request-rows", type=int, default=2_500_000,
                    help="rows per generated request file (4 files; default: %(default)s)")
    ap.add_argument("--kernel-scale", type=float, default=1.0,
                    help="multiply the copies of every Kineto replay (default: %(default)s)")
    ap.add_argument("--min-requests", type=int, default=10_000_000)
    ap.add_argument("--min-kernels", type=int, default=5_000_000)
    ap.add_argument("--duckdb-threads", type=int, default=2)
    ap.add_argument("--rtol", type=float, default=1e-9,
                    help="relative tolerance for float cells (default: %(default)s)")
    ap.add_argument("--no-explain", action="store_true", help="skip the EXPLAIN ANALYZE step")
    ap.add_argument("--no-full-suite", action="store_true",
                    help="skip the timed full-suite runs (the jobs DuckDB cannot run are then not timed)")
    ap.add_argument("--build-only", action="store_true",
                    help="build (or extend) the lake, print its facts and stop (no timed runs)")
    ap.add_argument("--out", help="also write the Markdown to this file")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if not os.access(args.tapeout, os.X_OK):
        ap.error(f"no executable tapeout at {args.tapeout}")
    args.work = os.path.abspath(args.work)
    args.lake = os.path.join(args.work, "lake")
    os.makedirs(args.work, exist_ok=True)

    # 1. Lake.
    build = build_lake(args, args.lake)
    snap = snapshot(args.lake)
    files = table_files(snap)
    facts = lake_facts(args.tapeout, args.lake, snap, files)
    facts["build"] = build
    for t, need in (("requests", args.min_requests), ("kernels", args.min_kernels)):
        n = facts["tables"][t]
        if n["rows"] != n["sql_count"]:
            sys.exit(f"{t}: manifest says {n['rows']:,} rows, tapeout sql {n['sql_count']:,}")
        if n["rows"] < need:
            sys.exit(f"{t}: {n['rows']:,} rows, below {need:,} (raise --request-rows / "
                     f"--kernel-scale; the lake is reused and extended)")
    log(f"lake: {json.dumps(facts['tables'])}")
    if args.build_only:
        return 0

    # 2. Jobs and timed runs.
    jobs = load_jobs(args.pipelines)
    hw_csv = os.path.join(args.work, "hardware.csv")
    with open(hw_csv, "w", encoding="utf-8") as f:
        f.write(run([args.tapeout, "sql", "--lake", args.lake, "--pipelines", args.pipelines,
                     "--format", "csv", "--quiet", "select * from hardware"]).stdout)
    d_out = os.path.join(args.work, "duckdb_results")
    candidates = [j for j in jobs if not j["excluded"]]
    spec = duckdb_spec(args, files, candidates, hw_csv, d_out)

    # A first DuckDB pass (untimed) finds jobs it cannot run.
    probe = run_duckdb(args, spec)
    for j in candidates:
        err = probe["jobs"][j["name"]].get("error")
        if err:
            j["excluded"] = f"DuckDB error: {err}"
            log(f"excluded {j['name']}: {j['excluded']}")
    compared = [j["name"] for j in jobs if not j["excluded"]]
    spec = duckdb_spec(args, files, [j for j in jobs if not j["excluded"]], hw_csv, d_out)

    t_runs, d_runs, f_runs = [], [], []
    for i in range(args.repeat):  # alternate, so drift hits both
        order = ("t", "d") if i % 2 == 0 else ("d", "t")
        for who in order:
            if who == "t":
                t_runs.append(tapeout_mine(args, args.lake, compared))
                log(f"run {i + 1}: tapeout {t_runs[-1]['wall']:.2f} s, "
                    f"{t_runs[-1]['rss_kib'] / 1024:.0f} MiB")
            else:
                d_runs.append(run_duckdb(args, spec))
                log(f"run {i + 1}: duckdb  {d_runs[-1]['wall']:.2f} s, "
                    f"{d_runs[-1]['rss_kib'] / 1024:.0f} MiB")
        if args.no_full_suite:
            continue
        f_runs.append(tapeout_mine(args, args.lake, None))
        log(f"run {i + 1}: tapeout full suite {f_runs[-1]['wall']:.2f} s, "
            f"{f_runs[-1]['rss_kib'] / 1024:.0f} MiB")

    # 3. Results.
    checks = {}
    for name in compared:
        with open(os.path.join(args.lake, "_mined", name, "latest.json"), encoding="utf-8") as f:
            latest = json.load(f)
        checks[name] = compare(os.path.join(args.lake, "_mined", name, latest["file"]),
                               os.path.join(d_out, name + ".parquet"), args.rtol)
        log(f"check {name}: {checks[name]}")

    # 4. The job with the largest excess of tapeout over DuckDB.
    expl = None
    if not args.no_explain:
        excess = {n: med([r["jobs"][n]["s"] for r in t_runs]) - med([r["jobs"][n]["s"] for r in d_runs])
                  for n in compared}
        worst = max(excess, key=excess.get)
        if excess[worst] > 0:
            expl = explain(args, args.lake, next(j for j in jobs if j["name"] == worst))

    machine = machine_facts(args.tapeout)
    table = markdown(args, facts, machine, jobs, compared, t_runs, d_runs, f_runs, checks, expl)
    with open(os.path.join(args.work, "mine_vs_duckdb.json"), "w", encoding="utf-8") as f:
        json.dump({"facts": facts, "machine": machine, "compared": compared,
                   "excluded": {j["name"]: j["excluded"] for j in jobs if j["excluded"]},
                   "rewrites": {j["name"]: j["rewrites"] for j in jobs if j["rewrites"]},
                   "tapeout_runs": t_runs, "duckdb_runs": d_runs, "full_runs": f_runs,
                   "checks": checks, "explain": expl}, f, indent=1)
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
