"""OCR of page images at index time, by Tesseract (Debian's `tesseract-ocr`), offline.

Tesseract was chosen on measurement (benchmarks/ocr.py, docs/results.md "OCR"): on pages printed
from the example contracts it reads English with a character error rate near 1%; rapidocr's
bundled Chinese+English model dropped the spaces between words and a third of the lines.

The binary is run on each page image (its TSV output gives every word's box and confidence), one
process per core at a time and one thread each. A page that yields no confident word is tried
again upright as Tesseract's orientation detection sees it (a scan fed in sideways or upside down),
and failing that is reported unreadable, never fatal. Results are cached per file content hash under
`cache_dir()/ocr/<sha256>.json`, words with their boxes included (`cached_pages`), so indexing an
unchanged file again never OCRs it again.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..files import cache_dir
from .pdf_layout import Line

DPI = 300  # pages are rendered at this resolution for OCR (Tesseract reads best at 300 dpi)
INSTALL = "apt-get install tesseract-ocr tesseract-ocr-eng"
GOOD_WORD = 60  # confidence (0-100) of a word Tesseract is sure of
MIN_GOOD_WORDS = 3  # a page with fewer sure words is tried turned, then called unreadable
PAGE_SECONDS = 300  # one page's OCR may take this long before it is given up as unreadable


class OcrUnavailable(Exception):
    """Tesseract is not installed (the message says how to install it)."""


@dataclass
class PageText:
    """One page image read by OCR: its lines in reading order (boxes in points, on the image as it
    was read), its words as [text, x0, top, x1, bottom, confidence] (boxes in points on the page as
    the file has it), the mean word confidence, the quarter turns counter-clockwise the image was
    read at, and whether anything could be read at all."""

    lines: list[Line] = field(default_factory=list)
    words: list[list] = field(default_factory=list)
    confidence: float = 0.0
    turned: int = 0
    readable: bool = False

    @classmethod
    def from_dict(cls, data: dict) -> "PageText":
        return cls(**{**data, "lines": [Line(**line) for line in data["lines"]]})


@lru_cache(maxsize=1)
def engine() -> str:
    """'tesseract 5.3.0'; OcrUnavailable when the binary is missing."""
    binary = shutil.which("tesseract")
    if binary is None:
        raise OcrUnavailable(f"Tesseract OCR is not installed: {INSTALL} (as root), then index again")
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
    return (out.stdout or out.stderr).splitlines()[0].strip()


def _tesseract(png: bytes, *args: str) -> str:
    done = subprocess.run(["tesseract", "stdin", "stdout", "-l", "eng", "--dpi", str(DPI), *args], input=png,
                          capture_output=True, timeout=PAGE_SECONDS, env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    return done.stdout.decode("utf-8", "replace")


def read_image(image, scale: float, origin: tuple[float, float] = (0.0, 0.0)) -> PageText:
    """OCR of a PIL image of (part of) a page rendered at `scale` pixels per point, whose top-left
    corner is at `origin` (points) on the page."""
    best = _read(image, scale, origin, 0)
    if not best.readable or _sideways(best):
        turn = _orientation(image)
        if turn:
            turned = _read(image.rotate(90 * turn, expand=True), scale, origin, turn)
            if turned.readable and (not best.readable or _sideways(best) or turned.confidence > best.confidence):
                best = turned
    return best


def _sideways(page: PageText) -> bool:
    """Whether most longer words are taller than wide: a page scanned a quarter turn off (Tesseract
    still reads its words, but not its lines in order)."""
    long = [w for w in page.words if len(w[0]) >= 4]
    return bool(long) and sum(w[4] - w[2] > w[3] - w[1] for w in long) * 2 > len(long)


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _orientation(image) -> int:
    """Quarter turns counter-clockwise that make the page upright, as Tesseract's orientation
    detection sees it ("Rotate: 90"; 0 when it cannot tell)."""
    try:
        found = re.search(r"Rotate: (\d+)", _tesseract(_png(image), "--psm", "0"))
    except subprocess.TimeoutExpired:
        return 0
    return int(found.group(1)) // 90 % 4 if found else 0


def _read(image, scale: float, origin: tuple[float, float], turn: int) -> PageText:
    try:
        tsv = _tesseract(_png(image), "--psm", "3", "tsv")
    except subprocess.TimeoutExpired:
        return PageText(turned=turn)
    rows = list(csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE))
    lines: dict[tuple, list[list]] = {}
    for row in rows:
        text = (row.get("text") or "").strip()
        if row.get("level") != "5" or not text:
            continue
        x, y, w, h = (float(row[k]) for k in ("left", "top", "width", "height"))
        word = [text, origin[0] + x / scale, origin[1] + y / scale, origin[0] + (x + w) / scale,
                origin[1] + (y + h) / scale, round(float(row["conf"]), 1)]
        lines.setdefault((row["block_num"], row["par_num"], row["line_num"]), []).append(word)
    words = [w for line in lines.values() for w in line]
    page = PageText([_line(line) for line in lines.values()], [_unturned(w, turn, image.size, scale, origin)
                                                                for w in words], turned=turn)
    if words:
        page.confidence = round(sum(w[5] for w in words) / len(words), 1)
    page.readable = sum(w[5] >= GOOD_WORD and any(c.isalnum() for c in w[0]) for w in words) >= MIN_GOOD_WORDS
    return page


def _unturned(word: list, turn: int, size: tuple[int, int], scale: float, origin: tuple[float, float]) -> list:
    """A word's box on the page as it lies in the file, from its box on the image turned `turn`
    quarter turns counter-clockwise (`size`: the turned image's pixels): where a viewer draws it."""
    if not turn:
        return word
    w, h = size[0] / scale, size[1] / scale  # the turned image, in points
    x0, y0, x1, y1 = (word[1] - origin[0], word[2] - origin[1], word[3] - origin[0], word[4] - origin[1])
    corners = {1: [(h - y0, x0), (h - y1, x1)], 2: [(w - x0, h - y0), (w - x1, h - y1)],
               3: [(y0, w - x0), (y1, w - x1)]}[turn]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    return [word[0], origin[0] + min(xs), origin[1] + min(ys), origin[0] + max(xs), origin[1] + max(ys), word[5]]


def _line(words: list[list]) -> Line:
    top, bottom = min(w[2] for w in words), max(w[4] for w in words)
    return Line(" ".join(w[0] for w in words), min(w[1] for w in words), top, max(w[3] for w in words), bottom,
                size=round(bottom - top, 1), confidence=round(sum(w[5] for w in words) / len(words), 1))


def read_all(jobs: Iterable[tuple[Any, Callable[[], tuple]]],
             progress: Callable[[], None]) -> Iterator[tuple[Any, PageText]]:
    """(key, PageText) for each job, a job being (key, render) with render() → (image, scale,
    origin). Rendering runs here (pdfium is not thread-safe); Tesseract runs on one page per core
    at a time, with at most two pages per core rendered ahead (memory stays flat on long scans)."""
    workers = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        pending = []
        for key, render in jobs:
            pending.append((key, pool.submit(read_image, *render())))
            while len(pending) > 2 * workers:
                key_done, future = pending.pop(0)
                yield key_done, _done(future, progress)
        for key_done, future in pending:
            yield key_done, _done(future, progress)


def _done(future, progress: Callable[[], None]) -> PageText:
    """The page once read, counted on the progress bar."""
    page = future.result()
    progress()
    return page


# -- the cache ------------------------------------------------------------------------------------

def _cache_file(sha256: str) -> Path:
    return cache_dir() / "ocr" / f"{sha256}.json"


def cached_pages(sha256: str) -> dict[str, PageText]:
    """The OCR results kept for a file's content, by key ("<page>" for a whole page, "<page>:<x0>,
    <top>,…" for an image on it), read by this Tesseract at this resolution; {} when none."""
    try:
        data = json.loads(_cache_file(sha256).read_text())
    except (OSError, ValueError):
        return {}
    try:
        if data.get("engine") != engine() or data.get("dpi") != DPI:
            return {}
    except OcrUnavailable:
        pass  # cached text stays usable where Tesseract has gone since
    return {key: PageText.from_dict(page) for key, page in data.get("pages", {}).items()}


def keep(sha256: str, pages: dict[str, PageText]) -> None:
    """Write a file's OCR results to the cache (whole, then renamed into place)."""
    path = _cache_file(sha256)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"engine": engine(), "dpi": DPI,
                                         "pages": {key: asdict(page) for key, page in pages.items()}}))
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only cache costs time on the next run, nothing else
