"""A PDF's text, pages and structure: the text layer read in reading order (pdf_layout.py), pages
without one read by OCR (ocr.py), page furniture blanked (furniture.py), and headings from
numbered clauses and from fonts larger or bolder than the body text.

Metadata recorded (besides pages, page_starts, pages_without_text, title, headings; see
locations.py): `furniture` ([start, text] of each blanked line) and, for a file read by OCR,
`ocr`: {engine, pages (page numbers read by OCR), confidence ({page: mean word confidence}),
unreadable (pages OCR could not read)}; the words and their boxes stay in the OCR cache
(ocr.cached_pages, by the file's sha256).
"""
from __future__ import annotations

import hashlib
import re
import statistics
import threading
from typing import Sequence

from tqdm.auto import tqdm

from . import furniture, ocr
from .locations import numbered_clauses, short_title
from .pdf_layout import Line, page_fragments, reading_order

# PDFium is not thread-safe: one caller at a time in this process, across documents (reading here, and a
# server rendering pages while an upload is read); re-entrant, so a caller may hold it around a read
PDFIUM = threading.RLock()
OCR_MODES = ("auto", "off", "force")  # index.ocr: pages without a text layer are OCR'd | never | every page
MIN_TEXT_CHARS = 20  # a page with fewer characters in its text layer counts as having none
IMAGE_SHARE = 0.2  # an image covering this share of a page beside its text is OCR'd too (a pasted scan)
HEADING_SIZE = 1.15  # a line this much larger than the body text (or bold, where the body is not) is a heading
MAX_HEADING_CHARS = 150  # lines set as a heading that run longer are emphasis, not a heading


class Unreadable(Exception):
    """The PDF cannot be read at all (the message says why and what to do)."""


def read_pdf(data: bytes, metadata: dict, mode: str = "auto", progress: bool = False, name: str = "") -> str:
    """The text of a PDF, pages joined by a blank line; fills in `metadata`."""
    with PDFIUM:
        return _read_pdf(data, metadata, mode, progress, name)


def _read_pdf(data: bytes, metadata: dict, mode: str, progress: bool, name: str) -> str:
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise Unreadable("encrypted PDF (password protected): save an unprotected copy (e.g. qpdf --decrypt "
                             "--password=… in.pdf out.pdf) and index that") from None
        raise Unreadable(f"corrupt or unreadable PDF ({exc})") from None
    try:
        title = (document.get_metadata_dict().get("Title") or "").strip()
        pages, heights, notes = _pages(document, data, mode, progress, name, metadata)
    finally:
        document.close()
    metadata["pages"] = len(pages)
    if title:
        metadata["title"] = " ".join(title.split())
    return _assemble(pages, heights, metadata, notes)


def _pages(document, data: bytes, mode: str, progress: bool, name: str, metadata: dict):
    """Each page's lines in reading order (text layer and OCR merged), page heights, and notes."""
    fragments, jobs, heights = [], [], []
    for number, page in enumerate(document, 1):
        width, height = page.get_size()
        heights.append(height)
        found = page_fragments(page) if mode != "force" else []
        fragments.append(found)
        if mode == "off":
            continue
        if sum(len(f.text) for f in found) < MIN_TEXT_CHARS:
            jobs.append((number, None))
        else:
            jobs += [(number, box) for box in _pasted_images(page, found, width * height)]
    notes: list[str] = []
    read = _ocr(document, jobs, data, progress, name, notes, metadata) if jobs else {}
    lines = [reading_order(found + [line for key, page in read.items() if key[0] == number for line in page.lines])
             for number, found in enumerate(fragments, 1)]
    return lines, heights, notes


