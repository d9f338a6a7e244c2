"""`longrag serve`'s HTTP API on a real uvicorn server on the loopback, over a real index of
examples/contracts plus one document full of markup (in a subfolder), with the packaged models and
the default configuration: search, documents, limits, streamed ask, searches while an answer runs,
and that serving never writes the index."""
import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from longrag import Pipeline
from longrag.index.layout import writer_lock
from longrag.server import MAX_BODY, MAX_K, running

from tests.helpers import CONTRACTS

pytestmark = pytest.mark.slow  # real packaged models

MARKUP = ("<script>window.pwned = true</script><img src=x onerror=\"window.pwned = true\">\n"
          "Review notes: the licence terms were checked & approved.\n")
TRADEMARKS = "Can I use the licensor's trademarks under the Apache License?"  # tests/test_contract_questions.py
PATENTS = "what happens to my patent licence if I sue a contributor"


def snapshot(folder):
    """Every file under the index: (size, modification time) — what a write would change."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}  # .lock: the last test takes the writer lock itself


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    docs = tmp_path_factory.mktemp("served")
    shutil.copytree(CONTRACTS, docs, dirs_exist_ok=True)
    (docs / "notes").mkdir()
    (docs / "notes" / "markup.txt").write_text(MARKUP)
    target = tmp_path_factory.mktemp("indexes") / "served"
    Pipeline.from_config(None).index([docs], index_dir=target, progress=False)
    return target


@pytest.fixture(scope="module")
def pipe(index_dir):
    return Pipeline.load(index_dir)


@pytest.fixture(scope="module")
def served(index_dir, pipe):
    before = snapshot(index_dir)
    with running(pipe) as url:
        with httpx.Client(base_url=url, timeout=600) as client:
            yield client
    assert snapshot(index_dir) == before  # serving wrote nothing into the index


def test_info_describes_the_index_and_the_limits(served, index_dir):
    info = served.get("/api/info").json()
    assert info["documents"] == len(list(CONTRACTS.glob("*.txt"))) + 1
    assert info["description"][0] == f"Index {index_dir}"
    assert info["limits"] == {"max_k": MAX_K, "max_text": 2000, "max_body": MAX_BODY}
    assert info["generator"] == "qwen2.5-0.5b"


def test_search_through_the_api_is_the_python_search(served, pipe):
    body = served.get("/api/search", params={"q": PATENTS, "k": 5}).json()
    assert [h["doc_id"] for h in body["hits"]][:1] in (["AGPL-3.0-only.txt"], ["GPL-3.0-only.txt"], ["Apache-2.0.txt"])
    assert body["hits"] == [h.to_dict() for h in pipe.search(PATENTS, k=5)]


def test_a_document_is_its_whole_text_from_the_index(served):
    body = served.get("/api/documents/Apache-2.0.txt").json()
    assert body["text"] == (CONTRACTS / "Apache-2.0.txt").read_text(encoding="utf-8")
    assert body["doc_id"] == "Apache-2.0.txt" and body["n_chars"] == len(body["text"])
    ids = [d["doc_id"] for d in served.get("/api/documents").json()["documents"]]
    assert "notes/markup.txt" in ids and "Apache-2.0.txt" in ids


def test_markup_comes_back_as_text(served):
    response = served.get("/api/documents/notes/markup.txt")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json()["text"] == MARKUP  # the page puts it in text nodes (tests/test_browser.py)


@pytest.mark.parametrize("doc_id", ["nope.txt", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "notes/..%2F..%2Fetc%2Fpasswd",
                                    "notes", "notes%2F..%2FMIT.txt"])
def test_ids_not_in_the_index_are_404(served, doc_id):
    response = served.get(f"/api/documents/{doc_id}")
    assert response.status_code == 404, response.text
    assert "no document" in response.json()["detail"] and "root:" not in response.text


def test_the_file_path_of_an_indexed_document_is_not_an_id(served):
    path = served.get("/api/documents/MIT.txt").json()["path"]  # where the file was when it was indexed
    assert served.get(f"/api/documents/{path}").status_code == 404


def test_limits_are_clear_errors(served):
    too_many = served.get("/api/search", params={"q": "patent", "k": MAX_K + 1})
    assert too_many.status_code == 422 and f"less than or equal to {MAX_K}" in too_many.text
    assert served.get("/api/search", params={"q": "patent", "k": 0}).status_code == 422
    assert served.get("/api/search", params={"q": ""}).status_code == 422
    assert served.get("/api/search", params={"q": "x" * 2001}).status_code == 422
    blank = served.get("/api/search", params={"q": "   "})
    assert blank.status_code == 422 and blank.json()["detail"] == "empty query"
    big = served.post("/api/ask", json={"question": "x" * (MAX_BODY + 1)})
    assert big.status_code == 413 and f"over {MAX_BODY} bytes" in big.json()["detail"]
    # no Content-Length (chunked): held to the same limit
    chunked = served.post("/api/ask", content=iter([b'{"question": "', b"x" * MAX_BODY, b'"}']),
                          headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert served.post("/api/ask", json={"question": "   "}).status_code == 422
    assert served.post("/api/ask", json={"question": "q", "colour": "red"}).status_code == 422
    unknown = served.post("/api/ask", json={"question": "Does it?", "selector": "magic"})
    assert unknown.status_code == 422 and "unknown selector 'magic'" in unknown.json()["detail"]


def test_other_hosts_are_refused_and_pages_carry_security_headers(served):
    rebound = served.get("/api/info", headers={"host": "attacker.example:8000"})
    assert rebound.status_code == 400 and "Host" in rebound.json()["detail"]
    page = served.get("/")
    assert page.status_code == 200 and "<title>longrag</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert served.get("/api/info").headers["x-content-type-options"] == "nosniff"
    paths = served.get("/api/openapi.json").json()["paths"]
    assert {"/api/info", "/api/search", "/api/ask", "/api/documents/{doc_id}"} <= set(paths)


def _ask(served, payload, events, arrived):
    with served.stream("POST", "/api/ask", json=payload) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
        for line in response.iter_lines():
            if line.strip():
                events.append(json.loads(line))
                arrived[events[-1]["type"]] = time.monotonic()


def test_ask_streams_quotes_then_the_answer_while_20_searches_are_served(served, pipe):
    expected = [h.to_dict() for h in pipe.search(PATENTS, k=5)]
    events, arrived = [], {}
    asking = threading.Thread(target=_ask, args=(served, {"question": TRADEMARKS}, events, arrived))
    asking.start()
    while "hits" not in arrived and asking.is_alive():  # the model is reading from here on
        time.sleep(0.01)

    def one_search(_):
        response = served.get("/api/search", params={"q": PATENTS, "k": 5})
        return response.status_code, response.json()["hits"], time.monotonic()

    with ThreadPoolExecutor(20) as pool:
        searches = list(pool.map(one_search, range(20)))
    asking.join()

    assert [e["type"] for e in events] == ["started", "hits", "quotes", "answer", "done"]
    assert all(status == 200 and hits == expected for status, hits, _ in searches)
    # served while the answer was being read: none waited for the generator
    assert all(done < arrived["quotes"] for _, _, done in searches)
    quotes, answer, done = events[2]["quotes"], events[3], events[4]["answer"]
    assert quotes and quotes == done["quotes"] and answer["answer"] == done["answer"]
    for quote in quotes:  # true spans of the documents the API serves
        text = served.get(f"/api/documents/{quote['doc_id']}").json()["text"]
        assert text[quote["start"]:quote["end"]] == quote["text"]
    assert done["answer"].startswith("No") or done["withheld"], done["answer"]
    assert set(done) >= {"answer", "quotes", "citations", "evidence", "withheld", "reading", "check", "grounded"}


def test_an_ask_the_generator_cannot_take_ends_in_an_error_event(served):
    events, arrived = [], {}
    _ask(served, {"question": TRADEMARKS, "budget": 10 ** 6}, events, arrived)
    assert [e["type"] for e in events] == ["started", "hits", "error"]
    assert "does not fit the generator's window" in events[-1]["message"]


def test_the_server_holds_no_writer_lock(served, index_dir):
    with writer_lock(index_dir, wait=False):  # IndexBusyError if the server held it
        assert served.get("/api/search", params={"q": "warranty", "k": 1}).status_code == 200
