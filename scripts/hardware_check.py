#!/usr/bin/env python3
"""Check the hardware and model profiles under pipelines/.

    python3 scripts/hardware_check.py [TRACE_DIR ...]

1. Every pipelines/hardware/*.toml and pipelines/models/*.toml parses (tomllib), has `id` equal to
   its file stem, uses only the keys the Rust loader accepts (it has `deny_unknown_fields`), and has
   plausible values (catches unit slips such as TB/s written as 3.35).
2. Every `[n]` source tag in a file's comments has an entry in its `[sources]` table, every
   `[sources]` entry is cited, and every value line carries a tag or a (D) mark.
3. Every `device_pattern` compiles and avoids syntax Rust's `regex` crate lacks (look-around,
   back-references, atomic groups, possessive quantifiers).
4. Device names: the distinct `deviceProperties[].name` values of every *.json / *.json.gz trace
   under TRACE_DIR (default: ../shared/traces and sample-traces/), plus a fixed list of known
   aliases, are matched with `re.search(pattern, name, re.IGNORECASE)` (what the Rust side does:
   case-insensitive, unanchored). Each name must match exactly one profile, except names listed in
   EXPECTED_UNMATCHED. Known aliases must map to the expected profile (or to none).

Prints each name -> profile and exits 1 on any failure. Python 3.11+ stdlib only.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HW_DIR = ROOT / "pipelines" / "hardware"
MODEL_DIR = ROOT / "pipelines" / "models"
DEFAULT_TRACE_DIRS = [ROOT.parent / "shared" / "traces", ROOT / "sample-traces"]

# Names a trace may report that deliberately match no profile.
EXPECTED_UNMATCHED = {
    "ARTEMIS": "Meta MTIA accelerator (HTA mtia_inference_trace); the reference sheet has no MTIA "
    "figures, so there is no profile",
}

# Device names seen in real traces or documented, with the profile each must map to (None = none).
KNOWN_ALIASES = {
    "NVIDIA A100-SXM4-80GB": "a100-sxm-80gb",
    "NVIDIA A100-SXM4-40GB": "a100-sxm-80gb",
    "NVIDIA A100-PG509-200": "a100-sxm-80gb",
    "NVIDIA A800-SXM4-80GB": None,
    "NVIDIA H100 80GB HBM3": "h100-sxm",
    "NVIDIA H100": "h100-sxm",
    "NVIDIA H200": "h200",
    "NVIDIA GH200 480GB": None,
    "NVIDIA H800": "h800-sxm",
    "NVIDIA B200": "b200",
    "NVIDIA GB200": "gb200",
    "Tesla V100-SXM2-32GB": "v100-sxm2",
    "Tesla V100-DGXS-32GB": "v100-sxm2",
    "NVIDIA GeForce RTX 4090": None,
    "AMD Instinct MI300X": "mi300x",
    "AMD Instinct MI300X VF": "mi300x",
    "AMD Instinct MI300A": None,
    "AMD Instinct MI325X": "mi325x",
    "AMD Instinct MI250X": "mi250x",
    "AMD Instinct MI250": "mi250x",
    "AMD Radeon Graphics": "mi250x",
    "AMD Radeon RX 7900 XTX": None,
    "Trainium": "trainium1",
    "trn1": "trainium1",
    "Trainium2": "trainium2",
    "trn2": "trainium2",
    "Inferentia2": "inferentia2",
    "TPU v5 lite": "tpu-v5e",
    "TPU v5e": "tpu-v5e",
    "TPU v5p": "tpu-v5p",
    "TPU v5": "tpu-v5p",
    "TPU v6 lite": None,
    "ARTEMIS": None,
}

FLOPS_KEYS = {"fp32", "tf32", "bf16", "fp16", "fp8", "fp4", "int8"}
HW_SECTIONS = {
    "matrix_flops": (FLOPS_KEYS, 1e11, 1e17),
    "vector_flops": (FLOPS_KEYS, 1e11, 1e17),
    "memory": ({"hbm_bandwidth", "hbm_capacity", "l2", "sram"}, None, None),
    "links": ({"scale_up", "scale_out", "host"}, 1e8, 1e13),
    "power": ({"tdp_watts"}, 50, 5000),
}
MEMORY_RANGES = {
    "hbm_bandwidth": (1e11, 1e14),
    "hbm_capacity": (1e9, 1e13),
    "l2": (1e6, 1e10),
    "sram": (1e6, 1e10),
}
HW_REQUIRED = {"id", "name", "vendor", "device_pattern", "sources"}
HW_ALLOWED = HW_REQUIRED | set(HW_SECTIONS)

MODEL_INT_KEYS = {
    "layers", "hidden", "intermediate", "heads", "kv_heads", "head_dim", "vocab", "max_context",
    "experts", "active_experts", "shared_experts", "moe_layers",
    "kv_cache_elements_per_token_per_layer",
}
MODEL_REQUIRED = {
    "id", "name", "params", "active_params", "layers", "hidden", "intermediate", "heads",
    "kv_heads", "head_dim", "vocab", "max_context", "dtype", "gated_ffn", "sources",
}
MODEL_ALLOWED = MODEL_REQUIRED | {
    "experts", "active_experts", "shared_experts", "moe_layers",
    "kv_cache_elements_per_token_per_layer",
}
DTYPES = {"fp32", "bf16", "fp16", "fp8"}

# Lines whose value needs no source tag.
UNTAGGED_KEYS = {"id", "name", "vendor", "device_pattern"}
TAG_RE = re.compile(r"\[(\d+[a-z]*)\]")
ASSIGN_RE = re.compile(r"^\s*([A-Za-z0-9_\-\"]+)\s*=")
RUST_UNSUPPORTED = [
    (re.compile(r"\(\?<?[=!]"), "look-around"),
    (re.compile(r"\\[1-9]"), "back-reference"),
    (re.compile(r"\(\?P="), "named back-reference"),
    (re.compile(r"\(\?>"), "atomic group"),
    (re.compile(r"[*+?}]\+"), "possessive quantifier"),
]

errors: list[str] = []


def fail(msg: str) -> None:
    errors.append(msg)
    print(f"FAIL: {msg}")


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def split_comment(line: str) -> tuple[str, str]:
    """Split a TOML line into (code, comment), ignoring '#' inside quoted strings."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "#":
            return line[:i], line[i + 1:]
    return line, ""


