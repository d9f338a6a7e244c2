"""The held-out check of `longrag tune-positions`: does a document's vector retrieve its own passages?

Passages spread over each held-out document, embedded by the original model as short queries would
be, must find their own document among the held-out ones (Recall@1, MRR).
"""
from __future__ import annotations

import random

import numpy as np


def heldout_queries(encoder, held, length: int, seed: int, per_doc: int = 8, size: int = 64):
    """Passages spread over each held-out document's first window, embedded by the original model."""
    rng = random.Random(seed + 1)
    span = length - encoder.n_special - len(encoder.document_prefix_ids)
    passages, owner = [], []
    for row, (_, ids) in enumerate(held):
        n = min(len(ids), span)
        for k in range(per_doc):
            lo = round(k * (n - size) / per_doc)
            hi = round((k + 1) * (n - size) / per_doc)
            a = rng.randint(lo, max(lo, hi))
            passages.append(ids[a: a + size])
            owner.append(row)
    return encoder.encode_ids(passages), np.asarray(owner)


def heldout_metrics(encoder, long_model, held, queries, length: int) -> dict:
    """Recall@1 and MRR of passages → their own document among the held-out documents.

    `long_model=None` scores the original model on each document's first window (truncation).
    """
    vectors, owner = queries
    span = length - encoder.n_special - len(encoder.document_prefix_ids)
    docs = []
    for _, ids in held:
        if long_model is None:
            docs.append(encoder.encode_ids([ids[: encoder.segment_window]])[0])
        else:
            tokens = np.concatenate([np.asarray(encoder.document_prefix_ids, dtype=np.int64), ids[:span]])
            docs.append(encoder.encode_inputs([tokens], long_model)[0])
    scores = vectors @ np.stack(docs).T
    rank = (scores > scores[np.arange(len(owner)), owner][:, None]).sum(1)
    return {"recall@1": round(float((rank == 0).mean()), 4), "mrr": round(float((1 / (rank + 1)).mean()), 4)}


def format_metrics(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())


__all__ = ["heldout_queries", "heldout_metrics", "format_metrics"]
