"""longrag: long-document retrieval and retrieval-augmented generation.

The public names load on first use, so `import longrag` (and the `longrag` command's start-up
guard in console.py) does not pull in torch before it is needed.
"""
from __future__ import annotations

import importlib

_PUBLIC = {"Pipeline": "pipeline", "IndexReport": "indexing", "Config": "config", "load_config": "config",
           "Document": "types", "Segment": "types", "Hit": "types", "Skipped": "types"}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'longrag' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
