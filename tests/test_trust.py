"""Trustworthy answers, the logic that needs no model: sentence splitting, yes/no questions, quotes,
invented figures, and the trust benchmark's grader checked on answers known to be wrong."""
from __future__ import annotations

import re
import sys

import pytest

from longrag.reasoning.sentences import MAX_SENTENCE_CHARS, split_sentences
from longrag.reasoning.verdict import is_yes_no, novel_figures, quotes_from
from longrag.types import Candidate, Evidence
from tests.helpers import CONTRACTS, REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from trust import corpus_texts, gold_span, grade, holds_words, load_questions, overlaps, polarity, right  # noqa: E402


def _visible(text: str) -> str:
    return re.sub(r"\s", "", text)


def test_sentences_cover_every_word_once_and_keep_clause_numbers_with_their_text():
    text = (CONTRACTS / "Apache-2.0.txt").read_text()
    spans = split_sentences(text)
    assert all(a < b <= c for (a, b), (c, _) in zip(spans, spans[1:]))
    assert _visible("".join(text[a:b] for a, b in spans)) == _visible(text)  # nothing lost, nothing twice
    trademark = next(text[a:b] for a, b in spans if "trade names" in text[a:b])
    assert trademark.startswith("6. Trademarks.")  # the number and heading travel with the clause
    assert all(len(text[a:b]) <= MAX_SENTENCE_CHARS for a, b in spans)


@pytest.mark.parametrize("text", ["x" * 5000, "word " * 1000, "| a | b |\n" * 400, "def f():\n    return 1\n" * 200])
def test_text_without_sentences_is_cut_into_bounded_pieces(text):
    spans = split_sentences(text)
    assert spans and all(0 < b - a <= MAX_SENTENCE_CHARS for a, b in spans)
    assert _visible("".join(text[a:b] for a, b in spans)) == _visible(text)


@pytest.mark.parametrize("question, expected", [
    ("Does the ISC licence disclaim warranties?", True),
    ("Under the CDDL, can I sell copies?", True),
    ("May I charge a fee for distribution?", True),
    ("Is there a warranty or not?", True),
    ("What law governs the CPL?", False),
    ("Under the EPL, which courts have jurisdiction?", False),
    ("How long do I have to cure a violation?", False),
    ("Is it governed by Dutch or Belgian law, or neither?", False),
    ("When I redistribute the work, can I add my own conditions?", True),
    ("If I sue a contributor, does my patent licence end?", True),
    ("How long, after notice, do I have to cure a breach?", False),
    ("When does the licence end?", False),
])
def test_yes_no_questions_are_told_from_others(question, expected):
    assert is_yes_no(question) is expected


def test_quotes_are_the_best_sentences_inside_the_evidence_with_their_block():
    doc = "A first sentence here. The clause that answers it. A third one."
    s = lambda a, b: (Candidate("d", "d.txt", a, b, doc[a:b], None, doc), 1.0)
    ranked = [s(23, 50), s(0, 22), s(51, 64)]
    evidence = [Evidence("d", "d.txt", 0, 50, doc[:50], 10, 1.0)]
    quotes = quotes_from(ranked, evidence, 3)
    assert [q.text for q in quotes] == ["The clause that answers it.", "A first sentence here."]  # the third is not in the evidence
    assert {q.block for q in quotes} == {1}


def test_a_sentence_that_asks_is_quoted_only_after_the_statements():
    doc = "When will the government fully fund the Auditor General? The total spend was $92.4 million. Is it?\""
    parts = ["When will the government fully fund the Auditor General?", "The total spend was $92.4 million.", "Is it?\""]
    ranked = [(Candidate("d", "d.txt", doc.index(p), doc.index(p) + len(p), p, None, doc), 1.0) for p in parts]
    evidence = [Evidence("d", "d.txt", 0, len(doc), doc, 30, 1.0)]
    assert [q.text for q in quotes_from(ranked, evidence, 2)] == [
        "The total spend was $92.4 million.", "When will the government fully fund the Auditor General?"]


def test_an_invented_figure_is_caught_but_one_written_in_words_is_not():
    evidence = "You have thirty days to cure the breach; notice is given 60 days before."
    assert novel_figures("You have 30 days.", evidence) == []
    assert novel_figures("Notice is due 60 days before.", evidence) == []
    assert novel_figures("The licence lasts 10 years.", evidence) == ["10"]


# ---- the grader, on answers known to be right and known to be wrong ------------------------------

YES_Q = {"kind": "yesno", "polarity": "yes", "answer": "Yes, it may be sold.", "words": []}
FACT_Q = {"kind": "fact", "polarity": None, "answer": "The laws of the State of New York.", "words": [["new york"]]}
NONE_Q = {"kind": "unanswerable", "polarity": None, "answer": "", "words": []}


