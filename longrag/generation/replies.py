"""Reading an OpenAI-compatible server's failures: how long to wait before a retry, which exceptions
are the transport's, and the message inside an error body."""
from __future__ import annotations

import json
from typing import Any

BACKOFF_S, BACKOFF_MAX_S = 0.5, 8.0  # retry waits: 0.5 s, 1 s, 2 s, ... (or the server's Retry-After, up to 60 s)


def backoff(attempt: int, retry_after: str | None) -> float:
    try:
        wait = float(retry_after) if retry_after is not None else None
    except ValueError:
        wait = None
    if wait is not None and 0 <= wait <= 60:
        return wait
    return min(BACKOFF_MAX_S, BACKOFF_S * 2 ** attempt)


def is_transport_error(exc: BaseException) -> bool:
    """An httpx / httpcore transport error (what older openai clients let through mid-stream)."""
    return type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2", "h11")


def loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def error_text(body: Any, fallback: Any) -> str:
    """The message of an OpenAI-style error body ({"error": {"message": ...}} or {"error": "..."})."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
        if isinstance(body.get("message"), str):
            return body["message"]
    return str(fallback or "")
