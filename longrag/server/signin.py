"""The sign-in token, as Jupyter does it: one random token per server (or read from a file), asked
for on the page and on every /api route; after the first visit a cookie stands in for it.

A request is signed in by `?token=…` in its URL, an `Authorization: token …` (or `Bearer …`)
header, or the cookie set when the page was first opened with the token. Tokens and cookies are
compared in constant time. A write (POST, PUT, PATCH, DELETE) signed in by the cookie alone must
also carry the X-Longrag header and no foreign Origin: a page elsewhere can make a browser send
the cookie (were SameSite=Strict not to hold) but cannot add a header without the server's leave.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from ..errors import InputError

COOKIE = "longrag-session"
HEADER = "x-longrag"  # what the page sends on every write
PUBLIC = ("/static/",)  # the app's own script and style: no document in them
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MIN_TOKEN = 16  # characters of a token read from a file
SIGNIN_PAGE = Path(__file__).parent / "static" / "signin.html"


def new_token() -> str:
    return secrets.token_hex(24)


def read_token_file(path: Path) -> str:
    """The token in `path` (its first line); a clear error when it is missing or too short to be secret."""
    try:
        lines = Path(path).read_text(encoding="utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    token = lines[0].strip() if lines else ""
    if len(token) < MIN_TOKEN or any(c.isspace() for c in token):
        raise InputError(f"the token file {path} must hold one token of at least {MIN_TOKEN} characters without "
                         f"spaces on its first line (make one: python -c 'import secrets; print(secrets.token_hex(24))' "
                         f"> {path})")
    return token


def cookie_value(token: str) -> str:
    """What the cookie holds: derived from the token, so the cookie never carries the token itself."""
    return hmac.new(token.encode(), b"longrag session cookie", hashlib.sha256).hexdigest()


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class SignIn:
    """ASGI middleware: with `token` None every request passes (the loopback without a token)."""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token
        self.cookie = cookie_value(token) if token is not None else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.token is None or scope["path"].startswith(PUBLIC):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        by_query = _same(dict(query).get("token"), self.token)
        by_header = _same(_authorization(headers.get("authorization", "")), self.token)
        by_cookie = _same(_cookie(headers.get("cookie", ""), COOKIE), self.cookie)
        if not (by_query or by_header or by_cookie):
            return await _unauthorised(send, scope["path"])
        if scope["method"] in UNSAFE and not (by_query or by_header):
            origin = headers.get("origin")
            if HEADER not in headers or (origin is not None and origin not in _own_origins(headers)):
                return await _json(send, 403, f"a write from the page must carry the {HEADER} header and come from "
                                              "this server's own origin (a request from another site is refused)")
        if by_query and scope["method"] == "GET" and scope["path"] == "/":
            # the cookie replaces the token in the address bar: the same page, without the token
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            return await _redirect(send, "/" + (f"?{rest}" if rest else ""), self.cookie)
        await self.app(scope, receive, send)


def _authorization(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() in ("token", "bearer") else None


def _cookie(header: str, name: str) -> str | None:
    try:
        jar = SimpleCookie(header)
    except Exception:  # http.cookies.CookieError on a malformed header: not signed in
        return None
    return jar[name].value if name in jar else None


def _own_origins(headers: dict) -> set[str]:
    host = headers.get("host", "")
    return {f"http://{host}", f"https://{host}"}


async def _unauthorised(send, path: str) -> None:
    if path.startswith("/api/"):
        return await _json(send, 401, "sign in: add ?token=… (printed by `longrag serve` at start) to the URL, "
                                      "or send the header Authorization: token …")
    body = SIGNIN_PAGE.read_bytes()
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


async def _json(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send, location: str, cookie: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0"), (b"cache-control", b"no-store"),
                            (b"set-cookie", f"{COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/".encode())]})
    await send({"type": "http.response.body", "body": b""})


_TOKEN_IN_URL = re.compile(r"(?<=[?&]token=)[^&\s\"]*")


class HideToken(logging.Filter):
    """Takes the token out of a logged URL (uvicorn's access log prints each request's path and query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_IN_URL.sub("[hidden]", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _TOKEN_IN_URL.sub("[hidden]", record.msg)
        return True
