"""Passkey retrieval by the generator, per prompt length × context-extension method.

A 5-digit key is hidden at a random depth (at a sentence end) in real prose: SQuALITY train
stories, read in place from ../shared/data. The chat prompt asks for the key and the answer
starts "The pass key is"; a trial succeeds when the key appears in the greedy output of at most
10 new tokens. Prompt + answer fill the length exactly. The same seeded trials are used for
every method, so methods compare pairwise.

Extension settings just cover the length (L = the model's trained positions):
linear / dynamic / yarn use factor max(1, length / L); selfextend keeps W = --selfextend-window
and takes the smallest G with (L − W)·G + W ≥ length. "none" runs past its window as well
(`beyond_window=True`) to record what happens there; an out-of-memory is recorded, not raised.

    .venv/bin/python benchmarks/generator_passkey.py --lengths 1024,2048 --trials 2       # CPU check
    python benchmarks/generator_passkey.py --device cuda                                   # GPU, bf16
    .venv/bin/python benchmarks/generator_passkey.py --render    # README block from the saved json only
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import random
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import transformers

from longrag.generation import ContextExtension, TransformersGenerator, effective_window

from generation_reports import passkey_report, passkey_table
from readme_tables import RESULTS, machine, replace_block

ROOT = Path(__file__).resolve().parents[1]
STORIES = ROOT.parent / "shared" / "data" / "squality" / "train.jsonl"
METHODS = ("none", "linear", "dynamic", "yarn", "selfextend")
SYSTEM = "You are a helpful assistant."
INTRO = ("There is a pass key hidden inside a lot of irrelevant text. Find it and memorize it. "
         "I will quiz you about the pass key.\n\n")
QUESTION = "\n\nWhat is the pass key?"
ANSWER_START = "The pass key is"


def extension_for(method: str, length: int, trained: int, window: int) -> ContextExtension:
    if method in ("linear", "dynamic", "yarn"):
        return ContextExtension(method, factor=max(1.0, length / trained))
    if method == "selfextend":
        group = max(1, math.ceil((length - window) / (trained - window)))
        return ContextExtension("selfextend", window=window, group=group)
    return ContextExtension()


class Haystacks:
    """Prose tokenised once with character offsets, so a filler of exactly n tokens is one slice."""

    def __init__(self, generator: TransformersGenerator, stories_file: Path):
        stories = [json.loads(line)["document"] for line in stories_file.read_text().splitlines()]
        self.text = " ".join(" ".join(story.split()) for story in stories)
        self.offsets = generator.tokenizer(self.text, add_special_tokens=False,
                                           return_offsets_mapping=True)["offset_mapping"]
        self.generator = generator

    def prompt(self, rng: random.Random, tokens: int) -> tuple[str, str, float]:
        """A prompt of at most `tokens` tokens (as close as the tokenizer allows) and its key."""
        key, depth = str(rng.randint(10000, 99999)), rng.random()
        needle = f" The pass key is {key}. Remember it. {key} is the pass key."
        frame = self._frame("", needle)
        filler = tokens - self.generator.count_tokens(frame)
        if filler >= len(self.offsets):
            raise SystemExit(f"not enough prose for {tokens} tokens")
        start = rng.randrange(len(self.offsets) - filler)
        while True:
            prose = self.text[self.offsets[start][0]:self.offsets[start + filler - 1][1]]
            cut = prose.find(". ", int(depth * len(prose)))
            cut = len(prose) if cut < 0 else cut + 1
            text = self._frame(prose[:cut] + needle + prose[cut:], "")
            excess = self.generator.count_tokens(text) - tokens
            if excess <= 0:
                return text, key, cut / max(1, len(prose))
            filler -= excess  # token merges at the seams: shorten and retry

    def _frame(self, haystack: str, needle: str) -> str:
        return self.generator.chat_prompt(SYSTEM, INTRO + haystack + needle + QUESTION) + ANSWER_START


def run_cell(generator: TransformersGenerator, haystacks: Haystacks, length: int, trials: int, seed: int,
             max_new_tokens: int) -> dict:
    beyond = length > generator.window
    rows = []
    for trial in range(trials):
        rng = random.Random(f"{seed}-{length}-{trial}")
        prompt, key, depth = haystacks.prompt(rng, length - max_new_tokens)
        started = time.perf_counter()
        answer = generator.generate(prompt, max_new_tokens=max_new_tokens, beyond_window=beyond)
        rows.append({"key": key, "depth": round(depth, 3), "prompt_tokens": generator.count_tokens(prompt),
                     "answer": answer, "ok": key in answer, "seconds": round(time.perf_counter() - started, 3)})
    return {"beyond_window": beyond, "accuracy": sum(r["ok"] for r in rows) / len(rows),
            "seconds_per_trial": round(sum(r["seconds"] for r in rows) / len(rows), 3), "trials": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="4096,8192,16384,32768")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", default="auto", help="auto = float32 on CPU, bfloat16 on CUDA")
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    parser.add_argument("--selfextend-window", type=int, default=1024)
    parser.add_argument("--max-new-tokens", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stories", type=Path, default=STORIES, help="SQuALITY jsonl read in place")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "generator_passkey.json")
    parser.add_argument("--render", action="store_true",
                        help="run nothing: read --out and rewrite its docs block (--block)")
    parser.add_argument("--block", default="generator-passkey", help="the docs/results.md block the result goes to")
    args = parser.parse_args()
    if args.render:
        body = passkey_report(json.loads(args.out.read_text()))
        replace_block(args.block, body, RESULTS)
        print(body)
        return
    lengths = [int(n) for n in args.lengths.split(",")]
    methods = args.methods.split(",")

    base = TransformersGenerator.from_settings(args.model, dtype=args.dtype, device=args.device)
    trained = base.max_positions
    haystacks = Haystacks(base, args.stories)
    del base
    result = {
        "benchmark": "generator_passkey", "model": args.model, "trained_positions": trained,
        "device": args.device, "dtype": args.dtype, "trials": args.trials, "seed": args.seed,
        "max_new_tokens": args.max_new_tokens, "selfextend_window": args.selfextend_window,
        "machine": machine(), "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__},
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cells": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cells = result["cells"]
    for method in methods:
        for length in lengths:
            extension = extension_for(method, length, trained, args.selfextend_window)
            generator = TransformersGenerator.from_settings(args.model, extension, dtype=args.dtype, device=args.device)
            haystacks.generator = generator
            cell = {"method": method, "length": length, "extension": extension.describe(),
                    "effective_window": effective_window(trained, extension)}
            try:
                cell.update(run_cell(generator, haystacks, length, args.trials, args.seed, args.max_new_tokens))
            except torch.OutOfMemoryError as exc:
                cell.update(accuracy=None, error=f"out of memory: {str(exc).splitlines()[0]}")
            print(f"{method:>10} {length:>6} {extension.describe():<28} "
                  f"acc={cell['accuracy']} {cell.get('seconds_per_trial', '')}s/trial {cell.get('error', '')}",
                  flush=True)
            cells.append(cell)
            args.out.write_text(json.dumps(result, indent=1))  # after every cell: long GPU runs keep partial results
            del generator
            gc.collect()
            if args.device == "cuda":
                torch.cuda.empty_cache()
    print(passkey_table(cells, methods, lengths))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
