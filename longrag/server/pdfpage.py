"""A PDF page as it looks, and where a span of the indexed text lies on it: the page rendered to PNG
by pypdfium2, and the boxes of the lines a span covers, from pypdfium2's character boxes.

The indexed text of a page (pypdf's extraction) and pdfium's characters of that page are matched
on their letters without whitespace (NFKC-folded, so a ligature matches its letters), aligned with
difflib where the two extractions differ; a span's letters lead to pdfium characters, whose boxes are
joined line by line. Boxes are fractions of the page (0..1 from its top left), so the page draws
them over the image at any size. A scanned page has no characters: its boxes come from the words
OCR read on it (kept in the OCR cache by the file's sha256; documents/ocr.py), one box per word.
"""
from __future__ import annotations

import difflib
import io
import unicodedata
from dataclasses import dataclass

from ..documents.pdf import PDFIUM

MAX_PIXELS = 4000 * 4000  # a rendered page at most this big, whatever its size in points


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float


def render(path: str, page: int, width: int) -> bytes:
    """Page `page` (1-based) as PNG, `width` pixels wide."""
    import pypdfium2 as pdfium

    with PDFIUM:
        pdf = pdfium.PdfDocument(path)
        try:
            sheet = pdf[page - 1]
            points_wide, points_high = sheet.get_size()
            scale = min(width / points_wide, (MAX_PIXELS / (points_wide * points_high)) ** 0.5)
            image = sheet.render(scale=scale).to_pil()
        finally:
            pdf.close()
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False)
    return out.getvalue()


def line_boxes(path: str, page: int, text: str, spans: list[tuple[int, int]],
               words: list[list] | None = None) -> list[list[Box]]:
    """For each span [start, end) of `text` (the page's indexed text), the boxes of the lines it
    covers on page `page` of the PDF at `path`; [] for a span found nowhere on the page. `words`:
    the page's OCR words ([text, x0, top, x1, bottom, confidence] in points from the top left),
    read in place of its characters."""
    import pypdfium2 as pdfium

    with PDFIUM:
        pdf = pdfium.PdfDocument(path)
        try:
            sheet = pdf[page - 1]
            left, bottom, right, top = sheet.get_bbox()
            if words:
                chars, boxes = [], []
                for word, x0, y0, x1, y1, *_ in words:  # one box for each letter of a word: the word's
                    chars += list(str(word)) + [" "]
                    boxes += [(left + x0, top - y1, left + x1, top - y0)] * len(str(word)) + [(0, 0, 0, 0)]
            else:
                textpage = sheet.get_textpage()
                count = textpage.count_chars()
                chars = [textpage.get_text_range(i, 1) for i in range(count)]
                boxes = [textpage.get_charbox(i, loose=False) for i in range(count)]
        finally:
            pdf.close()
    letters, where = _letters(chars)
    ours, offsets = _letters(text)
    to_pdf = _alignment(ours, letters)
    out = []
    for start, end in spans:
        picked = sorted({where[to_pdf[k]] for k, offset in enumerate(offsets)
                         if start <= offset < end and to_pdf.get(k) is not None})
        rects = [boxes[i] for i in picked]
        out.append([_fraction(r, left, bottom, right, top) for r in _lines(rects)])
    return out


def ocr_words(sha256: str, page: int) -> list[list] | None:
    """The words OCR read on a page of the file with this content, where the OCR cache keeps them."""
    try:
        from ..documents import ocr
    except ImportError:  # a longrag without OCR
        return None
    read = ocr.cached_pages(sha256).get(str(page))
    return read.words if read is not None and read.words else None


def _letters(text) -> tuple[list[str], list[int]]:
    """The non-space characters of `text` (a str, or a list of one-character strings), NFKC-folded and
    lower-cased, with the index each came from."""
    letters, where = [], []
    for i, char in enumerate(text):
        for letter in unicodedata.normalize("NFKC", char).casefold():
            if not letter.isspace():
                letters.append(letter)
                where.append(i)
    return letters, where


def _alignment(ours: list[str], theirs: list[str]) -> dict[int, int]:
    """Index in `ours` → index in `theirs` of the same letter, over the blocks the two share."""
    if ours == theirs:
        return dict(enumerate(range(len(ours))))
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    return {a + k: b + k for a, b, size in matcher.get_matching_blocks() for k in range(size)}


def _lines(rects: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """Character boxes (left, bottom, right, top), in reading order, joined into one box per line:
    a character starts a new line when it does not overlap the current line's height by half."""
    lines: list[list[float]] = []
    for l, b, r, t in rects:
        if r <= l or t <= b:
            continue  # a character pdfium generated (no ink)
        if lines:
            line = lines[-1]
            overlap = min(t, line[3]) - max(b, line[1])
            if overlap >= 0.5 * min(t - b, line[3] - line[1]) and l >= line[0] - (t - b):
                lines[-1] = [min(l, line[0]), min(b, line[1]), max(r, line[2]), max(t, line[3])]
                continue
        lines.append([l, b, r, t])
    return [tuple(line) for line in lines]


def _fraction(rect, left: float, bottom: float, right: float, top: float) -> Box:
    l, b, r, t = rect
    width, height = right - left, top - bottom
    return Box(round((l - left) / width, 5), round((top - t) / height, 5), round((r - l) / width, 5),
               round((t - b) / height, 5))
