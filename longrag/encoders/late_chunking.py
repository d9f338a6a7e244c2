"""Late chunking (Günther et al. 2024): encode the whole document once, then mean-pool the token
vectors of each segment's span, so segment vectors carry document context.

Documents longer than one window are read in overlapping windows (`overlap` tokens of shared context);
each token's vector comes from the window where it sits furthest from an edge. Work is done window by
window with running span sums, so memory stays bounded by one window whatever the document length.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def late_chunk_vectors(encoder, ids: np.ndarray, spans: Sequence[tuple[int, int]], window: int | None = None,
                       overlap: int = 64) -> np.ndarray:
    """One L2-normalised vector (encoder.dim wide) per token span [a, b) of `ids` (content tokens only).

    Uses `encoder.long_model` when the encoder has one, else the original model. `window` counts
    content tokens per forward pass (default: as many as the model reads, less specials and prefix).
    """
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    bounds = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    bad = [tuple(map(int, s)) for s in bounds if not 0 <= s[0] < s[1] <= n]
    if bad:
        raise ValueError(f"spans must be non-empty [a, b) ranges within the document's {n} tokens; got {bad[:3]}")
    model = encoder.long_model if encoder.long_model is not None else encoder.model
    prefix = np.asarray(encoder.document_prefix_ids, dtype=np.int64)
    capacity = getattr(model, "longrag_max_tokens", encoder.max_positions) - encoder.n_special - len(prefix)
    window = int(window) if window is not None else min(capacity, encoder.long_window - len(prefix))
    if window > capacity:
        raise ValueError(f"late-chunking window of {window} tokens exceeds the model's {capacity} content tokens")
    if n > window and window <= 2 * overlap:
        raise ValueError(f"late-chunking window ({window}) must be more than twice the overlap ({overlap})")

    sums = np.zeros((len(bounds), encoder.full_dim), dtype=np.float64)
    head = encoder.head_length + len(prefix)
    for (start, end), (keep_a, keep_b) in overlapping_windows(n, window, overlap):
        states, _ = encoder.token_states_batch([np.concatenate([prefix, ids[start:end]])], model)
        tokens = states[0, head + keep_a - start: head + keep_b - start].double().cpu().numpy()
        cumsum = np.vstack([np.zeros((1, tokens.shape[1])), np.cumsum(tokens, axis=0)])
        a = np.clip(bounds[:, 0], keep_a, keep_b) - keep_a
        b = np.clip(bounds[:, 1], keep_a, keep_b) - keep_a
        sums += cumsum[b] - cumsum[a]  # each span's share of the tokens this window owns
        del states, tokens, cumsum
    vectors = sums / (bounds[:, 1] - bounds[:, 0])[:, None] if len(bounds) else sums
    vectors = vectors[:, : encoder.dim]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def overlapping_windows(n: int, window: int, overlap: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """[(window span, owned span)]: evenly spread windows overlapping by ≥ `overlap`; each boundary
    token goes to the window where it is furthest from an edge (the midpoint of the shared part)."""
    if n <= window:
        return [((0, n), (0, n))]
    count = math.ceil((n - overlap) / (window - overlap))
    starts = [round(k * (n - window) / (count - 1)) for k in range(count)]
    spans = [(a, a + window) for a in starts]
    cuts = [0] + [(spans[k + 1][0] + spans[k][1] + 1) // 2 for k in range(count - 1)] + [n]
    return [(spans[k], (cuts[k], cuts[k + 1])) for k in range(count)]


__all__ = ["late_chunk_vectors"]
