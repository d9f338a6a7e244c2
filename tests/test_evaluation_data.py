"""Evaluation data and metrics: real sets read correctly, BEIR round-trips, bad input is named,
synthetic tasks are deterministic and put the inserted sentence where they say, metrics match
hand-computed values."""
import json
import math
import re

import pytest

from longrag.errors import InputError
from longrag.evaluation.datasets import (RetrievalDataset, cuad, data_root, load_beir, load_dataset, qmsum,
                                         squality)
from longrag.evaluation.metrics import (accuracy_at_1, evaluate, evaluate_metric, evaluate_metric_per_query,
                                        evaluate_per_query, paired_test, span_recall)
from longrag.evaluation.synthetic import LENGTHS, TOLERANCE, estimate_tokens, needle, passkey, synthetic_suite

DATA = data_root()
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared evaluation data not found at {DATA} "
                                                           f"(set LONGRAG_DATA)")


def _rows(relative):
    return [json.loads(line) for line in (DATA / relative).read_text(encoding="utf-8").splitlines() if line.strip()]


def _word_count(text):
    """A second tokenizer stand-in that disagrees with the default estimate (punctuation-blind)."""
    return len(re.findall(r"\w+", text))


# --------------------------------------------------------------------------------------- real sets


@needs_data
def test_qmsum_counts_and_turn_spans():
    data = qmsum()
    assert len(data.corpus) == 35 and len(data.queries) == 237
    assert data.meta["general_queries_excluded"] == 35
    rows = _rows("qmsum/val.jsonl")
    for qid, spans in data.passages.items():
        meeting = int(qid.split("-")[2])
        turns = rows[meeting]["meeting_transcripts"]
        item = rows[meeting]["specific_query_list"][int(qid.split("-q")[-1])]
        assert data.queries[qid] == item["query"]
        assert data.qrels[qid] == {f"qmsum-val-{meeting}": 1}
        for (doc_id, start, end), (first, last) in zip(spans, item["relevant_text_span"]):
            text = data.corpus[doc_id]
            assert 0 <= start < end <= len(text)
            expected = "".join(f"{t['speaker']}: {t['content']}\n" for t in turns[int(first):int(last) + 1])
            assert text[start:end] == expected[:-1]
            assert start == 0 or text[start - 1] == "\n"


@needs_data
def test_cuad_spans_are_the_answers():
    data = cuad()
    rows = _rows("cuad/dev.jsonl")
    assert len(data.corpus) == 11 and len(data.queries) == 74
    assert data.meta["answers_not_found"] == 0 and len(data.passages) == 74
    for qid, [(doc_id, start, end)] in data.passages.items():
        index, j = int(qid.split("-")[2]), int(qid.split("-q")[-1])
        assert data.corpus[doc_id][start:end] == rows[index]["outputs"][j]
    assert not any("Highlight the parts" in q or "reviewed by a lawyer" in q for q in data.queries.values())
    assert data.queries["cuad-dev-0-q0"] == "Expiration Date: On what date will the contract's initial term expire?"


@needs_data
def test_squality_leaves_out_the_plot_question():
    data = squality()
    assert len(data.corpus) == 25 and len(data.queries) == 100
    assert "What is the plot of the story?" not in data.queries.values()
    assert not any(qid.endswith("-q1") for qid in data.queries)
    assert all(len(docs) == 1 and next(iter(docs)) in data.corpus for docs in data.qrels.values())
    distinct = squality(distinct_questions=True)
    assert len(distinct.queries) == 100 - data.meta["repeated_query_texts"] < 100
    assert len(set(distinct.queries.values())) == len(distinct.queries)


@needs_data
def test_limit_is_deterministic_and_keeps_the_corpus():
    data = qmsum()
    a, b, c = data.limit(20, seed=1), data.limit(20, seed=1), data.limit(20, seed=2)
    assert a.queries == b.queries and a.queries != c.queries
    assert len(a.queries) == 20 and set(a.qrels) == set(a.passages) == set(a.queries)
    assert a.corpus == data.corpus
    assert data.limit(10_000) is data
    with pytest.raises(InputError):
        data.limit(0)


