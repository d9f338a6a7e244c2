"""Encoder speed per document method: tokens/s and peak RSS at 512, 2k, 8k and 32k tokens, next to
the FLOP-bound time for this CPU.

The document is real prose: SQuALITY dev stories (../shared/data/squality, read in place) joined
until 32k MiniLM tokens, then cut to each length. Every cell (method × length × dtype) runs in a
fresh subprocess, so its peak RSS (resource.getrusage ru_maxrss) is its own: model load, one
small warm-up forward, then the timed encode of the document (median of 3 runs up to 2k tokens,
one run above).

FLOP model (per forward window of w tokens, special tokens included): 2·P·w for the linear layers
(P = weights of every nn.Linear in the encoder stack, pooler excluded; embeddings are lookups) plus
4·L·w²·d for attention (QKᵀ and AV; L layers, d hidden size). CPU peak = cores × GHz × FLOPs/cycle:
float32 = 64 FLOPs/cycle/core with AVX-512 (two FMA units × 16 lanes × 2), 32 with AVX2; bfloat16 =
1024 with AMX, twice float32 with AVX512-BF16, else float32's; GHz = BogoMIPS / 2 (the base clock under KVM, where lscpu shows no MHz).
The FLOP-bound time is FLOPs / peak: no run can beat it, and the ratio says how far from it we are.

    .venv/bin/python benchmarks/encoder_speed.py            # full grid, writes the README block
    .venv/bin/python benchmarks/encoder_speed.py --quick    # 512 and 2k tokens, float32 only, no README
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from encoder_cost import CHUNK, METHODS, document_ids, forward_windows, linear_params, model_flops  # noqa: E402
from readme_tables import RESULTS, markdown_table, replace_block, stamp  # noqa: E402

LENGTHS = (512, 2048, 8192, 32768)
LATE_CHUNK_LIMIT_MB = 2048  # issue 3: late chunking of a 32k-token document under 2 GB peak RSS


def cpu_info() -> dict:
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)}
    flags = fields.get("Flags", "").split()
    mhz = fields.get("CPU max MHz") or fields.get("CPU MHz")
    ghz = float(mhz) / 1000 if mhz else float(fields.get("BogoMIPS", "0")) / 2000
    return {"model": fields.get("Model name", "?"), "cores": os.cpu_count(), "ghz": round(ghz, 2),
            "ghz_from": "lscpu MHz" if mhz else "BogoMIPS/2", "amx_bf16": "amx_bf16" in flags,
            "avx512_bf16": "avx512_bf16" in flags, "avx512f": "avx512f" in flags}


def flops_per_cycle(cpu: dict, dtype: str) -> int:
    """Per core: two FMA units × SIMD lanes × 2 (64 with AVX-512, 32 with AVX2); bfloat16: AMX's 1024,
    AVX512-BF16's dot products at twice the float32 rate, else emulated at the float32 rate at best."""
    float32 = 64 if cpu["avx512f"] else 32
    if dtype == "bfloat16":
        return 1024 if cpu["amx_bf16"] else 2 * float32 if cpu["avx512_bf16"] else float32
    return float32


def peak_gflops(cpu: dict, dtype: str) -> float:
    return cpu["cores"] * cpu["ghz"] * flops_per_cycle(cpu, dtype)


