"""XL3M-style selection: the generator reads [segment; question] and the segment is scored by
how certain the model is of the question after reading it.

Cascade: a cheap first stage (embedding, BM25 or their fusion) ranks all candidates; only its top M are read
by the generator (batched); they are re-ranked by certainty and come first, and the rest follow
in first-stage order, so a budget larger than M segments is still filled.

Certainty (Generator.score over the question's token positions, prefix = segment):
- log_likelihood: mean log p(question token | segment, earlier question tokens). A segment that
  makes the question predictable talks about what the question asks.
- neg_entropy: mean −H of the next-token distribution at those positions (how peaked the model
  is, whatever token it expects).
Both come from the same forward pass; benchmarks/evidence_recall.py measures both (docs/results.md, "Ask").
log_likelihood is the default: on CUAD (10 questions, hybrid first stage, M=16) it recalled the
gold span at 512/1024/2048/4096 tokens for 50/60/70/100% of questions against 20/40/60/90% for
neg_entropy. A likely reason (not measured): neg-entropy rewards segments after which the model
is sure of *something* (boilerplate, numbered lists), not of this question. Measured too: with SmolLM2-135M the re-ranking
did not beat its own first stage at ≤ 2048 tokens on those questions (docs/results.md, "Ask").
"""
from __future__ import annotations

from typing import Sequence

from ..errors import ConfigError
from .base import RankingSelector
from .evidence import Candidate

CERTAINTIES = ("log_likelihood", "neg_entropy")


class XL3MSelector(RankingSelector):
    """First stage → top-M candidates → generator certainty → ranking."""

    name = "xl3m"

    def __init__(self, generator, first_stage: RankingSelector, candidates: int = 16,
                 certainty: str = "log_likelihood", batch_size: int = 8):
        super().__init__(generator.count_tokens)
        if certainty not in CERTAINTIES:
            raise ConfigError(f"xl3m certainty must be one of {', '.join(CERTAINTIES)}, got {certainty!r}")
        self.generator = generator
        self.first_stage = first_stage
        self.candidates = candidates
        self.certainty = certainty
        self.batch_size = batch_size

    @staticmethod
    def pair(candidate: Candidate, question: str) -> tuple[str, str]:
        """(prefix, continuation) the generator scores: the question is what must become predictable."""
        return f"{candidate.text.strip()}\n\nQuestion:", f" {question.strip()}"

    def certainties(self, question: str, shortlist: Sequence[Candidate]):
        """Generator certainty of the question after each candidate (both measures)."""
        return self.generator.score([self.pair(c, question) for c in shortlist], batch_size=self.batch_size)

    def rank(self, question, candidates):
        first = self.first_stage.rank(question, candidates)
        shortlist = [c for c, _ in first[: self.candidates]]
        scores = [getattr(s, self.certainty) for s in self.certainties(question, shortlist)]
        reranked = sorted(zip(shortlist, scores), key=lambda item: -item[1])
        # beyond the shortlist: first-stage order, scored below every read candidate
        floor = min(scores, default=0.0) - 1.0
        rest = [(c, floor - i) for i, (c, _) in enumerate(first[self.candidates:])]
        return reranked + rest
