"""Contextual headers (`segmenter.headers`) on vs off: what issue #28 asks to measure before the
default may change.

1. Questions that name their document (`benchmarks/questions/named_documents.jsonl`, written by
   hand over the 133 SPDX licences in ../shared/data/licenses, read by the real loaders): the
   folder is indexed twice (off, then on, one after the other in this process: the time ratio is
   the cost), and each question is searched as `longrag search` does (hit@1, MRR@10; span@1 = the
   gold text inside the top hit's span) and its evidence picked as `longrag ask` does (the
   `ask.selector` over the segments of the top `ask.documents` documents; recall = gold text inside
   the evidence at 1024 / 2048 SmolLM2 tokens).
2. Evidence recall on CUAD and QMSum (`evidence_recall.py`'s questions, candidates and rule), for
   the embedding and hybrid selectors, whose segment vectors the header changes.
3. Document search nDCG@10 on QMSum / SQuALITY / CUAD: a `longrag compare` run of
   `hybrid_convex` (the defaults) beside the preset with `segmenter.headers: true`, read from its
   results.json (`--compare runs/headers-compare`).

Nothing is tuned here: the questions were written before the first run, and the header's form
(file name · title, then the section path) is fixed in longrag/documents/headers.py.

    .venv/bin/longrag compare --dataset qmsum,squality,cuad --conditions hybrid_convex,headers_on.yaml --out runs/headers-compare
    .venv/bin/python benchmarks/contextual_headers.py --compare runs/headers-compare
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from longrag.config import load_config  # noqa: E402
from longrag.generation import TransformersGenerator  # noqa: E402
from longrag.pipeline import Pipeline  # noqa: E402
from longrag.reasoning import candidates_of, covers, make_selector  # noqa: E402

from evidence_recall import INDEXES as EVIDENCE_INDEXES, LOADERS, build_index, recall  # noqa: E402
from readme_tables import RESULTS, markdown_table, replace_block, save_json, stamp  # noqa: E402

QUESTIONS = ROOT / "benchmarks" / "questions" / "named_documents.jsonl"
LICENCES = ROOT.parent / "shared" / "data" / "licenses"
WORK = ROOT / "runs" / "contextual_headers"
OUT = ROOT / "benchmarks" / "results" / "contextual_headers.json"
BUDGETS = (1024, 2048)
SETTINGS = {"off": {"segmenter": {"headers": False}}, "on": {"segmenter": {"headers": True}}}


def gold_span(text: str, gold: str) -> tuple[int, int]:
    match = re.search(r"\s+".join(map(re.escape, gold.split())), text)
    if not match:
        raise SystemExit(f"gold text not in its document: {gold[:60]!r}")
    return match.span()


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def named_documents(count) -> dict:
    questions = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    out = {}
    for name, overrides in SETTINGS.items():
        target = WORK / f"licences-{name}"
        shutil.rmtree(target, ignore_errors=True)
        pipe = Pipeline.from_config(overrides)
        pipe.encoder  # loaded before the clock starts: the time is the indexing's
        started = time.perf_counter()
        report = pipe.index([LICENCES], index_dir=target, progress=False)
        seconds = time.perf_counter() - started
        config, store = load_config(overrides), pipe.store
        selector = make_selector(config.ask.selector, count_tokens=count, encoder=pipe.encoder)
        rows = []
        for q in questions:
            hits = pipe.search(q["question"], k=10)
            ranks = [i for i, h in enumerate(hits, 1) if h.doc_id == q["doc"]]
            text = store.document_row(q["doc"])["text"]
            a, b = gold_span(text, q["gold"])
            top = hits[0]
            row = {"id": q["id"], "top": top.doc_id, "hit1": top.doc_id == q["doc"], "rr": 1 / ranks[0] if ranks else 0.0,
                   "span1": top.doc_id == q["doc"] and covers([(top.start, top.end)], a, b, text)}
            candidates = [c for h in hits[:config.ask.documents] for c in candidates_of(store, h.doc_id)]
            ranked = selector.rank(q["question"], candidates)
            for budget in BUDGETS:
                chosen = selector.fit(ranked, budget).evidence
                row[str(budget)] = covers([e for e in chosen if e.doc_id == q["doc"]], a, b, text)
            rows.append(row)
        out[name] = {"seconds": round(seconds, 1), "bytes": folder_bytes(target), "documents": report.documents,
                     "segments": report.segments, "rows": rows}
        print(name, {k: v for k, v in out[name].items() if k != "rows"},
              f"hit@1 {sum(r['hit1'] for r in rows)}/{len(rows)}", flush=True)
    return out


def evidence(count, limit: int) -> dict:
    """evidence_recall.py's measurement for the selectors whose vectors the header changes."""
    out = {}
    for name, overrides in SETTINGS.items():
        pipe = Pipeline.from_config(overrides)
        selectors = {s: make_selector(s, count_tokens=count, encoder=pipe.encoder) for s in ("embedding", "hybrid")}
        for dataset_name in ("cuad", "qmsum"):
            dataset = LOADERS[dataset_name]().limit(limit, seed=0)
            qids = sorted(dataset.passages)
            doc_ids = {d for q in qids for d, _, _ in dataset.passages[q]}
            where = WORK / f"{dataset_name}-{name}"
            if name == "off" and not where.exists() and (EVIDENCE_INDEXES / f"index-{dataset_name}").exists():
                shutil.copytree(EVIDENCE_INDEXES / f"index-{dataset_name}", where)  # evidence_recall.py's vectors: reused
            store = build_index(pipe, dataset, doc_ids, where)
            for s, selector in selectors.items():
                scores = {str(b): [] for b in BUDGETS}
                for qid in qids:
                    question, spans = dataset.queries[qid], dataset.passages[qid]
                    candidates = [c for d in sorted({d for d, _, _ in spans}) for c in candidates_of(store, d)]
                    ranked = selector.rank(question, candidates)
                    for b in BUDGETS:
                        scores[str(b)].append(recall(selector.fit(ranked, b).evidence, spans, dataset.corpus))
                out[f"{dataset_name}/{s}/{name}"] = {b: sum(v) / len(v) for b, v in scores.items()} | {"questions": len(qids)}
                print(dataset_name, s, name, out[f"{dataset_name}/{s}/{name}"], flush=True)
    return out