def check_citations(path: Path, sources: dict) -> None:
    """Every [tag] cited has a source, every source is cited, every value line is tagged."""
    cited: set[str] = set()
    section = ""
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        code, comment = split_comment(line)
        stripped = code.strip()
        if stripped.startswith("["):
            section = stripped.strip("[]").strip()
            continue
        tags = set(TAG_RE.findall(comment))
        cited |= tags
        m = ASSIGN_RE.match(code)
        if m and section != "sources":
            key = m.group(1).strip('"')
            if key not in UNTAGGED_KEYS and not tags and "(D)" not in comment:
                fail(f"{path.name}:{lineno}: value `{key}` has no source tag or (D) mark")
    for tag in sorted(cited - set(sources)):
        fail(f"{path.name}: tag [{tag}] is cited but missing from [sources]")
    for tag in sorted(set(sources) - cited):
        fail(f"{path.name}: [sources] entry \"{tag}\" is never cited")
    for tag, url in sources.items():
        if not isinstance(url, str) or not url.strip():
            fail(f"{path.name}: [sources] \"{tag}\" must be a non-empty string")


def load(path: Path) -> dict | None:
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        fail(f"{path.name}: does not parse: {e}")
        return None
    if doc.get("id") != path.stem:
        fail(f"{path.name}: id {doc.get('id')!r} != file stem {path.stem!r}")
    return doc


