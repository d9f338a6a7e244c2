"""Peak memory of `longrag index` on a folder, as a function of the folder's size.

The scale benchmark's pieces (its real text, ≤ --piece-chars characters each) are
written as files into a temporary folder, the first N of them for each N in --sizes, and each
folder is indexed from scratch by `python -m longrag.cli index` in its own process, default config.
That process's peak RSS (model, tokenizer, FAISS and BM25 included) and its RSS sampled every
0.2 s are recorded: a run whose memory follows the encoding batch stays flat as N grows.

    .venv/bin/python benchmarks/index_memory.py [--sizes 1000,3000,10000]
    .venv/bin/python benchmarks/index_memory.py --render

Results: benchmarks/results/index_memory.json (rows kept per CPU), docs/results.md block `index-memory`.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from longrag.indexing import library_versions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import pieces  # noqa: E402

from readme_tables import RESULTS, machine, markdown_table, replace_block, runs_per_machine, stamp

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "index_memory.json"


def index_folder(folder: Path, index: Path) -> dict:
    """Index `folder` in a child process; its peak RSS, RSS at each quarter of the run, and seconds."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "longrag.cli", "index", str(folder), "--index", str(index),
                              "--quiet"])
    process, samples = psutil.Process(child.pid), []
    while child.poll() is None:
        try:
            samples.append(process.memory_info().rss / 2**20)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    if child.returncode:
        raise SystemExit(f"longrag index failed with exit code {child.returncode}")
    quarters = [round(samples[min(len(samples) - 1, len(samples) * q // 4)]) for q in (1, 2, 3)] if samples else []
    return {"seconds": round(time.perf_counter() - started, 1), "peak_rss_mb": round(max(samples, default=0)),
            "rss_quarters_mb": quarters}


def run(args) -> dict:
    docs = pieces(args.piece_chars)
    sizes = [int(s) for s in args.sizes.split(",")]
    if sizes[-1] > len(docs):
        raise SystemExit(f"the real text here makes {len(docs)} pieces; the largest size can be {len(docs)}")
    rows = []
    for size in sizes:
        tmp = Path(tempfile.mkdtemp(prefix="longrag-memory-"))
        try:
            folder = tmp / "docs"
            for doc in docs[:size]:
                path = folder / f"{doc.doc_id}.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(doc.text)
            text_mb = sum(len(d.text.encode()) for d in docs[:size]) / 2**20
            row = {"documents": size, "text_mb": round(text_mb, 1), **index_folder(folder, tmp / "index")}
            print(row, flush=True)
            rows.append(row)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"machine": machine(), "rows": rows, "piece_chars": args.piece_chars, "stamp": stamp(library_versions())}


def render(result: dict) -> str:
    table = markdown_table(
        ["documents", "text MB", "index s", "peak RSS MB", "RSS at ¼ / ½ / ¾ of the run MB"],
        [[f"{r['documents']:,}", r["text_mb"], r["seconds"], r["peak_rss_mb"],
          " / ".join(map(str, r["rss_quarters_mb"]))] for r in result["rows"]])
    return (f"{table}\n\n`longrag index FOLDER` from scratch in its own process, default config, on folders of "
            f"the first N real-text pieces (≤ {result['piece_chars']} characters, as in the scale benchmark); "
            f"RSS of that process sampled every 0.2 s, model and libraries included; "
            f"`benchmarks/index_memory.py`.\n\n{result['stamp']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,3000,10000")
    parser.add_argument("--piece-chars", type=int, default=600)
    parser.add_argument("--render", action="store_true", help="run nothing: rewrite the docs block from the json")
    args = parser.parse_args()
    runs = runs_per_machine(OUT, None if args.render else run(args))
    result = next((r for r in runs if r["machine"] == machine()), runs[-1])
    body = render(result)
    replace_block("index-memory", body, RESULTS)
    print(body)


if __name__ == "__main__":
    main()
