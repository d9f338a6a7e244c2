"""Index growth: indexing speed, size on disk, peak memory, search latency and the cost of small
updates, as functions of the number of documents.

Corpus: every text in ../shared/data (SQuALITY stories, QMSum meetings, CUAD contracts, the SPDX
licences), read in place, then, for sizes past what those hold, the prose of the documentation
strings of the Python standard library and of the libraries longrag installs (numpy, scipy,
scikit-learn, torch, transformers; doctest lines left out), all cut at sentence ends into
document-sized pieces of at most --piece-chars characters, with stable ids (`source/name/part`);
a piece whose text came earlier is dropped, so repeated boilerplate does not flatter the search. One index grows through the
--sizes (each step adds the next pieces with `add`, so the corpus is encoded once); at each size:
search p50/p95 over real questions (QMSum and CUAD queries, query encoding included) at k = 10
and 100, then adding 1, 10 and 100 held-out pieces and removing 10, each timed with a warm
pipeline (model load excluded), and the held-out pieces removed again. Default config (hybrid).

    .venv/bin/python benchmarks/scale.py [--sizes 1000,3000,10000] [--queries 100]
    .venv/bin/python benchmarks/scale.py --render     # docs block and plot from the saved json

Results: benchmarks/results/scale.json (rows kept per CPU), docs/results.md block `scale` (a table per
CPU), plot docs/scale.png (this machine's run).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.util
import json
import re
import resource
import shutil
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

from longrag import Pipeline
from longrag.evaluation.real_sets import cuad, qmsum, squality
from longrag.index.faiss_backend import FaissIndex, auto_factory
from longrag.indexing import library_versions
from longrag.types import Document

from readme_tables import RESULTS, machine, markdown_table, replace_block, runs_per_machine, stamp

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "scale.json"
PLOT = ROOT / "docs" / "scale.png"
HELD_OUT = 111  # pieces kept aside for the 1 + 10 + 100 additions
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
DOCSTRING_LIBRARIES = ("numpy", "scipy", "sklearn", "torch", "transformers")


def sources() -> list[tuple[str, str]]:
    """(name, text) of every real text here, in a fixed order."""
    texts = []
    for split in ("dev", "train"):
        data = squality(DATA, split=split)
        texts += [(f"squality/{doc_id}", text) for doc_id, text in sorted(data.corpus.items())]
    texts += [(f"qmsum/{doc_id}", text) for doc_id, text in sorted(qmsum(DATA).corpus.items())]
    texts += [(f"cuad/{doc_id}", text) for doc_id, text in sorted(cuad(DATA).corpus.items())]
    texts += [(f"licenses/{p.stem}", p.read_text(errors="replace")) for p in sorted((DATA / "licenses").glob("*.txt"))]
    roots = [("python", Path(sysconfig.get_paths()["stdlib"]))]
    roots += [(lib, Path(importlib.util.find_spec(lib).submodule_search_locations[0])) for lib in DOCSTRING_LIBRARIES]
    for lib, root in roots:
        texts += [(f"docs/{lib}/{path.relative_to(root).with_suffix('')}", text) for path, text in docstrings(root)]
    return texts


def docstrings(root: Path):
    """(file, prose) of each Python file under root: its documentation strings joined, doctest lines left out."""
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.relative_to(root).parts:
            continue
        try:
            tree = ast.parse(path.read_text(errors="replace"))
        except (SyntaxError, ValueError):
            continue
        kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        docs = [ast.get_docstring(node) for node in ast.walk(tree) if isinstance(node, kinds)]
        lines = [line for doc in docs if doc for line in doc.splitlines()
                 if not line.lstrip().startswith((">>>", "..."))]
        if lines:
            yield path, "\n".join(lines)


def pieces(max_chars: int) -> list[Document]:
    """Every text cut at sentence ends into pieces of at most max_chars (a longer sentence is its own
    piece); a piece whose text came earlier is left out."""
    out, seen = [], set()

    def keep(doc_id: str, text: str) -> None:
        document = _document(doc_id, text)
        if document.sha256 not in seen:
            seen.add(document.sha256)
            out.append(document)
    for name, text in sources():
        part, current = 0, ""
        for sentence in _SENTENCE.split(" ".join(text.split())):
            if current and len(current) + 1 + len(sentence) > max_chars:
                keep(f"{name}/{part:04d}", current)
                part, current = part + 1, ""
            current = f"{current} {sentence}".strip()
        if current:
            keep(f"{name}/{part:04d}", current)
    return out


def _document(doc_id: str, text: str) -> Document:
    return Document(doc_id, doc_id, text, hashlib.sha256(text.encode()).hexdigest(), {})


def questions() -> list[str]:
    queries = list(qmsum(DATA).queries.values()) + list(cuad(DATA).queries.values())
    return sorted(set(queries))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def latencies(pipe: Pipeline, queries: list[str], k: int) -> tuple[float, float]:
    pipe.search(queries[0], k=k)  # warm-up
    ms = [1000 * timed(lambda q=q: pipe.search(q, k=k)) for q in queries]
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def run(args) -> dict:
    docs = pieces(args.piece_chars)
    sizes = [int(s) for s in args.sizes.split(",")]
    if sizes[-1] + HELD_OUT > len(docs):
        raise SystemExit(f"the real text here makes {len(docs)} pieces of ≤ {args.piece_chars} characters; "
                         f"the largest size can be {len(docs) - HELD_OUT}")
    held_out, docs = docs[-HELD_OUT:], docs[:-HELD_OUT]
    queries = questions()[: args.queries]
    tmp = Path(tempfile.mkdtemp(prefix="longrag-scale-"))
    index = tmp / "index"
    pipe = Pipeline.from_config(None)
    _ = pipe.encoder  # model load is not indexing time
    rows, done = [], 0
    try:
        for size in sizes:
            report = None

            def grow():
                nonlocal report
                report = pipe.index_documents(docs[done:size], index, progress=False, add=True)
            seconds = timed(grow)
            row = {"documents": size, "added_documents": size - done, "index_seconds": round(seconds, 2),
                   "encoded_tokens": report.encoded_tokens,
                   "tokens_per_s": round(report.encoded_tokens / seconds),
                   "segments": report.segments, "peak_rss_mb": round(peak_rss_mb()),
                   "shards": len(pipe.store.shards)}
            done = size
            row["index_bytes"] = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
            row["bytes_per_document"] = round(row["index_bytes"] / size)
            for k in (10, 100):
                p50, p95 = latencies(pipe, queries, k)
                row[f"search_k{k}_p50_ms"], row[f"search_k{k}_p95_ms"] = round(p50, 1), round(p95, 1)
            start = 0
            for n in (1, 10, 100):
                batch = held_out[start:start + n]
                row[f"add_{n}_s"] = round(timed(lambda b=batch: pipe.index_documents(b, index, progress=False,
                                                                                     add=True)), 2)
                start += n
            row["remove_10_s"] = round(timed(lambda: pipe.remove([d.doc_id for d in held_out[:10]])), 2)
            pipe.remove([d.doc_id for d in held_out[10:]])
            row["optimize_s"] = round(timed(lambda: pipe.optimize()), 2)
            row["shards_after_optimize"] = len(pipe.store.shards)
            print(json.dumps(row), flush=True)
            rows.append(row)
        factories = factory_recall(pipe, queries)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"benchmark": "scale", "machine": machine(), "config": "default (hybrid, encoder " +
            pipe.config.encoder.model + ")", "piece_chars": args.piece_chars,
            "corpus": "all the real text in ../shared/data, then the documentation strings of Python's standard "
                      "library and of " + ", ".join(DOCSTRING_LIBRARIES) + " (repeated pieces dropped)",
            "pieces_available": len(docs) + HELD_OUT,
            "queries": len(queries), "rows": rows, "factories": factories, "versions": library_versions(),
            "stamp": stamp(library_versions())}


def factory_recall(pipe: Pipeline, queries: list[str], k: int = 10) -> list[dict]:
    """Recall@k of the approximate FAISS factories `auto` picks for large shards, against exact
    search (Flat), on the largest index's segment vectors and the real questions."""
    vectors = np.concatenate([np.asarray(s.vectors[s.alive_segments]) for s in pipe.store.shards])
    asked = pipe.encoder.encode_queries(queries).astype(np.float32)
    exact, rows = None, []
    compressed = auto_factory(2_000_000, vectors.shape[1]).split(",")[1]  # the PQ `auto` picks for huge shards
    for factory in ("Flat", "HNSW32", f"IVF{int(4 * np.sqrt(len(vectors)))},{compressed}"):
        index, _ = FaissIndex.build(vectors, factory)
        started = time.perf_counter()
        _, found = index.search(asked, k)
        ms = 1000 * (time.perf_counter() - started) / len(queries)
        exact = found if exact is None else exact
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact)])
        rows.append({"factory": factory,
                     "vectors": len(vectors), "recall_at_10": round(float(recall), 3), "ms_per_query": round(ms, 3)})
    return rows


