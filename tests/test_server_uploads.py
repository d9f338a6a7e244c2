"""Uploads to `longrag serve` on a real uvicorn server (the fake encoder): kind by content, safe names
that never overwrite, size and count limits, indexing one job at a time through the writer path
(searches served meanwhile), removal, several indexes, a PDF's page and the boxes of a span's lines."""
import io
import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import httpx
import numpy as np
import pytest

from longrag import Pipeline
from longrag.index.layout import live_generation
from longrag.server import running
from longrag.server.uploads import INCOMING, UPLOADS

from tests.helpers import CONTRACTS, FakeEncoder

TOKEN = "f00dfacef00dfacef00dfacef00dface"
AUTH = {"authorization": f"token {TOKEN}"}
LEASE = [["Lease of the premises at 12 Harbour Road.", "The lease starts on the first of March."],
         ["Rent is paid on the first day of each month.", "The tenant must give ninety days notice to end the lease.",
          "Pets are allowed with the landlord's written consent."]]

OTHER = [["Another lease, of the boathouse on the quay.", "It runs for two summers.", "Boats are moored at the owner's risk."]]


def lease_pdf(pages=LEASE) -> bytes:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF()
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=timezone.utc))  # the same bytes each time
    pdf.set_font("Helvetica", size=12)
    for sentences in pages:
        pdf.add_page()
        for sentence in sentences:
            pdf.cell(text=sentence, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def make_index(folder, names=("MIT.txt", "Zlib.txt")):
    docs = folder / "docs"
    docs.mkdir()
    for name in names:
        shutil.copy(CONTRACTS / name, docs / name)
    target = folder / "index"
    Pipeline.from_config(None, encoder=FakeEncoder()).index([docs], index_dir=target, progress=False)
    return target


def wait_for(client, job_ids, timeout=120):
    """The jobs' events, read from /api/events until every one of `job_ids` is done."""
    seen, done = [], set()
    with client.stream("GET", "/api/events", timeout=timeout) as events:
        for line in events.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                seen.append(event)
                if event["id"] in job_ids and event["state"] in ("indexed", "removed", "failed"):
                    done.add(event["id"])
                    if done == set(job_ids):
                        return seen
    raise AssertionError(f"the events ended before jobs {set(job_ids) - done} were done")


def upload(client, *files, **params):
    return client.post("/api/documents", files=[("files", f) for f in files], params=params)


@pytest.fixture
def served(tmp_path):
    index = make_index(tmp_path)
    pipe = Pipeline.load(index, encoder=FakeEncoder())
    with running(pipe, token=TOKEN, max_upload=2 * 2**20, max_files=3) as url:
        with httpx.Client(base_url=url, headers=AUTH, timeout=120) as client:
            yield client, index, pipe


def test_an_upload_is_indexed_and_searched(served):
    client, index, _ = served
    before = live_generation(index).name
    response = upload(client, ("lease.pdf", lease_pdf(), "application/pdf"))
    assert response.status_code == 202, response.text
    [accepted] = response.json()["accepted"]
    assert accepted["doc_id"] == "uploads/lease.pdf"
    events = wait_for(client, [accepted["job"]])
    states = [e["state"] for e in events if e["id"] == accepted["job"]]
    assert states == ["queued", "reading", "encoding", "indexed"]
    assert "2 pages" in next(e["detail"] for e in events if e["state"] == "encoding")
    assert live_generation(index).name != before  # a new generation
    hit = client.get("/api/search", params={"q": "ninety days notice to end the lease", "k": 1}).json()["hits"][0]
    assert hit["doc_id"] == "uploads/lease.pdf" and hit["page"] == 2
    assert (index / UPLOADS / "lease.pdf").read_bytes() == lease_pdf()
    listed = {d["doc_id"]: d["uploaded"] for d in client.get("/api/documents").json()["documents"]}
    assert listed == {"MIT.txt": False, "Zlib.txt": False, "uploads/lease.pdf": True}


def test_a_name_with_folders_stays_in_the_uploads_folder_and_never_overwrites(served, tmp_path):
    client, index, _ = served
    first = upload(client, ("../../x.pdf", lease_pdf(), "application/pdf")).json()["accepted"][0]
    second = upload(client, ("..\\..\\x.pdf", lease_pdf(OTHER), "application/pdf")).json()["accepted"][0]
    hidden = upload(client, (".hidden.txt", b"A hidden name.\n", "text/plain")).json()["accepted"][0]
    assert (first["doc_id"], second["doc_id"], hidden["doc_id"]) == ("uploads/x.pdf", "uploads/x-2.pdf",
                                                                      "uploads/hidden.txt")
    events = wait_for(client, [first["job"], second["job"], hidden["job"]])
    assert [e["state"] for e in events if e["state"] in ("indexed", "failed")] == ["indexed"] * 3
    assert not (tmp_path / "x.pdf").exists() and not (index.parent.parent / "x.pdf").exists()
    assert sorted(p.name for p in (index / UPLOADS).iterdir()) == ["hidden.txt", "x-2.pdf", "x.pdf"]
    assert (index / UPLOADS / "x.pdf").read_bytes() == lease_pdf()  # the first kept as it was


def test_the_kind_is_read_from_the_content_not_the_name(served):
    client, index, _ = served
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    refused = upload(client, ("scan.pdf", png, "application/pdf"))
    assert refused.status_code == 422
    assert "'scan.pdf' is not a PDF, a Word document (.docx), an HTML page or a UTF-8 text file" in refused.json()["detail"]
    mixed = upload(client, ("notes.pdf", b"Plain notes about the lease.\n", "application/pdf"),
                   ("page.txt", b"<!doctype html><html><body><p>A page.</p></body></html>", "text/plain"),
                   ("empty.txt", b"", "text/plain")).json()
    assert [a["doc_id"] for a in mixed["accepted"]] == ["uploads/notes.txt", "uploads/page.html"]
    assert [r["name"] for r in mixed["refused"]] == ["empty.txt"] and "is empty" in mixed["refused"][0]["reason"]
    wait_for(client, [a["job"] for a in mixed["accepted"]])
    text = client.get("/api/documents/uploads/page.html").json()["text"]
    assert text == "A page."  # read as HTML: no markup in the text
    assert sorted(p.name for p in (index / UPLOADS).iterdir()) == ["notes.txt", "page.html"]
    assert not list((index / INCOMING).iterdir())


def test_an_upload_over_the_limit_is_refused_with_a_clear_message(tmp_path):
    """The default limit (32 MB) against a 50 MB file: refused whole, nothing kept."""
    index = make_index(tmp_path)
    with running(Pipeline.load(index, encoder=FakeEncoder()), token=TOKEN) as url:
        big = b"%PDF-1.4\n" + bytes(50 * 2**20)
        response = httpx.post(f"{url}/api/documents", headers=AUTH, files={"files": ("big.pdf", big)}, timeout=120)
        assert response.status_code == 413
        assert response.json()["detail"] == ("the upload is over 32 MB, the most this server takes at once "
                                             "(longrag serve --max-upload)")
        assert httpx.get(f"{url}/api/info", headers=AUTH).json()["documents"] == 2
    assert not (index / UPLOADS).exists() and not (index / INCOMING).exists()


def test_too_many_files_at_once_are_refused(served):
    client, index, _ = served
    response = upload(client, *[(f"n{i}.txt", b"note\n", "text/plain") for i in range(4)])
    assert response.status_code == 422 and response.json()["detail"] == "4 files in one upload; send at most 3 at a time"
    assert not (index / UPLOADS).exists()


def test_two_uploads_at_once_are_both_indexed_one_after_the_other(served):
    client, index, _ = served
    files = [("a.txt", b"The anchor clause covers boats in the harbour.\n", "text/plain"),
             ("b.txt", b"The bicycle clause covers bikes in the shed.\n", "text/plain")]
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda f: upload(client, f), files))
    jobs = [r.json()["accepted"][0]["job"] for r in responses]
    events = wait_for(client, jobs)
    assert all(e["state"] == "indexed" for e in events if e["state"] in ("indexed", "failed"))
    # one after the other: the second starts reading only once the first is indexed
    order = [(e["id"], e["state"]) for e in events if e["state"] in ("reading", "indexed")]
    first, second = sorted(jobs, key=lambda j: order.index((j, "reading")))
    assert order == [(first, "reading"), (first, "indexed"), (second, "reading"), (second, "indexed")]
    ids = {d["doc_id"] for d in client.get("/api/documents").json()["documents"]}
    assert {"uploads/a.txt", "uploads/b.txt"} <= ids


