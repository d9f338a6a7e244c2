"""FAISS, the default vector backend (`index.backend: faiss`): an index built from a FAISS factory
string (`index.factory`; auto: sized from the corpus), inner product on unit vectors, tombstoned
rows skipped inside FAISS by an ID selector. Everything this project knows about FAISS is here."""
from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

from ..errors import ConfigError

# search breadth of the approximate indexes: FAISS's defaults (efSearch 16, nprobe 1) found 88% and
# 27% of the exact top 10 on real segment vectors (docs/results.md, "Index growth")
HNSW_EF_SEARCH = 128
IVF_NPROBE = 32


def auto_factory(n_vectors: int, dim: int) -> str:
    """Exact search while it is cheap; graph search for mid-size; compressed IVF-PQ for huge corpora.

    Flat is exact and fast enough below ~50k vectors (a few ms per query); HNSW keeps latency
    flat up to millions; IVF-PQ keeps memory bounded beyond that (faiss wiki, "Guidelines to choose an index").
    """
    if n_vectors <= 50_000:
        return "Flat"
    if n_vectors <= 1_000_000:
        return "HNSW32"
    lists = int(4 * math.sqrt(n_vectors))
    m = max(m for m in (8, 16, 32, 48, 64, 96) if dim % m == 0 and m <= dim // 4)
    return f"IVF{lists},PQ{m}"


def _widen(index: faiss.Index) -> faiss.Index:
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = max(index.hnsw.efSearch, HNSW_EF_SEARCH)
    elif isinstance(index, faiss.IndexIVF):
        index.nprobe = max(index.nprobe, IVF_NPROBE)
    return index


class FaissIndex:
    """A FAISS index built from a factory string (`auto`: sized from the vector count)."""

    suffix = "faiss"  # segments.faiss, documents.faiss
    package = "faiss-cpu"  # its version is recorded in the manifest

    def __init__(self, index: faiss.Index):
        self.index = _widen(index)

    @classmethod
    def check(cls, factory: str, dim: int) -> None:
        """Refuse a FAISS factory string before any encoding is spent on it."""
        if factory == "auto":
            return
        try:
            faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            reason = str(exc).strip().rsplit(": ", 1)[-1] or "not understood"
            raise ConfigError(f"index.factory {factory!r} is not a FAISS factory string for {dim}-dim vectors "
                              f"({reason}); use auto, Flat, HNSW32 or IVF…,PQ…") from None

    @classmethod
    def build(cls, vectors: np.ndarray, factory: str = "auto") -> tuple["FaissIndex", str]:
        """The index of `vectors` (n, dim), and the factory string it was built with."""
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        chosen = auto_factory(len(vectors), dim) if factory == "auto" else factory
        index = faiss.index_factory(dim, chosen, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained and len(vectors):
            index.train(vectors)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index), chosen

    @classmethod
    def load(cls, path: Path) -> "FaissIndex":
        return cls(faiss.read_index(str(path)))

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), best first, at most `size` per query; with `allowed` (a boolean per row)
        only allowed rows, skipped inside FAISS by an ID selector (Flat, HNSW and IVF honour it)."""
        k = min(k, self.size if allowed is None else int(allowed.sum()))
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        skipping = None if allowed is None or allowed.all() else self._skipping(allowed)  # held until the search ends
        scores, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k,
                                         params=skipping[-1] if skipping else None)
        if (rows < 0).any() and len(queries) == 1:  # an approximate index may find fewer than k rows
            keep = rows[0] >= 0
            return scores[:, keep], rows[:, keep]
        return scores, rows

    def _skipping(self, allowed: np.ndarray) -> tuple:
        """(allowed, bitmap, selector, search parameters) holding a bitmap selector of the allowed rows (kept while `allowed` lives)."""
        cached = getattr(self, "_params", None)
        if cached is None or cached[0] is not allowed:
            bitmap = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
            kind = faiss.SearchParametersHNSW if isinstance(self.index, faiss.IndexHNSW) else \
                faiss.SearchParametersIVF if isinstance(self.index, faiss.IndexIVF) else faiss.SearchParameters
            params = kind()  # search parameters replace the index's own: carry its breadth over
            params.sel = selector
            if isinstance(self.index, faiss.IndexHNSW):
                params.efSearch = self.index.hnsw.efSearch
            elif isinstance(self.index, faiss.IndexIVF):
                params.nprobe = self.index.nprobe
            self._params = cached = (allowed, bitmap, selector, params)  # the bitmap must outlive the selector
        return cached
