"""Frozen data types shared by every stage: documents → segments → hits → evidence → answers."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import numpy as np


@dataclass(frozen=True)
class Document:
    """A loaded file. `doc_id` is the path relative to the indexed root (deterministic)."""

    doc_id: str
    path: str
    text: str
    sha256: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenizedText:
    """Token ids of a text (no special tokens) and each token's character span."""

    ids: np.ndarray  # (n,) int64
    offsets: np.ndarray  # (n, 2) int64, [start, end) in characters

    def __len__(self) -> int:
        return len(self.ids)


def balanced_windows(n: int, size: int) -> list[tuple[int, int]]:
    """Split n items into ceil(n/size) near-equal windows: a tiny leftover tail window would win
    max-similarity by accident."""
    if n <= 0:
        return []
    parts = math.ceil(n / size)
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


@dataclass(frozen=True)
class Span:
    """A character span of a document: `text` is exactly the document's text[start:end].

    The one span type: segments, candidates, evidence and citations are spans with more fields."""

    doc_id: str
    path: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Segment(Span):
    """A span cut on token boundaries, and how many encoder tokens it holds."""

    n_tokens: int


@dataclass(frozen=True)
class Candidate(Span):
    """A segment a selector may choose, with its stored vector and the whole document text if known."""

    vector: np.ndarray | None = field(default=None, compare=False, repr=False)
    document: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Evidence(Span):
    """A selected span, its generator tokens and the selector's score (higher is better)."""

    tokens: int
    score: float


@dataclass(frozen=True)
class Citation(Span):
    """A span an answer cites; `block` is its number [n] in the prompt the answer was written from.
    `page` (first), `pages` (all it touches) and `section` (heading path) when its document records
    them (documents/locations.py)."""

    block: int = 0
    page: int | None = None
    pages: tuple[int, ...] | None = None
    section: tuple[str, ...] | None = None


def merge_spans(spans: Iterable[tuple[int, int, float]], text: str | None = None) -> list[list]:
    """[start, end, score] spans of one document merged where they overlap or touch and, given the
    document `text`, where only whitespace lies between (segments end on token boundaries: the
    blank between two neighbours belongs to neither); a merged span keeps the highest score.
    Sorted by start."""
    out: list[list] = []
    for a, b, score in sorted(spans):
        if out and (a <= out[-1][1] or text is not None and not text[out[-1][1]:a].strip()):
            out[-1][1], out[-1][2] = max(out[-1][1], b), max(out[-1][2], score)
        else:
            out.append([a, b, score])
    return out


@dataclass(frozen=True)
class Hit:
    """One ranked document with the span that matched best. `sentence` is the [start, end) of the
    span's sentence that best matches the query, which the snippet is centred on; page, pages and
    section are where that sentence lies (the span's, without it) when the document records them."""

    doc_id: str
    path: str
    score: float
    start: int
    end: int
    snippet: str
    page: int | None = None
    pages: tuple[int, ...] | None = None
    section: tuple[str, ...] | None = None
    sentence: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    path: str
    reason: str
