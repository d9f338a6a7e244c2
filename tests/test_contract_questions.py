"""Regression: the ten contract questions asked with the default configuration (packaged encoder,
generator and checker, default selector and budget) of an index of examples/contracts, with the quotes
printed first and readings the quotes do not support withheld. Measured on AMD EPYC (2026-12-04):
9 of 10 quote the answering contract; the bar leaves one question of slack, as greedy decoding may
take another path on other SIMD kernels. How right the shown readings are is measured by
benchmarks/trust.py, not asserted here."""
import pytest

from longrag import Pipeline
from longrag.evaluation.contract_questions import QUESTIONS
from longrag.reasoning import NOT_FOUND
from longrag.reasoning.verdict import UNANSWERED

from tests.helpers import CONTRACTS

pytestmark = pytest.mark.slow
TRADEMARKS = "Can I use the licensor's trademarks under the Apache License?"
QUOTED_BAR = 8  # measured 9 (AMD EPYC, 2026-12-04)
NOT_ANSWERED = "What is the annual licence fee for the Apache License?"  # it has none


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    index = tmp_path_factory.mktemp("indexes") / "contracts"
    Pipeline.from_config(None).index([CONTRACTS], index_dir=index, progress=False)
    pipe = Pipeline.load(index)
    return {q: pipe.ask(q) for q in [*QUESTIONS, NOT_ANSWERED]}


def test_the_trademark_question_is_quoted_from_apache_section_6_and_never_answered_yes(answers):
    answer = answers[TRADEMARKS]
    first = answer.quotes[0]
    assert first.doc_id == "Apache-2.0.txt" and "does not grant permission to use the trade names" in first.text
    # the clause says no: a shown answer must say no; a withheld one says why
    assert answer.answer.startswith("No") or answer.withheld, answer.answer


def test_the_quotes_come_from_the_answering_contract(answers):
    quoted = {q: QUESTIONS[q][0] in {c.doc_id for c in a.quotes} for q, a in answers.items() if q in QUESTIONS}
    assert sum(quoted.values()) >= QUOTED_BAR, {q: [c.doc_id for c in answers[q].quotes] for q in quoted}


def test_every_reading_was_checked_and_a_withheld_one_says_why(answers):
    for a in answers.values():
        if not a.found:
            continue
        assert a.check["method"] in ("yes/no likelihood", "span check") or a.withheld
        if a.check.get("method") == "yes/no likelihood":
            assert a.reading in ("Yes.", "No.")
        if a.withheld:
            assert a.answer == f"no answer shown: {a.withheld}" and a.reading and not a.grounded
        elif a.check["method"] == "yes/no likelihood":
            assert a.answer == a.reading
        else:  # a fact answer is the span of the document the model pointed at
            span = a.answer_span
            assert a.answer == span.text == (CONTRACTS / span.doc_id).read_text(encoding="utf-8")[span.start:span.end]


def test_every_answer_is_whole_and_its_citations_are_true_spans(answers):
    for question, answer in answers.items():
        assert answer.answer.strip() and answer.seconds > 0
        for cite in answer.citations + answer.quotes:
            text = (CONTRACTS / cite.doc_id).read_text(encoding="utf-8")
            assert text[cite.start:cite.end] == cite.text


def test_a_question_the_quotes_do_not_answer_is_not_found_before_any_answer_is_written(answers):
    # close enough to pass the relevance gate (0.52), but the checker, asked whether the quotes answer it,
    # says No (margin -1.75 on AMD EPYC, against ask.answerable 0.5): nothing is generated, the quotes stand
    answer = answers[NOT_ANSWERED]
    assert answer.answer == NOT_FOUND and not answer.found and answer.not_found == UNANSWERED
    assert answer.quotes and answer.check["method"] == "answerability" and answer.check["margin"] < 0.5
    assert answer.citations == [] and not answer.grounded
