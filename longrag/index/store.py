"""Read side of an index: one generation — its manifest and the shards it lists, with their
tombstones — opened whole, searched as one collection."""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np

from ..errors import IndexNotFoundError
from ..lexical import LexicalSettings, best
from .layout import MANIFEST, SHARDS, is_index, live_generation, superseded
from .manifest import Manifest, ManifestError, NewerFormatError
from .shard import Shard, ShardFileError, lexical_scores

_OPEN_TRIES = 5  # a writer may publish (and remove the generation being opened) between two reads
# one opening at a time per process: numpy reads .npy headers with ast.literal_eval, which raises
# SystemError in concurrent threads on CPython 3.11.0-3.11.7 (python/cpython#106905)
_OPENING = threading.Lock()

SegmentHit = tuple[float, str, int, int]  # (score, doc_id, start, end)


def resolve_index_dir(name_or_path: str | Path, root: str | Path = "indexes") -> Path:
    """A bare name means `<root>/<name>`; anything with a path separator is used as given."""
    text = str(name_or_path)
    if "/" in text or "\\" in text or text.startswith("."):
        return Path(text).expanduser()
    return Path(root) / text


def list_indexes(root: str | Path = "indexes") -> list[str]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and is_index(p))


def damaged(path: Path, detail: str) -> IndexNotFoundError:
    return IndexNotFoundError(f"index {path} is damaged ({detail}); rebuild it: longrag index DIR --index {path} --rebuild")


def read_manifest(generation: Path, path: Path) -> Manifest:
    """A generation's manifest, checked to be one this longrag reads (older formats migrated)."""
    try:
        return Manifest.load(generation / MANIFEST)
    except FileNotFoundError:
        if superseded(generation, path):
            raise  # replaced by a newer generation while being opened: the caller retries
        raise damaged(path, f"{MANIFEST} is missing") from None
    except NewerFormatError as exc:
        raise IndexNotFoundError(f"index {path} {exc}") from None
    except ManifestError as exc:
        raise damaged(path, f"{MANIFEST} {exc}") from None
    except (ValueError, OSError) as exc:
        raise damaged(path, f"{MANIFEST} cannot be read: {exc}") from None


class OldFormatError(IndexNotFoundError):
    """An index written before shards (format 1): an update converts it without re-encoding."""


