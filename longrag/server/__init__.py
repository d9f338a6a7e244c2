"""`longrag serve`: a local web app and HTTP API over one index (needs fastapi and uvicorn).

    >>> from longrag.server import create_app, running
    >>> app = create_app(Pipeline.load("indexes/contracts"))   # any ASGI server can run it
"""
from .app import MAX_BODY, MAX_K, create_app
from .run import running, serve

__all__ = ["create_app", "running", "serve", "MAX_BODY", "MAX_K"]
