"""Running the app: `serve` (the `longrag serve` command, in the foreground) and `running` (in a
background thread, for tests, benchmarks and apps that embed it)."""
from __future__ import annotations

import ipaddress
import logging
import socket
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import uvicorn

from ..errors import InputError
from .app import create_app
from .signin import HideToken

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
HIDE_TOKEN = HideToken()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposed(host: str, port: int) -> str | None:
    """The warning for an address other machines can reach; None on the loopback."""
    if is_loopback(host):
        return None
    return (f"warning: listening on {host}, not the loopback: anyone who can reach this machine on port {port} "
            "can read every document of the indexes, and add or remove some, once they have the token; the "
            "connection is plain HTTP, so on a network you do not trust put a TLS proxy in front "
            "(or use --host 127.0.0.1 to keep it local)")


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one); a clear error when it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise InputError(f"cannot listen on {host!r}: {exc.strerror}; give an address such as 127.0.0.1") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port "
                         "(or --port 0 for any free one)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _allowed_hosts(host: str):
    """Loopback: only the loopback names (no DNS rebinding); else any, since the caller chose to expose it."""
    return LOOPBACK_NAMES if is_loopback(host) else None


def check_token(host: str, token: str | None) -> None:
    """No token is allowed only on the loopback: elsewhere anyone who reaches the port could read
    and change the indexes."""
    if token is None and not is_loopback(host):
        raise InputError(f"--no-token is allowed only on the loopback (--host 127.0.0.1), not on {host}: anyone who "
                         "can reach this machine could read the documents and add or remove some")


def serve(pipelines, host: str = "127.0.0.1", port: int = 8000, log: Callable[[str], None] = print,
          warm: bool = True, token: str | None = None, show_token: bool = True, **options) -> None:
    """Serve `pipelines` (one Pipeline, a list, or {name: Pipeline}: see create_app) until
    interrupted. The encoder and store, and with `warm` the first index's generator and checker,
    are loaded before it listens: in the foreground, because llama.cpp points this process's stdout
    and stderr at /dev/null while it loads a model (a URL printed meanwhile would be lost).
    `token`: asked of every request; the URL printed carries it when `show_token`."""
    check_token(host, token)
    sock = listen(host, port)
    warning = exposed(host, sock.getsockname()[1])  # the port it got, where --port 0 asked for any
    if warning:
        print(warning, file=sys.stderr)
    many = _as_list(pipelines)
    log("Loading " + ", ".join(str(p.store.path) for p in many) + (" and the models" if warm else "") + " …")
    for pipeline in many:
        pipeline.encoder, pipeline.store  # noqa: B018 (the first search should not wait for them)
    if warm:
        _warm(many[0])
    app = create_app(pipelines, allowed_hosts=_allowed_hosts(host), token=token, **options)
    config = uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=3)
    logging.getLogger("uvicorn.access").addFilter(HIDE_TOKEN)  # the page's first address carries the token
    url = url_of(sock) + "/"
    shown = f"{url}?token={token}" if token is not None and show_token else url
    served = ", ".join(f"{p.store.path} ({len(p.store)} documents)" for p in many)
    log(f"Serving {served} at {shown} (API: {url_of(sock)}/api/openapi.json); Ctrl-C stops")
    if token is not None and not show_token:
        log("  sign in with the token in the --token-file")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn has shut down cleanly, then passes Ctrl-C on
        log("stopped")


def _as_list(pipelines) -> list:
    if isinstance(pipelines, dict):
        return list(pipelines.values())
    return list(pipelines) if isinstance(pipelines, (list, tuple)) else [pipelines]


def _warm(pipeline) -> None:
    try:
        pipeline.generator, pipeline.checker  # noqa: B018
    except Exception as exc:  # the first ask reports it again, as an error event
        print(f"warning: the generator could not be loaded yet: {exc}", file=sys.stderr)


@contextmanager
def running(pipelines, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
            **options) -> Iterator[str]:
    """The app (see create_app) on host:port in a background thread, for as long as the block runs;
    yields its URL. Off the loopback a `token` is required.

    >>> with running(Pipeline.load("indexes/contracts")) as url:
    ...     httpx.get(f"{url}/api/search", params={"q": "patent licence"}).json()
    """
    check_token(host, token)
    sock = listen(host, port)
    app = create_app(pipelines, allowed_hosts=_allowed_hosts(host), token=token, **options)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3))
    logging.getLogger("uvicorn.access").addFilter(HIDE_TOKEN)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="longrag-server")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
