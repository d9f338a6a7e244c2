"""Evidence: candidate segments, selected spans, and fitting a ranking into a token budget.

The budget counts generator tokens of the evidence text. Whatever does not fit is counted
(`Selection.dropped`), never cut in the middle: a segment goes in whole or not at all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from ..budget import check_question_fits
from ..errors import InputError
from ..types import Candidate, Evidence, merge_spans

TokenCounter = Callable[[str], int]


@dataclass
class Selection:
    """What a selector chose, in document order, and what it left out to respect the budget.

    Iterates like the list of Evidence it holds.
    """

    evidence: list[Evidence]
    dropped: int = 0  # ranked candidates (or quotes) that did not fit the budget
    dropped_tokens: int = 0
    considered: int = 0  # candidates the selector looked at
    unverified: list[str] = field(default_factory=list)  # ALR²: quotes not found in the source
    # the rankings this selection was fitted from, by selector name (a later stage ranking the same
    # candidates alike reuses them: ask's quotes come from the "sentences" ranking)
    rankings: dict[str, list[tuple[Candidate, float]]] = field(default_factory=dict)
    read: list[tuple[str, int, int]] = field(default_factory=list)  # ALR²: the spans the generator quoted from
    raw_quotes: str = ""  # ALR²: the generator's quoting reply as written

    def __iter__(self) -> Iterator[Evidence]:
        return iter(self.evidence)

    def __len__(self) -> int:
        return len(self.evidence)

    def __getitem__(self, i):
        return self.evidence[i]

    @property
    def tokens(self) -> int:
        return sum(e.tokens for e in self.evidence)


def fit_budget(ranked: Sequence[tuple[Candidate, float]], budget_tokens: int, count_tokens: TokenCounter,
               considered: int | None = None) -> Selection:
    """Keep candidates best-first while they fit `budget_tokens`, then return them in document order.

    A candidate that does not fit is skipped (and counted) and smaller later ones may still fit.
    """
    kept: list[Evidence] = []
    used = dropped = dropped_tokens = 0
    for candidate, score in ranked:
        n = count_tokens(candidate.text)
        if used + n <= budget_tokens:
            kept.append(Evidence(candidate.doc_id, candidate.path, candidate.start, candidate.end,
                                 candidate.text, n, float(score)))
            used += n
        else:
            dropped += 1
            dropped_tokens += n
    return Selection(in_document_order(kept), dropped, dropped_tokens,
                     len(ranked) if considered is None else considered)


# Where a sentence or clause ends: punctuation then space, a blank line, or a line break before a
# numbered item ("2.", "(b)") or a heading in capitals.
SENTENCE_END = re.compile(r"[.;:!?][\"')\]]*\s|\n\s*\n|\n(?=\s*(\(?[0-9a-zA-Z]{1,3}[.)]|[A-Z][A-Z ]{3,}))")


def sentence_bounds(document: str, start: int, end: int, max_tokens: int,
                    count_tokens: TokenCounter) -> tuple[int, int]:
    """[start, end) widened to the start of the sentence it begins inside and the end of the one it
    ends inside. Each side moves only if that costs at most `max_tokens` tokens; else it stays."""
    reach = 6 * max_tokens  # characters searched; a token is rarely longer than 6 characters
    if not SENTENCE_END.search(document, max(0, start - 3), min(len(document), start + 1)):  # not at a sentence start
        ends = list(SENTENCE_END.finditer(document, max(0, start - reach), start))
        if ends and count_tokens(document[ends[-1].end():start]) <= max_tokens:
            start = ends[-1].end()
        elif tail := SENTENCE_END.match(document, start):  # begins on the previous sentence's last stop: skip it
            start = tail.end()
    if end < len(document):
        match = SENTENCE_END.search(document, end - 1, min(len(document), end + reach))
        if match and count_tokens(document[end:match.start() + 1]) <= max_tokens:
            end = match.start() + 1
    return start, end


def fit_budget_sentences(ranked: Sequence[tuple[Candidate, float]], budget_tokens: int, count_tokens: TokenCounter,
                         extend_tokens: int = 0, widen: Callable[[Candidate], tuple[int, int]] | None = None
                         ) -> Selection:
    """Like `fit_budget`, but each kept segment is widened to whole sentences (at most `extend_tokens`
    more per side, see `sentence_bounds`), so a clause cut by a segment border is kept whole; or to
    the span `widen(candidate)` gives (sentence-level evidence: a sentence and its neighbours).

    Kept spans that overlap or touch (only whitespace between) become one block of the document's
    text; the budget counts the tokens of the merged blocks exactly. A widened segment that does not
    fit is tried unwidened before it is dropped. Candidates need `document`; without it this is
    `fit_budget`.
    """
    if any(c.document is None for c, _ in ranked):
        return fit_budget(ranked, budget_tokens, count_tokens)
    documents = {c.doc_id: c for c, _ in ranked}
    blocks: dict[str, list[list]] = {}  # doc_id -> [start, end, score] merged, sorted
    cost: dict[tuple[str, int, int], int] = {}

    def tokens(doc_id: str, a: int, b: int) -> int:
        key = (doc_id, a, b)
        if key not in cost:
            cost[key] = count_tokens(documents[doc_id].document[a:b])
        return cost[key]

    def merged(doc_id: str, a: int, b: int, score: float) -> list[list]:
        return merge_spans([*map(tuple, blocks.get(doc_id, [])), (a, b, score)], documents[doc_id].document)

    used = dropped = dropped_tokens = 0
    for candidate, score in ranked:
        d = candidate.doc_id
        before = sum(tokens(d, x, y) for x, y, _ in blocks.get(d, []))
        wide = (widen(candidate) if widen else
                sentence_bounds(candidate.document, candidate.start, candidate.end, extend_tokens, count_tokens))
        for a, b in dict.fromkeys([wide, (candidate.start, candidate.end)]):
            after = merged(d, a, b, float(score))
            extra = sum(tokens(d, x, y) for x, y, _ in after) - before
            if used + extra <= budget_tokens:
                blocks[d], used = after, used + extra
                break
        else:
            dropped += 1
            dropped_tokens += count_tokens(candidate.text)
    kept = [Evidence(d, documents[d].path, a, b, documents[d].document[a:b], tokens(d, a, b), s)
            for d, spans in blocks.items() for a, b, s in spans]
    return Selection(in_document_order(kept), dropped, dropped_tokens, len(ranked))


def in_document_order(evidence: Sequence[Evidence]) -> list[Evidence]:
    """Documents in the order they first appear (best document first), spans by offset inside each."""
    first_seen: dict[str, int] = {}
    for e in evidence:
        first_seen.setdefault(e.doc_id, len(first_seen))
    return sorted(evidence, key=lambda e: (first_seen[e.doc_id], e.start, e.end))


def check_request(question: str, candidates: Sequence[Candidate], budget_tokens: int,
                  count_tokens: TokenCounter) -> None:
    """The shared input checks of every selector: clear errors instead of odd selections."""
    if not question or not question.strip():
        raise InputError("empty question")
    if budget_tokens < 1:
        raise InputError(f"budget must be a positive number of tokens, got {budget_tokens}")
    check_question_fits(count_tokens(question), budget_tokens)


def covers(evidence: Sequence[Evidence] | Sequence[tuple[int, int]], start: int, end: int, text: str) -> bool:
    """True when [start, end) of `text` lies inside the selected spans of that document.

    Consecutive spans separated only by whitespace count as one (segments end and start on token
    boundaries, so the blank between two chosen neighbours belongs to neither).
    """
    merged = merge_spans([(e.start, e.end, 0.0) if isinstance(e, Evidence) else (*e, 0.0) for e in evidence], text)
    # a gold span may start or end on whitespace that no segment holds
    inner = text[start:end]
    start += len(inner) - len(inner.lstrip())
    end -= len(inner) - len(inner.rstrip())
    return any(a <= start and end <= b for a, b, _ in merged)


_WS = re.compile(r"\s+")


def squash(text: str) -> str:
    """Whitespace collapsed to single spaces (for display)."""
    return _WS.sub(" ", text).strip()