def check_hardware(path: Path) -> tuple[str, re.Pattern] | None:
    doc = load(path)
    if doc is None:
        return None
    for key in sorted(HW_REQUIRED - set(doc)):
        fail(f"{path.name}: missing required key `{key}`")
    for key in sorted(set(doc) - HW_ALLOWED):
        fail(f"{path.name}: unknown key `{key}` (the loader denies unknown fields)")
    for key in ("id", "name", "vendor", "device_pattern"):
        if key in doc and not isinstance(doc[key], str):
            fail(f"{path.name}: `{key}` must be a string")
    for section, (allowed, lo, hi) in HW_SECTIONS.items():
        if section not in doc:
            continue
        table = doc[section]
        if not isinstance(table, dict) or not table:
            fail(f"{path.name}: [{section}] must be a non-empty table (omit it instead)")
            continue
        for key, value in table.items():
            if key not in allowed:
                fail(f"{path.name}: unknown key `{section}.{key}`")
                continue
            if not is_number(value) or value <= 0:
                fail(f"{path.name}: `{section}.{key}` must be a positive number, got {value!r}")
                continue
            rlo, rhi = MEMORY_RANGES[key] if section == "memory" else (lo, hi)
            if not (rlo <= value <= rhi):
                fail(f"{path.name}: `{section}.{key}` = {value:g} is outside the plausible range "
                     f"[{rlo:g}, {rhi:g}] (unit slip?)")
    if isinstance(doc.get("sources"), dict):
        check_citations(path, doc["sources"])
    else:
        fail(f"{path.name}: [sources] must be a table")
    pattern = doc.get("device_pattern")
    if not isinstance(pattern, str) or not pattern:
        return None
    for rx, what in RUST_UNSUPPORTED:
        if rx.search(pattern):
            fail(f"{path.name}: device_pattern uses {what}, which Rust's regex crate lacks")
    try:
        return doc["id"], re.compile(pattern, re.IGNORECASE)
    except re.error as e:
        fail(f"{path.name}: device_pattern does not compile: {e}")
        return None


def check_model(path: Path) -> None:
    doc = load(path)
    if doc is None:
        return
    for key in sorted(MODEL_REQUIRED - set(doc)):
        fail(f"{path.name}: missing required key `{key}`")
    for key in sorted(set(doc) - MODEL_ALLOWED):
        fail(f"{path.name}: unknown key `{key}` (the loader denies unknown fields)")
    for key in MODEL_INT_KEYS & set(doc):
        if not isinstance(doc[key], int) or isinstance(doc[key], bool) or doc[key] <= 0:
            fail(f"{path.name}: `{key}` must be a positive integer, got {doc[key]!r}")
    for key in ("params", "active_params"):
        if key in doc and (not is_number(doc[key]) or not 1e7 <= doc[key] <= 1e13):
            fail(f"{path.name}: `{key}` = {doc[key]!r} is not a plausible parameter count")
    if doc.get("dtype") not in DTYPES:
        fail(f"{path.name}: dtype {doc.get('dtype')!r} not in {sorted(DTYPES)}")
    if not isinstance(doc.get("gated_ffn"), bool):
        fail(f"{path.name}: gated_ffn must be true or false")
    if isinstance(doc.get("sources"), dict):
        check_citations(path, doc["sources"])
    else:
        fail(f"{path.name}: [sources] must be a table")
    if any(k not in doc for k in MODEL_REQUIRED - {"sources"}):
        return
    moe = "experts" in doc
    if moe != ("active_experts" in doc):
        fail(f"{path.name}: `experts` and `active_experts` go together")
    if moe and doc.get("active_experts", 0) > doc["experts"]:
        fail(f"{path.name}: active_experts > experts")
    if not moe and any(k in doc for k in ("shared_experts", "moe_layers")):
        fail(f"{path.name}: shared_experts/moe_layers without experts")
    if doc.get("moe_layers", 0) > doc["layers"]:
        fail(f"{path.name}: moe_layers > layers")
    if doc["active_params"] > doc["params"]:
        fail(f"{path.name}: active_params > params")
    if not moe and doc["active_params"] != doc["params"]:
        fail(f"{path.name}: a dense model must have active_params == params")
    if doc["heads"] % doc["kv_heads"]:
        fail(f"{path.name}: heads ({doc['heads']}) is not a multiple of kv_heads ({doc['kv_heads']})")
    # Cross-check the parameter counts against the shape (not for MLA, whose projections differ).
    if "kv_cache_elements_per_token_per_layer" in doc:
        return
    h, hd, L = doc["hidden"], doc["head_dim"], doc["layers"]
    attn = 2 * h * doc["heads"] * hd + 2 * h * doc["kv_heads"] * hd
    ffn = (3 if doc["gated_ffn"] else 2) * h * doc["intermediate"]
    emb = doc["vocab"] * h
    for key, n_ffn in (("params", doc.get("experts", 1)), ("active_params", doc.get("active_experts", 1))):
        body = L * (attn + n_ffn * ffn)
        lo, hi = (body + emb) * 0.98, (body + 2 * emb) * 1.02
        if not lo <= doc[key] <= hi:
            fail(f"{path.name}: {key} = {doc[key]:.4g} disagrees with the shape "
                 f"(expected {lo:.4g} .. {hi:.4g})")


