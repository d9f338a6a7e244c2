"""A shard: an immutable slice of an index — some documents, their segments, vectors, vector indexes
and BM25 term counts — written once, never changed, removed when no live generation lists it.

    shards/s000007/
      shard.json           counts and every file's size (a cut file is reported, not read)
      documents.sqlite     documents by ordinal: id, path, sha256, sizes, metadata, text
      segments.npy         (segments, 4) int64: document ordinal, start, end, tokens — in document order
      segment_vectors.npy  (segments, dim) float32, memory-mapped: best spans and merges read rows from it
      segments.faiss       the vector index over segment_vectors (FAISS: factory sized from the shard;
                           another backend writes segments.<its suffix>)
      document_vectors.npy, documents.faiss   one vector per document (document / hybrid with documents)
      bm25/                term counts per segment (hybrid): its text, and the name and heading fields

A generation deletes a document by listing its ordinal (a tombstone); searches skip tombstoned
rows inside the vector index (FAISS: an ID selector), and a merge drops them for good.
shard.json records each vector index under "vector_indexes" by role — {"segments": {"file",
"backend", "factory", "vectors"}} — so a shard is read with the backend that wrote it.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..documents.headers import field_texts
from ..lexical import BM25, BODY, Fields, LexicalSettings, TermCounts, pooled_scores
from .layout import fsync_tree
from .vectors import BACKENDS, VectorIndex, backend

INFO = "shard.json"
STORE = "documents.sqlite"
SPANS = "segments.npy"
SEGMENT_VECTORS = "segment_vectors.npy"
TEXTS_PER_COUNT = 10_000  # segment texts tokenized for BM25 at a time while a shard is written
SEGMENT_INDEX = "segments"  # roles of the vector indexes in shard.json; files are <role>.<backend suffix>
DOCUMENT_VECTORS = "document_vectors.npy"
DOCUMENT_INDEX = "documents"
BM25_DIR = "bm25"
SCHEMA = """
CREATE TABLE documents(
  ordinal INTEGER PRIMARY KEY, doc_id TEXT UNIQUE, path TEXT, sha256 TEXT, n_chars INTEGER, n_tokens INTEGER,
  truncated_tokens INTEGER, metadata TEXT, text TEXT);