def _pasted_images(page, text: Sequence[Line], area: float) -> list[tuple[float, ...]]:
    """Boxes (x0, top, x1, bottom in points) of large images on a page that also has text, where
    no text of the text layer lies on them: a scan pasted beside typed text."""
    import pypdfium2.raw as pdfium_c

    height = page.get_height()
    out = []
    for image in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        left, bottom, right, top = image.get_bounds()
        box = (left, height - top, right, height - bottom)
        if (right - left) * (top - bottom) >= IMAGE_SHARE * area and not any(
                line.x0 < box[2] and line.x1 > box[0] and line.top < box[3] and line.bottom > box[1] for line in text):
            out.append(tuple(round(v, 1) for v in box))
    return out


def _ocr(document, jobs, data: bytes, progress: bool, name: str, notes: list[str], metadata: dict) -> dict:
    """{(page, box): PageText} for the jobs, from the cache where it has them."""
    sha = hashlib.sha256(data).hexdigest()
    cached = ocr.cached_pages(sha)
    todo = [job for job in jobs if _key(job) not in cached]
    if todo:
        try:
            ocr.engine()
        except ocr.OcrUnavailable as exc:
            pages = sorted({number for number, _ in todo})
            notes.append(f"{_pages_named(pages)} {'need' if len(pages) > 1 else 'needs'} OCR and were not read: {exc}")
            todo = []
    if todo:
        with tqdm(total=len(todo), desc=f"OCR {name}".strip(), unit="page", disable=not progress, leave=False) as bar:
            for job, page in ocr.read_all(((job, _renderer(document, job)) for job in todo), lambda: bar.update(1)):
                cached[_key(job)] = page
        ocr.keep(sha, cached)
    read = {job: cached[_key(job)] for job in jobs if _key(job) in cached}
    if read:
        numbers = sorted({number for number, _ in read})
        confidence = {str(n): round(statistics.mean(p.confidence for (m, _), p in read.items() if m == n), 1)
                      for n in numbers}
        unreadable = sorted({number for (number, _), page in read.items() if not page.readable})
        metadata["ocr"] = {"engine": _engine_name(), "pages": numbers,
                           "confidence": confidence, "unreadable": unreadable}
        if unreadable:
            notes.append(f"{_pages_named(unreadable)} could not be read by OCR (no legible text)")
    return {job: page for job, page in read.items() if page.readable}


def _engine_name() -> str:
    try:
        return ocr.engine()
    except ocr.OcrUnavailable:
        return "tesseract"


def _key(job) -> str:
    number, box = job
    return str(number) if box is None else f"{number}:{','.join(map(str, box))}"


def _renderer(document, job):
    """A function rendering the job's page (or image box on it) at OCR resolution, in grayscale."""
    number, box = job

    def render():
        scale = ocr.DPI / 72
        image = document[number - 1].render(scale=scale, grayscale=True).to_pil().convert("L")
        if box is None:
            return image, scale, (0.0, 0.0)
        return image.crop(tuple(round(v * scale) for v in box)), scale, (box[0], box[1])
    return render


def _pages_named(pages: Sequence) -> str:
    many = len(pages) > 1 or any("–" in str(p) for p in pages)
    return f"page{'s' if many else ''} {', '.join(map(str, pages))}"


def _assemble(pages: list[list[Line]], heights: list[float], metadata: dict, notes: list[str]) -> str:
    """Pages joined by a blank line (lines by a line break, paragraphs by a blank line), furniture
    blanked; page_starts, furniture and headings recorded."""
    extra = furniture.find(pages, heights)
    texts, blanked, styled, offset = [], [], [], 0
    starts = []
    for lines, skip in zip(pages, extra):
        starts.append(offset)
        parts, at = [], offset
        for i, line in enumerate(lines):
            if i:
                above = lines[i - 1]  # a blank line where a paragraph or a column ends
                gap = "\n\n" if line.top - above.bottom > 0.8 * line.size or line.top < above.top else "\n"
                parts.append(gap)
                at += len(gap)
            if i in skip:
                blanked.append([at, line.text])
            elif line.confidence is None:
                styled.append((at, line))
            parts.append(line.text)
            at += len(line.text)
        texts.append("".join(parts))
        offset = at + 2
    text = furniture.blank("\n\n".join(texts), [(s, s + len(line)) for s, line in blanked])
    metadata["page_starts"] = starts
    metadata["pages_without_text"] = [n for n, page in enumerate(texts, 1) if not page.strip()]
    metadata["furniture"] = blanked
    metadata["headings"] = headings(text, styled)
    if notes:
        metadata["notes"] = notes
    return text


