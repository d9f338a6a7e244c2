"""Index directory: immutable shards (documents, vectors, vector indexes, BM25 counts) listed by generations, published atomically.

The public names load on first use, so the vector backends' names (vectors.py) are read without
importing faiss."""
from __future__ import annotations

import importlib

_PUBLIC = {"IndexStore": "store", "list_indexes": "store", "resolve_index_dir": "store", "IndexWriter": "writer"}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
