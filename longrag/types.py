"""Frozen data types shared by every stage: documents → segments → hits → evidence → answers."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A loaded file. `doc_id` is the path relative to the indexed root (deterministic)."""

    doc_id: str
    path: str
    text: str
    sha256: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Segment:
    """A character span of a document, cut on token boundaries."""

    doc_id: str
    start: int
    end: int
    text: str
    n_tokens: int

    @property
    def segment_id(self) -> str:
        return f"{self.doc_id}#{self.start}-{self.end}"


@dataclass(frozen=True)
class Hit:
    """One ranked document with the span that matched best."""

    doc_id: str
    path: str
    score: float
    start: int
    end: int
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    path: str
    reason: str
