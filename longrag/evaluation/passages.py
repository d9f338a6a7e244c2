"""Passages to write questions from: each document cut into runs of whole sentences, an order of
them spread over the documents and over positions inside each, and the copy test a question must pass.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ..reasoning.sentences import split_sentences

PASSAGE_WORDS = 60  # a passage closes at the sentence that brings it to this many words
MIN_PASSAGE_WORDS = 30  # a shorter document (or tail) is no passage: too little to ask about; a tail joins the one before
COPY_WORDS = 5  # a question sharing this many consecutive words with its passage copies it


@dataclass(frozen=True)
class Passage:
    doc_id: str
    start: int
    end: int
    text: str

    @property
    def key(self) -> str:
        return f"{self.doc_id}[{self.start}:{self.end}]"


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def cut_passages(doc_id: str, text: str) -> list[Passage]:
    """The document's sentences grouped in order into passages of about PASSAGE_WORDS words (a short
    tail joins the passage before it); none when the whole document has fewer than MIN_PASSAGE_WORDS."""
    spans: list[list[int]] = []
    count = 0
    for a, b in split_sentences(text):
        if not spans or count >= PASSAGE_WORDS:
            spans.append([a, b])
            count = 0
        spans[-1][1] = b
        count += len(words(text[a:b]))
    if spans and count < MIN_PASSAGE_WORDS and len(spans) > 1:  # a short tail: joined to the passage before it
        spans[-2][1] = spans.pop()[1]
    passages = [Passage(doc_id, a, b, text[a:b]) for a, b in spans]
    return [p for p in passages if len(words(p.text)) >= MIN_PASSAGE_WORDS]


def _van_der_corput(k: int) -> float:
    x, denominator = 0.0, 1.0
    while k:
        denominator *= 2
        k, bit = divmod(k, 2)
        x += bit / denominator
    return x


def spread_positions(count: int, rng: random.Random) -> list[int]:
    """All of 0..count-1, ordered so that every prefix covers the range evenly: from a random first
    position, each next one falls in the largest gap left (a van der Corput sequence), so a
    document's end is sampled as soon as its start is."""
    offset, order, seen, k = rng.random(), [], set(), 0
    while len(order) < count and k < 8 * count:
        i = int(((offset + _van_der_corput(k)) % 1.0) * count)
        if i not in seen:
            seen.add(i)
            order.append(i)
        k += 1
    return order + [i for i in range(count) if i not in seen]


def spread_order(passages: dict[str, list[Passage]], seed: int) -> list[Passage]:
    """Every passage once: round after round, one passage of each document (documents in a new
    seeded order each round), each document's passages in `spread_positions` order."""
    rng = random.Random(seed)
    queues = {doc: [items[i] for i in spread_positions(len(items), rng)] for doc, items in sorted(passages.items()) if items}
    order: list[Passage] = []
    while queues:
        docs = sorted(queues)
        rng.shuffle(docs)
        for doc in docs:
            order.append(queues[doc].pop(0))
            if not queues[doc]:
                del queues[doc]
    return order


def copied_phrase(question: str, passage: str, n: int = COPY_WORDS) -> str | None:
    """The first run of `n` consecutive words the question shares with the passage (case and
    punctuation ignored), or None when it shares none: a question is a paraphrase when this is None."""
    q, p = words(question), words(passage)
    held = {tuple(p[i:i + n]) for i in range(len(p) - n + 1)}
    return next((" ".join(q[i:i + n]) for i in range(len(q) - n + 1) if tuple(q[i:i + n]) in held), None)
