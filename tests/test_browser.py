"""The `longrag serve` web app in a real headless browser: Debian's chromium driven by Playwright
(.ci/setup installs it; no browser is downloaded). Ask the Apache trademark question on an index of
examples/contracts with the default configuration, see the answer, click its first quote, and find
Apache-2.0 open at §6 with the sentence highlighted; a document full of markup shows as text.

The screenshot of that page is kept at <pytest's tmp folder>/…/serve.png (printed), and written to
the path in $LONGRAG_SCREENSHOT as well when it is set (the README's docs/serve.png)."""
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image  # matplotlib's dependency

from longrag import Pipeline
from longrag.server import running

from tests.helpers import CONTRACTS

pytestmark = pytest.mark.slow  # real packaged models

CHROMIUM = Path("/usr/bin/chromium")
TRADEMARKS = "Can I use the licensor's trademarks under the Apache License?"  # tests/test_contract_questions.py
MARKUP = ("<script>window.pwned = true</script><img src=x onerror=\"window.pwned = true\">\n"
          "Review notes: the licence terms were checked & approved.\n")

if not CHROMIUM.exists():
    pytest.skip(f"no chromium at {CHROMIUM}: .ci/setup installs Debian's chromium package where apt-get runs as "
                "root or with passwordless sudo; it could not here", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    target = tmp_path_factory.mktemp("indexes") / "contracts"
    Pipeline.from_config(None).index([CONTRACTS], index_dir=target, progress=False)
    return Pipeline.load(target)


@pytest.fixture(scope="module")
def markup_pipe(tmp_path_factory, pipe):
    docs = tmp_path_factory.mktemp("markup")
    (docs / "markup.txt").write_text(MARKUP)
    shutil.copy(CONTRACTS / "MIT.txt", docs / "MIT.txt")
    target = tmp_path_factory.mktemp("indexes") / "markup"
    Pipeline.from_config(None, encoder=pipe.encoder).index([docs], index_dir=target, progress=False)
    return Pipeline.load(target, encoder=pipe.encoder)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    page.errors = []  # uncaught script errors and console errors (a CSP violation is one)
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text))
    yield page
    page.close()


def test_ask_then_read_the_quote_in_its_document(pipe, page, tmp_path):
    expect = sync_api.expect
    with running(pipe) as url:
        page.goto(url)
        expect(page.locator("#index-info")).to_contain_text("22 documents")
        page.fill("#question", TRADEMARKS)
        page.click("#ask-button")
        answer = page.locator("#answer-text")
        expect(answer).not_to_be_empty(timeout=600_000)  # the packaged models on a CPU
        shown = answer.text_content()
        # the clause says no: a shown answer says no; a withheld one says why and the quotes stand
        assert shown == "No." or shown.startswith("No answer shown: "), shown
        expect(page.locator("#answer-meta")).not_to_be_empty()

        first = page.locator("#quotes li button").first
        expect(first).to_contain_text("Apache-2.0.txt")
        expect(first).to_contain_text("does not grant permission to use the trade names, trademarks")
        first.click()

        expect(page.locator("#document")).to_be_visible()
        expect(page.locator("#doc-title")).to_have_text("Apache-2.0.txt")
        quote = page.evaluate("answerSpans[0]")  # the clicked quote as the API sent it
        where = page.locator("#doc-where")
        expect(where).to_contain_text(f"characters {quote['start']}–{quote['end']}")
        if quote.get("section"):  # where the index records sections (plain text: numbered clauses)
            expect(where).to_contain_text("§ " + " › ".join(quote["section"]))
        focus = page.locator("#doc-text mark.focus")
        expect(focus.first).to_be_in_viewport()
        highlighted = "".join(focus.all_text_contents())
        assert highlighted.startswith("6. Trademarks.") and "trade names, trademarks" in highlighted
        whole = (CONTRACTS / "Apache-2.0.txt").read_text(encoding="utf-8")
        assert page.locator("#doc-text").text_content() == whole  # the whole document, not an excerpt
        marked = page.locator("#doc-text mark").all_text_contents()
        assert all(text in whole for text in marked) and len(marked) >= 1

        shot = tmp_path / "serve.png"
        page.screenshot(path=str(shot))
        print(f"screenshot: {shot}")
        if os.environ.get("LONGRAG_SCREENSHOT"):  # 256 colours: a third of the size, the same to read
            Image.open(shot).quantize(256).save(os.environ["LONGRAG_SCREENSHOT"], optimize=True)
    assert page.errors == []


def test_markup_in_a_document_shows_as_text(markup_pipe, page):
    expect = sync_api.expect
    with running(markup_pipe) as url:
        page.goto(url)
        page.fill("#query", "review notes approved script")
        page.click("#search-form button")
        hit = page.locator("#hits li button", has_text="markup.txt")
        expect(hit).to_have_count(1)
        hit.click()
        expect(page.locator("#doc-title")).to_have_text("markup.txt")
        body = page.locator("#doc-text")
        assert body.text_content() == MARKUP
        assert body.locator("script, img").count() == 0  # written as text nodes, never parsed as HTML
        assert page.evaluate("window.pwned") is None
    assert page.errors == []
