"""Evidence recall at a token budget, per selector, on CUAD and QMSum.

For each question the candidates are all segments of its gold document (CUAD: the contract the
question is asked of; QMSum: the meeting), as `longrag index` cuts and encodes them (default
config: MiniLM, 256-token balanced segments). Each selector fills a budget of generator
(SmolLM2) tokens; a gold span counts as recalled when it lies entirely inside the selected
evidence (neighbouring selected segments joined). Recall = mean over questions of the fraction
of its gold spans recalled (CUAD has one span per question; QMSum one or more turn ranges).

Selectors: embedding, bm25, hybrid (each kept segment widened to whole sentences, at most
`EXTEND_TOKENS` per side, as `longrag ask` does), xl3m-ll / xl3m-ne (XL3M with log-likelihood / neg-entropy
certainty, both from the same generator pass), rerank (the pointwise LLM reranker: log p("Yes") of
`--reranker`, llama.cpp where it applies, over the same shortlist as xl3m), alr2, and the baselines first (the document's
first N tokens) and random. Rankings are computed once per question and fitted to every
budget; alr2 generates per budget. xl3m and alr2 are slow on CPU, so they run on the first
`--slow-limit` questions of the same seeded sample (the table says how many).

Also measures the "not found" gate: the best question–segment cosine over the CUAD index for
CUAD questions (answerable there) and for QMSum questions (meeting questions: not answerable from
contracts).

    .venv/bin/python benchmarks/evidence_recall.py --limit 40 --slow-limit 12
    .venv/bin/python benchmarks/evidence_recall.py --table-only     # rewrite the README block
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

from longrag.config import load_config, with_overrides  # noqa: E402
from longrag.evaluation.datasets import cuad, qmsum  # noqa: E402
from longrag.generation import TransformersGenerator, load_generator  # noqa: E402
from longrag.pipeline import Pipeline  # noqa: E402
from longrag.reasoning import (EXTEND_TOKENS, RerankSelector, XL3MSelector, candidates_of, covers, fit_budget,  # noqa: E402
                               make_selector)
from longrag.types import Document  # noqa: E402

from readme_tables import RESULTS, markdown_table, replace_block, save_json, stamp  # noqa: E402

BUDGETS = (512, 1024, 2048, 4096)
CHEAP = ("first", "random", "embedding", "bm25", "hybrid")
OUT = ROOT / "benchmarks" / "results" / "evidence_recall.json"
INDEXES = ROOT / "runs" / "evidence_recall"  # the benchmark's own indexes (rebuilt when missing)
LOADERS = {"cuad": cuad, "qmsum": qmsum}


def build_index(pipe: Pipeline, dataset, doc_ids: set[str], where: Path):
    documents = [Document(d, d, dataset.corpus[d], hashlib.sha256(dataset.corpus[d].encode()).hexdigest())
                 for d in sorted(doc_ids)]
    pipe.index_documents(documents, where, progress=False)  # incremental: a rerun re-encodes nothing
    return pipe.store


def recall(evidence, spans, corpus) -> float:
    hits = [covers([e for e in evidence if e.doc_id == d], a, b, corpus[d]) for d, a, b in spans]
    return sum(hits) / len(hits)


def overlap(evidence, spans) -> float:
    """Mean fraction of each gold span's characters inside the evidence (partial credit)."""
    parts = []
    for d, a, b in spans:
        inside = sum(max(0, min(b, e.end) - max(a, e.start)) for e in evidence if e.doc_id == d)
        parts.append(min(1.0, inside / max(1, b - a)))
    return sum(parts) / len(parts)


def fill(fit, ranked, spans, corpus) -> dict:
    """Recall (strict) and overlap per budget for one ranking; `fit(ranked, budget)` → Selection."""
    out = {}
    for b in BUDGETS:
        chosen = fit(ranked, b).evidence
        out[str(b)] = recall(chosen, spans, corpus)
        out[f"overlap_{b}"] = overlap(chosen, spans)
    return out