class HeldEncoder(FakeEncoder):
    """Encoding documents waits until `release` is set: an upload's indexing that lasts while the test runs."""

    def __init__(self):
        super().__init__()
        self.encoding, self.release = threading.Event(), threading.Event()

    def encode_ids(self, batch, progress=None):
        self.encoding.set()
        assert self.release.wait(120), "never released"
        return super().encode_ids(batch, progress)


def test_20_searches_while_an_upload_is_indexed_all_succeed(tmp_path):
    index = make_index(tmp_path)
    encoder = HeldEncoder()
    pipe = Pipeline.load(index, encoder=encoder)
    expected = [h.to_dict() for h in pipe.search("permission notice warranty", k=2)]
    with running(pipe, token=TOKEN) as url, httpx.Client(base_url=url, headers=AUTH, timeout=120) as client:
        job = upload(client, ("lease.pdf", lease_pdf(), "application/pdf")).json()["accepted"][0]["job"]
        assert encoder.encoding.wait(60)  # the job holds the writer lock and is encoding from here on

        def one(_):
            return client.get("/api/search", params={"q": "permission notice warranty", "k": 2})

        with ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(one, range(20)))
        states = {j["id"]: j["state"] for j in client.get("/api/jobs").json()["jobs"]}
        encoder.release.set()
        assert states[job] == "encoding"  # all 20 were served during the indexing
        assert [r.status_code for r in responses] == [200] * 20
        assert all(r.json()["hits"] == json.loads(json.dumps(expected)) for r in responses)
        wait_for(client, [job])
        assert client.get("/api/info").json()["documents"] == 3


