"""PDFs with a text layer, printed here from examples/contracts (evaluation/printed.py): running
headers and footers kept out of the text that is read, numbered clauses and font headings as
sections, two-column pages read column by column; then indexed and searched for real."""
from __future__ import annotations

import re

import pytest

from longrag.documents import load_file
from longrag.documents.furniture import restore
from longrag.documents.locations import locate
from longrag.documents.pdf_layout import Line, reading_order
from longrag.evaluation.printed import FOOTER, HEADER, print_pdf
from longrag.pipeline import Pipeline
from longrag.reasoning.sentences import split_sentences
from tests.helpers import CONTRACTS

FURNITURE = re.compile(r"CONFIDENTIAL|Execution Copy|Initials|Page \d")


def _printed(folder, name, columns=1, pages=None):
    path = folder / f"{name}.pdf"
    path.write_bytes(print_pdf((CONTRACTS / f"{name}.txt").read_text(), name, columns, pages))
    return load_file(path, folder)


def _words(text):
    return " ".join(text.split())


def _page_texts(text, metadata):
    starts = metadata["page_starts"] + [len(text) + 2]
    return [text[a:b - 2] for a, b in zip(starts, starts[1:])]


def test_headers_and_footers_are_blanked_with_offsets_kept(tmp_path):
    doc = _printed(tmp_path, "Apache-2.0", pages=3)
    assert doc.metadata["pages"] == 3
    assert not FURNITURE.search(doc.text)  # nothing of them is read
    shown = {line for _, line in doc.metadata["furniture"]}
    assert shown == {HEADER.format(name="Apache-2.0")} | {f"{FOOTER} Page {n}" for n in (1, 2, 3)}
    original = restore(doc.text, doc.metadata)
    assert len(original) == len(doc.text)
    for number, page in enumerate(_page_texts(original, doc.metadata), 1):  # each page as printed
        assert page.startswith(HEADER.format(name="Apache-2.0")) and page.rstrip().endswith(f"Page {number}")
    body = _words((CONTRACTS / "Apache-2.0.txt").read_text())
    sentences = [_words(doc.text[a:b]) for a, b in split_sentences(doc.text)]
    assert len(sentences) > 40 and all(not FURNITURE.search(s) for s in sentences)
    across = [s for s in sentences if s in body]  # the sentence across a page break reads on, as in the text file
    assert len(across) >= 0.9 * len(sentences)


def test_a_one_page_document_loses_its_header_and_footer_too(tmp_path):
    doc = _printed(tmp_path, "MIT")
    assert doc.metadata["pages"] == 1
    assert not FURNITURE.search(doc.text)
    assert "Permission is hereby granted, free of charge" in doc.text


def test_numbered_clauses_and_the_title_font_become_sections(tmp_path):
    doc = _printed(tmp_path, "Apache-2.0", pages=3)
    headings = doc.metadata["headings"]
    assert headings[0][1:] == [1, "Apache License"]  # set larger and bold than the body
    titles = [title for _, level, title in headings if level == 2]
    assert titles[:6] == ["1. Definitions.", "2. Grant of Copyright License.", "3. Grant of Patent License.",
                          "4. Redistribution.", "5. Submission of Contributions.", "6. Trademarks."]
    start = doc.text.index("This License does not grant permission to use the trade")
    assert locate(doc.metadata, start, start + 80)["section"] == ("Apache License", "6. Trademarks.")


def test_two_column_pages_are_read_column_by_column(tmp_path):
    doc = _printed(tmp_path, "Apache-2.0", columns=2, pages=3)
    text = _words(doc.text)
    order = [text.index(t) for t in ("1. Definitions.", "2. Grant of Copyright License.", "3. Grant of Patent",
                                     "4. Redistribution.", "5. Submission of Contributions.", "6. Trademarks.")]
    assert order == sorted(order)
    for sentence in ('"Legal Entity" shall mean the union of the acting entity and all other entities that control,',
                     "6. Trademarks. This License does not grant permission to use the trade names, trademarks,"):
        assert sentence in text  # lines of one column follow each other
    assert not FURNITURE.search(doc.text)
    # the file itself holds the page row by row (left line, right line): read in file order it interleaves
    import pypdfium2

    raw = pypdfium2.PdfDocument((tmp_path / "Apache-2.0.pdf").read_bytes())[0].get_textpage().get_text_range()
    assert '"Legal Entity" shall mean the union of the acting entity and all other entities that control,' \
        not in _words(raw)


def test_reading_order_keeps_a_footer_split_by_the_gutter_whole():
    def line(text, x0, x1, y):
        return Line(text, x0, y - 10, x1, y, 10)

    rows = [line(f"left {i} words of the first column", 50, 280, 100 + 14 * i) for i in range(8)]
    rows += [line(f"right {i} words of the second column", 300, 540, 100 + 14 * i) for i in range(8)]
    footer = [line("Initials: ____", 50, 120, 800), line("Page 3", 500, 540, 800)]
    header = line("Title across both columns of the page", 50, 540, 60)
    ordered = [f.text for f in reading_order(footer + rows[::-1] + [header])]
    assert ordered == ([header.text] + [f"left {i} words of the first column" for i in range(8)]
                       + [f"right {i} words of the second column" for i in range(8)] + ["Initials: ____ Page 3"])


def test_a_table_of_short_cells_is_not_taken_for_columns():
    cells = [Line(text, x0, y - 10, x0 + 40, y, 10) for y in range(100, 300, 20)
             for text, x0 in ((f"label{y}", 50), (f"value{y}", 400))]
    cells += [Line("A sentence that runs across the whole width of the page, as prose does.", 50, 40, 540, 50, 10)]
    ordered = [f.text for f in reading_order(cells)]
    assert ordered[1:3] == ["label100 value100", "label120 value120"]  # row by row


@pytest.mark.slow
def test_search_over_printed_contracts_names_the_clause_and_shows_no_furniture(tmp_path):
    folder = tmp_path / "printed"
    folder.mkdir()
    for name, columns in (("Apache-2.0", 2), ("MIT", 1), ("BSD-3-Clause", 1), ("Zlib", 2)):
        (folder / f"{name}.pdf").write_bytes(print_pdf((CONTRACTS / f"{name}.txt").read_text(), name, columns))
    pipe = Pipeline.from_config({"segmenter": {"max_tokens": 64}})
    pipe.index([folder], index_dir=tmp_path / "index", progress=False)
    questions = {"Can I use the licensor's trademarks under the Apache License?": ("Apache-2.0.pdf", "6. Trademarks."),
                 "Is the software under the MIT licence provided with any warranty?": ("MIT.pdf", None),
                 "Under the zlib licence, must altered source versions be marked?": ("Zlib.pdf", None)}
    for question, (doc_id, section) in questions.items():
        hits = pipe.search(question, k=4)
        assert hits[0].doc_id == doc_id, question
        assert all(not FURNITURE.search(hit.snippet) for hit in hits), question
        if section:
            assert hits[0].section[-1] == section
    # the server's document view shows the page as printed, at the offsets its quotes point at
    import httpx
    from longrag.server import running

    stored = pipe.store.document_row("Apache-2.0.pdf")["text"]
    with running(pipe) as url:
        shown = httpx.get(f"{url}/api/documents/Apache-2.0.pdf", timeout=60).json()["text"]
    assert len(shown) == len(stored) and FURNITURE.search(shown) and not FURNITURE.search(stored)
    assert all(a == b for a, b in zip(shown, stored) if not b.isspace())
