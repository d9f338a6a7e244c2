"""Hybrid selector: reciprocal rank fusion of the embedding and BM25 rankings (a cheap first stage)."""
from __future__ import annotations

from .base import RankingSelector

RRF_K = 60  # Cormack et al. 2009, as in retrieval.py


class HybridSelector(RankingSelector):
    """Sum of 1/(60 + rank) over the embedding and BM25 rankings of the same candidates."""

    name = "hybrid"

    def __init__(self, rankers: list[RankingSelector], count_tokens, extend_tokens: int = 0):
        super().__init__(count_tokens, extend_tokens)
        self.rankers = rankers

    def rank(self, question, candidates):
        scores = [0.0] * len(candidates)
        position = {id(c): i for i, c in enumerate(candidates)}
        for ranker in self.rankers:
            for rank, (candidate, _) in enumerate(ranker.rank(question, candidates), 1):
                scores[position[id(candidate)]] += 1.0 / (RRF_K + rank)
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])
        return [(candidates[i], scores[i]) for i in order]
