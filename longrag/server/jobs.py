"""Indexing uploads while the server serves: one worker thread runs the jobs one after the other, each
through the index's writer path (Pipeline.index_documents / Pipeline.remove, as `longrag index
--add` and `longrag remove`: the writer lock, a new generation, readers unaffected). Every change
of a job's state is an event the page follows (Server-Sent Events, /api/events) or polls (/api/jobs).
"""
from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..documents.loaders import ReadOptions, UnreadableFile, load_file
from ..errors import LongragError
from .pdfpage import PDFIUM
from .uploads import UploadFolder

KEEP_EVENTS = 1000  # the newest events kept for pages that reconnect
DONE = ("indexed", "removed", "failed")


@dataclass
class Job:
    id: int
    index: str
    action: str  # add | remove
    doc_id: str
    state: str = "queued"  # queued → reading → encoding → indexed; queued → removing → removed; or failed
    detail: str = ""
    documents: int | None = None  # the index's documents once done
    started: float = field(default_factory=time.time)


class Jobs:
    def __init__(self):
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.jobs: dict[int, Job] = {}
        self.events: list[dict] = []
        self._seq = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._thread: threading.Thread | None = None

    # -- the worker -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, daemon=True, name="longrag-indexing")
        self._thread.start()

    def stop(self, timeout: float = 60) -> None:
        """Let the running job finish (a job cut off by the process's end loses nothing either)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def submit(self, index: str, action: str, doc_id: str, run: Callable[[Job, Callable], None]) -> Job:
        job = Job(next(self._ids), index, action, doc_id)
        with self._lock:
            self.jobs[job.id] = job
        self._say(job, "queued", "waiting for the jobs before it" if self._queue.qsize() else "")
        self._queue.put((job, run))
        return job

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            job, run = item
            try:
                run(job, lambda state, detail="", **more: self._say(job, state, detail, **more))
            except (LongragError, UnreadableFile, OSError) as exc:
                self._say(job, "failed", str(exc))
            except Exception as exc:  # a bug: the worker goes on with the next job, the page is told
                self._say(job, "failed", f"{type(exc).__name__}: {exc}")

    # -- events ---------------------------------------------------------------------------------
    def _say(self, job: Job, state: str, detail: str = "", **more) -> None:
        with self._lock:
            job.state, job.detail = state, detail
            for key, value in more.items():
                setattr(job, key, value)
            self._seq += 1
            self.events.append({"seq": self._seq, **asdict(job)})
            del self.events[:-KEEP_EVENTS]
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that page's loop is closed
                pass

    def since(self, seq: int) -> list[dict]:
        with self._lock:
            return [e for e in self.events if e["seq"] > seq]

    async def wait(self, seq: int, timeout: float) -> list[dict]:
        """The events after `seq`, waiting up to `timeout` seconds for one."""
        event = asyncio.Event()
        with self._lock:
            if self._seq <= seq:
                self._waiters.append((asyncio.get_running_loop(), event))
        if not event.is_set() and self._seq <= seq:
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return self.since(seq)


class Library:
    """The uploads of one served index: what is stored, indexed and removed, through `jobs`."""

    def __init__(self, name: str, pipeline, folder: UploadFolder, jobs: Jobs):
        self.name, self.pipeline, self.folder, self.jobs = name, pipeline, folder, jobs

    def recover(self) -> list[Job]:
        """At start: drop half-received files, index files the index does not hold, remove
        uploaded documents whose file is gone (a server killed before it had done so)."""
        self.folder.clean()
        add, gone = self.folder.pending(self.pipeline.store.documents())
        return [self.add(path) for path in add] + [self.remove(doc_id) for doc_id in gone]

    def add(self, path: Path) -> Job:
        return self.jobs.submit(self.name, "add", self.folder.doc_id(path), lambda job, say: self._index(path, say))

    def remove(self, doc_id: str) -> Job:
        """Delete the file now (a restart will not bring it back), then the document from the index."""
        self.folder.path_of(doc_id).unlink(missing_ok=True)
        return self.jobs.submit(self.name, "remove", doc_id, lambda job, say: self._remove(doc_id, say))

    def _index(self, path: Path, say) -> None:
        if not path.is_file():
            return say("failed", "the file was removed before it was indexed")
        say("reading", "reading the text" + (" (pages without text are OCR'd)" if path.suffix == ".pdf" else ""))
        try:
            options = ReadOptions(ocr=self.pipeline.config.index.ocr, name=self.folder.doc_id(path))
            with PDFIUM if path.suffix == ".pdf" else nullcontext():  # the page view renders with pdfium too
                document = load_file(path, self.folder.root, options)  # as `longrag index` reads, OCR included
        except UnreadableFile as exc:
            path.unlink(missing_ok=True)  # kept, it would fail again at every start
            return say("failed", f"{exc}; the file was not kept")
        say("encoding", _read_note(document.metadata) + f"{len(document.text):,} characters; encoding")
        report = self.pipeline.index_documents([document], add=True, wait=True, progress=False)
        say("indexed", f"indexed in {report.seconds:.1f} s", documents=report.documents)

    def _remove(self, doc_id: str, say) -> None:
        if doc_id not in self.pipeline.store:
            return say("removed", "it was not in the index", documents=len(self.pipeline.store))
        say("removing")
        report = self.pipeline.remove([doc_id], wait=True)
        say("removed", f"removed in {report.seconds:.1f} s", documents=report.documents)


def _read_note(metadata: dict) -> str:
    pages = metadata.get("pages")
    if not pages:
        return ""
    blank = metadata.get("pages_without_text") or []
    ocr = (metadata.get("ocr") or {}).get("pages") or []
    return (f"{pages} pages" + (f", {len(ocr)} read by OCR" if ocr else "")
            + (f", {len(blank)} without text" if blank else "") + "; ")
