"""The openai backend: any server that speaks the OpenAI chat-completions API (llama.cpp's
llama-server, llama-cpp-python's server, vLLM, Ollama, LM Studio, a hosted API) answers the
messages; longrag sends them and reads the streamed reply.

What it offers depends on the server, and is found out once, on first use (`capabilities`):
"tokens" when the server has a tokenizer endpoint (llama.cpp: POST /tokenize; llama-cpp-python:
POST /extras/tokenize), "score" when its chat completions return `top_logprobs`. Never "raw" or
"extension": the server applies its own chat template and context.

The API key is read from the environment variable that `generator.api_key_env` names, when a
request is sent; it is never part of the configuration, of an index, or of an error message.
"""
from __future__ import annotations

import json
import math
import os
import re
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from ..errors import ConfigError, InputError
from .base import REPEAT_TOKENS, Message, TextPieces, looped, require
from .estimate import COMMON_SPECIALS, estimate_chat, estimate_tokens
from .replies import ServerError, ServerFailures, backoff, error_text, loads
from .settings import ContextExtension

NO_KEY = "not-needed"  # what is sent as the key when generator.api_key_env is not set (local servers ignore it)
TOP_LOGPROBS = 20  # the most alternatives the OpenAI API returns per position


SERVER_KEYS = ("base_url", "api_key_env", "context_window")  # generator keys only this backend reads


def check_settings(gen) -> None:
    """The one check of a `generator` section's server keys (config.py runs it on every load): they
    belong to generator.backend openai, which needs base_url and leaves extension and threads to the server."""
    remote = gen.backend == "openai"

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    for key in SERVER_KEYS:
        need(remote or getattr(gen, key) is None,
             f"generator.{key} is for generator.backend: openai, but the backend is {gen.backend!r}: set "
             f"generator.backend: openai or remove generator.{key}")
    need(not remote or bool(gen.base_url), "generator.backend 'openai' needs generator.base_url, the server's OpenAI "
         "API root (e.g. http://127.0.0.1:8080/v1)")
    need(gen.base_url is None or re.match(r"https?://[^/\s]+", gen.base_url) is not None,
         "generator.base_url must be an http:// or https:// URL, e.g. http://127.0.0.1:8080/v1")
    need(not remote or gen.extension == "none",
         f"generator.extension {gen.extension!r} is not available with generator.backend 'openai' (the server "
         "sets its own context): set generator.extension: none")
    need(not remote or gen.threads is None, "generator.threads sets llama.cpp's threads in this process; with "
         "generator.backend 'openai' the server's own settings decide: remove generator.threads")
    # the value is never echoed: a key pasted here by mistake must not reach a terminal or a log
    need(gen.api_key_env is None or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", gen.api_key_env) is not None,
         "generator.api_key_env must be the NAME of an environment variable (letters, digits, _), not the key "
         "itself: export MY_KEY=<key> and set generator.api_key_env: MY_KEY")
    need(gen.context_window is None or gen.context_window >= 1,
         f"generator.context_window must be a positive number of tokens, got {gen.context_window}")
    need(gen.timeout > 0, f"generator.timeout must be > 0 seconds, got {gen.timeout}")
    need(gen.max_retries >= 0, f"generator.max_retries must be >= 0, got {gen.max_retries}")


def api_root(base_url: str) -> str:
    """The server's root: base_url without a trailing /v1 (where llama.cpp's own endpoints live)."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def shown_url(url: str) -> str:
    """`url` without user:password, as messages show it."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1])) if "@" in parts.netloc else url


