"""Sentence-level against segment-level evidence: evidence recall at 256/512/1024/2048 tokens on CUAD
(all 74 questions) and QMSum (all specific queries).

Candidates per question are all segments of its gold document, as in evidence_recall.py (the same
indexes and the same strict recall: a gold span counts when it lies entirely inside the selected
evidence, neighbouring blocks joined; `overlap` gives partial credit). Budgets count tokens of the
default generator (qwen2.5-0.5b). `hybrid` is today's segment-level evidence (RRF of embedding and
BM25, each segment widened to whole sentences); `sentences@P` ranks the sentences of the P best
hybrid segments and fills the budget with the best sentences and their neighbours.

    .venv/bin/python benchmarks/sentence_evidence.py            # writes results/sentence_evidence.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from evidence_recall import INDEXES, LOADERS, ROOT, build_index, overlap, recall  # noqa: E402  (sets sys.path, offline)

from longrag.config import load_config  # noqa: E402
from longrag.pipeline import Pipeline, _load_generator  # noqa: E402
from longrag.reasoning import candidates_of, make_selector  # noqa: E402

BUDGETS = (256, 512, 1024, 2048)
OUT = ROOT / "benchmarks" / "results" / "sentence_evidence.json"


def fill(fit, ranked, spans, corpus) -> dict:
    out = {}
    for b in BUDGETS:
        chosen = fit(ranked, b).evidence
        out[f"recall_{b}"], out[f"overlap_{b}"] = recall(chosen, spans, corpus), overlap(chosen, spans)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="cuad,qmsum")
    parser.add_argument("--pools", default="12", help="segments whose sentences are ranked")
    parser.add_argument("--neighbours", default="1", help="sentences kept on each side of a chosen one")
    parser.add_argument("--limit", type=int, default=10_000)
    args = parser.parse_args()
    config = load_config(None)
    pipe = Pipeline(config)
    count = _load_generator(config).count_tokens
    methods = {"hybrid": make_selector("hybrid", count_tokens=count, encoder=pipe.encoder)}
    for pool in map(int, args.pools.split(",")):
        for n in map(int, args.neighbours.split(",")):
            selector = make_selector("sentences", count_tokens=count, encoder=pipe.encoder, first_stage="hybrid", pool=pool)
            selector.neighbours = n
            methods[f"sentences@{pool}" + (f"±{n}" if n != 1 else "")] = selector
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    results.update({"budgets": BUDGETS, "tokenizer": config.generator.model})
    results.setdefault("datasets", {})
    for name in args.datasets.split(","):
        dataset = LOADERS[name]().limit(args.limit, seed=0)
        qids = sorted(dataset.passages)
        store = build_index(pipe, dataset, {d for q in qids for d, _, _ in dataset.passages[q]}, INDEXES / f"index-{name}")
        rows = {m: [] for m in methods}
        for i, qid in enumerate(qids):
            question, spans = dataset.queries[qid], dataset.passages[qid]
            candidates = [c for d in sorted({d for d, _, _ in spans}) for c in candidates_of(store, d)]
            shared = {}  # sentence selectors that differ only in neighbours rank alike: rank once
            for m, selector in methods.items():
                t = time.perf_counter()
                key = (type(selector), getattr(selector, "pool", None))
                if key not in shared:
                    shared[key] = selector.rank(question, candidates)
                ranked = shared[key]
                row = fill(selector.fit, ranked, spans, dataset.corpus)
                row["seconds"] = time.perf_counter() - t
                rows[m].append(row)
            if i % 20 == 0:
                print(name, i, len(qids), flush=True)
        results["datasets"].setdefault(name, {}).update({
            m: {"questions": len(r), "seconds": round(statistics.mean(x["seconds"] for x in r), 3),
                **{f"recall_{b}": round(100 * statistics.mean(x[f"recall_{b}"] for x in r), 1) for b in BUDGETS},
                **{f"overlap_{b}": round(100 * statistics.mean(x[f"overlap_{b}"] for x in r), 1) for b in BUDGETS}}
            for m, r in rows.items()})
        print(json.dumps(results["datasets"][name], indent=1), flush=True)
        OUT.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
