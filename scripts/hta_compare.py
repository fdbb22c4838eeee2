#!/usr/bin/env python3
"""Cross-check tapeout's `kernels.hta_category` / `hta_window` against Meta's Holistic Trace
Analysis (HTA 0.5).

For each trace set, the traces are loaded in HTA exactly as a user would
(`TraceAnalysis(trace_dir=...)`, on a temporary directory of symlinks so that only the set's
per-rank files are seen), and the per-rank GPU figures are taken the way HTA's own
`BreakdownAnalysis.get_gpu_kernel_breakdown` takes them: the loaded (aligned and
ProfilerStep-filtered) trace of each rank, rows with `stream != -1`, classified with
`hta.utils.utils.get_kernel_type` on the decoded name (`name` holds ids into
`analyzer.t.symbol_table.sym_table`). The same files are ingested with tapeout into a temporary
lake and compared with

    select file, rank, hta_category, count(*), sum(dur_ns) from kernels where hta_window group by ...

A (rank, category) passes when the counts are EQUAL and the total time matches within 0.5%. On
traces with sub-µs timestamps HTA ceils `ts` and floors `ts + dur` to whole µs
(`hta.common.trace_parser.round_down_time_stamps`), losing [0, 2) µs per event (~1 µs on
average; column `us/event`); there a larger difference is accepted when it is below 2 µs per
event AND tapeout's rows rounded the HTA way (`floor(end_us) - ceil(start_us)`, column
`tap HTA-rnd ms`) give HTA's figure within 0.5%.

When a rank disagrees, events are matched by their index in `traceEvents` (HTA's `index`,
tapeout's `event_index`) and the differences are explained (category differs, outside tapeout's
hta_window, not a tapeout row, ...), with a few examples.

Usage:
    pip install holistictraceanalysis==0.5.0 psutil 'pandas<3'
    python3 scripts/hta_compare.py [--tapeout BIN] [--traces DIR] [--only NAME] [--extra PATH]... [--examples N]

Prints a table per trace set and a final line `hta_compare: N passed, M failed` (one unit per
trace set); exit status 1 if any set failed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field

# name -> folder relative to --traces (every *.json / *.json.gz in it is one rank's trace)
TRACE_SETS: list[tuple[str, str]] = [
    ("trace_filter", "kineto_hta/trace_filter"),
    ("trace_diff/control", "kineto_hta/trace_diff/control"),
    ("nccl_parser_config", "kineto_hta/nccl_parser_config"),
    ("critical_path/alexnet", "kineto_hta/critical_path/alexnet"),
    ("negative_queue_length_values_check", "kineto_hta/negative_queue_length_values_check"),
    ("amd_trace", "kineto_hta/amd_trace"),
    ("param_dlrm_8rank", "param_dlrm_8rank"),
]

REL_TOL = 0.005  # 0.5 %
# HTA's whole-µs rounding ceils ts and floors ts + dur, so each event loses [0, 2) µs (~1 µs on
# average); on sub-µs traces a difference up to this is accepted if tapeout's rows rounded the
# HTA way also give HTA's figure (within REL_TOL).
ROUNDING_NS_PER_EVENT = 2000
CATEGORIES = ("COMMUNICATION", "COMPUTATION", "MEMORY", "OTHER")


def repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_tapeout() -> str:
    cand = os.path.join(repo_root(), "target", "debug", "tapeout")
    return cand if os.path.exists(cand) else (shutil.which("tapeout") or cand)


def trace_files(folder: str) -> list[str]:
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if (f.endswith(".json") or f.endswith(".json.gz")) and os.path.isfile(os.path.join(folder, f))
    )


def sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# ------------------------------------------------------------------------------------------------
# tapeout side


def tapeout_sql(bin_: str, lake: str, query: str) -> list[dict]:
    p = subprocess.run(
        [bin_, "sql", "-q", "--lake", lake, "--format", "csv", query],
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        raise RuntimeError(f"tapeout sql failed ({p.returncode}): {p.stderr.strip()}\nquery: {query}")
    return list(csv.DictReader(io.StringIO(p.stdout)))


def tapeout_ingest(bin_: str, lake: str, files: list[str]) -> None:
    p = subprocess.run(
        [bin_, "ingest", "-q", "--lake", lake, "--json", *files], capture_output=True, text=True
    )
    if p.returncode not in (0, 2):
        raise RuntimeError(f"tapeout ingest failed ({p.returncode}): {p.stderr.strip()}\n{p.stdout}")
    try:
        summary = json.loads(p.stdout)
    except json.JSONDecodeError:
        return
    bad = [d for d in summary.get("details", []) if d.get("status") not in ("ingested", "skipped")]
    if bad:
        raise RuntimeError(f"tapeout did not ingest: {bad}")


# ------------------------------------------------------------------------------------------------
# HTA side


def hta_version() -> str:
    try:
        from importlib.metadata import version

        return version("holistictraceanalysis")
    except Exception:  # pragma: no cover
        return "?"


def load_hta(link_dir: str):
    """Loads the directory in HTA; returns (analyzer, {rank: path HTA used})."""
    from hta.trace_analysis import TraceAnalysis

    analyzer = TraceAnalysis(trace_dir=link_dir)
    return analyzer, dict(analyzer.t.trace_files)


def hta_gpu_rows(analyzer, rank: int):
    """The rank's GPU rows as HTA's breakdown analysis sees them, with decoded name/cat/type."""
    from hta.utils.utils import get_kernel_type

    sym = analyzer.t.symbol_table.sym_table
    df = analyzer.t.get_trace(rank)
    g = df[df["stream"].ne(-1)].copy()
    g["name_s"] = g["name"].map(lambda i: sym[int(i)])
    g["cat_s"] = g["cat"].map(lambda i: sym[int(i)])
    g["kernel_type"] = g["name_s"].map(get_kernel_type)
    return g


# ------------------------------------------------------------------------------------------------
# comparison


@dataclass
class Cell:
    hta_n: int = 0
    hta_us: float = 0.0
    tap_n: int = 0
    tap_ns: int = 0
    tap_rounded_us: int = 0  # tapeout rows rounded the HTA way

    def check(self, subus: bool) -> tuple[bool, str]:
        """(ok, why). Counts must be equal. Time: within 0.5%; on a sub-µs trace, also accepted
        when the difference is below HTA's rounding bound and HTA-rounded tapeout matches."""
        if self.hta_n != self.tap_n:
            return False, "count"
        hta_ns = self.hta_us * 1000.0
        diff = abs(self.tap_ns - hta_ns)
        if diff <= REL_TOL * max(abs(self.tap_ns), abs(hta_ns)) + 1e-6:
            return True, ""
        rounded_ns = self.tap_rounded_us * 1000.0
        rounded_ok = abs(rounded_ns - hta_ns) <= REL_TOL * max(abs(rounded_ns), abs(hta_ns)) + 1e-6
        if subus and diff < ROUNDING_NS_PER_EVENT * self.tap_n and rounded_ok:
            return True, "HTA µs rounding"
        return False, "time"