"""
DOCUMENT_KEYS = ("doc_id", "path", "sha256", "n_chars", "n_tokens", "truncated_tokens", "metadata", "text")


class ShardFileError(Exception):
    """A file of a shard is missing or cut (the message names it)."""


class Shard:
    """One shard opened for reading; `deleted` are the ordinals the generation has tombstoned."""

    def __init__(self, folder: Path, deleted: Iterable[int] = ()):
        self.folder, self.name = folder, folder.name
        try:
            self.info = json.loads((folder / INFO).read_text())
        except FileNotFoundError:
            raise
        except (ValueError, OSError) as exc:
            raise ShardFileError(f"{folder.name}/{INFO} cannot be read ({exc})") from None
        self.info["vector_indexes"] = vector_indexes(self.info)
        for name, size in self.info["files"].items():
            try:
                actual = (folder / name).stat().st_size
            except FileNotFoundError:
                if not folder.is_dir():
                    raise  # the whole shard went: the caller tells a race from damage
                raise ShardFileError(f"{folder.name}/{name} is missing") from None
            if actual != size:
                raise ShardFileError(f"{folder.name}/{name} has {actual:,} bytes, {size:,} were written")
        # immutable: a shard never changes, so SQLite skips locks and journal checks
        self.db = sqlite3.connect(f"file:{folder / STORE}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self.doc_ids: list[str] = [r[0] for r in self.db.execute("SELECT doc_id FROM documents ORDER BY ordinal")]
        self.spans = np.load(folder / SPANS)
        self.vectors = np.load(folder / SEGMENT_VECTORS, mmap_mode="r")
        self.segment_index = self._vectors(SEGMENT_INDEX)
        has_docs = DOCUMENT_INDEX in self.info["vector_indexes"]
        self.document_index = self._vectors(DOCUMENT_INDEX) if has_docs else None
        self.document_vectors = np.load(folder / DOCUMENT_VECTORS, mmap_mode="r") if has_docs else None
        self.terms = BM25.load(folder / BM25_DIR) if (folder / BM25_DIR).is_dir() else None
        # first segment row of each document (segments are stored in document order)
        self.first = np.searchsorted(self.spans[:, 0], np.arange(len(self.doc_ids) + 1))
        self.alive = np.ones(len(self.doc_ids), bool)
        self.alive[list(deleted)] = False
        self.alive_segments = self.alive[self.spans[:, 0]] if len(self.spans) else np.zeros(0, bool)

    def _vectors(self, role: str) -> VectorIndex:
        record = self.info["vector_indexes"][role]
        if record["backend"] not in BACKENDS:
            raise ShardFileError(f"{self.name}/{record['file']} was written by vector backend {record['backend']!r}, "
                                 f"which this longrag does not have (it has {', '.join(BACKENDS)})")
        return backend(record["backend"]).load(self.folder / record["file"])

    @property
    def live_documents(self) -> int:
        return int(self.alive.sum())

    @property
    def live_segments(self) -> int:
        return int(self.alive_segments.sum())

    def search_segments(self, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the n best live segments, best first."""
        return self.segment_index.search(query[None, :], n, self.alive_segments)

    def search_documents(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.document_index.search(query[None, :], k, self.alive)

    def lexical_counts(self) -> Fields:
        return self.terms.fields

    def segments_of(self, ordinal: int) -> slice:
        return slice(int(self.first[ordinal]), int(self.first[ordinal + 1]))

    def document_rows(self, ordinals: Sequence[int] | None = None, columns: Sequence[str] = DOCUMENT_KEYS) -> Iterable[tuple]:
        """(ordinal, *columns) of the given documents (all, in order, by default)."""
        sql = f"SELECT ordinal, {', '.join(columns)} FROM documents"
        if ordinals is None:
            return self._query(sql + " ORDER BY ordinal")
        marks = ",".join("?" * len(ordinals))
        return self._query(f"{sql} WHERE ordinal IN ({marks}) ORDER BY ordinal", [int(o) for o in ordinals])

    def span_text(self, ordinal: int, start: int, end: int) -> tuple[str, str]:
        return self._query("SELECT path, substr(text, ?, ?) FROM documents WHERE ordinal=?",
                           (start + 1, end - start, ordinal))[0]

    def _query(self, sql: str, args=()) -> list[tuple]:
        with self._lock:
            return self.db.execute(sql, args).fetchall()

    def close(self) -> None:
        self.db.close()


def lexical_scores(query: str, shards: Sequence[Shard], settings: LexicalSettings,
                   weights: dict[str, float] | None = None) -> list[np.ndarray]:
    """BM25F of every live segment of every shard (fields weighted by `weights`), statistics pooled
    over the shards (0 for tombstoned rows)."""
    scores = pooled_scores(query, [s.lexical_counts() for s in shards], settings, weights)
    for shard, values in zip(shards, scores):
        values[~shard.alive_segments] = 0
    return scores


class ShardWriter:
    """Writes one new shard: documents are added in order, files are written by `finish`."""

    def __init__(self, folder: Path, dim: int, backend: str, factory: str, lexical: LexicalSettings | None):
        self.folder, self.dim, self.backend, self.factory, self.lexical = folder, dim, backend, factory, lexical
        folder.mkdir(parents=True)
        self.db = sqlite3.connect(folder / STORE)
        self.db.executescript(SCHEMA)
        self.documents = 0
        self.segments = 0  # counted as they come: the writer asks after every document
        self._spans: list[np.ndarray] = []
        self._vectors: list[np.ndarray] = []
        self._document_vectors: list[np.ndarray] = []
        self._texts: dict[str, list[str]] = {}  # field → texts not counted yet
        self._counts: list[dict[str, TermCounts]] = []  # field → counts, one dict per batch of texts

    def add(self, doc: dict, segments: list[dict], vectors: np.ndarray, document_vector: np.ndarray | None) -> None:
        """One document (a dict with DOCUMENT_KEYS) with its segments and their vectors."""
        self._insert([doc])
        self._spans.append(np.array([[self.documents - 1, s["start"], s["end"], s["n_tokens"]] for s in segments],
                                    np.int64).reshape(-1, 4))
        self._vectors.append(np.asarray(vectors, np.float32).reshape(-1, self.dim))
        self.segments += len(segments)
        if document_vector is not None:
            self._document_vectors.append(np.asarray(document_vector, np.float32).reshape(1, -1))
        if self.lexical is not None:
            texts = {BODY: [s.get("header", "") + doc["text"][s["start"]:s["end"]] for s in segments],  # segmenter.headers
                     **_fields(self.lexical.fields, doc, [(s["start"], s["end"]) for s in segments])}
            for name, values in texts.items():
                self._texts.setdefault(name, []).extend(values)
            if len(self._texts[BODY]) >= TEXTS_PER_COUNT:
                self._flush_texts()

    def add_shard(self, shard: Shard) -> None:
        """The live documents of another shard, as they are (a merge: nothing is re-encoded)."""
        self._flush_texts()
        keep = np.flatnonzero(shard.alive)
        renumber = np.full(len(shard.alive), -1, np.int64)
        renumber[keep] = np.arange(len(keep)) + self.documents
        counted = shard.terms.settings if shard.terms is not None else None
        if self.lexical is not None and (counted is None or (counted.stopwords, counted.stem) !=
                                         (self.lexical.stopwords, self.lexical.stem)):
            raise ValueError(f"shard {shard.name} was counted with BM25 settings {counted}, not {self.lexical}: "
                             "rebuild the index (longrag index DIR --index INDEX --rebuild)")
        missing = [f for f in self.lexical.fields if f not in counted.fields] if self.lexical else []
        added: dict[str, list[str]] = {name: [] for name in missing}  # fields of an index written before them
        for rows in _batches(keep, 1000):
            documents = [dict(zip(DOCUMENT_KEYS, row[1:])) for row in shard.document_rows(rows.tolist())]
            self._insert(documents)
            for ordinal, doc in zip(rows.tolist(), documents) if missing else ():
                for name, values in _fields(missing, doc, shard.spans[shard.segments_of(ordinal), 1:3].tolist()).items():
                    added[name] += values
        spans = np.array(shard.spans[shard.alive_segments])
        spans[:, 0] = renumber[spans[:, 0]]
        self._spans.append(spans)
        self.segments += len(spans)
        self._vectors.append(np.asarray(shard.vectors[shard.alive_segments]))
        if shard.document_vectors is not None:
            self._document_vectors.append(np.asarray(shard.document_vectors[shard.alive]))
        if self.lexical is not None:
            had = shard.lexical_counts().counts
            self._counts.append({**{name: TermCounts.concatenate([had[name]], [shard.alive_segments])
                                    for name in (BODY, *self.lexical.fields) if name in had},
                                 **{name: TermCounts.build(values, self.lexical) for name, values in added.items()}})

    def _insert(self, docs: Iterable[dict]) -> None:
        for doc in docs:
            metadata = doc["metadata"] if isinstance(doc["metadata"], str) else json.dumps(doc["metadata"])
            self.db.execute(f"INSERT INTO documents(ordinal, {', '.join(DOCUMENT_KEYS)}) VALUES (?,?,?,?,?,?,?,?,?)",
                            (self.documents, *(doc[k] for k in DOCUMENT_KEYS[:-2]), metadata, doc["text"]))
            self.documents += 1

    def _flush_texts(self) -> None:
        if self._texts.get(BODY):
            self._counts.append({name: TermCounts.build(texts, self.lexical) for name, texts in self._texts.items()})
        self._texts = {}

    def finish(self) -> dict:
        """Write every file, fsync them, and return the shard's info."""
        self.db.commit()
        self.db.close()
        spans = np.concatenate(self._spans) if self._spans else np.zeros((0, 4), np.int64)
        vectors = np.concatenate(self._vectors) if self._vectors else np.zeros((0, self.dim), np.float32)
        np.save(self.folder / SPANS, spans)
        np.save(self.folder / SEGMENT_VECTORS, vectors)
        info = {"documents": self.documents, "segments": len(spans), "tokens": int(spans[:, 3].sum()),
                "vector_indexes": {SEGMENT_INDEX: self._build(vectors, SEGMENT_INDEX)}}
        if self._document_vectors:
            documents = np.concatenate(self._document_vectors)
            np.save(self.folder / DOCUMENT_VECTORS, documents)
            info["vector_indexes"][DOCUMENT_INDEX] = self._build(documents, DOCUMENT_INDEX)
        if self.lexical is not None:
            self._flush_texts()
            parts = self._counts
            counts = {name: parts[0][name] if len(parts) == 1 else
                      TermCounts.concatenate([p[name] for p in parts], [slice(None)] * len(parts))
                      for name in (BODY, *self.lexical.fields)}
            BM25(counts.pop(BODY), self.lexical, counts).save(self.folder / BM25_DIR)
        files = {p.relative_to(self.folder).as_posix(): p.stat().st_size
                 for p in sorted(self.folder.rglob("*")) if p.is_file()}
        info["files"] = files
        info["bytes"] = sum(files.values())
        (self.folder / INFO).write_text(json.dumps(info, indent=1))
        fsync_tree(self.folder)
        return info

    def _build(self, vectors: np.ndarray, role: str) -> dict:
        kind = backend(self.backend)
        index, chosen = kind.build(vectors, self.factory)
        file = f"{role}.{kind.suffix}"
        index.save(self.folder / file)
        return {"file": file, "backend": self.backend, "factory": chosen, "vectors": index.size}

    def abort(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


def _fields(names: Sequence[str], doc: dict, spans: list) -> dict[str, list[str]]:
    """The BM25 fields' texts of one document's segments (`doc`: a row of DOCUMENT_KEYS)."""
    metadata = json.loads(doc["metadata"]) if isinstance(doc["metadata"], str) else doc["metadata"]
    return field_texts(names, doc["doc_id"], metadata, spans)


def vector_indexes(info: dict) -> dict:
    """The vector indexes a shard's info (or a manifest's entry for it) records, by role. Shards
    written before backends were pluggable recorded {"faiss": {"segments.faiss": {"backend",
    "factory", "vectors"}}}: the same facts keyed by file name, read here as they are."""
    if "vector_indexes" in info:
        return info["vector_indexes"]
    return {name.split(".")[0]: {"file": name, **record} for name, record in info["faiss"].items()}


def _batches(values: np.ndarray, size: int):
    for i in range(0, len(values), size):
        yield values[i:i + size]

