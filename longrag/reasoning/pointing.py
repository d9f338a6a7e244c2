"""Reading by pointing: the generator answers from a few sentences with words copied from them, and
the answer is grounded by aligning what it adds to the question to one sentence of the documents.

A small model given the printed quotes and their neighbours (a few hundred tokens) answers a fact
question far more often right than from 2,000 tokens of evidence, and in a fraction of the time
(docs/results.md, "Answers you can trust"). Small models restate the question ("The maximum damages
exposure … is $1,000,000"), so only the answer's *new* words (not in the question) are aligned, in
order, to a sentence; the span they cover is the answer as the document words it. An answer whose
new words do not align (an invention: "a licence for 10 years") has no span, and is not shown.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import Stemmer

from ..types import Citation, Evidence, Span, merge_spans
from .prompting import UNTRUSTED_RULE, user_message
from .sentences import split_sentences

POINT_SYSTEM = ("Answer the question with words copied from the numbered blocks: the shortest phrase of one block "
                "that answers it, word for word. Do not explain. If the blocks do not answer the question, reply: "
                "not stated. " + UNTRUSTED_RULE)
POINT_TAIL = "\nAnswer with the exact words of a block."
POINT_TOKENS = 48  # a copied phrase is short; a longer reply is a sentence of the model's own

# a word with its inner punctuation ("1,000,000", "third-party", "licensor's"); "$" and "%" are not words
_WORD = re.compile(r"\w+(?:[.,'’\-/]\w+)*")
_STEM = Stemmer.Stemmer("english")
# words that add nothing an alignment could check (a restated "the answer is", an article)
_FILLER = frozenset("""a an the of to in on at by for from with as and or is are was were be been being it its this that
these those there their they he she his her we our you your i me my which who whom what when where why how do does did
has have had shall will would can could may might must should not no yes under per than then so such any all each
answer""".split())
# how a model says the blocks do not answer: the exact phrase, or the blocks / documents as the
# subject of a negated "say", "contain", ... ("the software is not provided with any warranty" is an answer)
_MODEL_NOT_FOUND = re.compile(
    r"not found in the indexed documents"
    r"|\b(blocks?|evidence|documents?|context|texts?|passages?|they)\b[^.]{0,60}?"
    r"\b(do(es)? not|don't|doesn't|did not)\s+(say|contain|mention|provide|specify|state|address|include)"
    r"|\bno (information|mention)\b|\bcannot (find|answer)\b|^\W*not stated\b", re.I)


def says_not_found(text: str) -> bool:
    """True when the generator's reply declines: the blocks do not answer."""
    return not text.strip() or bool(_MODEL_NOT_FOUND.search(text))


MIN_SPAN_CHARS = 2  # a span of one letter ("C" of "(C)") points at nothing a reader can use
GAP = 3  # matched document words this far apart (or nearer) belong to one answer span
# a clause's own number or letter at the start of its sentence ("9.5", "(b)", "iv."): a label, not an answer
_CLAUSE_LABEL = re.compile(r"^\(?(\d+(\.\d+)+|[a-z]|[ivx]+)[.)]?$", re.I)


@dataclass(frozen=True)
class Pointed:
    """What the generator pointed at: its reply, and the span its new words align to (None: none)."""

    reading: str
    span: Citation | None
    aligned: float  # share of the reply's new words found, in order, in the span's sentence (0 when none)
    new_words: int  # how many words the reply adds to the question


# a number written out aligns with its figures ("ten lines" / "10 lines"); the support check reads it so too
NUMBER_WORDS = {w: str(n) for n, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                                 "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"
                                                 .split())}
NUMBER_WORDS.update(thirty="30", forty="40", fifty="50", sixty="60", seventy="70", eighty="80", ninety="90",
                     hundred="100", thousand="1000")
# a question that asks for an amount, a length of time or a year ("When …" is often answered by an event:
# "when you fail to comply")
_ASKS_NUMBER = re.compile(r"^\s*(?:[^,?]{0,80},\s*)?(how (much|many|long|far|old|often|large|big|high)|"
                          r"what (percentage|amount|sum|fee|price|number)|in what year)\b", re.I)
# month names that are not also common words ("may", "march")
_MONTHS = re.compile(r"\b(january|february|april|june|july|august|september|october|november|december)\b", re.I)


def _normal(word: str) -> str:
    word = word.lower().replace("’", "'")
    return NUMBER_WORDS.get(word) or _STEM.stemWord(word)


