"""A `longrag serve` killed (SIGKILL) while it indexes an upload: the index still opens at the generation
it had, the uploads folder holds only whole files, and the next start indexes the file it left."""
import json
import signal
import subprocess
import sys
import textwrap

import httpx

from longrag import Pipeline
from longrag.index import IndexStore
from longrag.index.layout import live_generation
from longrag.server import running
from longrag.server.uploads import INCOMING, UPLOADS

from tests.helpers import REPO, FakeEncoder
from tests.test_server_uploads import AUTH, TOKEN, lease_pdf, make_index, wait_for

# a server whose encoder says when it starts encoding documents, then never finishes
CHILD = textwrap.dedent("""
    import sys, threading
    sys.path.insert(0, {repo!r})
    from longrag import Pipeline
    from longrag.server import running
    from tests.helpers import FakeEncoder

    class Stuck(FakeEncoder):
        def encode_ids(self, batch, progress=None):
            print("ENCODING", flush=True)
            threading.Event().wait()

    with running(Pipeline.load({index!r}, encoder=Stuck()), token={token!r}) as url:
        print(url, flush=True)
        threading.Event().wait()
""")


def test_kill_9_while_an_upload_is_indexed_loses_nothing_and_the_restart_indexes_it(tmp_path):
    index = make_index(tmp_path)
    before = IndexStore(index)
    generation, documents = before.generation.name, sorted(before.documents())
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(repo=str(REPO), index=str(index), token=TOKEN))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        url = child.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        response = httpx.post(f"{url}/api/documents", headers=AUTH, timeout=60,
                              files={"files": ("lease.pdf", lease_pdf(), "application/pdf")})
        assert response.status_code == 202, response.text
        assert child.stdout.readline().strip() == "ENCODING"  # inside the writer: a pending generation is open
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(60)
    assert child.returncode == -signal.SIGKILL

    assert [p.name for p in index.iterdir() if p.name.endswith(".tmp")]  # killed with a generation half written
    after = IndexStore(index)  # opens, at the generation it had
    assert after.generation.name == generation and sorted(after.documents()) == documents
    assert [p.name for p in (index / UPLOADS).iterdir()] == ["lease.pdf"]
    assert (index / UPLOADS / "lease.pdf").read_bytes() == lease_pdf()  # whole, never half written
    assert not list((index / INCOMING).iterdir())

    with running(Pipeline.load(index, encoder=FakeEncoder()), token=TOKEN) as url, \
            httpx.Client(base_url=url, headers=AUTH, timeout=120) as client:
        [job] = client.get("/api/jobs").json()["jobs"]
        assert (job["action"], job["doc_id"]) == ("add", "uploads/lease.pdf")
        events = wait_for(client, [job["id"]])
        assert events[-1]["state"] == "indexed", json.dumps(events[-1])
        assert client.get("/api/info").json()["documents"] == len(documents) + 1
    assert live_generation(index).name != generation
    assert not [p.name for p in index.iterdir() if p.name.endswith(".tmp")]  # the dead run's debris went
