"""Sentence encoders that read long documents: windows, extended positions, late chunking.

The public names load on first use, so the names an encoder section may take (methods.py) are
read without importing torch."""
from __future__ import annotations

import importlib

_PUBLIC = {"Encoder": "interface", "TransformerEncoder": "transformer", "load_encoder": "transformer"}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
