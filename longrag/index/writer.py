"""Write a new generation of an index, then publish it (see layout.py).

The previous generation stays live until the pointer is replaced, so Ctrl-C, a crash or a full
disk during a run loses nothing that was already indexed.
"""
from __future__ import annotations

import json
from dataclasses import asdict
import shutil
import sqlite3
from pathlib import Path

import numpy as np

from ..lexical import BM25
from .layout import MANIFEST, new_generation, publish
from .store import BM25_DIR, STORE, SEGMENT_VECTORS, DOCUMENT_VECTORS, SCHEMA
from .vectors import FaissIndex


class IndexWriter:
    """Collects documents, segments and vectors into a pending generation, then publishes it.
    Hold the index's writer lock (layout.writer_lock) from before reading the previous generation
    until commit or abort."""

    def __init__(self, target: Path):
        self.target = target
        self.tmp = new_generation(target)
        self.db = sqlite3.connect(self.tmp / STORE)
        self.db.executescript(SCHEMA)
        self._segment_vectors: list[np.ndarray] = []
        self._document_vectors: list[np.ndarray] = []
        self._segment_texts: list[str] = []  # for BM25 in the hybrid mode

    def add(self, doc: dict, segments: list[dict], segment_vectors: np.ndarray, document_vector: np.ndarray | None) -> None:
        """Add one document (a row dict for `documents`) with its segments and vectors, in order."""
        self.db.execute(
            "INSERT INTO documents(doc_id, path, sha256, n_chars, n_tokens, truncated_tokens, metadata, text, doc_row) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (doc["doc_id"], doc["path"], doc["sha256"], doc["n_chars"], doc["n_tokens"], doc["truncated_tokens"],
             json.dumps(doc["metadata"]), doc["text"], len(self._document_vectors) if document_vector is not None else None),
        )
        base = sum(len(v) for v in self._segment_vectors)
        self.db.executemany(
            "INSERT INTO segments(row, doc_id, start, end, n_tokens, vector) VALUES (?,?,?,?,?,?)",
            [(base + i, doc["doc_id"], s["start"], s["end"], s["n_tokens"], segment_vectors[i].astype(np.float32).tobytes())
             for i, s in enumerate(segments)],
        )
        if document_vector is not None:
            self.db.execute("UPDATE documents SET doc_vector=? WHERE doc_id=?",
                            (document_vector.astype(np.float32).tobytes(), doc["doc_id"]))
            self._document_vectors.append(document_vector.reshape(1, -1))
        self._segment_vectors.append(segment_vectors)
        self._segment_texts += [doc["text"][s["start"]:s["end"]] for s in segments]

    def commit(self, manifest: dict, dim: int, factory: str = "auto", bm25: bool = False) -> dict:
        """Build FAISS (and BM25) indexes, write the manifest, and atomically replace the target directory."""
        self.db.commit()
        self.db.close()
        if bm25:
            lexical = BM25.build(self._segment_texts)
            lexical.save(self.tmp / BM25_DIR)
            manifest = {**manifest, "lexical": asdict(lexical.settings)}
        built = {}
        for filename, parts in ((SEGMENT_VECTORS, self._segment_vectors), (DOCUMENT_VECTORS, self._document_vectors)):
            if filename == DOCUMENT_VECTORS and not parts:
                continue
            vectors = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
            index, chosen = FaissIndex.build(vectors, factory)
            index.save(self.tmp / filename)
            built[filename] = {"backend": "faiss", "factory": chosen, "vectors": index.size,
                               "bytes": (self.tmp / filename).stat().st_size}
        manifest = {**manifest, "faiss": built}
        files = {p.relative_to(self.tmp).as_posix(): p.stat().st_size for p in sorted(self.tmp.rglob("*")) if p.is_file()}
        manifest["files"] = files  # checked when the generation is opened: a cut file is reported, not read
        manifest["bytes_on_disk"] = sum(files.values())
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        publish(self.target, self.tmp)
        return manifest

    def abort(self) -> None:
        try:
            self.db.close()
        except Exception:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)