def fit(rows: list[dict], key: str, at: int) -> tuple[float, float, float]:
    """Least-squares line of `key` against documents: (intercept, slope, value at `at`)."""
    x = np.array([r["documents"] for r in rows], float)
    y = np.array([r[key] for r in rows], float)
    slope, intercept = np.polyfit(x, y, 1) if len(x) > 1 else (0.0, float(y[0]))
    return intercept, slope, intercept + slope * at


def render(result: dict) -> str:
    rows = result["rows"]
    table = markdown_table(
        ["documents", "index s (this step)", "encode tok/s", "peak RSS MB", "bytes / doc",
         "search k=10 p50 / p95 ms", "k=100 p50 / p95 ms", "add 1 / 10 / 100 s", "remove 10 s", "optimize s"],
        [[f"{r['documents']:,}", f"{r['index_seconds']} (+{r['added_documents']:,})", f"{r['tokens_per_s']:,}",
          r["peak_rss_mb"], f"{r['bytes_per_document']:,}",
          f"{r['search_k10_p50_ms']} / {r['search_k10_p95_ms']}", f"{r['search_k100_p50_ms']} / {r['search_k100_p95_ms']}",
          f"{r['add_1_s']} / {r['add_10_s']} / {r['add_100_s']}", r["remove_10_s"], r["optimize_s"]] for r in rows])
    lines = [table, "",
             f"{result['config']}; pieces of ≤ {result['piece_chars']} characters cut from "
             f"{result.get('corpus', 'all the real text in ../shared/data')} ({result['pieces_available']:,} pieces in all); {result['queries']} real questions; "
             "query encoding included in search; model load excluded; `benchmarks/scale.py`."]
    if result.get("factories"):
        lines += ["", "FAISS factories on the largest index's segment vectors (recall@10 against exact search, "
                  "the same questions; IVF lists sized 4·√n for these vectors):", "",
                  markdown_table(["factory", "vectors", "recall@10", "ms / query (FAISS only)"],
                                 [[f["factory"], f"{f['vectors']:,}", f["recall_at_10"], f["ms_per_query"]]
                                  for f in result["factories"]])]
    if 1 < len(rows) and rows[-1]["documents"] < 100_000:  # the target size not reached: say where the line leads
        fits = []
        for key, label in (("search_k10_p50_ms", "search p50 (k = 10)"), ("search_k10_p95_ms", "search p95 (k = 10)"),
                           ("add_1_s", "adding one document")):
            intercept, slope, value = fit(rows, key, 100_000)
            fits.append(f"{label} ≈ {intercept:.3g} + {slope * 1000:.3g} per 1,000 documents → {value:.3g} at 100k")
        lines += ["", "Straight-line fits over the measured sizes, extrapolated (not measured) to 100k documents: "
                  + "; ".join(fits) + "."]
    lines += ["", result["stamp"]]
    return "\n".join(lines)


