"""The index folder never loses a user's files or a published generation: refused targets, one
writer at a time, readers that keep one generation whole, kill -9 at any moment, debris removed."""
import fcntl
import json
import os
import subprocess
import sys
import threading

import pytest

from longrag import Pipeline
from longrag.errors import IndexBusyError, IndexNotFoundError, InputError
from longrag.index import IndexStore
from longrag.index.layout import live_generation
from tests.helpers import REPO, FakeEncoder, write_format_1


def make():
    return Pipeline.from_config(None, encoder=FakeEncoder())


def files_of(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# -- F1: only an index, an empty folder or a new path becomes an index ----------------------------
def test_a_folder_that_is_not_an_index_is_refused_and_untouched(tmp_path, corpus):
    mine = tmp_path / "u"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.md").write_text("hi")
    (mine / "sub" / "plan.txt").write_text("keep me")
    before = files_of(mine)
    with pytest.raises(InputError, match="not a longrag index and not empty.*notes.md.*nothing was changed"):
        make().index([corpus], index_dir=mine, progress=False)
    assert files_of(mine) == before and sorted(os.listdir(mine)) == ["notes.md", "sub"]


def test_the_source_folder_itself_is_refused(corpus):
    before = files_of(corpus)
    with pytest.raises(InputError, match="not a longrag index"):
        make().index([corpus], index_dir=corpus, progress=False)
    assert files_of(corpus) == before


def test_an_existing_file_is_refused(tmp_path, corpus):
    target = tmp_path / "afile.txt"
    target.write_text("precious")
    with pytest.raises(InputError, match="is not a folder"):
        make().index([corpus], index_dir=target, progress=False)
    assert target.read_text() == "precious" and sorted(os.listdir(tmp_path)) == ["afile.txt", "docs"]


def test_an_empty_folder_and_an_index_inside_the_source_are_fine(tmp_path, corpus):
    (tmp_path / "empty").mkdir()
    assert make().index([corpus], index_dir=tmp_path / "empty", progress=False).added == 3
    inside = corpus / "idx"  # the index's own files are not read as documents
    make().index([corpus], index_dir=inside, progress=False)
    assert make().index([corpus], index_dir=inside, progress=False).unchanged == 3


# -- F2: readers open one generation whole --------------------------------------------------------
def test_a_reader_keeps_its_generation_and_the_pipeline_moves_to_the_new_one(tmp_path, corpus):
    out = tmp_path / "idx"
    make().index([corpus], index_dir=out, progress=False)
    old = IndexStore(out)
    pipe = Pipeline.load(out, encoder=FakeEncoder())
    for name in ("rockets.md", "tea.html"):  # the index shrinks to one document, then grows anew
        (corpus / name).unlink()
    (corpus / "trains.txt").write_text("Trains run on rails between stations. " * 30)
    make().index([corpus], index_dir=out, progress=False)
    assert not old.generation.exists()  # replaced generations are removed from disk ...
    assert set(old.documents()) == {"cats.txt", "rockets.md", "tea.html"}  # ... yet an open one reads whole
    assert old.span_text("tea.html", 0, 3)[1] == "Tea" and not old.is_current()
    hits = pipe.search("trains rails stations", k=5)  # the pipeline reopens the live generation
    assert {h.doc_id for h in hits} == {"cats.txt", "trains.txt"} and hits[0].doc_id == "trains.txt"


def test_readers_during_updates_always_see_a_whole_generation(tmp_path, corpus):
    out = tmp_path / "idx"
    make().index([corpus], index_dir=out, progress=False)
    versions = [{"cats.txt", "rockets.md", "tea.html"}]
    errors, seen, done = [], [], threading.Event()

    def read():
        while not done.is_set():
            try:
                store = IndexStore(out)
                docs = set(store.documents())
                assert sum(len(store.segments_of(d)[0]) for d in docs) == store.segment_count
                seen.append(frozenset(docs))
            except Exception as exc:  # noqa: BLE001 - any failure of a reader is the finding
                errors.append(repr(exc))

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    for i in range(6):
        (corpus / f"extra{i}.txt").write_text(f"Extra document number {i} about topic {i}. " * 20)
        make().index([corpus], index_dir=out, progress=False)
        versions.append(versions[-1] | {f"extra{i}.txt"})
    done.set()
    for thread in readers:
        thread.join()
    assert errors == [] and seen
    assert set(seen) <= {frozenset(v) for v in versions}


# -- F7: one writer ----------------------------------------------------------------------------------
def test_a_second_writer_fails_at_once_naming_the_first_or_waits(tmp_path, corpus, monkeypatch):
    out = tmp_path / "idx"
    asked = threading.Event()  # the waiting writer has asked for the lock without LOCK_NB: it blocks there
    take = fcntl.flock

    def flock(fd, operation):
        if operation & fcntl.LOCK_EX and not operation & fcntl.LOCK_NB:
            asked.set()
        return take(fd, operation)
    monkeypatch.setattr(fcntl, "flock", flock)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from longrag.index.layout import writer_lock\n"
         f"with writer_lock(Path({str(out)!r})):\n    print('locked', flush=True); sys.stdin.read()"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexBusyError, match=f"being written by process {holder.pid}; .*--wait"):
            make().index([corpus], index_dir=out, progress=False)
        result = {}
        waiter = threading.Thread(target=lambda: result.update(
            report=make().index([corpus], index_dir=out, progress=False, wait=True)))
        waiter.start()
        assert asked.wait(120), "the second writer did not ask for the lock within 120 s"
        assert waiter.is_alive() and "report" not in result  # the first still holds it: it waits
        holder.stdin.close()  # the first writer ends: its lock is released
        waiter.join(timeout=60)
        assert result["report"].added == 3
    finally:
        holder.kill()
        holder.wait()


