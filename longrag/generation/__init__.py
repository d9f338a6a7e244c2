"""Generation: a causal LM that answers from selected evidence and scores segments, behind one
interface (base.GeneratorBackend) with three backends by name (backends.py): transformers (with RoPE
context extension: rope scaling or SelfExtend), llama.cpp (GGUF on the CPU) and openai (any
OpenAI-compatible server).

The public names load on first use, so reading a configuration (config.py reads the names a
generator section may take from backends.py) does not import torch or transformers.
"""
from __future__ import annotations

import importlib

_PUBLIC = {"BACKENDS": "backends", "chosen_backend": "backends", "load_generator": "backends",
           "Certainty": "base", "GeneratorBackend": "base", "TransformersGenerator": "generator",
           "packaged_generators": "weights", "resolve_generator": "weights",
           "ContextExtension": "settings", "effective_window": "settings"}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
