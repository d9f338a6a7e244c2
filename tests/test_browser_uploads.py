"""The team server in a real headless browser (Debian's chromium driven by Playwright, as
tests/test_browser.py): sign in with the token, upload a PDF and see it indexed, have a 50 MB file
refused, ask about the PDF and click a quote: its page is shown as it looks with the quote's line boxed.

The screenshot of that page is written to the path in $LONGRAG_SCREENSHOT when it is set (the
README's docs/serve.png)."""
import os
from pathlib import Path

import pytest
from PIL import Image  # matplotlib's dependency

from longrag import Pipeline
from longrag.server import running

from tests.helpers import CONTRACTS
from tests.test_server_uploads import LEASE, lease_pdf

pytestmark = pytest.mark.slow  # real packaged models

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "c0ffee00c0ffee00c0ffee00c0ffee00"
QUESTION = "How many days notice must the tenant give to end the lease?"

if not CHROMIUM.exists():
    pytest.skip(f"no chromium at {CHROMIUM}: .ci/setup installs Debian's chromium package where apt-get runs as "
                "root or with passwordless sudo; it could not here", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    docs = tmp_path_factory.mktemp("licences")
    for name in ("MIT.txt", "Zlib.txt", "ISC.txt"):
        (docs / name).write_bytes((CONTRACTS / name).read_bytes())
    target = tmp_path_factory.mktemp("indexes") / "team"
    Pipeline.from_config(None).index([docs], index_dir=target, progress=False)
    return Pipeline.load(target)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


def test_sign_in_upload_a_pdf_ask_and_see_the_quote_boxed_on_its_page(pipe, browser, tmp_path):
    expect = sync_api.expect
    pdf = tmp_path / "lease.pdf"
    pdf.write_bytes(lease_pdf())
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-1.4\n" + bytes(50 * 2**20))
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    errors = []
    with running(pipe, token=TOKEN) as url:
        page.goto(url)  # no token: the sign-in page, nothing of the index
        expect(page.locator("#token")).to_be_visible()
        assert "MIT" not in page.content()
        page.fill("#token", TOKEN)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.click("#signin button")
        expect(page.locator("#index-info")).to_contain_text("3 documents")
        assert page.url == f"{url}/" and TOKEN not in page.url  # the cookie replaced it
        assert TOKEN not in str(page.context.cookies())

        page.set_input_files("#upload-files", str(big))
        page.click("#upload-button")
        expect(page.locator("#error")).to_contain_text("big.pdf: 50 MB, over the 32 MB this server takes at once; "
                                                       "nothing was uploaded")

        page.set_input_files("#upload-files", str(pdf))
        page.click("#upload-button")
        job = page.locator("#jobs li", has_text="uploads/lease.pdf")
        expect(job).to_have_attribute("data-state", "indexed", timeout=300_000)
        expect(page.locator("#index-info")).to_contain_text("4 documents")
        page.click("#library summary")
        expect(page.locator("#doc-list li", has_text="uploads/lease.pdf").locator("button.remove")).to_be_visible()

        page.fill("#question", QUESTION)
        page.click("#ask-button")
        quote = page.locator("#quotes li button", has_text="ninety days notice").first
        expect(quote).to_be_visible(timeout=600_000)  # the packaged models on a CPU
        expect(quote).to_contain_text("uploads/lease.pdf")
        expect(page.locator("#answer-meta")).not_to_be_empty(timeout=600_000)
        quote.click()

        expect(page.locator("#doc-title")).to_have_text("uploads/lease.pdf")
        expect(page.locator("#page-number")).to_have_text("page 2 of 2")
        expect(page.locator("#view-page")).to_have_attribute("aria-pressed", "true")
        boxed = page.locator("#page-sheet .box-mark.quote.focus")
        expect(boxed.first).to_be_visible()
        expect(boxed.first).to_be_in_viewport()
        image = page.locator("#page-image").bounding_box()
        box = boxed.first.bounding_box()  # on the sentence's line: the fourth line of page 2's text
        assert image["x"] < box["x"] < image["x"] + 0.1 * image["width"]
        assert image["y"] + 0.04 * image["height"] < box["y"] < image["y"] + 0.08 * image["height"]
        page.wait_for_function("document.getElementById('page-image').naturalWidth > 0")

        shot = tmp_path / "serve.png"
        page.screenshot(path=str(shot))
        if os.environ.get("LONGRAG_SCREENSHOT"):  # 256 colours: a third of the size, the same to read
            Image.open(shot).quantize(256).save(os.environ["LONGRAG_SCREENSHOT"], optimize=True)

        page.click("#view-text")  # the same quote in the extracted text
        focus = page.locator("#doc-text mark.focus")
        expect(focus.first).to_be_visible()
        assert LEASE[1][1] in "".join(focus.all_text_contents())
    assert errors == []
