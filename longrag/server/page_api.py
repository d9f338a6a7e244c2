"""Routes for a PDF's pages as they look: the page as PNG, and the boxes of the lines of given spans.

Only the file an index recorded for a document is opened, and only while its bytes are the ones
indexed (their sha256): a PDF changed or moved since has no page view (409), and the text view stays.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import asdict
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ..files import sha256_file
from .catalog import Catalog, Entry
from .pdfpage import line_boxes, ocr_words, render

MAX_SPANS = 50
SPAN = re.compile(r"^(\d+):(\d+)$")


class Sources:
    """The files behind PDF documents, checked against their indexed hash (cached by size and time)."""

    def __init__(self):
        self._known: dict[tuple, str] = {}
        self._lock = threading.Lock()

    def pdf(self, entry: Entry, doc_id: str) -> tuple[str, str, dict]:
        """(path, sha256, metadata) of a PDF document whose file is still the one indexed."""
        store = entry.pipeline.store
        if doc_id not in store:
            raise HTTPException(404, f"no document {doc_id!r} in this index")
        metadata = store.document_metadata(doc_id)
        if metadata.get("format") != "pdf" or not metadata.get("page_starts"):
            raise HTTPException(409, f"{doc_id!r} is not a PDF: read it in the text view")
        shard, ordinal = store.locate(doc_id)
        [(_, path, indexed)] = shard.document_rows([ordinal], columns=("path", "sha256"))
        if self._sha256(path) != indexed:
            raise HTTPException(409, f"the PDF of {doc_id!r} has moved or changed since it was indexed: read it in "
                                     "the text view (index it again to see its pages)")
        return path, indexed, metadata

    def _sha256(self, path: str) -> str | None:
        try:
            stat = os.stat(path)
            key = (path, stat.st_size, stat.st_mtime_ns)
            with self._lock:
                if key not in self._known:
                    self._known[key] = sha256_file(Path(path))
                return self._known[key]
        except OSError:
            return None


def page_routes(catalog: Catalog) -> APIRouter:
    router = APIRouter()
    chosen = catalog.query()
    sources = Sources()

    def page_of(metadata: dict, page: int) -> None:
        pages = len(metadata["page_starts"])
        if page > pages:
            raise HTTPException(404, f"page {page} of a document of {pages} pages")

    @router.get("/api/page/{doc_id:path}", summary="One page of a PDF document as PNG",
                response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def page_image(doc_id: str, page: int = Query(1, ge=1, description="The page, 1 first."),
                         width: int = Query(1000, ge=200, le=3000, description="Pixels wide."),
                         entry: Entry = Depends(chosen)):
        path, _, metadata = await run_in_threadpool(sources.pdf, entry, doc_id)
        page_of(metadata, page)
        png = await run_in_threadpool(render, path, page, width)
        return Response(png, media_type="image/png", headers={"cache-control": "private, max-age=300"})

    @router.get("/api/boxes/{doc_id:path}", summary="Where spans of a PDF document lie on one of its pages")
    def boxes(doc_id: str, page: int = Query(1, ge=1, description="The page, 1 first."),
              span: list[str] = Query([], description="start:end character offsets in the document's text "
                                                      f"(at most {MAX_SPANS})."),
              entry: Entry = Depends(chosen)) -> dict:
        path, sha256, metadata = sources.pdf(entry, doc_id)
        page_of(metadata, page)
        if len(span) > MAX_SPANS or not all(SPAN.match(s) for s in span):
            raise HTTPException(422, f"span must be start:end (character offsets), at most {MAX_SPANS} of them")
        starts = metadata["page_starts"]
        first = starts[page - 1]
        last = starts[page] - 2 if page < len(starts) else None  # pages are joined by a blank line
        text = entry.pipeline.store.document_row(doc_id)["text"][first:last]
        wanted = [tuple(int(x) - first for x in SPAN.match(s).groups()) for s in span]
        by_ocr = page in ((metadata.get("ocr") or {}).get("pages") or [])
        words = ocr_words(sha256, page) if by_ocr else None
        found = line_boxes(path, page, text, wanted, words)
        note = None
        if by_ocr:
            note = "this page was read by OCR: its words are boxed where OCR found them" if words else \
                "this page was read by OCR, and its word boxes are no longer kept: read the spans in the text view"
        elif not text.strip():
            note = "this page has no text: nothing on it can be boxed"
        return {"doc_id": doc_id, "page": page, "pages": len(starts), "ocr": bool(words),
                "boxes": [[asdict(b) for b in lines] for lines in found], "note": note}

    return router