@needs_data
def test_load_dataset_dispatch():
    assert len(load_dataset("cuad").corpus) == 11
    assert load_dataset("squality", split="train").name == "squality-train"
    small = load_dataset("needle-256", n_docs=4, n_queries=2)
    assert small.name == "needle-256" and len(small.corpus) == 4
    with pytest.raises(InputError, match="passkey-4096"):
        load_dataset("passkey")
    with pytest.raises(InputError, match="qmsum, squality, cuad"):
        load_dataset("msmarco")
    with pytest.raises(InputError, match="does not exist"):
        qmsum(root=DATA / "nowhere")


# --------------------------------------------------------------------------------------- BEIR


def _write_beir(folder, qrels_rows, queries=None, qrels_name="qrels.tsv"):
    folder.mkdir(parents=True, exist_ok=True)
    corpus = [{"_id": "d1", "title": "Cats", "text": "Cats purr."}, {"_id": "d2", "text": "Rockets fly."}]
    queries = queries if queries is not None else [{"_id": "q1", "text": "purring"}, {"_id": "q2", "text": "thrust"},
                                                    {"_id": "q3", "text": "unjudged train query"}]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (folder / qrels_name).parent.mkdir(parents=True, exist_ok=True)
    (folder / qrels_name).write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels_rows))
    return folder


def test_beir_round_trip(tmp_path):
    data = load_beir(_write_beir(tmp_path / "toy", [("q1", "d1", 1), ("q2", "d2", 2), ("q2", "d1", 0)]))
    assert data.corpus == {"d1": "Cats\n\nCats purr.", "d2": "Rockets fly."}
    assert data.queries == {"q1": "purring", "q2": "thrust"}
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2, "d1": 0}}
    assert data.meta["queries_without_qrels"] == 1 and data.passages is None
    nested = load_dataset(str(_write_beir(tmp_path / "nested", [("q1", "d1", 1)], qrels_name="qrels/test.tsv")))
    assert nested.queries == {"q1": "purring"}


def test_beir_bad_inputs_are_named(tmp_path):
    with pytest.raises(InputError, match="q9"):
        load_beir(_write_beir(tmp_path / "a", [("q1", "d1", 1), ("q9", "d1", 1)]))
    with pytest.raises(InputError, match="d7"):
        load_beir(_write_beir(tmp_path / "b", [("q1", "d7", 1)]))
    with pytest.raises(InputError, match="queries.jsonl holds no queries"):
        load_beir(_write_beir(tmp_path / "c", [("q1", "d1", 1)], queries=[]))
    with pytest.raises(InputError, match="does not exist"):
        load_beir(tmp_path / "missing")
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(str(tmp_path / "missing"))
    folder = _write_beir(tmp_path / "d", [("q1", "d1", 1)])
    (folder / "qrels.tsv").unlink()
    with pytest.raises(InputError, match=r"qrels.tsv \(or qrels/test.tsv\)"):
        load_beir(folder)
    (folder / "qrels.tsv").write_text("q1\td1\thigh\nq1\td2\n")
    with pytest.raises(InputError, match=r"qrels.tsv:2: expected 3"):
        load_beir(folder)


def test_validate_lists_offending_ids():
    bad = RetrievalDataset("toy", {"d1": "text"}, {"q1": "a", "q2": "b"},
                           {"q1": {"d1": 1, "ghost": 1}, "q2": {"d1": 0}, "q3": {"d1": 1}},
                           passages={"q1": [("d1", 0, 99)]})
    with pytest.raises(InputError) as error:
        bad.validate()
    message = str(error.value)
    assert "'ghost'" in message and "'q3'" in message and "'q2'" in message and "d1[0:99]" in message
    with pytest.raises(InputError, match="no queries"):
        RetrievalDataset("empty", {"d1": "x"}, {}, {}).validate()


# --------------------------------------------------------------------------------------- synthetic