class OpenAIGenerator:
    """Chat with a model behind an OpenAI-compatible server (`generator.backend: openai`).

    `chat` is greedy (temperature 0), streamed over SSE, and stops on repetition as the local
    backends do: `looped` runs on the streamed pieces, which stand in for the server's tokens (a
    server streams one token a piece, or a few). A prompt whose `count_chat` plus `max_new_tokens`
    exceeds `window` is refused before anything is sent (nothing is cut).

    Retries: connection failures, HTTP 429 and 5xx are retried up to `max_retries` times with
    backoff, before any of the reply has arrived; 4xx, timeouts and replies cut short are not (the
    openai client's own retries are off: it would also retry a timed-out generation, each time for
    `timeout` seconds, and 408/409)."""

    backend = "openai"
    extension = ContextExtension()  # none: the server sets its context (for callers that describe the window)

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None, context_window: int | None = None,
                 timeout: float = 120.0, max_retries: int = 2):
        try:
            import openai
        except ImportError:
            raise ConfigError("generator.backend 'openai' needs the openai package: pip install 'openai>=1.40'") from None
        self._openai = openai
        self.base_url, self.name, self.api_key_env = base_url.rstrip("/"), model, api_key_env
        self.root, self.url = api_root(self.base_url), shown_url(self.base_url)
        self.timeout, self.max_retries, self._configured_window = float(timeout), int(max_retries), context_window
        self._key = self._read_key()
        self._failures = ServerFailures(openai, self.url, self.name, api_key_env, self._key, self.timeout,
                                        self.max_retries)
        self.client = openai.OpenAI(base_url=self.base_url, api_key=self._key or NO_KEY, timeout=self.timeout,
                                    max_retries=0)
        self._lock = threading.RLock()
        self._window: int | None = None
        self._tokenizer: tuple[str, str] | None | bool = False  # (path, field) once found, None if absent
        self._template: bool | None = None  # POST /apply-template offered (llama.cpp)
        self._score: bool | None = None
        self._counts: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings) -> "OpenAIGenerator":
        check_settings(settings)
        return cls(settings.base_url, settings.model, settings.api_key_env, settings.context_window,
                   settings.timeout, settings.max_retries)

    def __repr__(self) -> str:  # never the key
        return f"OpenAIGenerator({self.name!r} at {self.url})"

    # -- what the server offers ----------------------------------------------------------------
    @property
    def window(self) -> int:
        """generator.context_window, else the context the server reports (llama.cpp: GET /props; vLLM:
        max_model_len in GET /v1/models). A configured window larger than the reported one is refused."""
        if self._window is None:
            with self._lock:
                if self._window is None:
                    self._window = self._find_window()
        return self._window

    def _find_window(self) -> int:
        reported = None
        props = self._get_json("/props")
        if isinstance(props, dict):
            settings = props.get("default_generation_settings")
            n = (settings or {}).get("n_ctx") if isinstance(settings, dict) else None
            reported = n if isinstance(n, int) and n > 0 else props.get("n_ctx")
        if not (isinstance(reported, int) and reported > 0):
            models = self._request("GET", self.base_url + "/models", absent_ok=True)
            data = models.get("data") if isinstance(models, dict) else None
            lengths = [m.get("max_model_len") for m in data or [] if isinstance(m, dict) and m.get("id") == self.name]
            reported = lengths[0] if lengths and isinstance(lengths[0], int) and lengths[0] > 0 else None
        configured = self._configured_window
        if configured is None:
            if reported is None:
                raise ConfigError(f"the generator server at {self.url} does not report its context window: set "
                                  "generator.context_window to the context the server runs with (tokens)")
            return reported
        if reported is not None and configured > reported:
            raise ConfigError(f"generator.context_window is {configured}, but the server at {self.url} runs with a "
                              f"context of {reported} tokens: lower it or start the server with a larger context")
        return configured

    @property
    def capabilities(self) -> frozenset[str]:
        """"tokens" with a tokenizer endpoint, "score" with top_logprobs (both found out once)."""
        tokenizer = self._tokens()
        with self._lock:
            if self._score is None:
                self._score = self._probe_score()
        return frozenset({"tokens"} if tokenizer else set()) | frozenset({"score"} if self._score else set())

    def _tokens(self) -> tuple[str, str] | None:
        """The server's tokenizer endpoint (path, field of the text), found once; None if it has none."""
        if self._tokenizer is False:
            with self._lock:
                if self._tokenizer is False:
                    self._tokenizer = self._find_tokenizer()
        return self._tokenizer

    def _find_tokenizer(self) -> tuple[str, str] | None:
        for path, field in (("/tokenize", "content"), ("/extras/tokenize", "input")):  # llama.cpp, llama-cpp-python
            reply = self._post_json(path, {field: "probe", "model": self.name}, absent_ok=True)
            if isinstance(reply, dict) and isinstance(reply.get("tokens"), list):
                return path, field
        return None

    def _probe_score(self) -> bool:
        try:
            return bool(self._top_logprobs([{"role": "user", "content": "Reply with one word: yes or no?"}]))
        except InputError:  # 400 / 422: the server refuses logprobs
            return False

    # -- tokens ---------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """Exact with the server's tokenizer ("tokens"); else `estimate_tokens` (1.8× on English prose)."""
        tokenizer = self._tokens()
        if not tokenizer:
            return estimate_tokens(text)
        if (n := self._counts.get(text)) is None:
            path, field = tokenizer
            reply = self._post_json(path, {field: text, "model": self.name})
            tokens = reply.get("tokens") if isinstance(reply, dict) else None
            if not isinstance(tokens, list):
                raise ServerError(f"the generator server at {self.url} sent a {path} reply without a token list")
            if len(self._counts) > 8192:
                self._counts.clear()
            n = self._counts[text] = len(tokens)
        return n

    def count_chat(self, messages: Sequence[Message]) -> int:
        """Prompt tokens of the messages: exact where the server renders its template (llama.cpp: POST
        /apply-template) and counts tokens; else the messages' tokens plus 8 a message and 32 for the
        prompt, above what ChatML (5 a message, 3 for the answer's header) and Llama 3 templates add."""
        body = [dict(m) for m in messages]
        tokenizer = self._tokens()
        if self._template is None:
            self._template = bool(tokenizer) and tokenizer[0] == "/tokenize" and isinstance(
                self._post_json("/apply-template", {"messages": body}, absent_ok=True), dict)
        if self._template:
            reply = self._post_json("/apply-template", {"messages": body})
            if isinstance(reply, dict) and isinstance(reply.get("prompt"), str):
                return self.count_tokens(reply["prompt"])
        return estimate_chat(body, self.count_tokens)

    def special_tokens(self) -> list[str]:
        """The remote tokenizer cannot be asked for its control tokens: those of the widespread chat
        formats (COMMON_SPECIALS), which documents are then kept from forming in a prompt."""
        return list(COMMON_SPECIALS)

    # -- answering ------------------------------------------------------------------------------
    def chat(self, messages: Sequence[Message], max_new_tokens: int = 256,
             stream: Callable[[str], None] | None = None) -> str:
        body = [dict(m) for m in messages]
        prompt = self.count_chat(body)
        if prompt + max_new_tokens > self.window:
            how = "counted by the server" if self._tokens() else "estimated"
            raise InputError(f"prompt has {prompt} tokens ({how}) and {max_new_tokens} are kept for the answer: "
                             f"{prompt + max_new_tokens} > the generator's window of {self.window} "
                             "(generator.context_window); lower ask.budget; nothing was sent")
        pieces = TextPieces("".join, stream, hold=REPEAT_TOKENS) if stream else None
        answer: list[str] = []
        finished = False
        reply = self._failures.retrying(lambda: self.client.chat.completions.create(
            model=self.name, messages=body, max_tokens=max_new_tokens, temperature=0.0, stream=True))
        try:
            with self._failures.caught(streaming=True):
                for chunk in reply:
                    if not getattr(chunk, "choices", None):
                        continue  # e.g. a usage-only chunk
                    choice = chunk.choices[0]
                    piece = choice.delta.content if choice.delta is not None else None
                    if piece:
                        answer.append(piece)
                        if pieces:
                            pieces.add([piece])
                        if looped(answer):
                            answer, finished = answer[: len(answer) - REPEAT_TOKENS], True
                            break
                    if choice.finish_reason:
                        finished = True
                        break
        finally:
            reply.close()
        if not finished:
            raise ServerError(f"the generator server at {self.url} ended its reply before it finished (no "
                              f"finish_reason after {len(answer)} pieces): see the server's log")
        if pieces:
            pieces.finish(answer)
        return "".join(answer)

    def choice_logprobs(self, messages: Sequence[Message], options: Sequence[str]) -> list[float]:
        """log p(option starts the reply) for each option, from the top_logprobs of the reply's first
        token: the top token that the option starts with (longest wins; the same text with and without
        a leading space are summed). An option absent from the top 20 gets the smallest log-probability
        seen minus log 2: less likely than anything listed, by a margin that cannot be measured."""
        require(self, "score", "choice_logprobs")
        body = [dict(m) for m in messages]
        if (prompt := self.count_chat(body)) + 1 > self.window:
            raise InputError(f"prompt has {prompt} tokens, more than the generator's window of {self.window} leaves "
                             "for a one-token reply (generator.context_window): lower ask.budget; nothing was sent")
        top = self._top_logprobs(body)
        if not top:
            raise ServerError(f"the generator server at {self.url} sent no top_logprobs this time: see the server's log")
        floor = min(lp for _, lp in top) - math.log(2)
        out = []
        for option in options:
            want = option.lstrip()
            matches = [(token.lstrip(), lp) for token, lp in top if token.strip() and want.startswith(token.lstrip())]
            if not matches:
                out.append(floor)
                continue
            longest = max(len(t) for t, _ in matches)
            out.append(float(np.logaddexp.reduce([lp for t, lp in matches if len(t) == longest])))
        return out

    def _top_logprobs(self, messages: list[dict]) -> list[tuple[str, float]]:
        reply = self._failures.retrying(lambda: self.client.chat.completions.create(
            model=self.name, messages=messages, max_tokens=1, temperature=0.0, logprobs=True,
            top_logprobs=TOP_LOGPROBS, stream=False))
        try:
            content = reply.choices[0].logprobs.content if reply.choices[0].logprobs else None
            first = content[0] if content else None
            top = [(t.token, float(t.logprob)) for t in (first.top_logprobs or [])] if first else []
        except (AttributeError, IndexError, TypeError, ValueError):
            raise self._failures.malformed("chat completion") from None
        return [(token, lp) for token, lp in top if isinstance(token, str) and math.isfinite(lp)]

    # -- transport and errors -------------------------------------------------------------------
    def _read_key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(f"generator.api_key_env names {self.api_key_env}, which is not set in the environment: "
                              f"export {self.api_key_env}=<your key>")
        return key

    def _request(self, method: str, url: str, body: dict | None = None, absent_ok: bool = False) -> Any:
        """A JSON request (llama.cpp's own endpoints, /models); None when `absent_ok` and the server
        does not offer it (400, 403, 404, 405, 422, 501, or a reply that is not JSON)."""
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self._key or NO_KEY}"}
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    text = response.read()
                break
            except urllib.error.HTTPError as exc:
                if absent_ok and exc.code in (400, 403, 404, 405, 422, 501):  # 403: some gateways' unknown route
                    return None
                if (exc.code == 429 or exc.code >= 500) and attempt < self.max_retries:
                    time.sleep(backoff(attempt, exc.headers.get("retry-after")))
                    continue
                detail = exc.read().decode("utf-8", "replace") if exc.fp else ""
                detail = self._failures.redact(error_text(loads(detail), detail))
                raise self._failures.status_error(exc.code, detail, attempt) from None
            except urllib.error.URLError as exc:
                reason = exc.reason
                if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                    raise self._failures.translate(TimeoutError()) from None
                if attempt < self.max_retries:
                    time.sleep(backoff(attempt, None))
                    continue
                why = "connection refused" if isinstance(reason, ConnectionRefusedError) else self._failures.redact(reason)
                raise self._failures.unreachable(why) from None
            except (TimeoutError, OSError) as exc:
                raise self._failures.translate(TimeoutError() if isinstance(exc, TimeoutError) else exc) from None
        try:
            return json.loads(text)
        except ValueError:
            if absent_ok:  # e.g. a web UI's HTML page at that path
                return None
            raise self._failures.malformed(urlsplit(url).path) from None

    def _get_json(self, path: str) -> Any:
        """GET a path at the server's root (absent → None)."""
        return self._request("GET", self.root + path, absent_ok=True)

    def _post_json(self, path: str, body: dict, absent_ok: bool = False) -> Any:
        """POST to a path at the server's root (llama.cpp's own endpoints live there, not under /v1)."""
        return self._request("POST", self.root + path, body, absent_ok=absent_ok)

