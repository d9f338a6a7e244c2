"""Answer quality per evidence selector: token F1 against CUAD answers, ROUGE-L against SQuALITY
responses, against feeding the document's first tokens to the same generator.

Per question the candidates are all segments of its gold document (as in evidence_recall.py:
CUAD questions name no contract, so document retrieval is left out), indexed with the default
config. Then what `longrag ask` does: the selector fills the budget, the packaged generator
answers from the numbered blocks greedily. `first` = the document's first segments up to the
budget. The not-found gate (best question–segment cosine below `ask.min_relevance`, tuned on
contracts) is recorded, not applied: it would refuse most SQuALITY story questions before the
generator runs, which says nothing about the evidence.

Metrics: token F1 (SQuAD normalisation: lower case, no punctuation, no articles) of the answer,
citation markers removed, against the CUAD answer span; ROUGE-L F (rouge-score, Porter stemming),
best over SQuALITY's four reference responses. An answer the generator declines ("not found …")
scores 0 and is counted. Each is also scored with its support appended (the evidence sentence
closest to question + answer, which `longrag ask` shows under the answer; picked by the encoder).
Also seconds per question (selection + generation + support) and
the process's peak RSS while a method runs (models loaded included), sampled every 50 ms.

Resumable: results go to benchmarks/results/answer_quality.json after every question. The generator
and budget are the default config's unless given.

    .venv/bin/python benchmarks/answer_quality.py --cuad 20 --squality 10
    .venv/bin/python benchmarks/answer_quality.py --table-only      # rewrite the README block
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from longrag.evaluation.answer_metrics import clean_answer, rouge_l, token_f1  # noqa: E402

from generation_reports import answer_quality_table  # noqa: E402
from readme_tables import RESULTS, replace_block, save_json, stamp  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "answer_quality.json"
INDEXES = ROOT / "runs" / "answer_quality"  # the benchmark's own indexes (rebuilt when missing)


# ---- data ---------------------------------------------------------------------------------------

def squality_references(dataset) -> dict[str, list[str]]:
    """qid → the four reference responses, read from the same jsonl the loader read."""
    by_key: dict[tuple[str, str], list[str]] = {}
    for line in Path(dataset.meta["source"]).read_text().splitlines():
        row = json.loads(line)
        for q in row["questions"]:
            by_key.setdefault((str(row["metadata"]["passage_id"]), q["question_text"]),
                              [r["response_text"] for r in q["responses"]])
    return {qid: by_key[(next(iter(dataset.qrels[qid])), text)] for qid, text in dataset.queries.items()}


def questions(name: str, n: int) -> tuple[object, list[tuple[str, str, str, object]]]:
    """(dataset, [(qid, question, doc_id, reference)]) for a seeded sample of n questions."""
    from longrag.evaluation.datasets import cuad, squality

    if name == "cuad":
        data = cuad().limit(n, seed=0)
        rows = []
        for qid in sorted(data.passages):
            d, a, b = data.passages[qid][0]
            rows.append((qid, data.queries[qid], d, data.corpus[d][a:b]))
        return data, rows
    data = squality(split="dev").limit(n, seed=0)
    refs = squality_references(data)
    return data, [(qid, data.queries[qid], next(iter(data.qrels[qid])), refs[qid]) for qid in sorted(data.queries)]


def human_score(rows) -> dict:
    """Each SQuALITY reference response scored like an answer against the other references of its question:
    what a human writer reaches on this metric (against three references, where an answer has four)."""
    scores = [rouge_l(ref, refs[:i] + refs[i + 1:]) for _, _, _, refs in rows for i, ref in enumerate(refs)]
    return {"score": float(np.mean(scores)), "n": len(rows), "responses": len(scores)}


def build_index(pipe, dataset, doc_ids, where: Path):
    from longrag.types import Document

    documents = [Document(d, d, dataset.corpus[d], hashlib.sha256(dataset.corpus[d].encode()).hexdigest())
                 for d in sorted(doc_ids)]
    pipe.index_documents(documents, where, progress=False)  # incremental: a rerun re-encodes nothing
    return pipe.store


# ---- run ----------------------------------------------------------------------------------------

def first_quote(pipe, question, candidates, evidence):
    """The first quote `longrag ask` prints: the best sentence of the evidence for the question alone."""
    from longrag.reasoning import make_selector
    from longrag.reasoning.verdict import quotes_from

    ranker = make_selector("sentences", count_tokens=len, encoder=pipe.encoder, first_stage=pipe.config.ask.first_stage,
                           pool=pipe.config.ask.pool)
    quotes = quotes_from(ranker.rank(question, candidates), evidence, 1)
    return quotes[0] if quotes else None


def point_answer(pipe, question, candidates, evidence) -> tuple[str, int, list[str], str, object]:
    """(answer shown, prompt tokens, flags, the reading's span or words, the first quote) as `longrag ask`
    reads the evidence: the quotes, then `read_answer` (gate, pointing, checks). A withheld or not-found
    answer shows nothing; its flag says why."""
    from longrag.reasoning import NOT_FOUND, make_selector, read_answer
    from longrag.reasoning.verdict import quotes_from

    settings = pipe.config.ask
    ranker = make_selector("sentences", count_tokens=len, encoder=pipe.encoder, first_stage=settings.first_stage,
                           pool=settings.pool)
    quotes = quotes_from(ranker.rank(question, candidates), evidence, settings.quotes)
    documents = {c.doc_id: c.document for c in candidates if c.document is not None}
    reading = read_answer(pipe.generator, pipe.checker, question, evidence, quotes, documents, settings,
                          pipe.config.generator.max_new_tokens)
    read = reading.span.text if reading.span else reading.reading
    first = quotes[0] if quotes else None
    if reading.not_found:
        return NOT_FOUND, reading.tokens_in, [reading.not_found], "", first
    withheld = reading.verdict.withheld if reading.verdict else None
    return (reading.text if withheld is None else ""), reading.tokens_in, [withheld] if withheld else [], read, first


def requote(args) -> dict:
    """Score the saved answers with the first quote in place of the support sentence: the same
    selector, budget and generator give the same prompt and greedy answer, so only the quote is new."""
    from longrag.config import load_config
    from longrag.pipeline import Pipeline, _load_generator
    from longrag.reasoning import candidates_of, make_selector

    results = json.loads(OUT.read_text())
    config = load_config(None)
    pipe = Pipeline(config)
    count = _load_generator(config).count_tokens
    budget = results["settings"]["budget"]
    for name in ("cuad", "squality"):
        dataset, rows = questions(name, 1000)
        rows = {f"{name}/{qid}": (question, doc_id, reference) for qid, question, doc_id, reference in rows}
        store = build_index(pipe, dataset, {d for _, d, _ in rows.values()}, INDEXES / f"index-{name}")
        for key, record in results["records"].items():
            if record["dataset"] != name or "hybrid" not in record or key not in rows:
                continue
            question, doc_id, reference = rows[key]
            cell = record["hybrid"]
            candidates = candidates_of(store, doc_id)
            chosen = make_selector("hybrid", count_tokens=count, encoder=pipe.encoder).select(question, candidates, budget)
            quote = None if cell["declined"] else first_quote(pipe, question, candidates, chosen.evidence)
            answer = "" if cell["declined"] else clean_answer(cell["answer"])
            shown = f"{answer} {quote.text}" if quote else answer
            cell["quote"] = quote.text if quote else None
            cell["score_with_quote"] = token_f1(shown, reference) if name == "cuad" else rouge_l(shown, reference)
            print(key, f"{cell['score_with_support']:.3f} -> {cell['score_with_quote']:.3f}", flush=True)
    save_json(OUT, results)
    return results


def run(args) -> dict:
    from longrag.config import load_config
    from longrag.evaluation.runner import PeakMemory
    from longrag.pipeline import Pipeline
    from longrag.reasoning import NOT_FOUND, candidates_of, generate_answer, make_selector
    from longrag.reasoning.verdict import quotes_from

    results = json.loads(OUT.read_text()) if OUT.exists() and not args.fresh else {"records": {}}
    records = results["records"]
    config = load_config(None)
    args.budget = args.budget or config.ask.budget
    pipe = Pipeline(config)
    generator = pipe.generator
    count = generator.count_tokens
    min_relevance = config.ask.min_relevance
    work = []  # (name, index, row, store, selectors); the datasets alternate so a cut-short run has both
    for name, n in (("cuad", args.cuad), ("squality", args.squality)):
        if n <= 0:
            continue
        dataset, rows = questions(name, n)
        if name == "squality":
            results.setdefault("human", {})["squality"] = human_score(rows)
        store = build_index(pipe, dataset, {d for _, _, d, _ in rows}, INDEXES / f"index-{name}")
        selectors = {m: make_selector(m, count_tokens=count, encoder=pipe.encoder, generator=generator,
                                      first_stage=config.ask.first_stage, candidates=config.ask.candidates)
                     for m in {*args.methods, "hybrid"} - {"first", "pointing"}}
        selectors["first"] = make_selector("first", count_tokens=count)
        work.append([(name, i, row, store, selectors) for i, row in enumerate(rows)])
    order = [item for group in zip(*work) for item in group] if len(work) == 2 else work[0] if work else []
    if len(work) == 2:
        longer = max(work, key=len)
        order += longer[min(len(w) for w in work):]
    for name, i, (qid, question, doc_id, reference), store, selectors in order:
        key = f"{name}/{qid}"
        row = records.setdefault(key, {"dataset": name, "question": question})
        candidates = candidates_of(store, doc_id)
        query = pipe.encoder.encode_queries([question])[0]
        relevance = max(float(np.dot(c.vector, query)) for c in candidates)
        for method in args.methods:
            if method in row or (method == "xl3m" and i >= args.xl3m):
                continue
            started = time.perf_counter()
            with PeakMemory(interval=0.05) as memory:
                chosen = selectors["hybrid" if method == "pointing" else method].select(question, candidates, args.budget)
                if method == "pointing":  # what `ask` shows today: the span pointed at, or nothing when withheld
                    text, tokens_in, flags, reading, quote = point_answer(pipe, question, candidates, chosen.evidence)
                else:
                    text, tokens_in, _, flags = generate_answer(generator, question, chosen.evidence, args.max_new_tokens)
                declined = text == NOT_FOUND
                support = None if declined else (quote if method == "pointing"  # ranked once, by point_answer
                                                  else first_quote(pipe, question, candidates, chosen.evidence))
            seconds = time.perf_counter() - started
            answer = "" if declined else clean_answer(text)
            shown = f"{answer} {support.text}" if support else answer
            score, with_support = ((token_f1(answer, reference), token_f1(shown, reference)) if name == "cuad" else
                                   (rouge_l(answer, reference), rouge_l(shown, reference)))
            if method == "pointing":  # the span even where it is withheld: how good the readings are
                row["pointing_reading"] = token_f1(reading, reference) if name == "cuad" else rouge_l(reading, reference)
            row[method] = {"answer": text, "support": support.text if support else None, "score": score,
                           "score_with_support": with_support, "declined": declined,
                           "gate": relevance < min_relevance, "relevance": relevance,
                           "tokens_in": tokens_in, "seconds": seconds, "peak_rss_mb": memory.peak_mb,
                           "grounded": not declined and not flags}
            print(f"{name} {i + 1} {method:9s} score={score:.3f} with support={with_support:.3f} {seconds:5.1f}s "
                  f"{'DECLINED ' if declined else ''}{answer[:70]!r}", flush=True)
            save_json(OUT, results)
    results["versions"] = {"torch": version("torch"), "transformers": version("transformers"),
                           "sentence-transformers": version("sentence-transformers"), "bm25s": version("bm25s"),
                           "rouge-score": version("rouge-score")}
    if "stamp" in results and args.methods == ["pointing"]:  # rows added to an earlier run keep its stamp
        results.setdefault("stamps", {})["pointing"] = stamp(results["versions"])
    else:
        results["stamp"] = stamp(results["versions"])  # when and where it ran: a --table-only rewrite keeps it
    results["settings"] = {"budget": args.budget, "max_new_tokens": args.max_new_tokens,
                           "min_relevance": min_relevance,
                           "generator": f"{config.generator.model} ({generator.backend})"}
    save_json(OUT, results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuad", type=int, default=20, help="CUAD questions (seeded sample)")
    parser.add_argument("--squality", type=int, default=10, help="SQuALITY dev questions (seeded sample)")
    parser.add_argument("--methods", type=lambda v: v.split(","), default=["first", "embedding", "bm25", "hybrid"])
    parser.add_argument("--xl3m", type=int, default=0, help="questions per dataset for xl3m (slow)")
    parser.add_argument("--budget", type=int, help="evidence tokens (default: ask.budget)")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--fresh", action="store_true", help="ignore earlier results")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--requote", action="store_true", help="score the saved answers with the first quote")
    args = parser.parse_args()
    if args.requote:
        results = requote(args)
        replace_block("answer-quality", answer_quality_table(results), RESULTS)
        print(answer_quality_table(results))
        return
    if args.xl3m > 0 and "xl3m" not in args.methods:
        args.methods.append("xl3m")
    results = json.loads(OUT.read_text()) if args.table_only else run(args)
    replace_block("answer-quality", answer_quality_table(results), RESULTS)
    print(answer_quality_table(results))


if __name__ == "__main__":
    main()