def _opens_paragraph(text: str, start: int) -> bool:
    """Whether a line break before `start` ends a paragraph (a blank line, a stop, or a short line)
    rather than wrapping one: "Version\n2.0 (the License)" is no clause 2.0."""
    before = text[:text.rfind("\n", 0, start) + 1].rstrip(" ")
    if not before.strip() or before.endswith("\n\n") or before.rstrip().endswith((".", ":", ";")):
        return True
    previous = before.rstrip("\n").rsplit("\n", 1)[-1]
    nearby = [len(line) for line in text[max(0, start - 2000):start + 2000].split("\n") if line.strip()]
    return len(previous.strip()) < 0.7 * statistics.median(nearby)


def headings(text: str, styled: list[tuple[int, Line]]) -> list[list]:
    """Numbered clauses of the text, below headings set in a larger or bolder font than the body
    (levels by size, largest first); a styled line that opens a numbered clause is that clause."""
    clauses = [clause for clause in numbered_clauses(text) if _opens_paragraph(text, clause[0])]
    if not styled:
        return clauses
    sizes = [line.size for _, line in styled for _ in range(len(line.text))]
    body = statistics.mode(sizes)
    body_bold = statistics.mode([line.bold for _, line in styled for _ in range(len(line.text))])
    opened = {start for start, _, _ in clauses}
    found = [(start, line) for start, line in styled
             if (line.size >= HEADING_SIZE * body or line.bold and not body_bold and line.size >= body)
             and re.search(r"[^\W\d_]{2}", line.text)  # a word, not a letter of a diagonal watermark
             and not any(start <= s < start + len(line.text) for s in opened)]
    merged: list[list] = []  # a heading set on two lines is one heading
    for start, line in found:
        last = merged[-1] if merged else None
        if last and last[2] == (line.size, line.bold) and text[last[0] + len(last[1]):start].strip() == "":
            last[1] = text[last[0]:start + len(line.text)]
        else:
            merged.append([start, line.text, (line.size, line.bold)])
    merged = [m for m in merged if len(m[1]) <= MAX_HEADING_CHARS]  # a bold paragraph (a disclaimer) is no heading
    styles = sorted({style for _, _, style in merged}, key=lambda s: (-s[0], not s[1]))
    out = [[start, styles.index(style) + 1, short_title(title)] for start, title, style in merged]
    out += [[start, level + len(styles), title] for start, level, title in clauses]
    return sorted(out)


def ocr_summary(store) -> list[str]:
    """'scan.pdf: pages 1–4 read by OCR, mean confidence 91.2; page 3 unreadable' for each
    document of the index with pages read by OCR (`longrag info`)."""
    from .locations import _metadata  # the one reader of stored metadata by document

    out = []
    for doc_id, metadata in _metadata(store, lambda text: '"ocr"' in text):
        read = metadata.get("ocr")
        if not read or not read.get("pages"):
            continue
        confidence = statistics.mean(read["confidence"].values())
        line = f"{doc_id}: {_pages_named(_ranges(read['pages']))} read by OCR, mean confidence {confidence:.1f}"
        if read.get("unreadable"):
            line += f"; {_pages_named(_ranges(read['unreadable']))} unreadable"
        out.append(line)
    return out


def _ranges(numbers: Sequence[int]) -> list[str]:
    """[1, 2, 3, 5] → ['1–3', '5']."""
    out: list[list[int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return [f"{a}–{b}" if b > a else str(a) for a, b in out]
