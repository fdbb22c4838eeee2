#!/usr/bin/env python3
"""Benchmark `tapeout ingest` of a day of fleet telemetry against DuckDB (docs/performance.md).

The job: a fleet of 256 GPUs (32 hosts × 8), 10 DCGM fields scraped every 15 s for 24 h —
256 × 10 × 5,760 = 14,745,600 samples — as dcgm-exporter scrapes (Prometheus text, one
zstd-compressed file per host, `tapeout gen telemetry`), into the lake's `device_samples`.

Steps
  1. Generate the fleet with `tapeout gen telemetry` (reused when present).
  2. Run `tapeout ingest --lake WORK/lake --json FLEET` under `/usr/bin/time -v` (wall time,
     max RSS); the lake is deleted before each run. The target: within 300 MiB RSS.
  3. Export the same samples as a CSV (time, host, gpu, metric, value) with `tapeout sql`
     (not timed), and run DuckDB loading that CSV into a zstd Parquet file sorted by time
     (`SET threads=2`) in a child process under `/usr/bin/time -v`.
  4. Alternate the two --repeat times; report medians, peak RSS, row counts and machine facts.

Usage:
    pip install duckdb
    python3 benches/telemetry_vs_duckdb.py [--tapeout BIN] [--hosts 32] [--gpus 8]
                                           [--repeat 3] [--work DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from benchlib import host_facts, timed

FIELDS = ",".join([
    "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE",
])

DUCKDB_COPY = """
COPY (
    SELECT CAST(time AS TIMESTAMP) AS time, host, gpu, metric, value
    FROM read_csv({csv}, header=true,
                  columns={{'time':'VARCHAR','host':'VARCHAR','gpu':'INTEGER','metric':'VARCHAR','value':'DOUBLE'}})
    ORDER BY time
) TO {out} (FORMAT parquet, COMPRESSION zstd)
"""


def lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def generate(binary: str, fleet: str, hosts: int, gpus: int) -> None:
    if os.path.isdir(fleet) and len(os.listdir(fleet)) == hosts:
        return
    shutil.rmtree(fleet, ignore_errors=True)
    subprocess.run([binary, "gen", "telemetry", "-q", "--hosts", str(hosts), "--gpus", str(gpus),
                    "--interval", "15", "--duration", "86400", "--fields", FIELDS,
                    "--workloads", "conversation:96,code:64,train_2rank:64,inference_1rank:16",
                    "--compression", "zst", "--out", fleet], check=True)


def run_tapeout(binary: str, fleet: str, lake: str, work: str) -> dict:
    shutil.rmtree(lake, ignore_errors=True)
    wall, rss, out = timed([binary, "ingest", "--lake", lake, "--json", fleet], work)
    s = json.loads(out)
    if s.get("quarantined") or s.get("rejected"):
        sys.exit(f"tapeout quarantined/rejected input: {s}")
    return {"wall": wall, "rss_kib": rss, "rows": s["rows"]}


def export_csv(binary: str, lake: str, csv: str) -> int:
    if not os.path.exists(csv):
        with open(csv, "w", encoding="utf-8") as f:
            subprocess.run([binary, "sql", "--lake", lake, "--format", "csv",
                            "select time, host, device as gpu, metric, value from device_samples"],
                           stdout=f, check=True)
    with open(csv, "rb") as f:
        return sum(1 for _ in f) - 1


def run_duckdb(csv: str, out: str, work: str) -> dict:
    if os.path.exists(out):
        os.remove(out)
    wall, rss, stdout = timed([sys.executable, os.path.abspath(__file__), "--duckdb-child", csv, out], work)
    return {"wall": wall, "rss_kib": rss, "rows": int(stdout.strip().splitlines()[-1])}


def duckdb_child(csv: str, out: str) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads=2")
    con.execute(DUCKDB_COPY.format(csv=lit(csv), out=lit(out)))
    print(con.execute(f"select count(*) from read_parquet({lit(out)})").fetchone()[0])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--duckdb-child":
        duckdb_child(sys.argv[2], sys.argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tapeout", default="/work/target-bench/bench-fast/tapeout")
    ap.add_argument("--hosts", type=int, default=32)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", default="/tmp/tapeout-telemetry-bench")
    ap.add_argument("--out", help="also write the Markdown table to this file")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    fleet = os.path.join(a.work, "fleet")
    generate(a.tapeout, fleet, a.hosts, a.gpus)
    fleet_bytes = sum(os.path.getsize(os.path.join(fleet, f)) for f in os.listdir(fleet))
    lake = os.path.join(a.work, "lake")
    csv = os.path.join(a.work, "export.csv")
    parquet = os.path.join(a.work, "duckdb.parquet")
    t_runs, d_runs = [], []
    for i in range(a.repeat):
        t_runs.append(run_tapeout(a.tapeout, fleet, lake, a.work))
        if i == 0:
            csv_rows = export_csv(a.tapeout, lake, csv)
        d_runs.append(run_duckdb(csv, parquet, a.work))
        print(f"run {i + 1}: tapeout {t_runs[-1]}  duckdb {d_runs[-1]}", file=sys.stderr)
    tw = statistics.median(r["wall"] for r in t_runs)
    dw = statistics.median(r["wall"] for r in d_runs)
    trss = max(r["rss_kib"] for r in t_runs) / 1024
    drss = max(r["rss_kib"] for r in d_runs) / 1024
    facts = host_facts(a.tapeout)
    samples = t_runs[0]["rows"]
    lines = [
        f"Input: {a.hosts * a.gpus} GPUs ({a.hosts} hosts × {a.gpus}), 10 DCGM fields, 15 s scrapes, 24 h: "
        f"{samples:,} samples in {a.hosts} zstd dcgm-exporter scrape files, {fleet_bytes / 2**20:.1f} MiB; "
        f"DuckDB's input: the same samples as a CSV of {csv_rows:,} rows, {os.path.getsize(csv) / 2**20:.0f} MiB.",
        "",
        "| tool | job | wall (median of {}) | peak RSS | rows out |".format(a.repeat),
        "|---|---|---:|---:|---:|",
        f"| tapeout ingest | scrapes (zstd) → `device_samples` (parse, map, partition by day, sort, zstd Parquet) "
        f"| {tw:.2f} s | {trss:.0f} MiB | {samples:,} |",
        f"| DuckDB 2 (`threads=2`) | CSV export → one zstd Parquet file sorted by time | {dw:.2f} s | {drss:.0f} MiB "
        f"| {d_runs[0]['rows']:,} |",
        "",
        f"tapeout/DuckDB wall {tw / dw:.2f}×; tapeout's peak RSS {'within' if trss <= 300 else 'OVER'} the 300 MiB "
        f"target. Machine: {facts['cpu']}, {facts['nproc']} cores, {facts['mem_gib']:.0f} GiB, "
        f"kernel {facts['kernel']}; {facts['tapeout']}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
