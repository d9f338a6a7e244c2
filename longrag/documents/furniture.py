"""Page furniture: running headers, footers, page numbers and "Initials: ____" lines of a PDF.

Such a line is the same on most pages (its digits aside) at the top or bottom of the page, so it
is found by repetition: the topmost and bottommost lines of each page are compared with digits
masked. A one-page document has nothing to compare with; there a line alone in the page's outer
margin band, set apart from the text by a gap, counts.

Furniture is blanked out of the document's text (spaces of the same length, so every offset and
page start stays exact) and recorded in its metadata as `furniture`: [[start, text], …], from
which `restore` gives back the page text as extracted. So it is never encoded, BM25-counted, split
into sentences, quoted or shown in a snippet.
"""
from __future__ import annotations

import re
from typing import Sequence

from rapidfuzz import fuzz

from .pdf_layout import Line

EDGE_ROWS = 2  # rows at the top and at the bottom of a page that may be furniture
MOST = 0.5  # a line is furniture when it repeats on at least this share of the pages (and 2)
SIMILAR = 85  # rapidfuzz ratio: an OCR'd copy of a furniture line with a misread letter still counts
MARGIN_BAND = 0.07  # a one-page document: the outer share of the page height where furniture sits


def key(text: str) -> str:
    """A line with digits masked and punctuation and case dropped ("Page 3" ~ "page 12")."""
    return " ".join(re.sub(r"\d+", "#", re.sub(r"[^\w\s]|_", " ", text.lower())).split())


def edge_lines(lines: Sequence[Line]) -> list[int]:
    """Indices of the lines in the top and bottom EDGE_ROWS rows of a page (by position, not by
    reading order: a short header may be read as the first line of the left column)."""
    if not lines:
        return []
    order = sorted(range(len(lines)), key=lambda i: lines[i].top)
    return sorted(set(order[:EDGE_ROWS]) | set(order[-EDGE_ROWS:]))


def find(pages: Sequence[Sequence[Line]], heights: Sequence[float]) -> list[set[int]]:
    """For each page, the indices of its lines that are furniture."""
    edges = [edge_lines(lines) for lines in pages]
    with_text = sum(bool(lines) for lines in pages)
    if with_text < 2:
        return [_margin_lines(lines, height) for lines, height in zip(pages, heights)]
    counts: dict[str, int] = {}
    for lines, indices in zip(pages, edges):
        for k in {key(lines[i].text) for i in indices} - {""}:
            counts[k] = counts.get(k, 0) + 1
    repeated = [k for k, n in counts.items() if n >= max(2, MOST * with_text)]
    out = []
    for lines, indices in zip(pages, edges):
        out.append({i for i in indices if key(lines[i].text) and any(
            fuzz.ratio(key(lines[i].text), k) >= SIMILAR for k in repeated)})
    return out


def _margin_lines(lines: Sequence[Line], height: float) -> set[int]:
    """A one-page document's lines inside the outer margin band with a gap of two line heights
    to the nearest other line."""
    out = set()
    for i in edge_lines(lines):
        line = lines[i]
        if line.bottom > MARGIN_BAND * height and line.top < (1 - MARGIN_BAND) * height:
            continue
        gap = 2 * (line.bottom - line.top)
        if not any(j != i and other.top < line.bottom + gap and other.bottom > line.top - gap
                   for j, other in enumerate(lines)):
            out.add(i)
    return out


def blank(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` with each [start, end) span replaced by spaces of the same length."""
    parts, last = [], 0
    for start, end in sorted(spans):
        parts += [text[last:start], " " * (end - start)]
        last = end
    return "".join(parts) + text[last:]


def restore(text: str, metadata: dict) -> str:
    """The document's text as extracted, furniture included."""
    for start, line in metadata.get("furniture", []):
        text = text[:start] + line + text[start + len(line):]
    return text
