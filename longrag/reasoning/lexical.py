"""BM25 selector (bm25s) over the candidate segments, built per question: candidates are few."""
from __future__ import annotations

import bm25s
import numpy as np

from .base import RankingSelector


def bm25_scores(question: str, texts: list[str]) -> np.ndarray:
    """BM25 score of every text for the question (0 where no query term occurs)."""
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    terms = bm25s.tokenize([question], stopwords="en", return_ids=False, show_progress=False)[0]
    return np.asarray(retriever.get_scores(terms), dtype=np.float64)


class BM25Selector(RankingSelector):
    """Lexical ranking; ties (e.g. no shared term) keep document order."""

    name = "bm25"

    def rank(self, question, candidates):
        scores = bm25_scores(question, [c.text for c in candidates])
        order = np.argsort(-scores, kind="stable")
        return [(candidates[i], float(scores[i])) for i in order]
