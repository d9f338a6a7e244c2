"""`longrag serve`'s HTTP API on a real uvicorn server on the loopback, over an index of
examples/contracts plus one document full of markup (in a subfolder). Documents, ids, limits, hosts
and headers with the fake encoder (fast tier); search, streamed ask and searches while an answer
runs with the packaged models and the default configuration (slow). Serving never writes the index."""
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from longrag import Pipeline
from longrag.index.layout import writer_lock
from longrag.errors import InputError
from longrag.server import MAX_BODY, MAX_K, running
from longrag.server.guard import host_name
from longrag.server.run import exposed, is_loopback, listen

from tests.helpers import CONTRACTS, FakeEncoder

MARKUP = ("<script>window.pwned = true</script><img src=x onerror=\"window.pwned = true\">\n"
          "Review notes: the licence terms were checked & approved.\n")
TRADEMARKS = "Can I use the licensor's trademarks under the Apache License?"  # tests/test_contract_questions.py
PATENTS = "what happens to my patent licence if I sue a contributor"


def as_json(hits):
    """Hits as the API sends them (a tuple, such as a section path, is a JSON list)."""
    return json.loads(json.dumps([h.to_dict() for h in hits]))


def snapshot(folder):
    """Every file under the index: (size, modification time) — what a write would change."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}  # .lock: the last test takes the writer lock itself


def build(tmp_path_factory, encoder=None):
    docs = tmp_path_factory.mktemp("served")
    shutil.copytree(CONTRACTS, docs, dirs_exist_ok=True)
    (docs / "notes").mkdir()
    (docs / "notes" / "markup.txt").write_text(MARKUP)
    target = tmp_path_factory.mktemp("indexes") / "served"
    Pipeline.from_config(None, encoder=encoder).index([docs], index_dir=target, progress=False)
    return target


@contextmanager
def client_of(pipe, index_dir):
    before = snapshot(index_dir)
    with running(pipe) as url:
        with httpx.Client(base_url=url, timeout=600) as client:
            yield client
    assert snapshot(index_dir) == before  # serving wrote nothing into the index


@pytest.fixture(scope="module")
def fast_index(tmp_path_factory):
    return build(tmp_path_factory, FakeEncoder())


@pytest.fixture(scope="module")
def fast(fast_index):
    """The server over an index made with the fake encoder: everything but the models."""
    with client_of(Pipeline.load(fast_index, encoder=FakeEncoder()), fast_index) as client:
        yield client


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return build(tmp_path_factory)


@pytest.fixture(scope="module")
def pipe(index_dir):
    return Pipeline.load(index_dir)


@pytest.fixture(scope="module")
def served(index_dir, pipe):
    """The server over the packaged models, default configuration."""
    with client_of(pipe, index_dir) as client:
        yield client


def test_info_describes_the_index_and_the_limits(fast, fast_index):
    info = fast.get("/api/info").json()
    assert info["documents"] == len(list(CONTRACTS.glob("*.txt"))) + 1
    assert info["description"][0] == f"Index {fast_index}"
    assert info["limits"] == {"max_k": MAX_K, "max_text": 2000, "max_body": MAX_BODY}
    assert info["generator"] == "qwen2.5-0.5b"


@pytest.mark.slow
def test_search_through_the_api_is_the_python_search(served, pipe):
    body = served.get("/api/search", params={"q": PATENTS, "k": 5}).json()
    assert [h["doc_id"] for h in body["hits"]][:1] in (["AGPL-3.0-only.txt"], ["GPL-3.0-only.txt"], ["Apache-2.0.txt"])
    assert body["hits"] == as_json(pipe.search(PATENTS, k=5))


def test_a_document_is_its_whole_text_from_the_index(fast):
    body = fast.get("/api/documents/Apache-2.0.txt").json()
    assert body["text"] == (CONTRACTS / "Apache-2.0.txt").read_text(encoding="utf-8")
    assert body["doc_id"] == "Apache-2.0.txt" and body["n_chars"] == len(body["text"])
    ids = [d["doc_id"] for d in fast.get("/api/documents").json()["documents"]]
    assert "notes/markup.txt" in ids and "Apache-2.0.txt" in ids


def test_markup_comes_back_as_text(fast):
    response = fast.get("/api/documents/notes/markup.txt")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json()["text"] == MARKUP  # the page puts it in text nodes (tests/test_browser.py)


@pytest.mark.parametrize("doc_id", ["nope.txt", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "notes/..%2F..%2Fetc%2Fpasswd",
                                    "notes", "notes%2F..%2FMIT.txt"])
def test_ids_not_in_the_index_are_404(fast, doc_id):
    response = fast.get(f"/api/documents/{doc_id}")
    assert response.status_code == 404, response.text
    assert "no document" in response.json()["detail"] and "root:" not in response.text


def test_the_file_path_of_an_indexed_document_is_not_an_id(fast):
    path = fast.get("/api/documents/MIT.txt").json()["path"]  # where the file was when it was indexed
    assert fast.get(f"/api/documents/{path}").status_code == 404


def test_limits_are_clear_errors(fast):
    too_many = fast.get("/api/search", params={"q": "patent", "k": MAX_K + 1})
    assert too_many.status_code == 422 and f"less than or equal to {MAX_K}" in too_many.text
    assert fast.get("/api/search", params={"q": "patent", "k": 0}).status_code == 422
    assert fast.get("/api/search", params={"q": ""}).status_code == 422
    assert fast.get("/api/search", params={"q": "x" * 2001}).status_code == 422
    blank = fast.get("/api/search", params={"q": "   "})
    assert blank.status_code == 422 and blank.json()["detail"] == "empty query"
    big = fast.post("/api/ask", json={"question": "x" * (MAX_BODY + 1)})
    assert big.status_code == 413 and f"over {MAX_BODY} bytes" in big.json()["detail"]
    # no Content-Length (chunked): held to the same limit
    chunked = fast.post("/api/ask", content=iter([b'{"question": "', b"x" * MAX_BODY, b'"}']),
                          headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert fast.post("/api/ask", json={"question": "   "}).status_code == 422
    assert fast.post("/api/ask", json={"question": "q", "colour": "red"}).status_code == 422
    unknown = fast.post("/api/ask", json={"question": "Does it?", "selector": "magic"})
    assert unknown.status_code == 422 and "unknown selector 'magic'" in unknown.json()["detail"]


def test_other_hosts_are_refused_and_pages_carry_security_headers(fast):
    rebound = fast.get("/api/info", headers={"host": "attacker.example:8000"})
    assert rebound.status_code == 400 and "Host" in rebound.json()["detail"]
    page = fast.get("/")
    assert page.status_code == 200 and "<title>longrag</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert fast.get("/api/info").headers["x-content-type-options"] == "nosniff"
    paths = fast.get("/api/openapi.json").json()["paths"]
    assert {"/api/info", "/api/search", "/api/ask", "/api/documents/{doc_id}"} <= set(paths)


def _ask(served, payload, events):
    with served.stream("POST", "/api/ask", json=payload) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
        for line in response.iter_lines():
            if line.strip():
                events.append(json.loads(line))


@pytest.mark.slow
def test_ask_streams_quotes_then_the_answer_while_20_searches_are_served(served, pipe, monkeypatch):
    expected = as_json(pipe.search(PATENTS, k=5))
    reading, searched, waited = threading.Event(), threading.Event(), []

    def held(read):
        """The models' first reading waits until the 20 searches are done: had they waited for it, they never would be."""
        def first_waits(*args, **kwargs):
            if not reading.is_set():
                reading.set()
                waited.append(searched.wait(300))
            return read(*args, **kwargs)
        return first_waits
    for model in {id(m): m for m in (pipe.generator, pipe.checker)}.values():  # every reading is one of these calls
        for name in ("chat", "choice_logprobs"):
            monkeypatch.setattr(model, name, held(getattr(model, name)))
    events = []
    asking = threading.Thread(target=_ask, args=(served, {"question": TRADEMARKS}, events))
    asking.start()
    while not reading.wait(1) and asking.is_alive():  # loading the models may take minutes on a busy machine
        pass
    assert reading.is_set(), f"the answer was given without the models reading: {events}"

    def one_search(_):
        response = served.get("/api/search", params={"q": PATENTS, "k": 5})
        return response.status_code, response.json()["hits"]

    with ThreadPoolExecutor(20) as pool:
        searches = list(pool.map(one_search, range(20)))
    searched.set()
    asking.join()

    assert waited == [True], "the 20 searches were not served while an answer was being read (300 s)"
    assert [e["type"] for e in events] == ["started", "hits", "quotes", "answer", "done"]
    assert all(status == 200 and hits == expected for status, hits in searches)
    quotes, answer, done = events[2]["quotes"], events[3], events[4]["answer"]
    assert quotes and quotes == done["quotes"] and answer["answer"] == done["answer"]
    for quote in quotes:  # true spans of the documents the API serves
        text = served.get(f"/api/documents/{quote['doc_id']}").json()["text"]
        assert text[quote["start"]:quote["end"]] == quote["text"]
    assert done["answer"].startswith("No") or done["withheld"], done["answer"]
    assert set(done) >= {"answer", "quotes", "citations", "evidence", "withheld", "reading", "check", "grounded"}


