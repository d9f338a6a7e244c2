"""The selector interface: a question and candidate segments in, evidence within a token budget out."""
from __future__ import annotations

from typing import Protocol, Sequence

from .evidence import Candidate, Selection, TokenCounter, check_request, fit_budget, fit_budget_sentences


class Selector(Protocol):
    """Picks the evidence a generator reads: `select` returns spans in document order within the budget."""

    name: str

    def select(self, question: str, candidates: Sequence[Candidate], budget_tokens: int) -> Selection: ...


class RankingSelector:
    """A selector that scores every candidate once, then fits the ranking into any budget.

    `rank` is separate from `select` so a benchmark can score once and fit several budgets.
    With `extend_tokens` > 0 every kept segment is widened to whole sentences (at most that many
    tokens per side; `fit_budget_sentences`).
    """

    name = "ranking"

    def __init__(self, count_tokens: TokenCounter, extend_tokens: int = 0):
        self.count_tokens = count_tokens
        self.extend_tokens = extend_tokens

    def rank(self, question: str, candidates: Sequence[Candidate]) -> list[tuple[Candidate, float]]:
        """Candidates best first, each with its score."""
        raise NotImplementedError

    def select(self, question: str, candidates: Sequence[Candidate], budget_tokens: int) -> Selection:
        """The best-ranked candidates that fit `budget_tokens`, in document order."""
        check_request(question, candidates, budget_tokens, self.count_tokens)
        if not candidates:
            return Selection([])
        ranked = self.rank(question, candidates)
        chosen = self.fit(ranked, budget_tokens)
        chosen.rankings[self.name] = ranked
        return chosen

    def fit(self, ranked: list[tuple[Candidate, float]], budget_tokens: int) -> Selection:
        """A ranking from `rank` fitted into `budget_tokens`, in document order."""
        if self.extend_tokens > 0:
            return fit_budget_sentences(ranked, budget_tokens, self.count_tokens, self.extend_tokens)
        return fit_budget(ranked, budget_tokens, self.count_tokens)
