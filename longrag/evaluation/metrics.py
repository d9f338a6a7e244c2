"""Retrieval metrics (computed by ranx), passage-level span metrics, and a paired significance
test for comparing two systems.

Two conventions keep scores honest:
- a query the run does not answer scores 0 on every metric; dropping it would flatter a system
  that fails exactly on the hard queries;
- tied scores are broken against the system (relevant documents rank after irrelevant ones with
  the same score), so a scorer that cannot tell documents apart earns nothing from the order its
  caller happened to list them in.

ranx compiles its metrics with numba on first use (cached on disk afterwards, next to ranx or in
$NUMBA_CACHE_DIR), and importing ranx and loading that cache is slow, so ranx is imported lazily,
as is scipy.stats (only the paired test needs it).
"""
from __future__ import annotations

import warnings
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..types import merge_spans as merge_runs
from .retrieval_dataset import RetrievalDataset, Span

DEFAULT_METRICS = ("ndcg@10", "recall@1", "recall@10", "recall@100", "mrr@10")

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]  # query id → {doc id: score}, higher is better
_NOTHING = "n00000000"  # stands in for an empty result list; never relevant (doc codes start with d)


def evaluate(qrels: Qrels, run: Run, metrics: Iterable[str] = DEFAULT_METRICS) -> dict[str, float]:
    """{metric: mean over every judged query}, each in 0..1."""
    per_query = evaluate_per_query(qrels, run, metrics)
    return {metric: float(np.mean(list(scores.values()))) for metric, scores in per_query.items()}


def evaluate_metric(qrels: Qrels, run: Run, metric: str) -> float:
    """One metric's mean over every judged query, in 0..1."""
    return evaluate(qrels, run, [metric])[metric]


