"""Quotes first, then a reading the quotes support: what `ask` shows a reader.

The quotes are the best sentences of the evidence for the question alone (never for the model's
answer, so a wrong answer cannot pull them away from the clause). A yes/no question is answered by
comparing the generator's likelihood of "Yes" and "No" after reading the quotes (free text from a
small model leans to one word whatever the clause says). Any other answer is checked by asking the
generator whether the quotes support it; one the quotes do not support is withheld, with the reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ..generation.base import Message
from ..types import Candidate, Citation, Evidence
from .pointing import NUMBER_WORDS
from .prompting import UNTRUSTED_RULE, user_message

# "Does …", "Under the CDDL, can I …", "So is it …": an auxiliary verb first, after at most a short lead-in
_YES_NO = re.compile(r"^\s*(?:[^?]{0,160}?,\s*|so\s+|and\s+|but\s+)?(do|does|did|is|are|was|were|am|can|could|may|"
                     r"might|must|shall|should|will|would|has|have|had|need|needs)\b",
                     re.I)
_EITHER_OR = re.compile(r",\s*or\b|\bor\s+(neither|both)\b", re.I)  # "Is it X, or Y?" asks which
# an interrogative word opening the question ("How long, under X, do I …?" asks how long); "When …, can I"
# and "If …, may I" open a lead-in clause instead
_WH = re.compile(r"^\s*(?:[^,?]{0,80},\s*)?(what|which|who|whom|whose|why|how)\b", re.I)

YES_NO_SYSTEM = ("Answer the user's yes/no question from the quoted blocks alone, with one word: Yes or No. "
                 + UNTRUSTED_RULE)
CHECK_SYSTEM = ("You check a proposed answer against quoted blocks from documents. Reply Yes if the blocks state "
                "what the proposed answer says, No if they say otherwise or say nothing about it. " + UNTRUSTED_RULE)

ANSWERS_SYSTEM = ("You decide whether quoted blocks from documents answer the user's question. Reply Yes if the "
                  "blocks state the answer, No if they do not contain it. " + UNTRUSTED_RULE)
UNANSWERED = "the quoted sentences do not answer the question"

WITHHELD_CONTRADICTED = "the model's reading does not match the quoted clause; read the quote"
WITHHELD_UNSURE = "the model cannot tell yes from no from the quoted clause; read the quote"
WITHHELD_UNSUPPORTED = "the quoted text does not support the model's answer; read the quote"
WITHHELD_UNALIGNED = "the model's answer is not in the documents' words; read the quote"
WITHHELD_NO_NUMBER = "the question asks for an amount or a date and the model's answer holds none; read the quote"
SPAN_METHOD = "span check"  # a fact answer pointed at in the documents, then checked


@dataclass(frozen=True)
class Verdict:
    """How an answer stands against the quotes: `withheld` says why it is not shown (None: shown)."""

    answer: str
    margin: float | None  # log p(Yes) − log p(No) of the deciding comparison
    method: str  # "yes/no likelihood" | "support check"
    withheld: str | None = None
    not_found: str | None = None  # why the question is taken as not answered by the documents (None: it is)
    answerable: float | None = None  # the `answerability` margin, when it was asked
    aligned: float | None = None  # share of a fact answer's new words found in order in one sentence

    def record(self) -> dict:
        """How the reading was checked, as `Answer.check` keeps it."""
        kept = {"method": self.method, "margin": self.margin, "answerable": self.answerable, "aligned": self.aligned}
        return {k: v for k, v in kept.items() if v is not None or k == "margin"}


def is_yes_no(question: str) -> bool:
    """A question answered by yes or no ("Does …?", "Under X, may I …?"), not an either-or one."""
    return bool(_YES_NO.match(question)) and not _WH.match(question) and not _EITHER_OR.search(question)


QUOTE_MIN_WORDS = 8  # a shorter sentence (a title line, a heading) rarely states what a question asks
# a sentence that is itself a question ("When will the government fund …?") echoes the question and states nothing
_ASKS = re.compile(r"\?[\"'”’)\s]*$")


def quotes_from(ranked: Sequence[tuple[Candidate, float]], evidence: Sequence[Evidence], count: int) -> list[Citation]:
    """The `count` best-ranked sentences that lie inside the evidence, each as a citation of its exact
    span and of the evidence block [n] that holds it; in ranking order, except that statements of at
    least QUOTE_MIN_WORDS words come first, shorter ones next, and questions last."""
    def rank(sentence: Candidate) -> int:
        return 2 if _ASKS.search(sentence.text) else 0 if len(sentence.text.split()) >= QUOTE_MIN_WORDS else 1

    quotes = []
    for sentence, _ in sorted(ranked, key=lambda item: rank(item[0])):  # stable: ranking order within each kind
        block = next((n for n, e in enumerate(evidence, 1) if e.doc_id == sentence.doc_id
                      and e.start <= sentence.start and sentence.end <= e.end), None)
        if block is not None:
            quotes.append(Citation(sentence.doc_id, sentence.path, sentence.start, sentence.end, sentence.text, block))
        if len(quotes) == count:
            break
    return quotes


def _as_blocks(quotes: Sequence[Citation]) -> list[Evidence]:
    return [Evidence(q.doc_id, q.path, q.start, q.end, q.text, 0, 0.0) for q in quotes]


def yes_no_messages(generator, question: str, quotes: Sequence[Citation]) -> list[Message]:
    return [{"role": "system", "content": YES_NO_SYSTEM},
            {"role": "user", "content": user_message(generator, question, _as_blocks(quotes), "\nAnswer Yes or No.")}]


def check_messages(generator, question: str, answer: str, quotes: Sequence[Citation]) -> list[Message]:
    tail = (f"\nProposed answer: {answer.strip()}\n"
            "Do the blocks support the proposed answer? Answer Yes or No.")
    return [{"role": "system", "content": CHECK_SYSTEM},
            {"role": "user", "content": user_message(generator, question, _as_blocks(quotes), tail)}]


def answers_messages(generator, question: str, quotes: Sequence[Citation]) -> list[Message]:
    return [{"role": "system", "content": ANSWERS_SYSTEM},
            {"role": "user", "content": user_message(generator, question, _as_blocks(quotes),
                                                     "\nDo the blocks answer the question? Answer Yes or No.")}]


def answerability(checker, question: str, quotes: Sequence[Citation]) -> float:
    """The checker's log p(Yes) − log p(No) that the quotes answer the question (asked before any
    answer is written, so a question the documents do not answer costs no generation)."""
    return yes_minus_no(checker, answers_messages(checker, question, quotes))


NO_SCORES_MARGIN = 99.0  # the margin of a plain Yes / No reply (a backend without log-probabilities)


def yes_minus_no(generator, messages: Sequence[Message]) -> float:
    """log p(Yes) − log p(No) of the reply to the messages. A backend that gives no log-probabilities
    (a server without logprobs) is asked for its reply instead: ±NO_SCORES_MARGIN for a reply that
    starts with Yes / No, 0 (unsure) for anything else."""
    if "score" not in generator.capabilities:
        reply = generator.chat(messages, max_new_tokens=3).strip().lower()
        return NO_SCORES_MARGIN if reply.startswith("yes") else -NO_SCORES_MARGIN if reply.startswith("no") else 0.0
    yes, no = generator.choice_logprobs(messages, ["Yes", "No"])
    return float(yes - no)


def read_yes_no(readers: Sequence, question: str, quotes: Sequence[Citation], lean: float, unsure: float) -> Verdict:
    """Yes or No by the readers' summed log p(Yes) − log p(No) after the quotes, less `lean` (what
    that sum averaged on the dev questions: each small model says one word more often whatever the
    text — qwen2.5-1.5b Yes, qwen2.5-0.5b No — so their sum, less the lean, is the evidence);
    withheld when within `unsure` of 0."""
    margin = sum(yes_minus_no(reader, yes_no_messages(reader, question, quotes)) for reader in readers) - lean
    word = "Yes" if margin > 0 else "No"
    withheld = WITHHELD_UNSURE if abs(margin) < unsure else None
    return Verdict(f"{word}.", margin, "yes/no likelihood", withheld)


def check_answer(generator, question: str, answer: str, quotes: Sequence[Citation], evidence_text: str,
                 threshold: float) -> Verdict:
    """The generator's answer, withheld when the quotes do not support it: a number or name in the
    answer that the evidence it read does not hold, or log p(Yes) − log p(No) of "do the blocks
    support the proposed answer?" below `threshold`."""
    invented = novel_figures(answer, evidence_text)
    if invented:
        return Verdict(answer, None, "support check", f"{WITHHELD_UNSUPPORTED} (the evidence does not say "
                                                       f"{', '.join(invented[:3])})")
    margin = yes_minus_no(generator, check_messages(generator, question, answer, quotes))
    withheld = WITHHELD_UNSUPPORTED if margin < threshold else None
    return Verdict(answer, margin, "support check", withheld)


_FIGURE = re.compile(r"\d+(?:[,.]\d+)*")
_WRITTEN = {figure: word for word, figure in NUMBER_WORDS.items()}


def novel_figures(answer: str, evidence_text: str) -> list[str]:
    """Numbers in the answer that the evidence holds neither as figures nor as words ("30" / "thirty")."""
    held = set(_FIGURE.findall(evidence_text)) | set(re.findall(r"[a-z]+", evidence_text.lower()))
    return [f for f in dict.fromkeys(_FIGURE.findall(answer))
            if f not in held and _WRITTEN.get(f) not in held]
