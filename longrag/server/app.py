"""The HTTP API and web app over one index: `create_app(pipeline)` → a FastAPI app.

Routes under /api (OpenAPI description at /api/openapi.json): info, search, ask (streamed as
NDJSON events), the list of documents and one document's whole text. `/` serves the single-page
app in static/. Everything is read through the public Pipeline API; nothing here writes the index.
"""
from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
from typing import Any, Iterable

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError, LongragError
from ..index.manifest import describe
from ..reasoning import SELECTORS
from .guard import Guard

STATIC = Path(__file__).parent / "static"
MAX_K = 100  # documents one search may return
MAX_TEXT = 2000  # characters of a query or question
MAX_BODY = 16 * 1024  # bytes of a request body (an ask request is a question and two small options)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_TEXT, description="The question, in plain words.")
    selector: str | None = Field(None, description=f"Evidence selector: {', '.join(SELECTORS)} (default: ask.selector).")
    budget: int | None = Field(None, ge=1, description="Evidence tokens to answer from (default: ask.budget).")


def create_app(pipeline, allowed_hosts: Iterable[str] | None = ("127.0.0.1", "localhost", "::1"),
               max_body: int = MAX_BODY, max_k: int = MAX_K) -> FastAPI:
    """The app serving `pipeline` (a Pipeline opened with Pipeline.load).

    `allowed_hosts`: the Host headers answered (None: any); the loopback names by default, so a web
    page elsewhere cannot reach a local server through DNS rebinding. `max_body` bytes per request
    body (413 beyond), `max_k` documents per search (422 beyond). One answer is generated at a time;
    searches and document reads keep being served while it runs (they run in worker threads)."""
    app = FastAPI(title="longrag", version=_version(), docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="Search and question answering over the whole long documents of one longrag index.")
    app.add_middleware(Guard, allowed_hosts=allowed_hosts, max_body=max_body)
    app.state.pipeline = pipeline
    ask_lock = asyncio.Lock()  # one generator run at a time: the model and its cache are one

    @app.exception_handler(LongragError)
    async def longrag_error(request: Request, exc: LongragError):
        return JSONResponse({"detail": str(exc)}, status_code=422 if isinstance(exc, InputError) else 500)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/info", summary="The index: where, what it holds, how it was built; the server's limits")
    def info() -> dict:
        store = pipeline.store
        settings = pipeline.config
        return {"index": str(store.path), "documents": len(store), "description": describe(store.path, store.manifest),
                "generator": settings.generator.model, "checker": settings.ask.checker,
                "selector": settings.ask.selector, "search_k": settings.search.k,
                "limits": {"max_k": max_k, "max_text": MAX_TEXT, "max_body": max_body}}

    @app.get("/api/search", summary="Ranked documents for a query, each with its best-matching span")
    def search(q: str = Query(min_length=1, max_length=MAX_TEXT, description="The query."),
               k: int = Query(10, ge=1, le=max_k, description=f"Documents to return (at most {max_k}).")) -> dict:
        started = time.perf_counter()
        hits = pipeline.search(q, k=k)
        return {"query": q, "k": k, "hits": [h.to_dict() for h in hits],
                "seconds": round(time.perf_counter() - started, 4)}

    @app.get("/api/documents", summary="Every document of the index: id, path, tokens")
    def documents() -> dict:
        rows = pipeline.store.documents()
        return {"documents": [{"doc_id": d, "path": r["path"], "n_tokens": r["n_tokens"]} for d, r in sorted(rows.items())]}

    @app.get("/api/documents/{doc_id:path}", summary="One document's whole extracted text and metadata",
             responses={404: {"description": "No document with this id in the index"}})
    def document(doc_id: str) -> dict:
        store = pipeline.store
        if doc_id not in store:  # ids are looked up in the index, never opened as paths
            raise HTTPException(404, f"no document {doc_id!r} in this index")
        row = store.document_row(doc_id)
        return {key: row[key] for key in ("doc_id", "path", "n_chars", "n_tokens", "truncated_tokens", "metadata", "text")}

    @app.post("/api/ask", summary="Answer a question: NDJSON events, one per line",
              response_description="Lines of JSON: started, hits (the documents read), quotes, answer, then "
                                   "done (the whole answer, as `longrag ask --json`), or error")
    async def ask(request: AskRequest):
        question = request.question.strip()
        if not question:
            raise HTTPException(422, "the question is empty")
        if request.selector is not None and request.selector not in SELECTORS:
            raise HTTPException(422, f"unknown selector {request.selector!r}; choose one of {', '.join(SELECTORS)}")
        read = pipeline.config.ask.documents  # the documents ask reads: shown first

        async def events():
            started = time.perf_counter()
            yield _line({"type": "started", "question": question, "queued": ask_lock.locked()})
            try:
                hits = await run_in_threadpool(pipeline.search, question, k=read)
                yield _line({"type": "hits", "hits": [h.to_dict() for h in hits]})
                async with ask_lock:
                    # a worker thread: the event loop keeps serving searches while the model reads
                    answer = await run_in_threadpool(pipeline.ask, question, selector=request.selector,
                                                     budget=request.budget)
            except LongragError as exc:
                yield _line({"type": "error", "message": str(exc)})
                return
            result = answer.to_dict()
            yield _line({"type": "quotes", "quotes": result["quotes"]})
            yield _line({"type": "answer", "answer": result["answer"], "withheld": result["withheld"],
                         "found": result["found"], "reading": result["reading"], "citations": result["citations"]})
            yield _line({"type": "done", "answer": result, "seconds": round(time.perf_counter() - started, 3)})

        return StreamingResponse(events(), media_type="application/x-ndjson")

    return app


def _line(event: dict) -> bytes:
    return (json.dumps(_finite(event), ensure_ascii=False) + "\n").encode()


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