def test_removing_an_upload_removes_it_from_the_next_generation(served):
    client, index, _ = served
    job = upload(client, ("lease.pdf", lease_pdf(), "application/pdf")).json()["accepted"][0]["job"]
    wait_for(client, [job])
    generation = live_generation(index).name
    not_uploaded = client.delete("/api/documents/MIT.txt")
    assert not_uploaded.status_code == 409 and "not uploaded" in not_uploaded.json()["detail"]
    assert client.delete("/api/documents/uploads/none.pdf").status_code == 404
    removal = client.delete("/api/documents/uploads/lease.pdf")
    assert removal.status_code == 202
    assert not (index / UPLOADS / "lease.pdf").exists()  # the file first: a restart does not bring it back
    wait_for(client, [removal.json()["job"]])
    assert live_generation(index).name != generation
    assert client.get("/api/documents/uploads/lease.pdf").status_code == 404
    assert client.get("/api/info").json()["documents"] == 2


def test_a_restart_indexes_what_was_uploaded_but_not_indexed(tmp_path):
    index = make_index(tmp_path)
    (index / UPLOADS).mkdir()
    (index / UPLOADS / "waiting.txt").write_text("The waiting clause: a file kept but never indexed.\n")
    (index / INCOMING).mkdir()
    (index / INCOMING / "0123abcd.part").write_bytes(b"%PDF-1.4 half a file")  # a server killed mid-upload
    with running(Pipeline.load(index, encoder=FakeEncoder()), token=TOKEN) as url, \
            httpx.Client(base_url=url, headers=AUTH, timeout=120) as client:
        jobs = client.get("/api/jobs").json()["jobs"]
        assert [(j["action"], j["doc_id"]) for j in jobs] == [("add", "uploads/waiting.txt")]
        wait_for(client, [jobs[0]["id"]])
        assert client.get("/api/documents/uploads/waiting.txt").status_code == 200
    assert not list((index / INCOMING).iterdir())