def _words(text: str) -> list[tuple[str, int, int]]:
    """(normalised word, start, end) of the text's words: lower-cased, stemmed, numbers as figures."""
    return [(_normal(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]


def asks_number(question: str) -> bool:
    """A question whose answer is an amount, a duration or a year ("How long …", "What fee …")."""
    return bool(_ASKS_NUMBER.match(question))


def holds_number(text: str) -> bool:
    """Figures, a number word or a month name: what an answer to `asks_number` must hold."""
    return any(w.isdigit() or any(c.isdigit() for c in w) for w, _, _ in _words(text)) or bool(_MONTHS.search(text))


def new_words(reading: str, question: str) -> list[int]:
    """Positions (in `_words(reading)`) of the reading's words that are neither in the question nor filler."""
    asked = {w for w, _, _ in _words(question)}
    return [i for i, (w, _, _) in enumerate(_words(reading)) if w not in asked and w not in _FILLER]


def _lcs_pairs(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs (i, j) of a longest common subsequence of a and b (earliest in b among equals)."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def align(reading: str, question: str, sentences: Sequence[Span]) -> tuple[Citation | None, float, int]:
    """(span, aligned share, new words): the sentence in which most of the reading's new words occur
    in order, and the span of the document covering them together with the reading's other words
    matched next to them (never across sentences, so never across documents). No new words, or none
    found: (None, 0.0, n)."""
    words = _words(reading)
    new = new_words(reading, question)
    if not new:
        return None, 0.0, 0
    added = set(new)
    best: tuple[float, int, Citation] | None = None
    for sentence in sentences:
        found = _words(sentence.text)
        pairs = _lcs_pairs([w for w, _, _ in words], [w for w, _, _ in found])
        hits = [j for i, j in pairs if i in added]
        if not hits:
            continue
        share = len(hits) / len(new)
        # the question's words matched next to the new ones belong to the answer ("Belgian law"); far away they do not
        lo, hi = min(hits), max(hits)
        for j in sorted((j for i, j in pairs if i not in added), key=lambda j: min(abs(j - lo), abs(j - hi))):
            if lo - GAP <= j < lo:
                lo = j
            elif hi < j <= hi + GAP:
                hi = j
        start, end = sentence.start + found[lo][1], sentence.start + found[hi][2]
        span = Citation(sentence.doc_id, sentence.path, start, end, sentence.text[found[lo][1]:found[hi][2]])
        if lo == 0 and _CLAUSE_LABEL.match(span.text):
            continue
        rank = (share, -(hi - lo))  # more of the answer, then the tighter span
        if best is None or rank > best[:2]:
            best = (*rank, span)
    if best is None or sum(c.isalnum() for c in best[2].text) < MIN_SPAN_CHARS:
        return None, 0.0, len(new)
    return best[2], best[0], len(new)


def reading_blocks(quotes: Sequence[Citation], documents: dict[str, str], count_tokens,
                   neighbours: int = 1) -> list[Evidence]:
    """The quotes widened by `neighbours` sentences on each side in their documents (`documents`:
    doc_id → text), merged where they meet, in the order of the quotes: what the generator reads
    first."""
    spans: dict[str, list[tuple[int, int, float]]] = {}
    paths = {}
    for rank, quote in enumerate(quotes):
        text = documents.get(quote.doc_id)
        start, end = quote.start, quote.end
        if text is not None:
            bounds = split_sentences(text, max(0, quote.start - 2000), min(len(text), quote.end + 2000))
            inside = [k for k, (a, b) in enumerate(bounds) if a < quote.end and b > quote.start]
            if inside:
                start = bounds[max(0, inside[0] - neighbours)][0]
                end = bounds[min(len(bounds) - 1, inside[-1] + neighbours)][1]
        spans.setdefault(quote.doc_id, []).append((start, end, -rank))
        paths[quote.doc_id] = quote.path
    blocks = []
    for doc_id, parts in spans.items():
        text = documents.get(doc_id)
        for a, b, score in merge_spans(parts, text):
            body = text[a:b] if text is not None else next(q.text for q in quotes if q.doc_id == doc_id and q.start == a)
            blocks.append(Evidence(doc_id, paths[doc_id], a, b, body, count_tokens(body), score))
    return sorted(blocks, key=lambda e: -e.score)


def sentences_of(blocks: Sequence[Evidence]) -> list[Span]:
    """Every sentence of the blocks, as spans of their documents."""
    return [Span(e.doc_id, e.path, e.start + a, e.start + b, e.text[a:b])
            for e in blocks for a, b in split_sentences(e.text)]


def point_messages(generator, question: str, blocks: Sequence[Evidence]) -> list[dict[str, str]]:
    return [{"role": "system", "content": POINT_SYSTEM},
            {"role": "user", "content": user_message(generator, question, blocks, POINT_TAIL)}]


def point(generator, question: str, blocks: Sequence[Evidence], max_new_tokens: int = POINT_TOKENS) -> Pointed:
    """The generator's copied answer over `blocks` (at most `max_new_tokens`), aligned to their sentences."""
    reading = generator.chat(point_messages(generator, question, blocks), max_new_tokens=max_new_tokens).strip()
    if says_not_found(reading):  # "not stated" points at nothing, though its words may occur somewhere
        return Pointed(reading, None, 0.0, 0)
    span, share, added = align(reading, question, sentences_of(blocks))
    return Pointed(reading, span, share, added)