@dataclass
class RankResult:
    file: str
    rank: int
    cells: dict = field(default_factory=lambda: defaultdict(Cell))
    subus: bool = False
    ok: bool = True
    notes: list = field(default_factory=list)


def fmt_ms(ns: float) -> str:
    return f"{ns / 1e6:,.3f}"


def explain(bin_: str, lake: str, res: RankResult, hta_df, examples: int) -> list[str]:
    """Event-level diff of one rank: why the figures differ."""
    rows = tapeout_sql(
        bin_,
        lake,
        "select event_index, name, activity, hta_category, hta_window, dur_ns, start_ns, correlation "
        f"from kernels where file = {sql_literal(res.file)}",
    )
    # tapeout's event_index is 1-based, HTA's `index` is the 0-based position in traceEvents
    tap = {int(r["event_index"]) - 1: r for r in rows}
    hta = {int(i): r for i, r in zip(hta_df["index"], hta_df.itertuples(index=False))}
    out: list[str] = []
    reasons: Counter = Counter()
    samples: dict[str, list[str]] = defaultdict(list)

    def note(reason: str, text: str) -> None:
        reasons[reason] += 1
        if len(samples[reason]) < examples:
            samples[reason].append(text)

    for idx, h in hta.items():
        t = tap.get(idx)
        hname = h.name_s
        if t is None:
            note(
                f"HTA GPU row (cat={h.cat_s}, type={h.kernel_type}) that is not a tapeout row",
                f"#{idx} {hname[:70]!r} dur={h.dur}us",
            )
        elif t["hta_window"] != "true":
            note(
                f"HTA keeps, tapeout hta_window=false (type={h.kernel_type})",
                f"#{idx} {hname[:70]!r} corr={t['correlation']}",
            )
        elif t["hta_category"] != h.kernel_type:
            note(
                f"category: tapeout {t['hta_category']} vs HTA {h.kernel_type}",
                f"#{idx} {hname[:70]!r}",
            )
    for idx, t in tap.items():
        if t["hta_window"] == "true" and idx not in hta:
            note(
                f"tapeout hta_window=true, HTA dropped (tapeout {t['hta_category']})",
                f"#{idx} {t['name'][:70]!r} corr={t['correlation']}",
            )
    for reason, n in reasons.most_common():
        out.append(f"    {n:6d} x {reason}")
        for s in samples[reason]:
            out.append(f"             e.g. {s}")
    return out