@pytest.mark.slow
def test_an_ask_the_generator_cannot_take_ends_in_an_error_event(served):
    events = []
    _ask(served, {"question": TRADEMARKS, "budget": 10 ** 6}, events)
    assert [e["type"] for e in events] == ["started", "error"]  # refused before any document is read
    assert "does not fit the generator's window" in events[-1]["message"]


def test_the_server_holds_no_writer_lock(fast, fast_index):
    with writer_lock(fast_index, wait=False):  # IndexBusyError if the server held it
        assert fast.get("/api/search", params={"q": "warranty", "k": 1}).status_code == 200


def test_an_update_while_serving_is_read_from_the_next_request(tmp_path):
    """The server holds no lock, so an update runs beside it; the next request reads the new generation."""
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CONTRACTS / "MIT.txt", docs / "MIT.txt")
    index = tmp_path / "index"
    Pipeline.from_config(None, encoder=FakeEncoder()).index([docs], index_dir=index, progress=False)
    with running(Pipeline.load(index, encoder=FakeEncoder())) as url, httpx.Client(base_url=url) as client:
        assert client.get("/api/documents/Zlib.txt").status_code == 404
        shutil.copy(CONTRACTS / "Zlib.txt", docs / "Zlib.txt")
        Pipeline.from_config(None, encoder=FakeEncoder()).index([docs], index_dir=index, progress=False)
        assert client.get("/api/info").json()["documents"] == 2
        added = client.get("/api/documents/Zlib.txt")
        assert added.status_code == 200 and added.json()["text"] == (CONTRACTS / "Zlib.txt").read_text()


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
                                            ("localhost", True), ("0.0.0.0", False), ("192.168.1.20", False),
                                            ("example.org", False)])
