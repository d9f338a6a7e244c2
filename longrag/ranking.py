"""Reciprocal rank fusion (Cormack et al. 2009), shared by document search, evidence segments and
support sentences: rankings of the same items are fused by rank alone, so scores on different
scales (cosines, BM25) need no normalising."""
from __future__ import annotations

from typing import Hashable, Iterable

import numpy as np

RRF_K = 60  # the paper's k


def reciprocal_rank_fusion(rankings: Iterable[Iterable[Hashable]]) -> dict[Hashable, float]:
    """Item → sum over the rankings (each best first) of 1 / (RRF_K + its rank there), in first-seen order."""
    scores: dict[Hashable, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (RRF_K + rank)
    return scores


def fused_order(scores: Iterable[np.ndarray]) -> np.ndarray:
    """Indices of the items scored by every array, best fused first (ties: the earlier item first)."""
    fused = reciprocal_rank_fusion(np.argsort(-np.asarray(s), kind="stable").tolist() for s in scores)
    return np.array(sorted(fused, key=lambda i: (-fused[i], i)), dtype=int)
