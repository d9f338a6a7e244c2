"""Indexing time, tokens/s, index size and search latency (p50/p95 over 200 queries).

Corpora: ../shared/data/squality (75 stories, written as .txt into a temp folder, read in place
otherwise) and examples/contracts. On SQuALITY the LangChain chunked pipeline runs beside longrag
on the same MiniLM, as its users run it (TextLoader, RecursiveCharacterTextSplitter(1000, 200),
HuggingFaceEmbeddings, FAISS.from_documents, save_local): the `langchain` peer of `longrag compare`.
Model loading is excluded from every indexing time. longrag runs its default config, once per
`--dtypes` entry (encoder.dtype, as resolved on this CPU). Results go to
benchmarks/results/index_speed.json, one row set per CPU model (a run replaces only its own machine's),
and the docs block `index-speed` shows every machine's table.

    .venv/bin/python benchmarks/index_speed.py [--queries 200] [--dtypes float32,auto] [--render]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from longrag import Pipeline
from longrag.config import EncoderConfig
from longrag.encoders.transformer import resolve_dtype
from longrag.indexing import library_versions

from readme_tables import RESULTS, machine, markdown_table, replace_block, runs_per_machine, stamp

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


def measure(name: str, folder: Path, questions: list[str], n_queries: int, tmp: Path, dtype: str | None = None) -> dict:
    pipe = Pipeline.from_config({"encoder": {"dtype": dtype}} if dtype else None)
    _ = pipe.encoder  # model load is not indexing time
    default = pipe.encoder.dtype == resolve_dtype(EncoderConfig().dtype)
    name = f"{name}, longrag {pipe.encoder.dtype}{' (default)' if default else ''}"
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
    size = sum(p.stat().st_size for p in (tmp / f"idx-{name}").rglob("*") if p.is_file())
    return {"corpus": name, "documents": report.documents, "tokens": report.tokens, "segments": report.segments,
            "index_seconds": round(seconds, 2), "tokens_per_s": round(report.tokens / seconds),
            "index_bytes": size, "bytes_per_document": round(size / report.documents),
            "search_ms_p50": round(float(np.percentile(latencies, 50)), 2),
            "search_ms_p95": round(float(np.percentile(latencies, 95)), 2), "queries": len(queries)}


def measure_langchain(name: str, folder: Path, questions: list[str], n_queries: int, tmp: Path) -> dict:
    """The LangChain chunked pipeline over the same files with the same MiniLM."""
    import os
    import warnings

    from langchain_community.document_loaders import TextLoader
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.vectorstores import FAISS

    from longrag.config import EncoderConfig
    from longrag.encoders.transformer import token_counter
    from longrag.encoders.weights import resolve_encoder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = EncoderConfig()
    embeddings = HuggingFaceEmbeddings(model_name=str(resolve_encoder(settings.model)),
                                       encode_kwargs={"normalize_embeddings": True})
    embeddings.embed_query("warm-up")  # model load is not indexing time
    started = time.perf_counter()
    docs = [d for path in sorted(folder.glob("*.txt")) for d in TextLoader(str(path), encoding="utf-8").load()]
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True).split_documents(docs)
    store = FAISS.from_documents(chunks, embeddings)
    store.save_local(str(tmp / "idx-langchain"))
    seconds = time.perf_counter() - started
    count = token_counter(settings)
    tokens = sum(count(d.page_content) for d in docs)
    queries = [questions[i % len(questions)] for i in range(n_queries)]
    store.similarity_search(queries[0], k=10)  # warm-up
    latencies = []
    for q in queries:
        t = time.perf_counter()
        store.similarity_search(q, k=10)
        latencies.append((time.perf_counter() - t) * 1000)
    size = sum(p.stat().st_size for p in (tmp / "idx-langchain").iterdir())
    return {"corpus": f"{name}, LangChain (splitter 1000/200 + FAISS)", "documents": len(docs), "tokens": tokens,
            "segments": len(chunks), "index_seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds),
            "index_bytes": size, "bytes_per_document": round(size / len(docs)),
            "search_ms_p50": round(float(np.percentile(latencies, 50)), 2),
            "search_ms_p95": round(float(np.percentile(latencies, 95)), 2), "queries": len(queries)}


def run(args) -> dict:
    """This machine's rows: LangChain, then longrag once per distinct resolved dtype, then the contracts."""
    dtypes = list(dict.fromkeys(resolve_dtype(d) for d in args.dtypes.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder, questions = squality_folder(tmp)
        rows = [measure_langchain("squality (75 stories)", folder, questions, args.queries, tmp)]
        print(rows[-1], flush=True)
        for dtype in dtypes:
            rows.append(measure("squality (75 stories)", folder, questions, args.queries, tmp, dtype))
            print(rows[-1], flush=True)
        rows.append(measure("examples/contracts", ROOT / "examples" / "contracts", contract_questions(), args.queries, tmp))
    peer = rows[0]
    for row in rows[1:-1]:
        row["vs_langchain"] = round(peer["index_seconds"] / row["index_seconds"], 2)
        row["search_vs_langchain"] = round(peer["search_ms_p50"] / row["search_ms_p50"], 2)
    return {"machine": machine(), "rows": rows, "versions": library_versions(), "stamp": stamp(library_versions())}


def render(run: dict) -> str:
    table = markdown_table(
        ["corpus, pipeline", "docs", "tokens", "segments", "index s", "× LangChain speed", "tokens/s", "index MB", "KB/doc",
         "search p50 ms", "p95 ms"],
        [[r["corpus"], r["documents"], f"{r['tokens']:,}", r["segments"], r["index_seconds"], r.get("vs_langchain", "–"),
          f"{r['tokens_per_s']:,}", round(r["index_bytes"] / 1e6, 1), round(r["bytes_per_document"] / 1e3, 1),
          r["search_ms_p50"], r["search_ms_p95"]]
         for r in run["rows"]])
    return f"**{run['machine']}**\n\n{table}\n\n{run['stamp']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dtypes", default="float32,auto",
                        help="encoder.dtype values to index SQuALITY with (auto: the default on this CPU; repeats run once)")
    parser.add_argument("--render", action="store_true", help="run nothing: rewrite the docs block from the json")
    args = parser.parse_args()
    print("CPU:", machine(), flush=True)
    runs = runs_per_machine(ROOT / "benchmarks" / "results" / "index_speed.json", None if args.render else run(args))
    body = "\n\n".join(render(r) for r in runs)
    replace_block("index-speed", body + "\n\nlongrag: default config (MiniLM, hybrid index: chunks of ≤256 tokens in "
                  "FAISS + BM25), loading, segmenting, encoding and writing included; LangChain: loading, splitting, "
                  "encoding, FAISS build and save_local. Model loading excluded from both. Search latency includes query "
                  "encoding. Tokens are MiniLM tokens of the documents (LangChain's 200-character overlaps encode more). "
                  "One table per CPU kind: a run replaces only its own machine's rows.", RESULTS)
    print(body)


if __name__ == "__main__":
    main()
