"""`longrag serve`: a web app and HTTP API over longrag indexes (needs fastapi and uvicorn).

    >>> from longrag.server import create_app, running
    >>> app = create_app(Pipeline.load("indexes/contracts"))   # any ASGI server can run it

Its names load on first use, so the CLI (which imports the command from here) starts without FastAPI.
"""
from importlib import import_module

_WHERE = {"create_app": "app", "MAX_BODY": "app", "MAX_K": "app", "MAX_UPLOAD": "app",
          "running": "run", "serve": "run"}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