def test_two_writer_processes_lose_no_update(tmp_path, corpus):
    out = tmp_path / "idx"
    other = tmp_path / "other"
    other.mkdir()
    (other / "volcano.txt").write_text("Volcanoes erupt molten lava and ash. " * 30)
    code = ("import sys; from longrag import Pipeline; from tests.helpers import FakeEncoder\n"
            "from longrag.errors import IndexBusyError\n"
            "try:\n    Pipeline.from_config(None, encoder=FakeEncoder()).index([sys.argv[1]], index_dir=sys.argv[2], "
            "progress=False, wait=sys.argv[3] == 'wait')\nexcept IndexBusyError as e:\n    print(e); sys.exit(2)\n")
    runs = [subprocess.Popen([sys.executable, "-c", code, str(folder), str(out), mode], cwd=REPO,
                             stdout=subprocess.PIPE, text=True) for folder, mode in ((corpus, "wait"), (other, "wait"))]
    assert [r.wait(timeout=120) for r in runs] == [0, 0]
    # both ran, one after the other: the index holds the folder that was written last, whole
    docs = set(IndexStore(out).documents())
    assert docs in ({"cats.txt", "rockets.md", "tea.html"}, {"volcano.txt"})


# -- kill -9 and debris -----------------------------------------------------------------------------
# a run that stops at each step below until the test says go on (a line on stdin), or kills it there
KILLABLE = """
import os, sys
from longrag import Pipeline
from tests.helpers import FakeEncoder

def gate(step):
    print(step, flush=True)
    sys.stdin.readline()

class Gated(FakeEncoder):
    def encode_ids(self, batch, progress=None):
        gate("encode")
        return super().encode_ids(batch, progress)

def gated(name, move):
    def call(source, target, *args, **kwargs):
        gate(f"before {name} {os.path.basename(target)}")
        move(source, target, *args, **kwargs)
        gate(f"after {name} {os.path.basename(target)}")
    return call

os.rename, os.replace = gated("rename", os.rename), gated("replace", os.replace)
Pipeline.from_config(None, encoder=Gated()).index([sys.argv[1]], index_dir=sys.argv[2], progress=False)
print("done", flush=True)
"""


