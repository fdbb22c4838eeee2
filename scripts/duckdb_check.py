#!/usr/bin/env python3
"""Cross-check a tapeout lake against an independent reader (DuckDB).

Reads the lake's Parquet files with DuckDB exactly as a user would (a plain
glob with hive partitioning, no manifest), computes per (source, workload)
count(*), sum(input_tokens), sum(output_tokens), plus the total number of
quarantined rows, and asserts that `tapeout sql` reports the very same figures.

Usage:
    pip install duckdb
    python3 scripts/duckdb_check.py --tapeout target/debug/tapeout --lake LAKE_DIR

Exit status: 0 if every figure agrees, 1 on any mismatch (or if a query fails).
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import os
import subprocess
import sys

import duckdb

# Per-group figures compared, in this order; the SQL is shared by both engines.
FIGURES = ("rows", "input_tokens", "output_tokens")
GROUP_SQL = (
    "SELECT source, workload, count(*) AS rows, "
    "sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens "
    "FROM {table} GROUP BY source, workload"
)
QUARANTINE_SQL = "SELECT count(*) AS rows FROM {table}"


def has_parquet(pattern: str) -> bool:
    return bool(glob.glob(pattern, recursive=True))


def sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def key(source, workload) -> tuple[str, str]:
    # NULL prints as an empty field in tapeout's CSV; normalise DuckDB's None the same way.
    return ("" if source is None else str(source), "" if workload is None else str(workload))


def duckdb_figures(lake: str) -> tuple[dict, int]:
    """Groups and quarantine total as DuckDB sees the files on disk."""
    con = duckdb.connect()
    groups: dict[tuple[str, str], tuple[int, ...]] = {}
    req_glob = os.path.join(lake, "requests", "**", "*.parquet")
    if has_parquet(req_glob):
        table = f"read_parquet({sql_literal(req_glob)}, hive_partitioning=true)"
        for src, wl, *vals in con.sql(GROUP_SQL.format(table=table)).fetchall():
            groups[key(src, wl)] = tuple(int(v) for v in vals)
    quarantined = 0
    q_glob = os.path.join(lake, "_quarantine", "**", "*.parquet")
    if has_parquet(q_glob):
        table = f"read_parquet({sql_literal(q_glob)}, hive_partitioning=true)"
        quarantined = int(con.sql(QUARANTINE_SQL.format(table=table)).fetchall()[0][0])
    return groups, quarantined


def tapeout_csv(binary: str, lake: str, query: str) -> list[dict[str, str]]:
    """Run `tapeout sql --format csv` and parse its output."""
    cmd = [binary, "sql", "--lake", lake, "--format", "csv", "--quiet", query]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(
            f"duckdb_check: `{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stderr.strip()}"
        )
    return list(csv.DictReader(io.StringIO(proc.stdout)))


def tapeout_figures(binary: str, lake: str) -> tuple[dict, int]:
    groups = {}
    for row in tapeout_csv(binary, lake, GROUP_SQL.format(table="requests")):
        groups[key(row["source"], row["workload"])] = tuple(int(row[f]) for f in FIGURES)
    rows = tapeout_csv(binary, lake, QUARANTINE_SQL.format(table="quarantine"))
    quarantined = int(rows[0]["rows"]) if rows else 0
    return groups, quarantined


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tapeout", required=True, help="path to the tapeout binary")
    ap.add_argument("--lake", required=True, help="lake directory to check")
    args = ap.parse_args()
    if not os.path.isdir(args.lake):
        sys.exit(f"duckdb_check: no lake directory at {args.lake}")

    d_groups, d_quar = duckdb_figures(args.lake)
    t_groups, t_quar = tapeout_figures(args.tapeout, args.lake)

    passed, failures = 0, []
    header = f"{'source':<12} {'workload':<22} {'figure':<14} {'duckdb':>14} {'tapeout':>14}  ok"
    print(header)
    print("-" * len(header))

    def compare(source: str, workload: str, figure: str, d, t) -> None:
        nonlocal passed
        ok = d == t
        show = lambda v: "(missing)" if v is None else str(v)  # noqa: E731
        print(f"{source:<12} {workload:<22} {figure:<14} {show(d):>14} {show(t):>14}  "
              f"{'ok' if ok else 'MISMATCH'}")
        if ok:
            passed += 1
        else:
            failures.append(f"{source}/{workload} {figure}: duckdb={show(d)} tapeout={show(t)}")

    # One check per (group, figure); a group seen by only one side fails all its figures.
    for k in sorted(set(d_groups) | set(t_groups)):
        d, t = d_groups.get(k), t_groups.get(k)
        for i, fig in enumerate(FIGURES):
            compare(k[0], k[1], fig, d[i] if d else None, t[i] if t else None)
    compare("quarantine", "(all)", "rows", d_quar, t_quar)

    print(f"duckdb_check: {passed} passed, {len(failures)} failed")
    for f in failures:
        print(f"  differs: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
