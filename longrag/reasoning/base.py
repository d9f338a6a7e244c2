"""The selector interface: a question and candidate segments in, evidence within a token budget out."""
from __future__ import annotations

from typing import Protocol, Sequence

from .evidence import Candidate, Selection, TokenCounter, check_request, fit_budget


class Selector(Protocol):
    """Picks the evidence a generator reads: `select` returns spans in document order within the budget."""

    name: str

    def select(self, question: str, candidates: Sequence[Candidate], budget_tokens: int) -> Selection: ...


class RankingSelector:
    """A selector that scores every candidate once, then fits the ranking into any budget.

    `rank` is separate from `select` so a benchmark can score once and fit several budgets.
    """

    name = "ranking"

    def __init__(self, count_tokens: TokenCounter):
        self.count_tokens = count_tokens

    def rank(self, question: str, candidates: Sequence[Candidate]) -> list[tuple[Candidate, float]]:
        """Candidates best first, each with its score."""
        raise NotImplementedError

    def select(self, question: str, candidates: Sequence[Candidate], budget_tokens: int) -> Selection:
        """The best-ranked candidates that fit `budget_tokens`, in document order."""
        check_request(question, candidates, budget_tokens, self.count_tokens)
        if not candidates:
            return Selection([])
        return fit_budget(self.rank(question, candidates), budget_tokens, self.count_tokens)
