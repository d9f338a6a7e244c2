"""The BM25 name and heading fields (`search.name_weight`, `search.heading_weight`): what issue #35
asks to measure before they become the default.

1. `named`: questions that name their document (`benchmarks/questions/named_documents.jsonl`, 18,
   written by hand over the 133 SPDX licences in ../shared/data/licenses, read by the real
   loaders, so numbered clauses are headings). The folder is indexed once with the default config
   (the fields are counted at index time, weighted at search time), then every question is searched
   as `longrag search` does under each weighting in VARIANTS: hit@1, MRR@10, span@1 (the gold text
   inside the top hit's span), sentence@1 (the top hit's matched sentence inside the gold text, or
   the gold inside it), and the gold inside the evidence `longrag ask` picks at 2048 SmolLM2 tokens
   from the top `ask.documents` documents. (Search time per question is kept in the JSON; on a
   shared machine it is not a comparison.)
2. `cuad`: evidence recall inside the CUAD contracts, all questions, at 512 / 1024 / 2048 tokens
   (`evidence_recall.py`'s questions, candidates = every segment of the gold contract, and its
   recall rule). The contracts are indexed as their .txt files would be (numbered clauses become
   headings). Selectors: the shipped `hybrid` and `bm25`, and the same with each candidate's
   section headings as a BM25 field (HeadedBM25 below: the change this measures for
   longrag/reasoning/bm25_selector.py). Also document search over the same index under each
   weighting, scored as `longrag compare` scores CUAD (nDCG@10, span_hit@10): the compare harness
   indexes texts without headings, so there only the name field could act.
3. `--compare DIR`: document search nDCG@10 on QMSum / SQuALITY / CUAD (and CUAD's span_hit@10)
   from a `longrag compare` run of the defaults beside presets that switch the fields off:

    .venv/bin/longrag compare --dataset qmsum,squality,cuad \\
        --conditions hybrid_convex,benchmarks/presets/bm25_fields_off.yaml \\
        --out runs/named-fields-compare
    .venv/bin/python benchmarks/named_documents.py --compare runs/named-fields-compare
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from longrag.config import load_config  # noqa: E402
from longrag.documents.headers import heading_texts  # noqa: E402
from longrag.documents.locations import numbered_clauses  # noqa: E402
from longrag.evaluation.data_files import data_root  # noqa: E402
from longrag.evaluation.metrics import evaluate, span_hits  # noqa: E402
from longrag.generation import TransformersGenerator  # noqa: E402
from longrag.lexical import bm25_scores  # noqa: E402
from longrag.pipeline import Pipeline  # noqa: E402
from longrag.reasoning import (EXTEND_TOKENS, BM25Selector, EmbeddingSelector, HybridSelector,  # noqa: E402
                               candidates_of, covers, make_selector)
from longrag.reasoning.bm25_selector import STEMMED  # noqa: E402
from longrag.types import Document  # noqa: E402

from evidence_recall import LOADERS, recall  # noqa: E402
from readme_tables import RESULTS, markdown_table, replace_block, save_json, stamp  # noqa: E402

QUESTIONS = ROOT / "benchmarks" / "questions" / "named_documents.jsonl"
LICENCES = data_root() / "licenses"
WORK = ROOT / "runs" / "named_documents"
OUT = ROOT / "benchmarks" / "results" / "named_documents.json"
BUDGETS = (512, 1024, 2048)
# (name_weight, heading_weight) by label
VARIANTS = {"off": (0.0, 0.0), "name 1": (1.0, 0.0), "name 2": (2.0, 0.0), "name 2.5": (2.5, 0.0),
            "name 3": (3.0, 0.0), "name 4": (4.0, 0.0), "heading 0.5": (0.0, 0.5), "heading 1": (0.0, 1.0),
            "name 2.5, heading 0.5": (2.5, 0.5)}


def gold_span(text: str, gold: str) -> tuple[int, int]:
    match = re.search(r"\s+".join(map(re.escape, gold.split())), text)
    if not match:
        raise SystemExit(f"gold text not in its document: {gold[:60]!r}")
    return match.span()


def weighted(name: float, heading: float) -> dict:
    return {"search": {"name_weight": name, "heading_weight": heading}}


def named_documents(count, variants: dict) -> dict:
    questions = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    target = WORK / "licences"
    started = time.perf_counter()
    Pipeline.from_config(None).index([LICENCES], index_dir=target, progress=False)  # incremental: reused when built
    out = {"index_seconds": round(time.perf_counter() - started, 1)}
    for label, (name, heading) in variants.items():
        pipe = Pipeline.load(target, config=weighted(name, heading))
        config, store = load_config(weighted(name, heading)), pipe.store
        selector = make_selector(config.ask.selector, count_tokens=count, encoder=pipe.encoder)
        rows, seconds = [], []
        for q in questions:
            began = time.perf_counter()
            hits = pipe.search(q["question"], k=10)
            seconds.append(time.perf_counter() - began)
            ranks = [i for i, h in enumerate(hits, 1) if h.doc_id == q["doc"]]
            text = store.document_row(q["doc"])["text"]
            a, b = gold_span(text, q["gold"])
            top = hits[0]
            s, e = top.sentence
            mine = top.doc_id == q["doc"]
            row = {"id": q["id"], "top": top.doc_id, "hit1": mine, "rr": 1 / ranks[0] if ranks else 0.0,
                   "span1": mine and covers([(top.start, top.end)], a, b, text),
                   "sentence1": mine and (a <= s and e <= b or s <= a and b <= e)}
            candidates = [c for h in hits[:config.ask.documents] for c in candidates_of(store, h.doc_id)]
            chosen = selector.fit(selector.rank(q["question"], candidates), 2048).evidence
            row["2048"] = covers([c for c in chosen if c.doc_id == q["doc"]], a, b, text)
            rows.append(row)
        out[label] = {"weights": [name, heading], "rows": rows, "search_ms": 1000 * float(np.median(seconds))}
        print(label, f"hit@1 {sum(r['hit1'] for r in rows)}/{len(rows)}",
              f"MRR {np.mean([r['rr'] for r in rows]):.2f}", [r["top"] for r in rows if not r["hit1"]], flush=True)
    return out


class HeadedBM25(BM25Selector):
    """BM25Selector with each candidate's section headings (its document's `headings` metadata) as
    a BM25 field of weight `weight`: what longrag/reasoning/bm25_selector.py would do with them."""

    def __init__(self, count_tokens, store, weight: float = 1.0, extend_tokens: int = 0):
        super().__init__(count_tokens, extend_tokens)
        self.store, self.weight = store, weight

    def rank(self, question, candidates):
        headings, by_document = [], {}
        for c in candidates:
            if c.doc_id not in by_document:
                spans = [(x.start, x.end) for x in candidates if x.doc_id == c.doc_id]
                metadata = self.store.document_metadata(c.doc_id)
                by_document[c.doc_id] = dict(zip(spans, heading_texts(metadata.get("headings") or [], spans)))
            headings.append(by_document[c.doc_id][(c.start, c.end)])
        scores = bm25_scores(question, [c.text for c in candidates], STEMMED, fields={"heading": headings},
                             weights={"heading": self.weight})
        order = np.argsort(-scores, kind="stable")
        return [(candidates[i], float(scores[i])) for i in order]


def cuad_evidence(count, variants: dict) -> dict:
    dataset = LOADERS["cuad"]()
    qids = sorted(dataset.passages)
    pipe = Pipeline.from_config(None)
    documents = [Document(d, f"{d}.txt", text, hashlib.sha256(text.encode()).hexdigest(),
                          {"headings": numbered_clauses(text)})  # as the .txt loader reads the contract
                 for d, text in sorted(dataset.corpus.items())]
    pipe.index_documents(documents, WORK / "cuad", progress=False)
    store = pipe.store
    embedding = EmbeddingSelector(pipe.encoder, count)
    selectors = {"bm25": BM25Selector(count, EXTEND_TOKENS), "bm25 + headings": HeadedBM25(count, store, 1.0, EXTEND_TOKENS),
                 "hybrid": make_selector("hybrid", count_tokens=count, encoder=pipe.encoder),
                 "hybrid + headings": HybridSelector([embedding, HeadedBM25(count, store)], count, EXTEND_TOKENS)}
    out = {"questions": len(qids), "documents": len(documents),
           "with_headings": sum(bool(d.metadata["headings"]) for d in documents), "search": {}}
    for label, (name, heading) in variants.items():  # document search over the contracts, as `longrag compare` scores it
        searcher = Pipeline.load(WORK / "cuad", config=weighted(name, heading))
        run, spans = {}, {}
        for qid, query in dataset.queries.items():
            hits = searcher.search(query, k=len(documents))
            run[qid] = {h.doc_id: float(h.score) for h in hits}
            spans[qid] = {h.doc_id: (h.start, h.end) for h in hits[:10]}
        out["search"][label] = {"ndcg@10": evaluate(dataset.qrels, run, ["ndcg@10"])["ndcg@10"],
                                "span_hit@10": span_hits(dataset, spans)}
        print("cuad search", label, out["search"][label], flush=True)
    for name, selector in selectors.items():
        scores = {str(b): [] for b in BUDGETS}
        for qid in qids:
            spans = dataset.passages[qid]
            candidates = [c for d in sorted({d for d, _, _ in spans}) for c in candidates_of(store, d)]
            ranked = selector.rank(dataset.queries[qid], candidates)
            for b in BUDGETS:
                scores[str(b)].append(recall(selector.fit(ranked, b).evidence, spans, dataset.corpus))
        out[name] = {b: float(np.mean(v)) for b, v in scores.items()}
        print("cuad", name, out[name], flush=True)
    return out


def compare_run(folder: Path) -> dict:
    """Per dataset and condition: nDCG@10, CUAD's span_hit@10, index bytes (a compare run's results.json)."""
    out = {}
    for cell in json.loads((folder / "results.json").read_text()):
        out.setdefault(cell["dataset"], {})[cell["condition"]] = {k: cell.get(k) for k in ("ndcg@10", "span_hit@10")}
    return out


def table(results: dict) -> str:
    lines = []
    named = results.get("named")
    if named:
        rows = []
        for label in (k for k in named if k != "index_seconds"):
            r, n = named[label]["rows"], len(named[label]["rows"])
            rows.append([label, n, f"{sum(x['hit1'] for x in r) / n:.0%}", f"{sum(x['rr'] for x in r) / n:.2f}",
                         f"{sum(x['span1'] for x in r) / n:.0%}", f"{sum(x['sentence1'] for x in r) / n:.0%}",
                         f"{sum(x['2048'] for x in r) / n:.0%}"])
        lines += [markdown_table(["licences (133): name, heading weight", "questions", "hit@1", "MRR@10", "span@1",
                                  "sentence@1", "evidence@2048"], rows), ""]
    cuad = results.get("cuad")
    if cuad:
        rows = [[name, cuad["questions"], *(f"{100 * cuad[name][str(b)]:.1f}%" for b in BUDGETS)]
                for name in ("bm25", "bm25 + headings", "hybrid", "hybrid + headings") if name in cuad]
        lines += [markdown_table(["CUAD evidence recall (gold contract's segments)", "questions",
                                  *(f"recall@{b}" for b in BUDGETS)], rows), "",
                  f"{cuad['with_headings']} of {cuad['documents']} CUAD contracts have numbered-clause headings.", ""]
        rows = [[label, f"{100 * cells['ndcg@10']:.1f}", f"{100 * cells['span_hit@10']:.1f}"]
                for label, cells in cuad.get("search", {}).items()]
        if rows:
            lines += [markdown_table(["CUAD document search, contracts with headings: name, heading weight",
                                      "nDCG@10", "span_hit@10"], rows), ""]
    compared = results.get("compare")
    if compared:
        conditions = sorted({c for cells in compared.values() for c in cells})
        rows = []
        for dataset, cells in sorted(compared.items()):
            for metric in ("ndcg@10", "span_hit@10") if dataset.startswith("cuad") else ("ndcg@10",):
                rows.append([dataset, metric, *(f"{100 * cells[c][metric]:.1f}" if c in cells and cells[c][metric]
                                                is not None else "–" for c in conditions)])
        lines += [markdown_table(["document search (`longrag compare`)", "metric", *conditions], rows), ""]
    lines.append(stamp(results.get("versions", {})))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="named,cuad", help="named, cuad (comma-separated)")
    parser.add_argument("--compare", type=Path, help="a finished `longrag compare` run of the conditions")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    if not args.table_only:
        count = TransformersGenerator.from_settings("SmolLM2-135M-Instruct").count_tokens
        parts = args.parts.split(",")
        if "named" in parts:
            results["named"] = named_documents(count, VARIANTS)
            save_json(OUT, results)
        if "cuad" in parts:
            results["cuad"] = cuad_evidence(count, VARIANTS)
        results["versions"] = {"torch": version("torch"), "faiss-cpu": version("faiss-cpu"), "bm25s": version("bm25s")}
        save_json(OUT, results)
    if args.compare:
        results["compare"] = compare_run(args.compare)
        save_json(OUT, results)
    replace_block("named-documents", table(results), RESULTS)
    print(table(results))


if __name__ == "__main__":
    main()
