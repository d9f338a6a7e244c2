"""Baselines for the evidence benchmark: the first N tokens of the document, and random segments."""
from __future__ import annotations

import hashlib
import random

from .base import RankingSelector


class FirstTokensSelector(RankingSelector):
    """Candidates in document order: the budget holds the document's first N tokens (whole segments)."""

    name = "first"

    def rank(self, question, candidates):
        firsts: dict[str, int] = {}
        for c in candidates:
            firsts.setdefault(c.doc_id, len(firsts))
        ordered = sorted(candidates, key=lambda c: (firsts[c.doc_id], c.start))
        return [(c, -float(i)) for i, c in enumerate(ordered)]


class RandomSelector(RankingSelector):
    """Random segments, seeded by the question text so a run is repeatable."""

    name = "random"

    def __init__(self, count_tokens, seed: int = 0):
        super().__init__(count_tokens)
        self.seed = seed

    def rank(self, question, candidates):
        digest = hashlib.sha256(f"{self.seed}:{question}".encode()).digest()
        order = list(range(len(candidates)))
        random.Random(digest).shuffle(order)
        return [(candidates[i], -float(rank)) for rank, i in enumerate(order)]
