"""Hybrid selector: reciprocal rank fusion of the embedding and BM25 rankings (a cheap first stage)."""
from __future__ import annotations

from ..ranking import reciprocal_rank_fusion
from .base import RankingSelector


class HybridSelector(RankingSelector):
    """Sum of 1/(60 + rank) over the embedding and BM25 rankings of the same candidates."""

    name = "hybrid"

    def __init__(self, rankers: list[RankingSelector], count_tokens, extend_tokens: int = 0):
        super().__init__(count_tokens, extend_tokens)
        self.rankers = rankers

    def rank(self, question, candidates):
        position = {id(c): i for i, c in enumerate(candidates)}
        fused = reciprocal_rank_fusion([position[id(c)] for c, _ in ranker.rank(question, candidates)]
                                       for ranker in self.rankers)
        order = sorted(range(len(candidates)), key=lambda i: -fused.get(i, 0.0))
        return [(candidates[i], fused.get(i, 0.0)) for i in order]