def run_cell(method: str, n: int, dtype: str, model: str) -> dict:
    """In this (fresh) process: load, warm up, time one cell; peak RSS of the process."""
    import torch

    from longrag.config import EncoderConfig
    from longrag.encoders import load_encoder
    from longrag.encoders.transformer import balanced_windows
    from longrag.encoders.late_chunking import late_chunk_vectors

    settings, kind = METHODS[method]
    encoder = load_encoder(EncoderConfig(model=model, dtype=dtype, **settings))
    ids = document_ids(encoder.tokenizer, n)
    spans = balanced_windows(n, CHUNK)

    def encode():
        if kind == "document":
            return encoder.encode_document(ids)
        if kind == "chunks":
            return encoder.encode_ids([ids[a:b] for a, b in spans])
        return late_chunk_vectors(encoder, ids, spans, overlap=encoder.settings.late_chunk_overlap)

    encoder.encode_ids([ids[:16]])  # warm-up: first oneDNN calls
    loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(3 if n <= 2048 else 1):
        started = time.perf_counter()
        vectors = encode()
        times.append(time.perf_counter() - started)
    assert np.isfinite(vectors).all()
    windows = forward_windows(encoder, settings, kind, n)
    return {"method": method, "tokens": n, "dtype": dtype, "seconds": float(np.median(times)),
            "forwards": len(windows), "model_tokens": int(sum(windows)), "flops": model_flops(encoder, windows),
            "linear_params": linear_params(encoder), "layers": encoder.model.config.num_hidden_layers,
            "hidden": encoder.model.config.hidden_size,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "loaded_rss_mb": round(loaded_mb, 1), "threads": torch.get_num_threads()}


