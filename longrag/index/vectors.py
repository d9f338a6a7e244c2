"""Vector indexes: the `VectorIndex` interface shards build, save, load and search, and `BACKENDS`,
the registry `index.backend` names (config validation reads its names from here).

A new backend is one module with a class of these members and one line in `BACKENDS` (the class, or
"module:Class" to import it on first use: FAISS loads only when an index is built or read); a shard
records the backend and file of each vector index it wrote (shard.py), so shards written by
different backends are read side by side."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np

from ..errors import ConfigError


class VectorIndex(Protocol):
    """Nearest vectors by inner product; rows are insertion order."""

    suffix: ClassVar[str]  # the file's name ending: segments.<suffix>, documents.<suffix>
    package: ClassVar[str]  # the distribution whose version the manifest records

    @classmethod
    def check(cls, factory: str, dim: int) -> None:
        """Raise ConfigError naming `index.factory` if this backend cannot build `factory` for
        `dim`-dim vectors ("auto": the backend chooses); called before any encoding."""

    @classmethod
    def build(cls, vectors: np.ndarray, factory: str) -> tuple["VectorIndex", str]:
        """The index of `vectors` (n, dim) and the factory it was built with ("auto" resolved)."""

    @classmethod
    def load(cls, path: Path) -> "VectorIndex": ...

    def save(self, path: Path) -> None: ...

    @property
    def size(self) -> int: ...

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) best first, at most k per query; with `allowed` (a boolean per row) only
        allowed rows (tombstones are skipped inside the search, not after it)."""


BACKENDS: dict[str, type[VectorIndex] | str] = {"faiss": "longrag.index.faiss_backend:FaissIndex"}


def backend(name: str) -> type[VectorIndex]:
    """The backend registered as `name` (imported on first use); an unknown one is a ConfigError naming the choices."""
    try:
        entry = BACKENDS[name]
    except KeyError:
        raise ConfigError(f"index.backend must be one of {', '.join(BACKENDS)}, got {name!r}") from None
    if isinstance(entry, str):
        module, _, attribute = entry.partition(":")
        entry = BACKENDS[name] = getattr(importlib.import_module(module), attribute)
    return entry


def check_vectors(name: str, factory: str, dim: int) -> None:
    """Refuse settings the backend cannot build before any encoding is spent on them."""
    backend(name).check(factory, dim)
