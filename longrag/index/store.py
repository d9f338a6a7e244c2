"""Read side of an index directory: manifest, FAISS indexes, and the SQLite document store."""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np

from ..errors import IndexNotFoundError
from .layout import MANIFEST, is_index, live_generation
from .manifest import FORMAT_VERSION
from ..lexical import BM25
from .vectors import BACKENDS, VectorIndex

STORE = "store.sqlite"
BM25_DIR = "bm25"
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
_OPEN_TRIES = 5  # a writer may publish (and remove the generation being opened) between two reads
# one opening at a time per process: numpy reads .npy headers with ast.literal_eval, which raises
# SystemError in concurrent threads on CPython 3.11.0-3.11.7 (python/cpython#106905)
_OPENING = threading.Lock()


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


def _recover(path: Path) -> None:
    """Finish a swap of the old layout that was interrupted between its two renames."""
    if path.exists():
        return
    olds = sorted(path.parent.glob(f".{path.name}.old-*")) if path.parent.is_dir() else []
    if olds:
        olds[-1].rename(path)


def _damaged(path: Path, detail: str) -> IndexNotFoundError:
    return IndexNotFoundError(f"index {path} is damaged ({detail}); rebuild it: longrag index DIR --index {path} --rebuild")


def _read_manifest(generation: Path, path: Path) -> dict:
    try:
        manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not generation.is_dir():
            raise  # replaced by a newer generation while being opened: the caller retries
        raise _damaged(path, f"{MANIFEST} is missing") from None
    except (ValueError, OSError) as exc:
        raise _damaged(path, f"{MANIFEST} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or not {"config", "encoder", "counts"} <= set(manifest):
        raise _damaged(path, f"{MANIFEST} is not a longrag manifest")
    if manifest.get("format_version", 1) > FORMAT_VERSION:
        raise IndexNotFoundError(f"index {path} was written by a newer longrag (format "
                                 f"{manifest['format_version']}, this one reads {FORMAT_VERSION}): upgrade longrag")
    return manifest


def _check_sizes(generation: Path, manifest: dict, path: Path) -> None:
    """Every file the writer recorded is there at its recorded size (a cut or missing file is named)."""
    for name, size in manifest.get("files", {}).items():
        try:
            actual = (generation / name).stat().st_size
        except FileNotFoundError:
            if not generation.is_dir():
                raise
            raise _damaged(path, f"{name} is missing") from None
        if actual != size:
            raise _damaged(path, f"{name} has {actual:,} bytes, {size:,} were written")


class IndexStore:
    """One generation of an index, opened whole: manifest, FAISS, BM25 and the SQLite store are all
    read from the same generation when the store is made, so a later update of the index never
    mixes into it. Safe to search from many threads."""

    def __init__(self, path: Path):
        _recover(path)
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
                    raise _damaged(path, f"{exc.filename or 'a file'} does not exist") from None
        self._db_lock = threading.Lock()

    def _open(self, path: Path) -> None:
        self.path = path
        self.generation = live_generation(path)
        self.manifest = _read_manifest(self.generation, path)
        _check_sizes(self.generation, self.manifest, path)
        try:
            # immutable: a published generation never changes, so SQLite skips locks and journal checks
            self._db = sqlite3.connect(f"file:{self.generation / STORE}?mode=ro&immutable=1", uri=True,
                                       check_same_thread=False)
            self._db.execute("SELECT 1 FROM segments LIMIT 1").fetchone()  # reads the schema: not a database → error
            self.segment_index = self._vectors(SEGMENT_VECTORS)
            doc_file = self.generation / DOCUMENT_VECTORS
            self.document_index = self._vectors(DOCUMENT_VECTORS) if doc_file.exists() else None
            bm25_dir = self.generation / BM25_DIR
            self.bm25 = BM25.load(bm25_dir) if bm25_dir.is_dir() else None
        except FileNotFoundError:
            raise
        except (sqlite3.DatabaseError, RuntimeError, ValueError, OSError) as exc:
            raise _damaged(path, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None

    def _vectors(self, filename: str) -> VectorIndex:
        backend = self.manifest.get("faiss", {}).get(filename, {}).get("backend", "faiss")
        return BACKENDS[backend].load(self.generation / filename)

    @property
    def mode(self) -> str:
        """How this index ranks documents (index.mode it was built with)."""
        return self.manifest["config"]["index"]["mode"]

    def is_current(self) -> bool:
        """Whether this is still the index's live generation."""
        try:
            return live_generation(self.path) == self.generation
        except IndexNotFoundError:
            return False

    def _query(self, sql: str, args=()) -> list[tuple]:
        with self._db_lock:
            return self._db.execute(sql, args).fetchall()

    def _one(self, sql: str, args=()) -> tuple | None:
        rows = self._query(sql, args)
        return rows[0] if rows else None

    # -- lookups ----------------------------------------------------------------------------------
    def documents(self) -> dict[str, dict]:
        rows = self._query("SELECT doc_id, path, sha256, n_tokens FROM documents")
        return {r[0]: {"path": r[1], "sha256": r[2], "n_tokens": r[3]} for r in rows}

    def span_text(self, doc_id: str, start: int, end: int) -> tuple[str, str]:
        """(path, text[start:end]) without loading the whole document."""
        row = self._one(
            "SELECT path, substr(text, ?, ?) FROM documents WHERE doc_id=?", (start + 1, end - start, doc_id)
        )
        return row[0], row[1]

    def segment_rows(self, rows: list[int]) -> dict[int, tuple[str, int, int]]:
        marks = ",".join("?" * len(rows))
        found = self._query(f"SELECT row, doc_id, start, end FROM segments WHERE row IN ({marks})", rows)
        return {r[0]: (r[1], r[2], r[3]) for r in found}

    def doc_rows(self, rows: list[int]) -> dict[int, str]:
        marks = ",".join("?" * len(rows))
        found = self._query(f"SELECT doc_row, doc_id FROM documents WHERE doc_row IN ({marks})", rows)
        return {r[0]: r[1] for r in found}

    def segments_of(self, doc_id: str) -> tuple[list[tuple[int, int, int]], np.ndarray]:
        """(row, start, end, n_tokens) of every segment of a document, and their vectors."""
        rows = self._query(
            "SELECT row, start, end, n_tokens, vector FROM segments WHERE doc_id=? ORDER BY row", (doc_id,)
        )
        spans = [(r[0], r[1], r[2], r[3]) for r in rows]
        vectors = np.stack([np.frombuffer(r[4], dtype=np.float32) for r in rows]) if rows else np.zeros((0, 0))
        return spans, vectors

    def stored_vectors(self, doc_id: str) -> tuple[list[dict], np.ndarray, np.ndarray | None]:
        """Everything needed to carry an unchanged document into a new index without re-encoding."""
        spans, vectors = self.segments_of(doc_id)
        row = self._one("SELECT doc_vector FROM documents WHERE doc_id=?", (doc_id,))
        doc_vector = np.frombuffer(row[0], dtype=np.float32) if row and row[0] is not None else None
        segments = [{"start": s, "end": e, "n_tokens": n} for _, s, e, n in spans]
        return segments, vectors, doc_vector

    def document_row(self, doc_id: str) -> dict:
        row = self._one(
            "SELECT doc_id, path, sha256, n_chars, n_tokens, truncated_tokens, metadata, text FROM documents WHERE doc_id=?",
            (doc_id,),
        )
        keys = ("doc_id", "path", "sha256", "n_chars", "n_tokens", "truncated_tokens", "metadata", "text")
        doc = dict(zip(keys, row))
        doc["metadata"] = json.loads(doc["metadata"])
        return doc

    def search_segments(self, queries: np.ndarray, k: int):
        return self.segment_index.search(queries, k)

    def search_documents(self, queries: np.ndarray, k: int):
        return self.document_index.search(queries, k)

    def search_lexical(self, query: str, k: int):
        return self.bm25.search(query, k)
