"""Retrieve-then-reason: pick the segments that answer a question, within a generator-token budget,
and answer from them with citations.

Selectors: embedding, bm25, hybrid, xl3m (generator certainty over a first-stage shortlist), rerank
(the generator's yes-probability that a shortlisted segment helps), alr2
(generator quotes, verified against the source), and the baselines first / random.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from ..errors import ConfigError

from .alr2 import ALR2Selector, parse_quotes, verified_evidence, verify_quote
from .answer import NOT_FOUND, READ_ORDERS, Answer, Citation, citations, generate_answer, read_answer
from .base import RankingSelector, Selector
from .baselines import FirstTokensSelector, RandomSelector
from .candidates import candidates_of
from .evidence import Candidate, Evidence, Selection, covers, fit_budget, fit_budget_sentences, sentence_bounds
from .fusion import HybridSelector
from .bm25_selector import BM25Selector
from .sentences import SentenceSelector, split_sentences
from .similarity import EmbeddingSelector
from .cascade import CERTAINTIES, GeneratorCascade, RerankSelector, XL3MSelector

# embedding / bm25 / hybrid widen each kept segment to whole sentences by at most this many tokens
# per side (docs/results.md, "Ask", has the measurements behind 64)
EXTEND_TOKENS = 64


@dataclass(frozen=True)
class SelectorParts:
    """What selectors are built from: `count_tokens` counts generator tokens (the budget's unit);
    embedding needs `encoder`, xl3m, rerank and alr2 need `generator` (and `encoder` for an embedding first stage)."""

    count_tokens: Callable[[str], int]
    encoder: object = None
    generator: object = None
    first_stage: str = "embedding"
    candidates: int = 16
    certainty: str = "log_likelihood"
    quote_threshold: float = 90.0
    seed: int = 0
    extend_tokens: int = EXTEND_TOKENS  # 0 = keep segments as cut
    pool: int = 12  # sentences: the best segments whose sentences are ranked
    known: dict = field(default_factory=dict)  # question → vector the caller has already encoded


def _first_stage(parts: SelectorParts) -> Selector:
    if parts.first_stage not in FIRST_STAGES:
        raise ConfigError(f"first stage must be one of {', '.join(FIRST_STAGES)}, got {parts.first_stage!r}")
    return REGISTRY[parts.first_stage](replace(parts, extend_tokens=0))


# name → factory: the one place a selector is named (CLI choices and config checks read it)
REGISTRY: dict[str, Callable[[SelectorParts], Selector]] = {
    "embedding": lambda p: EmbeddingSelector(p.encoder, p.count_tokens, p.extend_tokens, p.known),
    "bm25": lambda p: BM25Selector(p.count_tokens, p.extend_tokens),
    "hybrid": lambda p: HybridSelector([EmbeddingSelector(p.encoder, p.count_tokens, known=p.known), BM25Selector(p.count_tokens)],
                                       p.count_tokens, p.extend_tokens),
    "xl3m": lambda p: XL3MSelector(p.generator, _first_stage(p), candidates=p.candidates, certainty=p.certainty),
    "rerank": lambda p: RerankSelector(p.generator, _first_stage(p), candidates=p.candidates),
    "alr2": lambda p: ALR2Selector(p.generator, _first_stage(p), threshold=p.quote_threshold),
    "first": lambda p: FirstTokensSelector(p.count_tokens),
    "random": lambda p: RandomSelector(p.count_tokens, p.seed),
    "sentences": lambda p: SentenceSelector(p.encoder, p.count_tokens, _first_stage(p), pool=p.pool, known=p.known),
}
SELECTORS = ("sentences", "embedding", "bm25", "hybrid", "xl3m", "rerank", "alr2")  # what `longrag ask --selector` offers
BASELINES = ("first", "random")  # for benchmarks
FIRST_STAGES = ("embedding", "bm25", "hybrid")


def make_selector(name: str, **parts) -> Selector:
    """Build a selector by name from SelectorParts fields given as keywords."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown selector {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name](SelectorParts(**parts))


__all__ = ["Selector", "RankingSelector", "Candidate", "Evidence", "Selection", "Answer", "Citation", "NOT_FOUND",
           "EmbeddingSelector", "BM25Selector", "HybridSelector", "XL3MSelector", "RerankSelector", "GeneratorCascade", "ALR2Selector", "FirstTokensSelector",
           "RandomSelector", "SentenceSelector", "split_sentences", "make_selector", "candidates_of", "fit_budget", "fit_budget_sentences",
           "sentence_bounds", "EXTEND_TOKENS", "covers", "generate_answer", "read_answer", "citations", "parse_quotes",
           "verify_quote", "verified_evidence", "SELECTORS", "BASELINES", "CERTAINTIES", "FIRST_STAGES",
           "REGISTRY", "SelectorParts", "READ_ORDERS"]
