"""Locations: pages of PDFs built here, headings of DOCX / HTML / Markdown, numbered clauses of a
plain-text licence, on real files through the real index, search, ask, CLI and LangChain paths;
an index written before locations loads and says they are missing until the next update."""
import json
import re
import shutil
from dataclasses import replace

import pytest
from click.testing import CliRunner

from longrag.cli import main
from longrag.documents import load_file
from longrag.documents.locations import (heading_path, locate, markdown_headings, numbered_clauses, page_range,
                                         shown, with_locations)
from longrag.pipeline import Pipeline
from longrag.types import Citation, Document
from tests.helpers import CONTRACTS

# three PDFs, 20 known sentences: {file: [page 1 sentences, page 2 sentences, ...]}; [] = a blank page
PDFS = {
    "orchard.pdf": [["The orchard lease covers forty hectares of apple trees near Tarnow.",
                     "Rent for the orchard is paid each October after the harvest."],
                    ["The tenant must prune every pear tree before the first frost.",
                     "Beehives may be kept on the eastern slope from April to June."],
                    ["Irrigation water comes from the river under a licence of 1998.",
                     "A hailstorm that destroys half the crop halves the rent for that year."]],
    "shipping.pdf": [["The carrier delivers refrigerated containers to Rotterdam within nine days.",
                      "Demurrage is charged at eighty euros per container per day."],
                     [],  # a scanned page: no extractable text
                     ["Customs paperwork for bananas is prepared by the shipper in Guayaquil.",
                      "Cargo insurance covers spoilage caused by a failed compressor."],
                     ["Disputes about damaged pallets go to arbitration in Hamburg.",
                      "The captain may refuse cargo that is not labelled with its weight."]],
    "clinic.pdf": [["The clinic opens at seven on weekdays and closes at noon on Saturdays.",
                    "Vaccination appointments for children are booked through the front desk."],
                   ["Patients must bring their insurance card to every dental visit.",
                    "The pharmacy on the ground floor fills prescriptions until eight in the evening."],
                   ["Physiotherapy sessions last forty five minutes and are paid in advance.",
                    "Blood samples are taken only before ten in the morning."],
                   ["Parking for patients is free for the first two hours.",
                    "The clinic keeps medical records for twenty years after the last visit."]],
}
SETTINGS = {"segmenter": {"max_tokens": 24},  # sentence-sized segments: a search span is one sentence's place
            "generator": {"model": "SmolLM2-135M-Instruct", "max_new_tokens": 24},
            "ask": {"documents": 2, "candidates": 4, "budget": 384, "checker": None}}


