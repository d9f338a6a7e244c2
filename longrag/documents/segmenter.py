"""Cut a tokenized document into balanced, token-aware segments with character offsets.

Balanced (ceil(n/max) near-equal parts) rather than fixed-size: a tiny leftover tail segment wins
max-similarity by accident.
"""
from __future__ import annotations

from ..types import Document, Segment, TokenizedText, balanced_windows


def segment_document(document: Document, tokens: TokenizedText, max_tokens: int) -> list[tuple[Segment, int, int]]:
    """Segments with their token span [a, b) into `tokens`; character span covers whole tokens."""
    out = []
    for a, b in balanced_windows(len(tokens), max_tokens):
        start = int(tokens.offsets[a, 0])
        end = int(tokens.offsets[b - 1, 1])
        segment = Segment(document.doc_id, document.path, start, end, document.text[start:end], b - a)
        out.append((segment, a, b))
    return out
