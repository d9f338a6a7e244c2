"""Candidate segments read from an index: every segment of the chosen documents, with its vector."""
from __future__ import annotations

from .evidence import Candidate


def candidates_of(store, doc_id: str) -> list[Candidate]:
    """All segments of one indexed document, in document order, with their stored vectors (and the
    document text, so a selection can widen a segment to whole sentences)."""
    row = store.document_row(doc_id)
    text = row["text"]
    spans, vectors = store.segments_of(doc_id)
    return [Candidate(doc_id, row["path"], start, end, text[start:end], vectors[i], text)
            for i, (start, end, _) in enumerate(spans)]
