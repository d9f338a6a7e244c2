"""The page over several indexes in headless Chromium (as tests/test_browser.py; the fake encoder, no
generator): choose an index, search it, upload a PDF into it, open the PDF at its page with the hit's
lines boxed and toggle to its text, and remove the upload from the document list."""
from pathlib import Path

import pytest

from longrag import Pipeline
from longrag.server import running

from tests.helpers import FakeEncoder
from tests.test_server_uploads import TOKEN, lease_pdf, make_index

CHROMIUM = Path("/usr/bin/chromium")

if not CHROMIUM.exists():
    pytest.skip(f"no chromium at {CHROMIUM}: .ci/setup installs Debian's chromium package where apt-get runs as "
                "root or with passwordless sudo; it could not here", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")


def test_choose_an_index_upload_into_it_read_the_pdf_page_and_remove_it(tmp_path):
    expect = sync_api.expect
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pipes = {"licences": Pipeline.load(make_index(tmp_path / "a", ("MIT.txt",)), encoder=FakeEncoder()),
             "more": Pipeline.load(make_index(tmp_path / "b", ("Zlib.txt", "ISC.txt")), encoder=FakeEncoder())}
    pdf = tmp_path / "lease.pdf"
    pdf.write_bytes(lease_pdf())
    errors = []
    with running(pipes, token=TOKEN) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.goto(f"{url}/?token={TOKEN}")
        expect(page.locator("#index-info")).to_contain_text("index licences · 1 documents")
        choice = page.locator("#index-choice")
        expect(choice).to_be_visible()
        choice.select_option("more")
        expect(page.locator("#index-info")).to_contain_text("index more · 2 documents")

        page.set_input_files("#upload-files", str(pdf))
        page.click("#upload-button")
        expect(page.locator("#jobs li", has_text="uploads/lease.pdf")).to_have_attribute("data-state", "indexed")
        expect(page.locator("#index-info")).to_contain_text("index more · 3 documents")
        assert (tmp_path / "b" / "index" / "uploads" / "lease.pdf").is_file()
        assert not (tmp_path / "a" / "index" / "uploads").exists()

        page.fill("#query", "tenant ninety days notice end lease")
        page.click("#search-form button")
        hit = page.locator("#hits li button", has_text="uploads/lease.pdf")
        expect(hit).to_have_count(1)
        hit.click()
        expect(page.locator("#doc-title")).to_have_text("uploads/lease.pdf")
        expect(page.locator("#view-toggle")).to_be_visible()
        expect(page.locator("#page-sheet .box-mark.hit.focus").first).to_be_visible()
        page.click("#view-text")
        expect(page.locator("#doc-text mark.hit.focus").first).to_be_visible()
        expect(page.locator("#doc-pages")).to_be_hidden()

        page.click("#library summary")
        page.locator("#doc-list li", has_text="uploads/lease.pdf").locator("button.remove").click()
        expect(page.locator("#jobs li[data-state=removed]", has_text="uploads/lease.pdf")).to_have_count(1)
        expect(page.locator("#index-info")).to_contain_text("index more · 2 documents")
        expect(page.locator("#doc-list li", has_text="uploads/lease.pdf")).to_have_count(0)
        assert not (tmp_path / "b" / "index" / "uploads" / "lease.pdf").exists()
        browser.close()
    assert errors == []


def test_an_answer_span_is_marked_in_its_quote_and_in_its_document(tmp_path):
    """The page's handling of the ask events (as /api/ask streams them; no model runs here): the
    answer span is marked inside the quote that holds it, and opens its document with it marked."""
    expect = sync_api.expect
    pipe = Pipeline.load(make_index(tmp_path, ("MIT.txt",)), encoder=FakeEncoder())
    text = pipe.store.document_row("MIT.txt")["text"]
    start = text.index("The above copyright notice")
    end = text.index(".", start) + 1
    quote = {"doc_id": "MIT.txt", "path": "", "start": start, "end": end, "text": text[start:end], "block": 1}
    a = text.index("copyright notice", start)
    span = {**quote, "start": a, "end": a + len("copyright notice"), "text": "copyright notice"}
    errors = []
    with running(pipe, token=TOKEN) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/?token={TOKEN}")
        expect(page.locator("#index-info")).to_contain_text("1 documents")
        page.evaluate("([quote, span]) => { handleEvent('quotes', {quotes: [quote]}); handleEvent('answer', "
                      "{answer: span.text, answer_span: span, citations: [], withheld: null}); }", [quote, span])
        expect(page.locator("#quotes mark.answer")).to_have_text("copyright notice")
        expect(page.locator("#quotes li .text")).to_have_text(f"“{quote['text']}”")
        page.click("#answer-text button.answer-link")
        focus = page.locator("#doc-text mark.answer.focus")
        expect(focus).to_have_text("copyright notice")
        expect(page.locator("#doc-text")).to_have_text(text)
        browser.close()
    assert errors == []
