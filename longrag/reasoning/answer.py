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
from typing import Any, Callable, Sequence

from .prompting import UNTRUSTED_RULE, user_message
from ..types import Citation, Evidence

NOT_FOUND = "not found in the indexed documents"

ANSWER_SYSTEM = ("Answer the question from the numbered evidence blocks, in one or two sentences, and cite the "
                 "block you use like [1]. If the blocks say nothing about the question, say that they do not say. "
                 + UNTRUSTED_RULE)

# how a model says the blocks do not answer: the exact phrase, or the blocks / documents as the
# subject of a negated "say", "contain", ... ("the software is not provided with any warranty" is an answer)
_MODEL_NOT_FOUND = re.compile(
    r"not found in the indexed documents"
    r"|\b(blocks?|evidence|documents?|context|texts?|passages?|they)\b[^.]{0,60}?"
    r"\b(do(es)? not|don't|doesn't|did not)\s+(say|contain|mention|provide|specify|state|address|include)"
    r"|\bno (information|mention)\b|\bcannot (find|answer)\b", re.I)
_CITE = re.compile(r"\[(\d+)\]")


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def answer_prompt(generator, question: str, evidence: Sequence[Evidence]) -> str:
    """Chat-template prompt with the evidence as numbered blocks, then the question."""
    return generator.chat_prompt(ANSWER_SYSTEM, user_message(generator, question, evidence))


def says_not_found(text: str) -> bool:
    """True when the generator's answer declines (rule 3)."""
    return not text.strip() or bool(_MODEL_NOT_FOUND.search(text))


def cited(text: str, evidence: Sequence[Evidence]) -> list[Evidence]:
    """The blocks the answer cites ([n]); all blocks when it cites none (they are what it read)."""
    numbers = sorted({int(n) for n in _CITE.findall(text) if 1 <= int(n) <= len(evidence)})
    return [evidence[n - 1] for n in numbers] if numbers else list(evidence)


def generate_answer(generator, question: str, evidence: Sequence[Evidence], max_new_tokens: int,
                    stream: Callable[[str], None] | None = None) -> tuple[str, int, list[Evidence]]:
    """(answer text, prompt tokens, cited evidence); the answer is NOT_FOUND if the model declines."""
    prompt = answer_prompt(generator, question, evidence)
    tokens_in = generator.count_tokens(prompt)
    text = generator.generate(prompt, max_new_tokens=max_new_tokens, stream=stream).strip()
    if says_not_found(text):
        return NOT_FOUND, tokens_in, []
    return text, tokens_in, cited(text, evidence)


def citations(evidence: Sequence[Evidence]) -> list[Citation]:
    return [Citation(e.doc_id, e.path, e.start, e.end, e.text) for e in evidence]
