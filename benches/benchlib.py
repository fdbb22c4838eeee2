"""Helpers shared by the benchmark scripts in this folder (run them as `python3 benches/X.py`,
which puts this folder on the import path)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys


def parse_time_v(report: str) -> tuple[float, int]:
    """(wall seconds, max RSS in KiB) from a GNU `/usr/bin/time -v` report."""
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", report)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    if not wall or not rss:
        sys.exit(f"could not parse /usr/bin/time -v output:\n{report}")
    secs = 0.0
    for part in wall.group(1).split(":"):  # h:mm:ss or m:ss.ss
        secs = secs * 60 + float(part)
    return secs, int(rss.group(1))


def timed(cmd: list[str], work: str) -> tuple[float, int, str]:
    """Run cmd under /usr/bin/time -v; return (wall s, max RSS KiB, stdout). Exits on rc != 0."""
    import shlex
    report_path = os.path.join(work, "time-v.txt")
    proc = subprocess.run(["/usr/bin/time", "-v", "-o", report_path, *cmd],
                          capture_output=True, text=True)
    with open(report_path, encoding="utf-8") as f:
        report = f.read()
    if proc.returncode != 0:
        sys.exit(f"`{shlex.join(cmd)}` exited {proc.returncode}\n{proc.stderr[-4000:]}")
    wall, rss = parse_time_v(report)
    return wall, rss, proc.stdout


def host_facts(binary: str) -> dict:
    """CPU model, core count, memory, kernel and the tapeout binary's version."""
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": mem_kib / 1024 / 1024,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "tapeout": version or "unknown",
    }
