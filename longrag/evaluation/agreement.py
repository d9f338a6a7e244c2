"""Do two question sets rank the retrieval conditions alike? Kendall's τ between the conditions'
scores under each, and each condition's gap and rank under both (used to check synthesized
questions against human-judged ones)."""
from __future__ import annotations

from itertools import combinations
from typing import Mapping, Sequence


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b of two paired score lists (ties counted as SciPy counts them): 1 when they
    order the items alike, −1 when reversed. SciPy's `kendalltau` when SciPy is installed."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"kendall_tau needs two lists of the same length ≥ 2, got {len(x)} and {len(y)}")
    try:
        from scipy.stats import kendalltau
    except ImportError:
        return _tau_b(x, y)
    return float(kendalltau(x, y).statistic)


def _tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    concordant = discordant = tied_x = tied_y = 0
    for i, j in combinations(range(len(x)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tied_x += 1
        elif dy == 0:
            tied_y += 1
        elif (dx > 0) == (dy > 0):
            concordant += 1
        else:
            discordant += 1
    denominator = ((concordant + discordant + tied_x) * (concordant + discordant + tied_y)) ** 0.5
    return (concordant - discordant) / denominator if denominator else float("nan")


def ranks(scores: Mapping[str, float]) -> dict[str, int]:
    """1 = best; equal scores share the better rank."""
    ordered = sorted(scores.values(), reverse=True)
    return {name: ordered.index(score) + 1 for name, score in scores.items()}


def agreement(human: Mapping[str, float], synthesized: Mapping[str, float]) -> dict:
    """τ over the conditions both score, and per condition: both scores, the gap, both ranks."""
    names = [name for name in human if name in synthesized]
    h, s = {n: human[n] for n in names}, {n: synthesized[n] for n in names}
    rank_h, rank_s = ranks(h), ranks(s)
    return {"tau": kendall_tau([h[n] for n in names], [s[n] for n in names]),
            "conditions": {n: {"human": h[n], "synthesized": s[n], "gap": s[n] - h[n],
                               "rank_human": rank_h[n], "rank_synthesized": rank_s[n]} for n in names}}
