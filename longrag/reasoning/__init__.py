"""Retrieve-then-reason: pick the segments that answer a question, within a generator-token budget,
and answer from them with citations.

Selectors: embedding, bm25, xl3m (generator certainty over a first-stage shortlist), alr2
(generator quotes, verified against the source), and the baselines first / random.
"""
from __future__ import annotations

from .alr2 import ALR2Selector, parse_quotes, verified_evidence, verify_quote
from .answer import NOT_FOUND, Answer, Citation, citations, generate_answer
from .base import RankingSelector, Selector
from .baselines import FirstTokensSelector, RandomSelector
from .candidates import candidates_of
from .evidence import Candidate, Evidence, Selection, covers, fit_budget, fit_budget_sentences, sentence_bounds
from .fusion import HybridSelector
from .lexical import BM25Selector
from .similarity import EmbeddingSelector
from .xl3m import CERTAINTIES, XL3MSelector

SELECTORS = ("embedding", "bm25", "hybrid", "xl3m", "alr2")  # what `longrag ask --selector` offers
BASELINES = ("first", "random")
FIRST_STAGES = ("embedding", "bm25", "hybrid")
# embedding / bm25 / hybrid widen each kept segment to whole sentences by at most this many tokens
# per side (README "Ask": CUAD recall at 2048 tokens 70% → 74% for hybrid; 32 and 96 measured lower)
EXTEND_TOKENS = 64


def make_selector(name: str, *, count_tokens, encoder=None, generator=None, first_stage: str = "embedding",
                  candidates: int = 16, certainty: str = "log_likelihood", quote_threshold: float = 90.0,
                  seed: int = 0, extend_tokens: int = EXTEND_TOKENS) -> Selector:
    """Build a selector by name. `count_tokens` counts generator tokens (the budget's unit);
    embedding needs `encoder`, xl3m and alr2 need `generator` (and `encoder` for an embedding first stage).
    `extend_tokens` (embedding, bm25, hybrid): widen kept segments to whole sentences, 0 = off."""
    from ..errors import ConfigError

    if name == "embedding":
        return EmbeddingSelector(encoder, count_tokens, extend_tokens)
    if name == "bm25":
        return BM25Selector(count_tokens, extend_tokens)
    if name == "hybrid":
        return HybridSelector([EmbeddingSelector(encoder, count_tokens), BM25Selector(count_tokens)], count_tokens,
                              extend_tokens)
    if name == "first":
        return FirstTokensSelector(count_tokens)
    if name == "random":
        return RandomSelector(count_tokens, seed)
    if name in ("xl3m", "alr2"):
        if first_stage not in FIRST_STAGES:
            raise ConfigError(f"first stage must be one of {', '.join(FIRST_STAGES)}, got {first_stage!r}")
        first = make_selector(first_stage, count_tokens=count_tokens, encoder=encoder, extend_tokens=0)
        if name == "xl3m":
            return XL3MSelector(generator, first, candidates=candidates, certainty=certainty)
        return ALR2Selector(generator, first, threshold=quote_threshold)
    raise ConfigError(f"unknown selector {name!r}; choose one of {', '.join(SELECTORS + BASELINES)}")


__all__ = ["Selector", "RankingSelector", "Candidate", "Evidence", "Selection", "Answer", "Citation", "NOT_FOUND",
           "EmbeddingSelector", "BM25Selector", "HybridSelector", "XL3MSelector", "ALR2Selector", "FirstTokensSelector",
           "RandomSelector", "make_selector", "candidates_of", "fit_budget", "fit_budget_sentences",
           "sentence_bounds", "EXTEND_TOKENS", "covers", "generate_answer", "citations", "parse_quotes",
           "verify_quote", "verified_evidence", "SELECTORS", "BASELINES", "CERTAINTIES"]
