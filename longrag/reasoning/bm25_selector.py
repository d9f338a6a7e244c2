"""BM25 selector (bm25s) over the candidate segments, built per question: candidates are few.

Words are Snowball-stemmed (PyStemmer), so "renewal" in a question meets "renew" in a clause:
it lifts CUAD evidence recall (docs/results.md, "Ask").
"""
from __future__ import annotations

import numpy as np

from ..lexical import LexicalSettings, bm25_scores
from .base import RankingSelector

STEMMED = LexicalSettings(stem=True)


class BM25Selector(RankingSelector):
    """Lexical ranking; ties (e.g. no shared term) keep document order."""

    name = "bm25"

    def rank(self, question, candidates):
        scores = bm25_scores(question, [c.text for c in candidates], STEMMED)
        order = np.argsort(-scores, kind="stable")
        return [(candidates[i], float(scores[i])) for i in order]