def run(args) -> dict:
    results = json.loads(OUT.read_text()) if OUT.exists() and not args.fresh else {"records": {}}
    config = load_config(None)
    pipe = Pipeline(config)
    generator = TransformersGenerator.from_settings("SmolLM2-135M-Instruct")
    reranker = None
    if "rerank" in args.selectors.split(","):
        reranker = load_generator(with_overrides(config, generator={"model": args.reranker}).generator)
    count = generator.count_tokens
    selectors = args.selectors.split(",")
    records = results["records"]
    for name in args.datasets.split(","):
        dataset = LOADERS[name]().limit(args.limit, seed=0)
        qids = sorted(dataset.passages)
        doc_ids = {d for q in qids for d, _, _ in dataset.passages[q]}
        started = time.perf_counter()
        store = build_index(pipe, dataset, doc_ids, INDEXES / f"index-{name}")
        print(f"{name}: indexed {len(doc_ids)} documents in {time.perf_counter() - started:.0f} s", flush=True)
        cheap = {s: make_selector(s, count_tokens=count, encoder=pipe.encoder) for s in CHEAP}
        xl3m = XL3MSelector(generator, cheap[args.first_stage], candidates=args.candidates)
        alr2 = make_selector("alr2", count_tokens=count, encoder=pipe.encoder, generator=generator,
                             first_stage=args.first_stage)
        for i, qid in enumerate(qids):
            question, spans = dataset.queries[qid], dataset.passages[qid]
            candidates = [c for d in sorted({d for d, _, _ in spans}) for c in candidates_of(store, d)]
            key = f"{name}/{qid}"
            row = records.setdefault(key, {"dataset": name, "gold_tokens": [count(dataset.corpus[d][a:b]) for d, a, b in spans]})
            for s in selectors:
                if s in CHEAP:
                    t = time.perf_counter()
                    ranked = cheap[s].rank(question, candidates)
                    row[s] = fill(cheap[s].fit, ranked, spans, dataset.corpus)
                    row[s]["seconds"] = time.perf_counter() - t
            if "xl3m" in selectors and i < args.slow_limit and "xl3m-ll" not in row:
                t = time.perf_counter()
                first = cheap[args.first_stage].rank(question, candidates)
                shortlist = [c for c, _ in first[: args.candidates]]
                scores = xl3m.certainties(question, shortlist)
                seconds = time.perf_counter() - t
                for variant, attr in (("xl3m-ll", "log_likelihood"), ("xl3m-ne", "neg_entropy")):
                    values = [getattr(x, attr) for x in scores]
                    reranked = sorted(zip(shortlist, values), key=lambda item: -item[1])
                    ranked = reranked + [(c, -1e9 - j) for j, (c, _) in enumerate(first[args.candidates:])]
                    row[variant] = fill(lambda r, b: fit_budget(r, b, count), ranked, spans, dataset.corpus)
                    row[variant]["seconds"] = seconds
                row["xl3m_first_stage"] = args.first_stage  # alr2 uses the same first stage
            if reranker is not None and i < args.slow_limit and "rerank" not in row:
                t = time.perf_counter()
                ranked = RerankSelector(reranker, cheap[args.first_stage], candidates=args.candidates).rank(question, candidates)
                row["rerank"] = fill(lambda r, b: fit_budget(r, b, count), ranked, spans, dataset.corpus)
                row["rerank"]["seconds"] = time.perf_counter() - t
                row["rerank_model"] = f"{args.reranker} ({reranker.backend})"
                row["xl3m_first_stage"] = args.first_stage
            if "alr2" in selectors and i < args.alr2_limit and "alr2" not in row:
                row["alr2"], t = {}, time.perf_counter()
                for b in args.alr2_budgets:
                    chosen = alr2.select(question, candidates, b)
                    row["alr2"][str(b)] = recall(chosen.evidence, spans, dataset.corpus)
                    row["alr2"][f"overlap_{b}"] = overlap(chosen.evidence, spans)
                    row["alr2"][f"quotes_{b}"] = [len(chosen.evidence), len(chosen.unverified)]
                row["alr2"]["seconds"] = time.perf_counter() - t
            print(f"{name} {i + 1}/{len(qids)} " + " ".join(
                f"{s}={row[s]['2048']:.2f}" for s in row if isinstance(row[s], dict) and "2048" in row[s]), flush=True)
            save_json(OUT, results)
        if args.not_found and name == "cuad":
            results["not_found"] = not_found_gate(pipe, store)
            save_json(OUT, results)
    results["versions"] = {"torch": version("torch"), "transformers": version("transformers"),
                           "sentence-transformers": version("sentence-transformers"), "bm25s": version("bm25s"),
                           "rapidfuzz": version("rapidfuzz")}
    results["settings"] = {"candidates": args.candidates, "first_stage": args.first_stage, "limit": args.limit}
    save_json(OUT, results)
    return results


def not_found_gate(pipe: Pipeline, store) -> dict:
    """Best question–segment cosine over the CUAD index: CUAD questions vs QMSum meeting questions."""
    def best(questions):
        vectors = pipe.encoder.encode_queries(questions)
        return [store.segment_hits(vector, 1)[0][0] for vector in vectors]

    answerable = best(sorted(set(cuad().queries.values())))
    unanswerable = best(sorted(set(qmsum().queries.values())))
    return {"answerable": answerable, "unanswerable": unanswerable}


