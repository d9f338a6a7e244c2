"""What every request passes first: the Host header, the body size, and the security headers of the
answer. A plain ASGI middleware, so it runs before FastAPI reads a body."""
from __future__ import annotations

import json

# the page loads only its own script and style; no inline code, no frames, no other origins
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def host_name(header: str) -> str:
    """The host of a Host header, without the port ("[::1]:8000" → "::1")."""
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


DRAIN = 256 * 1024 * 1024  # bytes of a refused body read (and dropped) so that its sender sees the answer


class Guard:
    """Refuses a Host not in `allowed_hosts` (400; None allows any) and a body over `max_body`
    bytes (413; read before the app sees it, so a chunked body without a length is held to it too),
    or over `limits[path]` for a path that takes more (uploads); adds SECURITY_HEADERS to every response.

    A refused body is read to its end (up to DRAIN bytes) before the answer: a client still sending
    would otherwise see the connection reset, not the reason."""

    def __init__(self, app, allowed_hosts=None, max_body: int = 16 * 1024, limits: dict[str, int] | None = None):
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.max_body = max_body
        self.limits = limits or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.allowed is not None and host_name(headers.get("host", "")).lower() not in self.allowed:
            return await _refuse(send, 400, "this server answers only requests addressed to "
                                            f"{', '.join(sorted(self.allowed))} (Host header)")
        limit = self.limits.get(scope["path"], self.max_body) if scope["method"] == "POST" else self.max_body
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _drain(receive, 0)
            return await _refuse(send, 413, _too_big(limit))
        if scope["method"] in ("POST", "PUT", "PATCH"):
            body, more, size = [], True, 0
            while more:  # at most `limit` bytes are held
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body.append(message.get("body", b""))
                size += len(body[-1])
                more = message.get("more_body", False)
                if size > limit:
                    if more:
                        await _drain(receive, size)
                    return await _refuse(send, 413, _too_big(limit))
            receive = _replay(b"".join(body), receive)

        async def send_secured(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + SECURITY_HEADERS}
            await send(message)

        await self.app(scope, receive, send_secured)


def _too_big(limit: int) -> str:
    if limit < 2**20:
        return f"request body over {limit} bytes"
    return f"the upload is over {limit / 2**20:g} MB, the most this server takes at once (longrag serve --max-upload)"


async def _drain(receive, size: int) -> None:
    while size <= DRAIN:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        size += len(message.get("body", b""))


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the client to go away, as the server would

    return replay


async def _refuse(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
