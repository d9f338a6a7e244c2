"""Routes that change an index: upload documents, remove uploaded ones, and follow the indexing
jobs (GET /api/jobs to poll, GET /api/events as Server-Sent Events)."""
from __future__ import annotations

import json

from fastapi import APIRouter, Depends, File, Header, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from ..errors import InputError
from .catalog import Catalog, Entry
from .jobs import Jobs

KEEPALIVE = 15  # seconds between comments on a quiet event stream (proxies close idle connections)


def upload_routes(catalog: Catalog, jobs: Jobs, max_files: int) -> APIRouter:
    router = APIRouter()
    chosen = catalog.query()

    def writable(entry: Entry):
        if entry.library is None:
            raise HTTPException(403, "this server is read-only (longrag serve --read-only): documents cannot be "
                                     "added or removed here")
        return entry.library

    @router.post("/api/documents", status_code=202, summary="Upload documents (multipart, field `files`) to index",
                 responses={413: {"description": "Over the upload limit"},
                            422: {"description": "No file could be taken: each one's reason"}})
    async def upload(files: list[UploadFile] = File(description="PDF, Word (.docx), HTML or UTF-8 text files."),
                     entry: Entry = Depends(chosen)):
        library = writable(entry)
        if len(files) > max_files:
            raise HTTPException(422, f"{len(files)} files in one upload; send at most {max_files} at a time")
        taken = set(entry.pipeline.store.documents())
        accepted, refused = [], []
        for upload in files:
            name = upload.filename or "upload"
            try:
                path = await run_in_threadpool(library.folder.store, upload.file, name, taken)
            except InputError as exc:
                refused.append({"name": name, "reason": str(exc)})
                continue
            finally:
                await upload.close()
            taken.add(library.folder.doc_id(path))
            accepted.append({"name": name, "doc_id": library.folder.doc_id(path), "job": library.add(path).id})
        if not accepted:
            return JSONResponse({"detail": "; ".join(r["reason"] for r in refused), "refused": refused}, 422)
        return {"index": entry.name, "accepted": accepted, "refused": refused}

    @router.delete("/api/documents/{doc_id:path}", status_code=202, summary="Remove an uploaded document",
                   responses={404: {"description": "No such document"},
                              409: {"description": "Not an uploaded document (indexed from a folder)"}})
    def remove(doc_id: str, entry: Entry = Depends(chosen)) -> dict:
        library = writable(entry)
        known = doc_id in entry.pipeline.store or (library.folder.is_upload(doc_id)
                                                   and library.folder.path_of(doc_id).is_file())
        if not known:
            raise HTTPException(404, f"no document {doc_id!r} in this index")
        if not library.folder.is_upload(doc_id):
            raise HTTPException(409, f"{doc_id!r} was indexed from a folder on the server, not uploaded: remove the "
                                     f"file there and run `longrag index` again, or `longrag remove {doc_id}`")
        return {"index": entry.name, "doc_id": doc_id, "job": library.remove(doc_id).id}

    @router.get("/api/jobs", summary="Every upload and removal job of this server, with its state")
    def job_list() -> dict:
        return {"jobs": [vars(job) for job in sorted(jobs.jobs.values(), key=lambda j: j.id)]}

    @router.get("/api/events", summary="Job events as Server-Sent Events (event: job, data: the job as JSON)",
                response_class=StreamingResponse)
    async def events(request: Request, after: int = Query(0, ge=0, description="Send the events after this one."),
                     last_event_id: int | None = Header(None)):
        seq = max(after, last_event_id or 0)  # a reconnecting EventSource sends Last-Event-ID

        async def stream():
            nonlocal seq
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                fresh = await jobs.wait(seq, KEEPALIVE)
                if not fresh:
                    yield ": still here\n\n"
                for event in fresh:
                    seq = event["seq"]
                    yield f"id: {seq}\nevent: job\ndata: {json.dumps(event)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-store"})

    return router