def table(results: dict) -> str:
    records = results["records"]
    order = ("first", "random", "embedding", "bm25", "hybrid", "xl3m-ll", "xl3m-ne", "rerank", "alr2")
    rows = []
    for name in ("cuad", "qmsum"):
        for s in order:
            cells = [r[s] for r in records.values() if r["dataset"] == name and s in r]
            if not cells:
                continue
            if s in ("xl3m-ll", "rerank", "alr2"):  # the first stage on exactly the slow selector's questions, for a fair pair
                stage = next((r["xl3m_first_stage"] for r in records.values() if "xl3m_first_stage" in r),
                             results.get("settings", {}).get("first_stage"))
                same = [r[stage] for r in records.values() if r["dataset"] == name and s in r and stage in r]
                if same:
                    gold = [t for r in records.values() if r["dataset"] == name for t in r["gold_tokens"]]
                    rows.append([f"{name} (gold span median {int(np.median(gold))} tok)", f"{stage}, {s}'s questions",
                                 len(same)] + [_cell(same, b) for b in BUDGETS]
                                + [f"{np.mean([c['seconds'] for c in same]):.2f}"])
            gold = [t for r in records.values() if r["dataset"] == name for t in r["gold_tokens"]]
            row = [f"{name} (gold span median {int(np.median(gold))} tok)", s, len(cells)]
            row += [_cell(cells, b) for b in BUDGETS]
            row.append(f"{np.mean([c['seconds'] for c in cells]):.2f}")
            rows.append(row)
    header = ["dataset", "selector", "questions"] + [f"recall@{b}" for b in BUDGETS] + ["s/question"]
    settings = results.get("settings", {})
    first_stage = next((r["xl3m_first_stage"] for r in records.values() if "xl3m_first_stage" in r),
                       settings.get("first_stage"))
    body = markdown_table(header, rows)
    body += ("\n\nCells: strict recall (whole gold span inside the evidence), and in brackets the mean fraction "
             "of gold characters inside it.")
    body += (f" Gold span inside the selected evidence (budget in SmolLM2 tokens; candidates = all 256-token "
             f"segments of the gold document; embedding, bm25 and hybrid widen each kept segment to whole "
             f"sentences, at most {EXTEND_TOKENS} tokens a side, and the widened text counts against the budget). xl3m: top {settings.get('candidates')} of the "
             f"{first_stage} ranking re-ranked by generator certainty (ll = log-likelihood, "
             "ne = neg-entropy of the question given the segment); rerank: the same shortlist re-ranked by "
             f"log p(\"Yes\") of {_reranker(records)}; xl3m/rerank/alr2 run on fewer questions (column "
             "`questions`) because each question costs generator passes on 2 CPU cores.")
    gate = results.get("not_found")
    if gate:
        body += "\n\n" + gate_table(gate)
    return body + "\n\n" + stamp(results.get("versions", {}))


def _reranker(records: dict) -> str:
    return next((r["rerank_model"] for r in records.values() if "rerank_model" in r), "the reranker")


def _cell(cells: list[dict], budget: int) -> str:
    """Strict recall, and the mean gold-character overlap in brackets; – where not measured."""
    if not all(str(budget) in c for c in cells):
        return "–"
    text = f"{100 * np.mean([c[str(budget)] for c in cells]):.0f}%"
    if all(f"overlap_{budget}" in c for c in cells):
        text += f" ({100 * np.mean([c[f'overlap_{budget}'] for c in cells]):.0f}%)"
    return text


def gate_table(gate: dict, thresholds=(0.2, 0.25, 0.3, 0.35, 0.4)) -> str:
    a, u = np.array(gate["answerable"]), np.array(gate["unanswerable"])
    rows = [[t, f"{100 * np.mean(u < t):.0f}%", f"{100 * np.mean(a < t):.0f}%"] for t in thresholds]
    return ("Not-found gate (best question–segment cosine below `ask.min_relevance` → \"not found\"), over an "
            f"index of the CUAD contracts: {len(u)} QMSum meeting questions (no answer there) vs {len(a)} CUAD "
            "questions (answer there):\n\n"
            + markdown_table(["min_relevance", "unanswerable → not found", "answerable → not found (wrong)"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="cuad,qmsum")
    parser.add_argument("--selectors", default="first,random,embedding,bm25,hybrid,xl3m,rerank,alr2")
    parser.add_argument("--reranker", default="qwen2.5-0.5b", help="generator of the rerank selector")
    parser.add_argument("--limit", type=int, default=40, help="questions per dataset (seeded sample)")
    parser.add_argument("--slow-limit", type=int, default=12, help="questions per dataset for xl3m and rerank")
    parser.add_argument("--alr2-limit", type=int, default=5, help="questions per dataset for alr2")
    parser.add_argument("--alr2-budgets", type=lambda v: [int(x) for x in v.split(",")], default=list(BUDGETS),
                        help="budgets alr2 runs at (each is a generation)")
    parser.add_argument("--candidates", type=int, default=16, help="xl3m shortlist size M")
    parser.add_argument("--first-stage", default="hybrid", choices=("embedding", "bm25", "hybrid"))
    parser.add_argument("--not-found", action="store_true", help="also measure the not-found gate")
    parser.add_argument("--fresh", action="store_true", help="ignore earlier results")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    results = json.loads(OUT.read_text()) if args.table_only else run(args)
    replace_block("evidence-recall", table(results), RESULTS)
    print(table(results))


if __name__ == "__main__":
    main()
