#!/usr/bin/env python3
"""Benchmark `tapeout ingest` against DuckDB doing the same job (for docs/performance.md).

The job: turn a large Azure-LLM-2023-format CSV into a zstd Parquet dataset
partitioned by date, rows sorted by arrival time.

Steps
  1. Generate a ~10M-row CSV by replaying the real 2023 traces (code + conv,
     merged by time) back to back; each replay is shifted forward by the trace's
     span + 1 s, so timestamps keep increasing and cover several days. The file
     is reused when one with the same row count already exists.
  2. Run `tapeout ingest --lake WORK/lake_tapeout --json CSV` under
     `/usr/bin/time -v` (wall time, max RSS); the lake is deleted before each run.
  3. Run the equivalent DuckDB `COPY ... TO ... (FORMAT parquet, COMPRESSION zstd,
     PARTITION_BY (date))` with `SET threads=2`, in a child Python process under
     `/usr/bin/time -v` so its RSS is measured the same way.
  4. Alternate the two --repeat times; report median wall, peak RSS, the
     tapeout/DuckDB ratios, row counts of both outputs (read back with DuckDB, to
     show both did the same work) and machine facts, as a Markdown table.

Usage:
    pip install duckdb
    python3 benches/ingest_vs_duckdb.py [--tapeout BIN] [--rows N] [--repeat R]
                                        [--work DIR] [--out FILE]

Only dependency beyond the standard library: duckdb (2.x).
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

from benchlib import host_facts, timed

TICKS_PER_SEC = 10_000_000  # the Azure CSVs carry 7 fraction digits: 100 ns ticks
HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
DEFAULT_TRACES = "/work/shared/traces/azure_llm_2023"
TRACE_FILES = ("AzureLLMInferenceTrace_code.csv", "AzureLLMInferenceTrace_conv.csv")

# The DuckDB side of the job; {csv} and {out} are filled in as SQL string literals.
DUCKDB_COPY = """
COPY (
    SELECT CAST(TIMESTAMP AS TIMESTAMP) AS arrival_time,
           ContextTokens AS input_tokens,
           GeneratedTokens AS output_tokens,
           CAST(CAST(TIMESTAMP AS TIMESTAMP) AS DATE) AS date
    FROM read_csv({csv}, header=true,
                  columns={{'TIMESTAMP':'VARCHAR','ContextTokens':'BIGINT','GeneratedTokens':'BIGINT'}})
    ORDER BY arrival_time
) TO {out} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date))
"""


def lit(s: str) -> str:
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


# --------------------------------------------------------------------------------------
# 1. Input generation
# --------------------------------------------------------------------------------------

def parse_ticks(ts: str) -> int:
    """'2023-11-16 18:17:03.9799600' -> 100 ns ticks since the Unix epoch (UTC)."""
    whole, _, frac = ts.partition(".")
    secs = calendar.timegm(time.strptime(whole, "%Y-%m-%d %H:%M:%S"))
    return secs * TICKS_PER_SEC + int((frac + "0000000")[:7])


def load_base_trace(traces_dir: str) -> list[tuple[int, str]]:
    """Rows of both 2023 traces as (ticks, 'ContextTokens,GeneratedTokens'), merged by time."""
    rows: list[tuple[int, str]] = []
    for name in TRACE_FILES:
        with open(os.path.join(traces_dir, name), encoding="utf-8") as f:
            if f.readline().strip() != HEADER.strip():
                sys.exit(f"unexpected header in {name}")
            for line in f:
                line = line.strip()
                if line:
                    ts, _, rest = line.partition(",")
                    rows.append((parse_ticks(ts), rest))
    rows.sort(key=lambda r: r[0])  # stable: ties keep file order
    return rows


def replay_shift(base: list[tuple[int, str]]) -> int:
    """Shift between consecutive replays: the trace's span + 1 s."""
    return base[-1][0] - base[0][0] + TICKS_PER_SEC


def format_ticks(t: int, date_cache: dict[int, str]) -> str:
    secs, frac = divmod(t, TICKS_PER_SEC)
    days, sod = divmod(secs, 86400)
    date = date_cache.get(days)
    if date is None:
        date = date_cache[days] = datetime.fromtimestamp(days * 86400, timezone.utc).strftime("%Y-%m-%d")
    h, rem = divmod(sod, 3600)
    m, s = divmod(rem, 60)
    return f"{date} {h:02d}:{m:02d}:{s:02d}.{frac:07d}"


def count_lines(path: str) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += chunk.count(b"\n")
    return n


