"""Which sentences become the quotes: how often the three quotes `ask` prints hold the gold clause of
the trust questions (benchmarks/questions/trust.jsonl, answerable ones), dev and test, for ways of
ordering the sentences `ask` ranks. No generator runs: each question's evidence and sentence ranking
are made as `ask` makes them (`answering.select_evidence`) and re-ordered.

- ranked: today's sentence ranking (the encoder's cosine to the question, each sentence read after
  its document's name, fused by reciprocal rank with stemmed BM25), then `quotes_from` (statements of
  eight words or more first, a sentence that is itself a question last);
- numbers first: for a question that asks for an amount (`pointing.asks_number`), sentences holding a
  figure before the others;
- in context: two more rankings fused in, cosine and BM25 of each sentence read with the one before
  and the one after it;
- top N: how often the gold sentence is among the first N (the ceiling of any re-ranking of them).

    .venv/bin/python benchmarks/quote_ranking.py        # writes results/quote_ranking.json and the docs block
"""
from __future__ import annotations

import collections
import os
import sys
from bisect import bisect_left
from pathlib import Path


os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import trust  # noqa: E402
from longrag import retrieval  # noqa: E402
from longrag.answering import select_evidence  # noqa: E402
from longrag.config import load_config  # noqa: E402
from longrag.evaluation.answer_grading import overlaps  # noqa: E402
from longrag.lexical import bm25_scores  # noqa: E402
from longrag.pipeline import _load_generator  # noqa: E402
from longrag.ranking import fused_order  # noqa: E402
from longrag.reasoning import candidates_of  # noqa: E402
from longrag.reasoning.bm25_selector import STEMMED  # noqa: E402
from longrag.reasoning.pointing import asks_number, holds_number  # noqa: E402
from longrag.reasoning.sentences import split_sentences, title_of  # noqa: E402
from longrag.reasoning.verdict import quotes_from  # noqa: E402
from longrag.types import Candidate  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "quote_ranking.json"
CORPORA = ("contracts", "cuad", "qmsum", "squality")
CAPTION = ("Answerable trust questions whose three quotes overlap the gold clause by half (the grader's rule). "
           "`ranked`: today's quotes; `top N`: the gold among the first N ranked sentences inside the evidence, "
           "any length or kind (the ceiling of re-ranking them).")


def window(sentence: Candidate, spans: list[tuple[int, int]]) -> str:
    i = bisect_left(spans, (sentence.start,))
    return sentence.document[spans[max(0, i - 1)][0]: spans[min(len(spans) - 1, i + 1)][1]]


def orders(question: str, ranked: list[Candidate], encoder) -> dict[str, list[int]]:
    """Each variant's order of `ranked` (indices)."""
    split = {}
    windows = [window(s, split.setdefault(s.doc_id, split_sentences(s.document))) for s in ranked]
    q = encoder.encode_queries([question])[0]
    cosine = encoder.encode_queries([f"{title_of(s)}: {s.text}" for s in ranked]) @ q
    lexical = bm25_scores(question, [s.text for s in ranked], STEMMED)
    in_context = [encoder.encode_queries([f"{title_of(s)}: {w}" for s, w in zip(ranked, windows)]) @ q,
                  bm25_scores(question, windows, STEMMED)]
    today = list(range(len(ranked)))
    figures = [i for i in today if holds_number(ranked[i].text)]
    return {"ranked": today,
            "numbers first": figures + [i for i in today if i not in set(figures)] if asks_number(question) else today,
            "in context": [int(i) for i in fused_order([cosine, lexical, *in_context])]}


def main() -> None:
    config = load_config(None)
    generator = _load_generator(config)  # counts the budget's tokens
    pipes, texts, encoder = {}, {}, None
    hits = collections.defaultdict(lambda: collections.Counter())
    top = collections.defaultdict(lambda: collections.Counter())
    for q in (q for q in trust.load_questions("all") if q["kind"] != "unanswerable"):
        corpus = q["corpus"]
        if corpus not in pipes:
            pipes[corpus] = trust.open_index(corpus, encoder, config.to_dict())
            pipes[corpus]._generator = generator
            encoder, texts[corpus] = pipes[corpus].encoder, trust.corpus_texts(corpus)
        stages, gold = pipes[corpus]._stages(), trust.gold_span(q, texts[corpus])
        query = encoder.encode_queries([q["question"]])[0]
        found = retrieval.search(stages.store, q["question"], query, config, config.ask.documents)
        candidates = [c for h in found for c in candidates_of(stages.store, h.doc_id)]
        chosen, ranked = select_evidence(stages, q["question"], query, candidates, config.ask.selector, config.ask.budget)
        sentences = [s for s, _ in ranked]
        key = (q["split"], corpus)
        hits["questions"][key] += 1

        def held(order: list[int], count: int = 3) -> bool:
            quotes = quotes_from([(sentences[i], 0.0) for i in order], chosen.evidence, count)
            return overlaps([(c.doc_id, c.start, c.end) for c in quotes], (q["doc"], *gold))

        for name, order in orders(q["question"], sentences, encoder).items():
            hits[name][key] += held(order)
        for n in (3, 5, 8, 15):
            inside = [s for s in sentences if any(e.doc_id == s.doc_id and e.start <= s.start and s.end <= e.end
                                                  for e in chosen.evidence)][:n]
            top[f"top {n}"][key] += overlaps([(s.doc_id, s.start, s.end) for s in inside], (q["doc"], *gold))
        print(q["id"], {name: c[key] for name, c in hits.items()}, flush=True)
    save({**hits, **top})


def save(counts: dict) -> None:
    from readme_tables import markdown_table, replace_block, RESULTS, save_json, stamp
    from longrag.indexing import library_versions

    n = counts.pop("questions")
    rows = []
    for name, c in counts.items():
        cells = [f"{sum(c[s, k] for k in CORPORA)}/{sum(n[s, k] for k in CORPORA)}" for s in ("dev", "test")]
        rows.append([name, *cells, *(f"{c['dev', k]}/{n['dev', k]} · {c['test', k]}/{n['test', k]}" for k in CORPORA)])
    table = markdown_table(["order", "dev", "test", *(f"{k} (dev · test)" for k in CORPORA)], rows)
    versions = library_versions()
    save_json(OUT, {"rows": rows, "stamp": stamp(versions)})
    replace_block("quote-ranking", table + "\n\n" + CAPTION + " " + stamp(versions), RESULTS)
    print(table)


if __name__ == "__main__":
    main()
