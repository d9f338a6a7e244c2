"""The HTTP API and web app over one index or several: `create_app(pipeline)` → a FastAPI app.

Routes under /api (OpenAPI description at /api/openapi.json): indexes, info, search, ask (streamed
as NDJSON events), the list of documents and one document's whole text; each takes `?index=NAME`
(default: the first index). Uploads and removals are upload_api.py's, PDF pages page_api.py's.
`/` serves the single-page app in static/. Reads go through the public Pipeline API.
"""
from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from ..budget import MIN_BUDGET
from ..documents.furniture import restore
from ..errors import InputError, LongragError
from ..index.manifest import describe
from ..reasoning import SELECTORS
from .catalog import Catalog, Entry
from .guard import Guard
from .jobs import Jobs
from .page_api import page_routes
from .signin import SignIn
from .upload_api import upload_routes

STATIC = Path(__file__).parent / "static"
MAX_K = 100  # documents one search may return
MAX_TEXT = 2000  # characters of a query or question
MAX_BODY = 16 * 1024  # bytes of a request body (an ask request is a question and two small options)
MAX_UPLOAD = 32 * 2**20  # bytes of one upload request (its files together)
MAX_FILES = 20  # files in one upload request
MAX_UPLOADS = 1000  # uploaded files one index keeps


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_TEXT, description="The question, in plain words.")
    selector: str | None = Field(None, description=f"Evidence selector: {', '.join(SELECTORS)} (default: ask.selector).")
    budget: int | None = Field(None, ge=MIN_BUDGET, description="Evidence tokens to answer from (default: ask.budget).")