def test_several_indexes_are_served_and_chosen_by_name(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = make_index(tmp_path / "a", ("MIT.txt",)), make_index(tmp_path / "b", ("Zlib.txt", "ISC.txt"))
    pipes = {"mit": Pipeline.load(first, encoder=FakeEncoder()), "zlib": Pipeline.load(second, encoder=FakeEncoder())}
    with running(pipes, token=TOKEN) as url, httpx.Client(base_url=url, headers=AUTH, timeout=120) as client:
        listed = client.get("/api/indexes").json()
        assert listed == {"default": "mit", "indexes": [{"name": "mit", "documents": 1, "uploads": True},
                                                        {"name": "zlib", "documents": 2, "uploads": True}]}
        assert client.get("/api/info").json()["name"] == "mit"
        assert client.get("/api/info", params={"index": "zlib"}).json()["documents"] == 2
        hits = client.get("/api/search", params={"q": "software", "k": 5, "index": "zlib"}).json()["hits"]
        assert {h["doc_id"] for h in hits} <= {"Zlib.txt", "ISC.txt"} and hits
        unknown = client.get("/api/info", params={"index": "nope"})
        assert unknown.status_code == 404 and "these are: mit, zlib" in unknown.json()["detail"]
        job = upload(client, ("z.txt", b"Zebra terms.\n", "text/plain"), index="zlib").json()["accepted"][0]["job"]
        wait_for(client, [job])
        assert (second / UPLOADS / "z.txt").is_file() and not (first / UPLOADS).exists()
        assert client.get("/api/info", params={"index": "zlib"}).json()["documents"] == 3


def test_a_pdf_page_renders_and_a_span_is_boxed_on_its_line(served):
    client, index, _ = served
    wait_for(client, [upload(client, ("lease.pdf", lease_pdf(), "application/pdf")).json()["accepted"][0]["job"]])
    doc = client.get("/api/documents/uploads/lease.pdf").json()
    sentence = LEASE[1][1]
    start = doc["text"].index(sentence)
    png = client.get("/api/page/uploads/lease.pdf", params={"page": 2, "width": 600})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    from PIL import Image
    image = Image.open(io.BytesIO(png.content))
    assert image.width == 600 and abs(image.height / image.width - 297 / 210) < 0.01  # A4
    boxes = client.get("/api/boxes/uploads/lease.pdf",
                       params=[("page", 2), ("span", f"{start}:{start + len(sentence)}"), ("span", "0:10")]).json()
    [line], other = boxes["boxes"]
    assert other == []  # the first span lies on page 1
    # fpdf2: 10 mm margins, 12 pt lines (≈ 4.2 mm of 297): the second line of the page
    assert 0.03 < line["x"] < 0.06 and 0.045 < line["y"] < 0.065 and 0.003 < line["h"] < 0.03
    # its ink is the sentence's: darker pixels inside the box than in the band below it
    pixels = np.asarray(image.convert("L"), dtype=float)
    x0, y0 = int(line["x"] * image.width), int(line["y"] * image.height)
    x1, y1 = int((line["x"] + line["w"]) * image.width), int((line["y"] + line["h"]) * image.height)
    assert pixels[y0:y1, x0:x1].mean() < 235 and pixels[y1 + 40:y1 + 60, x0:x1].mean() > 250
    assert client.get("/api/page/MIT.txt").status_code == 409  # not a PDF: the text view
    assert client.get("/api/page/uploads/lease.pdf", params={"page": 3}).status_code == 404
    (index / UPLOADS / "lease.pdf").write_bytes(lease_pdf(OTHER))
    changed = client.get("/api/page/uploads/lease.pdf", params={"page": 1})
    assert changed.status_code == 409 and "changed since it was indexed" in changed.json()["detail"]


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="Tesseract is not installed (.ci/setup installs it)")
def test_a_scanned_pdf_is_read_by_ocr_and_its_lines_boxed_from_the_ocr_words(served):
    from longrag.evaluation.printed import scan_pdf

    client, index, _ = served
    job = upload(client, ("scan.pdf", scan_pdf(lease_pdf()), "application/pdf")).json()["accepted"][0]["job"]
    events = wait_for(client, [job])
    assert events[-1]["state"] == "indexed", events[-1]
    assert "2 pages, 2 read by OCR" in next(e["detail"] for e in events if e["state"] == "encoding")
    text = client.get("/api/documents/uploads/scan.pdf").json()["text"]
    start = text.index("ninety days")  # OCR's reading of the sentence
    boxes = client.get("/api/boxes/uploads/scan.pdf", params=[("page", 2), ("span", f"{start}:{start + 11}")]).json()
    assert boxes["ocr"] is True and "read by OCR" in boxes["note"]
    [line] = boxes["boxes"][0]  # the two words, on the second line of page 2, as on the printed page
    assert 0.045 < line["y"] < 0.065 and 0.15 < line["x"] < 0.4 and line["w"] < 0.25


def test_a_read_only_server_and_a_full_uploads_folder_refuse_uploads(tmp_path):
    index = make_index(tmp_path)
    with running(Pipeline.load(index, encoder=FakeEncoder()), token=TOKEN, uploads=False) as url, \
            httpx.Client(base_url=url, headers=AUTH) as client:
        assert client.get("/api/info").json()["uploads"] is None
        refused = upload(client, ("a.txt", b"A note.\n", "text/plain"))
        assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
        assert client.delete("/api/documents/uploads/a.txt").status_code == 403
    with running(Pipeline.load(index, encoder=FakeEncoder()), token=TOKEN, max_uploads=1) as url, \
            httpx.Client(base_url=url, headers=AUTH, timeout=120) as client:
        first = upload(client, ("a.txt", b"A note about anchors.\n", "text/plain"))
        assert first.status_code == 202
        full = upload(client, ("b.txt", b"A note about bicycles.\n", "text/plain"))
        assert full.status_code == 422
        assert "already holds 1 uploaded files, the most it takes: remove some first" in full.json()["detail"]
        wait_for(client, [first.json()["accepted"][0]["job"]])
    assert [p.name for p in (index / UPLOADS).iterdir()] == ["a.txt"]