def compare_run(folder: Path) -> dict:
    """Per dataset, the two conditions' nDCG@10, CUAD's headline span_hit@10 and index bytes, from a
    compare run's results.json (one cell per condition × dataset)."""
    out = {}
    for cell in json.loads((folder / "results.json").read_text()):
        name = "on" if "headers" in cell["condition"] else "off"
        out.setdefault(cell["dataset"], {})[name] = {k: cell.get(k) for k in ("ndcg@10", "span_hit@10", "index_bytes")}
    return out


def table(results: dict) -> str:
    lines = []
    named = results.get("named")
    if named:
        rows = []
        for name in ("off", "on"):
            r, n = named[name]["rows"], len(named[name]["rows"])
            rows.append([f"headers {name}", n, f"{sum(x['hit1'] for x in r) / n:.0%}", f"{sum(x['rr'] for x in r) / n:.2f}",
                         f"{sum(x['span1'] for x in r) / n:.0%}",
                         *(f"{sum(x[str(b)] for x in r) / n:.0%}" for b in BUDGETS)])
        lines += [markdown_table(["licences (133), questions naming their document", "questions", "hit@1", "MRR@10",
                                  "span@1", "evidence@1024", "evidence@2048"], rows), ""]
        off, on = named["off"], named["on"]
        lines += [f"Indexing the 133 licences: {off['seconds']} s off, {on['seconds']} s on (×{on['seconds'] / off['seconds']:.2f}, "
                  f"one run after the other); index {off['bytes']:,} → {on['bytes']:,} bytes "
                  f"(×{on['bytes'] / off['bytes']:.3f}); {off['segments']} segments either way.", ""]
    if results.get("evidence"):
        ev = results["evidence"]
        rows = [[key.rsplit("/", 1)[0], ev[key]["questions"],
                 *(f"{ev[key][str(b)]:.0%} → {ev[key.replace('/off', '/on')][str(b)]:.0%}" for b in BUDGETS)]
                for key in sorted(ev) if key.endswith("/off")]
        lines += [markdown_table(["evidence recall (gold document's segments)", "questions", "recall@1024 off → on",
                                  "recall@2048 off → on"], rows), ""]
    if results.get("compare"):
        rows = []
        for dataset, cells in sorted(results["compare"].items()):
            metric = "span_hit@10" if dataset.startswith("cuad") else "ndcg@10"
            rows.append([dataset, metric, f"{100 * cells['off'][metric]:.1f}", f"{100 * cells['on'][metric]:.1f}",
                         f"×{cells['on']['index_bytes'] / cells['off']['index_bytes']:.3f}"])
        lines += [markdown_table(["document search (`longrag compare`)", "metric", "headers off (hybrid_convex)",
                                  "headers on", "index bytes on/off"], rows), ""]
    lines.append(stamp(results.get("versions", {})))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="named,evidence", help="named, evidence (comma-separated)")
    parser.add_argument("--limit", type=int, default=40, help="CUAD / QMSum questions (evidence_recall.py's sample)")
    parser.add_argument("--compare", type=Path, help="a finished `longrag compare` run of the two conditions")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    if not args.table_only:
        count = TransformersGenerator.from_settings("SmolLM2-135M-Instruct").count_tokens
        parts = args.parts.split(",")
        if "named" in parts:
            results["named"] = named_documents(count)
        if "evidence" in parts:
            results["evidence"] = evidence(count, args.limit)
        results["versions"] = {"torch": version("torch"), "transformers": version("transformers"),
                               "sentence-transformers": version("sentence-transformers"), "faiss-cpu": version("faiss-cpu")}
        save_json(OUT, results)
    if args.compare:
        results["compare"] = compare_run(args.compare)
        save_json(OUT, results)
    replace_block("contextual-headers", table(results), RESULTS)
    print(table(results))


if __name__ == "__main__":
    main()
