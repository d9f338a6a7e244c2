"""BM25 over segments (bm25s), stored beside the FAISS index for the hybrid mode."""
from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np

BM25_DIR = "bm25"


def _tokens(texts: list[str]):
    return bm25s.tokenize(texts, stopwords="en", show_progress=False)


def build_bm25(texts: list[str], path: Path) -> None:
    retriever = bm25s.BM25()
    retriever.index(_tokens(texts), show_progress=False)
    retriever.save(path / BM25_DIR, show_progress=False)


def load_bm25(path: Path) -> bm25s.BM25 | None:
    folder = path / BM25_DIR
    return bm25s.BM25.load(folder, show_progress=False) if folder.is_dir() else None


def search_bm25(retriever: bm25s.BM25, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the best k segments; rows with score 0 (no shared term) are dropped."""
    k = min(k, retriever.scores["num_docs"])
    rows, scores = retriever.retrieve(_tokens([query]), k=k, show_progress=False, n_threads=1)
    keep = scores[0] > 0
    return scores[0][keep], rows[0][keep]
