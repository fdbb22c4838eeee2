#!/usr/bin/env python3
"""Render a tapeout HTML report in headless Chromium and check it.

Usage:
    python3 scripts/render_report_check.py REPORT.html OUT.png [--require KIND ...]

Checks, in order (exit status 1 with a message naming each failure, 2 on a usage or setup error):

1. The HTML is self-contained: no http:// or https:// anywhere, no src/href/xlink:href/srcset/
   action/poster/data attribute that points anywhere but a #fragment (so no //host or scheme:
   URL), no <script>, <link>, <iframe>, <img>, <object> or <embed>, no CSS @import or url().
2. The charts are there: at least one `<svg class="chart chart-KIND"` for each required KIND
   (default: roofline, categories, features, coverage), and every chart SVG has a <title>, a legend
   (class="legend") and an axis title (class="axis-title").
3. Chromium (`chromium`, Debian's package; or $CHROMIUM) renders the file headless, with no
   network, to OUT.png at 1400x5000.
4. The PNG is real: larger than 20 KB, and its first rows hold more than 50 distinct colours
   (decoded with zlib/struct from the standard library), so a blank or single-colour page fails.

Needs only Python 3's standard library and Chromium.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

DEFAULT_KINDS = ["roofline", "categories", "features", "coverage"]
KNOWN_KINDS = ["roofline", "categories", "tokens", "communication", "features", "fleet-mix", "coverage"]
MIN_PNG_BYTES = 20 * 1024
MIN_COLOURS = 50
WINDOW = (1400, 5000)

URL_ATTR = re.compile(
    r"""\b(src|href|xlink:href|srcset|action|formaction|poster|data|background|ping|manifest)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""",
    re.IGNORECASE,
)
FORBIDDEN = [
    (re.compile(r"https?://", re.IGNORECASE), "an http(s):// URL"),
    (re.compile(r"<script\b", re.IGNORECASE), "a <script> element"),
    (re.compile(r"<link\b", re.IGNORECASE), "a <link> element"),
    (re.compile(r"<(iframe|img|object|embed|image|use|video|audio|source)\b", re.IGNORECASE), "an embedded resource element"),
    (re.compile(r"@import\b", re.IGNORECASE), "a CSS @import"),
    (re.compile(r"url\(\s*(?!['\"]?#)", re.IGNORECASE), "a CSS url() that is not a #fragment"),
    (re.compile(r"(?<![A-Za-z0-9_.-])//[A-Za-z0-9.-]+\.[A-Za-z]{2,}", re.IGNORECASE), "a protocol-relative //host URL"),
]


def fail(errors: list[str]) -> None:
    print("render_report_check: FAILED", file=sys.stderr)
    for e in errors:
        print(f"  - {e}", file=sys.stderr)
    sys.exit(1)


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def check_html(html: str, required: list[str]) -> tuple[list[str], dict[str, int]]:
    errors: list[str] = []
    for m in URL_ATTR.finditer(html):
        value = m.group(2).strip("\"'").strip()
        if value and not value.startswith("#"):
            errors.append(f"line {line_of(html, m.start())}: attribute {m.group(1)}={value!r} points outside the file")
    for rx, what in FORBIDDEN:
        m = rx.search(html)
        if m:
            snippet = html[max(0, m.start() - 30) : m.end() + 30].replace("\n", " ")
            errors.append(f"line {line_of(html, m.start())}: {what}: ...{snippet}...")

    counts = {k: len(re.findall(rf'<svg class="chart chart-{re.escape(k)}"', html)) for k in KNOWN_KINDS}
    for k in required:
        n = len(re.findall(rf'<svg class="chart chart-{re.escape(k)}"', html))
        counts[k] = n
        if n < 1:
            errors.append(f'no chart of kind {k!r} (<svg class="chart chart-{k}") in the HTML')
    for i, m in enumerate(re.finditer(r'<svg class="chart chart-([a-z-]+)"', html)):
        end = html.find("</svg>", m.end())
        body = html[m.end() : end if end >= 0 else len(html)]
        where = f"chart #{i + 1} (chart-{m.group(1)}, line {line_of(html, m.start())})"
        if "<title>" not in body:
            errors.append(f"{where} has no <title>")
        if 'class="legend"' not in body:
            errors.append(f"{where} has no legend")
        if 'class="axis-title"' not in body:
            errors.append(f"{where} has no axis title")
        if "NaN" in body or "inf\"" in body:
            errors.append(f"{where} has a NaN/inf coordinate")
    return errors, counts


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name)
        if p:
            return p
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def screenshot(chromium: str, html_path: Path, png_path: Path) -> None:
    png_path.parent.mkdir(parents=True, exist_ok=True)
    if png_path.exists():
        png_path.unlink()
    with tempfile.TemporaryDirectory(prefix="tapeout-chromium-") as profile:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--mute-audio",
            f"--user-data-dir={profile}",
            f"--screenshot={png_path}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            html_path.resolve().as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            fail([f"Chromium did not finish within 180 s: {' '.join(cmd)}"])
        if proc.returncode != 0 or not png_path.exists():
            tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
            fail([f"Chromium exited with {proc.returncode} and wrote no screenshot.\n    command: {' '.join(cmd)}\n{tail}"])


def png_colours(path: Path, max_rows: int = 1600, row_step: int = 3, col_step: int = 2) -> tuple[int, int, int]:
    """(width, height, distinct colours) over the first max_rows rows, every row_step-th row and
    col_step-th pixel. Decodes 8-bit RGB/RGBA/grey PNGs, non-interlaced, with the stdlib only."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat = 8, []
    width = height = bit_depth = colour_type = interlace = None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if ctype == b"IHDR":
            width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
        elif ctype == b"IDAT":
            idat.append(chunk)
        elif ctype == b"IEND":
            break
    if width is None:
        raise ValueError("PNG has no IHDR")
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour_type)
    if bit_depth != 8 or channels is None or interlace != 0:
        raise ValueError(f"unsupported PNG (bit depth {bit_depth}, colour type {colour_type}, interlace {interlace})")
    bpp = channels
    stride = width * bpp
    rows = min(height, max_rows)
    raw = zlib.decompressobj().decompress(b"".join(idat), rows * (stride + 1))
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(rows):
        start = y * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        elif ftype != 0:
            raise ValueError(f"bad PNG filter type {ftype} in row {y}")
        if y % row_step == 0:
            for x in range(0, width, col_step):
                colours.add(bytes(line[x * bpp : x * bpp + bpp]))
        prev = line
    return width, height, len(colours)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", type=Path, help="the report's HTML file")
    ap.add_argument("png", type=Path, help="where to write the screenshot")
    ap.add_argument(
        "--require",
        action="append",
        choices=KNOWN_KINDS,
        help=f"chart kind that must appear at least once (repeatable; default: {', '.join(DEFAULT_KINDS)})",
    )
    args = ap.parse_args()
    required = args.require or DEFAULT_KINDS

    if not args.html.is_file():
        print(f"render_report_check: {args.html} is not a file", file=sys.stderr)
        sys.exit(2)
    html = args.html.read_text(encoding="utf-8")
    errors, counts = check_html(html, required)
    if errors:
        fail(errors)
    print("html: self-contained (no external URL, script or import); charts: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))

    chromium = find_chromium()
    if not chromium:
        print("render_report_check: Chromium not found (install Debian's `chromium` with apt-get, or set $CHROMIUM)",
              file=sys.stderr)
        sys.exit(2)
    screenshot(chromium, args.html, args.png)
    size = args.png.stat().st_size
    errors = []
    if size <= MIN_PNG_BYTES:
        errors.append(f"{args.png} is only {size} bytes (expected > {MIN_PNG_BYTES}): the page looks empty")
    try:
        w, h, n = png_colours(args.png)
    except (ValueError, zlib.error) as e:
        fail([f"cannot read {args.png}: {e}"])
    if n <= MIN_COLOURS:
        errors.append(f"{args.png} has only {n} distinct colours in its first rows (expected > {MIN_COLOURS})")
    if errors:
        fail(errors)
    print(f"png: {args.png} {w}x{h}, {size // 1024} KB, {n} distinct colours sampled")
    print("render_report_check: OK")


if __name__ == "__main__":
    main()
