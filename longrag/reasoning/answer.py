"""Step two: answer from the selected evidence with the generator, citing numbered blocks.

"Not found" rule (measured in docs/results.md, "Ask"): the answer is exactly NOT_FOUND when
(1) no evidence was selected (ALR²: no quote survived verification), or (2) the best cosine
similarity between the question and any candidate segment is below `min_relevance` (the
question is about something the indexed documents do not discuss; decided before the
generator runs), or (3) the generator itself says it cannot find the answer.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .alr2 import verify_quote
from .evidence import SENTENCE_END
from .lexical import STEMMED
from .prompting import UNTRUSTED_RULE, user_message
from ..lexical import BM25
from ..ranking import fused_order
from ..types import Citation, Evidence

NOT_FOUND = "not found in the indexed documents"

ANSWER_SYSTEM = ("Answer the question from the numbered evidence blocks, in one or two sentences. Cite each "
                 "block you use by its number, like [1]; words copied from a block go in double quotes. If the "
                 "blocks say nothing about the question, say that they do not say. " + UNTRUSTED_RULE)

# how a model says the blocks do not answer: the exact phrase, or the blocks / documents as the
# subject of a negated "say", "contain", ... ("the software is not provided with any warranty" is an answer)
_MODEL_NOT_FOUND = re.compile(
    r"not found in the indexed documents"
    r"|\b(blocks?|evidence|documents?|context|texts?|passages?|they)\b[^.]{0,60}?"
    r"\b(do(es)? not|don't|doesn't|did not)\s+(say|contain|mention|provide|specify|state|address|include)"
    r"|\bno (information|mention)\b|\bcannot (find|answer)\b", re.I)
_CITE = re.compile(r"\[(\d+)\]")
_QUOTE = re.compile(r'"([^"\n]+)"|“([^”\n]+)”')
QUOTE_MATCH = 90.0  # rapidfuzz partial ratio a quoted phrase needs in a cited block (as ALR²'s default)


@dataclass(frozen=True)
class Answer:
    """What `Pipeline.ask` returns."""

    answer: str
    citations: list[Citation]
    selector: str
    tokens_in: int  # prompt tokens the generator read for the answer (0 when it was not run)
    seconds: float
    dropped: int  # candidate segments (or quotes) left out to respect the budget
    found: bool = True
    unverified_quotes: list[str] = field(default_factory=list)  # ALR² only
    relevance: float | None = None  # best question–segment cosine (the not-found gate)
    flags: list[str] = field(default_factory=list)  # why the answer is not shown to be supported by what it cites
    support: Citation | None = None  # the evidence sentence that best supports the answer (see `supporting_sentence`)

    @property
    def grounded(self) -> bool:
        """Cites at least one existing block, and every phrase it quotes is in the blocks it cites."""
        return self.found and not self.flags

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "grounded": self.grounded}


def answer_prompt(generator, question: str, evidence: Sequence[Evidence]) -> str:
    """Chat-template prompt with the evidence as numbered blocks, then the question."""
    return generator.chat_prompt(ANSWER_SYSTEM, user_message(generator, question, evidence))


def says_not_found(text: str) -> bool:
    """True when the generator's answer declines (rule 3)."""
    return not text.strip() or bool(_MODEL_NOT_FOUND.search(text))


def quoted(text: str) -> list[str]:
    """Phrases the answer puts in double quotes (three words or more: shorter ones match anywhere)."""
    phrases = [a or b for a, b in _QUOTE.findall(text)]
    return [p.strip() for p in phrases if len(p.split()) >= 3]


def grounding(text: str, evidence: Sequence[Evidence]) -> tuple[list[int], list[str]]:
    """(numbers of the existing blocks the answer cites, flags): a flag for each cited number with no
    block, for citing none, and for each quoted phrase not found in the blocks it cites."""
    numbers = {int(n) for n in _CITE.findall(text)}
    blocks = sorted(n for n in numbers if 1 <= n <= len(evidence))
    flags = [f"cites [{n}], but only blocks [1]-[{len(evidence)}] were given" for n in sorted(numbers - set(blocks))]
    if not blocks:
        flags.append("cites no evidence block")
    pool = [evidence[n - 1] for n in blocks] or list(evidence)
    flags += [f"quotes \"{q}\", which is not in the blocks it cites" for q in quoted(text)
              if verify_quote(q, pool, None, QUOTE_MATCH) is None]
    return blocks, flags


def generate_answer(generator, question: str, evidence: Sequence[Evidence], max_new_tokens: int,
                    stream: Callable[[str], None] | None = None) -> tuple[str, int, list[Citation], list[str]]:
    """(answer text, prompt tokens, citations, flags); the answer is NOT_FOUND if the model declines.

    The citations are the blocks the answer cites; when it cites none, every block it read (flagged)."""
    prompt = answer_prompt(generator, question, evidence)
    tokens_in = generator.count_tokens(prompt)
    text = generator.generate(prompt, max_new_tokens=max_new_tokens, stream=stream).strip()
    if says_not_found(text):
        return NOT_FOUND, tokens_in, [], []
    blocks, flags = grounding(text, evidence)
    return text, tokens_in, citations(evidence, blocks or range(1, len(evidence) + 1)), flags


MIN_SENTENCE_CHARS = 20  # shorter pieces (headings, list numbers) say too little to support anything


def supporting_sentence(encoder, question: str, answer: str, evidence: Sequence[Evidence]) -> Citation | None:
    """The sentence of the evidence that best supports the answer, as a citation of its exact span: shown
    under every answer so a reader can check it against the document, whether or not the model cited a
    block. Chosen by the retriever, not by the model (post-hoc attribution, as in Bohnet et al. 2022,
    "Attributed Question Answering"): the hybrid that ranks segments, at sentence level — the encoder's
    cosine to the question and to question + answer, and stemmed BM25 of both, fused by rank."""
    spans = []
    for n, block in enumerate(evidence, 1):
        start = 0
        for end in [m.end() for m in SENTENCE_END.finditer(block.text)] + [len(block.text)]:
            piece = block.text[start:end]
            if len(piece.strip()) >= MIN_SENTENCE_CHARS:
                a = start + len(piece) - len(piece.lstrip())
                spans.append((n, block, a, a + len(piece.strip())))
            start = end
    if not spans:
        return None
    sentences = [block.text[a:b] for _, block, a, b in spans]
    asked, answered = question.strip(), f"{question.strip()} {answer.strip()}"
    # each sentence embedded with its document's name, as a reader would: "which licence says this" matters
    vectors = encoder.encode_queries([f"{PurePath(block.path).stem}: {text}" for (_, block, _, _), text
                                      in zip(spans, sentences)] + [answered, asked])
    bm25 = BM25.build(sentences, STEMMED)
    best = fused_order([vectors[:-2] @ vectors[-2], vectors[:-2] @ vectors[-1],
                        bm25.scores(answered), bm25.scores(asked)])[0]
    n, block, a, b = spans[best]
    return Citation(block.doc_id, block.path, block.start + a, block.start + b, block.text[a:b], n)


def citations(evidence: Sequence[Evidence], blocks: Iterable[int]) -> list[Citation]:
    """Citations of the numbered blocks (1-based) of `evidence`."""
    return [Citation(e.doc_id, e.path, e.start, e.end, e.text, n) for n in blocks for e in [evidence[n - 1]]]
