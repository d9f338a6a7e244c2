"""Printed and scanned copies of text files, as people's contracts come: a PDF with a running header
("<name> — CONFIDENTIAL — Execution Copy"), a footer ("Initials: ____ ____ … Page N"), a title in a
larger bold font, one or two columns; and a scan of it (each page an image, no text layer).

Made at run time by tests and benchmarks/ocr.py (no binaries are kept). Two-column pages are written
row by row — the left line, then the right line beside it — so the order of the text in the file is
not the reading order, and a reader must find the columns by their positions.
"""
from __future__ import annotations

import io
from pathlib import Path

HEADER = "{name} — CONFIDENTIAL — Execution Copy"
FOOTER = "Initials: ____ ____"
PAGE = (210.0, 297.0)  # A4, mm
MARGIN = 20.0
GUTTER = 8.0
BODY_SIZE = 10
LEADING = 4.6  # mm between baselines


def _font_files() -> tuple[Path, Path]:
    """DejaVu Sans regular and bold, as matplotlib ships them (every character of the licences)."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"


def print_pdf(text: str, name: str, columns: int = 1, pages: int | None = None) -> bytes:
    """`text` laid out as a PDF: its first line as a bold title, the rest in `columns` columns,
    each page with the header and footer; at most `pages` pages when given."""
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(False)
    regular, bold = _font_files()
    pdf.add_font("body", "", str(regular))
    pdf.add_font("body", "B", str(bold))
    title, _, rest = text.strip().partition("\n")
    width = (PAGE[0] - 2 * MARGIN - (columns - 1) * GUTTER) / columns
    pdf.add_page()  # fpdf2 measures lines on a page
    pdf.set_font("body", size=BODY_SIZE)
    lines = [line for paragraph in rest.split("\n")
             for line in (pdf.multi_cell(width, LEADING, paragraph, dry_run=True, output="LINES") if paragraph.strip()
                          else [""])]
    top, bottom = MARGIN + 6, PAGE[1] - MARGIN - 4
    rows = int((bottom - top) // LEADING)
    page = 0
    while lines and (pages is None or page < pages):
        page += 1
        if page > 1:
            pdf.add_page()
        pdf.set_font("body", size=8)
        pdf.text(MARGIN, MARGIN - 6, HEADER.format(name=name))
        pdf.text(MARGIN, PAGE[1] - MARGIN + 6, FOOTER)
        pdf.text(PAGE[0] - MARGIN - pdf.get_string_width(f"Page {page}"), PAGE[1] - MARGIN + 6, f"Page {page}")
        y = top
        if page == 1:
            pdf.set_font("body", "B", 16)
            pdf.text(MARGIN, y + 2, title)
            y += 12
        here = int((bottom - y) // LEADING)
        chunks = [lines[i * here:(i + 1) * here] for i in range(columns)]
        lines = lines[columns * here:]
        pdf.set_font("body", size=BODY_SIZE)
        for row in range(here):  # row by row across the columns: file order is not reading order
            for column, chunk in enumerate(chunks):
                if row < len(chunk) and chunk[row].strip():
                    pdf.text(MARGIN + column * (width + GUTTER), y + row * LEADING, chunk[row])
    return bytes(pdf.output())


def scan_pdf(pdf: bytes, dpi: int = 150, rotate: int = 0) -> bytes:
    """Each page of `pdf` rendered to a grayscale image (turned `rotate` degrees clockwise) and
    wrapped into a PDF of images: what a scanner gives, with no text layer."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    images = []
    try:
        for page in document:
            image = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            images.append(image.rotate(-rotate, expand=True))
    finally:
        document.close()
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=float(dpi))
    return out.getvalue()
