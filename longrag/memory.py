"""Memory a long indexing run hands back, so its peak follows the batch, not the corpus.

The encoder's activations change shape with every batch (lengths and batch sizes vary), and glibc
keeps the freed blocks in its heap for reuse; with oneDNN also caching a kernel per shape, an
indexing run's RSS grew with the number of batches (benchmarks/index_memory.py, docs/results.md
"Indexing memory"). Trimming the heap once per batch and a small kernel cache keep it flat.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

KERNEL_CACHE = "8"  # oneDNN kernels kept (its default is 1024); read when oneDNN first runs


def small_kernel_cache() -> None:
    """A small oneDNN kernel cache unless the user set one (call before torch runs its first op)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", KERNEL_CACHE)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to trim
        return None


def give_back_freed_memory() -> None:
    """Return the heap's free pages to the operating system (glibc only; elsewhere nothing)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
