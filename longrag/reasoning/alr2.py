"""ALR²-style retrieve-then-reason: the generator quotes the relevant passages, the quotes are
checked against the source, and only verified quotes become evidence.

Step 1 (here): a first stage fills the budget with segments; the generator reads them as
numbered blocks and writes quotes. A quote counts as verified when it occurs in a block (or,
if it names none or the wrong one, in any block) exactly, or fuzzily with rapidfuzz's
partial-ratio ≥ `threshold` (small models drop or change a character or two). Its evidence span
is the aligned region of the source, so cited text is always the document's own text.
Unverified quotes are dropped and listed in `Selection.unverified`.
Step 2 (answer.py): the answer is generated from the verified quotes only.
"""
from __future__ import annotations

import re
from typing import Sequence

from rapidfuzz import fuzz

from .base import RankingSelector
from .prompting import UNTRUSTED_RULE, user_message
from .evidence import Candidate, Evidence, Selection, check_request, in_document_order

MIN_QUOTE_CHARS = 12  # shorter "quotes" (a word or two) match almost anywhere

QUOTE_SYSTEM = ("You copy sentences from documents. Copy, word for word, the sentences from the blocks "
                "that help answer the question. Write one quote per line as: [block number] \"sentence\". "
                "If no sentence helps, write NONE. " + UNTRUSTED_RULE)

_LINE = re.compile(r"^\s*(?:[-*\d.)]+\s*)?(?:\[(\d+)\])?\s*[:\-]?\s*(.+?)\s*$")


def parse_quotes(text: str) -> list[tuple[int | None, str]]:
    """(block number or None, quote) per non-empty line of the generator's output."""
    quotes = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        body = match.group(2).strip().strip('"“”\'').strip()
        if body.upper().startswith("NONE") or len(body) < MIN_QUOTE_CHARS:
            continue
        quotes.append((int(match.group(1)) if match.group(1) else None, body))
    return quotes


def verify_quote(quote: str, blocks: Sequence[Evidence], hint: int | None, threshold: float):
    """(block, start, end, score) of the quote's best match in the source, or None if below threshold.

    The named block is tried first, then all blocks; offsets are document offsets.
    """
    order = list(range(len(blocks)))
    if hint is not None and 1 <= hint <= len(blocks):
        order.remove(hint - 1)
        order.insert(0, hint - 1)
    best = None
    for i in order:
        block = blocks[i]
        at = block.text.find(quote)
        if at >= 0:
            return block, block.start + at, block.start + at + len(quote), 100.0
        if len(quote) > len(block.text):
            continue
        aligned = fuzz.partial_ratio_alignment(quote, block.text, score_cutoff=threshold)
        if aligned is not None and aligned.score >= threshold and (best is None or aligned.score > best[3]):
            best = (block, block.start + aligned.dest_start, block.start + aligned.dest_end, aligned.score)
    return best


def verified_evidence(quotes: Sequence[tuple[int | None, str]], blocks: Sequence[Evidence], threshold: float,
                      count_tokens) -> tuple[list[Evidence], list[str]]:
    """Verified quotes as Evidence (text taken from the document at the matched offsets), and the
    quotes that failed verification."""
    kept: dict[tuple[str, int, int], Evidence] = {}
    unverified = []
    for hint, quote in quotes:
        found = verify_quote(quote, blocks, hint, threshold)
        if found is None:
            unverified.append(quote)
            continue
        block, start, end, score = found
        text = block.text[start - block.start:end - block.start]  # block.text is the document's text[start:end]
        kept.setdefault((block.doc_id, start, end),
                        Evidence(block.doc_id, block.path, start, end, text, count_tokens(text), score))
    return in_document_order(list(kept.values())), unverified


class ALR2Selector:
    """Quote-then-verify: the evidence is the verified quotes from the first stage's segments."""

    name = "alr2"

    def __init__(self, generator, first_stage: RankingSelector, threshold: float = 90.0,
                 max_new_tokens: int = 200):
        self.generator = generator
        self.first_stage = first_stage
        self.threshold = threshold
        self.max_new_tokens = max_new_tokens
        self.count_tokens = generator.count_tokens

    def quote(self, question: str, blocks: Sequence[Evidence]) -> str:
        """The generator's raw quoting output for these blocks (greedy)."""
        user = user_message(self.generator, question, blocks, "\nQuotes:")
        return self.generator.chat([{"role": "system", "content": QUOTE_SYSTEM}, {"role": "user", "content": user}],
                                   max_new_tokens=self.max_new_tokens)

    def select(self, question: str, candidates: Sequence[Candidate], budget_tokens: int) -> Selection:
        """Segments within the budget → generator quotes → verified quotes in document order."""
        check_request(question, candidates, budget_tokens, self.count_tokens)
        if not candidates:
            return Selection([])
        read = self.first_stage.select(question, candidates, budget_tokens)
        if not read.evidence:
            return read
        raw = self.quote(question, read.evidence)
        evidence, unverified = verified_evidence(parse_quotes(raw), read.evidence, self.threshold, self.count_tokens)
        return Selection(evidence, dropped=read.dropped, dropped_tokens=read.dropped_tokens,
                         considered=len(candidates), unverified=unverified,
                         read=[(e.doc_id, e.start, e.end) for e in read.evidence], raw_quotes=raw)
