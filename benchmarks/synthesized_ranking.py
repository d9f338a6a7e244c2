"""Do synthesized questions rank the retrieval conditions as human-judged ones do?

For QMSum (val meetings) and SQuALITY (dev stories), read in place from ../shared/data:
questions are synthesized over the corpus (`longrag.evaluation.synthesize`, the default generator
and checker) in each style asked for; then one `longrag compare` run over the corpus holds the
human queries and every synthesized set side by side (one index per condition, shared), and each
condition's nDCG@10 is averaged per query set. Reported per corpus and style: Kendall τ between
the human and the synthesized ranking of the conditions, each condition's gap, and BM25's rank
under both (the lexical bias of questions written from a passage's words).

    .venv/bin/python benchmarks/synthesized_ranking.py --n 40 --styles passage,summary
    .venv/bin/python benchmarks/synthesized_ranking.py --report-only   # tables from the finished runs

Everything is resumable: synthesis logs each passage, compare keeps each finished cell (runs/synthesized).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from longrag.config import load_config  # noqa: E402
from longrag.evaluation.agreement import agreement  # noqa: E402
from longrag.evaluation.beir import load_beir  # noqa: E402
from longrag.evaluation.compare import Cell, compare  # noqa: E402
from longrag.evaluation.conditions import CONDITIONS  # noqa: E402
from longrag.evaluation.datasets import qmsum, squality  # noqa: E402
from longrag.evaluation.retrieval_dataset import RetrievalDataset  # noqa: E402
from longrag.evaluation.synthesize import SynthesisSettings, synthesize  # noqa: E402
from longrag.indexing import library_versions  # noqa: E402
from readme_tables import RESULTS as RESULTS_MD, markdown_table, replace_block, save_json, stamp  # noqa: E402

RUNS = ROOT / "runs" / "synthesized"
OUT = ROOT / "benchmarks" / "results" / "synthesized_ranking.json"
CORPORA = {"qmsum": qmsum, "squality": lambda: squality(split="dev")}
CONDITION_NAMES = ("bm25", "truncate", "chunks256", "hybrid_convex", "langchain", "late_chunks")
METRIC = "ndcg@10"


def synthesized_sets(name: str, human: RetrievalDataset, n: int, styles: list[str], progress: bool) -> dict:
    sets = {}
    for style in styles:
        started = time.perf_counter()
        report = synthesize(human.corpus, RUNS / f"{name}{len(human.corpus)}-{style}", n, settings=SynthesisSettings(style=style),
                            progress=progress, titles=False)
        meta = json.loads((report.folder / "synthesis.json").read_text())
        print(f"{name} {style}: {report.written} questions ({report.ambiguous} ambiguous, {report.tried} passages, "
              f"filter rate {report.filter_rate:.0%}, rejected {report.rejected}) in {time.perf_counter() - started:.0f} s",
              flush=True)
        sets[style] = (load_beir(report.folder), meta)
    return sets


def combined(name: str, human: RetrievalDataset, sets: dict) -> RetrievalDataset:
    """One dataset over the corpus holding every query set, ids prefixed by set ("human:", "passage:" …)."""
    queries = {f"human:{q}": t for q, t in human.queries.items()}
    qrels = {f"human:{q}": r for q, r in human.qrels.items()}
    for style, (dataset, _) in sets.items():
        queries.update({f"{style}:{q}": t for q, t in dataset.queries.items()})
        qrels.update({f"{style}:{q}": r for q, r in dataset.qrels.items()})
    return RetrievalDataset(f"{name}-human+synthesized", human.corpus, queries, qrels, None,
                            {"sets": ["human", *sets]}).validate()


def per_set(cells: list[Cell]) -> dict:
    """condition → query set → mean nDCG@10 over that set's queries."""
    scores: dict = {}
    for cell in cells:
        groups: dict = {}
        for qid, value in cell.per_query[METRIC].items():
            groups.setdefault(qid.split(":", 1)[0], []).append(value)
        scores[cell.condition] = {group: statistics.fmean(values) for group, values in groups.items()}
    return scores