def create_app(pipelines, allowed_hosts: Iterable[str] | None = ("127.0.0.1", "localhost", "::1"),
               max_body: int = MAX_BODY, max_k: int = MAX_K, token: str | None = None, uploads: bool = True,
               max_upload: int = MAX_UPLOAD, max_files: int = MAX_FILES, max_uploads: int = MAX_UPLOADS) -> FastAPI:
    """The app serving `pipelines`: one Pipeline (opened with Pipeline.load), a list of them (each
    named by its folder), or a {name: Pipeline} mapping; the first is the default index.

    `allowed_hosts`: the Host headers answered (None: any); the loopback names by default, so a web
    page elsewhere cannot reach a local server through DNS rebinding. `token`: asked of every request
    (signin.py; None: none asked, for the loopback). `max_body` bytes per request body (413 beyond),
    `max_k` documents per search (422 beyond). `uploads`: documents may be uploaded and removed
    (`max_upload` bytes and `max_files` files a request, `max_uploads` files an index), indexed one
    job at a time. One answer is generated at a time; searches and document reads keep being served
    while it runs or while an upload is indexed (they run in worker threads)."""
    jobs = Jobs()
    catalog = Catalog(pipelines, jobs, uploads, max_uploads)

    @asynccontextmanager
    async def lifespan(app):
        jobs.start()
        for entry in catalog.entries.values():
            if entry.library is not None:
                entry.library.recover()  # what a server stopped before indexing it left
        yield
        jobs.stop()

    app = FastAPI(title="longrag", version=_version(), docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json", lifespan=lifespan,
                  description="Search and question answering over the whole long documents of longrag indexes.")
    app.add_middleware(Guard, allowed_hosts=allowed_hosts, max_body=max_body,
                       limits={"/api/documents": max_upload} if uploads else None)
    app.add_middleware(SignIn, token=token)  # outermost: nothing is read for a request without the token
    app.state.catalog, app.state.jobs = catalog, jobs
    app.state.pipeline = catalog.pick(None).pipeline
    chosen = catalog.query()
    ask_lock = asyncio.Lock()  # one generator run at a time: the model and its cache are one

    @app.exception_handler(LongragError)
    async def longrag_error(request: Request, exc: LongragError):
        return JSONResponse({"detail": str(exc)}, status_code=422 if isinstance(exc, InputError) else 500)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/indexes", summary="The indexes served: name, documents, whether uploads are taken")
    def indexes() -> dict:
        return {"default": catalog.default,
                "indexes": [{"name": e.name, "documents": len(e.pipeline.store), "uploads": e.library is not None}
                            for e in catalog.entries.values()]}

    @app.get("/api/info", summary="The index: where, what it holds, how it was built; the server's limits")
    def info(entry: Entry = Depends(chosen)) -> dict:
        store = entry.pipeline.store
        settings = entry.pipeline.config
        return {"index": str(store.path), "name": entry.name, "documents": len(store),
                "description": describe(store.path, store.manifest),
                "generator": settings.generator.model, "checker": settings.ask.checker,
                "selector": settings.ask.selector, "search_k": settings.search.k,
                "limits": {"max_k": max_k, "max_text": MAX_TEXT, "max_body": max_body},
                "uploads": {"max_upload": max_upload, "max_files": max_files, "max_uploads": max_uploads}
                if entry.library is not None else None}

    @app.get("/api/search", summary="Ranked documents for a query, each with its best-matching span")
    def search(q: str = Query(min_length=1, max_length=MAX_TEXT, description="The query."),
               k: int | None = Query(None, ge=1, le=max_k, description=f"Documents to return (default: search.k; "
                                                                          f"at most {max_k})."),
               entry: Entry = Depends(chosen)) -> dict:
        started = time.perf_counter()
        k = entry.pipeline.config.search.k if k is None else k
        hits = entry.pipeline.search(q, k=k)
        return {"query": q, "k": k, "hits": [h.to_dict() for h in hits],
                "seconds": round(time.perf_counter() - started, 4)}

    @app.get("/api/documents", summary="Every document of the index: id, path, tokens, whether it was uploaded")
    def documents(entry: Entry = Depends(chosen)) -> dict:
        rows = entry.pipeline.store.documents()
        uploaded = entry.library.folder.is_upload if entry.library is not None else lambda doc_id: False
        return {"documents": [{"doc_id": d, "path": r["path"], "n_tokens": r["n_tokens"], "uploaded": uploaded(d)}
                              for d, r in sorted(rows.items())]}

    app.include_router(upload_routes(catalog, jobs, max_files))
    app.include_router(page_routes(catalog))

    @app.get("/api/documents/{doc_id:path}", summary="One document's whole text as extracted (a PDF's running "
             "headers and footers included, though never searched or quoted) and metadata",
             responses={404: {"description": "No document with this id in the index"}})
    def document(doc_id: str, entry: Entry = Depends(chosen)) -> dict:
        store = entry.pipeline.store
        if doc_id not in store:  # ids are looked up in the index, never opened as paths
            raise HTTPException(404, f"no document {doc_id!r} in this index")
        row = store.document_row(doc_id)
        row["text"] = restore(row["text"], row["metadata"])  # same length: every span's offsets hold
        return {key: row[key] for key in ("doc_id", "path", "n_chars", "n_tokens", "truncated_tokens", "metadata", "text")}

    @app.post("/api/ask", summary="Answer a question: its stages as they are known, NDJSON (or SSE) events",
              response_description="One JSON event per line (with `Accept: text/event-stream`, Server-Sent Events): "
                                   "started, hits (the documents read), quotes (as soon as they are chosen), answer, "
                                   "then done (the whole answer, as `longrag ask --json`), or error")
    async def ask(request: AskRequest, raw: Request, entry: Entry = Depends(chosen)):
        pipeline = entry.pipeline
        question = request.question.strip()
        if not question:
            raise HTTPException(422, "the question is empty")
        if request.selector is not None and request.selector not in SELECTORS:
            raise HTTPException(422, f"unknown selector {request.selector!r}; choose one of {', '.join(SELECTORS)}")
        sse = "text/event-stream" in raw.headers.get("accept", "")
        frame = _sse if sse else _line

        async def events():
            started = time.perf_counter()
            yield frame({"type": "started", "question": question, "queued": ask_lock.locked()})
            try:
                async with ask_lock:
                    stages = pipeline.ask_events(question, selector=request.selector, budget=request.budget)
                    # each stage in a worker thread: the event loop keeps serving while the model reads
                    while (event := await run_in_threadpool(next, stages, None)) is not None:
                        stage, payload = event
                        yield frame(WIRE.get(stage, lambda p, s: {"type": stage})(payload, started))
            except LongragError as exc:
                yield frame({"type": "error", "message": str(exc)})

        return StreamingResponse(events(), media_type="text/event-stream" if sse else "application/x-ndjson",
                                 headers={"cache-control": "no-store"})

    return app


def _answer(answer, started: float) -> dict:
    result = answer.to_dict()
    return {"type": "answer", **{key: result.get(key) for key in ("answer", "withheld", "found", "not_found", "reading",
                                                                 "citations", "quotes", "answer_span")}}


# the ask flow's stages (answering.ask_events) as the events the page reads
WIRE = {
    "documents": lambda hits, started: {"type": "hits", "hits": [h.to_dict() for h in hits]},
    "quotes": lambda quotes, started: {"type": "quotes", "quotes": [asdict(q) for q in quotes]},
    "answer": _answer,
    "done": lambda answer, started: {"type": "done", "answer": answer.to_dict(),
                                     "seconds": round(time.perf_counter() - started, 3)},
}


def _line(event: dict) -> bytes:
    return (json.dumps(_finite(event), ensure_ascii=False) + "\n").encode()


def _sse(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(_finite(event), ensure_ascii=False)}\n\n".encode()


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity (JavaScript's JSON.parse refuses them): such a float becomes null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("longrag")
    except PackageNotFoundError:
        return "unknown"