def generate_csv(path: str, rows: int, base: list[tuple[int, str]]) -> None:
    """Write `rows` data rows (plus header), replaying `base` as often as needed."""
    # Reuse: every line (header included) ends in '\n', so lines == rows + 1.
    if os.path.exists(path) and count_lines(path) == rows + 1:
        print(f"reusing {path} ({rows:,} rows)", file=sys.stderr)
        return
    print(f"generating {path} ({rows:,} rows) ...", file=sys.stderr)
    started = time.perf_counter()
    shift, n, cache = replay_shift(base), len(base), {}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(HEADER)
        written, replay = 0, 0
        while written < rows:
            offset = replay * shift
            take = min(n, rows - written)
            f.writelines(f"{format_ticks(t + offset, cache)},{rest}\n" for t, rest in base[:take])
            written += take
            replay += 1
    os.replace(tmp, path)  # only a complete file ever carries the final name
    print(f"generated in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def input_facts(path: str, rows: int, base: list[tuple[int, str]]) -> dict:
    """Time range and replay count of the generated file (derived, not re-read)."""
    n, shift, cache = len(base), replay_shift(base), {}
    last_replay, last_idx = divmod(rows - 1, n)
    return {
        "rows": rows,
        "bytes": os.path.getsize(path),
        "replays": -(-rows // n),
        "base_rows": n,
        "first": format_ticks(base[0][0], cache),
        "last": format_ticks(base[last_idx][0] + last_replay * shift, cache),
    }


# --------------------------------------------------------------------------------------
# 2./3. Timed runs
# --------------------------------------------------------------------------------------

def run_tapeout(binary: str, csv: str, lake: str, work: str) -> dict:
    shutil.rmtree(lake, ignore_errors=True)
    wall, rss, out = timed([binary, "ingest", "--lake", lake, "--json", csv], work)
    summary = json.loads(out)
    if summary.get("quarantined") or summary.get("rejected"):
        sys.exit(f"tapeout quarantined/rejected input, runs are not comparable: {summary}")
    return {"wall": wall, "rss_kib": rss, "internal": float(summary["seconds"])}


def run_duckdb(csv: str, out_dir: str, work: str) -> dict:
    shutil.rmtree(out_dir, ignore_errors=True)
    # A fresh interpreter running this file in --duckdb-child mode (see duckdb_child()).
    wall, rss, out = timed([sys.executable, os.path.abspath(__file__),
                            "--duckdb-child", csv, out_dir], work)
    return {"wall": wall, "rss_kib": rss, "internal": float(out.strip().splitlines()[-1])}


def duckdb_child(csv: str, out_dir: str) -> None:
    """The measured DuckDB process: import, connect, COPY; prints its in-process COPY seconds."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads=2")
    started = time.perf_counter()
    con.execute(DUCKDB_COPY.format(csv=lit(csv), out=lit(out_dir)))
    print(f"{time.perf_counter() - started:.6f}")


# --------------------------------------------------------------------------------------
# 4. Verification, machine facts, report
# --------------------------------------------------------------------------------------

def output_facts(glob_pattern: str) -> dict:
    """Rows, token sums, date count and on-disk size of a Parquet output, read with DuckDB."""
    import duckdb

    con = duckdb.connect()
    rows, tin, tout, dates = con.sql(
        f"SELECT count(*), sum(input_tokens), sum(output_tokens), "
        f"count(DISTINCT CAST(arrival_time AS DATE)) "
        f"FROM read_parquet({lit(glob_pattern)}, hive_partitioning=true)").fetchall()[0]
    files = [f for f, in con.sql(f"SELECT file FROM glob({lit(glob_pattern)})").fetchall()]
    return {"rows": int(rows), "input_tokens": int(tin), "output_tokens": int(tout),
            "dates": int(dates), "files": len(files),
            "bytes": sum(os.path.getsize(f) for f in files)}


def machine_facts(binary: str) -> dict:
    import duckdb

    return {**host_facts(binary), "duckdb": duckdb.__version__}


def summarize(runs: list[dict]) -> dict:
    return {
        "wall": statistics.median(r["wall"] for r in runs),
        "walls": [r["wall"] for r in runs],
        "internal": statistics.median(r["internal"] for r in runs),
        "rss_mib": max(r["rss_kib"] for r in runs) / 1024,
    }


def markdown(inp: dict, machine: dict, t: dict, d: dict, t_out: dict, d_out: dict,
             repeat: int, binary: str) -> str:
    mb = lambda b: b / 1e6  # noqa: E731
    walls = lambda s: ", ".join(f"{w:.2f}" for w in s["walls"])  # noqa: E731
    lines = [
        f"Input: {inp['rows']:,}-row Azure LLM 2023 CSV ({mb(inp['bytes']):.0f} MB): the real "
        f"code + conv traces ({inp['base_rows']:,} rows) replayed {inp['replays']}x, "
        f"{inp['first']} to {inp['last']}.",
        "",
        f"Machine: {machine['cpu']}, {machine['nproc']} CPUs, {machine['mem_gib']:.1f} GiB RAM, "
        f"Linux {machine['kernel']}. {machine['tapeout']} (`{binary}`); DuckDB "
        f"{machine['duckdb']} (Python, `SET threads=2`). {repeat} run(s) each, alternating, "
        f"warm page cache; wall and max RSS from `/usr/bin/time -v` (median wall, highest RSS).",
        "",
        "| | tapeout ingest | DuckDB COPY | tapeout / DuckDB |",
        "|---|---:|---:|---:|",
        f"| wall, median (s) | {t['wall']:.2f} | {d['wall']:.2f} | {t['wall'] / d['wall']:.2f}x |",
        f"| wall, each run (s) | {walls(t)} | {walls(d)} | |",
        f"| in-process time, median (s) | {t['internal']:.2f} | {d['internal']:.2f} "
        f"| {t['internal'] / d['internal']:.2f}x |",
        f"| max RSS (MiB) | {t['rss_mib']:.0f} | {d['rss_mib']:.0f} "
        f"| {t['rss_mib'] / d['rss_mib']:.2f}x |",
        f"| rows written | {t_out['rows']:,} | {d_out['rows']:,} | |",
        f"| date partitions / files | {t_out['dates']} / {t_out['files']} "
        f"| {d_out['dates']} / {d_out['files']} | |",
        f"| Parquet size (MB) | {mb(t_out['bytes']):.1f} | {mb(d_out['bytes']):.1f} "
        f"| {t_out['bytes'] / d_out['bytes']:.2f}x |",
        "",
        "In-process time: tapeout's own `seconds` (JSON summary) vs. the DuckDB `COPY` alone "
        "(excludes interpreter start-up and `import duckdb`). tapeout also validates each row, "
        "writes the full request schema (workload, file, line, ...) and commits a manifest.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--duckdb-child":
        duckdb_child(sys.argv[2], sys.argv[3])
        return 0

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tapeout", default="/work/target-bench/bench-fast/tapeout",
                    help="tapeout binary (default: %(default)s)")
    ap.add_argument("--rows", type=int, default=10_000_000, help="CSV rows (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool (default: %(default)s)")
    ap.add_argument("--work", default="/tmp/tapeout-bench", help="work dir (default: %(default)s)")
    ap.add_argument("--traces", default=DEFAULT_TRACES,
                    help="directory with the Azure 2023 CSVs (default: %(default)s)")
    ap.add_argument("--out", help="also write the Markdown table to this file")
    args = ap.parse_args()
    if args.rows < 1 or args.repeat < 1:
        ap.error("--rows and --repeat must be at least 1")
    if not os.access(args.tapeout, os.X_OK):
        ap.error(f"no executable tapeout at {args.tapeout}")

    os.makedirs(args.work, exist_ok=True)
    base = load_base_trace(args.traces)
    csv = os.path.join(args.work, f"azure2023_replay_{args.rows}.csv")
    generate_csv(csv, args.rows, base)
    inp = input_facts(csv, args.rows, base)

    lake_t = os.path.join(args.work, "lake_tapeout")
    lake_d = os.path.join(args.work, "lake_duckdb")
    t_runs, d_runs = [], []
    for i in range(args.repeat):  # alternate, so drift (thermal, noisy neighbours) hits both
        t_runs.append(run_tapeout(args.tapeout, csv, lake_t, args.work))
        print(f"run {i + 1}: tapeout {t_runs[-1]['wall']:.2f} s, "
              f"{t_runs[-1]['rss_kib'] / 1024:.0f} MiB", file=sys.stderr)
        d_runs.append(run_duckdb(csv, lake_d, args.work))
        print(f"run {i + 1}: duckdb  {d_runs[-1]['wall']:.2f} s, "
              f"{d_runs[-1]['rss_kib'] / 1024:.0f} MiB", file=sys.stderr)

    # Both outputs of the last runs, read back with DuckDB: same rows, same tokens.
    t_out = output_facts(os.path.join(lake_t, "requests", "**", "*.parquet"))
    d_out = output_facts(os.path.join(lake_d, "**", "*.parquet"))
    for k in ("rows", "input_tokens", "output_tokens", "dates"):
        if t_out[k] != d_out[k] or (k == "rows" and t_out[k] != args.rows):
            sys.exit(f"outputs differ on {k}: tapeout {t_out[k]}, duckdb {d_out[k]} "
                     f"(input {args.rows} rows)")

    table = markdown(inp, machine_facts(args.tapeout), summarize(t_runs), summarize(d_runs),
                     t_out, d_out, args.repeat, args.tapeout)
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
