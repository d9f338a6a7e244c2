"""Indexing time, tokens/s, index size and search latency (p50/p95 over 200 queries).

Corpora: ../shared/data/squality (75 stories, written as .txt into a temp folder, read in place
otherwise) and examples/contracts. Results go to benchmarks/results/index_speed.json and the
README block `index-speed`.

    .venv/bin/python benchmarks/index_speed.py [--queries 200]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from longrag import Pipeline
from longrag.pipeline import library_versions
from readme_tables import markdown_table, replace_block, stamp

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def squality_folder(tmp: Path) -> tuple[Path, list[str]]:
    folder = tmp / "squality"
    folder.mkdir()
    questions = []
    for split in ("train", "dev"):
        for line in (DATA / "squality" / f"{split}.jsonl").read_text().splitlines():
            row = json.loads(line)
            (folder / f"{split}-{row['metadata']['passage_id']}.txt").write_text(row["document"])
            questions += [q["question_text"] for q in row["questions"] if q["question_number"] != 1]
    return folder, questions


def contract_questions() -> list[str]:
    topics = ["patent licence termination", "warranty disclaimer", "limitation of liability", "redistribution in binary form",
              "attribution notice", "governing law and jurisdiction", "source code must be made available",
              "trademark use", "sublicensing rights", "compatibility with the GPL"]
    return [f"What does the licence say about {t}?" for t in topics]


def measure(name: str, folder: Path, questions: list[str], n_queries: int, tmp: Path) -> dict:
    pipe = Pipeline.from_config(None)
    _ = pipe.encoder  # model load is not indexing time
    started = time.perf_counter()
    report = pipe.index([folder], index_dir=tmp / f"idx-{name}", progress=False)
    seconds = time.perf_counter() - started
    queries = [questions[i % len(questions)] for i in range(n_queries)]
    pipe.search(queries[0])  # warm-up
    latencies = []
    for q in queries:
        t = time.perf_counter()
        pipe.search(q, k=10)
        latencies.append((time.perf_counter() - t) * 1000)
    size = sum(p.stat().st_size for p in (tmp / f"idx-{name}").iterdir())
    return {"corpus": name, "documents": report.documents, "tokens": report.tokens, "segments": report.segments,
            "index_seconds": round(seconds, 2), "tokens_per_s": round(report.tokens / seconds),
            "index_bytes": size, "bytes_per_document": round(size / report.documents),
            "search_ms_p50": round(float(np.percentile(latencies, 50)), 2),
            "search_ms_p95": round(float(np.percentile(latencies, 95)), 2), "queries": len(queries)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder, questions = squality_folder(tmp)
        rows = [measure("squality (75 stories)", folder, questions, args.queries, tmp),
                measure("examples/contracts", ROOT / "examples" / "contracts", contract_questions(), args.queries, tmp)]
    versions = library_versions()
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "index_speed.json").write_text(json.dumps({"rows": rows, "versions": versions}, indent=2))
    table = markdown_table(
        ["corpus", "docs", "tokens", "segments", "index s", "tokens/s", "index MB", "KB/doc", "search p50 ms", "p95 ms"],
        [[r["corpus"], r["documents"], f"{r['tokens']:,}", r["segments"], r["index_seconds"], f"{r['tokens_per_s']:,}",
          round(r["index_bytes"] / 1e6, 1), round(r["bytes_per_document"] / 1e3, 1), r["search_ms_p50"], r["search_ms_p95"]]
         for r in rows])
    replace_block("index-speed", table + "\n\n" + stamp(versions) +
                  " Default config (MiniLM, chunks of ≤256 tokens, FAISS Flat); search latency includes query encoding.")
    print(table)


if __name__ == "__main__":
    main()