def measure(method: str, n: int, dtype: str, model: str, cpu: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--cell", method, str(n), dtype, "--model", model],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return {"method": method, "tokens": n, "dtype": dtype, "error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["tokens_per_s"] = round(n / row["seconds"])
    row["flop_bound_s"] = row["flops"] / (peak_gflops(cpu, dtype) * 1e9)
    row["of_peak"] = row["flop_bound_s"] / row["seconds"]
    return row


def render(rows: list[dict], cpu: dict, versions: dict, lengths, dtypes) -> str:
    by = {(r["method"], r["tokens"], r["dtype"]): r for r in rows}
    tables = []
    for dtype in dtypes:
        body = []
        for method in [m for m in METHODS if any(r["method"] == m for r in rows)]:
            cells = []
            for n in lengths:
                r = by.get((method, n, dtype))
                if r is None:
                    cells.append("–")
                elif "error" in r:
                    cells.append(f"failed: {r['error'][:60]}")
                else:
                    cells.append(f"{r['tokens_per_s']:,} · {r['peak_rss_mb']:,.0f} MB · {100 * r['of_peak']:.0f}%")
            body.append([f"`{method}`"] + cells)
        tables.append(f"**{dtype}** — document tokens/s · peak RSS · share of the FLOP-bound speed\n\n"
                      + markdown_table(["method"] + [f"{n:,} tokens" for n in lengths], body))
    late = by.get(("late_chunks_pi 4096", 32768, "float32")), by.get(("late_chunks", 32768, "float32"))
    checks = [f"`{r['method']}` {r['peak_rss_mb']:,.0f} MB" for r in late if r and "error" not in r]
    verdict = ("**pass**" if all(r["peak_rss_mb"] < LATE_CHUNK_LIMIT_MB for r in late if r and "error" not in r)
               else "**fail**") if checks else "not measured (needs the 32k float32 late-chunking cells)"
    done = next((r for r in rows if "error" not in r), {})
    params, layers, hidden = done.get("linear_params", 0), done.get("layers", "?"), done.get("hidden", "?")
    speedups = []
    for method in METHODS:
        for n in lengths:
            a, b = by.get((method, n, "float32")), by.get((method, n, "bfloat16"))
            if a and b and "error" not in a and "error" not in b and n >= 2048:
                speedups.append(a["seconds"] / b["seconds"])
    notes = [
        f"Issue 3 check, late chunking of a 32k-token document under 2 GB peak RSS (whole process, model "
        f"included): {', '.join(checks + [verdict])}.",
        f"FLOP-bound speed: {cpu['cores']} cores × {cpu['ghz']} GHz ({cpu['ghz_from']}) × "
        f"{flops_per_cycle(cpu, 'float32')} FLOPs/cycle float32 ({'AVX-512' if cpu['avx512f'] else 'AVX2'}: 2 FMA units) = "
        f"{peak_gflops(cpu, 'float32'):.0f} GFLOP/s; × {flops_per_cycle(cpu, 'bfloat16')} FLOPs/cycle bfloat16 "
        f"({'AMX' if cpu['amx_bf16'] else 'AVX512-BF16' if cpu['avx512_bf16'] else 'no native bfloat16'}) = "
        f"{peak_gflops(cpu, 'bfloat16'):.0f} GFLOP/s. Model FLOPs per "
        f"window of w tokens: 2·P·w + 4·L·w²·d (P = {params / 1e6:.1f}M linear weights, L = {layers}, d = {hidden}).",
        "Tokens/s = document tokens / seconds (truncate reads only the first 510 of them). Peak RSS = the "
        "cell's own process (fresh subprocess: Python, torch, model and encoding).",
    ]
    if speedups:
        notes.append(f"bfloat16 / float32 speed-up at ≥ 2k tokens: median {np.median(speedups):.2f}× "
                     f"(range {min(speedups):.2f}–{max(speedups):.2f}×).")
    threads = sorted({r.get("threads") for r in rows if "threads" in r})
    return ("\n\n".join(tables) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n\n" + stamp(versions)
            + f" Threads: {threads}; document: SQuALITY dev stories joined.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: 512 and 2k tokens, float32, no README")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--cell", nargs=3, metavar=("METHOD", "TOKENS", "DTYPE"), help=argparse.SUPPRESS)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--merge", action="store_true",
                        help="replace only the measured cells in the saved JSON (re-measure a few, add a method)")
    parser.add_argument("--render", action="store_true", help="rewrite the README block from the saved JSON")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.cell:
        method, n, dtype = args.cell
        print(json.dumps(run_cell(method, int(n), dtype, args.model)))
        return

    from longrag.indexing import library_versions

    if args.render:
        saved = json.loads((ROOT / "benchmarks" / "results" / "encoder_speed.json").read_text())
        rows = saved["rows"]
        lengths = sorted({r["tokens"] for r in rows})
        dtypes = list(dict.fromkeys(r["dtype"] for r in rows))
        replace_block("encoder-speed", render(rows, saved["cpu"], saved["versions"], lengths, dtypes), RESULTS)
        return

    lengths = (512, 2048) if args.quick else tuple(int(x) for x in args.lengths.split(","))
    dtypes = ("float32",) if args.quick else tuple(args.dtypes.split(","))
    methods = [m.strip() for m in args.methods.split(",")]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; valid: {list(METHODS)}")
    cpu = cpu_info()
    rows = []
    for dtype in dtypes:
        for method in methods:
            for n in lengths:
                row = measure(method, n, dtype, args.model, cpu)
                rows.append(row)
                shown = row.get("error") or (f"{row['tokens_per_s']:>8,} tok/s  {row['seconds']:7.2f} s  "
                                             f"peak {row['peak_rss_mb']:7,.0f} MB  {100 * row['of_peak']:5.1f}% of FLOP bound")
                print(f"{dtype:9} {method:20} {n:>6}  {shown}", flush=True)
    versions = library_versions()
    out = ROOT / "benchmarks" / "results"
    if args.merge:
        measured = {(r["method"], r["tokens"], r["dtype"]) for r in rows}
        saved = json.loads((out / "encoder_speed.json").read_text())
        kept = [r for r in saved["rows"] if (r["method"], r["tokens"], r["dtype"]) not in measured]
        rows = kept + rows
        lengths = sorted({r["tokens"] for r in rows})
        dtypes = list(dict.fromkeys(r["dtype"] for r in rows))
    body = render(rows, cpu, versions, lengths, dtypes)
    if args.quick or args.no_readme:
        print(body)
        return
    out.mkdir(exist_ok=True)
    (out / "encoder_speed.json").write_text(json.dumps({"rows": rows, "cpu": cpu, "versions": versions}, indent=2))
    replace_block("encoder-speed", body, RESULTS)
    print(body)


if __name__ == "__main__":
    main()
