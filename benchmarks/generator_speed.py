"""Generator backends side by side: prefill and decode tokens/s, per model × backend × prompt length.

    .venv/bin/python benchmarks/generator_speed.py                       # the grid below, ~15 min on 2 cores
    .venv/bin/python benchmarks/generator_speed.py --models qwen2.5-0.5b --lengths 512 --runs llama.cpp

Each cell reads prompts of exactly `length` tokens of real prose (SQuALITY stories, read in
place from ../shared/data; a different slice per prompt, so no backend reuses a cached prefix):
prefill = one prompt, one new token; decode = another prompt answered greedily with up to
--decode new tokens (the answer may end earlier: the count is reported), its time less the
prefill time, per new token after the first. Model load
time is reported apart. Writes benchmarks/results/generator_speed.json (rows of other CPU models
are kept) and the `generator-speed` block of docs/results.md.
"""
from __future__ import annotations

import argparse
import json
import time

import psutil

from longrag.generation import ContextExtension
from longrag.generation.generator import TransformersGenerator
from longrag.indexing import library_versions

from readme_tables import REPO, RESULTS, machine, markdown_table, replace_block, save_json, stamp

OUT = REPO / "benchmarks" / "results" / "generator_speed.json"
STORIES = REPO.parent / "shared" / "data" / "squality" / "train.jsonl"
RUNS = {"llama.cpp": ("llama.cpp", None), "transformers-float32": ("transformers", "float32"),
        "transformers-bfloat16": ("transformers", "bfloat16")}
SYSTEM, TASK = "You are a helpful assistant.", "\n\nSummarise the story above in detail."


def load(model: str, run: str):
    backend, dtype = RUNS[run]
    if backend == "llama.cpp":
        from longrag.generation.llama_cpp import LlamaCppGenerator

        return LlamaCppGenerator.from_settings(model)
    return TransformersGenerator.from_settings(model, ContextExtension(), dtype=dtype)


def cell(generator, prose_ids: list[int], offset: int, length: int, decode: int) -> dict:
    """Time prompts of exactly `length` tokens: prefill (one new token), then a longer answer."""
    def prompt(at: int) -> str:
        room = length - generator.count_tokens(generator.chat_prompt(SYSTEM, TASK))
        return generator.chat_prompt(SYSTEM, generator._decode(prose_ids[at:at + room]) + TASK)

    def timed(text: str, new: int) -> tuple[float, str]:
        began = time.perf_counter()
        answer = generator.generate(text, max_new_tokens=new)
        return time.perf_counter() - began, answer

    first = prompt(offset)
    prefill, _ = timed(first, 1)
    total, answer = timed(prompt(offset + length), decode)
    new = generator.count_tokens(answer)
    tokens = generator.count_tokens(first)
    return {"length": length, "prompt_tokens": tokens, "prefill_s": round(prefill, 2),
            "prefill_tok_s": round(tokens / prefill, 1), "new_tokens": new,
            "decode_tok_s": round((new - 1) / (total - prefill), 1) if new > 1 and total > prefill else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="qwen2.5-0.5b,qwen2.5-1.5b")
    parser.add_argument("--runs", default="llama.cpp,transformers-float32")
    parser.add_argument("--lengths", default="512,2048,4096")
    parser.add_argument("--decode", type=int, default=64)
    parser.add_argument("--render", action="store_true", help="rewrite the docs block from the saved json only")
    args = parser.parse_args()
    saved = json.loads(OUT.read_text()) if OUT.exists() else {"rows": []}
    if not args.render:
        cpu = machine()
        stories = [json.loads(line)["document"] for line in STORIES.read_text().splitlines()]
        saved.setdefault("rows", [])
        for model in args.models.split(","):
            for run in args.runs.split(","):
                began = time.perf_counter()
                generator = load(model, run)
                load_s = time.perf_counter() - began
                prose_ids = generator._ids("\n\n".join(stories[:40]))
                offset = 0
                for length in map(int, args.lengths.split(",")):
                    row = {"model": model, "run": run, "machine": cpu, "load_s": round(load_s, 1),
                           **cell(generator, prose_ids, offset, length, args.decode),
                           "rss_mb": round(psutil.Process().memory_info().rss / 2**20)}
                    offset += 2 * length
                    print(json.dumps(row), flush=True)
                    key = (model, run, cpu, length)  # a row replaces its own earlier measurement only
                    saved["rows"] = [r for r in saved["rows"] if (r["model"], r["run"], r["machine"], r["length"]) != key]
                    saved["rows"].append(row)
                    saved.update(versions=library_versions(), stamp=stamp(library_versions()))
                    save_json(OUT, saved)
                del generator
    report(saved)


def report(saved: dict) -> None:
    rows = sorted(saved["rows"], key=lambda r: (r["machine"], r["model"], r["run"], r["length"]))
    table = markdown_table(["CPU", "model", "backend", "prompt tok", "prefill tok/s", "decode tok/s (new)",
                            "first token s", "load s", "RSS MB"],
                           [[r["machine"], r["model"], r["run"], r["prompt_tokens"], r["prefill_tok_s"],
                             f"{r['decode_tok_s']} ({r['new_tokens']})", r["prefill_s"], r["load_s"], r["rss_mb"]]
                            for r in rows])
    replace_block("generator-speed", f"{table}\n\n{saved['stamp']}", RESULTS)
    print(table)


if __name__ == "__main__":
    main()
