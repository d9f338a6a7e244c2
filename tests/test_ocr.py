"""Scanned PDFs read by OCR at index time (Tesseract), made here from examples/contracts: printed
(evaluation/printed.py), rendered to 150 dpi grayscale images and wrapped back into a PDF with no
text layer. Bad scans (encrypted, half typed and half image, sideways, noise) each leave a clear
line, and every other file is indexed."""
from __future__ import annotations

import io
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from rapidfuzz.distance import Levenshtein

from longrag.cli import main
from longrag.documents import load_file, ocr
from longrag.documents.furniture import restore
from longrag.documents.loaders import ReadOptions, UnreadableFile
from longrag.evaluation.printed import print_pdf, scan_pdf
from longrag.pipeline import Pipeline
from tests.helpers import CONTRACTS

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None,
                                          reason="Tesseract is not installed (.ci/setup installs it: apt-get install "
                                            "tesseract-ocr tesseract-ocr-eng)")
FURNITURE = re.compile(r"CONFIDENTIAL|Execution Copy|Initials|Page \d")


def _pages(doc):
    text = restore(doc.text, doc.metadata)
    starts = doc.metadata["page_starts"] + [len(text) + 2]
    return [" ".join(text[a:b - 2].split()) for a, b in zip(starts, starts[1:])]


