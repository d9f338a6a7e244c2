"""Step two: answer from the selected evidence with the generator, citing numbered blocks.

"Not found" rule (measured in docs/results.md, "Ask"): the answer is exactly NOT_FOUND when
(1) no evidence was selected (ALR²: no quote survived verification), or (2) the best cosine
similarity between the question and any candidate segment is below `min_relevance` (the
question is about something the indexed documents do not discuss; decided before the
generator runs), or (3) the generator itself says it cannot find the answer.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

from .alr2 import verify_quote
from .prompting import UNTRUSTED_RULE, user_message
from .pointing import (POINT_TOKENS, asks_number, holds_number, point, point_messages, reading_blocks,
                       says_not_found)
from .sentences import split_sentences
from .verdict import (SPAN_METHOD, UNANSWERED, WITHHELD_NO_NUMBER, WITHHELD_UNALIGNED, Verdict, answerability,
                      answers_messages, check_answer, is_yes_no, read_yes_no, yes_no_messages)
from ..types import Citation, Evidence

NOT_FOUND = "not found in the indexed documents"
# why an answer is NOT_FOUND (Answer.not_found)
UNRELATED = "no indexed passage is close enough to the question (ask.min_relevance)"
NO_EVIDENCE = "no evidence was selected"
DECLINED = "the model read the evidence and said it does not answer the question"

ANSWER_SYSTEM = ("Answer the question from the numbered evidence blocks, in one or two sentences. Cite each "
                 "block you use by its number, like [1]; words copied from a block go in double quotes. If the "
                 "blocks say nothing about the question, say that they do not say. " + UNTRUSTED_RULE)

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
    not_found: str | None = None  # why the answer is NOT_FOUND (UNRELATED, NO_EVIDENCE, DECLINED)
    unverified_quotes: list[str] = field(default_factory=list)  # ALR² only
    relevance: float | None = None  # best question–segment cosine (the not-found gate)
    evidence: list[Citation] = field(default_factory=list)  # every block the answer was read from, numbered
    quotes: list[Citation] = field(default_factory=list)  # what the documents say: best sentences for the question
    withheld: str | None = None  # why the generator's reading is not shown as an answer (None: it is shown)
    reading: str = ""  # the generator's reading, also when withheld
    check: dict[str, Any] = field(default_factory=dict)  # how the reading was checked: method, margin
    # the span of a document a fact reading points at, with its page and section (also when the reading is
    # withheld: `grounded` says whether it is shown); None for yes/no and for a reading that points at nothing
    answer_span: Citation | None = None

    @property
    def grounded(self) -> bool:
        """Shown as an answer: found, and not withheld by the checks."""
        return self.found and self.withheld is None

    @property
    def support(self) -> Citation | None:
        """The first quote (kept for callers of the earlier single support sentence)."""
        return self.quotes[0] if self.quotes else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "grounded": self.grounded, "support": self.support and asdict(self.support)}


def answer_messages(generator, question: str, evidence: Sequence[Evidence]) -> list[dict[str, str]]:
    """The evidence as numbered blocks, then the question."""
    return [{"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": user_message(generator, question, evidence)}]


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
    messages = answer_messages(generator, question, evidence)
    tokens_in = generator.count_chat(messages)
    text = generator.chat(messages, max_new_tokens=max_new_tokens, stream=stream).strip()
    if says_not_found(text):
        return NOT_FOUND, tokens_in, [], []
    blocks, flags = grounding(text, evidence)
    return text, tokens_in, citations(evidence, blocks or range(1, len(evidence) + 1)), flags


# ask.read: what the generator points into for a fact question: the quotes and their neighbours, then the whole
# evidence if that reply does not align | the quotes and their neighbours only | the whole evidence at once
READ_ORDERS = ("quotes_first", "quotes", "evidence")


@dataclass(frozen=True)
class Reading:
    """How the generator and the checker read the quotes: the text to show (or NOT_FOUND), what it
    rests on, and how it was checked (`verdict.withheld`: why it must not be shown as an answer)."""

    text: str
    reading: str  # the model's own words (the text shown may be the document's span they point at)
    tokens_in: int
    cited: list[Citation]
    verdict: Verdict | None = None
    span: Citation | None = None
    not_found: str | None = None  # why the text is NOT_FOUND


def read_answer(generator, checker, question: str, evidence: Sequence[Evidence], quotes: Sequence[Citation],
                documents: dict[str, str], settings, max_new_tokens: int = POINT_TOKENS) -> Reading:
    """Read the quotes (`settings`: the ask section). A yes/no question is answered by the likelihood
    of Yes against No of the checker and the generator (`read_yes_no`). Any other question is first
    put to the checker (do the quotes answer it? below `settings.answerable`: not found); then the
    generator answers with words copied from the quotes and their neighbouring sentences (and, with
    `settings.read` = quotes_first, from the whole evidence when those do not align), and the
    answer is the span of the document its new words align to. No span with at least
    `settings.aligned` of them: withheld; a span the checker does not take to answer the question
    (`settings.support_threshold`): withheld."""
    if is_yes_no(question) and quotes:
        # the lean was measured for the pair (checker, generator); one model reading alone is taken as it is
        readers = [checker] if checker is generator else [checker, generator]
        lean = settings.lean if len(readers) > 1 else 0.0
        verdict = read_yes_no(readers, question, quotes, lean, settings.unsure)
        tokens_in = checker.count_chat(yes_no_messages(checker, question, quotes))
        return Reading(verdict.answer, verdict.answer, tokens_in, citations(evidence, sorted({q.block for q in quotes})),
                       verdict)
    margin = answerability(checker, question, quotes) if quotes and settings.answerable is not None else None
    tokens_in = checker.count_chat(answers_messages(checker, question, quotes)) if margin is not None else 0
    if margin is not None and margin < settings.answerable:
        return Reading(NOT_FOUND, "", tokens_in, [], Verdict("", margin, "answerability", answerable=margin),
                       not_found=UNANSWERED)
    if settings.read == "evidence" or not quotes:
        tries = [evidence]
    else:
        beside = _beside_quotes(quotes, documents, evidence, generator.count_tokens)
        tries = [beside] if settings.read == "quotes" else [beside, evidence]
    pointed = None
    for blocks in tries:
        tokens_in += generator.count_chat(point_messages(generator, question, blocks))
        attempt = point(generator, question, blocks, min(max_new_tokens, POINT_TOKENS))
        if pointed is None or (attempt.aligned, attempt.span is not None) > (pointed.aligned, pointed.span is not None):
            pointed = attempt
        if pointed.span is not None and pointed.aligned >= settings.aligned:
            break
    if says_not_found(pointed.reading) and pointed.span is None:
        return Reading(NOT_FOUND, pointed.reading, tokens_in, [], None, not_found=DECLINED)
    record = dict(answerable=margin, aligned=round(pointed.aligned, 3))
    if pointed.span is None or pointed.aligned < settings.aligned:
        verdict = Verdict(pointed.reading, None, SPAN_METHOD, WITHHELD_UNALIGNED, **record)
        return Reading(pointed.reading, pointed.reading, tokens_in, [], verdict)
    span = pointed.span
    holder = next((e for e in evidence if e.doc_id == span.doc_id and e.start <= span.start and span.end <= e.end), None)
    cited = citations(evidence, [evidence.index(holder) + 1]) if holder else []
    span = replace(span, block=cited[0].block if cited else 0)
    if asks_number(question) and not holds_number(span.text):
        verdict = Verdict(pointed.reading, None, SPAN_METHOD, WITHHELD_NO_NUMBER, **record)
        return Reading(pointed.reading, pointed.reading, tokens_in, cited, verdict, span)
    sentence = _sentence_of(span, documents)
    verdict = check_answer(checker, question, span.text, [sentence], sentence.text, settings.support_threshold)
    return Reading(span.text, pointed.reading, tokens_in, cited, replace(verdict, method=SPAN_METHOD, **record), span)


def _beside_quotes(quotes: Sequence[Citation], documents: dict[str, str], evidence: Sequence[Evidence],
                   count_tokens) -> list[Evidence]:
    """The quotes with their neighbouring sentences; the quotes alone where those would not fit the
    evidence budget (the quotes lie inside the evidence, so they always do)."""
    blocks = reading_blocks(quotes, documents, count_tokens)
    if sum(b.tokens for b in blocks) > sum(e.tokens for e in evidence):
        blocks = reading_blocks(quotes, documents, count_tokens, neighbours=0)
    return blocks


def _sentence_of(span: Citation, documents: dict[str, str]) -> Citation:
    """The sentence of its document that holds the span (the span itself when the text is unknown)."""
    text = documents.get(span.doc_id)
    if text is None:
        return span
    bounds = split_sentences(text, max(0, span.start - 2000), min(len(text), span.end + 2000))
    a, b = next(((a, b) for a, b in bounds if a <= span.start < b), (span.start, span.end))
    b = max(b, span.end)
    return replace(span, start=a, end=b, text=text[a:b])


def citations(evidence: Sequence[Evidence], blocks: Iterable[int]) -> list[Citation]:
    """Citations of the numbered blocks (1-based) of `evidence`."""
    return [Citation(e.doc_id, e.path, e.start, e.end, e.text, n) for n in blocks for e in [evidence[n - 1]]]