def compare_set(name: str, folder: str, bin_: str, examples: int) -> bool:
    files = trace_files(folder) if os.path.isdir(folder) else [folder]
    print(f"\n=== {name}  ({folder}; {len(files)} file(s))")
    if not files:
        print("  FAIL: no trace files")
        return False
    work = tempfile.mkdtemp(prefix="hta_compare_")
    try:
        link_dir = os.path.join(work, "traces")
        os.makedirs(link_dir)
        link_to_orig = {}
        for f in files:
            link = os.path.join(link_dir, os.path.basename(f))
            os.symlink(f, link)
            link_to_orig[link] = f
        lake = os.path.join(work, "lake")
        tapeout_ingest(bin_, lake, files)

        analyzer, rank_files = load_hta(link_dir)
        orig_to_rank = {}
        for rank, p in rank_files.items():
            orig_to_rank[link_to_orig.get(p, p)] = rank
        set_ok = True
        missing = [f for f in files if f not in orig_to_rank]
        if missing:
            print(f"  FAIL: HTA loaded {len(rank_files)} of {len(files)} files (duplicate ranks?): {missing}")
            set_ok = False

        in_list = ", ".join(sql_literal(f) for f in files)
        tap_rows = tapeout_sql(
            bin_,
            lake,
            "select file, rank, hta_category, count(*) as n, sum(dur_ns) as ns, "
            # HTA's rounding in integer arithmetic (floor(end_us) - ceil(start_us); ts >= 0 in Kineto)
            "sum((start_ns + dur_ns) / 1000 - (start_ns + 999) / 1000) as rus, "
            "sum(case when start_ns % 1000 <> 0 or dur_ns % 1000 <> 0 then 1 else 0 end) as subus "
            f"from kernels where hta_window and file in ({in_list}) group by file, rank, hta_category",
        )
        subus_rows = tapeout_sql(
            bin_,
            lake,
            "select file, sum(case when start_ns % 1000 <> 0 or dur_ns % 1000 <> 0 then 1 else 0 end) as subus "
            f"from kernels where file in ({in_list}) group by file",
        )
        subus_by_file = {r["file"]: int(r["subus"] or 0) > 0 for r in subus_rows}

        results: list[RankResult] = []
        hta_frames = {}
        for f in files:
            if f not in orig_to_rank:
                continue
            hrank = orig_to_rank[f]
            res = RankResult(file=f, rank=hrank, subus=subus_by_file.get(f, False))
            g = hta_gpu_rows(analyzer, hrank)
            hta_frames[f] = g
            for kt, grp in g.groupby("kernel_type"):
                c = res.cells[kt]
                c.hta_n = int(len(grp))
                c.hta_us = float(grp["dur"].sum())
            for r in tap_rows:
                if r["file"] != f:
                    continue
                if int(r["rank"]) != hrank:
                    res.notes.append(f"rank: tapeout {r['rank']} vs HTA {hrank}")
                c = res.cells[r["hta_category"]]
                c.tap_n = int(r["n"])
                c.tap_ns = int(r["ns"] or 0)
                c.tap_rounded_us = int(r["rus"] or 0)
            results.append(res)

        hdr = (
            f"  {'rank':>4} {'hta_category':<13} {'HTA n':>7} {'tapeout n':>9} "
            f"{'HTA ms':>12} {'tapeout ms':>12} {'diff %':>8} {'us/event':>8} {'tap HTA-rnd ms':>14}  result"
        )
        print(hdr)
        print("  " + "-" * (len(hdr) - 2))
        for res in sorted(results, key=lambda r: r.rank):
            for kt in sorted(res.cells, key=lambda k: CATEGORIES.index(k) if k in CATEGORIES else 99):
                c = res.cells[kt]
                ok, why = c.check(res.subus)
                res.ok &= ok
                hta_ns = c.hta_us * 1000.0
                per_ev = (c.tap_ns - hta_ns) / 1000.0 / max(c.tap_n, 1)
                pct = (c.tap_ns - hta_ns) / hta_ns * 100 if hta_ns else (0.0 if c.tap_ns == 0 else math.inf)
                print(
                    f"  {res.rank:>4} {kt:<13} {c.hta_n:>7} {c.tap_n:>9} {fmt_ms(hta_ns):>12} "
                    f"{fmt_ms(c.tap_ns):>12} {pct:>+8.3f} {per_ev:>+8.3f} {fmt_ms(c.tap_rounded_us * 1000):>14}  "
                    f"{('ok' + (' (' + why + ')' if why else '')) if ok else 'FAIL (' + why + ')'}"
                )
            for n in sorted(set(res.notes)):
                print(f"       note: {n}")
                res.ok = False
            if res.subus:
                print(f"       ({os.path.basename(res.file)}: sub-µs timestamps; HTA rounds to whole µs)")
        for res in results:
            if not res.ok:
                set_ok = False
                print(f"  why rank {res.rank} ({os.path.basename(res.file)}) differs, event by event:")
                for line in explain(bin_, lake, res, hta_frames[res.file], examples):
                    print(line)
        print(f"  {name}: {'PASS' if set_ok else 'FAIL'}")
        return set_ok
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tapeout", default=default_tapeout(), help="tapeout binary (default: target/debug/tapeout)")
    ap.add_argument("--traces", default="/work/shared/traces", help="trace folder (default: /work/shared/traces)")
    ap.add_argument("--only", help="run one trace set (name as listed, or its last path part)")
    ap.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="PATH",
        help="also compare this folder (one trace per rank) or single trace file; repeatable",
    )
    ap.add_argument("--examples", type=int, default=3, help="example events per discrepancy (default 3)")
    args = ap.parse_args()

    try:
        import hta  # noqa: F401
    except ImportError as e:
        print(f"hta_compare: cannot import HTA ({e}); pip install holistictraceanalysis psutil", file=sys.stderr)
        return 1
    logging.getLogger("hta").setLevel(logging.ERROR)
    ver = hta_version()
    print(f"HTA (holistictraceanalysis) {ver}; tapeout {args.tapeout}")
    if not ver.startswith("0.5"):
        print(f"warning: HTA {ver} is not 0.5.x; tapeout's rules follow HTA 0.5", file=sys.stderr)

    sets = [(name, os.path.join(args.traces, rel)) for name, rel in TRACE_SETS]
    sets += [(p, os.path.abspath(p)) for p in args.extra]
    if args.only:
        known = sets
        sets = [s for s in known if args.only in (s[0], s[0].split("/")[-1], s[1])]
        if not sets:
            print(f"hta_compare: unknown set {args.only!r}; known: {[s[0] for s in known]}", file=sys.stderr)
            return 1

    passed = failed = 0
    for name, folder in sets:
        try:
            ok = compare_set(name, folder, args.tapeout, args.examples)
        except Exception as e:  # one broken set must not hide the others
            print(f"  {name}: FAIL ({type(e).__name__}: {e})")
            ok = False
        passed += ok
        failed += not ok
    print(f"\nhta_compare: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
