"""Publish a finished `longrag compare` run: the `full` slice of regression.yaml, the README tables, the plots.

    .venv/bin/longrag compare --dataset qmsum,squality,cuad,passkey,needle --out runs/comparison
    .venv/bin/python benchmarks/comparison.py runs/comparison [MORE_RUNS...]
    .venv/bin/python benchmarks/comparison.py --e5 runs/e5   # another encoder's run beside MiniLM's (README only)

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

from longrag.evaluation.compare import Cell
from longrag.evaluation.report import headline_metric, plot_cost, plot_lengths

from readme_tables import RESULTS as RESULTS_MD, markdown_table, replace_block

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


def quality_columns(rows: list[dict]):
    """condition → column → headline values (one per synthetic length), Acc@1 per length, ordered columns."""
    quality: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    lengths: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for row in rows:
        task, _, size = row["dataset"].partition("-")
        column = f"{task} Acc@1" if row["dataset"].startswith(SYNTHETIC) else f"{row['dataset']} {row['metric'].replace('ndcg', 'nDCG')}"
        quality[row["condition"]][column].append(row["expected"])
        if size.isdigit():
            lengths[(task, row["condition"])][int(size)] = row["expected"]
    order = ("qmsum", "squality", "cuad", "passkey", "needle")  # real sets first, as in the issue
    columns = sorted(dict.fromkeys(c for per in quality.values() for c in per),
                     key=lambda c: next((i for i, name in enumerate(order) if c.startswith(name)), len(order)))
    return quality, lengths, columns


def tables(slice_: dict, records: list[dict]) -> str:
    """Conditions × datasets (synthetic lengths averaged), then Acc@1 per length."""
    quality, lengths, columns = quality_columns(slice_["rows"])
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


def beside_table(slice_: dict, records: list[dict]) -> str:
    """Another encoder's run beside MiniLM's `full` slice, on the same cells: "MiniLM / other" per column."""
    other = full_slice(records, {})["rows"]
    cells = {(r["condition"], r["dataset"]) for r in other}
    base, _, _ = quality_columns([r for r in slice_["rows"] if (r["condition"], r["dataset"]) in cells])
    mine, lengths, columns = quality_columns(other)
    mean = lambda values: f"{100 * sum(values) / len(values):.1f}" if values else "–"  # noqa: E731
    seconds = defaultdict(float)
    for r in records:
        seconds[r["condition"]] += r["encode_seconds"]
    queries = {r["dataset"].partition("-")[0]: f"{r['queries']}" + (f" per length, {r['documents']} docs" if
               r["dataset"].startswith(SYNTHETIC) else "") for r in records}
    encoder = records[0]["encoder"]
    rows = [[f"`{c}`", *(f"{mean(base[c].get(col))} / {mean(per.get(col))}" for col in columns), f"{seconds[c]:.0f}"]
            for c, per in mine.items()]
    sizes = sorted({n for per in lengths.values() for n in per})
    header = [f"condition (MiniLM / {encoder})", *columns, f"{encoder} encode s (all sets)"]
    note = (f"_{encoder} measured {records[0]['date_utc']} on {records[0]['processor']}, encoder dtype auto (bfloat16 "
            f"autocast); queries: {'; '.join(f'{k} {v}' for k, v in queries.items())}; synthetic Acc@1 averaged over "
            f"lengths {sizes}, MiniLM over the same lengths (its `full` slice: truncate/pcw/chunks256 float32, "
            f"hybrid_convex bfloat16)._")
    return markdown_table(header, rows) + "\n\n" + note


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
    parser.add_argument("--e5", action="store_true", help="the runs are of another encoder (e5-small): render them "
                        "beside the MiniLM `full` slice in README block 'comparison-e5' and change nothing else")
    args = parser.parse_args()
    records = [record for run in args.runs for record in run_records(run)]
    if args.e5:
        replace_block("comparison-e5", beside_table(yaml.safe_load(REGRESSION.read_text())["slices"]["full"], records),
                      RESULTS_MD)
        print(f"README block 'comparison-e5': {len(records)} cells of {records[0]['encoder']} beside the full slice")
        return
    slice_ = full_slice(records, yaml.safe_load(args.options))
    write_regression(slice_)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "comparison.json").write_text(json.dumps(records, indent=2))
    cells = [Cell(**json.loads(path.read_text())) for run in args.runs for path in sorted((run / "cells").glob("*.json"))]
    plot_lengths(cells, RESULTS / "quality_vs_length.png")
    plot_cost(cells, RESULTS / "quality_vs_encode_time.png", "encode_seconds", "encode time (s, summed)")
    replace_block("comparison", tables(yaml.safe_load(REGRESSION.read_text())["slices"]["full"], records), RESULTS_MD)
    print(f"updated {REGRESSION.relative_to(ROOT)} (full slice: {len(slice_['rows'])} rows), README block 'comparison', "
          f"plots in {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
