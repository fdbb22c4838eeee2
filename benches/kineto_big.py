#!/usr/bin/env python3
"""Memory bound of Kineto ingest on one large trace (for docs/performance.md).

Generates ONE trace file of about --gb GB from the real HTA `trace_diff/control` trace by
repeating its `traceEvents` K times: copy k shifts every `ts` by k × (the trace's span + 1 ms)
and offsets `correlation`, `External id` and `Ev Idx` by k × 10^7 (so linking stays one-to-one),
and renumbers `ProfilerStep#N` to N + k × 1000. Written compactly with json.dumps per event to
`WORK/big.json` (temporary name, then renamed; reused when present).

Then runs `tapeout ingest --lake WORK/lake-big WORK/big.json` under `/usr/bin/time -v` and
reports wall time, max RSS, and the kernel rows landed vs. the kernel/memcpy/memset events
written (K × those of one copy).

Usage: python3 benches/kineto_big.py [--tapeout BIN] [--gb 2.0] [--work DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import host_facts, parse_time_v  # noqa: E402

TRACE = "/work/shared/traces/kineto_hta/trace_diff/control/control.json.gz"
GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"}
OFFSET = 10_000_000


def shift(ev: dict, k: int, dt: float) -> dict:
    ev = dict(ev)
    if "ts" in ev:
        ev["ts"] = round(ev["ts"] + k * dt, 3)
    args = ev.get("args")
    if isinstance(args, dict):
        args = dict(args)
        for key in ("correlation", "External id", "Ev Idx"):
            if isinstance(args.get(key), int):
                args[key] = args[key] + k * OFFSET
        ev["args"] = args
    if isinstance(ev.get("id"), int):
        ev["id"] = ev["id"] + k * OFFSET
    name = ev.get("name")
    if isinstance(name, str) and name.startswith("ProfilerStep#"):
        try:
            ev["name"] = f"ProfilerStep#{int(name[13:]) + k * 1000}"
        except ValueError:
            pass
    return ev


def generate(path: str, gb: float) -> dict:
    with gzip.open(TRACE, "rt") as f:
        doc = json.load(f)
    events = doc["traceEvents"]
    ts = [e["ts"] + e.get("dur", 0) for e in events if isinstance(e.get("ts"), (int, float))]
    span = max(ts) - min(t for t in (e["ts"] for e in events if isinstance(e.get("ts"), (int, float))))
    dt = span + 1000.0
    one = len(json.dumps(events, separators=(",", ":")))
    copies = max(1, round(gb * 1e9 / one))
    gpu_one = sum(1 for e in events if e.get("ph") == "X" and e.get("cat") in GPU_CATS)
    facts = {"copies": copies, "events": copies * len(events), "gpu_events": copies * gpu_one}
    if not os.path.exists(path):
        tmp = path + ".tmp"
        header = {k: v for k, v in doc.items() if k != "traceEvents"}
        with open(tmp, "w") as out:
            out.write(json.dumps(header)[:-1] + ',"traceEvents":[')
            first = True
            for k in range(copies):
                for ev in events:
                    out.write(("" if first else ",") + json.dumps(shift(ev, k, dt), separators=(",", ":")))
                    first = False
            out.write("]}")
        os.rename(tmp, path)
    facts["bytes"] = os.path.getsize(path)
    return facts


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tapeout", default="target/debug/tapeout")
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--work", default="/work/big")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    path = os.path.join(a.work, "big.json")
    facts = generate(path, a.gb)
    lake = os.path.join(a.work, "lake-big")
    shutil.rmtree(lake, ignore_errors=True)
    cmd = ["/usr/bin/time", "-v", a.tapeout, "ingest", "-q", "--json", "--lake", lake, path]
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall, rss_kib = parse_time_v(p.stderr)
    t = {"wall_s": wall, "max_rss_mib": round(rss_kib / 1024, 1)}
    summary = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {}
    rows = subprocess.run(
        [a.tapeout, "sql", "--lake", lake, "--format", "csv", "select count(*) from kernels"],
        capture_output=True, text=True,
    ).stdout.split()[-1]
    print(json.dumps({"input": facts, "exit": p.returncode, "time": t, "kernel_rows": int(rows),
                      "host": host_facts(a.tapeout), "command": " ".join(cmd[2:])}, indent=1))
    if p.returncode != 0:
        print(p.stderr[-2000:], file=sys.stderr)
    return 0 if int(rows) == facts["gpu_events"] else 1


if __name__ == "__main__":
    sys.exit(main())
