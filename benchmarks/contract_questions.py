"""Ten questions a person would ask of the licence agreements in examples/contracts, each with the
clause that answers it, put to `longrag ask` with each packaged generator.

    .venv/bin/python benchmarks/contract_questions.py --generators SmolLM2-135M-Instruct,qwen2.5-0.5b --budgets 1024,2048

An answer counts as right when it cites the expected document and its text holds one of the
expected words (lenient: the wording is the model's). Seconds per question exclude model loading,
which is reported apart. Writes benchmarks/results/contract_questions.json and the
`contract-questions` block of docs/results.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from longrag import Pipeline
from longrag.evaluation.contract_questions import QUESTIONS, right
from longrag.indexing import library_versions

from readme_tables import REPO, RESULTS, machine, markdown_table, replace_block, save_json, stamp

OUT = REPO / "benchmarks" / "results" / "contract_questions.json"

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generators", default="SmolLM2-135M-Instruct,qwen2.5-0.5b")
    parser.add_argument("--selector", default="hybrid")
    parser.add_argument("--budgets", type=lambda v: [int(b) for b in v.split(",")], default=[2048])
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--limit", type=int, default=len(QUESTIONS))
    parser.add_argument("--regrade", action="store_true", help="re-grade the saved answers and rewrite the block")
    args = parser.parse_args()
    if args.regrade:
        report(json.loads(OUT.read_text()))
        return
    index = Path(tempfile.mkdtemp(prefix="longrag-contracts-")) / "contracts"
    Pipeline.from_config(None).index([REPO / "examples" / "contracts"], index_dir=index, progress=False)
    questions = list(QUESTIONS.items())[: args.limit]
    runs = []
    for name in args.generators.split(","):
        for budget in args.budgets:
            settings = {"generator": {"model": name, "max_new_tokens": args.max_new_tokens},
                        "ask": {"selector": args.selector, "budget": budget}}
            pipe = Pipeline.load(index, config=settings)
            began = time.perf_counter()
            generator = pipe.generator  # load (and on first use convert) before timing questions
            load_seconds = time.perf_counter() - began
            rows = []
            for question, (doc, _) in questions:
                answer = pipe.ask(question)
                rows.append({"question": question, "expected": doc, "answer": answer.answer, "found": answer.found,
                             "cited": sorted({c.doc_id for c in answer.citations}), "grounded": answer.grounded,
                             "seconds": answer.seconds, "tokens_in": answer.tokens_in,
                             "support": answer.support and {"doc_id": answer.support.doc_id, "text": answer.support.text}})
                rows[-1]["right"] = right(rows[-1])
                shown = re.sub(r"\s+", " ", answer.answer)[:200]
                print(f"{name}@{budget}: {'RIGHT' if rows[-1]['right'] else 'wrong'} {answer.seconds:.1f}s {question}\n"
                      f"  {shown}\n  cited {rows[-1]['cited']}", flush=True)
            seconds = sorted(r["seconds"] for r in rows)
            runs.append({"generator": name, "backend": generator.backend, "budget": budget,
                         "load_seconds": round(load_seconds, 1), "rows": rows,
                         "right": sum(r["right"] for r in rows), "questions": len(rows),
                         "median_seconds": round(statistics.median(seconds), 1),
                         "p90_seconds": round(seconds[min(len(seconds) - 1, int(0.9 * len(seconds)))], 1),
                         "peak_rss_mb": round(psutil.Process().memory_info().rss / 2**20)})
            del pipe, generator
    result = {"selector": args.selector, "max_new_tokens": args.max_new_tokens,
              "threads": os.environ.get("OMP_NUM_THREADS", "default"), "runs": runs, "versions": library_versions(),
              "stamp": stamp(library_versions())}
    save_json(OUT, result)
    report(result)


def saved_stamp(result: dict) -> str:
    """The stamp of the run that produced the answers (older files: from the file's time)."""
    if result.get("stamp"):
        return result["stamp"]
    when = datetime.fromtimestamp(OUT.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    libs = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    return f"_Measured {when} on {machine()}; {libs}._"


def report(result: dict) -> None:
    """The docs block from saved answers, graded by the current rule."""
    runs = result["runs"]
    for run in runs:
        for row in run["rows"]:
            row.setdefault("found", row["answer"] != "not found in the indexed documents")
            row["right"] = right(row)
        run["right"] = sum(r["right"] for r in run["rows"])
    label = lambda r: f"{r['generator']} ({r.get('backend', 'transformers')}, {r.get('budget', result.get('budget'))} tok)"
    summary = markdown_table(["generator (backend, budget)", "right", "grounded", "median s / question", "p90 s",
                              "model load s", "RSS MB"],
                             [[label(r), f"{r['right']}/{r['questions']}",
                               f"{sum(x.get('grounded', False) for x in r['rows'])}/{r['questions']}" if "backend" in r else "–",
                               r["median_seconds"], r["p90_seconds"], r["load_seconds"], r["peak_rss_mb"]] for r in runs])
    answers = markdown_table(["question", "expected"] + [label(r) for r in runs],
                             [[row["question"], row["expected"]] +
                              [("✓ " if r["rows"][i]["right"] else "✗ ") +
                               re.sub(r"\s+", " ", r["rows"][i]["answer"])[:160].replace("|", "/") for r in runs]
                              for i, row in enumerate(runs[0]["rows"])])
    body = (f"{summary}\n\nselector {result['selector']}, at most {result['max_new_tokens']} new tokens, on CPU; "
            f"a question counts as right when the answer cites the expected document and holds one of its "
            f"expected words; grounded: it cites an existing block and every phrase it quotes is in the blocks it "
            f"cites (`benchmarks/contract_questions.py`).\n\n{answers}\n\n{saved_stamp(result)}")
    replace_block("contract-questions", body, RESULTS)
    print(body)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