def evaluate_per_query(qrels: Qrels, run: Run, metrics: Iterable[str] = DEFAULT_METRICS) -> dict[str, dict[str, float]]:
    """{metric: {query id: score}} for every judged query, for paired tests between systems.
    Run entries for queries not in qrels are ignored."""
    if isinstance(metrics, str):  # a string is an iterable of one-letter "metrics"
        raise TypeError(f"metrics must be a list of names, not the string {metrics!r}; "
                        f"for one metric use evaluate_metric or evaluate_metric_per_query")
    metrics = list(metrics)
    if not metrics:
        raise InputError("no metrics requested")
    from ranx import Qrels as RanxQrels, Run as RanxRun, evaluate as ranx_evaluate

    qids, coded_qrels, coded_run = _prepare(qrels, run)
    ranx_run = RanxRun(coded_run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety chatter, not a problem of the inputs
        try:
            ranx_evaluate(RanxQrels(coded_qrels), ranx_run, metrics, return_mean=False)
        except ValueError as exc:  # ranx names the metrics it supports
            raise InputError(f"bad metric in {metrics}: {exc}") from None
    per_query = ranx_run.scores  # {metric: {coded query id: score}}, filled in by ranx_evaluate
    return {metric: {qid: float(per_query[metric][_query_code(i)]) for i, qid in enumerate(qids)}
            for metric in metrics}


def evaluate_metric_per_query(qrels: Qrels, run: Run, metric: str) -> dict[str, float]:
    """{query id: score} of one metric for every judged query."""
    return evaluate_per_query(qrels, run, [metric])[metric]


def _prepare(qrels: Qrels, run: Run) -> tuple[list[str], dict, dict]:
    """Query ids in order, and qrels and run for ranx under fixed-width codes.

    The run is re-scored by rank so that ranx sees the tie-broken order (score desc, then relevant
    last, then doc id); a query missing from the run gets one irrelevant stand-in, so it scores 0.
    Ids are coded at one fixed width because ranx stores them in fixed-width numpy arrays and
    numba compiles its metrics again (seconds each) for every new width.
    """
    judged = {str(q): {str(d): int(r) for d, r in docs.items()} for q, docs in qrels.items()}
    unjudged = [q for q, docs in judged.items() if not any(r > 0 for r in docs.values())]
    if not judged or unjudged:
        raise InputError(f"every query in qrels needs a relevant document; these have none: {unjudged[:5]}"
                         if unjudged else "qrels are empty")
    run = {str(q): docs for q, docs in run.items()}
    if run and not set(run) & set(judged):
        raise InputError(f"the run shares no query id with qrels (run ids look like {list(run)[:3]}, "
                         f"qrels ids like {list(judged)[:3]})")
    codes: dict[str, str] = {}

    def code(doc_id) -> str:
        return codes.setdefault(str(doc_id), f"d{len(codes):08d}")

    qids = list(judged)
    coded_qrels, coded_run = {}, {}
    for i, qid in enumerate(qids):
        relevance = judged[qid]
        if any(score != score for score in map(float, run.get(qid, {}).values())):
            raise InputError(f"the run gives a NaN score for query {qid!r}; NaN cannot be ranked")
        order = sorted(run.get(qid, {}).items(),
                       key=lambda item: (-float(item[1]), relevance.get(str(item[0]), 0) > 0, str(item[0])))
        key = _query_code(i)
        coded_qrels[key] = {code(doc): r for doc, r in relevance.items()}
        coded_run[key] = {code(doc): float(len(order) - rank) for rank, (doc, _) in enumerate(order)} or {_NOTHING: 0.0}
    return qids, coded_qrels, coded_run


def _query_code(index: int) -> str:
    return f"q{index:08d}"


def accuracy_at_1(qrels: Qrels, run: Run) -> float:
    """Fraction of queries whose top document is relevant (LongEmbed's passkey/needle score)."""
    return evaluate_metric(qrels, run, "hit_rate@1")


def paired_test(per_query_a: Mapping[str, float] | Sequence[float],
                per_query_b: Mapping[str, float] | Sequence[float],
                resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Is A better than B? {"mean_difference": mean of A - B per query, "ci_low"/"ci_high": its
    95% bootstrap interval (fixed seed), "p_value": two-sided paired t-test, "n": queries}.

    Dicts are paired by query id (they must hold the same ids); sequences by position.
    """
    from scipy.stats import ttest_rel

    if isinstance(per_query_a, Mapping) != isinstance(per_query_b, Mapping):
        raise InputError("give both systems' scores as {query id: score} or both as sequences")
    if isinstance(per_query_a, Mapping):
        if set(per_query_a) != set(per_query_b):
            only = sorted(set(per_query_a) ^ set(per_query_b))
            raise InputError(f"the two systems were scored on different queries, e.g. {only[:5]}")
        keys = sorted(per_query_a)
        a = np.array([per_query_a[k] for k in keys], float)
        b = np.array([per_query_b[k] for k in keys], float)
    else:
        a, b = np.asarray(per_query_a, float), np.asarray(per_query_b, float)
        if a.shape != b.shape:
            raise InputError(f"the two systems have {a.size} and {b.size} scores; they must be paired")
    if a.size < 2:
        raise InputError("a paired test needs at least 2 queries")
    diff = a - b
    means = diff[np.random.default_rng(seed).integers(0, diff.size, (resamples, diff.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    if np.allclose(diff, diff[0]):  # no spread: the t statistic is undefined
        p_value = 1.0 if diff[0] == 0 else 0.0
    else:
        p_value = float(ttest_rel(a, b).pvalue)
    return {"mean_difference": float(diff.mean()), "ci_low": float(low), "ci_high": float(high),
            "p_value": p_value, "n": int(diff.size)}


def significance(cells: list, baseline: str, metric: str = "ndcg@10") -> list[dict]:
    """Paired comparison of every condition against `baseline` on each dataset (same queries).

    `cells` are comparison cells (`compare.Cell`): dataset, condition and per_query scores.
    """
    by_key = {(c.dataset, c.condition): c for c in cells}
    rows = []
    for c in cells:
        base = by_key.get((c.dataset, baseline))
        if base is None or c.condition == baseline:
            continue
        a, b = c.per_query[metric], base.per_query[metric]
        qids = sorted(set(a) & set(b))
        test = paired_test([a[q] for q in qids], [b[q] for q in qids])
        rows.append({"dataset": c.dataset, "condition": c.condition, "baseline": baseline, "metric": metric, **test})
    return rows


# ---------------------------------------------------------------------------------------------
# Passage-level metrics: character spans (doc_id, start, end), half-open


def merge_spans(spans: Iterable[Span]) -> dict[str, list[tuple[int, int]]]:
    """{doc_id: [(start, end), ...]}: each document's spans in order, overlapping or touching ones
    merged into one covered stretch."""
    by_doc: dict[str, list[tuple[int, int, float]]] = {}
    for doc_id, start, end in spans:
        by_doc.setdefault(doc_id, []).append((start, end, 0.0))
    return {doc_id: [(a, b) for a, b, _ in merge_runs(runs)] for doc_id, runs in sorted(by_doc.items())}


def spans_overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Do two (start, end) ranges of the same document share at least one character?"""
    return a[0] < b[1] and b[0] < a[1]


def span_recall(gold_spans: Iterable[Span], selected_spans: Iterable[Span]) -> float:
    """Fraction of gold (doc_id, start, end) spans lying wholly inside the union of the selected
    spans of the same document: did the retrieved passages contain the evidence?"""
    gold = list(gold_spans)
    if not gold:
        raise InputError("span_recall needs at least one gold span")
    merged = merge_spans(selected_spans)
    covered = sum(any(a <= start and end <= b for a, b in merged.get(doc_id, [])) for doc_id, start, end in gold)
    return covered / len(gold)


def span_hits(dataset: RetrievalDataset, spans: Mapping[str, Mapping[str, tuple[int, int]]]) -> float | None:
    """Fraction of queries whose relevant document is in the top 10 with its best span overlapping
    a gold span; None when the dataset has no gold passages. `spans`: {qid: {doc_id: (start, end)}}."""
    if not dataset.passages:
        return None
    hits = 0
    for qid, gold in dataset.passages.items():
        found = spans.get(qid, {})
        hits += any(doc in found and spans_overlap(found[doc], (start, end)) for doc, start, end in gold)
    return hits / max(1, len(dataset.passages))
