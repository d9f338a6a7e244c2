"""`longrag compare`: conditions × datasets in one run → results.json, report.md, plots.

Resumable: each finished (dataset, condition) cell is saved to `<out>/cells/` and reused while the
dataset (documents, questions, judgements) and the settings are those it was computed on.
"""
from __future__ import annotations

import hashlib
import json
import platform
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from ..config import Config
from ..indexing import library_versions
from .conditions import Condition
from .metrics import DEFAULT_METRICS, evaluate, evaluate_per_query, span_hits
from .report import write_report
from .runner import PeakMemory, latency_summary, run_condition

METRICS = DEFAULT_METRICS  # every cell's metrics
PAIRED_METRICS = ("ndcg@10", "recall@1")  # kept per query in each cell, for paired tests


@dataclass(frozen=True)
class Cell:
    dataset: str
    condition: str
    metrics: dict
    per_query: dict  # metric → {qid: value}, for paired tests
    cost: dict
    meta: dict


def fingerprint(dataset, condition: Condition, base: Config) -> str:
    """What a cell's numbers depend on: the documents, the questions and their judgements, the condition
    and the base settings (a folder of synthesized questions grows; a saved cell must not outlive it)."""
    digest = hashlib.sha256()
    for doc_id in sorted(dataset.corpus):
        digest.update(f"{doc_id}\0{dataset.corpus[doc_id]}\0".encode())
    digest.update(json.dumps([dataset.queries, dataset.qrels, condition.name, base.to_dict()], sort_keys=True,
                             default=str).encode())
    return digest.hexdigest()


def run_cell(dataset, condition: Condition, base: Config, out: Path, vectors: dict) -> Cell:
    path = out / "cells" / f"{dataset.name}__{condition.name}.json"
    key = fingerprint(dataset, condition, base)
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["meta"].get("fingerprint") == key:
            return Cell(**saved)
    with tempfile.TemporaryDirectory(dir=out) as work, PeakMemory() as memory:
        result = run_condition(condition, dataset, base, Path(work), vectors)
    metrics = evaluate(dataset.qrels, result.run, METRICS)
    per_query = evaluate_per_query(dataset.qrels, result.run, PAIRED_METRICS)
    span = span_hits(dataset, result.spans) if result.spans else None  # bm25 ranks documents, no spans
    if span is not None:
        metrics["span_hit@10"] = span
    p50, p95 = latency_summary(result.latencies_ms)
    docs = len(dataset.corpus)
    cost = {"encode_seconds": round(result.encode_seconds, 2),
            "tokens_per_s": round(result.tokens / result.encode_seconds) if result.tokens and result.encode_seconds else None,
            "index_bytes": result.index_bytes, "index_bytes_per_doc": round(result.index_bytes / docs),
            "query_ms_p50": round(p50, 2), "query_ms_p95": round(p95, 2),
            "peak_memory_mb": round(memory.extra_mb, 1), "process_peak_rss_mb": round(memory.peak_mb, 1)}
    meta = {"queries": len(dataset.queries), "documents": docs, "encoder": base.encoder.model,
            "description": condition.description, "dataset_meta": dataset.meta, "fingerprint": key}
    cell = Cell(dataset.name, condition.name, metrics, per_query, cost, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cell.__dict__))
    return cell


def compare(datasets: list, conditions: list[Condition], base: Config, out: Path, progress: bool = True) -> list[Cell]:
    out.mkdir(parents=True, exist_ok=True)
    cells = []
    vectors: dict = {}  # conditions share chunk vectors (vector_cache.py); encode times stay uncached ones
    for condition in conditions:
        for dataset in tqdm(datasets, desc=condition.name, unit="dataset", disable=not progress):
            cells.append(run_cell(dataset, condition, base, out, vectors))
    write_results(cells, out)
    return cells


def environment() -> dict:
    return {"versions": library_versions(), "machine": platform.platform(),
            "processor": _cpu(), "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_results(cells: list[Cell], out: Path) -> None:
    env = environment()
    records = [{"dataset": c.dataset, "condition": c.condition, **c.metrics, **c.cost, **c.meta, **env} for c in cells]
    (out / "results.json").write_text(json.dumps(records, indent=2, default=str))
    write_report(cells, out, env)