def subset(dataset: RetrievalDataset, documents: int | None) -> RetrievalDataset:
    """The first `documents` documents (by id) and the human queries judged on them: a smaller corpus
    both question sets are run on (the CPU was shared by many jobs)."""
    if not documents or documents >= len(dataset.corpus):
        return dataset
    kept = set(sorted(dataset.corpus)[:documents])
    qids = [q for q, docs in dataset.qrels.items() if set(docs) <= kept]
    return RetrievalDataset(dataset.name, {d: t for d, t in dataset.corpus.items() if d in kept},
                            {q: dataset.queries[q] for q in qids}, {q: dataset.qrels[q] for q in qids}, None,
                            {**dataset.meta, "documents_kept": documents}).validate()


def run(args) -> dict:
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    config = load_config(args.config)
    styles = [s for s in args.styles.split(",") if s]
    conditions = [CONDITIONS[c] for c in args.conditions.split(",")]
    for name in args.corpora.split(","):
        human = subset(CORPORA[name](), args.documents)
        sets = synthesized_sets(name, human, args.n, styles, progress=not args.quiet)
        dataset = combined(name, human, sets)
        started = time.perf_counter()
        cells = compare([dataset], conditions, config, RUNS / f"compare-{name}{len(human.corpus)}", progress=not args.quiet)
        scores = per_set(cells)
        results[name] = {
            "corpus": {"documents": len(human.corpus), "human_queries": len(human.queries)},
            "synthesis": {style: meta for style, (_, meta) in sets.items()},
            "scores": scores, "compare_seconds": round(time.perf_counter() - started),
            "agreement": {style: agreement({c: s["human"] for c, s in scores.items()},
                                           {c: s[style] for c, s in scores.items()}) for style in styles},
            "stamp": stamp(library_versions())}
        results = {**(json.loads(OUT.read_text()) if OUT.exists() else {}), name: results[name]}  # another run's corpora kept
        save_json(OUT, results)
    return results


def report(results: dict) -> str:
    parts = []
    for name, result in results.items():
        styles = list(result["agreement"])
        conditions = sorted(result["scores"], key=lambda c: -result["scores"][c]["human"])
        header = ["condition", "human nDCG@10 (rank)"] + [f"{s} questions: nDCG@10 (rank), gap" for s in styles]
        rows = []
        for c in conditions:
            row = [c, f"{result['scores'][c]['human']:.3f} ({result['agreement'][styles[0]]['conditions'][c]['rank_human']})"]
            for s in styles:
                a = result["agreement"][s]["conditions"][c]
                row.append(f"{a['synthesized']:.3f} ({a['rank_synthesized']}), {a['gap']:+.3f}")
            rows.append(row)
        rows.append(["**Kendall τ vs human**", "—"] + [f"**{result['agreement'][s]['tau']:.2f}**" for s in styles])
        synthesis = "; ".join(
            f"{s}: {m['written']} questions kept of {m['passages_tried']} passages (filter rate {m['filter_rate']:.0%}; "
            f"{m['ambiguous']} ambiguous; rejected {', '.join(f'{k} {v}' for k, v in m['rejected'].items()) or 'none'}; "
            f"{m['question_cpu_seconds'] / max(m['timed_passages'], 1):.0f} CPU-s a passage, models loaded)"
            for s, m in result["synthesis"].items())
        parts.append(f"**{name}** ({result['corpus']['documents']} documents, {result['corpus']['human_queries']} "
                     f"human queries). {synthesis}.\n\n" + markdown_table(header, rows) + f"\n\n{result['stamp']}")
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="synthesized questions per corpus and style")
    parser.add_argument("--styles", default="passage,summary")
    parser.add_argument("--corpora", default="qmsum,squality")
    parser.add_argument("--documents", type=int, help="only the first N documents of each corpus (and their human queries)")
    parser.add_argument("--conditions", default=",".join(CONDITION_NAMES))
    parser.add_argument("--config", help="YAML settings (e.g. generator.threads: 1 on a shared CPU)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    results = json.loads(OUT.read_text()) if args.report_only else run(args)
    table = report(results)
    print(table)
    replace_block("synthesized-ranking", table, RESULTS_MD)


if __name__ == "__main__":
    main()
