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


class Guard:
    """Refuses a Host not in `allowed_hosts` (400; None allows any) and a body over `max_body`
    bytes (413; read before the app sees it, so a chunked body without a length is held to it too);
    adds SECURITY_HEADERS to every response."""

    def __init__(self, app, allowed_hosts=None, max_body: int = 16 * 1024):
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.allowed is not None and host_name(headers.get("host", "")).lower() not in self.allowed:
            return await _refuse(send, 400, "this server answers only requests addressed to "
                                            f"{', '.join(sorted(self.allowed))} (Host header)")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _refuse(send, 413, f"request body over {self.max_body} bytes")
        if scope["method"] in ("POST", "PUT", "PATCH"):
            body, more = [], True
            while more:  # small by construction: at most max_body bytes are held
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body.append(message.get("body", b""))
                more = message.get("more_body", False)
                if sum(map(len, body)) > self.max_body:
                    return await _refuse(send, 413, f"request body over {self.max_body} bytes")
            receive = _replay(b"".join(body), receive)

        async def send_secured(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + SECURITY_HEADERS}
            await send(message)

        await self.app(scope, receive, send_secured)


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
