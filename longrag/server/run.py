"""Running the app: `serve` (the `longrag serve` command, in the foreground) and `running` (in a
background thread, for tests, benchmarks and apps that embed it)."""
from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import uvicorn

from ..errors import InputError
from .app import create_app

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


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
            "can read every document of the index and run the model. Use --host 127.0.0.1 to keep it local.")


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


def serve(pipeline, host: str = "127.0.0.1", port: int = 8000, log: Callable[[str], None] = print,
          warm: bool = True) -> None:
    """Serve `pipeline` until interrupted. The encoder and store, and with `warm` the generator and
    checker, are loaded before it listens: in the foreground, because llama.cpp points this process's
    stdout and stderr at /dev/null while it loads a model (a URL printed meanwhile would be lost)."""
    sock = listen(host, port)
    warning = exposed(host, sock.getsockname()[1])  # the port it got, where --port 0 asked for any
    if warning:
        print(warning, file=sys.stderr)
    log(f"Loading {pipeline.store.path}" + (" and its models" if warm else "") + " …")
    pipeline.encoder, pipeline.store  # noqa: B018 (the first search should not wait for them)
    if warm:
        _warm(pipeline)
    app = create_app(pipeline, allowed_hosts=_allowed_hosts(host))
    log(f"Serving {pipeline.store.path} ({len(pipeline.store)} documents) at {url_of(sock)}/ "
        f"(API: {url_of(sock)}/api/openapi.json); Ctrl-C stops")
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=3))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn has shut down cleanly, then passes Ctrl-C on
        log("stopped")


def _warm(pipeline) -> None:
    try:
        pipeline.generator, pipeline.checker  # noqa: B018
    except Exception as exc:  # the first ask reports it again, as an error event
        print(f"warning: the generator could not be loaded yet: {exc}", file=sys.stderr)


@contextmanager
def running(pipeline, host: str = "127.0.0.1", port: int = 0, **options) -> Iterator[str]:
    """The app on host:port in a background thread, for as long as the block runs; yields its URL.

    >>> with running(Pipeline.load("indexes/contracts")) as url:
    ...     httpx.get(f"{url}/api/search", params={"q": "patent licence"}).json()
    """
    sock = listen(host, port)
    app = create_app(pipeline, allowed_hosts=_allowed_hosts(host), **options)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3))
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
