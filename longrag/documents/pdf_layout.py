"""A PDF page's text layer as lines in reading order, each with its box and font (pypdfium2).

The order of text in a PDF file is whatever its writer chose: some write a two-column page row by
row, the left line and then the right line beside it. So lines are rebuilt from the characters'
positions: characters are cut into fragments where the baseline changes or a wide gap opens, and
a page whose fragments leave a vertical gutter free (most lines wholly left or right of it) is
read column by column, between the lines that cross it (a title, a header or footer).
"""
from __future__ import annotations

import ctypes
import statistics
from dataclasses import dataclass

GAP_EMS = 1.2  # a horizontal gap wider than this many font sizes starts a new fragment (a column, a tab stop)
MIN_GUTTER = 6.0  # points: the narrowest gap between two columns
SIDE_SHARE = 0.2  # each column holds at least this share of a page's fragments (and 3)


@dataclass
class Line:
    """A line of a page: its text and box in points from the page's top-left corner; `size` the
    font size most of its characters have, `bold` whether most are bold; `confidence` the OCR
    engine's mean word confidence (0–100) for a line read from an image."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    size: float
    bold: bool = False
    confidence: float | None = None


class _Fragment:
    def __init__(self):
        self.chars: list[str] = []
        self.boxes: list[tuple[float, float, float, float]] = []  # non-space characters: x0, top, x1, bottom
        self.sizes: list[float] = []
        self.bold: list[bool] = []
        self.baseline = 0.0

    def line(self) -> Line:
        x0, top = min(b[0] for b in self.boxes), min(b[1] for b in self.boxes)
        x1, bottom = max(b[2] for b in self.boxes), max(b[3] for b in self.boxes)
        return Line(" ".join("".join(self.chars).split()), x0, top, x1, bottom, statistics.median(self.sizes),
                    sum(self.bold) * 2 > len(self.bold))


def page_fragments(page) -> list[Line]:
    """The fragments of a pypdfium2 page's text layer, in file order (reading_order orders them)."""
    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    try:
        fragments = _fragments(textpage.raw, textpage.count_chars(), page.get_height(), pdfium_c)
    finally:
        textpage.close()
    return [f.line() for f in fragments if f.boxes]


def _fragments(raw, n: int, height: float, pdfium_c) -> list[_Fragment]:
    """The page's characters, in file order, cut into same-baseline runs without wide gaps."""
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    x, y = ctypes.c_double(), ctypes.c_double()
    out, current, last_x1 = [], _Fragment(), None
    for i in range(n):
        char = chr(pdfium_c.FPDFText_GetUnicode(raw, i))
        if char in "\r\n\x02":  # line breaks pdfium inserts; \x02 marks a hyphen it generated
            if current.boxes:
                current.chars.append(" ")
            continue
        if char.isspace() or not pdfium_c.FPDFText_GetCharBox(raw, i, left, right, bottom, top):
            current.chars.append(" ")
            continue
        pdfium_c.FPDFText_GetCharOrigin(raw, i, x, y)
        size = pdfium_c.FPDFText_GetFontSize(raw, i) or (top.value - bottom.value) or 1.0
        baseline = height - y.value
        if current.boxes and (abs(baseline - current.baseline) > 0.5 * size or left.value > last_x1 + GAP_EMS * size
                              or left.value < last_x1 - 3 * size):
            out.append(current)
            current = _Fragment()
        if not current.boxes:
            current.baseline = baseline
        current.chars.append(char)
        current.boxes.append((left.value, height - top.value, right.value, height - bottom.value))
        current.sizes.append(round(size, 1))
        current.bold.append(pdfium_c.FPDFText_GetFontWeight(raw, i) >= 600)
        last_x1 = right.value
    out.append(current)
    return out


def reading_order(fragments: list[Line]) -> list[Line]:
    """Fragments as lines in reading order: column by column where a gutter divides the page
    (between the lines set apart from the columns), top to bottom elsewhere; fragments on one
    baseline within one column are joined into one line."""
    gutter = _gutter(fragments)
    if gutter is None:
        return _rows(fragments)
    a, b = gutter
    apart = _apart(fragments, a, b)
    out, band, row = [], [], []
    for fragment in sorted(fragments, key=lambda f: f.bottom):
        if id(fragment) in apart:
            out += _columns(band, a)
            band = []
            row.append(fragment)
        else:
            out += _rows(row)
            row = []
            band.append(fragment)
    return out + _columns(band, a) + _rows(row)


def _columns(band: list[Line], split: float) -> list[Line]:
    left = [f for f in band if f.x1 <= split]
    if not left or len(left) == len(band):
        return _rows(band)
    return reading_order(left) + reading_order([f for f in band if f.x1 > split])


def _gutter(fragments: list[Line]) -> tuple[float, float] | None:
    """The widest vertical strip (at least MIN_GUTTER points) that most fragments leave free, with
    enough fragments wholly on each side of it, most of them filling their side (label and value
    cells of a table do not); None for a one-column page."""
    if len(fragments) < 6:
        return None
    x0, x1 = min(f.x0 for f in fragments), max(f.x1 for f in fragments)
    edges = sorted({f.x0 for f in fragments} | {f.x1 for f in fragments})
    need = max(3, SIDE_SHARE * len(fragments))
    best = None
    for a, b in zip(edges, edges[1:]):
        if b - a < MIN_GUTTER or a <= x0 or b >= x1 or best is not None and b - a <= best[1] - best[0]:
            continue
        left = [f.x1 - f.x0 for f in fragments if f.x1 <= a]
        right = [f.x1 - f.x0 for f in fragments if f.x0 >= b]
        if (len(left) >= need and len(right) >= need and len(left) + len(right) >= 0.7 * len(fragments)
                and statistics.median(left) >= 0.5 * (a - x0) and statistics.median(right) >= 0.5 * (x1 - b)):
            best = (a, b)
    return best


def _apart(fragments: list[Line], a: float, b: float) -> set[int]:
    """Fragments in neither column: those crossing the gutter, and a baseline with fragments on
    both sides and no other text within a line's height above or below (a footer whose gap falls
    on the gutter)."""
    out = {id(f) for f in fragments if f.x0 < b and f.x1 > a}
    for f in fragments:
        same = [g for g in fragments if abs(g.bottom - f.bottom) < 0.5 * f.size]
        if len({g.x1 <= a for g in same}) == 2 and not any(
                abs(g.bottom - f.bottom) >= 0.5 * f.size and g.top < f.bottom + 1.5 * f.size
                and g.bottom > f.top - 1.5 * f.size for g in fragments):
            out |= {id(g) for g in same}
    return out


def _rows(fragments: list[Line]) -> list[Line]:
    """Fragments top to bottom, those on one baseline joined left to right into one line."""
    rows: list[list[Line]] = []
    for f in sorted(fragments, key=lambda f: f.bottom):
        if rows and abs(rows[-1][0].bottom - f.bottom) < 0.5 * f.size:
            rows[-1].append(f)
        else:
            rows.append([f])
    return [_joined(sorted(row, key=lambda f: f.x0)) for row in rows]


def _joined(row: list[Line]) -> Line:
    if len(row) == 1:
        return row[0]
    return Line(" ".join(f.text for f in row), row[0].x0, min(f.top for f in row), max(f.x1 for f in row),
                max(f.bottom for f in row), statistics.median(f.size for f in row), all(f.bold for f in row))
