"""Query → ranked documents, each with its best-matching span, for every index mode.

chunks / late_chunks: a document scores its best segment (max-sim).
document: one vector per document; the span is its segment closest to the query.
"""
from __future__ import annotations

import re

import numpy as np

from .config import Config
from .index import IndexStore
from .types import Hit


def search(store: IndexStore, query_vector: np.ndarray, config: Config, k: int) -> list[Hit]:
    mode = store.manifest["config"]["index"]["mode"]
    if mode == "document":
        ranked = _rank_by_documents(store, query_vector, k)
    else:
        ranked = _rank_by_segments(store, query_vector, k, config.search.candidates)
    return [_hit(store, doc_id, score, span, config.search.snippet_chars) for doc_id, score, span in ranked]


def _rank_by_segments(store: IndexStore, query: np.ndarray, k: int, candidates: int):
    """Max over segments; widen the candidate pool until k distinct documents are found."""
    total = store.segment_index.ntotal
    pool = max(candidates, k)
    while True:
        scores, rows = store.search_segments(query[None, :], pool)
        meta = store.segment_rows([int(r) for r in rows[0] if r >= 0])
        best: dict[str, tuple[float, tuple[int, int]]] = {}
        for score, row in zip(scores[0], rows[0]):
            if row < 0:
                continue
            doc_id, start, end = meta[int(row)]
            if doc_id not in best:  # results come best-first
                best[doc_id] = (float(score), (start, end))
        if len(best) >= k or pool >= total:
            break
        pool = min(total, pool * 4)
    ranked = sorted(best.items(), key=lambda item: -item[1][0])[:k]
    return [(doc_id, score, span) for doc_id, (score, span) in ranked]


def _rank_by_documents(store: IndexStore, query: np.ndarray, k: int):
    scores, rows = store.search_documents(query[None, :], k)
    ids = store.doc_rows([int(r) for r in rows[0] if r >= 0])
    ranked = []
    for score, row in zip(scores[0], rows[0]):
        if row < 0:
            continue
        doc_id = ids[int(row)]
        spans, vectors = store.segments_of(doc_id)
        best = int(np.argmax(vectors @ query)) if len(spans) else 0
        span = (spans[best][1], spans[best][2]) if spans else (0, 0)
        ranked.append((doc_id, float(score), span))
    return ranked


def _hit(store: IndexStore, doc_id: str, score: float, span: tuple[int, int], snippet_chars: int) -> Hit:
    start, end = span
    path, text = store.span_text(doc_id, start, end)
    snippet = re.sub(r"\s+", " ", text).strip()
    if len(snippet) > snippet_chars:
        snippet = snippet[: snippet_chars - 1].rsplit(" ", 1)[0] + "…"
    return Hit(doc_id=doc_id, path=path, score=score, start=start, end=end, snippet=snippet)
