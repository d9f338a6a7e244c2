"""Vectors the comparison harness computes once and reuses across conditions over the same chunks.

The harness runs many conditions over the same documents; a condition whose segments equal
another's gets their vectors from here instead of encoding them again. Each reused vector is
charged the forward time it first took, so reported encode times are those of an uncached run.
"""
from __future__ import annotations

import json
import time
from typing import Callable, Sequence

import numpy as np


class CachedEncoder:
    """An encoder whose `encode_ids` reuses vectors of identical inputs from `cache` (shared by
    every CachedEncoder of the same run); every other member is the wrapped encoder's own."""

    def __init__(self, encoder, cache: dict):
        self.encoder, self.cache = encoder, cache
        self.cached_seconds = 0.0  # forward time the cache saved this encoder
        self._identity = json.dumps(encoder.describe(), sort_keys=True, default=str)  # what makes vectors differ

    def __getattr__(self, name: str):
        return getattr(self.encoder, name)

    def encode_ids(self, batch: Sequence[np.ndarray], progress: Callable[[int], None] | None = None) -> np.ndarray:
        keys = [(self._identity, np.asarray(ids, dtype=np.int64).tobytes()) for ids in batch]
        out = np.zeros((len(batch), self.encoder.dim), dtype=np.float32)
        todo = []
        for i, key in enumerate(keys):
            if key in self.cache:
                out[i], seconds = self.cache[key]
                self.cached_seconds += seconds
            else:
                todo.append(i)
        if todo:
            began = time.perf_counter()
            computed = self.encoder.encode_ids([batch[i] for i in todo], progress)
            spent, tokens = time.perf_counter() - began, sum(len(batch[i]) for i in todo)
            for i, row in zip(todo, computed):
                out[i] = row
                self.cache[keys[i]] = (row, spent * len(batch[i]) / max(1, tokens))  # its share by tokens
        return out