@pytest.mark.parametrize("question, answer, ok", [
    (YES_Q, "Yes.", True), (YES_Q, "No.", False), (YES_Q, "It may be sold.", False), (YES_Q, "Not really, yes", False),
    (FACT_Q, "It is governed by the laws of New York [1].", True),
    (FACT_Q, "It is not governed by New York law.", False),  # a keyword match that ignores "not" measures nothing
    (FACT_Q, "The laws of Belgium.", False),
    (FACT_Q, "the laws of New\nYork", True),  # a document's span keeps its line breaks
    (FACT_Q, "not the laws of New\nYork", False), (FACT_Q, "the laws of NewYork", False),
    (NONE_Q, "Yes.", False),
])
def test_grader_tells_right_from_wrong(question, answer, ok):
    assert right(question, answer) is ok


def test_grade_counts_a_shown_wrong_answer_and_a_withheld_one_apart():
    row = {"found": True, "withheld": None, "answer": "No.", "quotes": [{"doc_id": "d", "start": 0, "end": 40}],
           "evidence": [["d", 0, 100]], "gold_span": [10, 30]}
    q = {**YES_Q, "doc": "d"}
    assert grade(q, row) == {"shown": True, "withheld": False, "not_found": False, "quote_hit": True,
                             "evidence_hit": True, "right": False, "wrong_shown": True}
    held = grade(q, {**row, "withheld": "unsure", "answer": "no answer shown: unsure"})
    assert not held["wrong_shown"] and held["withheld"] and not held["right"]
    unanswerable = grade({**NONE_Q, "doc": None}, {**row, "found": False})
    assert unanswerable["right"] and not unanswerable["wrong_shown"]
    assert grade({**NONE_Q, "doc": None}, row)["wrong_shown"]


def test_overlap_needs_half_of_the_shorter_span():
    assert overlaps([("d", 0, 100)], ("d", 40, 60))
    assert overlaps([("d", 50, 60)], ("d", 0, 200))  # a quote inside a long gold clause
    assert not overlaps([("d", 0, 45)], ("d", 40, 60))
    assert not overlaps([("e", 40, 60)], ("d", 40, 60))
    assert polarity("  Yes, it does.") == "yes" and polarity("Nobody knows") is None
    assert holds_words("Thirty days", [["30 days", "thirty days"]]) and not holds_words("days", [["30 days"]])


def test_question_set_is_written_and_split():
    questions = load_questions()
    assert len(questions) >= 60
    kinds = {(q["split"], q["kind"]) for q in questions}
    assert {("dev", "yesno"), ("test", "yesno"), ("dev", "unanswerable"), ("test", "unanswerable")} <= kinds
    contracts = [q for q in questions if q["corpus"] == "contracts" and q["kind"] == "yesno"]
    assert sum(q["polarity"] == "yes" for q in contracts) >= 10 and sum(q["polarity"] == "no" for q in contracts) >= 10
    for q in questions:
        if q["corpus"] == "contracts" and q["gold"]:
            assert q["gold"] in (CONTRACTS / q["doc"]).read_text(), q["id"]


# ---- the questions over long meetings and stories (issue 34) --------------------------------------

@pytest.mark.parametrize("qid, wrong", [
    ("m15", "$85.8 million."),                  # the Auditor General's 2014-15 spend, his previous answer
    ("m21", "Sixty or seventy hours."),         # the gender-dependent share, the very next turn
    ("s09", "18,000,000 miles from the sun."),  # how close the ships fell before the rescue
    ("s15", "He is an ore-sled dispatcher."),   # the narrator's lie to the spy
])
def test_long_document_questions_reject_the_wrong_answer_found_nearby(qid, wrong):
    question = next(q for q in load_questions() if q["id"] == qid)
    assert right(question, question["answer"])
    assert not right(question, wrong)


def test_question_ids_are_unique_and_each_long_corpus_is_split_evenly():
    questions = load_questions()
    assert len({q["id"] for q in questions}) == len(questions)
    for corpus in ("qmsum", "squality"):
        facts = [q["split"] for q in questions if q["corpus"] == corpus and q["kind"] == "fact"]
        assert len(facts) >= 20 and facts.count("dev") == facts.count("test"), corpus
        assert {q["split"] for q in questions if q["corpus"] == corpus and q["kind"] == "unanswerable"} == {"dev", "test"}


def test_every_gold_passage_is_in_its_document_as_the_index_holds_it():
    questions = [q for q in load_questions() if q["gold"] and q["corpus"] != "contracts"]
    for corpus in sorted({q["corpus"] for q in questions}):
        texts = corpus_texts(corpus)
        for q in (q for q in questions if q["corpus"] == corpus):
            start, end = gold_span(q, texts)
            assert texts[q["doc"]][start:end].split() == q["gold"].split(), q["id"]


# ---- the LangChain peer's replies (benchmarks/trust_peer.py) ----------------------------------------

@pytest.mark.parametrize("reply, unknown", [
    ("I don't know.", True),
    ("The context does not mention the governing law.", True),
    ("The notice period is not specified in the provided context.", True),
    ("No, the licence does not provide any warranty.", False),  # an answer, not a shrug
    ("The agreement is governed by the laws of the State of New York.", False),
])
def test_the_peer_counts_a_reply_that_does_not_know_as_not_found(reply, unknown):
    from trust_peer import says_unknown

    assert says_unknown(reply) is unknown
