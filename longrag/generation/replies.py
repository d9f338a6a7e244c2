"""Reading an OpenAI-compatible server's failures: how long to wait before a retry, which exceptions
are the transport's, the message inside an error body, and `ServerFailures`: each failure as one
LongragError, and the retries."""
from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager
from typing import Any, Callable

from ..errors import ConfigError, InputError, LongragError

BACKOFF_S, BACKOFF_MAX_S = 0.5, 8.0  # retry waits: 0.5 s, 1 s, 2 s, ... (or the server's Retry-After, up to 60 s)
_TOO_LONG = re.compile(r"context|too long|maximum.*length|exceed", re.I)


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


class ServerError(LongragError):
    """The generator server could not be reached, or did not answer as an OpenAI-compatible server does."""


class ServerFailures:
    """How one server's failures become one LongragError each (one line for the CLI), with the API
    key never shown, and which failures are retried: `OpenAIGenerator` holds one."""

    def __init__(self, openai: Any, url: str, model: str, api_key_env: str | None, key: str | None,
                 timeout: float, max_retries: int):
        self.openai, self.url, self.model, self.api_key_env = openai, url, model, api_key_env
        self.key, self.timeout, self.max_retries = key, timeout, max_retries

    def redact(self, text: Any) -> str:
        """One line of a server's message, at most 200 characters, the key replaced."""
        line = (str(text).strip().splitlines() or [""])[0]
        if self.key:
            line = line.replace(self.key, "***")
        return line[:200]

    def malformed(self, what: str) -> ServerError:
        return ServerError(f"the generator server at {self.url} sent a {what} reply that is not valid JSON of the "
                           "OpenAI API: is generator.base_url an OpenAI-compatible API root (usually ending in /v1)?")

    def unreachable(self, why: str) -> ServerError:
        return ServerError(f"cannot reach the generator server at {self.url} ({why}): is the server running?")

    def status_error(self, status: int, detail: str, retried: int) -> LongragError:
        detail = f": {detail}" if detail else ""
        if status in (401, 403):
            if self.api_key_env:
                return ConfigError(f"the generator server at {self.url} refused the API key in ${self.api_key_env} "
                                   f"(HTTP {status}): check that environment variable")
            return ConfigError(f"the generator server at {self.url} needs an API key (HTTP {status}): set "
                               "generator.api_key_env to the name of the environment variable that holds it")
        if status == 404:
            return ConfigError(f"the generator server at {self.url} answered 404 for model {self.model!r}{detail}: set "
                               "generator.model to a model it serves (GET <base_url>/models lists them) and "
                               "generator.base_url to its OpenAI API root (usually ending in /v1)")
        after = f" after {retried} retries" if retried else ""
        if status == 429:
            return ServerError(f"the generator server at {self.url} is rate limiting (HTTP 429){after}{detail}")
        if status >= 500:
            return ServerError(f"the generator server at {self.url} failed with HTTP {status}{after}{detail}")
        if _TOO_LONG.search(detail):
            return InputError(f"the generator server at {self.url} refused the prompt as too long (HTTP {status}"
                              f"{detail}): lower ask.budget or generator.context_window")
        return InputError(f"the generator server at {self.url} refused the request (HTTP {status}){detail}")

    def translate(self, exc: BaseException, retried: int = 0, streaming: bool = False) -> LongragError:
        openai = self.openai
        if isinstance(exc, LongragError):
            return exc
        if isinstance(exc, openai.APITimeoutError) or isinstance(exc, (TimeoutError,)) or "Timeout" in type(exc).__name__:
            return ServerError(f"the generator server at {self.url} did not answer within {self.timeout:g} s "
                               "(generator.timeout)")
        if streaming and (isinstance(exc, openai.APIConnectionError) or is_transport_error(exc)):
            return ServerError(f"the generator server at {self.url} ended its reply before it finished (the "
                               "connection broke): see the server's log")
        if isinstance(exc, openai.APIConnectionError) or is_transport_error(exc) or isinstance(exc, OSError):
            cause = exc.__cause__ or exc.__context__ or exc
            why = "connection refused" if "refused" in str(cause).lower() or isinstance(
                cause, ConnectionRefusedError) else self.redact(cause) or type(cause).__name__
            return self.unreachable(why)
        if isinstance(exc, openai.APIStatusError):
            return self.status_error(exc.status_code, self.redact(error_text(exc.body, exc.message)), retried)
        if isinstance(exc, openai.APIError):  # an error event inside a stream
            return ServerError(f"the generator server at {self.url} reported an error: {self.redact(exc.message)}")
        if isinstance(exc, (ValueError, TypeError, AttributeError, KeyError)):  # JSON that is not JSON, or not a reply
            return self.malformed("streamed" if streaming else "chat completion")
        return ServerError(f"the generator server at {self.url} failed: {type(exc).__name__}: {self.redact(exc)}")

    @contextmanager
    def caught(self, streaming: bool = False):
        """Any failure inside becomes one LongragError (one line for the CLI)."""
        try:
            yield
        except LongragError:
            raise
        except Exception as exc:  # noqa: BLE001 - each is translated
            raise self.translate(exc, streaming=streaming) from None

    def retrying(self, call: Callable[[], Any]) -> Any:
        """`call()`, retried on connection failures, 429 and 5xx; every failure becomes one LongragError."""
        openai = self.openai
        for attempt in range(self.max_retries + 1):
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - each is translated below
                status = getattr(exc, "status_code", None) if isinstance(exc, openai.APIStatusError) else None
                retry = (status == 429 or (status or 0) >= 500 or (isinstance(exc, openai.APIConnectionError)
                                                                     and not isinstance(exc, openai.APITimeoutError)))
                if not retry or attempt == self.max_retries:
                    raise self.translate(exc, retried=attempt) from None
                response = getattr(exc, "response", None)
                time.sleep(backoff(attempt, response.headers.get("retry-after") if response is not None else None))