@needs_data
def test_synthetic_is_deterministic():
    a, b = passkey(512, n_docs=12, n_queries=6, seed=3), passkey(512, n_docs=12, n_queries=6, seed=3)
    c = passkey(512, n_docs=12, n_queries=6, seed=4)
    assert (a.corpus, a.queries, a.qrels, a.passages) == (b.corpus, b.queries, b.qrels, b.passages)
    assert a.corpus != c.corpus and a.queries != c.queries


@needs_data
@pytest.mark.parametrize("task", ["passkey", "needle"])
def test_inserted_sentence_is_where_passages_say(task):
    data = {"passkey": passkey, "needle": needle}[task](1024, n_docs=30, n_queries=20, seed=1)
    assert len(data.corpus) == 30 and len(data.queries) == 20
    targets = [next(iter(docs)) for docs in data.qrels.values()]
    assert len(set(targets)) == 20  # queries target distinct documents
    for qid, [(doc_id, start, end)] in data.passages.items():
        assert targets[list(data.qrels).index(qid)] == doc_id
        text, inserted = data.corpus[doc_id], data.corpus[doc_id][start:end]
        name = re.search(r"(?:of|did|does) ([A-Z]\w+ [A-Z]\w+)", data.queries[qid]).group(1)
        answer = data.meta["answers"][qid]
        assert name in inserted and answer in inserted
        assert text.count(name) == inserted.count(name)  # the name appears nowhere else
        assert text.count(answer) == inserted.count(answer)
        if task == "passkey":
            assert inserted == f"{name}'s pass key is {answer}. Remember it. {answer} is the pass key of {name}."
        before = text[:start]  # a sentence boundary: after a sentence end or a paragraph break
        assert before == "" or before.endswith("\n\n") or re.search(r"[.!?][\"”’']? $", before)
        assert end == len(text) or text[end] == " "
    haystacks = [data.corpus[d][:s] + data.corpus[d][e:] for spans in data.passages.values() for d, s, e in spans]
    assert len(set(haystacks)) == len(haystacks)  # different prose, not only a different sentence


@needs_data
@pytest.mark.parametrize("count_tokens", [estimate_tokens, _word_count])
def test_lengths_within_tolerance(count_tokens):
    suite = synthetic_suite("passkey", lengths=(256, 4096), n_docs=15, n_queries=5, count_tokens=count_tokens)
    assert set(suite) == {256, 4096}
    for length, data in suite.items():
        for text in data.corpus.values():
            assert abs(count_tokens(text) - length) <= TOLERANCE * length
    with pytest.raises(InputError, match="passkey, needle"):
        synthetic_suite("haystack", lengths=(256,))


@needs_data
def test_longest_length_counts_tokens_a_bounded_number_of_times():
    """What keeps 100 documents of 32k tokens fast is a bounded number of tokenizer calls per document
    (the time itself is a benchmark's number, not a test's: it varies with the machine's load)."""
    data = passkey(LENGTHS[-1], n_docs=100, n_queries=50)
    assert all(abs(estimate_tokens(t) - 32768) <= TOLERANCE * 32768 for t in data.corpus.values())
    assert data.meta["count_tokens_calls"] <= 3 * 100


# --------------------------------------------------------------------------------------- metrics

QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1}}