def test_which_hosts_are_the_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("header, name", [("127.0.0.1:8000", "127.0.0.1"), ("localhost", "localhost"),
                                          ("[::1]:8000", "::1"), ("::1", "::1"), ("evil.example:80", "evil.example")])
def test_the_host_of_a_host_header(header, name):
    assert host_name(header) == name


def test_a_port_in_use_is_a_clear_error():
    with listen("127.0.0.1", 0) as taken:
        with pytest.raises(InputError, match="choose another --port"):
            listen("127.0.0.1", taken.getsockname()[1])


def test_an_address_off_the_loopback_is_warned_about():
    assert exposed("127.0.0.1", 8000) is None and exposed("::1", 8000) is None
    assert exposed("0.0.0.0", 8000).startswith("warning: listening on 0.0.0.0, not the loopback: anyone who can "
                                               "reach this machine on port 8000 can read every document")


@pytest.mark.slow
def test_longrag_serve_prints_its_url_serves_and_stops_on_ctrl_c(index_dir, tmp_path):
    command = [sys.executable, "-m", "longrag.cli", "serve", "--index", str(index_dir), "--port", "0",
               "--no-token"]
    log = tmp_path / "stderr.txt"  # a file: nobody reads stderr while the test waits on stdout
    with log.open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True)
        try:
            loading, serving = process.stdout.readline(), process.stdout.readline()
            url = re.search(r"at (http://127\.0\.0\.1:\d+)/ ", serving).group(1)
            assert httpx.get(f"{url}/api/info").json()["documents"] == len(list(CONTRACTS.glob("*.txt"))) + 1
        finally:
            process.send_signal(signal.SIGINT)
            rest, _ = process.communicate(timeout=60)
    assert loading.startswith(f"Loading {index_dir}") and serving.startswith(f"Serving {index_dir}")
    assert rest.splitlines()[-1] == "stopped" and process.returncode == 0  # after the access log
    assert "warning" not in log.read_text()  # on the loopback: nothing to warn about
