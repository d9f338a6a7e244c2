"""Ways to run the MiniLM encoder on this CPU: segment tokens/s, one query's latency, and how far the
vectors move from torch float32's.

Candidates: torch float32 (the reference), torch bfloat16 (the model copied into bfloat16, as
`encoder.dtype: bfloat16` runs segments, and the float32 model under autocast, as it did before),
ONNX Runtime float32 (longrag's
`encoder.runtime: onnx`), and two int8 paths longrag does not offer, measured to show why: torch
dynamic per-channel int8 and ONNX Runtime dynamic per-channel int8 (quantised here from the exported
model). Segments: 96 balanced pieces of ≤ 256 tokens of SQuALITY dev stories (../shared/data, read in
place), encoded in longrag's batches (best of 3 rounds after a warm-up, the candidates taking turns in
each round); queries: 50 SQuALITY questions,
one call each (p50). Results go to benchmarks/results/encoder_runtimes.json, one row set per CPU
model, and the docs block `encoder-runtimes`.

    .venv/bin/python benchmarks/encoder_runtimes.py [--render]
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from longrag.config import EncoderConfig
from longrag.encoders import load_encoder
from longrag.encoders.onnx_runtime import OnnxModel, exported
from longrag.indexing import library_versions
from longrag.types import balanced_windows

from readme_tables import RESULTS, machine, markdown_table, replace_block, runs_per_machine, stamp

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "squality" / "dev.jsonl"
OUT = ROOT / "benchmarks" / "results" / "encoder_runtimes.json"


def inputs(encoder) -> tuple[list[np.ndarray], list[str]]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    segments = []
    for row in rows:
        ids = encoder.tokenize(row["document"]).ids
        segments += [ids[a:b] for a, b in balanced_windows(len(ids), 256)]
    questions = [q["question_text"] for row in rows for q in row["questions"]]
    return segments[:96], questions[:50]


def candidates(encoder, tmp: Path) -> dict:
    """name → (what runs the unmodified model, the encoder whose batching and autocast apply); the first is the reference."""
    source = exported(encoder.model, encoder.name)
    bf16 = load_encoder(EncoderConfig(dtype="bfloat16", runtime="torch"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks its eager quantisation API deprecated
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
        int8 = quantize_dynamic(copy.deepcopy(encoder.model), {torch.nn.Linear: per_channel_dynamic_qconfig})
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize
    ort_quantize(str(source), str(tmp / "int8.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                 extra_options={"DefaultTensorType": 1})  # the exported graph's shapes are symbolic
    return {"torch float32": (encoder.model, encoder),
            "onnx float32 (encoder.runtime: onnx)": (OnnxModel(source), encoder),
            "torch bfloat16 copy (encoder.dtype: bfloat16)": (bf16.segment_runner, bf16),
            "torch bfloat16 autocast (before)": (bf16.model, bf16),
            "torch int8 dynamic (not offered)": (int8, encoder),
            "onnx int8 dynamic (not offered)": (OnnxModel(tmp / "int8.onnx"), encoder)}


def measure(runners: dict, segments, questions, rounds: int = 3) -> list[dict]:
    """Each candidate's best segment time over `rounds` rounds, the candidates taking turns within a
    round (a shared machine's slow spells then fall on all of them), its query p50 and its cosines."""
    encode = {name: (lambda batch, r=runner, o=owner: o.encode_inputs(batch, r)) for name, (runner, owner) in runners.items()}
    vectors = {name: fn(segments) for name, fn in encode.items()}  # also the warm-up
    best = dict.fromkeys(encode, float("inf"))
    for _ in range(rounds):
        for name, fn in encode.items():
            started = time.perf_counter()
            fn(segments)
            best[name] = min(best[name], time.perf_counter() - started)
    reference = next(iter(vectors.values()))
    tokens = sum(len(s) for s in segments)
    rows = []
    for name, fn in encode.items():
        latencies = []
        for q in questions:
            ids = [np.asarray(runners[name][1].tokenizer(q, add_special_tokens=False)["input_ids"], dtype=np.int64)]
            started = time.perf_counter()
            fn(ids)
            latencies.append((time.perf_counter() - started) * 1000)
        cosine = (vectors[name] * reference).sum(1)
        rows.append({"runtime": name, "segment_tokens_per_s": round(tokens / best[name]),
                     "query_ms_p50": round(float(np.median(latencies)), 2),
                     "min_cosine": round(float(cosine.min()), 6), "mean_cosine": round(float(cosine.mean()), 6)})
        print(rows[-1], flush=True)
    return rows


def run() -> dict:
    encoder = load_encoder(EncoderConfig(dtype="float32", runtime="torch"))
    segments, questions = inputs(encoder)
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(candidates(encoder, Path(tmp)), segments, questions)
    return {"machine": machine(), "rows": rows, "threads": torch.get_num_threads(),
            "segments": len(segments), "segment_tokens": int(sum(len(s) for s in segments)),
            "stamp": stamp(library_versions())}


def render(run: dict) -> str:
    table = markdown_table(["runtime", "segment tokens/s", "× torch float32", "one query p50 ms", "cosine to torch float32, min / mean"],
                           [[r["runtime"], f"{r['segment_tokens_per_s']:,}",
                             round(r["segment_tokens_per_s"] / run["rows"][0]["segment_tokens_per_s"], 2),
                             r["query_ms_p50"], f"{r['min_cosine']:.6f} / {r['mean_cosine']:.6f}"] for r in run["rows"]])
    return (f"**{run['machine']}** ({run['segments']} segments, {run['segment_tokens']:,} tokens; {run['threads']} threads)"
            f"\n\n{table}\n\n{run['stamp']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--render", action="store_true", help="run nothing: rewrite the docs block from the json")
    args = parser.parse_args()
    print("CPU:", machine(), flush=True)
    runs = runs_per_machine(OUT, None if args.render else run())
    body = "\n\n".join(render(r) for r in runs)
    replace_block("encoder-runtimes", body, RESULTS)
    print(body)


if __name__ == "__main__":
    main()
