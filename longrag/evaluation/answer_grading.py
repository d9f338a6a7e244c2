"""The lenient grader of answers to questions with a known answering span: did the quotes and the
evidence hold the span, was an answer shown, and (where the expected answer is known) is it right.

Pure functions over saved `ask` results: benchmarks/trust.py grades hand-written questions with
them and `longrag eval --dataset` (ask_eval.py) synthesized ones.
"""
from __future__ import annotations

import re

_POLARITY = re.compile(r"^\W*(yes|no)\b", re.I)
_NEGATION = re.compile(r"\b(not|no|never|neither|nor|cannot|without)\b|n't\b", re.I)


def polarity(text: str) -> str | None:
    """"yes" / "no" for an answer that starts with that word, else None."""
    m = _POLARITY.match(text or "")
    return m.group(1).lower() if m else None


def holds_words(text: str, groups: list[list[str]]) -> bool:
    """Every group has an alternative that occurs in the text at a word start (case-insensitive; a span of
    the document may break its line anywhere, so any run of white space counts as one space)."""
    low = " ".join((text or "").lower().split())
    return all(any(re.search(rf"\b{re.escape(w.lower())}", low) for w in group) for group in groups)


def overlaps(spans, gold: tuple[str, int, int]) -> bool:
    """A span of the gold document overlapping the gold span by at least half of the shorter of the two."""
    d, a, b = gold
    return any(doc == d and min(e, b) - max(s, a) >= 0.5 * min(e - s, b - a) for doc, s, e in spans)


def right(question: dict, answer: str) -> bool:
    """The answer agrees with the hand-written expectation (lenient, but never fooled by a "not")."""
    if question["kind"] == "unanswerable":
        return False
    if question["kind"] == "yesno":
        return polarity(answer) == question["polarity"]
    negated = bool(_NEGATION.search(answer)) and not _NEGATION.search(question["answer"])
    return holds_words(answer, question["words"]) and not negated


def grade(question: dict, row: dict) -> dict:
    """Per-question grades from a saved ask result (`row`: found, withheld, answer, quotes, evidence,
    gold_span). `question["kind"]`: yesno (with `polarity`), unanswerable, passage (synthesized: no
    expected answer, so right is None), or any other (with `answer` and `words`); `doc` names the
    gold span's document."""
    shown = row["found"] and not row["withheld"]
    out = {"shown": shown, "withheld": bool(row["found"] and row["withheld"]), "not_found": not row["found"]}
    if question["kind"] == "unanswerable":
        out.update(right=not shown, wrong_shown=shown)
        return out
    gold = (question["doc"], *row["gold_span"]) if row.get("gold_span") else None
    out["quote_hit"] = bool(gold) and overlaps([(q["doc_id"], q["start"], q["end"]) for q in row["quotes"]], gold)
    out["evidence_hit"] = bool(gold) and overlaps([tuple(e) for e in row["evidence"]], gold)
    if question["kind"] == "passage":  # a synthesized question: its span is known, its answer is not
        out.update(right=None, wrong_shown=None)
        return out
    good = right(question, row["answer"])
    out.update(right=shown and good, wrong_shown=shown and not good)
    return out
