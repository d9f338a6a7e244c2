"""Questions synthesized from a folder (`longrag compare --synthesize`): the paraphrase filter,
the spread of passages, resuming, bad input, the Kendall τ helper, and a real run with the packaged models."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from longrag.config import load_config
from longrag.errors import InputError
from longrag.evaluation.agreement import _tau_b, agreement, kendall_tau
from longrag.evaluation.beir import load_beir
from longrag.evaluation.passages import (COPY_WORDS, MIN_PASSAGE_WORDS, copied_phrase, cut_passages, spread_order,
                                         words)
from longrag.evaluation.question_folder import FILES, PROGRESS
from longrag.evaluation.synthesize import QUESTION_SYSTEM, SynthesisSettings, as_question, synthesize
from tests.helpers import CONTRACTS, FakeEncoder

FEW = ("MIT.txt", "BSD-3-Clause.txt", "Zlib.txt", "ISC.txt")


class ScriptedModel:
    """Generator and checker at once, replying from a script. A question is the passage's opening
    words (a copy) or seven of its words in reverse order (no run of words in common); the checker
    says Yes only to blocks holding the words its question came from. It gives no log-probabilities,
    so a Yes reads as the largest margin (verdict.yes_minus_no)."""

    name, backend, capabilities = "scripted", "test", frozenset()

    def __init__(self, copy_first: int = 0, copy_always: bool = False, interrupt_after: int | None = None):
        self.copy_first, self.copy_always, self.interrupt_after = copy_first, copy_always, interrupt_after
        self.questions = 0
        self.sources: dict[str, list[str]] = {}

    def special_tokens(self):
        return []

    def chat(self, messages, max_new_tokens=256, stream=None):
        if "Answer Yes or No" in messages[-1]["content"]:
            question = messages[-1]["content"].split("Question: ", 1)[1].split("\n")[0]
            source = " ".join(self.sources.get(question, ["(unknown)"]))
            return "Yes" if source in " ".join(words(messages[-1]["content"])) else "No"
        self.questions += 1
        if self.interrupt_after is not None and self.questions > self.interrupt_after:
            raise KeyboardInterrupt
        assert messages[0]["content"] == QUESTION_SYSTEM
        passage = words(messages[3]["content"].split("Passage:\n", 1)[1])  # after the system prompt and the example
        if self.copy_always or self.questions <= self.copy_first:
            return "Question: " + " ".join(passage[:8]) + "?"
        source = passage[10:17]
        question = " ".join(reversed(source)) + "?"
        self.sources[question] = source
        return question


class Parts:
    def __init__(self, model):
        self.generator = self.checker = model
        self.encoder = FakeEncoder()


def _folder(tmp_path: Path, names=FEW, name: str = "docs") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for name in names:
        shutil.copy(CONTRACTS / name, folder / name)
    return folder


def test_a_copied_question_is_caught_and_a_paraphrase_is_not():
    passage = "Permission is hereby granted, free of charge, to any person obtaining a copy of this software"
    assert copied_phrase("Is permission hereby granted, free of charge, to anyone?", passage) == "hereby granted free of charge"
    assert copied_phrase("Can anyone get the program without paying?", passage) is None
    assert copied_phrase("Is it granted free of charge?", passage) is None  # four shared words are allowed
    assert COPY_WORDS == 5


def test_the_generator_is_asked_again_when_it_copies_and_a_copier_is_rejected(tmp_path):
    folder = _folder(tmp_path)
    model = ScriptedModel(copy_first=1)
    report = synthesize(folder, tmp_path / "q", 2, pipeline=Parts(model), progress=False)
    assert report.written == 2 and model.questions == 3  # the first copy was asked again, in other words
    rows = [json.loads(line) for line in (tmp_path / "q" / PROGRESS).read_text().splitlines()]
    assert rows[0]["tries"] == 2
    copier = synthesize(folder, tmp_path / "c", 1, pipeline=Parts(ScriptedModel(copy_always=True)), progress=False,
                        settings=SynthesisSettings(tries=2))
    assert copier.written == 0 and copier.tried == len([p for d in FEW for p in cut_passages(d, (folder / d).read_text())])
    rejected = [json.loads(line) for line in (tmp_path / "c" / "rejected.jsonl").read_text().splitlines()]
    assert all(r["reason"].startswith("copies the passage's words") for r in rejected)


def test_passages_spread_over_documents_and_over_each_document():
    texts = {name: (CONTRACTS / name).read_text() for name in ("GPL-3.0-only.txt", "Apache-2.0.txt", "MIT.txt")}
    by_doc = {d: cut_passages(d, t) for d, t in texts.items()}
    assert all(len(words(p.text)) >= MIN_PASSAGE_WORDS and texts[d][p.start:p.end] == p.text
               for d, items in by_doc.items() for p in items)
    order = spread_order(by_doc, seed=3)
    assert sorted(p.key for p in order) == sorted(p.key for items in by_doc.values() for p in items)  # each once
    assert {p.doc_id for p in order[:3]} == set(texts)  # one of each document before a second of any
    for doc, items in by_doc.items():
        if len(items) >= 4:  # its first two passages lie in opposite halves: the end is sampled as soon as the start
            first, second = [items.index(p) for p in order if p.doc_id == doc][:2]
            assert abs(first - second) >= len(items) // 2 - 1
    assert order == spread_order(by_doc, seed=3) and order != spread_order(by_doc, seed=4)


def test_a_rerun_continues_and_an_interrupted_run_writes_nothing_half_done(tmp_path):
    folder = _folder(tmp_path)
    out = tmp_path / "q"
    with pytest.raises(KeyboardInterrupt):
        synthesize(folder, out, 4, pipeline=Parts(ScriptedModel(interrupt_after=2)), progress=False)
    assert len((out / PROGRESS).read_text().splitlines()) == 2
    assert not (out / "queries.jsonl").exists()  # no judged set until a run finishes
    model = ScriptedModel()
    report = synthesize(folder, out, 4, pipeline=Parts(model), progress=False)
    assert report.written == 4 and model.questions == 2  # the two logged passages were not asked again
    first = (out / "queries.jsonl").read_text().splitlines()
    more = ScriptedModel()
    assert synthesize(folder, out, 6, pipeline=Parts(more), progress=False).written == 6 and more.questions == 2
    assert (out / "queries.jsonl").read_text().splitlines()[:4] == first
    dataset = load_beir(out)
    assert len(dataset.queries) == 6 and all(dataset.corpus[d][a:b] for spans in dataset.passages.values()
                                             for d, a, b in spans)


def test_bad_input_gives_its_message_and_writes_nothing(tmp_path):
    model = Parts(ScriptedModel())
    one = _folder(tmp_path, ("MIT.txt",), "one")
    with pytest.raises(InputError, match="holds 1 .*add at least one more document"):
        synthesize(one, tmp_path / "a", 1, pipeline=model)
    short = tmp_path / "short"
    short.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (short / name).write_text("A short note of a few words.")
    with pytest.raises(InputError, match="3 of the 3 documents are shorter than one passage"):
        synthesize(short, tmp_path / "b", 1, pipeline=model)
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    (unreadable / "scan.pdf").write_bytes(b"not a pdf")
    with pytest.raises(InputError, match="no readable documents"):
        synthesize(unreadable, tmp_path / "c", 1, pipeline=model)
    folder = _folder(tmp_path)
    with pytest.raises(InputError, match=r"the documents hold \d+ passages .*--synthesize \d+ or fewer"):
        synthesize(folder, tmp_path / "d", 10_000, pipeline=model)
    assert not any((tmp_path / x).exists() for x in "abcd")
    synthesize(folder, tmp_path / "e", 1, pipeline=model, progress=False)
    with pytest.raises(InputError, match="other settings \\(settings differ\\)"):
        synthesize(folder, tmp_path / "e", 1, pipeline=model, settings=SynthesisSettings(seed=1))
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a folder of synthesized questions"):
        synthesize(folder, tmp_path / "f", 1, pipeline=model)
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["notes.txt"]


def test_a_reply_becomes_a_question_or_nothing():
    assert as_question('Question: "What does the licence allow?"\nIt allows…') == "What does the licence allow?"
    assert as_question("1. Who may copy the software? Anyone.") == "Who may copy the software?"
    assert as_question("The licence allows copying.") is None


def test_kendall_tau_on_known_rankings():
    assert kendall_tau([1, 2, 3, 4, 5], [10, 20, 30, 40, 50]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    assert kendall_tau([1, 2, 3, 4, 5], [2, 1, 3, 4, 5]) == pytest.approx(0.8)  # one swap: (9 − 1) / 10
    for x, y in (([1, 2, 3, 4, 5], [2, 1, 3, 4, 5]), ([1, 1, 2, 3], [1, 2, 2, 3]), ([3, 1, 2], [1, 3, 2])):
        assert _tau_b(x, y) == pytest.approx(kendall_tau(x, y))  # the fallback counts ties as SciPy does
    result = agreement({"bm25": 0.6, "chunks": 0.5, "truncate": 0.3}, {"bm25": 0.8, "chunks": 0.4, "truncate": 0.5})
    assert result["tau"] == pytest.approx(1 / 3)
    assert result["conditions"]["truncate"] == {"human": 0.3, "synthesized": 0.5, "gap": pytest.approx(0.2),
                                                "rank_human": 3, "rank_synthesized": 2}


@pytest.mark.slow
def test_real_questions_from_contracts_with_the_packaged_models(tmp_path):
    folder = _folder(tmp_path, ("MIT.txt", "Apache-2.0.txt", "BSD-3-Clause.txt"))
    out = tmp_path / "q"
    report = synthesize(folder, out, 3, config=load_config(None), progress=False)
    assert all((out / name).is_file() for name in FILES)
    dataset = load_beir(out)
    assert report.written == len(dataset.queries) >= 1 and report.tried >= report.written + report.ambiguous
    spans = [json.loads(line) for line in (out / "passages.jsonl").read_text().splitlines()]
    for row in spans:
        question = next(json.loads(q)["text"] for q in (out / "queries.jsonl").read_text().splitlines()
                        if json.loads(q)["_id"] == row["query-id"])
        assert question.endswith("?") and copied_phrase(question, row["text"]) is None
        assert dataset.corpus[row["corpus-id"]][row["start"]:row["end"]] == row["text"]
        assert row["margin"] >= SynthesisSettings().min_margin


def test_the_commands_refuse_bad_input_with_one_line(tmp_path):
    from click.testing import CliRunner

    from longrag.cli import main

    one = _folder(tmp_path, ("MIT.txt",), "one")
    result = CliRunner().invoke(main, ["compare", "--dataset", str(one), "--synthesize", "2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "add at least one more document" in result.output
    result = CliRunner().invoke(main, ["compare", "--dataset", str(one / "MIT.txt"), "--synthesize", "2",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "is not a folder" in result.output
    judged = tmp_path / "judged"  # a BEIR folder without passage spans
    judged.mkdir()
    (judged / "corpus.jsonl").write_text('{"_id": "a", "text": "alpha"}\n{"_id": "b", "text": "beta"}\n')
    (judged / "queries.jsonl").write_text('{"_id": "q", "text": "alpha?"}\n')
    (judged / "qrels.tsv").write_text("q\ta\t1\n")
    result = CliRunner().invoke(main, ["eval", "--dataset", str(judged), "--out", str(tmp_path / "e")])
    assert result.exit_code == 2 and "has no passages.jsonl" in result.output
    assert not (tmp_path / "o").exists()


def test_eval_grades_answers_against_the_passages_and_resumes(tmp_path, monkeypatch):
    """`eval --dataset`: quotes overlapping a question's passage count, shown / withheld / not found are
    counted, answers already saved are not asked again; the index is built from the folder's corpus."""
    from longrag.evaluation.ask_eval import ANSWERS, evaluate_answers
    from longrag.pipeline import Pipeline
    from longrag.reasoning import Answer
    from longrag.types import Citation

    folder = _folder(tmp_path)
    out = tmp_path / "q"
    synthesize(folder, out, 3, pipeline=Parts(ScriptedModel()), progress=False)
    spans = {row["query-id"]: row for row in map(json.loads, (out / "passages.jsonl").read_text().splitlines())}
    qids = {row["text"]: row["_id"] for row in map(json.loads, (out / "queries.jsonl").read_text().splitlines())}
    asked = []
    config = load_config(None)

    def ask(self, question, **_):
        asked.append(question)
        row = spans[qids[question]]
        hit = Citation(row["corpus-id"], row["corpus-id"], row["start"], row["start"] + 40, row["text"][:40], 1)
        miss = Citation(row["corpus-id"], row["corpus-id"], row["end"] + 5, row["end"] + 50, "elsewhere.", 1)
        quotes = [hit] if len(asked) == 1 else [miss]
        return Answer("an answer", [], "hybrid", 10, 1.0, 0, found=len(asked) < 3, quotes=quotes, evidence=[hit],
                      withheld="unsupported" if len(asked) == 2 else None)

    monkeypatch.setattr(Pipeline, "encoder", property(lambda self: FakeEncoder()))
    monkeypatch.setattr(Pipeline, "ask", ask)
    summary = evaluate_answers(out, config, tmp_path / "e", limit=2, progress=False)
    assert (summary.questions, summary.shown, summary.withheld, summary.not_found) == (2, 1, 1, 0)
    assert summary.quote_hit == 50.0 and summary.evidence_hit == 100.0
    summary = evaluate_answers(out, config, tmp_path / "e", progress=False)  # the two saved answers are kept
    assert len(asked) == 3 and (summary.questions, summary.shown, summary.not_found) == (3, 1, 1)
    assert len((tmp_path / "e" / ANSWERS).read_text().splitlines()) == 3
    with pytest.raises(InputError, match="another dataset, index or config"):
        evaluate_answers(out, load_config({"ask": {"quotes": 2}}), tmp_path / "e", progress=False)
