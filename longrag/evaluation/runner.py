"""Run one condition on one dataset: index the corpus, search every query, time it all.

Returns a BEIR-shaped run {qid: {doc_id: score}} plus cost numbers; metrics are computed by the
caller so every condition is scored the same way.
"""
from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import psutil

from ..config import Config, with_overrides
from ..errors import InputError
from ..encoders import load_encoder
from ..index.shard import INFO, STORE
from ..lexical import BM25
from ..pipeline import Pipeline
from ..types import Document
from .conditions import Condition
from .vector_cache import CachedEncoder
from .peers import run_langchain
from .results import DEPTH, RunResult

__all__ = ["DEPTH", "RUNNERS", "PeakMemory", "RunResult", "latency_summary", "run_condition"]


def run_condition(condition: Condition, dataset, base: Config, workdir: Path, vectors: dict) -> RunResult:
    """Run `condition` on `dataset` with the runner its `kind` names (a key of `RUNNERS`); `vectors`
    is the run's shared vector cache (vector_cache.py)."""
    runner = RUNNERS.get(condition.kind)
    if runner is None:
        raise InputError(f"condition {condition.name!r} has unknown kind {condition.kind!r}; "
                         f"valid: {', '.join(RUNNERS)}")
    return runner(condition, dataset, base, workdir, vectors)


def _run_longrag(condition: Condition, dataset, base: Config, workdir: Path, vectors: dict) -> RunResult:
    """The condition's config overrides run through the real Pipeline: index on disk, search as users do."""
    config = with_overrides(base, **condition.overrides)
    encoder = CachedEncoder(load_encoder(config.encoder), vectors)
    pipe = Pipeline(config, encoder=encoder)
    documents = [Document(doc_id=doc_id, path=f"{dataset.name}/{doc_id}", text=text,
                          sha256=hashlib.sha256(text.encode()).hexdigest()) for doc_id, text in dataset.corpus.items()]
    index_dir = workdir / f"{condition.name}-{dataset.name}"
    report = pipe.index_documents(documents, index_dir, rebuild=True, progress=False)
    # vectors reused from the harness's shared cache are charged the time they first took
    result = RunResult(run={}, encode_seconds=report.seconds + encoder.cached_seconds, tokens=report.tokens,
                       index_bytes=sum(p.stat().st_size for shard in pipe.store.shards for p in shard.folder.rglob("*")
                                       if p.is_file() and p.name not in (STORE, INFO)))
    depth = min(DEPTH, len(documents))
    for qid, query in dataset.queries.items():
        started = time.perf_counter()
        hits = pipe.search(query, k=depth)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        result.run[qid] = {h.doc_id: float(h.score) for h in hits}
        result.spans[qid] = {h.doc_id: (h.start, h.end) for h in hits[:10]}
    return result


def _run_bm25(condition: Condition, dataset, base: Config, workdir: Path, vectors: dict) -> RunResult:
    """BM25 over whole documents; no encoder, so `base` and `workdir` are unused."""
    ids = list(dataset.corpus)
    started = time.perf_counter()
    index = BM25.build([dataset.corpus[i] for i in ids])
    with tempfile.TemporaryDirectory() as tmp:
        index.save(Path(tmp))
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    result = RunResult(run={}, encode_seconds=time.perf_counter() - started, index_bytes=size)
    depth = min(DEPTH, len(ids))
    for qid, query in dataset.queries.items():
        started = time.perf_counter()
        scores, rows = index.search(query, depth, drop_zero=False)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        result.run[qid] = {ids[int(r)]: float(s) for r, s in zip(rows, scores)}
    return result


def _run_langchain(condition: Condition, dataset, base: Config, workdir: Path, vectors: dict) -> RunResult:
    """The LangChain peer (splitter + FAISS) on the base config's encoder model."""
    return run_langchain(dataset, base.encoder.model)


# Condition kind → the function that runs a condition of that kind.
RUNNERS: dict[str, Callable[[Condition, object, Config, Path, dict], RunResult]] = {
    "longrag": _run_longrag, "bm25": _run_bm25, "langchain": _run_langchain}


class PeakMemory:
    """Highest resident memory of this process while the block runs, above what it held at the
    start (MB): what a condition needed on top of the harness, sampled every 10 ms because RSS
    high-water marks (ru_maxrss) cannot be reset between conditions."""

    def __init__(self, interval: float = 0.01):
        self._process, self._interval = psutil.Process(), interval
        self._stop = threading.Event()
        self.start_mb = self.peak_mb = 0.0

    def _rss_mb(self) -> float:
        return self._process.memory_info().rss / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    def __enter__(self) -> "PeakMemory":
        self.start_mb = self.peak_mb = self._rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())

    @property
    def extra_mb(self) -> float:
        return self.peak_mb - self.start_mb


def latency_summary(latencies_ms: list[float]) -> tuple[float, float]:
    if not latencies_ms:
        return 0.0, 0.0
    return float(np.percentile(latencies_ms, 50)), float(np.percentile(latencies_ms, 95))
