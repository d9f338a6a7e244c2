"""What running one condition on one dataset produces, whichever pipeline ran it."""
from __future__ import annotations

from dataclasses import dataclass, field

DEPTH = 100  # documents ranked per query (Recall@100)


@dataclass
class RunResult:
    run: dict[str, dict[str, float]]
    spans: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)  # qid → doc_id → best span
    encode_seconds: float = 0.0
    tokens: int = 0
    index_bytes: int = 0  # vectors (+ BM25) on disk; the document store holding the text is excluded
    latencies_ms: list[float] = field(default_factory=list)
