"""Publish a finished `longrag compare` run: the `full` slice of regression.yaml, the README tables, the plots.

    .venv/bin/longrag compare --dataset qmsum,squality,cuad,passkey,needle --out runs/comparison
    .venv/bin/python benchmarks/comparison.py runs/comparison [MORE_RUNS...]

Every finished cell of the given runs is published (several runs may hold different datasets).

The run's measured headline metrics become the `full` slice's expectations (so `longrag eval
--slice full` re-checks them), and the README's "Chunked vs whole-document" tables are rendered
from that slice, with cost columns and the environment taken from the run's results.json.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import yaml

from readme_tables import markdown_table, replace_block

from longrag.evaluation.compare import Cell
from longrag.evaluation.report import headline_metric, plot_cost, plot_lengths

ROOT = Path(__file__).resolve().parents[1]
REGRESSION = ROOT / "benchmarks" / "regression.yaml"
RESULTS = ROOT / "benchmarks" / "results"
SYNTHETIC = ("passkey-", "needle-")
TOLERANCE = 0.05  # about one query in 20 may flip rank on another CPU or BLAS


def full_slice(records: list[dict], options: dict) -> dict:
    rows = [{"condition": r["condition"], "dataset": r["dataset"], "metric": headline_metric(r["dataset"]),
             "expected": round(r[headline_metric(r["dataset"])], 4), "tolerance": TOLERANCE} for r in records
            if headline_metric(r["dataset"]) in r]
    return {"options": options, "rows": rows}


def write_regression(slice_: dict) -> None:
    """Replace the `full` slice, keeping the file's comments and other slices (appended as YAML)."""
    text = REGRESSION.read_text()
    head, _, _ = text.partition("\n  full:")
    body = yaml.safe_dump({"full": slice_}, sort_keys=False, width=200)
    REGRESSION.write_text(head.rstrip() + "\n" + "\n".join("  " + line for line in body.splitlines()) + "\n")


def tables(slice_: dict, records: list[dict]) -> str:
    """Conditions × datasets (synthetic lengths averaged), then Acc@1 per length."""
    quality: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    lengths: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for row in slice_["rows"]:
        task, _, size = row["dataset"].partition("-")
        column = f"{task} Acc@1" if row["dataset"].startswith(SYNTHETIC) else f"{row['dataset']} {row['metric'].replace('ndcg', 'nDCG')}"
        quality[row["condition"]][column].append(row["expected"])
        if size.isdigit():
            lengths[(task, row["condition"])][int(size)] = row["expected"]
    order = ("qmsum", "squality", "cuad", "passkey", "needle")  # real sets first, as in the issue
    columns = sorted(dict.fromkeys(c for per in quality.values() for c in per),
                     key=lambda c: next((i for i, name in enumerate(order) if c.startswith(name)), len(order)))
    cost = defaultdict(lambda: [0.0, 0, 0.0, 0, 0.0, 0.0])
    for r in records:
        cost[r["condition"]][0] += r["encode_seconds"]
        cost[r["condition"]][1] += r["index_bytes"]
        cost[r["condition"]][2] = max(cost[r["condition"]][2], r["query_ms_p95"])
        cost[r["condition"]][3] += r.get("documents", 0)
        cost[r["condition"]][4] = max(cost[r["condition"]][4], r.get("peak_memory_mb") or 0.0)
        cost[r["condition"]][5] += (r.get("tokens_per_s") or 0) * r["encode_seconds"]  # tokens encoded
    rows = []
    for condition, per in quality.items():
        values = [f"{100 * sum(per[c]) / len(per[c]):.1f}" if per.get(c) else "–" for c in columns]
        seconds, size, p95, docs, memory, tokens = cost[condition]
        rate = f"{tokens / seconds:.0f}" if tokens and seconds else "–"
        rows.append([f"`{condition}`", *values, f"{seconds:.0f}", rate, f"{size / max(1, docs) / 1e3:.0f}",
                     f"{p95:.0f}", f"{memory:.0f}"])
    out = [markdown_table(["condition", *columns, "encode s (all sets)", "tokens/s", "index KB/doc", "query p95 ms",
                           "peak extra MB"], rows)]
    if lengths:
        sizes = sorted({n for per in lengths.values() for n in per})
        out += ["", markdown_table(["task · condition", *map(str, sizes)],
                                   [[f"{task} · `{cond}`", *(f"{100 * per[n]:.0f}" if n in per else "–" for n in sizes)]
                                    for (task, cond), per in sorted(lengths.items())])]
    env = records[0]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    out += ["", f"_Measured {env['date_utc']} on {env['processor']} ({env['machine']}); encoder {env['encoder']}; "
                f"{versions}. Options: {slice_['options']}._"]
    return "\n".join(out)


def run_records(run: Path) -> list[dict]:
    """One record per finished cell of a run (results.json holds only its last call's cells)."""
    env = {k: v for k, v in json.loads((run / "results.json").read_text())[0].items()
           if k in ("versions", "machine", "processor", "date_utc")}
    records = []
    for path in sorted((run / "cells").glob("*.json")):
        cell = json.loads(path.read_text())
        records.append({"dataset": cell["dataset"], "condition": cell["condition"], **cell["metrics"], **cell["cost"],
                        **cell["meta"], **env})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="finished `longrag compare --out` folders")
    parser.add_argument("--options", default="{}", help="the compare options used, as YAML (recorded in the slice)")
    args = parser.parse_args()
    records = [record for run in args.runs for record in run_records(run)]
    slice_ = full_slice(records, yaml.safe_load(args.options))
    write_regression(slice_)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "comparison.json").write_text(json.dumps(records, indent=2))
    cells = [Cell(**json.loads(path.read_text())) for run in args.runs for path in sorted((run / "cells").glob("*.json"))]
    plot_lengths(cells, RESULTS / "quality_vs_length.png")
    plot_cost(cells, RESULTS / "quality_vs_encode_time.png", "encode_seconds", "encode time (s, summed)")
    replace_block("comparison", tables(yaml.safe_load(REGRESSION.read_text())["slices"]["full"], records))
    print(f"updated {REGRESSION.relative_to(ROOT)} (full slice: {len(slice_['rows'])} rows), README block 'comparison', "
          f"plots in {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