def trace_device_names(dirs: list[Path]) -> dict[str, list[str]]:
    """Distinct deviceProperties[].name values -> the trace files reporting them."""
    names: dict[str, set[str]] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        files = sorted(p for p in d.rglob("*") if p.is_file() and p.name.endswith((".json", ".json.gz")))
        for f in files:
            opener = gzip.open if f.name.endswith(".gz") else open
            try:
                with opener(f, "rt", encoding="utf-8") as fh:
                    doc = json.load(fh)
            except (OSError, ValueError, UnicodeDecodeError) as e:
                print(f"note: skipped {f} (not readable JSON: {e.__class__.__name__})")
                continue
            if not isinstance(doc, dict):
                continue
            for dev in doc.get("deviceProperties") or []:
                if isinstance(dev, dict) and isinstance(dev.get("name"), str):
                    names.setdefault(dev["name"], set()).add(str(f))
    return {name: sorted(files) for name, files in names.items()}


def main(argv: list[str]) -> int:
    hw_files = sorted(HW_DIR.glob("*.toml"))
    model_files = sorted(MODEL_DIR.glob("*.toml"))
    if not hw_files:
        fail(f"no hardware profiles in {HW_DIR}")
    profiles = [p for p in (check_hardware(f) for f in hw_files) if p]
    for f in model_files:
        check_model(f)
    print(f"checked {len(hw_files)} hardware profiles, {len(model_files)} model profiles")

    def matches(name: str) -> list[str]:
        return [pid for pid, rx in profiles if rx.search(name)]

    trace_dirs = [Path(a) for a in argv] or DEFAULT_TRACE_DIRS
    found = trace_device_names(trace_dirs)
    print(f"\ndevice names in traces under {', '.join(str(d) for d in trace_dirs)}:")
    if not found:
        print("  (none found)")
    for name in sorted(found):
        hits = matches(name)
        where = f"{len(found[name])} trace(s), e.g. {Path(found[name][0]).name}"
        if len(hits) == 1:
            print(f"  {name!r} -> {hits[0]}   [{where}]")
        elif not hits and name in EXPECTED_UNMATCHED:
            print(f"  {name!r} -> (no profile: {EXPECTED_UNMATCHED[name]})   [{where}]")
        elif not hits:
            fail(f"trace device name {name!r} matches no profile [{where}]")
        else:
            fail(f"trace device name {name!r} matches several profiles: {hits} [{where}]")

    print("\nknown aliases:")
    for name, want in KNOWN_ALIASES.items():
        hits = matches(name)
        got = hits[0] if len(hits) == 1 else (None if not hits else hits)
        if got != want:
            fail(f"alias {name!r} -> {got!r}, expected {want!r}")
        else:
            print(f"  {name!r} -> {got or '(no profile)'}")

    if errors:
        print(f"\n{len(errors)} failure(s)")
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