def test_metrics_on_hand_computed_runs():
    perfect = evaluate(QRELS, {"q1": {"d1": 0.9, "d3": 0.1}, "q2": {"d2": 0.8, "d1": 0.2}})
    assert perfect == pytest.approx({"ndcg@10": 1, "recall@1": 1, "recall@10": 1, "recall@100": 1, "mrr@10": 1})
    second = evaluate(QRELS, {"q1": {"d3": 0.9, "d1": 0.5}, "q2": {"d1": 0.8, "d2": 0.2}})
    assert second["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert second["mrr@10"] == pytest.approx(0.5) and second["recall@1"] == 0 and second["recall@10"] == 1
    per_query = evaluate_per_query(QRELS, {"q1": {"d1": 1.0}, "q2": {"d9": 1.0, "d2": 0.5}}, ["mrr@10"])
    assert per_query == {"mrr@10": pytest.approx({"q1": 1.0, "q2": 0.5})}
    assert evaluate_metric_per_query(QRELS, {"q1": {"d1": 1.0}}, "mrr@10") == {"q1": 1.0, "q2": 0.0}  # one metric
    assert evaluate_metric(QRELS, {"q1": {"d1": 1.0}}, "recall@1") == 0.5
    assert accuracy_at_1(QRELS, {"q1": {"d1": 1.0}, "q2": {"d9": 1.0, "d2": 0.5}}) == 0.5


def test_missing_queries_score_zero_and_ties_give_no_credit():
    assert evaluate(QRELS, {"q1": {"d1": 1.0}})["ndcg@10"] == pytest.approx(0.5)
    assert evaluate(QRELS, {})["recall@100"] == 0
    tied = {f"d{i}": 0.0 for i in range(1, 6)}  # the relevant document listed first, all scores equal
    assert evaluate({"q1": {"d1": 1}}, {"q1": tied})["mrr@10"] == pytest.approx(1 / 5)
    with pytest.raises(InputError, match="shares no query id"):
        evaluate(QRELS, {"other": {"d1": 1.0}})
    with pytest.raises(InputError, match="foo"):
        evaluate(QRELS, {"q1": {"d1": 1.0}}, ["foo@3"])


def test_paired_test_sign_and_interval():
    better = {f"q{i}": 0.6 + 0.01 * (i % 7) for i in range(40)}
    worse = {f"q{i}": 0.3 + 0.02 * (i % 5) for i in range(40)}
    result = paired_test(better, worse)
    assert result["mean_difference"] > 0
    assert 0 < result["ci_low"] <= result["mean_difference"] <= result["ci_high"]
    assert result["p_value"] < 0.001 and result["n"] == 40
    reverse = paired_test(worse, better)
    assert reverse["mean_difference"] == pytest.approx(-result["mean_difference"]) and reverse["ci_high"] < 0
    assert paired_test(better, worse) == result  # fixed seed
    noise = paired_test([0.5, 0.7, 0.6, 0.4], [0.6, 0.5, 0.6, 0.5])
    assert noise["ci_low"] < 0 < noise["ci_high"] and noise["p_value"] > 0.5
    with pytest.raises(InputError, match="different queries"):
        paired_test({"q1": 1.0, "q2": 0.0}, {"q1": 1.0, "q3": 0.0})


def test_span_recall():
    gold = [("a", 10, 20), ("a", 40, 50), ("b", 0, 5)]
    assert span_recall(gold, [("a", 0, 15), ("a", 15, 25), ("b", 0, 5)]) == pytest.approx(2 / 3)
    assert span_recall(gold, [("a", 0, 100), ("b", 0, 100)]) == 1
    assert span_recall(gold, [("b", 0, 100), ("c", 0, 100)]) == pytest.approx(1 / 3)  # same doc only
    assert span_recall(gold, [("a", 11, 50)]) == pytest.approx(1 / 3)
    with pytest.raises(InputError):
        span_recall([], [("a", 0, 1)])


def test_document_folder_with_queries_and_qrels(tmp_path):
    """A folder as `longrag index` reads it, judged by queries.jsonl + qrels.tsv placed in it."""
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "cats.txt").write_text("Cats purr when content.")
    (folder / "sub" / "rockets.md").write_text("Rockets fly on thrust.")
    (folder / "empty.txt").write_text("")
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "thrust"}) + "\n")
    (folder / "qrels.tsv").write_text("q1\tsub/rockets.md\t1\n")
    data = load_dataset(str(folder))
    assert data.corpus == {"cats.txt": "Cats purr when content.", "sub/rockets.md": "Rockets fly on thrust."}
    assert data.qrels == {"q1": {"sub/rockets.md": 1}} and data.meta["unsupported_files"] == 0
    assert data.meta["unreadable_documents"] == ["empty.txt: empty file"]
    (folder / "qrels.tsv").write_text("q1\trockets.md\t1\n")  # not the relative path: named, with valid ids
    with pytest.raises(InputError, match=r"rockets\.md.*cats\.txt"):
        load_dataset(str(folder))