class IndexStore:
    """One generation of an index, opened whole: the manifest and every shard it lists are read
    when the store is made, so a later update never mixes into it. Safe to search from many threads."""

    def __init__(self, path: Path):
        if not is_index(path):
            available = list_indexes(path.parent)
            hint = f"; available in {path.parent}: {', '.join(available)}" if available else \
                f"; build one with: longrag index DIR --index {path.name}"
            raise IndexNotFoundError(f"no longrag index at {path}{hint}")
        for attempt in range(_OPEN_TRIES):
            try:
                with _OPENING:
                    self._open(path)
                break
            except FileNotFoundError as exc:
                if attempt == _OPEN_TRIES - 1:
                    raise damaged(path, f"{exc.filename or 'a file'} does not exist") from None

    def _open(self, path: Path) -> None:
        self.path = path
        self.generation = live_generation(path)
        self.manifest = read_manifest(self.generation, path)
        if self.manifest.format_version < 2:
            raise OldFormatError(
                f"index {path} was written by an older longrag (format 1, before shards): update it once with "
                f"`longrag index <its folders> --index {path}` — stored vectors are reused, nothing is re-encoded")
        shards = []
        try:
            for entry in self.manifest.shards:
                shards.append(Shard(path / SHARDS / entry["name"], entry["deleted"]))
        except FileNotFoundError:
            if superseded(self.generation, path):
                raise  # a newer generation replaced this one (and removed its shards) meanwhile: retry
            missing, others = self.manifest.shards[len(shards)]["name"], len(self.manifest.shards) - 1
            raise damaged(path, f"shard {missing} is missing" + (f"; the other {others} shards are intact" if others
                                                                 else "")) from None
        except (ShardFileError, sqlite3.DatabaseError, RuntimeError, ValueError, OSError) as exc:
            name = self.manifest.shards[len(shards)]["name"]
            raise damaged(path, f"shard {name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        self.shards = shards
        self._where = {doc_id: (i, ordinal) for i, shard in enumerate(shards)
                       for ordinal, doc_id in enumerate(shard.doc_ids) if shard.alive[ordinal]}
        self.lexical = LexicalSettings(**self.manifest.lexical) if self.manifest.lexical else None

    @property
    def mode(self) -> str:
        """How this index ranks documents (index.mode it was built with)."""
        return self.manifest.mode

    @property
    def has_document_vectors(self) -> bool:
        return any(s.document_index is not None for s in self.shards)

    @property
    def segment_count(self) -> int:
        return sum(s.live_segments for s in self.shards)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in self._where

    def is_current(self) -> bool:
        """Whether this is still the index's live generation."""
        try:
            return live_generation(self.path) == self.generation
        except IndexNotFoundError:
            return False

    # -- lookups ----------------------------------------------------------------------------------
    def documents(self) -> dict[str, dict]:
        """Every live document: {doc_id: {path, sha256, n_tokens, truncated_tokens}}."""
        keys = ("path", "sha256", "n_tokens", "truncated_tokens")
        out = {}
        for shard in self.shards:
            for ordinal, doc_id, *values in shard.document_rows(columns=("doc_id", *keys)):
                if shard.alive[ordinal]:
                    out[doc_id] = dict(zip(keys, values))
        return out

    def locate(self, doc_id: str) -> tuple[Shard, int]:
        shard, ordinal = self._where[doc_id]
        return self.shards[shard], ordinal

    def span_text(self, doc_id: str, start: int, end: int) -> tuple[str, str]:
        """(path, text[start:end]) without loading the whole document."""
        shard, ordinal = self.locate(doc_id)
        return shard.span_text(ordinal, start, end)

    def document_row(self, doc_id: str) -> dict:
        shard, ordinal = self.locate(doc_id)
        row = dict(zip(("doc_id", "path", "sha256", "n_chars", "n_tokens", "truncated_tokens", "metadata", "text"),
                       shard.document_rows([ordinal])[0][1:]))
        row["metadata"] = json.loads(row["metadata"])
        return row

    def document_metadata(self, doc_id: str) -> dict:
        """The document's metadata alone (its text is not read)."""
        shard, ordinal = self.locate(doc_id)
        return json.loads(shard.document_rows([ordinal], columns=("metadata",))[0][1])

    def segments_of(self, doc_id: str) -> tuple[list[tuple[int, int, int]], np.ndarray]:
        """(start, end, n_tokens) of every segment of a document, in order, and their vectors."""
        shard, ordinal = self.locate(doc_id)
        rows = shard.segments_of(ordinal)
        return [(int(s), int(e), int(n)) for _, s, e, n in shard.spans[rows]], np.asarray(shard.vectors[rows])

    def best_span(self, doc_id: str, query: np.ndarray) -> tuple[int, int]:
        """The document's segment closest to the query (read from the memory-mapped vectors)."""
        shard, ordinal = self.locate(doc_id)
        rows = shard.segments_of(ordinal)
        if rows.start == rows.stop:
            return (0, 0)
        best = rows.start + int(np.argmax(shard.vectors[rows] @ query))
        return int(shard.spans[best, 1]), int(shard.spans[best, 2])

    # -- search -----------------------------------------------------------------------------------
    def segment_hits(self, query: np.ndarray, n: int) -> list[SegmentHit]:
        """The n best live segments over all shards, best first."""
        hits = []
        for shard in self.shards:
            scores, rows = shard.search_segments(query, n)
            hits += _segment_hits(shard, scores[0], rows[0])
        return sorted(hits, key=lambda h: -h[0])[:n]

    def best_segment_per_document(self, query: np.ndarray, k: int, pool: int) -> list[SegmentHit]:
        """The k documents whose best segment is closest to the query, with that segment.

        Each shard is searched once for enough segments to hold k documents on average (at least
        `pool`); only a shard whose long documents crowd the pool is searched again, exhaustively."""
        chosen: dict[str, SegmentHit] = {}
        for shard in self.shards:
            live, documents = shard.live_segments, max(1, shard.live_documents)
            want = min(live, max(pool, 2 * k * -(-live // documents)))
            while True:
                scores, rows = shard.search_segments(query, want)
                first = _first_per_document(shard.spans[rows[0], 0])
                if len(first) >= min(k, shard.live_documents) or want >= live:
                    break
                want = live
            for hit in _segment_hits(shard, scores[0][first[:k]], rows[0][first[:k]]):  # a document lives in one shard
                chosen[hit[1]] = hit
        return sorted(chosen.values(), key=lambda h: -h[0])[:k]

    def document_hits(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The k documents whose document vector is closest to the query."""
        hits = []
        for shard in self.shards:
            if shard.document_index is None:
                continue
            scores, rows = shard.search_documents(query, k)
            hits += [(shard.doc_ids[int(r)], float(s)) for s, r in zip(scores[0], rows[0])]
        return sorted(hits, key=lambda h: -h[1])[:k]

    def lexical_hits(self, query: str, n: int, weights: dict[str, float] | None = None) -> list[SegmentHit]:
        """The n best segments by BM25F (statistics pooled over all shards; `weights`: field → weight,
        for the fields the index counts); none without a shared term."""
        if self.lexical is None:
            return []
        hits = []
        for shard, scores in zip(self.shards, lexical_scores(query, self.shards, self.lexical, weights)):
            top, rows = best(scores, n)
            hits += _segment_hits(shard, top, rows)
        return sorted(hits, key=lambda h: -h[0])[:n]


def _segment_hits(shard: Shard, scores: np.ndarray, rows: np.ndarray) -> list[SegmentHit]:
    spans = shard.spans[rows, :3].tolist()
    return [(score, shard.doc_ids[doc], start, end) for score, (doc, start, end) in zip(scores.tolist(), spans)]


def _first_per_document(documents: np.ndarray) -> np.ndarray:
    """Positions of each document's first (best) hit in a ranked array of document ordinals, in order."""
    _, first = np.unique(documents, return_index=True)
    return np.sort(first)
