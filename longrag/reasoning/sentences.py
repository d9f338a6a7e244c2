"""Sentence-level evidence: inside the best segments, rank sentences with the same hybrid that ranks
segments, and fill the budget with the best sentences plus their immediate neighbours.

A 256-token segment is mostly text that does not bear on the question; a small generator reads
every token of it. Ranking sentences instead lets the same budget hold the clauses that matter
(measured in docs/results.md, "Sentence-level evidence"). The ranked sentences are also where the
quotes shown first under `ask` come from (`Selection.rankings["sentences"]`).
"""
from __future__ import annotations

import re
from bisect import bisect_left
from pathlib import PurePath
from typing import Sequence


from ..ranking import fused_order
from ..types import Candidate
from .base import RankingSelector
from .evidence import SENTENCE_END, Selection, TokenCounter, fit_budget_sentences
from .bm25_selector import STEMMED
from .similarity import query_vector
from ..lexical import bm25_scores

MIN_SENTENCE_CHARS = 20  # a shorter piece ("6.", "Trademarks.") is joined to the sentence after it
MAX_SENTENCE_CHARS = 600  # a longer one (a table, code, a line without stops) is cut at line breaks, then spaces
_BREAK = re.compile(r"\n")
_SPACE = re.compile(r"\s")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """[start, end) spans of the sentences of text[start:end], whitespace trimmed, in order.

    Every non-blank character of the range lies in exactly one span: short pieces (a clause number,
    a heading) are joined to the next sentence, over-long ones cut into pieces of at most
    MAX_SENTENCE_CHARS at line breaks or, failing those, at spaces (or anywhere, for a run
    without spaces)."""
    end = len(text) if end is None else end
    cuts = [m.end() for m in SENTENCE_END.finditer(text, start, end)]
    pieces, a = [], start
    for b in cuts + [end]:
        pieces += _cut_long(text, *_trim(text, a, b))
        a = b
    pieces = [p for p in pieces if p[1] > p[0]]
    joined: list[tuple[int, int]] = []
    pending = None
    for a, b in pieces:
        if pending is not None:
            a, pending = pending, None
        if b - a < MIN_SENTENCE_CHARS and len(text[a:b].strip()) < MIN_SENTENCE_CHARS:
            pending = a
            continue
        joined.append((a, b))
    if pending is not None:  # a short tail: joined to the sentence before it, or alone
        joined = joined[:-1] + [(joined[-1][0], pieces[-1][1])] if joined else [(pending, pieces[-1][1])]
    return joined


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    piece = text[a:b]
    return a + len(piece) - len(piece.lstrip()), b - len(piece) + len(piece.rstrip())


def _cut_long(text: str, a: int, b: int) -> list[tuple[int, int]]:
    if b - a <= MAX_SENTENCE_CHARS:
        return [(a, b)]
    for boundary in (_BREAK, _SPACE):
        marks = [m.end() for m in boundary.finditer(text, a + MAX_SENTENCE_CHARS // 4, b)]
        if marks:
            # the last boundary that keeps the first piece within the limit, else the first one
            fitting = [m for m in marks if m - a <= MAX_SENTENCE_CHARS]
            cut = fitting[-1] if fitting else marks[0]
            if cut < b:
                return [_trim(text, a, cut)] + _cut_long(text, *_trim(text, cut, b))
    cut = a + MAX_SENTENCE_CHARS
    return [(a, cut)] + _cut_long(text, cut, b)


def title_of(candidate: Candidate) -> str:
    """What a reader knows before reading a sentence: its document's name."""
    return PurePath(candidate.path).stem


class SentenceSelector(RankingSelector):
    """Ranks the sentences of the `pool` best segments (by `first_stage`, the segment hybrid) by the
    rank fusion of the encoder's cosine to the question (each sentence read after its document's
    title) and stemmed BM25 of the question; the budget is filled best sentence first, each with
    the sentences before and after it when they fit. (Fusing in the rank of the segment a sentence
    came from ranked the answering sentence lower: docs/results.md, "Sentence-level evidence".)"""

    name = "sentences"

    def __init__(self, encoder, count_tokens: TokenCounter, first_stage: RankingSelector, pool: int = 12,
                 neighbours: int = 1, known: dict | None = None):
        super().__init__(count_tokens)
        self.encoder, self.first_stage, self.pool, self.neighbours = encoder, first_stage, pool, neighbours
        self.known = known or {}  # question → its vector, when the caller has encoded it already
        self._split: dict[tuple[str, int], list[tuple[int, int]]] = {}  # a document's sentences, split once

    def rank(self, question: str, candidates: Sequence[Candidate],
             segments: list[tuple[Candidate, float]] | None = None) -> list[tuple[Candidate, float]]:
        """Sentences (as Candidates of their document, with `document` set) best first. `segments`:
        the first stage's ranking of `candidates` when the caller has it (not ranked again)."""
        if segments is None:
            segments = self.first_stage.rank(question, candidates)
        segments = [c for c, _ in segments[: self.pool]]
        sentences = []
        seen: set[tuple[str, int]] = set()
        for segment in segments:
            for a, b in self._sentences_of(segment):
                if (segment.doc_id, a) not in seen:
                    seen.add((segment.doc_id, a))
                    sentences.append(Candidate(segment.doc_id, segment.path, a, b, segment.document[a:b],
                                               None, segment.document))
        if not sentences:
            return []
        vectors = self.encoder.encode_queries([f"{title_of(s)}: {s.text}" for s in sentences])
        scores = [vectors @ query_vector(self.encoder, question, self.known),
                  bm25_scores(question, [s.text for s in sentences], STEMMED)]
        order = fused_order(scores)
        fused = {int(i): 1.0 / (1 + r) for r, i in enumerate(order)}
        return [(sentences[i], fused[int(i)]) for i in order]

    def _sentences_of(self, segment: Candidate) -> list[tuple[int, int]]:
        """Sentences of the document that overlap the segment, whole (a segment border cuts sentences)."""
        return [(a, b) for a, b in self._document_sentences(segment) if a < segment.end and b > segment.start]

    def _document_sentences(self, candidate: Candidate) -> list[tuple[int, int]]:
        key = (candidate.doc_id, hash(candidate.document))  # str hashes are cached: cheap after the first
        if key not in self._split:
            if len(self._split) > 64:  # a benchmark reuses one selector over many documents
                self._split.clear()
            self._split[key] = split_sentences(candidate.document)
        return self._split[key]

    def fit(self, ranked: list[tuple[Candidate, float]], budget_tokens: int) -> Selection:
        """The best sentences with their neighbours, merged into blocks in document order."""
        def widen(sentence: Candidate) -> tuple[int, int]:
            spans = self._document_sentences(sentence)
            i = bisect_left(spans, (sentence.start,))
            return spans[max(0, i - self.neighbours)][0], spans[min(len(spans) - 1, i + self.neighbours)][1]

        chosen = fit_budget_sentences(ranked, budget_tokens, self.count_tokens, widen=widen)
        chosen.rankings[self.name] = ranked
        return chosen

    def select(self, question, candidates, budget_tokens):
        chosen = super().select(question, candidates, budget_tokens)
        chosen.considered = len(candidates)
        return chosen