@pytest.fixture(scope="module")
def apache(tmp_path_factory):
    """Two printed pages of the Apache License, as PDF with text and as a scan."""
    folder = tmp_path_factory.mktemp("apache")
    printed = print_pdf((CONTRACTS / "Apache-2.0.txt").read_text(), "Apache-2.0", pages=2)
    (folder / "printed").mkdir()
    (folder / "scanned").mkdir()
    (folder / "printed" / "Apache-2.0.pdf").write_bytes(printed)
    (folder / "scanned" / "Apache-2.0.pdf").write_bytes(scan_pdf(printed))
    return folder


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LONGRAG_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """One OCR cache for the tests of the module that may share it (each page is read once)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LONGRAG_CACHE", str(tmp_path_factory.mktemp("ocr-cache")))
        yield


@needs_tesseract
def test_a_scan_is_read_page_by_page_with_its_furniture_blanked(apache, module_cache):
    printed = load_file(apache / "printed" / "Apache-2.0.pdf", apache / "printed")
    scanned = load_file(apache / "scanned" / "Apache-2.0.pdf", apache / "scanned")
    assert "ocr" not in printed.metadata
    read = scanned.metadata["ocr"]
    assert read["pages"] == [1, 2] and read["unreadable"] == [] and read["engine"].startswith("tesseract")
    assert all(value > 80 for value in read["confidence"].values())
    for reference, got in zip(_pages(printed), _pages(scanned)):  # each page's text on its own page
        assert Levenshtein.distance(reference, got) <= 0.03 * len(reference)
    assert not FURNITURE.search(scanned.text)
    assert len(scanned.metadata["furniture"]) == 4  # header and footer of both pages
    assert [title for _, _, title in scanned.metadata["headings"]][:3] == [
        "1. Definitions.", "2. Grant of Copyright License.", "3. Grant of Patent License."]


@needs_tesseract
def test_ocr_text_is_cached_by_content_and_keeps_word_boxes(apache, module_cache, monkeypatch):
    first = load_file(apache / "scanned" / "Apache-2.0.pdf", apache / "scanned")

    def no_second_run(*args):
        raise AssertionError("Tesseract ran again on an unchanged file")

    monkeypatch.setattr(ocr, "_tesseract", no_second_run)
    again = load_file(apache / "scanned" / "Apache-2.0.pdf", apache / "scanned")
    assert (again.text, again.metadata) == (first.text, first.metadata)
    words = ocr.cached_pages(first.sha256)["1"].words
    apache_word = next(w for w in words if w[0] == "Apache")
    text, x0, top, x1, bottom, confidence = apache_word
    assert 0 <= x0 < x1 <= 596 and 0 <= top < bottom <= 842 and confidence > 80  # page points on A4


@needs_tesseract
def test_force_reads_every_page_by_ocr_and_off_reads_none(apache, module_cache):
    forced = load_file(apache / "printed" / "Apache-2.0.pdf", apache / "printed", ReadOptions(ocr="force"))
    assert forced.metadata["ocr"]["pages"] == [1, 2]
    with pytest.raises(UnreadableFile, match="index.ocr is off"):
        load_file(apache / "scanned" / "Apache-2.0.pdf", apache / "scanned", ReadOptions(ocr="off"))


def test_without_tesseract_a_scan_is_skipped_with_the_install_command(apache, fresh_cache, monkeypatch):
    monkeypatch.setattr(ocr.shutil, "which", lambda name: None)
    ocr.engine.cache_clear()
    try:
        with pytest.raises(UnreadableFile, match=r"apt-get install tesseract-ocr tesseract-ocr-eng"):
            load_file(apache / "scanned" / "Apache-2.0.pdf", apache / "scanned")
    finally:
        ocr.engine.cache_clear()


def test_without_tesseract_typed_pages_are_kept_and_the_scanned_ones_named(tmp_path, fresh_cache, monkeypatch):
    (tmp_path / "mixed.pdf").write_bytes(_mixed_pdf())
    monkeypatch.setattr(ocr.shutil, "which", lambda name: None)
    ocr.engine.cache_clear()
    try:
        doc = load_file(tmp_path / "mixed.pdf", tmp_path)
    finally:
        ocr.engine.cache_clear()
    assert "orchard lease" in doc.text and "first working day" in doc.text and "Permission" not in doc.text
    assert doc.metadata["pages_without_text"] == [3] and "ocr" not in doc.metadata
    assert doc.metadata["notes"] == ["pages 2, 3 need OCR and were not read: Tesseract OCR is not installed: "
                                     "apt-get install tesseract-ocr tesseract-ocr-eng (as root), then index again"]


def _mixed_pdf() -> bytes:
    """Page 1 typed; page 2 typed on top with a scan of the MIT licence pasted below; page 3 a
    scanned page only."""
    from fpdf import FPDF

    mit = scan_pdf(print_pdf((CONTRACTS / "MIT.txt").read_text(), "MIT"))
    import pypdfium2

    image = pypdfium2.PdfDocument(mit)[0].render(scale=150 / 72, grayscale=True).to_pil()
    pasted = image.crop((0, int(0.12 * image.height), image.width, int(0.45 * image.height)))
    pdf = FPDF(format="A4")
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, "The orchard lease covers forty hectares of apple trees near Tarnow. " * 3)
    pdf.add_page()
    pdf.multi_cell(0, 6, "The tenant pays the rent on the first working day of each quarter. " * 3)
    pdf.image(pasted, x=0, y=120, w=210)
    pdf.add_page()
    pdf.image(image, x=0, y=0, w=210)
    return bytes(pdf.output())


def _noise_pdf() -> bytes:
    noise = Image.fromarray(np.random.default_rng(7).integers(0, 256, (600, 450), dtype=np.uint8))
    out = io.BytesIO()
    noise.save(out, "PDF", resolution=75.0)
    return out.getvalue()


def _encrypted_pdf(tmp_path) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(print_pdf((CONTRACTS / "Zlib.txt").read_text(), "Zlib"))).pages:
        writer.add_page(page)
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@needs_tesseract
@pytest.mark.slow
def test_bad_scans_each_leave_a_line_and_the_rest_is_indexed(tmp_path, fresh_cache):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "encrypted.pdf").write_bytes(_encrypted_pdf(tmp_path))
    (folder / "mixed.pdf").write_bytes(_mixed_pdf())
    (folder / "sideways.pdf").write_bytes(scan_pdf(print_pdf((CONTRACTS / "MIT.txt").read_text(), "MIT"), rotate=90))
    (folder / "noise.pdf").write_bytes(_noise_pdf())
    shutil.copy(CONTRACTS / "Zlib.txt", folder)
    pipe = Pipeline.from_config({"segmenter": {"max_tokens": 64}})
    report = pipe.index([folder], index_dir=tmp_path / "index", progress=False)
    reasons = {path.rsplit("/", 1)[-1]: reason for path, reason in ((s.path, s.reason) for s in report.skipped)}
    assert set(reasons) == {"encrypted.pdf", "noise.pdf"}
    assert "encrypted PDF (password protected)" in reasons["encrypted.pdf"]
    assert "page 1 could not be read by OCR" in reasons["noise.pdf"]
    assert report.documents == 3  # mixed, sideways, Zlib.txt
    mixed = pipe.store.document_row("mixed.pdf")
    assert mixed["metadata"]["ocr"]["pages"] == [2, 3]  # the pasted scan and the scanned page
    pages = _pages(type("D", (), {"text": mixed["text"], "metadata": mixed["metadata"]}))
    assert "orchard lease" in pages[0] and "Permission is hereby granted" not in pages[0]
    assert pages[1].index("first working day") < pages[1].index("Permission is hereby granted")  # typed, then pasted
    assert "Permission is hereby granted" in pages[2]
    sideways = pipe.store.document_row("sideways.pdf")
    assert "Permission is hereby granted, free of charge, to any person" in " ".join(sideways["text"].split())
    words = [w for w in ocr.cached_pages(sideways["sha256"])["1"].words if len(w[0]) >= 6]
    assert all(0 <= x0 < x1 <= 842 and 0 <= top < bottom <= 596 for _, x0, top, x1, bottom, _ in words)
    assert sum(bottom - top > x1 - x0 for _, x0, top, x1, bottom, _ in words) > 0.9 * len(words)  # as the file has them
    assert pipe.search("Is MIT software provided with a warranty?", k=1)[0].doc_id in {"sideways.pdf", "mixed.pdf"}
    info = CliRunner().invoke(main, ["info", "--index", str(tmp_path / "index")]).stdout
    assert re.search(r"mixed\.pdf: pages 2–3 read by OCR, mean confidence \d+\.\d", info), info
    assert re.search(r"sideways\.pdf: page 1 read by OCR, mean confidence \d+\.\d", info), info
