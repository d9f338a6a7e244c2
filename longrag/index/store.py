"""Read side of an index directory: manifest, FAISS indexes, and the SQLite document store."""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np

from ..errors import IndexNotFoundError
from .lexical import load_bm25, search_bm25
from .vectors import load_faiss, search_faiss

MANIFEST = "manifest.json"
STORE = "store.sqlite"
SEGMENT_VECTORS = "segments.faiss"
DOCUMENT_VECTORS = "documents.faiss"
SCHEMA = """
CREATE TABLE documents(
  doc_id TEXT PRIMARY KEY, path TEXT, sha256 TEXT, n_chars INTEGER, n_tokens INTEGER,
  truncated_tokens INTEGER, metadata TEXT, text TEXT, doc_row INTEGER, doc_vector BLOB);
CREATE TABLE segments(
  row INTEGER PRIMARY KEY, doc_id TEXT, start INTEGER, end INTEGER, n_tokens INTEGER, vector BLOB);
CREATE INDEX segments_doc ON segments(doc_id);
"""


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
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST).is_file() and not p.name.startswith("."))


def _recover(path: Path) -> None:
    """Finish a swap that was interrupted between its two renames (see IndexWriter.commit)."""
    if path.exists():
        return
    olds = sorted(path.parent.glob(f".{path.name}.old-*")) if path.parent.is_dir() else []
    if olds:
        olds[-1].rename(path)


class IndexStore:
    """An opened index. Safe to search from many threads (SQLite connection per thread)."""

    def __init__(self, path: Path):
        _recover(path)
        if not (path / MANIFEST).is_file():
            available = list_indexes(path.parent)
            hint = f"; available in {path.parent}: {', '.join(available)}" if available else \
                f"; build one with: longrag index DIR --index {path.name}"
            raise IndexNotFoundError(f"no longrag index at {path}{hint}")
        self.path = path
        self.manifest = json.loads((path / MANIFEST).read_text())
        self.segment_index = load_faiss(path / SEGMENT_VECTORS)
        doc_file = path / DOCUMENT_VECTORS
        self.document_index = load_faiss(doc_file) if doc_file.exists() else None
        self.bm25 = load_bm25(path)
        self._local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "db", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path / STORE}?mode=ro", uri=True, check_same_thread=False)
            self._local.db = conn
        return conn

    # -- lookups ----------------------------------------------------------------------------------
    def documents(self) -> dict[str, dict]:
        rows = self.db.execute("SELECT doc_id, path, sha256, n_tokens FROM documents").fetchall()
        return {r[0]: {"path": r[1], "sha256": r[2], "n_tokens": r[3]} for r in rows}

    def span_text(self, doc_id: str, start: int, end: int) -> tuple[str, str]:
        """(path, text[start:end]) without loading the whole document."""
        row = self.db.execute(
            "SELECT path, substr(text, ?, ?) FROM documents WHERE doc_id=?", (start + 1, end - start, doc_id)
        ).fetchone()
        return row[0], row[1]

    def segment_rows(self, rows: list[int]) -> dict[int, tuple[str, int, int]]:
        marks = ",".join("?" * len(rows))
        found = self.db.execute(f"SELECT row, doc_id, start, end FROM segments WHERE row IN ({marks})", rows).fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in found}

    def doc_rows(self, rows: list[int]) -> dict[int, str]:
        marks = ",".join("?" * len(rows))
        found = self.db.execute(f"SELECT doc_row, doc_id FROM documents WHERE doc_row IN ({marks})", rows).fetchall()
        return {r[0]: r[1] for r in found}

    def segments_of(self, doc_id: str) -> tuple[list[tuple[int, int, int]], np.ndarray]:
        """(row, start, end, n_tokens) of every segment of a document, and their vectors."""
        rows = self.db.execute(
            "SELECT row, start, end, n_tokens, vector FROM segments WHERE doc_id=? ORDER BY row", (doc_id,)
        ).fetchall()
        spans = [(r[0], r[1], r[2], r[3]) for r in rows]
        vectors = np.stack([np.frombuffer(r[4], dtype=np.float32) for r in rows]) if rows else np.zeros((0, 0))
        return spans, vectors

    def stored_vectors(self, doc_id: str) -> tuple[list[dict], np.ndarray, np.ndarray | None]:
        """Everything needed to carry an unchanged document into a new index without re-encoding."""
        spans, vectors = self.segments_of(doc_id)
        row = self.db.execute("SELECT doc_vector FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        doc_vector = np.frombuffer(row[0], dtype=np.float32) if row and row[0] is not None else None
        segments = [{"start": s, "end": e, "n_tokens": n} for _, s, e, n in spans]
        return segments, vectors, doc_vector

    def document_row(self, doc_id: str) -> dict:
        row = self.db.execute(
            "SELECT doc_id, path, sha256, n_chars, n_tokens, truncated_tokens, metadata, text FROM documents WHERE doc_id=?",
            (doc_id,),
        ).fetchone()
        keys = ("doc_id", "path", "sha256", "n_chars", "n_tokens", "truncated_tokens", "metadata", "text")
        doc = dict(zip(keys, row))
        doc["metadata"] = json.loads(doc["metadata"])
        return doc

    def search_segments(self, queries: np.ndarray, k: int):
        return search_faiss(self.segment_index, queries, k)

    def search_documents(self, queries: np.ndarray, k: int):
        return search_faiss(self.document_index, queries, k)

    def search_lexical(self, query: str, k: int):
        return search_bm25(self.bm25, query, k)