def kill_at(step, corpus, out):
    """Run KILLABLE up to the first step that starts with `step`, then kill -9 it there."""
    run = subprocess.Popen([sys.executable, "-c", KILLABLE, str(corpus), str(out)], cwd=REPO,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    steps = []
    for line in run.stdout:
        steps.append(line.strip())
        if steps[-1].startswith(step):
            break
        run.stdin.write("\n")
        run.stdin.flush()
    run.kill()
    run.wait()
    assert steps and steps[-1].startswith(step), f"the run ended before the step {step!r}; its steps: {steps}"


# kill -9 before encoding ends, before a shard is published, before and after the pointer to the new generation
# is replaced: the old index is live until that replacement, the new one from then on
MOMENTS = [("encode", False), ("before rename s0", False), ("before replace CURRENT", False),
           ("after replace CURRENT", True)]


@pytest.mark.slow  # a process start per moment; the 50-trial random sweep is benchmarks/reliability.py
def test_kill_9_at_each_step_never_corrupts_and_leaves_no_debris(tmp_path, corpus):
    out = tmp_path / "idx"
    make().index([corpus], index_dir=out, progress=False)
    for i in range(8):
        (corpus / f"more{i}.txt").write_text(f"Additional text number {i} with its own words. " * 60)
    old_docs = set(IndexStore(out).documents())
    new_docs = old_docs | {f"more{i}.txt" for i in range(8)}
    for step, published in MOMENTS:
        kill_at(step, corpus, out)
        store = IndexStore(out)  # always one complete generation
        assert set(store.documents()) == (new_docs if published else old_docs), step
        assert store.segment_count == sum(len(store.segments_of(d)[0]) for d in store.documents())
    report = make().index([corpus], index_dir=out, progress=False)  # the next run cleans up
    assert report.documents == len(new_docs)
    assert sorted(os.listdir(out)) == [".lock", "CURRENT", live_generation(out).name, "shards"]
    listed = [s["name"] for s in json.loads((live_generation(out) / "manifest.json").read_text())["shards"]]
    assert sorted(os.listdir(out / "shards")) == sorted(listed)  # no shard of a killed run is left
    clean = tmp_path / "clean"
    make().index([corpus], index_dir=clean, progress=False)
    query = "additional text words"
    assert Pipeline.load(out, encoder=FakeEncoder()).search(query) == Pipeline.load(clean, encoder=FakeEncoder()).search(query)


@pytest.mark.parametrize("layout", ["generations", "flat"])
def test_format_1_indexes_say_how_to_convert_and_convert_on_update_without_encoding(tmp_path, corpus, layout):
    out = tmp_path / "idx"
    make().index([corpus], index_dir=tmp_path / "built", progress=False)
    write_format_1(tmp_path / "built", out)
    if layout == "flat":  # the layout written before generations existed
        for entry in (out / "g000001").iterdir():
            entry.rename(out / entry.name)
        (out / "g000001").rmdir()
        (out / "CURRENT").unlink()
        (tmp_path / ".idx.tmp-abc123").mkdir()  # debris of an old-layout run that was killed
    with pytest.raises(IndexNotFoundError, match="older longrag .format 1.*update it once with `longrag index"):
        Pipeline.load(out, encoder=FakeEncoder())
    (corpus / "trains.txt").write_text("Trains run on rails. " * 30)
    encoder = FakeEncoder()
    report = Pipeline.from_config(None, encoder=encoder).index([corpus], index_dir=out, progress=False)
    assert (report.unchanged, report.added, report.documents) == (3, 1, 4)
    assert encoder.encoded_tokens == report.encoded_tokens < report.tokens  # only the new file was encoded
    assert sorted(os.listdir(out)) == [".lock", "CURRENT", live_generation(out).name, "shards"]  # old files gone
    assert not (tmp_path / ".idx.tmp-abc123").exists()
    clean = tmp_path / "clean"
    make().index([corpus], index_dir=clean, progress=False)
    for query in ("purr mice", "trains rails", "green tea"):
        converted = Pipeline.load(out, encoder=FakeEncoder()).search(query, k=4)
        fresh = Pipeline.load(clean, encoder=FakeEncoder()).search(query, k=4)
        assert [(h.doc_id, h.start, h.end) for h in converted] == [(h.doc_id, h.start, h.end) for h in fresh]
        # same vectors and the same BM25 statistics; the sums run in another order, so within float32 rounding
        assert [h.score for h in converted] == pytest.approx([h.score for h in fresh], abs=1e-5)


def test_a_damaged_pointer_is_a_clear_error(tmp_path, corpus):
    out = tmp_path / "idx"
    make().index([corpus], index_dir=out, progress=False)
    (out / "CURRENT").write_text("../../etc\n")
    with pytest.raises(IndexNotFoundError, match="damaged"):
        IndexStore(out)
    assert json.loads((out / "g000001" / "manifest.json").read_text())["counts"]["documents"] == 3