def plot(result: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = result["rows"]
    x = [r["documents"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, label in (("search_k10_p50_ms", "search p50, k=10"), ("search_k10_p95_ms", "search p95, k=10"),
                       ("search_k100_p50_ms", "search p50, k=100")):
        left.plot(x, [r[key] for r in rows], marker="o", label=label)
    left.axhline(20, color="grey", linestyle=":", label="target p50 20 ms")
    left.set(xlabel="documents", ylabel="ms per query", title="Search latency (query encoding included)", xscale="log")
    left.legend(fontsize=8)
    for key, label in (("add_1_s", "add 1"), ("add_10_s", "add 10"), ("add_100_s", "add 100"),
                       ("remove_10_s", "remove 10")):
        right.plot(x, [r[key] for r in rows], marker="o", label=label)
    right.set(xlabel="documents in the index", ylabel="seconds", title="Update cost", xscale="log")
    right.legend(fontsize=8)
    fig.suptitle(f"{result['machine']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,3000,10000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--piece-chars", type=int, default=600)
    parser.add_argument("--render", action="store_true", help="run nothing: rewrite the docs block and plot from the json")
    args = parser.parse_args()
    runs = runs_per_machine(OUT, None if args.render else run(args))
    result = next((r for r in runs if r["machine"] == machine()), runs[-1])
    body = "\n\n".join(f"**{r['machine']}**\n\n{render(r)}" for r in runs)  # every CPU kind measured
    replace_block("scale", body, RESULTS)
    plot(result)
    print(body)


if __name__ == "__main__":
    main()