def _write_pdf(path, pages):
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF()
    pdf.set_title(path.stem.title())
    pdf.set_font("Helvetica", size=11)
    for sentences in pages:
        pdf.add_page()
        if not sentences:
            pdf.rect(20, 20, 120, 160)  # a drawing, no text: what a scanned page gives pypdf
        for sentence in sentences:
            pdf.cell(text=sentence, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.output(str(path))


def _write_docx(path):
    import docx

    d = docx.Document()
    d.add_heading("Service Agreement", level=0)
    d.add_heading("Payment Terms", level=1)
    d.add_paragraph("Invoices are due within thirty days of delivery.")
    d.add_heading("Late Fees", level=2)
    d.add_paragraph("A late fee of two percent per month applies to unpaid invoices. It is capped at twelve percent.")
    d.add_heading("Termination", level=1)
    d.add_paragraph("Either party may end this agreement with ninety days written notice to the other party.")
    d.save(path)


HTML = """<html><head><title>Staff Handbook</title></head><body>
<h1>Staff Handbook</h1><p>Welcome to the company.</p>
<h2>Leave</h2><p>Employees receive twenty six days of paid leave a year.</p>
<h3>Parental leave</h3><p>New parents may take sixteen weeks of paid parental leave with full salary.</p>
<h2>Equipment</h2><p>Laptops are replaced every four years by the IT desk.</p></body></html>"""
MARKDOWN = """Field Guide
===========

Intro text about the guide.

## Mushrooms

```
# not a heading: code
```

### Chanterelles

Chanterelles grow under beech trees and smell faintly of apricots in September.

## Berries

Bilberries ripen in July on acid heathland soils.
"""


def _pages(path):
    """Each page's text as pypdf extracts it: the oracle the reported pages are checked against."""
    from pypdf import PdfReader

    return [page.extract_text() or "" for page in PdfReader(str(path)).pages]


def _find(text, sentence):
    """Offsets of a sentence in extracted text (line breaks may differ from spaces)."""
    match = re.search(r"\s+".join(map(re.escape, sentence.split())), text)
    assert match, sentence
    return match.start(), match.end()


# ---- pure logic ---------------------------------------------------------------------------------

def test_page_range_reports_every_page_a_span_touches():
    starts = [0, 100, 102, 200]  # page 3 starts 2 characters after page 2: page 2 is empty
    assert page_range(starts, 0, 50) == (1,)
    assert page_range(starts, 90, 150) == (1, 2, 3)
    assert page_range(starts, 102, 200) == (3,)  # ends at page 4's start: not on page 4
    assert page_range(starts, 250, 260) == (4,)


def test_heading_path_nests_and_pops_levels():
    headings = [[0, 1, "A"], [10, 2, "A.1"], [20, 3, "A.1.a"], [30, 2, "A.2"], [40, 1, "B"]]
    assert heading_path(headings, 25) == ("A", "A.1", "A.1.a")
    assert heading_path(headings, 35) == ("A", "A.2")
    assert heading_path(headings, 45) == ("B",)
    assert locate({"headings": headings}, 28, 40) == {"section": ("A", "A.2")}  # most of the span lies in A.2


def test_numbered_clauses_of_a_real_licence():
    text = (CONTRACTS / "Apache-2.0.txt").read_text()
    titles = [title for _, _, title in numbered_clauses(text)]
    assert titles == ["1. Definitions.", "2. Grant of Copyright License.", "3. Grant of Patent License.",
                      "4. Redistribution.", "5. Submission of Contributions.", "6. Trademarks.",
                      "7. Disclaimer of Warranty.", "8. Limitation of Liability.",
                      "9. Accepting Warranty or Additional Liability."]
    lgpl = [title for _, _, title in numbered_clauses((CONTRACTS / "LGPL-2.1-only.txt").read_text())]
    assert lgpl[0].startswith("0. This License Agreement") and not any("Franklin" in t for t in lgpl)  # an address
    eupl = [title for _, _, title in numbered_clauses((CONTRACTS / "EUPL-1.2.txt").read_text())]
    assert eupl[-1] == "15. Applicable Law" and len(eupl) == 15  # written "15.Applicable Law", no space
    cddl = numbered_clauses((CONTRACTS / "CDDL-1.0.txt").read_text())
    assert [1, "1. Definitions."] == cddl[0][1:] and cddl[1][1] == 2 and cddl[1][2].startswith("1.1. “Contributor”")


def test_markdown_headings_skip_code_and_read_setext():
    headings = markdown_headings(MARKDOWN)
    assert [(level, title) for _, level, title in headings] == [(1, "Field Guide"), (2, "Mushrooms"),
                                                                (3, "Chanterelles"), (2, "Berries")]
    assert all(MARKDOWN[start:].lstrip("# ").startswith(title) for start, _, title in headings)


def test_loaders_record_structure_of_real_files(tmp_path):
    _write_pdf(tmp_path / "shipping.pdf", PDFS["shipping.pdf"])
    _write_docx(tmp_path / "agreement.docx")
    (tmp_path / "handbook.html").write_text(HTML)
    (tmp_path / "guide.md").write_text(MARKDOWN)
    shutil.copy(CONTRACTS / "Apache-2.0.txt", tmp_path)
    docs = {p.name: load_file(p, tmp_path) for p in sorted(tmp_path.iterdir())}

    pdf = docs["shipping.pdf"]
    assert pdf.metadata["pages"] == 4 and pdf.metadata["pages_without_text"] == [2]
    assert pdf.metadata["title"] == "Shipping"
    start, end = _find(pdf.text, PDFS["shipping.pdf"][2][0])
    assert locate(pdf.metadata, start, end)["page"] == 3  # after the blank page, not page 2

    def section_of(doc, sentence):
        return locate(doc.metadata, *_find(doc.text, sentence)).get("section")

    docx_doc = docs["agreement.docx"]
    assert docx_doc.metadata["title"] == "Service Agreement"
    assert section_of(docx_doc, "A late fee of two percent") == ("Payment Terms", "Late Fees")
    assert section_of(docx_doc, "Invoices are due") == ("Payment Terms",)
    assert section_of(docx_doc, "Either party may end") == ("Termination",)
    html = docs["handbook.html"]
    assert html.metadata["title"] == "Staff Handbook"
    assert section_of(html, "sixteen weeks") == ("Staff Handbook", "Leave", "Parental leave")
    assert section_of(html, "Laptops are replaced") == ("Staff Handbook", "Equipment")
    assert section_of(docs["guide.md"], "Chanterelles grow") == ("Field Guide", "Mushrooms", "Chanterelles")
    assert section_of(docs["Apache-2.0.txt"], "This License does not grant permission to use the trade names") \
        == ("6. Trademarks.",)
    assert all(d.metadata["locations"] == 1 for d in docs.values())


# ---- the real index, search, ask, CLI -------------------------------------------------------------

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    docs = tmp_path_factory.mktemp("located")
    for name, pages in PDFS.items():
        _write_pdf(docs / name, pages)
    _write_docx(docs / "agreement.docx")
    (docs / "handbook.html").write_text(HTML)
    (docs / "guide.md").write_text(MARKDOWN)
    shutil.copy(CONTRACTS / "Apache-2.0.txt", docs)
    return docs


@pytest.fixture(scope="module")
def pipe(folder, tmp_path_factory):
    target = tmp_path_factory.mktemp("indexes") / "located"
    Pipeline.from_config(SETTINGS).index([folder], index_dir=target, progress=False)
    return Pipeline.load(target, config=SETTINGS)


@pytest.mark.slow
def test_every_known_pdf_sentence_is_reported_on_its_true_page(pipe, folder):
    checked = 0
    for name, pages in PDFS.items():
        text = pipe.store.document_row(name)["text"]
        for page, sentences in enumerate(pages, 1):
            for sentence in sentences:
                start, end = _find(text, sentence)
                cited = with_locations(pipe.store, [Citation(name, "", start, end, text[start:end])])[0]
                assert (cited.page, cited.pages) == (page, (page,)), sentence
                hit = pipe.search(sentence, k=3)[0]
                assert hit.doc_id == name and hit.start < end and start < hit.end, sentence  # its own place
                assert page in hit.pages and hit.page == hit.pages[0], sentence
                checked += 1
    assert checked == 20


@pytest.mark.slow
def test_ask_quotes_name_the_page_their_text_is_on(pipe, folder):
    oracle = {name: _pages(folder / name) for name in PDFS}
    answer = pipe.ask("Where do disputes about damaged pallets go?", selector="sentences")
    pdf_spans = [c for c in answer.quotes + answer.evidence + answer.citations if c.doc_id in oracle]
    assert any(q.doc_id == "shipping.pdf" for q in answer.quotes)
    for span in pdf_spans:
        assert (span.doc_id, span.pages) != ("shipping.pdf", (2,))  # the blank page holds no text to cite
        words, pages = span.text.split(), [oracle[span.doc_id][p - 1].split() for p in span.pages]
        assert " ".join(words) in " ".join(w for page in pages for w in page), span  # its text is on those pages
        assert " ".join(words[:4]) in " ".join(pages[0]) and " ".join(words[-4:]) in " ".join(pages[-1]), span
    assert "shipping.pdf: page 2" in CliRunner().invoke(main, ["info", "--index", str(pipe.index_dir)]).stdout


@pytest.mark.slow
def test_sections_of_docx_html_and_licence_clauses_in_search_and_ask(pipe):
    def top(query):
        return pipe.search(query, k=1)[0]

    assert top("late fee of two percent per month").section == ("Payment Terms", "Late Fees")
    assert top("sixteen weeks of paid parental leave").section == ("Staff Handbook", "Leave", "Parental leave")
    assert top("chanterelles beech trees apricots").section == ("Field Guide", "Mushrooms", "Chanterelles")
    answer = pipe.ask("Can I use the licensor's trademarks under the Apache License?", selector="sentences")
    first = answer.quotes[0]
    assert first.doc_id == "Apache-2.0.txt" and "trade names" in first.text
    assert first.section == ("6. Trademarks.",) and first.page is None  # a text file has no pages
    assert answer.to_dict()["quotes"][0]["section"] == ("6. Trademarks.",)


@pytest.mark.slow
def test_cli_json_langchain_and_text_show_locations(pipe, tmp_path):
    index = str(pipe.index_dir)
    result = CliRunner().invoke(main, ["search", "Demurrage per container per day", "--index", index, "--json", "-k", "1"])
    assert result.exit_code == 0, result.output
    hit = json.loads(result.stdout)[0]
    assert hit["doc_id"] == "shipping.pdf" and hit["page"] == 1 and hit["pages"] == [1] and hit["section"] is None
    result = CliRunner().invoke(main, ["search", "Disputes about damaged pallets arbitration", "--index", index,
                                       "-k", "1"])
    assert re.search(r"shipping\.pdf  \[\d+:\d+\]  (p\. 4|pp\. 3–4)\n", result.stdout), result.stdout
    config = tmp_path / "ask.yaml"
    config.write_text(json.dumps(SETTINGS))
    result = CliRunner().invoke(main, ["ask", "Can I use the licensor's trademarks under the Apache License?",
                                       "--index", index, "--selector", "sentences", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert re.search(r"Apache-2\.0\.txt \[\d+:\d+\]  § 6\. Trademarks\.", result.stdout), result.stdout
    from longrag.integrations.langchain import LongragRetriever

    doc = LongragRetriever(pipeline=pipe, k=1).invoke("late fee of two percent per month")[0]
    assert doc.metadata["section"] == ("Payment Terms", "Late Fees") and "page" not in doc.metadata


@pytest.mark.slow
def test_an_index_from_before_locations_loads_says_so_and_the_next_update_adds_them(folder, tmp_path):
    """Documents as the loaders wrote them before this change (format and bytes, a PDF's page count)."""
    def old_style(name):
        doc = load_file(folder / name, folder)
        kept = {k: doc.metadata[k] for k in ("format", "bytes", "pages") if k in doc.metadata}
        return replace(doc, metadata=kept)

    target = tmp_path / "old"
    pipe = Pipeline.from_config(SETTINGS)
    pipe.index_documents([old_style("orchard.pdf"), old_style("Apache-2.0.txt")], index_dir=target, progress=False)
    info = CliRunner().invoke(main, ["info", "--index", str(target)]).stdout
    assert "locations are missing for 2 documents" in info and "run `longrag index" in info
    result = CliRunner().invoke(main, ["search", "trade names of the Licensor", "--index", str(target), "-k", "1"])
    assert result.exit_code == 0 and result.stderr.count("locations are missing for 2 documents") == 1
    hit = Pipeline.load(target).search("trade names of the Licensor", k=1)[0]
    assert hit.doc_id == "Apache-2.0.txt" and hit.section is None and hit.page is None and shown(hit) == ""

    report = pipe.index([folder / "orchard.pdf", folder / "Apache-2.0.txt"], index_dir=target, progress=False)
    assert report.updated == 2 and report.unchanged == 0  # re-read: same bytes, but no locations recorded
    assert "locations are missing" not in CliRunner().invoke(main, ["info", "--index", str(target)]).stdout
    hit = Pipeline.load(target).search("trade names of the Licensor", k=1)[0]
    assert hit.section == ("6. Trademarks.",)
    again = pipe.index([folder / "orchard.pdf", folder / "Apache-2.0.txt"], index_dir=target, progress=False)
    assert again.unchanged == 2 and again.updated == 0


def test_documents_given_in_memory_are_never_counted_as_missing_locations():
    from longrag.documents.locations import missing

    assert not missing(Document("a", "a", "text", "0", {"author": "me"}).metadata)  # not from a file: nothing to re-read
    assert missing({"format": "txt", "bytes": 10})
    assert not missing({"format": "txt", "bytes": 10, "locations": 1})


@pytest.mark.slow
def test_contextual_headers_change_what_is_encoded_and_counted_not_what_is_stored(tmp_path):
    """segmenter.headers: the same segments at the same offsets, read after 'CDDL-1.0' and their
    section: the CDDL's jurisdiction clause (which never names the CDDL) then answers a question
    that names it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("CDDL-1.0.txt", "MPL-2.0-no-copyleft-exception.txt", "Apache-2.0.txt"):
        shutil.copy(CONTRACTS / name, docs)
    pipes = {}
    for headers in (False, True):
        target = tmp_path / f"headers-{headers}"
        Pipeline.from_config({"segmenter": {"headers": headers}}).index([docs], index_dir=target, progress=False)
        pipes[headers] = Pipeline.load(target)
    plain, headed = (pipes[h].store for h in (False, True))
    for doc_id in plain.documents():
        assert plain.document_row(doc_id)["text"] == headed.document_row(doc_id)["text"]
        (spans_a, vectors_a), (spans_b, vectors_b) = plain.segments_of(doc_id), headed.segments_of(doc_id)
        assert spans_a == spans_b and not (vectors_a == vectors_b).all()
    clause = plain.document_row("CDDL-1.0.txt")["text"].index("Any litigation relating to this License")
    assert "cddl" not in plain.document_row("CDDL-1.0.txt")["text"][clause - 2000:clause + 500].lower()
    hit = pipes[True].search("Under the CDDL, which courts have jurisdiction over litigation?", k=1)[0]
    assert hit.doc_id == "CDDL-1.0.txt" and hit.start <= clause < hit.end and hit.section == ("9. MISCELLANEOUS.",)
    with pytest.raises(Exception, match="different settings"):
        Pipeline.load(tmp_path / "headers-False", config={"segmenter": {"headers": True}})


@pytest.mark.slow
def test_a_hit_points_at_the_sentence_that_matched_on_its_page(tmp_path):
    """One segment over three short pages: the hit's page and snippet are those of the page-2
    sentence the query matches, not of the segment's first word."""
    pages = [["The lease of the mill starts on the first of May.", "The miller keeps the keys to the granary."],
             ["Flour sold to the bakery in Krakow is invoiced every fortnight.", "Sacks are returned empty."],
             ["The waterwheel is inspected each spring by the county engineer.", "Repairs are shared equally."]]
    docs = tmp_path / "docs"
    docs.mkdir()
    _write_pdf(docs / "mill.pdf", pages)
    pipe = Pipeline.from_config(None)
    pipe.index([docs], index_dir=tmp_path / "index", progress=False)
    hit = pipe.search("How often is flour for the bakery invoiced?", k=1)[0]
    text = pipe.store.document_row("mill.pdf")["text"]
    start, end = _find(text, pages[1][0])
    assert locate(pipe.store.document_metadata("mill.pdf"), hit.start, hit.end)["pages"] == (1, 2, 3)  # one segment
    assert hit.sentence[0] <= start and end <= hit.sentence[1]
    assert (hit.page, hit.pages) == (2, (2,))
    assert "Flour sold to the bakery in Krakow is invoiced every fortnight." in hit.snippet
    as_json = json.loads(CliRunner().invoke(main, ["search", "flour bakery invoiced fortnight", "--index",
                                                   str(tmp_path / "index"), "--json", "-k", "1"]).stdout)[0]
    assert as_json["page"] == 2 and as_json["sentence"][0] <= start and "Krakow" in as_json["snippet"]
